"""The engine's three ways through "nonlinearity -> Linear" must give the same partition.

After the first cutting layer, a ReLU / LeakyReLU followed by an ``nn.Linear`` is run once per
parent region plus sparse updates for the units that cross it (``splinecam.engine.run._linear_post``);
the last two such nonlinearities of an MLP (``A -> Linear -> B -> Linear``) are done together with
no affine stack per child of ``A`` (``splinecam.engine.run._tail``); every other layer uses the dense
path. Here each fast path is switched off in turn and the results compared region by region with
the dense path, on seeded networks including degenerate ones.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import splinecam as sc
import splinecam.engine.run as engine


def _codes(part: sc.Partition) -> np.ndarray:
    return np.concatenate([part.layer_codes(i) for i in range(len(part.layer_names))], 1)


def _ties(model: nn.Module, slc: sc.Slice, u: np.ndarray) -> tuple[np.ndarray, float]:
    """Units whose input is zero up to rounding at the points ``u`` (all nonlinearities, in order):
    a unit that is identically zero on a region has no meaningful piece there, and the engine's
    paths may read its rounding noise differently (the affine maps agree up to that noise). Also
    the largest unit input times the largest weight: the scale of that noise in the outputs."""
    m64 = copy.deepcopy(model).double()
    seen: list[torch.Tensor] = []
    hooks = [
        mod.register_forward_hook(lambda _m, inp, _out: seen.append(inp[0].detach().flatten(1)))
        for mod in m64.modules()
        if isinstance(mod, (nn.ReLU, nn.LeakyReLU))
    ]
    with torch.no_grad():
        m64(torch.as_tensor(slc.to_input(u), dtype=torch.float64))
    for h in hooks:
        h.remove()
    ties = np.concatenate([(z.abs() <= 1e-9 * (z.abs().max() + 1e-300)).numpy() for z in seen], 1)
    wmax = max(float(p.detach().abs().max()) for p in m64.parameters())
    return ties, max(float(z.abs().max()) for z in seen) * wmax


def _run(
    model: nn.Module, slc: sc.Slice, path: str, monkeypatch: pytest.MonkeyPatch, force: bool = False
) -> tuple[sc.Partition, dict]:
    """Partition with the engine restricted to ``path`` ("tail": all fast paths, "sparse": no tail,
    "dense": neither), counting how often each fast path ran. ``force``: take the fast paths
    wherever they apply, even where the engine would find them slower (the first layer)."""
    if force:
        monkeypatch.setattr(engine, "_SPARSE_MIN_RATIO", 0)
    calls = {"sparse": 0, "tail": 0, "one_parent": 0}
    for name, key in (("_linear_post", "sparse"), ("_tail", "tail"), ("_one_parent_post", "one_parent")):
        orig = getattr(engine, name)

        def counting(*a, _orig=orig, _key=key, **k):
            calls[_key] += 1
            return _orig(*a, **k)

        monkeypatch.setattr(engine, name, counting)
    if path in ("sparse", "dense"):
        monkeypatch.setattr(engine, "_tail_plan", lambda *a, **k: None)
    if path == "dense":
        monkeypatch.setattr(engine, "_linear_after", lambda *a, **k: None)
    part = sc.partition(model, slc)
    monkeypatch.undo()
    return part, calls


def _compare(
    model: nn.Module, slc: sc.Slice, monkeypatch: pytest.MonkeyPatch, path: str = "tail", force: bool = False
) -> tuple[sc.Partition, dict]:
    fast, calls = _run(model, slc, path, monkeypatch, force)
    dense, _ = _run(model, slc, "dense", monkeypatch)
    assert fast.num_regions == dense.num_regions
    assert fast.num_vertices == dense.num_vertices
    assert fast.num_edges == dense.num_edges
    # the same regions: each fast region's centroid lies in its own dense region
    ctr = fast.centroids()
    match = dense.locate(ctr)
    assert (match >= 0).all() and len(np.unique(match)) == fast.num_regions
    np.testing.assert_allclose(fast.areas(), dense.areas()[match], rtol=1e-9, atol=1e-15)
    ties, noise = _ties(model, slc, ctr)
    assert ((_codes(fast) == _codes(dense)[match]) | ties).all()
    af, bf = fast.output_affine
    ad, bd = dense.output_affine
    scale = np.abs(bd).max() + np.abs(ad).max() + noise + 1e-300
    assert np.abs(af - ad[match]).max() <= 1e-12 * scale
    assert np.abs(bf - bd[match]).max() <= 1e-12 * scale
    # the same planar graph: vertices at the same places (sorted by coordinates rounded far above
    # the rounding differences of the two paths, so that equal points sort alike), up to the
    # snapping tolerance's scale (1e-10): an intersection of lines summed in another order moves by
    # rounding over the line's slope (found: 1.7e-12 of the domain for a 19-unit integer net)
    vscale = np.abs(dense.vertices).max()

    def by_place(v: np.ndarray) -> np.ndarray:
        key = np.round(v / vscale, 9)
        return v[np.lexsort(key.T[::-1])]

    np.testing.assert_allclose(by_place(fast.vertices), by_place(dense.vertices), rtol=0, atol=1e-10 * vscale)
    assert fast.verify(model)
    return fast, calls


def _mlp(seed: int, widths: tuple[int, ...], act: str = "relu", bias: bool = True) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        lin = nn.Linear(a, b, bias=bias)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(b, a, generator=g) / a**0.5)
            if bias:
                lin.bias.copy_(0.3 * torch.randn(b, generator=g))
        layers.append(lin)
        if i < len(widths) - 2:
            layers.append(nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2))
    return nn.Sequential(*layers).eval()


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("act", ["relu", "leaky"])
@pytest.mark.parametrize("path", ["tail", "sparse"])
def test_fast_paths_match_dense(seed: int, act: str, path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _mlp(seed, (2, 24, 24, 16, 3), act=act)
    # forced: also right after the first layer, where every child re-reads its parent's 24 lines
    _, calls = _compare(model, sc.Slice.box((-2, 2), (-2, 2)), monkeypatch, path, force=True)
    assert calls[path] > 0  # that path really ran


@pytest.mark.parametrize("seed", range(4))
def test_wide_mlps_take_the_fast_paths_by_themselves(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # the first layer's children by products with the one parent's stack, the last two layers at once
    act = "leaky" if seed % 2 else "relu"
    _, calls = _compare(_mlp(seed, (2, 48, 48, 48, 1), act=act), sc.Slice.box((-1, 1), (-1, 1)), monkeypatch)
    assert calls["tail"] > 0 and calls["one_parent"] > 0


@pytest.mark.parametrize("seed", range(3))
def test_one_parent_path_then_sparse_head(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # two hidden layers: the first by the one-parent products, the second by the sparse path
    model = _mlp(seed, (2, 40, 40, 3), act="leaky" if seed == 1 else "relu")
    _, calls = _compare(model, sc.Slice.box((-2, 2), (-2, 2)), monkeypatch)
    assert calls["one_parent"] > 0 and calls["sparse"] > 0


@pytest.mark.parametrize("seed", range(4))
def test_deep_mlp_uses_sparse_then_tail(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _mlp(seed, (2, 16, 16, 16, 16, 12, 2), act="leaky" if seed % 2 else "relu")
    _, calls = _compare(model, sc.Slice.box((-2, 2), (-2, 2)), monkeypatch, force=True)
    assert calls["sparse"] > 0 and calls["tail"] > 0


@pytest.mark.parametrize("path", ["tail", "sparse"])
def test_fast_paths_bias_free(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # every line of every layer through the origin: many concurrent lines and vertices
    model = _mlp(3, (2, 16, 16, 16, 1), bias=False)
    _, calls = _compare(model, sc.Slice.box((-1, 1), (-1, 1)), monkeypatch, path, force=True)
    assert calls[path] > 0


@pytest.mark.parametrize("path", ["tail", "sparse"])
def test_fast_paths_duplicate_and_dead_units(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _mlp(5, (2, 12, 12, 12, 1))
    with torch.no_grad():
        for lin in (model[2], model[4]):  # in the last two nonlinearities' inputs
            lin.weight[1] = lin.weight[0]  # duplicate unit
            lin.bias[1] = lin.bias[0]
            lin.weight[2] = -lin.weight[0]  # opposite unit
            lin.bias[2] = -lin.bias[0]
            lin.weight[3] = 0.0  # dead unit (constant negative)
            lin.bias[3] = -1.0
            lin.weight[5] = 0.0  # unit exactly at its breakpoint everywhere
            lin.bias[5] = 0.0
        model[4].weight[:, 4] = 0.0  # unit whose output is ignored by the next layer
        model[6].weight[:, 6] = 0.0
    _, calls = _compare(model, sc.Slice.box((-2, 2), (-2, 2)), monkeypatch, path, force=True)
    assert calls[path] > 0


def test_tail_path_high_dimensional_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _mlp(7, (10, 20, 20, 20, 4))
    slc = sc.Slice.from_anchors(torch.randn(3, 10, generator=torch.Generator().manual_seed(1)))
    _, calls = _compare(model, slc, monkeypatch, force=True)
    assert calls["tail"] > 0


@pytest.mark.parametrize("scale", [1e-6, 1e4])
def test_tail_path_tiny_and_huge_domains(scale: float, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _mlp(11, (2, 20, 20, 20, 2))
    box = sc.Slice.box((0.1 - scale, 0.1 + scale), (-0.2 - scale, -0.2 + scale))
    _, calls = _compare(model, box, monkeypatch, force=True)
    assert calls["tail"] > 0


def test_tail_path_with_affine_steps_after_the_head(monkeypatch: pytest.MonkeyPatch) -> None:
    # the head is followed by more affine steps (another Linear and a BatchNorm in eval mode)
    g = torch.Generator().manual_seed(2)
    model = nn.Sequential(
        nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.LeakyReLU(0.1), nn.Linear(16, 12), nn.ReLU(),
        nn.Linear(12, 6), nn.Linear(6, 3), nn.BatchNorm1d(3),
    )
    with torch.no_grad():
        for prm in model.parameters():
            prm.copy_(torch.randn(prm.shape, generator=g) * 0.5)
        model[8].running_mean.copy_(torch.randn(3, generator=g))
        model[8].running_var.copy_(torch.rand(3, generator=g) + 0.5)
    model.eval()
    _, calls = _compare(model, sc.Slice.box((-2, 2), (-2, 2)), monkeypatch, force=True)
    assert calls["tail"] > 0


class _SkipAfterHead(nn.Module):
    """An MLP whose output adds a linear function of the input after the head: the tail path does
    not apply (a value from before the head is read after it) and the engine must notice."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _mlp(4, (2, 16, 16, 16, 2))
        self.skip = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


