"""Decision boundaries and level sets (splinecam.boundary), checked against the real torch model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import splinecam as sc
from splinecam.boundary import BoundaryError, DecisionBoundary, decision_boundary, level_set
from splinecam.errors import SplineCamError


# --------------------------------------------------------------------------- helpers
def mlp(seed: int, n_in: int, n_out: int, width: int = 16, depth: int = 2) -> nn.Module:
    """A seeded float64 ReLU MLP whose weights give several classes on the slice."""
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    i = n_in
    for _ in range(depth):
        layers += [nn.Linear(i, width), nn.ReLU()]
        i = width
    layers.append(nn.Linear(i, n_out))
    net = nn.Sequential(*layers).double().eval()
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.copy_(1.5 * torch.randn(m.weight.shape, generator=g, dtype=torch.float64) / m.in_features**0.5)
                m.bias.copy_(0.5 * torch.randn(m.bias.shape, generator=g, dtype=torch.float64))
    return net


def hand(*mods: nn.Module, weights: list) -> nn.Module:
    """A float64 Sequential with hand-set (weight, bias) for its Linear layers, in order."""
    net = nn.Sequential(*mods).double().eval()
    lins = [m for m in net if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for lin, (w, b) in zip(lins, weights):
            lin.weight.copy_(torch.tensor(w, dtype=torch.float64))
            lin.bias.copy_(torch.tensor(b, dtype=torch.float64))
    return net


def model_out(net: nn.Module, slc: sc.Slice, u: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        x = slc.to_input(torch.as_tensor(np.asarray(u, dtype=np.float64)))
        return net(x).reshape(len(u), -1).numpy()


def labels(f: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    return (f[:, 0] > threshold).astype(int) if f.shape[1] == 1 else f.argmax(1)


def half_width(slc: sc.Slice) -> float:
    d = slc.domain
    return float(np.abs(d - d.mean(0)).max())


# (name, input dim, outputs, seed); 10-D input uses a slice through anchors
CASES = [("1out", 2, 1, 1), ("2out", 2, 2, 2), ("3out", 2, 3, 3), ("5out", 2, 5, 5), ("10d-3out", 10, 3, 9),
         ("pentagon-4out", 2, 4, 7)]


def pentagon() -> np.ndarray:
    ang = np.linspace(0, 2 * np.pi, 6)[:-1] + 0.3
    return 2.2 * np.stack([np.cos(ang), np.sin(ang)], 1) + [0.3, -0.2]


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def case(request):
    name, n_in, n_out, seed = request.param
    net = mlp(seed, n_in, n_out)
    if name.startswith("pentagon"):
        slc = sc.Slice(origin=np.zeros(2), basis=np.eye(2), domain=pentagon())
    elif n_in == 2:
        slc = sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2))
    else:
        rng = np.random.default_rng(seed)
        slc = sc.Slice.from_anchors([rng.standard_normal(n_in) for _ in range(3)], pad=1.0, seed=seed)
    part = sc.partition(net, slc)
    db = part.decision_boundary()
    assert len(db) > 10, f"test case {name} should have a non-trivial boundary"
    return net, slc, part, db


# --------------------------------------------------------------------------- exactness vs torch
def test_boundary_points_tie(case):
    net, slc, part, db = case
    u, _ = db.sample(500, seed=0)
    pts = np.concatenate([db.midpoints(), u, db.segments[:, 0], db.segments[:, 1]])
    f = model_out(net, slc, pts)
    scale = max(1.0, float(np.abs(f).max()))
    if f.shape[1] == 1:
        assert np.abs(f[:, 0]).max() <= 1e-9 * scale
    else:
        top = np.sort(f, 1)
        assert np.abs(top[:, -1] - top[:, -2]).max() <= 1e-9 * scale
        # the tied pair is the pair of classes the segment separates
        m = db.midpoints()
        fm = model_out(net, slc, m)
        ci, cj = db.classes[:, 0], db.classes[:, 1]
        rows = np.arange(len(m))
        assert np.abs(fm[rows, ci] - fm[rows, cj]).max() <= 1e-9 * scale
        assert (fm[rows, ci] >= fm.max(1) - 1e-9 * scale).all()


def test_sides_have_the_two_classes(case):
    net, slc, part, db = case
    long = db.lengths > 1e-6 * half_width(slc)
    m, n = db.midpoints()[long], db.normals()[long]
    delta = 1e-7 * half_width(slc)
    left = labels(model_out(net, slc, m - delta * n))
    right = labels(model_out(net, slc, m + delta * n))
    np.testing.assert_array_equal(left, db.classes[long, 0])
    np.testing.assert_array_equal(right, db.classes[long, 1])
    assert (db.classes[:, 0] < db.classes[:, 1]).all()


def _random_lines(slc: sc.Slice, n_lines: int, seed: int):
    rng = np.random.default_rng(seed)
    c = slc.domain.mean(0)
    rho = float(np.hypot(*(slc.domain - c).T).max())
    theta = rng.uniform(0, np.pi, n_lines)
    p = rng.uniform(-rho, rho, n_lines)
    nrm = np.stack([np.cos(theta), np.sin(theta)], 1)
    tan = np.stack([-np.sin(theta), np.cos(theta)], 1)
    return c, rho, p, nrm, tan


def _inside(slc: sc.Slice, pts: np.ndarray) -> np.ndarray:
    d = slc.domain
    e = np.roll(d, -1, 0) - d
    cr = e[None, :, 0] * (pts[:, None, 1] - d[None, :, 1]) - e[None, :, 1] * (pts[:, None, 0] - d[None, :, 0])
    return (cr > 0).all(1)


def test_length_matches_line_crossings(case):
    """Cauchy-Crofton: length = pi * rho * E[#crossings of a random line], with crossings counted
    by dense evaluation of the real model along each line; per line, the count also matches the
    segments' exact crossings."""
    net, slc, part, db = case
    n_lines, n_pts = 400, 1500
    c, rho, p, nrm, tan = _random_lines(slc, n_lines, seed=1)
    s = np.linspace(-rho, rho, n_pts)
    pts = c + p[:, None, None] * nrm[:, None] + s[None, :, None] * tan[:, None]
    flat = pts.reshape(-1, 2)
    ins = _inside(slc, flat).reshape(n_lines, n_pts)
    lab = labels(model_out(net, slc, flat)).reshape(n_lines, n_pts)
    both = ins[:, 1:] & ins[:, :-1]
    sampled = ((lab[:, 1:] != lab[:, :-1]) & both).sum(1)
    # exact crossings of each line with the segments
    a = ((db.segments[None, :, 0] - c) * nrm[:, None]).sum(-1) - p[:, None]
    b = ((db.segments[None, :, 1] - c) * nrm[:, None]).sum(-1) - p[:, None]
    exact = ((a > 0) != (b > 0)).sum(1)
    assert (exact == sampled).mean() >= 0.97
    est = np.pi * rho * sampled.mean()
    se = np.pi * rho * sampled.std(ddof=1) / np.sqrt(n_lines)
    assert abs(est - db.length) <= 4 * se + 1e-3 * db.length, (est, se, db.length)


# --------------------------------------------------------------------------- structure
def test_polylines_chain_all_segments(case):
    net, slc, part, db = case
    lens = [float(np.hypot(*np.diff(pl, axis=0).T).sum()) for pl in db.polylines]
    assert sum(lens) == pytest.approx(db.length, rel=1e-9)
    assert len(db.closed) == len(db.polylines)
    assert db.segment_polyline.shape == (len(db),)
    long = db.lengths > 1e-6 * half_width(slc)
    assert (db.segment_polyline[long] >= 0).all()
    # every segment lies between two consecutive points of its polyline
    for s in np.flatnonzero(long):
        pl = db.polylines[db.segment_polyline[s]]
        pairs = np.stack([pl[:-1], pl[1:]], 1)
        d = np.abs(pairs - db.segments[s]).max((1, 2))  # walked in the segment's own direction
        assert d.min() <= 1e-7 * half_width(slc)
    for pl, closed in zip(db.polylines, db.closed):
        assert pl.ndim == 2 and pl.shape[1] == 2 and len(pl) >= 2
        assert closed == bool(np.array_equal(pl[0], pl[-1]))
    assert 1 <= db.num_components <= len(db.polylines)
    assert db.segments.shape == (len(db), 2, 2)
    assert db.regions.shape == (len(db),) and (db.regions >= 0).all()
    assert db.edges.shape == (len(db),)


def test_segments_lie_in_their_regions(case):
    net, slc, part, db = case
    reg = part.locate(db.midpoints())
    inside = db.edges < 0
    np.testing.assert_array_equal(reg[inside], db.regions[inside])


def test_class_pairs_partition_the_boundary(case):
    net, slc, part, db = case
    pairs = {tuple(p) for p in db.classes.tolist()}
    total = 0.0
    for i, j in pairs:
        sub = part.decision_boundary(classes=(j, i))
        assert (sub.classes == [i, j]).all()
        total += sub.length
    assert total == pytest.approx(db.length, rel=1e-12)


def test_level_set_of_one_output(case):
    net, slc, part, db = case
    k = part.num_outputs - 1
    f = model_out(net, slc, part.centroids())[:, k]
    value = float(np.median(f))
    ls = part.level_set(output=k, value=value)
    assert ls.kind == "level_set" and len(ls) > 0
    u, x = ls.sample(300, seed=2)
    g = model_out(net, slc, np.concatenate([u, ls.midpoints()]))[:, k]
    assert np.abs(g - value).max() <= 1e-9 * max(1.0, float(np.abs(f).max()))
    delta = 1e-7 * half_width(slc)
    long = ls.lengths > 1e-6 * half_width(slc)
    m, n = ls.midpoints()[long], ls.normals()[long]
    assert (model_out(net, slc, m - delta * n)[:, k] < value).all()
    assert (model_out(net, slc, m + delta * n)[:, k] > value).all()
    assert (ls.classes == [0, 1]).all()


def test_single_output_boundary_is_level_set():
    net = mlp(11, 2, 1)
    part = sc.partition(net, sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2)))
    for t in (0.0, 0.3):
        db = part.decision_boundary(threshold=t)
        ls = part.level_set(0, t)
        assert len(db) > 0
        np.testing.assert_array_equal(db.segments, ls.segments)
        np.testing.assert_array_equal(db.classes, ls.classes)
        assert db.length == ls.length and db.kind == "threshold"


