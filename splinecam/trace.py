"""Turn a PyTorch model into an ordered program of affine and piecewise-linear steps.

``nn.Sequential`` models are walked directly (nested ones are flattened); any other module is
captured with :mod:`torch.fx`, which is what makes residual additions, concatenation and reshapes
possible. Each step of the resulting :class:`Program` is one of

* ``input``: the model's input,
* ``const``: a tensor that does not depend on the input (a parameter, a buffer, a literal),
* ``affine``: an affine function of its input-dependent arguments, applied to *affine stacks* (see
  :mod:`splinecam.engine`) by running the real torch module or function,
* ``pwl``: an elementwise piecewise-linear function (ReLU, LeakyReLU, ...) described by its
  breakpoints and slopes; these are the steps that cut regions,
* ``meta``: a shape query (``x.size(0)``, ``x.shape[0]``, ``x.dim()``), or a value computed from
  one, that feeds a reshape. Its value may depend on the number of regions in a batch, so the
  engine computes it again whenever it regroups regions; the values it reads stay alive as long
  as it does.

Anything else raises :class:`~splinecam.errors.NotPiecewiseLinearError` naming the module path and
type, before any work is done.
"""

from __future__ import annotations

import copy
import operator
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from .errors import NotPiecewiseLinearError, UnsupportedModelError

__all__ = ["PWLSpec", "Step", "Program", "trace_model", "prepare_model", "evaluate_program"]


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


def _pwl_from_module(mod: nn.Module) -> PWLSpec | None:
    if isinstance(mod, nn.ReLU):
        return PWLSpec("relu", [0.0], [0.0, 1.0])
    if isinstance(mod, nn.LeakyReLU):
        return PWLSpec("leaky_relu", [0.0], [float(mod.negative_slope), 1.0])
    return None


def _pwl_from_function(target: Any, args: tuple, kwargs: dict) -> PWLSpec | None:
    if target in (F.relu, torch.relu, torch.relu_, F.relu_, "relu", "relu_"):
        return PWLSpec("relu", [0.0], [0.0, 1.0])
    if target in (F.leaky_relu, F.leaky_relu_):
        slope = kwargs.get("negative_slope", args[1] if len(args) > 1 else 0.01)
        return PWLSpec("leaky_relu", [0.0], [float(slope), 1.0])
    return None


# --------------------------------------------------------------------------- classification tables
_AFFINE_MODULES: tuple[type, ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
)
_LINEAR_MODULES: tuple[type, ...] = (
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.Flatten,
    nn.Unflatten,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.ZeroPad2d,
)
_NOT_PWL_MODULES: tuple[type, ...] = (
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softmax,
    nn.LogSoftmax,
    nn.Softmin,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.Softplus,
    nn.Mish,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.LogSigmoid,
    nn.Softsign,
    nn.Tanhshrink,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LocalResponseNorm,
    nn.MultiheadAttention,
    nn.Bilinear,
)
_PWL_NOT_YET_MODULES: tuple[type, ...] = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
    nn.ReLU6,
    nn.Hardtanh,
    nn.PReLU,
    nn.Threshold,
    nn.Hardshrink,
    nn.Softshrink,
)
_NOT_PWL_FUNCTIONS = {
    F.gelu,
    F.silu,
    torch.sigmoid,
    F.sigmoid,
    torch.tanh,
    F.tanh,
    F.softmax,
    torch.softmax,
    F.log_softmax,
    torch.log_softmax,
    F.elu,
    F.selu,
    F.celu,
    F.softplus,
    F.mish,
    F.hardswish,
    F.hardsigmoid,
    F.layer_norm,
    F.group_norm,
    F.instance_norm,
    torch.exp,
    torch.log,
    torch.sqrt,
    torch.sin,
    torch.cos,
    operator.pow,
    torch.pow,
    torch.matmul,
    operator.matmul,
    torch.bmm,
    torch.einsum,
}
_PWL_NOT_YET_FUNCTIONS = {
    F.max_pool1d,
    F.max_pool2d,
    F.max_pool3d,
    F.adaptive_max_pool1d,
    F.adaptive_max_pool2d,
    F.relu6,
    F.hardtanh,
    F.prelu,
    torch.abs,
    torch.clamp,
    torch.clip,
    torch.max,
    torch.min,
    torch.maximum,
    torch.minimum,
    torch.amax,
    torch.amin,
}
# functions that are linear in their (single or several) input-dependent tensor arguments
_LINEAR_FUNCTIONS = {
    torch.flatten,
    torch.reshape,
    torch.cat,
    torch.concat,
    torch.stack,
    operator.neg,
    torch.neg,
    torch.transpose,
    torch.permute,
    torch.squeeze,
    torch.unsqueeze,
    torch.mean,
    torch.sum,
    F.avg_pool1d,
    F.avg_pool2d,
    F.avg_pool3d,
    F.adaptive_avg_pool1d,
    F.adaptive_avg_pool2d,
    F.adaptive_avg_pool3d,
    F.dropout,
    F.dropout1d,
    F.dropout2d,
    F.pixel_shuffle,
    F.pixel_unshuffle,
    operator.getitem,
    torch.chunk,
    torch.split,
    torch.unbind,
}
_AFFINE_FUNCTIONS = {F.linear, F.conv1d, F.conv2d, F.conv3d, F.batch_norm}
_LINEAR_METHODS = {
    "view",
    "reshape",
    "flatten",
    "contiguous",
    "permute",
    "transpose",
    "squeeze",
    "unsqueeze",
    "mean",
    "sum",
    "neg",
    "clone",
    "view_as",
    "reshape_as",
    "expand",
    "chunk",
    "split",
    "unbind",
    "float",
    "double",
    "to",
}
_META_METHODS = {"size", "dim"}
_TUPLE_RESULTS = {"chunk", "split", "unbind", torch.chunk, torch.split, torch.unbind}


