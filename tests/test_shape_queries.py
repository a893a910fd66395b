"""Shape queries in ``forward`` (``x.size(0)``, ``x.shape[0]``) read the engine's batch of regions.

The engine streams regions in chunks and regroups them after every cut, so a value computed from
the batch size must be computed again for every batch (found by fuzzing: a reshape by
``h.shape[0]`` failed, or silently used a stale size, once regions were split into chunks).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import splinecam as sc


class _FlattenBySize(nn.Module):
    """The common CNN idiom ``x.view(x.size(0), -1)`` before the classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.fc1 = nn.Linear(3 * 4 * 4, 10)
        self.fc2 = nn.Linear(10, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv(x))
        h = h.view(h.size(0), -1)
        return self.fc2(F.relu(self.fc1(h)))


class _ReshapeByShape(nn.Module):
    """``h.reshape(h.shape[0], ...)`` between layers, and a batch size read at the input and used at
    the very end (the input must stay alive until then)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(2, 8)
        self.b = nn.Linear(8, 8)
        self.c = nn.Linear(8, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        h = F.relu(self.a(x))
        h = h.reshape(h.shape[0], 2, 4).reshape(h.size(0) * 1, -1)
        h = F.relu(self.b(h))
        h = F.relu(self.c(h))
        return self.out(h).view(n, -1)


def _parts(model: nn.Module, slc: sc.Slice) -> list[sc.Partition]:
    return [sc.partition(model, slc, chunk_size=c) for c in (None, 1, 3)]


@pytest.mark.parametrize("seed", range(2))
def test_flatten_by_size_in_chunks(seed: int) -> None:
    torch.manual_seed(seed)
    model = _FlattenBySize().eval()
    slc = sc.Slice.from_anchors(torch.randn(1, 1, 4, 4), pad=2.0, seed=seed)
    parts = _parts(model, slc)
    assert len({p.num_regions for p in parts}) == 1
    for p in parts:
        assert p.verify(model), p.verify(model)


@pytest.mark.parametrize("seed", range(2))
def test_reshape_by_shape_in_chunks(seed: int) -> None:
    torch.manual_seed(seed)
    model = _ReshapeByShape().eval()
    parts = _parts(model, sc.Slice.box((-2, 2), (-2, 2)))
    assert len({p.num_regions for p in parts}) == 1 and parts[0].num_regions > 20
    for p in parts:
        assert p.verify(model), p.verify(model)
