"""The private copy of a user's model that the engine works on (eval mode, its dtype and device);
the user's model is never modified."""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn as nn
from torch.nn.utils.spectral_norm import SpectralNorm
from torch.nn.utils.weight_norm import WeightNorm

from ..errors import UnsupportedModelError

__all__ = [
    "autograd_attributes", "check_no_forward_hooks", "prepare_model", "resolve_device",
    "training_mode_message", "check_model_kind", "clone_module",
]

# --------------------------------------------------------------------------- model checks
# torch modules whose forward reads ``self.training``: batch statistics, random masks
_TRAINING_SENSITIVE = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.modules.dropout._DropoutNd,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
    nn.RNNBase,
)


def _reads_training(m: nn.Module) -> bool:
    """Whether ``m``'s behaviour may change with its ``training`` flag.

    True for BatchNorm, InstanceNorm, Dropout and the like; False for the other modules of
    ``torch.nn`` (Linear, Conv, ReLU, containers...), whose forward never reads the flag; for any
    other module, True unless the source of its ``forward`` can be read and does not mention
    ``training`` (its submodules are judged on their own).
    """
    if isinstance(m, _TRAINING_SENSITIVE):
        return True
    cls = type(m)
    if cls.__module__.startswith("torch.nn.") or cls.__module__ == "torch.nn":
        return False
    if cls.train is not nn.Module.train:
        return True
    fwd = getattr(cls, "forward", None)
    if fwd is None or fwd is nn.Module.forward:
        return False
    try:
        src = inspect.getsource(fwd)
    except (OSError, TypeError):
        return True
    return "training" in src


def training_mode_message(model: nn.Module, fix: str) -> str | None:
    """None when no module of ``model`` is in training mode; else the refusal's message.

    It names only the modules in training mode whose behaviour differs there (BatchNorm, Dropout,
    and custom modules whose ``forward`` reads ``self.training``), or says that none does.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 4), nn.Dropout(0.5), nn.ReLU())
    >>> print(training_mode_message(net, "Call model.eval() first"))  # doctest: +NORMALIZE_WHITESPACE
    the model is in training mode (model.training is True), where these of its modules behave
    differently: '1' (Dropout). Call model.eval() first
    >>> training_mode_message(net.eval(), "") is None
    True
    """
    in_training = [(n, m) for n, m in model.named_modules() if m.training]
    if not in_training:
        return None
    if model.training:
        head = "the model is in training mode (model.training is True)"
    else:
        names = ", ".join(f"'{n}'" for n, _ in in_training[:3]) + ("..." if len(in_training) > 3 else "")
        head = f"part of the model is in training mode ({names}: .training is True)"
    sensitive = [f"'{n or '(the model)'}' ({type(m).__name__})" for n, m in in_training if _reads_training(m)]
    if sensitive:
        listed = ", ".join(sensitive[:5]) + (f" and {len(sensitive) - 5} more" if len(sensitive) > 5 else "")
        why = f", where these of its modules behave differently: {listed}"
    else:
        why = (
            "; none of its modules behaves differently there, so eval mode computes the same "
            "function, but splinecam analyses models in eval mode only"
        )
    return f"{head}{why}. {fix}"


def check_model_kind(model: Any) -> None:
    """Refuse what is not an ordinary ``nn.Module`` with real weights: TorchScript, the meta device."""
    if not isinstance(model, nn.Module):
        raise UnsupportedModelError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, torch.jit.ScriptModule):
        raise UnsupportedModelError(
            f"the model is a TorchScript module ({type(model).__name__}, made by torch.jit.script or "
            "torch.jit.trace): its layers are compiled code that splinecam cannot trace or copy. Pass the "
            "Python nn.Module it was made from (with the same weights: "
            "original.load_state_dict(scripted.state_dict()))"
        )
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.is_meta:
            raise UnsupportedModelError(
                f"the model's parameter or buffer '{name}' is on the meta device (a shape without values, "
                "e.g. made under torch.device('meta') or by init_empty_weights): there are no weights to "
                "analyse. Materialise and load them first: model.to_empty(device='cpu'); "
                "model.load_state_dict(state_dict)"
            )


