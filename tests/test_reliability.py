"""The ten faults found by the adversarial audit of issue 15, one test (or a few) each.

Each test says which audit fault it is ("audit fault N"); every one of them failed on the code
before the fix (commit 08cd1df).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import splinecam as sc
from splinecam.errors import SliceError, UnsupportedModelError
from splinecam.trace.specs import PWLSpec

BOX = sc.Slice.box((-2, 2), (-2, 2))


def _mlp(seed: int, widths: tuple[int, ...]) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers).double().eval()


# ----------------------------------------------------------------------------- fault 1
def _translated(seed: int, centre: tuple[float, float], h: float) -> nn.Module:
    """``h * g((x - centre) / h) + 1`` for a random 2-8-8-2 ReLU net ``g``, with the translation
    folded into the first bias (so the model is evaluated at absolute coordinates, as a user's is)."""
    g = _mlp(seed, (2, 8, 8, 2))
    m = _mlp(seed, (2, 8, 8, 2))
    c = torch.tensor(centre, dtype=torch.float64)
    with torch.no_grad():
        m[0].bias.copy_(h * g[0].bias - g[0].weight @ c)
        m[2].bias.copy_(h * g[2].bias)
        m[4].bias.copy_(h * g[4].bias + 1.0)
    return m


def _row_changes(model: nn.Module, slc: sc.Slice, rows: int = 37, cols: int = 400) -> tuple[np.ndarray, list]:
    """Where the real model's argmax changes along horizontal rows of the domain: the rows' y and,
    per row, the x-intervals ``(x_j, x_{j+1})`` between consecutive samples of different argmax."""
    lo, hi = slc.domain.min(0), slc.domain.max(0)
    ys = lo[1] + (hi[1] - lo[1]) * (np.arange(rows) + 0.5) / rows
    xs = lo[0] + (hi[0] - lo[0]) * (np.arange(cols) + 0.5) / cols
    out = []
    for y in ys:
        u = np.stack([xs, np.full(cols, y)], 1)
        with torch.no_grad():
            cls = model(torch.as_tensor(slc.to_input(u))).argmax(1).numpy()
        ch = np.flatnonzero(cls[1:] != cls[:-1])
        out.append([(xs[j], xs[j + 1]) for j in ch])
    return ys, out


def _crossings(db: sc.DecisionBoundary, y: float) -> np.ndarray:
    s = db.segments
    y0, y1 = s[:, 0, 1], s[:, 1, 1]
    hit = (np.minimum(y0, y1) <= y) & (y <= np.maximum(y0, y1)) & (y0 != y1)
    t = (y - y0[hit]) / (y1[hit] - y0[hit])
    return s[hit, 0, 0] + t * (s[hit, 1, 0] - s[hit, 0, 0])


@pytest.mark.parametrize("seed", [3, 4, 6])
def test_boundary_is_translation_invariant_on_tiny_far_domains(seed: int) -> None:
    """Audit fault 1: on a box of half-width 1e-6 centred at (1000, -800) the decision boundary was
    evaluated at absolute coordinates (a tenth of its length, most argmax changes missed, 14 decision
    regions instead of 2); the partition itself is computed centred. Translation changes nothing."""
    h = 1e-6
    res = []
    for c in [(0.0, 0.0), (1000.0, -800.0)]:
        m = _translated(seed, c, h)
        slc = sc.Slice.box((c[0] - h, c[0] + h), (c[1] - h, c[1] + h))
        part = sc.partition(m, slc)
        part.verify(m).raise_if_failed()
        db = part.decision_boundary()
        res.append((part.num_regions, db.length / h, len(part.decision_regions()), db.num_components))
        # every argmax change of the real model along a grid row is crossed by the boundary
        ys, changes = _row_changes(m, slc)
        missed = 0
        for y, row in zip(ys, changes):
            xc = _crossings(db, y)
            missed += sum(not np.any((xc >= a - 1e-9 * h) & (xc <= b + 1e-9 * h)) for a, b in row)
        assert sum(len(r) for r in changes) > 0
        assert missed == 0, f"{missed} argmax changes of the model are not on the boundary"
        # boundary points: the top two logits of the real model tie
        u, x = db.sample(50, seed=0)
        with torch.no_grad():
            y = m(torch.as_tensor(x)).numpy()
        top = np.sort(y, 1)
        assert np.abs(top[:, -1] - top[:, -2]).max() <= 1e-9 * np.abs(y).max()
    (r0, l0, d0, k0), (r1, l1, d1, k1) = res
    assert r0 == r1 and d0 == d1 and k0 == k1
    assert abs(l0 - l1) <= 1e-6 * l0


# ----------------------------------------------------------------------------- fault 2
def test_forward_hooks_are_refused() -> None:
    """Audit fault 2: a forward hook masking a hidden Linear's output (or one on a ReLU) was skipped
    by the MLP fast paths: affine maps off by 0.5 relative, verify() False. Hooks are refused, naming
    the module."""
    net = _mlp(0, (2, 8, 8, 2))
    cases = [
        (net[2], "register_forward_hook", lambda m, i, o: o * 0.5, "'2' (Linear)"),
        (net[1], "register_forward_hook", lambda m, i, o: o * 2.0, "'1' (ReLU)"),
        (net[3], "register_forward_pre_hook", lambda m, i: (i[0] - 1.0,), "'3' (ReLU)"),
        (net, "register_forward_hook", lambda m, i, o: o, "the model itself (Sequential)"),
    ]
    for mod, how, fn, where in cases:
        handle = getattr(mod, how)(fn)
        try:
            with pytest.raises(UnsupportedModelError, match="hook") as err:
                sc.partition(net, BOX)
            assert where in str(err.value) and "handle.remove()" in str(err.value)
        finally:
            handle.remove()
    assert sc.partition(net, BOX).verify(net)  # the model itself is untouched


def test_global_forward_hooks_are_refused() -> None:
    """Audit fault 2 (global hooks run on every module, the fast paths' modules included)."""
    net = _mlp(0, (2, 6, 1))
    for register in (nn.modules.module.register_module_forward_hook,
                     nn.modules.module.register_module_forward_pre_hook):
        handle = register(lambda *a: None)
        try:
            with pytest.raises(UnsupportedModelError, match="global forward"):
                sc.partition(net, BOX)
        finally:
            handle.remove()


# ----------------------------------------------------------------------------- fault 3
class _Op(nn.Module):
    def __init__(self, op, width: int = 4) -> None:
        super().__init__()
        self.a = nn.Linear(2, width)
        self.b = nn.Linear(width, 2)
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.op(self.a(x))))


