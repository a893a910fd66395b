"""The exact partition engine.

On one region every tensor of the network is an affine function of the slice coordinates ``u``. It
is stored as an *affine stack*: a tensor of shape ``(3 * B, *shape)`` whose rows ``3b``, ``3b + 1``,
``3b + 2`` hold, for region ``b``, the value at ``u = 0`` and the two partial derivatives. An affine
step runs the real torch module on the stack; its bias (the module applied to zeros) is then removed
from the derivative rows. Convolutions therefore never become dense matrices, and every affine torch
module works with no special code.

At a piecewise-linear step, each unit whose breakpoint line ``f_j(u) = t`` crosses a region's polygon
cuts it (:func:`splinecam.engine.geometry.split_by_lines`). Cuts are applied per layer with conflict lists:
every piece keeps the lines of its region that still cross it, and is cut by the first of them in
one fixed pseudo-random order of the layer's line ids (see :mod:`splinecam.engine.cutting`). The pieces get their
codes (from their interior; bit-packed where a unit has one breakpoint), and the next steps see the
masked affine maps.

A nonlinearity followed by an ``nn.Linear`` (the MLP case) has faster paths that give the same
partition (:mod:`splinecam.engine.mlp_paths`; tests compare them with the plain one):

* one parent region (the first cutting layer): the children's codes and Linear outputs are two
  matrix products with the parent's stack (:func:`_one_parent_post`);
* few crossing units per region (the layers after): the Linear runs once per parent, and each
  child adds the weight columns of the few units whose piece differs (:func:`_linear_post`);
* the last two nonlinearities ``A -> Linear -> B -> Linear head``: no affine stack is written per
  child of ``A``; ``B``'s lines are filtered once per parent with a bound on the children's
  changes, and the head's output is assembled from per-parent products and sparse terms
  (:func:`_tail`). The work per region then hardly grows with the layers' width.

Regions are independent once made, so the engine streams them depth-first through the remaining
steps in chunks of bounded size: memory stays bounded by ``depth x chunk`` whatever the region count.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from ..errors import SliceError, UnsupportedModelError
from ..slice import Slice
from ..trace import Program, Step, _map_args, _Ref, call_step, evaluate_program
from .codes import _pack
from .cutting import _cut_layer, _homogeneous, _probe_points, _values_at
from .geometry import Polygons, _fmix, _zorder
from .mlp_paths import _linear_after, _linear_post, _one_parent_post, _tail, _tail_plan
from .progress import area_progress

__all__ = ["EngineResult", "run_program"]


# --------------------------------------------------------------------------- affine-stack execution
class _Runner:
    """Executes the non-cutting steps of a program on affine stacks."""

    def __init__(self, program: Program, model: nn.Module) -> None:
        self.program = program
        self.model = model
        self.bias_cache: dict[int, Any] = {}
        self.const_cache: dict[int, Any] = {}

    def run_step(self, i: int, env: dict[int, Any], nreg: int) -> Any:
        step = self.program.steps[i]
        if step.kind == "const":
            if i not in self.const_cache:
                args = _map_args(step.args, lambda a: env[int(a)] if isinstance(a, _Ref) else a)
                kwargs = _map_args(step.kwargs, lambda a: env[int(a)] if isinstance(a, _Ref) else a)
                self.const_cache[i] = call_step(step, args, kwargs, self.model)
            return self.const_cache[i]
        args = _map_args(step.args, lambda a: env[int(a)] if isinstance(a, _Ref) else a)
        kwargs = _map_args(step.kwargs, lambda a: env[int(a)] if isinstance(a, _Ref) else a)
        if step.kind == "meta":
            return call_step(step, args, kwargs, self.model)
        # affine
        out = call_step(step, args, kwargs, self.model)
        has_const = step.mode in ("bias", "add", "sub", "rsub")
        if has_const:
            stack_refs = {
                int(a)
                for a in _collect_refs((step.args, step.kwargs))
                if self.program.steps[int(a)].kind in ("input", "affine", "pwl")
            }
            const_refs = [
                int(a)
                for a in _collect_refs((step.args, step.kwargs))
                if int(a) not in stack_refs and self.program.steps[int(a)].kind == "const"
            ]
            pure_stack_sum = step.mode in ("add", "sub") and not const_refs and _only_refs(step.args[:2])
            if not pure_stack_sum:
                if i not in self.bias_cache:
                    def zero(a: Any) -> Any:
                        if isinstance(a, _Ref):
                            v = env[int(a)]
                            if int(a) in stack_refs:
                                return torch.zeros((1, *v.shape[1:]), dtype=v.dtype, device=v.device)
                            return v
                        return a

                    zargs = _map_args(step.args, zero)
                    zkwargs = _map_args(step.kwargs, zero)
                    self.bias_cache[i] = call_step(step, zargs, zkwargs, self.model)
                bias = self.bias_cache[i]
                fresh = out._base is None and all(
                    out.data_ptr() != env[r].data_ptr() for r in stack_refs if isinstance(env[r], torch.Tensor)
                )
                out = out.reshape(nreg, 3, *out.shape[1:])
                if not fresh:  # a view of an input: do not write into it
                    out = out.clone()
                out[:, 1:] -= bias
                out = out.reshape(nreg * 3, *out.shape[2:])
        return out


def _gather(v: Any, g: torch.Tensor) -> Any:
    """Rows of the regions ``g`` of an affine stack (or of a tuple of stacks)."""
    if isinstance(v, (tuple, list)):
        return type(v)(_gather(t, g) for t in v)
    return torch.index_select(v.reshape(-1, 3 * v[0].numel()), 0, g).reshape(-1, *v.shape[1:])


def _collect_refs(a: Any) -> list[_Ref]:
    out: list[_Ref] = []
    _map_args(a, lambda x: out.append(x) if isinstance(x, _Ref) else None)
    return out


def _only_refs(args: tuple) -> bool:
    return len(args) == 2 and all(isinstance(a, _Ref) for a in args)


# The sparse paths after a nonlinearity (:func:`_linear_post`, :func:`_tail`) are taken when the
# children have fewer than ``units / _SPARSE_MIN_RATIO`` crossing units of their parent to re-read
# on average (always but at the first cutting layer); else the children get dense stacks.
_SPARSE_MIN_RATIO = 8

# --------------------------------------------------------------------------- memory
_LIBC: Any = None


def _release_free_memory() -> None:
    """Give the freed pages of the C heap back to the OS (glibc's ``malloc_trim``; else a no-op).

    The engine keeps small per-chunk results while allocating and freeing large temporary buffers;
    glibc then keeps the freed pages between the kept blocks, and the resident size grows with
    the number of regions (measured: 4.3 GiB instead of 1.7 GiB for 1.17 million regions).
    """
    global _LIBC
    if _LIBC is None:
        _LIBC = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                libc = ctypes.CDLL("libc.so.6")
                libc.malloc_trim.argtypes = [ctypes.c_size_t]
                _LIBC = libc
            except (OSError, AttributeError):
                pass
    if _LIBC:
        _LIBC.malloc_trim(0)


# Regions finished between two calls of :func:`_release_free_memory`. A trim costs more than its
# few ms: the pages it returns are faulted in again by the next allocations (measured: the 256x3
# benchmark MLP, 162,097 regions, took 7% longer with a trim every 100,000 regions); one every
# 500,000 still bounds the resident size of million-region partitions.
_TRIM_EVERY = 500_000


# --------------------------------------------------------------------------- work items
@dataclass
class _Item:
    """Regions waiting at program position ``pos`` (after applying the pending gather, if any)."""

    pos: int
    poly: Polygons
    env: dict[int, Any]
    codes: list[torch.Tensor]
    gather: torch.Tensor | None = None  # parent index of each region into env/codes
    pending: Callable[[_Item, torch.Tensor], None] | None = None


@dataclass
class EngineResult:
    """Raw output of the engine (torch tensors, internal centred coordinates)."""

    poly: Polygons
    out_const: torch.Tensor  # (R, O)
    out_grad: torch.Tensor  # (R, O, 2)
    codes: list[Any]  # per pwl step: (bit-packed uint8 (R, ceil(units / 8)), units) or int8 (R, units)
    unit_shapes: list[tuple[int, ...]] = field(default_factory=list)
    output_shape: tuple[int, ...] = ()
    line_offsets: list[int] = field(default_factory=list)
    num_breakpoints: list[int] = field(default_factory=list)


def _pwl_tables(step: Step, n: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    spec = step.pwl
    assert spec is not None
    bps = torch.tensor(spec.breakpoints, dtype=dtype, device=device)
    slopes = torch.stack(
        [torch.as_tensor(s, dtype=dtype, device=device).expand(n) if torch.as_tensor(s).numel() <= 1
         else torch.as_tensor(s, dtype=dtype, device=device).reshape(-1) for s in spec.slopes]
    )
    inter = torch.stack(
        [torch.as_tensor(b, dtype=dtype, device=device).expand(n) if torch.as_tensor(b).numel() <= 1
         else torch.as_tensor(b, dtype=dtype, device=device).reshape(-1) for b in spec.intercepts()]
    )
    return bps, slopes, inter


# A line's on-the-line tolerance is at least ``_NOISE_FLOOR`` times its layer's scale (the largest
# unit input at the domain's vertices and centre): a unit that is identically zero on a region
# (exact cancellation, e.g. integer weights without bias) has rounding noise for coefficients
# there, about 1e-16 of the sums that made them, and its "line" must not cut. The floor stays far
# below ``verify``'s ties (1e-12 of the largest unit input) and below the own tolerance of any unit
# whose scale is at least 1e-4 of its layer's: a floor of 1e-12 also snapped the line of a unit
# that nearly duplicated another at 1e-3 of its scale unlike its twin's (found by fuzzing).
_NOISE_FLOOR = 1e-14


def _layer_scales(program: Program, model: nn.Module, x: torch.Tensor) -> list[float]:
    """The largest absolute input of every nonlinearity (in program order) on the real inputs ``x``."""
    return [float(p.abs().max()) if p.numel() else 0.0 for p in evaluate_program(program, model, x)[1]]


def run_program(
    model: nn.Module,
    program: Program,
    slc: Slice,
    dtype: torch.dtype,
    device: torch.device,
    progress: bool = False,
    chunk_size: int | None = None,
) -> EngineResult:
    """Run the engine; ``model`` is the prepared private copy that ``program`` was traced from."""
    center = slc.center
    origin = slc.origin + slc.basis @ center
    dom = torch.as_tensor(slc.domain - center, dtype=dtype, device=device)
    radius = float(dom.abs().max())
    shape = slc.input_shape
    inp = torch.stack(
        [
            torch.as_tensor(origin, dtype=dtype, device=device),
            torch.as_tensor(slc.basis[:, 0], dtype=dtype, device=device),
            torch.as_tensor(slc.basis[:, 1], dtype=dtype, device=device),
        ]
    ).reshape(3, *shape)
    k = dom.shape[0]
    hsh0 = _fmix(torch.arange(1, k + 1, device=device, dtype=torch.int64) * 7919 + 104729)
    poly0 = Polygons(
        dom[None].clone(),
        hsh0[None].clone(),
        torch.full((1, k), -1, dtype=torch.int64, device=device),
        torch.tensor([k], device=device),
    )
    runner = _Runner(program, model)
    steps = program.steps
    n_pwl = len(program.pwl_steps)
    unit_shapes: list[tuple[int, ...]] = [()] * n_pwl
    line_offsets: list[int] = [0] * n_pwl
    nbps = [len(steps[i].pwl.breakpoints) for i in program.pwl_steps]  # type: ignore[union-attr]
    tables: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    # check the slice fits the model with one plain forward pass on the input point
    try:
        with torch.no_grad():
            probe = model(inp[:1].clone())  # (an in-place first step must not write into inp)
    except Exception as exc:
        raise SliceError(
            f"the slice's input shape {shape} does not fit the model ({type(exc).__name__}: {exc}); "
            "build the slice from points of the model's input shape (without the batch axis)"
        ) from exc
    if not isinstance(probe, torch.Tensor):
        raise UnsupportedModelError(
            f"the model returned a {type(probe).__name__}; splinecam needs a single output tensor"
        )
    # every layer's scale on the domain's vertices and centre: the floor of its lines' tolerance
    with torch.no_grad():
        u = torch.cat([dom, dom.new_zeros((1, 2))])
        pts = inp[0] + torch.tensordot(u, inp[1:], dims=1)
        floors = [_NOISE_FLOOR * s for s in _layer_scales(program, model, pts)]
    out_polys: list[Polygons] = []
    out_c: list[torch.Tensor] = []
    out_g: list[torch.Tensor] = []
    out_codes: list[list[np.ndarray]] = [[] for _ in range(n_pwl)]
    output_shape: tuple[int, ...] = ()

    bar = area_progress(progress, dom)  # fraction of the domain's area in finished regions

    # per-region memory of the live stacks decides the chunk size when none is given
    budget = int(os.environ.get("SPLINECAM_BUDGET_MB", "24")) * 2**20
    work: list[_Item] = [_Item(0, poly0, {}, [])]
    since_trim = 0
    total = 0
    with torch.no_grad():
        while work:
            item = work.pop()
            if item.gather is not None:
                g = item.gather
                item.env = {
                    key: (_gather(v, g) if steps[key].kind in ("input", "affine", "pwl") else v)
                    for key, v in item.env.items()
                }
                item.codes = [c[g] for c in item.codes]
                item.gather = None
                # shape queries (``x.size(0)``...) may count the regions of the batch: recompute
                # them on the regrouped one, in program order (the values they read are alive)
                for key in sorted(k for k in item.env if steps[k].kind == "meta"):
                    item.env[key] = runner.run_step(key, item.env, len(g))
                if item.pending is not None:
                    item.pending(item, g)
                    item.pending = None
            env = item.env
            poly = item.poly
            nreg = len(poly)
            pos = item.pos
            pushed = False
            while pos < len(steps):
                step = steps[pos]
                if step.kind == "input":
                    env[pos] = inp.repeat(nreg, *([1] * len(shape)))
                elif step.kind in ("const", "meta", "affine"):
                    env[pos] = runner.run_step(pos, env, nreg)
                elif step.kind == "pwl":
                    x = env[int(step.args[0])]
                    ushape = tuple(x.shape[1:])
                    n = int(np.prod(ushape)) if ushape else 1
                    li = step.pwl_index
                    unit_shapes[li] = ushape
                    pre = x.reshape(nreg, 3, n)
                    if pos not in tables:
                        tables[pos] = _pwl_tables(step, n, dtype, device)
                    # global line ids: earlier nonlinearities' lines come first (depth-first order
                    # guarantees their shapes are known here)
                    off = sum(int(np.prod(unit_shapes[j])) * nbps[j] for j in range(li))
                    line_offsets[li] = off
                    lin = _linear_after(program, pos, ushape, nbps[li])
                    # every unit's value at each polygon's bounding-box centre (the cut's candidate
                    # filter) and at its vertex mean (the codes of the sparse Linear path), from one
                    # batched product that reads the affine stack once
                    pv = _values_at(pre, _probe_points(poly, with_centroid=lin is not None))
                    new_poly, parent, cptr, cline = _cut_layer(
                        poly, pre, tables[pos][0], radius, off, pv[:, 0], floors[li]
                    )
                    nnew = len(new_poly)
                    lin_one = None
                    if lin is not None:
                        # sparse updates pay off when few units cross each region (always but at
                        # the first cutting layer, whose one region is done by products instead)
                        ccount = cptr[1:] - cptr[:-1]
                        if int(ccount[parent].sum()) * _SPARSE_MIN_RATIO > nnew * n:
                            lin_one = lin if nreg == 1 else None
                            lin = None
                    plan = _tail_plan(program, pos, nbps) if lin is not None else None
                    if plan is not None:
                        # the last two nonlinearities at once, without per-child affine stacks
                        pos_b, lin_m = plan
                        n_b = int(lin.out_features)
                        li_b = steps[pos_b].pwl_index
                        unit_shapes[li_b] = (n_b,)
                        line_offsets[li_b] = off_b = off + n * nbps[li]
                        if pos_b not in tables:
                            tables[pos_b] = _pwl_tables(steps[pos_b], n_b, dtype, device)
                        out, gp, yf, new_codes, _ = _tail(
                            poly, pre, pv[:, 1], new_poly, parent, cptr, cline, lin, lin_m,
                            tables[pos], tables[pos_b], radius, off_b, (floors[li], floors[li_b]),
                        )
                        fenv = {k: v for k, v in env.items() if steps[k].kind not in ("input", "affine", "pwl")}
                        fenv[pos_b + 1] = yf.reshape(-1, *yf.shape[2:])
                        work.append(_Item(pos_b + 2, out, fenv, [c[gp] for c in item.codes] + new_codes))
                        pushed = True
                        break
                    # stream: split children in chunks when too many
                    live = [
                        t for key, v in env.items() if steps[key].kind in ("input", "affine", "pwl")
                        for t in (v if isinstance(v, (tuple, list)) else (v,))
                    ]
                    per_region = max(1, sum(t[:3].numel() for t in live) * x.element_size())
                    per_region += 3 * n * x.element_size()
                    chunk = chunk_size or int(min(65536, max(256, budget // per_region)))
                    starts = list(range(0, nnew, chunk))
                    if lin_one is not None:
                        # the children in Z-order of their vertex means: each chunk then holds
                        # nearby regions, and so does the final region order (cache locality
                        # down to the Partition's shared-vertex table)
                        zo = _zorder(new_poly.centroids())
                        new_poly, parent = new_poly.index(zo), parent[zo]
                        post_fn, cenv = _one_parent_post(program, pos, lin_one, pre, tables[pos], env)
                        nxt = pos + 2
                    elif lin is None:
                        post_fn = _make_post(pos, step, tables[pos])
                        cenv, nxt = env, pos + 1
                    else:
                        post_fn, cenv = _linear_post(program, pos, lin, pv[:, 1], pre, tables[pos], cptr, cline, env)
                        nxt = pos + 2
                    for st in reversed(starts):
                        sl = slice(st, min(st + chunk, nnew))
                        sub = new_poly.index(torch.arange(sl.start, sl.stop, device=device)) if len(starts) > 1 else new_poly
                        work.append(_Item(nxt, sub, cenv, list(item.codes), parent[sl], post_fn))
                    pushed = True
                    break
                for r in step.free_after:
                    env.pop(r, None)
                pos += 1
            if pushed:
                continue
            # reached the end: record the output maps
            y = env[program.output]
            output_shape = tuple(y.shape[1:])
            y = y.reshape(nreg, 3, -1)
            out_polys.append(poly)
            out_c.append(y[:, 0])
            out_g.append(y[:, 1:].transpose(1, 2))
            # codes leave the device chunk by chunk (bit-packed already where units have two pieces)
            for j, cj in enumerate(item.codes):
                cn = cj.cpu().numpy()
                out_codes[j].append(cn)
            if bar is not None:
                bar.update(poly)
            since_trim += nreg
            total += nreg
            if since_trim >= _TRIM_EVERY:
                _release_free_memory()
                since_trim = 0
    if bar is not None:
        bar.close()
    if total >= _TRIM_EVERY:  # only where the heap has grown a lot (see _TRIM_EVERY)
        _release_free_memory()
    poly = Polygons.cat(out_polys)
    codes: list[Any] = []
    for j in range(n_pwl):
        cj = np.concatenate(out_codes[j])
        out_codes[j] = []
        n_units = int(np.prod(unit_shapes[j])) if unit_shapes[j] else 1
        codes.append((cj, n_units) if nbps[j] == 1 else cj)
    return EngineResult(
        poly=poly,
        out_const=torch.cat(out_c),
        out_grad=torch.cat(out_g),
        codes=codes,
        unit_shapes=unit_shapes,
        output_shape=output_shape,
        line_offsets=line_offsets,
        num_breakpoints=nbps,
    )


def _make_post(pos: int, step: Step, table: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> Callable:
    bps, slopes, inter = table
    relu = step.pwl is not None and step.pwl.kind == "relu"

    pre_pos = int(step.args[0])
    # the gathered input stack is a private copy: mask it in place, unless a later step still
    # reads it (``relu(h) + h``, ``cat([relu(h), h])``, pre-activation residual blocks)
    in_place = pre_pos in step.free_after

    def post(it: _Item, g: torch.Tensor) -> None:
        # codes of every unit, read at each region's vertex mean (strictly inside the region)
        x = it.env[pre_pos]
        nreg = len(it.poly)
        pre = x.reshape(nreg, 3, -1)
        val = _values_at(pre, _homogeneous(it.poly.centroids()))[:, 0]
        if bps.numel() == 1:
            on = val > bps[0]
            codes = _pack(on)
        else:
            codes = (val[..., None] > bps).sum(-1).to(torch.int8)
        it.codes.append(codes)
        if relu:
            y = pre.mul_(on[:, None, :]) if in_place else pre * on[:, None, :]
        else:
            n = pre.shape[2]
            cl = on.long() if bps.numel() == 1 else codes.long()
            ar = torch.arange(n, device=pre.device)
            sl = slopes[cl, ar][:, None, :]
            y = pre.mul_(sl) if in_place else pre * sl
            y[:, 0] += inter[cl, ar]
        it.env[pos] = y.reshape(x.shape)
        for r in step.free_after:
            it.env.pop(r, None)

    return post