def test_sample(case):
    net, slc, part, db = case
    u, x = db.sample(2000, seed=3)
    u2, _ = db.sample(2000, seed=3)
    np.testing.assert_array_equal(u, u2)
    assert u.shape == (2000, 2)
    np.testing.assert_allclose(x, slc.to_input(u))
    # every point lies on a segment
    a, b = db.segments[:, 0], db.segments[:, 1]
    d = b - a
    t = np.clip(((u[:, None] - a[None]) * d[None]).sum(-1) / np.maximum((d * d).sum(-1), 1e-300), 0, 1)
    dist = np.hypot(*(a[None] + t[..., None] * d[None] - u[:, None]).transpose(2, 0, 1)).min(1)
    assert dist.max() <= 1e-12 * half_width(slc)
    # uniform by arc length: the share of points on each polyline matches its share of the length
    seg = np.argmin(np.hypot(*(a[None] + t[..., None] * d[None] - u[:, None]).transpose(2, 0, 1)), 1)
    pid = db.segment_polyline[seg]
    share = np.bincount(pid, minlength=len(db.polylines)) / len(u)
    expected = np.bincount(db.segment_polyline, weights=db.lengths, minlength=len(db.polylines)) / db.length
    assert np.abs(share - expected).max() <= 4 * np.sqrt(0.25 / len(u)) + 1e-12
    assert db.sample(0)[0].shape == (0, 2)


