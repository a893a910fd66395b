"""The rounding-noise scale of every unit: the floor of its line's on-the-line tolerance.

A unit that is identically zero on a region (exact cancellation: duplicate units subtracted, integer
weights without bias, the affine pieces of a lattice network) has rounding noise for coefficients
there, about 1e-16 of the *terms* that were summed to make it, and its "line" must not cut. Its own
value says nothing about that noise (it is zero), so the floor is set from the sum of the absolute
values of those terms: for a unit ``y_i = sum_j W_ij h_j + b_i`` after the last nonlinearity (or the
input), ``sum_j |W_ij| |h_j| + |b_i|``, through every affine step since then. It is computed per
unit (:func:`unit_scales`): one unit with huge weights or a huge bias (a never-active unit with bias
-1e12) then no longer blurs the lines of the rest of its layer, as a floor per layer did.

The terms' magnitudes are propagated through each affine step by its *absolute* version: the module
or function with its weights and bias replaced by their absolute values (a BatchNorm's running mean
by minus its absolute value, so that ``|x - mean|`` becomes ``|x| + |mean|``), applied to the
magnitudes of its inputs; sums add magnitudes; reshapes, pooling, means and other linear maps with
non-negative coefficients are applied as they are. A nonlinearity's output starts again from its
value: the noise of a unit's own input is far below the terms it feeds.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..trace import Program, _map_args, _Ref, call_step
from ..trace.program import pwl_inputs
from ..trace.simplify import ComposedLinear

__all__ = ["unit_scales"]

_STACK_KINDS = ("input", "affine", "pwl")


def _abs_floating(v: Any) -> Any:
    if isinstance(v, torch.Tensor) and v.is_floating_point():
        return v.abs()
    if isinstance(v, float):
        return abs(v)
    return v


def _abs_module_call(mod: nn.Module, args: tuple, kwargs: dict) -> Any:
    """``mod`` with absolute weights and biases (a BatchNorm's mean negated) on ``args``."""
    from torch.nn.utils import parametrize

    if parametrize.is_parametrized(mod):
        # (its weights are computed from others: no absolute version; the magnitude of the
        # output and of the bias is a smaller but still meaningful scale)
        zero = _map_args(args, lambda a: torch.zeros_like(a) if isinstance(a, torch.Tensor) else a)
        return mod(*args, **kwargs).abs() + mod(*zero, **kwargs).abs()
    if isinstance(mod, ComposedLinear) and len(args) == 1 and not kwargs:
        # the parts' absolute weights multiplied (the composed weights may cancel)
        return F.linear(args[0], mod.magnitude_weight, mod.magnitude_bias)
    if type(mod) in (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d) and len(args) == 1 and not kwargs:
        # (the common modules directly: torch.func.functional_call costs about 0.3 ms a call)
        absb = None if mod.bias is None else mod.bias.abs()
        if type(mod) is nn.Linear:
            return F.linear(args[0], mod.weight.abs(), absb)
        return mod._conv_forward(args[0], mod.weight.abs(), absb)
    params: dict[str, torch.Tensor] = {}
    for name, t in list(mod.named_parameters()) + list(mod.named_buffers()):
        if not t.is_floating_point():
            continue
        if isinstance(mod, nn.modules.batchnorm._BatchNorm) and name == "running_mean":
            params[name] = -t.abs()
        else:
            params[name] = t.abs()
    return torch.func.functional_call(mod, params, args, kwargs)


def _magnitude(step: Any, mags: tuple, kwargs: dict, model: nn.Module) -> Any:
    """The terms' magnitudes of an affine step's output (see the module docstring); ``mags`` are the
    arguments with every input-dependent value replaced by its magnitudes and every other floating
    tensor by its absolute value."""
    mode = step.mode
    if mode in ("add", "sub", "rsub"):
        alpha = abs(float(kwargs.get("alpha", 1.0)))
        return mags[0] + alpha * mags[1] if len(mags) > 1 else mags[0]
    if mode == "mul":
        return mags[0] * mags[1]
    if mode == "div":
        return mags[0] / mags[1]
    if mode == "bias":
        if step.op == "module":
            return _abs_module_call(step.target, mags, kwargs)
        if step.target is F.batch_norm:
            m = list(mags)
            if len(m) > 1 and isinstance(m[1], torch.Tensor):
                m[1] = -m[1]
            mags = tuple(m)
        return call_step(step, mags, kwargs, model)
    # linear maps (reshapes, pooling, means, concatenations, ...): coefficients >= 0 but for neg
    out = call_step(step, mags, kwargs, model)
    return _map_args(out, _abs_floating)


def unit_scales(program: Program, model: nn.Module, x: torch.Tensor, groups: int = 1) -> list[torch.Tensor]:
    """Per nonlinearity (in program order), the noise scale ``(units,)`` of every unit on the real
    inputs ``x``: the largest, over the points, of the sum of the absolute values of the terms that
    make the unit's input (at least its absolute value). ``x`` itself may be overwritten. With
    ``groups`` (consecutive groups of points of equal size: the points of several slices), one row
    per group: ``(groups, units)``; the example's one group gives ``(1, units)``.

    Examples
    --------
    >>> import torch
    >>> from splinecam.trace import trace_model
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()).double()
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0, -1.0], [1e8, 0.0]])); _ = net[0].bias.fill_(-1.0)
    >>> unit_scales(trace_model(net), net, torch.tensor([[2.0, 2.0]], dtype=torch.float64))[0].tolist()
    [[5.0, 200000001.0]]
    """
    steps = program.steps
    val: dict[int, Any] = {}
    mag: dict[int, Any] = {}
    out: list[torch.Tensor] = []
    n = int(x.shape[0])
    with torch.no_grad():
        for i, step in enumerate(steps):
            if step.kind == "input":
                val[i] = x
                mag[i] = x.abs()
                continue

            def v_of(a: Any) -> Any:
                return val[int(a)] if isinstance(a, _Ref) else a

            def m_of(a: Any) -> Any:
                if isinstance(a, _Ref):
                    return mag[int(a)] if steps[int(a)].kind in _STACK_KINDS else _abs_floating(val[int(a)])
                return _abs_floating(a)

            args = _map_args(step.args, v_of)
            kwargs = _map_args(step.kwargs, v_of)
            if step.kind == "pwl":
                pre = pwl_inputs(step, args, n)[0]
                m_in = pwl_inputs(step, _map_args(step.args, m_of), n)[0]
                s = torch.maximum(m_in, pre.abs()).reshape(groups, n // groups, -1).amax(1)
                # (an overflow of the magnitudes: fall back to the layer's largest input)
                bad = ~torch.isfinite(s)
                if bool(bad.any()):
                    s = torch.where(bad, pre.abs().amax(), s)
                out.append(s)
                m_args = None
            elif step.kind == "affine":
                m_args = (_map_args(step.args, m_of), _map_args(step.kwargs, m_of))
            else:
                m_args = None
            val[i] = call_step(step, args, kwargs, model)
            if step.kind == "pwl":
                mag[i] = _map_args(val[i], _abs_floating)
            elif step.kind == "affine":
                assert m_args is not None
                mag[i] = _magnitude(step, m_args[0], m_args[1], model)
    return out