def _batch_dim_error(label: str, why: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"{label} {why}; splinecam evaluates many regions as one batch, so an operation that mixes "
        "or reshapes the batch axis (axis 0) would mix regions. Operate on the feature axes only "
        "(dim >= 1, e.g. x.flatten(1), x.view(x.size(0), -1), x.mean(1))"
    )


def _check_batch_axis(label: str, tgt: Any, args: tuple, kwargs: dict, is_stack: Callable[[Any], bool]) -> None:
    """Refuse linear operations that touch the batch axis (they would mix regions)."""
    name = tgt if isinstance(tgt, str) else getattr(tgt, "__name__", "")
    rest = args[1:]

    def arg(pos: int, key: str, default: Any) -> Any:
        if key in kwargs:
            return kwargs[key]
        return rest[pos] if len(rest) > pos else default

    if tgt is operator.getitem:
        idx = args[1]
        first = idx[0] if isinstance(idx, tuple) and idx else idx
        if not ((isinstance(first, slice) and first == slice(None)) or first is Ellipsis):
            raise _batch_dim_error(label, "indexes the batch axis (index only the feature axes, e.g. x[:, :5])")
    elif name in ("mean", "sum"):
        dim = arg(0, "dim", None)
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        if dim is None or any(d == 0 for d in dims):
            raise _batch_dim_error(label, f"reduces over the batch axis (dim={dim})")
    elif name in ("cat", "concat", "stack", "squeeze", "unsqueeze", "chunk", "split", "unbind"):
        key_pos = {"cat": 0, "concat": 0, "stack": 0}.get(name, 1 if name in ("chunk", "split") else 0)
        default = 0 if name in ("cat", "concat", "stack", "unbind") else None
        if name in ("cat", "concat", "stack"):
            dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
        else:
            dim = arg(key_pos, "dim", default)
        if dim == 0 or (dim is None and name == "squeeze"):
            raise _batch_dim_error(label, f"works along the batch axis (dim={dim})")
    elif name == "flatten":
        if arg(0, "start_dim", 0) == 0:
            raise _batch_dim_error(label, "flattens the batch axis (use start_dim=1)")
    elif name in ("transpose",):
        if 0 in (arg(0, "dim0", None), arg(1, "dim1", None)):
            raise _batch_dim_error(label, "moves the batch axis")
    elif name == "permute":
        dims = rest[0] if len(rest) == 1 and isinstance(rest[0], (tuple, list)) else rest
        if dims and dims[0] != 0:
            raise _batch_dim_error(label, "moves the batch axis")
    elif name in ("view", "reshape"):
        shp = rest[0] if len(rest) == 1 and isinstance(rest[0], (tuple, list)) else rest
        if tgt is torch.reshape:
            shp = args[1] if len(args) > 1 else kwargs.get("shape", ())
        first = shp[0] if len(shp) else None
        if len(shp) < 2 or not (isinstance(first, _Ref) or first == -1):
            raise _batch_dim_error(label, "reshapes the batch axis (keep it first: x.view(x.size(0), ...))")
    elif tgt is F.dropout or name in ("dropout", "dropout1d", "dropout2d"):
        training = arg(1, "training", True)
        p = arg(0, "p", 0.5)
        if training is not False and p != 0:
            raise UnsupportedModelError(
                f"{label} calls dropout with training=True (F.dropout's default), so the model is "
                "random even in eval mode; pass training=self.training or use nn.Dropout"
            )
