"""The check that linear operations in a traced forward() never touch the batch axis (which would mix regions)."""

from __future__ import annotations

import operator
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..errors import UnsupportedModelError
from .program import _Ref


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
    elif name == "unflatten":
        if arg(0, "dim", None) == 0:
            raise _batch_dim_error(label, "unflattens the batch axis (unflatten a feature axis, dim >= 1)")
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
