"""Bounded working memory (issue 14) changes no partition: convolutions run in blocks of rows, the
region estimate in batches of points, and max-pooling skips pairs of constant candidates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import splinecam as sc
from splinecam.engine import estimate, stacks


def _cnn() -> nn.Sequential:
    """A small CNN with max-pooling after ReLUs (windows of dead units: constant candidates)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(6 * 3 * 3, 16), nn.ReLU(), nn.Linear(16, 3),
    ).eval()


def _slice(pad: float = 0.1) -> sc.Slice:
    """A square of half-width ``pad`` around the first of three random images, in their plane."""
    g = torch.Generator().manual_seed(1)
    plane = sc.Slice.from_anchors(torch.rand(3, 1, 12, 12, generator=g), pad=pad, seed=0)
    c = np.asarray(plane.anchors)[0]
    sq = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    return sc.Slice(origin=plane.origin.reshape(plane.input_shape), basis=plane.basis, domain=c + pad * sq)


def _summary(part: sc.Partition) -> tuple[int, np.ndarray]:
    return part.num_regions, np.sort(part.areas())


@pytest.mark.parametrize("chunk_size", [None, 3])
def test_convolutions_in_blocks_of_one_row_give_the_same_partition(monkeypatch, chunk_size):
    net, sl = _cnn(), _slice()
    n0, a0 = _summary(sc.partition(net, sl, chunk_size=chunk_size))
    monkeypatch.setattr(stacks, "_CONV_COLUMNS", 1)  # one row of a stack per convolution call
    part = sc.partition(net, sl, chunk_size=chunk_size)
    n1, a1 = _summary(part)
    assert n0 > 20 and n1 == n0
    np.testing.assert_array_equal(a1, a0)
    assert part.verify(net, quick=True)


def test_blocked_convolution_is_bit_identical():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1).double()
    x = torch.randn(10, 3, 6, 6, dtype=torch.float64)
    step = type("S", (), {"op": "module", "target": conv})()
    assert stacks._conv_rows(step, (x,), {}) >= 1
    old = stacks._CONV_COLUMNS
    try:
        stacks._CONV_COLUMNS = 3 * 9 * 36 * 8 * 3  # three rows per call
        assert stacks._conv_rows(step, (x,), {}) == 3
        with torch.no_grad():
            out = stacks._call_in_blocks(step, (x,), {}, conv)
            assert torch.equal(out, conv(x))
    finally:
        stacks._CONV_COLUMNS = old


def test_estimate_in_batches_of_one_point_is_unchanged(monkeypatch):
    net, sl = _cnn(), _slice()
    prepared, _ = sc.trace.prepare_model(net)
    program = sc.trace.trace_model(prepared)
    e0 = estimate.estimate_program(program, prepared, sl, grid=8)
    monkeypatch.setattr(estimate, "_BATCH_BYTES", 1)  # one point per batch
    e1 = estimate.estimate_program(program, prepared, sl, grid=8)
    assert e1.distinct_codes == e0.distinct_codes
    assert e1.regions == pytest.approx(e0.regions, rel=1e-12)
