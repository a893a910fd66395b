"""The Partition object's public API: arrays, conventions, queries, persistence."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import splinecam as sc

BOX = sc.Slice.box(xlim=(-2, 2), ylim=(-1.5, 1.5))


@pytest.fixture(scope="module")
def one_layer():
    """A one-hidden-layer net (7 units, 3 outputs) and its partition."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(2, 7), nn.ReLU(), nn.Linear(7, 3)).eval()
    return model, sc.partition(model, BOX)


@pytest.fixture(scope="module")
def two_layer():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 6), nn.LeakyReLU(0.1), nn.Linear(6, 2)).eval()
    return model, sc.partition(model, BOX)


def _signed_area(p):
    x, y = (p - p.mean(0)).T
    return 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)


def _preactivation(model, u):
    """First-layer preactivations of a float64 copy of the model."""
    with torch.no_grad():
        return copy.deepcopy(model[0]).double()(torch.as_tensor(u, dtype=torch.float64)).numpy()


# ----------------------------------------------------------------------------- sizes and repr


def test_sizes_and_repr(two_layer):
    _, part = two_layer
    r = part.num_regions
    assert r == len(part) == len(part.region_ptr) - 1 > 1
    assert part.num_vertices == len(part.vertices)
    assert part.num_edges == len(part.edges)
    assert part.num_outputs == 2
    assert part.layer_names == ["1", "3"]
    assert part.unit_shapes == [(8,), (6,)]
    assert part.seconds > 0
    text = repr(part)
    assert text.startswith(f"Partition({r} regions, {part.num_vertices} vertices, {part.num_edges} edges")
    assert "2 nonlinearities" in text and "2 outputs" in text


# ----------------------------------------------------------------------------- polygons and CSR arrays


def test_polygons_are_ccw_open_and_match_the_csr_arrays(two_layer):
    _, part = two_layer
    polys = part.polygons()
    assert len(polys) == part.num_regions
    ptr, rv = part.region_ptr, part.region_vertices
    assert ptr.dtype.kind == "i" and rv.dtype.kind == "i"
    assert ptr[0] == 0 and ptr[-1] == len(rv)
    np.testing.assert_array_equal(part.region_sizes(), [len(p) for p in polys])
    for i, p in enumerate(polys):
        assert p.shape == (ptr[i + 1] - ptr[i], 2) and len(p) >= 3
        np.testing.assert_array_equal(p, part.vertices[rv[ptr[i] : ptr[i + 1]]])
        assert _signed_area(p) > 0  # counter-clockwise
        assert not np.array_equal(p[0], p[-1])  # open: the first vertex is not repeated
    padded, nv = part.padded_polygons()
    assert padded.shape == (part.num_regions, nv.max(), 2)
    for i, p in enumerate(polys):
        np.testing.assert_array_equal(padded[i, : nv[i]], p)
        np.testing.assert_array_equal(padded[i, nv[i] :], np.broadcast_to(p[0], (nv.max() - nv[i], 2)))


def test_areas_centroids_and_interior_points(two_layer):
    _, part = two_layer
    polys = part.polygons()
    areas = part.areas()
    np.testing.assert_allclose(areas, [_signed_area(p) for p in polys], rtol=1e-9, atol=1e-15)
    assert areas.sum() == pytest.approx(4.0 * 3.0, rel=1e-12)
    ids = np.arange(part.num_regions)
    np.testing.assert_array_equal(part.locate(part.centroids()), ids)
    # the area centroid of a triangle fan, recomputed here
    for i in (0, part.num_regions - 1):
        p = polys[i]
        tri = [(p[0], p[j], p[j + 1]) for j in range(1, len(p) - 1)]
        w = np.array([_signed_area(np.array(t)) for t in tri])
        c = np.array([np.mean(t, axis=0) for t in tri])
        np.testing.assert_allclose(part.centroids()[i], (w[:, None] * c).sum(0) / w.sum(), atol=1e-12)
    pts = part.interior_points(5, seed=1)
    assert pts.shape == (part.num_regions, 5, 2)
    np.testing.assert_array_equal(part.locate(pts.reshape(-1, 2)), np.repeat(ids, 5))
    np.testing.assert_array_equal(part.interior_points(5, seed=1), pts)  # seeded


# ----------------------------------------------------------------------------- edges


