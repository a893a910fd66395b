"""A cheap estimate of a slice's region count before the exact run, from a coarse grid of points.

The partition of a piecewise-linear network on a slice is, generically, an arrangement of curves:
the zero set of each unit's input minus a breakpoint (a "line", bent where earlier units change
piece) is a continuous curve that ends only on the domain's border, and two such curves meet in
crossings (vertices of degree 4). Euler's formula for such an arrangement gives

    regions = 1 + chords + crossings

where ``chords`` is half the number of times the curves cross the domain's border and
``crossings`` the number of their intersections inside. Both are counted on an ``n x n`` grid of
real points, evaluated by the traced program (:func:`splinecam.trace.evaluate_program`; the
model runs on ``n^2 + 4 n`` points, a few more than a 64 x 64 image batch at the default):

* border crossings: along points around the border, each unit line whose sign differs between
  consecutive points is crossed (an odd number of times: counted once);
* crossings inside: in each grid cell, a line whose sign differs between two corners enters and
  leaves the cell; its entry and exit points on the cell's boundary are placed by linear
  interpolation of its values at the corners, and two lines intersect inside the cell (an odd number
  of times) exactly when their entry and exit points interleave around the boundary.

The lines are the engine's kinds' (:mod:`splinecam.engine.kinds`): an elementwise step's unit
inputs minus each breakpoint (every period's, for a periodic one); a max (or min) over groups
(max-pooling, maxout) gives each candidate's margin over the best other one of its group, whose zero
set is the border of that candidate's winning cell (each border is two candidates' margin: these
lines count half).

Where several straight lines meet in one point (the first layer of a network without biases, on a
slice through the origin), that point counts once per extra line, as Euler's formula wants, not
once per pair.

This counts regions much smaller than a grid cell (what matters is only the order of the lines
along each cell's edges), and misses what a cell cannot see: a line crossing one cell edge twice
(it bends back between two grid points), closed curves that avoid every grid edge, and two lines
meeting twice in one cell. It is an estimate, not a bound; on the tests' networks (MLPs of 2-D input
and CNNs on image slices, max-pooling and maxout, 10^2 to 10^5 regions; measured up to 1.7 x 10^5)
it is within 30% of the
true count at ``grid=64``, and within 5% on most (see ``tests/test_estimate.py``). It over-counts
where many bent lines meet in one point: a deep network without any bias on a slice through the
origin (every region is a cone from the origin) is over-estimated about tenfold. The distinct
activation patterns seen at the grid points (:attr:`RegionEstimate.distinct_codes`) are a lower
bound on the regions that the grid resolves.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..errors import SliceError
from ..slice import Slice
from ..trace import Program, evaluate_program, prepare_model, trace_model
from .kinds import kind_for
from .threads import engine_threads

__all__ = [
    "RegionEstimate", "estimate_regions", "estimate_program", "warn_if_large", "DEFAULT_GRID", "WARN_REGIONS",
    "CHECK_GRIDS", "CHECK_AFTER",
]

#: Points per side of the grid of :func:`estimate_regions`.
DEFAULT_GRID = 64

# cells whose interleaving tables are built at once (memory: cells x lines-per-cell^2 booleans)
_CELL_CHUNK = 512
_BATCH = 4096
# bytes of recorded unit inputs per batch of points (their line values and a few temporaries of the
# same size come on top): a VGG11 on 3x64x64 images records 9 MB per point, so that 33 points of
# the smallest check grid took 1 GB at once
_BATCH_BYTES = 2**26


@dataclass
class RegionEstimate:
    """The result of :func:`estimate_regions`.

    Attributes
    ----------
    regions : float
        The estimated number of regions of the exact partition: ``1 + chords + crossings``
        (at least ``distinct_codes``). ``int(estimate)`` and ``float(estimate)`` give it.
    distinct_codes : int
        Distinct activation patterns at the grid points: regions the grid resolves (a lower bound
        of the exact count, unless two regions share a code).
    chords : float
        Half the number of unit lines crossing the domain's border.
    crossings : float
        Estimated intersections of unit lines inside the domain.
    grid : int
        Points per side of the grid.
    evaluations : int
        Points the model was evaluated at.
    seconds : float
        Wall time of the estimate.
    """

    regions: float
    distinct_codes: int
    chords: float
    crossings: float
    grid: int
    evaluations: int
    seconds: float

    def __int__(self) -> int:
        return int(round(self.regions))

    def __float__(self) -> float:
        return float(self.regions)

    def __repr__(self) -> str:
        return (
            f"RegionEstimate(~{self.regions:,.0f} regions; {self.distinct_codes:,} distinct codes on a "
            f"{self.grid}x{self.grid} grid, {self.evaluations:,} evaluations, {self.seconds:.3g} s)"
        )


def _inside(points: np.ndarray, dom: np.ndarray, tol: float) -> np.ndarray:
    """Points inside the counter-clockwise convex polygon ``dom`` (within ``tol``), computed in units
    of the polygon's size (products of coordinates near 1e200 would overflow)."""
    unit = float(np.abs(dom - dom[0]).max()) or 1.0
    a = dom / unit
    e = np.roll(a, -1, axis=0) - a
    d = points[:, None, :] / unit - a[None]
    tol = tol / unit
    cross = e[None, :, 0] * d[..., 1] - e[None, :, 1] * d[..., 0]
    return (cross >= -tol * np.hypot(e[:, 0], e[:, 1])[None]).all(1)


