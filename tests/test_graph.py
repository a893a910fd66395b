"""Graph exports (networkx, igraph), the region-adjacency graph and decision regions (splinecam.graph)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

import splinecam as sc
from splinecam.boundary import BoundaryError
from splinecam.graph import GRAPH_KINDS, DecisionRegion, decision_regions, graph_arrays, to_graph_tool


def mlp(seed: int, n_in: int, n_out: int, width: int = 16, depth: int = 2) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    i = n_in
    for _ in range(depth):
        layers += [nn.Linear(i, width), nn.ReLU()]
        i = width
    layers.append(nn.Linear(i, n_out))
    net = nn.Sequential(*layers).double().eval()
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.copy_(1.5 * torch.randn(m.weight.shape, generator=g, dtype=torch.float64) / m.in_features**0.5)
                m.bias.copy_(0.5 * torch.randn(m.bias.shape, generator=g, dtype=torch.float64))
    return net


def hand(*mods: nn.Module, weights: list) -> nn.Module:
    net = nn.Sequential(*mods).double().eval()
    with torch.no_grad():
        for lin, (w, b) in zip([m for m in net if isinstance(m, nn.Linear)], weights):
            lin.weight.copy_(torch.tensor(w, dtype=torch.float64))
            lin.bias.copy_(torch.tensor(b, dtype=torch.float64))
    return net


def model_labels(net: nn.Module, slc: sc.Slice, u: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        f = net(slc.to_input(torch.as_tensor(u))).reshape(len(u), -1).numpy()
    return (f[:, 0] > 0).astype(int) if f.shape[1] == 1 else f.argmax(1)


def domain_area(slc: sc.Slice) -> float:
    x, y = slc.domain.T
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


@pytest.fixture(scope="module", params=[(1, 1), (3, 3), (5, 5)], ids=["1out", "3out", "5out"])
def case(request):
    seed, n_out = request.param
    net = mlp(seed, 2, n_out)
    slc = sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2))
    return net, slc, sc.partition(net, slc)


@pytest.fixture(scope="module")
def edge_case():
    """f0 = relu(x), f1 = relu(-x): the decision boundary is the region edge x = 0."""
    net = hand(nn.Linear(2, 2), nn.ReLU(), weights=[([[1, 0], [-1, 0]], [0, 0])])
    return sc.partition(net, sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2)))


# --------------------------------------------------------------------------- networkx
def test_networkx_planar(case):
    net, slc, part = case
    G = part.to_networkx("planar")
    assert G.graph["kind"] == "planar" and G.graph["num_regions"] == part.num_regions
    assert G.number_of_nodes() == part.num_vertices and G.number_of_edges() == part.num_edges
    assert G.number_of_nodes() - G.number_of_edges() + part.num_regions == 1  # Euler
    xy = np.array([[G.nodes[i]["x"], G.nodes[i]["y"]] for i in range(part.num_vertices)])
    np.testing.assert_array_equal(xy, part.vertices)
    assert G.nodes[0]["pos"] == (G.nodes[0]["x"], G.nodes[0]["y"])
    border = (part.edge_regions < 0).any(1)
    for e, (a, b) in enumerate(part.edges.tolist()):
        d = G.edges[a, b]
        assert d["id"] == e
        assert (d["layer"], d["unit"]) == (part.edge_layer[e], part.edge_unit[e])
        assert (d["left"], d["right"]) == tuple(part.edge_regions[e])
        assert d["border"] == border[e] and (d["layer"] == -1) == d["border"]
        assert d["length"] == pytest.approx(np.hypot(*(part.vertices[b] - part.vertices[a])))
    import networkx as nx

    assert nx.check_planarity(G)[0]


def test_networkx_regions(case):
    net, slc, part = case
    G = part.to_networkx(kind="regions")
    inner = (part.edge_regions >= 0).all(1)
    assert G.number_of_nodes() == part.num_regions
    assert G.number_of_edges() == int(inner.sum())
    area = np.array([G.nodes[r]["area"] for r in range(part.num_regions)])
    np.testing.assert_allclose(area, part.areas())
    assert area.sum() == pytest.approx(domain_area(slc), rel=1e-9)
    cen = np.array([G.nodes[r]["centroid"] for r in range(part.num_regions)])
    np.testing.assert_allclose(cen, part.centroids())
    assert G.nodes[0]["cx"] == cen[0, 0] and G.nodes[0]["cy"] == cen[0, 1]
    argmax = np.array([G.nodes[r]["argmax"] for r in range(part.num_regions)])
    # the argmax attribute is the real model's class at the centroid (where the two agree clearly)
    np.testing.assert_array_equal(argmax, model_labels(net, slc, cen))
    nverts = [G.nodes[r]["num_vertices"] for r in range(part.num_regions)]
    np.testing.assert_array_equal(nverts, np.diff(part.region_ptr))
    planar = graph_arrays(part, "planar").edge_attrs
    for e in np.flatnonzero(inner):
        left, right = part.edge_regions[e]
        d = G.edges[left, right]
        assert d["id"] == e and (d["layer"], d["unit"]) == (part.edge_layer[e], part.edge_unit[e])
        assert d["boundary"] == planar["boundary"][e]
        assert d["length"] == pytest.approx(np.hypot(*(part.vertices[part.edges[e, 1]] - part.vertices[part.edges[e, 0]])))
    assert G.graph == {"kind": "regions", "num_regions": part.num_regions, "num_outputs": part.num_outputs}
    assert nx_connected(G)


def nx_connected(G) -> bool:
    import networkx as nx

    return nx.is_connected(G)


def test_boundary_flag(case, edge_case):
    net, slc, part = case
    ga = graph_arrays(part, "planar")
    db = part.decision_boundary()
    np.testing.assert_array_equal(np.flatnonzero(ga.edge_attrs["boundary"]), np.unique(db.edges[db.edges >= 0]))
    G = edge_case.to_networkx("planar")
    flagged = [(a, b) for a, b, d in G.edges(data=True) if d["boundary"]]
    assert len(flagged) == 1
    a, b = flagged[0]
    np.testing.assert_allclose(edge_case.vertices[[a, b], 0], 0, atol=1e-15)
    R = edge_case.to_networkx("regions")
    assert [d["boundary"] for _, _, d in R.edges(data=True)] == [True]
    assert sorted(nx_attr(R, "argmax")) == [0, 1]


def nx_attr(G, name):
    return [d[name] for _, d in G.nodes(data=True)]


# --------------------------------------------------------------------------- igraph
@pytest.mark.parametrize("kind", GRAPH_KINDS)
def test_igraph_round_trip(case, kind):
    net, slc, part = case
    g = part.to_igraph(kind=kind)
    ga = graph_arrays(part, kind)
    assert not g.is_directed()
    assert g.vcount() == ga.num_nodes and g.ecount() == len(ga.edges)
    assert g["kind"] == kind and g["num_regions"] == part.num_regions
    # igraph stores undirected edges as (min, max); edge k is still row k
    np.testing.assert_array_equal(np.array(g.get_edgelist()).reshape(-1, 2), np.sort(ga.edges, 1))
    for k, v in ga.node_attrs.items():
        np.testing.assert_array_equal(np.array(g.vs[k]), v)
    for k, v in ga.edge_attrs.items():
        np.testing.assert_array_equal(np.array(g.es[k]), v)
    if kind == "planar":
        assert g.vcount() - g.ecount() + part.num_regions == 1
        np.testing.assert_array_equal(np.stack([g.vs["x"], g.vs["y"]], 1), part.vertices)
    else:
        assert g.ecount() == int((part.edge_regions >= 0).all(1).sum())
        assert g.is_connected()


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("method", ["to_networkx", "to_igraph", "to_graph_tool"])
def test_bad_kind(case, method):
    net, slc, part = case
    with pytest.raises(ValueError, match=r"'planar', 'regions'.*'faces'"):
        getattr(part, method)(kind="faces")


def test_graph_tool_missing_message(case, monkeypatch):
    net, slc, part = case
    monkeypatch.setitem(sys.modules, "graph_tool", None)  # makes `import graph_tool` fail
    with pytest.raises(ImportError) as exc:
        to_graph_tool(part)
    msg = str(exc.value)
    assert "conda install -c conda-forge graph-tool" in msg
    assert "apt-get install python3-graph-tool" in msg
    assert "--system-site-packages" in msg


def test_graphs_without_outputs(case):
    net, slc, part = case
    a, b = part.output_affine
    p0 = sc.Partition(
        slice=part.slice, vertices=part.vertices, region_ptr=part.region_ptr,
        region_vertices=part.region_vertices, edges=part.edges, edge_regions=part.edge_regions,
        edge_layer=part.edge_layer, edge_unit=part.edge_unit, output_affine=(a[:, :0], b[:, :0]),
        codes=part.codes, layer_names=part.layer_names,
    )
    G = p0.to_networkx("regions")
    assert set(nx_attr(G, "argmax")) == {-1}
    assert not any(d["boundary"] for *_, d in p0.to_networkx("planar").edges(data=True))
    with pytest.raises(BoundaryError, match="num_outputs == 0"):
        p0.decision_regions()


# --------------------------------------------------------------------------- decision regions
def test_decision_regions_areas(case):
    net, slc, part = case
    regs = part.decision_regions()
    assert all(isinstance(d, DecisionRegion) for d in regs)
    assert sum(d.area for d in regs) == pytest.approx(domain_area(slc), rel=1e-9)
    assert all(d.area > 0 and d.num_regions == len(d.regions) >= 1 for d in regs)
    keys = [(d.label, -d.area) for d in regs]
    assert keys == sorted(keys)
    # every region is covered; a region appears in one component per class it contains
    covered = np.unique(np.concatenate([d.regions for d in regs]))
    np.testing.assert_array_equal(covered, np.arange(part.num_regions))
    # the area of each class matches a fine grid's share of the real model's labels
    n = 200
    c = (np.arange(n) + 0.5) / n * 4 - 2
    grid = np.stack(np.meshgrid(c, c), -1).reshape(-1, 2)
    lab = model_labels(net, slc, grid)
    k = max(part.num_outputs, 2)
    grid_area = np.bincount(lab, minlength=k) * (16.0 / len(grid))
    exact = np.bincount([d.label for d in regs], weights=[d.area for d in regs], minlength=k)
    np.testing.assert_allclose(exact, grid_area, atol=0.05)
    assert "DecisionRegion(label=" in repr(regs[0])


def test_decision_regions_known():
    # f = |x| - 0.5: class 0 on the stripe |x| < 0.5, class 1 in two separate pieces
    net = hand(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1), weights=[([[1, 0], [-1, 0]], [0, 0]), ([[1, 1]], [-0.5])])
    regs = decision_regions(sc.partition(net, sc.Slice.box()))
    assert [(d.label, round(d.area, 12)) for d in regs] == [(0, 2.0), (1, 1.0), (1, 1.0)]
    assert regs[0].num_regions == 2  # the stripe crosses the region edge x = 0
    # triangle max(l1, l2, l3) <= 0 of area 3 sqrt(3) inside [-3, 3]^2
    nrm = np.array([[np.cos(a), np.sin(a)] for a in (0, 2 * np.pi / 3, 4 * np.pi / 3)])
    w1 = np.array([nrm[0] - nrm[1], nrm[1], -nrm[1], nrm[2], -nrm[2]])
    net = hand(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 1),
               weights=[(w1, [0, -1, 1, -1, 1]),
                        ([[1, 1, -1, -1, 1], [0, 0, 0, 1, -1], [0, 0, 0, -1, 1]], [0, 0, 0]),
                        ([[1, 1, -1]], [0])])
    regs = decision_regions(sc.partition(net, sc.Slice.box(xlim=(-3, 3), ylim=(-3, 3))))
    assert [d.label for d in regs] == [0, 1]
    assert regs[0].area == pytest.approx(3 * np.sqrt(3), rel=1e-12)
    assert regs[1].area == pytest.approx(36 - 3 * np.sqrt(3), rel=1e-12)


def test_decision_regions_along_region_edges(edge_case):
    regs = edge_case.decision_regions()
    assert [(d.label, d.area, d.num_regions) for d in regs] == [(0, 8.0, 1), (1, 8.0, 1)]
