"""The contract of a nonlinearity kind: the engine's plug-in point.

A *kind* is what the engine knows about one piecewise-linear step of a traced program. The engine
(:mod:`splinecam.engine.run`) never looks inside a step; for each step it builds the step's kind with
:func:`splinecam.engine.kinds.kind_for` once the step's input shape is known, and then asks it:

* :meth:`Kind.input_stack`: the affine values ``(P, 3, n_in)`` the step reads on each of ``P`` regions
  (value at ``u = 0`` and the two partial derivatives of every input unit);
* :meth:`Kind.cut`: which lines cross each region's polygon, and the pieces after cutting by them.
  Every piece must be convex and lie on one *code* of the step (the piece of its function every
  unit uses), and two neighbouring pieces of one region must differ in that code (no needless cuts;
  the kind merges pieces that a shared cut separated needlessly). Edges made by the step carry the
  global line id ``line_offset + unit * lines_per_unit + j``, so that the result maps every edge
  back to its step and unit;
* :meth:`Kind.post`: a function that, on a batch of pieces and their parents' values, appends the
  pieces' codes and writes the step's output as an affine stack ``(3 P', *out_shape)`` (the
  "masked" affine maps the next steps see);
* :meth:`Kind.codes_at`: the codes of real inputs, computed from the step's input values (what
  :meth:`splinecam.Partition.verify` compares with the partition), with the units that lie too close
  to a breakpoint or a tie to be checked.

Attributes every kind sets: ``units`` (code columns), ``unit_shape``, ``lines_per_unit``,
``packed`` (codes stored bit-packed: one breakpoint per unit), ``code_dtype`` and ``fast_paths``
(the elementwise one-breakpoint continuous case, which :mod:`splinecam.engine.mlp_paths` speeds up).
A new nonlinearity is one new module with a subclass, and one line in :func:`kind_for`.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ...trace import Step, _Ref
from ..geometry import Polygons

__all__ = ["Kind"]


class Kind:
    """Base class of the nonlinearity kinds (see the module docstring for the contract)."""

    units: int = 0
    unit_shape: tuple[int, ...] = ()
    lines_per_unit: int = 1
    packed: bool = False
    code_dtype: torch.dtype = torch.int8
    fast_paths: bool = False

    def __init__(self, step: Step, in_shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> None:
        self.step = step
        self.in_shape = tuple(in_shape)
        self.dtype = dtype
        self.device = device

    # ------------------------------------------------------------------ engine side
    def input_stack(self, env: dict[int, Any], nreg: int) -> torch.Tensor:
        """The step's input as ``(P, 3, n_in)`` affine values (default: its first argument)."""
        x = env[int(self.step.args[0])]
        return x.reshape(nreg, 3, -1)

    def cut(
        self, poly: Polygons, pre: torch.Tensor, radius: Any, line_offset: int, floor: Any
    ) -> tuple[Polygons, torch.Tensor]:
        """Cut every polygon of ``poly`` by the lines of this step that cross it: the pieces and the
        index of the polygon each comes from. ``radius`` and ``floor`` (the tolerances of
        :mod:`splinecam.engine.geometry`): floats, or tensors with one entry per polygon (regions of
        several slices, :mod:`splinecam.engine.slices`)."""
        raise NotImplementedError

    def post(self, pos: int, in_place: bool) -> Callable[[Any, torch.Tensor], None]:
        """``post(item, g)`` on a batch of pieces (``item.poly``) whose environment ``item.env`` holds
        their parents' values (gathered by ``g``): appends the pieces' codes to ``item.codes`` and
        writes the step's output stack to ``item.env[pos]``. ``in_place``: the input stack is not
        read again and may be overwritten."""
        raise NotImplementedError

    # ------------------------------------------------------------------ verify side
    def codes_at(self, x: torch.Tensor, tol: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes ``(N, units)`` of real inputs ``x`` ``(N, n_in)`` (the step's input, flattened), and
        which of them are *clear*: farther than ``tol`` ``(N, 1)`` or ``(N, n_in)`` from a breakpoint
        or a tie, so that the partition's code must match."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def stack_args(self) -> list[int]:
        return [int(a) for a in self.step.args if isinstance(a, _Ref)]
