"""In-place steps (``ReLU(inplace=True)``, ``x.add_(y)``): later reads of an overwritten tensor read the
step's result, as in torch; reads through other views of it are refused."""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UnsupportedModelError
from .program import Step, _map_args, _Ref, _refs

# steps whose result may share memory with their (first) input: views, and modules or functions
# that return their input itself in eval mode
_VIEW_METHODS = {
    "view", "reshape", "flatten", "contiguous", "permute", "transpose", "squeeze", "unsqueeze",
    "view_as", "reshape_as", "expand", "chunk", "split", "unbind", "float", "double", "to", "t",
    "narrow", "__getitem__", "unflatten",
}
_VIEW_FUNCTIONS = {
    torch.flatten, torch.reshape, torch.transpose, torch.permute, torch.squeeze, torch.unsqueeze,
    operator.getitem, torch.chunk, torch.split, torch.unbind, F.dropout, F.dropout1d, F.dropout2d,
}
_VIEW_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                 nn.Flatten, nn.Unflatten)
_IN_PLACE_METHODS = {
    "add_", "sub_", "mul_", "div_", "relu_", "abs_", "clamp_", "clip_", "clamp_min_", "clamp_max_",
}


def _in_place(step: Step) -> bool:
    """Whether ``step`` overwrites its first argument (``ReLU(inplace=True)``, ``x.add_(y)``...)."""
    if step.op == "module":
        return bool(getattr(step.target, "inplace", False))
    t = step.target
    if step.op == "call_method":
        return t in _IN_PLACE_METHODS
    if t in (torch.relu_, F.relu_, F.leaky_relu_, F.hardtanh_, F.threshold_):
        return True
    # the position of the ``inplace`` argument of functions that take one
    where = {F.relu: 1, F.leaky_relu: 2, F.relu6: 1, F.hardsigmoid: 1, F.hardtanh: 3, F.threshold: 3,
             F.dropout: 3, F.dropout1d: 3, F.dropout2d: 3}
    if t in where:
        pos = where[t]
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