def test_repr_and_len(case):
    net, slc, part, db = case
    r = repr(db)
    assert r.startswith("DecisionBoundary(") and "segments" in r and "length" in r
    assert len(db) == db.num_segments == len(db.segments)


def test_partition_method_delegates():
    net = mlp(3, 2, 3)
    part = sc.partition(net, sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2)))
    a, b = part.decision_boundary(classes=(0, 1)), decision_boundary(part, classes=(0, 1))
    np.testing.assert_array_equal(a.segments, b.segments)
    c, d = part.level_set(output=2, value=0.1), level_set(part, output=2, value=0.1)
    np.testing.assert_array_equal(c.segments, d.segments)


# --------------------------------------------------------------------------- known boundaries
def _on_polyline(pts: np.ndarray, corners: np.ndarray) -> np.ndarray:
    a, b = corners[:-1], corners[1:]
    d = b - a
    t = np.clip(((pts[:, None] - a[None]) * d[None]).sum(-1) / (d * d).sum(-1), 0, 1)
    return np.hypot(*(a[None] + t[..., None] * d[None] - pts[:, None]).transpose(2, 0, 1)).min(1)


def test_v_shape():
    # f = y - |x| + 0.5 > 0 above the V with its tip at (0, -0.5)
    net = hand(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1),
               weights=[([[1, 0], [-1, 0], [0, 1], [0, -1]], [0, 0, 0, 0]), ([[-1, -1, 1, -1]], [0.5])])
    db = sc.partition(net, sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2))).decision_boundary()
    assert db.length == pytest.approx(4 * np.sqrt(2), rel=1e-12)
    assert len(db.polylines) == 1 and not db.closed[0] and db.num_components == 1
    pl = db.polylines[0]
    if pl[0, 0] > 0:
        pl = pl[::-1]
    corners = np.array([[-2, 1.5], [0, -0.5], [2, 1.5]])
    np.testing.assert_allclose(pl[[0, -1]], corners[[0, -1]], atol=1e-12)
    assert _on_polyline(pl, corners).max() <= 1e-12
    assert np.abs(pl - corners[1]).max(1).min() <= 1e-12  # the tip is a polyline vertex
    # below the V (class 0) is on the left of every segment
    n = db.normals()
    assert (n[:, 1] > 0).all()


