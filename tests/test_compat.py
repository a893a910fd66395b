"""The original SplineCam toolbox's API (utils, wrappers, compute, plot) on the new engine."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import copy  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import splinecam as sc  # noqa: E402
import splinecam.compute  # noqa: E402, F401
import splinecam.plot  # noqa: E402, F401
import splinecam.utils  # noqa: E402, F401
import splinecam.wrappers  # noqa: E402, F401
from splinecam.errors import NotPiecewiseLinearError, SliceError, UnsupportedModelError  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _closed(p: np.ndarray) -> np.ndarray:
    return np.vstack([p, p[:1]])


# ----------------------------------------------------------------------------- utils: slices
def test_one_anchor_square_like_the_original():
    anchor = torch.randn(1, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    dom = sc.utils.get_square_slice_from_one_anchor(anchor, pad_dist=2, seed=0)
    assert isinstance(dom, torch.Tensor) and dom.shape == (5, 10) and dom.dtype == torch.float64
    assert torch.equal(dom[0], dom[-1])  # closed
    # vertices pad_dist from the anchor, centred on it, a square (equal sides, right angles)
    np.testing.assert_allclose(torch.linalg.norm(dom[:4] - anchor, dim=1).numpy(), 2.0)
    np.testing.assert_allclose(dom[:4].mean(0).numpy(), anchor[0].numpy(), atol=1e-12)
    sides = (dom[1:] - dom[:-1]).numpy()
    np.testing.assert_allclose(np.linalg.norm(sides, axis=1), 2 * np.sqrt(2))
    np.testing.assert_allclose(sides[0] @ sides[1], 0, atol=1e-12)
    # seeded: reproducible; numpy in -> numpy out
    dom2 = sc.utils.get_square_slice_from_one_anchor(anchor.numpy(), pad_dist=2, seed=0)
    assert isinstance(dom2, np.ndarray)
    np.testing.assert_allclose(dom2, dom.numpy())
    # (D,) is read as one anchor; float32 stays float32
    d32 = sc.utils.get_square_slice_from_one_anchor(torch.zeros(4), pad_dist=1, seed=1)
    assert d32.shape == (5, 4) and d32.dtype == torch.float32
    with pytest.raises(SliceError, match="one anchor"):
        sc.utils.get_square_slice_from_one_anchor(torch.zeros(2, 4), pad_dist=1)
    with pytest.raises(SliceError, match="pad_dist"):
        sc.utils.get_square_slice_from_one_anchor(torch.zeros(1, 4), pad_dist=0)


def test_proj_mat_conventions():
    anchor = np.random.default_rng(0).standard_normal((1, 7))
    dom = sc.utils.get_square_slice_from_one_anchor(anchor, pad_dist=1.5, seed=3)
    T = sc.utils.get_proj_mat(dom)
    assert T.shape == (7, 3)
    v = T[:, :2]
    np.testing.assert_allclose(v.T @ v, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(T[:, 2], anchor[0], atol=1e-12)
    # the original's formulas for v1, v2 (normalized edge vectors) agree on its square domains
    v1 = dom[1] - dom[0]
    v2 = dom[-2] - dom[0]
    np.testing.assert_allclose(v[:, 0], v1 / np.linalg.norm(v1), atol=1e-12)
    np.testing.assert_allclose(v[:, 1], v2 / np.linalg.norm(v2), atol=1e-12)
    # x = T @ [u, 1]; the domain is the square [-h, h]^2 with h = pad / sqrt(2)
    u = (v.T @ (dom - T[:, 2]).T).T
    h = 1.5 / np.sqrt(2)
    np.testing.assert_allclose(np.abs(u), h, atol=1e-12)
    np.testing.assert_allclose((T @ np.c_[u, np.ones(5)].T).T, dom, atol=1e-12)
    # torch in -> torch out; open polygons and 3 points work; non-orthogonal edges are orthogonalized
    Tt = sc.utils.get_proj_mat(torch.as_tensor(dom))
    assert isinstance(Tt, torch.Tensor) and Tt.shape == (7, 3)
    T3 = sc.utils.get_proj_mat(np.array([[0.0, 0, 0], [2, 0, 0], [1, 1, 0]]))
    np.testing.assert_allclose(T3[:, :2], [[1, 0], [0, 1], [0, 0]], atol=1e-12)
    with pytest.raises(SliceError, match="collinear"):
        sc.utils.get_proj_mat(np.array([[0.0, 0], [1, 1], [2, 2]]))


@pytest.mark.parametrize("n", [2, 3])
def test_two_and_three_anchor_squares(n):
    a = np.random.default_rng(n).standard_normal((n, 6))
    fn = sc.utils.get_square_slice_from_two_anchors if n == 2 else sc.utils.get_square_slice_from_centroid
    dom = fn(a, pad_dist=0.5)
    assert dom.shape == (5, 6) and np.array_equal(dom[0], dom[-1])
    T = sc.utils.get_proj_mat(dom)
    u = (T[:, :2].T @ (a - T[:, 2]).T).T
    # the anchors lie in the plane, inside the square with a margin pad_dist
    np.testing.assert_allclose((T[:, :2] @ u.T).T + T[:, 2], a, atol=1e-10)
    half = np.abs(T[:, :2].T @ (dom - T[:, 2]).T).max()
    assert np.abs(u).max() == pytest.approx(half - 0.5)
    np.testing.assert_allclose(T[:, 2], a.mean(0), atol=1e-12)


def test_slice_from_proj():
    dom = sc.utils.get_square_slice_from_one_anchor(np.zeros((1, 12)), pad_dist=1.0, seed=0)
    T = sc.utils.get_proj_mat(dom)
    sl = sc.utils.slice_from_proj(dom, T, input_shape=(3, 2, 2))
    assert sl.input_shape == (3, 2, 2) and sl.domain.shape == (4, 2)
    np.testing.assert_allclose(sl.to_input(sl.domain).reshape(4, -1), dom[:4], atol=1e-12)
    with pytest.raises(SliceError, match="input_shape"):
        sc.utils.slice_from_proj(dom, T, input_shape=(5,))
    with pytest.raises(SliceError, match=r"\(D, 3\)"):
        sc.utils.slice_from_proj(dom, np.zeros((12, 4)))


# ----------------------------------------------------------------------------- utils: statistics
def _original_region_statistics(polys: list[torch.Tensor]) -> dict[str, float]:
    """The original toolbox's formulas (closed polygons), for comparison."""

    def area(p):
        p = p[:-1]
        x, y = p[:, 0], p[:, 1]
        return 0.5 * torch.abs(torch.sum(x * torch.roll(y, -1)) - torch.sum(y * torch.roll(x, -1)))

    def ecc(p):
        d = torch.pdist(p[:-1])
        return d.max() / (d.min() + 1e-10)

    verts = torch.vstack([p[:-1] for p in polys])
    dist = torch.linalg.norm(verts - verts.mean(0), dim=-1)
    vols = torch.stack([area(p) for p in polys])
    eccs = torch.stack([ecc(p) for p in polys])
    return {
        "vol_m": vols.mean().item(), "vol_std": vols.std().item(),
        "nverts": torch.vstack(polys).shape[0] - len(polys), "nregions": len(polys),
        "ecc_m": eccs.mean().item(), "ecc_std": eccs.std().item(),
        "centr_m": dist.mean().item(), "centr_std": dist.std().item(),
        "avg_verts": float(np.mean([len(p) - 1 for p in polys])),
    }


