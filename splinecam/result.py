"""The :class:`Partition` result object: regions, planar graph, affine maps and codes."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .slice import Slice
from .verify import VerifyReport

if TYPE_CHECKING:  # annotations only (the facades import these when called)
    import igraph as ig
    import networkx as nx
    from matplotlib.axes import Axes

    from .analysis.boundary import DecisionBoundary
    from .analysis.extremes import OutputRange
    from .analysis.graph import DecisionRegion
    from .viz.plot import PlotArtists

    try:  # graph-tool is optional (not on PyPI)
        from graph_tool import Graph as GraphToolGraph
    except ImportError:
        GraphToolGraph = Any

__all__ = ["Partition"]


def _shoelace(poly_xy: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    """Signed areas of CSR polygons (``poly_xy`` flat ``(N, 2)``, ``ptr`` offsets)."""
    n = len(poly_xy)
    idx = np.arange(n)
    reg = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    nxt = idx + 1
    last = ptr[1:] - 1
    nxt[last] = ptr[:-1]
    # relative to each polygon's first vertex: no cancellation for small polygons far from 0
    q = poly_xy - poly_xy[ptr[:-1]][reg]
    x, y = q[:, 0], q[:, 1]
    cr = x * y[nxt] - x[nxt] * y
    return 0.5 * np.bincount(reg, weights=cr, minlength=len(ptr) - 1)


def _planar_edges(
    ptr: torch.Tensor, rv: torch.Tensor, lab: torch.Tensor, nvert: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The undirected edges ``(E, 2)`` of regions given as vertex cycles (CSR ``ptr``/``rv``, counter-
    clockwise, ``lab`` labelling the edge from each slot to the next), the regions on their left
    and right (``-1``: none; border edges are oriented with their region on the left), how many
    half-edges each has, and its label."""
    n = len(rv)
    r = len(ptr) - 1
    nv = ptr[1:] - ptr[:-1]
    # half-edges (a -> b) with the region on their left
    nxt = torch.arange(1, n + 1, dtype=torch.int64)
    nxt[ptr[1:] - 1] = ptr[:-1]
    a, b = rv, rv.index_select(0, nxt)
    reg = torch.repeat_interleave(torch.arange(r, dtype=torch.int64), nv, output_size=n)
    lo, hi = torch.minimum(a, b), torch.maximum(a, b)
    # undirected edges: group the half-edges by (lo, hi); a stable sort keeps each group's
    # half-edges in region order
    ks, order = torch.sort(lo * nvert + hi, stable=True)
    new_group = torch.ones(n, dtype=torch.bool)
    torch.ne(ks[1:], ks[:-1], out=new_group[1:])
    starts = new_group.nonzero().squeeze(1)
    counts = torch.diff(starts, append=torch.tensor([n], dtype=torch.int64))
    ne = len(starts)
    head = order.index_select(0, starts)
    edges = torch.stack([lo.index_select(0, head), hi.index_select(0, head)], 1)
    edge_regions = torch.full((ne, 2), -1, dtype=torch.int64)
    # group members: the one walking lo -> hi has the region on the left
    for j in range(int(counts.max()) if ne else 0):
        eidx = (counts > j).nonzero().squeeze(1)
        h = order.index_select(0, starts.index_select(0, eidx) + j)
        forward = a.index_select(0, h) < b.index_select(0, h)
        rh = reg.index_select(0, h)
        edge_regions[eidx[forward], 0] = rh[forward]
        edge_regions[eidx[~forward], 1] = rh[~forward]
    # border edges: orient them so that their one region is on the left
    flip = (edge_regions[:, 0] < 0).nonzero().squeeze(1)
    edges[flip] = edges[flip].flip(1)
    edge_regions[flip] = edge_regions[flip].flip(1)
    return edges, edge_regions, counts, lab.index_select(0, head)