def test_closed_triangle_on_region_edges():
    # f = max(l1, l2, l3), l_i = n_i . x - 1: the zero set is a triangle, two of whose sides lie on
    # region edges made by the units relu(+-l2), relu(+-l3)
    nrm = np.array([[np.cos(a), np.sin(a)] for a in (0, 2 * np.pi / 3, 4 * np.pi / 3)])
    w1 = np.array([nrm[0] - nrm[1], nrm[1], -nrm[1], nrm[2], -nrm[2]])
    net = hand(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 1),
               weights=[(w1, [0, -1, 1, -1, 1]),
                        ([[1, 1, -1, -1, 1], [0, 0, 0, 1, -1], [0, 0, 0, -1, 1]], [0, 0, 0]),
                        ([[1, 1, -1]], [0])])
    part = sc.partition(net, sc.Slice.box(xlim=(-3, 3), ylim=(-3, 3)))
    db = part.decision_boundary()
    assert (db.edges >= 0).any()  # some of it runs along region edges
    assert db.length == pytest.approx(6 * np.sqrt(3), rel=1e-12)
    assert len(db.polylines) == 1 and db.closed.tolist() == [True] and db.num_components == 1
    tri = np.array([[1, np.sqrt(3)], [-2, 0], [1, -np.sqrt(3)], [1, np.sqrt(3)]])
    pl = db.polylines[0]
    assert _on_polyline(pl, tri).max() <= 1e-12
    for corner in tri[:3]:
        assert np.abs(pl - corner).max(1).min() <= 1e-12
    # inside (f <= 0, class 0) on the left: the loop runs counter-clockwise
    area = 0.5 * np.sum(pl[:-1, 0] * pl[1:, 1] - pl[1:, 0] * pl[:-1, 1])
    assert area == pytest.approx(3 * np.sqrt(3), rel=1e-12)