def test_region_statistics_match_the_original():
    net = nn.Sequential(nn.Linear(2, 10), nn.ReLU(), nn.Linear(10, 1)).eval()
    part = sc.partition(net, sc.Slice.box((-1, 1), (-1, 1)))
    polys = [torch.from_numpy(_closed(p)) for p in part.polygons()]
    got = sc.utils.get_region_statistics(polys)
    want = _original_region_statistics(polys)
    assert set(got.keys()) == set(want) and "vol_m" in got
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-9), k
    # the original's call shape: a 2-tuple (names, values) in its order
    stats, vals = got
    assert stats == ["vol_m", "vol_std", "nverts", "nregions", "ecc_m", "ecc_std", "centr_m", "centr_std",
                     "avg_verts"]
    assert isinstance(vals, torch.Tensor) and vals.dtype == torch.float64 and vals.shape == (9,)
    for name, v in zip(stats, vals):
        assert v.item() == pytest.approx(want[name], rel=1e-9), name
    assert got.as_dict() == dict(got.items())
    # open polygons give the same numbers
    got_open = sc.utils.get_region_statistics(part.polygons())
    for k in want:
        assert got_open[k] == pytest.approx(got[k], rel=1e-12), k


def test_region_area_and_eccentricity():
    sq = [[0, 0], [2, 0], [2, 1], [0, 1], [0, 0]]
    assert sc.utils.region_area_2d(sq) == 2.0
    assert sc.utils.region_area_2d(np.array(sq)[:-1]) == 2.0
    t = sc.utils.region_area_2d(torch.tensor(sq, dtype=torch.float64))
    assert isinstance(t, torch.Tensor) and t.item() == 2.0
    assert sc.utils.region_eccentricity_2d(sq) == pytest.approx(np.sqrt(5) / 1)
    assert sc.utils.region_eccentricity_2d(torch.tensor(sq, dtype=torch.float64)).item() == pytest.approx(np.sqrt(5))
    poly = sc.utils.create_polytope_2d(scale=1, seed=10)
    assert np.array_equal(poly[0], poly[-1]) and sc.utils.region_area_2d(poly) > 0
    sl = sc.Slice(origin=np.zeros(2), basis=np.eye(2), domain=poly[:-1])  # convex, in order
    assert sl.domain.shape == (len(poly) - 1, 2)


