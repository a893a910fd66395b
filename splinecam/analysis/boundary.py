"""Decision boundaries and level sets of a partition, exact up to float64 rounding.

On one region ``r`` of a :class:`~splinecam.Partition` the network's outputs (logits) are affine,
``f(u) = A[r] @ u + b[r]``. The region therefore splits into convex *argmax cells*
``{u in region : f_c(u) >= f_j(u) for all j}``, one per class that wins somewhere in it. The decision
boundary is the border between cells of different classes:

* inside a region, the edges of a cell made by a line ``f_c = f_j`` (the cells are obtained by
  clipping every region polygon by the half-planes ``f_c - f_j >= 0``, batched over all regions at
  once);
* along a region edge, the parts where the class on one side differs from the class on the other
  side (in a continuous network this happens only where the top two logits tie all along the
  edge, e.g. ``relu(x)`` against ``relu(-x)``).

Networks with a nonlinearity that jumps (Hardshrink, Threshold, :class:`splinecam.layers.Sawtooth`):
the logits are discontinuous across that nonlinearity's edges, so the class can change across such an
edge without any tie. The boundary is still the set where the class changes: those edge pieces are
boundary segments, but there the top logits are not equal (each side's limit has its own winner),
and :meth:`DecisionBoundary.sample` points on them lie on a jump. Everywhere else the boundary's
points tie, as in a continuous network.

Only the places where the *top* class changes are boundary: the lines ``f_i = f_j`` where neither
``i`` nor ``j`` is on top are not (the original SplineCam toolbox returned them).

Ties go to the lowest class index, as in :func:`numpy.argmax`: where two logits are identical on a
whole region (zero difference at every vertex, up to ``EPS`` relative to the logits' scale) the
higher class has no cell there and no 2-D "boundary" is made.

With one output ``f`` the two classes are ``0`` (``f <= threshold``) and ``1`` (``f > threshold``),
and the boundary is the border of ``{f > threshold}``; a level set ``f_k = value`` is computed the
same way (:func:`level_set`), so that for one output ``decision_boundary(part, threshold=t)`` and
``level_set(part, 0, t)`` are the same curve. Where ``f`` equals the value on a whole region the
level set would be 2-D: only the border of ``{f > value}`` is returned there.

Segments are oriented: walking ``segments[s, 0] -> segments[s, 1]``, class ``classes[s, 0]`` is on
the left and ``classes[s, 1]`` (always the larger index) on the right. For level sets the left side
is ``f <= value`` and the right side ``f > value``.

Examples
--------
>>> import torch, splinecam as sc
>>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
>>> part = sc.partition(net, sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2)))
>>> db = part.decision_boundary()
>>> db.segments.shape[1:], db.length >= 0
((2, 2), True)
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.geometry import EPS
from ..errors import SplineCamError

__all__ = ["BoundaryError", "DecisionBoundary", "decision_boundary", "level_set"]

#: Endpoints closer than this (relative to the domain's scale) are the same polyline vertex.
MERGE_TOL = 1e-8
#: Pieces of region edges shorter than this (relative to the domain's scale) are rounding slivers.
LENGTH_TOL = 1e-9


class BoundaryError(SplineCamError, ValueError):
    """A decision boundary or level set was requested with invalid arguments."""


# =========================================================================== result object
@dataclass(repr=False, eq=False)
class DecisionBoundary:
    """A decision boundary (or level set) on a slice: oriented segments chained into polylines.

    Attributes
    ----------
    segments : ndarray, shape (S, 2, 2)
        Start and end point of every segment, in slice coordinates.
    regions : ndarray, shape (S,)
        Region of each segment (for a segment on a region edge: the region on the side of
        ``classes[s, 0]``).
    classes : ndarray, shape (S, 2)
        The two classes separated by each segment, ``classes[s, 0] < classes[s, 1]``; class
        ``classes[s, 0]`` lies on the left of ``segments[s, 0] -> segments[s, 1]``. For one output
        and for level sets: ``0`` is the side ``f <= value`` and ``1`` the side ``f > value``.
    edges : ndarray, shape (S,)
        The planar-graph edge (``Partition.edges``) a segment lies on, or ``-1`` for a segment
        inside a region.
    polylines : list of ndarray
        Segments chained into curves through shared endpoints, each ``(n_i, 2)``. A polyline ends
        at the domain border or at a junction where three or more pieces meet; a closed loop
        repeats its first point at the end. Polylines follow their segments' orientation (the same
        class on the left all along), so a closed loop runs counter-clockwise around a set of its
        lower class (for a level set: around a set where ``f <= value``).
    closed : ndarray of bool, shape (P,)
        Whether each polyline is a closed loop.
    segment_polyline : ndarray, shape (S,)
        The polyline holding each segment (``-1`` for a segment shorter than the merge tolerance,
        which has become a single polyline vertex).
    num_components : int
        Number of connected pieces of the boundary.
    kind : str
        ``"argmax"`` (two or more outputs), ``"threshold"`` (one output) or ``"level_set"``.
    slice : Slice or None
        The slice of the partition, used by :meth:`sample` to map points to input space.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 1)).eval()
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0, 0.0]])); _ = net[0].bias.zero_()
    >>> db = sc.partition(net, sc.Slice.box()).decision_boundary()
    >>> db
    DecisionBoundary(threshold: 1 segments, 1 polylines (0 closed), 1 components, length 2)
    >>> u, x = db.sample(3, seed=0)
    >>> u[:, 0].tolist()
    [0.0, 0.0, 0.0]
    """

    segments: np.ndarray
    regions: np.ndarray
    classes: np.ndarray
    edges: np.ndarray
    polylines: list[np.ndarray] = field(default_factory=list)
    closed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    segment_polyline: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    num_components: int = 0
    kind: str = "argmax"
    slice: Any = None

    @property
    def lengths(self) -> np.ndarray:
        """Length of every segment, shape ``(S,)``."""
        d = self.segments[:, 1] - self.segments[:, 0]
        return np.hypot(d[:, 0], d[:, 1])

    @property
    def length(self) -> float:
        """Total length of the boundary in slice coordinates."""
        return float(self.lengths.sum())

    @property
    def num_segments(self) -> int:
        """Number of segments ``S``."""
        return int(len(self.segments))

    @property
    def num_polylines(self) -> int:
        """Number of polylines."""
        return len(self.polylines)

    def normals(self) -> np.ndarray:
        """Unit normal of every segment, pointing from class ``classes[s, 0]`` to ``classes[s, 1]``.

        Returns
        -------
        ndarray, shape (S, 2)
        """
        d = self.segments[:, 1] - self.segments[:, 0]
        n = np.stack([d[:, 1], -d[:, 0]], 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return n / self.lengths[:, None]

    def midpoints(self) -> np.ndarray:
        """Midpoint of every segment, shape ``(S, 2)``."""
        return 0.5 * (self.segments[:, 0] + self.segments[:, 1])

    def sample(self, n: int, seed: int | None = None) -> tuple[np.ndarray, Any]:
        """Points drawn uniformly by arc length along the boundary.

        Parameters
        ----------
        n : int
            Number of points.
        seed : int or None
            Seed of the random generator.

        Returns
        -------
        u : ndarray, shape (n, 2)
            The points in slice coordinates.
        x : ndarray, shape (n, *input_shape)
            The same points in input space (``slice.to_input(u)``); ``None`` without a slice.

        Examples
        --------
        >>> import numpy as np
        >>> db = DecisionBoundary(segments=np.array([[[0.0, 0.0], [2.0, 0.0]]]), regions=np.zeros(1, int),
        ...                       classes=np.array([[0, 1]]), edges=-np.ones(1, int))
        >>> u, _ = db.sample(4, seed=1)
        >>> bool(np.all(u[:, 1] == 0) and np.all((0 <= u[:, 0]) & (u[:, 0] <= 2)))
        True
        """
        n = int(n)
        if n < 0:
            raise BoundaryError(f"n must be a non-negative number of points, got {n}")
        lens = self.lengths
        total = float(lens.sum())
        if n > 0 and not total > 0:
            raise BoundaryError(
                "cannot sample an empty decision boundary (it does not meet the slice's domain); "
                "check len(boundary) or boundary.length first"
            )
        rng = np.random.default_rng(seed)
        if n == 0:
            u = np.zeros((0, 2))
        else:
            cum = np.cumsum(lens)
            s = rng.uniform(0.0, total, size=n)
            idx = np.minimum(np.searchsorted(cum, s, side="right"), len(lens) - 1)
            start = cum[idx] - lens[idx]
            with np.errstate(invalid="ignore", divide="ignore"):
                t = np.clip((s - start) / lens[idx], 0.0, 1.0)
            t = np.where(np.isfinite(t), t, 0.0)
            seg = self.segments[idx]
            u = seg[:, 0] + t[:, None] * (seg[:, 1] - seg[:, 0])
        x = self.slice.to_input(u) if self.slice is not None else None
        return u, x

    def __len__(self) -> int:
        return self.num_segments

    def __repr__(self) -> str:
        pairs = ""
        if self.kind == "argmax" and len(self.classes):
            uniq = np.unique(self.classes, axis=0)
            shown = ", ".join(f"{a}|{b}" for a, b in uniq[:6])
            pairs = f", classes {shown}{', ...' if len(uniq) > 6 else ''}"
        return (
            f"DecisionBoundary({self.kind}: {self.num_segments} segments, {self.num_polylines} polylines "
            f"({int(self.closed.sum())} closed), {self.num_components} components, "
            f"length {self.length:.6g}{pairs})"
        )

    # notebook display: a picture and a summary table (splinecam.viz.notebook)
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from ..viz.notebook import mimebundle

        return mimebundle(self, include, exclude)

    def _repr_png_(self) -> bytes:
        from ..viz.notebook import boundary_png

        return boundary_png(self)

    def _repr_html_(self) -> str:
        from ..viz.notebook import boundary_html

        return boundary_html(self)


# =========================================================================== argmax cells
@dataclass
class _Cells:
    """Argmax cells of every region and the pieces of region edges they share (internal)."""

    reg: np.ndarray  # (N,) region of each cell
    cls: np.ndarray  # (N,) class of each cell
    xy: np.ndarray  # (N, K, 2) padded CCW vertices
    lab: np.ndarray  # (N, K) planar edge id of edge k -> k+1, or -1 for a cut f_c = f_j
    nv: np.ndarray  # (N,)
    area: np.ndarray  # (N,)
    tol: np.ndarray  # (R,) tolerance on logit values per region (EPS x the logits' scale)
    # pieces of inner planar edges seen from both sides: edge, t-interval, cells and their classes
    p_edge: np.ndarray
    p_lo: np.ndarray
    p_hi: np.ndarray
    p_cell: np.ndarray  # (M, 2) cell on the left / right of the edge
    p_cls: np.ndarray  # (M, 2) class on the left / right of the edge


def _polygon_area(xy: np.ndarray, nv: np.ndarray) -> np.ndarray:
    k = xy.shape[1]
    slots = np.arange(k)
    nxt = np.where(slots[None] + 1 < nv[:, None], slots[None] + 1, 0)
    rows = np.arange(len(xy))[:, None]
    xn = xy[rows, nxt]
    valid = slots[None] < nv[:, None]
    cr = (xy[..., 0] * xn[..., 1] - xn[..., 0] * xy[..., 1]) * valid
    return 0.5 * cr.sum(1)


def _clip(
    xy: np.ndarray, lab: np.ndarray, nv: np.ndarray, s: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the part ``s >= 0`` of every convex polygon (vertex values ``s``, exact zeros on the line).

    New edges along the line get the label ``-1``. Returns padded ``(xy, lab, nv)``; a count
    below 3 means nothing of positive area is left.
    """
    p, k, _ = xy.shape
    slots = np.arange(k)
    rows = np.arange(p)[:, None]
    valid = slots[None] < nv[:, None]
    nxt = np.where(slots[None] + 1 < nv[:, None], slots[None] + 1, 0)
    s_n = s[rows, nxt]
    xy_n = xy[rows, nxt]
    keep_v = valid & (s >= 0)
    change = valid & (((s > 0) & (s_n < 0)) | ((s < 0) & (s_n > 0)))
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(change, s / np.where(change, s - s_n, 1.0), 0.0)
    ixy = xy + t[..., None] * (xy_n - xy)
    # augmented cycle: slot 2k is vertex k, slot 2k + 1 the crossing on edge k
    axy = np.stack([xy, ixy], 2).reshape(p, 2 * k, 2)
    alab = np.stack([lab, lab], 2).reshape(p, 2 * k)
    keep = np.stack([keep_v, change], 2).reshape(p, 2 * k)
    cnt = keep.sum(1)
    kk = max(int(cnt.max()) if p else 0, 1)
    order = np.argsort(~keep, axis=1, kind="stable")[:, :kk]
    sl = np.arange(kk)
    order = np.where(sl[None] < cnt[:, None], order, order[:, :1])
    out_xy = axy[rows, order]
    out_lab = alab[rows, order]
    nxt_sl = np.where(sl[None] + 1 < cnt[:, None], sl[None] + 1, 0)
    g_next = order[rows, nxt_sl]
    diff = np.remainder(g_next - order, 2 * np.maximum(nv, 1)[:, None])
    original = (diff == 1) | ((diff == 2) & (order % 2 == 0))
    out_lab = np.where(original, out_lab, -1)
    return out_xy, out_lab, cnt