_ADD = {operator.add, operator.iadd, torch.add, "add", "add_", "__add__", "__radd__"}
_SUB = {operator.sub, operator.isub, torch.sub, "sub", "sub_", "__sub__", "__rsub__"}
_MUL = {operator.mul, operator.imul, torch.mul, "mul", "mul_", "__mul__", "__rmul__"}
_DIV = {operator.truediv, operator.itruediv, torch.div, torch.true_divide, "div", "div_"}


def _fn_name(target: Any) -> str:
    if isinstance(target, str):
        return f"Tensor.{target}"
    mod = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", repr(target))
    if mod.startswith("torch.nn.functional"):
        return f"torch.nn.functional.{name}"
    if mod.startswith("_operator") or mod == "operator":
        return f"operator.{name}"
    return f"torch.{name}" if mod.startswith("torch") or not mod else f"{mod}.{name}"


# --------------------------------------------------------------------------- program
@dataclass
class Step:
    """One step of a traced :class:`Program`."""

    kind: str  # "input" | "const" | "affine" | "pwl" | "meta" | "output"
    name: str  # module path or function name, for messages
    target: Any = None  # module, function or method name
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    op: str = ""  # fx opcode, or "module"
    mode: str = ""  # affine: "linear" | "bias" | "add" | "sub" | "rsub" | "mul" | "div"
    pwl: PWLSpec | None = None
    pwl_index: int = -1  # position among the pwl steps
    free_after: list[int] = field(default_factory=list)  # steps whose values die after this one


@dataclass
class Program:
    """A traced model: steps in topological order; ``output`` indexes the step giving the output."""

    steps: list[Step]
    output: int
    pwl_steps: list[int]

    @property
    def pwl_names(self) -> list[str]:
        return [self.steps[i].name for i in self.pwl_steps]

    def __repr__(self) -> str:
        lines = [f"Program({len(self.steps)} steps, {len(self.pwl_steps)} piecewise-linear):"]
        for i, s in enumerate(self.steps):
            if s.kind in ("affine", "pwl"):
                lines.append(f"  [{i}] {s.kind:6s} {s.name}")
        return "\n".join(lines)


class _Ref(int):
    """A reference to an earlier step's value inside a step's args."""


def _map_args(a: Any, fn: Callable[[Any], Any]) -> Any:
    if isinstance(a, (tuple, list)):
        return type(a)(_map_args(x, fn) for x in a)
    if isinstance(a, dict):
        return {k: _map_args(v, fn) for k, v in a.items()}
    return fn(a)


def _refs(a: Any) -> list[int]:
    out: list[int] = []
    _map_args(a, lambda x: out.append(int(x)) if isinstance(x, _Ref) else None)
    return out


# steps whose result may share memory with their (first) input: views, and modules or functions
# that return their input itself in eval mode
_VIEW_METHODS = {
    "view", "reshape", "flatten", "contiguous", "permute", "transpose", "squeeze", "unsqueeze",
    "view_as", "reshape_as", "expand", "chunk", "split", "unbind", "float", "double", "to", "t",
    "narrow", "__getitem__",
}
_VIEW_FUNCTIONS = {
    torch.flatten, torch.reshape, torch.transpose, torch.permute, torch.squeeze, torch.unsqueeze,
    operator.getitem, torch.chunk, torch.split, torch.unbind, F.dropout, F.dropout1d, F.dropout2d,
}
_VIEW_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                 nn.Flatten, nn.Unflatten)
_IN_PLACE_METHODS = {"add_", "sub_", "mul_", "div_", "relu_"}


