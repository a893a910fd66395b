"""Sparse Linear weights (splinecam.engine.sparse_linear): the sparse product equals the dense one, its
cached form follows in-place changes, and partitions of networks with sparse wide layers are the same
with the sparse product as without it, and exact against the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import splinecam as sc
from splinecam.engine import sparse_linear as spl
from splinecam.verify import evaluate_with_preactivations

pytest.importorskip("scipy", reason="the sparse product needs scipy (an optional accelerator)")


def _sparse_weight(out: int, n: int, per_row: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.zeros(out, n, dtype=dtype)
    cols = torch.randint(0, n, (out, per_row), generator=g)
    w[torch.arange(out)[:, None], cols] = torch.randn(out, per_row, generator=g, dtype=dtype)
    return w


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", range(3))
def test_sparse_product_equals_the_dense_one(dtype, seed):
    w = _sparse_weight(300, 200, 2, seed, dtype)
    assert spl.sparse_weight(w) is not None
    x = torch.randn(50, 200, dtype=dtype, generator=torch.Generator().manual_seed(seed))
    got = spl.linear_rows(x, w)
    assert got.shape == (50, 300) and got.dtype == dtype and got.is_contiguous()
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(got, x @ w.T, rtol=rtol, atol=rtol)
    # a non-contiguous input (a column slice) gives the same
    wide = torch.cat([x, x], 1)[:, ::2]
    torch.testing.assert_close(spl.linear_rows(wide, w), wide @ w.T, rtol=rtol, atol=rtol)


def test_dense_small_or_grad_weights_take_the_dense_product():
    assert spl.sparse_weight(torch.randn(300, 200, dtype=torch.float64)) is None  # dense
    assert spl.sparse_weight(_sparse_weight(30, 20, 1, 0)) is None  # too small to pay
    w = _sparse_weight(300, 200, 2, 0).requires_grad_(True)
    assert spl.sparse_weight(w) is None
    assert spl.sparse_weight(_sparse_weight(300, 200, 2, 0).to(torch.int64)) is None


def test_the_cached_form_follows_in_place_changes():
    w = _sparse_weight(300, 200, 2, 1)
    x = torch.randn(7, 200, dtype=torch.float64)
    first = spl.linear_rows(x, w)
    torch.testing.assert_close(first, x @ w.T)
    with torch.no_grad():
        w.mul_(3.0)
        w[0, 0] = 5.0
    torch.testing.assert_close(spl.linear_rows(x, w), x @ w.T)
    with torch.no_grad():
        w.fill_(1.0)  # now dense: the dense product
    assert spl.sparse_weight(w) is None
    torch.testing.assert_close(spl.linear_rows(x, w), x @ w.T)


def test_the_switch_turns_it_off(monkeypatch):
    w = _sparse_weight(300, 200, 2, 2)
    monkeypatch.setenv("SPLINECAM_SPARSE", "0")
    assert spl.sparse_weight(_sparse_weight(300, 200, 2, 3)) is None
    monkeypatch.delenv("SPLINECAM_SPARSE")
    assert spl.sparse_weight(w) is not None


def _sparse_net(seed: int, act=nn.ReLU, bias: bool = True) -> nn.Sequential:
    """2 -> 16 (dense) -> 120 -> 90 -> 1 with 1-2 non-zeros per row in the wide layers, some rows
    copies of others and some zero, and a bias-free variant."""
    torch.manual_seed(seed)
    l1 = nn.Linear(2, 16, bias=bias).double()
    l2 = nn.Linear(16, 120, bias=bias).double()
    l3 = nn.Linear(120, 90, bias=bias).double()
    with torch.no_grad():
        l2.weight.copy_(_sparse_weight(120, 16, 2, seed))
        l2.weight[100:110] = l2.weight[:10]  # duplicate units
        l2.weight[110:] = 0.0  # units that are identically their bias
        if bias:
            l2.bias[100:110] = l2.bias[:10]
        l3.weight.copy_(_sparse_weight(90, 120, 2, seed + 50))
    return nn.Sequential(l1, act(), l2, act(), l3, act(), nn.Linear(90, 1).double()).eval()


def _all_codes(part: sc.Partition) -> np.ndarray:
    return np.concatenate([part.layer_codes(i) for i in range(len(part.unit_shapes))], 1)


def _same_codes(a: sc.Partition, b: sc.Partition, net: nn.Module) -> None:
    """Region by region (located by an interior point), the same codes, except on units that are zero
    at that point (a unit identically zero on a region, e.g. reading only dead units, has either piece:
    both give the same map, and rounding picks one)."""
    pts = a.interior_points()
    ib = np.asarray(b.locate(pts))
    assert (ib >= 0).all()
    x = torch.as_tensor(a.slice.to_input(pts), dtype=torch.float64)
    with torch.no_grad():
        _, pre = evaluate_with_preactivations(net, x.reshape(len(pts), -1))
    pre = torch.cat([p.reshape(len(pts), -1) for p in pre], 1).numpy()
    differ = _all_codes(a) != _all_codes(b)[ib]
    zero = np.abs(pre) <= 1e-12 * np.abs(pre).max()
    assert not (differ & ~zero).any()


CASES = [("relu", nn.ReLU, True), ("relu-bias-free", nn.ReLU, False), ("leaky", lambda: nn.LeakyReLU(0.2), True)]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name,act,bias", CASES, ids=[c[0] for c in CASES])
def test_partition_with_sparse_products_equals_the_dense_one(seed, name, act, bias, monkeypatch):
    net = _sparse_net(seed, act, bias)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    sl = sc.Slice.box((-3, 3), (-3, 3))
    monkeypatch.setattr(spl, "MIN_ELEMENTS", 1000)  # the test network's layers are small
    calls = []
    real = spl.linear_rows

    def spy(x, w):
        calls.append(spl.sparse_weight(w) is not None)
        return real(x, w)

    for mod in ("splinecam.engine.mlp_paths", "splinecam.engine.stacks"):
        monkeypatch.setattr(f"{mod}.linear_rows", spy)
    part = sc.partition(net, sl)
    assert any(calls), "the sparse product was used"
    report = part.verify(net)
    assert bool(report), report
    monkeypatch.setenv("SPLINECAM_SPARSE", "0")
    dense = sc.partition(net, sl)
    assert part.num_regions == dense.num_regions > 1
    np.testing.assert_allclose(np.sort(part.areas()), np.sort(dense.areas()), rtol=1e-9, atol=1e-12)
    _same_codes(part, dense, net)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])


def test_lattice_network_with_sparse_products(monkeypatch):
    from test_benchmarks_lattice import load_benchmark

    lat = load_benchmark()
    net = lat.build_lattice(384, seed=3, variants=4)
    sl = sc.Slice.box(*lat.BOX)
    monkeypatch.setattr(spl, "MIN_ELEMENTS", 4096)
    part = sc.partition(net, sl, warn_regions=None)
    assert bool(part.verify(net))
    monkeypatch.setenv("SPLINECAM_SPARSE", "0")
    dense = sc.partition(net, sl, warn_regions=None)
    assert part.num_regions == dense.num_regions
    _same_codes(part, dense, net)