def _code_hashes(arrays: list[np.ndarray], r: int, chunk: int = 1 << 16) -> np.ndarray:
    """A 64-bit hash ``(R,)`` of every region's codes in all layers (the code bytes read as 64-bit
    words, each multiplied by a fixed odd constant, summed with wrap-around): equal codes give equal
    hashes; unequal ones collide with probability about 2^-64 (callers compare exactly after)."""
    rng = np.random.default_rng(0x5EED)
    h = np.zeros(r, dtype=np.uint64)
    for c in arrays:
        b = np.ascontiguousarray(c).reshape(r, -1).view(np.uint8)
        nb = b.shape[1]
        nw = -(-nb // 8)
        w = rng.integers(0, 2**63, size=nw, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        for s in range(0, r, chunk):
            blk = b[s:s + chunk]
            if nb % 8:
                blk = np.concatenate([blk, np.zeros((len(blk), 8 * nw - nb), dtype=np.uint8)], 1)
            words = np.ascontiguousarray(blk).view(np.uint64)
            h[s:s + chunk] = h[s:s + chunk] * np.uint64(0x9E3779B97F4A7C15) + (words * w).sum(1, dtype=np.uint64)
    return h


def _equal_code_pairs(codes: list[Any], edge_regions: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """The two regions ``(M, 2)`` of every inner edge whose regions have the same codes in every
    layer (``codes`` as the engine gives them: bit-packed ``(array, units)`` or int8 arrays).
    Edges are first screened by a hash of each region's codes (one pass over the regions, not two
    gathers per edge); the few whose hashes match are compared exactly."""
    er = edge_regions[(edge_regions[:, 0] >= 0) & (edge_regions[:, 1] >= 0)]
    if not codes or not len(er):
        return np.zeros((0, 2), dtype=np.int64)
    arrays = [np.asarray(c[0] if isinstance(c, tuple) else c) for c in codes]
    r = len(arrays[0])
    h = _code_hashes(arrays, r)
    er = er[h[er[:, 0]] == h[er[:, 1]]]
    same = np.ones(len(er), dtype=bool)
    for s in range(0, len(er), chunk):
        e = er[s:s + chunk]
        for c in arrays:
            same[s:s + chunk] &= (c[e[:, 0]] == c[e[:, 1]]).reshape(len(e), -1).all(1)
    return er[same]


class Partition:
    """The exact partition of a 2-D slice into the linear regions of a network.

    Built by :func:`splinecam.partition`; read its attributes, do not set them.

    Attributes
    ----------
    slice : Slice
        The slice it was computed on; coordinates below are slice coordinates ``u``.
    vertices : ndarray, shape (V, 2)
        Vertex coordinates, shared by neighbouring regions.
    region_ptr : ndarray, shape (R + 1,)
        CSR offsets of each region's vertex ids in ``region_vertices``.
    region_vertices : ndarray
        Vertex ids, counter-clockwise per region.
    edges : ndarray, shape (E, 2)
        Vertex ids of each edge of the planar graph.
    edge_regions : ndarray, shape (E, 2)
        Region on the left and on the right of each edge (walking ``edges[e, 0] -> edges[e, 1]``);
        ``-1`` outside the domain (border edges are oriented so that their region is on the left).
    edge_layer, edge_unit : ndarray, shape (E,)
        Which nonlinearity (index into ``layer_names``) and which unit (flat index) made each edge;
        ``-1`` for the domain border.
    output_affine : tuple of ndarray
        ``(A, b)`` with ``A`` ``(R, out, 2)`` and ``b`` ``(R, out)`` such that on region ``r``
        ``model(slice.to_input(u)).flatten() == A[r] @ u + b[r]``.
    codes : list of ndarray
        Per nonlinearity, ``(R, units)`` piece index of every unit on every region (for ReLU:
        1 = active, 0 = inactive).
    layer_names : list of str
        Module path (or function) of every nonlinearity, in order.
    seconds : float
        Wall time of the computation.
    dtype : torch.dtype
        The precision the engine computed in (``partition(..., dtype=...)``; float64 by default).
        :meth:`verify` scales its tolerances to it.
    """

    slice: Slice
    vertices: np.ndarray
    region_ptr: np.ndarray
    region_vertices: np.ndarray
    edges: np.ndarray
    edge_regions: np.ndarray
    edge_layer: np.ndarray
    edge_unit: np.ndarray
    output_affine: tuple[np.ndarray, np.ndarray]
    codes: list[np.ndarray]
    layer_names: list[str]
    unit_shapes: list[tuple[int, ...]]
    output_shape: tuple[int, ...]
    seconds: float
    dtype: torch.dtype

    def __init__(
        self,
        slice: Slice,
        vertices: np.ndarray,
        region_ptr: np.ndarray,
        region_vertices: np.ndarray,
        edges: np.ndarray,
        edge_regions: np.ndarray,
        edge_layer: np.ndarray,
        edge_unit: np.ndarray,
        output_affine: tuple[np.ndarray, np.ndarray],
        codes: list[np.ndarray],
        layer_names: list[str],
        unit_shapes: list[tuple[int, ...]] | None = None,
        output_shape: tuple[int, ...] = (),
        seconds: float = 0.0,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        self.slice = slice
        self.vertices = vertices
        self.region_ptr = region_ptr
        self.region_vertices = region_vertices
        self.edges = edges
        self.edge_regions = edge_regions
        self.edge_layer = edge_layer
        self.edge_unit = edge_unit
        self.output_affine = output_affine
        # codes are stored bit-packed per region where every unit has two pieces (ReLU: 640 units
        # take 80 bytes a region instead of 640); ``codes`` unpacks on first access
        self._codes: list[np.ndarray] = []
        self._code_units: list[int] = []
        self._code_packed: list[bool] = []
        for c in codes:
            if isinstance(c, tuple):  # (packed array, units) from the engine or a file
                self._codes.append(np.asarray(c[0], dtype=np.uint8))
                self._code_units.append(int(c[1]))
                self._code_packed.append(True)
            else:
                c = np.asarray(c)
                self._codes.append(c)
                self._code_units.append(int(c.shape[1]) if c.ndim == 2 else 0)
                self._code_packed.append(False)
        self._codes_cache: list[np.ndarray] | None = None
        self.layer_names = list(layer_names)
        self.unit_shapes = list(unit_shapes or [(n,) for n in self._code_units])
        self.output_shape = tuple(output_shape)
        self.seconds = float(seconds)
        if not isinstance(dtype, torch.dtype):
            dtype = getattr(torch, str(dtype).replace("torch.", ""))
        self.dtype = dtype
        self._index: Any = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def _from_engine(cls, res: Any, slc: Slice, program: Any, dtype: torch.dtype) -> Partition:
        poly = res.poly
        center = slc.center
        # in torch on the CPU: its gathers use every core, and ``unique`` and stable sorts of
        # non-negative integers are radix sorts (several times faster here than numpy's)
        nv = poly.nv.detach().to("cpu", torch.int64)
        r = len(nv)
        k = poly.xy.shape[1]
        # the valid slots of every padded polygon, in order, as flat indices
        ptr = torch.zeros(r + 1, dtype=torch.int64)
        torch.cumsum(nv, 0, out=ptr[1:])
        n = int(ptr[-1])
        flat = torch.arange(n, dtype=torch.int64) + torch.repeat_interleave(
            torch.arange(r, dtype=torch.int64) * k - ptr[:-1], nv, output_size=n
        )
        xy = poly.xy.detach().to("cpu", torch.float64).reshape(-1, 2).index_select(0, flat)
        xy += torch.as_tensor(center, dtype=torch.float64)
        hs = poly.hsh.detach().to("cpu").reshape(-1).index_select(0, flat)
        lab = poly.lab.detach().to("cpu").reshape(-1).index_select(0, flat)
        # vertices: one per distinct identifier (numbered in identifier order), taken from its
        # first occurrence
        ids, inv = torch.unique(hs, sorted=True, return_inverse=True)
        nvert = len(ids)
        first = torch.full((nvert,), n, dtype=torch.int64).scatter_reduce_(
            0, inv, torch.arange(n, dtype=torch.int64), "amin"
        )
        verts = xy.index_select(0, first)
        # identical identifiers must be the same point (a 64-bit collision would show here)
        scale = float(np.abs(slc.domain - center).max())
        dev = float((xy - verts.index_select(0, inv)).abs().max()) if n else 0.0
        if dev > 1e-6 * scale:
            if dtype != torch.float64:
                raise RuntimeError(
                    f"the partition cannot be assembled in {dtype}: the same vertex, computed from two "
                    f"neighbouring regions, lies at points {dev:.3g} apart (rounding of {dtype}; the "
                    "engine's tolerances assume float64). Use the default dtype=torch.float64"
                )
            raise RuntimeError(
                f"internal error: vertex identifiers collide (points {dev:.3g} apart share one id); "
                "please report this with the model and slice"
            )
        rv = inv
        edges, edge_regions, counts, elab = _planar_edges(ptr, rv, lab, nvert)
        keep = None
        jumps = getattr(res, "jump_lines", [])
        if jumps and bool(((counts == 1) & (elab >= 0)).any()):
            # a step with jumps: later lines cross its edges at different points on the two sides
            from .engine.repair import mend_jump_edges

            mended = mend_jump_edges(verts.numpy(), ptr.numpy(), rv.numpy(), lab.numpy(), jumps, scale)
            if mended is not None:
                ptr, rv, lab = (torch.as_tensor(t) for t in mended[:3])
                edges, edge_regions, counts, elab = _planar_edges(ptr, rv, lab, nvert)
        if bool(((counts == 1) & (elab >= 0)).any()):
            # an inner edge with one region: the cutting's snapping decided differently on the two
            # sides of an edge (nearly coincident lines); weld and mend where that happened
            from .engine.repair import mend_t_junctions

            mended = mend_t_junctions(verts.numpy(), ptr.numpy(), rv.numpy(), lab.numpy(), scale)
            if mended is not None:
                used, ptr, rv, lab, keep = (torch.as_tensor(t) for t in mended)
                verts = verts.index_select(0, used)
                nvert = len(used)
                edges, edge_regions, counts, elab = _planar_edges(ptr, rv, lab, nvert)
        a_mat = res.out_grad.detach().to("cpu", torch.float64).numpy()
        b_vec = res.out_const.detach().to("cpu", torch.float64).numpy() - a_mat @ center
        codes = res.codes

        def take(kept: Any) -> None:  # keep only these regions' maps and codes
            nonlocal a_mat, b_vec, codes
            kn = np.asarray(kept)
            a_mat, b_vec = a_mat[kn], b_vec[kn]
            codes = [(c[0][kn], c[1]) if isinstance(c, tuple) else c[kn] for c in codes]

        if keep is not None:  # regions that the mending reduced to nothing
            take(keep.numpy())
        from .engine.repair import merge_equal_neighbours, weld_short_edges

        # edges shorter than 1e-12 of the domain's scale are rounding (one point computed on two
        # edges): weld them, dropping what that reduces to nothing
        welded = weld_short_edges(verts.numpy(), ptr.numpy(), rv.numpy(), lab.numpy(), 1e-12 * scale)
        if welded is not None:
            used, ptr, rv, lab, kept = (torch.as_tensor(t) for t in welded)
            verts = verts.index_select(0, used)
            nvert = len(used)
            edges, edge_regions, counts, elab = _planar_edges(ptr, rv, lab, nvert)
            take(kept.numpy())
        pairs = _equal_code_pairs(codes, edge_regions.numpy())
        if len(pairs):
            # neighbours with the same codes are one linear region (a needless sliver between
            # nearly coincident lines): merge them
            weight = _shoelace(verts.numpy()[rv.numpy()] - center, ptr.numpy())
            merged = merge_equal_neighbours(ptr.numpy(), rv.numpy(), lab.numpy(), pairs, weight, nvert)
            if merged is not None:
                used, ptr, rv, lab, kept = (torch.as_tensor(t) for t in merged)
                verts = verts.index_select(0, used)
                nvert = len(used)
                edges, edge_regions, counts, elab = _planar_edges(ptr, rv, lab, nvert)
                take(kept.numpy())
        verts, ptr, rv, edges, edge_regions = (t.numpy() for t in (verts, ptr, rv, edges, edge_regions))
        counts = counts.numpy()
        elab = elab.numpy()
        offsets = np.asarray(res.line_offsets + [np.iinfo(np.int64).max], dtype=np.int64)
        nb = np.asarray(res.num_breakpoints + [1], dtype=np.int64)
        layer = np.where(elab >= 0, np.searchsorted(offsets, elab, side="right") - 1, -1)
        local = np.where(elab >= 0, elab - offsets[np.maximum(layer, 0)], -1)
        unit = np.where(elab >= 0, local // nb[np.maximum(layer, 0)], -1)
        part = cls(
            slice=slc,
            vertices=verts,
            region_ptr=ptr,
            region_vertices=rv,
            edges=edges.astype(np.int64),
            edge_regions=edge_regions,
            edge_layer=layer.astype(np.int64),
            edge_unit=unit.astype(np.int64),
            output_affine=(a_mat, b_vec),
            codes=codes,
            layer_names=program.pwl_names,
            unit_shapes=res.unit_shapes,
            output_shape=res.output_shape,
            dtype=dtype,
        )
        part._edge_multiplicity = counts
        return part

    # ------------------------------------------------------------------ codes
    @property
    def codes(self) -> list[np.ndarray]:
        """Per nonlinearity, the ``(R, units)`` int8 piece index of every unit on every region."""
        if self._codes_cache is None:
            self._codes_cache = [self.layer_codes(i) for i in range(len(self._codes))]
        return self._codes_cache

    def layer_codes(self, layer: int, regions: Any = None) -> np.ndarray:
        """Codes of one nonlinearity, for all regions or only for ``regions`` (int array).

        Cheaper than :attr:`codes` on huge partitions: only the rows asked for are unpacked.

        Examples
        --------
        >>> import torch, splinecam as sc
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
        >>> part = sc.partition(net, sc.Slice.box((-1, 1), (-1, 1)))
        >>> part.layer_codes(0, [0]).shape
        (1, 4)
        """
        c = self._codes[layer]
        if regions is not None:
            c = c[np.asarray(regions, dtype=np.int64)]
        if not self._code_packed[layer]:
            return c
        n = self._code_units[layer]
        return np.unpackbits(c, axis=1, count=n).astype(np.int8) if n else np.zeros((len(c), 0), np.int8)

    def _raw_codes(self, layer: int) -> np.ndarray:
        """The stored codes (bit-packed or not): equal rows mean equal codes."""
        return self._codes[layer]

    # ------------------------------------------------------------------ sizes
    @property
    def num_regions(self) -> int:
        """Number of regions ``R``."""
        return len(self.region_ptr) - 1

    @property
    def num_vertices(self) -> int:
        return len(self.vertices)

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    @property
    def num_outputs(self) -> int:
        return int(self.output_affine[1].shape[1])

    def __len__(self) -> int:
        return self.num_regions

    def __repr__(self) -> str:
        return (
            f"Partition({self.num_regions} regions, {self.num_vertices} vertices, {self.num_edges} "
            f"edges, {len(self.layer_names)} nonlinearities, {self.num_outputs} outputs, "
            f"{self.seconds:.3g} s; {self.slice!r})"
        )

    # notebook display: a picture and a summary table (splinecam.viz.notebook)
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from .viz.notebook import mimebundle

        return mimebundle(self, include, exclude)

    def _repr_png_(self) -> bytes:
        from .viz.notebook import partition_png

        return partition_png(self)

    def _repr_html_(self) -> str:
        from .viz.notebook import partition_html

        return partition_html(self)

    # ------------------------------------------------------------------ geometry
    def region_sizes(self) -> np.ndarray:
        """Number of vertices of each region."""
        return np.diff(self.region_ptr)

    def polygons(self) -> list[np.ndarray]:
        """Each region as a ``(k_i, 2)`` array of counter-clockwise vertices.

        Examples
        --------
        >>> import torch, splinecam as sc
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.ReLU()).eval()
        >>> with torch.no_grad():
        ...     _ = net[0].weight.copy_(torch.tensor([[1.0, 0.0]])); _ = net[0].bias.zero_()
        >>> [p.shape for p in sc.partition(net, sc.Slice.box()).polygons()]
        [(4, 2), (4, 2)]
        """
        return np.split(self.vertices[self.region_vertices], self.region_ptr[1:-1])

    def padded_polygons(self, regions: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Regions as one ``(R, K, 2)`` array (padded slots repeat vertex 0) and the counts ``(R,)``.

        Parameters
        ----------
        regions : array_like of int, optional
            Only these regions (in this order); all when None.

        Returns
        -------
        polygons : ndarray, shape (R, K, 2)
        counts : ndarray, shape (R,)
        """
        start = self.region_ptr[:-1]
        nv = self.region_sizes()
        if regions is not None:
            regions = np.asarray(regions, dtype=np.int64).reshape(-1)
            start, nv = start[regions], nv[regions]
        k = int(nv.max()) if len(nv) else 0
        slot = np.arange(k)
        idx = start[:, None] + np.where(slot[None] < nv[:, None], slot[None], 0)
        return self.vertices[self.region_vertices[idx]], nv

    def areas(self) -> np.ndarray:
        """Area of each region, shape ``(R,)`` (``inf`` where it exceeds the float64 range: a
        domain of half-width above about 1e154; see :meth:`_scaled_areas`)."""
        s = self._coord_scale()
        with np.errstate(over="ignore"):
            return self._scaled_areas() * s * s

    def _coord_scale(self) -> float:
        """The domain's half-width: the unit of the scaled computations (no overflow of products of
        huge coordinates, no underflow of tiny ones)."""
        dom = np.asarray(self.slice.domain, dtype=np.float64)
        return float(np.max(0.5 * dom.max(0) - 0.5 * dom.min(0))) or 1.0

    def _scaled_areas(self) -> np.ndarray:
        """Area of each region divided by :meth:`_coord_scale` squared (finite on every domain)."""
        # (relative to the domain's centre first: a small domain far from the origin keeps its digits)
        q = (self.vertices - np.asarray(self.slice.center, dtype=np.float64)) / self._coord_scale()
        return _shoelace(q[self.region_vertices], self.region_ptr)

    def centroids(self, regions: Any = None) -> np.ndarray:
        """Area centroid of each region, shape ``(R, 2)`` (of ``regions`` only, when given)."""
        if regions is not None:
            poly, nv = self.padded_polygons(regions)
            valid = np.arange(poly.shape[1])[None] < nv[:, None]
            mean = (poly * valid[..., None]).sum(1) / np.maximum(nv, 1)[:, None]
            unit = self._coord_scale()  # scaled: products of huge coordinates would overflow
            q = np.where(valid[..., None], (poly - mean[:, None]) / unit, 0.0)
            qn = np.roll(q, -1, axis=1)
            # the slot after the last valid one is slot 0
            last = np.maximum(nv - 1, 0)
            qn[np.arange(len(nv)), last] = q[:, 0]
            qn = np.where(valid[..., None], qn, 0.0)
            cr = q[..., 0] * qn[..., 1] - qn[..., 0] * q[..., 1]
            a = cr.sum(1)
            with np.errstate(invalid="ignore", divide="ignore"):
                c = np.stack([(cr * (q[..., 0] + qn[..., 0])).sum(1), (cr * (q[..., 1] + qn[..., 1])).sum(1)], 1)
                c = c / (3.0 * a[:, None])
            return mean + np.where(np.isfinite(c), c, 0.0) * unit
        p = self.vertices[self.region_vertices]
        ptr = self.region_ptr
        reg = np.repeat(np.arange(self.num_regions), np.diff(ptr))
        nxt = np.arange(len(p)) + 1
        nxt[ptr[1:] - 1] = ptr[:-1]
        # triangulate around the vertex mean for accuracy
        mean = np.stack(
            [np.bincount(reg, weights=p[:, i]) for i in range(2)], 1
        ) / np.diff(ptr)[:, None]
        sc_ = self._coord_scale()
        q = (p - mean[reg]) / sc_  # scaled: products of huge coordinates would overflow
        qn = q[nxt]
        cr = q[:, 0] * qn[:, 1] - qn[:, 0] * q[:, 1]
        a = np.bincount(reg, weights=cr, minlength=self.num_regions)
        cx = np.bincount(reg, weights=cr * (q[:, 0] + qn[:, 0]), minlength=self.num_regions)
        cy = np.bincount(reg, weights=cr * (q[:, 1] + qn[:, 1]), minlength=self.num_regions)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.stack([cx, cy], 1) / (3.0 * a[:, None])
        c = np.where(np.isfinite(c), c, 0.0)
        return mean + c * sc_

    def interior_points(
        self, n: int = 1, seed: int | None = 0, margin: float = 0.05, regions: Any = None
    ) -> np.ndarray:
        """``n`` random points strictly inside each region, shape ``(R, n, 2)``.

        Points are random convex combinations of the region's vertices, pulled towards its centroid
        by ``margin`` so they stay away from the borders.

        Parameters
        ----------
        n : int
            Points per region.
        seed : int or None
            Seed of the random weights.
        margin : float
            Fraction of the way from a random point to the centroid that it is moved.
        regions : array_like of int, optional
            Only these regions (``(len(regions), n, 2)``; cheaper than indexing the result on a huge
            partition, with other random points than ``interior_points(n)[regions]``).

        Returns
        -------
        ndarray, shape (R, n, 2)

        Examples
        --------
        >>> import torch, splinecam as sc
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
        >>> part = sc.partition(net, sc.Slice.box())
        >>> pts = part.interior_points(3, regions=[0])
        >>> pts.shape, bool((part.locate(pts[0]) == 0).all())
        ((1, 3, 2), True)
        """
        rng = np.random.default_rng(seed)
        poly, nv = self.padded_polygons(regions)
        r, k, _ = poly.shape
        w = rng.exponential(size=(r, n, k))
        w *= (np.arange(k)[None, None] < nv[:, None, None])
        w /= w.sum(-1, keepdims=True)
        pts = np.einsum("rnk,rkd->rnd", w, poly)
        ctr = self.centroids(regions)[:, None]
        return ctr + (1 - margin) * (pts - ctr)

    def locate(self, u: Any) -> np.ndarray:
        """Region id of each point ``(N, 2)`` (slice coordinates), ``-1`` outside the domain.

        A point on a border between regions gets one of them; a non-finite point gets ``-1``.

        Parameters
        ----------
        u : array_like, shape (N, 2) or (2,)

        Returns
        -------
        ndarray of int64, shape (N,)

        Examples
        --------
        >>> import torch, splinecam as sc
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
        >>> part = sc.partition(net, sc.Slice.box())
        >>> part.locate([[0.0, 0.0], [5.0, 5.0]]).tolist()[1]
        -1
        """
        from .analysis.locate import RegionIndex

        if self._index is None:
            self._index = RegionIndex(self)
        u = np.asarray(u, dtype=np.float64).reshape(-1, 2)
        ok = np.isfinite(u).all(1)
        if ok.all():
            return self._index.locate(u)
        out = np.full(len(u), -1, dtype=np.int64)
        out[ok] = self._index.locate(u[ok])
        return out

    # ------------------------------------------------------------------ affine maps
    def evaluate(self, u: Any, regions: np.ndarray | None = None) -> np.ndarray:
        """The network's output at points ``u`` ``(N, 2)`` from the regions' affine maps, ``(N, out)``.

        Parameters
        ----------
        u : array_like, shape (N, 2)
            Slice coordinates.
        regions : ndarray of int, optional
            The region of each point, if known (else :meth:`locate` finds it).

        Returns
        -------
        ndarray, shape (N, out)
            NaN outside the domain.

        Examples
        --------
        >>> import torch, numpy as np, splinecam as sc
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
        >>> part = sc.partition(net, sc.Slice.box())
        >>> u = np.array([[0.3, -0.2]])
        >>> bool(np.allclose(part.evaluate(u), net(torch.tensor(u, dtype=torch.float32)).detach().numpy(), atol=1e-6))
        True
        """
        u = np.asarray(u, dtype=np.float64).reshape(-1, 2)
        r = self.locate(u) if regions is None else np.asarray(regions)
        a, b = self.output_affine
        out = np.einsum("noi,ni->no", a[r], u) + b[r]
        out[r < 0] = np.nan
        return out

    def verify(
        self,
        model: torch.nn.Module,
        points_per_region: int = 2,
        seed: int = 0,
        max_regions: int = 20000,
        *,
        quick: bool = False,
        rtol: float | None = None,
    ) -> VerifyReport:
        """Re-check the partition against the real torch model (the exactness contract).

        Areas sum to the domain's, random points lie in one region, the model's codes and output
        at interior points match the regions' codes and affine maps, neighbours differ in a code,
        and the planar graph is consistent (:func:`splinecam.verify.verify_partition`).

        Parameters
        ----------
        model : torch.nn.Module
            The model the partition was computed from (not modified; evaluated in float64).
        points_per_region : int
            Random interior points per evaluated region.
        seed : int
            Seed of the sampled regions and points.
        max_regions : int
            At most this many regions (at random) are evaluated.
        quick : bool
            Evaluate at most 1,000 regions at one point each (a fixed cost, whatever the partition's
            size). The default evaluates ``points_per_region`` points of up to ``max_regions``
            regions: about 1-2x the cost of the partition on a 10,000-region CNN.
        rtol : float, optional
            Relative tolerance; by default 1e-9 for a float64 partition and scaled to the
            partition's :attr:`dtype` otherwise (:func:`splinecam.verify.tolerance`).

        Returns
        -------
        VerifyReport
            Truthy when every check passed; ``report.raise_if_failed()`` raises listing the failures.

        Examples
        --------
        >>> import torch, splinecam as sc
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).eval()
        >>> part = sc.partition(net, sc.Slice.box())
        >>> report = part.verify(net, quick=True)
        >>> bool(report), [c.name for c in report.checks][:3]
        (True, ['area', 'overlap', 'codes'])
        """
        from .verify import verify_partition

        return verify_partition(
            self, model, points_per_region=points_per_region, seed=seed, max_regions=max_regions,
            quick=quick, rtol=rtol,
        )

    # ------------------------------------------------------------------ downstream (lazy imports)
    def decision_boundary(self, classes: tuple[int, int] | None = None, threshold: float = 0.0) -> DecisionBoundary:
        """The exact decision boundary: where the argmax class changes (one output: where it crosses
        ``threshold``).

        Parameters
        ----------
        classes : (int, int), optional
            Only the part separating these two classes.
        threshold : float
            One output only: the level that separates the two classes.

        Returns
        -------
        DecisionBoundary
            ``segments`` ``(S, 2, 2)``, ``polylines``, ``length``, ``sample(n)``; empty when the
            boundary misses the domain. See :func:`splinecam.boundary.decision_boundary`.

        Examples
        --------
        >>> import torch, splinecam as sc
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 1)).eval()
        >>> with torch.no_grad():
        ...     _ = net[0].weight.copy_(torch.tensor([[1.0, 0.0]])); _ = net[0].bias.zero_()
        >>> round(sc.partition(net, sc.Slice.box()).decision_boundary().length, 12)
        2.0
        """
        from .analysis.boundary import decision_boundary

        return decision_boundary(self, classes=classes, threshold=threshold)

    def level_set(self, output: int = 0, value: float = 0.0) -> DecisionBoundary:
        """The exact level set ``f_output(u) = value`` (a regression net, an implicit surface's zero set).

        Parameters
        ----------
        output : int
            Which output.
        value : float
            The level.

        Returns
        -------
        DecisionBoundary
            Its segments and polylines; see :func:`splinecam.boundary.level_set`.

        Examples
        --------
        >>> import torch, splinecam as sc
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 1)).eval()
        >>> with torch.no_grad():
        ...     _ = net[0].weight.copy_(torch.tensor([[0.0, 1.0]])); _ = net[0].bias.zero_()
        >>> round(sc.partition(net, sc.Slice.box()).level_set(value=0.5).length, 12)
        2.0
        """
        from .analysis.boundary import level_set

        return level_set(self, output=output, value=value)

    def output_range(self, output: int = 0) -> OutputRange:
        """The exact minimum and maximum of one output over the domain, with the points reaching
        them; see :func:`splinecam.analysis.extremes.output_range`.

        Parameters
        ----------
        output : int
            Which output.

        Returns
        -------
        OutputRange
            ``min``, ``max`` and the slice points ``argmin_u``, ``argmax_u`` reaching them.

        Examples
        --------
        >>> import torch, splinecam as sc
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 1)).double().eval()
        >>> with torch.no_grad():
        ...     _ = net[0].weight.copy_(torch.tensor([[1.0, -1.0]])); _ = net[0].bias.zero_()
        >>> r = sc.partition(net, sc.Slice.box((-1, 1), (-1, 1))).output_range(0)
        >>> r.min, r.max, r.argmax_u.tolist()
        (-2.0, 2.0, [1.0, -1.0])
        """
        from .analysis.extremes import output_range

        return output_range(self, output=output)

    def decision_regions(self) -> list[DecisionRegion]:
        """Connected components of the set where the network predicts each class, with exact areas.

        Returns
        -------
        list of DecisionRegion
            Sorted by class, then by decreasing area; see :func:`splinecam.graph.decision_regions`.

        Examples
        --------
        >>> import torch, splinecam as sc
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 1)).eval()
        >>> with torch.no_grad():
        ...     _ = net[0].weight.copy_(torch.tensor([[1.0, 0.0]])); _ = net[0].bias.zero_()
        >>> [(d.label, round(d.area, 12)) for d in sc.partition(net, sc.Slice.box()).decision_regions()]
        [(0, 2.0), (1, 2.0)]
        """
        from .analysis.graph import decision_regions

        return decision_regions(self)

    def to_networkx(self, kind: str = "planar") -> nx.Graph:
        """The planar graph (``kind="planar"``: vertices and edges) or the region-adjacency graph
        (``"regions"``) as a :class:`networkx.Graph` with coordinates and labels as attributes.

        Parameters
        ----------
        kind : {"planar", "regions"}

        Returns
        -------
        networkx.Graph
            See :func:`splinecam.graph.to_networkx` for the attributes.

        Examples
        --------
        >>> import torch, splinecam as sc
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
        >>> part = sc.partition(net, sc.Slice.box())
        >>> part.to_networkx("regions").number_of_nodes() == part.num_regions
        True
        """
        from .analysis.graph import to_networkx

        return to_networkx(self, kind=kind)

    def to_igraph(self, kind: str = "planar") -> ig.Graph:
        """The planar or region-adjacency graph as an :class:`igraph.Graph`.

        Parameters
        ----------
        kind : {"planar", "regions"}

        Returns
        -------
        igraph.Graph
            See :func:`splinecam.graph.to_igraph`.

        Examples
        --------
        >>> import torch, splinecam as sc
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
        >>> part = sc.partition(net, sc.Slice.box())
        >>> part.to_igraph().vcount() == part.num_vertices
        True
        """
        from .analysis.graph import to_igraph

        return to_igraph(self, kind=kind)

    def to_graph_tool(self, kind: str = "planar") -> GraphToolGraph:
        """The planar or region-adjacency graph as a ``graph_tool.Graph`` (optional dependency: not on
        PyPI; the error says how to install it).

        Parameters
        ----------
        kind : {"planar", "regions"}

        Returns
        -------
        graph_tool.Graph
            See :func:`splinecam.graph.to_graph_tool`.

        Examples
        --------
        >>> import torch, splinecam as sc
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
        >>> g = sc.partition(net, sc.Slice.box()).to_graph_tool()  # doctest: +SKIP
        """
        from .analysis.graph import to_graph_tool

        return to_graph_tool(self, kind=kind)

    def statistics(self, boundary: bool = True, classes: tuple[int, int] | None = None) -> dict[str, Any]:
        """Region statistics: counts, areas, eccentricity, centrality, slope norms, boundary length.

        Parameters
        ----------
        boundary : bool
            Include the decision boundary's statistics (``boundary_length``, ``boundary_pieces``, ...).
        classes : (int, int), optional
            Passed to :meth:`decision_boundary`.

        Returns
        -------
        dict
            Python numbers by name (``num_regions``, ``area_mean``, ``boundary_length``, ...); see
            :func:`splinecam.stats.statistics` for the definitions.

        Examples
        --------
        >>> import torch, splinecam as sc
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
        >>> part = sc.partition(net, sc.Slice.box())
        >>> part.statistics()["num_regions"] == part.num_regions
        True
        """
        from .analysis.stats import statistics

        return statistics(self, boundary=boundary, classes=classes)

    def density(self, point: Any, radius: float) -> float | np.ndarray:
        """Regions per unit area in a disc of ``radius`` around ``point`` (or each of ``(N, 2)`` points).

        Parameters
        ----------
        point : array_like, shape (2,) or (N, 2)
            Slice coordinates (a point of input space is projected).
        radius : float

        Returns
        -------
        float or ndarray
            See :func:`splinecam.stats.density`.

        Examples
        --------
        >>> import torch, splinecam as sc
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
        >>> sc.partition(net, sc.Slice.box()).density([0.0, 0.0], 0.5) > 0
        True
        """
        from .analysis.stats import density

        return density(self, point, radius)

    def plot(
        self,
        ax: Axes | None = None,
        color_by: str | Any = "slope",
        boundary: bool = True,
        *,
        legend: bool = False,
        classes: tuple[int, int] | None = None,
        threshold: float | None = None,
        edges_by_layer: bool | None = None,
        max_layer: int | None = None,
        edgecolor: Any = None,
        linewidth: float | None = None,
        alpha: float | None = None,
        cmap: str | Any = None,
        vmin: float | None = None,
        vmax: float | None = None,
        colorbar: bool | None = None,
        seed: int | None = None,
        color_range: tuple[float, float] | None = None,
        boundary_color: Any = None,
        boundary_width: float | None = None,
        data: Any = None,
        data_size: float | None = None,
        anchors: bool | None = None,
        xlim: tuple[float, float] | None = None,
        ylim: tuple[float, float] | None = None,
        axis_labels: bool | tuple[str, str] | None = None,
        legend_kw: dict[str, Any] | None = None,
        class_names: Sequence[str] | None = None,
    ) -> PlotArtists:
        """Draw the partition: regions (one PolyCollection), their borders, the decision boundary,
        data points and anchors; returns the artists (``plt.show()`` is never called).

        Options left at None take :func:`splinecam.plot_partition`'s defaults.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw; the current axes if None.
        color_by : str or array_like
            ``"slope"`` (norm of the output's slope), ``"class"``, ``"area"``, ``"random"``, ``"layer"``,
            or ``(R,)`` values / ``(R, 3|4)`` colours.
        boundary : bool
            Draw the decision boundary.
        legend : bool
            Add a legend of what is drawn (region classes, data classes, boundary, layers, anchors).
        legend_kw : dict, optional
            Passed to ``Axes.legend``.
        class_names : sequence of str, optional
            The classes' names in the legend.
        classes, threshold :
            Passed to :meth:`decision_boundary`.
        edges_by_layer : bool
            Colour the region borders by the layer that made them (default False).
        max_layer : int, optional
            Only the cuts made by layers ``<= max_layer``.
        edgecolor, linewidth, alpha :
            Region borders' colour and width, regions' opacity.
        cmap, vmin, vmax, colorbar :
            Colormap, fixed colour limits, and whether to add a colorbar (default True).
        seed, color_range :
            The ``"random"`` palette's seed (0) and RGB range.
        boundary_color, boundary_width :
            Decision boundary style (red, 2.0).
        data : array or (X, y), optional
            Input-space points to scatter (projected onto the slice), coloured by ``y``.
        data_size : float, optional
            Their marker size.
        anchors : bool
            Mark the slice's anchors (default True).
        xlim, ylim : (float, float), optional
            Axis limits (the domain's bounding box by default).
        axis_labels : bool or (str, str)
            Label the axes (default True: ``x_1``, ``x_2`` for input coordinates, else ``u_1``,
            ``u_2``), or give the two labels; False: none.

        Returns
        -------
        PlotArtists
            ``regions``, ``edges``, ``boundary``, ``colorbar``, ``data``, ``anchors``.

        Examples
        --------
        >>> import matplotlib; matplotlib.use("Agg")
        >>> import matplotlib.pyplot as plt, torch, splinecam as sc
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
        >>> part = sc.partition(net, sc.Slice.box())
        >>> fig, ax = plt.subplots()
        >>> art = part.plot(ax=ax, color_by="class")
        >>> len(art.regions.get_paths()) == part.num_regions
        True
        >>> plt.close(fig)
        """
        from .viz.plot import plot_partition

        options = {
            "legend": legend or None, "classes": classes, "threshold": threshold,
            "edges_by_layer": edges_by_layer, "max_layer": max_layer, "edgecolor": edgecolor,
            "linewidth": linewidth, "alpha": alpha, "cmap": cmap, "vmin": vmin, "vmax": vmax,
            "colorbar": colorbar, "seed": seed, "color_range": color_range,
            "boundary_color": boundary_color, "boundary_width": boundary_width, "data": data,
            "data_size": data_size, "anchors": anchors, "xlim": xlim, "ylim": ylim,
            "axis_labels": axis_labels, "legend_kw": legend_kw, "class_names": class_names,
        }
        # only what was given: plot_partition's own defaults apply to the rest
        kw = {k: v for k, v in options.items() if v is not None}
        return plot_partition(self, ax=ax, color_by=color_by, boundary=boundary, **kw)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Save to a ``.npz`` file (arrays and a JSON header only, no pickle).

        Parameters
        ----------
        path : str or path-like
            The file (NumPy adds ``.npz`` when missing).

        Examples
        --------
        >>> import os, tempfile, torch, splinecam as sc
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
        >>> part = sc.partition(net, sc.Slice.box())
        >>> path = os.path.join(tempfile.mkdtemp(), "part.npz")
        >>> part.save(path)
        >>> sc.Partition.load(path).num_regions == part.num_regions
        True
        """
        a, b = self.output_affine
        arrays: dict[str, np.ndarray] = {
            "vertices": self.vertices,
            "region_ptr": self.region_ptr,
            "region_vertices": self.region_vertices,
            "edges": self.edges,
            "edge_regions": self.edge_regions,
            "edge_layer": self.edge_layer,
            "edge_unit": self.edge_unit,
            "A": a,
            "b": b,
        }
        for i, c in enumerate(self._codes):
            arrays[f"codes_{i}" if not self._code_packed[i] else f"packed_codes_{i}"] = c
            arrays[f"code_units_{i}"] = np.asarray(self._code_units[i])
        for key, v in self.slice.to_dict().items():
            arrays[f"slice_{key}"] = v
        meta = {
            "format": 1,
            "layer_names": self.layer_names,
            "unit_shapes": [list(s) for s in self.unit_shapes],
            "output_shape": list(self.output_shape),
            "seconds": self.seconds,
            "dtype": str(self.dtype).replace("torch.", ""),
        }
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Partition:
        """Load a partition written by :meth:`save` (``allow_pickle=False``: no code runs).

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        Partition
            With its slice, codes, affine maps and dtype; ``seconds`` is the original run's.
        """
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            slc = Slice(
                origin=z["slice_origin"],
                basis=z["slice_basis"],
                domain=z["slice_domain"],
                anchors=z["slice_anchors"] if "slice_anchors" in z else None,
            )
            n = len(meta["layer_names"])
            return cls(
                slice=slc,
                vertices=z["vertices"],
                region_ptr=z["region_ptr"],
                region_vertices=z["region_vertices"],
                edges=z["edges"],
                edge_regions=z["edge_regions"],
                edge_layer=z["edge_layer"],
                edge_unit=z["edge_unit"],
                output_affine=(z["A"], z["b"]),
                codes=[
                    (z[f"packed_codes_{i}"], int(z[f"code_units_{i}"])) if f"packed_codes_{i}" in z
                    else z[f"codes_{i}"]
                    for i in range(n)
                ],
                layer_names=meta["layer_names"],
                unit_shapes=[tuple(s) for s in meta["unit_shapes"]],
                output_shape=tuple(meta["output_shape"]),
                seconds=meta["seconds"],
                dtype=meta.get("dtype", "float64"),
            )
