"""Max (or min) over groups of units: max-pooling, adaptive max-pooling, maxout, ``amax``/``amin``,
``max(dim).values``, ``torch.maximum``/``minimum`` of two tensors.

On a region every candidate of a group is an affine function of ``u``; the group's output is the
candidate that wins (its *code* is the winner's index in the group), and the region is cut into the
cells where each candidate wins, and only where the winner changes:

1. candidates that cannot win anywhere in a polygon (their largest value over its bounding box is
   below another candidate's smallest) are dropped; a group with one candidate left cuts nothing;
2. the polygon is cut by the lines ``f_i = f_j`` of every pair of remaining candidates that cross it
   (identical candidates, such as the zeros of dead ReLUs in one window, give no line);
3. the pieces get their codes, and pieces of one region with the same codes are merged: their union
   is convex (it is the region intersected with the half-planes where each winner beats the others),
   its boundary is the pieces' edges that are not shared by two of them, chained into one cycle; the
   vertices that only a needless line made are dropped again (on a straight border, met by fewer
   cells than a corner needs).

Edges carry the global line id ``offset + group * pairs + pair``: the result maps them to the group
(the pooling window) that made them.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ...errors import UnsupportedModelError
from ...trace import Step, _Ref
from ..cutting import _box, _crosses, _cut_pairs, _expand, _homogeneous, _line_table, _spread, _values_at
from ..geometry import Polygons, _fmix
from ..slices import Tol, _line_floor, _take
from .base import Kind

__all__ = ["Groups"]


# --------------------------------------------------------------------------- group structure
def _pool_axis(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> torch.Tensor:
    """Input positions ``(out, k)`` of each window along one axis (``-1``: padding)."""
    span = size + 2 * p - d * (k - 1) - 1
    if span < 0:
        raise UnsupportedModelError(f"a pooling window of size {k} (dilation {d}) does not fit an axis of {size}")
    out = (math.ceil(span / s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    pos = torch.arange(out)[:, None] * s - p + torch.arange(k)[None] * d
    return torch.where((pos >= 0) & (pos < size), pos, -1)


def _adaptive_axis(size: int, out: int) -> torch.Tensor:
    start = [(o * size) // out for o in range(out)]
    end = [-((-(o + 1) * size) // out) for o in range(out)]
    k = max(e - b for b, e in zip(start, end))
    pos = torch.tensor(start)[:, None] + torch.arange(k)[None]
    return torch.where(pos < torch.tensor(end)[:, None], pos, -1)


def _windows(shape: tuple[int, ...], axes: list[torch.Tensor]) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Flat input indices ``(groups, k)`` of windows over the last ``len(axes)`` axes of ``shape``
    (each axis: positions ``(out, k_axis)``), and the output shape."""
    nd = len(axes)
    spatial = shape[len(shape) - nd:]
    lead = 1
    for s in shape[: len(shape) - nd]:
        lead *= s
    idx = torch.zeros((1, 1), dtype=torch.int64)
    ok = torch.ones((1, 1), dtype=torch.bool)
    for a, pos in enumerate(axes):
        stride = 1
        for s in spatial[a + 1:]:
            stride *= s
        o, k = pos.shape
        idx = (idx[:, None, :, None] + (pos.clamp_min(0) * stride)[None, :, None, :]).reshape(idx.shape[0] * o, -1)
        ok = (ok[:, None, :, None] & (pos >= 0)[None, :, None, :]).reshape(ok.shape[0] * o, -1)
    nsp = 1
    for s in spatial:
        nsp *= s
    full = torch.arange(lead)[:, None, None] * nsp + idx[None]
    full = torch.where(ok[None], full, -1).reshape(-1, idx.shape[1])
    out_shape = tuple(shape[: len(shape) - nd]) + tuple(p.shape[0] for p in axes)
    return full, out_shape


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return tuple(int(v[0]) for _ in range(n))
        return tuple(int(x) for x in v)
    return tuple(int(v) for _ in range(n))


