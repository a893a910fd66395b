"""Many slices in one call (``sc.partition_many`` / ``sc.iter_partitions`` on one machine).

Every partition of a batched run must equal what ``sc.partition`` gives for its slice alone: the
same regions (matched by locating each region's interior point), the same vertices up to 1e-12 of
the domain's scale, the same affine maps and codes, on MLPs, CNNs, custom modules and degenerate
networks, and for slices of very different scales and positions in one call (each region must use
its own slice's tolerances). The batched run must really be one engine run (one trace).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import splinecam as sc
import splinecam.engine.run as engine
import splinecam.many as many
from splinecam.engine.slices import start_state


def _match_vertices(va: np.ndarray, vb: np.ndarray, tol: float) -> None:
    """Every vertex of ``va`` has one of ``vb`` within ``tol``, one to one."""
    assert va.shape == vb.shape
    near = np.empty(len(va), dtype=np.int64)
    for s in range(0, len(va), 2048):
        d = np.abs(va[s:s + 2048, None, :] - vb[None]).max(-1)
        near[s:s + 2048] = d.argmin(1)
        assert d.min(1).max() <= tol, f"vertex {s + int(d.min(1).argmax())} is {d.min(1).max():.3g} away"
    assert len(np.unique(near)) == len(va), "two vertices matched to one"


def assert_same_partition(a: sc.Partition, b: sc.Partition) -> None:
    """``a`` and ``b`` are the same partition of the same slice (regions in any order)."""
    assert a.num_regions == b.num_regions
    assert a.num_vertices == b.num_vertices
    assert a.num_edges == b.num_edges
    dom = b.slice.domain
    scale = float(np.abs(dom - dom.mean(0)).max())
    _match_vertices(a.vertices, b.vertices, 1e-12 * scale)
    # the same regions: an interior point of each region of a lies in one region of b, one to one
    m = b.locate(a.interior_points(1, seed=0, margin=0.3)[:, 0])
    assert (m >= 0).all() and len(np.unique(m)) == a.num_regions
    np.testing.assert_allclose(a.areas(), b.areas()[m], rtol=1e-9, atol=1e-14 * scale**2)
    aa, ba = a.output_affine
    ab, bb = b.output_affine
    amp = np.abs(ab).max() * scale + np.abs(bb).max() + 1e-300
    assert np.abs(aa - ab[m]).max() * scale <= 1e-9 * amp
    assert np.abs(ba - bb[m]).max() <= 1e-9 * amp
    assert len(a.codes) == len(b.codes)
    for ca, cb in zip(a.codes, b.codes):
        np.testing.assert_array_equal(ca, cb[m])
    assert a.layer_names == b.layer_names and a.unit_shapes == b.unit_shapes
    assert a.output_shape == b.output_shape
    assert a.slice is not None


def check_many(model: nn.Module, slices: list[sc.Slice], **kw) -> list[sc.Partition]:
    parts = sc.partition_many(model, slices, **kw)
    assert len(parts) == len(slices)
    for p, s in zip(parts, slices):
        assert p.slice is s
        assert_same_partition(p, sc.partition(model, s))
    return parts


def _anchored(shape: tuple[int, ...], n: int, pad: float, seed: int = 0) -> list[sc.Slice]:
    g = torch.Generator().manual_seed(seed)
    return [sc.Slice.from_anchors(torch.randn(shape, generator=g)[None], pad=pad, seed=seed + i) for i in range(n)]


# ----------------------------------------------------------------------------- equal to sc.partition


@pytest.mark.parametrize("seed", range(3))
def test_mlp_slices_equal_single_partitions(seed, make_mlp, make_exactness_check):
    model = make_mlp(seed, (10, 24, 24, 24, 3))
    parts = check_many(model, _anchored((10,), 12, pad=1.0, seed=seed))
    assert sum(p.num_regions for p in parts) > 12 * 5
    for p in parts[:3]:
        make_exactness_check(model, p, points_per_region=2)


@pytest.mark.parametrize("act", ["relu", "leaky"])
def test_2d_mlp_on_boxes_polygons_and_far_slices(act, make_mlp):
    """Domains with different vertex counts (box, triangle, hexagon), in different places."""
    model = make_mlp(1, (2, 16, 16, 2), act=act)
    hexagon = np.stack([np.cos(np.arange(6) * np.pi / 3), np.sin(np.arange(6) * np.pi / 3)], 1)
    slices = [
        sc.Slice.box((-2, 2), (-2, 2)),
        sc.Slice(np.zeros(2), np.eye(2), [[-1, -1], [2, -1], [0, 2]]),
        sc.Slice(np.array([0.5, -0.3]), np.array([[1.0, 0.3], [0.2, 1.0]]), 1.5 * hexagon),
        sc.Slice.box((30, 34), (-1, 3)),
        sc.Slice.box((-0.1, 0.1), (0.2, 0.3)),
    ]
    check_many(model, slices)


@pytest.mark.parametrize("arch", ["strided", "dilated_groups", "adaptive16"])
def test_cnn_slices_equal_single_partitions(arch, make_cnn):
    model, shape = make_cnn(0, arch)
    check_many(model, _anchored(shape, 4, pad=0.5))


@pytest.mark.parametrize("kind", ["residual", "cat", "functional"])
def test_custom_modules(kind, make_custom):
    model = make_custom(0, kind)
    check_many(model, [sc.Slice.box((-2, 2), (-2, 2)), sc.Slice.box((0, 1), (-3, -1)), sc.Slice.box((-5, 5), (-5, 5))])


def test_degenerate_networks(make_mlp, make_one_layer, make_lines):
    """Bias-free nets (all lines through the origin), concurrent, duplicate, opposite and dead units."""
    boxes = [sc.Slice.box((-1, 1), (-1, 1)), sc.Slice.box((0, 2), (0, 2)), sc.Slice.box((-1, 1), (0, 1))]
    check_many(make_mlp(0, (2, 6, 6, 6, 2), bias=False), boxes)
    w, b = make_lines([0.5, 0.25], [10.0, 70.0, 130.0, 100.0, 160.0])
    check_many(make_one_layer(w, b), boxes + [sc.Slice.box((0.25, 0.75), (0.0, 0.5))])
    base_w = np.array([[1.0, 0.5], [-0.3, 1.0], [0.7, -0.7], [0.0, 0.0], [0.4, 0.4]])
    base_b = np.array([0.2, -0.4, 0.1, 0.0, -5.0])
    w = np.concatenate([base_w, base_w[:1], -base_w[:1], 2.5 * base_w[1:2]])
    b = np.concatenate([base_b, base_b[:1], -base_b[:1], 2.5 * base_b[1:2]])
    check_many(make_one_layer(w, b, outputs=2), boxes)
    # lines through a domain corner, and along a border
    w, b = make_lines([1.0, 1.0], [45.0, 0.0, -45.0])
    check_many(make_one_layer(w, b), boxes)


def test_bias_free_cnn_through_the_origin(make_cnn):
    model, shape = make_cnn(1, "strided")
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.zero_()
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.zero_()
                m.bias.zero_()
    g = torch.Generator().manual_seed(3)
    slices = [sc.Slice.from_anchors([torch.zeros(shape), torch.randn(shape, generator=g)], pad=0.5, seed=i)
              for i in range(3)]
    check_many(model, slices)


def test_each_slice_uses_its_own_tolerances(make_one_layer):
    """A tiny slice (1e-4) near the origin with lines crossing 1e-5 apart, together with a huge slice
    (1e4) and one far away (1e9): a shared snapping tolerance (of the largest domain) or noise floor
    (1e-14 of the largest layer input) would snap the tiny slice's crossings together."""
    rng = np.random.default_rng(0)
    th = rng.uniform(0, np.pi, 12)
    normals = np.stack([-np.sin(th), np.cos(th)], 1)
    pts = rng.uniform(-1e-4, 1e-4, (12, 2))
    model = make_one_layer(normals, -(normals * pts).sum(1), outputs=2)
    tiny = sc.Slice.box((-1e-4, 1e-4), (-1e-4, 1e-4))
    huge = sc.Slice.box((-1e4, 1e4), (-1e4, 1e4))
    far = sc.Slice.box((1e9 - 1.0, 1e9 + 1.0), (-1.0, 1.0))
    parts = check_many(model, [tiny, huge, tiny, far])
    assert parts[0].num_regions > 40  # (12 lines in general position inside the tiny box)
    parts[0].verify(model).raise_if_failed()


