"""Partitions whose answer is known in advance (by construction, by counting, or as a golden value)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import splinecam as sc

HALF = 2.0
BOX = sc.Slice.box(xlim=(-HALF, HALF), ylim=(-HALF, HALF))


def _intersection(w1, b1, w2, b2):
    return np.linalg.solve(np.stack([w1, w2]), -np.array([b1, b2]))


def tangent_lines(k: int, seed: int):
    """k tangent lines to a small circle, distinct directions in [0, pi): no two parallel, no three
    concurrent (a point outside a circle has only two tangents), all pairwise crossings near it."""
    rng = np.random.default_rng(seed)
    centre, rho = np.array([0.1, -0.05]), 0.05
    theta = np.pi * (np.arange(k) + rng.uniform(0.2, 0.8, k)) / k
    normals = np.stack([np.cos(theta), np.sin(theta)], 1)
    bias = -(normals @ centre) - rho
    sign = rng.choice([-1.0, 1.0], k)  # (w, b) and (-w, -b) have the same line
    return normals * sign[:, None], bias * sign


@pytest.mark.parametrize("k", [1, 2, 3, 5, 10, 20])
def test_lines_in_general_position_meeting_inside_the_box(k, make_one_layer, make_checked_partition):
    w, b = tangent_lines(k, seed=k)
    # the construction really is in general position with every crossing inside the box
    points = [_intersection(w[i], b[i], w[j], b[j]) for i, j in itertools.combinations(range(k), 2)]
    if points:
        pts = np.array(points)
        assert np.abs(pts).max() < 0.9 * HALF
    if len(points) > 1:
        d = np.hypot(*(pts[:, None] - pts[None]).transpose(2, 0, 1))
        assert d[np.triu_indices(len(pts), 1)].min() > 1e-6  # no three lines concurrent
    model = make_one_layer(w, b, out_seed=k, outputs=2)
    part = make_checked_partition(model, BOX)
    assert part.num_regions == 1 + k + k * (k - 1) // 2
    # every pairwise crossing is a vertex, plus 2 per line on the border, plus the 4 box corners
    assert part.num_vertices == len(points) + 2 * k + 4


@pytest.mark.parametrize("seed", range(5))
def test_random_line_arrangement_region_count(seed, make_one_layer, make_checked_partition):
    """1 + (lines crossing the box) + (crossings inside the box), counted independently."""
    rng = np.random.default_rng(seed)
    k = 12
    w = rng.standard_normal((k, 2))
    b = rng.uniform(-2.5, 2.5, k)
    corners = BOX.domain
    crossing = [i for i in range(k) if np.ptp(np.sign(corners @ w[i] + b[i])) == 2]
    inside = 0
    for i, j in itertools.combinations(crossing, 2):
        p = _intersection(w[i], b[i], w[j], b[j])
        inside += bool(np.all(np.abs(p) < HALF))
    part = make_checked_partition(make_one_layer(w, b, out_seed=seed), BOX)
    assert part.num_regions == 1 + len(crossing) + inside


@pytest.mark.parametrize(("m", "n"), [(1, 1), (3, 2), (5, 7), (60, 45)])
def test_grid_of_axis_parallel_lines(m, n, make_one_layer, make_checked_partition):
    # (60, 45): units sorted by offset, the worst order for cutting one line after the other
    xs = np.linspace(-HALF, HALF, m + 2)[1:-1]
    ys = np.linspace(-HALF, HALF, n + 2)[1:-1]
    w = np.concatenate([np.tile([1.0, 0.0], (m, 1)), np.tile([0.0, -2.0], (n, 1))])
    b = np.concatenate([-xs, 2.0 * ys])
    part = make_checked_partition(make_one_layer(w, b), BOX)
    assert part.num_regions == (m + 1) * (n + 1)
    np.testing.assert_allclose(part.areas(), (2 * HALF) ** 2 / part.num_regions, rtol=1e-12)


def test_second_layer_diamond(make_checked_partition):
    """relu(|u0| + |u1| - 1) with |t| = relu(t) + relu(-t): the axes (layer 1) and a diamond (layer 2)."""
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1), nn.ReLU()).double().eval()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0], [-1, 0], [0, 1], [0, -1]], dtype=torch.float64))
        model[0].bias.zero_()
        model[2].weight.fill_(1.0)
        model[2].bias.fill_(-1.0)
    part = make_checked_partition(model, BOX)
    assert part.num_regions == 8
    np.testing.assert_allclose(np.sort(part.areas()), [0.5] * 4 + [3.5] * 4, rtol=1e-12)
    # the diamond's corners are vertices
    for corner in ([1, 0], [-1, 0], [0, 1], [0, -1]):
        assert np.hypot(*(part.vertices - corner).T).min() < 1e-12
    # edges of the second nonlinearity form the diamond: total length 4 * sqrt(2)
    inner = part.edge_layer == 1
    seg = part.vertices[part.edges[inner, 1]] - part.vertices[part.edges[inner, 0]]
    np.testing.assert_allclose(np.hypot(*seg.T).sum(), 4 * np.sqrt(2), rtol=1e-12)
    # output 0 inside the diamond, |u0| + |u1| - 1 outside
    a_mat, b_vec = part.output_affine
    inside = part.areas() < 1
    np.testing.assert_allclose(a_mat[inside], 0, atol=1e-15)
    np.testing.assert_allclose(np.abs(a_mat[~inside]), 1, rtol=1e-12)


def test_golden_2_100_100_100_1():
    """The issue's golden value: torch.manual_seed(0), default init, box [-2, 2]^2 -> 29,577 regions."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(2, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(),
        nn.Linear(100, 1),
    ).eval()
    part = sc.partition(model, BOX)
    assert part.num_regions == 29577
    # cheap whole-partition checks; the full independent check runs on a sample of regions
    areas = part.areas()
    assert np.all(areas > 0)
    assert abs(areas.sum() - 16.0) <= 1e-9 * 16.0
    assert part.num_vertices - part.num_edges + part.num_regions == 1


