"""The check that linear operations in a traced forward() never touch the batch axis (which would mix regions).

Two passes. At trace time (:func:`_check_batch_axis`, from :func:`splinecam.trace.trace_model`) every
operation whose arguments name axis 0 is refused; a negative axis (``h.mean(-2)``) names axis 0 or not
depending on the tensor's rank, which the fx graph does not know, so it is left for the second pass.
That one (:func:`check_batch_axis_on_example`, run by the engine before any work) runs the program on a
small batch of real inputs: every negative axis is normalised with the rank of the tensor it applies to
and checked again, every value that depends on the input must keep the batch axis first with one row
per input (``reshape(-1, k)`` on an ``(N, F)`` tensor makes ``N F / k`` rows, and ``nn.Flatten(0)`` one),
and the output of each input must not depend on the other inputs of the batch.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UnsupportedModelError
from .program import Program, _map_args, _Ref, call_step

__all__ = ["check_batch_axis_on_example"]


def _batch_dim_error(label: str, why: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"{label} {why}; splinecam evaluates many regions as one batch, so an operation that mixes "
        "or reshapes the batch axis (axis 0) would mix regions. Operate on the feature axes only "
        "(dim >= 1, e.g. x.flatten(1), x.view(x.size(0), -1), x.mean(1))"
    )


def _norm(d: Any, rank: int | None, extra: int = 0) -> Any:
    """Axis ``d`` as a non-negative index for a tensor of ``rank`` axes (``extra``: 1 where the
    operation makes a new axis: ``unsqueeze``, ``stack``); None when it is negative and the rank
    is unknown. Anything but an int is returned as it is."""
    if isinstance(d, bool) or not isinstance(d, int) or d >= 0:
        return d
    if rank is None:
        return None
    return d + rank + extra


def _check_batch_axis(
    label: str, tgt: Any, args: tuple, kwargs: dict, is_stack: Callable[[Any], bool], rank: int | None = None
) -> None:
    """Refuse linear operations that touch the batch axis (they would mix regions).

    ``rank``: the number of axes of the tensor the operation applies to, when known (on a real
    example); without it, negative axes are not checked here (see the module docstring).
    """
    name = tgt if isinstance(tgt, str) else getattr(tgt, "__name__", "")
    rest = args[1:]

    def arg(pos: int, key: str, default: Any) -> Any:
        if key in kwargs:
            return kwargs[key]
        return rest[pos] if len(rest) > pos else default

    def dims_of(dim: Any, extra: int = 0) -> list[Any]:
        ds = list(dim) if isinstance(dim, (tuple, list)) else [dim]
        return [_norm(d, rank, extra) for d in ds]

    if tgt is operator.getitem:
        idx = args[1]
        first = idx[0] if isinstance(idx, tuple) and idx else idx
        if not ((isinstance(first, slice) and first == slice(None)) or first is Ellipsis):
            raise _batch_dim_error(label, "indexes the batch axis (index only the feature axes, e.g. x[:, :5])")
    elif name in ("mean", "sum"):
        dim = arg(0, "dim", None)
        if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0) or 0 in dims_of(dim):
            raise _batch_dim_error(label, f"reduces over the batch axis (dim={dim})")
    elif name in ("cat", "concat", "stack", "squeeze", "unsqueeze", "chunk", "split", "unbind"):
        if name in ("cat", "concat", "stack"):
            dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
        elif name in ("chunk", "split"):
            dim = arg(1, "dim", 0)
        else:
            dim = arg(0, "dim", 0 if name == "unbind" else None)
        if dim is None and name == "squeeze":
            raise _batch_dim_error(label, "may squeeze the batch axis (dim=None: give the axis, e.g. squeeze(1))")
        extra = 1 if name in ("stack", "unsqueeze") else 0
        if dim is not None and 0 in dims_of(dim, extra):
            raise _batch_dim_error(label, f"works along the batch axis (dim={dim})")
    elif name == "unflatten":
        if arg(0, "dim", None) == 0:
            raise _batch_dim_error(label, "unflattens the batch axis (unflatten a feature axis, dim >= 1)")
    elif name == "flatten":
        if _norm(arg(0, "start_dim", 0), rank) == 0:
            raise _batch_dim_error(label, "flattens the batch axis (use start_dim=1)")
    elif name in ("transpose", "swapaxes", "swapdims"):
        if 0 in (_norm(arg(0, "dim0", None), rank), _norm(arg(1, "dim1", None), rank)):
            raise _batch_dim_error(label, "moves the batch axis")
    elif name == "permute":
        dims = rest[0] if len(rest) == 1 and isinstance(rest[0], (tuple, list)) else rest
        if "dims" in kwargs:
            dims = kwargs["dims"]
        if dims:
            first = _norm(dims[0], rank)
            if first is not None and first != 0:
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


def _rank_of(v: Any) -> int | None:
    """Rank of a tensor argument (the first tensor of a list: ``torch.cat([a, b])``)."""
    if isinstance(v, torch.Tensor):
        return v.dim()
    if isinstance(v, (tuple, list)):
        for t in v:
            r = _rank_of(t)
            if r is not None:
                return r
    return None


def _rechecked(tgt: Any, args: tuple) -> bool:
    """Whether the trace-time check is made again with the rank known: not for reshapes (their
    sizes are now values, and the row count below checks them) nor for one element of a tuple."""
    name = tgt if isinstance(tgt, str) else getattr(tgt, "__name__", "")
    if name in ("view", "reshape"):
        return False
    return not (tgt is operator.getitem and isinstance(args[0], (tuple, list)))


def _tensors(v: Any) -> list[torch.Tensor]:
    if isinstance(v, torch.Tensor):
        return [v]
    if isinstance(v, (tuple, list)):
        return [t for x in v for t in _tensors(x)]
    return []


def _shapes(v: Any) -> str:
    return ", ".join(str(tuple(t.shape)) for t in _tensors(v)) or type(v).__name__


def check_batch_axis_on_example(program: Program, model: nn.Module, x: torch.Tensor) -> None:
    """Run ``program`` (traced from ``model``) on a batch ``x`` of real inputs (two or more
    different points) and refuse what would mix the batch's rows (see the module docstring).

    Raises
    ------
    UnsupportedModelError
        Naming the step that works along the batch axis, changes its length, or makes an input's
        output depend on the other inputs.

    Examples
    --------
    >>> import torch
    >>> from splinecam.trace import trace_model
    >>> class Net(torch.nn.Module):
    ...     def forward(self, x):
    ...         return torch.relu(x.reshape(-1, 2)).reshape(-1, 4)
    >>> net = Net()
    >>> try:
    ...     check_batch_axis_on_example(trace_model(net), net, torch.randn(3, 4))
    ... except UnsupportedModelError as e:
    ...     print(str(e)[:60])
    reshape (Tensor.reshape) changes the number of rows of the b
    """
    n = int(x.shape[0])
    steps = program.steps
    stack_kinds = ("input", "affine", "pwl")
    env: dict[int, Any] = {}
    with torch.no_grad():
        for i, step in enumerate(steps):
            if step.kind == "input":
                env[i] = x.clone()
                continue
            args = _map_args(step.args, lambda a: env[int(a)] if isinstance(a, _Ref) else a)
            kwargs = _map_args(step.kwargs, lambda a: env[int(a)] if isinstance(a, _Ref) else a)
            if step.kind == "affine" and step.mode == "linear" and args and _rechecked(step.target, args):
                _check_batch_axis(step.name, step.target, args, kwargs, lambda a: True, rank=_rank_of(args[0]))
            try:
                env[i] = call_step(step, args, kwargs, model)
            except Exception as exc:
                raise UnsupportedModelError(
                    f"{step.name} fails on a batch of {n} inputs ({type(exc).__name__}: {exc}); splinecam "
                    "evaluates many regions as one batch, so the model must accept any batch size and "
                    "treat every input alone (keep the batch axis first: x.view(x.size(0), ...))"
                ) from exc
            if step.kind in stack_kinds:
                bad = [t for t in _tensors(env[i]) if t.dim() == 0 or t.shape[0] != n]
                if bad:
                    raise _batch_dim_error(
                        step.name,
                        f"changes the number of rows of the batch ({n} inputs give shape {_shapes(env[i])})",
                    )
        out = env[program.output]
        # each input's output alone (rounding aside): nothing mixes the rows of the batch
        single = torch.cat([_run_alone(program, model, x[j:j + 1]) for j in range(n)])
    if isinstance(out, torch.Tensor) and isinstance(single, torch.Tensor) and out.shape == single.shape and out.numel():
        # rounding is relative to the largest value computed on the way, not to the output's
        scale = max(float(t.abs().max()) for k, v in env.items() if steps[k].kind in stack_kinds
                    for t in _tensors(v) if t.numel() and t.is_floating_point())
        err = float((out - single).abs().max())
        rel = max(1e-9, 1e3 * torch.finfo(out.dtype).eps) if out.is_floating_point() else 0.0
        if err > rel * scale and bool(torch.isfinite(out).all()):
            raise UnsupportedModelError(
                f"the model's output for one input depends on the other inputs of the batch (off by {err:.3g} "
                f"when computed alone); splinecam evaluates many regions as one batch, so an operation "
                "that mixes the batch axis (axis 0) would mix regions. Operate on the feature axes only"
            )


def _run_alone(program: Program, model: nn.Module, x: torch.Tensor) -> Any:
    env: dict[int, Any] = {}
    for i, step in enumerate(program.steps):
        if step.kind == "input":
            env[i] = x.clone()
            continue
        args = _map_args(step.args, lambda a: env[int(a)] if isinstance(a, _Ref) else a)
        kwargs = _map_args(step.kwargs, lambda a: env[int(a)] if isinstance(a, _Ref) else a)
        env[i] = call_step(step, args, kwargs, model)
    return env[program.output]
