"""Plots: artists and their data (no image baselines)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import time  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402
from torch import nn  # noqa: E402

import splinecam as sc  # noqa: E402
import splinecam.plot as scp  # noqa: E402


# ----------------------------------------------------------------------------- helpers
def _mlp(seed: int, widths: tuple[int, ...] = (2, 12, 12, 3)) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers).eval()


def grid_partition(nx: int, ny: int, h: float = 1.0, out: int = 1, seed: int = 0) -> sc.Partition:
    """A synthetic partition: an ``nx x ny`` grid of ``h``-squares from the origin.

    Horizontal cuts are layer 0 ("rows"), vertical cuts layer 1 ("cols"); random affine maps.
    """
    r = nx * ny

    def vid(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return j * (nx + 1) + i

    def cell(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return j * nx + i

    gx, gy = np.meshgrid(h * np.arange(nx + 1), h * np.arange(ny + 1))
    vertices = np.stack([gx.ravel(), gy.ravel()], 1)
    ci, cj = (a.ravel() for a in np.meshgrid(np.arange(nx), np.arange(ny)))
    rv = np.stack([vid(ci, cj), vid(ci + 1, cj), vid(ci + 1, cj + 1), vid(ci, cj + 1)], 1).ravel()
    hi, hj = (a.ravel() for a in np.meshgrid(np.arange(nx), np.arange(ny + 1)))
    h_e = np.stack([vid(hi, hj), vid(hi + 1, hj)], 1)
    h_r = np.stack([np.where(hj < ny, cell(hi, hj), -1), np.where(hj > 0, cell(hi, hj - 1), -1)], 1)
    h_l = np.where((hj == 0) | (hj == ny), -1, 0)
    vi, vj = (a.ravel() for a in np.meshgrid(np.arange(nx + 1), np.arange(ny)))
    v_e = np.stack([vid(vi, vj), vid(vi, vj + 1)], 1)
    v_r = np.stack([np.where(vi > 0, cell(vi - 1, vj), -1), np.where(vi < nx, cell(vi, vj), -1)], 1)
    v_l = np.where((vi == 0) | (vi == nx), -1, 1)
    edges = np.concatenate([h_e, v_e])
    er = np.concatenate([h_r, v_r])
    flip = er[:, 0] < 0
    edges[flip] = edges[flip][:, ::-1]
    er[flip] = er[flip][:, ::-1]
    el = np.concatenate([h_l, v_l])
    eu = np.where(el < 0, -1, np.concatenate([hj - 1, vi - 1]))
    rng = np.random.default_rng(seed)
    codes = [
        (cj[:, None] > np.arange(ny - 1)[None]).astype(np.int8),
        (ci[:, None] > np.arange(nx - 1)[None]).astype(np.int8),
    ]
    return sc.Partition(
        slice=sc.Slice.box((0, nx * h), (0, ny * h)),
        vertices=vertices,
        region_ptr=np.arange(r + 1) * 4,
        region_vertices=rv,
        edges=edges,
        edge_regions=er,
        edge_layer=el,
        edge_unit=eu,
        output_affine=(rng.standard_normal((r, out, 2)), rng.standard_normal((r, out))),
        codes=codes,
        layer_names=["rows", "cols"],
    )


@pytest.fixture(scope="module")
def part() -> sc.Partition:
    return sc.partition(_mlp(0), sc.Slice.box((-2, 2), (-2, 2)))


@pytest.fixture(scope="module")
def part1() -> sc.Partition:
    """One output (binary classifier)."""
    return sc.partition(_mlp(1, (2, 10, 10, 1)), sc.Slice.box((-2, 2), (-2, 2)))


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


@pytest.fixture(autouse=True)
def _no_show(monkeypatch):
    def boom(*a, **k):  # pragma: no cover - only runs on a bug
        raise AssertionError("plt.show() must never be called")

    monkeypatch.setattr(plt, "show", boom)
    yield
    plt.close("all")


# ----------------------------------------------------------------------------- colourings
@pytest.mark.parametrize("color_by", ["slope", "area", "layer"])
def test_continuous_colourings(part, ax, color_by):
    art = scp.plot_partition(part, ax=ax, color_by=color_by, boundary=False)
    pc = art.regions
    assert isinstance(pc, PolyCollection)
    assert len(pc.get_paths()) == part.num_regions
    assert len(pc.get_array()) == part.num_regions
    assert art.colorbar is not None
    assert art["regions"] is pc and art.boundary is None and art.edges is None
    if color_by == "slope":
        expect = np.linalg.norm(part.output_affine[0].reshape(part.num_regions, -1), axis=1)
        np.testing.assert_allclose(pc.get_array(), expect)
    if color_by == "layer":
        np.testing.assert_array_equal(pc.get_array(), scp.region_layers(part))
    if color_by == "area":
        # log scale: the norm is logarithmic and spans the region areas
        assert isinstance(pc.norm, matplotlib.colors.LogNorm)
        areas = np.abs(part.areas())
        np.testing.assert_allclose(pc.get_array(), areas)
        # limits from the 2nd and 98th percentiles of the log areas, not the extremes
        lq = np.quantile(np.log(areas[areas > 0]), [0.02, 0.98])
        assert np.log(pc.norm.vmin) == pytest.approx(lq[0]) and np.log(pc.norm.vmax) == pytest.approx(lq[1])
        assert isinstance(art.colorbar.norm, matplotlib.colors.LogNorm)


def test_default_colouring_is_slope(part, ax):
    art = part.plot(ax=ax)
    np.testing.assert_allclose(art.regions.get_array(), scp.slope_norms(part))
    assert art.colorbar is not None and isinstance(art.boundary, LineCollection)


@pytest.mark.parametrize("color_by", ["class", "random"])
def test_discrete_colourings(part, ax, color_by):
    art = scp.plot_partition(part, ax=ax, color_by=color_by, boundary=False)
    fc = art.regions.get_facecolor()
    assert fc.shape == (part.num_regions, 4)
    assert art.colorbar is None
    if color_by == "class":
        a, b = part.output_affine
        cls = np.argmax(np.einsum("roi,ri->ro", a, part.centroids()) + b, 1)
        # same class <=> same colour
        _, inv = np.unique(fc, axis=0, return_inverse=True)
        assert len(np.unique(inv)) == len(np.unique(cls))
        for c in np.unique(cls):
            assert len(np.unique(inv.reshape(-1)[cls == c])) == 1


def test_class_colouring_one_output(part1, ax):
    art = scp.plot_partition(part1, ax=ax, color_by="class", boundary=False)
    a, b = part1.output_affine
    pos = (np.einsum("ri,ri->r", a[:, 0], part1.centroids()) + b[:, 0]) > 0
    fc = art.regions.get_facecolor()
    assert len({tuple(c) for c in fc[pos]}) <= 1 and len({tuple(c) for c in fc[~pos]}) <= 1
    if pos.any() and (~pos).any():
        assert not np.allclose(fc[pos][0], fc[~pos][0])


def test_random_colours_are_deterministic(part):
    f1, a1 = plt.subplots()
    f2, a2 = plt.subplots()
    c1 = scp.plot_partition(part, ax=a1, color_by="random", boundary=False).regions.get_facecolor()
    c2 = part.plot(ax=a2, color_by="random", boundary=False).regions.get_facecolor()
    np.testing.assert_array_equal(c1, c2)
    assert len(np.unique(c1, axis=0)) > part.num_regions // 2
    c3 = scp.plot_partition(part, ax=a2, color_by="random", seed=1, boundary=False).regions.get_facecolor()
    assert not np.array_equal(c1, c3)
    plt.close(f1)
    plt.close(f2)


def test_color_by_array_and_errors(part, ax):
    vals = np.arange(part.num_regions, dtype=float)
    art = scp.plot_partition(part, ax=ax, color_by=vals, boundary=False)
    np.testing.assert_array_equal(art.regions.get_array(), vals)
    rgb = np.tile([0.1, 0.2, 0.3], (part.num_regions, 1))
    art = scp.plot_partition(part, ax=ax, color_by=rgb, boundary=False)
    np.testing.assert_allclose(art.regions.get_facecolor()[:, :3], rgb)
    with pytest.raises(ValueError, match="color_by"):
        scp.plot_partition(part, ax=ax, color_by="nope")
    with pytest.raises(ValueError, match="shape"):
        scp.plot_partition(part, ax=ax, color_by=np.zeros(3), boundary=False)


def test_region_layers_grid():
    g = grid_partition(3, 2)
    lay = scp.region_layers(g)
    # every cell touches a vertical cut (layer 1) since nx = 3 > 1
    np.testing.assert_array_equal(lay, np.ones(6))
    g1 = grid_partition(1, 3)  # only horizontal cuts
    np.testing.assert_array_equal(scp.region_layers(g1), np.zeros(3))
    g0 = grid_partition(1, 1)
    np.testing.assert_array_equal(scp.region_layers(g0), [-1])


# ----------------------------------------------------------------------------- edges, boundary, data
def test_edges_by_layer_and_max_layer(part, ax):
    el = part.edge_layer
    art = scp.plot_partition(part, ax=ax, edges_by_layer=True, boundary=False)
    assert isinstance(art.edges, LineCollection)
    assert len(art.edges.get_segments()) == int((el >= 0).sum())
    np.testing.assert_array_equal(art.edges.get_array(), el[el >= 0])
    art0 = scp.plot_partition(part, ax=ax, color_by="random", max_layer=0, boundary=False)
    assert len(art0.edges.get_segments()) == int((el == 0).sum())
    # segments are the partition's edges
    v = part.vertices
    seg = np.asarray(art0.edges.get_segments())
    e = part.edges[el == 0]
    np.testing.assert_allclose(seg, np.stack([v[e[:, 0]], v[e[:, 1]]], 1))
    # per-layer view: regions with equal layer-0 codes share a colour
    fc = art0.regions.get_facecolor()
    _, grp = np.unique(part.codes[0], axis=0, return_inverse=True)
    for gi in np.unique(grp)[:10]:
        assert len(np.unique(fc[grp.reshape(-1) == gi], axis=0)) == 1


def test_boundary_overlay(part, part1, ax):
    for p in (part, part1):
        art = scp.plot_partition(p, ax=ax)
        db = p.decision_boundary()
        assert isinstance(art.boundary, LineCollection)
        assert len(art.boundary.get_segments()) == len(np.asarray(db.segments))
        if len(db.segments):
            np.testing.assert_allclose(np.asarray(art.boundary.get_segments()), np.asarray(db.segments))
    assert len(part.decision_boundary().segments) > 0 and len(part1.decision_boundary().segments) > 0


def test_data_and_anchors(ax):
    net = _mlp(1, (5, 8, 2))
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    sl = sc.Slice.from_anchors(x, pad=1.0, seed=0)
    p = sc.partition(net, sl)
    X = torch.randn(20, 5, generator=torch.Generator().manual_seed(1))
    y = torch.arange(20) % 2
    art = p.plot(ax=ax, data=(X, y))
    np.testing.assert_allclose(art.data.get_offsets(), sl.to_slice(X.numpy()))
    assert len(art.data.get_facecolors()) == 20
    np.testing.assert_allclose(art.anchors.get_offsets(), sl.anchors)
    art2 = p.plot(ax=ax, data=X.numpy(), anchors=False)
    assert art2.anchors is None and len(art2.data.get_offsets()) == 20


def test_axes_conventions(part):
    plt.figure()
    cur = plt.gca()
    art = scp.plot_partition(part, boundary=False, xlim=None)
    assert art.ax is cur
    assert cur.get_aspect() == 1.0
    dom = part.slice.domain
    assert cur.get_xlim() == (dom[:, 0].min(), dom[:, 0].max())
    assert cur.get_ylim() == (dom[:, 1].min(), dom[:, 1].max())
    assert set(art.keys()) >= {"regions", "edges", "boundary", "colorbar", "data", "anchors"}
    with pytest.raises(KeyError):
        art["nope"]


def test_partition_plot_delegates_and_png(part, tmp_path):
    fig, ax = plt.subplots()
    art = part.plot(ax=ax, color_by="slope", boundary=True, edges_by_layer=True)
    assert len(art.regions.get_paths()) == part.num_regions
    path = tmp_path / "part.png"
    fig.savefig(path, dpi=60)
    assert path.stat().st_size > 1000
    img = plt.imread(path)
    assert img.ndim == 3 and img[..., :3].std() > 0.05


# ----------------------------------------------------------------------------- original call shape
def test_original_call_shape(part):
    regions = [torch.from_numpy(np.vstack([p, p[:1]])) for p in part.polygons()]  # closed tensors
    allv = torch.vstack(regions)
    lo, _ = allv.min(0)
    hi, _ = allv.max(0)
    art = scp.plot_partition(
        regions, xlims=[lo[0], hi[0]], ylims=[lo[1], hi[1]], alpha=0.3, edgecolor="#a70000",
        color_range=[0.3, 0.8], linewidth=0.5,
        colors=["#469597", "#5BA199", "#BBC6C8", "#E5E3E4", "#DDBEAA"],
    )
    assert len(art.regions.get_paths()) == part.num_regions
    assert art.ax.get_xlim() == (float(lo[0]), float(hi[0]))
    assert tuple(art.ax.figure.get_size_inches()) == (10.0, 10.0)
    # closing vertices are dropped: the paths have the polygon's vertices (+ CLOSEPOLY)
    assert len(art.regions.get_paths()[0].vertices) == len(regions[0])
    fig, ax = plt.subplots()
    art2 = scp.plot_partition(part.polygons(), ax, None, None, "w", 0.3, 1, None, (5, 5), [0.5, 0.9])
    fc = art2.regions.get_facecolor()[:, :3]
    assert art2.ax is ax and fc.min() >= 0.5 and fc.max() <= 0.9
    with pytest.raises(TypeError):
        scp.plot_partition(3.0)


# ----------------------------------------------------------------------------- surface and image
def test_plot_surface(part, monkeypatch):
    from mpl_toolkits.mplot3d import art3d

    made = []

    class Spy(art3d.Poly3DCollection):
        def __init__(self, verts, *args, **kwargs):
            made.append([np.asarray(v, dtype=float) for v in verts])
            super().__init__(verts, *args, **kwargs)

    monkeypatch.setattr(art3d, "Poly3DCollection", Spy)
    fig = plt.figure()
    ax = fig.add_subplot(projection="3d")
    art = scp.plot_surface(part, output=1, ax=ax)
    assert isinstance(art.regions, Spy) and len(made) == 1 and len(made[0]) == part.num_regions
    # exact and piecewise planar: each facet is its region's polygon lifted to the network's output,
    # checked against the real model at the vertices (where the piecewise-affine output is continuous)
    net = _mlp(0).double()
    for facet, poly in zip(made[0], part.polygons()):
        np.testing.assert_allclose(facet[: len(poly), :2], poly)
        with torch.no_grad():
            ref = net(torch.as_tensor(poly)).numpy()[:, 1]
        np.testing.assert_allclose(facet[: len(poly), 2], ref, rtol=1e-9, atol=1e-9)
    assert len(art.regions.get_facecolor()) == part.num_regions
    poly, _ = part.padded_polygons()
    a, b = part.output_affine
    z = np.einsum("rki,ri->rk", poly, a[:, 1]) + b[:, 1][:, None]
    lo, hi = ax.get_zlim()
    assert lo <= z.min() and hi >= z.max() and hi - lo < 1.1 * (z.max() - z.min()) + 1e-6
    with pytest.raises(ValueError, match="3-D"):
        scp.plot_surface(part, ax=fig.add_subplot(2, 2, 1))
    with pytest.raises(ValueError, match="out of range"):
        scp.plot_surface(part, output=7, ax=ax)
    plt.figure()
    art2 = scp.plot_surface(part)  # empty current figure: a 3-D axes is added
    assert art2.ax.name == "3d"


def test_plot_image_matches_affine_maps(part, ax):
    art = scp.plot_image(part, output=2, ax=ax, resolution=(24, 16), edges=True)
    img = np.asarray(art.image.get_array())
    assert img.shape == (16, 24)
    xs = -2 + (np.arange(24) + 0.5) * 4 / 24
    ys = -2 + (np.arange(16) + 0.5) * 4 / 16
    gx, gy = np.meshgrid(xs, ys)
    u = np.stack([gx.ravel(), gy.ravel()], 1)
    net = _mlp(0)
    with torch.no_grad():
        ref = net.double()(torch.as_tensor(u)).numpy()[:, 2].reshape(16, 24)
    np.testing.assert_allclose(img, ref, rtol=1e-9, atol=1e-9)
    assert len(art.edges.get_segments()) == int((part.edge_layer >= 0).sum())
    rgb = scp.plot_image(part, output=[0, 1, 2], ax=ax, resolution=8)
    assert np.asarray(rgb.image.get_array()).shape == (8, 8, 4)


def test_plot_image_outside_domain_is_masked(ax):
    net = _mlp(2, (2, 6, 1))
    tri = sc.Slice(origin=np.zeros(2), basis=np.eye(2), domain=[[0, 0], [1, 0], [0, 1]])
    p = sc.partition(net, tri)
    img = scp.plot_image(p, ax=ax, resolution=10).image.get_array()
    mask = np.ma.getmaskarray(img)
    assert mask.any() and not mask.all()
    assert mask[-1, -1] and not mask[0, 0]


# ----------------------------------------------------------------------------- scale
def test_hundred_thousand_regions_plot_fast(tmp_path):
    g = grid_partition(320, 320, h=0.01)
    assert g.num_regions == 102_400
    fig, ax = plt.subplots(figsize=(4, 4))
    t0 = time.perf_counter()
    art = g.plot(ax=ax, color_by="slope", boundary=False, edges_by_layer=True)
    fig.savefig(tmp_path / "big.png", dpi=40)
    dt = time.perf_counter() - t0
    assert len(art.regions.get_paths()) == g.num_regions
    assert len(art.edges.get_segments()) == int((g.edge_layer >= 0).sum())
    assert dt < 30, f"plotting 100k regions took {dt:.1f} s"
    # the original toolbox's call on the same 100k polygons (closed, as get_partitions_with_db returns them)
    squares, _ = g.padded_polygons()
    polys = np.concatenate([squares, squares[:, :1]], 1)
    fig2, ax2 = plt.subplots(figsize=(4, 4))
    t0 = time.perf_counter()
    art2 = scp.plot_partition(list(polys), ax2)
    fig2.savefig(tmp_path / "big_original.png", dpi=40)
    dt2 = time.perf_counter() - t0
    assert len(art2.regions.get_paths()) == g.num_regions
    assert dt2 < 30, f"plot_partition(list of 100k polygons) took {dt2:.1f} s"


# ----------------------------------------------------------------------------- pictures that explain themselves
def test_slice_input_axes():
    assert sc.Slice.box().input_axes == (0, 1)
    dom = sc.Slice.box().domain
    assert sc.Slice(origin=[0.0, 0.0, 0.7], basis=np.eye(3)[:, :2], domain=dom).input_axes == (0, 1)
    assert sc.Slice(origin=[0.3, 0.0, 0.0], basis=np.eye(3)[:, [2, 1]], domain=dom).input_axes == (2, 1)
    # not input coordinates: shifted along an axis of the slice, scaled, rotated, or a random slice
    assert sc.Slice(origin=[0.5, 0.0], basis=np.eye(2), domain=dom).input_axes is None
    assert sc.Slice(origin=np.zeros(2), basis=2 * np.eye(2), domain=dom).input_axes is None
    c, s = np.cos(0.3), np.sin(0.3)
    assert sc.Slice(origin=np.zeros(2), basis=[[c, -s], [s, c]], domain=dom).input_axes is None
    assert sc.Slice.from_anchors(np.zeros(5), seed=0).input_axes is None


def test_axis_labels_by_default(part, ax):
    part.plot(ax=ax, boundary=False)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("$x_1$", "$x_2$")
    net = _mlp(1, (5, 8, 2))
    p = sc.partition(net, sc.Slice.from_anchors(np.zeros(5), pad=1.0, seed=0))
    f, a = plt.subplots()
    p.plot(ax=a, boundary=False)
    assert (a.get_xlabel(), a.get_ylabel()) == ("$u_1$", "$u_2$")
    # an axis-aligned slice of a 3-D input names its input coordinates
    net3 = _mlp(2, (3, 6, 1))
    p3 = sc.partition(net3, sc.Slice(origin=[0.0, 0.2, 0.0], basis=np.eye(3)[:, [0, 2]], domain=sc.Slice.box().domain))
    f3, a3 = plt.subplots()
    p3.plot(ax=a3, boundary=False)
    assert (a3.get_xlabel(), a3.get_ylabel()) == ("$x_1$", "$x_3$")
    # explicit labels, none, and labels the user set before are kept
    f4, a4 = plt.subplots(1, 3)
    part.plot(ax=a4[0], boundary=False, axis_labels=("width", "height"))
    assert (a4[0].get_xlabel(), a4[0].get_ylabel()) == ("width", "height")
    part.plot(ax=a4[1], boundary=False, axis_labels=False)
    assert (a4[1].get_xlabel(), a4[1].get_ylabel()) == ("", "")
    a4[2].set_xlabel("mine")
    part.plot(ax=a4[2], boundary=False)
    assert (a4[2].get_xlabel(), a4[2].get_ylabel()) == ("mine", "$x_2$")
    with pytest.raises(ValueError, match="axis_labels"):
        part.plot(ax=a4[2], boundary=False, axis_labels=("one",))
    for fig in (f, f3, f4):
        plt.close(fig)


def _legend_entries(art):
    leg = art.legend
    assert leg is not None
    return {t.get_text(): h for t, h in zip(leg.get_texts(), leg.legend_handles)}


def test_legend_classes_data_boundary(part, ax):
    X = torch.randn(60, 2, generator=torch.Generator().manual_seed(0))
    y = torch.arange(60) % 3
    art = part.plot(ax=ax, color_by="class", data=(X, y), legend=True)
    ent = _legend_entries(art)
    cls = scp._class_of_regions(part)
    fc = art.regions.get_facecolor()
    for c in np.unique(cls):
        # the legend's patch has the colour of the regions of that class
        np.testing.assert_allclose(ent[f"regions of class {c}"].get_facecolor(), fc[cls == c][0])
    data_fc = art.data.get_facecolors()
    for c in range(3):
        np.testing.assert_allclose(
            matplotlib.colors.to_rgba(ent[f"data: class {c}"].get_markerfacecolor()), data_fc[y.numpy() == c][0]
        )
    assert ent["decision boundary"].get_color() == "r"
    assert art.legend is ax.get_legend()
    # names, and nothing when legend=False
    art2 = part.plot(ax=ax, color_by="class", data=(X, y), legend=True, class_names=["cat", "dog", "emu"])
    assert {"regions of dog", "data: emu"} <= set(_legend_entries(art2))
    with pytest.raises(ValueError, match="class_names"):
        part.plot(ax=ax, color_by="class", legend=True, class_names=["cat"])
    assert part.plot(ax=ax).legend is None


def test_legend_layers_and_anchors(ax):
    net = _mlp(3, (4, 8, 8, 2))
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    p = sc.partition(net, sc.Slice.from_anchors(x, pad=1.0, seed=0))
    art = p.plot(ax=ax, color_by="random", edges_by_layer=True, legend=True)
    ent = _legend_entries(art)
    layers = np.unique(p.edge_layer[p.edge_layer >= 0])
    assert len(layers) == 2
    # each layer's legend line has the colour its borders are drawn in
    colours = art.edges.to_rgba(art.edges.get_array())
    segs_layer = p.edge_layer[p.edge_layer >= 0]
    for li in layers:
        h = ent[f"borders made by layer {li} ({p.layer_names[li]})"]
        np.testing.assert_allclose(matplotlib.colors.to_rgba(h.get_color()), colours[segs_layer == li][0])
    assert "anchors" in ent and "decision boundary" in ent
    # one output: the boundary is named with its threshold
    p1 = sc.partition(_mlp(1, (2, 10, 10, 1)), sc.Slice.box((-2, 2), (-2, 2)))
    assert "decision boundary (output = 0.5)" in _legend_entries(p1.plot(ax=ax, threshold=0.5, legend=True))


def _luminance(rgba: np.ndarray) -> np.ndarray:
    rgba = np.atleast_2d(rgba)
    return rgba[:, :3] @ np.array([0.2126, 0.7152, 0.0722])


def test_class_data_points_stand_out_on_their_regions(ax):
    """Points of class c on regions of class c: different colours, darker, with black edges (checked
    in the rendered pixels too)."""
    from splinecam.datasets import two_moons
    from splinecam.training import mlp, train_classifier

    X, y = two_moons(200, seed=0)
    model, acc = train_classifier(mlp(width=12, depth=2, out_dim=2, seed=0), X, y, steps=200)
    assert acc > 0.8
    p = sc.partition(model, sc.Slice.box((-2, 3), (-1.5, 2)))
    fig = ax.figure
    fig.set_size_inches(6, 5)
    art = p.plot(ax=ax, color_by="class", data=(X, y), boundary=False, data_size=30)
    reg = p.locate(X)
    fc_reg = art.regions.get_facecolor()[reg]
    fc_pts = art.data.get_facecolors()
    assert np.all(np.abs(fc_reg - fc_pts)[:, :3].max(1) > 0.25)
    assert np.all(_luminance(fc_pts) < _luminance(fc_reg) - 0.15)
    np.testing.assert_allclose(art.data.get_edgecolors()[:, :3], 0.0)
    # in the picture: the pixel at a point's centre is its colour, not its region's
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba(), dtype=np.float64)[..., :3] / 255
    xy = ax.transData.transform(np.asarray(X, dtype=np.float64))
    h = img.shape[0]
    own = [np.abs(img[int(h - yy), int(xx)] - fc_pts[i, :3]).max() < 0.12 for i, (xx, yy) in enumerate(xy)]
    assert np.mean(own) > 0.8  # points covered by other points excepted


def test_area_colour_limits_ignore_slivers(ax):
    g = grid_partition(10, 10, h=0.1)
    areas = np.full(g.num_regions, 0.01)
    areas[0] = 2.6e-14  # one sliver, as in a real partition
    lo, hi = scp.area_limits(areas)
    assert lo == pytest.approx(0.01) and hi == pytest.approx(0.01 * (1 + 1e-12))
    spread = np.logspace(-6, 0, 1001)
    lo, hi = scp.area_limits(spread)
    assert lo == pytest.approx(10 ** (-6 + 0.02 * 6)) and hi == pytest.approx(10 ** (-6 + 0.98 * 6))
    assert scp.area_limits(spread, vmin=1e-9, vmax=2.0) == (1e-9, 2.0)
    with pytest.raises(ValueError, match="positive"):
        scp.area_limits(spread, vmin=0.0)
    # on a real partition: limits are the log-area percentiles, the colorbar shows the clipped ends
    p = sc.partition(_mlp(0), sc.Slice.box((-2, 2), (-2, 2)))
    art = p.plot(ax=ax, color_by="area", boundary=False)
    a = np.abs(p.areas())
    assert art.regions.norm.vmin > a.min() and art.regions.norm.vmax < a.max()
    assert art.colorbar.extend == "both"
    # many regions get distinct colours (the old min/max scale gave nearly all one colour)
    cols = art.regions.to_rgba(art.regions.get_array())
    assert len(np.unique(np.round(cols, 2), axis=0)) > 20


def test_outlines_dropped_when_regions_are_tiny():
    from matplotlib.figure import Figure

    def lw(part, figsize, dpi, **kw):
        ax = Figure(figsize=figsize, dpi=dpi).add_subplot()
        art = part.plot(ax=ax, boundary=False, colorbar=False, **kw)
        return float(np.max(art.regions.get_linewidths()))

    big = grid_partition(100, 100, h=0.01)  # 10,000 regions
    small = grid_partition(10, 10, h=0.1)
    assert lw(small, (4, 4), 100) == pytest.approx(0.3)
    # ~3 px per region at 4 in x 100 dpi: no outlines; ~14 px at 12 in x 150 dpi: outlines
    assert lw(big, (4, 4), 100) == 0.0
    assert lw(big, (12, 12), 150) == pytest.approx(0.3)
    assert not scp.outlines_visible(big, Figure(figsize=(4, 4), dpi=100).add_subplot())
    # what the user asks for wins
    assert lw(big, (4, 4), 100, linewidth=0.3) == pytest.approx(0.3)
    ax = Figure(figsize=(4, 4), dpi=100).add_subplot()
    art = big.plot(ax=ax, boundary=False, edgecolor="k")
    assert float(np.max(art.regions.get_linewidths())) == pytest.approx(0.3)
    np.testing.assert_allclose(art.regions.get_edgecolor()[0], [0, 0, 0, 1])


def test_hundred_thousand_regions_default_plot_shows_the_fills(tmp_path):
    """Default outlines on 100k regions would paint the picture white; dropped, the fills show."""
    g = grid_partition(320, 320, h=0.01)
    fig, ax = plt.subplots(figsize=(4, 4), dpi=60)
    vals = np.zeros(g.num_regions)
    art = g.plot(ax=ax, color_by=vals, boundary=False, colorbar=False, cmap="gray", vmin=0, vmax=1)
    assert float(np.max(art.regions.get_linewidths())) == 0.0
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba(), dtype=np.float64)[..., :3]
    x0, y0 = ax.transData.transform((0.5, 0.5))
    x1, y1 = ax.transData.transform((2.7, 2.7))
    h = img.shape[0]
    inner = img[int(h - y1) : int(h - y0), int(x0) : int(x1)]
    assert inner.mean() < 20  # black fills, not white outlines
    plt.close(fig)