# ----------------------------------------------------------------------------- wrappers
def test_model_wrapper_verify_and_errors():
    net = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2)).eval()
    before = copy.deepcopy(net.state_dict())
    T = sc.utils.get_proj_mat(sc.utils.get_square_slice_from_one_anchor(torch.zeros(1, 6), 1.0, seed=0))
    nn_w = sc.wrappers.model_wrapper(net, input_shape=(6,), T=T, dtype=torch.float64)
    assert nn_w.verify() is True and nn_w.program is not None
    assert nn_w.verify(seed=3, eps=1e-6) is True and nn_w.verify(0, 1e-5) is True  # the original's call
    assert nn_w.model is net and nn_w.T.shape == (6, 3) and nn_w.input_shape == (6,)
    assert sc.wrappers.model_wrapper(net, T=T).input_shape == (6,)
    # the user's model is untouched
    assert not net.training and next(net.parameters()).dtype == torch.float32
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    # forward at slice coordinates == model at T @ [u, 1]
    u = torch.tensor([[0.1, -0.3], [0.5, 0.2]], dtype=torch.float64)
    T64 = T.double()
    x = (T64[:, :2] @ u.T).T + T64[:, 2]
    np.testing.assert_allclose(nn_w(u).numpy(), copy.deepcopy(net).double()(x).detach().numpy(), rtol=1e-12)
    # legacy keywords accepted, unknown ones refused
    sc.wrappers.model_wrapper(net, T=T, is_classifier=True, as_sequential=True)
    with pytest.raises(TypeError, match="unexpected"):
        sc.wrappers.model_wrapper(net, T=T, bogus=1)
    # training mode, non-PWL modules, shape mismatches
    with pytest.raises(UnsupportedModelError, match="training"):
        sc.wrappers.model_wrapper(nn.Sequential(nn.Linear(6, 2)), T=T)
    gelu = nn.Sequential(nn.Linear(6, 4), nn.GELU(), nn.Linear(4, 1)).eval()
    with pytest.raises(NotPiecewiseLinearError, match="GELU"):
        sc.wrappers.model_wrapper(gelu, T=T).verify()
    with pytest.raises(SliceError, match="input_shape"):
        sc.wrappers.model_wrapper(net, input_shape=(3, 3), T=T)
    with pytest.raises(SliceError, match=r"\(D, 3\)"):
        sc.wrappers.model_wrapper(net, T=torch.zeros(6, 5))
    with pytest.raises(UnsupportedModelError, match="does not accept"):
        sc.wrappers.model_wrapper(nn.Sequential(nn.Linear(7, 2)).eval(), T=T).verify()