@pytest.mark.parametrize(
    ("name", "op", "message"),
    [
        ("mean", lambda h: h - h.mean(-2, keepdim=True), "reduces over the batch axis"),
        ("sum", lambda h: h + h.sum(-2, keepdim=True), "reduces over the batch axis"),
        ("transpose", lambda h: h.transpose(-1, -2).transpose(-1, -2), "moves the batch axis"),
        ("flatten", lambda h: h.flatten(-2).reshape(-1, 4), "flattens the batch axis"),
        ("cat", lambda h: torch.cat([h, h], dim=-2), "works along the batch axis"),
        ("chunk", lambda h: torch.cat(h.chunk(2), 1), "works along the batch axis"),
        ("unbind", lambda h: torch.stack(h.unbind(-2), -1).sum(-1, keepdim=True).expand(-1, 4), "batch axis"),
    ],
)
def test_negative_dims_on_the_batch_axis_are_refused(name: str, op, message: str) -> None:
    """Audit fault 3: ``h.mean(-2)`` on an (N, F) tensor was accepted (wrong maps), ``transpose(-1, -2)``
    and ``flatten(-2)`` gave nonsense shapes, ``cat(dim=-2)`` and ``sum(-2)`` failed late with raw
    RuntimeErrors. Negative dims are normalised with the tensor's rank before the check."""
    torch.manual_seed(0)
    model = _Op(op).double().eval()
    with pytest.raises(UnsupportedModelError, match=message):
        sc.partition(model, BOX)


@pytest.mark.parametrize(
    "op",
    [
        lambda h: h - h.mean(-1, keepdim=True),
        lambda h: h.unsqueeze(-1).squeeze(-1) + h.sum(dim=(-1,), keepdim=True),
        lambda h: h.unsqueeze(1).permute(0, -1, -2).flatten(-2),
        lambda h: torch.cat([h[:, :2], h[:, 2:]], dim=-1),
        lambda h: torch.stack([h, -h], dim=-1).sum(-1) + h,
        lambda h: h.transpose(-1, 1),
    ],
)
def test_negative_dims_on_feature_axes_are_supported(op, make_checked_partition) -> None:
    """Audit fault 3: negative dims that name feature axes keep working, and are exact."""
    torch.manual_seed(1)
    model = _Op(op).double().eval()
    make_checked_partition(model, BOX)


