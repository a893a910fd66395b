"""A numpy twin of the cutting loop, for small CPU inputs.

:func:`splinecam.engine.cutting._cut_pairs` runs one ``while`` round per level of its cutting tree,
and every round is a few dozen tiny tensor operations (gathers, cumulative sums, ``bincount``,
``nonzero``, the split of :func:`splinecam.engine.geometry.split_by_lines`, the crossing test). On
the small layers of small networks (tens to a few thousand ``(region, line)`` pairs) the time goes
to torch's per-operation dispatch (about 5-10 us an operation), not to arithmetic; the same
operations on numpy arrays cost a few times less. :func:`cut_pairs` is that loop on numpy arrays
(zero-copy views of the CPU tensors at entry, ``torch.from_numpy`` at exit), with numpy versions of
what it calls in :mod:`splinecam.engine.geometry`: the split of polygons crossed by their lines
(``_split_crossed`` and its fallback ``_split_crossed_general``), the vertex identifiers
(``mix_hash``, ``edge_hash``; geometry's ``_fmix`` itself serves both) and the padded-batch
helpers of ``Polygons``.

It must stay **bit-identical** to :mod:`splinecam.engine.cutting` and
:mod:`splinecam.engine.geometry`: the same pieces in the same order, the same coordinates to the
last bit (every float expression is evaluated with the same operations in the same order and
association, e.g. ``c + x * a0 + y * a1`` left to right, and the same interpolation
``x0 + t * (x1 - x0)``), the same 64-bit identifiers (the same wrapping int64 arithmetic, with the
logical shifts emulated on signed integers exactly as there: an arithmetic shift, then a mask) and
the same owners, CSR arrays and permutation. Any change to the torch path must be made here too;
``tests/test_cutting_np.py`` compares the two on many inputs. The dispatch between the two lives
in :func:`splinecam.engine.cutting._cut_pairs`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from . import geometry
from .geometry import Polygons

__all__ = ["cut_pairs"]

_K1 = geometry._K1
_K2 = geometry._K2
_K3 = geometry._K3


class _Poly(NamedTuple):
    """A :class:`~splinecam.engine.geometry.Polygons` batch on numpy arrays."""

    xy: np.ndarray
    hsh: np.ndarray
    lab: np.ndarray
    nv: np.ndarray


def _from_torch(poly: Polygons) -> _Poly:
    return _Poly(poly.xy.numpy(), poly.hsh.numpy(), poly.lab.numpy(), poly.nv.numpy())


def _to_torch(poly: _Poly) -> Polygons:
    return Polygons(
        torch.from_numpy(poly.xy),
        torch.from_numpy(poly.hsh),
        torch.from_numpy(poly.lab),
        torch.from_numpy(poly.nv),
    )


def _trim(poly: _Poly) -> _Poly:
    """``Polygons.trim``: drop the slots past the largest vertex count."""
    if len(poly.nv) == 0:
        return poly
    k = int(poly.nv.max())
    if k < poly.xy.shape[1]:
        return _Poly(poly.xy[:, :k], poly.hsh[:, :k], poly.lab[:, :k], poly.nv)
    return poly


def _index(poly: _Poly, idx: np.ndarray) -> _Poly:
    """``Polygons.index``: the polygons ``idx``, trimmed."""
    return _trim(_Poly(poly.xy[idx], poly.hsh[idx], poly.lab[idx], poly.nv[idx]))


def _pad_to(poly: _Poly, k: int) -> _Poly:
    """``Polygons.pad_to``: padded slots repeat vertex 0 and get label ``-1``."""
    cur = poly.xy.shape[1]
    if cur >= k:
        return poly
    extra = k - cur
    n = len(poly.nv)
    xy = np.concatenate([poly.xy, np.repeat(poly.xy[:, :1], extra, 1)], 1)
    hsh = np.concatenate([poly.hsh, np.repeat(poly.hsh[:, :1], extra, 1)], 1)
    lab = np.concatenate([poly.lab, np.full((n, extra), -1, dtype=poly.lab.dtype)], 1)
    return _Poly(xy, hsh, lab, poly.nv)


def _cat(parts: list[_Poly]) -> _Poly:
    """``Polygons.cat``: the non-empty parts, padded to a common slot count, one after the other."""
    parts = [q for q in parts if len(q.nv)]
    k = max(q.xy.shape[1] for q in parts)
    parts = [_pad_to(q, k) for q in parts]
    return _Poly(
        np.concatenate([q.xy for q in parts]),
        np.concatenate([q.hsh for q in parts]),
        np.concatenate([q.lab for q in parts]),
        np.concatenate([q.nv for q in parts]),
    )


def _twice(a: np.ndarray) -> np.ndarray:
    """``a`` twice along its first axis (torch's ``repeat(2)`` of a 1-D tensor)."""
    return np.concatenate((a, a))


def _where(mask: np.ndarray) -> np.ndarray:
    """The indices of the true entries of a 1-D mask (``nonzero().squeeze(1)``)."""
    return mask.nonzero()[0]


def _points(xy: np.ndarray) -> np.ndarray:
    """The points of ``xy`` ``(..., 2)`` as one flat complex array (a view where it can be): the
    coordinate pairs are gathered as single items, bit for bit, faster than rows of two."""
    flat = np.ascontiguousarray(xy).reshape(-1, 2)
    return flat.view(np.complex128 if xy.dtype == np.float64 else np.complex64)[:, 0]


def _mix_hash(a: np.ndarray, b: np.ndarray, lid: np.ndarray) -> np.ndarray:
    """``geometry.mix_hash``: identifier of the vertex made by line ``lid`` on the edge ``a``-``b``."""
    lo = np.minimum(a, b)
    hi = np.maximum(a, b)
    x = lo * _K1
    x += hi * _K2
    x += lid * _K3 + 12345
    return geometry._fmix(x)


def _edge_hash(a: np.ndarray, b: np.ndarray, lab: np.ndarray, lid: np.ndarray) -> np.ndarray:
    """``geometry.edge_hash``: :func:`_mix_hash`, or the directed identifier on the edges of a step
    with jumps (``geometry._JUMP_LINES``, read at call time)."""
    h = _mix_hash(a, b, lid)
    jumps = geometry._JUMP_LINES
    if not jumps:
        return h
    jump = np.zeros(lab.shape, dtype=bool)
    for lo, hi in jumps:
        jump |= (lab >= lo) & (lab < hi) & (lid >= hi)
    if not jump.any():
        return h
    x = a * _K2
    x += b * _K1
    x += lid * _K3 + 54321
    return np.where(jump, geometry._fmix(x), h)


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``cutting._expand``: for consecutive groups of sizes ``counts``, the group of every member and
    its rank in it."""
    row = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    return row, np.arange(len(row), dtype=np.int64) - first[row]


def _crosses(xy: np.ndarray, tab: np.ndarray) -> np.ndarray:
    """``cutting._crosses``: whether each line (rows ``(c, a0, a1, tol)``) really crosses its polygon."""
    v = tab[:, :1] + xy[..., 0] * tab[:, 1:2] + xy[..., 1] * tab[:, 2:3]
    tl = tab[:, 3:]
    return (v > tl).any(1) & (v < -tl).any(1)


def _split_all_crossed(
    poly: _Poly, c: np.ndarray, a0: np.ndarray, a1: np.ndarray, tol: np.ndarray, lid: np.ndarray
) -> _Poly:
    """``geometry.split_by_lines(..., all_crossed=True)``: the parts above (rows ``[0, P)``) and
    below (rows ``[P, 2P)``) of polygons that every line crosses; vertices within ``tol`` snapped."""
    xy = poly.xy
    s = c[:, None] + xy[..., 0] * a0[:, None] + xy[..., 1] * a1[:, None]
    s[np.abs(s) <= tol[:, None]] = 0.0
    return _split_crossed(poly, s, lid)


def _split_crossed(poly: _Poly, s: np.ndarray, lid: np.ndarray) -> _Poly:
    """``geometry._split_crossed``: both parts of polygons crossed by their lines, from one arc of
    vertices with ``s >= 0`` (``s <= 0``) and the two crossing points; any other sign pattern goes
    to :func:`_split_crossed_general`."""
    xy, hsh, lab, nv = poly
    p, k, _ = xy.shape
    s = s[:, :k]
    slots = np.arange(k, dtype=np.int64)
    nv2 = _twice(nv)
    keep = np.concatenate([s >= 0, s <= 0])
    keep &= slots < nv2[:, None]
    kprev = np.empty_like(keep)
    kprev[:, 1:] = keep[:, :-1]
    kprev[:, 0] = keep[np.arange(2 * p), nv2 - 1]
    first = keep & ~kprev
    if (first.sum(1) != 1).any():
        above, below = _split_crossed_general(poly, s, lid)
        return _cat([above, below])
    start = first.argmax(1)
    arc = keep.sum(1, dtype=np.int64)
    end = np.remainder(start + arc - 1, nv2)
    before = np.remainder(start - 1, nv2)
    after = np.remainder(end + 1, nv2)
    rowk = _twice(np.arange(p, dtype=np.int64)) * k
    idx4 = np.empty((2 * p, 4), dtype=np.int64)
    idx4[:, 0] = before
    idx4[:, 1] = start
    idx4[:, 2] = end
    idx4[:, 3] = after
    idx4 += rowk[:, None]
    idx4 = idx4.reshape(-1)
    xyc = _points(xy)
    xy4 = xyc[idx4].view(xy.dtype).reshape(2 * p, 2, 2, 2)  # row, edge, end, coord
    h4 = hsh.reshape(-1)[idx4].reshape(2 * p, 2, 2)
    s4 = s.reshape(-1)[idx4].reshape(2 * p, 2, 2)
    s4[p:] *= -1
    has_in = s4[:, 0, 1] > 0
    has_out = s4[:, 1, 0] > 0
    lid2 = _twice(lid)
    t = s4[..., 0] / (s4[..., 0] - s4[..., 1])
    x0 = xy4[:, :, 0]
    xio = x0 + t[..., None] * (xy4[:, :, 1] - x0)
    if geometry._JUMP_LINES:
        l4 = lab.reshape(-1)[idx4].reshape(2 * p, 2, 2)[..., 0]
        hio = _edge_hash(h4[..., 0], h4[..., 1], l4, lid2[:, None])
    else:
        hio = _mix_hash(h4[..., 0], h4[..., 1], lid2[:, None])
    hi = has_in.astype(np.int64)
    ahi = arc + hi
    cnt = ahi + has_out.astype(np.int64)
    kk = int(cnt.max())
    j = np.arange(kk, dtype=np.int64)
    pk = p * k
    # torch: remainder(start + (j - hi), nv2) + rowk, then three where()s over the whole table. Here
    # the same values: on the slots j < cnt, start + j - hi lies in [-1, 2 nv2) (the arc has at
    # most nv2 - 1 vertices, so cnt <= nv2 + 1), where one conditional wrap is the remainder; the
    # slots j >= cnt are overwritten by slot 0 anyway. The crossing points are single entries.
    x = start[:, None] + (j - hi[:, None])
    nvc = nv2[:, None]
    x += nvc * (x < 0)
    x -= nvc * (x >= nvc)
    vid = x + rowk[:, None]
    xin = pk + 2 * np.arange(2 * p, dtype=np.int64)
    r_in = _where(has_in)
    vid[r_in, 0] = xin[r_in]
    r_out = _where(has_out)
    vid[r_out, ahi[r_out]] = xin[r_out] + 1
    vid = np.where(j >= cnt[:, None], vid[:, :1], vid)
    # the edge from the last arc vertex is the cut when there is no crossing out
    lidx = vid.copy()
    r_no = _where(~has_out)
    lidx[r_no, ahi[r_no] - 1] = xin[r_no] + 1
    vid = vid.reshape(-1)
    pxy = np.concatenate([xyc, _points(xio)])[vid].view(xy.dtype).reshape(2 * p, kk, 2)
    ph = np.concatenate([hsh.reshape(-1), hio.reshape(-1)])[vid].reshape(2 * p, kk)
    labf = lab.reshape(-1)
    lio = np.empty((2 * p, 2), dtype=labf.dtype)
    lio[:, 0] = labf[idx4[0::4]]
    lio[:, 1] = lid2
    plab = np.concatenate([labf, lio.reshape(-1)])[lidx.reshape(-1)].reshape(2 * p, kk)
    return _Poly(pxy, ph, plab, cnt)


def _split_crossed_general(poly: _Poly, s: np.ndarray, lid: np.ndarray) -> tuple[_Poly, _Poly]:
    """``geometry._split_crossed_general``: both parts for any sign pattern, the vertices on each
    side compacted in cycle order."""
    xy, hsh, lab, nv = poly
    p, k, _ = xy.shape
    s = s[:, :k]
    slots = np.arange(k, dtype=np.int64)
    rows = np.arange(p)[:, None]
    valid = slots[None] < nv[:, None]
    sg = np.sign(s)
    nxt = np.where(slots[None] + 1 < nv[:, None], slots[None] + 1, np.zeros_like(slots)[None])
    s_n = s[rows, nxt]
    change = valid & (sg * np.sign(s_n) < 0)
    xy_n = xy[rows, nxt]
    h_n = hsh[rows, nxt]
    t = np.where(change, s / np.where(change, s - s_n, np.ones_like(s)), np.zeros_like(s))
    ixy = xy + t[..., None] * (xy_n - xy)
    ch = change.nonzero()
    ih = np.zeros_like(hsh)
    ih[ch] = _edge_hash(hsh[ch], h_n[ch], lab[ch], lid[ch[0]])
    axy = _twice(np.stack([xy, ixy], 2).reshape(p, 2 * k, 2))
    ah = _twice(np.stack([hsh, ih], 2).reshape(p, 2 * k))
    alab = _twice(np.stack([lab, lab], 2).reshape(p, 2 * k))
    keep = np.concatenate(
        [
            np.stack([valid & (sg >= 0), change], 2).reshape(p, 2 * k),
            np.stack([valid & (sg <= 0), change], 2).reshape(p, 2 * k),
        ]
    )
    rank = np.cumsum(keep, 1, dtype=np.int64)
    cnt = rank[:, -1]
    kk = int(cnt.max())
    dest = np.where(keep, rank - 1, 2 * k)
    rows2 = np.arange(2 * p)[:, None]
    order = np.zeros((2 * p, 2 * k + 1), dtype=np.int64)
    order[rows2, dest] = np.arange(2 * k, dtype=np.int64)  # (only column 2k gets several values)
    order = order[:, :kk]
    sl = np.arange(kk, dtype=np.int64)
    order = np.where(sl[None] < cnt[:, None], order, order[:, :1])
    pxy = axy[rows2, order]
    ph = ah[rows2, order]
    plab = alab[rows2, order]
    nxt_slot = np.where(sl[None] + 1 < cnt[:, None], sl[None] + 1, np.zeros_like(sl)[None])
    g_next = order[rows2, nxt_slot]
    nv2 = _twice(nv)
    lid2 = _twice(lid)
    diff = np.remainder(g_next - order, 2 * nv2[:, None])
    original = (diff == 1) | ((diff == 2) & (order % 2 == 0))
    plab = np.where(original, plab, lid2[:, None])
    return (
        _trim(_Poly(pxy[:p], ph[:p], plab[:p], cnt[:p])),
        _trim(_Poly(pxy[p:], ph[p:], plab[p:], cnt[p:])),
    )


def cut_pairs(
    poly: Polygons,
    pp: torch.Tensor,
    ll: torch.Tensor,
    tab: torch.Tensor,
    nl: int,
    line_offset: int,
    rank: torch.Tensor | None = None,
) -> tuple[Polygons, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`splinecam.engine.cutting._cut_pairs` on numpy arrays, bit for bit.

    Parameters
    ----------
    poly : Polygons
        The regions, on CPU tensors that do not require grad (float64 or float32 coordinates, int64
        identifiers, labels and vertex counts).
    pp, ll : torch.Tensor
        The pairs' regions (sorted) and layer-local line ids, int64 ``(N,)``.
    tab : torch.Tensor
        The pairs' line rows ``(c, a0, a1, tol)`` ``(N, 4)``, every line really crossing its region.
    nl : int
        The number of line ids of the layer.
    line_offset : int
        The global id of the layer's line 0.
    rank : torch.Tensor, optional
        The cutting order of the pairs' lines, given directly (see ``_cut_pairs``).

    Returns
    -------
    tuple
        ``(pieces, owner, ptr, lines, perm)``, equal to those of ``_cut_pairs`` (``torch.equal`` on
        every tensor); the tensors share memory with fresh numpy arrays.
    """
    p = len(poly)
    n = len(pp)
    ppn, lln, tabn = pp.numpy(), ll.numpy(), tab.numpy()
    if n > 1:
        if rank is not None:
            o1 = np.argsort(rank.numpy(), kind="stable")
            perm = o1[np.argsort(ppn[o1], kind="stable")]
        else:
            from .cutting import _line_rank

            perm = np.argsort(ppn * nl + _line_rank(nl, pp.device).numpy()[lln], kind="stable")
        ppn, lln, tabn = ppn[perm], lln[perm], tabn[perm]
        ll_out = torch.from_numpy(lln)
    else:
        perm = np.arange(n, dtype=np.int64)
        ll_out = ll
    counts = np.bincount(ppn, minlength=p)
    ptr = np.zeros(p + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    if n == 0:
        return poly, torch.arange(p), torch.from_numpy(ptr), ll_out, torch.from_numpy(perm)
    src = _from_torch(poly)
    done_polys: list[_Poly] = []
    done_owner: list[np.ndarray] = []
    idle = counts == 0
    if idle.any():
        ii = _where(idle)
        done_polys.append(_index(src, ii))
        done_owner.append(ii)
    act_i = _where(~idle)
    act = _index(src, act_i)
    owner = act_i
    lids = lln + line_offset
    lst = np.arange(n, dtype=np.int64)  # pair ids: each piece's list, in cutting order
    lcnt = counts[act_i]
    while len(owner):
        lptr = np.cumsum(lcnt) - lcnt
        pair = lst[lptr]
        t = tabn[pair]
        pieces = _split_all_crossed(act, t[:, 0], t[:, 1], t[:, 2], t[:, 3], lids[pair])
        owner = _twice(owner)
        rest = _twice(lcnt) - 1
        if int(rest.sum()) == 0:
            done_polys.append(pieces)
            done_owner.append(owner)
            break
        npc = len(pieces.nv)
        child, k = _expand(rest)
        cand = lst[(_twice(lptr) + 1)[child] + k]
        real = _crosses(pieces.xy[child], tabn[cand])
        lst = cand[real]
        lcnt = np.bincount(child[real], minlength=npc)
        fin = lcnt == 0
        if fin.any():
            fi = _where(fin)
            done_polys.append(_index(pieces, fi))
            done_owner.append(owner[fi])
            ki = _where(~fin)
            act = _index(pieces, ki)
            owner = owner[ki]
            lcnt = lcnt[ki]
        else:
            act = pieces
    out = _cat(done_polys)
    return (
        _to_torch(out),
        torch.from_numpy(np.concatenate(done_owner)),
        torch.from_numpy(ptr),
        ll_out,
        torch.from_numpy(perm),
    )
