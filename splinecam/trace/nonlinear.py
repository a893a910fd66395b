"""The piecewise-linear table: every nonlinearity splinecam cuts by, and the spec the engine gets for it.

Two tables, read by :mod:`splinecam.trace.capture` and by the generated list of supported layers
(``docs/layers.md``, ``scripts/layers_doc.py``): :data:`PWL_MODULES` (a module class -> a function of
the module giving its spec) and :data:`PWL_FUNCTIONS` (a function or ``Tensor`` method -> a function
of the call's arguments giving its spec, or ``None`` where the call is not piecewise-linear in the way
it is written, e.g. ``torch.max(x)`` over every axis). Each entry has a one-line description.

Elementwise functions give a :class:`~splinecam.trace.specs.PWLSpec`, max/min over groups a
:class:`~splinecam.trace.specs.GroupSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import NotPiecewiseLinearError
from ..layers import PiecewiseLinear
from .specs import GroupSpec, PWLSpec

__all__ = ["PWL_MODULES", "PWL_FUNCTIONS", "Entry", "spec_of_module", "spec_of_call"]

Spec = Any  # PWLSpec | GroupSpec


@dataclass(frozen=True)
class Entry:
    """One row of a table: how to read the spec, and what the row covers (for the docs)."""

    make: Callable[..., Spec]
    kind: str  # "elementwise" | "max/min over groups"
    doc: str


# --------------------------------------------------------------------------- elementwise specs
def relu() -> PWLSpec:
    return PWLSpec("relu", [0.0], [0.0, 1.0])


def leaky(slope: float) -> PWLSpec:
    return PWLSpec("leaky_relu", [0.0], [float(slope), 1.0])


def clamp(lo: Any, hi: Any, what: str = "clamp") -> PWLSpec:
    for v, name in ((lo, "min"), (hi, "max")):
        if v is not None and not isinstance(v, (int, float)):
            if isinstance(v, torch.Tensor) and v.numel() == 1:
                continue
            raise NotPiecewiseLinearError(
                f"{what} with a tensor-valued or input-dependent {name} ({type(v).__name__}) is not supported: "
                "splinecam needs scalar bounds (write torch.maximum / torch.minimum for a tensor bound)"
            )
    lo = None if lo is None else float(lo)
    hi = None if hi is None else float(hi)
    if lo is None and hi is None:
        raise NotPiecewiseLinearError(f"{what} needs at least one of min and max")
    if lo is not None and hi is not None:
        if not lo < hi:
            raise NotPiecewiseLinearError(
                f"{what} with min {lo} >= max {hi} is a constant function (torch then returns max everywhere); "
                "use min < max"
            )
        return PWLSpec(what, [lo, hi], [0.0, 1.0, 0.0], value_at_first=lo)
    if lo is not None:
        return PWLSpec(what, [lo], [0.0, 1.0], value_at_first=lo)
    return PWLSpec(what, [hi], [1.0, 0.0], value_at_first=hi)


def shrink(lambd: float, hard: bool) -> PWLSpec:
    lam = float(lambd)
    if lam < 0:
        raise NotPiecewiseLinearError(f"{'hard' if hard else 'soft'}shrink needs lambd >= 0, got {lam}")
    if lam == 0:  # the identity
        return PWLSpec("hardshrink" if hard else "softshrink", [0.0], [1.0, 1.0])
    if hard:
        return PWLSpec("hardshrink", [-lam, lam], [1.0, 0.0, 1.0], explicit_intercepts=[0.0, 0.0, 0.0])
    return PWLSpec("softshrink", [-lam, lam], [1.0, 0.0, 1.0], value_at_first=0.0)


def threshold(th: float, value: float) -> PWLSpec:
    return PWLSpec("threshold", [float(th)], [0.0, 1.0], explicit_intercepts=[float(value), 0.0])


def prelu(weight: Any) -> PWLSpec:
    w = torch.as_tensor(weight).detach().clone()
    return PWLSpec("prelu", [0.0], [w if w.numel() > 1 else float(w.reshape(())), 1.0])


def custom(mod: PiecewiseLinear) -> PWLSpec:
    return PWLSpec(
        type(mod).__name__, list(mod.breakpoints), list(mod.slopes),
        explicit_intercepts=list(mod.intercepts), period=mod.period,
    )


# --------------------------------------------------------------------------- group specs
def pool(dims: int, kernel: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: Any, indices: Any, what: str) -> GroupSpec:
    if indices:
        raise NotPiecewiseLinearError(
            f"{what} with return_indices=True returns the argmax indices, which are not piecewise-linear; "
            "use return_indices=False"
        )
    return GroupSpec("max", "pool", {
        "dims": dims, "kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation,
        "ceil_mode": bool(ceil_mode),
    })


def adaptive(dims: int, output_size: Any, indices: Any, what: str) -> GroupSpec:
    if indices:
        raise NotPiecewiseLinearError(f"{what} with return_indices=True is not piecewise-linear; use return_indices=False")
    return GroupSpec("max", "adaptive", {"dims": dims, "output_size": output_size})


def reduce_dim(red: str, dim: Any, keepdim: Any, what: str) -> GroupSpec:
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        raise NotPiecewiseLinearError(
            f"{what} without a dim reduces over every axis, the batch axis (axis 0) too, which would mix "
            "regions; give the feature axes, e.g. x.amax(1) or x.flatten(1).amax(1)"
        )
    return GroupSpec(red, "dim", {"dims": dim, "keepdim": bool(keepdim)})


def pair(red: str, stack: tuple[bool, bool]) -> GroupSpec:
    return GroupSpec(red, "pair", {"stack": stack})


# --------------------------------------------------------------------------- the module table
def _m(make: Callable[[Any], Spec], kind: str, doc: str) -> Entry:
    return Entry(make, kind, doc)


_E = "elementwise"
_G = "max/min over groups"

PWL_MODULES: dict[type, Entry] = {
    nn.ReLU: _m(lambda m: relu(), _E, "max(x, 0)"),
    nn.LeakyReLU: _m(lambda m: leaky(m.negative_slope), _E, "any negative_slope (0, 1, negative, > 1)"),
    nn.PReLU: _m(lambda m: prelu(m.weight), _E, "one or per-channel slopes, read when traced"),
    nn.ReLU6: _m(lambda m: clamp(0.0, 6.0, "relu6"), _E, "min(max(x, 0), 6)"),
    nn.Hardtanh: _m(lambda m: clamp(m.min_val, m.max_val, "hardtanh"), _E, "any min_val < max_val"),
    nn.Hardsigmoid: _m(lambda m: PWLSpec("hardsigmoid", [-3.0, 3.0], [0.0, 1 / 6, 0.0]), _E, "x / 6 + 1 / 2 clipped to [0, 1]"),
    nn.Softshrink: _m(lambda m: shrink(m.lambd, False), _E, "x - lambd, 0, x + lambd"),
    nn.Hardshrink: _m(lambda m: shrink(m.lambd, True), _E, "x outside [-lambd, lambd], else 0 (jumps)"),
    nn.Threshold: _m(lambda m: threshold(m.threshold, m.value), _E, "x above threshold, else value (a jump)"),
    PiecewiseLinear: _m(custom, _E, "splinecam.layers.PiecewiseLinear, TriangleWave, Sawtooth and any subclass (periodic ones too)"),
    nn.MaxPool1d: _m(lambda m: pool(1, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, m.return_indices, "MaxPool1d"), _G, "kernel, stride, padding, dilation, ceil_mode"),
    nn.MaxPool2d: _m(lambda m: pool(2, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, m.return_indices, "MaxPool2d"), _G, "kernel, stride, padding, dilation, ceil_mode, overlapping windows"),
    nn.MaxPool3d: _m(lambda m: pool(3, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, m.return_indices, "MaxPool3d"), _G, "kernel, stride, padding, dilation, ceil_mode"),
    nn.AdaptiveMaxPool1d: _m(lambda m: adaptive(1, m.output_size, m.return_indices, "AdaptiveMaxPool1d"), _G, "any output_size"),
    nn.AdaptiveMaxPool2d: _m(lambda m: adaptive(2, m.output_size, m.return_indices, "AdaptiveMaxPool2d"), _G, "any output_size (None keeps an axis)"),
    nn.AdaptiveMaxPool3d: _m(lambda m: adaptive(3, m.output_size, m.return_indices, "AdaptiveMaxPool3d"), _G, "any output_size"),
}


def spec_of_module(mod: nn.Module) -> Spec | None:
    """The spec of a piecewise-linear module, or None if it is not one of :data:`PWL_MODULES`."""
    for cls in type(mod).__mro__:
        e = PWL_MODULES.get(cls)
        if e is not None:
            return e.make(mod)
    return None


# --------------------------------------------------------------------------- the function table
def _arg(args: tuple, kwargs: dict, pos: int, name: str, default: Any = None) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[pos] if len(args) > pos else default


def _f(make: Callable[[tuple, dict], Spec | None], kind: str, doc: str) -> Entry:
    return Entry(make, kind, doc)


def _clamp_call(a: tuple, k: dict) -> PWLSpec:
    return clamp(_arg(a, k, 1, "min"), _arg(a, k, 2, "max"))


def _max_call(red: str) -> Callable[[tuple, dict], Spec]:
    def make(a: tuple, k: dict) -> Spec:
        other = _arg(a, k, 1, "dim", _arg(a, k, 1, "other"))
        if other is None:
            return reduce_dim(red, None, False, f"torch.{red}")
        if isinstance(other, (int, tuple, list)) and not isinstance(other, bool) and not hasattr(other, "op"):
            return reduce_dim(red, other, _arg(a, k, 2, "keepdim", False), f"torch.{red}(x, dim)")
        return pair(red, (True, True))  # torch.max(x, y): elementwise maximum (the capture checks operands)

    return make


def _pool_call(dims: int) -> Callable[[tuple, dict], Spec]:
    def make(a: tuple, k: dict) -> Spec:
        return pool(
            dims, _arg(a, k, 1, "kernel_size"), _arg(a, k, 2, "stride"), _arg(a, k, 3, "padding", 0),
            _arg(a, k, 4, "dilation", 1), _arg(a, k, 5, "ceil_mode", False), _arg(a, k, 6, "return_indices", False),
            f"max_pool{dims}d",
        )

    return make


def _adaptive_call(dims: int) -> Callable[[tuple, dict], Spec]:
    def make(a: tuple, k: dict) -> Spec:
        return adaptive(dims, _arg(a, k, 1, "output_size"), _arg(a, k, 2, "return_indices", False),
                        f"adaptive_max_pool{dims}d")

    return make


def _reduce_call(red: str) -> Callable[[tuple, dict], Spec]:
    def make(a: tuple, k: dict) -> Spec:
        return reduce_dim(red, _arg(a, k, 1, "dim", None), _arg(a, k, 2, "keepdim", False), f"{red}")

    return make


_RELU = _f(lambda a, k: relu(), _E, "max(x, 0)")
_LEAKY = _f(lambda a, k: leaky(_arg(a, k, 1, "negative_slope", 0.01)), _E, "any negative_slope")
_RELU6 = _f(lambda a, k: clamp(0.0, 6.0, "relu6"), _E, "min(max(x, 0), 6)")
_HARDTANH = _f(lambda a, k: clamp(_arg(a, k, 1, "min_val", -1.0), _arg(a, k, 2, "max_val", 1.0), "hardtanh"), _E, "any min_val < max_val")
_HSIG = _f(lambda a, k: PWLSpec("hardsigmoid", [-3.0, 3.0], [0.0, 1 / 6, 0.0]), _E, "x / 6 + 1 / 2 clipped to [0, 1]")
_ABS = _f(lambda a, k: PWLSpec("abs", [0.0], [-1.0, 1.0]), _E, "|x|")
_CLAMP = _f(_clamp_call, _E, "scalar min, max or both")
_CMIN = _f(lambda a, k: clamp(_arg(a, k, 1, "min"), None, "clamp_min"), _E, "max(x, min)")
_CMAX = _f(lambda a, k: clamp(None, _arg(a, k, 1, "max"), "clamp_max"), _E, "min(x, max)")
_AMAX = _f(_reduce_call("max"), _G, "over feature axes (maxout: x.unflatten(1, (n, k)).amax(-1))")
_AMIN = _f(_reduce_call("min"), _G, "over feature axes")

PWL_FUNCTIONS: dict[Any, Entry] = {
    F.relu: _RELU, torch.relu: _RELU, torch.relu_: _RELU, F.relu_: _RELU, "relu": _RELU, "relu_": _RELU,
    F.leaky_relu: _LEAKY, F.leaky_relu_: _LEAKY,
    F.relu6: _RELU6,
    F.hardtanh: _HARDTANH, F.hardtanh_: _HARDTANH,
    F.hardsigmoid: _HSIG,
    F.softshrink: _f(lambda a, k: shrink(_arg(a, k, 1, "lambd", 0.5), False), _E, "x - lambd, 0, x + lambd"),
    F.hardshrink: _f(lambda a, k: shrink(_arg(a, k, 1, "lambd", 0.5), True), _E, "with jumps at +-lambd"),
    F.threshold: _f(lambda a, k: threshold(_arg(a, k, 1, "threshold"), _arg(a, k, 2, "value")), _E, "with a jump"),
    F.threshold_: _f(lambda a, k: threshold(_arg(a, k, 1, "threshold"), _arg(a, k, 2, "value")), _E, "with a jump"),
    F.prelu: _f(lambda a, k: prelu(_arg(a, k, 1, "weight")), _E, "weight a parameter or buffer"),
    torch.abs: _ABS, torch.absolute: _ABS, "abs": _ABS, "abs_": _ABS, "absolute": _ABS,
    torch.clamp: _CLAMP, torch.clip: _CLAMP, "clamp": _CLAMP, "clip": _CLAMP, "clamp_": _CLAMP, "clip_": _CLAMP,
    torch.clamp_min: _CMIN, "clamp_min": _CMIN, "clamp_min_": _CMIN,
    torch.clamp_max: _CMAX, "clamp_max": _CMAX, "clamp_max_": _CMAX,
    F.max_pool1d: _f(_pool_call(1), _G, "as MaxPool1d"),
    F.max_pool2d: _f(_pool_call(2), _G, "as MaxPool2d"),
    F.max_pool3d: _f(_pool_call(3), _G, "as MaxPool3d"),
    F.adaptive_max_pool1d: _f(_adaptive_call(1), _G, "as AdaptiveMaxPool1d"),
    F.adaptive_max_pool2d: _f(_adaptive_call(2), _G, "as AdaptiveMaxPool2d"),
    F.adaptive_max_pool3d: _f(_adaptive_call(3), _G, "as AdaptiveMaxPool3d"),
    torch.amax: _AMAX, "amax": _AMAX, torch.amin: _AMIN, "amin": _AMIN,
    torch.max: _f(_max_call("max"), _G, "max(x, dim).values, or max(x, y) elementwise"),
    "max": _f(_max_call("max"), _G, "x.max(dim).values, or x.max(y)"),
    torch.min: _f(_max_call("min"), _G, "min(x, dim).values, or min(x, y) elementwise"),
    "min": _f(_max_call("min"), _G, "x.min(dim).values, or x.min(y)"),
    torch.maximum: _f(lambda a, k: pair("max", (True, True)), _G, "of two tensors (broadcast), or of a tensor and a constant"),
    torch.minimum: _f(lambda a, k: pair("min", (True, True)), _G, "of two tensors (broadcast), or of a tensor and a constant"),
    torch.fmax: _f(lambda a, k: pair("max", (True, True)), _G, "as torch.maximum (no NaNs here)"),
    torch.fmin: _f(lambda a, k: pair("min", (True, True)), _G, "as torch.minimum"),
}

# calls that return (values, indices): only the values are piecewise-linear
TUPLE_PWL: set[Any] = {torch.max, torch.min, "max", "min"}


def spec_of_call(target: Any, args: tuple, kwargs: dict) -> Spec | None:
    """The spec of a piecewise-linear function or method call, or None if it is not in :data:`PWL_FUNCTIONS`."""
    try:
        e = PWL_FUNCTIONS.get(target)
    except TypeError:  # unhashable target
        return None
    return None if e is None else e.make(args, kwargs)