def _ties_to_lower(xy: np.ndarray, nv: np.ndarray, s: np.ndarray, lower_wins: np.ndarray, area_tol: np.ndarray) -> np.ndarray:
    """``s`` (snapped line values at the vertices of polygons ``xy``) with the ties (zeros) made
    slightly negative on the rows where ``lower_wins`` and the zero set spans more than ``area_tol``:
    the tied vertices and the crossing points of the line with the polygon's edges make a 2-D tie
    band, which only the lower class may keep."""
    k = xy.shape[1]
    valid = np.arange(k)[None] < nv[:, None]
    tied = (s == 0.0) & valid
    rows = np.flatnonzero(lower_wins & (tied.sum(1) >= 2))
    if len(rows) == 0:
        return s
    x, sv, t_, n_ = xy[rows], s[rows], tied[rows], nv[rows]
    r = np.arange(len(rows))[:, None]
    nxt = np.where(np.arange(k)[None] + 1 < n_[:, None], np.arange(k)[None] + 1, 0)
    s_n = sv[r, nxt]
    change = valid[rows] & (((sv > 0) & (s_n < 0)) | ((sv < 0) & (s_n > 0)))
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(change, sv / np.where(change, sv - s_n, 1.0), 0.0)
    cross = x + t[..., None] * (x[r, nxt] - x)
    # the zero set in cycle order: slot 2k vertex k (if tied), 2k + 1 the crossing on edge k
    axy = np.stack([x, cross], 2).reshape(len(rows), 2 * k, 2)
    keep = np.stack([t_, change], 2).reshape(len(rows), 2 * k)
    cnt = keep.sum(1)
    order = np.argsort(~keep, axis=1, kind="stable")
    band = (cnt >= 3) & (_polygon_area(np.take_along_axis(axy, order[..., None], 1), cnt) > area_tol[rows])
    if not band.any():
        return s
    s = s.copy()
    b = rows[band]
    s[b] = np.where(tied[b], -1e-300, s[b])
    return s


