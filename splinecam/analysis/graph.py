"""Graph views of a partition: the planar graph, the region-adjacency graph, and decision regions.

Two kinds of graph (``kind=``):

``"planar"``
    A node per vertex of the partition (``x``, ``y``; networkx also gets ``pos``) and an edge per
    edge of the planar graph, with ``layer`` and ``unit`` (the nonlinearity and unit that made it,
    ``-1`` on the domain border), ``border`` (on the domain border), ``boundary`` (on the decision
    boundary: the argmax class differs on its two sides, along some part of it), ``left`` and
    ``right`` (the regions on either side when walking ``Partition.edges[id]``; ``-1`` outside the
    domain), ``length`` and ``id`` (the row of ``Partition.edges``). Node ``i`` is vertex ``i``.
``"regions"``
    A node per region (``area``, ``cx``, ``cy``, ``centroid``, ``argmax``: the class at the
    centroid, for one output ``1`` if the output is ``> 0`` else ``0``, ``-1`` without outputs;
    ``num_vertices``) and an edge per inner edge of the planar graph (two regions share at most
    one edge) with its ``layer``, ``unit``, ``boundary``, ``length`` and ``id``. Node ``r`` is
    region ``r``.

Each export stores these the library's own way: networkx node/edge attributes and ``G.graph``,
igraph ``g.vs[...]`` / ``g.es[...]`` / ``g[...]``, graph-tool property maps ``g.vp[...]``,
``g.ep[...]``, ``g.gp[...]``. All three export the same arrays, :func:`graph_arrays`.

Examples
--------
>>> import torch, splinecam as sc
>>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
>>> part = sc.partition(net, sc.Slice.box())
>>> G = part.to_networkx("planar")
>>> G.number_of_nodes() - G.number_of_edges() + part.num_regions
1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SplineCamError

__all__ = [
    "GRAPH_KINDS",
    "GraphKindError",
    "GraphArrays",
    "DecisionRegion",
    "graph_arrays",
    "decision_regions",
    "to_networkx",
    "to_igraph",
    "to_graph_tool",
]

GRAPH_KINDS = ("planar", "regions")

GRAPH_TOOL_HELP = (
    "graph-tool is not installed (it is not on PyPI). Install it with conda: "
    "`conda install -c conda-forge graph-tool`, or on Debian/Ubuntu: `apt-get install python3-graph-tool` "
    "and use it from the system Python, or from a virtual environment made with "
    "`/usr/bin/python3 -m venv --system-site-packages VENV` (then `pip install splinecam` in it). "
    "networkx (part.to_networkx()) and igraph (part.to_igraph()) exports need no extra install."
)


class GraphKindError(SplineCamError, ValueError):
    """An unknown graph kind was requested."""


@dataclass
class GraphArrays:
    """A graph as plain arrays: what every export is built from.

    Attributes
    ----------
    kind : str
        ``"planar"`` or ``"regions"``.
    num_nodes : int
    edges : ndarray, shape (E, 2)
        Node ids of every edge.
    node_attrs, edge_attrs : dict of str to ndarray
        Per-node ``(N,)`` / per-edge ``(E,)`` attributes (``centroid`` is ``(N, 2)``).
    graph_attrs : dict
        Attributes of the whole graph.
    """

    kind: str
    num_nodes: int
    edges: np.ndarray
    node_attrs: dict[str, np.ndarray]
    edge_attrs: dict[str, np.ndarray]
    graph_attrs: dict[str, Any]


@dataclass(repr=False)
class DecisionRegion:
    """One connected component of the set where the network predicts one class.

    Attributes
    ----------
    label : int
        The argmax class (one output: ``1`` where the output is ``> 0``, else ``0``).
    area : float
        Its exact area in slice coordinates.
    num_regions : int
        Number of linear regions that lie (at least partly) in it.
    regions : ndarray
        Their ids. A region crossed by the decision boundary belongs to a component on each side.
    """

    label: int
    area: float
    num_regions: int
    regions: np.ndarray

    def __repr__(self) -> str:
        return f"DecisionRegion(label={self.label}, area={self.area:.6g}, num_regions={self.num_regions})"


def _check_kind(kind: Any) -> str:
    if not isinstance(kind, str) or kind not in GRAPH_KINDS:
        raise GraphKindError(f"kind must be one of {', '.join(repr(k) for k in GRAPH_KINDS)}, got {kind!r}")
    return kind


def _edge_boundary_flags(part: Any) -> np.ndarray:
    """Whether each planar edge lies (partly) on the decision boundary; all False without outputs."""
    flags = np.zeros(len(part.edges), dtype=bool)
    if part.num_outputs == 0:
        return flags
    from .boundary import _cells_for_part

    cells = _cells_for_part(part, boundary_only=True)
    diff = cells.p_cls[:, 0] != cells.p_cls[:, 1]
    flags[cells.p_edge[diff]] = True
    return flags


def _region_argmax(part: Any, centroids: np.ndarray) -> np.ndarray:
    if part.num_outputs == 0:
        return np.full(part.num_regions, -1, dtype=np.int64)
    a, b = part.output_affine
    f = np.einsum("roi,ri->ro", a, centroids) + b
    if f.shape[1] == 1:
        return (f[:, 0] > 0).astype(np.int64)
    return np.argmax(f, axis=1).astype(np.int64)


def graph_arrays(part: Any, kind: str = "planar") -> GraphArrays:
    """The planar graph or the region-adjacency graph of a partition as arrays.

    Parameters
    ----------
    part : Partition
    kind : {"planar", "regions"}

    Returns
    -------
    GraphArrays

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
    >>> part = sc.partition(net, sc.Slice.box())
    >>> ga = graph_arrays(part, "regions")
    >>> ga.num_nodes == part.num_regions, sorted(ga.edge_attrs)
    (True, ['boundary', 'id', 'layer', 'length', 'unit'])
    """
    kind = _check_kind(kind)
    verts = np.asarray(part.vertices, dtype=np.float64)
    edges = np.asarray(part.edges, dtype=np.int64).reshape(-1, 2)
    er = np.asarray(part.edge_regions, dtype=np.int64).reshape(-1, 2)
    d = verts[edges[:, 1]] - verts[edges[:, 0]]
    length = np.hypot(d[:, 0], d[:, 1])
    bflag = _edge_boundary_flags(part)
    layer = np.asarray(part.edge_layer, dtype=np.int64)
    unit = np.asarray(part.edge_unit, dtype=np.int64)
    gattrs: dict[str, Any] = {
        "kind": kind,
        "num_regions": int(part.num_regions),
        "num_outputs": int(part.num_outputs),
    }
    if kind == "planar":
        return GraphArrays(
            kind=kind,
            num_nodes=len(verts),
            edges=edges,
            node_attrs={"x": verts[:, 0].copy(), "y": verts[:, 1].copy()},
            edge_attrs={
                "layer": layer,
                "unit": unit,
                "border": (er < 0).any(1),
                "boundary": bflag,
                "left": er[:, 0].copy(),
                "right": er[:, 1].copy(),
                "length": length,
                "id": np.arange(len(edges), dtype=np.int64),
            },
            graph_attrs=gattrs,
        )
    inner = np.flatnonzero((er >= 0).all(1))
    cen = part.centroids()
    return GraphArrays(
        kind=kind,
        num_nodes=int(part.num_regions),
        edges=er[inner],
        node_attrs={
            "area": part.areas(),
            "cx": cen[:, 0].copy(),
            "cy": cen[:, 1].copy(),
            "centroid": cen,
            "argmax": _region_argmax(part, cen),
            "num_vertices": np.diff(np.asarray(part.region_ptr)).astype(np.int64),
        },
        edge_attrs={
            "layer": layer[inner],
            "unit": unit[inner],
            "boundary": bflag[inner],
            "length": length[inner],
            "id": inner.astype(np.int64),
        },
        graph_attrs=gattrs,
    )


def _py(a: np.ndarray) -> list:
    """Array to a list of Python scalars (tuples for rows of a 2-D array)."""
    if a.ndim == 2:
        return [tuple(r) for r in a.tolist()]
    return a.tolist()


def to_networkx(part: Any, kind: str = "planar") -> Any:
    """Export a graph of the partition to a :class:`networkx.Graph`.

    Parameters
    ----------
    part : Partition
    kind : {"planar", "regions"}
        See the module docstring for the nodes, edges and attributes of each.

    Returns
    -------
    networkx.Graph
        Node ``i`` is vertex (or region) ``i``; attributes as node/edge data, graph attributes
        (``kind``, ``num_regions``, ``num_outputs``) in ``G.graph``.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).eval()
    >>> part = sc.partition(net, sc.Slice.box())
    >>> G = to_networkx(part, "regions")
    >>> G.number_of_nodes() == part.num_regions
    True
    """
    import networkx as nx

    ga = graph_arrays(part, kind)
    g = nx.Graph(**ga.graph_attrs)
    names = list(ga.node_attrs)
    cols = [_py(ga.node_attrs[k]) for k in names]
    if ga.kind == "planar":
        names.append("pos")
        cols.append(list(zip(cols[0], cols[1])))
    g.add_nodes_from((i, dict(zip(names, row))) for i, row in enumerate(zip(*cols)))
    if ga.num_nodes and not names:  # pragma: no cover - every kind has node attributes
        g.add_nodes_from(range(ga.num_nodes))
    enames = list(ga.edge_attrs)
    ecols = [_py(ga.edge_attrs[k]) for k in enames]
    g.add_edges_from(
        (a, b, dict(zip(enames, row))) for (a, b), row in zip(ga.edges.tolist(), zip(*ecols))
    )
    return g


def to_igraph(part: Any, kind: str = "planar") -> Any:
    """Export a graph of the partition to an undirected :class:`igraph.Graph`.

    Parameters
    ----------
    part : Partition
    kind : {"planar", "regions"}

    Returns
    -------
    igraph.Graph
        Vertex ``i`` is vertex (or region) ``i`` and edge ``k`` is row ``k`` of the graph's edges;
        attributes in ``g.vs[name]``, ``g.es[name]`` and ``g[name]``.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).eval()
    >>> g = to_igraph(sc.partition(net, sc.Slice.box()), "planar")
    >>> g["kind"], "x" in g.vs.attributes()
    ('planar', True)
    """
    import igraph as ig

    ga = graph_arrays(part, kind)
    g = ig.Graph(n=ga.num_nodes, edges=ga.edges.tolist(), directed=False)
    for k, v in ga.node_attrs.items():
        g.vs[k] = _py(v)
    for k, v in ga.edge_attrs.items():
        g.es[k] = _py(v)
    for k, v in ga.graph_attrs.items():
        g[k] = v
    return g


def _gt_type(a: np.ndarray) -> str:
    if a.ndim == 2:
        return "vector<double>"
    if a.dtype == bool:
        return "bool"
    if np.issubdtype(a.dtype, np.integer):
        return "int64_t"
    return "double"


def to_graph_tool(part: Any, kind: str = "planar") -> Any:
    """Export a graph of the partition to an undirected ``graph_tool.Graph`` (optional dependency).

    graph-tool is not on PyPI; it is imported only here. Install it with
    ``conda install -c conda-forge graph-tool``, or on Debian/Ubuntu with
    ``apt-get install python3-graph-tool`` (system Python, or a venv made with
    ``/usr/bin/python3 -m venv --system-site-packages``).

    Parameters
    ----------
    part : Partition
    kind : {"planar", "regions"}

    Returns
    -------
    graph_tool.Graph
        Vertex ``i`` is vertex (or region) ``i``, edge ``k`` is row ``k`` of the graph's edges;
        attributes as property maps ``g.vp[name]``, ``g.ep[name]`` (``centroid`` is a
        ``vector<double>`` map), ``g.gp[name]``.

    Raises
    ------
    ImportError
        When graph-tool is not installed; the message says how to install it.

    Examples
    --------
    >>> import torch, splinecam as sc  # doctest: +SKIP
    >>> g = sc.partition(net, sc.Slice.box()).to_graph_tool("regions")  # doctest: +SKIP
    >>> g.vp["area"].a.sum()  # doctest: +SKIP
    4.0
    """
    kind = _check_kind(kind)
    try:
        import graph_tool as gt
    except ImportError as e:
        raise ImportError(GRAPH_TOOL_HELP) from e

    ga = graph_arrays(part, kind)
    g = gt.Graph(directed=False)
    if ga.num_nodes:
        g.add_vertex(ga.num_nodes)
    if len(ga.edges):
        g.add_edge_list(ga.edges)
    for k, v in ga.node_attrs.items():
        t = _gt_type(v)
        if v.ndim == 2:
            p = g.new_vertex_property(t)
            if ga.num_nodes:
                p.set_2d_array(np.ascontiguousarray(v.T))
        else:
            p = g.new_vertex_property(t, vals=v)
        g.vp[k] = p
    for k, v in ga.edge_attrs.items():
        g.ep[k] = g.new_edge_property(_gt_type(v), vals=v)
    for k, v in ga.graph_attrs.items():
        t = "string" if isinstance(v, str) else "int64_t"
        g.gp[k] = g.new_graph_property(t, v)
    return g


def decision_regions(part: Any) -> list[DecisionRegion]:
    """Connected components of the set where the network predicts each class.

    Computed exactly from the argmax cells of the regions (see :mod:`splinecam.boundary`): cells of
    the same class in neighbouring regions are joined when they share a piece of a region edge of
    positive length. With one output the classes are ``0`` (output ``<= 0``) and ``1`` (``> 0``).
    The areas of all components sum to the domain's area.

    Parameters
    ----------
    part : Partition

    Returns
    -------
    list of DecisionRegion
        Sorted by class, then by decreasing area.

    Raises
    ------
    splinecam.boundary.BoundaryError
        When the partition stores no outputs.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1)).eval()
    >>> with torch.no_grad():  # f = |x| - 0.5: class 1 on two sides of a stripe of class 0
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0, 0], [-1, 0]])); _ = net[0].bias.zero_()
    ...     _ = net[2].weight.fill_(1.0); _ = net[2].bias.fill_(-0.5)
    >>> [(d.label, round(d.area, 12)) for d in decision_regions(sc.partition(net, sc.Slice.box()))]
    [(0, 2.0), (1, 1.0), (1, 1.0)]
    """
    from .boundary import _cells_for_part, _components

    cells = _cells_for_part(part)
    n = len(cells.reg)
    same = cells.p_cls[:, 0] == cells.p_cls[:, 1]
    root = _components(n, cells.p_cell[same, 0], cells.p_cell[same, 1])
    _, comp = np.unique(root, return_inverse=True)
    comp = comp.reshape(-1)
    k = int(comp.max()) + 1 if n else 0
    area = np.bincount(comp, weights=cells.area, minlength=k)
    label = np.zeros(k, dtype=np.int64)
    label[comp] = cells.cls
    order = np.lexsort((cells.reg, comp))
    counts = np.bincount(comp, minlength=k)
    groups = np.split(cells.reg[order], np.cumsum(counts)[:-1]) if k else []
    out = [
        DecisionRegion(label=int(label[i]), area=float(area[i]), num_regions=len(groups[i]),
                       regions=groups[i].astype(np.int64))
        for i in range(k)
    ]
    out.sort(key=lambda d: (d.label, -d.area))
    return out