def test_edges_of_a_one_hidden_layer_net_lie_on_their_units_lines(one_layer):
    model, part = one_layer
    inner = (part.edge_regions >= 0).all(1)
    assert inner.any() and (~inner).any()
    # border edges: region on the left, -1 on the right, no layer or unit
    np.testing.assert_array_equal(part.edge_regions[~inner, 1], -1)
    np.testing.assert_array_equal(part.edge_layer[~inner], -1)
    np.testing.assert_array_equal(part.edge_unit[~inner], -1)
    # inner edges: made by layer 0; the unit's preactivation vanishes on the whole edge
    np.testing.assert_array_equal(part.edge_layer[inner], 0)
    unit = part.edge_unit[inner]
    assert unit.min() >= 0 and unit.max() < 7
    a = part.vertices[part.edges[inner, 0]]
    b = part.vertices[part.edges[inner, 1]]
    rows = np.arange(len(unit))
    scale = np.abs(_preactivation(model, BOX.domain)).max()
    for t in (0.0, 0.5, 1.0):
        pre = _preactivation(model, (1 - t) * a + t * b)[rows, unit]
        assert np.abs(pre).max() <= 1e-9 * scale
    # and the two regions of each inner edge differ exactly in that unit's code
    codes = part.codes[0]
    left, right = part.edge_regions[inner].T
    diff = codes[left] != codes[right]
    np.testing.assert_array_equal(diff.sum(1), 1)
    np.testing.assert_array_equal(np.argmax(diff, 1), unit)


def test_edge_regions_are_left_and_right_of_the_edge_direction(two_layer):
    _, part = two_layer
    cent = part.centroids()
    a = part.vertices[part.edges[:, 0]]
    b = part.vertices[part.edges[:, 1]]

    def side(r, rows):
        e, d = b[rows] - a[rows], cent[r] - a[rows]
        return e[:, 0] * d[:, 1] - e[:, 1] * d[:, 0]

    every = np.ones(part.num_edges, dtype=bool)
    inner = part.edge_regions[:, 1] >= 0
    assert np.all(side(part.edge_regions[:, 0], every) > 0)
    assert np.all(side(part.edge_regions[inner, 1], inner) < 0)
    assert part.edges.shape == (part.num_edges, 2) and part.edge_regions.shape == (part.num_edges, 2)
    assert part.edge_layer.shape == part.edge_unit.shape == (part.num_edges,)
    assert set(np.unique(part.edge_layer).tolist()) <= {-1, 0, 1}
    assert part.num_vertices - part.num_edges + part.num_regions == 1


# ----------------------------------------------------------------------------- codes and affine maps


def test_codes_and_output_affine_shapes(two_layer):
    model, part = two_layer
    r = part.num_regions
    assert [c.shape for c in part.codes] == [(r, 8), (r, 6)]
    for c in part.codes:
        assert c.dtype.kind in "iu" and set(np.unique(c).tolist()) <= {0, 1}
    # all regions have distinct code vectors here (no two regions share an activation pattern)
    full = np.concatenate(part.codes, 1)
    assert len(np.unique(full, axis=0)) == r
    a_mat, b_vec = part.output_affine
    assert a_mat.shape == (r, 2, 2) and b_vec.shape == (r, 2)
    assert a_mat.dtype == b_vec.dtype == np.float64


def test_evaluate_matches_the_model_and_is_nan_outside(two_layer):
    model, part = two_layer
    u = np.random.default_rng(0).uniform([-2, -1.5], [2, 1.5], (200, 2))
    y = _double_forward(model, u)
    np.testing.assert_allclose(part.evaluate(u), y, rtol=1e-9, atol=1e-9 * np.abs(y).max())
    assert np.isnan(part.evaluate([[5.0, 0.0]])).all()


def _double_forward(model, u):
    with torch.no_grad():
        return copy.deepcopy(model).double()(torch.as_tensor(u)).numpy()


