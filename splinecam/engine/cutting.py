"""Cutting regions by the breakpoint lines of one layer.

Each region comes with the affine stack ``(P, 3, units)`` of the layer's inputs (value at ``u = 0``
and the two partial derivatives, see :mod:`splinecam.engine`). A cheap bounding-box filter and an
exact test give the ``(region, line)`` pairs whose line really crosses the region
(:func:`_candidate_pairs`); :func:`_cut_pairs` then cuts every region by its lines with conflict
lists, in one fixed pseudo-random order of the layer's line ids. Tolerances are those of
:mod:`splinecam.engine.geometry`.

Small CPU inputs are cut by a numpy twin of :func:`_cut_pairs` (:mod:`splinecam.engine.cutting_np`,
bit-identical; torch's per-operation overhead dominates on them): see :func:`cut_backend` and
``NUMPY_MAX_WORK``.
"""

from __future__ import annotations

import os

import torch

from . import cutting_np
from .geometry import EPS, Polygons, _fmix, split_by_lines
from .slices import Tol, _line_floor, _take

__all__: list[str] = []

# The most (region, line) pairs that ``_cut_pairs`` gives to its numpy twin (:mod:`.cutting_np`) in
# the ``auto`` backend. Measured with benchmarks/cut_backend.py (2-core machine): with one torch
# thread numpy won at every size tried (1.2-2x up to 440,000 pairs); with two threads torch won from
# about 110,000 pairs (its kernels run in parallel on big tensors, numpy's do not), so the twin stops
# below that. The engine cuts in chunks of regions: MLP calls rarely reach 15,000 pairs.
NUMPY_MAX_WORK = 1 << 16
_BACKEND_VAR = "SPLINECAM_CUT_BACKEND"
_BACKENDS = ("auto", "numpy", "torch")
_NUMPY_FLOATS = (torch.float64, torch.float32)


