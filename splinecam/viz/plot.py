"""Drawing partitions: regions, region borders by layer, decision boundaries, surfaces and images.

Everything is vectorized: the regions are one :class:`~matplotlib.collections.PolyCollection`
built from :meth:`Partition.padded_polygons`, the borders and the decision boundary are one
:class:`~matplotlib.collections.LineCollection` each, so 100,000 regions draw in seconds.

Conventions: ``ax=None`` draws on the current axes (``plt.gca()``), the artists are returned in a
:class:`PlotArtists`, ``plt.show()`` is never called, the aspect is equal and the limits are the
domain's bounding box, and colours are deterministic (the ``"random"`` palette is seeded).

matplotlib is imported lazily, inside the functions.

Examples
--------
>>> import matplotlib; matplotlib.use("Agg")
>>> import torch, splinecam as sc
>>> _ = torch.manual_seed(0)
>>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
>>> part = sc.partition(net, sc.Slice.box((-2, 2), (-2, 2)))
>>> art = part.plot(color_by="slope")
>>> len(art.regions.get_paths()) == part.num_regions
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ..analysis.stats import region_layers, slope_norms
from .graph_plot import plot_graphtool_graph, plot_networkx_graph  # noqa: F401 - the original's sc.plot names

__all__ = [
    "PlotArtists",
    "plot_partition",
    "slice_axis_labels",
    "area_limits",
    "outlines_visible",
    "class_palette",
    "MIN_OUTLINED_REGION_PX",
    "CLASS_TINT",
    "plot_regions",
    "plot_surface",
    "plot_image",
    "region_colors",
    "region_layers",
    "slope_norms",
    "COLOR_BY",
]

#: Accepted values of ``color_by`` (besides an array of per-region values or colours).
COLOR_BY = ("slope", "class", "area", "random", "layer")


@dataclass
class PlotArtists:
    """The matplotlib artists a plot function made (``None`` where not drawn).

    Also readable like a dict: ``art["regions"]``.

    Attributes
    ----------
    ax : matplotlib.axes.Axes
        The axes drawn on.
    regions : PolyCollection or None
        All regions, one path per region (``Poly3DCollection`` for :func:`plot_surface`).
    edges : LineCollection or None
        Region borders drawn separately (``edges_by_layer=True`` or ``max_layer=...``).
    boundary : LineCollection or None
        The decision boundary.
    colorbar : Colorbar or None
        The colorbar of a continuous colouring.
    data : PathCollection or None
        The scattered data points.
    anchors : PathCollection or None
        The slice's anchor points.
    image : AxesImage or None
        The image of :func:`plot_image`.
    legend : Legend or None
        The legend (``legend=True``).
    """

    ax: Any = None
    regions: Any = None
    edges: Any = None
    boundary: Any = None
    colorbar: Any = None
    data: Any = None
    anchors: Any = None
    image: Any = None
    legend: Any = None

    def __getitem__(self, key: str) -> Any:
        if key not in {f.name for f in fields(self)}:
            raise KeyError(key)
        return getattr(self, key)

    def keys(self) -> list[str]:
        return [f.name for f in fields(self)]


# --------------------------------------------------------------------------- per-region quantities
def _class_of_regions(part: Any) -> np.ndarray:
    """Predicted class of each region at its centroid (one output: ``f > 0``)."""
    a, b = part.output_affine
    c = part.centroids()
    f = np.einsum("roi,ri->ro", a, c) + b
    if f.shape[1] == 1:
        return (f[:, 0] > 0).astype(np.int64)
    return np.argmax(f, axis=1)


def _palette(n: int) -> np.ndarray:
    """``n`` distinct deterministic RGBA colours (tab10 / tab20, then a golden-ratio hue walk)."""
    import matplotlib as mpl

    n = max(int(n), 1)
    if n <= 10:
        return _rgba(np.asarray(mpl.colormaps["tab10"].colors)[:n])
    if n <= 20:
        return _rgba(np.asarray(mpl.colormaps["tab20"].colors)[:n])
    hues = (np.arange(n) * 0.618033988749895) % 1.0
    hsv = np.stack([hues, np.full(n, 0.65), np.full(n, 0.9)], 1)
    return _rgba(mpl.colors.hsv_to_rgb(hsv))


def _rgba(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.shape[1] == 4:
        return rgb
    return np.concatenate([rgb, np.ones((len(rgb), 1))], 1)


def region_colors(
    part: Any,
    color_by: Any = "slope",
    *,
    seed: int = 0,
    color_range: Sequence[float] = (0.3, 0.9),
    max_layer: int | None = None,
) -> tuple[np.ndarray, str]:
    """The colouring of each region: per-region values (continuous) or RGBA colours (discrete).

    Parameters
    ----------
    part : Partition
    color_by : str or array_like
        ``"slope"`` (Frobenius norm of ``A[r]``), ``"class"`` (argmax at the centroid; one output:
        ``f > 0``), ``"area"``, ``"random"`` (seeded palette, channels uniform in ``color_range``),
        ``"layer"`` (see :func:`region_layers`), an array ``(R,)`` of values, or ``(R, 3|4)`` colours.
    seed : int
        Seed of the ``"random"`` palette.
    color_range : (float, float)
        Range of the RGB channels of the ``"random"`` palette (as in the original toolbox).
    max_layer : int, optional
        With ``"random"``: one colour per region of the partition made by layers ``<= max_layer``
        (regions with equal codes up to that layer).

    Returns
    -------
    values : ndarray
        ``(R,)`` floats for a continuous colouring, ``(R, 4)`` RGBA for a discrete one.
    kind : str
        ``"continuous"`` or ``"rgba"``.
    """
    r = part.num_regions
    if not isinstance(color_by, str):
        arr = np.asarray(color_by, dtype=np.float64)
        if arr.shape == (r,):
            return arr, "continuous"
        if arr.ndim == 2 and arr.shape[0] == r and arr.shape[1] in (3, 4):
            return _rgba(arr), "rgba"
        raise ValueError(
            f"color_by as an array must have shape (R,) or (R, 3|4) with R = {r} regions, got {arr.shape}"
        )
    if color_by == "slope":
        return slope_norms(part), "continuous"
    if color_by == "area":
        return np.abs(part.areas()), "continuous"
    if color_by == "layer":
        return region_layers(part).astype(np.float64), "continuous"
    if color_by == "class":
        cls = _class_of_regions(part)
        n = max(int(part.num_outputs), 2)
        return class_palette(n, tint=True)[cls], "rgba"
    if color_by == "random":
        lo, hi = float(color_range[0]), float(color_range[1])
        groups = np.arange(r)
        if max_layer is not None and part.layer_names:
            codes = np.concatenate(
                [part._raw_codes(i).reshape(r, -1) for i in range(min(max_layer + 1, len(part.layer_names)))], 1
            )
            if codes.shape[1]:
                _, groups = np.unique(codes, axis=0, return_inverse=True)
                groups = groups.reshape(-1)
        ng = int(groups.max()) + 1 if r else 0
        rng = np.random.default_rng(seed)
        rgb = np.clip(rng.random((ng, 3)), lo, hi)
        return _rgba(rgb)[groups], "rgba"
    raise ValueError(
        f"color_by must be one of {COLOR_BY} or an array of per-region values or colours, got {color_by!r}"
    )


# --------------------------------------------------------------------------- helpers
def _get_ax(ax: Any) -> Any:
    import matplotlib.pyplot as plt

    return plt.gca() if ax is None else ax


def _domain_limits(part: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    dom = np.asarray(part.slice.domain)
    lo, hi = dom.min(0), dom.max(0)
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def _boundary_segments(db: Any) -> np.ndarray:
    seg = np.asarray(getattr(db, "segments", np.zeros((0, 2, 2))), dtype=np.float64)
    return seg.reshape(-1, 2, 2)


def _edge_segments(part: Any, mask: np.ndarray) -> np.ndarray:
    e = np.asarray(part.edges)[mask]
    v = np.asarray(part.vertices)
    return np.stack([v[e[:, 0]], v[e[:, 1]]], 1) if len(e) else np.zeros((0, 2, 2))


# --------------------------------------------------------------------------- main plot
def plot_partition(part: Any, ax: Any = None, *args: Any, **kwargs: Any) -> PlotArtists:
    """Draw a partition's regions, borders, decision boundary, data and anchors.

    Two call shapes, chosen by the type of the first argument:

    * ``plot_partition(part: Partition, ax=None, color_by="slope", boundary=True, **kw)``: the full
      plot (keywords below); this is what :meth:`Partition.plot` calls.
    * ``plot_partition(regions: list, ax=None, xlims=None, ylims=None, edgecolor='w', linewidth=0.3,
      alpha=1, colors=None, figsize=(10, 10), color_range=[.5, .9])``: the original SplineCam
      toolbox's call, for a list of ``(k, 2)`` polygons (closed or not, NumPy or torch); see
      :func:`plot_regions`.

    Parameters
    ----------
    part : Partition
        The partition to draw.
    ax : matplotlib.axes.Axes, optional
        Where to draw; the current axes if None.
    color_by : str or array_like, default "slope"
        Region colouring: ``"slope"`` (Frobenius norm of the output slope ``A[r]``, as in the
        original's training videos), ``"class"`` (argmax class at the centroid; one output:
        ``f > 0``; light tints of :func:`class_palette`, so that data points in the full colours
        stay visible), ``"area"`` (log scale with limits at the 2nd and 98th percentiles of the log
        areas, see :func:`area_limits`), ``"random"`` (seeded palette, the same every call),
        ``"layer"`` (the layer that created the region: the largest ``edge_layer`` of its edges), or
        an array of ``(R,)`` values / ``(R, 3|4)`` colours. See :func:`region_colors`.
    boundary : bool, default True
        Overlay the decision boundary (``part.decision_boundary(classes)``) as one LineCollection.
    classes, threshold : optional
        Passed to :meth:`Partition.decision_boundary` (a pair of classes; one output's threshold).
    edges_by_layer : bool, default False
        Draw the region borders as one LineCollection coloured by the layer that made them
        (instead of the polygons' outlines).
    max_layer : int, optional
        Per-layer view: draw only the cuts made by layers ``<= max_layer`` (implies separate
        border lines; with ``color_by="random"`` the regions of that coarser partition share a colour).
    edgecolor, linewidth : optional
        Colour (default ``"w"``) and width (default 0.3) of the region borders; ``linewidth=0`` hides them.
        When neither is given and the average region is less than :data:`MIN_OUTLINED_REGION_PX`
        (4) pixels across at the axes' size and the figure's DPI (typically some tens of thousands
        of regions), the outlines are dropped: they would cover the fills (:func:`outlines_visible`).
    alpha : float, optional
        Opacity of the regions.
    cmap : str or Colormap, optional
        Colormap of a continuous colouring (default ``"viridis"``; ``"tab10"`` for ``"layer"``).
    vmin, vmax : float, optional
        Fixed colour limits (keep them constant across the frames of a training video).
    colorbar : bool, default True
        Add a labelled colorbar for a continuous colouring (``"slope"``, ``"area"``, ``"layer"``,
        arrays); its ends show arrows where values lie beyond the colour limits.
    seed : int, default 0
        Seed of the ``"random"`` palette.
    color_range : (float, float), default (0.3, 0.9)
        RGB channel range of the ``"random"`` palette.
    boundary_color, boundary_width : optional
        Decision boundary style (default red, 2.0).
    data : array or (X, y), optional
        Input-space points (any input shape) projected with ``slice.to_slice`` and scattered with
        black edges, in the class colours of :func:`class_palette` for integer labels ``y`` (the
        same colours as the regions of ``color_by="class"``, which are lighter tints of them).
    data_size : float, default 14
        Marker area of the data points (points squared).
    anchors : bool, default True
        Mark the slice's anchors (:meth:`Slice.from_anchors`) when it has them.
    xlim, ylim : (float, float), optional
        Axis limits; the domain's bounding box by default.
    axis_labels : bool or (str, str), default True
        Label the axes (an axis that already has a label keeps it): ``$x_1$``, ``$x_2$`` when the
        slice coordinates are input coordinates (a :meth:`Slice.box` of a 2-D input model; see
        :attr:`Slice.input_axes`), else ``$u_1$``, ``$u_2$``; or the two labels given; False: none.
    legend : bool, default False
        Add a legend of what is drawn: the class colours of the regions (``color_by="class"``),
        the data points' classes, the decision boundary, the layers' border colours
        (``edges_by_layer=True``) and the anchors. A continuous colouring is explained by its
        colorbar instead.
    legend_kw : dict, optional
        Passed to :meth:`~matplotlib.axes.Axes.legend` (default ``loc="best"``, small font).
    class_names : sequence of str, optional
        Names of the classes in the legend (default ``"class 0"``, ``"class 1"``, ...).

    Returns
    -------
    PlotArtists
        ``regions`` (PolyCollection, one path per region), ``edges``, ``boundary``, ``colorbar``,
        ``data``, ``anchors``, ``legend``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt, torch, splinecam as sc
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).eval()
    >>> part = sc.partition(net, sc.Slice.box((-2, 2), (-2, 2)))
    >>> fig, ax = plt.subplots()
    >>> art = plot_partition(part, ax=ax, color_by="random", edges_by_layer=True, boundary=False)
    >>> len(art.regions.get_paths()) == part.num_regions
    True
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('$x_1$', '$x_2$')
    >>> art = plot_partition(part, ax=ax, color_by="class", legend=True)
    >>> [t.get_text() for t in art.legend.get_texts()][-1]
    'decision boundary (output = 0)'

    >>> plt.close(fig)
    """
    from ..result import Partition

    if isinstance(part, Partition):
        return _plot_partition(part, ax, *args, **kwargs)
    if isinstance(part, (list, tuple)) or (hasattr(part, "__len__") and not isinstance(part, str)):
        return plot_regions(part, ax, *args, **kwargs)
    raise TypeError(
        "plot_partition takes a splinecam.Partition or a list of (k, 2) polygons, "
        f"got {type(part).__name__}"
    )


def _plot_partition(
    part: Any,
    ax: Any = None,
    color_by: Any = "slope",
    boundary: bool = True,
    *,
    classes: Any = None,
    threshold: float = 0.0,
    edges_by_layer: bool = False,
    max_layer: int | None = None,
    edgecolor: Any = None,
    linewidth: float | None = None,
    alpha: float | None = None,
    cmap: Any = None,
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
    seed: int = 0,
    color_range: Sequence[float] = (0.3, 0.9),
    boundary_color: Any = "r",
    boundary_width: float = 2.0,
    data: Any = None,
    data_size: float = 14.0,
    anchors: bool = True,
    xlim: Sequence[float] | None = None,
    ylim: Sequence[float] | None = None,
    axis_labels: Any = True,
    legend: bool = False,
    legend_kw: dict[str, Any] | None = None,
    class_names: Sequence[str] | None = None,
) -> PlotArtists:
    import matplotlib as mpl
    from matplotlib.collections import LineCollection, PolyCollection

    ax = _get_ax(ax)
    art = PlotArtists(ax=ax)
    values, kind = region_colors(part, color_by, seed=seed, color_range=color_range, max_layer=max_layer)
    mode = color_by if isinstance(color_by, str) else "array"
    verts, _ = part.padded_polygons()
    separate_edges = edges_by_layer or max_layer is not None
    if linewidth is None and edgecolor is None and not separate_edges and not outlines_visible(part, ax):
        lw = 0.0  # the regions are too small for outlines: they would cover the fills
    else:
        lw = 0.3 if linewidth is None else float(linewidth)
    ec = "w" if edgecolor is None else edgecolor
    pc = PolyCollection(
        verts,
        closed=True,
        edgecolors="face" if separate_edges or lw == 0 else ec,
        linewidths=0.0 if separate_edges else lw,
        alpha=alpha,
        antialiaseds=not separate_edges and lw > 0,
    )
    del verts  # the collection holds its own copy; the decision boundary below needs the memory
    label = None
    extend = "neither"
    if kind == "continuous":
        if mode == "area":
            lo, hi = area_limits(values, vmin, vmax)
            norm: Any = mpl.colors.LogNorm(vmin=lo, vmax=hi)
            pos = values[values > 0]
            if len(pos):
                extend = {(False, False): "neither", (True, False): "min", (False, True): "max",
                          (True, True): "both"}[(bool(pos.min() < lo), bool(pos.max() > hi))]
            values = np.maximum(values, np.nextafter(0.0, 1.0))
            label = "region area (log scale)"
        elif mode == "layer":
            lo_l = -1 if len(values) and values.min() < 0 else 0
            hi_l = max(len(part.layer_names), 1) - 1
            bounds = np.arange(lo_l - 0.5, hi_l + 1.0, 1.0)
            norm = mpl.colors.BoundaryNorm(bounds, ncolors=len(bounds) - 1)
            pastel = _rgba(np.asarray(mpl.colormaps["Pastel1"].colors))
            fills = pastel[np.arange(hi_l + 1) % len(pastel)]
            if lo_l < 0:
                fills = np.concatenate([[[0.85, 0.85, 0.85, 1.0]], fills], 0)
            cmap = cmap or mpl.colors.ListedColormap(fills)
            layer_ticks = np.arange(lo_l, hi_l + 1)
            label = "layer that made the region" + (" (-1: none)" if lo_l < 0 else "")
        else:
            norm = mpl.colors.Normalize(vmin=vmin, vmax=vmax)
            if len(values):
                norm.autoscale_None(values)
            label = "slope norm $\\|A_r\\|_F$" if mode == "slope" else None
        pc.set_array(values)
        pc.set_cmap(cmap or "viridis")
        pc.set_norm(norm)
    else:
        pc.set_facecolor(values)
        if separate_edges or lw == 0:
            pc.set_edgecolor(values)
    ax.add_collection(pc)
    art.regions = pc
    if kind == "continuous" and colorbar:
        cb = ax.figure.colorbar(pc, ax=ax, extend=extend)
        if label:
            cb.set_label(label)
        if mode == "layer":
            cb.set_ticks(layer_ticks)
        art.colorbar = cb

    handles: list[Any] = []
    n_classes = max(int(part.num_outputs), 2)
    names = _class_names(class_names, n_classes)
    if mode == "class":
        from matplotlib.patches import Patch

        tints = class_palette(n_classes, tint=True)
        for c in np.unique(_class_of_regions(part)):
            handles.append(Patch(facecolor=tints[c], edgecolor="0.4", linewidth=0.5,
                                 label=f"regions of {names[c]}"))

    if separate_edges:
        from matplotlib.lines import Line2D

        el = np.asarray(part.edge_layer)
        mask = el >= 0
        if max_layer is not None:
            mask &= el <= max_layer
        segs = _edge_segments(part, mask)
        lwe = 0.6 if linewidth is None else float(linewidth)
        if edges_by_layer:
            nl = max(len(part.layer_names), 1)
            pal = _palette(nl)
            lc = LineCollection(segs, linewidths=lwe, cmap=mpl.colors.ListedColormap(pal))
            lc.set_array(el[mask].astype(np.float64))
            lc.set_norm(mpl.colors.BoundaryNorm(np.arange(-0.5, nl, 1.0), ncolors=nl))
            for li in np.unique(el[mask]):
                name = part.layer_names[li] if li < len(part.layer_names) else str(li)
                handles.append(Line2D([], [], color=pal[li], linewidth=1.5,
                                      label=f"borders made by layer {li} ({name})"))
        else:
            lc = LineCollection(segs, linewidths=lwe, colors=ec)
            handles.append(Line2D([], [], color=ec, linewidth=1.0, label="region borders"))
        ax.add_collection(lc)
        art.edges = lc

    if boundary:
        from matplotlib.lines import Line2D

        db = part.decision_boundary(classes=classes, threshold=threshold)
        segs = _boundary_segments(db)
        bl = LineCollection(segs, colors=boundary_color, linewidths=boundary_width, zorder=3)
        ax.add_collection(bl)
        art.boundary = bl
        if classes is not None:
            blabel = f"decision boundary {names[int(classes[0])]} | {names[int(classes[1])]}"
        elif int(part.num_outputs) == 1:
            blabel = f"decision boundary (output = {threshold:g})"
        else:
            blabel = "decision boundary"
        handles.append(Line2D([], [], color=boundary_color, linewidth=boundary_width, label=blabel))

    if data is not None:
        art.data = _scatter_data(part, ax, data, data_size, n_classes, names, handles)

    anc = getattr(part.slice, "anchors", None)
    if anchors and anc is not None and len(anc):
        from matplotlib.lines import Line2D

        anc = np.asarray(anc)
        art.anchors = ax.scatter(
            anc[:, 0], anc[:, 1], marker="*", s=160, c="gold", edgecolors="k", linewidths=0.8, zorder=5
        )
        handles.append(Line2D([], [], linestyle="", marker="*", markersize=12, markerfacecolor="gold",
                              markeredgecolor="k", label="anchors"))

    (x0, x1), (y0, y1) = _domain_limits(part)
    ax.set_xlim(*(xlim if xlim is not None else (x0, x1)))
    ax.set_ylim(*(ylim if ylim is not None else (y0, y1)))
    ax.set_aspect("equal")
    if axis_labels is not False and axis_labels is not None:
        labels = slice_axis_labels(part.slice) if axis_labels is True else tuple(axis_labels)
        if len(labels) != 2:
            raise ValueError(f"axis_labels must be True, False or two strings, got {axis_labels!r}")
        if not ax.get_xlabel():
            ax.set_xlabel(labels[0])
        if not ax.get_ylabel():
            ax.set_ylabel(labels[1])
    if legend and handles:
        kw = {"loc": "best", "fontsize": "small", "framealpha": 0.9}
        kw.update(legend_kw or {})
        art.legend = ax.legend(handles=handles, **kw)
    return art


def _class_names(class_names: Sequence[str] | None, n: int) -> list[str]:
    if class_names is None:
        return [f"class {c}" for c in range(n)]
    names = [str(c) for c in class_names]
    if len(names) < n:
        raise ValueError(f"class_names has {len(names)} names for {n} classes; give one name per class")
    return names


def _scatter_data(
    part: Any, ax: Any, data: Any, size: float, n_classes: int, names: list[str], handles: list[Any]
) -> Any:
    """Scatter input points (projected to the slice): saturated class colours with black edges,
    so that they stand out on the light tints of their own class's regions."""
    from matplotlib.lines import Line2D

    if isinstance(data, tuple) and len(data) == 2:
        x, y = data
    else:
        x, y = data, None
    u = part.slice.to_slice(_to_numpy(x)) if len(x) else np.zeros((0, 2))
    style = {"s": size, "edgecolors": "k", "linewidths": 0.6, "zorder": 4}
    if y is None or len(u) == 0:
        handles.append(Line2D([], [], linestyle="", marker="o", markerfacecolor="k", markeredgecolor="k",
                              markersize=5, label="data"))
        return ax.scatter(u[:, 0], u[:, 1], s=size, c="k", zorder=4)
    lab = _to_numpy(y).reshape(-1)
    if not (np.issubdtype(lab.dtype, np.integer) or np.all(lab == np.round(lab))):
        return ax.scatter(u[:, 0], u[:, 1], c=lab, **style)
    lab = lab.astype(np.int64)
    uniq, inv = np.unique(lab, return_inverse=True)
    if lab.min() >= 0:
        idx, n = lab, max(int(lab.max()) + 1, n_classes)
    else:
        idx, n = inv.reshape(-1), max(len(uniq), 2)
    cols = class_palette(n)
    for k in np.unique(idx):
        name = names[k] if lab.min() >= 0 and k < len(names) else f"class {uniq[k] if lab.min() < 0 else k}"
        handles.append(Line2D([], [], linestyle="", marker="o", markerfacecolor=cols[k], markeredgecolor="k",
                              markeredgewidth=0.6, markersize=5, label=f"data: {name}"))
    return ax.scatter(u[:, 0], u[:, 1], c=cols[idx], **style)


def slice_axis_labels(slc: Any) -> tuple[str, str]:
    """Axis labels of a slice's coordinates: ``x_i, x_j`` when ``u`` are input coordinates, else ``u_1, u_2``.

    See :attr:`Slice.input_axes`: a :meth:`Slice.box` of a model with 2-D input is labelled
    ``$x_1$``, ``$x_2$``; a general slice (``x = origin + basis @ u``) ``$u_1$``, ``$u_2$``.

    Examples
    --------
    >>> import numpy as np, splinecam as sc
    >>> slice_axis_labels(sc.Slice.box())
    ('$x_1$', '$x_2$')
    >>> slice_axis_labels(sc.Slice.from_anchors(np.zeros(5)))
    ('$u_1$', '$u_2$')
    """
    axes = getattr(slc, "input_axes", None)
    if axes is None:
        return "$u_1$", "$u_2$"
    shape = tuple(getattr(slc, "input_shape", ()))
    if len(shape) <= 1:
        return tuple(f"$x_{i + 1}$" if i < 9 else f"$x_{{{i + 1}}}$" for i in axes)  # type: ignore[return-value]
    return tuple(  # type: ignore[return-value]
        "$x_{" + ",".join(str(int(k)) for k in np.unravel_index(i, shape)) + "}$" for i in axes
    )


def area_limits(
    areas: Any, vmin: float | None = None, vmax: float | None = None, quantiles: Sequence[float] = (0.02, 0.98)
) -> tuple[float, float]:
    """Colour limits of the ``color_by="area"`` log scale: quantiles of the log areas.

    The 2nd and 98th percentiles of ``log(area)`` over the regions of positive area, so that a few
    slivers (areas of 1e-14 next to regions of 1) do not squeeze every other region into one
    colour; regions outside the limits take the end colours (the colorbar shows arrows).

    Parameters
    ----------
    areas : array_like
        Region areas.
    vmin, vmax : float, optional
        Fixed limits (each replaces its quantile).
    quantiles : (float, float)
        The quantiles of the log areas used as limits.

    Returns
    -------
    (float, float)
        ``lo < hi``, both positive.

    Examples
    --------
    >>> import numpy as np
    >>> area_limits(np.r_[1e-14, np.full(50, 1.0), np.full(50, 2.0)])  # one sliver: ignored
    (1.0, 2.0)
    """
    a = np.asarray(areas, dtype=np.float64).ravel()
    pos = a[np.isfinite(a) & (a > 0)]
    if len(pos):
        qlo, qhi = np.exp(np.quantile(np.log(pos), [float(quantiles[0]), float(quantiles[1])]))
    else:
        qlo, qhi = 1e-12, 1.0
    lo = float(qlo) if vmin is None else float(vmin)
    hi = float(qhi) if vmax is None else float(vmax)
    if not lo > 0:
        raise ValueError(f"the area colour scale is logarithmic: vmin must be positive, got {vmin}")
    return lo, max(hi, lo * (1 + 1e-12))


#: Outlines are dropped when the average region is fewer pixels across than this.
MIN_OUTLINED_REGION_PX = 4.0


def outlines_visible(part: Any, ax: Any) -> bool:
    """Whether default region outlines leave the fills visible on ``ax``.

    False when the average region (the domain's area over the region count) is less than
    :data:`MIN_OUTLINED_REGION_PX` pixels across at the axes' size and the figure's DPI: then the
    0.3-point outlines of neighbouring regions would cover most of the fills, so
    :func:`plot_partition` draws the regions without outlines (an explicit ``linewidth`` or
    ``edgecolor`` is always honoured).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from matplotlib.figure import Figure
    >>> import torch, splinecam as sc
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).eval()
    >>> part = sc.partition(net, sc.Slice.box())
    >>> outlines_visible(part, Figure(figsize=(4, 4), dpi=100).add_subplot())
    True
    """
    r = int(part.num_regions)
    if r <= 1:
        return True
    try:
        bbox = ax.get_window_extent()
        w_px, h_px = float(bbox.width), float(bbox.height)
    except Exception:  # noqa: BLE001 - an axes we cannot measure: keep the outlines
        return True
    (x0, x1), (y0, y1) = _domain_limits(part)
    if not (w_px > 0 and h_px > 0 and x1 > x0 and y1 > y0):
        return True
    px_per_unit = min(w_px / (x1 - x0), h_px / (y1 - y0))  # equal aspect
    dom = np.asarray(part.slice.domain)
    x, y = dom[:, 0], dom[:, 1]
    area = 0.5 * abs(float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)))
    mean_px = np.sqrt(area / r) * px_per_unit
    return bool(mean_px >= MIN_OUTLINED_REGION_PX)