# ----------------------------------------------------------------------------- fault 4
def _with_extra_unit(seed: int, w: tuple[float, float], bias: float) -> nn.Module:
    base = _mlp(seed, (2, 8, 8, 1))
    net = _mlp(seed, (2, 9, 8, 1))
    with torch.no_grad():
        net[0].weight[:8] = base[0].weight
        net[0].bias[:8] = base[0].bias
        net[0].weight[8] = torch.tensor(w, dtype=torch.float64)
        net[0].bias[8] = bias
        net[2].weight[:, :8] = base[2].weight
        net[2].weight[:, 8] = 0.3
        net[2].bias.copy_(base[2].bias)
        net[4].weight.copy_(base[4].weight)
        net[4].bias.copy_(base[4].bias)
    return net


@pytest.mark.parametrize(("seed", "bias"), [(4, -1e11), (16, -1e11), (0, -1e12), (5, -1e14)])
def test_a_never_active_unit_changes_nothing(seed: int, bias: float, make_checked_partition) -> None:
    """Audit fault 4: a never-active unit (zero weights, bias -1e11) removed a real region of its
    layer, and bias -1e12 raised "internal error: vertex identifiers collide": the noise floor of the
    lines' tolerance was set per layer (1e-14 of its largest unit). It is now per unit."""
    base = _mlp(seed, (2, 8, 8, 1))
    ref = make_checked_partition(base, BOX)
    net = _with_extra_unit(seed, (0.0, 0.0), bias)
    part = sc.partition(net, BOX)
    part.verify(net).raise_if_failed()
    # (the independent checker's tolerances scale with the largest unit of the network, 1e11 here:
    # compare with the partition of the network without the unit instead)
    assert part.num_regions == ref.num_regions
    np.testing.assert_allclose(np.sort(part.areas()), np.sort(ref.areas()), rtol=1e-9, atol=1e-12)
    r = ref.locate(part.centroids())
    assert np.array_equal(np.sort(r), np.arange(ref.num_regions))
    assert np.array_equal(part.codes[0][:, :8], ref.codes[0][r]) and not part.codes[0][:, 8].any()
    assert np.array_equal(part.codes[1], ref.codes[1][r])
    np.testing.assert_allclose(part.output_affine[0], ref.output_affine[0][r], rtol=1e-9, atol=1e-12)


def test_a_huge_unit_does_not_merge_the_lines_of_its_layer() -> None:
    """Audit fault 4: a unit with weights 1e8 times the rest of its layer merged parallel lines 1e-7
    apart (4 regions instead of 6, verify() still True)."""
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).double().eval()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1e8]]))
        net[0].bias.copy_(torch.tensor([0.0, -1e-7, 0.0]))
        net[2].weight.copy_(torch.tensor([[1.0, -2.0, 1e-8]]))
    part = sc.partition(net, sc.Slice.box((-1, 1), (-1, 1)))
    part.verify(net).raise_if_failed()
    # exact: the lines x = 0, x = 1e-7 and y = 0 make 6 rectangles, two of them 1e-7 x 1
    assert part.num_regions == 6
    np.testing.assert_allclose(np.sort(part.areas())[:2], [1e-7, 1e-7], rtol=1e-6)
    x = part.centroids()[:, 0]
    strip = (x > 0) & (x < 1e-7)
    assert strip.sum() == 2
    assert (part.codes[0][strip][:, :2] == [1, 0]).all()