def _cut_layer(
    poly: Polygons,
    pre: torch.Tensor,
    bps: torch.Tensor,
    radius: Tol,
    line_offset: int,
    centre: torch.Tensor | None = None,
    floor: Tol = 0.0,
) -> tuple[Polygons, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut every region by every breakpoint line of this layer that crosses it.

    Returns the pieces, the index of the region each comes from, and the lines (layer-local ids,
    ``unit * breakpoints + k``) that really cross each region, in CSR form ``(ptr, lines)``.
    ``floor``: the least on-the-line tolerances (see :func:`_line_table`): a float, one per region
    ``(P,)``, or one per region and unit ``(P, units)``; ``radius``: a float or one per region.
    """
    pp, ll, tab = _candidate_pairs(poly, pre, bps, radius, centre, floor)
    return _cut_pairs(poly, pp, ll, tab, pre.shape[2] * bps.numel(), line_offset)[:4]


def _candidate_pairs(
    poly: Polygons,
    pre: torch.Tensor,
    bps: torch.Tensor,
    radius: Tol,
    centre: torch.Tensor | None = None,
    floor: Tol = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``(region, line)`` pairs whose line really crosses the region, region-major, with the
    lines' coefficient rows ``(c, a0, a1, tol)`` (see :func:`_line_table`).

    A cheap filter first keeps the lines that cross each polygon's bounding box strictly (interval
    arithmetic: ``|value at the box centre| < half-spread over the box``; ``centre``, when given,
    holds every unit at the box centres, row 0 of :func:`_probe_points`). That is a superset of
    the lines that really cross (some vertex above the tolerance, some below), which are then
    tested exactly on the candidates only. The half-sizes are widened by a relative 1e-9 so that
    rounding in these sums can never drop a line that crosses a polygon by more than the tolerance.
    """
    p, _, n = pre.shape
    m = bps.numel()
    mid, half = _box(poly)
    if centre is None:
        centre = _values_at(pre, _homogeneous(mid))[:, 0]
    spread = _spread(pre, half * (1.0 + 1e-9))
    if m == 1:
        if bool(bps[0] != 0):
            centre = centre - bps[0]
        cand = centre.abs() < spread
    else:
        cand = ((centre[..., None] - bps).abs() < spread[..., None]).reshape(p, n * m)
    pairs = cand.nonzero()
    pp, ll = pairs[:, 0], pairs[:, 1]
    unit = ll // m if m > 1 else ll
    tab = _line_table(pre[pp, :, unit], bps, _take(radius, pp), ll, _line_floor(floor, pp, unit))
    real = _crosses(poly.xy.index_select(0, pp), tab)
    return pp[real], ll[real], tab[real]


def _cut_pairs(
    poly: Polygons,
    pp: torch.Tensor,
    ll: torch.Tensor,
    tab: torch.Tensor,
    nl: int,
    line_offset: int,
    rank: torch.Tensor | None = None,
) -> tuple[Polygons, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut region ``pp[i]`` by line ``ll[i]`` (coefficient row ``tab[i]``) for every pair ``i``.

    Every pair's line must really cross its region (:func:`_crosses`); ``pp`` must be sorted (the
    pairs of one region together). ``nl`` is the number of line ids of the layer, ``line_offset``
    the global id of its line 0. Returns the pieces, the region each comes from, the crossing
    lines of each region in CSR form ``(ptr, lines)`` (in cutting order), and for each of those the
    index of its pair in the input.

    Conflict lists: every active piece keeps, in the layer's line order, the lines of its region
    that still cross it. A piece is cut by the first line of its list; its two parts keep the rest
    of the list that really crosses them. Lines that do not cross a piece would leave it
    unchanged, so dropping them changes no result, but the number of rounds falls from the most
    lines crossing one region to the depth of this cutting tree. The line order is one fixed
    pseudo-random permutation of the layer's line ids (:func:`_line_rank`): the same for every
    region, so the cuts along every edge come in the same order on both of its sides and shared
    vertices get the same identifiers; random, so that the tree is shallow (about 2 ln(lines)
    deep) even for structured layers, e.g. 2,000 parallel lines sorted by offset (sorted order:
    2,000 rounds). ``rank``: the cutting order of the pairs' lines given directly (any fixed
    function of the line id, e.g. a hash), for layers with too many line ids for a permutation.

    Inputs on the CPU that do not require grad go to the bit-identical numpy twin
    :func:`splinecam.engine.cutting_np.cut_pairs` when :func:`cut_backend` says ``numpy``, or says
    ``auto`` and there are at most ``NUMPY_MAX_WORK`` pairs.
    """
    if _use_numpy(poly, pp, ll, tab, rank):
        return cutting_np.cut_pairs(poly, pp, ll, tab, nl, line_offset, rank)
    p = len(poly)
    dev = poly.xy.device
    perm = torch.arange(len(pp), device=dev)
    if len(pp) > 1:
        if rank is not None:
            o1 = torch.argsort(rank, stable=True)
            perm = o1.index_select(0, torch.argsort(pp.index_select(0, o1), stable=True))
        else:
            perm = torch.argsort(pp * nl + _line_rank(nl, dev).index_select(0, ll), stable=True)
        pp, ll, tab = pp.index_select(0, perm), ll.index_select(0, perm), tab.index_select(0, perm)
    counts = torch.bincount(pp, minlength=p)
    ptr = torch.zeros(p + 1, dtype=torch.int64, device=dev)
    ptr[1:] = torch.cumsum(counts, 0)
    if len(pp) == 0:
        return poly, torch.arange(p, device=dev), ptr, ll, perm
    done_polys: list[Polygons] = []
    done_owner: list[torch.Tensor] = []
    idle = counts == 0
    if bool(idle.any()):
        ii = idle.nonzero().squeeze(1)
        done_polys.append(poly.index(ii))
        done_owner.append(ii)
    act_i = (~idle).nonzero().squeeze(1)
    act = poly.index(act_i)
    owner = act_i
    lids = ll + line_offset
    lst = torch.arange(len(pp), device=dev)  # pair ids: each piece's list, in cutting order
    lcnt = counts[act_i]
    while len(owner):
        lptr = torch.cumsum(lcnt, 0) - lcnt
        pair = lst[lptr]
        t = tab.index_select(0, pair)
        pieces, _ = split_by_lines(act, t[:, 0], t[:, 1], t[:, 2], t[:, 3], lids[pair], all_crossed=True)
        owner = owner.repeat(2)  # split_by_lines with all lines crossing: src = [0 .. P) twice
        # candidate lines of each piece: the rest of its source's list
        rest = lcnt.repeat(2) - 1
        tot = int(rest.sum())
        if tot == 0:
            done_polys.append(pieces)
            done_owner.append(owner)
            break
        npc = len(pieces)
        child, k = _expand(rest)
        cand = lst[(lptr.repeat(2) + 1)[child] + k]
        real = _crosses(pieces.xy.index_select(0, child), tab.index_select(0, cand))
        lst = cand[real]
        lcnt = torch.bincount(child[real], minlength=npc)
        fin = lcnt == 0
        if bool(fin.any()):
            fi = fin.nonzero().squeeze(1)
            done_polys.append(pieces.index(fi))
            done_owner.append(owner[fi])
            ki = (~fin).nonzero().squeeze(1)
            act = pieces.index(ki)
            owner = owner[ki]
            lcnt = lcnt[ki]
        else:
            act = pieces
    return Polygons.cat(done_polys), torch.cat(done_owner), ptr, ll, perm


def cut_backend() -> str:
    """The cutting backend asked for by the environment variable ``SPLINECAM_CUT_BACKEND``.

    Returns
    -------
    str
        ``"auto"`` (the default, also for an unset or empty variable): the numpy twin for small
        CPU inputs, torch otherwise; ``"numpy"``: the numpy twin wherever it applies (CPU tensors
        that do not require grad, float64 or float32), whatever the size; ``"torch"``: always torch.

    Raises
    ------
    ValueError
        For any other value.
    """
    raw = os.environ.get(_BACKEND_VAR, "")
    val = raw.strip().lower() or "auto"
    if val not in _BACKENDS:
        raise ValueError(f"{_BACKEND_VAR}={raw!r}: expected one of {', '.join(_BACKENDS)} (unset means auto)")
    return val


def _use_numpy(
    poly: Polygons, pp: torch.Tensor, ll: torch.Tensor, tab: torch.Tensor, rank: torch.Tensor | None
) -> bool:
    """Whether :func:`_cut_pairs` runs on its numpy twin: never for tensors off the CPU, that
    require grad or of other dtypes; in ``auto``, only up to ``NUMPY_MAX_WORK`` pairs."""
    backend = cut_backend()
    if backend == "torch" or (backend == "auto" and len(pp) > NUMPY_MAX_WORK):
        return False
    ints = [poly.hsh, poly.lab, poly.nv, pp, ll] + ([] if rank is None else [rank])
    floats = (poly.xy, tab)
    return (
        all(t.device.type == "cpu" and not t.requires_grad for t in (*ints, *floats))
        and all(t.dtype == torch.int64 for t in ints)
        and poly.xy.dtype in _NUMPY_FLOATS
        and tab.dtype == poly.xy.dtype
    )


def _box(poly: Polygons) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre and half-sizes ``(P, 2)`` of each polygon's bounding box."""
    lo = poly.xy.amin(1)
    hi = poly.xy.amax(1)
    return 0.5 * (lo + hi), 0.5 * (hi - lo)