def _border_points(dom: np.ndarray, m: int) -> np.ndarray:
    """About ``m`` points around the polygon's border, in order, corners included."""
    e = np.roll(dom, -1, axis=0) - dom
    length = np.hypot(e[:, 0], e[:, 1])
    counts = np.maximum(1, np.round(m * length / length.sum()).astype(int))
    pts = [dom[i] + np.linspace(0, 1, c, endpoint=False)[:, None] * e[i] for i, c in enumerate(counts)]
    return np.concatenate(pts)


# periodic steps: at most this many copies of each breakpoint (one per period met on the grid)
_MAX_PERIODS = 64


def _batch_points(program: Program, model: nn.Module, x0: torch.Tensor) -> int:
    """Points per batch: at most ``_BATCH``, fewer where one point's recorded unit inputs (those of
    ``x0``, one point) are large (a wide CNN), so that a batch holds about ``_BATCH_BYTES`` of them."""
    _, pres = evaluate_program(program, model, x0.clone())
    per_point = x0.element_size() * max(1, sum(int(p.numel()) for p in pres) + int(x0.numel()))
    return int(max(1, min(_BATCH, _BATCH_BYTES // per_point)))


def _line_values(pres: list[torch.Tensor], kinds: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Every line's value at each point, ``(N, lines)`` (a line's zero set is a border of regions),
    and each line's weight ``(lines,)``.

    Elementwise steps: each unit's input minus each breakpoint (periodic steps: minus each breakpoint
    of every period that the points reach), weight 1. A max (or min) over groups: for each candidate,
    its margin over the best other candidate of its group (positive where it wins); a border between
    two winners is the zero set of both of their margins, so these lines weigh 1/2.
    """
    from .kinds import Groups

    cols: list[torch.Tensor] = []
    weights: list[torch.Tensor] = []
    for p, kind in zip(pres, kinds):
        if p.numel() == 0:
            continue
        if isinstance(kind, Groups):
            c = kind._cand(p)  # (N, G, k), -inf for missing candidates
            if c.shape[-1] < 2:
                continue
            top2 = c.topk(2, -1).values
            best_other = torch.where(c >= top2[..., :1], top2[..., 1:2], top2[..., :1])
            m = (c - best_other).reshape(len(p), -1)
            cols.append(torch.nan_to_num(m, nan=-1.0, neginf=-1.0))
            weights.append(torch.full((m.shape[1],), 0.5, dtype=torch.float64))
            continue
        spec = kind.step.pwl
        bps = list(spec.breakpoints)
        if spec.period is not None:
            period = float(spec.period)
            lo, hi = float(p.min()), float(p.max())
            shifts = range(int(math.floor(lo / period)), int(math.ceil(hi / period)) + 1)
            if len(shifts) > _MAX_PERIODS:  # pragma: no cover - a slice over very many periods
                shifts = range(shifts.start, shifts.start + _MAX_PERIODS)
            bps = [b + q * period for q in shifts for b in [0.0, *bps]]
        for b in bps:
            cols.append(p - float(b))
            weights.append(torch.ones(p.shape[1], dtype=torch.float64))
    if not cols:
        return torch.zeros((len(pres[0]) if pres else 0, 0), dtype=torch.float64), torch.zeros(0, dtype=torch.float64)
    return torch.cat(cols, 1), torch.cat(weights)


def _crossings_in_cells(vals: torch.Tensor, g: np.ndarray, lw: torch.Tensor) -> tuple[float, int]:
    """Pairs of lines whose entry/exit points interleave around each grid cell, summed over the
    cells whose four corners are inside the domain; and the number of such cells.

    ``vals`` ``(N, L)``: line values at the grid points inside the domain; ``g`` ``(n, n)``: the
    index into ``vals`` of grid node ``(i, j)``, ``-1`` outside; ``lw`` ``(L,)``: the lines' weights
    (a crossing weighs the product of its two lines').
    """
    n = g.shape[0]
    dev = vals.device
    nl = vals.shape[1]
    valid = (g[:-1, :-1] >= 0) & (g[1:, :-1] >= 0) & (g[1:, 1:] >= 0) & (g[:-1, 1:] >= 0)
    ncells = int(valid.sum())
    if ncells == 0 or nl == 0:
        return 0.0, ncells
    cell_id = np.full((n - 1, n - 1), -1, dtype=np.int64)
    cell_id[valid] = np.arange(ncells)
    pos_sign = vals > 0
    ent_cell: list[torch.Tensor] = []
    ent_line: list[torch.Tensor] = []
    ent_pos: list[torch.Tensor] = []

    def edges(horizontal: bool) -> None:
        # edges from node (i, j) to (i + 1, j) (horizontal) or to (i, j + 1) (vertical)
        a = g[:-1, :] if horizontal else g[:, :-1]
        b = g[1:, :] if horizontal else g[:, 1:]
        ii, jj = np.nonzero((a >= 0) & (b >= 0))
        ea = torch.as_tensor(a[ii, jj], device=dev)
        eb = torch.as_tensor(b[ii, jj], device=dev)
        for s0 in range(0, len(ea), _CELL_CHUNK):
            sa, sb = ea[s0 : s0 + _CELL_CHUNK], eb[s0 : s0 + _CELL_CHUNK]
            e, line = (pos_sign[sa] ^ pos_sign[sb]).nonzero(as_tuple=True)
            va, vb = vals[sa[e], line], vals[sb[e], line]
            t = (va / (va - vb)).clamp_(0.0, 1.0)
            ei = ii[s0 : s0 + _CELL_CHUNK]
            ej = jj[s0 : s0 + _CELL_CHUNK]
            en = e.cpu().numpy()
            i_, j_ = ei[en], ej[en]
            # the two cells on either side of the edge, with the edge's place on their boundary
            # (counter-clockwise: bottom 0..1, right 1..2, top 2..3 reversed, left 3..4 reversed)
            if horizontal:
                sides = [(i_, j_, 0.0, False), (i_, j_ - 1, 2.0, True)]
            else:
                sides = [(i_ - 1, j_, 1.0, False), (i_, j_, 3.0, True)]
            for ci, cj, base, rev in sides:
                ok = (ci >= 0) & (ci < n - 1) & (cj >= 0) & (cj < n - 1)
                cid = np.full(len(ci), -1, dtype=np.int64)
                cid[ok] = cell_id[ci[ok], cj[ok]]
                keep = torch.as_tensor(cid >= 0, device=dev)
                ent_cell.append(torch.as_tensor(cid, device=dev)[keep])
                ent_line.append(line[keep])
                ent_pos.append(base + ((1.0 - t) if rev else t)[keep])

    edges(True)
    edges(False)
    cell = torch.cat(ent_cell)
    if len(cell) == 0:
        return 0.0, ncells
    line = torch.cat(ent_line)
    where = torch.cat(ent_pos)
    # group the crossing points by (cell, line), in order around the cell; a line crossing two
    # edges is one chord, four (a saddle) two: (p0, p1) and (p2, p3)
    o = torch.argsort(where)
    key = (cell * nl + line)[o]
    o2 = torch.argsort(key, stable=True)
    srt = o[o2]
    key = key[o2]
    where = where[srt]
    cell = cell[srt]
    line = line[srt]
    # each group has an even size (a sign flips an even number of times around a cell): pair its
    # points in order
    grp_start = torch.ones(len(key), dtype=torch.bool, device=dev)
    grp_start[1:] = key[1:] != key[:-1]
    gid = torch.cumsum(grp_start.long(), 0) - 1
    first = torch.nonzero(grp_start).squeeze(1)
    rank_in = torch.arange(len(key), device=dev) - first[gid]
    li = torch.nonzero(rank_in % 2 == 0).squeeze(1)
    cid = cell[li]
    a0 = where[li]
    a1 = where[li + 1]
    cw = lw.to(dev)[line[li]]
    return _count_interleaving(cid, a0, a1, cw, ncells), ncells


def _count_interleaving(
    cid: torch.Tensor, a0: torch.Tensor, a1: torch.Tensor, cw: torch.Tensor, ncells: int
) -> float:
    """Pairs of chords ``(a0, a1)`` (``a0 < a1``, weight ``cw``) of one cell that interleave, summed
    over cells."""
    # cells in order of their chord count, in groups padded to the group's largest count
    cnt = torch.bincount(cid, minlength=ncells)
    by_cnt = torch.argsort(cnt)
    rank = torch.empty_like(by_cnt)
    rank[by_cnt] = torch.arange(len(by_cnt), device=by_cnt.device)
    srt = torch.argsort(rank[cid], stable=True)
    cid, a0, a1, cw = rank[cid][srt], a0[srt], a1[srt], cw[srt]  # cells renumbered by rank
    cnt_sorted = cnt[by_cnt]
    start_all = torch.cumsum(cnt_sorted, 0) - cnt_sorted
    total = 0.0
    c0 = int((cnt_sorted < 2).sum())  # cells with fewer than two chords have no crossing
    ncell = len(cnt_sorted)
    budget = 1 << 22
    while c0 < ncell:
        k = int(cnt_sorted[c0])
        # as many cells as fit the budget at the largest count among them
        c1 = min(ncell, c0 + max(1, budget // max(k * k, 1)))
        while c1 > c0 + 1 and int(cnt_sorted[c1 - 1]) ** 2 * (c1 - c0) > budget:
            c1 = c0 + max(1, (c1 - c0) // 2)
        k = int(cnt_sorted[c1 - 1])
        lo, hi = int(start_all[c0]), int(start_all[c1 - 1] + cnt_sorted[c1 - 1])
        cc, x0v, x1v, wv = cid[lo:hi] - c0, a0[lo:hi], a1[lo:hi], cw[lo:hi]
        slot = torch.arange(lo, hi, device=cc.device) - start_all[cc + c0]
        x0 = torch.full((c1 - c0, k), float("nan"), dtype=a0.dtype, device=a0.device)
        x1 = x0.clone()
        x0[cc, slot] = x0v
        x1[cc, slot] = x1v
        w = torch.zeros((c1 - c0, k), dtype=cw.dtype, device=cw.device)
        w[cc, slot] = wv
        # chords (p, q) and (r, s), p < q: they cross when exactly one of r, s lies in (p, q)
        p, q = x0[:, :, None], x1[:, :, None]
        in_r = (x0[:, None, :] > p) & (x0[:, None, :] < q)
        in_s = (x1[:, None, :] > p) & (x1[:, None, :] < q)
        cross = torch.triu(in_r ^ in_s, diagonal=1)
        cc_, ii, jj = cross.nonzero(as_tuple=True)
        total += _distinct_crossings(cc_ + c0, ii, jj, x0, x1, w, cc_)
        c0 = c1
    return total


def _on_square(pos: torch.Tensor) -> torch.Tensor:
    """A place ``pos`` in [0, 4) around the unit square (counter-clockwise from (0, 0)) as (x, y)."""
    e = pos.floor().clamp_(0, 3)
    t = pos - e
    x = torch.where(e == 0, t, torch.where(e == 1, torch.ones_like(t), torch.where(e == 2, 1 - t, torch.zeros_like(t))))
    y = torch.where(e == 0, torch.zeros_like(t), torch.where(e == 1, t, torch.where(e == 2, torch.ones_like(t), 1 - t)))
    return torch.stack([x, y], -1)


def _distinct_crossings(
    cell: torch.Tensor, i: torch.Tensor, j: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor,
    w: torch.Tensor, row: torch.Tensor,
) -> float:
    """Vertices made by the crossing chord pairs ``(i, j)`` of each cell, each pair weighing the
    product of its chords' weights ``w``: where ``k`` chords meet in one point (the lines of a
    bias-free layer, all through the origin) Euler's formula counts ``k - 1``, not the
    ``k (k - 1) / 2`` pairs (the point's pairs then share ``k - 1`` between them). Crossing points
    closer than 1e-6 of the cell's side are one vertex."""
    if len(i) == 0:
        return 0.0
    a, b = _on_square(x0[row, i]), _on_square(x1[row, i])
    c, d = _on_square(x0[row, j]), _on_square(x1[row, j])
    r, s = b - a, d - c
    den = r[:, 0] * s[:, 1] - r[:, 1] * s[:, 0]
    ca = c - a
    t = (ca[:, 0] * s[:, 1] - ca[:, 1] * s[:, 0]) / torch.where(den == 0, torch.ones_like(den), den)
    pt = (a + t[:, None] * r).clamp_(0.0, 1.0)
    q = torch.round(pt * 1e6).long()
    key = (cell * 1_000_001 + q[:, 0]) * 1_000_001 + q[:, 1]
    pw = w[row, i] * w[row, j]
    uniq, grp = torch.unique(key, return_inverse=True)
    if len(uniq) == len(key):  # no point where more than two chords meet
        return float(pw.sum())
    # chords per vertex: k chords meeting in one point add k - 1 regions
    members = torch.cat([grp * (x0.shape[1] + 1) + i, grp * (x0.shape[1] + 1) + j])
    chords = torch.bincount(torch.unique(members) // (x0.shape[1] + 1), minlength=len(uniq))
    pairs = torch.bincount(grp, minlength=len(uniq))
    wsum = torch.zeros(len(uniq), dtype=pw.dtype, device=pw.device).index_add_(0, grp, pw)
    return float((wsum * (chords - 1).clamp_min(1) / pairs).sum())


def estimate_program(
    program: Program,
    model: nn.Module,
    slc: Slice,
    grid: int = DEFAULT_GRID,
    dtype: torch.dtype = torch.float64,
    device: Any = None,
) -> RegionEstimate:
    """:func:`estimate_regions` for a prepared model copy and the program traced from it."""
    t0 = time.perf_counter()
    grid = int(grid)
    if grid < 2:
        raise ValueError(f"grid must be >= 2, got {grid}")
    dom = slc.domain
    lo, hi = dom.min(0), dom.max(0)
    scale = float(np.abs(hi - lo).max())
    xs = np.linspace(lo[0], hi[0], grid)
    ys = np.linspace(lo[1], hi[1], grid)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")  # node (i, j) = (xs[i], ys[j])
    nodes = np.stack([gx.ravel(), gy.ravel()], 1)
    inside = _inside(nodes, dom, 1e-12 * scale)
    border = _border_points(dom, 4 * grid)
    pts = np.concatenate([nodes[inside], border])
    n_in = int(inside.sum())

    # evaluate the traced program on the real points, in batches
    vals: torch.Tensor | None = None
    kinds: list[Any] | None = None
    with torch.no_grad():
        x0 = slc.to_input(torch.as_tensor(slc.center[None], dtype=dtype, device=device))
        try:
            model(x0.clone())
        except Exception as exc:
            raise SliceError(
                f"the slice's input shape {slc.input_shape} does not fit the model ({type(exc).__name__}: "
                f"{exc}); build the slice from points of the model's input shape (without the batch axis)"
            ) from exc
        batch = _batch_points(program, model, x0)
        for s in range(0, len(pts), batch):
            u = torch.as_tensor(pts[s : s + batch], dtype=dtype, device=device)
            _, pres, shapes = evaluate_program(program, model, slc.to_input(u).clone(), with_shapes=True)
            if kinds is None:
                kinds = [kind_for(program.steps[i], shp, dtype, u.device) for i, shp in zip(program.pwl_steps, shapes)]
            v, lw = _line_values(pres, kinds)
            del pres
            if vals is None:  # (one buffer for all batches: no copy of them all at the end)
                vals = v if len(v) == len(pts) else v.new_empty((len(pts), v.shape[1]))
            if vals is not v:
                vals[s : s + len(v)] = v
            del v
    if vals is None:
        vals = torch.zeros((0, 0), dtype=dtype)
        lw = torch.zeros(0, dtype=torch.float64)
    signs = vals > 0
    codes = torch.unique(signs[:n_in], dim=0) if n_in and signs.shape[1] else signs[:1]
    distinct = int(len(codes))

    # the border: lines whose sign changes between consecutive border points
    b = signs[n_in:]
    lwd = lw.to(vals.device, vals.dtype)
    chords = float(((b != torch.roll(b, -1, dims=0)).to(vals.dtype) @ lwd).sum()) / 2.0 if len(b) > 1 else 0.0

    # crossings in the cells whose four corners are inside the domain, scaled to the domain's area
    idx = np.full(grid * grid, -1, dtype=np.int64)
    idx[inside] = np.arange(n_in)
    crossings, ncells = _crossings_in_cells(vals[:n_in], idx.reshape(grid, grid), lw)
    if ncells:
        # the domain's area in units of one cell (so that domains of side 1e200 do not overflow)
        x, y = ((dom - dom.mean(0)) / np.array([xs[1] - xs[0], ys[1] - ys[0]])).T
        cells_in_domain = 0.5 * abs(float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)))
        crossings *= cells_in_domain / ncells
    regions = max(1.0 + chords + crossings, float(distinct))
    return RegionEstimate(
        regions=float(regions),
        distinct_codes=distinct,
        chords=float(chords),
        crossings=float(crossings),
        grid=grid,
        evaluations=len(pts),
        seconds=time.perf_counter() - t0,
    )


@engine_threads()  # one CPU thread on a busy machine (splinecam.engine.threads)
def estimate_regions(
    model: nn.Module,
    slice: Slice,
    grid: int = DEFAULT_GRID,
    *,
    device: Any = None,
) -> RegionEstimate:
    """Estimate how many regions :func:`splinecam.partition` will find, from a coarse grid of points.

    The model (a private float64 eval copy; yours is not modified) runs on a ``grid x grid`` grid
    over the domain plus ``4 * grid`` points around its border, about ``grid^2`` evaluations
    (4,352 at the default): far cheaper than the exact run on a slice with many regions. The unit lines
    crossing the border and each other are counted on the grid, and Euler's formula turns them into
    a region count (see :mod:`splinecam.engine.estimate`). It is an estimate: within 30% on the
    tests' networks at ``grid=64``, typically an under-estimate where lines bend a lot between grid
    points (raise ``grid`` there).

    Parameters
    ----------
    model : torch.nn.Module
        A piecewise-linear network in eval mode.
    slice : Slice
        The slice and its domain.
    grid : int
        Points per side of the grid.
    device : str or torch.device, optional
        Where to evaluate; the model's device if None.

    Returns
    -------
    RegionEstimate
        ``.regions`` (also ``int(est)``), ``.distinct_codes`` (a lower bound seen on the grid), and
        the counts it comes from.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)).eval()
    >>> box = sc.Slice.box((-2, 2), (-2, 2))
    >>> est = sc.estimate_regions(net, box)
    >>> exact = sc.partition(net, box).num_regions
    >>> abs(est.regions - exact) <= 0.3 * exact
    True
    """
    copy_, dev = prepare_model(model, dtype=torch.float64, device=device, share_parameters=True)
    program = trace_model(copy_)
    return estimate_program(program, copy_, slice, grid=grid, dtype=torch.float64, device=dev)


# --------------------------------------------------------------------------- the check before a run
#: :func:`splinecam.partition` warns (:class:`~splinecam.errors.LargePartitionWarning`) when a slice
#: is estimated to have at least this many regions (its ``warn_regions`` parameter).
WARN_REGIONS = 1_000_000

#: Grids of the check of a run: first a 4 x 4 grid (32 model evaluations, about what the engine
#: spends on ten regions; within 30% of the final estimate on the tests' networks, e.g. 131,693 for
#: 160,478 on the 2-256x3-1 benchmark MLP), then, when its estimate reaches a quarter of the
#: threshold, a 16 x 16 grid, and past half the threshold a ``DEFAULT_GRID`` one (that run will be
#: long anyway). (Refining from a twentieth of the threshold on cost 6% of that 256x3 run.)
CHECK_GRIDS = (4, 16, DEFAULT_GRID)
_CHECK_FRACTIONS = (0.25, 0.5)

#: :func:`splinecam.partition` runs the check once its engine has found this many regions (or at
#: once where a twentieth of the threshold is fewer): a partition with fewer regions never pays for
#: it (its cost is that of about ten regions, 10-15% of a call with a hundred regions), and a run of
#: a million regions is warned of within its first 3%.
CHECK_AFTER = 32768

#: Measured memory of a partition per region (bytes): 3.4 GB for 1.6 million regions of a small CNN.
_BYTES_PER_REGION = 2100


def warn_if_large(
    program: Program,
    model: nn.Module,
    slc: Slice,
    threshold: float | None = WARN_REGIONS,
    dtype: torch.dtype = torch.float64,
    device: Any = None,
    stacklevel: int = 3,
) -> RegionEstimate | None:
    """Estimate the region count (:func:`estimate_program`) and warn past ``threshold``.

    Returns the estimate, or None when ``threshold`` is None (no check) or the model fails on the
    grid's points (the engine then refuses it with its own message). The warning, a
    :class:`~splinecam.errors.LargePartitionWarning`, gives the estimate, the memory it implies, and
    the side of a square domain that would stay under the threshold.
    """
    if threshold is None:
        return None
    try:
        est = estimate_program(program, model, slc, grid=CHECK_GRIDS[0], dtype=dtype, device=device)
    except Exception:
        # an advisory check: what makes the model fail on a batch of real points (a slice that does
        # not fit, an operation across the batch axis...) is refused by the engine right after, with
        # its own message; the check must not replace that message by a raw error
        return None
    for grid, frac in zip(CHECK_GRIDS[1:], _CHECK_FRACTIONS):
        if est.regions < frac * threshold:
            break
        est = estimate_program(program, model, slc, grid=grid, dtype=dtype, device=device)
    if est.regions >= threshold:
        import warnings

        from ..errors import LargePartitionWarning

        span = slc.domain.max(0) - slc.domain.min(0)
        side = float(np.sqrt(span[0] * span[1]) * np.sqrt(threshold / est.regions))
        gb = est.regions * _BYTES_PER_REGION / 1e9
        warnings.warn(
            f"this slice is estimated to have about {est.regions:,.0f} linear regions ({est.distinct_codes:,} "
            f"distinct activation patterns on a {est.grid}x{est.grid} grid already; see "
            f"splinecam.estimate_regions): the exact partition will take long and need about {gb:.1f} GB "
            "(more for its decision boundary, plots and verify). The count grows with the domain's area: "
            f"the domain is {span[0]:.3g} x {span[1]:.3g}; a square of side about {side:.3g} would have "
            f"fewer than {threshold:,.0f} regions (a smaller pad in Slice.from_anchors, or a smaller box). "
            "Pass warn_regions=None to skip this check, or a larger threshold",
            LargePartitionWarning,
            stacklevel=stacklevel,
        )
    return est