# ----------------------------------------------------------------------------- fault 5
@pytest.mark.parametrize("seed", [2, 7])
def test_near_tied_logits_make_no_spurious_boundary(seed: int) -> None:
    """Audit fault 5: logits f and f + 1e-12 gave boundary segments (8 of length 2.25 in the audit)
    where class 1 wins everywhere, because the tie rule's scale was taken region by region: the two
    logits counted as tied on the regions where |f| is large and not where it is small. One
    tolerance for the whole partition: they tie everywhere or nowhere."""
    net = _mlp(seed, (2, 8, 8, 2))
    with torch.no_grad():
        net[4].weight[1] = net[4].weight[0]
        net[4].bias[1] = net[4].bias[0]
        p = sc.partition(net, BOX)  # make f cross zero inside the domain
        a, b = p.output_affine
        net[4].bias -= float(p.centroids()[0] @ a[0, 0] + b[0, 0])
    part = sc.partition(net, BOX)
    a, b = part.output_affine
    poly, _ = part.padded_polygons()
    scale = np.abs(np.einsum("rd,rkd->rk", a[:, 0], poly) + b[:, :1]).max(1)
    assert scale.max() > 3 * scale.min()  # logits of very different sizes on different regions
    # an offset that a per-region rule (1e-10 of the region's logits) calls a tie on some regions only
    offset = 1e-10 * np.sqrt(scale.min() * scale.max())
    with torch.no_grad():
        net[4].bias[1] += offset
    part = sc.partition(net, BOX)
    db = part.decision_boundary()
    assert db.num_segments == 0 and db.length == 0.0
    assert len(part.decision_regions()) == 1
    assert part.decision_boundary(classes=(0, 1)).num_segments == 0


