"""Nearly coincident lines: the planar graph must stay consistent.

Lines whose directions differ by about 1e-8 rad (e.g. a unit that is a float32-rounded scaled copy
of another), or a deeper unit's line lying exactly on an earlier layer's edge, make the per-polygon
snapping of :mod:`splinecam.engine.geometry` decide differently on the two sides of an edge: the same line
ended at different vertices on its two sides (T-junctions, ``V - E + R != 1``), or one point got
two identifiers. :mod:`splinecam.engine.repair` mends that when the partition is assembled. These cases
were found by fuzzing; the expected region counts are computed here in exact rational arithmetic.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch
import torch.nn as nn

import splinecam as sc
from splinecam.engine.repair import mend_t_junctions, merge_equal_neighbours, weld_short_edges


def _distinct_directions(rows: list[list[float]]) -> int:
    dirs = set()
    for a, b in rows:
        fa, fb = Fraction(a), Fraction(b)
        s = abs(fa) + abs(fb)
        d = (fa / s, fb / s)
        dirs.add(d if (d[0] > 0 or (d[0] == 0 and d[1] > 0)) else (-d[0], -d[1]))
    return len(dirs)


def test_nearly_coincident_lines_through_a_point_inside() -> None:
    # bias-free: five lines through the origin (inside the domain); unit 3 is unit 2 times 1e-3,
    # rounded to float32, so their lines are about 1e-8 rad apart. Exact: 2 regions per line.
    w = [[0.37452927231788635, -0.10716187953948975], [-0.35260915756225586, -2.526390314102173],
         [-1.080746054649353, -0.8839327692985535], [-0.0010807460639625788, -0.000883932807482779],
         [2.5169386863708496, 2.1651458740234375]]
    net = nn.Sequential(nn.Linear(2, 5, bias=False), nn.LeakyReLU(0.1), nn.Linear(5, 1, bias=False)).double().eval()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(w, dtype=torch.float64))
        net[2].weight.copy_(torch.tensor([[0.98538, 0.63696, 0.52818, -1.23016, -0.66579]], dtype=torch.float64))
    slc = sc.Slice.box((-0.19404644513874192, 1.0321497338430428), (-0.5780831885782236, 0.5080557876380938))
    part = sc.partition(net, slc)
    part.verify(net).raise_if_failed()
    assert part.num_regions == 2 * _distinct_directions(w)


def test_nearly_coincident_lines_through_a_point_outside() -> None:
    # three units whose lines pass through the origin (outside the domain) about 1e-8 rad apart:
    # they never meet inside, so the exact partition has 4 strips
    w1 = [[-0.9667185544967651, -0.04991164058446884], [-8.70046615600586, -0.4492047429084778]]
    w2 = [[0.19762195646762848, -0.42965167760849], [-0.9959807395935059, -1.07449209690094]]
    w3 = [[-0.84848952293396, -1.4974136352539062], [-1.1635583639144897, 1.1459386348724365],
          [-0.26548218727111816, 0.0073290253058075905]]
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False), nn.Linear(2, 3, bias=False),
                        nn.LeakyReLU(-1.0), nn.Linear(3, 1, bias=False)).double().eval()
    with torch.no_grad():
        for lin, w in zip((net[0], net[1], net[2]), (w1, w2, w3)):
            lin.weight.copy_(torch.tensor(w, dtype=torch.float64))
        net[4].weight.fill_(0.5)
    slc = sc.Slice.box((-1.2891497073016012, -0.02269349293411227), (-0.26489588156167887, 2.0709337393985146))
    part = sc.partition(net, slc)
    part.verify(net).raise_if_failed()
    assert part.num_regions == 4


# a 5-layer net (weights scaled to about 1e4) whose layer-2 unit 0 is -28962 x layer-1 unit 0 with
# no bias, and whose layer-3 units copy or offset layer-2 units: deeper lines that lie exactly on
# earlier edges (found by fuzzing: 522 regions, a 2e-18-area sliver, 37 T-junctions)
_COPIES = {
    '0.weight': [[15968.35546875, -101195.375], [-15361.3740234375, 28414.73046875], [14516.4189453125, -43943.86328125], [21883.408203125, -5161.693359375], [-36564.89453125, -32271.146484375]],
    '0.bias': [2035.572509765625, -18933.689453125, 17610.16015625, -17820.140625, -54810.9765625],
    '2.weight': [[-28962.482421875, 0.0, 0.0, 0.0, 0.0], [-4037.35302734375, 14715.48046875, -3808.02880859375, 13417.03515625, -10363.9072265625], [15464.333984375, 22351.4140625, 585.0382690429688, -10758.638671875, -31888.236328125]],
    '2.bias': [0.0, -34566.86328125, -59690.734375],
    '4.weight': [[-0.6058489680290222, 1.0726666450500488, -4.3612189292907715], [-2.878133535385132, 2.2887163162231445, -19.70212173461914], [-4.585723400115967, 0.967113196849823, 1.0290366411209106], [20.45231819152832, 8.518331527709961, 1.9556884765625], [-11.009151458740234, 1.8654580116271973, 12.366072654724121], [0.0, 0.0, -8.589611053466797], [18.139694213867188, 5.4182024002075195, -4.1542277336120605], [-8.313981056213379, 9.880106925964355, -2.1954455375671387], [-8.477368354797363, 3.5127294063568115, 2.003174304962158]],
    '4.bias': [6.400455951690674, 9.527467727661133, 0.32813456654548645, 12.465362548828125, -0.9841397404670715, 1.439207911491394, 14.411827087402344, -7.749844551086426, -6.878016471862793],
    '6.weight': [[0.00913987960666418, -0.002803483046591282, 0.005393489263951778, -0.0039613377302885056, 0.003080831840634346, -0.004502617754042149, -0.01297430507838726, -0.006533544976264238, -0.0044652256183326244], [-0.0024935866240411997, 0.0019549967255443335, -0.008794238790869713, 0.006102640647441149, -0.011319916695356369, -0.004655805882066488, -0.006336947903037071, -0.0012705425033345819, 0.0008542498107999563], [-0.0046777729876339436, 0.005512434523552656, -0.015292703174054623, 0.010492738336324692, 0.003059671726077795, 0.0017212729435414076, 0.0003820511919911951, -0.006220023613423109, 0.005732742603868246], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.013555879704654217, 0.0, 0.0], [-0.004562918562442064, 0.003913872875273228, 0.010844293981790543, -0.004144140984863043, -0.0035276219714432955, -0.0002839193039108068, -0.0058972714468836784, -0.008725465275347233, -0.0017615631222724915], [0.0, 0.0, 0.027111759409308434, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.009778945706784725, -0.0003784123109653592, -0.007385215722024441, 0.004260825924575329, 0.009688151068985462, -0.001966026145964861, -0.01793813332915306, 0.000908027752302587, -0.005561155267059803]],
    '6.bias': [-0.006911854259669781, -0.020241091027855873, 0.027066940441727638, -0.0010125263361260295, -0.0076560345478355885, 0.0, -0.006632748991250992],
    '8.weight': [[0.011548222042620182, 0.012182862497866154, 0.009680327959358692, 0.002878563478589058, -0.016357626765966415, 0.02036706916987896, 0.027198826894164085]],
    '8.bias': [-0.010392055846750736],
}


def test_deeper_lines_on_earlier_edges() -> None:
    net = nn.Sequential(
        nn.Linear(2, 5), nn.LeakyReLU(0.01), nn.Linear(5, 3), nn.LeakyReLU(0.01), nn.Linear(3, 9), nn.ReLU(),
        nn.Linear(9, 7), nn.ReLU(), nn.Linear(7, 1),
    ).eval()
    net.load_state_dict({k: torch.tensor(v) for k, v in _COPIES.items()})
    slc = sc.Slice.box((-3.411410531693373, 3.0975003803270242), (-4.610157650175454, 3.3864343464358737))
    part = sc.partition(net, slc)
    report = part.verify(net)
    assert report["graph"].passed and report["neighbours"].passed, report


def _square_pair(split_right: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # two unit squares side by side sharing the edge x = 1; the right one has an extra vertex m on
    # it (a T-junction: the left one does not), or a second identifier for the point (1, 1)
    verts = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [2, 0], [2, 1], [1, 0.5], [1, 1 + 1e-12]], dtype=float)
    left = [0, 1, 2, 3]
    right = [1, 4, 5, 7, 6] if split_right else [1, 4, 5, 7]
    ptr = np.array([0, 4, 4 + len(right)])
    rv = np.array(left + right)
    lab = np.array([-1, 5, -1, -1] + [-1, -1, -1] + ([5, 5] if split_right else [5]))
    return verts, ptr, rv, lab


def test_mend_inserts_the_missing_vertex_and_welds_twins() -> None:
    verts, ptr, rv, lab = _square_pair(True)
    used, ptr2, rv2, lab2, keep = mend_t_junctions(verts, ptr, rv, lab, scale=2.0)
    assert keep.tolist() == [0, 1]
    cyc = [used[rv2[ptr2[i]:ptr2[i + 1]]].tolist() for i in range(2)]
    assert cyc[0] == [0, 1, 6, 2, 3]  # m inserted into the left square's edge 1 -> 2
    assert cyc[1] == [1, 4, 5, 2, 6]  # vertex 7 welded to 2 (1e-12 apart)
    assert 7 not in used.tolist()
    # every inner half-edge now has its twin
    half = {(c[i], c[(i + 1) % len(c)]) for c in cyc for i in range(len(c))}
    assert {(1, 6), (6, 1), (6, 2), (2, 6)} <= half


def test_mend_leaves_a_consistent_graph_alone() -> None:
    verts = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [2, 0], [2, 1]], dtype=float)
    ptr, rv = np.array([0, 4, 8]), np.array([0, 1, 2, 3, 1, 4, 5, 2])
    lab = np.array([-1, 5, -1, -1, -1, -1, -1, 5])
    assert mend_t_junctions(verts, ptr, rv, lab, scale=2.0) is None


def test_two_pairs_of_nearly_coincident_lines_through_a_point_inside() -> None:
    # (formerly a strict xfail of tests/test_known_issues.py) bias-free: all lines through the
    # origin (inside the domain); units 4 and 5 are units 0 and 2 times 1000, rounded to float32
    # (about 1e-8 rad from their twins). Exact: 2 regions for each of the 5 distinct directions.
    # The engine made an 11th region of area 2e-24 whose neighbour had the same codes: a triangle
    # with two "origin" vertices 2.2e-16 apart (the origin computed on two edges). Edges shorter
    # than 1e-12 of the domain's scale are now welded (splinecam.engine.repair.weld_short_edges).
    w = [[0.4000653326511383, -1.1325478553771973], [-0.8768719434738159, 2.169421911239624],
         [1.422790765762329, -0.30128252506256104], [1.422790765762329, -0.30128252506256104],
         [400.0653381347656, -1132.5478515625], [1422.790771484375, -301.28253173828125]]
    v = [[0.7665202021598816, -0.5524166226387024, 0.8464692831039429, -0.7628700137138367,
          -1.1811894178390503, -1.3361998796463013]]
    assert _distinct_directions(w) == 5
    net = nn.Sequential(nn.Linear(2, 6, bias=False), nn.LeakyReLU(3.0), nn.Linear(6, 1, bias=False)).double().eval()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(w, dtype=torch.float64))
        net[2].weight.copy_(0.9 * torch.tensor(v, dtype=torch.float64))
    slc = sc.Slice.box((-2.87793919646793, 4.076923306597608), (-1.8299797402124445, 2.910081047298775))
    part = sc.partition(net, slc)
    part.verify(net).raise_if_failed()
    assert part.num_regions == 10 and np.all(part.areas() > 1e-12)
    # no two vertices closer than 1e-12 of the domain's scale, no edge that short
    e = part.vertices[part.edges[:, 1]] - part.vertices[part.edges[:, 0]]
    assert np.abs(e).max(1).min() > 1e-12 * 3.5


def test_weld_short_edges_drops_what_collapses() -> None:
    # a unit square cut by x = 0.5 into two rectangles, plus a sliver triangle (0.5, 1), (0.5 + 1e-15, 1),
    # (0.5, 0.5) between them: welding its 1e-15 edge reduces it to a segment
    verts = np.array([[0, 0], [0.5, 0], [1, 0], [1, 1], [0.5 + 1e-15, 1], [0.5, 1], [0, 1], [0.5, 0.5]])
    left = [0, 1, 7, 5, 6]
    right = [1, 2, 3, 4, 7]
    sliver = [7, 4, 5]
    ptr = np.array([0, 5, 10, 13])
    rv = np.array(left + right + sliver)
    lab = np.array([-1, 3, 3, -1, -1, -1, -1, -1, 4, 3, 4, -1, 3])
    out = weld_short_edges(verts, ptr, rv, lab, 1e-12)
    assert out is not None
    used, ptr2, rv2, lab2, keep = out
    assert keep.tolist() == [0, 1] and used.tolist() == [0, 1, 2, 3, 4, 6, 7]
    cyc = [used[rv2[ptr2[i]:ptr2[i + 1]]].tolist() for i in range(2)]
    assert cyc[0] == [0, 1, 7, 4, 6] and cyc[1] == right  # vertex 5 is now vertex 4
    assert weld_short_edges(verts, ptr, rv, lab, 1e-16) is None


def test_merge_equal_neighbours_makes_one_convex_region() -> None:
    # three regions of a 2 x 1 box: the left square, and the right square cut in two triangles by
    # a diagonal that (same codes on both sides) is no cut; merged: the right square again
    verts = np.array([[0, 0], [1, 0], [2, 0], [2, 1], [1, 1], [0, 1]], dtype=float)
    ptr = np.array([0, 4, 7, 10])
    rv = np.array([0, 1, 4, 5, 1, 2, 3, 1, 3, 4])
    lab = np.array([-1, 7, -1, -1, -1, -1, 9, 9, -1, 7])
    out = merge_equal_neighbours(ptr, rv, lab, np.array([[1, 2]]), np.array([1.0, 0.5, 0.5]), len(verts))
    assert out is not None
    used, ptr2, rv2, lab2, keep = out
    assert keep.tolist() == [0, 1] and np.diff(ptr2).tolist() == [4, 4]
    cyc = used[rv2[ptr2[1]:ptr2[2]]].tolist()
    k = cyc.index(1)
    assert cyc[k:] + cyc[:k] == [1, 2, 3, 4]
    assert sorted(lab2[ptr2[1]:ptr2[2]].tolist()) == [-1, -1, -1, 7]
    # a group whose union is not one simple cycle is left alone
    assert merge_equal_neighbours(ptr, rv, lab, np.zeros((0, 2), np.int64), np.ones(3), len(verts)) is None