# ----------------------------------------------------------------------------- compute
def test_get_partitions_with_db_matches_partition():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)).eval()
    anchors = torch.randn(3, 8, dtype=torch.float64)
    dom = sc.utils.get_square_slice_from_centroid(anchors, pad_dist=1.0)
    T = sc.utils.get_proj_mat(dom)
    NN = sc.wrappers.model_wrapper(net, input_shape=(8,), T=T)
    regions, db, abw = sc.compute.get_partitions_with_db(dom, T, NN, batch_size=128, fwd_batch_size=1024)
    part = NN.last_partition
    assert isinstance(part, sc.Partition) and len(regions) == part.num_regions > 10
    assert all(isinstance(r, torch.Tensor) and r.dtype == torch.float64 for r in regions)
    assert all(torch.equal(r[0], r[-1]) for r in regions)
    assert sum(sc.utils.region_area_2d(r).item() for r in regions) == pytest.approx(
        sc.utils.region_area_2d(part.slice.domain), rel=1e-9
    )
    assert abw.shape == (part.num_regions, 3, 3)
    assert db.ndim == 3 and db.shape[1:] == (2, 2)
    # as the original: without to_decision_boundary(), the zero sets of the three outputs
    _check_zero_sets(net, T, db, lambda y: y, NN.last_partition)
    _, db_argmax, _ = sc.compute.get_partitions_with_db(dom, T, NN, argmax=True)
    assert len(db_argmax) == len(part.decision_boundary().segments)
    # Abw[r] @ [u, 1] is the model's output at x = T @ [u, 1] for u inside region r
    c = torch.from_numpy(part.centroids())
    x = (T[:, :2] @ c.T).T + T[:, 2]
    with torch.no_grad():
        y = copy.deepcopy(net).double()(x)
    pred = torch.einsum("roi,ri->ro", abw, torch.cat([c, torch.ones(len(c), 1, dtype=c.dtype)], 1))
    np.testing.assert_allclose(pred.numpy(), y.numpy(), rtol=1e-9, atol=1e-9)
    # a bare module, the original's batching settings given positionally, and unknown keywords
    regions2, _, _ = sc.compute.get_partitions_with_db(dom, T, net)
    assert len(regions2) == len(regions)
    regions3, db3, _ = sc.compute.get_partitions_with_db(dom, T, NN, 1024, 128, 2, 16)
    assert len(regions3) == len(regions) and torch.equal(db3, db)
    with pytest.raises(TypeError):
        sc.compute.get_partitions_with_db(dom, T, NN, 1024, 128, 2, 16, 0)
    with pytest.raises(TypeError, match="unexpected"):
        sc.compute.get_partitions_with_db(dom, T, NN, nonsense=1)


def _check_zero_sets(net, T, seg, funcs, part, tol=1e-9):
    """Every segment's end and middle points are where one of ``funcs(model output)`` vanishes,
    checked with the real model at the input points ``T @ [u, 1]``."""
    assert len(seg) > 0
    n = len(seg)
    # (the functions' scale from the regions' centroids: on the segments they vanish)
    u = torch.cat([seg[:, 0], seg[:, 1], seg.mean(1), torch.from_numpy(part.centroids())])
    x = (T[:, :2].to(torch.float64) @ u.T).T + T[:, 2].to(torch.float64)
    with torch.no_grad():
        f = funcs(copy.deepcopy(net).double()(x))
    scale = float(f.abs().max())
    f = f[: 3 * n]
    # the same function vanishes at both ends and the middle of each segment
    small = f.abs() <= tol * scale
    assert bool((small[:n] & small[n : 2 * n] & small[2 * n :]).any(1).all())


def _pair_diffs(y, pairs):
    return torch.stack([y[:, i] - y[:, j] for i, j in pairs], 1)


