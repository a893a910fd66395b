"""Piecewise-linear activations that torch lacks, usable in any model and understood exactly by splinecam.

* :class:`PiecewiseLinear`: a continuous function through given knots, with given slopes outside them;
* :class:`TriangleWave` and :class:`Sawtooth`: periodic activations (infinitely many breakpoints; the
  engine enumerates only those inside each region's value range).

The trace reads any instance of :class:`PiecewiseLinear` (and of any subclass) through its attributes
``breakpoints``, ``slopes``, ``intercepts`` and ``period``, so a subclass that sets its pieces with
:meth:`PiecewiseLinear._set_pieces` works with no further code. This module imports only torch.

Examples
--------
>>> import torch
>>> from splinecam.layers import PiecewiseLinear
>>> act = PiecewiseLinear(knots=[-1.0, 0.0, 1.0], values=[0.0, 1.0, 0.0])
>>> act(torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0])).tolist()
[0.0, 0.5, 1.0, 0.5, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

__all__ = ["PiecewiseLinear", "TriangleWave", "Sawtooth"]


class PiecewiseLinear(nn.Module):
    """A continuous piecewise-linear activation through the points ``(knots[i], values[i])``.

    Left of the first knot it has slope ``left_slope``, right of the last ``right_slope``; between
    knots it interpolates linearly. Applied elementwise.

    Parameters
    ----------
    knots : sequence of float
        Strictly increasing breakpoints (at least one).
    values : sequence of float
        The function's value at each knot.
    left_slope, right_slope : float
        Slopes before the first and after the last knot.

    Examples
    --------
    >>> import torch
    >>> relu6 = PiecewiseLinear([0.0, 6.0], [0.0, 6.0])
    >>> relu6(torch.tensor([-1.0, 3.0, 9.0])).tolist()
    [0.0, 3.0, 6.0]
    """

    def __init__(
        self,
        knots: Sequence[float],
        values: Sequence[float],
        left_slope: float = 0.0,
        right_slope: float = 0.0,
    ) -> None:
        super().__init__()
        t = [float(k) for k in knots]
        v = [float(x) for x in values]
        if len(t) < 1 or len(t) != len(v):
            raise ValueError(
                f"PiecewiseLinear needs as many values as knots, at least one (got {len(t)} knots, {len(v)} values)"
            )
        if any(b <= a for a, b in zip(t, t[1:])):
            raise ValueError(f"PiecewiseLinear knots must be strictly increasing, got {t}")
        inner = [(v[i + 1] - v[i]) / (t[i + 1] - t[i]) for i in range(len(t) - 1)]
        slopes = [float(left_slope), *inner, float(right_slope)]
        intercepts = [v[0] - slopes[0] * t[0]] + [v[i] - slopes[i + 1] * t[i] for i in range(len(t))]
        self._set_pieces(t, slopes, intercepts, period=None)

    def _set_pieces(
        self,
        breakpoints: Sequence[float],
        slopes: Sequence[float],
        intercepts: Sequence[float],
        period: float | None = None,
    ) -> None:
        """Set the function: piece ``k`` (between ``breakpoints[k - 1]`` and ``breakpoints[k]``) is
        ``slopes[k] * x + intercepts[k]``; with ``period``, ``x`` is taken modulo the period (the
        breakpoints then lie in ``(0, period)``) and the pieces describe ``[0, period)``."""
        if len(slopes) != len(breakpoints) + 1 or len(intercepts) != len(slopes):
            raise ValueError("one slope and one intercept per piece: len(breakpoints) + 1 of each")
        if period is not None and not (period > 0 and all(0 < b < period for b in breakpoints)):
            raise ValueError(f"a period must be positive, with the breakpoints inside (0, period); got {period}")
        self.breakpoints = [float(b) for b in breakpoints]
        self.slopes = [float(s) for s in slopes]
        self.intercepts = [float(c) for c in intercepts]
        self.period = None if period is None else float(period)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = x if self.period is None else x - self.period * torch.floor(x / self.period)
        piece = torch.zeros_like(r, dtype=torch.long)
        for b in self.breakpoints:
            piece += (r > b).long()
        s = torch.tensor(self.slopes, dtype=x.dtype, device=x.device)[piece]
        c = torch.tensor(self.intercepts, dtype=x.dtype, device=x.device)[piece]
        return s * r + c

    def extra_repr(self) -> str:
        per = f", period={self.period}" if self.period is not None else ""
        return f"breakpoints={self.breakpoints}, slopes={self.slopes}{per}"


class TriangleWave(PiecewiseLinear):
    """A periodic triangle wave between 0 and 1: 0 at multiples of ``period``, 1 half-way between.

    Examples
    --------
    >>> import torch
    >>> TriangleWave(period=2.0)(torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, -0.5])).tolist()
    [0.0, 0.5, 1.0, 0.5, 0.0, 0.5]
    """

    def __init__(self, period: float = 1.0) -> None:
        nn.Module.__init__(self)
        p = float(period)
        if not p > 0:
            raise ValueError(f"TriangleWave needs a positive period, got {period}")
        self._set_pieces([p / 2], [2.0 / p, -2.0 / p], [0.0, 2.0], period=p)


class Sawtooth(PiecewiseLinear):
    """A periodic sawtooth ``x / period - floor(x / period)``: rises from 0 to 1, then jumps back.

    Examples
    --------
    >>> import torch
    >>> Sawtooth(period=2.0)(torch.tensor([0.0, 1.0, 2.5, -0.5])).tolist()
    [0.0, 0.5, 0.25, 0.75]
    """

    def __init__(self, period: float = 1.0) -> None:
        nn.Module.__init__(self)
        p = float(period)
        if not p > 0:
            raise ValueError(f"Sawtooth needs a positive period, got {period}")
        self._set_pieces([], [1.0 / p], [0.0], period=p)
