"""``Partition.output_range``: the exact minimum and maximum of one output over the domain.

Checked on lattice networks, ``f(u) = min_j max_{k in S_j} (g_k . u + c_k)`` written with ReLUs and
activation-free Linear layers (``max(p, q) = q + relu(p - q)``, ``q = relu(q) - relu(-q)``), with
duplicate units (two halves of one unit) and identically-zero units: against the closed form (the
extremes of such a function over a box lie at vertices of the arrangement of the lines
``g_a . u + c_a = g_b . u + c_b``, enumerated here) and against a dense grid of the real model.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn as nn

import splinecam as sc
from splinecam.analysis.extremes import OutputRange, OutputRangeError, output_range


# ----------------------------------------------------------------------------- lattice networks
def _level(values: int, ops: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One ReLU level: ``ops`` are ``("max", i, j)``, ``("min", i, j)`` or ``("id", i)`` on ``values``
    inputs. Returns the weights of ``Linear(values, hidden)`` and ``Linear(hidden, len(ops))`` (no
    biases), with a duplicated unit and an identically-zero unit per op."""
    w1: list[np.ndarray] = []
    w2_cols: list[tuple[int, float]] = []

    def unit(row: np.ndarray, out: int, weight: float) -> None:
        w1.append(row)
        w2_cols.append((out, weight))

    for o, op in enumerate(ops):
        e = np.eye(values)
        if op[0] == "id":
            unit(e[op[1]], o, 1.0)
            unit(-e[op[1]], o, -1.0)
        else:
            _, i, j = op
            sign = 1.0 if op[0] == "max" else -1.0
            # max(p, q) = q + relu(p - q); min(p, q) = q - relu(q - p); the relu in two halves
            d = sign * (e[i] - e[j])
            unit(d, o, 0.5 * sign)
            unit(d, o, 0.5 * sign)
            unit(e[j], o, 1.0)
            unit(-e[j], o, -1.0)
        unit(np.zeros(values), o, 1.0)  # identically zero
    a = np.stack(w1)
    b = np.zeros((len(ops), len(w1)))
    for h, (o, wt) in enumerate(w2_cols):
        b[o, h] = wt
    return a, b, np.zeros(len(ops))