def _in_place(step: Step) -> bool:
    """Whether ``step`` overwrites its first argument (``ReLU(inplace=True)``, ``x.add_(y)``...)."""
    if step.op == "module":
        return bool(getattr(step.target, "inplace", False))
    t = step.target
    if step.op == "call_method":
        return t in _IN_PLACE_METHODS
    if t in (torch.relu_, F.relu_, F.leaky_relu_):
        return True
    if t in (F.relu, F.leaky_relu, F.dropout, F.dropout1d, F.dropout2d):
        pos = {F.relu: 1, F.leaky_relu: 2}.get(t, 3)
        return bool(step.kwargs.get("inplace", step.args[pos] if len(step.args) > pos else False))
    return False


def _follow_in_place(steps: list[Step], output: int) -> int:
    """Make every read of a tensor that an in-place step overwrote read that step's value instead
    (what torch computes); returns the output's step. Reads of other views of the overwritten
    tensor cannot be followed this way and are refused."""
    parent: dict[int, int] = {}  # step -> the step whose memory its value may share

    def root(i: int) -> int:
        while i in parent:
            i = parent[i]
        return i

    for i, s in enumerate(steps):
        first = next(iter(_refs((s.args[:1], {}))), None)
        if first is None or s.kind not in ("affine", "pwl"):
            continue
        view = (
            (s.op == "call_method" and s.target in _VIEW_METHODS)
            or (s.op == "call_function" and s.target in _VIEW_FUNCTIONS)
            or (s.op == "module" and isinstance(s.target, _VIEW_MODULES))
        )
        if not (view or _in_place(s)):
            continue
        parent[i] = first
        if not _in_place(s):
            continue
        j = first

        def to_new(a: Any, j: int = j, i: int = i) -> Any:
            return _Ref(i) if isinstance(a, _Ref) and int(a) == j else a

        for k in range(i + 1, len(steps)):
            steps[k].args = _map_args(steps[k].args, to_new)
            steps[k].kwargs = _map_args(steps[k].kwargs, to_new)
        if output == j:
            output = i
        # other values sharing j's memory, made before step i and read after it, would see the
        # overwrite in torch but not here
        group = root(j)
        for k in range(i + 1, len(steps)):
            for r in _refs((steps[k].args, steps[k].kwargs)):
                if r < i and r != j and steps[r].kind in ("input", "affine", "pwl") and root(r) == group:
                    raise UnsupportedModelError(
                        f"{steps[i].name} works in place: it overwrites {steps[j].name}, which shares "
                        f"its memory with {steps[r].name}, read again later by {steps[k].name}. "
                        "splinecam follows later reads of the overwritten tensor itself, not of its "
                        "other views; use inplace=False (or an out-of-place op) there, or clone() the "
                        "value before it is overwritten, if that is the function you mean"
                    )
    return output