def test_three_classes_meet_in_three_rays():
    # f_c = w_c . (x, y) with unit w_c at 30, 150, 270 degrees, x and y made by relu(+-x), relu(+-y):
    # the argmax boundary is three rays from the origin (the 0|1 ray on the region edge x = 0), not
    # the three whole lines f_i = f_j that the original toolbox returned
    ang = np.deg2rad([30, 150, 270])
    w = np.stack([np.cos(ang), np.sin(ang)], 1)
    net = hand(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3),
               weights=[([[1, 0], [-1, 0], [0, 1], [0, -1]], [0, 0, 0, 0]),
                        (w @ np.array([[1.0, -1, 0, 0], [0, 0, 1, -1]]), [0, 0, 0])])
    box = sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2))
    part = sc.partition(net, box)
    db = part.decision_boundary()
    ends = {(0, 1): [0, 2], (0, 2): [2, -2 / np.sqrt(3)], (1, 2): [-2, -2 / np.sqrt(3)]}
    assert db.length == pytest.approx(2 + 2 * np.hypot(2, 2 / np.sqrt(3)), rel=1e-12)
    assert db.num_components == 1 and len(db.polylines) == 3 and not db.closed.any()
    assert {tuple(c) for c in db.classes.tolist()} == set(ends)
    assert (db.edges[(db.classes == [0, 1]).all(1)] >= 0).all()  # the 0|1 ray runs along x = 0
    for pl in db.polylines:  # every polyline is one ray: from the junction to the border, or back
        a, b = (pl[0], pl[-1]) if np.abs(pl[0]).max() < 1e-12 else (pl[-1], pl[0])
        np.testing.assert_allclose(a, 0, atol=1e-12)
        assert min(np.abs(b - e).max() for e in ends.values()) <= 1e-12
    long = db.lengths > 1e-9
    m, n = db.midpoints()[long], db.normals()[long]
    np.testing.assert_array_equal(labels(model_out(net, box, m - 1e-7 * n)), db.classes[long, 0])
    np.testing.assert_array_equal(labels(model_out(net, box, m + 1e-7 * n)), db.classes[long, 1])
    for (i, j), e in ends.items():
        sub = part.decision_boundary(classes=(j, i))
        assert sub.length == pytest.approx(np.hypot(*e), rel=1e-12) and sub.num_components == 1
        np.testing.assert_allclose(np.sort(np.abs(sub.polylines[0]).max(1)), [0, np.abs(e).max()], atol=1e-12)
    # away from the junction one class wins everywhere: an empty boundary, not an error
    far = sc.partition(net, sc.Slice.box(xlim=(5, 7), ylim=(5, 7))).decision_boundary()
    assert isinstance(far, DecisionBoundary) and far.kind == "argmax"
    assert len(far) == 0 and far.length == 0.0 and far.polylines == [] and far.num_components == 0


def test_diamond_level_set():
    net = hand(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1),
               weights=[([[1, 0], [-1, 0], [0, 1], [0, -1]], [0, 0, 0, 0]), ([[1, 1, 1, 1]], [0])])
    part = sc.partition(net, sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2)))
    ls = part.level_set(0, value=1.0)
    assert ls.length == pytest.approx(4 * np.sqrt(2), rel=1e-12)
    assert ls.closed.tolist() == [True]
    assert len(part.level_set(0, value=10.0)) == 0  # outside the domain


def test_boundary_along_a_region_edge():
    # f0 = relu(x), f1 = relu(-x): they tie (at 0) all along the region edge x = 0
    net = hand(nn.Linear(2, 2), nn.ReLU(), weights=[([[1, 0], [-1, 0]], [0, 0])])
    part = sc.partition(net, sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2)))
    db = part.decision_boundary()
    assert len(db) == 1 and db.edges[0] >= 0
    assert db.length == pytest.approx(4.0, rel=1e-12)
    np.testing.assert_allclose(np.sort(db.segments[0, :, 1]), [-2, 2])
    np.testing.assert_allclose(db.segments[0, :, 0], 0, atol=1e-15)
    assert db.classes.tolist() == [[0, 1]]
    assert db.normals()[0, 0] < 0  # class 0 (x > 0) on the left, class 1 on the right


