"""What the trace tells the engine about a piecewise-linear step: the specs that the engine's kinds read.

Two families, one engine kind each (:mod:`splinecam.engine.kinds`):

* :class:`PWLSpec`: an **elementwise** piecewise-linear function, given by its breakpoints and the affine
  map of each piece (ReLU, LeakyReLU, PReLU, ReLU6, Hardtanh, Hardsigmoid, Softshrink, Hardshrink,
  Threshold, abs, clamp, :mod:`splinecam.layers`); possibly periodic (infinitely many breakpoints).
* :class:`GroupSpec`: a **max or min over groups** of units (MaxPool, AdaptiveMaxPool, ``amax``/``amin``,
  ``max(dim).values``, maxout, ``torch.maximum``/``minimum`` of two tensors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["PWLSpec", "GroupSpec"]


@dataclass
class PWLSpec:
    """An elementwise piecewise-linear function.

    ``breakpoints`` ``t_1 < ... < t_m`` (floats) and ``m + 1`` slopes, one per piece; a slope is a
    float or a tensor broadcastable to the unit shape (PReLU's per-channel slope). On piece ``k``
    (``t_k < x <= t_{k+1}``; the code of a unit is the number of breakpoints below its value) the
    function is ``slopes[k] * x + intercepts[k]``. By default the intercepts make it continuous, with
    value ``value_at_first`` at ``t_1``; ``explicit_intercepts`` gives them directly (a function with
    jumps: Hardshrink, Threshold, Sawtooth).

    ``period``: a periodic function, ``f(x + period) = f(x)``. Then ``breakpoints`` lie in
    ``(0, period)``, the multiples of ``period`` are breakpoints too, and ``slopes`` / intercepts
    describe the ``m + 1`` pieces of the period ``[0, period)`` (intercepts relative to its start).
    The code of a unit is ``q * (m + 1) + k`` on piece ``k`` of period ``q = floor(x / period)``.
    """

    kind: str
    breakpoints: list[float]
    slopes: list[Any]
    value_at_first: float = 0.0
    explicit_intercepts: list[Any] | None = None
    period: float | None = None

    def intercepts(self) -> list[Any]:
        """The intercept of every piece (see the class docstring)."""
        if self.explicit_intercepts is not None:
            return list(self.explicit_intercepts)
        t = self.breakpoints
        if not t:
            return [self.value_at_first]
        v = self.value_at_first
        out = [v - self.slopes[0] * t[0]]
        val = v
        for k in range(1, len(self.slopes)):
            out.append(val - self.slopes[k] * t[k - 1])
            if k < len(t):
                val = self.slopes[k] * t[k] + out[k]
        return out

    @property
    def has_jumps(self) -> bool:
        """Whether the function jumps at a breakpoint (Hardshrink, Threshold, Sawtooth...)."""
        if self.explicit_intercepts is None:
            return False
        c = self.intercepts()
        ends = list(self.breakpoints)
        pairs = [(k, k + 1, t) for k, t in enumerate(ends)]
        if self.period is not None:  # the end of the period meets the start of the next one
            pairs.append((len(self.slopes) - 1, 0, None))
        for k, j, t in pairs:
            if any(isinstance(v, torch.Tensor) and v.numel() > 1 for v in (self.slopes[k], self.slopes[j])):
                return True  # (per-unit slopes with explicit intercepts: treated as jumping)
            left = float(self.slopes[k]) * (self.period if t is None else t) + float(c[k])
            right = float(self.slopes[j]) * (0.0 if t is None else t) + float(c[j])
            if abs(left - right) > 1e-12 * max(1.0, abs(left), abs(right)):
                return True
        return False

    @property
    def continuous(self) -> bool:
        """Continuous and not periodic: what the fast MLP paths assume."""
        return self.period is None and not self.has_jumps


@dataclass
class GroupSpec:
    """A max (or min) over groups of units; the code of a group is the index of its winner.

    ``reduce``: ``"max"`` or ``"min"``. ``how`` says how the groups are formed from the input's
    feature axes (the batch axis is never part of a group):

    * ``"pool"``: pooling windows; ``params`` holds ``dims`` (1, 2 or 3 spatial axes), ``kernel``,
      ``stride``, ``padding``, ``dilation`` (tuples) and ``ceil_mode``. The winner's index is its
      position in the window (row-major over the kernel offsets).
    * ``"adaptive"``: adaptive pooling; ``params`` holds ``dims`` and ``output_size``.
    * ``"dim"``: a reduction over feature axes; ``params`` holds ``dims`` (negative allowed) and
      ``keepdim``. The winner's index is its position along the reduced axes (row-major).
    * ``"pair"``: ``torch.maximum`` / ``minimum`` of two tensors (broadcast); code 0: the first
      argument wins, 1: the second.
    """

    reduce: str
    how: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return f"{self.reduce}_{self.how}"