class _Tracer(fx.Tracer):
    """fx tracer that keeps every torch.nn module (and our known modules) as a leaf."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, nn.Sequential):
            return False
        if isinstance(m, _AFFINE_MODULES + _LINEAR_MODULES + _NOT_PWL_MODULES + _PWL_NOT_YET_MODULES):
            return True
        if isinstance(m, (nn.ReLU, nn.LeakyReLU)):
            return True
        return super().is_leaf_module(m, qualname)


def _flatten_sequential(seq: nn.Sequential, prefix: str) -> list[tuple[str, nn.Module]]:
    out: list[tuple[str, nn.Module]] = []
    # _modules, not named_children(): the same module object may appear several times
    for name, child in seq._modules.items():
        if child is None:
            continue
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(child, nn.Sequential):
            out.extend(_flatten_sequential(child, path))
        else:
            out.append((path, child))
    return out


def _is_leaf(m: nn.Module) -> bool:
    return isinstance(
        m,
        _AFFINE_MODULES + _LINEAR_MODULES + _NOT_PWL_MODULES + _PWL_NOT_YET_MODULES,
    ) or isinstance(m, (nn.ReLU, nn.LeakyReLU))


def _graph_of(model: nn.Module) -> tuple[fx.Graph, nn.Module]:
    """An fx graph of ``model``: built by hand for a Sequential of leaves, else by tracing."""
    if isinstance(model, nn.Sequential):
        leaves = _flatten_sequential(model, "")
        if all(_is_leaf(m) for _, m in leaves):
            g = fx.Graph()
            x = g.placeholder("x")
            for path, _ in leaves:
                x = g.call_module(path, (x,))
            g.output(x)
            return g, model
    try:
        g = _Tracer().trace(model)
    except Exception as exc:  # fx raises many types for data-dependent control flow
        raise UnsupportedModelError(
            f"could not trace {type(model).__name__} with torch.fx ({type(exc).__name__}: {exc}). "
            "splinecam needs a forward() without data-dependent Python control flow; write the "
            "model as nn.Sequential or remove branches that depend on tensor values"
        ) from exc
    return g, model


def _not_pwl(path: str, what: str, why: str) -> NotPiecewiseLinearError:
    return NotPiecewiseLinearError(f"{path} ({what}) {why}")


_WHY_NOT_PWL = (
    "is not piecewise-linear, so the model is not a continuous piecewise-affine function and has no "
    "exact linear-region partition; replace it with ReLU / LeakyReLU (or train such a model)"
)
_WHY_NOT_YET = (
    "is piecewise-linear but not supported yet by splinecam; supported nonlinearities are ReLU and "
    "LeakyReLU (modules or torch.relu / F.relu / F.leaky_relu)"
)
_WHY_UNKNOWN = (
    "is not a module splinecam knows to be affine or piecewise-linear. Supported: Linear, Conv1d/2d/3d, "
    "ConvTranspose, BatchNorm (eval), AvgPool, AdaptiveAvgPool, Flatten, Unflatten, Identity, Dropout, "
    "ReLU, LeakyReLU, and additions, concatenations, reshapes and constant scalings in forward()"
)


def trace_model(model: nn.Module) -> Program:
    """Trace ``model`` into a :class:`Program` of affine and piecewise-linear steps.

    Raises
    ------
    NotPiecewiseLinearError
        If a module or function is not piecewise-linear or not supported, naming its path and type.
    UnsupportedModelError
        If the model cannot be traced at all (data-dependent control flow, several inputs...).
    """
    graph, root = _graph_of(model)
    steps: list[Step] = []
    index: dict[fx.Node, int] = {}
    kinds: list[str] = []
    pwl_steps: list[int] = []
    output = -1

    def ref(a: Any) -> Any:
        return _Ref(index[a]) if isinstance(a, fx.Node) else a

    def is_stack(a: Any) -> bool:
        return isinstance(a, _Ref) and kinds[a] in ("input", "affine", "pwl")

    def add(step: Step) -> None:
        index[node] = len(steps)
        steps.append(step)
        kinds.append(step.kind)

    n_inputs = 0
    tuples: set[int] = set()  # steps whose value is a tuple of stacks
    for node in graph.nodes:
        args = _map_args(node.args, ref)
        kwargs = _map_args(dict(node.kwargs), ref)
        stack_args = [r for r in _refs((args, kwargs)) if kinds[r] in ("input", "affine", "pwl")]
        # computed from shape queries only (``x.shape[0]``, ``x.size(0) * 2``): a shape query too
        from_meta = any(kinds[r] == "meta" for r in _refs((args, kwargs)))
        if node.op == "placeholder":
            n_inputs += 1
            if n_inputs > 1:
                raise UnsupportedModelError(
                    f"the model's forward() takes more than one input ({node.name}); splinecam slices "
                    "a single input tensor. Wrap the model so that the other inputs are fixed"
                )
            add(Step("input", node.name, op="placeholder"))
        elif node.op == "get_attr":
            add(Step("const", node.target, target=node.target, op="get_attr"))
        elif node.op == "output":
            outs = _refs(args)
            if len(outs) != 1 or not isinstance(args[0], _Ref):
                raise UnsupportedModelError(
                    "the model must return a single tensor (logits or a scalar output), not a "
                    f"{type(node.args[0]).__name__}; wrap it to return one tensor"
                )
            output = outs[0]
        elif node.op == "call_module":
            path = str(node.target)
            mod = root.get_submodule(path)
            what = type(mod).__name__
            if not stack_args:
                kind = "meta" if from_meta else "const"
                add(Step(kind, path, target=mod, args=args, kwargs=kwargs, op="module"))
                continue
            spec = _pwl_from_module(mod)
            if spec is not None:
                add(Step("pwl", path, target=mod, args=args, op="module", pwl=spec))
                steps[-1].pwl_index = len(pwl_steps)
                pwl_steps.append(len(steps) - 1)
            elif isinstance(mod, _AFFINE_MODULES):
                if isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.running_mean is None:
                    raise UnsupportedModelError(
                        f"{path} ({what}) has track_running_stats=False, so it normalises with the "
                        "statistics of the batch even in eval mode: its output for one input depends "
                        "on the others and there is no fixed partition. Use running statistics"
                    )
                add(Step("affine", path, target=mod, args=args, kwargs=kwargs, op="module", mode="bias"))
            elif isinstance(mod, _LINEAR_MODULES):
                add(Step("affine", path, target=mod, args=args, kwargs=kwargs, op="module", mode="linear"))
            elif isinstance(mod, _NOT_PWL_MODULES):
                raise _not_pwl(path, what, _WHY_NOT_PWL)
            elif isinstance(mod, _PWL_NOT_YET_MODULES):
                raise _not_pwl(path, what, _WHY_NOT_YET)
            else:
                raise _not_pwl(path, what, _WHY_UNKNOWN)
        elif node.op in ("call_function", "call_method"):
            tgt = node.target
            label = f"{node.name} ({_fn_name(tgt)})"
            if not stack_args:
                add(Step("meta" if from_meta else "const", label, target=tgt, args=args, kwargs=kwargs, op=node.op))
                continue
            if node.op == "call_method" and tgt in _META_METHODS or (
                tgt is getattr and len(args) > 1 and args[1] in ("shape", "dtype", "device")
            ):
                add(Step("meta", label, target=tgt, args=args, kwargs=kwargs, op=node.op))
                continue
            spec = _pwl_from_function(tgt, node.args, dict(node.kwargs))
            if spec is not None:
                if len(stack_args) != 1 or not is_stack(args[0]):
                    raise _not_pwl(label, "function", "must be applied to one input-dependent tensor")
                add(Step("pwl", label, target=tgt, args=args, kwargs=kwargs, op=node.op, pwl=spec))
                steps[-1].pwl_index = len(pwl_steps)
                pwl_steps.append(len(steps) - 1)
                continue
            mode = ""
            if tgt in _ADD:
                mode = "add"
            elif tgt in _SUB:
                mode = "sub"
            elif tgt in _MUL:
                mode = "mul"
            elif tgt in _DIV:
                mode = "div"
            elif tgt in _LINEAR_FUNCTIONS or (node.op == "call_method" and tgt in _LINEAR_METHODS):
                mode = "linear"
            elif tgt in _AFFINE_FUNCTIONS:
                mode = "bias"
            elif tgt in _NOT_PWL_FUNCTIONS or tgt in ("sigmoid", "tanh", "softmax", "exp", "log"):
                raise _not_pwl(label, "function", _WHY_NOT_PWL)
            elif tgt in _PWL_NOT_YET_FUNCTIONS or tgt in ("abs", "clamp", "max", "min", "clip"):
                raise _not_pwl(label, "function", _WHY_NOT_YET)
            else:
                raise _not_pwl(label, "function", _WHY_UNKNOWN.replace("a module", "an operation"))
            if mode in ("mul", "div"):
                operands = [a for a in args[:2]]
                if len([a for a in operands if is_stack(a)]) != 1 or (mode == "div" and not is_stack(args[0])):
                    raise _not_pwl(
                        label,
                        "function",
                        "multiplies or divides two input-dependent tensors (or divides by one), "
                        "which is not piecewise-linear",
                    )
            if mode == "sub" and not is_stack(args[0]):
                mode = "rsub"
            if tgt is operator.getitem and isinstance(args[0], _Ref) and int(args[0]) in tuples:
                pass  # one element of a tuple of stacks (chunk / split results)
            elif mode == "linear":
                _check_batch_axis(label, tgt, args, kwargs, is_stack)
            add(Step("affine", label, target=tgt, args=args, kwargs=kwargs, op=node.op, mode=mode))
            if tgt in _TUPLE_RESULTS:
                tuples.add(len(steps) - 1)
        else:  # pragma: no cover - fx has no other opcodes
            raise UnsupportedModelError(f"unknown fx node {node.op}")

    if output < 0 or kinds[output] not in ("input", "affine", "pwl"):
        raise UnsupportedModelError("the model's output does not depend on its input")
    output = _follow_in_place(steps, output)
    # liveness: free each value after its last use (the output is kept)
    last: dict[int, int] = {}
    for i, s in enumerate(steps):
        for r in _refs((s.args, s.kwargs)):
            last[r] = i
    # a shape query is computed again when the engine regroups regions: what it reads lives as
    # long as it does (later queries first, so that chains of them extend each other)
    for i in range(len(steps) - 1, -1, -1):
        if kinds[i] == "meta" and i in last:
            for r in _refs((steps[i].args, steps[i].kwargs)):
                last[r] = max(last[r], last[i])
    for r, i in last.items():
        if r != output:
            steps[i].free_after.append(r)
    return Program(steps=steps, output=output, pwl_steps=pwl_steps)


# --------------------------------------------------------------------------- running on points
def call_step(step: Step, args: tuple, kwargs: dict, model: nn.Module) -> Any:
    """Run one step's real torch module, function or method on ``args`` (values, not refs)."""
    if step.op == "module":
        return step.target(*args, **kwargs)
    if step.op == "get_attr":
        obj: Any = model
        for part in str(step.target).split("."):
            obj = getattr(obj, part)
        return obj
    if step.op == "call_method":
        return getattr(args[0], step.target)(*args[1:], **kwargs)
    return step.target(*args, **kwargs)


