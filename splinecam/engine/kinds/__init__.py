"""Nonlinearity kinds: one module per kind of piecewise-linear step, the engine's plug-in point.

:mod:`.base` states the contract (:class:`~.base.Kind`); :mod:`.elementwise` holds the elementwise
kinds (finitely many breakpoints, and periodic ones); :mod:`.groups` the max/min over groups of units
(pooling, maxout, ``torch.maximum``). :func:`kind_for` picks the kind of a traced step.
"""

from __future__ import annotations

import torch

from ...trace import Step
from ...trace.specs import GroupSpec, PWLSpec
from .base import Kind
from .elementwise import Elementwise, Periodic
from .groups import Groups

__all__ = ["Kind", "Elementwise", "Periodic", "Groups", "kind_for"]


def kind_for(step: Step, shapes: list[tuple[int, ...]], dtype: torch.dtype, device: torch.device) -> Kind:
    """The kind of the piecewise-linear ``step`` whose inputs have per-sample ``shapes``."""
    spec = step.pwl
    if isinstance(spec, GroupSpec):
        return Groups(step, shapes, dtype, device)
    if isinstance(spec, PWLSpec) and spec.period is not None:
        return Periodic(step, shapes[0], dtype, device)
    return Elementwise(step, shapes[0], dtype, device)
