"""Fuzzing harness: families of adversarial instances (issue 15's audit), generated with hypothesis.

Families: translated tiny domains, mixed unit scales (huge never-active units, units 1e8 times the
others), near-tied logits, forward hooks. Each instance is checked with ``part.verify(model)`` and an
independent check: the conftest's (codes and outputs at interior points against the torch model,
areas summing to the domain's area, the planar graph), or, where that check's tolerances do not
apply (units 1e11 times the others), the partition of an equivalent network without the extreme
units.

The default profile runs a few examples per family, deterministically, in the normal test run (a
few seconds). The long profile runs many random ones; select it by hand with::

    SPLINECAM_FUZZ=long python -m pytest -q tests/test_fuzz.py

(``SPLINECAM_FUZZ_EXAMPLES=N`` sets the number of examples per family of the long profile.)
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import splinecam as sc
from splinecam.errors import UnsupportedModelError

LONG = os.environ.get("SPLINECAM_FUZZ", "").lower() == "long"
if LONG:
    FUZZ = settings(max_examples=int(os.environ.get("SPLINECAM_FUZZ_EXAMPLES", "300")), deadline=None,
                    database=None, suppress_health_check=list(HealthCheck))
else:
    FUZZ = settings(max_examples=3, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def _mlp(seed: int, widths: tuple[int, ...]) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(a, b, dtype=torch.float64))
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers).eval()


def _box(c: tuple[float, float], h: float) -> sc.Slice:
    return sc.Slice.box((c[0] - h, c[0] + h), (c[1] - h, c[1] + h))


# ----------------------------------------------------------------------------- translated tiny domains
def _translated(g: nn.Module, c: tuple[float, float], h: float) -> nn.Module:
    """``h * g((x - c) / h) + 1``, the translation folded into the first bias."""
    m = _mlp(0, tuple([g[0].in_features] + [lin.out_features for lin in g if isinstance(lin, nn.Linear)]))
    ct = torch.tensor(c, dtype=torch.float64)
    lins = [lin for lin in g if isinstance(lin, nn.Linear)]
    mins = [lin for lin in m if isinstance(lin, nn.Linear)]
    with torch.no_grad():
        for a, b in zip(lins, mins):
            b.weight.copy_(a.weight)
            b.bias.copy_(h * a.bias)
        mins[0].bias.sub_(lins[0].weight @ ct)
        mins[-1].bias.add_(1.0)
    return m


@FUZZ
@given(
    seed=st.integers(0, 10_000),
    width=st.integers(3, 8),
    radius=st.sampled_from([10.0, 1e3]),
    angle=st.floats(0, 2 * math.pi),
    h=st.sampled_from([1e-6, 1e-4, 1e-2]),
)
def test_fuzz_translated_tiny_domains(seed, width, radius, angle, h, make_exactness_check) -> None:
    g = _mlp(seed, (2, width, width, 2))
    c = (radius * math.cos(angle), radius * math.sin(angle))
    parts = []
    for centre in [(0.0, 0.0), c]:
        m = _translated(g, centre, h)
        part = sc.partition(m, _box(centre, h))
        make_exactness_check(m, part, points_per_region=2, max_regions=400)
        parts.append(part)
    p0, p1 = parts
    # translation changes nothing: regions, boundary, decision regions, output range
    assert p0.num_regions == p1.num_regions
    # (the model itself is evaluated at absolute coordinates: at |c| / h = 1e9 its lines are known
    # to about 1e-7 of the domain)
    np.testing.assert_allclose(np.sort(p0.areas()), np.sort(p1.areas()), rtol=0, atol=1e-6 * h * h)
    b0, b1 = p0.decision_boundary(), p1.decision_boundary()
    assert abs(b0.length - b1.length) <= 1e-6 * max(b0.length, h)
    assert len(p0.decision_regions()) == len(p1.decision_regions())
    r0, r1 = p0.output_range(0), p1.output_range(0)
    tol = 1e-6 * max(r0.span, 1e-300) + 1e-12
    assert abs(r0.max - r1.max) <= tol and abs(r0.min - r1.min) <= tol


# ----------------------------------------------------------------------------- mixed unit scales
def _rescaled(net: nn.Module, unit: int, s: float) -> nn.Module:
    """The same function and partition: unit ``unit`` of the first layer times ``s``, its outgoing
    weights divided by ``s`` (ReLU is positively homogeneous)."""
    m = _mlp(0, (2, net[0].out_features, net[2].out_features, net[4].out_features))
    m.load_state_dict(net.state_dict())
    with torch.no_grad():
        m[0].weight[unit] *= s
        m[0].bias[unit] *= s
        m[2].weight[:, unit] /= s
    return m


def _with_dead_units(net: nn.Module, biases: list[float]) -> nn.Module:
    """``net`` with never-active units (zero weights, huge negative bias) added to its first layer."""
    n0, n1, n2 = net[0].out_features, net[2].out_features, net[4].out_features
    k = len(biases)
    m = _mlp(0, (2, n0 + k, n1, n2))
    with torch.no_grad():
        m[0].weight.zero_()
        m[0].weight[:n0] = net[0].weight
        m[0].bias[:n0] = net[0].bias
        m[0].bias[n0:] = torch.tensor(biases, dtype=torch.float64)
        m[2].weight[:, :n0] = net[2].weight
        m[2].weight[:, n0:] = 0.7
        m[2].bias.copy_(net[2].bias)
        m[4].load_state_dict(net[4].state_dict())
    return m


@FUZZ
@given(
    seed=st.integers(0, 10_000),
    width=st.integers(3, 8),
    unit=st.integers(0, 7),
    log_scale=st.sampled_from([-8, 4, 8]),
    dead=st.lists(st.integers(9, 14), min_size=0, max_size=3),
)
def test_fuzz_mixed_unit_scales(seed, width, unit, log_scale, dead, make_checked_partition) -> None:
    net = _mlp(seed, (2, width, width, 1))
    ref = make_checked_partition(net, sc.Slice.box((-2, 2), (-2, 2)))
    m = _with_dead_units(_rescaled(net, unit % width, 10.0 ** log_scale), [-(10.0 ** k) for k in dead])
    part = sc.partition(m, sc.Slice.box((-2, 2), (-2, 2)))
    part.verify(m).raise_if_failed()
    # the same partition as the network without extreme units
    assert part.num_regions == ref.num_regions
    np.testing.assert_allclose(np.sort(part.areas()), np.sort(ref.areas()), rtol=1e-6, atol=1e-12)
    r = ref.locate(part.centroids())
    assert np.array_equal(np.sort(r), np.arange(ref.num_regions))
    assert np.array_equal(part.codes[0][:, :width], ref.codes[0][r]) and not part.codes[0][:, width:].any()
    np.testing.assert_allclose(part.output_affine[0], ref.output_affine[0][r], rtol=1e-7, atol=1e-9)


# ----------------------------------------------------------------------------- near-tied logits
@FUZZ
@given(
    seed=st.integers(0, 10_000),
    width=st.integers(3, 8),
    log_delta=st.sampled_from([None, -15, -13, -12, -11, -9, -6]),
)
def test_fuzz_near_tied_logits(seed, width, log_delta, make_exactness_check) -> None:
    net = _mlp(seed, (2, width, width, 3))
    delta = 0.0 if log_delta is None else 10.0 ** log_delta
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        net[4].weight[2] = net[4].weight[0] + delta * torch.randn(width, generator=g, dtype=torch.float64)
        net[4].bias[2] = net[4].bias[0] + delta
    slc = sc.Slice.box((-2, 2), (-2, 2))
    part = sc.partition(net, slc)
    make_exactness_check(net, part, points_per_region=2, max_regions=400)
    db = part.decision_boundary()
    with torch.no_grad():
        y_all = net(torch.as_tensor(slc.to_input(part.vertices))).numpy()
    scale = float(np.abs(y_all).max())
    if db.length > 0:
        _, x = db.sample(64, seed=seed)
        with torch.no_grad():
            y = np.sort(net(torch.as_tensor(x)).numpy(), 1)
        assert np.abs(y[:, -1] - y[:, -2]).max() <= 1e-9 * scale
    if log_delta is None:  # identical logits: the lower index wins, class 2 never does
        assert not (db.classes == 2).any()
    regions = part.decision_regions()
    assert sum(r.area for r in regions) == pytest.approx(16.0, rel=1e-9)
    # a tie is decided once for the whole partition: classes 0 and 2 are separated nowhere when
    # they differ by less than the tie tolerance
    if log_delta is not None and delta * 4 * math.sqrt(width) < 1e-11 * scale:
        assert not ((db.classes[:, 0] == 0) & (db.classes[:, 1] == 2)).any()


# ----------------------------------------------------------------------------- forward hooks
@FUZZ
@given(
    seed=st.integers(0, 10_000),
    which=st.integers(0, 5),
    kind=st.sampled_from(["forward", "forward_pre", "global_forward", "global_forward_pre"]),
    effect=st.sampled_from(["none", "scale", "shift"]),
)
def test_fuzz_forward_hooks_are_never_silently_ignored(seed, which, kind, effect) -> None:
    net = _mlp(seed, (2, 6, 6, 2))
    mods = [net, *net]
    mod = mods[which % len(mods)]

    def post(m, i, o):
        return None if effect == "none" else (o * 0.5 if effect == "scale" else o + 1.0)

    def pre(m, i):
        return None if effect == "none" else ((i[0] * 0.5,) if effect == "scale" else (i[0] + 1.0,))

    if kind == "forward":
        handle = mod.register_forward_hook(post)
    elif kind == "forward_pre":
        handle = mod.register_forward_pre_hook(pre)
    elif kind == "global_forward":
        handle = nn.modules.module.register_module_forward_hook(post)
    else:
        handle = nn.modules.module.register_module_forward_pre_hook(pre)
    try:
        with pytest.raises(UnsupportedModelError, match="hook"):
            sc.partition(net, sc.Slice.box((-2, 2), (-2, 2)))
    finally:
        handle.remove()
