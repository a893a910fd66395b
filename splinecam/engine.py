"""The exact partition engine.

On one region every tensor of the network is an affine function of the slice coordinates ``u``. It
is stored as an *affine stack*: a tensor of shape ``(3 * B, *shape)`` whose rows ``3b``, ``3b + 1``,
``3b + 2`` hold, for region ``b``, the value at ``u = 0`` and the two partial derivatives. An affine
step runs the real torch module on the stack; its bias (the module applied to zeros) is then removed
from the derivative rows. Convolutions therefore never become dense matrices, and every affine torch
module works with no special code.

At a piecewise-linear step, each unit whose breakpoint line ``f_j(u) = t`` crosses a region's polygon
cuts it (:func:`splinecam.geometry.split_by_lines`). Cuts are applied per layer with conflict lists:
every piece keeps the lines of its region that still cross it, and is cut by the first of them in
one fixed pseudo-random order of the layer's line ids (see :func:`_cut_pairs`). The pieces get their
codes (from their interior; bit-packed where a unit has one breakpoint), and the next steps see the
masked affine maps.

A nonlinearity followed by an ``nn.Linear`` (the MLP case) has faster paths that give the same
partition (tests compare them with the plain one):

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
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from .errors import SliceError, UnsupportedModelError
from .geometry import EPS, Polygons, _fmix, split_by_lines
from .slice import Slice
from .trace import Program, Step, _map_args, _Ref, prepare_model, trace_model

__all__ = ["partition", "EngineResult", "run_program"]


# --------------------------------------------------------------------------- affine-stack execution
def _call(step: Step, args: tuple, kwargs: dict, model: nn.Module) -> Any:
    if step.op == "module":
        return step.target(*args, **kwargs)
    if step.op == "get_attr":
        obj: Any = model
        for part in str(step.target).split("."):
            obj = getattr(obj, part)
        return obj
    if step.op == "call_method":
        return getattr(args[0], step.target)(*args[1:], **kwargs)
    return step.target(*args, **kwargs)


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
                self.const_cache[i] = _call(step, args, kwargs, self.model)
            return self.const_cache[i]
        args = _map_args(step.args, lambda a: env[int(a)] if isinstance(a, _Ref) else a)
        kwargs = _map_args(step.kwargs, lambda a: env[int(a)] if isinstance(a, _Ref) else a)
        if step.kind == "meta":
            return _call(step, args, kwargs, self.model)
        # affine
        out = _call(step, args, kwargs, self.model)
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
                    self.bias_cache[i] = _call(step, zargs, zkwargs, self.model)
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
            probe = model(inp[:1])
    except Exception as exc:
        raise SliceError(
            f"the slice's input shape {shape} does not fit the model ({type(exc).__name__}: {exc}); "
            "build the slice from points of the model's input shape (without the batch axis)"
        ) from exc
    if not isinstance(probe, torch.Tensor):
        raise UnsupportedModelError(
            f"the model returned a {type(probe).__name__}; splinecam needs a single output tensor"
        )
    out_polys: list[Polygons] = []
    out_c: list[torch.Tensor] = []
    out_g: list[torch.Tensor] = []
    out_codes: list[list[np.ndarray]] = [[] for _ in range(n_pwl)]
    output_shape: tuple[int, ...] = ()

    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm
        except ImportError as exc:  # pragma: no cover
            raise ImportError("progress=True needs tqdm: pip install tqdm") from exc
        bar = tqdm(desc="splinecam regions", unit="region")

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
                    new_poly, parent, cptr, cline = _cut_layer(poly, pre, tables[pos][0], radius, off, pv[:, 0])
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
                            tables[pos], tables[pos_b], radius, off_b,
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
                bar.update(nreg)
            since_trim += nreg
            total += nreg
            if since_trim >= 100_000:
                _release_free_memory()
                since_trim = 0
    if bar is not None:
        bar.close()
    if total >= 100_000:  # a few ms: worth it only where the heap has grown
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
        val = _values_at(pre, _probe_points(it.poly, with_centroid=True)[:, 1:])[:, 0]
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


def _linear_after(program: Program, pos: int, ushape: tuple[int, ...], nbp: int) -> nn.Linear | None:
    """The ``nn.Linear`` that alone reads the output of the nonlinearity at ``pos``, if any."""
    if nbp != 1 or len(ushape) != 1 or pos + 1 >= len(program.steps):
        return None
    nxt = program.steps[pos + 1]
    if (
        nxt.kind == "affine"
        and nxt.op == "module"
        and isinstance(nxt.target, nn.Linear)
        and len(nxt.args) == 1
        and isinstance(nxt.args[0], _Ref)
        and int(nxt.args[0]) == pos
        and not nxt.kwargs
        and pos in nxt.free_after
        and program.output != pos
    ):
        return nxt.target
    return None


def _masked_linear(pre: torch.Tensor, gain: torch.Tensor, inter: torch.Tensor | None, lin: nn.Linear) -> torch.Tensor:
    """``lin`` applied to ``gain * pre + inter`` (``gain``, ``inter``: ``(P, n)`` slope and
    intercept of every unit's piece) on the affine stack ``pre`` ``(P, 3, n)``; ``(P, 3, out)``."""
    p, _, n = pre.shape
    w = lin.weight
    if w.shape[0] <= 4:
        # few outputs (a classifier head): one batched product with the per-region scaled weights,
        # without writing the masked stack
        z = torch.bmm(pre, gain[:, :, None] * w.t()[None])
    else:
        z = torch.nn.functional.linear((pre * gain[:, None, :]).reshape(3 * p, n), w).reshape(p, 3, -1)
    if inter is not None:
        z[:, 0] += torch.nn.functional.linear(inter, w)
    if lin.bias is not None:
        z[:, 0] += lin.bias
    return z


def _piece_maps(
    on: torch.Tensor, table: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Slope and intercept ``(P, n)`` of every unit's piece (``on``: above its one breakpoint;
    intercepts None when all 0)."""
    _, slopes, inter = table
    return torch.where(on, slopes[1], slopes[0]), (
        torch.where(on, inter[1], inter[0]) if bool((inter != 0).any()) else None
    )


def _pair_parents(ptr: torch.Tensor) -> torch.Tensor:
    """The region of every entry of a CSR list with offsets ``ptr``."""
    p = len(ptr) - 1
    return torch.repeat_interleave(torch.arange(p, device=ptr.device), ptr[1:] - ptr[:-1])


_BIT = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


def _pack(on: torch.Tensor) -> torch.Tensor:
    """Bit-pack ``(R, n)`` booleans along the units into ``(R, ceil(n / 8))`` uint8, first unit in the
    highest bit (the layout of ``numpy.packbits``). Codes of units with one breakpoint are kept
    like this throughout the engine: gathering them moves 8 times fewer bytes."""
    r, n = on.shape
    nb = (n + 7) // 8
    if n % 8:
        on = torch.cat([on, on.new_zeros((r, nb * 8 - n))], 1)
    return (on.view(r, nb, 8).to(torch.uint8) * _BIT.to(on.device)).sum(2, dtype=torch.uint8)


def _bits(packed: torch.Tensor, rows: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
    """The codes (0 or 1, int64) of ``units`` on ``rows`` of bit-packed codes."""
    return (packed[rows, units >> 3].long() >> (7 - (units & 7))) & 1


def _toggle(packed: torch.Tensor, rows: torch.Tensor, units: torch.Tensor) -> None:
    """Flip, in place, the codes of the (distinct) entries ``(rows, units)`` of bit-packed codes."""
    if len(rows) == 0:
        return
    nb = packed.shape[1]
    delta = torch.zeros(packed.numel(), dtype=torch.int32, device=packed.device)
    # distinct bits of one byte add up to their union
    delta.index_add_(0, rows * nb + (units >> 3), (128 >> (units & 7)).to(torch.int32))
    packed.view(-1).bitwise_xor_(delta.to(torch.uint8))


def _flips(
    base: torch.Tensor,
    g: torch.Tensor,
    cptr: torch.Tensor,
    cline: torch.Tensor,
    raw: torch.Tensor,
    ctr: torch.Tensor,
    table: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Codes of the children of a cut, and where they differ from their parent's ``base`` codes
    (bit-packed, see :func:`_pack`).

    A child (parent ``g``, vertex mean ``ctr``) has its parent's codes except on the units that
    cross the parent (CSR ``cptr``/``cline``, affine values ``raw`` ``(pairs, 3)``), whose code is
    read at the child's vertex mean. Returns the children's codes and, for every unit whose piece
    changes, ``(child, unit, pair, dy)``, sorted by child: ``pair`` indexes ``cline`` and ``dy``
    ``(k, 3)`` is the change of the unit's output as an affine map (new piece minus old piece).
    """
    bps, slopes, inter = table
    dev = base.device
    cn = len(g)
    codes = base[g]
    cnt = (cptr[1:] - cptr[:-1])[g]
    tot = int(cnt.sum())
    child = torch.repeat_interleave(torch.arange(cn, device=dev), cnt)
    first = torch.cumsum(cnt, 0) - cnt
    pair = cptr[g][child] + torch.arange(tot, device=dev) - first[child]
    unit = cline[pair]
    xv = raw[pair]
    cc = ctr[child]
    v = xv[:, 0] + cc[:, 0] * xv[:, 1] + cc[:, 1] * xv[:, 2]
    newc = (v > bps[0]).long()
    oldc = _bits(codes, child, unit)
    d = (newc != oldc).nonzero().squeeze(1)
    child, unit, pair, xv = child[d], unit[d], pair[d], xv[d]
    newc, oldc = newc[d], oldc[d]
    _toggle(codes, child, unit)
    dy = xv * (slopes[newc, unit] - slopes[oldc, unit])[:, None]
    dy[:, 0] += inter[newc, unit] - inter[oldc, unit]
    return codes, (child, unit, pair, dy)


def _linear_post(
    program: Program,
    pos: int,
    lin: nn.Linear,
    val: torch.Tensor,
    pre: torch.Tensor,
    table: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    cptr: torch.Tensor,
    cline: torch.Tensor,
    env: dict[int, Any],
) -> tuple[Callable, dict[int, Any]]:
    """A nonlinearity followed by a Linear layer, done once per parent region plus sparse updates.

    On a parent region every unit that no line crosses keeps one piece; the Linear layer is run
    once per parent with every unit on its piece at the parent's vertex mean (``base``; ``val``
    holds every unit there). A child region differs from that only on the parent's crossing units
    whose piece changes: its output is ``base`` plus a sparse product with the weight columns of
    those units. The cost per child is then proportional to the number of crossing units, not to
    the layer's width.
    """
    step = program.steps[pos]
    q = pos + 1
    p = pre.shape[0]
    on = val > table[0][0]
    base = _pack(on)
    gain, inter = _piece_maps(on, table)
    z = _masked_linear(pre, gain, inter, lin).reshape(3 * p, -1)
    freed = set(step.free_after) | set(program.steps[q].free_after)
    cenv = {k: v for k, v in env.items() if k not in freed}
    cenv[q] = z
    wt = lin.weight.t()
    raw = pre[_pair_parents(cptr), :, cline]  # (pairs, 3): the crossing units' affine values

    def post(it: _Item, g: torch.Tensor) -> None:
        codes, (child, unit, _, dy) = _flips(base, g, cptr, cline, raw, it.poly.centroids(), table)
        if len(child):
            _add_sparse_rows(it.env[q], child, unit, dy, wt, len(g))
        it.codes.append(codes)

    return post, cenv


def _tail_plan(program: Program, pos: int, nbps: list[int]) -> tuple[int, nn.Linear] | None:
    """``(pos_b, lin_m)`` when the network ends ``A -> L -> B -> M -> (affine steps)`` from the
    nonlinearity ``A`` at ``pos``: ``L`` and ``M`` are ``nn.Linear`` layers (found by
    :func:`_linear_after`), ``B`` at ``pos_b = pos + 2`` is the last nonlinearity, one breakpoint
    per unit, and nothing after ``M`` reads a value from before it. See :func:`_tail`."""
    steps = program.steps
    pos_b = pos + 2
    if pos_b + 1 >= len(steps) or program.pwl_steps[-1] != pos_b:
        return None
    b = steps[pos_b]
    if (
        b.kind != "pwl"
        or nbps[b.pwl_index] != 1
        or not b.args
        or not isinstance(b.args[0], _Ref)
        or int(b.args[0]) != pos + 1
        or (pos + 1) not in b.free_after
        or program.output in (pos, pos + 1)
    ):
        return None
    n_b = steps[pos + 1].target.out_features
    lin_m = _linear_after(program, pos_b, (n_b,), 1)
    if lin_m is None:
        return None
    for st in steps[pos_b + 2:]:
        for r in _collect_refs((st.args, st.kwargs)):
            if int(r) < pos_b + 1 and steps[int(r)].kind in ("input", "affine", "pwl"):
                return None
    return pos_b, lin_m


def _tail(
    poly: Polygons,
    pre: torch.Tensor,
    val: torch.Tensor,
    kids: Polygons,
    g: torch.Tensor,
    cptr: torch.Tensor,
    cline: torch.Tensor,
    lin_l: nn.Linear,
    lin_m: nn.Linear,
    table_a: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    table_b: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    radius: float,
    off_b: int,
) -> tuple[Polygons, torch.Tensor, torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """The last two nonlinearities ``A -> L -> B -> M`` (see :func:`_tail_plan`), with no affine
    stack per child of ``A``.

    ``poly`` are the parents (regions entering ``A``, affine stack ``pre`` ``(P, 3, n_a)``, every
    unit at their vertex means ``val``), already cut by ``A`` into ``kids`` (parent ``g``; crossing
    lines ``cptr``/``cline``). A child's inputs to ``B`` are its parent's (``zb``, one dense
    ``L`` per parent) plus a sparse sum over the few units of ``A`` whose piece differs. Instead
    of writing that out per child, ``B``'s lines are filtered once per parent: a unit whose line
    stays farther from the parent's bounding box than the largest possible change (the sum of
    ``|L|``'s weights times the largest change of each crossing unit of ``A`` over the box) keeps
    one piece on every child, and only the others (``S``) are tested on the children, with their
    exact coefficients made from the sparse sums. ``M``'s output is likewise one dense product per
    parent plus sparse terms per child and per grandchild. The cost per region then hardly
    depends on the layers' width.

    Returns the grandchildren, the index of the parent each comes from, ``M``'s output as an
    affine stack ``(F, 3, out)``, the codes of ``A`` and ``B`` on the grandchildren, and the
    child each grandchild comes from.
    """
    bps_a, slopes_a, inter_a = table_a
    bps_b, slopes_b, inter_b = table_b
    p = pre.shape[0]
    cn = len(kids)
    dev = pre.device
    # A: the parents' codes and B's inputs on the parents (dense), the children's codes and flips
    on_pa = val > bps_a[0]
    base_a = _pack(on_pa)
    gain_a, inter_ap = _piece_maps(on_pa, table_a)
    zb = _masked_linear(pre, gain_a, inter_ap, lin_l)  # (P, 3, n_b)
    n_b = zb.shape[2]
    pair_par = _pair_parents(cptr)
    raw_a = pre[pair_par, :, cline]  # (pairs, 3)
    kid_ctr = kids.centroids()
    codes_a, (f_kid, f_unit, f_pair, f_dy) = _flips(base_a, g, cptr, cline, raw_a, kid_ctr, table_a)
    # the largest change of each crossing unit's output over its parent's box, and the resulting
    # bound on the change of every input of B
    lo = poly.xy.amin(1)
    hi = poly.xy.amax(1)
    mid = 0.5 * (lo + hi)
    half = 0.5 * (hi - lo)
    mp = mid[pair_par]
    hp = half[pair_par]
    # (a child whose piece of unit i differs from the parent's lies on the other side of i's line
    # than the parent's vertex mean: only that part of the box counts)
    ca = raw_a[:, 0] + raw_a[:, 1] * mp[:, 0] + raw_a[:, 2] * mp[:, 1]
    sa = raw_a[:, 1].abs() * hp[:, 0] + raw_a[:, 2].abs() * hp[:, 1]
    on_a = on_pa[pair_par, cline]
    t_a = bps_a[0].abs()
    reach = torch.where(on_a, (ca - sa).abs(), (ca + sa).abs()).clamp_min(t_a)
    # a child may reach past the line by the cutting tolerance (its vertices there were snapped
    # onto the line): add twice that, and a relative slack far beyond rounding
    reach += 2.0 * _line_table(raw_a, bps_a, radius, cline)[:, 3] + 1e-9 * (ca.abs() + sa + t_a)
    dslope = (slopes_a[1] - slopes_a[0]).abs()
    dinter = (inter_a[1] - inter_a[0]).abs()
    reach = reach * dslope[cline] + dinter[cline]
    bound = torch.zeros((p, n_b), dtype=pre.dtype, device=dev)
    bound.index_add_(0, pair_par, lin_l.weight.t().abs()[cline] * reach[:, None])
    # B's units that may change piece somewhere on a parent's box (with a wide safety margin: the
    # others are certain to keep the piece they have at the box centre)
    one = torch.ones((p, 1), dtype=pre.dtype, device=dev)
    centre_b = torch.bmm(torch.cat([one, mid], 1)[:, None, :], zb).squeeze(1)
    spread_b = torch.bmm(half[:, None, :], zb[:, 1:].abs()).squeeze(1)
    dist = (centre_b - bps_b[0]).abs()
    maybe = dist * (1.0 - 1e-7) <= (spread_b + bound) * (1.0 + 1e-7)
    on_pb = centre_b > bps_b[0]
    base_pb = _pack(on_pb)
    sp = maybe.nonzero()
    s_par, s_unit = sp[:, 0], sp[:, 1]
    s_cnt = torch.bincount(s_par, minlength=p)
    s_first = torch.cumsum(s_cnt, 0) - s_cnt
    # every child with every unit of S of its parent: exact coefficients = parent's + sparse sum
    k = s_cnt[g]
    tot = int(k.sum())
    cp_kid = torch.repeat_interleave(torch.arange(cn, device=dev), k)
    first = torch.cumsum(k, 0) - k
    cp_s = s_first[g][cp_kid] + torch.arange(tot, device=dev) - first[cp_kid]
    cp_unit = s_unit[cp_s]
    raw_b = zb[g[cp_kid], :, cp_unit]  # (tot, 3)
    nfl = torch.bincount(f_kid, minlength=cn)
    k2 = nfl[cp_kid]
    tot2 = int(k2.sum())
    if tot2:
        combo = torch.repeat_interleave(torch.arange(tot, device=dev), k2)
        fl_first = torch.cumsum(nfl, 0) - nfl
        first2 = torch.cumsum(k2, 0) - k2
        fl = fl_first[cp_kid[combo]] + torch.arange(tot2, device=dev) - first2[combo]
        wv = lin_l.weight[cp_unit[combo], f_unit[fl]]
        raw_b.index_add_(0, combo, f_dy[fl] * wv[:, None])
    # B's codes on the children: the parent's box-centre codes, S read at the child's vertex mean
    codes_b = base_pb[g]
    v = raw_b[:, 0] + kid_ctr[cp_kid, 0] * raw_b[:, 1] + kid_ctr[cp_kid, 1] * raw_b[:, 2]
    newc = (v > bps_b[0]).long()
    oldc = on_pb[g[cp_kid], cp_unit].long()
    d = (newc != oldc).nonzero().squeeze(1)
    _toggle(codes_b, cp_kid[d], cp_unit[d])
    # cut the children by B's lines that really cross them
    tab = _line_table(raw_b, bps_b, radius, cp_unit)
    real = _crosses(kids.xy.index_select(0, cp_kid), tab).nonzero().squeeze(1)
    out, gk, bptr, bline, perm = _cut_pairs(kids, cp_kid[real], cp_unit[real], tab[real], n_b, off_b)
    raw_bc = raw_b[real[perm]]  # affine values of B's crossing units, in CSR order
    # M's output: per parent (B on the parents' box-centre pieces), plus per child the flips of
    # A (through L and M) and S's pieces that differ, plus per grandchild the flips of B
    gain_b, inter_bp = _piece_maps(on_pb, table_b)
    y = _masked_linear(zb, gain_b, inter_bp, lin_m)  # (P, 3, out)
    n_out = y.shape[2]
    mt = lin_m.weight.t()  # (n_b, out)
    yk = y[g]
    if len(f_kid):
        # M (gain_b * L[:, i]) for every flipped unit i of A: one product per parent for a small
        # head, else one per crossing pair of A
        if n_out <= 4:
            rp = (gain_b[:, None, :] * lin_m.weight[None]).reshape(-1, n_b) @ lin_l.weight
            r = rp.view(p, n_out, -1)[g[f_kid], :, f_unit]  # (flips, out)
        else:
            r = ((gain_b[pair_par] * lin_l.weight.t()[cline]) @ mt)[f_pair]
        yk.view(cn, 3 * n_out).index_add_(0, f_kid, (f_dy[:, :, None] * r[:, None, :]).reshape(-1, 3 * n_out))
    if len(d):
        u, nc, oc = cp_unit[d], newc[d], oldc[d]
        dy = raw_b[d] * (slopes_b[nc, u] - slopes_b[oc, u])[:, None]
        dy[:, 0] += inter_b[nc, u] - inter_b[oc, u]
        _add_sparse_rows(yk, cp_kid[d], u, dy, mt, cn)
    codes_bf, (h_kid, h_unit, _, h_dy) = _flips(codes_b, gk, bptr, bline, raw_bc, out.centroids(), table_b)
    yf = yk[gk]
    if len(h_kid):
        _add_sparse_rows(yf, h_kid, h_unit, h_dy, mt, len(gk))
    return out, g[gk], yf, [codes_a[gk], codes_bf], gk


def _one_parent_post(
    program: Program,
    pos: int,
    lin: nn.Linear,
    pre: torch.Tensor,
    table: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    env: dict[int, Any],
) -> tuple[Callable, dict[int, Any]]:
    """A nonlinearity followed by a Linear layer on the children of one region (the first cutting
    layer): the children's codes and Linear outputs are two matrix products with the parent's
    affine stack ``pre`` ``(1, 3, n)``, with no per-child copy of that stack.

    ``val = pre[0, 0] + ctr @ pre[0, 1:]`` gives every unit at each child's vertex mean; with the
    pieces' slopes ``gain`` ``(C, n)``, the output row ``r`` is ``(gain * pre[0, r]) @ W.T``, i.e.
    ``gain @ K`` with ``K[j, (r, o)] = pre[0, r, j] W[o, j]``.
    """
    step = program.steps[pos]
    q = pos + 1
    bps = table[0]
    p0 = pre[0]  # (3, n)
    w = lin.weight
    n_out = w.shape[0]
    kmat = (p0[:, :, None] * w.t()[None]).permute(1, 0, 2).reshape(p0.shape[1], 3 * n_out)
    freed = set(step.free_after) | set(program.steps[q].free_after)
    cenv = {k: v for k, v in env.items() if k not in freed}

    def post(it: _Item, g: torch.Tensor) -> None:
        val = torch.addmm(p0[0], it.poly.centroids(), p0[1:])
        on = val > bps[0]
        gain, inter = _piece_maps(on, table)
        z = (gain @ kmat).view(-1, 3, n_out)
        if inter is not None:
            z[:, 0] += inter @ w.t()
        if lin.bias is not None:
            z[:, 0] += lin.bias
        it.env[q] = z.view(-1, n_out)
        it.codes.append(_pack(on))

    return post, cenv


def _add_sparse_rows(
    z: torch.Tensor, child: torch.Tensor, unit: torch.Tensor, dy: torch.Tensor, wt: torch.Tensor, cn: int
) -> None:
    """``z[3 c + r] += dy[i, r] * wt[unit[i]]`` for every entry ``i`` of child ``c = child[i]``.

    In place, as one ``index_add_`` of the entries' outer products (a child has about one entry per
    layer: measured faster than a sparse CSR times dense product, which also allocates its result).
    """
    n_out = wt.shape[1]
    if n_out == 1:
        z.view(cn, 3).index_add_(0, child, dy * wt[unit])
        return
    src = (dy[:, :, None] * wt[unit][:, None, :]).reshape(-1, 3 * n_out)
    z.view(cn, 3 * n_out).index_add_(0, child, src)


def _cut_layer(
    poly: Polygons,
    pre: torch.Tensor,
    bps: torch.Tensor,
    radius: float,
    line_offset: int,
    centre: torch.Tensor | None = None,
) -> tuple[Polygons, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut every region by every breakpoint line of this layer that crosses it.

    Returns the pieces, the index of the region each comes from, and the lines (layer-local ids,
    ``unit * breakpoints + k``) that really cross each region, in CSR form ``(ptr, lines)``.
    """
    pp, ll, tab = _candidate_pairs(poly, pre, bps, radius, centre)
    return _cut_pairs(poly, pp, ll, tab, pre.shape[2] * bps.numel(), line_offset)[:4]


def _candidate_pairs(
    poly: Polygons, pre: torch.Tensor, bps: torch.Tensor, radius: float, centre: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``(region, line)`` pairs whose line really crosses the region, region-major, with the
    lines' coefficient rows ``(c, a0, a1, tol)`` (see :func:`_line_table`).

    A cheap filter first keeps the lines that cross each polygon's bounding box strictly (interval
    arithmetic: ``|value at the box centre| < half-spread over the box``; ``centre``, when given,
    holds every unit at the box centres, row 0 of :func:`_probe_points`). That is a superset of
    the lines that really cross (some vertex above the tolerance, some below), which are then
    tested exactly on the candidates only. The half-sizes are widened by a relative 1e-9 so that
    rounding in these sums can never drop a line that crosses a polygon by more than the tolerance.
    """
    p, _, n = pre.shape
    m = bps.numel()
    lo = poly.xy.amin(1)
    hi = poly.xy.amax(1)
    half = (0.5 * (1.0 + 1e-9)) * (hi - lo)
    if centre is None:
        centre = _values_at(pre, _probe_points(poly, with_centroid=False))[:, 0]
    spread = torch.bmm(half[:, None, :], pre[:, 1:].abs()).squeeze(1)
    if m == 1:
        if bool(bps[0] != 0):
            centre = centre - bps[0]
        cand = centre.abs() < spread
    else:
        cand = ((centre[..., None] - bps).abs() < spread[..., None]).reshape(p, n * m)
    pairs = cand.nonzero()
    pp, ll = pairs[:, 0], pairs[:, 1]
    tab = _line_table(pre[pp, :, ll // m if m > 1 else ll], bps, radius, ll)
    real = _crosses(poly.xy.index_select(0, pp), tab)
    return pp[real], ll[real], tab[real]


def _cut_pairs(
    poly: Polygons, pp: torch.Tensor, ll: torch.Tensor, tab: torch.Tensor, nl: int, line_offset: int
) -> tuple[Polygons, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut region ``pp[i]`` by line ``ll[i]`` (coefficient row ``tab[i]``) for every pair ``i``.

    Every pair's line must really cross its region (:func:`_crosses`); ``pp`` must be sorted (the
    pairs of one region together). ``nl`` is the number of line ids of the layer, ``line_offset``
    the global id of its line 0. Returns the pieces, the region each comes from, the crossing
    lines of each region in CSR form ``(ptr, lines)`` (in cutting order), and for each of those the
    index of its pair in the input.

    Conflict lists: every active piece keeps, in the layer's line order, the lines of its region
    that still cross it. A piece is cut by the first line of its list; its two parts keep the rest
    of the list that really crosses them. Lines that do not cross a piece would leave it
    unchanged, so dropping them changes no result, but the number of rounds falls from the most
    lines crossing one region to the depth of this cutting tree. The line order is one fixed
    pseudo-random permutation of the layer's line ids (:func:`_line_rank`): the same for every
    region, so the cuts along every edge come in the same order on both of its sides and shared
    vertices get the same identifiers; random, so that the tree is shallow (about 2 ln(lines)
    deep) even for structured layers, e.g. 2,000 parallel lines sorted by offset (sorted order:
    2,000 rounds).
    """
    p = len(poly)
    dev = poly.xy.device
    perm = torch.arange(len(pp), device=dev)
    if len(pp) > 1:
        perm = torch.argsort(pp * nl + _line_rank(nl, dev).index_select(0, ll))
        pp, ll, tab = pp.index_select(0, perm), ll.index_select(0, perm), tab.index_select(0, perm)
    counts = torch.bincount(pp, minlength=p)
    ptr = torch.zeros(p + 1, dtype=torch.int64, device=dev)
    ptr[1:] = torch.cumsum(counts, 0)
    if len(pp) == 0:
        return poly, torch.arange(p, device=dev), ptr, ll, perm
    done_polys: list[Polygons] = []
    done_owner: list[torch.Tensor] = []
    idle = counts == 0
    if bool(idle.any()):
        ii = idle.nonzero().squeeze(1)
        done_polys.append(poly.index(ii))
        done_owner.append(ii)
    act_i = (~idle).nonzero().squeeze(1)
    act = poly.index(act_i)
    owner = act_i
    lids = ll + line_offset
    lst = torch.arange(len(pp), device=dev)  # pair ids: each piece's list, in cutting order
    lcnt = counts[act_i]
    while len(owner):
        lptr = torch.cumsum(lcnt, 0) - lcnt
        pair = lst[lptr]
        t = tab.index_select(0, pair)
        pieces, _ = split_by_lines(act, t[:, 0], t[:, 1], t[:, 2], t[:, 3], lids[pair], all_crossed=True)
        owner = owner.repeat(2)  # split_by_lines with all lines crossing: src = [0 .. P) twice
        # candidate lines of each piece: the rest of its source's list
        rest = lcnt.repeat(2) - 1
        tot = int(rest.sum())
        if tot == 0:
            done_polys.append(pieces)
            done_owner.append(owner)
            break
        npc = len(pieces)
        child = torch.repeat_interleave(torch.arange(npc, device=dev), rest)
        first = torch.cumsum(rest, 0) - rest
        cand = lst[(lptr.repeat(2) + 1 - first)[child] + torch.arange(tot, device=dev)]
        real = _crosses(pieces.xy.index_select(0, child), tab.index_select(0, cand))
        lst = cand[real]
        lcnt = torch.bincount(child[real], minlength=npc)
        fin = lcnt == 0
        if bool(fin.any()):
            fi = fin.nonzero().squeeze(1)
            done_polys.append(pieces.index(fi))
            done_owner.append(owner[fi])
            ki = (~fin).nonzero().squeeze(1)
            act = pieces.index(ki)
            owner = owner[ki]
            lcnt = lcnt[ki]
        else:
            act = pieces
    return Polygons.cat(done_polys), torch.cat(done_owner), ptr, ll, perm


def _probe_points(poly: Polygons, with_centroid: bool) -> torch.Tensor:
    """Homogeneous points ``(P, q, 3)`` (rows ``[1, x, y]``): each polygon's bounding-box centre and,
    with ``with_centroid``, its vertex mean (strictly inside it)."""
    lo = poly.xy.amin(1)
    hi = poly.xy.amax(1)
    one = torch.ones((len(poly), 1), dtype=poly.xy.dtype, device=poly.xy.device)
    rows = [torch.cat([one, 0.5 * (lo + hi)], 1)]
    if with_centroid:
        rows.append(torch.cat([one, poly.centroids()], 1))
    return torch.stack(rows, 1)


def _values_at(pre: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """Every unit's value ``(P, q, units)`` at the points ``pts`` ``(P, q, 3)`` of :func:`_probe_points`:
    one batched product over the ``(P, 3, units)`` affine stack."""
    return torch.bmm(pts, pre)


def _line_table(raw: torch.Tensor, bps: torch.Tensor, radius: float, line: torch.Tensor) -> torch.Tensor:
    """Rows ``(c, a0, a1, tol)`` ``(N, 4)`` of the lines ``c + a0 x + a1 y = 0`` of the breakpoints
    ``line % breakpoints`` of units whose affine values are ``raw`` ``(N, 3)`` (value at the origin
    and the two partial derivatives). ``tol`` is the on-the-line tolerance of
    :mod:`splinecam.geometry`."""
    m = bps.numel()
    tab = torch.empty((raw.shape[0], 4), dtype=raw.dtype, device=raw.device)
    tab[:, :3] = raw
    tab[:, 0] -= bps[line % m] if m > 1 else bps[0]
    torch.mul(tab[:, 1].abs() + tab[:, 2].abs(), radius, out=tab[:, 3])
    tab[:, 3] += tab[:, 0].abs()
    tab[:, 3] *= EPS
    return tab


def _crosses(xy: torch.Tensor, tab: torch.Tensor) -> torch.Tensor:
    """Whether each line (rows of :func:`_line_table`) really crosses its polygon ``xy`` ``(N, K, 2)``:
    some vertex strictly above and some strictly below it by more than the tolerance (the test
    :func:`split_by_lines` makes)."""
    v = tab[:, :1] + xy[..., 0] * tab[:, 1:2] + xy[..., 1] * tab[:, 2:3]
    tl = tab[:, 3:]
    return (v > tl).any(1) & (v < -tl).any(1)


_RANKS: dict[tuple[int, str], torch.Tensor] = {}


def _line_rank(nl: int, device: torch.device) -> torch.Tensor:
    """A fixed pseudo-random permutation of ``0 .. nl - 1``: the cutting order of a layer's lines."""
    key = (nl, str(device))
    r = _RANKS.get(key)
    if r is None:
        h = _fmix(torch.arange(nl, device=device, dtype=torch.int64) * 2654435761 + 97)
        r = torch.empty(nl, dtype=torch.int64, device=device)
        r[torch.argsort(h)] = torch.arange(nl, device=device)
        if len(_RANKS) > 64:
            _RANKS.clear()
        _RANKS[key] = r
    return r


# --------------------------------------------------------------------------- public entry point
def partition(
    model: nn.Module,
    slice: Slice,
    *,
    dtype: torch.dtype = torch.float64,
    device: Any = None,
    progress: bool = False,
    chunk_size: int | None = None,
) -> Any:
    """Compute the exact linear-region partition of ``model`` on a 2-D ``slice`` of its input space.

    Parameters
    ----------
    model : torch.nn.Module
        A piecewise-linear network in eval mode (Linear, Conv, BatchNorm, pooling, ReLU, LeakyReLU,
        residual additions, concatenation, reshapes). It is never modified: the engine works on a
        private copy in ``dtype`` on ``device``.
    slice : Slice
        The slice of input space and its convex domain.
    dtype : torch.dtype
        Precision of all computations (float64 by default; the exactness contract assumes it).
    device : str or torch.device, optional
        Where to compute; defaults to the model's device.
    progress : bool
        Show a tqdm progress bar of finished regions.
    chunk_size : int, optional
        Regions streamed together through the remaining layers; chosen from a memory budget if None.

    Returns
    -------
    Partition

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).eval()
    >>> part = sc.partition(net, sc.Slice.box((-2, 2), (-2, 2)))
    >>> part.num_regions > 1
    True
    """
    from .result import Partition

    if not isinstance(slice, Slice):
        raise SliceError(f"slice must be a splinecam.Slice, got {type(slice).__name__}")
    t0 = time.perf_counter()
    copy_, dev = prepare_model(model, dtype=dtype, device=device)
    program = trace_model(copy_)
    res = run_program(copy_, program, slice, dtype, dev, progress=progress, chunk_size=chunk_size)
    part = Partition._from_engine(res, slice, program, dtype=dtype)
    part.seconds = time.perf_counter() - t0
    return part
