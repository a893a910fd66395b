"""Models that read a nonlinearity's input again after the nonlinearity.

``relu(h) + h``, ``cat([relu(h), h])`` and pre-activation residual blocks keep the pre-activation
alive past the ReLU; the engine must not mask it in place (a bug found while writing the docs).
Each model is checked with ``verify`` and the independent hook-based exactness check.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import splinecam as sc


class ReluPlusPre(nn.Module):
    def __init__(self, act: str) -> None:
        super().__init__()
        self.a, self.b, self.act = nn.Linear(2, 12), nn.Linear(12, 3), act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        r = torch.relu(h) if self.act == "relu" else F.leaky_relu(h, 0.2)
        return self.b(r + 0.5 * h)


class CatReluPre(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(2, 10), nn.Linear(20, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        return self.b(torch.cat([F.relu(h), h], dim=1))


class PreActResidual(nn.Module):
    """``h + Linear(ReLU(h))`` twice: the pre-activation ``h`` is the skip connection."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(2, 12)
        self.blocks = nn.ModuleList([nn.Sequential(nn.ReLU(), nn.Linear(12, 12)) for _ in range(2)])
        self.out = nn.Linear(12, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for blk in self.blocks:
            h = h + blk(h)
        return self.out(torch.relu(h))


MODELS = {
    "relu_plus_pre": lambda: ReluPlusPre("relu"),
    "leaky_plus_pre": lambda: ReluPlusPre("leaky"),
    "cat_relu_pre": CatReluPre,
    "preact_residual": PreActResidual,
}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_pre_activation_reused(kind: str, seed: int, make_exactness_check) -> None:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = MODELS[kind]().eval()
    part = sc.partition(model, sc.Slice.box((-2, 2), (-2, 2)))
    assert part.num_regions > 1
    make_exactness_check(model, part)