def test_layers_and_to_decision_boundary_follow_the_original():
    torch.manual_seed(4)  # a net whose outputs and their pairs' differences cross 0 on the slice
    net = nn.Sequential(nn.Linear(6, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 12), nn.LeakyReLU(0.1),
                        nn.Dropout(0.2), nn.Linear(12, 4)).eval()
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 2.0)
    dom = sc.utils.get_square_slice_from_one_anchor(torch.randn(1, 6, dtype=torch.float64), pad_dist=3.0, seed=0)
    T = sc.utils.get_proj_mat(dom)
    NN = sc.wrappers.model_wrapper(net, input_shape=(6,), T=T, custom_layers=[], custom_activations=[])
    layers = NN.layers
    # the original's view: adapter, then Linear+BN+ReLU, Linear+LeakyReLU(+Dropout), Linear
    assert [type(m).__name__ for m in layers] == ["adapter", "wrapped_layer", "wrapped_layer", "wrapped_layer"]
    assert [m.output_shape for m in layers] == [(6,), (12,), (12,), (4,)]
    assert layers[1].has_bn and layers[1].has_act and not layers[3].has_act
    u = torch.randn(5, 2, dtype=torch.float64)
    x = layers[0](u)
    with torch.no_grad():
        y = copy.deepcopy(net).double()(x)
    torch.testing.assert_close(layers(u), y)                # the layers compose to the model
    torch.testing.assert_close(layers[:2](u), layers[1](x))
    # get_weights: [A | b] of each affine part (BN folded in), as the original
    ab = layers[1].get_weights()
    with torch.no_grad():
        pre = copy.deepcopy(net).double()[:2](x)
    torch.testing.assert_close(x @ ab[:, :-1].T + ab[:, -1], pre)
    q = layers[2].get_activation_pattern(layers[1](x))
    assert set(q.unique().tolist()) <= {0.1, 1.0}
    # the partition is unchanged by building the view, and the user's model is untouched
    assert net[0].weight.dtype == torch.float32 and not net.training

    # default: the zero set of each output, checked against the real model
    regions, zero_sets, _ = sc.compute.get_partitions_with_db(dom, T, NN)
    _check_zero_sets(net, T, zero_sets, lambda y: y, NN.last_partition)
    # to_decision_boundary(): where two outputs are equal (all pairs), as the original
    assert layers[-1].to_decision_boundary() is True and layers[-1].output_shape == (6,)
    assert layers[-1].get_weights().shape == (6, 13)
    _, pairs_db, _ = sc.compute.get_partitions_with_db(dom, T, NN)
    all_pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    _check_zero_sets(net, T, pairs_db, lambda y: _pair_diffs(y, all_pairs), NN.last_partition)
    # one pair, and the exact argmax boundary (a subset of the pairs' equality sets)
    layers[-1].to_decision_boundary(between_class=(0, 2))
    _, one, _ = sc.compute.get_partitions_with_db(dom, T, NN)
    _check_zero_sets(net, T, one, lambda y: _pair_diffs(y, [(0, 2)]), NN.last_partition)
    assert 0 < len(one) < len(pairs_db)
    _, exact, _ = sc.compute.get_partitions_with_db(dom, T, NN, argmax=True)
    part = NN.last_partition
    assert len(exact) == len(part.decision_boundary().segments) < len(pairs_db)
    assert part.verify(net)
    with pytest.raises(ValueError, match="two different outputs"):
        layers[-1].to_decision_boundary(between_class=(1, 1))
    with pytest.raises(TypeError, match="nn.Module classes"):
        sc.wrappers.model_wrapper(net, input_shape=(6,), T=T, custom_layers=["Linear"])


def test_zero_sets_of_one_output_are_its_decision_boundary():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(5, 10), nn.ReLU(), nn.Linear(10, 1)).eval()
    dom = sc.utils.get_square_slice_from_one_anchor(torch.zeros(1, 5, dtype=torch.float64), pad_dist=3.0, seed=1)
    T = sc.utils.get_proj_mat(dom)
    NN = sc.wrappers.model_wrapper(net, input_shape=(5,), T=T)
    _, db, _ = sc.compute.get_partitions_with_db(dom, T, NN)
    _check_zero_sets(net, T, db, lambda y: y, NN.last_partition)
    seg_len = float(torch.linalg.norm(db[:, 1] - db[:, 0], dim=1).sum())
    assert seg_len == pytest.approx(NN.last_partition.decision_boundary().length, rel=1e-9)


def test_seed_minus_one_means_no_seed():
    a2 = np.random.default_rng(0).standard_normal((2, 6))
    d1 = sc.utils.get_square_slice_from_two_anchors(a2, pad_dist=1.0, seed=-1)
    d2 = sc.utils.get_square_slice_from_two_anchors(a2, pad_dist=1.0, seed=-1)
    assert d1.shape == (5, 6) and not np.allclose(d1, d2)  # random each call, as seed=None
    T = sc.utils.get_proj_mat(d1)
    u = (T[:, :2].T @ (a2 - T[:, 2]).T).T
    np.testing.assert_allclose((T[:, :2] @ u.T).T + T[:, 2], a2, atol=1e-10)  # both anchors in the plane
    one = sc.utils.get_square_slice_from_one_anchor(np.zeros((1, 4)), pad_dist=1.0, seed=-1)
    assert one.shape == (5, 4)
    np.testing.assert_allclose(sc.utils.get_square_slice_from_two_anchors(a2, seed=3),
                               sc.utils.get_square_slice_from_two_anchors(a2, seed=3))


