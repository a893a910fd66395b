"""The engine's two ways through "nonlinearity -> Linear" must give the same partition.

After the first cutting layer, a ReLU / LeakyReLU followed by an ``nn.Linear`` is run once per
parent region plus sparse updates for the units that cross it (``splinecam.engine._linear_post``);
every other layer uses the dense path. Here the sparse path is switched off and the results
compared region by region, on seeded networks including degenerate ones.
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


def _compare(model: nn.Module, slc: sc.Slice, monkeypatch: pytest.MonkeyPatch) -> tuple[sc.Partition, int]:
    calls = {"n": 0}
    orig = engine._linear_post

    def counting(*a, **k):
        calls["n"] += 1
        return orig(*a, **k)

    monkeypatch.setattr(engine, "_linear_post", counting)
    fast = sc.partition(model, slc)
    monkeypatch.setattr(engine, "_linear_after", lambda *a, **k: None)
    dense = sc.partition(model, slc)
    monkeypatch.undo()
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
    assert fast.verify(model)
    return fast, calls["n"]


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
def test_sparse_linear_path_matches_dense(seed: int, act: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _mlp(seed, (2, 24, 24, 16, 3), act=act)
    _, used = _compare(model, sc.Slice.box((-2, 2), (-2, 2)), monkeypatch)
    assert used > 0  # the sparse path really ran


def test_sparse_path_bias_free(monkeypatch: pytest.MonkeyPatch) -> None:
    # every line of every layer through the origin: many concurrent lines and vertices
    _compare(_mlp(3, (2, 16, 16, 16, 1), bias=False), sc.Slice.box((-1, 1), (-1, 1)), monkeypatch)


def test_sparse_path_duplicate_and_dead_units(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _mlp(5, (2, 12, 12, 12, 1))
    with torch.no_grad():
        model[2].weight[1] = model[2].weight[0]  # duplicate unit
        model[2].bias[1] = model[2].bias[0]
        model[2].weight[2] = -model[2].weight[0]  # opposite unit
        model[2].bias[2] = -model[2].bias[0]
        model[2].weight[3] = 0.0  # dead unit (constant negative)
        model[2].bias[3] = -1.0
        model[4].weight[:, 4] = 0.0  # unit whose output is ignored
    _compare(model, sc.Slice.box((-2, 2), (-2, 2)), monkeypatch)


def test_sparse_path_high_dimensional_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _mlp(7, (10, 20, 20, 20, 4))
    slc = sc.Slice.from_anchors(torch.randn(3, 10, generator=torch.Generator().manual_seed(1)))
    _compare(model, slc, monkeypatch)
