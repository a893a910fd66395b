"""Statistics of partitions: exact values on synthetic grids, consistency on real networks."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

import splinecam as sc  # noqa: E402
import splinecam.stats as scs  # noqa: E402


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
    return sc.partition(_mlp(1, (2, 10, 10, 1)), sc.Slice.box((-2, 2), (-2, 2)))


KEYS = {
    "num_regions", "num_vertices", "num_edges", "area_mean", "area_std", "eccentricity_mean",
    "eccentricity_std", "centrality_mean", "centrality_std", "boundary_length", "boundary_pieces",
    "boundary_region_fraction", "slope_norm_q05", "slope_norm_q25", "slope_norm_q50", "slope_norm_q75",
    "slope_norm_q95", "vertices_per_region_mean",
}


# ----------------------------------------------------------------------------- exact values on a grid
def test_grid_statistics_exact():
    g = grid_partition(4, 3, h=0.5, out=2, seed=1)
    s = scs.statistics(g, boundary=False)
    assert s["num_regions"] == 12 and s["num_vertices"] == 20 and s["num_edges"] == 31
    assert s["area_mean"] == pytest.approx(0.25) and s["area_std"] == pytest.approx(0, abs=1e-15)
    assert s["eccentricity_mean"] == pytest.approx(np.sqrt(2)) and s["eccentricity_std"] == pytest.approx(0, abs=1e-12)
    assert s["vertices_per_region_mean"] == 4.0
    assert s["domain_area"] == pytest.approx(3.0) and s["region_density"] == pytest.approx(4.0)
    # centrality: mean distance of each cell's vertices to the domain centre (1, 0.75)
    c = np.array([1.0, 0.75])
    per = np.array([np.linalg.norm(p - c, axis=1).mean() for p in g.polygons()])
    assert s["centrality_mean"] == pytest.approx(per.mean()) and s["centrality_std"] == pytest.approx(per.std())
    np.testing.assert_allclose(scs.region_centralities(g), per)
    # slope-norm quantiles over regions
    sn = np.linalg.norm(g.output_affine[0].reshape(12, -1), axis=1)
    for q in (5, 25, 50, 75, 95):
        assert s[f"slope_norm_q{q:02d}"] == pytest.approx(np.quantile(sn, q / 100))
    assert s["slope_norm_quantiles"][0.5] == s["slope_norm_q50"]
    assert "boundary_length" not in s


def test_eccentricity_of_rectangles():
    g = grid_partition(2, 1, h=1.0)
    np.testing.assert_allclose(scs.region_eccentricities(g), np.sqrt(2))
    # a 3-vertex region: longest / shortest side of a right triangle 3-4-5
    net = nn.Sequential(nn.Linear(2, 1), nn.ReLU()).double().eval()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[4.0, 3.0]]))
        net[0].bias.fill_(-12.0)
    p = sc.partition(net, sc.Slice.box((0, 10), (0, 10)))
    tri = [i for i, q in enumerate(p.polygons()) if len(q) == 3]
    assert len(tri) == 1
    assert scs.region_eccentricities(p)[tri[0]] == pytest.approx(5 / 3)


def test_domain_centroid():
    np.testing.assert_allclose(scs.domain_centroid([[0, 0], [3, 0], [0, 3]]), [1, 1])


# ----------------------------------------------------------------------------- density
def test_density_on_grid():
    g = grid_partition(10, 10, h=1.0)
    r = 0.2
    area = np.pi * r * r
    assert scs.density(g, [5.5, 5.5], r) == pytest.approx(1 / area)  # inside one cell
    assert scs.density(g, [5.0, 5.0], r) == pytest.approx(4 / area)  # on a corner
    assert scs.density(g, [5.0, 5.5], r) == pytest.approx(2 / area)  # on an edge
    # radius 1 around a cell centre reaches the 8 neighbours (corner distance 0.707), not further
    assert scs.density(g, [5.5, 5.5], 1.0) == pytest.approx(9 / np.pi)
    # outside the domain, far away: nothing
    assert scs.density(g, [50.0, 50.0], 1.0) == 0.0
    many = scs.density(g, np.array([[5.5, 5.5], [5.0, 5.0]]), r)
    np.testing.assert_allclose(many, [1 / area, 4 / area])
    assert g.density([5.5, 5.5], r) == pytest.approx(1 / area)
    with pytest.raises(ValueError, match="radius"):
        scs.density(g, [0, 0], 0.0)
    with pytest.raises(ValueError, match="point"):
        scs.density(g, [0, 0, 0], 1.0)


def _brute_density(part: sc.Partition, c: np.ndarray, r: float) -> float:
    n = 0
    for p in part.polygons():
        q = np.roll(p, -1, 0)
        e = q - p
        w = c - p
        t = np.clip((w * e).sum(1) / (e * e).sum(1), 0, 1)
        d = np.linalg.norm(w - t[:, None] * e, axis=1).min()
        inside = np.all(e[:, 0] * w[:, 1] - e[:, 1] * w[:, 0] >= 0)
        n += bool(inside or d <= r)
    return n / (np.pi * r * r)


@settings(max_examples=15, deadline=None)
@given(
    x=st.floats(-2.5, 2.5), y=st.floats(-2.5, 2.5), r=st.floats(0.01, 1.5),
)
def test_density_matches_brute_force(part, x, y, r):
    c = np.array([x, y])
    assert scs.density(part, c, r) == pytest.approx(_brute_density(part, c, r))


def test_density_monotone_and_input_space_point():
    net = _mlp(4, (5, 10, 10, 2))
    sl = sc.Slice.from_anchors(np.zeros(5), pad=1.5, seed=0, input_shape=(5,))
    p = sc.partition(net, sl)
    counts = [scs.density(p, [0.1, -0.2], r) * np.pi * r * r for r in (0.05, 0.2, 0.6, 3.0)]
    assert all(a <= b + 1e-9 for a, b in zip(counts, counts[1:]))
    assert counts[-1] == pytest.approx(p.num_regions)
    x = sl.to_input(np.array([[0.1, -0.2]]))[0]
    assert scs.density(p, x, 0.2) == pytest.approx(scs.density(p, [0.1, -0.2], 0.2))


# ----------------------------------------------------------------------------- real partitions
def test_statistics_keys_and_consistency(part):
    s = part.statistics()
    assert KEYS <= set(s)
    assert s["num_regions"] == part.num_regions
    areas = part.areas()
    assert s["area_mean"] * s["num_regions"] == pytest.approx(16.0)
    assert s["area_std"] == pytest.approx(areas.std())
    assert s["eccentricity_mean"] >= 1.0
    assert s["slope_norm_q05"] <= s["slope_norm_q25"] <= s["slope_norm_q50"] <= s["slope_norm_q75"] <= s["slope_norm_q95"]
    assert s["vertices_per_region_mean"] == pytest.approx(np.diff(part.region_ptr).mean())
    db = part.decision_boundary()
    assert s["boundary_length"] == pytest.approx(db.length) and s["boundary_length"] > 0
    assert s["boundary_pieces"] == db.num_components >= 1
    assert 0 < s["boundary_region_fraction"] < 1
    assert s["boundary_regions"] == round(s["boundary_region_fraction"] * s["num_regions"])
    for v in s.values():
        assert isinstance(v, (int, float, dict))


def test_regions_touching_boundary(part, part1):
    for p in (part, part1):
        db = p.decision_boundary()
        touch = scs.regions_touching_boundary(p, db)
        assert touch.shape == (p.num_regions,)
        # every segment's midpoint lies in a touching region
        mids = db.segments.mean(1)
        assert touch[p.locate(mids)].all()
        # logits are affine on a convex region: its class changes inside it iff its vertices differ
        a, b = p.output_affine
        poly, nv = p.padded_polygons()
        f = np.einsum("rki,roi->rko", poly, a) + b[:, None]
        lab = (f[..., 0] > 0).astype(int) if f.shape[-1] == 1 else f.argmax(-1)
        lab = np.where(np.arange(poly.shape[1])[None] < nv[:, None], lab, lab[:, :1])
        one_class = (lab == lab[:, :1]).all(1)
        assert touch[~one_class].all()
        assert one_class[~touch].all()
        assert 0 < touch.sum() < p.num_regions


def test_statistics_of_a_region_free_boundary():
    # a linear network: one region; one output with no zero in the domain -> empty boundary
    net = nn.Sequential(nn.Linear(2, 1)).double().eval()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
        net[0].bias.fill_(5.0)
    p = sc.partition(net, sc.Slice.box())
    s = scs.statistics(p)
    assert s["num_regions"] == 1 and s["boundary_length"] == 0.0 and s["boundary_pieces"] == 0
    assert s["boundary_region_fraction"] == 0.0 and s["area_std"] == 0.0
    assert s["slope_norm_q50"] == pytest.approx(1.0)