def _pseudo_logits(
    part: Any, mode: str, output: int = 0, value: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """``(A (R, C, 2), b (R, C))`` of the classes whose argmax defines the boundary.

    ``mode="argmax"``: the outputs themselves. ``mode="level"``: two classes ``[value, f_output]``
    (class 1 wins where ``f_output > value``, ties to class 0).
    """
    a, b = part.output_affine
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if mode == "argmax":
        return a, b
    r = a.shape[0]
    a2 = np.zeros((r, 2, 2))
    a2[:, 1] = a[:, output]
    b2 = np.empty((r, 2))
    b2[:, 0] = value
    b2[:, 1] = b[:, output]
    return a2, b2


#: Regions clipped together by :func:`_argmax_cells`: its temporaries grow with this, not with the
#: partition (a million regions would otherwise need several GB of per-vertex arrays at once).
CELL_CHUNK = 1 << 15


def _edge_index(part: Any) -> tuple[np.ndarray, np.ndarray]:
    """The planar edges' keys ``min(v0, v1) * V + max(v0, v1)`` sorted, and the order sorting them."""
    nvtx = max(len(part.vertices), 1)
    e = np.asarray(part.edges, dtype=np.int64)
    ekey = np.minimum(e[:, 0], e[:, 1]) * nvtx + np.maximum(e[:, 0], e[:, 1])
    order = np.argsort(ekey)
    return ekey[order], order


def _region_edge_ids(
    part: Any, regions: np.ndarray | None = None, index: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """Planar edge id of every region-polygon edge ``k -> k + 1``, flat, region after region.

    Parameters
    ----------
    part : Partition
    regions : ndarray of int, optional
        Only these regions, in this order (all when None: aligned with ``region_vertices``).
    index : (ndarray, ndarray), optional
        :func:`_edge_index` of ``part``, when already computed.

    Returns
    -------
    ndarray of int64, shape (sum of the regions' vertex counts,)
    """
    rv = np.asarray(part.region_vertices, dtype=np.int64)
    ptr = np.asarray(part.region_ptr, dtype=np.int64)
    if regions is None:
        regions = np.arange(len(ptr) - 1)
    start = ptr[regions]
    cnt = ptr[regions + 1] - start
    first = np.cumsum(cnt) - cnt
    pos = np.arange(int(cnt.sum())) + np.repeat(start - first, cnt)
    nxt = pos + 1
    nxt[first[cnt > 0] + cnt[cnt > 0] - 1] = start[cnt > 0]
    nvtx = max(len(part.vertices), 1)
    a, b = rv[pos], rv[nxt]
    key = np.minimum(a, b) * nvtx + np.maximum(a, b)
    skey, order = _edge_index(part) if index is None else index
    at = np.minimum(np.searchsorted(skey, key), len(order) - 1)
    if not (skey[at] == key).all():  # pragma: no cover - a valid partition has every polygon edge in its graph
        raise SplineCamError("internal error: a region edge is missing from the partition's planar graph")
    return order[at]


def _centred(part: Any, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The centre ``c`` of the slice's domain (the engine's origin) and the logits' constants in
    coordinates centred on it, ``b + A @ c``.

    Everything below works in centred coordinates ``u - c``, as the engine does: on a small domain
    far from the origin the absolute coordinates' rounding (``|c|`` ulps) would be comparable with
    the domain itself, and logits evaluated there would cancel. Translating a slice then changes
    nothing.
    """
    c = np.asarray(part.slice.center, dtype=np.float64)
    return c, b + np.einsum("rcd,d->rc", a, c)


def _chunks(n: int, chunk: int | None) -> list[tuple[int, int]]:
    """``[lo, hi)`` ranges of at most ``chunk`` (default :data:`CELL_CHUNK`) of ``n`` items."""
    step = max(int(CELL_CHUNK if chunk is None else chunk), 1)
    return [(lo, min(lo + step, n)) for lo in range(0, n, step)]


def _region_polygons(
    part: Any, regions: np.ndarray, centre: np.ndarray, index: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Padded polygons of ``regions`` relative to ``centre``, their counts, and the planar edge id
    of each polygon edge (``-1`` in the padded slots)."""
    poly, nv = part.padded_polygons(regions)
    poly = poly - centre
    lab = np.full(poly.shape[:2], -1, dtype=np.int64)
    lab[np.arange(poly.shape[1])[None] < nv[:, None]] = _region_edge_ids(part, regions, index)
    return poly, nv, lab


def _vertex_logits(a: np.ndarray, b: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Logits ``(R, K, C)`` at the vertices of padded polygons ``poly`` (``a`` ``(R, C, 2)``, ``b`` ``(R, C)``)."""
    return np.einsum("rcd,rkd->rkc", a, poly) + b[:, None, :]


def _logit_tolerance(
    part: Any, a: np.ndarray, b: np.ndarray, centre: np.ndarray, chunk: int | None = None
) -> float:
    """One tolerance for the whole partition: ``EPS`` x the largest logit at a region vertex.

    A tolerance scaled region by region would call two logits tied on some regions and not on
    others (``f`` against ``f + 1e-12``) and make a boundary between them.
    """
    scale = [0.0]
    for lo, hi in _chunks(part.num_regions, chunk):
        poly, nv = part.padded_polygons(np.arange(lo, hi))
        fv = np.abs(_vertex_logits(a[lo:hi], b[lo:hi], poly - centre))
        fv[np.arange(fv.shape[1])[None] >= nv[:, None]] = 0.0
        scale.append(fv.max())
    return EPS * float(np.max(scale))


@dataclass
class _ClassCells:
    """The cells of one class in a chunk of regions (internal): rows ``alive`` of the chunk."""

    reg: np.ndarray  # (n,) region (chunk row) of each cell
    cls: int
    xy: np.ndarray  # (n, K, 2)
    lab: np.ndarray  # (n, K)
    nv: np.ndarray  # (n,)
    cut: np.ndarray  # (n,) whether the region's polygon was clipped to make the cell


def _clip_class(
    c: int, poly: np.ndarray, nv0: np.ndarray, lab0: np.ndarray, a: np.ndarray, b: np.ndarray,
    fv: np.ndarray, tol: np.ndarray, area_tol: np.ndarray, alive: np.ndarray, first: np.ndarray,
) -> _ClassCells:
    """Clip the regions ``alive`` (rows of the chunk's arrays) by ``f_c >= f_j`` for every ``j``."""
    c_num = a.shape[1]
    k = poly.shape[1]
    valid0 = np.arange(k)[None] < nv0[:, None]
    xy, lab, nv = poly[alive], lab0[alive], nv0[alive]
    cutm = np.zeros(len(alive), dtype=bool)
    # clip first by the class on top at the region's vertex mean: it removes most of the region
    for j in [-1, *range(c_num)]:
        if len(alive) == 0:
            break
        jv = first[alive] if j < 0 else np.full(len(alive), j)
        skip = jv == c
        jv = np.where(skip, (c + 1) % c_num, jv)
        g_a = a[alive, c] - a[alive, jv]
        g_b = b[alive, c] - b[alive, jv]
        # identical on the whole region (checked on the region's own vertices): the lower index wins
        dv = fv[alive, :, c] - fv[alive[:, None], np.arange(k)[None], jv[:, None]]
        same = np.where(valid0[alive], np.abs(dv), 0.0).max(1) <= tol[alive]
        s = np.einsum("pd,pkd->pk", g_a, xy) + g_b[:, None]
        s = np.where(np.abs(s) <= tol[alive, None], 0.0, s)
        # where the difference of the two logits is within the tolerance at vertices spanning a
        # polygon of positive area (it is tiny over much of the region), both cells would claim
        # that polygon: there the ties belong to the lower class only, and for j < c those
        # vertices lie just outside c's cell (a crossing next to one is the vertex itself)
        s = _ties_to_lower(xy, nv, s, jv < c, area_tol[alive])
        s = np.where(same[:, None], np.where(jv > c, 0.0, -1.0)[:, None], s)
        s = np.where(skip[:, None], 0.0, s)
        # only polygons with some vertex below the line change
        kv = np.arange(xy.shape[1])[None] < nv[:, None]
        cut = ((s < 0) & kv).any(1)
        if not cut.any():
            continue
        cx, cl, cn = _clip(xy[cut], lab[cut], nv[cut], s[cut])
        kmax = max(xy.shape[1], cx.shape[1])
        new_xy = np.repeat(xy[:, :1], kmax, axis=1)
        new_xy[:, : xy.shape[1]] = xy
        new_lab = np.full((len(xy), kmax), -1, dtype=np.int64)
        new_lab[:, : lab.shape[1]] = lab
        new_nv = nv.copy()
        idx = np.flatnonzero(cut)
        new_xy[idx, : cx.shape[1]] = cx
        new_xy[idx, cx.shape[1]:] = cx[:, :1]
        new_lab[idx] = -1
        new_lab[idx, : cl.shape[1]] = cl
        new_nv[idx] = cn
        keep = new_nv >= 3
        alive, xy, lab, nv, cutm = alive[keep], new_xy[keep], new_lab[keep], new_nv[keep], (cutm | cut)[keep]
        if len(nv):
            kk = int(nv.max())
            xy, lab = xy[:, :kk], lab[:, :kk]
    ok = _polygon_area(xy, nv) > area_tol[alive] if len(alive) else np.zeros(0, dtype=bool)
    return _ClassCells(alive[ok], c, xy[ok], lab[ok], nv[ok], cutm[ok])


def _chunk_cells(
    poly: np.ndarray, nv0: np.ndarray, lab0: np.ndarray, a: np.ndarray, b: np.ndarray, tol: np.ndarray
) -> list[_ClassCells]:
    """Argmax cells of a chunk of regions, class after class (all arrays are the chunk's rows)."""
    k = poly.shape[1]
    valid0 = np.arange(k)[None] < nv0[:, None]
    fv = _vertex_logits(a, b, poly)  # (R, K, C)
    span = poly.max(1) - poly.min(1)
    area_tol = 1e-14 * span[:, 0] * span[:, 1]
    fmask = np.where(valid0[..., None], fv, np.nan)
    f_max = np.nanmax(fmask, axis=1)  # (R, C): the largest value of each logit on the region
    # class c can win somewhere in region r only if its largest value reaches the smallest value of
    # some other logit (the top logit is at least every logit's minimum everywhere)
    top_lb = np.nanmin(fmask, axis=1).max(1)
    del fmask
    candidate = f_max >= (top_lb - tol)[:, None]
    mean = (poly * valid0[..., None]).sum(1) / nv0[:, None]
    first = np.argmax(np.einsum("rcd,rd->rc", a, mean) + b, axis=1)
    return [
        _clip_class(c, poly, nv0, lab0, a, b, fv, tol, area_tol, np.flatnonzero(candidate[:, c]), first)
        for c in range(a.shape[1])
    ]


def _drop_plain(cells: list[_ClassCells], n: int, plain: np.ndarray) -> list[_ClassCells]:
    """Drop the cells of *plain* regions (one cell, the whole uncut polygon) and write their class
    into ``plain`` (``(n,)``, ``-1`` left for the other regions): such a cell adds no segment inside
    its region, and along an edge only against a region of another class or a cut one."""
    reg = np.concatenate([x.reg for x in cells])
    count = np.bincount(reg, minlength=n)
    out = []
    for x in cells:
        p = (count[x.reg] == 1) & ~x.cut
        plain[x.reg[p]] = x.cls
        q = ~p
        out.append(_ClassCells(x.reg[q], x.cls, x.xy[q], x.lab[q], x.nv[q], x.cut[q]))
    return out


def _needed_plain(part: Any, plain: np.ndarray) -> np.ndarray:
    """Plain regions (``plain >= 0``) whose cell may meet the boundary: those with an inner edge
    to a non-plain region or to a plain region of another class."""
    er = np.asarray(part.edge_regions, dtype=np.int64)
    er = er[(er >= 0).all(1)]
    p0, p1 = plain[er[:, 0]], plain[er[:, 1]]
    rel = (p0 < 0) | (p1 < 0) | (p0 != p1)
    need = np.zeros(len(plain), dtype=bool)
    need[er[rel].reshape(-1)] = True
    return np.flatnonzero(need & (plain >= 0))


def _pad_cells(xs: list[np.ndarray], labs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate padded cells of different widths (``xy`` padded with vertex 0, labels with -1)."""
    kmax = max([x.shape[1] for x in xs] + [1])
    cxy = np.concatenate([np.concatenate([x, np.repeat(x[:, :1], kmax - x.shape[1], 1)], 1)
                          for x in xs]) if xs else np.zeros((0, kmax, 2))
    clab = np.concatenate([np.pad(x, ((0, 0), (0, kmax - x.shape[1])), constant_values=-1)
                           for x in labs]) if labs else np.zeros((0, kmax), np.int64)
    return cxy, clab


def _argmax_cells(
    part: Any, a: np.ndarray, b: np.ndarray, centre: np.ndarray | None = None, *,
    boundary_only: bool = False, chunk: int | None = None,
) -> _Cells:
    """Clip every region by ``f_c >= f_j`` for all ``j`` (per class ``c``), batched over chunks of regions.

    ``b`` and all coordinates (of the cells, and of the edge pieces' parameters) are relative to
    ``centre`` (see :func:`_centred`; None: the origin).

    Parameters
    ----------
    part : Partition
    a, b : ndarray
        ``(R, C, 2)`` and ``(R, C)``: the logits' affine maps.
    centre : ndarray, optional
        The origin of the coordinates of ``b`` and of the result.
    boundary_only : bool
        Keep only the cells the boundary can touch: cells of regions cut by the argmax, and the
        whole-region cells next to those or to a region of another class (the boundary's segments
        are the same; :attr:`_Cells.reg` then covers only those regions).
    chunk : int, optional
        Regions clipped together (default :data:`CELL_CHUNK`); the result does not depend on it.

    Returns
    -------
    _Cells
        The cells in order of class, then region.
    """
    c0 = np.zeros(2) if centre is None else np.asarray(centre, dtype=np.float64)
    r = part.num_regions
    index = _edge_index(part)
    tol = np.full(r, _logit_tolerance(part, a, b, c0, chunk))
    plain = np.full(r, -1, dtype=np.int64)
    found: list[_ClassCells] = []
    for lo, hi in _chunks(r, chunk):
        poly, nv0, lab0 = _region_polygons(part, np.arange(lo, hi), c0, index)
        cells = _chunk_cells(poly, nv0, lab0, a[lo:hi], b[lo:hi], tol[lo:hi])
        if boundary_only:
            cells = _drop_plain(cells, hi - lo, plain[lo:hi])
        found += [_ClassCells(x.reg + lo, x.cls, x.xy, x.lab, x.nv, x.cut) for x in cells if len(x.reg)]
        del poly, lab0, cells
    if boundary_only:
        for lo, hi in _chunks(len(need := _needed_plain(part, plain)), chunk):
            regs = need[lo:hi]
            poly, nv0, lab0 = _region_polygons(part, regs, c0, index)
            for c in np.unique(plain[regs]):
                m = plain[regs] == c
                found.append(_ClassCells(regs[m], int(c), poly[m], lab0[m], nv0[m], np.zeros(int(m.sum()), bool)))
    creg = np.concatenate([x.reg for x in found]) if found else np.zeros(0, np.int64)
    ccls = np.concatenate([np.full(len(x.reg), x.cls, dtype=np.int64) for x in found]) if found else creg.copy()
    cnv = np.concatenate([x.nv for x in found]) if found else creg.copy()
    cxy, clab = _pad_cells([x.xy for x in found], [x.lab for x in found])
    del found
    order = np.lexsort((creg, ccls))
    if not np.array_equal(order, np.arange(len(order))):
        creg, ccls, cnv, cxy, clab = creg[order], ccls[order], cnv[order], cxy[order], clab[order]
    return _edge_pieces(part, creg, ccls, cxy, clab, cnv, tol, c0)


def _edge_pieces(
    part: Any, creg: np.ndarray, ccls: np.ndarray, cxy: np.ndarray, clab: np.ndarray, cnv: np.ndarray,
    tol: np.ndarray, c0: np.ndarray,
) -> _Cells:
    """The cells with the pieces of inner planar edges they share, seen from each side."""
    carea = _polygon_area(cxy, cnv)
    kk = cxy.shape[1]
    sl = np.arange(kk)
    valid = sl[None] < cnv[:, None]
    nxt = np.where(sl[None] + 1 < cnv[:, None], sl[None] + 1, 0)
    on_edge = valid & (clab >= 0)
    ci, ki = np.nonzero(on_edge)
    e = clab[ci, ki]
    er = np.asarray(part.edge_regions, dtype=np.int64)
    inner = (er[e] >= 0).all(1)
    ci, ki, e = ci[inner], ki[inner], e[inner]
    verts = np.asarray(part.vertices, dtype=np.float64) - c0
    ev = np.asarray(part.edges, dtype=np.int64)
    p0 = verts[ev[e, 0]]
    d = verts[ev[e, 1]] - p0
    dd = (d * d).sum(1)
    pa = cxy[ci, ki]
    pb = cxy[ci, nxt[ci, ki]]
    ta = ((pa - p0) * d).sum(1) / dd
    tb = ((pb - p0) * d).sum(1) / dd
    lo, hi = np.minimum(ta, tb), np.maximum(ta, tb)
    side = (er[e, 0] != creg[ci]).astype(np.int64)  # 0: the cell is on the left of the edge
    left = side == 0
    # join left pieces with right pieces of the same edge
    li, ri = np.flatnonzero(left), np.flatnonzero(~left)
    ne = len(ev)
    r_order = ri[np.argsort(e[ri], kind="stable")]
    r_cnt = np.bincount(e[ri], minlength=ne)
    r_start = np.cumsum(r_cnt) - r_cnt
    reps = r_cnt[e[li]]
    pl = np.repeat(li, reps)
    off = np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps)
    pr = r_order[r_start[e[pl]] + off]
    plo = np.maximum(lo[pl], lo[pr])
    phi = np.minimum(hi[pl], hi[pr])
    dscale = _domain_scale(part)
    ok = (phi - plo) * np.sqrt(dd[pl]) > LENGTH_TOL * dscale
    pl, pr, plo, phi = pl[ok], pr[ok], plo[ok], phi[ok]
    cell_l, cell_r = ci[pl], ci[pr]
    return _Cells(
        reg=creg, cls=ccls, xy=cxy, lab=clab, nv=cnv, area=carea, tol=tol,
        p_edge=e[pl], p_lo=plo, p_hi=phi,
        p_cell=np.stack([cell_l, cell_r], 1).reshape(-1, 2),
        p_cls=np.stack([ccls[cell_l], ccls[cell_r]], 1).reshape(-1, 2),
    )


def _domain_scale(part: Any) -> float:
    dom = np.asarray(part.slice.domain, dtype=np.float64)
    return float(np.abs(dom - dom.mean(0)).max()) or 1.0


def _other_side_class(
    a: np.ndarray, b: np.ndarray, tol: np.ndarray, m: np.ndarray, nrm: np.ndarray, c: np.ndarray
) -> np.ndarray:
    """Class just across a cell edge: among the classes tied with ``c`` at the edge midpoint ``m``,
    the one that grows fastest along the outward normal ``nrm`` (ties to the lowest index).

    ``a`` ``(S, C, 2)``, ``b`` ``(S, C)``, ``tol`` ``(S,)``, ``m``, ``nrm`` ``(S, 2)``, ``c`` ``(S,)``.
    """
    s_num, c_num = b.shape
    f = np.einsum("scd,sd->sc", a, m) + b
    fc = f[np.arange(s_num), c]
    tied = f >= fc[:, None] - tol[:, None]
    tied[np.arange(s_num), c] = False
    deriv = np.einsum("scd,sd->sc", a, nrm)
    dmask = np.where(tied, deriv, -np.inf)
    best = dmask.max(1)
    dscale = np.abs(deriv).max(1)
    cand = tied & (dmask >= best[:, None] - 1e-9 * dscale[:, None])
    other = np.argmax(cand, axis=1)
    none = ~cand.any(1)
    if none.any():  # rounding left no tied class: fall back to the best class at the midpoint
        g = np.where(np.arange(c_num)[None] == c[:, None], -np.inf, f + 1e-9 * deriv)
        other[none] = np.argmax(g[none], 1)
    return other


def _boundary_segments(
    part: Any, a: np.ndarray, b: np.ndarray, cells: _Cells, centre: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All boundary segments ``(seg (S, 2, 2), region (S,), classes (S, 2), edge (S,))``, in
    coordinates relative to ``centre`` (as ``b`` and ``cells``, see :func:`_argmax_cells`)."""
    c0 = np.zeros(2) if centre is None else np.asarray(centre, dtype=np.float64)
    # -- inside regions: cell edges made by a cut, emitted from the side of the lower class
    n, kk, _ = cells.xy.shape
    sl = np.arange(kk)
    valid = sl[None] < cells.nv[:, None]
    nxt = np.where(sl[None] + 1 < cells.nv[:, None], sl[None] + 1, 0)
    ci, ki = np.nonzero(valid & (cells.lab < 0))
    p = cells.xy[ci, ki]
    q = cells.xy[ci, nxt[ci, ki]]
    d = q - p
    ln = np.hypot(d[:, 0], d[:, 1])
    pos = ln > 0
    ci, ki, p, q, d, ln = ci[pos], ki[pos], p[pos], q[pos], d[pos], ln[pos]
    reg = cells.reg[ci]
    c = cells.cls[ci]
    nrm = np.stack([d[:, 1], -d[:, 0]], 1) / ln[:, None]  # outward (cells are counter-clockwise)
    other = _other_side_class(a[reg], b[reg], cells.tol[reg], 0.5 * (p + q), nrm, c)
    emit = c < other
    seg_in = np.stack([p[emit], q[emit]], 1)
    reg_in = reg[emit]
    cls_in = np.stack([c[emit], other[emit]], 1)
    edge_in = np.full(len(reg_in), -1, dtype=np.int64)
    # -- along region edges: pieces whose classes differ on the two sides
    diff = cells.p_cls[:, 0] != cells.p_cls[:, 1]
    e = cells.p_edge[diff]
    verts = np.asarray(part.vertices, dtype=np.float64) - c0
    ev = np.asarray(part.edges, dtype=np.int64)
    p0 = verts[ev[e, 0]]
    dv = verts[ev[e, 1]] - p0
    s0 = p0 + cells.p_lo[diff, None] * dv
    s1 = p0 + cells.p_hi[diff, None] * dv
    cl = cells.p_cls[diff]
    creg = cells.reg[cells.p_cell[diff]]
    flip = cl[:, 0] > cl[:, 1]
    seg_e = np.where(flip[:, None, None], np.stack([s1, s0], 1), np.stack([s0, s1], 1))
    cls_e = np.where(flip[:, None], cl[:, ::-1], cl)
    reg_e = np.where(flip, creg[:, 1], creg[:, 0])
    seg = np.concatenate([seg_in, seg_e.reshape(-1, 2, 2)])
    return (
        seg,
        np.concatenate([reg_in, reg_e]).astype(np.int64),
        np.concatenate([cls_in, cls_e.reshape(-1, 2)]).astype(np.int64),
        np.concatenate([edge_in, e]).astype(np.int64),
    )


# =========================================================================== chaining
def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component representative (smallest member) of ``n`` nodes joined by edges ``a - b``."""
    lab = np.arange(n)
    if len(a) == 0:
        return lab
    while True:
        la, lb = lab[a], lab[b]
        lo, hi = np.minimum(la, lb), np.maximum(la, lb)
        m = lo != hi
        if not m.any():
            return lab
        np.minimum.at(lab, hi[m], lo[m])
        while True:  # pointer jumping until every node points at a root
            nl = lab[lab]
            if np.array_equal(nl, lab):
                break
            lab = nl


def _merge_points(pts: np.ndarray, h: float) -> np.ndarray:
    """Node id of every point, merging points within about ``h`` of each other (4 shifted grids)."""
    n = len(pts)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ea, eb = [], []
    for ox in (0.0, 0.5):
        for oy in (0.0, 0.5):
            cell = np.floor(pts / h + np.array([ox, oy])).astype(np.int64)
            _, inv = np.unique(cell, axis=0, return_inverse=True)
            inv = inv.reshape(-1)
            order = np.argsort(inv, kind="stable")
            same = inv[order[1:]] == inv[order[:-1]]
            ea.append(order[1:][same])
            eb.append(order[:-1][same])
    root = _components(n, np.concatenate(ea), np.concatenate(eb))
    _, ids = np.unique(root, return_inverse=True)
    return ids.reshape(-1)


def _chain(n0: np.ndarray, n1: np.ndarray, num_nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Chain segments ``n0 -> n1`` (node ids) into maximal paths through degree-2 nodes.

    Returns ``(poly_id (S,), position (S,), forward (S,), closed (P,))``: the polyline of each
    segment, its position along it, whether it is walked ``n0 -> n1``, and which polylines are loops.
    Vectorised list ranking by pointer jumping, no loop over segments.
    """
    s = len(n0)
    h = 2 * s
    tail = np.empty(h, dtype=np.int64)
    tail[0::2], tail[1::2] = n0, n1
    deg = np.bincount(tail, minlength=num_nodes)
    # at a degree-2 node, arriving on one segment continues on the other
    order = np.argsort(tail, kind="stable")
    ts = tail[order]
    first = np.r_[True, ts[1:] != ts[:-1]]
    start = np.flatnonzero(first)
    two = deg[ts[start]] == 2
    o1 = order[start[two]]
    o2 = order[start[two] + 1]
    succ = np.full(h, -1, dtype=np.int64)
    succ[o1 ^ 1] = o2
    succ[o2 ^ 1] = o1
    rounds = int(np.ceil(np.log2(max(h, 2)))) + 2
    # find loops (their half-edges never reach an end) and the smallest half-edge of each loop
    nxt = succ.copy()
    mn = np.arange(h)
    for _ in range(rounds):
        v = np.flatnonzero(nxt >= 0)
        if len(v) == 0:
            break
        mn_new = mn.copy()
        mn_new[v] = np.minimum(mn[v], mn[nxt[v]])
        nxt_new = nxt.copy()
        nxt_new[v] = nxt[nxt[v]]
        mn, nxt = mn_new, nxt_new
    loop = nxt >= 0
    brk = loop & (succ == mn)  # the half-edge before the loop's smallest one ends the broken path
    succ = np.where(brk, -1, succ)
    # list ranking: distance to the end of the path and the end half-edge
    nxt = succ.copy()
    rank = (succ >= 0).astype(np.int64)
    term = np.arange(h)
    for _ in range(rounds):
        v = np.flatnonzero(nxt >= 0)
        if len(v) == 0:
            break
        rank_new = rank.copy()
        rank_new[v] = rank[v] + rank[nxt[v]]
        term_new = term.copy()
        term_new[v] = term[nxt[v]]
        nxt_new = nxt.copy()
        nxt_new[v] = nxt[nxt[v]]
        rank, term, nxt = rank_new, term_new, nxt_new
    # each path appears in both directions: identify it by the smaller end half-edge, and walk it
    # along its segments' own orientation when they all agree (they do on a valid boundary)
    forward = term[0::2] <= term[1::2]
    chosen = np.where(forward, np.arange(0, h, 2), np.arange(1, h, 2))
    uniq, pid = np.unique(term[chosen], return_inverse=True)
    pid = pid.reshape(-1)
    t_even = term[0::2]
    lo = np.full(len(uniq), np.iinfo(np.int64).max)
    hi = np.full(len(uniq), -1)
    np.minimum.at(lo, pid, t_even)
    np.maximum.at(hi, pid, t_even)
    forward = np.where((lo == hi)[pid], True, forward)
    chosen = np.where(forward, np.arange(0, h, 2), np.arange(1, h, 2))
    position = -rank[chosen]  # larger rank = further from the end = earlier
    closed = np.zeros(len(uniq), dtype=bool)
    closed[pid[loop[chosen]]] = True
    return pid, position, forward, closed


def _assemble(
    seg: np.ndarray,
    reg: np.ndarray,
    cls: np.ndarray,
    edge: np.ndarray,
    part: Any,
    kind: str,
    centre: np.ndarray | None = None,
) -> DecisionBoundary:
    """Chain the segments (relative to ``centre``) into polylines; the result is in slice coordinates."""
    c0 = np.zeros(2) if centre is None else np.asarray(centre, dtype=np.float64)
    s = len(seg)
    if s == 0:
        return DecisionBoundary(
            segments=np.zeros((0, 2, 2)), regions=np.zeros(0, np.int64), classes=np.zeros((0, 2), np.int64),
            edges=np.zeros(0, np.int64), kind=kind, slice=part.slice,
        )
    h = MERGE_TOL * _domain_scale(part)
    node = _merge_points(seg.reshape(-1, 2), h).reshape(s, 2)
    num_nodes = int(node.max()) + 1
    # node coordinates: the first endpoint merged into each node
    coords = np.zeros((num_nodes, 2))
    flat = node.reshape(-1)
    first = np.full(num_nodes, -1, dtype=np.int64)
    first[flat[::-1]] = np.arange(len(flat))[::-1]
    coords = seg.reshape(-1, 2)[first]
    # drop segments collapsed to a point and duplicates of the same node pair
    seg_poly = np.full(s, -1, dtype=np.int64)
    good = node[:, 0] != node[:, 1]
    key = np.minimum(node[:, 0], node[:, 1]) * num_nodes + np.maximum(node[:, 0], node[:, 1])
    gidx = np.flatnonzero(good)
    _, uidx = np.unique(key[gidx], return_index=True)
    use = gidx[np.sort(uidx)]
    polylines: list[np.ndarray] = []
    closed = np.zeros(0, dtype=bool)
    ncomp = 0
    if len(use):
        n0, n1 = node[use, 0], node[use, 1]
        pid, position, forward, closed = _chain(n0, n1, num_nodes)
        seg_poly[use] = pid
        order = np.lexsort((position, pid))
        tails = np.where(forward, n0, n1)[order]
        heads = np.where(forward, n1, n0)[order]
        counts = np.bincount(pid, minlength=len(closed))
        ends = np.cumsum(counts)
        starts = ends - counts
        # every polyline: the tails of its segments, then the head of the last one
        polylines = [coords[np.r_[tails[a:z], heads[z - 1]]] + c0 for a, z in zip(starts, ends)]
        used_nodes = np.unique(np.r_[n0, n1])
        root = _components(num_nodes, n0, n1)
        ncomp = len(np.unique(root[used_nodes]))
    return DecisionBoundary(
        segments=seg + c0, regions=reg, classes=cls, edges=edge, polylines=polylines, closed=closed,
        segment_polyline=seg_poly, num_components=ncomp, kind=kind, slice=part.slice,
    )


# =========================================================================== public functions
def _check_outputs(part: Any, what: str) -> int:
    c_num = int(part.num_outputs)
    if c_num == 0:
        raise BoundaryError(
            f"this partition stores no outputs (num_outputs == 0), so it has no {what}; compute the "
            "partition of the full model (including its output layer) with sc.partition(model, slice)"
        )
    return c_num


def _as_int(x: Any, name: str) -> int:
    """An index given as a Python, NumPy or one-element integer torch value (never a bool or float)."""
    bad = isinstance(x, (bool, np.bool_)) or "bool" in str(getattr(x, "dtype", ""))
    if not bad:
        try:
            return operator.index(x)
        except TypeError:
            pass
    raise BoundaryError(f"{name} must be an integer, got {x!r} ({type(x).__name__})")


def _as_finite(x: Any, name: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise BoundaryError(f"{name} must be a real number, got {x!r}") from None
    if not np.isfinite(v):
        raise BoundaryError(f"{name} must be finite, got {v}")
    return v


def decision_boundary(part: Any, classes: Any = None, threshold: float = 0.0) -> DecisionBoundary:
    """The decision boundary of the network on the partition's slice.

    Parameters
    ----------
    part : Partition
        A partition computed with the network's outputs (``sc.partition(model, slice)``).
    classes : pair of int, optional
        Only the part of the boundary separating these two classes (in either order). With one
        output the classes are ``0`` (output ``<= threshold``) and ``1`` (output ``> threshold``).
    threshold : float
        One output only: the boundary is where the output crosses ``threshold``.

    Returns
    -------
    DecisionBoundary
        Empty (length 0, ``segments`` of shape ``(0, 2, 2)``) when the boundary does not meet the domain.

    Raises
    ------
    BoundaryError
        No outputs stored, ``classes`` not two different indices in ``[0, C)``, or a non-zero
        ``threshold`` with several outputs.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    >>> part = sc.partition(net, sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2)))
    >>> db = sc.boundary.decision_boundary(part)
    >>> sub = sc.boundary.decision_boundary(part, classes=(0, 2))
    >>> bool(sub.length <= db.length + 1e-12)
    True
    """
    c_num = _check_outputs(part, "decision boundary")
    threshold = _as_finite(threshold, "threshold")
    n_cls = max(c_num, 2)
    pair = None
    if classes is not None:
        try:
            items = list(classes)
        except TypeError:
            raise BoundaryError(f"classes must be a pair of class indices (i, j), got {classes!r}") from None
        if len(items) != 2:
            raise BoundaryError(f"classes must be a pair of class indices (i, j), got {classes!r}")
        i, j = (_as_int(x, "classes") for x in items)
        rng = f"[0, {n_cls})" + (" (one output: 0 is output <= threshold, 1 is output > threshold)"
                                 if c_num == 1 else f" for {c_num} outputs")
        if not (0 <= i < n_cls and 0 <= j < n_cls):
            raise BoundaryError(f"classes must be class indices in {rng}, got ({i}, {j})")
        if i == j:
            raise BoundaryError(f"classes must be two different class indices in {rng}, got ({i}, {j})")
        pair = (min(i, j), max(i, j))
    if c_num == 1:
        a, b = _pseudo_logits(part, "level", 0, threshold)
        kind = "threshold"
    else:
        if threshold != 0.0:
            raise BoundaryError(
                f"threshold applies to networks with one output; this partition has {c_num} outputs "
                "(its boundary is where the argmax changes). For a level set of one output use "
                "part.level_set(output=k, value=v)"
            )
        a, b = _pseudo_logits(part, "argmax")
        kind = "argmax"
    return _compute(part, a, b, kind, pair)


def level_set(part: Any, output: int = 0, value: float = 0.0) -> DecisionBoundary:
    """The level set ``f_output(u) = value`` of one output of the network on the slice.

    For an implicit neural representation or a neural SDF (``value=0``: the zero level set).
    Computed as the border of ``{f_output > value}``, so where the output equals ``value`` on a
    whole region only that region's border with ``{f > value}`` is returned (never a 2-D set).

    Parameters
    ----------
    part : Partition
        A partition computed with the network's outputs.
    output : int
        Index of the output (flattened) in ``[0, num_outputs)``.
    value : float
        The level.

    Returns
    -------
    DecisionBoundary
        With ``kind == "level_set"`` and ``classes`` ``(0, 1)``: ``0`` is the side ``f <= value``
        (on the left of every segment), ``1`` the side ``f > value``.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
    >>> with torch.no_grad():  # f(x, y) = |x| + |y|, so f = 1 is a diamond
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0, 0], [-1, 0], [0, 1], [0, -1]]))
    ...     _ = net[0].bias.zero_(); _ = net[2].weight.fill_(1.0); _ = net[2].bias.zero_()
    >>> ls = sc.partition(net, sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2))).level_set(0, value=1.0)
    >>> round(ls.length, 9), bool(ls.closed[0])
    (5.656854249, True)
    """
    c_num = _check_outputs(part, "level set")
    output = _as_int(output, "output")
    if not 0 <= output < c_num:
        raise BoundaryError(f"output must be an output index in [0, {c_num}), got {output}")
    value = _as_finite(value, "value")
    a, b = _pseudo_logits(part, "level", output, value)
    return _compute(part, a, b, "level_set", None)


def _compute(part: Any, a: np.ndarray, b: np.ndarray, kind: str, pair: tuple[int, int] | None) -> DecisionBoundary:
    c, b = _centred(part, a, b)
    cells = _argmax_cells(part, a, b, c, boundary_only=True)
    seg, reg, cls, edge = _boundary_segments(part, a, b, cells, c)
    if pair is not None:
        sel = (cls[:, 0] == pair[0]) & (cls[:, 1] == pair[1])
        seg, reg, cls, edge = seg[sel], reg[sel], cls[sel], edge[sel]
    return _assemble(seg, reg, cls, edge, part, kind, c)


def _cells_for_part(part: Any, threshold: float = 0.0, boundary_only: bool = False) -> _Cells:
    """Argmax cells with the decision-boundary convention (used by :mod:`splinecam.graph`).

    ``boundary_only``: only the cells the boundary can touch (see :func:`_argmax_cells`); the
    edge pieces whose two sides' classes differ are the same.
    """
    c_num = _check_outputs(part, "decision regions")
    if c_num == 1:
        a, b = _pseudo_logits(part, "level", 0, threshold)
    else:
        a, b = _pseudo_logits(part, "argmax")
    c, b = _centred(part, a, b)
    return _argmax_cells(part, a, b, c, boundary_only=boundary_only)