def class_palette(n: int, tint: bool = False) -> np.ndarray:
    """The ``(n, 4)`` RGBA class colours of the plots; ``tint=True``: the lighter region fills.

    Data points of class ``c`` are drawn in ``class_palette(n)[c]`` (with black edges) over
    regions of that class filled with ``class_palette(n, tint=True)[c]``, so points stay visible
    on their own regions.

    Examples
    --------
    >>> p, t = class_palette(2), class_palette(2, tint=True)
    >>> bool((t[:, :3] >= p[:, :3]).all() and (t[:, :3].sum(1) > p[:, :3].sum(1)).all())
    True
    """
    pal = _palette(n)
    if tint:
        pal = pal.copy()
        pal[:, :3] = pal[:, :3] + CLASS_TINT * (1.0 - pal[:, :3])
    return pal


#: How much white is mixed into the class colours of the regions (``color_by="class"``).
CLASS_TINT = 0.55


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


# --------------------------------------------------------------------------- original toolbox call
def plot_regions(
    regions: Any,
    ax: Any = None,
    xlims: Sequence[float] | None = None,
    ylims: Sequence[float] | None = None,
    edgecolor: Any = "w",
    linewidth: float = 0.3,
    alpha: float = 1,
    colors: Sequence[Any] | None = None,
    figsize: tuple[float, float] = (10, 10),
    color_range: Sequence[float] = (0.5, 0.9),
    seed: int = 0,
) -> PlotArtists:
    """The original SplineCam ``plot_partition``: draw a list of polygons with random colours.

    Parameters
    ----------
    regions : list of (k, 2) arrays
        Polygons (NumPy arrays or torch tensors), closed (last vertex repeats the first) or not.
    ax : matplotlib.axes.Axes, optional
        Where to draw; if None, a new figure of size ``figsize`` is made (as the original did).
    xlims, ylims : (float, float), optional
        Axis limits (0-d tensors are fine); the polygons' bounding box if None.
    edgecolor, linewidth, alpha :
        Polygon style.
    colors : list of colours, optional
        Palette to draw from (one random pick per region); otherwise random RGB colours with every
        channel in ``color_range``.
    figsize : (float, float)
        Size of the figure made when ``ax`` is None.
    color_range : (float, float)
        Channel range of the random colours.
    seed : int
        Seed of the random colours (deterministic, unlike the original).

    Returns
    -------
    PlotArtists
        ``regions`` is the PolyCollection (one path per polygon).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np, matplotlib.pyplot as plt
    >>> sq = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], dtype=float)
    >>> art = plot_regions([sq, sq + [1, 0]], xlims=[0, 2], ylims=[0, 1])
    >>> len(art.regions.get_paths())
    2
    >>> plt.close("all")
    """
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    if ax is None:
        _, ax = plt.subplots(1, figsize=figsize)
    polys = []
    for p in regions:
        q = _to_numpy(p).astype(np.float64).reshape(-1, 2)
        if len(q) > 1 and np.array_equal(q[0], q[-1]):
            q = q[:-1]
        polys.append(q)
    n = len(polys)
    rng = np.random.default_rng(seed)
    if colors is None:
        face = _rgba(np.clip(rng.random((n, 3)), float(color_range[0]), float(color_range[1])))
    else:
        pal = np.asarray([mcolors.to_rgba(c) for c in colors])
        face = pal[rng.integers(0, len(pal), n)]
    pc = PolyCollection(polys, closed=True, facecolors=face, edgecolors=edgecolor, linewidths=linewidth, alpha=alpha)
    ax.add_collection(pc)
    ax.set_xticks([])
    ax.set_yticks([])
    if xlims is None or ylims is None:
        if n:
            allv = np.concatenate(polys, 0)
            lo, hi = allv.min(0), allv.max(0)
            if xlims is None:
                xlims = (lo[0], hi[0])
            if ylims is None:
                ylims = (lo[1], hi[1])
    if xlims is not None:
        ax.set_xlim(float(xlims[0]), float(xlims[1]))
    if ylims is not None:
        ax.set_ylim(float(ylims[0]), float(ylims[1]))
    ax.set_aspect("equal")
    return PlotArtists(ax=ax, regions=pc)