def test_region_means_split_domain_and_nearest_neighbours():
    sq = torch.tensor([[0.0, 0], [2, 0], [2, 2], [0, 2], [0, 0]], dtype=torch.float64)
    means = sc.utils.get_region_means([sq, sq + 10], dims=2, device="cpu")
    # as the original: every row counts (the closing repeat too)
    torch.testing.assert_close(means, torch.stack([sq.mean(0), (sq + 10).mean(0)]))
    with pytest.raises(SliceError, match="expected"):
        sc.utils.get_region_means([sq], dims=3)
    tris = sc.utils.split_domain_by_edge(sq)
    assert len(tris) == 4 and all(isinstance(t, torch.Tensor) and t.shape == (4, 2) for t in tris)
    assert sum(sc.utils.region_area_2d(t).item() for t in tris) == pytest.approx(4.0)
    assert all(torch.equal(t[2], torch.tensor([1.0, 1.0], dtype=torch.float64)) for t in tris)
    with pytest.raises(SliceError, match="closed polygon"):
        sc.utils.split_domain_by_edge(sq[:-1])

    class Dataset:  # torchvision's CIFAR layout: (N, H, W, C) uint8 and a list of labels
        pass

    rng = np.random.default_rng(0)
    ds = Dataset()
    ds.data = rng.integers(0, 255, size=(30, 4, 4, 3), dtype=np.uint8)
    ds.targets = [i % 3 for i in range(30)]
    pts = sc.utils.get_nneigh_points(ds, (0, 1))
    assert pts.shape == (3, 48) and pts.dtype == torch.float32
    x = torch.as_tensor(ds.data).permute(0, 3, 1, 2).reshape(30, -1).float()
    y = np.asarray(ds.targets)
    a, b = x[torch.as_tensor(y == 0)], x[torch.as_tensor(y == 1)]
    d = torch.cdist(a, b)
    i = int(d.min(1).values.argmin())
    assert torch.equal(pts[0], a[i])
    # the other two are the two class-1 points nearest to it, in order
    order = torch.argsort(d[i])
    assert torch.equal(pts[1], b[order[0]]) and torch.equal(pts[2], b[order[1]])
    assert sc.Slice.from_anchors(list(pts.double())).dim == 48
    with pytest.raises(SliceError, match="at least"):
        sc.utils.get_nneigh_points((ds.data, [0] * 30), (0, 1))