# ----------------------------------------------------------------------------- one engine run


def test_one_trace_and_one_engine_run(monkeypatch, make_mlp):
    model = make_mlp(0, (10, 16, 16, 2))
    calls = {"run": 0, "trace": 0}

    def counting(name, fn):
        def wrapper(*a, **k):
            calls[name] += 1
            return fn(*a, **k)
        return wrapper

    monkeypatch.setattr(many, "run_program", counting("run", many.run_program))
    monkeypatch.setattr(many, "trace_model", counting("trace", many.trace_model))
    parts = sc.partition_many(model, _anchored((10,), 20, pad=1.0))
    assert calls == {"run": 1, "trace": 1}
    assert len(parts) == 20 and all(p.num_regions >= 1 for p in parts)


def test_fast_mlp_paths_run_on_many_slices(monkeypatch, make_mlp):
    """The sparse and tail paths run on the regions of all slices; the one-parent path needs one region."""
    model = make_mlp(2, (10, 32, 32, 32, 3))
    calls = {"_tail": 0, "_one_parent_post": 0}
    for name in calls:
        orig = getattr(engine, name)

        def counting(*a, _orig=orig, _name=name, **k):
            calls[_name] += 1
            return _orig(*a, **k)

        monkeypatch.setattr(engine, name, counting)
    slices = _anchored((10,), 6, pad=1.0)
    parts = sc.partition_many(model, slices)
    assert calls["_tail"] > 0 and calls["_one_parent_post"] == 0
    monkeypatch.undo()
    for p, s in zip(parts, slices):
        assert_same_partition(p, sc.partition(model, s))


