"""Simplifications of piecewise-linear specs before the engine sees them."""

from __future__ import annotations

from typing import Any

import torch

from .specs import PWLSpec

__all__ = ["drop_flat_breakpoints"]


def _same_slope(a: Any, b: Any) -> bool:
    """Whether two slopes (floats or per-unit tensors) are equal for every unit."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        ta = torch.as_tensor(a, dtype=torch.float64)
        tb = torch.as_tensor(b, dtype=torch.float64)
        return bool(torch.equal(*torch.broadcast_tensors(ta, tb)))
    return float(a) == float(b)


def drop_flat_breakpoints(spec: PWLSpec) -> PWLSpec | None:
    """``spec`` without the breakpoints whose two slopes are equal (they bend nothing), or None when
    no breakpoint is left: the function is then affine, ``slopes[0] * x + intercepts()[0]``.

    A breakpoint with equal slopes on both sides (``LeakyReLU(negative_slope=1.0)``, a PReLU slope
    of 1) would otherwise cut regions along a line where the network's map does not change: needless
    cuts, neighbouring regions with one affine map. A breakpoint is dropped only where its slopes
    are equal for every unit (a per-channel slope that is 1 on some channels keeps it).

    Parameters
    ----------
    spec : PWLSpec
        An elementwise piecewise-linear function.

    Returns
    -------
    PWLSpec or None
        The same function with fewer breakpoints (``spec`` itself when none is flat), or None.

    Examples
    --------
    >>> drop_flat_breakpoints(PWLSpec("leaky_relu", [0.0], [1.0, 1.0])) is None
    True
    >>> s = drop_flat_breakpoints(PWLSpec("pwl", [-1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0]))
    >>> s.breakpoints, s.slopes
    ([0.0], [0.0, 1.0])
    """
    if spec.period is not None:  # (a periodic function keeps its pieces)
        return spec
    t = list(spec.breakpoints)
    slopes = list(spec.slopes)
    inter = spec.intercepts()
    # a breakpoint bends nothing when its two slopes are equal, and jumps nothing when its two
    # intercepts are too (a function with jumps gives them explicitly)
    keep = [k for k in range(len(t))
            if not (_same_slope(slopes[k], slopes[k + 1]) and _same_slope(inter[k], inter[k + 1]))]
    if len(keep) == len(t):
        return spec
    if not keep:
        return None
    # the pieces that are left, with their own intercepts, so that the function stays the same
    new_slopes = [slopes[keep[0]]] + [slopes[k + 1] for k in keep]
    new_inter = [inter[keep[0]]] + [inter[k + 1] for k in keep]
    if spec.explicit_intercepts is not None:
        return PWLSpec(spec.kind, [t[k] for k in keep], new_slopes, explicit_intercepts=new_inter)
    k0 = keep[0]
    value = slopes[k0] * t[k0] + inter[k0]
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = float(value)
    return PWLSpec(spec.kind, [t[k] for k in keep], new_slopes, value_at_first=value)