# ----------------------------------------------------------------------------- fault 6
def test_a_breakpoint_with_equal_slopes_does_not_cut() -> None:
    """Audit fault 6: ``LeakyReLU(negative_slope=1.0)`` (an affine network) gave 14 regions with
    identical maps. A breakpoint whose two slopes are equal is no breakpoint."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(1.0), nn.Linear(8, 8), nn.LeakyReLU(1.0, inplace=True),
                        nn.Linear(8, 2)).double().eval()
    part = sc.partition(net, BOX)
    assert part.num_regions == 1 and part.layer_names == []
    part.verify(net).raise_if_failed()

    class Mixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(2, 6)
            self.b = nn.Linear(6, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(F.relu(F.leaky_relu(self.a(x), 1.0)))

    m = Mixed().double().eval()
    part = sc.partition(m, BOX)
    assert part.layer_names == ["relu (torch.nn.functional.relu)"]
    ref = sc.partition(nn.Sequential(m.a, nn.ReLU(), m.b).eval(), BOX)
    assert part.num_regions == ref.num_regions
    part.verify(m).raise_if_failed()


def test_drop_flat_breakpoints() -> None:
    """Audit fault 6: the spec simplification itself (also for per-unit slopes, as PReLU's)."""
    from splinecam.trace.simplify import drop_flat_breakpoints

    assert drop_flat_breakpoints(PWLSpec("leaky_relu", [0.0], [1.0, 1.0])) is None
    spec = PWLSpec("relu", [0.0], [0.0, 1.0])
    assert drop_flat_breakpoints(spec) is spec
    # a hard-tanh-like function whose middle piece continues the left one
    s = drop_flat_breakpoints(PWLSpec("pwl", [-1.0, 0.0, 2.0], [0.5, 0.5, 2.0, 0.0], value_at_first=1.0))
    assert s is not None and s.breakpoints == [0.0, 2.0] and s.slopes == [0.5, 2.0, 0.0]
    assert s.value_at_first == 1.5
    full = PWLSpec("pwl", [-1.0, 0.0, 2.0], [0.5, 0.5, 2.0, 0.0], value_at_first=1.0)
    x = np.linspace(-3, 1, 41)  # the simplified spec is the same function (up to the kept breakpoint)

    def ev(sp: PWLSpec, v: np.ndarray) -> np.ndarray:
        k = np.searchsorted(sp.breakpoints, v, side="left")
        return np.asarray(sp.slopes)[k] * v + np.asarray(sp.intercepts())[k]

    np.testing.assert_allclose(ev(s, x), ev(full, x))
    per_unit = PWLSpec("prelu", [0.0], [torch.tensor([1.0, 1.0]), 1.0])
    assert drop_flat_breakpoints(per_unit) is None
    partly = PWLSpec("prelu", [0.0], [torch.tensor([1.0, 0.25]), 1.0])
    assert drop_flat_breakpoints(partly) is partly


# ----------------------------------------------------------------------------- fault 7
def test_reshape_of_the_batch_axis_is_refused_clearly() -> None:
    """Audit fault 7: ``(N, 4) -> reshape(-1, 2) -> relu -> reshape(-1, 4)`` died in the engine with a
    shape error. It is refused, naming the reshape (so are nn.Flatten(0) and view(x.size(1), -1))."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(2, 4)
            self.b = nn.Linear(4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(torch.relu(self.a(x).reshape(-1, 2)).reshape(-1, 4))

    with pytest.raises(UnsupportedModelError, match=r"reshape .*changes the number of rows of the batch"):
        sc.partition(Net().double().eval(), BOX)
    flat0 = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Flatten(0), nn.Unflatten(0, (-1, 4)), nn.Linear(4, 1))
    with pytest.raises(UnsupportedModelError, match="batch"):
        sc.partition(flat0.double().eval(), BOX)


# ----------------------------------------------------------------------------- fault 8
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_refused_early(dtype: torch.dtype) -> None:
    """Audit fault 8: float16 / bfloat16 were accepted, then failed with "vertex identifiers collide"."""
    with pytest.raises(UnsupportedModelError, match=r"too imprecise.*float64"):
        sc.partition(_mlp(0, (2, 8, 1)), BOX, dtype=dtype)


def test_float32_warns() -> None:
    """Audit fault 8: float32 gave 2e-7 affine errors and needless cuts without a warning."""
    from splinecam.errors import PrecisionWarning

    net = _mlp(0, (2, 8, 8, 1))
    with pytest.warns(PrecisionWarning, match="float32"):
        part = sc.partition(net, BOX, dtype=torch.float32)
    assert part.num_regions > 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sc.partition(net, BOX)  # float64: no warning


# ----------------------------------------------------------------------------- fault 9
@pytest.mark.parametrize(
    ("chunk", "error"), [(-1, ValueError), (0, ValueError), (2.5, TypeError), (True, TypeError), ("3", TypeError)]
)
def test_chunk_size_is_validated(chunk, error) -> None:
    """Audit fault 9: chunk_size -1 gave "max() arg is an empty sequence", 2.5 a TypeError from deep
    inside, 0 silently meant automatic."""
    with pytest.raises(error, match="chunk_size must be a positive integer"):
        sc.partition(_mlp(0, (2, 8, 1)), BOX, chunk_size=chunk)


def test_chunk_size_accepts_integers() -> None:
    """Audit fault 9: any positive integer, NumPy's included, gives the same partition."""
    net = _mlp(0, (2, 8, 8, 1))
    n = sc.partition(net, BOX).num_regions
    assert sc.partition(net, BOX, chunk_size=np.int64(3)).num_regions == n
    assert sc.partition(net, BOX, chunk_size=None).num_regions == n


# ----------------------------------------------------------------------------- fault 10
@pytest.mark.parametrize("half", [1e200, 1e300])
def test_huge_finite_domains(half: float) -> None:
    """Audit fault 10: ``Slice.box((-1e200, 1e200), ...)`` was refused as "collinear" because the
    area overflowed. The slice checks, areas, point location and verify work scaled."""
    slc = sc.Slice.box((-half, half), (-half, 2 * half))
    assert slc.domain.tolist() == [[-half, -half], [half, -half], [half, 2 * half], [-half, 2 * half]]
    net = _mlp(0, (2, 6, 2))
    part = sc.partition(net, slc)
    part.verify(net).raise_if_failed()
    # the same partition as the network on the unit-scaled box
    small = _mlp(0, (2, 6, 2))
    with torch.no_grad():
        small[0].weight.mul_(half)
    ref = sc.partition(small, sc.Slice.box((-1, 1), (-1, 2)))
    assert part.num_regions == ref.num_regions
    np.testing.assert_allclose(np.sort(part._scaled_areas()), np.sort(ref._scaled_areas()), rtol=1e-9)
    c = part.centroids()
    assert np.all(np.isfinite(c)) and np.array_equal(part.locate(c), np.arange(part.num_regions))


def test_degenerate_domains_are_still_refused_at_any_scale() -> None:
    """Audit fault 10: scaling the checks keeps collinear and non-convex domains refused."""
    for s in (1e-100, 1.0, 1e200):
        with pytest.raises(SliceError, match="zero signed area"):
            sc.Slice(np.zeros(2), np.eye(2), s * np.array([[0, 0], [1, 1], [2, 2]]))
        with pytest.raises(SliceError, match="not strictly convex"):
            sc.Slice(np.zeros(2), np.eye(2), s * np.array([[0, 0], [2, 0], [1, 0.2], [1, 2]]))
