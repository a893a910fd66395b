"""Duplicate units merged for the run (splinecam.trace.simplify.merge_duplicate_units) and expanded back
(splinecam.engine.merged): the same partition as without merging, exact against the real model, with
the model's units in codes, unit shapes and edge labels, and the user's model untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_kinds import Abs

import splinecam as sc
from splinecam.trace import simplify, trace_model
from splinecam.verify import evaluate_with_preactivations


def _no_merge(monkeypatch):
    monkeypatch.setattr("splinecam.engine.run.merge_duplicate_units", lambda p: (p, []))


def _dup_linear(n_in: int, distinct: int, copies: int, seed: int, scaled: bool, zero_rows: int = 0,
                bias: bool = True) -> nn.Linear:
    """A Linear whose ``distinct * copies + zero_rows`` rows are copies of ``distinct`` random rows (in a
    shuffled order), times powers of two and thirds where ``scaled``, and zero rows."""
    g = torch.Generator().manual_seed(seed)
    base_w = torch.randn(distinct, n_in, generator=g, dtype=torch.float64)
    base_b = torch.randn(distinct, generator=g, dtype=torch.float64) if bias else torch.zeros(distinct, dtype=torch.float64)
    idx = torch.arange(distinct).repeat(copies)
    fac = torch.ones(len(idx), dtype=torch.float64)
    if scaled:
        fac = torch.tensor([1.0, 2.0, 3.0, 0.25, 1 / 3][: copies], dtype=torch.float64).repeat_interleave(distinct)
    w = torch.cat([base_w[idx] * fac[:, None], torch.zeros(zero_rows, n_in, dtype=torch.float64)])
    b = torch.cat([base_b[idx] * fac, torch.zeros(zero_rows, dtype=torch.float64)])
    perm = torch.randperm(len(w), generator=g)
    lin = nn.Linear(n_in, len(w), bias=bias).double()
    with torch.no_grad():
        lin.weight.copy_(w[perm])
        if bias:
            lin.bias.copy_(b[perm])
    return lin


def _dup_net(seed: int, act: type[nn.Module] = nn.ReLU, scaled: bool = False, bias: bool = True) -> nn.Sequential:
    torch.manual_seed(seed)
    l1 = _dup_linear(2, 5, 3, seed, scaled, zero_rows=2, bias=bias)
    mid = nn.Linear(l1.out_features, 8, bias=bias).double()
    l2 = _dup_linear(8, 4, 2, seed + 100, scaled, bias=bias)
    with torch.no_grad():  # the second layer's rows through the first: l2(mid(h))
        mid_w = l2.weight @ mid.weight
    chain = nn.Linear(l1.out_features, l2.out_features, bias=bias).double()
    with torch.no_grad():
        chain.weight.copy_(mid_w)
        if bias:
            chain.bias.copy_(l2.bias)
    return nn.Sequential(l1, act(), chain, act(), nn.Linear(l2.out_features, 3).double()).eval()


def _code_rows(part: sc.Partition) -> list[tuple]:
    rows = np.concatenate([part.layer_codes(i) for i in range(len(part.unit_shapes))], 1)
    return sorted(map(tuple, rows.tolist()))


def _same_partition(a: sc.Partition, b: sc.Partition) -> None:
    assert a.num_regions == b.num_regions
    assert a.unit_shapes == b.unit_shapes
    np.testing.assert_allclose(np.sort(a.areas()), np.sort(b.areas()), rtol=1e-9, atol=1e-12)
    assert _code_rows(a) == _code_rows(b)


CASES = [
    ("relu", nn.ReLU, False, True),
    ("relu-scaled", nn.ReLU, True, True),
    ("relu-bias-free", nn.ReLU, True, False),
    ("leaky", lambda: nn.LeakyReLU(0.1), True, True),
    ("hardtanh", nn.Hardtanh, False, True),
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name,act,scaled,bias", CASES, ids=[c[0] for c in CASES])
def test_merged_partition_equals_the_unmerged_one(seed, name, act, scaled, bias, monkeypatch):
    net = _dup_net(seed, act, scaled, bias)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    _, merges = simplify.merge_duplicate_units(trace_model(net))
    assert merges, "the test network has duplicate units"
    sl = sc.Slice.box((-3, 3), (-3, 3))
    part = sc.partition(net, sl)
    assert bool(part.verify(net))
    _no_merge(monkeypatch)
    plain = sc.partition(net, sl)
    _same_partition(part, plain)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])


@pytest.mark.parametrize("seed", range(3))
def test_edge_labels_name_a_model_unit_that_is_zero_on_the_edge(seed):
    net = _dup_net(seed, scaled=True)
    part = sc.partition(net, sc.Slice.box((-3, 3), (-3, 3)))
    inner = part.edge_layer >= 0
    assert inner.any()
    mid = part.vertices[part.edges[inner]].mean(1)
    x = torch.as_tensor(part.slice.to_input(mid), dtype=torch.float64)
    with torch.no_grad():
        _, pre = evaluate_with_preactivations(net, x.reshape(len(mid), -1))
    layer, unit = part.edge_layer[inner], part.edge_unit[inner]
    vals = np.array([float(pre[li][i, u]) for i, (li, u) in enumerate(zip(layer, unit))])
    scale = max(float(p.abs().max()) for p in pre)
    assert np.abs(vals).max() <= 1e-9 * scale
    assert (unit < np.array([part.unit_shapes[li][0] for li in layer])).all()


def test_merge_groups_and_what_it_keeps():
    lin = nn.Linear(2, 6).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1, 2], [3, 1], [2, 4], [1, 2], [0, 0], [0, 0]], dtype=torch.float64))
        lin.bias.copy_(torch.tensor([1, 0, 2, 1, 0, 0], dtype=torch.float64))
    head = nn.Linear(6, 1).double()
    net = nn.Sequential(lin, nn.ReLU(), head).eval()
    prog, merges = simplify.merge_duplicate_units(trace_model(net))
    (m,) = merges
    # rows 0, 2 (= 2 x row 0) and 3 (= row 0) are one unit; the zero rows 4, 5 are another
    assert m.first.tolist() == [0, 1, 4] and m.rep.tolist() == [0, 1, 0, 0, 2, 2]
    assert prog.steps[1].target.out_features == 3
    new_head = prog.steps[3].target.weight[0]
    w = head.weight[0].detach()
    expect = torch.stack([w[0] + 2 * w[2] + w[3], w[1], w[4] + w[5]])
    torch.testing.assert_close(new_head, expect, rtol=1e-15, atol=0)
    # non-homogeneous (Hardtanh): only equal rows merge
    _, merges = simplify.merge_duplicate_units(trace_model(nn.Sequential(lin, nn.Hardtanh(), head).eval()))
    assert merges[0].first.tolist() == [0, 1, 2, 4]
    # the user's modules are untouched
    assert lin.out_features == 6 and prog.steps[1].target is not lin


def test_nothing_to_merge_returns_the_program_itself():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1)).eval()
    prog = trace_model(net)
    out, merges = simplify.merge_duplicate_units(prog)
    assert out is prog and merges == []


def test_per_unit_slopes_and_forks_are_not_merged():
    lin = _dup_linear(2, 3, 2, 0, False)
    prelu = nn.Sequential(lin, nn.PReLU(6).double(), nn.Linear(6, 1).double()).eval()
    assert simplify.merge_duplicate_units(trace_model(prelu))[1] == []
    one = nn.Sequential(lin, nn.PReLU(1).double(), nn.Linear(6, 1).double()).eval()
    assert len(simplify.merge_duplicate_units(trace_model(one))[1]) == 1
    assert bool(sc.partition(one, sc.Slice.box((-2, 2), (-2, 2))).verify(one))

    class Fork(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = lin, nn.Linear(6, 2).double()

        def forward(self, x):
            h = self.a(x)
            return self.b(torch.relu(h)) + h[:, :2]

    net = Fork().eval()
    assert simplify.merge_duplicate_units(trace_model(net))[1] == []
    assert bool(sc.partition(net, sc.Slice.box((-2, 2), (-2, 2))).verify(net))


def test_a_linear_on_a_feature_axis_expands_every_row():
    # Linear on (N, 2, 2): the unit shape is (2, units) and every leading row is expanded
    class Rows(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = _dup_linear(2, 3, 3, 1, True)
            self.b = nn.Linear(9, 2).double()
            self.c = nn.Linear(4, 1).double()

        def forward(self, x):
            h = torch.relu(self.a(x.view(-1, 2, 2)))
            return self.c(torch.relu(self.b(h)).flatten(1))

    net = Rows().eval()
    sl = sc.Slice(np.zeros(4), np.eye(4)[:2], np.array([[-2, -2], [2, -2], [2, 2], [-2, 2]], dtype=float))
    part = sc.partition(net, sl)
    assert part.unit_shapes[0] == (2, 9)
    assert bool(part.verify(net))


def test_many_slices_and_packed_codes_of_many_units(monkeypatch):
    net = nn.Sequential(_dup_linear(2, 7, 5, 3, True, zero_rows=3), nn.ReLU(), nn.Linear(38, 1).double()).eval()
    slices = [sc.Slice.box((-2, 2), (-2, 2)), sc.Slice.box((0, 3), (-1, 1))]
    parts = sc.partition_many(net, slices)
    for p in parts:
        assert bool(p.verify(net))
    _no_merge(monkeypatch)
    for p, q in zip(parts, sc.partition_many(net, slices)):
        _same_partition(p, q)


# --------------------------------------------------------------------------- property-based


@st.composite
def _redundant_nets(draw):
    """Two hidden layers whose rows are copies (times positive factors), zero rows or dead rows of a
    few distinct ones, with or without biases, and a slice of any scale around any centre."""
    seed = draw(st.integers(0, 10_000))
    g = torch.Generator().manual_seed(seed)
    bias = draw(st.booleans())
    act = draw(st.sampled_from(["relu", "leaky", "abs"]))

    def layer(n_in: int) -> nn.Linear:
        distinct = draw(st.integers(1, 4))
        copies = draw(st.integers(1, 3))
        zero, dead = draw(st.integers(0, 2)), draw(st.integers(0, 2))
        w = torch.randn(distinct, n_in, generator=g, dtype=torch.float64)
        b = torch.randn(distinct, generator=g, dtype=torch.float64) if bias else torch.zeros(distinct, dtype=torch.float64)
        idx = torch.arange(distinct).repeat(copies)
        fac = torch.tensor([1.0, 2.0, 0.5, 3.0])[torch.randint(0, 4, (len(idx),), generator=g)].double()
        rows_w = [w[idx] * fac[:, None], torch.zeros(zero, n_in, dtype=torch.float64),
                  torch.zeros(dead, n_in, dtype=torch.float64)]
        rows_b = [b[idx] * fac, torch.zeros(zero, dtype=torch.float64), -torch.ones(dead, dtype=torch.float64)]
        ww, bb = torch.cat(rows_w), torch.cat(rows_b)
        perm = torch.randperm(len(ww), generator=g)
        lin = nn.Linear(n_in, len(ww)).double()
        with torch.no_grad():
            lin.weight.copy_(ww[perm])
            lin.bias.copy_(bb[perm])
        return lin

    def make_act() -> nn.Module:
        return {"relu": nn.ReLU, "leaky": lambda: nn.LeakyReLU(0.25), "abs": Abs}[act]()

    l1 = layer(2)
    l2 = layer(l1.out_features)
    net = nn.Sequential(l1, make_act(), l2, make_act(), nn.Linear(l2.out_features, 2).double()).eval()
    scale = 10.0 ** draw(st.integers(-4, 4))
    cx, cy = draw(st.floats(-2, 2)), draw(st.floats(-2, 2))
    sl = sc.Slice.box((cx - scale, cx + scale), (cy - scale, cy + scale))
    return net, sl


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=_redundant_nets())
def test_property_merged_equals_unmerged_and_verifies(case, monkeypatch):
    net, sl = case
    assume(simplify.merge_duplicate_units(trace_model(net))[1])  # (cases with something to merge)
    part = sc.partition(net, sl)
    assert bool(part.verify(net)), part.verify(net)
    with monkeypatch.context() as m:
        _no_merge(m)
        plain = sc.partition(net, sl)
    assert part.num_regions == plain.num_regions
    assert part.unit_shapes == plain.unit_shapes
    # areas to the domain's rounding (a region of area 0.02 in a 2e4-wide box has vertices ~1e4)
    total = float(part.areas().sum())
    np.testing.assert_allclose(np.sort(part.areas()), np.sort(plain.areas()), rtol=1e-9, atol=1e-12 * total)
    assert _code_rows(part) == _code_rows(plain)
