"""Shared factories for the engine tests: seeded network builders and an independent exactness check.

Everything here is exposed through session-scoped fixtures whose names start with ``make_`` (so that
they cannot collide with fixtures of other test files); each fixture returns a plain function.

The independent check (:func:`check_exact`) deliberately shares no code with ``splinecam.verify`` or
the engine: it evaluates a float64 copy of the user's model on random points strictly inside the
regions, records the input of every ReLU / LeakyReLU with forward pre-hooks on the modules (and a
``TorchFunctionMode`` for functional ``F.relu`` / ``torch.relu`` / ``F.leaky_relu`` calls), and
compares the real activation patterns and outputs with what the partition claims.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

import splinecam as sc

# ============================================================================ network builders


def _seeded(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    """Build a module under ``torch.manual_seed(seed)`` without touching the global RNG state."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build()


def randomize_batchnorm(model: nn.Module, seed: int) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics and affine parameters, then ``eval()``."""
    g = torch.Generator().manual_seed(seed + 7777)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(0.25 + 2.0 * torch.rand(n, generator=g))
                m.weight.copy_(0.5 + torch.rand(n, generator=g) * torch.sign(torch.randn(n, generator=g)))
                m.bias.copy_(0.3 * torch.randn(n, generator=g))
    return model.eval()


def make_mlp_model(
    seed: int,
    widths: tuple[int, ...] = (2, 8, 8, 1),
    act: str = "relu",
    bias: bool = True,
    batchnorm: bool = False,
    negative_slope: float = 0.1,
) -> nn.Module:
    """``Linear -> [BatchNorm1d] -> act`` blocks, then a final Linear; in eval mode."""

    def build() -> nn.Module:
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(a, b, bias=bias))
            if i < len(widths) - 2:
                if batchnorm:
                    layers.append(nn.BatchNorm1d(b))
                layers.append(nn.ReLU() if act == "relu" else nn.LeakyReLU(negative_slope))
        return nn.Sequential(*layers)

    return randomize_batchnorm(_seeded(seed, build), seed)


CNN_ARCHS = ("strided", "dilated_groups", "adaptive16")


def make_cnn_model(seed: int, arch: str = "strided") -> tuple[nn.Module, tuple[int, ...]]:
    """A small CNN and its input shape (3x8x8 or 3x16x16); in eval mode with random BN statistics."""

    def build() -> nn.Module:
        if arch == "strided":
            return nn.Sequential(
                nn.Conv2d(3, 4, 3, stride=2, padding=1),
                nn.BatchNorm2d(4),
                nn.ReLU(),
                nn.Conv2d(4, 4, 3, padding=1, bias=False),
                nn.ReLU(),
                nn.AvgPool2d(2),
                nn.Flatten(),
                nn.Linear(16, 3),
            )
        if arch == "dilated_groups":
            return nn.Sequential(
                nn.Conv2d(3, 6, 3, padding=2, dilation=2, groups=3, bias=False),
                nn.LeakyReLU(0.2),
                nn.AvgPool2d(2, stride=2),
                nn.Conv2d(6, 4, 3, stride=2, padding=1, groups=2),
                nn.BatchNorm2d(4),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(16, 2),
            )
        if arch == "adaptive16":
            return nn.Sequential(
                nn.Conv2d(3, 4, 5, stride=3, padding=1),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(2),
                nn.Flatten(),
                nn.Linear(16, 6),
                nn.ReLU(),
                nn.Linear(6, 2),
            )
        raise ValueError(arch)

    shape = (3, 16, 16) if arch == "adaptive16" else (3, 8, 8)
    return randomize_batchnorm(_seeded(seed, build), seed), shape


def make_conv1d_model(seed: int) -> tuple[nn.Module, tuple[int, ...]]:
    """Conv1d / BatchNorm1d / AdaptiveAvgPool1d network on inputs of shape (2, 12)."""

    def build() -> nn.Module:
        return nn.Sequential(
            nn.Conv1d(2, 3, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(3, 4, 3, stride=2, dilation=2, bias=False),
            nn.BatchNorm1d(4),
            nn.LeakyReLU(0.05),
            nn.AdaptiveAvgPool1d(2),
            nn.Flatten(),
            nn.Linear(8, 2),
        )

    return randomize_batchnorm(_seeded(seed, build), seed), (2, 12)


class ResidualMLP(nn.Module):
    """``h = inp(x); h = h + block(h)`` (x + f(x)) repeated; captured with torch.fx."""

    def __init__(self, dim: int = 6, hidden: int = 6, depth: int = 2) -> None:
        super().__init__()
        self.inp = nn.Linear(2, dim)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim)) for _ in range(depth)
        )
        self.act = nn.ReLU()
        self.out = nn.Linear(dim, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(self.act(h))


class TwoBranchCat(nn.Module):
    """Two branches joined with torch.cat, functional activations and constant scalings."""

    def __init__(self, width: int = 5) -> None:
        super().__init__()
        self.a = nn.Linear(2, width)
        self.b = nn.Linear(2, width)
        self.drop = nn.Dropout(0.5)
        self.ident = nn.Identity()
        self.head = nn.Linear(2 * width, 4)
        self.out = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = F.relu(self.a(x)) * 2.0
        right = F.leaky_relu(self.b(x), negative_slope=0.2) / 3
        h = self.drop(torch.cat([left, right], dim=1))
        h = torch.relu(self.ident(self.head(h)) - 0.5)
        return self.out(1.0 - h)


class FunctionalMLP(nn.Module):
    """F.relu, torch.relu, Tensor.relu and F.leaky_relu inside forward, with Dropout/Identity."""

    def __init__(self, width: int = 6) -> None:
        super().__init__()
        self.l1 = nn.Linear(2, width)
        self.l2 = nn.Linear(width, width)
        self.l3 = nn.Linear(width, width)
        self.l4 = nn.Linear(width, 2)
        self.drop = nn.Dropout(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.l1(x * 2.0))
        h = torch.relu(self.drop(self.l2(h)) / 3)
        h = F.leaky_relu(self.l3(h), 0.1)
        return self.l4(h) * 0.5


CUSTOM_MODELS = {"residual": ResidualMLP, "cat": TwoBranchCat, "functional": FunctionalMLP}


def make_custom_model(seed: int, kind: str) -> nn.Module:
    return _seeded(seed, CUSTOM_MODELS[kind]).eval()


def make_one_layer_model(
    weight: Any, bias: Any, out_seed: int = 0, outputs: int = 1, act: str = "relu"
) -> nn.Module:
    """``Linear(2, k) -> act -> Linear(k, outputs)`` with the given first-layer weight (k, 2) / bias (k,)."""
    w = torch.as_tensor(np.asarray(weight, dtype=np.float64), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(bias, dtype=np.float64), dtype=torch.float64)
    k = w.shape[0]
    model = _seeded(
        out_seed,
        lambda: nn.Sequential(
            nn.Linear(2, k), nn.ReLU() if act == "relu" else nn.LeakyReLU(0.1), nn.Linear(k, outputs)
        ),
    ).double()
    with torch.no_grad():
        model[0].weight.copy_(w)
        model[0].bias.copy_(b)
    return model.eval()


def make_lines_through(points: Any, directions_deg: Any) -> tuple[np.ndarray, np.ndarray]:
    """Weights/biases of units whose zero lines pass through ``points`` with the given directions."""
    pts = np.broadcast_to(np.asarray(points, dtype=np.float64), (len(directions_deg), 2))
    th = np.deg2rad(np.asarray(directions_deg, dtype=np.float64))
    normals = np.stack([-np.sin(th), np.cos(th)], 1)
    return normals, -(normals * pts).sum(1)


# ============================================================================ real activation patterns

_FUNCTIONAL_PWL = {F.relu, torch.relu, torch.relu_, F.relu_, F.leaky_relu, F.leaky_relu_, torch.Tensor.relu}


class _RecordFunctional(TorchFunctionMode):
    """Records the input of functional ReLU / LeakyReLU calls made outside hooked modules."""

    def __init__(self, sink: list[torch.Tensor], inside: list[int]) -> None:
        super().__init__()
        self.sink = sink
        self.inside = inside

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _FUNCTIONAL_PWL and not self.inside[0]:
            self.sink.append(args[0].detach().clone())
        return func(*args, **kwargs)


def real_forward(model64: nn.Module, x: torch.Tensor) -> tuple[np.ndarray, list[np.ndarray]]:
    """Output ``(N, out)`` and the input of every ReLU / LeakyReLU call ``(N, units)``, in call order.

    Module activations are recorded with forward pre-hooks (before an in-place ReLU overwrites its
    input); functional ones with a TorchFunctionMode that ignores calls made inside hooked modules.
    """
    sink: list[torch.Tensor] = []
    inside = [0]

    def pre_hook(mod: nn.Module, inp: tuple) -> None:
        sink.append(inp[0].detach().clone())
        inside[0] += 1

    def post_hook(mod: nn.Module, inp: tuple, out: Any) -> None:
        inside[0] -= 1

    handles = []
    for m in model64.modules():
        if isinstance(m, (nn.ReLU, nn.LeakyReLU)):
            handles.append(m.register_forward_pre_hook(pre_hook))
            handles.append(m.register_forward_hook(post_hook))
    try:
        with torch.no_grad(), _RecordFunctional(sink, inside):
            y = model64(x)
    finally:
        for h in handles:
            h.remove()
    n = x.shape[0]
    return y.reshape(n, -1).numpy(), [p.reshape(n, -1).numpy() for p in sink]


def float64_copy(model: nn.Module) -> nn.Module:
    # tensors made by autograd and kept as attributes (cached activations, old-style weight_norm)
    # refuse deepcopy: take them detached
    memo = {id(v): v.detach().clone() for m in model.modules() for v in vars(m).values()
            if isinstance(v, torch.Tensor) and v.grad_fn is not None}
    return copy.deepcopy(model, memo).double().eval()


# ============================================================================ independent exactness check


@dataclass
class CheckSummary:
    regions: int
    checked_regions: int
    points: int
    checked_units: int


def _polygon_area(p: np.ndarray) -> float:
    x, y = (p - p.mean(0)).T  # centred: no cancellation for small polygons far from 0
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _random_inside(poly: np.ndarray, n: int, rng: np.random.Generator, margin: float = 0.1) -> np.ndarray:
    """Random convex combinations of the vertices, shrunk towards the vertex mean (strictly inside)."""
    w = rng.dirichlet(np.ones(len(poly)), size=n)
    pts = w @ poly
    mean = poly.mean(0)
    return mean + (1.0 - margin) * (pts - mean)


def check_geometry(part: Any) -> None:
    """Planar-graph and polygon checks computed from ``region_ptr``/``region_vertices`` only."""
    slc = part.slice
    dom = slc.domain
    scale = float(np.abs(dom - dom.mean(0)).max())
    r = part.num_regions
    assert r >= 1
    ptr, rv, verts = part.region_ptr, part.region_vertices, part.vertices
    nv = np.diff(ptr)
    assert ptr[0] == 0 and ptr[-1] == len(rv) and np.all(nv >= 3)
    assert rv.min() >= 0 and rv.max() < len(verts)
    assert np.all(np.isfinite(verts))
    # every vertex is used, and no two vertex ids share coordinates
    assert len(np.unique(rv)) == len(verts), "unused vertices"
    assert len(np.unique(verts, axis=0)) == len(verts), "two vertex ids at the same point"
    # half-edges a -> b (region on the left), with the successor of each vertex in its region
    reg = np.repeat(np.arange(r), nv)
    nxt = np.arange(len(rv)) + 1
    nxt[ptr[1:] - 1] = ptr[:-1]
    a, b = rv, rv[nxt]
    assert np.all(a != b), "repeated consecutive vertex"
    ref = verts[rv[ptr[:-1]]][reg]  # each region's first vertex (no cancellation far from 0)
    p, q = verts[a] - ref, verts[b] - ref
    cross = p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]
    areas = 0.5 * np.bincount(reg, weights=cross, minlength=r)
    assert np.all(areas > 0), "region with non-positive area (or clockwise)"
    dom_area = _polygon_area(dom)
    assert abs(areas.sum() - dom_area) <= 1e-9 * dom_area, (areas.sum(), dom_area)
    # convex: consecutive edges turn left (within rounding)
    e = q - p
    en = e[nxt]
    turn = e[:, 0] * en[:, 1] - e[:, 1] * en[:, 0]
    lens = np.hypot(e[:, 0], e[:, 1])
    assert np.all(turn >= -1e-9 * lens * lens[nxt]), "a region is not convex"
    # each half-edge appears once; regions are simple (no repeated vertex)
    n = len(verts)
    key = a * n + b
    assert len(np.unique(key)) == len(key), "a half-edge is used twice"
    assert len(np.unique(reg * n + a)) == len(a), "a region repeats a vertex"
    # all vertices inside the (closed) domain
    de = np.roll(dom, -1, 0) - dom
    dlen = np.hypot(de[:, 0], de[:, 1])
    d = verts[:, None, :] - dom[None]
    cr = de[None, :, 0] * d[..., 1] - de[None, :, 1] * d[..., 0]
    assert np.all(cr >= -1e-9 * scale * dlen), "vertex outside the domain"
    # inner edges have two regions (opposite half-edges); one-sided edges lie on the domain border
    twin = np.isin(b * n + a, key)
    for pt in (verts[a[~twin]], verts[b[~twin]]):
        dist = np.abs(de[None, :, 0] * (pt[:, None, 1] - dom[None, :, 1])
                      - de[None, :, 1] * (pt[:, None, 0] - dom[None, :, 0])) / dlen
        assert np.all(dist.min(1) <= 1e-9 * scale), "one-sided edge inside the domain (T-junction)"
    n_edges = int(twin.sum()) // 2 + int((~twin).sum())
    assert n_edges == part.num_edges
    # the engine's edge table agrees: edges[e] = (a, b) with edge_regions[e] = (left, right)
    left_of = dict(zip(key.tolist(), reg.tolist()))
    ea, eb = part.edges[:, 0].astype(np.int64), part.edges[:, 1].astype(np.int64)
    lefts = np.array([left_of.get(k, -2) for k in (ea * n + eb).tolist()])
    rights = np.array([left_of.get(k, -1) for k in (eb * n + ea).tolist()])
    np.testing.assert_array_equal(lefts, part.edge_regions[:, 0])
    np.testing.assert_array_equal(rights, part.edge_regions[:, 1])
    assert len(np.unique(np.minimum(ea, eb) * n + np.maximum(ea, eb))) == n_edges
    assert len(verts) - n_edges + r == 1, "Euler: V - E + R != 1"


def check_exact(
    model: nn.Module,
    part: Any,
    *,
    points_per_region: int = 3,
    max_regions: int = 3000,
    seed: int = 0,
    run_verify: bool = True,
) -> CheckSummary:
    """The exactness contract of DESIGN.md, checked independently of ``splinecam.verify``."""
    if run_verify:
        part.verify(model).raise_if_failed()
    check_geometry(part)
    rng = np.random.default_rng(seed)
    slc = part.slice
    r = part.num_regions
    sel = np.arange(r) if r <= max_regions else np.sort(rng.choice(r, max_regions, replace=False))
    polys = part.polygons()
    u = np.concatenate([_random_inside(polys[i], points_per_region, rng) for i in sel])
    rid = np.repeat(sel, points_per_region)
    # point location of interior points
    np.testing.assert_array_equal(part.locate(u), rid)

    model64 = float64_copy(model)
    x = slc.to_input(torch.as_tensor(u, dtype=torch.float64))
    y, pres = real_forward(model64, x)
    # output affine maps
    a_mat, b_vec = part.output_affine
    assert a_mat.shape == (r, y.shape[1], 2) and b_vec.shape == (r, y.shape[1])
    y_part = np.einsum("noi,ni->no", a_mat[rid], u) + b_vec[rid]
    # relative to the output's scale, or (a network whose output is identically zero, where the
    # engine's sums leave rounding noise) to a millionth of the largest unit input
    unit_mag = max((float(np.abs(p).max()) for p in pres if p.size), default=0.0)
    out_scale = max(float(np.abs(y).max()), 1e-6 * unit_mag, 1e-300)
    err = float(np.abs(y_part - y).max()) / out_scale
    assert err <= 1e-9, f"output affine map off by {err:.3g} (relative)"

    # activation patterns
    assert len(pres) == len(part.codes), (len(pres), len(part.codes))
    real_codes, clear = [], []
    checked = 0
    for li, p in enumerate(pres):
        codes = part.codes[li]
        assert codes.shape == (r, p.shape[1]), (codes.shape, p.shape)
        unit_scale = np.abs(p).max(0, keepdims=True)
        # units not (numerically) on their breakpoint; also not rounding noise of a layer that is
        # identically zero there (within 1e-12 of the largest unit input of the network)
        ok = (np.abs(p) > 1e-9 * unit_scale) & (np.abs(p) > 1e-12 * unit_mag)
        rc = (p > 0).astype(np.int64)
        bad = (rc != codes[rid]) & ok
        assert not bad.any(), f"layer {li}: {int(bad.sum())} unit codes differ from the real model"
        real_codes.append(rc)
        clear.append(ok)
        checked += int(ok.sum())
    if real_codes:
        rc = np.concatenate(real_codes, 1).reshape(len(sel), points_per_region, -1)
        ok = np.concatenate(clear, 1).reshape(len(sel), points_per_region, -1)
        # points of one region share their pattern
        both = ok[:, :1] & ok[:, 1:]
        assert not ((rc[:, :1] != rc[:, 1:]) & both).any(), "two points of a region differ in a code"
        # neighbouring regions differ in at least one (clear) unit of the real model
        pos = -np.ones(r, dtype=np.int64)
        pos[sel] = np.arange(len(sel))
        inner = (part.edge_regions >= 0).all(1)
        pairs = part.edge_regions[inner]
        pairs = pairs[(pos[pairs] >= 0).all(1)]
        if len(pairs):
            i, j = pos[pairs[:, 0]], pos[pairs[:, 1]]
            differ = ((rc[i, 0] != rc[j, 0]) & ok[i, 0] & ok[j, 0]).any(1)
            assert differ.all(), f"{int((~differ).sum())} neighbouring region pairs have equal real codes"
    return CheckSummary(r, len(sel), len(u), checked)


def check_coverage(part: Any, n: int = 400, seed: int = 1) -> None:
    """Random domain points lie in exactly one region (brute-force point-in-convex-polygon)."""
    rng = np.random.default_rng(seed)
    dom = part.slice.domain
    u = _random_inside(dom, n, rng, margin=0.0)
    polys, nv = part.padded_polygons()
    scale = float(np.abs(dom - dom.mean(0)).max())
    counts_strict = np.zeros(n, dtype=np.int64)
    counts_loose = np.zeros(n, dtype=np.int64)
    for s in range(0, len(polys), 2000):
        p = polys[s : s + 2000]
        k = p.shape[1]
        e = np.roll(p, -1, 1) - p  # padded slots repeat vertex 0: zero-length edges, harmless
        last = nv[s : s + 2000] - 1
        e[np.arange(len(p)), last] = p[:, 0] - p[np.arange(len(p)), last]
        valid = np.arange(k)[None] <= last[:, None]
        d = u[:, None, None, :] - p[None]
        cr = e[None, ..., 0] * d[..., 1] - e[None, ..., 1] * d[..., 0]
        ln = np.hypot(e[..., 0], e[..., 1])[None]
        tol = 1e-9 * scale * ln
        counts_strict += ((cr > tol) | ~valid[None]).all(-1).sum(1)
        counts_loose += ((cr >= -tol) | ~valid[None]).all(-1).sum(1)
    assert np.all(counts_loose >= 1), "a domain point lies in no region"
    assert np.all(counts_strict <= 1), "a domain point lies strictly inside two regions"


def exact_partition(model: nn.Module, slc: Any, **kwargs: Any) -> Any:
    """``sc.partition`` followed by ``verify`` and the independent checks; returns the partition."""
    part = sc.partition(model, slc)
    check_exact(model, part, **kwargs)
    check_coverage(part)
    return part


def region_count_box(model: nn.Module, half: float = 2.0) -> int:
    return sc.partition(model, sc.Slice.box((-half, half), (-half, half))).num_regions


# ============================================================================ fixtures (all prefixed make_)


@pytest.fixture(scope="session")
def make_mlp() -> Callable[..., nn.Module]:
    return make_mlp_model


@pytest.fixture(scope="session")
def make_cnn() -> Callable[..., tuple[nn.Module, tuple[int, ...]]]:
    return make_cnn_model


@pytest.fixture(scope="session")
def make_conv1d() -> Callable[..., tuple[nn.Module, tuple[int, ...]]]:
    return make_conv1d_model


@pytest.fixture(scope="session")
def make_custom() -> Callable[..., nn.Module]:
    return make_custom_model


@pytest.fixture(scope="session")
def make_one_layer() -> Callable[..., nn.Module]:
    return make_one_layer_model


@pytest.fixture(scope="session")
def make_lines() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    return make_lines_through


@pytest.fixture(scope="session")
def make_checked_partition() -> Callable[..., Any]:
    """``(model, slice, **kw) -> Partition`` after verify + the independent exactness checks."""
    return exact_partition


@pytest.fixture(scope="session")
def make_exactness_check() -> Callable[..., CheckSummary]:
    """``(model, part, **kw)``: verify + independent checks on an already computed partition."""
    return check_exact


@pytest.fixture(scope="session")
def make_real_forward() -> Callable[..., tuple[np.ndarray, list[np.ndarray]]]:
    """``(model, x) -> (outputs, preactivations)`` of a float64 copy, recorded with hooks."""
    return lambda model, x: real_forward(float64_copy(model), x)
