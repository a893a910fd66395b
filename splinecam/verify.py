"""Independent re-check of a partition against the real torch model (DESIGN.md, exactness contract).

Nothing here uses the engine's polygons-splitting or affine-stack code: the model is evaluated on
ordinary batches of input points, the nonlinearities' inputs are recorded on the way, and the
results are compared with what the partition claims.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .engine.kinds import kind_for
from .engine.threads import engine_threads
from .trace import evaluate_program, prepare_model, trace_model

__all__ = [
    "Check", "VerifyReport", "verify_partition", "evaluate_with_preactivations", "tolerance",
    "RTOL_FLOAT64", "QUICK_REGIONS", "QUICK_DOMAIN_SAMPLES",
]


@dataclass
class Check:
    """One check of the contract: its name, whether it passed, the measured value and the bound."""

    name: str
    passed: bool
    value: float
    bound: float
    detail: str = ""


@dataclass
class VerifyReport:
    """Result of :meth:`Partition.verify`; truthy when every check passed."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)

    def __bool__(self) -> bool:
        return self.ok

    def __getitem__(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def raise_if_failed(self) -> None:
        """Raise ``AssertionError`` listing the failed checks."""
        bad = [c for c in self.checks if not c.passed]
        if bad:
            raise AssertionError("partition failed verification:\n" + "\n".join(
                f"  {c.name}: {c.value:.3g} (bound {c.bound:.3g}) {c.detail}" for c in bad))

    def __repr__(self) -> str:
        rows = [f"VerifyReport({'ok' if self.ok else 'FAILED'}):"]
        for c in self.checks:
            rows.append(
                f"  [{'x' if c.passed else ' '}] {c.name:28s} {c.value:10.3g} <= {c.bound:.3g} {c.detail}"
            )
        return "\n".join(rows)


def evaluate_with_preactivations(
    model: torch.nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run a prepared (eval, float64) model on real points, returning the output and the input of
    every piecewise-linear step, flattened to ``(N, units)``.

    Every step runs the real torch module or function on the batch
    (:func:`splinecam.trace.evaluate_program`).
    """
    return evaluate_program(trace_model(model), model, x)


#: Relative tolerance of the area and affine checks for a float64 partition (DESIGN.md).
RTOL_FLOAT64 = 1e-9

#: ``quick=True``: at most this many regions are evaluated, one point each, and the domain is
#: sampled at this many points for the overlap check.
QUICK_REGIONS = 1000
QUICK_DOMAIN_SAMPLES = 2000


def tolerance(dtype: torch.dtype) -> float:
    """Relative tolerance of :func:`verify_partition` for a partition computed in ``dtype``.

    ``1e-9`` (:data:`RTOL_FLOAT64`) for float64, the exactness contract; for a lower precision
    ``max(1e-9, 100 * eps)`` (float32: 1.2e-5), since the engine's sums are rounded to it.

    Examples
    --------
    >>> tolerance(torch.float64), round(tolerance(torch.float32), 7)
    (1e-09, 1.19e-05)
    """
    return max(RTOL_FLOAT64, 100.0 * float(torch.finfo(dtype).eps))


@engine_threads()  # one CPU thread on a busy machine (splinecam.engine.threads)
def verify_partition(
    part: Any,
    model: torch.nn.Module,
    points_per_region: int = 2,
    seed: int = 0,
    max_regions: int = 20000,
    domain_samples: int = 20000,
    *,
    quick: bool = False,
    rtol: float | None = None,
) -> VerifyReport:
    """Check a partition against ``model``.

    Checks (DESIGN.md "Exactness contract"), with ``rtol`` = :func:`tolerance` of the partition's
    dtype (1e-9 for float64) unless given:

    1. ``area``: region areas sum to the domain area (relative error <= ``rtol``), every area is
       positive, and ``overlap``: random points of the domain lie in exactly one region (points
       within ``rtol`` of a border are not counted).
    2. ``codes``: at random points strictly inside regions, the model's nonlinearities are on the
       region's pieces (units within ``rtol`` of a breakpoint, relative to their layer at the point or
       to their own largest input over the sampled points, are not counted: the engine snaps
       vertices within 1e-10 of a line's scale onto it; nor units within 1e-12 of the largest unit
       input (``rtol * 1e-3`` for other dtypes): rounding noise of a layer that is identically zero).
    3. ``neighbours``: regions sharing an edge differ in at least one code.
    4. ``affine``: the region's output map equals the model's output at interior points
       (<= ``rtol`` relative to the output's scale, or to a millionth of the largest unit input
       where that is larger: a network whose output is identically zero).
    5. ``graph``: every inner edge has two regions, every border edge one and lies on the domain
       border, and ``V - E + R = 1``.

    At most ``max_regions`` regions (chosen at random) are evaluated for checks 2 and 4.

    Cost: the model runs (in float64) on ``points_per_region`` points of each of
    ``min(R, max_regions)`` regions, in batches of up to 4096 (fewer where one point's unit inputs
    are large, as in VGG11: a batch records about 256 MB of them): up to 40,000 points by default, about as
    much work as the engine spends on a partition of 10,000 to 20,000 regions, so ``verify`` costs
    one to a few times the partition there (measured: 1.2-1.9x on a 10,804-region CNN); checks 1, 3
    and 5 cost a few array passes over the partition. With ``quick=True`` only
    :data:`QUICK_REGIONS` regions (at random) are evaluated at one point each and the domain is
    sampled at :data:`QUICK_DOMAIN_SAMPLES` points: a fixed cost (about 1,000 model evaluations)
    whatever the partition's size; it still checks every area, neighbour and graph condition.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).eval()
    >>> part = sc.partition(net, sc.Slice.box())
    >>> bool(verify_partition(part, net)), bool(verify_partition(part, net, quick=True))
    (True, True)
    """
    if quick:
        points_per_region = 1
        max_regions = min(max_regions, QUICK_REGIONS)
        domain_samples = min(domain_samples, QUICK_DOMAIN_SAMPLES)
    if points_per_region < 1 or max_regions < 1 or domain_samples < 1:
        raise ValueError("points_per_region, max_regions and domain_samples must be >= 1")
    dtype = getattr(part, "dtype", torch.float64)
    tol = tolerance(dtype) if rtol is None else float(rtol)
    noise = 1e-12 if tol <= RTOL_FLOAT64 else tol * 1e-3
    rng = np.random.default_rng(seed)
    report = VerifyReport()
    slc = part.slice
    r = part.num_regions
    # areas in units of the domain's half-width (finite on huge domains as on tiny ones)
    areas = part._scaled_areas() if hasattr(part, "_scaled_areas") else part.areas()
    dom = slc.domain
    unit = part._coord_scale() if hasattr(part, "_scaled_areas") else 1.0
    x, y = ((dom - dom[0]) / unit).T
    dom_area = 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    rel = abs(float(areas.sum()) - dom_area) / dom_area
    with np.errstate(over="ignore"):
        min_area = float(areas.min()) * unit * unit
    report.checks.append(Check("area", rel <= tol and bool((areas > 0).all()), rel, tol,
                               f"(min area {min_area:.3g})"))
    # overlap: sample the domain
    from .analysis.locate import RegionIndex

    idx = RegionIndex(part)
    w = rng.dirichlet(np.ones(len(dom)), size=domain_samples)
    pts = w @ dom
    scale = float(np.abs(dom - dom.mean(0)).max())
    cnt = idx.count_containing(pts, tol * scale)
    near = idx.count_containing(pts, -tol * scale)  # counts with a margin: border points count twice
    clear = near == cnt  # points not within the margin of any border
    bad = int(((cnt != 1) & clear).sum())
    report.checks.append(Check("overlap", bad == 0, float(bad), 0.0, f"of {int(clear.sum())} clear samples"))

    # model evaluation at interior points (traced once; float64 whatever the partition's dtype)
    copy_, dev = prepare_model(model, dtype=torch.float64, device=None, share_parameters=True)
    program = trace_model(copy_)
    kinds = None
    if r <= max_regions:
        sel = np.arange(r)
        ip = part.interior_points(points_per_region, seed=seed)
    else:
        sel = np.sort(rng.choice(r, max_regions, replace=False))
        ip = part.interior_points(points_per_region, seed=seed, regions=sel)
    ip = ip.reshape(-1, 2)
    rid = np.repeat(sel, points_per_region)
    code_bad = 0
    evaluator_ok = True
    aff_err = 0.0
    out_scale = 0.0
    unit_scale = 0.0
    a_mat, b_vec = part.output_affine
    with torch.no_grad():
        batch = _batch_size(program, copy_, slc, dev)
        for s in range(0, len(ip), batch):
            u = ip[s : s + batch]
            rr = rid[s : s + batch]
            xin = slc.to_input(torch.as_tensor(u, dtype=torch.float64, device=dev))
            # (copies: a model whose first step works in place would overwrite its input)
            y_eval, pres, in_shapes = evaluate_program(program, copy_, xin.clone(), with_shapes=True)
            if kinds is None:
                kinds = [kind_for(program.steps[i], shp, torch.float64, dev) for i, shp in zip(program.pwl_steps, in_shapes)]
            if s == 0:
                # the step-by-step evaluation must be the model's own forward pass (on a few points)
                m = min(len(u), 256)
                y_fwd = copy_(xin[:m].clone())
                scale_f = float(y_fwd.abs().max()) + 1e-300
                if float((y_fwd - y_eval[:m].reshape(y_fwd.shape)).abs().max()) > 1e-12 * scale_f:
                    evaluator_ok = False
            y_true = y_eval.reshape(len(u), -1).cpu().numpy()
            y_part = np.einsum("noi,ni->no", a_mat[rr], u) + b_vec[rr]
            aff_err = max(aff_err, float(np.abs(y_true - y_part).max()))
            out_scale = max(out_scale, float(np.abs(y_true).max()))
            # a unit within rtol of a breakpoint (or, in a max over a group, of a tie) relative to
            # its layer at that point or to its own largest input over this batch (the engine snaps
            # vertices within 1e-10 of a line's scale onto it: a sliver between nearly coincident
            # lines may lie in that band), or within 1e-12 of the largest unit input of this batch
            # (a layer that is identically zero there holds only rounding noise), is on a
            # breakpoint: its code is not checked
            batch_mag = max((float(p.abs().max()) for p in pres if p.numel()), default=0.0)
            unit_scale = max(unit_scale, batch_mag)
            for li, p in enumerate(pres):
                pa = p.abs()
                mag = torch.clamp(tol * pa.amax(1, keepdim=True), min=noise * batch_mag)
                mag = torch.maximum(mag, tol * pa.amax(0, keepdim=True)) + 1e-300
                code, clear_units = kinds[li].codes_at(p, mag)
                code = code.cpu().numpy()
                clear_units = clear_units.cpu().numpy()
                code_bad += int(((code != part.layer_codes(li, rr)) & clear_units).sum())
    if not evaluator_ok:
        report.checks.append(Check("evaluator", False, 1.0, 0.0,
                                   "step-by-step evaluation differs from model(x); please report"))
    report.checks.append(Check("codes", code_bad == 0, float(code_bad), 0.0,
                               f"mismatching units over {len(ip)} points"))
    # relative to the output's scale; where the output is (nearly) identically zero (a dead
    # network), rounding in the engine's sums still leaves noise, so the scale is at least a
    # millionth of the largest unit input
    aff_rel = aff_err / max(out_scale, 1e-6 * unit_scale, 1e-300)
    detail = f"(max abs error {aff_err:.3g})"
    if dtype != torch.float64:
        detail += f"; tolerance for {str(dtype).replace('torch.', '')}"
    report.checks.append(Check("affine", aff_rel <= tol, aff_rel, tol, detail))

    # neighbours differ in a code
    inner = (part.edge_regions >= 0).all(1)
    er = part.edge_regions[inner]
    same = np.ones(len(er), dtype=bool)
    for li in range(len(part.layer_names)):
        c = part._raw_codes(li)
        same &= (c[er[:, 0]] == c[er[:, 1]]).all(1)
    report.checks.append(Check("neighbours", not same.any(), float(same.sum()), 0.0,
                               "inner edges between regions with equal codes"))

    # planar graph
    border = ~inner
    mult = getattr(part, "_edge_multiplicity", None)
    problems = []
    if mult is not None and (mult > 2).any():
        problems.append(f"{int((mult > 2).sum())} edges in more than two regions")
    if (part.edge_regions[:, 0] < 0).any():
        problems.append(f"{int((part.edge_regions[:, 0] < 0).sum())} edges without a left region")
    if border.any():
        # border edges must lie on the domain border and be labelled as such
        p0 = part.vertices[part.edges[border, 0]]
        p1 = part.vertices[part.edges[border, 1]]
        d = np.minimum(_dist_to_boundary(p0, dom), _dist_to_boundary(p1, dom))
        dd = np.maximum(_dist_to_boundary(p0, dom), _dist_to_boundary(p1, dom))
        off = int((dd > tol * scale).sum())
        if off:
            problems.append(f"{off} one-sided edges inside the domain (T-junctions)")
        del d
    euler = part.num_vertices - part.num_edges + r
    if euler != 1:
        problems.append(f"V - E + R = {euler}")
    report.checks.append(Check("graph", not problems, float(len(problems)), 0.0, "; ".join(problems)))
    return report


#: bytes of recorded unit inputs per batch of model evaluations in verify (a few temporaries of the
#: same size come on top): VGG11 on 3x64x64 images records about 1.7 MB per point
VERIFY_BATCH_BYTES = 2**28


def _batch_size(program: Any, model: torch.nn.Module, slc: Any, dev: Any) -> int:
    """Points per batch of ``verify``'s model evaluations: at most 4096, fewer where one point's
    recorded unit inputs are large (a wide CNN), so that a batch holds about
    :data:`VERIFY_BATCH_BYTES` of them."""
    probe = slc.to_input(torch.zeros(1, 2, dtype=torch.float64, device=dev))
    _, pres = evaluate_program(program, model, probe.clone())
    per_point = 8 * max(1, sum(int(p.numel()) for p in pres) + int(probe.numel()))
    return int(max(1, min(4096, VERIFY_BATCH_BYTES // per_point)))


def _dist_to_boundary(p: np.ndarray, dom: np.ndarray) -> np.ndarray:
    # in units of the domain's size (products of huge coordinates would overflow)
    mid = 0.5 * dom.max(0) + 0.5 * dom.min(0)
    unit = float(np.max(0.5 * dom.max(0) - 0.5 * dom.min(0))) or 1.0
    p = (p - mid) / unit
    dom = (dom - mid) / unit
    a = dom
    b = np.roll(dom, -1, axis=0)
    e = b - a
    d = p[:, None] - a[None]
    t = np.clip((d * e).sum(-1) / (e * e).sum(-1), 0, 1)
    q = a[None] + t[..., None] * e[None]
    return np.hypot(*(p[:, None] - q).transpose(2, 0, 1)).min(1) * unit