def test_ties_on_whole_regions_are_not_boundary():
    box = sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2))
    # [0, relu(x)]: tie on x <= 0 goes to class 0; the boundary is the region edge x = 0
    net = hand(nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 2), weights=[([[1, 0]], [0]), ([[0], [1]], [0, 0])])
    db = sc.partition(net, box).decision_boundary()
    assert db.length == pytest.approx(4.0) and db.classes.tolist() == [[0, 1]]
    # [relu(x), 0]: class 0 everywhere (tie on x <= 0), no boundary at all
    net = hand(nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 2), weights=[([[1, 0]], [0]), ([[1], [0]], [0, 0])])
    assert len(sc.partition(net, box).decision_boundary()) == 0
    # identical logits: no boundary; a duplicated class never wins
    net = hand(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 3),
               weights=[([[1, 0], [-1, 0]], [0, 0]), ([[1, 0], [1, 0], [0, 1]], [0, 0, 0])])
    db = sc.partition(net, box).decision_boundary()
    assert db.classes.tolist() == [[0, 2]] and db.length == pytest.approx(4.0)
    assert len(sc.partition(net, box).decision_boundary(classes=(0, 1))) == 0
    # a one-output net that is constant at the threshold on a region: no 2-D level set
    net = hand(nn.Linear(2, 1), nn.ReLU(), weights=[([[1, 0]], [0])])
    ls = sc.partition(net, box).level_set(0, 0.0)
    assert ls.length == pytest.approx(4.0)


def test_two_components():
    # f = |x| - 0.5: class 1 on both sides of a stripe
    net = hand(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1), weights=[([[1, 0], [-1, 0]], [0, 0]), ([[1, 1]], [-0.5])])
    db = sc.partition(net, sc.Slice.box()).decision_boundary()
    assert db.num_components == 2 and len(db.polylines) == 2 and db.length == pytest.approx(4.0)
    np.testing.assert_allclose(np.sort(np.abs(db.segments[:, :, 0]).ravel()), 0.5)


def test_empty_boundary():
    net = hand(nn.Linear(2, 1), weights=[([[1, 0]], [10])])
    db = sc.partition(net, sc.Slice.box()).decision_boundary()
    assert isinstance(db, DecisionBoundary)
    assert len(db) == 0 and db.length == 0.0 and db.segments.shape == (0, 2, 2)
    assert db.polylines == [] and db.closed.shape == (0,) and db.num_components == 0
    assert db.classes.shape == (0, 2) and not db
    assert "0 segments" in repr(db)
    with pytest.raises(BoundaryError, match="empty"):
        db.sample(3)
    assert db.sample(0)[0].shape == (0, 2)


# --------------------------------------------------------------------------- errors
@pytest.fixture(scope="module")
def part3():
    return sc.partition(mlp(3, 2, 3), sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(classes=(0, 3)), r"classes.*\[0, 3\)"),
        (dict(classes=(-1, 2)), r"classes.*\[0, 3\)"),
        (dict(classes=(1, 1)), r"two different"),
        (dict(classes=(0, 1, 2)), r"pair"),
        (dict(classes=5), r"pair"),
        (dict(classes=(0.0, 1)), r"integer"),
        (dict(classes=(True, 2)), r"integer"),
        (dict(classes=(torch.tensor(1.0), 2)), r"integer"),
        (dict(classes=(torch.tensor(True), 2)), r"integer"),
        (dict(threshold=0.5), r"threshold.*one output"),
        (dict(threshold=float("nan")), r"threshold.*finite"),
    ],
)
def test_bad_decision_boundary_arguments(part3, kwargs, match):
    with pytest.raises(BoundaryError, match=match) as exc:
        part3.decision_boundary(**kwargs)
    assert isinstance(exc.value, ValueError) and isinstance(exc.value, SplineCamError)


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(output=3), r"output.*\[0, 3\)"), (dict(output=-1), r"output.*\[0, 3\)"),
     (dict(output="a"), "integer"), (dict(value=float("inf")), "finite")],
)
def test_bad_level_set_arguments(part3, kwargs, match):
    with pytest.raises(BoundaryError, match=match):
        part3.level_set(**kwargs)


def test_integer_indices_of_numpy_and_torch(part3):
    ref = part3.decision_boundary(classes=(1, 2))
    assert len(ref) > 0
    for classes in [(np.int64(2), np.int32(1)), np.array([1, 2]), torch.tensor([2, 1]), (torch.tensor(1), 2)]:
        np.testing.assert_array_equal(part3.decision_boundary(classes=classes).segments, ref.segments)
    ls = part3.level_set(output=2, value=0.1)
    for k in (np.int64(2), torch.tensor(2)):
        np.testing.assert_array_equal(part3.level_set(output=k, value=0.1).segments, ls.segments)


