"""Known exactness failures, kept as strict expected failures until they are fixed.

Nearly coincident lines (directions about 1e-8 rad apart, e.g. a unit that is a float32-rounded
scaled copy of another) make the per-polygon snapping of :mod:`splinecam.geometry` (vertices within
1e-10 of a line's scale are put on it) decide differently in neighbouring polygons: the same line
ends at different vertices on its two sides (T-junctions, ``V - E + R != 1``), or a sliver of area
1e-24 is made. Found by fuzzing (about 10 in 1,000 such nets); every other family of the fuzzing
passed. The expected region counts are computed here in exact rational arithmetic. ``strict``: the
suite fails once one of them passes, so that the marker is removed with the fix.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
import torch.nn as nn

import splinecam as sc


def _distinct_directions(rows: list[list[float]]) -> int:
    dirs = set()
    for a, b in rows:
        fa, fb = Fraction(a), Fraction(b)
        s = abs(fa) + abs(fb)
        d = (fa / s, fb / s)
        dirs.add(d if (d[0] > 0 or (d[0] == 0 and d[1] > 0)) else (-d[0], -d[1]))
    return len(dirs)


_REASON = "nearly coincident lines: snapping decides differently on the two sides of an edge"


@pytest.mark.xfail(strict=True, reason=_REASON)
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
    assert part.verify(net) and part.num_regions == 2 * _distinct_directions(w)


@pytest.mark.xfail(strict=True, reason=_REASON)
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
    assert part.verify(net) and part.num_regions == 4
