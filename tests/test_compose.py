"""Chains of activation-free Linear layers composed into one (splinecam.trace.simplify): the same
partition as without composition, exact against the real model, the user's model untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import splinecam as sc
from splinecam.trace import simplify, trace_model


def _chain_net(seed: int, widths: tuple[int, ...]) -> nn.Sequential:
    torch.manual_seed(seed)
    w = (2, *widths)
    layers: list[nn.Module] = []
    # Linear -> Linear (2 -> wide -> narrow) -> ReLU -> Linear -> Linear (narrow -> wide -> narrow) -> ReLU -> Linear
    layers += [nn.Linear(w[0], w[1]), nn.Linear(w[1], w[2]), nn.ReLU()]
    layers += [nn.Linear(w[2], w[3]), nn.Linear(w[3], w[4]), nn.ReLU(), nn.Linear(w[4], 1)]
    return nn.Sequential(*layers).eval()


def _areas(part: sc.Partition) -> np.ndarray:
    return np.sort(part.areas())


@pytest.mark.parametrize("seed", range(6))
def test_composed_partition_equals_the_uncomposed_one(seed, monkeypatch):
    net = _chain_net(seed, (64, 8, 48, 6))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    sl = sc.Slice.box((-3, 3), (-3, 3))
    prog = trace_model(net)
    assert any(isinstance(s.target, simplify.ComposedLinear) for s in prog.steps)
    part = sc.partition(net, sl)
    assert bool(part.verify(net))
    monkeypatch.setattr("splinecam.trace.capture.compose_linear_chains", lambda s, o, p: (s, o, p))
    plain = sc.partition(net, sl)
    assert not any(isinstance(s.target, simplify.ComposedLinear) for s in trace_model(net).steps)
    assert part.num_regions == plain.num_regions
    np.testing.assert_allclose(_areas(part), _areas(plain), rtol=1e-9, atol=1e-12)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])


def test_only_chains_that_save_work_are_composed():
    # 2 -> 64 -> 3: composed (2 * 3 <= (128 + 192) / 2); 4 -> 3 -> 64 is not (4 * 64 > (12 + 192) / 2)
    a = nn.Sequential(nn.Linear(2, 64), nn.Linear(64, 3), nn.ReLU(), nn.Linear(3, 1)).eval()
    b = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3), nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 1)).eval()
    kinds_a = [type(s.target).__name__ for s in trace_model(a).steps if s.kind == "affine"]
    kinds_b = [type(s.target).__name__ for s in trace_model(b).steps if s.kind == "affine"]
    assert kinds_a == ["ComposedLinear", "Linear"]
    assert kinds_b == ["Linear", "Linear", "Linear", "Linear"]


def test_a_linear_used_twice_is_not_composed():
    class Fork(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(2, 8), nn.Linear(8, 2), nn.Linear(8, 2)

        def forward(self, x):
            h = self.a(x)
            return torch.relu(self.b(h)) + self.c(h)

    net = Fork().eval()
    assert not any(isinstance(s.target, simplify.ComposedLinear) for s in trace_model(net).steps)
    part = sc.partition(net, sc.Slice.box((-2, 2), (-2, 2)))
    assert bool(part.verify(net))


def test_noise_magnitudes_of_a_composed_layer_are_the_parts():
    a, b = nn.Linear(2, 3).double(), nn.Linear(3, 2).double()
    with torch.no_grad():
        b.weight.copy_(torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64))
        a.weight.copy_(torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0]], dtype=torch.float64))
    c = simplify.compose_linear(a, b)
    assert torch.equal(c.weight[0], torch.zeros(2, dtype=torch.float64))  # the parts cancel
    assert torch.equal(c.magnitude_weight[0], torch.tensor([2.0, 4.0], dtype=torch.float64))
