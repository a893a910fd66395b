"""Affine stacks: every tensor of the network on a batch of regions, as affine functions of ``u``.

A tensor of shape ``(3 * B, *shape)`` whose rows ``3b``, ``3b + 1``, ``3b + 2`` hold, for region ``b``,
the value at ``u = 0`` and the two partial derivatives. :class:`_Runner` applies the program's
non-cutting steps to such stacks by running the real torch module on them; an affine step's bias (the
module applied to zeros) is then removed from the derivative rows.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from ..trace import Program, _map_args, _Ref, call_step
from ..trace.simplify import ComposedLinear
from .sparse_linear import linear_rows, sparse_weight
from .threads import big_op

__all__: list[str] = []

# Bytes of the column buffer of one convolution call. torch's CPU convolution in float64 unfolds
# the whole batch at once (``rows x in_channels x kernel x output positions``: 0.8 GiB for the 675
# rows of a 256-channel 3x3 convolution on 8x8 positions of VGG11, more than the stacks it maps);
# the rows of a stack are therefore run in blocks whose columns take at most this many bytes. Each
# row is convolved on its own either way, so the blocks give the same values bit for bit, in the
# same time.
_CONV_COLUMNS = 64 * 2**20


class _Runner:
    """Executes the non-cutting steps of a program on affine stacks."""

    def __init__(self, program: Program, model: nn.Module) -> None:
        self.program = program
        self.model = model
        self.bias_cache: dict[int, Any] = {}
        self.const_cache: dict[int, Any] = {}

    def run_step(self, i: int, env: dict[int, Any], nreg: int) -> Any:
        step = self.program.steps[i]
        if step.kind == "const":
            if i not in self.const_cache:
                args = _map_args(step.args, lambda a: env[int(a)] if isinstance(a, _Ref) else a)
                kwargs = _map_args(step.kwargs, lambda a: env[int(a)] if isinstance(a, _Ref) else a)
                self.const_cache[i] = call_step(step, args, kwargs, self.model)
            return self.const_cache[i]
        args = _map_args(step.args, lambda a: env[int(a)] if isinstance(a, _Ref) else a)
        kwargs = _map_args(step.kwargs, lambda a: env[int(a)] if isinstance(a, _Ref) else a)
        if step.kind == "meta":
            return call_step(step, args, kwargs, self.model)
        # affine (a big product with the user's CPU threads, see splinecam.engine.threads; a
        # convolution in blocks of rows)
        with big_op(sum(a.numel() for a in args if isinstance(a, torch.Tensor))):
            out = _call_in_blocks(step, args, kwargs, self.model)
        has_const = step.mode in ("bias", "add", "sub", "rsub")
        if has_const:
            stack_refs = {
                int(a)
                for a in _collect_refs((step.args, step.kwargs))
                if self.program.steps[int(a)].kind in ("input", "affine", "pwl")
            }
            const_refs = [
                int(a)
                for a in _collect_refs((step.args, step.kwargs))
                if int(a) not in stack_refs and self.program.steps[int(a)].kind == "const"
            ]
            pure_stack_sum = step.mode in ("add", "sub") and not const_refs and _only_refs(step.args[:2])
            if not pure_stack_sum:
                if i not in self.bias_cache:
                    def zero(a: Any) -> Any:
                        if isinstance(a, _Ref):
                            v = env[int(a)]
                            if int(a) in stack_refs:
                                return torch.zeros((1, *v.shape[1:]), dtype=v.dtype, device=v.device)
                            return v
                        return a

                    zargs = _map_args(step.args, zero)
                    zkwargs = _map_args(step.kwargs, zero)
                    self.bias_cache[i] = call_step(step, zargs, zkwargs, self.model)
                bias = self.bias_cache[i]
                fresh = out._base is None and all(
                    out.data_ptr() != env[r].data_ptr() for r in stack_refs if isinstance(env[r], torch.Tensor)
                )
                out = out.reshape(nreg, 3, *out.shape[1:])
                if not fresh:  # a view of an input: do not write into it
                    out = out.clone()
                out[:, 1:] -= bias
                out = out.reshape(nreg * 3, *out.shape[2:])
        return out


def _conv_rows(step: Any, args: tuple, kwargs: dict) -> int:
    """Rows per call of a convolution module step on a stack (see :data:`_CONV_COLUMNS`), or 0
    where the step is not one (or takes more than its one input)."""
    mod = step.target
    if step.op != "module" or not isinstance(mod, nn.modules.conv._ConvNd) or kwargs or len(args) != 1:
        return 0
    x = args[0]
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        return 0
    kernel = 1
    for k in mod.kernel_size:
        kernel *= int(k)
    per_row = x[0].numel() * kernel * x.element_size()  # (output positions ~ input positions)
    return max(1, _CONV_COLUMNS // max(1, per_row))


def _call_in_blocks(step: Any, args: tuple, kwargs: dict, model: nn.Module) -> Any:
    """``call_step``, a convolution on a stack in blocks of rows of bounded column bytes, an
    ``nn.Linear`` with a sparse weight by a sparse product (:mod:`splinecam.engine.sparse_linear`)."""
    mod = step.target
    if (
        step.op == "module" and type(mod) in (nn.Linear, ComposedLinear) and len(args) == 1 and not kwargs
        and isinstance(args[0], torch.Tensor) and args[0].dim() == 2 and sparse_weight(mod.weight) is not None
    ):
        out = linear_rows(args[0], mod.weight)
        return out if mod.bias is None else out.add_(mod.bias)
    rows = _conv_rows(step, args, kwargs)
    x = args[0] if rows else None
    if x is None or len(x) <= rows:
        return call_step(step, args, kwargs, model)
    first = call_step(step, (x[:rows],), kwargs, model)
    out = first.new_empty((len(x), *first.shape[1:]))
    out[:rows] = first
    del first
    for st in range(rows, len(x), rows):
        out[st:st + rows] = call_step(step, (x[st:st + rows],), kwargs, model)
    return out


def _gather(v: Any, g: torch.Tensor) -> Any:
    """Rows of the regions ``g`` of an affine stack (or of a tuple of stacks)."""
    if isinstance(v, (tuple, list)):
        return type(v)(_gather(t, g) for t in v)
    return torch.index_select(v.reshape(-1, 3 * v[0].numel()), 0, g).reshape(-1, *v.shape[1:])


def _collect_refs(a: Any) -> list[_Ref]:
    out: list[_Ref] = []
    _map_args(a, lambda x: out.append(x) if isinstance(x, _Ref) else None)
    return out


def _only_refs(args: tuple) -> bool:
    return len(args) == 2 and all(isinstance(a, _Ref) for a in args)


