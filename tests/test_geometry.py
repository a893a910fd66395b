"""Polygon splitting (``splinecam.engine.geometry``) and the engine's bit-packed codes.

The engine splits convex polygons by following the arc of vertices on each side of the line
(``_split_crossed``); the general compaction of the augmented vertex cycle
(``_split_crossed_general``) is its fallback. Both must give the same pieces: the same vertices (by
identifier and position), the same edge labels, areas that add up, on random convex polygons and
on lines through vertices.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from splinecam.engine.codes import _bits, _pack, _toggle
from splinecam.engine.geometry import (
    Polygons,
    _split_crossed,
    _split_crossed_general,
    _zorder,
    mix_hash,
    split_by_lines,
)


def _random_polygons(rng: np.random.Generator, p: int, kmax: int = 9) -> Polygons:
    """Convex polygons: sorted random angles on ellipses, padded by repeating vertex 0."""
    nv = rng.integers(3, kmax + 1, size=p)
    k = int(nv.max())
    xy = np.zeros((p, k, 2))
    for i in range(p):
        ang = np.sort(rng.uniform(0, 2 * math.pi, nv[i]))
        c = rng.normal(size=2) * 3
        ax = rng.uniform(0.1, 2.0, 2)
        xy[i, : nv[i]] = c + np.stack([ax[0] * np.cos(ang), ax[1] * np.sin(ang)], 1)
        xy[i, nv[i]:] = xy[i, 0]
    hsh = rng.integers(-(2**62), 2**62, size=(p, k))
    hsh[np.arange(k)[None] >= nv[:, None]] = np.repeat(hsh[:, :1], k, 1)[np.arange(k)[None] >= nv[:, None]]
    lab = rng.integers(0, 50, size=(p, k))
    return Polygons(torch.tensor(xy), torch.tensor(hsh), torch.tensor(lab), torch.tensor(nv))


def _line_values(poly: Polygons, c: torch.Tensor, a0: torch.Tensor, a1: torch.Tensor) -> torch.Tensor:
    return c[:, None] + poly.xy[..., 0] * a0[:, None] + poly.xy[..., 1] * a1[:, None]


def _cycles(poly: Polygons) -> list[tuple[dict, dict]]:
    """Per polygon: vertex id -> position, and directed edge (id, next id) -> label."""
    out = []
    for i in range(len(poly)):
        n = int(poly.nv[i])
        ids = poly.hsh[i, :n].tolist()
        pos = {h: tuple(poly.xy[i, j].tolist()) for j, h in enumerate(ids)}
        edges = {(ids[j], ids[(j + 1) % n]): int(poly.lab[i, j]) for j in range(n)}
        out.append((pos, edges))
    return out


def _area(poly: Polygons) -> np.ndarray:
    xy = poly.xy.numpy()
    nv = poly.nv.numpy()
    out = np.zeros(len(nv))
    for i, n in enumerate(nv):
        x, y = xy[i, :n, 0], xy[i, :n, 1]
        out[i] = 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
    return out


def _same_pieces(a: Polygons, b: Polygons) -> None:
    assert len(a) == len(b)
    assert torch.equal(a.nv, b.nv)
    for (pa, ea), (pb, eb) in zip(_cycles(a), _cycles(b)):
        assert pa.keys() == pb.keys()
        for h in pa:
            np.testing.assert_allclose(pa[h], pb[h], rtol=0, atol=1e-12)
        assert ea == eb  # same cycle (up to rotation) and the same labels


def _crossing_lines(poly: Polygons, rng: np.random.Generator, through_vertices: float = 0.0):
    """Lines through a random interior point; a share of them through a vertex as well."""
    p = len(poly)
    nv = poly.nv.numpy()
    xy = poly.xy.numpy()
    w = rng.exponential(size=(p, xy.shape[1])) * (np.arange(xy.shape[1])[None] < nv[:, None])
    inner = (w[..., None] * xy).sum(1) / w.sum(1, keepdims=True)
    ang = rng.uniform(0, math.pi, p)
    d = np.stack([np.cos(ang), np.sin(ang)], 1)
    through = rng.random(p) < through_vertices
    v = xy[np.arange(p), rng.integers(0, nv)]
    d[through] = (v - inner)[through]
    a = np.stack([-d[:, 1], d[:, 0]], 1)  # normal
    c = -(a * inner).sum(1)
    return torch.tensor(c), torch.tensor(a[:, 0]), torch.tensor(a[:, 1])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("through_vertices", [0.0, 0.5])
def test_arc_split_matches_general_compaction(seed: int, through_vertices: float) -> None:
    rng = np.random.default_rng(seed)
    poly = _random_polygons(rng, 300)
    c, a0, a1 = _crossing_lines(poly, rng, through_vertices)
    s = _line_values(poly, c, a0, a1)
    tol = 1e-10 * (c.abs() + (a0.abs() + a1.abs()) * 10)
    s = s.masked_fill(s.abs() <= tol[:, None], 0.0)
    crossed = (s > 0).any(1) & (s < 0).any(1)
    assert bool(crossed.all())
    lid = torch.arange(len(poly)) + 1000
    both = _split_crossed(poly, s, lid)
    above, below = _split_crossed_general(poly, s, lid)
    _same_pieces(Polygons(both.xy[: len(poly)], both.hsh[: len(poly)], both.lab[: len(poly)], both.nv[: len(poly)]), above)
    _same_pieces(Polygons(both.xy[len(poly):], both.hsh[len(poly):], both.lab[len(poly):], both.nv[len(poly):]), below)
    # the parts tile the polygon; the new edge carries the line's label on both sides
    np.testing.assert_allclose(_area(above) + _area(below), _area(poly), rtol=1e-9, atol=1e-12)
    assert (_area(above) > 0).all() and (_area(below) > 0).all()
    for i, ((_, ea), (_, eb)) in enumerate(zip(_cycles(above), _cycles(below))):
        cut_a = [e for e, lab in ea.items() if lab == 1000 + i]
        cut_b = [e for e, lab in eb.items() if lab == 1000 + i]
        assert len(cut_a) == len(cut_b) == 1 and cut_a[0] == cut_b[0][::-1]


def test_non_arc_sign_pattern_falls_back_to_general_compaction() -> None:
    # a sign pattern that no convex polygon has (+ - + -): the arc split must not be used
    poly = _random_polygons(np.random.default_rng(3), 4, kmax=4)
    poly = Polygons(poly.xy[:, :4], poly.hsh[:, :4], poly.lab[:, :4], torch.full((4,), 4))
    s = torch.tensor([[1.0, -1.0, 1.0, -1.0]] * 4, dtype=torch.float64)
    lid = torch.arange(4)
    both = _split_crossed(poly, s, lid)
    above, below = _split_crossed_general(poly, s, lid)
    _same_pieces(Polygons(both.xy[:4], both.hsh[:4], both.lab[:4], both.nv[:4]), above)
    _same_pieces(Polygons(both.xy[4:], both.hsh[4:], both.lab[4:], both.nv[4:]), below)


def test_split_by_lines_leaves_uncrossed_polygons_alone() -> None:
    rng = np.random.default_rng(7)
    poly = _random_polygons(rng, 50)
    c, a0, a1 = _crossing_lines(poly, rng)
    miss = torch.arange(50) % 3 == 0
    c = torch.where(miss, c + 1e3, c)  # far away from these polygons
    tol = torch.full((50,), 1e-12, dtype=torch.float64)
    before = _cycles(poly)
    pieces, src = split_by_lines(poly, c, a0, a1, tol, torch.arange(50))
    assert len(pieces) == 50 + int((~miss).sum())
    assert torch.equal(src[:50], torch.arange(50)) and torch.equal(src[50:], torch.nonzero(~miss).squeeze(1))
    after = _cycles(pieces)
    for i in torch.nonzero(miss).squeeze(1).tolist():
        assert after[i] == before[i]
    np.testing.assert_allclose(
        np.bincount(src.numpy(), weights=_area(pieces)), _area(_random_polygons(np.random.default_rng(7), 50)), rtol=1e-9
    )


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    scale=st.sampled_from([1e-6, 1.0, 1e4]),
    through=st.sampled_from([0.0, 1.0]),
)
def test_split_by_lines_tiles_polygons(seed: int, scale: float, through: float) -> None:
    rng = np.random.default_rng(seed)
    poly = _random_polygons(rng, 20)
    poly = Polygons(poly.xy * scale, poly.hsh, poly.lab, poly.nv)
    c, a0, a1 = _crossing_lines(poly, rng, through)
    tol = 1e-10 * (c.abs() + (a0.abs() + a1.abs()) * 10 * scale)
    pieces, src = split_by_lines(poly, c, a0, a1, tol, torch.arange(20), all_crossed=True)
    # the shoelace sums of coordinates of size L carry rounding of about 1e-16 L^2, which is not
    # small relative to the area of a sliver (the generator makes some): measured against L^2
    size2 = float(poly.xy.abs().max()) ** 2
    np.testing.assert_allclose(
        np.bincount(src.numpy(), weights=_area(pieces)), _area(poly), rtol=1e-9, atol=1e-13 * size2
    )
    # crossing points get one identifier per (edge, line): mix_hash of the edge's end points
    for i in range(len(pieces)):
        n = int(pieces.nv[i])
        assert len(set(pieces.hsh[i, :n].tolist())) == n  # no repeated vertex


def test_mix_hash_is_symmetric_in_the_edge() -> None:
    a = torch.tensor([5, -7, 2**60])
    b = torch.tensor([9, 11, -(2**59)])
    lid = torch.tensor([1, 2, 3])
    assert torch.equal(mix_hash(a, b, lid), mix_hash(b, a, lid))
    assert len(set(mix_hash(a, b, lid).tolist())) == 3


@pytest.mark.parametrize("n", [1, 7, 8, 13, 256, 257])
def test_packed_codes_match_numpy_and_toggle(n: int) -> None:
    g = torch.Generator().manual_seed(n)
    on = torch.rand(40, n, generator=g) > 0.5
    packed = _pack(on)
    np.testing.assert_array_equal(packed.numpy(), np.packbits(on.numpy(), axis=1))
    rows = torch.randint(0, 40, (200,), generator=g)
    units = torch.randint(0, n, (200,), generator=g)
    np.testing.assert_array_equal(_bits(packed, rows, units).numpy(), on[rows, units].long().numpy())
    # toggle distinct entries, several in one byte
    key = torch.unique(rows * n + units)
    r, u = key // n, key % n
    _toggle(packed, r, u)
    on[r, u] = ~on[r, u]
    np.testing.assert_array_equal(packed.numpy(), np.packbits(on.numpy(), axis=1))


@pytest.mark.parametrize("scale", [1e-300, 1e-6, 1.0, 1e8])
def test_zorder_is_a_local_permutation(scale: float) -> None:
    g = torch.Generator().manual_seed(0)
    pts = (torch.rand(4000, 2, generator=g, dtype=torch.float64) - 0.3) * scale
    order = _zorder(pts)
    assert torch.equal(torch.sort(order).values, torch.arange(4000))
    # consecutive points along the curve are close: far shorter path than in random order
    unit = pts / scale  # (norms of 1e-300 differences would underflow)
    path = (unit[order][1:] - unit[order][:-1]).norm(dim=1).sum()
    assert path < 0.1 * (unit[1:] - unit[:-1]).norm(dim=1).sum()


def test_zorder_degenerate_inputs() -> None:
    assert len(_zorder(torch.zeros((0, 2), dtype=torch.float64))) == 0
    same = torch.full((5, 2), 3.0, dtype=torch.float64)  # zero span
    assert torch.equal(torch.sort(_zorder(same)).values, torch.arange(5))
    line = torch.stack([torch.linspace(0, 1, 50, dtype=torch.float64), torch.zeros(50, dtype=torch.float64)], 1)
    assert torch.equal(_zorder(line.flip(0)), torch.arange(49, -1, -1))  # sorted along the one axis
