"""The exact partition engine: one run over a traced program and a slice, as named phases.

On one region every tensor of the network is an affine function of the slice coordinates ``u``,
stored as an *affine stack* (:mod:`splinecam.engine.stacks`). Regions are processed as batches of
convex polygons (:class:`~splinecam.engine.geometry.Polygons`) held in work items; a run is

1. :meth:`_Run.prepare`: the input stack of the slice, the domain polygon, a probe that the slice
   fits the model, and every nonlinearity's noise floor (from one real forward pass);
2. :meth:`_Run.regroup`: a work item's pending gather of its parents' values (children of a cut
   are made lazily, chunk by chunk);
3. :meth:`_Run.advance`: the item's affine steps, up to the next piecewise-linear step;
4. :meth:`_Run.cut_step`: that step's kind (:mod:`splinecam.engine.kinds`) cuts the polygons, and
   :meth:`_Run.push_children` streams the pieces in chunks of bounded bytes;
5. :meth:`_Run.finish`: an item that reached the output records its affine output maps and codes;
6. :meth:`_Run.collect`: the :class:`EngineResult`.

At a piecewise-linear step every unit whose breakpoint line (or, for a max over a group, the line
where two candidates tie) crosses a region's polygon cuts it; cuts are applied per step with
conflict lists, in one fixed pseudo-random order of the step's line ids (:mod:`splinecam.engine.cutting`).
An elementwise step with one breakpoint followed by an ``nn.Linear`` (the MLP case) has faster
paths that give the same partition (:mod:`splinecam.engine.mlp_paths`; the tests compare them with
the plain one): products with the one parent at the first cutting layer, sparse updates for the few
crossing units after it, and the last two nonlinearities at once. Work items are processed
depth-first, so memory stays bounded by ``depth x chunk`` whatever the region count.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from ..errors import SliceError, UnsupportedModelError
from ..slice import Slice
from ..trace import Program, _Ref, evaluate_program
from ..trace.batch_axis import check_batch_axis_on_example
from ..trace.simplify import merge_duplicate_units
from ..trace.specs import PWLSpec
from . import geometry
from .geometry import Polygons, _zorder
from .kinds import Elementwise, Kind, kind_for
from .memory import _release_free_memory
from .merged import expand_merged_units
from .mlp_paths import _linear_after, _linear_post, _one_parent_post, _tail, _tail_plan
from .noise import unit_scales
from .progress import area_progress
from .slices import _take, as_slices, layer_floors, start_state
from .stacks import _gather, _Runner

__all__ = ["EngineResult", "run_program"]

# The sparse paths after a nonlinearity (:func:`_linear_post`, :func:`_tail`) are taken when the
# children have fewer than ``units / _SPARSE_MIN_RATIO`` crossing units of their parent to re-read
# on average (always but at the first cutting layer); else the children get dense stacks.
_SPARSE_MIN_RATIO = 8

# Regions finished between two calls of :func:`_release_free_memory`. A trim costs more than its
# few ms: the pages it returns are faulted in again by the next allocations (measured: the 256x3
# benchmark MLP, 162,097 regions, took 7% longer with a trim every 100,000 regions); one every
# 500,000 still bounds the resident size of million-region partitions.
_TRIM_EVERY = 500_000

# A line's on-the-line tolerance is at least ``_NOISE_FLOOR`` times its unit's noise scale (the sum
# of the absolute terms that make the unit's input, at the domain's vertices and centre; see
# :mod:`splinecam.engine.noise`): a unit that is identically zero on a region (exact cancellation,
# e.g. integer weights without bias) has rounding noise for coefficients there, about 1e-16 of the
# sums that made them, and its "line" must not cut. The floor is per unit (and per slice), so that one
# huge unit does not blur the lines of the others. It stays far below ``verify``'s ties (1e-12 of the
# largest unit input): a floor of 1e-12 also snapped the line of a unit that nearly duplicated another
# at 1e-3 of its scale unlike its twin's (found by fuzzing).
_NOISE_FLOOR = 1e-14

# Chunks of children are sized by the bytes of their live affine stacks: ``SPLINECAM_BUDGET_MB``
# (24 MiB: cache-sized for MLPs) per chunk, but at least 256 regions when those take at most
# ``_CHUNK_CAP`` bytes (small states), and at least one region. The peak memory then stays bounded by
# the network's depth times a chunk's state, whatever the region count (a VGG11 region on a 64x64
# input holds about 6 MiB of stacks per layer).
_CHUNK_CAP = 256 * 2**20


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
    sid: torch.Tensor | None = None  # slice index of each region (of ``poly``)


@dataclass
class EngineResult:
    """Raw output of the engine (torch tensors, internal centred coordinates)."""

    poly: Polygons
    out_const: torch.Tensor  # (R, O)
    out_grad: torch.Tensor  # (R, O, 2)
    codes: list[Any]  # per pwl step: (bit-packed uint8 (R, ceil(units / 8)), units) or (R, units) ints
    unit_shapes: list[tuple[int, ...]] = field(default_factory=list)
    output_shape: tuple[int, ...] = ()
    line_offsets: list[int] = field(default_factory=list)
    num_breakpoints: list[int] = field(default_factory=list)  # line ids per unit, per pwl step
    jump_lines: list[tuple[int, int]] = field(default_factory=list)  # line ids of steps with jumps
    slice_id: torch.Tensor | None = None  # (R,) the slice of every region (a run over many slices)


def _layer_scales(program: Program, model: nn.Module, x: torch.Tensor) -> list[float]:
    """The largest absolute input of every nonlinearity (in program order) on the real inputs ``x``."""
    return [float(p.abs().max()) if p.numel() else 0.0 for p in evaluate_program(program, model, x)[1]]


def _one_breakpoint_flags(program: Program) -> list[int]:
    """Per pwl step, 1 where the MLP fast paths may take it (continuous, one breakpoint), else 0."""
    out = []
    for i in program.pwl_steps:
        spec = program.steps[i].pwl
        ok = isinstance(spec, PWLSpec) and spec.continuous and len(spec.breakpoints) == 1
        out.append(1 if ok else 0)
    return out


# --------------------------------------------------------------------------- one run
class _Run:
    """The state of one engine run; its methods are the run's phases (see the module docstring)."""

    def __init__(
        self,
        model: nn.Module,
        program: Program,
        dtype: torch.dtype,
        device: torch.device,
        progress: bool,
        chunk_size: int | None,
    ) -> None:
        self.model = model
        self.program = program
        self.steps = program.steps
        self.dtype = dtype
        self.device = device
        self.chunk_size = chunk_size
        self.runner = _Runner(program, model)
        n_pwl = len(program.pwl_steps)
        self.kinds: list[Kind | None] = [None] * n_pwl
        self.fast1 = _one_breakpoint_flags(program)
        self.budget = int(os.environ.get("SPLINECAM_BUDGET_MB", "24")) * 2**20
        self.work: list[_Item] = []
        self.out_polys: list[Polygons] = []
        self.out_c: list[torch.Tensor] = []
        self.out_g: list[torch.Tensor] = []
        self.out_codes: list[list[np.ndarray]] = [[] for _ in range(n_pwl)]
        self.out_sid: list[torch.Tensor] = []
        self.output_shape: tuple[int, ...] = ()
        self.since_trim = 0
        self.total = 0
        self.progress = progress
        self.bar: Any = None  # made by prepare(), which knows the domains

    # ------------------------------------------------------------------ phase 1
    def prepare(self, slc: Slice | list[Slice]) -> None:
        """The slices' input stacks and domain polygons (centred coordinates; one starting region
        per slice, :mod:`splinecam.engine.slices`), the probe that they fit the model, and every
        nonlinearity's noise floor (per slice)."""
        slices = as_slices(slc)
        start = start_state(slices, self.dtype, self.device)
        self.radius, self.inp, self.shape = start.radius, start.inp, start.shape
        self._probe()
        check_batch_axis_on_example(self.program, self.model, self.inp[:3].clone())
        with torch.no_grad():
            self.floors = layer_floors(start, lambda x, p: unit_scales(self.program, self.model, x, p), _NOISE_FLOOR)
        # progress: the fraction of the domains' area whose regions are final
        self.bar = area_progress(self.progress, [s.domain for s in slices])
        self.work.append(_Item(0, start.poly0, {}, [], sid=start.sid))

    def _probe(self) -> None:
        """One plain forward pass on the slice's origin: the slice must fit the model."""
        try:
            with torch.no_grad():
                probe = self.model(self.inp[:1].clone())  # (an in-place first step must not write into inp)
        except Exception as exc:
            raise SliceError(
                f"the slice's input shape {self.shape} does not fit the model ({type(exc).__name__}: {exc}); "
                "build the slice from points of the model's input shape (without the batch axis)"
            ) from exc
        if not isinstance(probe, torch.Tensor):
            raise UnsupportedModelError(
                f"the model returned a {type(probe).__name__}; splinecam needs a single output tensor"
            )

    # ------------------------------------------------------------------ phase 2
    def regroup(self, item: _Item) -> None:
        """Apply an item's pending gather: its regions' values from their parents'."""
        if item.gather is None:
            return
        steps = self.steps
        g = item.gather
        item.env = {
            key: (_gather(v, g) if steps[key].kind in ("input", "affine", "pwl") else v)
            for key, v in item.env.items()
        }
        item.codes = [c[g] for c in item.codes]
        item.gather = None
        # shape queries (``x.size(0)``...) may count the regions of the batch: recompute them on
        # the regrouped one, in program order (the values they read are alive)
        for key in sorted(k for k in item.env if steps[k].kind == "meta"):
            item.env[key] = self.runner.run_step(key, item.env, len(g))
        if item.pending is not None:
            item.pending(item, g)
            item.pending = None

    # ------------------------------------------------------------------ phase 3
    def advance(self, item: _Item) -> bool:
        """Run the item's steps up to the next piecewise-linear one, which cuts (True: children were
        pushed) or up to the end (False)."""
        env, nreg = item.env, len(item.poly)
        pos = item.pos
        while pos < len(self.steps):
            step = self.steps[pos]
            if step.kind == "input":
                env[pos] = _gather(self.inp, item.sid)
            elif step.kind in ("const", "meta", "affine"):
                env[pos] = self.runner.run_step(pos, env, nreg)
            elif step.kind == "pwl":
                self.cut_step(item, pos)
                return True
            for r in step.free_after:
                env.pop(r, None)
            pos += 1
        return False

    # ------------------------------------------------------------------ phase 4
    def kind_at(self, pos: int, env: dict[int, Any], nreg: int) -> Kind:
        """The kind of the pwl step at ``pos`` (built once its input shapes are known)."""
        step = self.steps[pos]
        li = step.pwl_index
        kind = self.kinds[li]
        if kind is None:
            shapes: list[tuple[int, ...]] = []
            for a in step.args:
                if not isinstance(a, _Ref):
                    continue
                v = env[int(a)]
                if self.steps[int(a)].kind in ("input", "affine", "pwl"):
                    shapes.append(tuple(v.shape[1:]))
                    full = (1, *v.shape[1:])
            # a constant operand of torch.maximum: broadcast to the output's shape (as in pwl_inputs)
            for i, a in enumerate(step.args[:2]):
                if isinstance(a, _Ref) and self.steps[int(a)].kind == "const":
                    c = env[int(a)]
                    shapes.insert(i, tuple(torch.broadcast_shapes(full, torch.as_tensor(c).shape))[1:])
            kind = self._register(li, kind_for(step, shapes, self.dtype, self.device))
        return kind

    def _register(self, li: int, kind: Kind) -> Kind:
        """Keep the kind of the ``li``-th nonlinearity; a step with jumps marks its lines (see
        :data:`splinecam.engine.geometry._JUMP_LINES`)."""
        if hasattr(kind, "floor_hint"):  # one tolerance per slice for a group's ties
            kind.floor_hint = self.floors[li].amax(1) if self.floors[li].numel() else self.floors[li].new_zeros(1)
        self.kinds[li] = kind
        spec = self.steps[self.program.pwl_steps[li]].pwl
        if isinstance(spec, PWLSpec) and spec.has_jumps:
            off = self.line_offset(li)
            geometry._JUMP_LINES.append((off, off + kind.units * kind.lines_per_unit))
        return kind

    def line_offset(self, li: int) -> int:
        """The global id of line 0 of the ``li``-th nonlinearity (earlier ones' lines come first;
        depth-first order guarantees they are known here)."""
        return sum(k.units * k.lines_per_unit for k in self.kinds[:li] if k is not None)

    def cut_step(self, item: _Item, pos: int) -> None:
        """Cut the item's polygons at the pwl step ``pos`` and push the pieces as new items."""
        env, poly, nreg = item.env, item.poly, len(item.poly)
        step = self.steps[pos]
        kind = self.kind_at(pos, env, nreg)
        li = step.pwl_index
        off = self.line_offset(li)
        pre = kind.input_stack(env, nreg)
        if isinstance(kind, Elementwise) and kind.fast_paths and self._cut_mlp(item, pos, kind, pre, off):
            return
        new_poly, parent = kind.cut(poly, pre, _take(self.radius, item.sid), off, _take(self.floors[li], item.sid))
        in_place = len(kind.stack_args()) == 1 and int(step.args[0]) in step.free_after
        self.push_children(item, new_poly, parent, kind.post(pos, in_place), env, pos + 1, pre)

    def _cut_mlp(self, item: _Item, pos: int, kind: Elementwise, pre: torch.Tensor, off: int) -> bool:
        """The MLP fast paths of an elementwise one-breakpoint step (:mod:`splinecam.engine.mlp_paths`);
        False where none applies (the plain path runs instead)."""
        from .cutting import _cut_layer, _probe_points, _values_at

        env, poly, nreg = item.env, item.poly, len(item.poly)
        step = self.steps[pos]
        li = step.pwl_index
        n = kind.units
        lin = _linear_after(self.program, pos, kind.unit_shape, 1)
        if lin is None:
            return False
        table = kind.table
        # every unit's value at each polygon's bounding-box centre (the cut's candidate filter) and
        # at its vertex mean (the codes of the sparse Linear path), from one batched product
        pv = _values_at(pre, _probe_points(poly, with_centroid=True))
        rad, fl = _take(self.radius, item.sid), _take(self.floors[li], item.sid)
        new_poly, parent, cptr, cline = _cut_layer(poly, pre, table[0], rad, off, pv[:, 0], fl)
        nnew = len(new_poly)
        # sparse updates pay off when few units cross each region (always but at the first cutting
        # layer, whose one region is done by products instead)
        ccount = cptr[1:] - cptr[:-1]
        if int(ccount[parent].sum()) * _SPARSE_MIN_RATIO > nnew * n:
            if nreg != 1:
                post_fn = kind.post(pos, int(step.args[0]) in step.free_after)
                self.push_children(item, new_poly, parent, post_fn, env, pos + 1, pre)
                return True
            # the children in Z-order of their vertex means: each chunk then holds nearby regions,
            # and so does the final region order (cache locality down to the shared-vertex table)
            zo = _zorder(new_poly.centroids())
            new_poly, parent = new_poly.index(zo), parent[zo]
            post_fn, cenv = _one_parent_post(self.program, pos, lin, pre, table, env)
            self.push_children(item, new_poly, parent, post_fn, cenv, pos + 2, pre)
            return True
        plan = _tail_plan(self.program, pos, self.fast1)
        if plan is not None:
            self._cut_tail(item, pos, plan, kind, pre, pv, new_poly, parent, cptr, cline, lin, off)
            return True
        post_fn, cenv = _linear_post(self.program, pos, lin, pv[:, 1], pre, table, cptr, cline, env)
        self.push_children(item, new_poly, parent, post_fn, cenv, pos + 2, pre)
        return True

    def _cut_tail(
        self, item: _Item, pos: int, plan: tuple[int, nn.Linear], kind: Elementwise, pre: torch.Tensor,
        pv: torch.Tensor, new_poly: Polygons, parent: torch.Tensor, cptr: torch.Tensor, cline: torch.Tensor,
        lin: nn.Linear, off: int,
    ) -> None:
        """The last two nonlinearities at once, without per-child affine stacks (:func:`_tail`)."""
        pos_b, lin_m = plan
        n_b = int(lin.out_features)
        step_b = self.steps[pos_b]
        li, li_b = self.steps[pos].pwl_index, step_b.pwl_index
        kind_b = self.kinds[li_b]
        if kind_b is None:
            kind_b = self._register(li_b, kind_for(step_b, [(n_b,)], self.dtype, self.device))
        off_b = off + kind.units * kind.lines_per_unit
        out, gp, yf, new_codes, _ = _tail(
            item.poly, pre, pv[:, 1], new_poly, parent, cptr, cline, lin, lin_m,
            kind.table, kind_b.table, _take(self.radius, item.sid), off_b,
            (_take(self.floors[li], item.sid), _take(self.floors[li_b], item.sid)),
        )
        fenv = {k: v for k, v in item.env.items() if self.steps[k].kind not in ("input", "affine", "pwl")}
        fenv[pos_b + 1] = yf.reshape(-1, *yf.shape[2:])
        self.work.append(_Item(pos_b + 2, out, fenv, [c[gp] for c in item.codes] + new_codes, sid=item.sid[gp]))

    def push_children(
        self, item: _Item, new_poly: Polygons, parent: torch.Tensor, post_fn: Callable,
        cenv: dict[int, Any], nxt: int, pre: torch.Tensor,
    ) -> None:
        """Push the pieces of a cut as work items, in chunks of bounded bytes of live state."""
        nnew = len(new_poly)
        chunk = self.chunk_size or self._auto_chunk(item.env, pre)
        starts = list(range(0, nnew, chunk))
        for st in reversed(starts):
            sl = slice(st, min(st + chunk, nnew))
            sub = new_poly.index(torch.arange(sl.start, sl.stop, device=self.device)) if len(starts) > 1 else new_poly
            self.work.append(_Item(nxt, sub, cenv, list(item.codes), parent[sl], post_fn, item.sid[parent[sl]]))

    def _auto_chunk(self, env: dict[int, Any], pre: torch.Tensor) -> int:
        """Regions per chunk from the bytes of one region's live affine stacks (see ``_CHUNK_CAP``)."""
        live = [
            t for key, v in env.items() if self.steps[key].kind in ("input", "affine", "pwl")
            for t in (v if isinstance(v, (tuple, list)) else (v,))
        ]
        per_region = max(1, sum(t[:3].numel() for t in live) * pre.element_size())
        per_region += pre[:1].numel() * pre.element_size()
        least = min(256, _CHUNK_CAP // per_region)
        return int(max(1, min(65536, max(least, self.budget // per_region))))

    # ------------------------------------------------------------------ phase 5
    def finish(self, item: _Item) -> None:
        """An item that reached the output: record its output maps and codes."""
        nreg = len(item.poly)
        y = item.env[self.program.output]
        self.output_shape = tuple(y.shape[1:])
        y = y.reshape(nreg, 3, -1)
        self.out_polys.append(item.poly)
        self.out_c.append(y[:, 0])
        self.out_g.append(y[:, 1:].transpose(1, 2))
        self.out_sid.append(item.sid)
        # codes leave the device chunk by chunk (bit-packed already where units have two pieces)
        for j, cj in enumerate(item.codes):
            self.out_codes[j].append(cj.cpu().numpy())
        if self.bar is not None:
            self.bar.update(item.poly, item.sid)
        self.since_trim += nreg
        self.total += nreg
        if self.since_trim >= _TRIM_EVERY:
            _release_free_memory()
            self.since_trim = 0

    # ------------------------------------------------------------------ phase 6
    def collect(self) -> EngineResult:
        """The engine's result from the finished items."""
        if self.bar is not None:
            self.bar.close()
        if self.total >= _TRIM_EVERY:  # only where the heap has grown a lot (see _TRIM_EVERY)
            _release_free_memory()
        codes: list[Any] = []
        for j, kind in enumerate(self.kinds):
            assert kind is not None
            cj = np.concatenate(self.out_codes[j])
            self.out_codes[j] = []
            codes.append((cj, kind.units) if kind.packed else cj)
        return EngineResult(
            poly=Polygons.cat(self.out_polys),
            out_const=torch.cat(self.out_c),
            out_grad=torch.cat(self.out_g),
            codes=codes,
            unit_shapes=[k.unit_shape for k in self.kinds if k is not None],
            output_shape=self.output_shape,
            line_offsets=[self.line_offset(j) for j in range(len(self.kinds))],
            num_breakpoints=[k.lines_per_unit for k in self.kinds if k is not None],
            jump_lines=list(geometry._JUMP_LINES),
            slice_id=torch.cat(self.out_sid),
        )


def run_program(
    model: nn.Module,
    program: Program,
    slc: Slice | list[Slice],
    dtype: torch.dtype,
    device: torch.device,
    progress: bool = False,
    chunk_size: int | None = None,
    check: tuple[int, Callable[[], Any]] | None = None,
) -> EngineResult:
    """Run the engine; ``model`` is the prepared private copy that ``program`` was traced from.

    ``slc``: one slice, or a list of slices of one input shape run together (one starting region
    per slice; :mod:`splinecam.engine.slices`): the result's ``slice_id`` then tells each region's.
    ``check``: ``(regions, fn)``: ``fn()`` is called once, as soon as the regions found (finished
    ones and those of the next work item) reach ``regions`` (at once where ``regions <= 1``), and
    never in a run with fewer regions: the region-count warning of :func:`splinecam.partition`,
    which small partitions then do not pay for.
    """
    # duplicate units are tested and cut once, and expanded back in the result (engine.merged)
    program, merges = merge_duplicate_units(program)
    run = _Run(model, program, dtype, device, progress, chunk_size)
    geometry._JUMP_LINES.clear()
    try:
        if check is not None and check[0] <= 1:
            check[1]()
            check = None
        run.prepare(slc)
        with torch.no_grad():
            while run.work:
                item = run.work.pop()
                if check is not None and run.total + len(item.poly) >= check[0]:
                    check[1]()
                    check = None
                run.regroup(item)
                if not run.advance(item):
                    run.finish(item)
        res = run.collect()
        return expand_merged_units(res, merges) if merges else res
    finally:
        geometry._JUMP_LINES.clear()
