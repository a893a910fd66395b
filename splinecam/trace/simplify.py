"""Simplifications of a traced program before the engine sees it: flat breakpoints of piecewise-linear
specs dropped, chains of activation-free Linear layers composed, duplicate units merged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn as nn

from .program import _map_args, _Ref, _refs
from .specs import PWLSpec

__all__ = [
    "drop_flat_breakpoints", "compose_linear", "compose_linear_chains", "ComposedLinear", "UnitMerge",
    "merge_duplicate_units",
]


def _same_slope(a: Any, b: Any) -> bool:
    """Whether two slopes (floats or per-unit tensors) are equal for every unit."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        ta = torch.as_tensor(a, dtype=torch.float64)
        tb = torch.as_tensor(b, dtype=torch.float64)
        return bool(torch.equal(*torch.broadcast_tensors(ta, tb)))
    return float(a) == float(b)


def drop_flat_breakpoints(spec: PWLSpec) -> PWLSpec | None:
    """``spec`` without the breakpoints whose two slopes are equal (they bend nothing), or None when
    no breakpoint is left: the function is then affine, ``slopes[0] * x + intercepts()[0]``.

    A breakpoint with equal slopes on both sides (``LeakyReLU(negative_slope=1.0)``, a PReLU slope
    of 1) would otherwise cut regions along a line where the network's map does not change: needless
    cuts, neighbouring regions with one affine map. A breakpoint is dropped only where its slopes
    are equal for every unit (a per-channel slope that is 1 on some channels keeps it).

    Parameters
    ----------
    spec : PWLSpec
        An elementwise piecewise-linear function.

    Returns
    -------
    PWLSpec or None
        The same function with fewer breakpoints (``spec`` itself when none is flat), or None.

    Examples
    --------
    >>> drop_flat_breakpoints(PWLSpec("leaky_relu", [0.0], [1.0, 1.0])) is None
    True
    >>> s = drop_flat_breakpoints(PWLSpec("pwl", [-1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0]))
    >>> s.breakpoints, s.slopes
    ([0.0], [0.0, 1.0])
    """
    if spec.period is not None:  # (a periodic function keeps its pieces)
        return spec
    t = list(spec.breakpoints)
    slopes = list(spec.slopes)
    inter = spec.intercepts()
    # a breakpoint bends nothing when its two slopes are equal, and jumps nothing when its two
    # intercepts are too (a function with jumps gives them explicitly)
    keep = [k for k in range(len(t))
            if not (_same_slope(slopes[k], slopes[k + 1]) and _same_slope(inter[k], inter[k + 1]))]
    if len(keep) == len(t):
        return spec
    if not keep:
        return None
    # the pieces that are left, with their own intercepts, so that the function stays the same
    new_slopes = [slopes[keep[0]]] + [slopes[k + 1] for k in keep]
    new_inter = [inter[keep[0]]] + [inter[k + 1] for k in keep]
    if spec.explicit_intercepts is not None:
        return PWLSpec(spec.kind, [t[k] for k in keep], new_slopes, explicit_intercepts=new_inter)
    k0 = keep[0]
    value = slopes[k0] * t[k0] + inter[k0]
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = float(value)
    return PWLSpec(spec.kind, [t[k] for k in keep], new_slopes, value_at_first=value)


class ComposedLinear(nn.Linear):
    """Two or more consecutive ``nn.Linear`` layers of a traced model as one (made by
    :func:`compose_linear_chains` for one run; never part of a user's model).

    ``magnitude_weight`` and ``magnitude_bias`` hold the products of the parts' absolute weights
    (``|W2| |W1|``, ``|W2| |b1| + |b2|``): the noise floors of the engine bound the rounding of the
    parts' terms (:mod:`splinecam.engine.noise`), which the composed weights may cancel.
    """

    magnitude_weight: torch.Tensor
    magnitude_bias: torch.Tensor | None