def _group_index(step: Step, shapes: list[tuple[int, ...]]) -> tuple[torch.Tensor, tuple[int, ...]]:
    """The candidates ``(groups, k)`` of every group, as flat indices into the step's input (``-1``:
    none, e.g. padding), and the shape of the step's output (without the batch axis)."""
    spec = step.pwl
    prm = spec.params
    shape = shapes[0]
    if spec.how == "pool":
        nd = prm["dims"]
        if len(shape) < nd:
            raise UnsupportedModelError(f"{step.name}: a {nd}-D pooling of an input of shape {shape}")
        kern = _tuple(prm["kernel"], nd)
        stride = _tuple(prm["stride"] if prm.get("stride") not in (None, ()) else kern, nd)
        pad = _tuple(prm.get("padding", 0), nd)
        dil = _tuple(prm.get("dilation", 1), nd)
        sp = shape[len(shape) - nd:]
        axes = [_pool_axis(sp[a], kern[a], stride[a], pad[a], dil[a], bool(prm.get("ceil_mode", False))) for a in range(nd)]
        return _windows(shape, axes)
    if spec.how == "adaptive":
        nd = prm["dims"]
        outs = prm["output_size"]
        outs = list(outs) if isinstance(outs, (tuple, list)) else [outs] * nd
        sp = shape[len(shape) - nd:]
        axes = [_adaptive_axis(sp[a], sp[a] if outs[a] is None else int(outs[a])) for a in range(nd)]
        return _windows(shape, axes)
    if spec.how == "dim":
        rank = len(shape) + 1
        dims = prm["dims"]
        dims = list(dims) if isinstance(dims, (tuple, list)) else [dims]
        norm = sorted({d + rank if d < 0 else d for d in dims})
        if any(d == 0 for d in norm) or any(d < 0 or d >= rank for d in norm):
            raise UnsupportedModelError(
                f"{step.name} reduces over dims {dims} of a tensor of rank {rank}, which include the batch "
                "axis (axis 0); splinecam evaluates many regions as one batch. Reduce over feature axes only"
            )
        red = [d - 1 for d in norm]
        kept = [a for a in range(len(shape)) if a not in red]
        n = 1
        for s in shape:
            n *= s
        ar = torch.arange(n).reshape(shape).permute(*kept, *red)
        k = 1
        for a in red:
            k *= shape[a]
        idx = ar.reshape(-1, k)
        if prm.get("keepdim", False):
            out_shape = tuple(1 if a in red else shape[a] for a in range(len(shape)))
        else:
            out_shape = tuple(shape[a] for a in kept)
        return idx, out_shape
    if spec.how == "pair":
        out_shape = tuple(torch.broadcast_shapes(*shapes))
        parts = []
        base = 0
        for s in shapes:
            n = 1
            for x in s:
                n *= x
            parts.append((torch.arange(n).reshape(s) + base).broadcast_to(out_shape).reshape(-1))
            base += n
        return torch.stack(parts, 1), out_shape
    raise UnsupportedModelError(f"{step.name}: unknown group kind {spec.how!r}")  # pragma: no cover