def test_tail_path_refused_when_an_earlier_value_is_read_later(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _SkipAfterHead().eval()
    _, calls = _compare(model, sc.Slice.box((-2, 2), (-2, 2)), monkeypatch, force=True)
    assert calls["tail"] == 0 and calls["sparse"] > 0


@pytest.mark.parametrize("seed", range(6))
def test_tail_path_wide_nets_through_vertices(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # integer weights: many lines meet in common points and pass through the domain's corners
    g = torch.Generator().manual_seed(100 + seed)
    model = _mlp(seed, (2, 10, 10, 8, 1))
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.randint(-2, 3, m.weight.shape, generator=g).float())
                m.bias.copy_(torch.randint(-2, 3, m.bias.shape, generator=g).float())
    _, calls = _compare(model, sc.Slice.box((-2, 2), (-2, 2)), monkeypatch, force=True)
    assert calls["tail"] > 0


# Derandomized so that CI runs the same 25 examples every time (locally, thousands of random
# examples were run; see test_noise_line_does_not_cut for the one kind of net they used to fail on).
@settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**31 - 1),
    widths=st.lists(st.integers(2, 20), min_size=2, max_size=4),
    act=st.sampled_from(["relu", "leaky"]),
    bias=st.booleans(),
    integer=st.booleans(),
    half=st.sampled_from([1e-3, 1.0, 50.0]),
)
def test_fast_paths_match_dense_on_random_mlps(
    seed: int, widths: list[int], act: str, bias: bool, integer: bool, half: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # random shapes, bias-free and integer-weight nets (many lines through common points and
    # through the domain's corners), tiny to large domains; the fast paths forced everywhere
    widths_all = (2, *widths, 1 + seed % 3)
    if integer:
        model = _integer_mlp(seed, widths_all, act, bias)
    else:
        model = _mlp(seed % 1000, widths_all, act=act, bias=bias)
    _compare(model, sc.Slice.box((-half, half), (-half, half)), monkeypatch, force=True)


def _integer_mlp(seed: int, widths: tuple[int, ...], act: str, bias: bool) -> nn.Module:
    model = _mlp(seed % 1000, widths, act=act, bias=bias)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.randint(-2, 3, m.weight.shape, generator=g).float())
                if m.bias is not None:
                    m.bias.copy_(torch.randint(-2, 3, m.bias.shape, generator=g).float())
    return model


