"""Elementwise piecewise-linear steps: a unit crossing breakpoints over a region cuts it along each.

:class:`Elementwise`: finitely many breakpoints (ReLU, LeakyReLU, PReLU, ReLU6, Hardtanh,
Hardsigmoid, Softshrink, Hardshrink, Threshold, abs, clamp, :class:`splinecam.layers.PiecewiseLinear`).
The code of a unit is the number of its breakpoints below its value (ReLU: 0 off, 1 on); units with
one breakpoint have bit-packed codes. :class:`Periodic`: infinitely many breakpoints
(:class:`splinecam.layers.TriangleWave`, :class:`~splinecam.layers.Sawtooth`); only those inside each
region's value range are enumerated.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ...errors import UnsupportedModelError
from ...trace import Step
from ..codes import _pack
from ..cutting import _box, _crosses, _cut_layer, _cut_pairs, _homogeneous, _line_table, _spread, _values_at
from ..geometry import Polygons, _fmix
from ..slices import Tol, _line_floor, _take
from .base import Kind

__all__ = ["Elementwise", "Periodic"]


def _per_unit(v: Any, unit_shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A slope or intercept (a float, or a tensor such as PReLU's per-channel weight) as ``(units,)``."""
    t = torch.as_tensor(v, dtype=dtype, device=device).detach()
    n = 1
    for s in unit_shape:
        n *= s
    if t.numel() == 1:
        return t.reshape(()).expand(n)
    if t.numel() == n:
        return t.reshape(n)
    if unit_shape and t.numel() == unit_shape[0]:  # per channel (axis 1 of the batch)
        shape = (unit_shape[0],) + (1,) * (len(unit_shape) - 1)
        return t.reshape(shape).expand(unit_shape).reshape(n)
    raise UnsupportedModelError(
        f"a slope of {t.numel()} values does not fit units of shape {unit_shape} (one value, one per "
        "channel, or one per unit)"
    )