def test_batches_bound_the_regions_held(monkeypatch, make_mlp):
    """With a small region budget the slices go in several batches; iter_partitions yields in order."""
    model = make_mlp(0, (10, 16, 16, 2))
    slices = _anchored((10,), 15, pad=1.0)
    ref = sc.partition_many(model, slices)
    monkeypatch.setattr(many, "BATCH_REGIONS", 60)
    monkeypatch.setattr(many, "_FIRST_BATCH", 2)
    runs = []
    orig = many.run_program
    monkeypatch.setattr(many, "run_program", lambda m, p, s, *a, **k: runs.append(len(s)) or orig(m, p, s, *a, **k))
    got = list(sc.iter_partitions(model, slices))
    assert [i for i, _ in got] == list(range(15))
    assert len(runs) > 2 and runs[0] == 2 and sum(runs) == 15
    per_slice = sum(p.num_regions for p in ref) / 15
    assert max(runs[1:]) <= max(1, int(60 / min(p.num_regions for p in ref[:2])) + 1) or per_slice < 1
    for (_, p), r in zip(got, ref):
        assert_same_partition(p, r)
    # a fixed number of slices per batch
    runs.clear()
    parts = sc.partition_many(model, slices, chunk_size=4)
    assert runs == [4, 4, 4, 3]
    for p, r in zip(parts, ref):
        assert_same_partition(p, r)