def evaluate_program(
    program: Program, model: nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run ``program`` (traced from ``model``) on a batch of real inputs ``x``: the output and the
    input of every piecewise-linear step, flattened to ``(N, units)`` (copies taken before the step
    runs, since an in-place activation overwrites its input). ``x`` itself may be overwritten.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1)).eval()
    >>> y, pre = evaluate_program(trace_model(net), net, torch.zeros(5, 2))
    >>> tuple(y.shape), [tuple(p.shape) for p in pre]
    ((5, 1), [(5, 3)])
    """
    env: dict[int, Any] = {}
    pre: list[torch.Tensor] = []
    for i, step in enumerate(program.steps):
        if step.kind == "input":
            env[i] = x
            continue
        args = _map_args(step.args, lambda a: env[int(a)] if isinstance(a, _Ref) else a)
        kwargs = _map_args(step.kwargs, lambda a: env[int(a)] if isinstance(a, _Ref) else a)
        if step.kind == "pwl":
            pre.append(args[0].reshape(len(x), -1).clone())
        env[i] = call_step(step, args, kwargs, model)
    return env[program.output], pre


# --------------------------------------------------------------------------- model preparation
def autograd_attributes(model: nn.Module) -> list[torch.Tensor]:
    """Plain tensor attributes of ``model``'s modules that autograd made (non-leaf tensors).

    An activation cached in ``forward`` during training, or the weight of the old-style
    ``torch.nn.utils.weight_norm``: ``copy.deepcopy`` refuses them, so copies take them detached.
    """
    seen: dict[int, torch.Tensor] = {}
    for m in model.modules():
        for v in vars(m).values():
            if isinstance(v, torch.Tensor) and v.grad_fn is not None:
                seen.setdefault(id(v), v)
    return list(seen.values())


def prepare_model(
    model: nn.Module, dtype: torch.dtype = torch.float64, device: Any = None
) -> tuple[nn.Module, torch.device]:
    """A private copy of ``model`` in eval mode, on ``device`` (default: the model's), in ``dtype``.

    The user's model is never modified. A model in training mode is refused.
    """
    if not isinstance(model, nn.Module):
        raise UnsupportedModelError(
            f"model must be a torch.nn.Module, got {type(model).__name__}"
        )
    training = [n or type(model).__name__ for n, m in model.named_modules() if m.training]
    if training:
        raise UnsupportedModelError(
            f"the model is in training mode ({', '.join(training[:3])}{'...' if len(training) > 3 else ''}): "
            "BatchNorm and Dropout behave differently in training, so the partition would not be "
            "the function you evaluate. Call model.eval() first, or pass copy.deepcopy(model).eval() "
            "to leave your model as it is"
        )
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise UnsupportedModelError(
                f"parameter or buffer '{name}' contains NaN or Inf values; the network is not a "
                "finite piecewise-affine function. Check the training run that produced it"
            )
    if not dtype.is_floating_point:
        raise UnsupportedModelError(f"dtype must be a floating type, got {dtype}")
    if device is None:
        p = next(iter(list(model.parameters()) + list(model.buffers())), None)
        device = p.device if p is not None else torch.device("cpu")
    device = torch.device(device)
    memo = {id(v): v.detach().clone() for v in autograd_attributes(model)}
    copied = copy.deepcopy(model, memo)
    copied.to(device=device, dtype=dtype)
    copied.eval()
    for p in copied.parameters():
        p.requires_grad_(False)
    return copied, device