def test_one_output_class_range():
    part = sc.partition(mlp(1, 2, 1), sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2)))
    assert part.decision_boundary(classes=(1, 0)).length == pytest.approx(part.decision_boundary().length)
    with pytest.raises(BoundaryError, match=r"\[0, 2\).*one output"):
        part.decision_boundary(classes=(0, 2))


def test_no_outputs(part3):
    a, b = part3.output_affine
    p0 = sc.Partition(
        slice=part3.slice, vertices=part3.vertices, region_ptr=part3.region_ptr,
        region_vertices=part3.region_vertices, edges=part3.edges, edge_regions=part3.edge_regions,
        edge_layer=part3.edge_layer, edge_unit=part3.edge_unit, output_affine=(a[:, :0], b[:, :0]),
        codes=part3.codes, layer_names=part3.layer_names,
    )
    assert p0.num_outputs == 0
    with pytest.raises(BoundaryError, match="num_outputs == 0"):
        p0.decision_boundary()
    with pytest.raises(BoundaryError, match="num_outputs == 0"):
        p0.level_set()


# --------------------------------------------------------------------------- chunked argmax cells
def _boundary_arrays(db: DecisionBoundary) -> list[np.ndarray]:
    return [db.segments, db.regions, db.classes, db.edges, db.closed, db.segment_polyline, *db.polylines]


@pytest.mark.parametrize("n_out", [1, 3])
def test_chunked_cells_give_the_one_shot_result(monkeypatch, n_out):
    """Clipping the regions in chunks of 7 (and keeping only the cells the boundary can touch) gives
    bit for bit the boundary and the cells of clipping all regions at once."""
    from splinecam.analysis import boundary as bd

    part = sc.partition(mlp(3, 2, n_out, width=24), sc.Slice.box((-2, 2), (-2, 2)))
    monkeypatch.setattr(bd, "CELL_CHUNK", part.num_regions + 1)
    one = part.decision_boundary(threshold=0.1 if n_out == 1 else 0.0)
    full = bd._cells_for_part(part, threshold=0.1)
    monkeypatch.setattr(bd, "CELL_CHUNK", 7)
    many = part.decision_boundary(threshold=0.1 if n_out == 1 else 0.0)
    chunked = bd._cells_for_part(part, threshold=0.1)
    assert len(one) > 0 and one.num_polylines == many.num_polylines
    for x, y in zip(_boundary_arrays(one), _boundary_arrays(many)):
        np.testing.assert_array_equal(x, y)
    for name in ("reg", "cls", "nv", "tol", "p_edge", "p_lo", "p_hi", "p_cell", "p_cls"):
        np.testing.assert_array_equal(getattr(full, name), getattr(chunked, name))
    valid = np.arange(full.xy.shape[1])[None] < full.nv[:, None]
    np.testing.assert_array_equal(full.xy[valid], chunked.xy[:, : full.xy.shape[1]][valid])
    np.testing.assert_allclose(full.area, chunked.area, rtol=1e-13, atol=0)
    # the boundary's cells: only some regions, and the same segments from them
    a, b = bd._pseudo_logits(part, "argmax" if n_out > 1 else "level", 0, 0.1)
    c, b = bd._centred(part, a, b)
    sparse = bd._argmax_cells(part, a, b, c, boundary_only=True)
    assert 0 < len(sparse.reg) < len(full.reg)
    # ... and the same pieces of region edges with another class on each side
    sd = sparse.p_cls[:, 0] != sparse.p_cls[:, 1]
    fd = full.p_cls[:, 0] != full.p_cls[:, 1]
    for name in ("p_edge", "p_lo", "p_hi", "p_cls"):
        np.testing.assert_array_equal(getattr(sparse, name)[sd], getattr(full, name)[fd])
    np.testing.assert_array_equal(sparse.reg[sparse.p_cell[sd]], full.reg[full.p_cell[fd]])
