"""Capture a model as a :class:`~splinecam.trace.program.Program`: ``nn.Sequential`` walked directly,
anything else traced with :mod:`torch.fx`; every node classified by the tables."""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn

from ..errors import NotPiecewiseLinearError, UnsupportedModelError
from .batch_axis import _check_batch_axis
from .in_place import _follow_in_place
from .nonlinear import PWL_MODULES, TUPLE_PWL, spec_of_call, spec_of_module
from .program import Program, Step, _map_args, _Ref, _refs
from .simplify import compose_linear_chains, drop_flat_breakpoints
from .specs import GroupSpec, PWLSpec
from .tables import (
    _ADD,
    _AFFINE_FUNCTIONS,
    _AFFINE_MODULES,
    _DIV,
    _LINEAR_FUNCTIONS,
    _LINEAR_METHODS,
    _LINEAR_MODULES,
    _META_METHODS,
    _MUL,
    _NOT_PWL_FUNCTIONS,
    _NOT_PWL_MODULES,
    _PWL_NOT_YET_FUNCTIONS,
    _PWL_NOT_YET_MODULES,
    _SUB,
    _TUPLE_RESULTS,
    _fn_name,
)


class _Tracer(fx.Tracer):
    """fx tracer that keeps every torch.nn module (and our known modules) as a leaf."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, nn.Sequential):
            return False
        if _is_leaf(m):
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
        _AFFINE_MODULES + _LINEAR_MODULES + _NOT_PWL_MODULES + _PWL_NOT_YET_MODULES + tuple(PWL_MODULES),
    )


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
    "is not piecewise-linear, so the model is not a piecewise-affine function and has no exact "
    "linear-region partition; replace it with a piecewise-linear one (ReLU, LeakyReLU, PReLU, Hardtanh, "
    "Hardsigmoid, abs, clamp, max-pooling, splinecam.layers.PiecewiseLinear, ...; see docs/layers.md)"
)
_WHY_NOT_YET = (
    "is piecewise-linear but not supported yet by splinecam; supported nonlinearities are ReLU and "
    "LeakyReLU (modules or torch.relu / F.relu / F.leaky_relu)"
)
_WHY_UNKNOWN = (
    "is not a module splinecam knows to be affine or piecewise-linear. Supported: Linear, Conv1d/2d/3d, "
    "ConvTranspose, BatchNorm (eval), AvgPool, AdaptiveAvgPool, Flatten, Unflatten, Identity, Dropout, "
    "the ReLU family, Hardtanh, Hardsigmoid, abs, clamp, MaxPool, AdaptiveMaxPool, splinecam.layers, and "
    "additions, concatenations, reshapes, max/min and constant scalings in forward() (docs/layers.md)"
)


def _named(path: str, what: str, make: Any, *args: Any) -> Any:
    """``make(*args)``, with the module path and type put in front of a refusal it raises."""
    try:
        return make(*args)
    except NotPiecewiseLinearError as exc:
        raise _not_pwl(path, what, str(exc)) from None


def _resolve(a: Any, root: nn.Module) -> Any:
    """fx call arguments with parameters and buffers (``get_attr`` nodes) replaced by their tensors,
    so that a spec can read them (PReLU's weight); other nodes stay nodes."""

    def one(x: Any) -> Any:
        if isinstance(x, fx.Node) and x.op == "get_attr":
            obj: Any = root
            for part in str(x.target).split("."):
                obj = getattr(obj, part)
            return obj
        return x

    return _map_args(a, one)


def _pwl_call_step(
    label: str, tgt: Any, args: tuple, kwargs: dict, op: str, spec: Any, is_stack: Any, stack_args: list[int]
) -> Step:
    """The step of a piecewise-linear function or method call, with its operands checked."""
    if isinstance(spec, GroupSpec) and spec.how == "pair":
        flags = (is_stack(args[0]) if args else False, is_stack(args[1]) if len(args) > 1 else False)
        if not any(flags) or len(args) < 2 or any(r not in _refs(args[:2]) for r in stack_args):
            raise _not_pwl(label, "function", "must take two tensors, at least one input-dependent")
        spec.params["stack"] = flags
        return Step("pwl", label, target=tgt, args=args, kwargs=kwargs, op=op, pwl=spec)
    if len(stack_args) != 1 or not is_stack(args[0]):
        raise _not_pwl(label, "function", "must be applied to one input-dependent tensor")
    if isinstance(spec, GroupSpec) and spec.how == "dim" and tgt in TUPLE_PWL:
        # ``torch.max(x, dim)`` / ``x.max(dim)``: evaluated as amax / amin (the values alone)
        fn = torch.amax if spec.reduce == "max" else torch.amin
        return Step("pwl", label, target=fn, args=(args[0], spec.params["dims"], spec.params["keepdim"]),
                    op="call_function", pwl=spec)
    return Step("pwl", label, target=tgt, args=args, kwargs=kwargs, op=op, pwl=spec)


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
    values_of: set[int] = set()  # max/min steps whose (values, indices) result is read by index
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
            spec = _named(path, what, spec_of_module, mod)
            if isinstance(spec, PWLSpec) and drop_flat_breakpoints(spec) is None:  # affine: one piece
                add(Step("affine", path, target=mod, args=args, kwargs=kwargs, op="module", mode="bias"))
            elif spec is not None:
                if len(stack_args) != 1 or not is_stack(args[0]):
                    raise _not_pwl(path, what, "must be applied to one input-dependent tensor")
                if isinstance(spec, PWLSpec):
                    spec = drop_flat_breakpoints(spec)
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
            if (tgt is operator.getitem or tgt is getattr) and isinstance(args[0], _Ref) and int(args[0]) in values_of:
                # ``torch.max(x, dim)`` returns (values, indices): the step gives the values
                if args[1] in (0, "values"):
                    index[node] = int(args[0])
                    continue
                raise _not_pwl(label, "function", "reads the indices of a max or min, which are not "
                               "piecewise-linear functions of the input; use the values only")
            spec = _named(label, "function", spec_of_call, tgt, _resolve(node.args, root), _resolve(dict(node.kwargs), root))
            if spec is not None:
                if isinstance(spec, PWLSpec) and drop_flat_breakpoints(spec) is None:  # affine: one piece
                    if len(stack_args) != 1 or not is_stack(args[0]):
                        raise _not_pwl(label, "function", "must be applied to one input-dependent tensor")
                    add(Step("affine", label, target=tgt, args=args, kwargs=kwargs, op=node.op, mode="bias"))
                    continue
                if isinstance(spec, PWLSpec):
                    spec = drop_flat_breakpoints(spec)
                step = _pwl_call_step(label, tgt, args, kwargs, node.op, spec, is_stack, stack_args)
                add(step)
                step.pwl_index = len(pwl_steps)
                pwl_steps.append(len(steps) - 1)
                if tgt in TUPLE_PWL and spec.how == "dim":
                    values_of.add(len(steps) - 1)
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
            elif tgt in _PWL_NOT_YET_FUNCTIONS:
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
    steps, output, pwl_steps = compose_linear_chains(steps, output, pwl_steps)
    kinds = [s.kind for s in steps]
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