def resolve_device(device: Any, model: nn.Module | None = None) -> torch.device:
    """``device`` as a ``torch.device`` that this torch can use (default: the model's device).

    Raises :class:`~splinecam.errors.UnsupportedModelError` with its own message for a string that
    names no torch device (``"gpu"``) and for a CUDA or MPS device that this torch build or machine
    does not have.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("gpu")
    Traceback (most recent call last):
    ...
    splinecam.errors.UnsupportedModelError: device='gpu' is not a torch device; use 'cuda' (or 'cuda:0') for an NVIDIA or AMD GPU, 'mps' on Apple silicon, or 'cpu'
    """
    if device is None:
        p = None if model is None else next(iter(list(model.parameters()) + list(model.buffers())), None)
        return p.device if p is not None else torch.device("cpu")
    if isinstance(device, str) and device.strip().lower().split(":")[0] == "gpu":
        raise UnsupportedModelError(
            f"device={device!r} is not a torch device; use 'cuda' (or 'cuda:0') for an NVIDIA or AMD GPU, "
            "'mps' on Apple silicon, or 'cpu'"
        )
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise UnsupportedModelError(
            f"device={device!r} is not a torch device ({exc}); use 'cpu', 'cuda', 'cuda:1', 'mps' or a "
            "torch.device"
        ) from exc
    if dev.type == "cuda":
        if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
            raise UnsupportedModelError(
                f"device={device!r}, but this torch ({torch.__version__}) is a CPU-only build "
                "(torch.version.cuda is None). Use device='cpu' (the default follows the model), or "
                "install a CUDA build of torch (see https://pytorch.org)"
            )
        if not torch.cuda.is_available():
            raise UnsupportedModelError(
                f"device={device!r}, but torch.cuda.is_available() is False: this torch is built for "
                f"CUDA {torch.version.cuda}, but no GPU (or no working driver) is visible. Use "
                "device='cpu', or check nvidia-smi and CUDA_VISIBLE_DEVICES"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UnsupportedModelError(
                f"device={device!r}, but only {torch.cuda.device_count()} CUDA device(s) are visible "
                f"(indices 0..{torch.cuda.device_count() - 1})"
            )
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise UnsupportedModelError(
            f"device={device!r}, but the MPS backend is not available in this torch or on this machine; "
            "use device='cpu'"
        )
    if dev.type == "meta":
        raise UnsupportedModelError("device='meta' holds no values; use 'cpu' or 'cuda'")
    return dev


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


def _all_finite(t: torch.Tensor) -> bool:
    """Whether every entry of ``t`` is finite: one float64 sum (a NaN or Inf anywhere makes it NaN or
    Inf), and the elementwise test only where that sum is not finite (an overflow of huge values)."""
    with torch.no_grad():
        if bool(torch.isfinite(t.sum(dtype=torch.float64))):
            return True
        return bool(torch.isfinite(t).all())


def prepare_model(
    model: nn.Module, dtype: torch.dtype = torch.float64, device: Any = None, share_parameters: bool = False
) -> tuple[nn.Module, torch.device]:
    """A private copy of ``model`` in eval mode, on ``device`` (default: the model's), in ``dtype``.

    The user's model is never modified. A model in training mode, a model with forward hooks
    (:func:`check_no_forward_hooks`) and half-precision dtypes are refused. Weights computed on each
    call by the old-style ``weight_norm`` and ``spectral_norm`` hooks become plain parameters of the
    copy. ``share_parameters``: parameters already on ``device`` in ``dtype`` are read-only views of
    the user's (see :func:`clone_module`), for a copy that is used and dropped within one call (a
    kept copy would follow later in-place changes of the user's parameters).
    """
    check_model_kind(model)
    msg = training_mode_message(
        model,
        "Call model.eval() first, or pass copy.deepcopy(model).eval() to leave your model as it is",
    )
    if msg:
        raise UnsupportedModelError(msg)
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.is_floating_point() and not _all_finite(t):
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
    device = resolve_device(device, model)
    copied = clone_module(model, device, dtype, share_parameters=share_parameters)
    copied.eval()
    _bake_weights(copied)
    return copied, device


def _target_dtype(t: torch.Tensor, dtype: torch.dtype) -> torch.dtype:
    """The dtype of ``t`` in the copy: ``dtype`` for floating tensors, its own for the others."""
    return dtype if t.is_floating_point() else t.dtype


def _fresh_tensor(t: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A new tensor (never ``t``'s storage) with ``t``'s values, on ``device``, floating ones in ``dtype``."""
    return t.detach().to(device=device, dtype=_target_dtype(t, dtype), copy=True)


def clone_module(model: nn.Module, device: Any, dtype: torch.dtype, share_parameters: bool = False) -> nn.Module:
    """A copy of ``model``'s module tree whose parameters and buffers are new tensors on ``device``
    (floating ones in ``dtype``, parameters without gradients), sharing nothing that can change.

    ``share_parameters``: parameters that already are on ``device`` in their target dtype become
    read-only views of the user's (``detach()``: same storage, no gradient) instead of copies. For the
    engine's private copy (:func:`prepare_model`), which never writes into a parameter: a wide
    network's weights are then not copied on every call (0.5 s of a 3.5 s run on an 8,192-wide
    lattice network). Buffers are copied either way (a module may update its own buffers).

    Every module is a new instance of its class with its own ``_parameters``, ``_buffers``,
    ``_modules`` and hook dictionaries; its other attributes (numbers, strings, functions...) are
    shared with the original's, as the engine only reads them. Modules and tensors that appear
    several times (weight tying) are copied once and stay shared in the copy. This is what
    ``copy.deepcopy`` then ``.to(device, dtype)`` gave, without the deep copy's recursion through
    every attribute (about 2.5 ms of a 4 ms preparation on a 2-10x5-1 MLP) or a second copy of the
    parameters in the model's dtype.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU())
    >>> c = clone_module(net, torch.device("cpu"), torch.float64)
    >>> c[0].weight.dtype, c[0].weight.data_ptr() != net[0].weight.data_ptr(), net[0].weight.dtype
    (torch.float64, True, torch.float32)
    """
    modules: dict[int, nn.Module] = {}
    tensors: dict[int, torch.Tensor] = {}

    def tensor(t: torch.Tensor | None, param: bool) -> torch.Tensor | None:
        if t is None:
            return None
        if id(t) not in tensors:
            same = t.device == device and t.dtype == _target_dtype(t, dtype)
            v = t.detach() if param and share_parameters and same else _fresh_tensor(t, device, dtype)
            tensors[id(t)] = nn.Parameter(v, requires_grad=False) if param else v
        return tensors[id(t)]

    def clone(m: nn.Module) -> nn.Module:
        if id(m) in modules:
            return modules[id(m)]
        new = type(m).__new__(type(m))
        modules[id(m)] = new
        d = dict(vars(m))
        for key, v in d.items():
            # the hook dictionaries (and any other): the copy's own, so that removing a hook from the
            # copy cannot remove the user's
            if isinstance(v, dict):
                d[key] = type(v)(v)
        d["_parameters"] = type(m._parameters)((k, tensor(p, True)) for k, p in m._parameters.items())
        d["_buffers"] = type(m._buffers)((k, tensor(b, False)) for k, b in m._buffers.items())
        d["_non_persistent_buffers_set"] = set(m._non_persistent_buffers_set)
        d["_modules"] = type(m._modules)((k, None if c is None else clone(c)) for k, c in m._modules.items())
        object.__setattr__(new, "__dict__", d)
        return new

    return clone(model)