def _const_operand(v: Any, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A constant operand of ``torch.maximum``/``minimum``, broadcast to the per-sample ``shape``."""
    c = torch.as_tensor(v, dtype=dtype, device=device)
    return torch.broadcast_to(c, (1, *shape)).reshape(shape)


# --------------------------------------------------------------------------- the kind
class Groups(Kind):
    """Max or min over groups of units (see the module docstring)."""

    def __init__(self, step: Step, shapes: list[tuple[int, ...]], dtype: torch.dtype, device: torch.device) -> None:
        super().__init__(step, shapes[0], dtype, device)
        self.shapes = [tuple(s) for s in shapes]
        self.sign = 1.0 if step.pwl.reduce == "max" else -1.0
        idx, out_shape = _group_index(step, self.shapes)
        # a window with no candidate at all (only padding) cannot occur in torch's pooling
        self.idx = idx.to(device)
        self.valid = self.idx >= 0
        self.cidx = self.idx.clamp_min(0)
        self.unit_shape = out_shape
        self.units = int(idx.shape[0])
        self.k = int(idx.shape[1])
        iu = torch.triu_indices(self.k, self.k, 1)
        self.pi, self.pj = iu[0].to(device), iu[1].to(device)
        self.pairs = int(self.pi.numel())
        self.lines_per_unit = max(self.pairs, 1)
        self.code_dtype = torch.int8 if self.k <= 127 else (torch.int16 if self.k <= 32767 else torch.int32)
        self.n_in = sum(math.prod(s) for s in self.shapes)

    # ------------------------------------------------------------------ inputs
    def input_stack(self, env: dict[int, Any], nreg: int) -> torch.Tensor:
        args = [a for a in self.step.args if isinstance(a, (_Ref, torch.Tensor))]
        if self.step.pwl.how != "pair":
            return env[int(args[0])].reshape(nreg, 3, -1)
        parts = []
        for i, a in enumerate(self.step.args[:2]):
            if isinstance(a, _Ref) and self.step.pwl.params["stack"][i]:
                parts.append(env[int(a)].reshape(nreg, 3, -1))
            else:  # a constant operand: its value, no slope
                v = env[int(a)] if isinstance(a, _Ref) else a
                c = _const_operand(v, self.shapes[i], self.dtype, self.device)
                z = torch.zeros((nreg, 3, c.numel()), dtype=self.dtype, device=self.device)
                z[:, 0] = c.reshape(-1)
                parts.append(z)
        return torch.cat(parts, 2)

    def _cand(self, v: torch.Tensor, groups: torch.Tensor | None = None) -> torch.Tensor:
        """Candidate values ``(..., G, k)`` of unit values ``v`` ``(..., n_in)``, signed so that the
        winner is the largest; missing candidates are ``-inf``."""
        cidx = self.cidx if groups is None else self.cidx[groups]
        valid = self.valid if groups is None else self.valid[groups]
        c = v[..., cidx] * self.sign
        return c.masked_fill(~valid, -math.inf)

    def _winner(self, c: torch.Tensor, tol: torch.Tensor | float) -> torch.Tensor:
        """Index of the winner of candidate values ``c`` ``(..., k)``: the first candidate within
        ``tol`` of the largest (identical candidates tie up to rounding)."""
        top = c.amax(-1, keepdim=True)
        near = c >= top - tol
        return near.to(torch.uint8).argmax(-1)

    # ------------------------------------------------------------------ cutting
    def cut(
        self, poly: Polygons, pre: torch.Tensor, radius: Tol, line_offset: int, floor: Tol
    ) -> tuple[Polygons, torch.Tensor]:
        p = len(poly)
        dev = pre.device
        if self.k < 2:
            return poly, torch.arange(p, device=dev)
        mid, half = _box(poly)
        cv = self._cand(_values_at(pre, _homogeneous(mid))[:, 0])  # (P, G, k)
        sp = _spread(pre, half * (1.0 + 1e-9))[:, self.cidx]
        lo, hi = cv - sp, cv + sp
        best = lo.amax(-1, keepdim=True)
        pot = hi >= best  # may win somewhere in the box
        amb = pot.sum(-1) >= 2
        r, g = amb.nonzero(as_tuple=True)
        if len(r) == 0:
            return poly, torch.arange(p, device=dev)
        pm = pot[r, g]
        # two candidates constant on the region (zero slopes: the zeros of dead ReLUs, most windows
        # of a random CNN) tie nowhere or everywhere; their "line" ``c = 0`` crosses nothing
        flat = (pre[:, 1:] == 0).all(1)[r[:, None], self.cidx[g]]  # (A, k)
        a, q = (pm[:, self.pi] & pm[:, self.pj] & ~(flat[:, self.pi] & flat[:, self.pj])).nonzero(as_tuple=True)
        rr, gg = r[a], g[a]
        ci, cj = self.cidx[gg, self.pi[q]], self.cidx[gg, self.pj[q]]
        raw = pre[rr, :, ci] - pre[rr, :, cj]
        ll = gg * self.pairs + q
        fl = _line_floor(floor, rr, ci)  # a pair's line: the larger floor of its two candidates
        if isinstance(fl, torch.Tensor):
            fl = torch.maximum(fl, _line_floor(floor, rr, cj))
        tab = _line_table(raw, torch.zeros(1, dtype=pre.dtype, device=dev), _take(radius, rr), ll, fl)
        real = _crosses(poly.xy.index_select(0, rr), tab)
        if not bool(real.any()):
            return poly, torch.arange(p, device=dev)
        pp, ll, tab = rr[real], ll[real], tab[real]
        pieces, parent, _, _, _ = _cut_pairs(poly, pp, ll, tab, self.units * self.pairs, line_offset)
        # pieces with the same winners in their parent's ambiguous groups are one cell
        amb_ptr = torch.zeros(p + 1, dtype=torch.int64, device=dev)
        amb_ptr[1:] = torch.cumsum(torch.bincount(r, minlength=p), 0)
        child, kk = _expand((amb_ptr[1:] - amb_ptr[:-1])[parent])
        ent = amb_ptr[parent][child] + kk  # (piece, ambiguous group of its parent) entries
        gg = g[ent]
        ctr = pieces.centroids()
        hom = _homogeneous(ctr)[:, 0]  # (C, 3)
        cand = self._pair_values(pre, parent[child], gg, hom[child])
        rows = parent[child]
        if isinstance(floor, torch.Tensor) and floor.dim() == 2:  # per unit: the group's largest floor
            fl = floor[rows[:, None], self.cidx[gg]].masked_fill(~self.valid[gg], 0.0).amax(1)
        else:
            fl = _take(floor, rows)  # (per region where regions of several slices are cut)
        w = self._winner(cand, fl[:, None] if isinstance(fl, torch.Tensor) else fl)
        key = torch.zeros(len(pieces), dtype=torch.int64, device=dev)
        key.index_add_(0, child, _fmix(gg * 1_000_003 + w.long() * 7 + 1))
        return _merge_same(poly, pieces, parent, key, line_offset, line_offset + self.units * self.pairs)

    def _pair_values(self, pre: torch.Tensor, rows: torch.Tensor, groups: torch.Tensor, hom: torch.Tensor) -> torch.Tensor:
        """Signed values ``(E, k)`` of the candidates of ``groups`` at homogeneous points ``hom`` ``(E, 3)``
        on regions ``rows`` of ``pre``."""
        ci = self.cidx[groups]  # (E, k)
        coef = pre[rows[:, None], :, ci]  # (E, k, 3)
        v = (coef * hom[:, None, :]).sum(-1) * self.sign
        return v.masked_fill(~self.valid[groups], -math.inf)

    # ------------------------------------------------------------------ codes and outputs
    def post(self, pos: int, in_place: bool) -> Callable[[Any, torch.Tensor], None]:
        free = list(self.step.free_after)
        out_shape = self.unit_shape

        def post(it: Any, g: torch.Tensor) -> None:
            nreg = len(it.poly)
            pre = self.input_stack(it.env, nreg)
            val = _values_at(pre, _homogeneous(it.poly.centroids()))[:, 0]
            c = self._cand(val)
            hint = self.floor_hint  # (a tensor with one entry per slice: regions of several slices)
            tol = (hint.index_select(0, it.sid)[:, None, None] if isinstance(hint, torch.Tensor)
                   else hint * torch.ones((), dtype=c.dtype, device=c.device))
            w = self._winner(c, tol)  # (C, G)
            it.codes.append(w.to(self.code_dtype))
            src = torch.gather(self.cidx.expand(nreg, -1, -1), 2, w[..., None].long()).squeeze(2)  # (C, G)
            y = torch.gather(pre, 2, src[:, None, :].expand(-1, 3, -1))
            it.env[pos] = y.reshape(nreg * 3, *out_shape)
            for r in free:
                it.env.pop(r, None)

        return post

    floor_hint: Tol = 0.0

    def codes_at(self, x: torch.Tensor, tol: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        c = self._cand(x)  # (N, G, k)
        t = torch.as_tensor(tol, dtype=c.dtype, device=c.device)
        t = t.amax(-1, keepdim=True) if t.dim() >= 2 else t.reshape(-1, 1) if t.dim() == 1 else t
        w = self._winner(c, t[..., None])
        if self.k < 2:
            return w, torch.ones_like(w, dtype=torch.bool)
        top2 = c.topk(2, -1).values
        # clear: the winner beats every other candidate by more than tol (a window with one
        # candidate, the others padding, is always clear)
        return w, ((top2[..., 0] - top2[..., 1]) > t) | torch.isinf(top2[..., 1])


# --------------------------------------------------------------------------- merging pieces
def _merge_same(
    parents: Polygons, pieces: Polygons, parent: torch.Tensor, key: torch.Tensor, lo_line: int, hi_line: int
) -> tuple[Polygons, torch.Tensor]:
    """Merge the pieces of one parent (``parents``, indexed by ``parent``) with equal ``key`` (equal
    codes) into one convex polygon each; the lines of this step have ids ``[lo_line, hi_line)``."""
    dev = parent.device
    n = len(pieces)
    # group id of every piece: pieces sorted by (parent, key)
    o1 = torch.argsort(key, stable=True)
    order = o1[torch.argsort(parent[o1], stable=True)]
    sp, sk = parent[order], key[order]
    new = torch.ones(n, dtype=torch.bool, device=dev)
    new[1:] = (sp[1:] != sp[:-1]) | (sk[1:] != sk[:-1])
    gid_sorted = torch.cumsum(new.long(), 0) - 1
    gid = torch.empty_like(gid_sorted)
    gid[order] = gid_sorted
    ng = int(gid_sorted[-1]) + 1 if n else 0
    size = torch.bincount(gid, minlength=ng)
    if bool((size == 1).all()):
        return pieces, parent
    multi = size[gid] > 1
    keep_i = (~multi).nonzero().squeeze(1)
    mi = multi.nonzero().squeeze(1)
    merged, mgid, ok = _union_cycles(pieces.index(mi), gid[mi])
    # groups whose union is not one simple cycle (snapping decided differently along a shared edge)
    # keep their pieces: correct geometry, at worst a needless cut
    bad = ~ok[gid[mi]]
    out_parts = [pieces.index(keep_i), merged]
    owners = [parent[keep_i], parent[mi][_first_of(gid[mi], mgid)]]
    if bool(bad.any()):
        bi = mi[bad]
        out_parts.append(pieces.index(bi))
        owners.append(parent[bi])
    out = Polygons.cat(out_parts)
    own = torch.cat(owners)
    out = _drop_needless_vertices(parents, out, own, lo_line, hi_line)
    return out, own


def _first_of(gids: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
    """For every group id in ``wanted``, the position of its first member in ``gids``."""
    first = torch.full((int(gids.max()) + 1,), len(gids), dtype=torch.int64, device=gids.device)
    first.scatter_reduce_(0, gids, torch.arange(len(gids), device=gids.device), "amin")
    return first[wanted]


def _union_cycles(pcs: Polygons, gid: torch.Tensor) -> tuple[Polygons, torch.Tensor, torch.Tensor]:
    """The boundary cycles of the unions of pieces with equal ``gid``: the merged polygons (for the
    groups whose boundary is one simple cycle), their group ids, and a flag per group id."""
    dev = gid.device
    p, k = pcs.hsh.shape
    slots = torch.arange(k, device=dev)
    valid = slots[None] < pcs.nv[:, None]
    nxt = torch.where(slots[None] + 1 < pcs.nv[:, None], slots[None] + 1, 0)
    a = pcs.hsh[valid]
    b = torch.gather(pcs.hsh, 1, nxt)[valid]
    lab = pcs.lab[valid]
    xy = pcs.xy[valid]
    eg = gid[:, None].expand(-1, k)[valid]
    # an edge shared by two pieces of the group appears once in each direction: drop both
    lo, hi = torch.minimum(a, b), torch.maximum(a, b)
    o = torch.argsort(hi, stable=True)
    o = o[torch.argsort(lo[o], stable=True)]
    o = o[torch.argsort(eg[o], stable=True)]
    same = (eg[o][1:] == eg[o][:-1]) & (lo[o][1:] == lo[o][:-1]) & (hi[o][1:] == hi[o][:-1])
    dup = torch.zeros(len(o), dtype=torch.bool, device=dev)
    dup[1:] |= same
    dup[:-1] |= same
    inner = torch.zeros_like(dup)
    inner[o] = dup
    ngid = int(gid.max()) + 1
    ok = torch.ones(ngid, dtype=torch.bool, device=dev)
    # an edge in three or more pieces of a group: not a planar union
    if len(o) > 2:
        tri = same[1:] & same[:-1]
        if bool(tri.any()):
            ok[eg[o][1:-1][tri]] = False
    bd = ~inner
    a, b, lab, xy, eg = a[bd], b[bd], lab[bd], xy[bd], eg[bd]
    # chain the boundary edges of every group: padded per group, the next edge starts where one ends
    order = torch.argsort(eg, stable=True)
    a, b, lab, xy, eg = a[order], b[order], lab[order], xy[order], eg[order]
    cnt = torch.bincount(eg, minlength=ngid)
    ok &= cnt >= 3
    start = torch.cumsum(cnt, 0) - cnt
    lmax = int(cnt.max())
    pos = torch.arange(len(eg), device=dev) - start[eg]
    sa = torch.zeros((ngid, lmax), dtype=a.dtype, device=dev)
    filled = torch.zeros((ngid, lmax), dtype=torch.bool, device=dev)
    sa[eg, pos] = a
    filled[eg, pos] = True
    match = (b[:, None] == sa[eg]) & filled[eg]  # (edges, lmax)
    nm = match.sum(1)
    bad_g = torch.unique(eg[nm != 1])
    ok[bad_g] = False
    nxt_e = match.to(torch.uint8).argmax(1)  # slot of the next edge in the group
    table = torch.zeros((ngid, lmax), dtype=torch.int64, device=dev)
    table[eg, pos] = nxt_e
    # walk each group's cycle from slot 0
    cur = torch.zeros(ngid, dtype=torch.int64, device=dev)
    walk = torch.zeros((ngid, lmax), dtype=torch.int64, device=dev)
    back = torch.full((ngid,), -1, dtype=torch.int64, device=dev)
    gar = torch.arange(ngid, device=dev)
    for step in range(lmax):
        walk[:, step] = cur
        cur = table[gar, cur]
        back = torch.where((back < 0) & (cur == 0), step + 1, back)
    ok &= back == cnt
    keep = ok.nonzero().squeeze(1)
    cnt_k = cnt[keep]
    kk = int(cnt_k.max()) if len(keep) else 1
    sl = torch.arange(kk, device=dev)
    w = walk[keep][:, :kk]
    w = torch.where(sl[None] < cnt_k[:, None], w, w[:, :1])
    flat = start[keep][:, None] + w
    merged = Polygons(xy[flat], a[flat], lab[flat], cnt_k)
    return merged, keep, ok


def _drop_needless_vertices(
    parents: Polygons, poly: Polygons, owner: torch.Tensor, lo_line: int, hi_line: int
) -> Polygons:
    """Drop the vertices that only a needless line of this step made.

    A vertex that is not one of its parent's (``parents[owner]``) is a corner of the cells of that
    parent only if at least 3 of them meet there, or 2 on the parent's border (an edge with a label
    outside this step's lines ``[lo_line, hi_line)`` meets it). A needless line that was merged
    away leaves vertices met by fewer cells, on a straight border: they are dropped, on both sides
    of every edge alike (the neighbouring parent sees the same line through the same point, and
    drops it for the same reason).
    """
    dev = owner.device
    p, k = poly.hsh.shape
    slots = torch.arange(k, device=dev)
    valid = slots[None] < poly.nv[:, None]
    prv = torch.where(slots[None] > 0, slots[None] - 1, poly.nv[:, None] - 1)
    lab_in = torch.gather(poly.lab, 1, prv)
    old_edge = ((poly.lab < lo_line) | (poly.lab >= hi_line)) | ((lab_in < lo_line) | (lab_in >= hi_line))
    own = owner[:, None].expand(-1, k)[valid]
    key = _fmix(poly.hsh[valid] * 31 + own)
    pk_valid = torch.arange(parents.hsh.shape[1], device=dev)[None] < parents.nv[:, None]
    pown = torch.arange(len(parents), device=dev)[:, None].expand(-1, parents.hsh.shape[1])[pk_valid]
    pkey = _fmix(parents.hsh[pk_valid] * 31 + pown)
    uk, inv = torch.unique(key, return_inverse=True)
    nk = len(uk)
    cells = torch.bincount(inv, minlength=nk)
    on_border = torch.zeros(nk, dtype=torch.bool, device=dev).scatter_reduce_(0, inv, old_edge[valid], "amax")
    is_old = torch.isin(uk, pkey)
    drop_v = ~is_old & (cells < torch.where(on_border, 2, 3))
    if not bool(drop_v.any()):
        return poly
    drop = torch.zeros((p, k), dtype=torch.bool, device=dev)
    drop[valid] = drop_v[inv]
    keepm = valid & ~drop
    cnt = keepm.sum(1)
    rank = torch.cumsum(keepm, 1) - 1
    kk = int(cnt.max())
    dest = torch.where(keepm, rank, kk)
    order = torch.zeros((p, kk + 1), dtype=torch.int64, device=dev)
    order.scatter_(1, dest, slots.expand(p, -1))
    order = order[:, :kk]
    sl = torch.arange(kk, device=dev)
    order = torch.where(sl[None] < cnt[:, None], order, order[:, :1])
    xy = torch.gather(poly.xy, 1, order[..., None].expand(-1, -1, 2))
    hs = torch.gather(poly.hsh, 1, order)
    # the edge out of a kept vertex runs to the next kept one and keeps its first part's label
    lb = torch.gather(poly.lab, 1, order)
    return Polygons(xy, hs, lb, cnt)