# --------------------------------------------------------------------------- surface and image views
def _output_index(part: Any, output: int) -> int:
    n = int(part.num_outputs)
    o = int(output)
    if not -n <= o < n:
        raise ValueError(f"output={output} is out of range: the network has {n} outputs")
    return o % n


def plot_surface(
    part: Any,
    output: int = 0,
    ax: Any = None,
    *,
    cmap: Any = "viridis",
    color_by: str = "height",
    edgecolor: Any = "k",
    linewidth: float = 0.1,
    alpha: float | None = None,
    colorbar: bool = False,
) -> PlotArtists:
    """3-D view of one scalar output over the slice: the exact piecewise-planar graph.

    Each region polygon is lifted to ``z = A[r, output] @ u + b[r, output]`` and all are drawn as one
    :class:`~mpl_toolkits.mplot3d.art3d.Poly3DCollection`.

    Parameters
    ----------
    part : Partition
    output : int
        Which output (index into the flattened output).
    ax : Axes3D, optional
        A 3-D axes. If None: the current axes when it is 3-D, else a 3-D axes added to the current
        figure when it is empty, else to a new figure.
    cmap : str or Colormap
        Colormap of the facets.
    color_by : {"height", "slope"}
        Facet colour: the mean height of the facet, or the norm of its gradient ``|A[r, output]|``.
    edgecolor, linewidth, alpha :
        Facet style.
    colorbar : bool
        Add a colorbar.

    Returns
    -------
    PlotArtists
        ``regions`` is the Poly3DCollection (one polygon per region).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt, torch, splinecam as sc
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
    >>> part = sc.partition(net, sc.Slice.box())
    >>> fig = plt.figure()
    >>> art = plot_surface(part, ax=fig.add_subplot(projection="3d"))
    >>> plt.close(fig)
    """
    import matplotlib as mpl
    import matplotlib.pyplot as plt
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    o = _output_index(part, output)
    if ax is None:
        fig = plt.gcf()
        cur = fig.axes[-1] if fig.axes else None
        if cur is not None and getattr(cur, "name", "") == "3d" and plt.gca().name == "3d":
            ax = plt.gca()
        else:
            if fig.axes:
                fig = plt.figure()
            ax = fig.add_subplot(projection="3d")
    elif getattr(ax, "name", "") != "3d":
        raise ValueError(
            "plot_surface needs a 3-D axes: pass ax=fig.add_subplot(projection='3d') (or ax=None)"
        )
    a, b = part.output_affine
    verts, nv = part.padded_polygons()
    z = np.einsum("rki,ri->rk", verts, a[:, o, :]) + b[:, o][:, None]
    v3 = np.concatenate([verts, z[..., None]], -1)
    if color_by == "slope":
        values = np.hypot(a[:, o, 0], a[:, o, 1])
    elif color_by == "height":
        mask = np.arange(verts.shape[1])[None] < nv[:, None]
        values = (z * mask).sum(1) / np.maximum(nv, 1)
    else:
        raise ValueError(f"color_by must be 'height' or 'slope', got {color_by!r}")
    norm = mpl.colors.Normalize()
    if len(values):
        norm.autoscale(values)
    cm = mpl.colormaps[cmap] if isinstance(cmap, str) else cmap
    faces = cm(norm(values))
    pc = Poly3DCollection(list(v3), facecolors=faces, edgecolors=edgecolor, linewidths=linewidth, alpha=alpha)
    ax.add_collection3d(pc)
    (x0, x1), (y0, y1) = _domain_limits(part)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    if len(z):
        zlo, zhi = float(z.min()), float(z.max())
        pad = 1e-9 + 0.02 * (zhi - zlo)
        ax.set_zlim(zlo - pad, zhi + pad)
    ax.set_xlabel("$u_1$")
    ax.set_ylabel("$u_2$")
    ax.set_zlabel(f"output {o}")
    art = PlotArtists(ax=ax, regions=pc)
    if colorbar:
        sm = mpl.cm.ScalarMappable(norm=norm, cmap=cm)
        sm.set_array(values)
        art.colorbar = ax.figure.colorbar(sm, ax=ax, shrink=0.7)
    return art


