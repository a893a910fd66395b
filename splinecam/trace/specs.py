"""What the trace tells the engine about a piecewise-linear step (the specs that the engine's kinds read)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


# --------------------------------------------------------------------------- piecewise-linear specs
@dataclass
class PWLSpec:
    """An elementwise continuous piecewise-linear function.

    ``breakpoints`` ``t_1 < ... < t_m`` (floats) and ``m + 1`` slopes, one per piece; a slope is a
    float or a tensor broadcastable to the unit shape (PReLU's per-channel slope). On piece ``k``
    (``t_k < x <= t_{k+1}``) the function is ``slopes[k] * x + intercepts[k]``, the intercepts
    making it continuous with value ``value_at_first`` at ``t_1``.
    """

    kind: str
    breakpoints: list[float]
    slopes: list[Any]
    value_at_first: float = 0.0

    def intercepts(self) -> list[Any]:
        t = self.breakpoints
        v = self.value_at_first
        out = [v - self.slopes[0] * t[0]]
        val = v
        for k in range(1, len(self.slopes)):
            out.append(val - self.slopes[k] * t[k - 1])
            if k < len(t):
                val = self.slopes[k] * t[k] + out[k]
        return out