def test_vgg_architectures():
    import splinecam.models as models

    net = models.vgg11_bn(num_classes=200, input_size=64, seed=0)
    convs = [i for i, m in enumerate(net) if isinstance(m, nn.Conv2d)]
    pools = [i for i, m in enumerate(net) if isinstance(m, nn.AvgPool2d)]
    assert convs == [0, 4, 8, 11, 15, 18, 22, 25] and pools == [3, 7, 14, 21, 28]  # the original's indices
    assert all(net[i].bias is None for i in convs) and net[0].stride == (2, 2)
    assert not any(isinstance(m, nn.MaxPool2d) for m in net)
    assert net[-1].in_features == 512 and net[-1].out_features == 200
    assert tuple(net.eval()(torch.zeros(1, 3, 64, 64)).shape) == (1, 200)
    # the original's positional names, other sizes, seeds
    assert models.vgg11_bn(10, 128)[-1].in_features == 512 * 4
    n32 = models.vgg16_bn(num_classes=10, input_size=32, first_stride=1, seed=0).eval()
    assert tuple(n32(torch.zeros(2, 3, 32, 32)).shape) == (2, 10)
    assert sum(isinstance(m, nn.Conv2d) for m in n32) == 13
    a, b = models.vgg11_bn(seed=1), models.vgg11_bn(seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    state = torch.random.get_rng_state()
    models.vgg16_bn(seed=2)
    assert torch.equal(state, torch.random.get_rng_state())  # a seed leaves the global state alone
    with pytest.raises(ValueError, match="multiple of 64"):
        models.vgg11_bn(input_size=48)
    with pytest.raises(ValueError, match="randomly initialised"):
        models.vgg11_bn(weights="IMAGENET1K_V1")


def test_vgg11_partition_on_a_tiny_slice_is_exact():
    net = sc.models.vgg11_bn(num_classes=10, input_size=64, seed=0).eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    part = sc.partition(net, sc.Slice.from_anchors(x, pad=2e-3, seed=0), warn_regions=None)
    assert part.num_regions >= 1 and len(part.layer_names) == 8
    assert part.verify(net, quick=True)


def test_plot_networkx_graph_places_nodes_at_the_partition():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    part = sc.partition(net, sc.Slice.box((-1, 1), (-1, 1)))
    G = part.to_networkx("planar")
    fig, ax = plt.subplots()
    art = sc.plot.plot_networkx_graph(G, ax=ax)
    assert art.ax is ax and len(art.edges.get_segments()) == part.num_edges
    np.testing.assert_allclose(np.asarray(art.nodes.get_offsets()), part.vertices)  # nodes at the vertices
    assert art.labels is not None and len(art.labels) == part.num_vertices  # small graph: labelled
    # the region graph at the centroids; the original's graphs carried a tensor 'v' per node
    R = part.to_networkx("regions")
    art = sc.plot.plot_networkx_graph(R, ax=ax, with_labels=False)
    np.testing.assert_allclose(np.asarray(art.nodes.get_offsets()), part.centroids(), atol=1e-12)
    assert art.labels is None
    import networkx as nx

    H = nx.Graph()
    H.add_node(0, v=torch.tensor([0.0, 1.0]))
    H.add_node(1, v=torch.tensor([2.0, 3.0]))
    H.add_edge(0, 1)
    art = sc.plot.plot_networkx_graph(H, ax=ax)
    np.testing.assert_allclose(np.asarray(art.nodes.get_offsets()), [[0, 1], [2, 3]])
    with pytest.raises(ValueError, match="cannot place"):
        sc.plot.plot_networkx_graph(nx.path_graph(3), ax=ax)
    plt.close(fig)


def test_plot_graphtool_graph_says_how_to_install_graph_tool(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "graph_tool", None)  # as if not installed
    with pytest.raises(ImportError, match="conda install -c conda-forge graph-tool"):
        sc.plot.plot_graphtool_graph(object())


# ----------------------------------------------------------------------------- the original's example scripts
def test_visualize_mlp_random_example(tmp_path):
    """examples/visualize_mlp_random.py of the original toolbox, verbatim in spirit (one anchor)."""
    torch.manual_seed(0)
    in_shape, out_shape, width, depth = 10, 1, 20, 10
    act = torch.nn.LeakyReLU(0.03)  # one module object reused by every layer, as in the original
    layers = [torch.nn.Linear(in_shape, width), act]
    for _ in range(depth - 1):
        layers += [torch.nn.Linear(width, width), torch.nn.BatchNorm1d(width), act]
    layers.append(torch.nn.Linear(width, out_shape))
    model = torch.nn.Sequential(*layers)
    model.eval()
    model.type(torch.float64)

    domain = sc.utils.get_square_slice_from_one_anchor(torch.randn(1, in_shape), pad_dist=2, seed=None)
    T = sc.utils.get_proj_mat(domain)
    NN = sc.wrappers.model_wrapper(model, input_shape=(in_shape,), T=T, dtype=torch.float64)
    assert NN.verify()
    out_cyc, endpoints, Abw = sc.compute.get_partitions_with_db(domain, T, NN)
    minval, _ = torch.vstack(out_cyc).min(0)
    maxval, _ = torch.vstack(out_cyc).max(0)
    art = sc.plot.plot_partition(
        out_cyc, xlims=[minval[0], maxval[0]], alpha=0.3, edgecolor="#a70000", color_range=[0.3, 0.8],
        colors=["#469597", "#5BA199", "#BBC6C8", "#E5E3E4", "#DDBEAA"], ylims=[minval[1], maxval[1]],
        linewidth=0.5,
    )
    plt.savefig(tmp_path / "mlp_visualize.png", transparent=True, bbox_inches=0, pad_inches=0)
    assert (tmp_path / "mlp_visualize.png").stat().st_size > 0
    part = NN.last_partition
    assert len(out_cyc) == part.num_regions == len(art.regions.get_paths()) > 1
    assert Abw.shape == (part.num_regions, 1, 3) and endpoints.shape[1:] == (2, 2)
    assert len(part.layer_names) == depth  # a module object reused by every layer is traced each time
    assert part.verify(model).ok


def test_visualize_cnn_random_example(tmp_path):
    """examples/visualize_cnn_random.py of the original toolbox (one anchor, 3x32x32 input)."""
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 5, stride=2, padding=2, bias=False),
        torch.nn.BatchNorm2d(6),
        torch.nn.ReLU(),
        torch.nn.Conv2d(6, 16, 5, stride=2, padding=2, bias=False),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * 8 * 8, 120),
        torch.nn.Linear(120, 84),
        torch.nn.Linear(84, 10),
    )
    model.eval()
    model.type(torch.float64)
    domain = sc.utils.get_square_slice_from_one_anchor(torch.randn(1, 3 * 32 * 32), pad_dist=1, seed=None)
    T = sc.utils.get_proj_mat(domain)
    NN = sc.wrappers.model_wrapper(model, input_shape=(3, 32, 32), T=T, dtype=torch.float64)
    assert NN.verify()
    out_cyc, endpoints, Abw = sc.compute.get_partitions_with_db(domain, T, NN)
    minval, _ = torch.vstack(out_cyc).min(0)
    maxval, _ = torch.vstack(out_cyc).max(0)
    art = sc.plot.plot_partition(
        out_cyc, xlims=[minval[0], maxval[0]], alpha=0.3, edgecolor="#a70000", color_range=[0.3, 0.8],
        colors=["#469597", "#5BA199", "#BBC6C8", "#E5E3E4", "#DDBEAA"], ylims=[minval[1], maxval[1]],
        linewidth=0.5,
    )
    plt.savefig(tmp_path / "cnn_visualize.png", transparent=True, bbox_inches=0, pad_inches=0)
    part = NN.last_partition
    assert part.slice.input_shape == (3, 32, 32)
    assert len(out_cyc) == part.num_regions == len(art.regions.get_paths()) > 1
    assert Abw.shape == (part.num_regions, 10, 3) and endpoints.shape[1:] == (2, 2)
    assert part.verify(model).ok
    # the new API on the same partition
    stats = sc.utils.get_region_statistics(out_cyc)
    assert stats["nregions"] == part.num_regions
    assert part.statistics()["num_regions"] == part.num_regions


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_original_scripts_random_projection_and_polytope(kind, tmp_path):
    """The original scripts' own slice: ``T = torch.randn(D, 2)`` (no centre column, not orthonormal)
    and a random convex polytope ``create_polytope_2d(scale=1, seed=10)`` in slice coordinates
    (``+ 2`` for the CNN), then ``plot_partition`` with limits from the polytope (0-d arrays)."""
    torch.manual_seed(2)
    if kind == "mlp":
        act = torch.nn.LeakyReLU(0.03)
        layers = [torch.nn.Linear(10, 21), act]
        for w in range(21, 24):
            layers += [torch.nn.Linear(w, w + 1), torch.nn.BatchNorm1d(w + 1), act]
        model = torch.nn.Sequential(*layers, torch.nn.Linear(24, 1))
        shape, shift = (10,), 0.0
        NN = sc.wrappers.model_wrapper(model.eval().double(), T=torch.randn(10, 2), dtype=torch.float64)
    else:
        model = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 5, stride=2, padding=2, bias=False), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
            torch.nn.Conv2d(4, 4, 5, stride=2, padding=2, bias=False), torch.nn.ReLU(), torch.nn.Flatten(),
            torch.nn.Linear(4 * 4 * 4, 12), torch.nn.Linear(12, 10),
        )
        shape, shift = (3, 16, 16), 2.0
        NN = sc.wrappers.model_wrapper(
            model.eval().double(), input_shape=shape, T=torch.randn(3 * 16 * 16, 2), dtype=torch.float64
        )
    assert NN.verify()
    poly = torch.from_numpy(sc.utils.create_polytope_2d(scale=1, seed=10) + shift).to(torch.float64)
    regions, db, Abw = sc.compute.get_partitions_with_db(poly, NN.T, NN)
    part = NN.last_partition
    assert len(regions) == part.num_regions > 1
    # the domain is the polytope itself, in slice coordinates, and the regions tile it
    assert sum(sc.utils.region_area_2d(r).item() for r in regions) == pytest.approx(
        sc.utils.region_area_2d(poly).item(), rel=1e-9
    )
    np.testing.assert_allclose(part.slice.origin.reshape(-1), 0.0)
    # Abw[r] @ [u, 1] is the model at x = T @ u (the original's (D, 2) projection, no offset)
    c = torch.from_numpy(part.centroids())
    x = (c @ NN.T.T).reshape(-1, *shape)
    with torch.no_grad():
        y = model(x)
    pred = torch.einsum("roi,ri->ro", Abw, torch.cat([c, torch.ones(len(c), 1, dtype=c.dtype)], 1))
    np.testing.assert_allclose(pred.numpy(), y.numpy(), rtol=1e-9, atol=1e-9)
    assert db.ndim == 3 and db.shape[1:] == (2, 2)
    assert part.verify(model).ok
    art = sc.plot.plot_partition(
        regions, xlims=[poly[:, 0].cpu().min().numpy(), poly[:, 0].cpu().max().numpy()],
        ylims=[poly[:, 1].cpu().min().numpy(), poly[:, 1].cpu().max().numpy()], color_range=[0.4, 0.8],
    )
    assert len(art.regions.get_paths()) == part.num_regions
    assert art.ax.get_xlim() == pytest.approx((poly[:, 0].min().item(), poly[:, 0].max().item()))
    plt.savefig(tmp_path / f"{kind}_visualize.png", transparent=True, bbox_inches=0, pad_inches=0)
    assert (tmp_path / f"{kind}_visualize.png").stat().st_size > 0