@pytest.mark.slow
def test_golden_2_100_100_100_1_full_checks(make_exactness_check):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(2, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(),
        nn.Linear(100, 1),
    ).eval()
    part = sc.partition(model, BOX)
    assert part.num_regions == 29577
    make_exactness_check(model, part, points_per_region=2, max_regions=5000)


GOLDEN = json.loads((Path(__file__).parent / "golden_counts.json").read_text())["cases"]


@pytest.mark.parametrize("case", GOLDEN, ids=[c["name"] for c in GOLDEN])
def test_golden_counts_manifest(case, make_mlp, make_custom, make_cnn, make_exactness_check):
    """Regression values (see golden_counts.json): guard against silent changes of the partition."""
    if case["builder"] in ("mlp", "mlp_bn"):
        model = make_mlp(case["seed"], tuple(case["widths"]), act=case["act"],
                         batchnorm=case["builder"] == "mlp_bn")
    elif case["builder"] == "residual":
        model = make_custom(case["seed"], "residual")
    else:
        model, shape = make_cnn(case["seed"], "strided")
    if "half" in case:
        h = case["half"]
        sl = sc.Slice.box((-h, h), (-h, h))
    else:
        x0 = torch.randn(shape, generator=torch.Generator().manual_seed(case["seed"]))
        sl = sc.Slice.from_anchors([x0], pad=case["pad"], seed=case["seed"])
    part = sc.partition(model, sl)
    assert part.num_regions == case["regions"]
    make_exactness_check(model, part, points_per_region=2)


# ----------------------------------------------------------------------------- affine parts never cut


