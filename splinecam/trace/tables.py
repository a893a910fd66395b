"""Classification tables: which torch modules, functions and methods are affine, piecewise-linear,
refused as not piecewise-linear, or shape queries. The piecewise-linear ones and their specs are in
:mod:`splinecam.trace.nonlinear`."""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

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
# piecewise-linear modules that are not supported yet (none at present)
_PWL_NOT_YET_MODULES: tuple[type, ...] = ()
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
_PWL_NOT_YET_FUNCTIONS: set = set()
# functions that are linear in their (single or several) input-dependent tensor arguments
_LINEAR_FUNCTIONS = {
    torch.unflatten,
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
    "unflatten",
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