def test_vertex_identifiers_differ_between_slices():
    slices = [sc.Slice.box((-1, 1), (-1, 1)), sc.Slice.box((-1, 1), (-1, 1)),
              sc.Slice(np.zeros(2), np.eye(2), [[0, 0], [1, 0], [0, 1]])]
    st = start_state(slices, torch.float64, torch.device("cpu"))
    one = start_state(slices[:1], torch.float64, torch.device("cpu"))
    assert torch.equal(st.poly0.hsh[0], one.poly0.hsh[0])  # slice 0 keeps the single-slice identifiers
    assert st.poly0.nv.tolist() == [4, 4, 3]
    ids = [set(st.poly0.hsh[i, : int(st.poly0.nv[i])].tolist()) for i in range(3)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert float(st.radius[2]) == pytest.approx(2 / 3)  # per slice, in its centred coordinates


def test_seconds_and_model_left_alone(make_mlp):
    model = make_mlp(0, (10, 8, 2)).float()
    before = copy.deepcopy(model.state_dict())
    parts = sc.partition_many(model, _anchored((10,), 3, pad=1.0))
    assert all(p.seconds > 0 for p in parts)
    assert not model.training and next(model.parameters()).dtype == torch.float32
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_progress_bar(make_mlp, capsys):
    parts = sc.partition_many(make_mlp(0, (10, 8, 2)), _anchored((10,), 3, pad=1.0), progress=True)
    assert len(parts) == 3
    assert "3/3" in capsys.readouterr().err


# ----------------------------------------------------------------------------- bad input


def test_empty_list_gives_empty_result(make_mlp):
    model = make_mlp(0, (2, 4, 1))
    assert sc.partition_many(model, []) == []
    assert list(sc.iter_partitions(model, [])) == []


def test_slices_of_different_input_shapes(make_mlp):
    model = make_mlp(0, (10, 4, 1))
    slices = _anchored((10,), 3, pad=1.0) + _anchored((12,), 1, pad=1.0)
    with pytest.raises(sc.SliceError, match=r"slices\[0\] has input shape \(10,\) but slices\[3\] has \(12,\)"):
        sc.partition_many(model, slices)
    with pytest.raises(sc.SliceError, match=r"slices\[3\]"):
        sc.iter_partitions(model, slices)  # checked at the call, before the first result


def test_non_slice_elements(make_mlp):
    model = make_mlp(0, (2, 4, 1))
    with pytest.raises(sc.SliceError, match=r"slices\[1\] is a ndarray, not a splinecam.Slice"):
        sc.partition_many(model, [sc.Slice.box(), np.zeros((4, 2))])
    with pytest.raises(sc.SliceError, match="list of splinecam.Slice"):
        sc.partition_many(model, sc.Slice.box())
    with pytest.raises(ValueError, match="chunk_size"):
        sc.partition_many(model, [sc.Slice.box()], chunk_size=0)


def test_model_errors_are_those_of_partition(make_mlp):
    model = make_mlp(0, (2, 4, 1))
    with pytest.raises(sc.UnsupportedModelError, match="training mode"):
        sc.partition_many(model.train(), [sc.Slice.box()])
    model.eval()
    with pytest.raises(sc.SliceError, match="does not fit the model"):
        sc.partition_many(model, _anchored((3,), 2, pad=1.0))
    with pytest.raises(sc.NotPiecewiseLinearError):
        sc.partition_many(nn.Sequential(nn.Linear(2, 3), nn.GELU()).eval(), [sc.Slice.box()])


def test_client_that_is_not_a_client(make_mlp):
    pytest.importorskip("distributed")
    with pytest.raises(sc.SplineCamError, match="dask.distributed.Client"):
        sc.partition_many(make_mlp(0, (2, 4, 1)), [sc.Slice.box()], client=object())


# ----------------------------------------------------------------------------- every nonlinearity kind

from test_kinds import ELEMENTWISE, EveryLayer, Maxout, _cnn, _mlp  # noqa: E402

BOXES = [sc.Slice.box((-2, 2), (-2, 2)), sc.Slice.box((-0.5, 1.5), (0.0, 0.7)), sc.Slice.box((-4, 1), (-1, 4))]


@pytest.mark.parametrize("act", [a for a in ELEMENTWISE if not isinstance(a, nn.Hardsigmoid)],
                         ids=lambda a: repr(a).replace(" ", ""))
def test_elementwise_kinds_on_many_slices(act):
    check_many(_mlp(act, seed=1), BOXES)


def test_maxout_and_max_pooling_on_many_slices():
    torch.manual_seed(0)
    maxout = nn.Sequential(nn.Linear(2, 18), Maxout(3), nn.Linear(6, 18), Maxout(3), nn.Linear(6, 2)).eval()
    check_many(maxout, BOXES)
    cnn = _cnn(nn.MaxPool2d(3, stride=2, padding=1), 0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 1, 7, 7, generator=g)
    cnn(x[:1])
    cnn.eval()
    check_many(cnn, [sc.Slice.from_anchors(xi[None], pad=1.0, seed=i) for i, xi in enumerate(x)])


def test_a_network_mixing_every_layer_on_many_slices():
    torch.manual_seed(0)
    model = EveryLayer().eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 1, 6, 6, generator=g)
    parts = check_many(model, [sc.Slice.from_anchors(xi[None], pad=1.0, seed=i) for i, xi in enumerate(x)])
    for p in parts:
        p.verify(model).raise_if_failed()


@pytest.mark.parametrize("seed", [2, 3])
def test_steps_with_jumps_keep_their_mended_edges(seed):
    """Later lines cross a jump's edges at different points on its two sides; each slice's result must
    carry the run's jump lines to its Partition (found: 2211 edges instead of 1908 without them)."""
    torch.manual_seed(seed)
    layers = [nn.Linear(2, 12), nn.Hardshrink(0.25), nn.Linear(12, 12), nn.Hardshrink(0.25),
              nn.Linear(12, 12), nn.Hardshrink(0.25), nn.Linear(12, 2)]
    model = nn.Sequential(*layers).eval()
    for p in check_many(model, [sc.Slice.box((-2, 2), (-2, 2)), sc.Slice.box((-1, 1), (0, 2))]):
        p.verify(model).raise_if_failed()
