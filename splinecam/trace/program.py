"""A traced model as a program: :class:`Step`, :class:`Program`, references between steps, and
running a program on real points."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn as nn

from .specs import GroupSpec, PWLSpec


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
    program: Program, model: nn.Module, x: torch.Tensor, with_shapes: bool = False
) -> Any:
    """Run ``program`` (traced from ``model``) on a batch of real inputs ``x``: the output and the
    input of every piecewise-linear step, flattened to ``(N, units)`` (copies taken before the step
    runs, since an in-place activation overwrites its input; a max of two tensors gets both,
    concatenated). ``x`` itself may be overwritten. ``with_shapes``: also the per-sample shapes of
    every piecewise-linear step's inputs (what :func:`splinecam.engine.kinds.kind_for` takes).

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
    shapes: list[list[tuple[int, ...]]] = []
    for i, step in enumerate(program.steps):
        if step.kind == "input":
            env[i] = x
            continue
        args = _map_args(step.args, lambda a: env[int(a)] if isinstance(a, _Ref) else a)
        kwargs = _map_args(step.kwargs, lambda a: env[int(a)] if isinstance(a, _Ref) else a)
        if step.kind == "pwl":
            flat, shp = pwl_inputs(step, args, len(x))
            pre.append(flat)
            shapes.append(shp)
        env[i] = call_step(step, args, kwargs, model)
        del args, kwargs
        for r in step.free_after:  # (values no later step reads: a VGG11 holds 17 MB per point)
            env.pop(r, None)
    if with_shapes:
        return env[program.output], pre, shapes
    return env[program.output], pre


def pwl_inputs(step: Step, args: tuple, n: int) -> tuple[torch.Tensor, list[tuple[int, ...]]]:
    """The input of a piecewise-linear step on ``n`` real points, flattened to ``(n, units)`` (a copy),
    and the per-sample shapes of its operands. ``torch.maximum(a, b)`` has both operands, a constant
    one broadcast to the output's shape."""
    spec = step.pwl
    if isinstance(spec, GroupSpec) and spec.how == "pair":
        vals = [torch.as_tensor(a) for a in args[:2]]
        full = torch.broadcast_shapes(*(v.shape for v in vals))
        parts, shapes = [], []
        for v, is_stack in zip(vals, spec.params["stack"]):
            if not is_stack:
                v = torch.broadcast_to(v.to(dtype=vals[0].dtype if spec.params["stack"][0] else vals[1].dtype), full)
            parts.append(v.reshape(n, -1))
            shapes.append(tuple(v.shape[1:]))
        return torch.cat(parts, 1).clone(), shapes
    return args[0].reshape(n, -1).clone(), [tuple(args[0].shape[1:])]
