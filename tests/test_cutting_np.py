"""The numpy twin of the cutting loop (splinecam.engine.cutting_np) is bit-identical to the torch path.

The inputs of every ``_cut_pairs`` call of seeded partitions (ReLU, LeakyReLU, abs, Hardshrink with
its jump lines, a periodic activation with its hash order, maxout, max-pooling; float64 and float32)
are captured and replayed on both backends, and every output is compared with ``torch.equal``; so are
hand-made degenerate cases (lines through vertices, duplicate lines, many lines through one region,
no pairs, one region, a non-convex polygon that takes the general split). Whole partitions under
``SPLINECAM_CUT_BACKEND=numpy`` and ``=torch`` are equal array for array.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn
from test_kinds import Abs, Maxout

import splinecam as sc
from splinecam.engine import cutting, cutting_np, geometry, mlp_paths
from splinecam.engine.geometry import Polygons
from splinecam.engine.kinds import elementwise, groups
from splinecam.layers import Sawtooth

BOX = sc.Slice.box((-2, 2), (-2, 2))
_CALLERS = (cutting, mlp_paths, elementwise, groups)  # every module that calls ``_cut_pairs``


def _mlp(act: nn.Module, seed: int, width: int = 10, depth: int = 3, out: int = 2) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(2, width), copy.deepcopy(act)]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), copy.deepcopy(act)]
    layers.append(nn.Linear(width, out))
    return nn.Sequential(*layers).eval()


def _maxout(seed: int, k: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(2, 6 * k), Maxout(k), nn.Linear(6, 6 * k), Maxout(k), nn.Linear(6, 2)
    ).eval()


def _cnn(seed: int) -> tuple[nn.Module, sc.Slice]:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(3, 3, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(27, 3),
    ).eval()
    x0 = torch.randn(1, 1, 7, 7, generator=torch.Generator().manual_seed(seed))
    return model, sc.Slice.from_anchors(x0, pad=1.5, seed=seed)


def _networks() -> dict[str, tuple[nn.Module, sc.Slice]]:
    return {
        "relu": (_mlp(nn.ReLU(), 0), BOX),
        "relu-wide": (_mlp(nn.ReLU(), 1, width=24, depth=2), BOX),
        "leaky": (_mlp(nn.LeakyReLU(0.1), 2), BOX),
        "abs": (_mlp(Abs(), 3, width=8), BOX),
        "hardshrink": (_mlp(nn.Hardshrink(0.25), 4, width=8), BOX),  # jump lines: edge_hash
        "sawtooth": (_mlp(Sawtooth(1.1), 5, width=8, depth=2), BOX),  # the rank (hash) order
        "maxout": (_maxout(6), BOX),
        "maxpool": _cnn(7),
    }


NETWORKS = _networks()

# ---------------------------------------------------------------------------- helpers


def _assert_same(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    """Two ``_cut_pairs`` results are equal bit for bit, dtypes included."""
    pa, pb = a[0], b[0]
    pairs = [("xy", pa.xy, pb.xy), ("hsh", pa.hsh, pb.hsh), ("lab", pa.lab, pb.lab), ("nv", pa.nv, pb.nv)]
    pairs += list(zip(("owner", "ptr", "lines", "perm"), a[1:], b[1:]))
    for name, x, y in pairs:
        assert x.dtype == y.dtype, (name, x.dtype, y.dtype)
        assert x.shape == y.shape, (name, x.shape, y.shape)
        assert torch.equal(x, y), name
        if x.is_floating_point():  # torch.equal has -0.0 == 0.0: compare the bits too
            assert torch.equal(
                x.view(torch.int64 if x.dtype == torch.float64 else torch.int32),
                y.view(torch.int64 if y.dtype == torch.float64 else torch.int32),
            ), name


def _copy(call: tuple[Any, ...]) -> tuple[Any, ...]:
    return copy.deepcopy(call)


def _replay(call: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Run one captured call on both backends (the torch path forced, the twin directly and through
    the dispatch) and compare."""
    monkeypatch.setattr(geometry, "_JUMP_LINES", list(call["jump"]))
    args, kwargs = call["args"], call["kwargs"]
    monkeypatch.setenv("SPLINECAM_CUT_BACKEND", "torch")
    want = cutting._cut_pairs(*_copy(args), **_copy(kwargs))
    _assert_same(want, cutting_np.cut_pairs(*_copy(args), **_copy(kwargs)))
    monkeypatch.setenv("SPLINECAM_CUT_BACKEND", "numpy")
    _assert_same(want, cutting._cut_pairs(*_copy(args), **_copy(kwargs)))