def _homogeneous(*points: torch.Tensor) -> torch.Tensor:
    """Points ``(P, 2)`` each, as homogeneous rows ``[1, x, y]`` stacked to ``(P, q, 3)``."""
    one = torch.ones((points[0].shape[0], 1), dtype=points[0].dtype, device=points[0].device)
    return torch.stack([torch.cat([one, q], 1) for q in points], 1)


def _probe_points(poly: Polygons, with_centroid: bool) -> torch.Tensor:
    """Homogeneous points ``(P, q, 3)``: each polygon's bounding-box centre and, with
    ``with_centroid``, its vertex mean (strictly inside it)."""
    mid = _box(poly)[0]
    return _homogeneous(mid, poly.centroids()) if with_centroid else _homogeneous(mid)


def _values_at(pre: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """Every unit's value ``(P, q, units)`` at the homogeneous points ``pts`` ``(P, q, 3)``: one
    batched product over the ``(P, 3, units)`` affine stack."""
    return torch.bmm(pts, pre)


def _spread(pre: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    """How far every unit ``(P, units)`` varies from its value at the box centre over boxes of
    half-sizes ``half`` ``(P, 2)``: ``|a0| hx + |a1| hy``."""
    return torch.bmm(half[:, None, :], pre[:, 1:].abs()).squeeze(1)


def _line_value(raw: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """The affine values ``raw`` ``(N, 3)`` (value at the origin, two partial derivatives) at the
    points ``xy`` ``(N, 2)``."""
    return raw[:, 0] + xy[:, 0] * raw[:, 1] + xy[:, 1] * raw[:, 2]


def _expand(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For consecutive groups of sizes ``counts``: the group of every member, and its rank in it."""
    row = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    first = torch.cumsum(counts, 0) - counts
    return row, torch.arange(len(row), device=counts.device) - first[row]


def _line_table(
    raw: torch.Tensor, bps: torch.Tensor, radius: Tol, line: torch.Tensor, floor: Tol = 0.0
) -> torch.Tensor:
    """Rows ``(c, a0, a1, tol)`` ``(N, 4)`` of the lines ``c + a0 x + a1 y = 0`` of the breakpoints
    ``line % breakpoints`` of units whose affine values are ``raw`` ``(N, 3)`` (value at the origin
    and the two partial derivatives). ``tol`` is the on-the-line tolerance of
    :mod:`splinecam.engine.geometry`, at least ``floor`` (the layer's rounding-noise floor).
    ``radius`` and ``floor``: floats, or ``(N,)`` tensors (one entry per line)."""
    m = bps.numel()
    tab = torch.empty((raw.shape[0], 4), dtype=raw.dtype, device=raw.device)
    tab[:, :3] = raw
    tab[:, 0] -= bps[line % m] if m > 1 else bps[0]
    torch.mul(tab[:, 1].abs() + tab[:, 2].abs(), radius, out=tab[:, 3])
    tab[:, 3] += tab[:, 0].abs()
    tab[:, 3] *= EPS
    if isinstance(floor, torch.Tensor):
        torch.maximum(tab[:, 3], floor, out=tab[:, 3])
    elif floor > 0:
        tab[:, 3].clamp_(min=floor)
    return tab


def _crosses(xy: torch.Tensor, tab: torch.Tensor) -> torch.Tensor:
    """Whether each line (rows of :func:`_line_table`) really crosses its polygon ``xy`` ``(N, K, 2)``:
    some vertex strictly above and some strictly below it by more than the tolerance (the test
    :func:`split_by_lines` makes)."""
    v = tab[:, :1] + xy[..., 0] * tab[:, 1:2] + xy[..., 1] * tab[:, 2:3]
    tl = tab[:, 3:]
    return (v > tl).any(1) & (v < -tl).any(1)


_RANKS: dict[tuple[int, str], torch.Tensor] = {}


def _line_rank(nl: int, device: torch.device) -> torch.Tensor:
    """A fixed pseudo-random permutation of ``0 .. nl - 1``: the cutting order of a layer's lines."""
    key = (nl, str(device))
    r = _RANKS.get(key)
    if r is None:
        h = _fmix(torch.arange(nl, device=device, dtype=torch.int64) * 2654435761 + 97)
        r = torch.empty(nl, dtype=torch.int64, device=device)
        r[torch.argsort(h)] = torch.arange(nl, device=device)
        if len(_RANKS) > 64:
            _RANKS.clear()
        _RANKS[key] = r
    return r
