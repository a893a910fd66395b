"""Simplifications of a traced program before the engine sees it: flat breakpoints of piecewise-linear
specs dropped, chains of activation-free Linear layers composed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import torch.nn as nn

from .program import _map_args, _Ref, _refs
from .specs import PWLSpec

__all__ = ["drop_flat_breakpoints", "compose_linear", "compose_linear_chains", "ComposedLinear"]


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


class ComposedLinear(nn.Linear):
    """Two or more consecutive ``nn.Linear`` layers of a traced model as one (made by
    :func:`compose_linear_chains` for one run; never part of a user's model).

    ``magnitude_weight`` and ``magnitude_bias`` hold the products of the parts' absolute weights
    (``|W2| |W1|``, ``|W2| |b1| + |b2|``): the noise floors of the engine bound the rounding of the
    parts' terms (:mod:`splinecam.engine.noise`), which the composed weights may cancel.
    """

    magnitude_weight: torch.Tensor
    magnitude_bias: torch.Tensor | None


def _as_parts(lin: nn.Linear) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
    if isinstance(lin, ComposedLinear):
        return lin.weight, lin.bias, lin.magnitude_weight, lin.magnitude_bias
    b = lin.bias
    return lin.weight, b, lin.weight.abs(), None if b is None else b.abs()


def _composed_bias(w2: torch.Tensor, b1: torch.Tensor | None, b2: torch.Tensor | None) -> torch.Tensor | None:
    """``w2 b1 + b2`` (a missing bias counts as zero), or None where both are missing."""
    if b1 is None and b2 is None:
        return None
    out = w2 @ b1 if b1 is not None else torch.zeros(w2.shape[0], dtype=w2.dtype, device=w2.device)
    return out + b2 if b2 is not None else out


def compose_linear(first: nn.Linear, second: nn.Linear) -> ComposedLinear:
    """``second(first(x))`` as one :class:`ComposedLinear` (weights ``W2 W1``, bias ``W2 b1 + b2``).

    Examples
    --------
    >>> import torch
    >>> a, b = torch.nn.Linear(2, 5).double(), torch.nn.Linear(5, 3).double()
    >>> x = torch.randn(4, 2, dtype=torch.float64)
    >>> bool(torch.allclose(compose_linear(a, b)(x), b(a(x))))
    True
    """
    w1, b1, m1, mb1 = _as_parts(first)
    w2, b2, m2, mb2 = _as_parts(second)
    with torch.no_grad():
        w = w2 @ w1
        b = _composed_bias(w2, b1, b2)
        # (skip_init: no random initial weights, they are replaced at once)
        out = torch.nn.utils.skip_init(ComposedLinear, w1.shape[1], w2.shape[0], bias=b is not None,
                                       device=w.device, dtype=w.dtype)
        out.weight = nn.Parameter(w, requires_grad=False)
        if b is not None:
            out.bias = nn.Parameter(b, requires_grad=False)
        out.magnitude_weight = m2 @ m1
        out.magnitude_bias = _composed_bias(m2, mb1, mb2)
    return out.eval()


def _plain_linear_step(step: Any) -> bool:
    return (
        step.kind == "affine" and step.op == "module" and isinstance(step.target, nn.Linear)
        and type(step.target) in (nn.Linear, ComposedLinear) and len(step.args) == 1
        and isinstance(step.args[0], _Ref) and not step.kwargs
    )


def compose_linear_chains(steps: list[Any], output: int, pwl_steps: list[int]) -> tuple[list[Any], int, list[int]]:
    """Merge every ``nn.Linear`` whose only input is another ``nn.Linear``, used nowhere else, into one
    :class:`ComposedLinear` (steps renumbered; run before the liveness analysis).

    Affine stacks then pass once through a chain of activation-free Linear layers instead of once
    per layer (a wide layer between two narrow ones costs its width per region otherwise). Two
    layers ``a -> b -> c`` are composed only where ``a c <= (a b + b c) / 2``: composing costs
    ``a b c`` once per call and saves ``a b + b c - a c`` per row of every region's stack.
    """
    uses: dict[int, int] = {}
    for s in steps:
        for r in _refs((s.args, s.kwargs)):
            uses[r] = uses.get(r, 0) + 1
    drop: set[int] = set()
    for j, s in enumerate(steps):
        if not _plain_linear_step(s):
            continue
        i = int(s.args[0])
        prev = steps[i]
        if i == output or uses.get(i, 0) != 1 or not _plain_linear_step(prev):
            continue
        a, b, c = prev.target.in_features, prev.target.out_features, s.target.out_features
        if 2 * a * c > a * b + b * c:  # composed only where it at least halves a region's products
            continue
        steps[j] = replace(s, name=f"{prev.name} -> {s.name}", target=compose_linear(prev.target, s.target),
                           args=prev.args)
        drop.add(i)
    if not drop:
        return steps, output, pwl_steps
    new_index: dict[int, int] = {}
    kept: list[Any] = []
    for i, s in enumerate(steps):
        if i not in drop:
            new_index[i] = len(kept)
            kept.append(s)

    def remap(a: Any) -> Any:
        return _Ref(new_index[int(a)]) if isinstance(a, _Ref) else a

    kept = [replace(s, args=_map_args(s.args, remap), kwargs=_map_args(s.kwargs, remap)) for s in kept]
    return kept, new_index[output], [new_index[i] for i in pwl_steps]