def _capture(
    model: nn.Module, slc: sc.Slice, monkeypatch: pytest.MonkeyPatch, **kw: Any
) -> list[dict[str, Any]]:
    """The arguments of every ``_cut_pairs`` call of ``sc.partition(model, slc, **kw)`` (torch path),
    with the jump lines set at the time of the call."""
    real = cutting._cut_pairs
    calls: list[dict[str, Any]] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append({"args": _copy(args), "kwargs": _copy(kwargs), "jump": list(geometry._JUMP_LINES)})
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setenv("SPLINECAM_CUT_BACKEND", "torch")
        for mod in _CALLERS:
            m.setattr(mod, "_cut_pairs", spy)
        try:
            sc.partition(model, slc, **kw)
        except RuntimeError as e:  # float32: the cuts are made, assembling them may refuse
            if "cannot be assembled" not in str(e):
                raise
    assert calls
    return calls


def _square(n: int = 1, size: float = 1.0, dtype: torch.dtype = torch.float64) -> Polygons:
    """``n`` copies of the square ``[-size, size]^2`` (distinct vertex identifiers per copy)."""
    xy = torch.tensor([[-size, -size], [size, -size], [size, size], [-size, size]], dtype=dtype)
    xy = xy.repeat(n, 1, 1)
    hsh = geometry._fmix(torch.arange(4 * n, dtype=torch.int64) + 1).reshape(n, 4)
    lab = torch.full((n, 4), -1, dtype=torch.int64)
    return Polygons(xy, hsh, lab, torch.full((n,), 4, dtype=torch.int64))


def _pairs(poly: Polygons, lines: list[tuple[int, int, float, float, float]], radius: float = 2.0) -> tuple:
    """Pairs ``(region, line id, c, a0, a1)`` that really cross, sorted by region, with their rows."""
    dtype = poly.xy.dtype
    pp = torch.tensor([r for r, *_ in lines], dtype=torch.int64)
    ll = torch.tensor([lid for _, lid, *_ in lines], dtype=torch.int64)
    raw = torch.tensor([coef for *_, c, a0, a1 in lines for coef in (c, a0, a1)], dtype=dtype).reshape(-1, 3)
    tab = cutting._line_table(raw, torch.zeros(1, dtype=dtype), radius, ll)
    real = cutting._crosses(poly.xy.index_select(0, pp), tab)
    order = torch.argsort(pp[real], stable=True)
    return pp[real][order], ll[real][order], tab[real][order]


