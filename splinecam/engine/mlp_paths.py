"""Faster exact paths through "nonlinearity -> ``nn.Linear``" (the MLP case).

They give the same partition as the engine's plain path (one affine stack per region, run
through every step); ``tests/test_engine_paths.py`` compares them region by region:

* :func:`_one_parent_post`: the children of one region (the first cutting layer) get their codes
  and Linear outputs from two matrix products with the parent's stack;
* :func:`_linear_post`: the Linear runs once per parent region, and each child adds the weight
  columns of the few units whose piece differs from the parent's;
* :func:`_tail`: the last two nonlinearities ``A -> Linear -> B -> Linear head`` at once, with no
  affine stack per child of ``A``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn

from ..trace import Program, _Ref, _refs
from .codes import _bits, _pack, _toggle
from .cutting import (
    _box,
    _crosses,
    _cut_pairs,
    _expand,
    _homogeneous,
    _line_table,
    _line_value,
    _spread,
    _values_at,
)
from .geometry import Polygons
from .slices import Tol, _line_floor, _take
from .sparse_linear import linear_rows, sparse_weight
from .threads import big_op

__all__: list[str] = []


def _linear_after(program: Program, pos: int, ushape: tuple[int, ...], nbp: int) -> nn.Linear | None:
    """The ``nn.Linear`` that alone reads the output of the nonlinearity at ``pos``, if any."""
    if nbp != 1 or len(ushape) != 1 or pos + 1 >= len(program.steps):
        return None
    nxt = program.steps[pos + 1]
    if (
        nxt.kind == "affine"
        and nxt.op == "module"
        and isinstance(nxt.target, nn.Linear)
        and len(nxt.args) == 1
        and isinstance(nxt.args[0], _Ref)
        and int(nxt.args[0]) == pos
        and not nxt.kwargs
        and pos in nxt.free_after
        and program.output != pos
    ):
        return nxt.target
    return None


def _masked_linear(pre: torch.Tensor, gain: torch.Tensor, inter: torch.Tensor | None, lin: nn.Linear) -> torch.Tensor:
    """``lin`` applied to ``gain * pre + inter`` (``gain``, ``inter``: ``(P, n)`` slope and
    intercept of every unit's piece) on the affine stack ``pre`` ``(P, 3, n)``; ``(P, 3, out)``."""
    p, _, n = pre.shape
    w = lin.weight
    if w.shape[0] <= 4:
        # few outputs (a classifier head): one batched product with the per-region scaled weights,
        # without writing the masked stack
        z = torch.bmm(pre, gain[:, :, None] * w.t()[None])
    else:
        with big_op(pre.numel()):
            z = linear_rows((pre * gain[:, None, :]).reshape(3 * p, n), w).reshape(p, 3, -1)
    if inter is not None:
        z[:, 0] += linear_rows(inter, w)
    if lin.bias is not None:
        z[:, 0] += lin.bias
    return z


def _piece_maps(
    on: torch.Tensor, table: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Slope and intercept ``(P, n)`` of every unit's piece (``on``: above its one breakpoint;
    intercepts None when all 0)."""
    _, slopes, inter = table
    return torch.where(on, slopes[1], slopes[0]), (
        torch.where(on, inter[1], inter[0]) if bool((inter != 0).any()) else None
    )


def _pair_parents(ptr: torch.Tensor) -> torch.Tensor:
    """The region of every entry of a CSR list with offsets ``ptr``."""
    return _expand(ptr[1:] - ptr[:-1])[0]


def _piece_change(
    raw: torch.Tensor,
    unit: torch.Tensor,
    newc: torch.Tensor,
    oldc: torch.Tensor,
    table: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """The change ``(k, 3)`` of units' outputs, as affine maps, when their inputs ``raw`` ``(k, 3)``
    move from piece ``oldc`` to piece ``newc``."""
    _, slopes, inter = table
    dy = raw * (slopes[newc, unit] - slopes[oldc, unit])[:, None]
    dy[:, 0] += inter[newc, unit] - inter[oldc, unit]
    return dy


def _env_past_linear(program: Program, pos: int, env: dict[int, Any]) -> dict[int, Any]:
    """The values still live after the nonlinearity at ``pos`` and the Linear layer after it."""
    freed = set(program.steps[pos].free_after) | set(program.steps[pos + 1].free_after)
    return {k: v for k, v in env.items() if k not in freed}


def _flips(
    base: torch.Tensor,
    g: torch.Tensor,
    cptr: torch.Tensor,
    cline: torch.Tensor,
    raw: torch.Tensor,
    ctr: torch.Tensor,
    table: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Codes of the children of a cut, and where they differ from their parent's ``base`` codes
    (bit-packed, see :func:`_pack`).

    A child (parent ``g``, vertex mean ``ctr``) has its parent's codes except on the units that
    cross the parent (CSR ``cptr``/``cline``, affine values ``raw`` ``(pairs, 3)``), whose code is
    read at the child's vertex mean. Returns the children's codes and, for every unit whose piece
    changes, ``(child, unit, pair, dy)``, sorted by child: ``pair`` indexes ``cline`` and ``dy``
    ``(k, 3)`` is the change of the unit's output as an affine map (new piece minus old piece).
    """
    codes = base[g]
    child, k = _expand((cptr[1:] - cptr[:-1])[g])
    pair = cptr[g][child] + k
    unit = cline[pair]
    xv = raw[pair]
    newc = (_line_value(xv, ctr[child]) > table[0][0]).long()
    oldc = _bits(codes, child, unit)
    d = (newc != oldc).nonzero().squeeze(1)
    child, unit, pair, xv = child[d], unit[d], pair[d], xv[d]
    newc, oldc = newc[d], oldc[d]
    _toggle(codes, child, unit)
    return codes, (child, unit, pair, _piece_change(xv, unit, newc, oldc, table))


def _linear_post(
    program: Program,
    pos: int,
    lin: nn.Linear,
    val: torch.Tensor,
    pre: torch.Tensor,
    table: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    cptr: torch.Tensor,
    cline: torch.Tensor,
    env: dict[int, Any],
) -> tuple[Callable, dict[int, Any]]:
    """A nonlinearity followed by a Linear layer, done once per parent region plus sparse updates.

    On a parent region every unit that no line crosses keeps one piece; the Linear layer is run
    once per parent with every unit on its piece at the parent's vertex mean (``base``; ``val``
    holds every unit there). A child region differs from that only on the parent's crossing units
    whose piece changes: its output is ``base`` plus a sparse product with the weight columns of
    those units. The cost per child is then proportional to the number of crossing units, not to
    the layer's width.
    """
    q = pos + 1
    p = pre.shape[0]
    on = val > table[0][0]
    base = _pack(on)
    gain, inter = _piece_maps(on, table)
    z = _masked_linear(pre, gain, inter, lin).reshape(3 * p, -1)
    cenv = _env_past_linear(program, pos, env)
    cenv[q] = z
    wt = lin.weight.t()
    raw = pre[_pair_parents(cptr), :, cline]  # (pairs, 3): the crossing units' affine values

    def post(it: Any, g: torch.Tensor) -> None:
        codes, (child, unit, _, dy) = _flips(base, g, cptr, cline, raw, it.poly.centroids(), table)
        if len(child):
            _add_sparse_rows(it.env[q], child, unit, dy, wt, len(g))
        it.codes.append(codes)

    return post, cenv


def _tail_plan(program: Program, pos: int, nbps: list[int]) -> tuple[int, nn.Linear] | None:
    """``(pos_b, lin_m)`` when the network ends ``A -> L -> B -> M -> (affine steps)`` from the
    nonlinearity ``A`` at ``pos``: ``L`` and ``M`` are ``nn.Linear`` layers (found by
    :func:`_linear_after`), ``B`` at ``pos_b = pos + 2`` is the last nonlinearity, one breakpoint
    per unit, and nothing after ``M`` reads a value from before it. See :func:`_tail`."""
    steps = program.steps
    pos_b = pos + 2
    if pos_b + 1 >= len(steps) or program.pwl_steps[-1] != pos_b:
        return None
    b = steps[pos_b]
    if (
        b.kind != "pwl"
        or nbps[b.pwl_index] != 1
        or not b.args
        or not isinstance(b.args[0], _Ref)
        or int(b.args[0]) != pos + 1
        or (pos + 1) not in b.free_after
        or program.output in (pos, pos + 1)
    ):
        return None
    n_b = steps[pos + 1].target.out_features
    lin_m = _linear_after(program, pos_b, (n_b,), 1)
    if lin_m is None:
        return None
    for st in steps[pos_b + 2:]:
        for r in _refs((st.args, st.kwargs)):
            # (shape queries too: they would need earlier values to be computed again)
            if int(r) < pos_b + 1 and steps[int(r)].kind in ("input", "affine", "pwl", "meta"):
                return None
    return pos_b, lin_m


def _tail(
    poly: Polygons,
    pre: torch.Tensor,
    val: torch.Tensor,
    kids: Polygons,
    g: torch.Tensor,
    cptr: torch.Tensor,
    cline: torch.Tensor,
    lin_l: nn.Linear,
    lin_m: nn.Linear,
    table_a: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    table_b: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    radius: Tol,
    off_b: int,
    floors: tuple[Tol, Tol] = (0.0, 0.0),
) -> tuple[Polygons, torch.Tensor, torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """The last two nonlinearities ``A -> L -> B -> M`` (see :func:`_tail_plan`), with no affine
    stack per child of ``A``.

    ``poly`` are the parents (regions entering ``A``, affine stack ``pre`` ``(P, 3, n_a)``, every
    unit at their vertex means ``val``), already cut by ``A`` into ``kids`` (parent ``g``; crossing
    lines ``cptr``/``cline``). A child's inputs to ``B`` are its parent's (``zb``, one dense
    ``L`` per parent) plus a sparse sum over the few units of ``A`` whose piece differs. Instead
    of writing that out per child, ``B``'s lines are filtered once per parent: a unit whose line
    stays farther from the parent's bounding box than the largest possible change (the sum of
    ``|L|``'s weights times the largest change of each crossing unit of ``A`` over the box) keeps
    one piece on every child, and only the others (``S``) are tested on the children, with their
    exact coefficients made from the sparse sums. ``M``'s output is likewise one dense product per
    parent plus sparse terms per child and per grandchild. The cost per region then hardly
    depends on the layers' width. ``floors``: the least on-the-line tolerances of ``A``'s and
    ``B``'s lines (:func:`splinecam.engine.cutting._line_table`).

    Returns the grandchildren, the index of the parent each comes from, ``M``'s output as an
    affine stack ``(F, 3, out)``, the codes of ``A`` and ``B`` on the grandchildren, and the
    child each grandchild comes from.
    """
    bps_a = table_a[0]
    bps_b = table_b[0]
    cn = len(kids)
    # A: the parents' codes and B's inputs on the parents (dense), the children's codes and flips
    on_pa = val > bps_a[0]
    base_a = _pack(on_pa)
    gain_a, inter_ap = _piece_maps(on_pa, table_a)
    zb = _masked_linear(pre, gain_a, inter_ap, lin_l)  # (P, 3, n_b)
    n_b = zb.shape[2]
    pair_par = _pair_parents(cptr)
    raw_a = pre[pair_par, :, cline]  # (pairs, 3)
    kid_ctr = kids.centroids()
    codes_a, flips_a = _flips(base_a, g, cptr, cline, raw_a, kid_ctr, table_a)
    f_kid, f_unit, f_pair, f_dy = flips_a
    mid, half = _box(poly)
    bound = _change_bound(poly, raw_a, on_pa, pair_par, cline, table_a, lin_l, n_b, radius, floors[0])
    # B's units that may change piece somewhere on a parent's box (with a wide safety margin: the
    # others are certain to keep the piece they have at the box centre)
    centre_b = _values_at(zb, _homogeneous(mid))[:, 0]
    spread_b = _spread(zb, half)
    dist = (centre_b - bps_b[0]).abs()
    maybe = dist * (1.0 - 1e-7) <= (spread_b + bound) * (1.0 + 1e-7)
    on_pb = centre_b > bps_b[0]
    cp_kid, cp_unit, raw_b = _children_b_inputs(maybe, g, zb, f_kid, f_unit, f_dy, lin_l, cn)
    # B's codes on the children: the parent's box-centre codes, S read at the child's vertex mean
    codes_b = _pack(on_pb)[g]
    newc = (_line_value(raw_b, kid_ctr[cp_kid]) > bps_b[0]).long()
    oldc = on_pb[g[cp_kid], cp_unit].long()
    d = (newc != oldc).nonzero().squeeze(1)
    _toggle(codes_b, cp_kid[d], cp_unit[d])
    # cut the children by B's lines that really cross them
    gc = g[cp_kid]  # (radius and floors may be per parent region: regions of several slices)
    tab = _line_table(raw_b, bps_b, _take(radius, gc), cp_unit, _line_floor(floors[1], gc, cp_unit))
    real = _crosses(kids.xy.index_select(0, cp_kid), tab).nonzero().squeeze(1)
    out, gk, bptr, bline, perm = _cut_pairs(kids, cp_kid[real], cp_unit[real], tab[real], n_b, off_b)
    raw_bc = raw_b[real[perm]]  # affine values of B's crossing units, in CSR order
    yk = _head_on_children(zb, on_pb, g, pair_par, cline, flips_a, lin_l, lin_m, table_b, cn)
    if len(d):
        dy = _piece_change(raw_b[d], cp_unit[d], newc[d], oldc[d], table_b)
        _add_sparse_rows(yk, cp_kid[d], cp_unit[d], dy, lin_m.weight.t(), cn)
    codes_bf, (h_kid, h_unit, _, h_dy) = _flips(codes_b, gk, bptr, bline, raw_bc, out.centroids(), table_b)
    yf = yk[gk]
    if len(h_kid):
        _add_sparse_rows(yf, h_kid, h_unit, h_dy, lin_m.weight.t(), len(gk))
    return out, g[gk], yf, [codes_a[gk], codes_bf], gk


def _change_bound(
    poly: Polygons, raw_a: torch.Tensor, on_pa: torch.Tensor, pair_par: torch.Tensor, cline: torch.Tensor,
    table_a: tuple[torch.Tensor, torch.Tensor, torch.Tensor], lin_l: nn.Linear, n_b: int, radius: Tol,
    floor: Tol,
) -> torch.Tensor:
    """The largest change ``(P, n_b)`` of every input of ``B`` over a parent's box that the children's
    flips of ``A``'s crossing units (``raw_a``, CSR ``pair_par``/``cline``) can make, through ``L``."""
    bps_a, slopes_a, inter_a = table_a
    mid, half = _box(poly)
    hp = half[pair_par]
    # (a child whose piece of unit i differs from the parent's lies on the other side of i's line
    # than the parent's vertex mean: only that part of the box counts)
    ca = _line_value(raw_a, mid[pair_par])
    sa = raw_a[:, 1].abs() * hp[:, 0] + raw_a[:, 2].abs() * hp[:, 1]
    on_a = on_pa[pair_par, cline]
    t_a = bps_a[0].abs()
    reach = torch.where(on_a, (ca - sa).abs(), (ca + sa).abs()).clamp_min(t_a)
    # a child may reach past the line by the cutting tolerance (its vertices there were snapped
    # onto the line): add twice that, and a relative slack far beyond rounding
    reach += 2.0 * _line_table(raw_a, bps_a, _take(radius, pair_par), cline, _line_floor(floor, pair_par, cline))[:, 3] + 1e-9 * (ca.abs() + sa + t_a)
    dslope = (slopes_a[1] - slopes_a[0]).abs()
    dinter = (inter_a[1] - inter_a[0]).abs()
    reach = reach * dslope[cline] + dinter[cline]
    bound = torch.zeros((len(poly), n_b), dtype=raw_a.dtype, device=raw_a.device)
    bound.index_add_(0, pair_par, lin_l.weight.t().abs()[cline] * reach[:, None])
    return bound


def _children_b_inputs(
    maybe: torch.Tensor, g: torch.Tensor, zb: torch.Tensor, f_kid: torch.Tensor, f_unit: torch.Tensor,
    f_dy: torch.Tensor, lin_l: nn.Linear, cn: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every child with every unit of ``B`` that may change piece on its parent (``maybe``): the
    pairs ``(child, unit)`` and their exact affine values, the parent's plus the sparse sum of the
    child's flips of ``A`` through ``L``."""
    p = maybe.shape[0]
    sp = maybe.nonzero()
    s_par, s_unit = sp[:, 0], sp[:, 1]
    s_cnt = torch.bincount(s_par, minlength=p)
    s_first = torch.cumsum(s_cnt, 0) - s_cnt
    cp_kid, k = _expand(s_cnt[g])
    cp_unit = s_unit[s_first[g][cp_kid] + k]
    raw_b = zb[g[cp_kid], :, cp_unit]  # (pairs, 3)
    nfl = torch.bincount(f_kid, minlength=cn)
    combo, k2 = _expand(nfl[cp_kid])
    if len(combo):
        fl = (torch.cumsum(nfl, 0) - nfl)[cp_kid[combo]] + k2
        wv = lin_l.weight[cp_unit[combo], f_unit[fl]]
        raw_b.index_add_(0, combo, f_dy[fl] * wv[:, None])
    return cp_kid, cp_unit, raw_b


def _head_on_children(
    zb: torch.Tensor, on_pb: torch.Tensor, g: torch.Tensor, pair_par: torch.Tensor, cline: torch.Tensor,
    flips_a: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], lin_l: nn.Linear, lin_m: nn.Linear,
    table_b: tuple[torch.Tensor, torch.Tensor, torch.Tensor], cn: int,
) -> torch.Tensor:
    """``M``'s output on the children ``(C, 3, out)``: per parent (``B`` on the parents' box-centre
    pieces), plus per child the flips of ``A`` through ``L`` and ``M``."""
    f_kid, f_unit, f_pair, f_dy = flips_a
    p, _, n_b = zb.shape
    gain_b, inter_bp = _piece_maps(on_pb, table_b)
    y = _masked_linear(zb, gain_b, inter_bp, lin_m)  # (P, 3, out)
    n_out = y.shape[2]
    yk = y[g]
    if len(f_kid):
        # M (gain_b * L[:, i]) for every flipped unit i of A: one product per parent for a small
        # head, else one per crossing pair of A
        if n_out <= 4:
            rp = (gain_b[:, None, :] * lin_m.weight[None]).reshape(-1, n_b) @ lin_l.weight
            r = rp.view(p, n_out, -1)[g[f_kid], :, f_unit]  # (flips, out)
        else:
            r = ((gain_b[pair_par] * lin_l.weight.t()[cline]) @ lin_m.weight.t())[f_pair]
        yk.view(cn, 3 * n_out).index_add_(0, f_kid, (f_dy[:, :, None] * r[:, None, :]).reshape(-1, 3 * n_out))
    return yk


def _one_parent_post(
    program: Program,
    pos: int,
    lin: nn.Linear,
    pre: torch.Tensor,
    table: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    env: dict[int, Any],
) -> tuple[Callable, dict[int, Any]]:
    """A nonlinearity followed by a Linear layer on the children of one region (the first cutting
    layer): the children's codes and Linear outputs are two matrix products with the parent's
    affine stack ``pre`` ``(1, 3, n)``, with no per-child copy of that stack.

    ``val = pre[0, 0] + ctr @ pre[0, 1:]`` gives every unit at each child's vertex mean; with the
    pieces' slopes ``gain`` ``(C, n)``, the output row ``r`` is ``(gain * pre[0, r]) @ W.T``, i.e.
    ``gain @ K`` with ``K[j, (r, o)] = pre[0, r, j] W[o, j]``.
    """
    q = pos + 1
    bps = table[0]
    p0 = pre[0]  # (3, n)
    w = lin.weight
    n_out = w.shape[0]
    sparse = sparse_weight(w) is not None  # (a sparse weight: three sparse products, no dense kmat)
    kmat = None if sparse else (p0[:, :, None] * w.t()[None]).permute(1, 0, 2).reshape(p0.shape[1], 3 * n_out)
    cenv = _env_past_linear(program, pos, env)

    def post(it: Any, g: torch.Tensor) -> None:
        val = torch.addmm(p0[0], it.poly.centroids(), p0[1:])
        on = val > bps[0]
        gain, inter = _piece_maps(on, table)
        if kmat is None:
            z = linear_rows((gain[:, None, :] * p0[None]).reshape(-1, p0.shape[1]), w).view(-1, 3, n_out)
        else:
            z = (gain @ kmat).view(-1, 3, n_out)
        if inter is not None:
            z[:, 0] += linear_rows(inter, w)
        if lin.bias is not None:
            z[:, 0] += lin.bias
        it.env[q] = z.view(-1, n_out)
        it.codes.append(_pack(on))

    return post, cenv


def _add_sparse_rows(
    z: torch.Tensor, child: torch.Tensor, unit: torch.Tensor, dy: torch.Tensor, wt: torch.Tensor, cn: int
) -> None:
    """``z[3 c + r] += dy[i, r] * wt[unit[i]]`` for every entry ``i`` of child ``c = child[i]``.

    In place, as one ``index_add_`` of the entries' outer products (a child has about one entry per
    layer: measured faster than a sparse CSR times dense product, which also allocates its result).
    """
    n_out = wt.shape[1]
    if n_out == 1:
        z.view(cn, 3).index_add_(0, child, dy * wt[unit])
        return
    src = (dy[:, :, None] * wt[unit][:, None, :]).reshape(-1, 3 * n_out)
    z.view(cn, 3 * n_out).index_add_(0, child, src)
