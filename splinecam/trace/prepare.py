"""The private copy of a user's model that the engine works on (eval mode, its dtype and device);
the user's model is never modified."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn as nn
from torch.nn.utils.spectral_norm import SpectralNorm
from torch.nn.utils.weight_norm import WeightNorm

from ..errors import UnsupportedModelError

__all__ = ["autograd_attributes", "check_no_forward_hooks", "prepare_model"]

# pre-hooks that only compute a weight from other parameters (old-style weight_norm and
# spectral_norm, which in eval mode does no power iteration): the private copy bakes them
_WEIGHT_HOOKS = (WeightNorm, SpectralNorm)

# half precision keeps about 3 significant digits: vertices computed in it collide and its affine
# maps are far from the model's; the engine needs float64 (or float32, with a PrecisionWarning)
_HALF_DTYPES = (torch.float16, torch.bfloat16)


def check_no_forward_hooks(model: nn.Module) -> None:
    """Refuse a model with forward or forward-pre hooks (on any module, or registered globally).

    The engine does not run the model's modules one call per input: it runs affine modules on
    stacks of affine maps, and evaluates ReLU-like steps (and the MLP fast paths, whole
    ``ReLU -> Linear`` blocks) from their specs without calling the modules. A hook that changes a
    module's input or output would therefore be ignored or applied to the wrong values, and the
    partition would silently not be the model's. Hooks that only record values would see
    meaningless tensors. Backward hooks are irrelevant (nothing is differentiated), and so are the
    pre-hooks of the old-style ``weight_norm`` and ``spectral_norm``, which only compute a weight
    (the private copy holds that weight instead, see :func:`prepare_model`).

    Raises
    ------
    UnsupportedModelError
        Naming the first module (by path and type) that has a hook, and how to remove it.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU())
    >>> h = net[1].register_forward_hook(lambda m, i, o: o * 2)
    >>> try:
    ...     check_no_forward_hooks(net)
    ... except UnsupportedModelError as e:
    ...     print(str(e)[:43])
    module '1' (ReLU) has a forward hook: splin
    >>> h.remove(); check_no_forward_hooks(net)
    """
    from torch.nn.modules import module as _module

    fix = (
        "splinecam computes the network's function from its modules and does not run hooks (the "
        "partition would silently ignore them). Remove the hooks (keep the handle returned by "
        "register_forward_hook / register_forward_pre_hook and call handle.remove()), or write "
        "what the hook does into the model's forward()"
    )
    for kind, attr, register in (
        ("forward hook", "_global_forward_hooks", "register_module_forward_hook"),
        ("forward pre-hook", "_global_forward_pre_hooks", "register_module_forward_pre_hook"),
    ):
        if getattr(_module, attr, None):
            raise UnsupportedModelError(
                f"a global {kind} is registered (torch.nn.modules.module.{register}): it runs on every "
                f"module. {fix}"
            )
    for name, m in model.named_modules(remove_duplicate=False):
        for kind, attr in (("forward hook", "_forward_hooks"), ("forward pre-hook", "_forward_pre_hooks")):
            hooks = [h for h in getattr(m, attr, {}).values() if not isinstance(h, _WEIGHT_HOOKS)]
            if hooks:
                where = f"module '{name}'" if name else "the model itself"
                raise UnsupportedModelError(f"{where} ({type(m).__name__}) has a {kind}: {fix}")


def _bake_weights(model: nn.Module) -> None:
    """Replace, in the private copy, every weight that an old-style ``weight_norm`` /
    ``spectral_norm`` pre-hook computes on each call by a plain parameter holding its value: the
    copy then has no hooks. (Only the copy's own instance dictionaries change. Parametrizations of
    ``torch.nn.utils.parametrize`` stay: removing them would change a class that the copy shares with
    the user's module.)"""
    for m in model.modules():
        for hook in list(m._forward_pre_hooks.values()):
            if isinstance(hook, WeightNorm):
                torch.nn.utils.remove_weight_norm(m, hook.name)
            elif isinstance(hook, SpectralNorm):
                torch.nn.utils.remove_spectral_norm(m, hook.name)


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

    The user's model is never modified. A model in training mode, a model with forward hooks
    (:func:`check_no_forward_hooks`) and half-precision dtypes are refused. Weights computed on each
    call by the old-style ``weight_norm`` and ``spectral_norm`` hooks become plain parameters of the
    copy.
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
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point or dtype.is_complex:
        raise UnsupportedModelError(f"dtype must be a floating torch dtype (torch.float64), got {dtype!r}")
    if dtype in _HALF_DTYPES:
        raise UnsupportedModelError(
            f"dtype={dtype} is too imprecise for an exact partition (about 3 significant digits: "
            "vertices of neighbouring regions collide and the affine maps are far from the model's). "
            "Use dtype=torch.float64 (the default); a half-precision model is analysed exactly in "
            "float64 as the function of its (exactly widened) weights"
        )
    check_no_forward_hooks(model)
    if device is None:
        p = next(iter(list(model.parameters()) + list(model.buffers())), None)
        device = p.device if p is not None else torch.device("cpu")
    device = torch.device(device)
    memo = {id(v): v.detach().clone() for v in autograd_attributes(model)}
    copied = copy.deepcopy(model, memo)
    copied.to(device=device, dtype=dtype)
    copied.eval()
    _bake_weights(copied)
    for p in copied.parameters():
        p.requires_grad_(False)
    return copied, device