def _both(
    poly: Polygons,
    pp: torch.Tensor,
    ll: torch.Tensor,
    tab: torch.Tensor,
    nl: int,
    off: int = 0,
    rank: torch.Tensor | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> tuple:
    assert monkeypatch is not None
    monkeypatch.setenv("SPLINECAM_CUT_BACKEND", "torch")
    args = (poly, pp, ll, tab, nl, off, rank)
    want = cutting._cut_pairs(*_copy(args))
    _assert_same(want, cutting_np.cut_pairs(*_copy(args)))
    monkeypatch.setenv("SPLINECAM_CUT_BACKEND", "numpy")
    _assert_same(want, cutting._cut_pairs(*_copy(args)))
    return want


# ---------------------------------------------------------------------------- captured calls


@pytest.mark.parametrize("name", list(NETWORKS))
def test_captured_calls_are_bit_identical(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model, slc = NETWORKS[name]
    calls = _capture(model, slc, monkeypatch)
    if name == "sawtooth":
        assert any(c["kwargs"].get("rank") is not None or len(c["args"]) > 6 for c in calls)
    if name == "hardshrink":
        assert any(c["jump"] for c in calls)
    for call in calls:
        _replay(call, monkeypatch)


@pytest.mark.filterwarnings("ignore::splinecam.PrecisionWarning")
@pytest.mark.parametrize("name", ["relu", "leaky", "abs", "sawtooth", "maxpool"])
def test_captured_float32_calls_are_bit_identical(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model, slc = NETWORKS[name]
    calls = _capture(model, slc, monkeypatch, dtype=torch.float32)
    assert all(c["args"][0].xy.dtype == torch.float32 for c in calls)
    for call in calls:
        _replay(call, monkeypatch)


@pytest.mark.parametrize("seed", range(6))
def test_random_mlps_in_small_chunks(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random widths and depths, with small chunks: many calls with idle and one-line regions."""
    rng = np.random.default_rng(seed)
    act = [nn.ReLU(), nn.LeakyReLU(-0.3), Abs()][seed % 3]
    model = _mlp(act, seed, width=int(rng.integers(3, 16)), depth=int(rng.integers(1, 4)), out=1)
    for call in _capture(model, BOX, monkeypatch, chunk_size=int(rng.integers(1, 40))):
        _replay(call, monkeypatch)


# ---------------------------------------------------------------------------- hand-made cases


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lines_through_vertices_and_duplicates(dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch) -> None:
    poly = _square(2, dtype=dtype)
    lines = [
        (0, 0, 0.0, 1.0, -1.0),  # the diagonal through two vertices
        (0, 1, 0.0, 1.0, 1.0),  # the other diagonal
        (0, 2, 0.0, 1.0, 0.0),  # x = 0: through the centre, where the diagonals meet
        (0, 3, 0.0, 2.0, 0.0),  # the same line again (scaled), another id
        (0, 4, 0.0, 1.0, -1.0),  # the diagonal again
        (1, 0, 0.0, 1.0, -1.0),
        (1, 5, -0.5, 0.0, 1.0),  # y = 0.5
        (1, 6, -1.5 + 1e-13, 1.0, 0.5),  # 1e-13 from vertex (1, 1): snapped onto it, and crossing
    ]
    pp, ll, tab = _pairs(poly, lines)
    pieces, owner, ptr, _, _ = _both(poly, pp, ll, tab, 7, 10, monkeypatch=monkeypatch)
    assert len(pieces) > 4 and int(ptr[-1]) == len(pp)


def test_many_lines_through_one_region(monkeypatch: pytest.MonkeyPatch) -> None:
    g = torch.Generator().manual_seed(0)
    poly = _square(1)
    n = 150
    ang = torch.rand(n, generator=g, dtype=torch.float64) * math.pi
    off = (torch.rand(n, generator=g, dtype=torch.float64) - 0.5) * 1.6
    lines = [(0, i, float(-off[i]), float(torch.cos(ang[i])), float(torch.sin(ang[i]))) for i in range(n)]
    lines += [
        (0, n + i, 0.0, float(torch.cos(ang[i])), float(torch.sin(ang[i]))) for i in range(20)
    ]  # concurrent
    pp, ll, tab = _pairs(poly, lines)
    pieces, *_ = _both(poly, pp, ll, tab, n + 20, 3, monkeypatch=monkeypatch)
    assert len(pieces) > 2000


def test_hash_order_with_ties(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``rank`` order (stable: ties keep the input order), regions with no lines in between."""
    poly = _square(4)
    lines = [(r, lid, 0.1 * lid - 0.3, math.cos(lid), math.sin(lid)) for r in (0, 2, 3) for lid in range(8)]
    pp, ll, tab = _pairs(poly, lines)
    rank = geometry._fmix(ll % 3)  # many ties
    _, owner, ptr, lines_out, perm = _both(poly, pp, ll, tab, 8, 0, rank=rank, monkeypatch=monkeypatch)
    assert int(ptr[2] - ptr[1]) == 0 and 1 in owner.tolist()
    # the cutting order is the hash order (region by region): the lines come out reordered by it
    assert torch.equal(lines_out, ll[perm])
    r = rank[perm]
    same_region = pp[perm][1:] == pp[perm][:-1]
    assert bool((r[1:][same_region] >= r[:-1][same_region]).all())


def test_no_pairs_and_one_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    poly = _square(3)
    empty = torch.zeros(0, dtype=torch.int64)
    out = _both(poly, empty, empty, torch.zeros((0, 4), dtype=torch.float64), 5, monkeypatch=monkeypatch)
    assert torch.equal(out[0].xy, poly.xy) and out[1].tolist() == [0, 1, 2]
    pp, ll, tab = _pairs(poly, [(1, 2, 0.25, 1.0, 0.5)])
    pieces, owner, *_ = _both(poly, pp, ll, tab, 5, monkeypatch=monkeypatch)
    assert len(pieces) == 4 and sorted(owner.tolist()) == [0, 1, 1, 2]


def test_non_convex_polygon_takes_the_general_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sign pattern that is not one arc (impossible for the engine's convex regions) goes to
    ``_split_crossed_general``, on both backends."""
    g = torch.Generator().manual_seed(3)
    ang = torch.linspace(0, 2 * math.pi, 15, dtype=torch.float64)[:14] + 0.05 * torch.rand(
        14, generator=g, dtype=torch.float64
    )
    rad = torch.tensor([1.0, 0.45] * 7, dtype=torch.float64) + 0.1 * torch.rand(
        14, generator=g, dtype=torch.float64
    )
    star = torch.stack([rad * torch.cos(ang), rad * torch.sin(ang)], 1)  # a star: 14 vertices, not convex
    xy = torch.cat([star, star[:1], star[:1]])[None]
    poly = Polygons(
        xy,
        geometry._fmix(torch.arange(16, dtype=torch.int64))[None],
        torch.full((1, 16), -1),
        torch.tensor([14]),
    )
    called: list[int] = []
    real = cutting_np._split_crossed_general

    def spy(*a: Any) -> Any:
        called.append(1)
        return real(*a)

    monkeypatch.setattr(cutting_np, "_split_crossed_general", spy)
    lines = [(0, 0, -0.6137, 0.0291, 1.0), (0, 1, 0.593, 1.0, 0.2), (0, 2, -0.51, 0.7, -0.6)]
    pp, ll, tab = _pairs(poly, lines)
    _both(poly, pp, ll, tab, 3, rank=ll, monkeypatch=monkeypatch)  # every cut crosses many edges
    assert called


def test_a_vertex_exactly_at_the_tolerance(monkeypatch: pytest.MonkeyPatch) -> None:
    """``|s| == tol`` exactly (all values exact in binary): the vertex is snapped (``<=``)."""
    poly = _square(1)
    tab = torch.tensor([[-0.5, 1.0, 0.25, 0.25]], dtype=torch.float64)  # 0.25 at vertex (1, -1)
    one = torch.zeros(1, dtype=torch.int64)
    assert bool(cutting._crosses(poly.xy, tab).all())
    pieces = _both(poly, one, one, tab, 1, monkeypatch=monkeypatch)[0]
    assert sorted(pieces.nv.tolist()) == [3, 4]  # snapped: the cut ends at (1, -1)


def test_crossing_test_and_identifiers_match_on_edge_values() -> None:
    """The helpers on values where a slip would show: ``v == tol`` exactly, int64 extremes."""
    xy = torch.tensor([[[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [-1.0, 1.0]]], dtype=torch.float64).repeat(
        4, 1, 1
    )
    tab = torch.tensor(
        [[-0.5, 1.0, 0.25, 0.25], [-0.5, 1.0, 0.0, 0.5], [0.5, 0.0, 1.0, 0.5], [0.1, 0.3, -0.7, 0.0]],
        dtype=torch.float64,
    )
    want = cutting._crosses(xy, tab)
    assert want.tolist() == [True, False, False, True]
    assert np.array_equal(cutting_np._crosses(xy.numpy(), tab.numpy()), want.numpy())
    g = torch.Generator().manual_seed(1)
    big = torch.iinfo(torch.int64)
    vals = torch.cat(
        [
            torch.tensor([big.min, big.max, -1, 0, 1, big.min + 1]),
            torch.randint(big.min, big.max, (500,), generator=g),
        ]
    )
    a, b = vals, vals.flip(0)
    lid = torch.arange(len(vals), dtype=torch.int64) * 7919 - 100
    # (geometry._fmix serves both backends: the same bits on numpy arrays as on tensors)
    assert np.array_equal(geometry._fmix(vals.numpy()), geometry._fmix(vals).numpy())
    assert np.array_equal(
        cutting_np._mix_hash(a.numpy(), b.numpy(), lid.numpy()), geometry.mix_hash(a, b, lid).numpy()
    )


def test_jump_lines_use_directed_identifiers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Edges made by a step with jumps: vertices cut on them get ``edge_hash``'s directed ids."""
    poly = _square(1)
    pp, ll, tab = _pairs(poly, [(0, i, 0.3 * i - 0.5, math.cos(i), math.sin(i)) for i in range(4)])
    first = _both(poly, pp, ll, tab, 4, 0, monkeypatch=monkeypatch)[0]
    monkeypatch.setattr(geometry, "_JUMP_LINES", [(0, 4)])
    lines = [(r, j, 0.2 * j - 0.4, math.sin(j), math.cos(3 * j)) for r in range(len(first)) for j in range(5)]
    pp, ll, tab = _pairs(first, lines)
    _both(first, pp, ll, tab, 5, 4, monkeypatch=monkeypatch)
    geometry._JUMP_LINES.clear()
    plain = _both(first, pp, ll, tab, 5, 4, monkeypatch=monkeypatch)[0]
    monkeypatch.setattr(geometry, "_JUMP_LINES", [(0, 4)])
    monkeypatch.setenv("SPLINECAM_CUT_BACKEND", "numpy")
    directed = cutting._cut_pairs(first, pp, ll, tab, 5, 4)[0]
    assert not torch.equal(plain.hsh, directed.hsh)  # (the jump lines changed some identifiers)


# ---------------------------------------------------------------------------- whole partitions


def _assert_same_partition(a: sc.Partition, b: sc.Partition) -> None:
    for name in (
        "vertices",
        "region_ptr",
        "region_vertices",
        "edges",
        "edge_regions",
        "edge_layer",
        "edge_unit",
    ):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    for x, y in zip(a.output_affine, b.output_affine):
        assert np.array_equal(x, y)
    assert len(a.codes) == len(b.codes)
    for x, y in zip(a.codes, b.codes):
        assert np.array_equal(x, y)


def _count_numpy_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gets one entry per call of the numpy twin (spied on for the test)."""
    used: list[int] = []
    real = cutting_np.cut_pairs

    def spy(*a: Any, **k: Any) -> Any:
        used.append(1)
        return real(*a, **k)

    monkeypatch.setattr(cutting_np, "cut_pairs", spy)
    return used


@pytest.mark.parametrize("name", list(NETWORKS))
def test_partitions_are_identical_on_both_backends(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model, slc = NETWORKS[name]
    used = _count_numpy_calls(monkeypatch)
    monkeypatch.setenv("SPLINECAM_CUT_BACKEND", "torch")
    want = sc.partition(model, slc)
    assert not used
    monkeypatch.setenv("SPLINECAM_CUT_BACKEND", "numpy")
    got = sc.partition(model, slc)
    assert used
    _assert_same_partition(want, got)


# ---------------------------------------------------------------------------- the dispatch


def test_dispatch_follows_the_variable_and_the_size(monkeypatch: pytest.MonkeyPatch) -> None:
    poly = _square(2)
    pp, ll, tab = _pairs(poly, [(0, 0, 0.1, 1.0, 0.0), (1, 1, 0.0, 0.0, 1.0)])
    used = _count_numpy_calls(monkeypatch)

    def uses_numpy(poly: Polygons = poly, tab: torch.Tensor = tab) -> bool:
        used.clear()
        cutting._cut_pairs(poly, pp, ll, tab, 2, 0)
        return bool(used)

    monkeypatch.delenv("SPLINECAM_CUT_BACKEND", raising=False)
    assert uses_numpy()  # auto, small
    monkeypatch.setattr(cutting, "NUMPY_MAX_WORK", 1)
    assert not uses_numpy()  # auto, above the threshold
    monkeypatch.setenv("SPLINECAM_CUT_BACKEND", "numpy")
    assert uses_numpy()  # forced: whatever the size
    assert not uses_numpy(tab=tab.clone().requires_grad_(True))
    half = Polygons(poly.xy.half(), poly.hsh, poly.lab, poly.nv)
    assert not cutting._use_numpy(half, pp, ll, tab.half(), None)
    assert not cutting._use_numpy(poly, pp, ll.int(), tab, None)
    assert cutting._use_numpy(poly, pp, ll, tab, ll)
    assert not cutting._use_numpy(poly, pp, ll, tab, ll.to("meta"))
    monkeypatch.setenv("SPLINECAM_CUT_BACKEND", " Torch ")
    assert not uses_numpy()


@pytest.mark.parametrize("value", ["np", "cuda", "numpy,torch", "1"])
def test_a_bad_backend_value_raises(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLINECAM_CUT_BACKEND", value)
    with pytest.raises(ValueError, match=r"SPLINECAM_CUT_BACKEND.*auto, numpy, torch"):
        cutting.cut_backend()
    with pytest.raises(ValueError, match="SPLINECAM_CUT_BACKEND"):
        sc.partition(NETWORKS["relu"][0], BOX)