def test_purely_affine_model_has_one_region(make_checked_partition):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 5), nn.Dropout(0.2), nn.Linear(5, 3), nn.Identity()).eval()
    part = make_checked_partition(model, BOX)
    assert part.num_regions == 1
    assert part.codes == [] and part.layer_names == []
    assert part.num_vertices == 4 and part.num_edges == 4
    a_mat, b_vec = part.output_affine
    with torch.no_grad():
        w = (model[2].weight @ model[0].weight).double().numpy()
        b = (model[2].weight @ model[0].bias + model[2].bias).double().numpy()
    np.testing.assert_allclose(a_mat[0], w, rtol=1e-6)
    np.testing.assert_allclose(b_vec[0], b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("state", ["never_active", "always_active"])
def test_nonlinearity_that_never_switches_gives_one_region(state, make_checked_partition):
    """Every unit has the same code on the whole box, so nothing is cut (but the codes are right)."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 4), nn.LeakyReLU(0.1), nn.Linear(4, 1))
    model = model.double().eval()
    shift = -10.0 if state == "never_active" else 10.0
    with torch.no_grad():
        model[0].weight.clamp_(-1, 1)
        model[0].bias.fill_(shift)  # |w . u| <= 4 on the box
        model[2].weight.copy_(model[2].weight.abs().clamp_(max=0.3) * np.sign(shift))
        model[2].bias.fill_(shift)
    part = make_checked_partition(model, BOX)
    assert part.num_regions == 1
    expected = 0 if state == "never_active" else 1
    assert all(np.all(c == expected) for c in part.codes)


@pytest.mark.parametrize("seed", range(4))
def test_layers_without_nonlinearity_never_cut(seed, make_checked_partition):
    """Linear -> Linear -> ReLU gives the same partition as the folded Linear -> ReLU."""
    g = torch.Generator().manual_seed(seed)
    w1, b1 = torch.randn(5, 2, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    w2, b2 = torch.randn(9, 5, generator=g, dtype=torch.float64), torch.randn(9, generator=g, dtype=torch.float64)
    w3, b3 = torch.randn(2, 9, generator=g, dtype=torch.float64), torch.randn(2, generator=g, dtype=torch.float64)

    def linear(w, b):
        lin = nn.Linear(w.shape[1], w.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        return lin

    deep = nn.Sequential(linear(w1, b1), linear(w2, b2), nn.ReLU(), linear(w3, b3)).eval()
    folded = nn.Sequential(linear(w2 @ w1, w2 @ b1 + b2), nn.ReLU(), linear(w3, b3)).eval()
    p_deep = make_checked_partition(deep, BOX)
    p_folded = make_checked_partition(folded, BOX)
    assert p_deep.num_regions == p_folded.num_regions
    # the same regions (matched by centroid), with the same codes and output maps
    order = p_folded.locate(p_deep.centroids())
    assert sorted(order.tolist()) == list(range(p_folded.num_regions))
    np.testing.assert_allclose(p_folded.areas()[order], p_deep.areas(), rtol=1e-9)
    np.testing.assert_array_equal(p_folded.codes[0][order], p_deep.codes[0])
    np.testing.assert_allclose(p_folded.output_affine[0][order], p_deep.output_affine[0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("k", [1, 4, 7])
def test_lines_through_one_interior_point(k, make_one_layer, make_lines, make_checked_partition):
    """k distinct lines through one interior point cut the box into 2k sectors."""
    w, b = make_lines([0.3, -0.2], 180.0 * (np.arange(k) + 0.5) / k)
    part = make_checked_partition(make_one_layer(w, b), BOX)
    assert part.num_regions == 2 * k
    # all sectors share the centre vertex
    centre = np.argmin(np.hypot(*(part.vertices - [0.3, -0.2]).T))
    assert np.sum(part.region_vertices == centre) == 2 * k


@pytest.mark.parametrize("k", [1, 2, 6])
def test_parallel_lines(k, make_one_layer, make_checked_partition):
    offsets = np.linspace(-1.5, 1.5, k)
    w = np.tile([[0.6, 0.8]], (k, 1)) * np.where(np.arange(k) % 2, 1.0, -3.0)[:, None]
    b = -offsets * np.where(np.arange(k) % 2, 1.0, -3.0)
    part = make_checked_partition(make_one_layer(w, b), BOX)
    assert part.num_regions == k + 1
