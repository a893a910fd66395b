"""Drawing graphs of a partition: the original toolbox's ``plot_networkx_graph`` and
``plot_graphtool_graph`` (reachable as ``sc.plot.plot_networkx_graph`` and
``sc.plot.plot_graphtool_graph``).

Node positions come from the graph itself: the original's ``v`` node attribute (a tensor or array
per node), or what :meth:`splinecam.Partition.to_networkx` / ``to_graph_tool`` store (``pos``, or
``x`` and ``y`` for the planar graph; ``cx`` and ``cy`` or ``centroid`` for the region graph).
networkx and matplotlib are imported lazily; graph-tool (not on PyPI) only by
:func:`plot_graphtool_graph`, with an install hint when it is missing. ``plt.show()`` is never
called.

Examples
--------
>>> import matplotlib; matplotlib.use("Agg")
>>> import torch, splinecam as sc
>>> net = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2)).eval()
>>> G = sc.partition(net, sc.Slice.box()).to_networkx("planar")
>>> art = plot_networkx_graph(G)
>>> len(art.nodes.get_offsets()) == G.number_of_nodes()
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["GraphArtists", "plot_networkx_graph", "plot_graphtool_graph", "node_positions"]

# draw node labels by default only for graphs this small (the original always did; it is slow)
_LABELS_UP_TO = 500


@dataclass
class GraphArtists:
    """The matplotlib artists a graph plot made (``None`` where not drawn).

    Attributes
    ----------
    ax : matplotlib.axes.Axes
    nodes : PathCollection or None
    edges : LineCollection or None
    labels : dict of Text or None
    graph : Any
        graph-tool's artist (:func:`plot_graphtool_graph` into matplotlib axes).
    """

    ax: Any = None
    nodes: Any = None
    edges: Any = None
    labels: Any = None
    graph: Any = None


def _as_xy(v: Any) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.asarray(v, dtype=np.float64).reshape(-1)[:2]


def node_positions(G: Any) -> dict[Any, np.ndarray]:
    """``{node: (x, y)}`` of a networkx graph, from its ``v``, ``pos``, ``x``/``y`` or ``cx``/``cy``
    node attributes (the first that every node has).

    Examples
    --------
    >>> import networkx as nx
    >>> G = nx.Graph(); G.add_node(0, x=1.0, y=2.0)
    >>> node_positions(G)[0].tolist()
    [1.0, 2.0]
    """
    nodes = list(G.nodes)
    data = G.nodes
    for key in ("v", "pos", "centroid"):
        if nodes and all(key in data[n] for n in nodes):
            return {n: _as_xy(data[n][key]) for n in nodes}
    for kx, ky in (("x", "y"), ("cx", "cy")):
        if nodes and all(kx in data[n] and ky in data[n] for n in nodes):
            return {n: np.array([float(data[n][kx]), float(data[n][ky])]) for n in nodes}
    if not nodes:
        return {}
    raise ValueError(
        "cannot place the graph's nodes: give pos={node: (x, y)}, or node attributes 'v' (the original "
        "toolbox's), 'pos', 'x' and 'y', or 'cx' and 'cy' (as Partition.to_networkx() stores them)"
    )


def plot_networkx_graph(
    G: Any,
    ax: Any = None,
    pos: dict[Any, Any] | None = None,
    *,
    with_labels: bool | None = None,
    node_size: float = 1,
    font_size: float = 5,
    edge_color: Any = "k",
    node_color: Any = "C0",
    width: float = 0.5,
) -> GraphArtists:
    """Draw a networkx graph at its nodes' positions (the original's ``plot_networkx_graph(G)``).

    Parameters
    ----------
    G : networkx.Graph
        E.g. ``part.to_networkx("planar")`` (nodes at the partition's vertices) or
        ``part.to_networkx("regions")`` (nodes at the regions' centroids), or a graph of the original
        toolbox with a ``v`` tensor per node.
    ax : matplotlib.axes.Axes, optional
        Where to draw; the current axes if None.
    pos : dict, optional
        ``{node: (x, y)}``; from the node attributes by default (:func:`node_positions`).
    with_labels : bool, optional
        Draw node ids (the original did); by default only for graphs of at most 500 nodes.
    node_size, font_size, edge_color, node_color, width :
        Styles (the original's ``node_size=1, font_size=5``).

    Returns
    -------
    GraphArtists
        ``nodes`` (PathCollection), ``edges`` (LineCollection), ``labels`` (dict of Text or None).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import networkx as nx, matplotlib.pyplot as plt
    >>> G = nx.path_graph(3)
    >>> fig, ax = plt.subplots()
    >>> art = plot_networkx_graph(G, ax=ax, pos={0: (0, 0), 1: (1, 0), 2: (1, 1)})
    >>> len(art.edges.get_segments()), sorted(art.labels)
    (2, [0, 1, 2])
    >>> plt.close(fig)
    """
    import matplotlib.pyplot as plt
    import networkx as nx

    ax = plt.gca() if ax is None else ax
    p = node_positions(G) if pos is None else {n: _as_xy(v) for n, v in pos.items()}
    art = GraphArtists(ax=ax)
    art.nodes = nx.draw_networkx_nodes(G, pos=p, ax=ax, node_size=node_size, node_color=node_color)
    if G.number_of_edges():
        art.edges = nx.draw_networkx_edges(G, pos=p, ax=ax, edge_color=edge_color, width=width)
    show = G.number_of_nodes() <= _LABELS_UP_TO if with_labels is None else bool(with_labels)
    if show:
        art.labels = nx.draw_networkx_labels(G, pos=p, ax=ax, font_size=font_size)
    ax.set_aspect("equal")
    return art


def _graph_tool_draw() -> Any:
    try:
        import graph_tool  # noqa: F401
    except ImportError as exc:
        from ..analysis.graph import GRAPH_TOOL_HELP

        raise ImportError(f"plot_graphtool_graph needs graph-tool. {GRAPH_TOOL_HELP}") from exc
    try:
        from graph_tool import draw
    except ImportError as exc:
        raise ImportError(
            "graph-tool is installed but its drawing module does not import (it needs pycairo and "
            f"cairo: `conda install -c conda-forge pycairo`, or `apt-get install python3-cairo`): {exc}"
        ) from exc
    return draw


def _graph_tool_positions(g: Any) -> Any:
    vp = g.vp
    for key in ("v", "pos", "centroid"):
        if key in vp:
            return vp[key]
    for kx, ky in (("x", "y"), ("cx", "cy")):
        if kx in vp and ky in vp:
            pos = g.new_vertex_property("vector<double>")
            pos.set_2d_array(np.vstack([vp[kx].a, vp[ky].a]).astype(np.float64))
            return pos
    raise ValueError(
        "cannot place the graph's vertices: give pos=, or vertex properties 'v' (the original "
        "toolbox's), 'pos', 'x' and 'y', or 'cx' and 'cy' (as Partition.to_graph_tool() stores them)"
    )


def plot_graphtool_graph(
    G: Any, ax: Any = None, pos: Any = None, *, output: str | None = None, **kwargs: Any
) -> GraphArtists:
    """Draw a graph-tool graph at its vertices' positions (the original's ``plot_graphtool_graph(G)``).

    graph-tool is imported here (it is not on PyPI; the error says how to install it). The original
    called ``graph_draw(G, pos=G.vp['v'])``, which opens a window; this draws into matplotlib axes
    (graph-tool's ``mplfig``), or into the file ``output``.

    Parameters
    ----------
    G : graph_tool.Graph
        E.g. ``part.to_graph_tool("planar")``, or a graph of the original toolbox.
    ax : matplotlib.axes.Axes, optional
        Where to draw (when no ``output``); the current axes if None.
    pos : graph_tool VertexPropertyMap, optional
        Vertex positions; by default the vertex property ``v``, ``pos``, ``centroid``, or made from
        ``x`` and ``y`` (``cx`` and ``cy``).
    output : str, optional
        A file (``.png``, ``.pdf``, ``.svg``) to draw into with graph-tool's cairo backend instead.
    **kwargs :
        Passed to ``graph_tool.draw.graph_draw``.

    Returns
    -------
    GraphArtists
        ``graph``: what ``graph_draw`` returned (a matplotlib artist when drawing into ``ax``).

    Raises
    ------
    ImportError
        graph-tool (or its cairo drawing) is not installed; the message says how to install it.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
    >>> g = sc.partition(net, sc.Slice.box()).to_graph_tool()   # doctest: +SKIP
    >>> plot_graphtool_graph(g, output="planar.png")             # doctest: +SKIP
    """
    draw = _graph_tool_draw()
    p = _graph_tool_positions(G) if pos is None else pos
    if output is not None:
        return GraphArtists(graph=draw.graph_draw(G, pos=p, output=str(output), **kwargs))
    import matplotlib.pyplot as plt

    ax = plt.gca() if ax is None else ax
    res = draw.graph_draw(G, pos=p, mplfig=ax, **kwargs)
    ax.set_aspect("equal")
    return GraphArtists(ax=ax, graph=res)
