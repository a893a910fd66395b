"""graph-tool export (optional dependency). Run everywhere with `.ci/graph_tool.sh`, which builds a venv
on top of Debian's python3-graph-tool; skipped where graph-tool cannot be imported."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

import splinecam as sc
from splinecam.graph import graph_arrays

if os.environ.get("SPLINECAM_REQUIRE_GRAPH_TOOL"):
    # set by .ci/graph_tool.sh: there a graph-tool that fails to import is an error, not a skip
    import graph_tool as gt
else:
    gt = pytest.importorskip(
        "graph_tool",
        reason="graph-tool is not installed (not on PyPI): run .ci/graph_tool.sh, or install it with "
        "`conda install -c conda-forge graph-tool` / `apt-get install python3-graph-tool`",
    )

pytestmark = pytest.mark.graph_tool


@pytest.fixture(scope="module", params=[1, 3], ids=["1out", "3out"])
def part(request):
    g = torch.Generator().manual_seed(request.param)
    net = nn.Sequential(nn.Linear(2, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, request.param))
    net = net.double().eval()
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.copy_(1.5 * torch.randn(m.weight.shape, generator=g, dtype=torch.float64) / m.in_features**0.5)
                m.bias.copy_(0.5 * torch.randn(m.bias.shape, generator=g, dtype=torch.float64))
    return sc.partition(net, sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2)))


@pytest.mark.parametrize("kind", ["planar", "regions"])
def test_graph_tool_round_trip(part, kind):
    g = part.to_graph_tool(kind=kind)
    ga = graph_arrays(part, kind)
    assert isinstance(g, gt.Graph) and not g.is_directed()
    assert g.num_vertices() == ga.num_nodes and g.num_edges() == len(ga.edges)
    assert g.gp["kind"] == kind and g.gp["num_regions"] == part.num_regions
    # edge k of the graph is row k of the edges, with its endpoints
    el = g.get_edges([g.edge_index])
    el = el[np.argsort(el[:, 2])]
    np.testing.assert_array_equal(np.sort(el[:, :2], 1), np.sort(ga.edges, 1))
    for k, v in ga.node_attrs.items():
        if v.ndim == 2:
            np.testing.assert_array_equal(g.vp[k].get_2d_array([0, 1]).T, v)
        else:
            np.testing.assert_array_equal(g.vp[k].a, v)
    for k, v in ga.edge_attrs.items():
        np.testing.assert_array_equal(g.ep[k].a[el[:, 2]], v)
    if kind == "planar":
        assert g.num_vertices() - g.num_edges() + part.num_regions == 1
        np.testing.assert_array_equal(np.stack([g.vp["x"].a, g.vp["y"].a], 1), part.vertices)
        assert g.ep["border"].value_type() == "bool"
        from graph_tool.topology import is_planar

        assert is_planar(g)
    else:
        assert g.num_edges() == int((part.edge_regions >= 0).all(1).sum())
        assert g.vp["area"].a.sum() == pytest.approx(16.0, rel=1e-9)
        from graph_tool.topology import label_components

        assert label_components(g)[0].a.max() == 0  # the region graph is connected


def test_graph_tool_is_imported_lazily():
    # graph-tool is installed here, yet importing splinecam and using the other exports never loads it
    code = (
        "import sys, torch, splinecam as sc, splinecam.graph, splinecam.boundary\n"
        "net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3)).eval()\n"
        "part = sc.partition(net, sc.Slice.box())\n"
        "part.to_networkx('planar'); part.to_igraph('regions'); part.decision_regions(); part.decision_boundary()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'graph_tool'))\n"
        "part.to_graph_tool('regions')\n"
        "print('graph_tool' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "True"]


def test_plot_graphtool_graph_draws_to_a_file(part, tmp_path):
    """sc.plot.plot_graphtool_graph (the original's name) at the planar graph's vertex positions."""
    try:
        import graph_tool.draw  # noqa: F401
    except ImportError as exc:  # graph-tool without its cairo drawing
        pytest.skip(f"graph_tool.draw does not import: {exc}")
    g = part.to_graph_tool("planar")
    out = tmp_path / "planar.png"
    sc.plot.plot_graphtool_graph(g, output=str(out))
    assert out.stat().st_size > 0