def _tournament(idx: list[int], op: str) -> list[list[tuple]]:
    """Pairings that reduce the values ``idx`` to one by ``op``, level by level (positions)."""
    levels = []
    n = len(idx)
    while n > 1:
        ops: list[tuple] = [(op, 2 * i, 2 * i + 1) for i in range(n // 2)]
        if n % 2:
            ops.append(("id", n - 1))
        levels.append(ops)
        n = len(ops)
    return levels


def lattice_net(g: np.ndarray, c: np.ndarray, groups: list[list[int]], mix: bool = True) -> nn.Module:
    """``min_j max_{k in groups[j]} (g_k . u + c_k)`` as a ReLU network with activation-free layers."""
    order = [k for grp in groups for k in grp]
    layers: list[nn.Module] = []
    first = nn.Linear(2, len(order), dtype=torch.float64)
    with torch.no_grad():
        first.weight.copy_(torch.as_tensor(g[order]))
        first.bias.copy_(torch.as_tensor(c[order]))
    layers.append(first)
    if mix:  # an activation-free Linear layer: a permutation, undone by the first level's weights
        perm = np.random.default_rng(len(order)).permutation(len(order))
        p = nn.Linear(len(order), len(order), bias=False, dtype=torch.float64)
        with torch.no_grad():
            p.weight.copy_(torch.as_tensor(np.eye(len(order))[perm]))
        layers.append(p)
        inv = np.argsort(perm)
    else:
        inv = np.arange(len(order))

    # max inside every group (all groups at once), then min over the groups
    def run(levels_per_group: list[list[list[tuple]]], offsets: list[int], width: int, pre: np.ndarray) -> tuple[int, list[int]]:
        depth = max((len(lv) for lv in levels_per_group), default=0)
        pos = offsets
        for d in range(depth):
            ops, new_pos = [], []
            for gi, lv in enumerate(levels_per_group):
                if d < len(lv):
                    new_pos.append(len(ops))
                    ops.extend((o[0], pos[gi] + o[1], pos[gi] + o[2]) if o[0] != "id" else ("id", pos[gi] + o[1])
                               for o in lv[d])
                else:
                    new_pos.append(len(ops))
                    ops.append(("id", pos[gi]))
            a, b, _ = _level(width, ops)
            if d == 0 and pre is not None:
                a = a @ pre
            l1 = nn.Linear(a.shape[1], a.shape[0], bias=False, dtype=torch.float64)
            l2 = nn.Linear(b.shape[1], b.shape[0], bias=False, dtype=torch.float64)
            with torch.no_grad():
                l1.weight.copy_(torch.as_tensor(a))
                l2.weight.copy_(torch.as_tensor(b))
            layers.extend([l1, nn.ReLU(), l2])
            width, pos, pre = len(ops), new_pos, None
        return width, pos

    offs = list(np.cumsum([0] + [len(grp) for grp in groups])[:-1])
    pre = np.eye(len(order))[inv] if mix else None
    width, pos = run([_tournament(grp, "max") for grp in groups], offs, len(order), pre)
    if len(groups) > 1:
        width, pos = run([_tournament(list(range(len(groups))), "min")], [0], width, None)
    return nn.Sequential(*layers).double().eval()


def lattice_value(g: np.ndarray, c: np.ndarray, groups: list[list[int]], u: np.ndarray) -> np.ndarray:
    pieces = u @ g.T + c
    return np.min(np.stack([pieces[:, grp].max(1) for grp in groups], 1), 1)


def exact_range(g: np.ndarray, c: np.ndarray, groups: list[list[int]], lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    """Closed form: the extremes over the box lie at vertices of the arrangement of the lines where
    two pieces are equal (and the box's corners)."""
    cand = [np.array([x, y]) for x in (lo[0], hi[0]) for y in (lo[1], hi[1])]
    lines = []
    for a, b in itertools.combinations(range(len(c)), 2):
        n, d = g[a] - g[b], c[a] - c[b]
        if np.abs(n).max() > 1e-12:
            lines.append((n, d))
    for n, d in lines:  # with the box's edges
        for k in (0, 1):
            for val in (lo[k], hi[k]):
                if abs(n[1 - k]) > 1e-12:
                    p = np.empty(2)
                    p[k] = val
                    p[1 - k] = -(d + n[k] * val) / n[1 - k]
                    cand.append(p)
    for (n1, d1), (n2, d2) in itertools.combinations(lines, 2):
        m = np.stack([n1, n2])
        if abs(np.linalg.det(m)) > 1e-12:
            cand.append(np.linalg.solve(m, -np.array([d1, d2])))
    pts = np.array(cand)
    pts = pts[np.all((pts >= lo - 1e-12) & (pts <= hi + 1e-12), 1)]
    v = lattice_value(g, c, groups, np.clip(pts, lo, hi))
    return float(v.min()), float(v.max())


def _random_lattice(seed: int) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(3, 7))
    g = rng.normal(size=(k, 2))
    c = rng.normal(size=k)
    if seed % 2:  # a duplicated piece
        g = np.concatenate([g, g[:1]])
        c = np.concatenate([c, c[:1]])
        k += 1
    perm = rng.permutation(k)
    cuts = np.sort(rng.choice(np.arange(1, k), size=int(rng.integers(0, min(3, k - 1) + 1)), replace=False))
    groups = [list(map(int, p)) for p in np.split(perm, cuts) if len(p)]
    return g, c, groups


def _grid(model: nn.Module, slc: sc.Slice, n: int = 201) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = slc.domain.min(0), slc.domain.max(0)
    xs, ys = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
    u = np.stack([xs.ravel(), ys.ravel()], 1)
    with torch.no_grad():
        y = model(torch.as_tensor(slc.to_input(u))).reshape(len(u), -1).numpy()
    return u, y


# ----------------------------------------------------------------------------- tests
def test_lattice_network_is_the_lattice_function() -> None:
    g, c, groups = _random_lattice(3)
    net = lattice_net(g, c, groups)
    u = np.random.default_rng(0).uniform(-2, 2, size=(500, 2))
    with torch.no_grad():
        y = net(torch.as_tensor(u))[:, 0].numpy()
    np.testing.assert_allclose(y, lattice_value(g, c, groups, u), atol=1e-12)
    zero = [m for m in net if isinstance(m, nn.Linear)]
    assert any((m.weight == 0).all(1).any() for m in zero)  # identically-zero units are there


@pytest.mark.parametrize("seed", range(8))
def test_output_range_of_lattice_networks(seed: int) -> None:
    g, c, groups = _random_lattice(seed)
    net = lattice_net(g, c, groups, mix=seed % 3 != 0)
    lo, hi = np.array([-2.0, -1.5]), np.array([1.5, 2.5])
    slc = sc.Slice.box((lo[0], hi[0]), (lo[1], hi[1]))
    part = sc.partition(net, slc)
    part.verify(net).raise_if_failed()
    r = part.output_range(0)
    assert isinstance(r, OutputRange) and r.output == 0
    emin, emax = exact_range(g, c, groups, lo, hi)
    scale = max(abs(emin), abs(emax), 1.0)
    assert abs(r.max - emax) <= 1e-9 * scale and abs(r.min - emin) <= 1e-9 * scale
    # against a dense grid of the real model: never beaten, and close
    u, y = _grid(net, slc)
    lip = np.abs(g).sum(1).max()
    spacing = float((hi - lo).max()) / 200
    assert r.max >= y[:, 0].max() - 1e-12 * scale and r.min <= y[:, 0].min() + 1e-12 * scale
    assert r.max - y[:, 0].max() <= lip * spacing and y[:, 0].min() - r.min <= lip * spacing
    # the points reach the values in the real model, and lie in the domain
    with torch.no_grad():
        y_hi = net(torch.as_tensor(r.argmax_x[None]))[0, 0].item()
        y_lo = net(torch.as_tensor(r.argmin_x[None]))[0, 0].item()
    assert abs(y_hi - r.max) <= 1e-9 * scale and abs(y_lo - r.min) <= 1e-9 * scale
    for p in (r.argmin_u, r.argmax_u):
        assert np.all(p >= lo - 1e-12) and np.all(p <= hi + 1e-12)
    assert r.argmax_region in range(part.num_regions) and r.span == r.max - r.min


def test_convex_lattice_maximum_is_at_a_corner() -> None:
    # one group: a convex function, whose maximum over the box is the largest piece at a corner
    rng = np.random.default_rng(11)
    g, c = rng.integers(-3, 4, size=(6, 2)).astype(float), rng.integers(-2, 3, size=6).astype(float)
    net = lattice_net(g, c, [list(range(6))])
    part = sc.partition(net, sc.Slice.box((-1, 1), (-1, 1)))
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    closed = float((corners @ g.T + c).max())
    r = part.output_range()
    assert r.max == pytest.approx(closed, abs=1e-12)
    assert float(np.abs(r.argmax_u).max()) == 1.0  # a corner
    assert r.min == pytest.approx(exact_range(g, c, [list(range(6))], -np.ones(2), np.ones(2))[0], abs=1e-12)


def test_output_range_of_each_output_and_on_a_general_slice() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)).double().eval()
    slc = sc.Slice.from_anchors([np.zeros(5), np.ones(5)], pad=1.0)
    part = sc.partition(net, slc)
    u, y = _grid(net, slc)
    for k in range(3):
        r = output_range(part, k)
        assert r.argmax_x.shape == (5,)
        assert r.max >= y[:, k].max() - 1e-12 and r.min <= y[:, k].min() + 1e-12
        assert r.max - y[:, k].max() < 0.05 * (r.span + 1e-12) and y[:, k].min() - r.min < 0.05 * (r.span + 1e-12)
        with torch.no_grad():
            assert net(torch.as_tensor(r.argmax_x[None]))[0, k].item() == pytest.approx(r.max, abs=1e-12)


def test_output_range_is_translation_invariant() -> None:
    # a small domain far from the origin: the maps are evaluated centred, as the engine computes them
    import sys

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from test_reliability import _translated

    h = 1e-6
    res = []
    for c in [(0.0, 0.0), (1000.0, -800.0)]:
        m = _translated(4, c, h)
        part = sc.partition(m, sc.Slice.box((c[0] - h, c[0] + h), (c[1] - h, c[1] + h)))
        r = part.output_range(1)
        res.append((r.min, r.max, (r.argmax_u - np.array(c)) / h))
    (a0, b0, p0), (a1, b1, p1) = res
    span = b0 - a0
    assert span > 0 and abs(a0 - a1) <= 1e-6 * span and abs(b0 - b1) <= 1e-6 * span
    np.testing.assert_allclose(p0, p1, atol=1e-6)


@pytest.mark.parametrize("bad", [2, -1, True, 1.5, "0"])
def test_output_range_errors(bad) -> None:
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2)).double().eval()
    part = sc.partition(net, sc.Slice.box())
    with pytest.raises(OutputRangeError, match="output"):
        part.output_range(bad)
    assert part.output_range(np.int64(1)).output == 1