class Elementwise(Kind):
    """Elementwise steps with finitely many breakpoints (see the module docstring)."""

    def __init__(self, step: Step, in_shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> None:
        super().__init__(step, in_shape, dtype, device)
        spec = step.pwl
        self.spec = spec
        self.unit_shape = self.in_shape
        n = 1
        for s in self.unit_shape:
            n *= s
        self.units = n
        m = len(spec.breakpoints)
        self.lines_per_unit = m
        self.packed = m == 1
        self.code_dtype = torch.uint8 if m == 1 else torch.int8
        self.fast_paths = m == 1 and spec.continuous
        bps = torch.tensor(spec.breakpoints, dtype=dtype, device=device)
        slopes = torch.stack([_per_unit(s, self.unit_shape, dtype, device) for s in spec.slopes])
        inter = torch.stack([_per_unit(b, self.unit_shape, dtype, device) for b in spec.intercepts()])
        self.table = (bps, slopes, inter)
        self.relu = spec.kind == "relu"

    def cut(
        self,
        poly: Polygons,
        pre: torch.Tensor,
        radius: Tol,
        line_offset: int,
        floor: Tol,
        centre: torch.Tensor | None = None,
    ) -> tuple[Polygons, torch.Tensor]:
        pieces, parent, _, _ = _cut_layer(poly, pre, self.table[0], radius, line_offset, centre, floor)
        return pieces, parent

    def post(self, pos: int, in_place: bool) -> Callable[[Any, torch.Tensor], None]:
        bps, slopes, inter = self.table
        relu = self.relu
        one = bps.numel() == 1
        has_inter = bool((inter != 0).any())
        pre_pos = int(self.step.args[0])
        free = list(self.step.free_after)

        def post(it: Any, g: torch.Tensor) -> None:
            # codes of every unit, read at each region's vertex mean (strictly inside the region)
            x = it.env[pre_pos]
            nreg = len(it.poly)
            pre = x.reshape(nreg, 3, -1)
            val = _values_at(pre, _homogeneous(it.poly.centroids()))[:, 0]
            if one:
                on = val > bps[0]
                it.codes.append(_pack(on))
            else:
                code = (val[..., None] > bps).sum(-1)
                it.codes.append(code.to(torch.int8))
            if relu:
                y = pre.mul_(on[:, None, :]) if in_place else pre * on[:, None, :]
            else:
                cl = on.long() if one else code
                ar = torch.arange(pre.shape[2], device=pre.device)
                sl = slopes[cl, ar][:, None, :]
                y = pre.mul_(sl) if in_place else pre * sl
                if has_inter:
                    y[:, 0] += inter[cl, ar]
            it.env[pos] = y.reshape(x.shape)
            for r in free:
                it.env.pop(r, None)

        return post

    def codes_at(self, x: torch.Tensor, tol: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        bps = self.table[0].to(x.dtype)
        code = (x[..., None] > bps).sum(-1)
        gap = (x[..., None] - bps).abs().amin(-1)
        return code, gap > tol


class Periodic(Kind):
    """Periodic elementwise steps: the breakpoints ``q * period + b`` for every integer ``q``."""

    # line ids reserved per unit: a region's value range may span at most this many pieces
    _LINES = 1 << 24

    def __init__(self, step: Step, in_shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> None:
        super().__init__(step, in_shape, dtype, device)
        spec = step.pwl
        self.spec = spec
        self.unit_shape = self.in_shape
        n = 1
        for s in self.unit_shape:
            n *= s
        self.units = n
        self.period = float(spec.period)
        self.offsets = torch.tensor([0.0, *spec.breakpoints], dtype=dtype, device=device)  # one period's breakpoints
        self.pieces = len(spec.breakpoints) + 1
        self.slopes = torch.tensor([float(s) for s in spec.slopes], dtype=dtype, device=device)
        self.inter = torch.tensor([float(c) for c in spec.intercepts()], dtype=dtype, device=device)
        self.lines_per_unit = self._LINES
        self.code_dtype = torch.int64

    def _code(self, val: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Period, piece within it, and code of values ``val``."""
        q = torch.floor(val / self.period)
        r = val - q * self.period
        k = (r[..., None] > self.offsets[1:]).sum(-1)
        return q, k, q.long() * self.pieces + k

    def cut(
        self, poly: Polygons, pre: torch.Tensor, radius: Tol, line_offset: int, floor: Tol
    ) -> tuple[Polygons, torch.Tensor]:
        p, _, n = pre.shape
        mid, half = _box(poly)
        cv = _values_at(pre, _homogeneous(mid))[:, 0]
        sp = _spread(pre, half * (1.0 + 1e-9))
        per = self.period
        # for each (region, unit, breakpoint of the period): the periods q with q * per + b in (lo, hi)
        lo = (cv - sp)[..., None] - self.offsets
        hi = (cv + sp)[..., None] - self.offsets
        q0 = torch.floor(lo / per) + 1
        q1 = torch.ceil(hi / per) - 1
        cnt = (q1 - q0 + 1).clamp_min(0)
        if bool((cnt > self._LINES // 2).any()):
            raise UnsupportedModelError(
                f"{self.step.name}: a unit's value crosses more than {self._LINES // 2} periods of the "
                "periodic activation over one region; use a smaller slice (or a longer period)"
            )
        cnt = cnt.long()
        r, u, j = cnt.nonzero(as_tuple=True)
        c = cnt[r, u, j]
        rows = torch.repeat_interleave(torch.arange(len(c), device=pre.device), c)
        k = torch.arange(len(rows), device=pre.device) - (torch.cumsum(c, 0) - c)[rows]
        q = q0[r, u, j][rows] + k.to(pre.dtype)
        r, u, j = r[rows], u[rows], j[rows]
        t = q * per + self.offsets[j]
        code = q.long() * self.pieces + j
        ll = u * self._LINES + torch.remainder(code, self._LINES)
        raw = pre[r, :, u].clone()
        raw[:, 0] -= t
        tab = _line_table(raw, torch.zeros(1, dtype=pre.dtype, device=pre.device), _take(radius, r), ll, _line_floor(floor, r, u))
        real = _crosses(poly.xy.index_select(0, r), tab)
        pp, ll, tab = r[real], ll[real], tab[real]
        pieces, parent, _, _, _ = _cut_pairs(poly, pp, ll, tab, n * self._LINES, line_offset, rank=_fmix(ll))
        return pieces, parent

    def post(self, pos: int, in_place: bool) -> Callable[[Any, torch.Tensor], None]:
        pre_pos = int(self.step.args[0])
        free = list(self.step.free_after)

        def post(it: Any, g: torch.Tensor) -> None:
            x = it.env[pre_pos]
            nreg = len(it.poly)
            pre = x.reshape(nreg, 3, -1)
            val = _values_at(pre, _homogeneous(it.poly.centroids()))[:, 0]
            q, k, code = self._code(val)
            it.codes.append(code)
            s = self.slopes[k]
            y = pre.mul_(s[:, None, :]) if in_place else pre * s[:, None, :]
            y[:, 0] += self.inter[k] - s * q * self.period
            it.env[pos] = y.reshape(x.shape)
            for r in free:
                it.env.pop(r, None)

        return post

    def codes_at(self, x: torch.Tensor, tol: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        q, k, code = self._code(x)
        r = x - q * self.period
        d = (r[..., None] - self.offsets).abs().amin(-1)
        d = torch.minimum(d, (self.period - r).abs())
        return code, d > tol
