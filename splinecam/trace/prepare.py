"""The private copy of a user's model that the engine works on (eval mode, its dtype and device);
the user's model is never modified."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn as nn

from ..errors import UnsupportedModelError


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