def test_output_affine_of_a_multi_dimensional_output():
    """Outputs of any shape are flattened: model(x).flatten() == A[r] @ u + b[r]."""

    class Matrix(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(2, 5)
            self.fc2 = nn.Linear(5, 6)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x))).reshape(-1, 2, 3)

    torch.manual_seed(0)
    model = Matrix().eval()
    part = sc.partition(model, BOX)
    assert part.output_shape == (2, 3)
    assert part.output_affine[0].shape == (part.num_regions, 6, 2)
    u = part.interior_points(1).reshape(-1, 2)
    y = _double_forward(model, u).reshape(len(u), -1)
    np.testing.assert_allclose(part.evaluate(u), y, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- locate


def test_locate(two_layer):
    _, part = two_layer
    outside = np.array([[2.5, 0.0], [0.0, -1.6], [-2.0 - 1e-6, 1.0], [100.0, 100.0]])
    np.testing.assert_array_equal(part.locate(outside), -1)
    # points on the border of the domain, vertices and domain corners are in some region that has them
    on_border = np.concatenate([part.vertices, BOX.domain, [[0.0, 1.5], [-2.0, 0.0]]])
    rid = part.locate(on_border)
    assert np.all(rid >= 0)
    # an empty query and a single point
    assert part.locate(np.zeros((0, 2))).shape == (0,)
    assert part.locate([0.0, 0.0]).shape == (1,)
    # non-finite points are outside, without numpy warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rid = part.locate([[np.nan, 0.0], [0.0, np.inf], [0.0, 0.0]])
    assert rid[0] == -1 and rid[1] == -1 and rid[2] >= 0


def test_locate_of_vertices_returns_a_region_that_has_the_vertex(two_layer):
    _, part = two_layer
    rid = part.locate(part.vertices)
    for v, r in enumerate(rid):
        assert v in part.region_vertices[part.region_ptr[r] : part.region_ptr[r + 1]]


# ----------------------------------------------------------------------------- persistence, options


def test_save_load_round_trip(two_layer, tmp_path):
    model, part = two_layer
    path = tmp_path / "part.npz"
    part.save(path)
    loaded = sc.Partition.load(path)
    assert isinstance(loaded, sc.Partition)
    for name in ("vertices", "region_ptr", "region_vertices", "edges", "edge_regions", "edge_layer", "edge_unit"):
        got, want = getattr(loaded, name), getattr(part, name)
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    for got, want in zip(loaded.output_affine, part.output_affine):
        np.testing.assert_array_equal(got, want)
    assert len(loaded.codes) == len(part.codes)
    for got, want in zip(loaded.codes, part.codes):
        np.testing.assert_array_equal(got, want)
    assert loaded.layer_names == part.layer_names
    assert loaded.unit_shapes == part.unit_shapes
    assert loaded.output_shape == part.output_shape
    assert loaded.seconds == part.seconds
    for key in ("origin", "basis", "domain"):
        np.testing.assert_array_equal(getattr(loaded.slice, key), getattr(part.slice, key))
    assert loaded.slice.input_shape == part.slice.input_shape
    np.testing.assert_array_equal(loaded.locate(part.centroids()), np.arange(part.num_regions))
    assert repr(loaded) == repr(part)
    loaded.verify(model).raise_if_failed()


def test_save_load_keeps_the_anchors_and_input_shape(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 2)).eval()
    anchors = [torch.randn(3, 8, 8) for _ in range(2)]
    part = sc.partition(model, sc.Slice.from_anchors(anchors, pad=0.2))
    part.save(tmp_path / "p.npz")
    loaded = sc.Partition.load(tmp_path / "p.npz")
    assert loaded.slice.input_shape == (3, 8, 8)
    np.testing.assert_array_equal(loaded.slice.anchors, part.slice.anchors)
    assert loaded.unit_shapes == part.unit_shapes == [(2, 6, 6)]
    assert loaded.codes[0].shape == (part.num_regions, 72)


def test_progress_bar_runs_and_gives_the_same_partition(one_layer, capsys):
    model, part = one_layer
    again = sc.partition(model, BOX, progress=True)
    err = capsys.readouterr().err
    assert "region" in err
    assert again.num_regions == part.num_regions
    np.testing.assert_array_equal(again.vertices, part.vertices)


def test_partition_is_deterministic(two_layer):
    model, part = two_layer
    again = sc.partition(model, BOX)
    for name in ("vertices", "region_ptr", "region_vertices", "edges", "edge_regions"):
        np.testing.assert_array_equal(getattr(again, name), getattr(part, name))


@pytest.mark.parametrize("chunk_size", [1, 7])
def test_small_chunks_give_the_same_regions(chunk_size, make_mlp):
    """Streaming regions in small chunks changes the order of regions, not the partition."""
    model = make_mlp(2, (2, 10, 10, 10, 2))
    ref = sc.partition(model, BOX)
    part = sc.partition(model, BOX, chunk_size=chunk_size)
    assert part.num_regions == ref.num_regions
    assert part.num_vertices == ref.num_vertices and part.num_edges == ref.num_edges
    match = ref.locate(part.centroids())
    assert sorted(match.tolist()) == list(range(ref.num_regions))
    np.testing.assert_allclose(part.areas(), ref.areas()[match], rtol=1e-9)
    for a, b in zip(part.codes, ref.codes):
        np.testing.assert_array_equal(a, b[match])
    part.verify(model).raise_if_failed()
