"""Batched convex-polygon geometry on padded tensors.

Polygons are stored as a :class:`Polygons` batch: ``xy`` ``(P, K, 2)`` vertex coordinates (padded
slots repeat vertex 0), ``hsh`` ``(P, K)`` 64-bit vertex identifiers, ``lab`` ``(P, K)`` the label
of the edge from vertex ``k`` to vertex ``k + 1`` (``-1`` for the domain border, else the global id
of the line that made it), and ``nv`` ``(P,)`` vertex counts. Vertices are counter-clockwise.

Vertex identity is combinatorial: a vertex made where line ``l`` crosses the edge between vertices
``a`` and ``b`` gets the identifier ``mix(min(a, b), max(a, b), l)``. Two neighbouring polygons that
cut their shared edge with the same line therefore create the *same* vertex, whichever chunk or
iteration they are processed in, so the final planar graph needs no coordinate welding.

Tolerance policy (the one place it is defined): a vertex lies *on* a line ``c + a . u = 0`` when
``|c + a . u| <= EPS * (|c| + (|a_0| + |a_1|) * radius)``, where ``radius`` bounds the coordinates
(the engine works in coordinates centred on the domain, so this is relative to the domain's scale
and to the magnitude of the line's own coefficients), or within its unit's noise floor: 1e-14
times the sum of the absolute terms that make the unit's input at the domain's vertices and centre
(``splinecam.engine.run._NOISE_FLOOR``, :mod:`splinecam.engine.noise`; a unit that is identically
zero on a region has rounding noise for coefficients there, and must not cut). Such a vertex is snapped onto the line: the cut passes
through it and no sliver is made. A line crosses a polygon when some vertex is strictly above and
some strictly below it by more than that tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["EPS", "Polygons", "mix_hash", "edge_hash", "split_by_lines"]

EPS = 1e-10

_M31 = (1 << 31) - 1
_C1 = -49064778989728563  # 0xff51afd7ed558ccd as signed int64
_C2 = -4265267296055464877  # 0xc4ceb9fe1a85ec53 as signed int64
_K1 = -7046029254386353131  # 0x9e3779b97f4a7c15
_K2 = 0x632BE59BD9B4E019
_K3 = 0x27BB2EE687B0B0FD


def _fmix(x: Any) -> Any:
    # murmur3 finaliser with logical shifts emulated on signed int64 (multiplication wraps); the same
    # operators on int64 torch tensors and numpy arrays (engine.cutting_np uses it on the latter)
    x = x ^ ((x >> 33) & _M31)
    x = x * _C1
    x = x ^ ((x >> 33) & _M31)
    x = x * _C2
    return x ^ ((x >> 33) & _M31)


def mix_hash(a: torch.Tensor, b: torch.Tensor, lid: torch.Tensor) -> torch.Tensor:
    """Identifier of the vertex made by line ``lid`` on the edge between vertices ``a`` and ``b``."""
    lo = torch.minimum(a, b)
    hi = torch.maximum(a, b)
    # one finaliser over a wrapping linear combination: ``lo`` and ``hi`` are themselves mixed
    # 64-bit identifiers, so distinct triples collide with probability about 2^-64 (a collision
    # would be caught when the partition is built: one identifier, two different points)
    x = lo * _K1
    x.add_(hi * _K2).add_(lid * _K3 + 12345)
    return _fmix(x)


# Line id ranges ``[lo, hi)`` of the steps with jumps in this run (Hardshrink, Threshold, Sawtooth...):
# their edges separate regions on which later steps' values differ, so a later line crosses such an
# edge at different points on its two sides. A vertex made on such an edge gets an identifier of the
# edge's direction (the two sides walk it in opposite directions): two points, two identifiers, and
# the Partition mends the T-junctions that leaves (:mod:`splinecam.engine.repair`). Set by the engine
# for the duration of a run (:func:`splinecam.engine.run.run_program`); empty for continuous networks.
_JUMP_LINES: list[tuple[int, int]] = []


def edge_hash(a: torch.Tensor, b: torch.Tensor, lab: torch.Tensor, lid: torch.Tensor) -> torch.Tensor:
    """Identifier of the vertex made by line ``lid`` on the edge ``a -> b`` labelled ``lab``: that of
    :func:`mix_hash`, or a directed one on an edge of a step with jumps (see ``_JUMP_LINES``)."""
    h = mix_hash(a, b, lid)
    if not _JUMP_LINES:
        return h
    jump = torch.zeros_like(lab, dtype=torch.bool)
    for lo, hi in _JUMP_LINES:
        # (the step's own lines are continuous across its jumps: only later steps' lines jump)
        jump |= (lab >= lo) & (lab < hi) & (lid >= hi)
    if not bool(jump.any()):
        return h
    x = a * _K2
    x.add_(b * _K1).add_(lid * _K3 + 54321)
    return torch.where(jump, _fmix(x), h)


def _interleave(v: torch.Tensor) -> torch.Tensor:
    """Spread the 16 low bits of ``v`` (int64) to the even bit positions (for a Z-order key)."""
    v = (v | (v << 8)) & 0x00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F
    v = (v | (v << 2)) & 0x33333333
    return (v | (v << 1)) & 0x55555555


def _zorder(pts: torch.Tensor) -> torch.Tensor:
    """The permutation that sorts points ``(C, 2)`` along a Z-order (Morton) curve through their
    bounding box, on a 65536 x 65536 grid: consecutive points are mostly close to each other."""
    if len(pts) == 0:
        return torch.zeros(0, dtype=torch.int64, device=pts.device)
    lo = pts.min(0).values
    span = (pts.max(0).values - lo).clamp_min(torch.finfo(pts.dtype).tiny)
    q = ((pts - lo) / span * 65535.0).long().clamp_(0, 65535)
    return torch.argsort(_interleave(q[:, 0]) | (_interleave(q[:, 1]) << 1))


@dataclass
class Polygons:
    """A batch of convex polygons on padded tensors (see module docstring)."""

    xy: torch.Tensor
    hsh: torch.Tensor
    lab: torch.Tensor
    nv: torch.Tensor

    def __len__(self) -> int:
        return int(self.nv.shape[0])

    def index(self, idx: torch.Tensor) -> Polygons:
        p = Polygons(
            self.xy.index_select(0, idx),
            self.hsh.index_select(0, idx),
            self.lab.index_select(0, idx),
            self.nv.index_select(0, idx),
        )
        return p.trim()

    def trim(self) -> Polygons:
        if len(self) == 0:
            return self
        k = int(self.nv.max())
        if k < self.xy.shape[1]:
            return Polygons(self.xy[:, :k], self.hsh[:, :k], self.lab[:, :k], self.nv)
        return self

    def pad_to(self, k: int) -> Polygons:
        cur = self.xy.shape[1]
        if cur >= k:
            return self
        extra = k - cur
        xy = torch.cat([self.xy, self.xy[:, :1].expand(-1, extra, -1)], 1)
        hsh = torch.cat([self.hsh, self.hsh[:, :1].expand(-1, extra)], 1)
        lab = torch.cat([self.lab, self.lab.new_full((len(self), extra), -1)], 1)
        return Polygons(xy, hsh, lab, self.nv)

    @staticmethod
    def cat(parts: list[Polygons]) -> Polygons:
        parts = [p for p in parts if len(p)]
        k = max(p.xy.shape[1] for p in parts)
        parts = [p.pad_to(k) for p in parts]
        return Polygons(
            torch.cat([p.xy for p in parts]),
            torch.cat([p.hsh for p in parts]),
            torch.cat([p.lab for p in parts]),
            torch.cat([p.nv for p in parts]),
        )

    def centroids(self) -> torch.Tensor:
        """Vertex means ``(P, 2)``: points strictly inside non-degenerate convex polygons."""
        k = self.xy.shape[1]
        valid = torch.arange(k, device=self.nv.device) < self.nv[:, None]
        s = (self.xy * valid[..., None]).sum(1)
        return s / self.nv[:, None].to(self.xy.dtype)


def split_by_lines(
    poly: Polygons,
    c: torch.Tensor,
    a0: torch.Tensor,
    a1: torch.Tensor,
    tol: torch.Tensor,
    lid: torch.Tensor,
    all_crossed: bool = False,
) -> tuple[Polygons, torch.Tensor]:
    """Split each polygon ``i`` by its own line ``c[i] + a0[i] x + a1[i] y = 0``.

    Returns ``(pieces, src)``: the resulting polygons and the index of the input polygon each piece
    comes from. The first ``len(poly)`` pieces are the input polygons in order, each replaced by its
    part above the line when the line crosses it (and unchanged otherwise); the parts below the
    crossing lines follow. Vertices within ``tol[i]`` of the line are snapped onto it. The new edge
    along the line gets label ``lid[i]``; new vertices get combinatorial identifiers
    (:func:`mix_hash`). The input's tensors may be reused and written to. ``all_crossed``: the
    caller knows that every line crosses its polygon (some vertex above the tolerance, some below).
    """
    xy = poly.xy
    p, k, _ = xy.shape
    dev = xy.device
    s = c[:, None] + xy[..., 0] * a0[:, None] + xy[..., 1] * a1[:, None]
    s = s.masked_fill_(s.abs() <= tol[:, None], 0.0)
    ar = torch.arange(p, device=dev)
    if all_crossed:
        return _split_crossed(poly, s, lid), torch.cat([ar, ar])
    # padded slots repeat vertex 0, so they never change these any()
    crossed = (s > 0).any(1) & (s < 0).any(1)
    ci = crossed.nonzero().squeeze(1)
    if ci.numel() == 0:
        return poly, ar
    if ci.numel() == p:  # every polygon is crossed: no gather, no scatter
        return _split_crossed(poly, s, lid), torch.cat([ar, ar])
    both = _split_crossed(poly.index(ci), s[ci], lid[ci])
    m = len(ci)
    above = Polygons(both.xy[:m], both.hsh[:m], both.lab[:m], both.nv[:m])
    below = Polygons(both.xy[m:], both.hsh[m:], both.lab[m:], both.nv[m:])
    kk = max(k, above.xy.shape[1])
    base = poly.pad_to(kk)
    above = above.pad_to(kk)
    base.xy[ci] = above.xy
    base.hsh[ci] = above.hsh
    base.lab[ci] = above.lab
    base.nv[ci] = above.nv
    out = Polygons.cat([base, below.trim()])
    return out, torch.cat([ar, ci])


def _split_crossed(poly: Polygons, s: torch.Tensor, lid: torch.Tensor) -> Polygons:
    """Both parts of polygons crossed by their lines (``s``: snapped line values at the vertices):
    rows ``[0, P)`` the parts above, ``[P, 2P)`` the parts below.

    On a convex polygon the vertices with ``s >= 0`` form one arc of its cycle, from ``start`` to
    ``end``. The part above is that arc with, before it, the crossing point on the edge into
    ``start`` (unless ``start`` lies on the line) and, after it, the crossing point on the edge out
    of ``end`` (unless ``end`` lies on the line); the part below is the same with ``-s``. Both
    parts are made together by one gather per field. A sign pattern that is not one arc
    (impossible for convex polygons, whose rounding errors lie far below the snapping tolerance)
    falls back to :func:`_split_crossed_general`.
    """
    xy, hsh, lab, nv = poly.xy, poly.hsh, poly.lab, poly.nv
    p, k, _ = xy.shape
    s = s[:, :k]
    dev = xy.device
    slots = torch.arange(k, device=dev)
    nv2 = nv.repeat(2)
    keep = torch.cat([s >= 0, s <= 0])
    keep &= slots < nv2[:, None]
    # the slot before slot j is j - 1, and nv - 1 before slot 0
    kprev = torch.empty_like(keep)
    kprev[:, 1:] = keep[:, :-1]
    kprev[:, 0] = keep.gather(1, (nv2 - 1)[:, None])[:, 0]
    first = keep & ~kprev
    if bool((first.sum(1) != 1).any()):
        above, below = _split_crossed_general(poly, s, lid)
        return Polygons.cat([above, below])
    start = first.to(torch.uint8).argmax(1)
    arc = keep.sum(1)
    end = torch.remainder(start + arc - 1, nv2)
    before = torch.remainder(start - 1, nv2)
    after = torch.remainder(end + 1, nv2)
    # the two crossed edges: before -> start and end -> after (flat slot ids)
    rowk = torch.arange(p, device=dev).repeat(2) * k
    idx4 = (torch.stack([before, start, end, after], 1) + rowk[:, None]).reshape(-1)
    xy4 = xy.reshape(-1, 2).index_select(0, idx4).reshape(2 * p, 2, 2, 2)  # row, edge, end, coord
    h4 = hsh.reshape(-1).index_select(0, idx4).reshape(2 * p, 2, 2)
    s4 = s.reshape(-1).index_select(0, idx4).reshape(2 * p, 2, 2)
    s4[p:] *= -1
    has_in = s4[:, 0, 1] > 0  # else ``start`` lies on the line
    has_out = s4[:, 1, 0] > 0  # else ``end`` does
    lid2 = lid.repeat(2)
    # crossing points, each computed from the first vertex of its edge in counter-clockwise order
    # (as every polygon sharing the edge on this side does)
    t = s4[..., 0] / (s4[..., 0] - s4[..., 1])
    x0 = xy4[:, :, 0]
    xio = x0 + t[..., None] * (xy4[:, :, 1] - x0)  # (2P, 2, 2)
    if _JUMP_LINES:  # the labels of the two crossed edges tell which are edges of a step with jumps
        l4 = lab.reshape(-1).index_select(0, idx4).reshape(2 * p, 2, 2)[..., 0]
        hio = edge_hash(h4[..., 0], h4[..., 1], l4, lid2[:, None])
    else:
        hio = mix_hash(h4[..., 0], h4[..., 1], lid2[:, None])
    # slot j of a part: [crossing in] + vertices start .. end + [crossing out], padded with slot 0.
    # Every field is one gather from the vertices followed by the crossing points in and out
    # (rows ``pk + 2 row`` and ``pk + 2 row + 1``); for the labels, those rows hold the label of
    # the edge into ``start`` and the cut's label.
    hi = has_in.long()
    ahi = arc + hi
    cnt = ahi + has_out.long()
    kk = int(cnt.max())
    j = torch.arange(kk, device=dev)
    pk = p * k
    vid = torch.remainder(start[:, None] + (j - hi[:, None]), nv2[:, None]) + rowk[:, None]
    xin = (pk + 2 * torch.arange(2 * p, device=dev))[:, None]
    vid = torch.where((j == 0) & has_in[:, None], xin, vid)
    vid = torch.where((j == ahi[:, None]) & has_out[:, None], xin + 1, vid)
    vid = torch.where(j >= cnt[:, None], vid[:, :1], vid)
    # the edge from the last arc vertex is the cut when there is no crossing out
    lidx = torch.where((j == (ahi - 1)[:, None]) & ~has_out[:, None], xin + 1, vid)
    vid = vid.reshape(-1)
    pxy = torch.cat([xy.reshape(-1, 2), xio.reshape(-1, 2)]).index_select(0, vid).reshape(2 * p, kk, 2)
    ph = torch.cat([hsh.reshape(-1), hio.reshape(-1)]).index_select(0, vid).reshape(2 * p, kk)
    labf = lab.reshape(-1)
    lio = torch.stack([labf.index_select(0, idx4[0::4]), lid2], 1)
    plab = torch.cat([labf, lio.reshape(-1)]).index_select(0, lidx.reshape(-1)).reshape(2 * p, kk)
    return Polygons(pxy, ph, plab, cnt)


def _split_crossed_general(poly: Polygons, s: torch.Tensor, lid: torch.Tensor) -> tuple[Polygons, Polygons]:
    """Both parts of polygons crossed by their lines (``s``: snapped line values at the vertices),
    for any sign pattern: the vertices on each side are compacted in cycle order."""
    xy, hsh, lab, nv = poly.xy, poly.hsh, poly.lab, poly.nv
    p, k, _ = xy.shape
    s = s[:, :k]
    dev = xy.device
    slots = torch.arange(k, device=dev)
    valid = slots[None] < nv[:, None]
    sg = torch.sign(s)
    nxt = torch.where(slots[None] + 1 < nv[:, None], slots[None] + 1, torch.zeros_like(slots)[None])
    s_n = torch.gather(s, 1, nxt)
    change = valid & (sg * torch.sign(s_n) < 0)
    xy_n = torch.gather(xy, 1, nxt[..., None].expand(-1, -1, 2))
    h_n = torch.gather(hsh, 1, nxt)
    t = torch.where(change, s / torch.where(change, s - s_n, torch.ones_like(s)), torch.zeros_like(s))
    ixy = xy + t[..., None] * (xy_n - xy)
    # identifiers of the crossing points, only where an edge is crossed (at most two per polygon)
    ch = change.nonzero(as_tuple=True)
    ih = torch.zeros_like(hsh)
    ih[ch] = edge_hash(hsh[ch], h_n[ch], lab[ch], lid[ch[0]])
    # augmented cycle: slot 2k is vertex k, slot 2k + 1 the crossing point on edge k (if any);
    # both sides are compacted together: rows [0, p) the part above, [p, 2p) the part below
    axy = torch.stack([xy, ixy], 2).reshape(p, 2 * k, 2).repeat(2, 1, 1)
    ah = torch.stack([hsh, ih], 2).reshape(p, 2 * k).repeat(2, 1)
    alab = torch.stack([lab, lab], 2).reshape(p, 2 * k).repeat(2, 1)
    keep = torch.cat(
        [
            torch.stack([valid & (sg >= 0), change], 2).reshape(p, 2 * k),
            torch.stack([valid & (sg <= 0), change], 2).reshape(p, 2 * k),
        ]
    )
    # kept slots first, in cycle order: each kept slot goes to its rank among the kept ones
    rank = torch.cumsum(keep, 1)
    cnt = rank[:, -1]
    kk = int(cnt.max())
    dest = torch.where(keep, rank - 1, 2 * k)
    order = torch.zeros((2 * p, 2 * k + 1), dtype=torch.int64, device=dev)
    order.scatter_(1, dest, torch.arange(2 * k, device=dev).expand(2 * p, -1))
    order = order[:, :kk]
    sl = torch.arange(kk, device=dev)
    order = torch.where(sl[None] < cnt[:, None], order, order[:, :1])  # padding repeats vertex 0
    pxy = torch.gather(axy, 1, order[..., None].expand(-1, -1, 2))
    ph = torch.gather(ah, 1, order)
    plab = torch.gather(alab, 1, order)
    # an edge keeps its original label when it runs along the original boundary, i.e. when the
    # next kept slot follows directly in the augmented cycle; otherwise it is the new cut
    nxt_slot = torch.where(sl[None] + 1 < cnt[:, None], sl[None] + 1, torch.zeros_like(sl)[None])
    g_next = torch.gather(order, 1, nxt_slot)
    nv2 = nv.repeat(2)
    lid2 = lid.repeat(2)
    diff = torch.remainder(g_next - order, 2 * nv2[:, None])
    original = (diff == 1) | ((diff == 2) & (order % 2 == 0))
    plab = torch.where(original, plab, lid2[:, None].expand(-1, kk))
    return (
        Polygons(pxy[:p], ph[:p], plab[:p], cnt[:p]).trim(),
        Polygons(pxy[p:], ph[p:], plab[p:], cnt[p:]).trim(),
    )