def test_noise_line_does_not_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    # found by the random-MLP test: one unit of the second layer is identically zero on a region
    # (integer weights, no bias); its coefficients there are rounding noise of about 1e-19, which
    # the plain path took for a crossing line (17 regions, two neighbours with the same affine
    # map) while the fast paths, summing in another order, saw none (16). The layer's noise floor
    # (engine._NOISE_FLOOR) keeps every path from cutting along it.
    model = _integer_mlp(1040243, (2, 6, 4, 3), act="leaky", bias=False)
    slc = sc.Slice.box((-1e-3, 1e-3), (-1e-3, 1e-3))
    fast, _ = _compare(model, slc, monkeypatch, force=True)
    assert fast.num_regions == 16
    dense, _ = _run(model, slc, "dense", monkeypatch)
    a, b = dense.output_affine
    er = dense.edge_regions[(dense.edge_regions >= 0).all(1)]
    same = (np.abs(a[er[:, 0]] - a[er[:, 1]]).max((1, 2)) <= 1e-12) & (np.abs(b[er[:, 0]] - b[er[:, 1]]).max(1) <= 1e-15)
    assert not same.any()  # no two neighbours share one affine map


def test_noise_floor_keeps_a_line_of_rounding_noise_from_cutting() -> None:
    # (whether the plain path's sums leave such noise on the net above depends on the CPU's
    # summation order; this is the mechanism on its own) a unit whose coefficients are rounding
    # noise, 1e-19, on a layer of scale 1: it cuts without the floor, not with it
    from splinecam.engine.cutting import _cut_layer
    from splinecam.engine.geometry import Polygons

    dom = torch.tensor([[[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]], dtype=torch.float64)
    poly = Polygons(dom, torch.arange(1, 5)[None] * 7919, torch.full((1, 4), -1), torch.tensor([4]))
    pre = torch.tensor([[[0.3, 1e-19], [1.0, 1e-19], [0.0, -1e-19]]], dtype=torch.float64)  # (1, 3, 2 units)
    bps = torch.zeros(1, dtype=torch.float64)
    floor = engine._NOISE_FLOOR * 1.0
    noisy, _, _, _ = _cut_layer(poly, pre, bps, 1.0, 0, None, 0.0)
    clean, _, _, _ = _cut_layer(poly, pre, bps, 1.0, 0, None, floor)
    assert len(noisy) > 2  # the real unit's line and the noise line
    assert len(clean) == 2  # the real unit's line only