def _as_parts(lin: nn.Linear) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Weight, bias and their magnitudes (None for a plain Linear's weight: ``|W|``, made where it is
    used, see :func:`_abs_matmul`)."""
    if isinstance(lin, ComposedLinear):
        return lin.weight, lin.bias, lin.magnitude_weight, lin.magnitude_bias
    b = lin.bias
    return lin.weight, b, None, None if b is None else b.abs()


#: weight entries whose absolute values :func:`_abs_matmul` makes at a time
_ABS_BLOCK = 1 << 20


def _abs_matmul(w: torch.Tensor, m: torch.Tensor | None, right: torch.Tensor) -> torch.Tensor:
    """``|w| @ right`` (``m``: ``|w|`` when already known), in blocks of rows of ``w``: a wide layer's
    ``|w|`` (45 M entries for 8,214 x 5,476) is never written out whole."""
    if m is not None:
        return m @ right
    rows = max(1, _ABS_BLOCK // max(1, w.shape[1]))
    if w.shape[0] <= rows:
        return w.abs() @ right
    return torch.cat([w[i:i + rows].abs() @ right for i in range(0, w.shape[0], rows)])


def _composed_bias(
    times_w2: Callable[[torch.Tensor], torch.Tensor], b1: torch.Tensor | None, b2: torch.Tensor | None,
    w2: torch.Tensor,
) -> torch.Tensor | None:
    """``W2 b1 + b2`` (``times_w2(v)``: ``W2 v``; a missing bias counts as zero), or None where both
    are missing."""
    if b1 is None and b2 is None:
        return None
    out = times_w2(b1) if b1 is not None else torch.zeros(w2.shape[0], dtype=w2.dtype, device=w2.device)
    return out + b2 if b2 is not None else out


def compose_linear(first: nn.Linear, second: nn.Linear) -> ComposedLinear:
    """``second(first(x))`` as one :class:`ComposedLinear` (weights ``W2 W1``, bias ``W2 b1 + b2``).

    Examples
    --------
    >>> import torch
    >>> a, b = torch.nn.Linear(2, 5).double(), torch.nn.Linear(5, 3).double()
    >>> x = torch.randn(4, 2, dtype=torch.float64)
    >>> bool(torch.allclose(compose_linear(a, b)(x), b(a(x))))
    True
    """
    w1, b1, m1, mb1 = _as_parts(first)
    w2, b2, m2, mb2 = _as_parts(second)
    with torch.no_grad():
        w = w2 @ w1
        b = _composed_bias(lambda v: w2 @ v, b1, b2, w2)
        # (skip_init: no random initial weights, they are replaced at once)
        out = torch.nn.utils.skip_init(ComposedLinear, w1.shape[1], w2.shape[0], bias=b is not None,
                                       device=w.device, dtype=w.dtype)
        out.weight = nn.Parameter(w, requires_grad=False)
        if b is not None:
            out.bias = nn.Parameter(b, requires_grad=False)
        m1 = w1.abs() if m1 is None else m1
        out.magnitude_weight = _abs_matmul(w2, m2, m1)
        out.magnitude_bias = _composed_bias(lambda v: _abs_matmul(w2, m2, v[:, None])[:, 0], mb1, mb2, w2)
    return out.eval()


def _plain_linear_step(step: Any) -> bool:
    return (
        step.kind == "affine" and step.op == "module" and isinstance(step.target, nn.Linear)
        and type(step.target) in (nn.Linear, ComposedLinear) and len(step.args) == 1
        and isinstance(step.args[0], _Ref) and not step.kwargs
    )


def compose_linear_chains(steps: list[Any], output: int, pwl_steps: list[int]) -> tuple[list[Any], int, list[int]]:
    """Merge every ``nn.Linear`` whose only input is another ``nn.Linear``, used nowhere else, into one
    :class:`ComposedLinear` (steps renumbered; run before the liveness analysis).

    Affine stacks then pass once through a chain of activation-free Linear layers instead of once
    per layer (a wide layer between two narrow ones costs its width per region otherwise). Two
    layers ``a -> b -> c`` are composed only where ``a c <= (a b + b c) / 2``: composing costs
    ``a b c`` once per call and saves ``a b + b c - a c`` per row of every region's stack.
    """
    uses: dict[int, int] = {}
    for s in steps:
        for r in _refs((s.args, s.kwargs)):
            uses[r] = uses.get(r, 0) + 1
    drop: set[int] = set()
    for j, s in enumerate(steps):
        if not _plain_linear_step(s):
            continue
        i = int(s.args[0])
        prev = steps[i]
        if i == output or uses.get(i, 0) != 1 or not _plain_linear_step(prev):
            continue
        a, b, c = prev.target.in_features, prev.target.out_features, s.target.out_features
        if 2 * a * c > a * b + b * c:  # composed only where it at least halves a region's products
            continue
        steps[j] = replace(s, name=f"{prev.name} -> {s.name}", target=compose_linear(prev.target, s.target),
                           args=prev.args)
        drop.add(i)
    if not drop:
        return steps, output, pwl_steps
    new_index: dict[int, int] = {}
    kept: list[Any] = []
    for i, s in enumerate(steps):
        if i not in drop:
            new_index[i] = len(kept)
            kept.append(s)

    def remap(a: Any) -> Any:
        return _Ref(new_index[int(a)]) if isinstance(a, _Ref) else a

    kept = [replace(s, args=_map_args(s.args, remap), kwargs=_map_args(s.kwargs, remap)) for s in kept]
    return kept, new_index[output], [new_index[i] for i in pwl_steps]


# --------------------------------------------------------------------------- duplicate units
@dataclass
class UnitMerge:
    """The duplicate units of one elementwise step merged by :func:`merge_duplicate_units`.

    Units are counted along the last axis of the step's input (the ``out_features`` of the Linear
    before it): ``units`` in the model, ``len(first)`` kept. ``rep[j]`` is the kept unit that stands
    for the model's unit ``j``, ``first[r]`` the model's unit that kept unit ``r`` is (the first of
    its group).
    """

    pwl_index: int
    units: int
    rep: torch.Tensor
    first: torch.Tensor


def _scalar_spec(spec: PWLSpec) -> bool:
    """Whether every parameter of ``spec`` is one number for all units (a merged step runs on fewer
    units: a per-unit slope would not fit them)."""
    vals = [*spec.slopes, *spec.intercepts()]
    return all(not isinstance(v, torch.Tensor) or v.numel() == 1 for v in vals)


def _homogeneous(spec: PWLSpec) -> bool:
    """Whether ``f(c x) = c f(x)`` for every ``c > 0`` (ReLU, LeakyReLU, PReLU, abs): then units whose
    lines agree up to a positive factor are merged too, not only equal ones."""
    if spec.period is not None or spec.explicit_intercepts is not None or list(spec.breakpoints) != [0.0]:
        return False
    return all(float(c) == 0.0 for c in spec.intercepts())


_HASH_SEED = 0x5EED


def _duplicate_groups(lin: nn.Linear, homogeneous: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """``(rep, first, scale)`` of the groups of equal rows ``[b_j, W_j]`` of ``lin`` (equal up to a
    positive factor where ``homogeneous``: unit ``j`` is then ``scale[j]`` times unit ``first[rep[j]]``,
    within rounding), or None where all rows differ.

    Rows are grouped by a hash (one matrix-vector product, quantised to 2^-40 relative where
    ``homogeneous``), and a row joins its group's first row only where they are equal (relative
    1e-14 of the row's largest entry, after scaling): a missed pair is merely not merged.
    """
    w = lin.weight.detach()
    b = lin.bias.detach() if lin.bias is not None else None
    n = w.shape[0]
    if n < 2:
        return None
    g = torch.Generator(device="cpu").manual_seed(_HASH_SEED)
    v = (torch.rand(w.shape[1] + 1, generator=g, dtype=torch.float64) + 0.5).to(w.device, w.dtype)
    h = w @ v[1:]
    if b is not None:
        h = h + b * v[0]
    ar = torch.arange(n, device=w.device)
    if homogeneous:
        m = w.abs().amax(1)
        if b is not None:
            m = torch.maximum(m, b.abs())
        key = torch.round(h / torch.where(m > 0, m, torch.ones_like(m)) * 2.0**40)
    else:
        m = None
        key = h
    _, inv = torch.unique(key, return_inverse=True)
    lead = torch.full((int(inv.max()) + 1,), n, dtype=torch.int64, device=w.device)
    lead = lead.scatter_reduce_(0, inv, ar, "amin")[inv]  # the first row of every hash group
    cand = (lead != ar).nonzero().squeeze(1)
    if len(cand) == 0:
        return None
    rows = w if b is None else torch.cat([b[:, None], w], 1)
    rc, rl = rows.index_select(0, cand), rows.index_select(0, lead[cand])
    scale = torch.ones(n, dtype=w.dtype, device=w.device)
    if homogeneous:
        assert m is not None
        mc, ml = m[cand], m[lead[cand]]
        zero = (mc == 0) | (ml == 0)
        ratio = torch.where(zero, torch.ones_like(mc), mc / torch.where(ml > 0, ml, torch.ones_like(ml)))
        same = (rc - ratio[:, None] * rl).abs().amax(1) <= 1e-14 * mc
        same &= (mc == 0) == (ml == 0)
        scale[cand] = torch.where(same, ratio, torch.ones_like(ratio))
    else:
        same = (rc == rl).all(1)
    if not bool(same.any()):
        return None
    rep_orig = ar.clone()
    rep_orig[cand[same]] = lead[cand[same]]
    first = torch.unique(rep_orig)  # sorted: kept units in the model's order
    rep = torch.searchsorted(first, rep_orig)
    return rep, first, scale


def _linear_of(w: torch.Tensor, b: torch.Tensor | None, mw: torch.Tensor, mb: torch.Tensor | None) -> ComposedLinear:
    """A :class:`ComposedLinear` with these weights, bias and magnitudes."""
    out = torch.nn.utils.skip_init(ComposedLinear, w.shape[1], w.shape[0], bias=b is not None,
                                   device=w.device, dtype=w.dtype)
    out.weight = nn.Parameter(w, requires_grad=False)
    if b is not None:
        out.bias = nn.Parameter(b, requires_grad=False)
    out.magnitude_weight = mw
    out.magnitude_bias = mb
    return out.eval()


def _kept_rows(lin: nn.Linear, first: torch.Tensor) -> ComposedLinear:
    """``lin`` with only the output rows ``first``."""
    w, b, mw, mb = _as_parts(lin)
    with torch.no_grad():
        wk = w.detach()[first]
        return _linear_of(wk, None if b is None else b.detach()[first], wk.abs() if mw is None else mw[first],
                          None if mb is None else mb[first])


def _summed_columns(lin: nn.Linear, rep: torch.Tensor, scale: torch.Tensor, kept: int) -> ComposedLinear:
    """``lin`` reading the kept units: the columns of every group summed, each times its unit's
    ``scale`` (its magnitude columns likewise, so that noise floors still bound every term)."""
    w, b, mw, mb = _as_parts(lin)
    with torch.no_grad():
        w = w.detach()
        mw = w.abs() if mw is None else mw
        if not bool((scale == 1).all()):
            w, mw = w * scale, mw * scale
        nw = w.new_zeros((w.shape[0], kept)).index_add_(1, rep, w)
        nmw = mw.new_zeros((w.shape[0], kept)).index_add_(1, rep, mw)
        return _linear_of(nw, None if b is None else b.detach(), nmw, mb)


def merge_duplicate_units(program: Any) -> tuple[Any, list[UnitMerge]]:
    """``program`` with the duplicate units of its ``Linear -> elementwise -> Linear`` steps merged,
    and what was merged (one :class:`UnitMerge` per step that has duplicates).

    Two units of an elementwise step (ReLU, LeakyReLU, Hardtanh, ... with one parameter set for all
    units) whose input rows ``[b_j, W_j]`` in the ``nn.Linear`` before it are equal compute the same
    value everywhere, and so do units whose rows agree up to a positive factor where the function
    is positively homogeneous (ReLU, LeakyReLU, abs): ``relu(c z) = c relu(z)``. Such a group is
    kept as one unit (its first), and the ``nn.Linear`` layers that read the step sum the group's
    columns (times each unit's factor). The partition is the same (up to rounding); its regions are
    tested and cut once per group instead of once per unit (lattice networks: most units of their
    wide layers). Steps are merged in program order, so that units that become equal only once the
    layer before is merged (``relu(u - v)`` of two merged copies: a zero row) are merged too. Between
    two Linear layers (a chain that :func:`compose_linear_chains` left apart), equal outputs of the
    first are merged the same way, so that one layer's duplicates stay merged through such chains.

    A step qualifies where the ``nn.Linear`` before it is read by nothing else, and only
    ``nn.Linear`` layers read it; its steps keep their positions (only modules are replaced, by
    :class:`ComposedLinear` ones). The engine expands the codes and edge labels back to the
    model's units (:mod:`splinecam.engine.merged`).

    Examples
    --------
    >>> import torch
    >>> from splinecam.trace import trace_model
    >>> lin = torch.nn.Linear(2, 3).double()
    >>> with torch.no_grad():
    ...     lin.weight[2] = lin.weight[0]; lin.bias[2] = lin.bias[0]
    >>> net = torch.nn.Sequential(lin, torch.nn.ReLU(), torch.nn.Linear(3, 1).double()).eval()
    >>> prog, merges = merge_duplicate_units(trace_model(net))
    >>> prog.steps[1].target.out_features, merges[0].rep.tolist()
    (2, [0, 1, 0])
    """
    steps = list(program.steps)
    readers: dict[int, list[int]] = {}
    for j, s in enumerate(steps):
        for r in _refs((s.args, s.kwargs)):
            readers.setdefault(r, []).append(j)
    merges: list[UnitMerge] = []
    changed = False
    for p, s in enumerate(steps):
        outs = readers.get(p, [])
        if p == program.output or not outs or len(set(outs)) != len(outs):
            continue
        if any(not _plain_linear_step(steps[j]) for j in outs):
            continue
        if _plain_linear_step(s):
            # a Linear read only by Linear layers: its equal outputs are merged like units (no codes)
            found = _duplicate_groups(s.target, True)
            if found is not None:
                rep, first, scale = found
                steps[p] = replace(s, target=_kept_rows(s.target, first))
                for j in outs:
                    steps[j] = replace(steps[j], target=_summed_columns(steps[j].target, rep, scale, len(first)))
                changed = True
            continue
        spec = s.pwl
        if s.kind != "pwl" or not isinstance(spec, PWLSpec) or not _scalar_spec(spec):
            continue
        if not s.args or not isinstance(s.args[0], _Ref) or len(_refs((s.args, s.kwargs))) != 1:
            continue
        i = int(s.args[0])
        if i == program.output or readers.get(i) != [p] or not _plain_linear_step(steps[i]):
            continue
        found = _duplicate_groups(steps[i].target, _homogeneous(spec))
        if found is None:
            continue
        rep, first, scale = found
        units = int(steps[i].target.out_features)
        steps[i] = replace(steps[i], target=_kept_rows(steps[i].target, first))
        for j in outs:
            steps[j] = replace(steps[j], target=_summed_columns(steps[j].target, rep, scale, len(first)))
        merges.append(UnitMerge(s.pwl_index, units, rep, first))
        changed = True
    if not changed:
        return program, merges
    return replace(program, steps=steps), merges
