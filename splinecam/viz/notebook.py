"""Rich display in notebooks: a :class:`~splinecam.Partition` or a decision boundary shows a picture.

Jupyter calls ``_repr_mimebundle_`` of the last value of a cell; :class:`~splinecam.Partition` and
:class:`~splinecam.analysis.boundary.DecisionBoundary` answer with a small PNG (``image/png``), an HTML
summary table next to the same PNG (``text/html``) and their ``repr`` (``text/plain``), drawn once.
The figures are plain :class:`matplotlib.figure.Figure` objects on the Agg canvas: nothing is added
to pyplot's figures and no backend is switched.

Examples
--------
>>> import torch, splinecam as sc
>>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
>>> part = sc.partition(net, sc.Slice.box())
>>> png = partition_png(part)
>>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
>>> f"<td>{part.num_regions:,}</td>" in partition_html(part)
True
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

__all__ = [
    "partition_png",
    "partition_html",
    "boundary_png",
    "boundary_html",
    "mimebundle",
    "FIGSIZE",
    "DPI",
    "MAX_BOUNDARY_REGIONS",
]

#: Size (inches) and resolution of the notebook pictures: about 320 x 270 pixels.
FIGSIZE = (4.4, 3.8)
DPI = 72
#: Above this many regions the notebook picture of a partition leaves out the decision boundary
#: (computing it would take longer than drawing the regions).
MAX_BOUNDARY_REGIONS = 200_000


def _figure(figsize: tuple[float, float] = FIGSIZE, dpi: float = DPI) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    fig.clear()
    return buf.getvalue()


def partition_png(part: Any, figsize: tuple[float, float] = FIGSIZE, dpi: float = DPI) -> bytes:
    """A small PNG of a partition: regions coloured by slope norm, the decision boundary, labelled axes.

    Parameters
    ----------
    part : Partition
    figsize : (float, float)
        Figure size in inches.
    dpi : float
        Resolution.

    Returns
    -------
    bytes
        The PNG file's bytes.

    Examples
    --------
    >>> import io, torch, splinecam as sc
    >>> from PIL import Image
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
    >>> Image.open(io.BytesIO(partition_png(sc.partition(net, sc.Slice.box())))).size
    (316, 273)
    """
    from .plot import plot_partition

    fig = _figure(figsize, dpi)
    ax = fig.add_subplot()
    boundary = int(part.num_regions) <= MAX_BOUNDARY_REGIONS
    plot_partition(part, ax=ax, color_by="slope", boundary=boundary)
    title = f"{part.num_regions:,} linear regions"
    if boundary:
        title += "; red: " + ("output = 0" if int(part.num_outputs) == 1 else "decision boundary")
    ax.set_title(title, fontsize=9)
    return _png(fig)


def boundary_png(db: Any, figsize: tuple[float, float] = FIGSIZE, dpi: float = DPI) -> bytes:
    """A small PNG of a decision boundary or level set: its polylines over the slice's domain.

    Each pair of classes it separates gets its own colour (and a legend entry when there are
    several); closed loops and open curves are drawn alike.

    Parameters
    ----------
    db : DecisionBoundary
    figsize : (float, float)
        Figure size in inches.
    dpi : float
        Resolution.

    Returns
    -------
    bytes
        The PNG file's bytes.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
    >>> boundary_png(sc.partition(net, sc.Slice.box()).decision_boundary())[:4]
    b'\\x89PNG'
    """
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Polygon

    from .plot import _palette, slice_axis_labels

    fig = _figure(figsize, dpi)
    ax = fig.add_subplot()
    slc = getattr(db, "slice", None)
    seg = np.asarray(db.segments, dtype=np.float64).reshape(-1, 2, 2)
    if slc is not None:
        dom = np.asarray(slc.domain)
        ax.add_patch(Polygon(dom, closed=True, facecolor="0.96", edgecolor="0.3", linewidth=0.8))
        pts = dom
    else:
        pts = seg.reshape(-1, 2)
    pairs, inv = (np.unique(db.classes, axis=0, return_inverse=True) if len(seg) else (np.zeros((0, 2)), None))
    pal = _palette(max(len(pairs), 1))
    handles = []
    if len(seg):
        inv = np.asarray(inv).reshape(-1)
        ax.add_collection(LineCollection(seg, colors=pal[inv], linewidths=2.0))
        if db.kind == "argmax":
            handles = [Line2D([], [], color=pal[i], linewidth=2.0, label=f"classes {a} | {b}")
                       for i, (a, b) in enumerate(pairs[:8])]
    if len(pts):
        lo, hi = pts.min(0), pts.max(0)
        pad = 0.02 * float(np.max(hi - lo) or 1.0)
        ax.set_xlim(lo[0] - pad, hi[0] + pad)
        ax.set_ylim(lo[1] - pad, hi[1] + pad)
    ax.set_aspect("equal")
    xl, yl = slice_axis_labels(slc) if slc is not None else ("$u_1$", "$u_2$")
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    what = "level set" if db.kind == "level_set" else "decision boundary"
    npl = db.num_polylines
    ax.set_title(f"{what}: length {db.length:.4g}, {npl} polyline{'s' if npl != 1 else ''}", fontsize=9)
    if len(handles) > 1:
        ax.legend(handles=handles, fontsize="x-small", loc="best", framealpha=0.9)
    return _png(fig)


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(
        f'<tr><th style="text-align:left;padding-right:1em">{html.escape(k)}</th><td>{html.escape(v)}</td></tr>'
        for k, v in rows
    )
    return f'<table style="border-collapse:collapse;font-size:90%">{body}</table>'


def _page(title: str, rows: list[tuple[str, str]], png: bytes | None) -> str:
    img = ""
    if png is not None:
        b64 = base64.b64encode(png).decode("ascii")
        img = f'<img src="data:image/png;base64,{b64}" alt="{html.escape(title)}" style="max-width:100%">'
    return (
        '<div style="display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start">'
        f'<div><b>{html.escape(title)}</b>{_table(rows)}</div><div>{img}</div></div>'
    )


def _slice_rows(slc: Any) -> list[tuple[str, str]]:
    if slc is None:
        return []
    lo, hi = slc.domain.min(0), slc.domain.max(0)
    axes = getattr(slc, "input_axes", None)
    if axes is not None:
        kind = f"input coordinates x_{axes[0] + 1}, x_{axes[1] + 1}"
    else:
        kind = "affine slice x = origin + basis @ u" + (" through anchors" if slc.anchors is not None else "")
    return [
        ("input shape", str(tuple(slc.input_shape))),
        ("slice", kind),
        ("domain", f"{len(slc.domain)}-gon in [{lo[0]:.3g}, {hi[0]:.3g}] x [{lo[1]:.3g}, {hi[1]:.3g}]"),
    ]


def partition_html(part: Any, png: bytes | None = None) -> str:
    """An HTML summary of a partition: a table of its sizes next to its picture.

    Parameters
    ----------
    part : Partition
    png : bytes, optional
        The picture (:func:`partition_png`); drawn here when None.

    Returns
    -------
    str
        An HTML fragment (the PNG is embedded as a data URI).

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
    >>> "data:image/png;base64," in partition_html(sc.partition(net, sc.Slice.box()))
    True
    """
    if png is None:
        png = partition_png(part)
    areas = np.abs(part.areas())
    rows = [
        ("regions", f"{part.num_regions:,}"),
        ("vertices", f"{part.num_vertices:,}"),
        ("edges", f"{part.num_edges:,}"),
        ("nonlinearities", f"{len(part.layer_names)}"),
        ("outputs", f"{part.num_outputs}"),
        ("region area", f"median {np.median(areas):.3g}, min {areas.min():.3g}" if len(areas) else "-"),
        *_slice_rows(part.slice),
        ("computed in", f"{part.seconds:.3g} s"),
    ]
    return _page("splinecam.Partition", rows, png)


def boundary_html(db: Any, png: bytes | None = None) -> str:
    """An HTML summary of a decision boundary or level set: a table next to its picture.

    Parameters
    ----------
    db : DecisionBoundary
    png : bytes, optional
        The picture (:func:`boundary_png`); drawn here when None.

    Returns
    -------
    str
        An HTML fragment.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
    >>> "<th" in boundary_html(sc.partition(net, sc.Slice.box()).decision_boundary())
    True
    """
    if png is None:
        png = boundary_png(db)
    rows = [
        ("kind", str(db.kind)),
        ("length", f"{db.length:.6g}"),
        ("segments", f"{db.num_segments:,}"),
        ("polylines", f"{db.num_polylines:,} ({int(np.sum(db.closed))} closed)"),
        ("components", f"{db.num_components}"),
    ]
    if db.kind == "argmax" and len(db.classes):
        pairs = np.unique(db.classes, axis=0)
        shown = ", ".join(f"{a}|{b}" for a, b in pairs[:8]) + (", ..." if len(pairs) > 8 else "")
        rows.append(("class pairs", shown))
    rows += _slice_rows(getattr(db, "slice", None))
    return _page("splinecam.DecisionBoundary", rows, png)


def mimebundle(obj: Any, include: Any = None, exclude: Any = None) -> dict[str, Any]:
    """The notebook display of a Partition or DecisionBoundary: PNG, HTML and text, drawn once.

    Returns only the text when matplotlib is not installed. ``include`` / ``exclude`` are the
    mimetypes IPython asks for or not.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
    >>> sorted(mimebundle(sc.partition(net, sc.Slice.box())))
    ['image/png', 'text/html', 'text/plain']
    """
    want = {"image/png", "text/html"}
    if include:
        want &= set(include)
    if exclude:
        want -= set(exclude)
    out: dict[str, Any] = {"text/plain": repr(obj)}
    if not want:
        return out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return out
    is_partition = hasattr(obj, "region_ptr")
    png = partition_png(obj) if is_partition else boundary_png(obj)
    if "image/png" in want:
        out["image/png"] = png
    if "text/html" in want:
        out["text/html"] = partition_html(obj, png) if is_partition else boundary_html(obj, png)
    return out
