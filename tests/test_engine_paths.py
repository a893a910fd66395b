"""The engine's three ways through "nonlinearity -> Linear" must give the same partition.

After the first cutting layer, a ReLU / LeakyReLU followed by an ``nn.Linear`` is run once per
parent region plus sparse updates for the units that cross it (``splinecam.engine._linear_post``);
the last two such nonlinearities of an MLP (``A -> Linear -> B -> Linear``) are done together with
no affine stack per child of ``A`` (``splinecam.engine._tail``); every other layer uses the dense
path. Here each fast path is switched off in turn and the results compared region by region with
the dense path, on seeded networks including degenerate ones.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import splinecam as sc
import splinecam.engine as engine


def _canonical(part: sc.Partition) -> tuple[np.ndarray, np.ndarray]:
    """Regions ordered by their codes (unique per region), with their codes and output maps."""
    codes = np.concatenate([part.layer_codes(i) for i in range(len(part.layer_names))], 1)
    order = np.lexsort(codes.T[::-1])
    return codes[order], order


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
    cf, of = _canonical(fast)
    cd, od = _canonical(dense)
    np.testing.assert_array_equal(cf, cd)
    af, bf = fast.output_affine
    ad, bd = dense.output_affine
    scale = np.abs(bd).max() + np.abs(ad).max() + 1e-300
    assert np.abs(af[of] - ad[od]).max() <= 1e-12 * scale
    assert np.abs(bf[of] - bd[od]).max() <= 1e-12 * scale
    np.testing.assert_allclose(fast.areas()[of], dense.areas()[od], rtol=1e-9, atol=1e-15)
    # the same planar graph: vertices at the same places, edges between the same regions
    vf = fast.vertices[np.lexsort(fast.vertices.T[::-1])]
    vd = dense.vertices[np.lexsort(dense.vertices.T[::-1])]
    np.testing.assert_allclose(vf, vd, rtol=0, atol=1e-12 * np.abs(vd).max())
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