def plot_image(
    part: Any,
    output: Any = 0,
    ax: Any = None,
    resolution: Any = 256,
    *,
    cmap: Any = "gray",
    vmin: float | None = None,
    vmax: float | None = None,
    edges: bool = False,
    edgecolor: Any = "r",
    linewidth: float = 0.3,
    colorbar: bool = False,
    interpolation: str = "nearest",
) -> PlotArtists:
    """Image view of an output over the slice, e.g. an implicit neural representation (INR).

    Pixel centres on a regular grid over the domain's bounding box are located in the partition
    (:meth:`Partition.locate`) and evaluated with their region's exact affine map; pixels outside
    the domain are transparent (NaN).

    Parameters
    ----------
    part : Partition
    output : int or sequence of 3 ints
        One output (a grey-scale / colormapped image) or three outputs read as RGB (clipped to [0, 1]).
    ax : Axes, optional
        Where to draw; the current axes if None.
    resolution : int or (int, int)
        Pixels along ``u_1`` and ``u_2`` (one int: both).
    cmap, vmin, vmax, interpolation :
        Passed to :meth:`~matplotlib.axes.Axes.imshow` (single output).
    edges : bool
        Overlay the region borders (one LineCollection).
    edgecolor, linewidth :
        Style of the overlaid borders.
    colorbar : bool
        Add a colorbar (single output).

    Returns
    -------
    PlotArtists
        ``image`` is the AxesImage (its array is ``(ny, nx)`` or ``(ny, nx, 3)``); ``edges``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt, torch, splinecam as sc
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
    >>> part = sc.partition(net, sc.Slice.box())
    >>> fig, ax = plt.subplots()
    >>> plot_image(part, ax=ax, resolution=32).image.get_array().shape
    (32, 32)
    >>> plt.close(fig)
    """
    from matplotlib.collections import LineCollection

    ax = _get_ax(ax)
    if np.ndim(output) == 0:
        outs = [_output_index(part, int(output))]
    else:
        outs = [_output_index(part, int(o)) for o in output]
        if len(outs) != 3:
            raise ValueError(f"output must be one index or three (RGB), got {len(outs)}")
    if np.ndim(resolution) == 0:
        nx = ny = int(resolution)
    else:
        nx, ny = (int(r) for r in resolution)
    if nx < 1 or ny < 1:
        raise ValueError(f"resolution must be positive, got {resolution}")
    (x0, x1), (y0, y1) = _domain_limits(part)
    xs = x0 + (np.arange(nx) + 0.5) * (x1 - x0) / nx
    ys = y0 + (np.arange(ny) + 0.5) * (y1 - y0) / ny
    gx, gy = np.meshgrid(xs, ys)
    u = np.stack([gx.ravel(), gy.ravel()], 1)
    reg = part.locate(u)
    a, b = part.output_affine
    ok = reg >= 0
    val = np.full((len(u), len(outs)), np.nan)
    r = reg[ok]
    for j, o in enumerate(outs):
        val[ok, j] = np.einsum("ni,ni->n", a[r, o, :], u[ok]) + b[r, o]
    art = PlotArtists(ax=ax)
    extent = (x0, x1, y0, y1)
    if len(outs) == 1:
        img = val[:, 0].reshape(ny, nx)
        art.image = ax.imshow(
            np.ma.masked_invalid(img), origin="lower", extent=extent, cmap=cmap, vmin=vmin, vmax=vmax,
            interpolation=interpolation,
        )
        if colorbar:
            art.colorbar = ax.figure.colorbar(art.image, ax=ax)
    else:
        rgb = np.clip(val.reshape(ny, nx, 3), 0.0, 1.0)
        alpha = np.where(np.isnan(rgb).any(-1), 0.0, 1.0)[..., None]
        art.image = ax.imshow(
            np.concatenate([np.nan_to_num(rgb), alpha], -1), origin="lower", extent=extent,
            interpolation=interpolation,
        )
    if edges:
        lc = LineCollection(
            _edge_segments(part, np.asarray(part.edge_layer) >= 0), colors=edgecolor, linewidths=linewidth
        )
        ax.add_collection(lc)
        art.edges = lc
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    return art
