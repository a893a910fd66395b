"""The engine's starting state for one or many slices run together.

:func:`splinecam.engine.run.run_program` starts from one region per slice: the slice's domain in
coordinates centred on it (its vertex mean at ``u = 0``), and the input as an affine stack of that
region (three rows: the input point at the domain's centre and the two basis vectors). With several
slices (:func:`splinecam.partition_many`) the regions of all slices go through the same batched
cutting; every region carries the index of its slice (``sid``), which selects its slice's
tolerances: the domain's scale ``radius`` and the per-unit noise floors (see
:mod:`splinecam.engine.geometry`). A region's arithmetic is then the same as in a run of its slice
alone, so the result of every slice is the partition :func:`splinecam.partition` gives for it.

With one slice, ``radius`` stays a plain float; with several it is a tensor with one entry per slice.
The noise floors are ``(P, units)`` tensors (one row per slice), and :func:`_take` picks each region's
row, :func:`_line_floor` each line's entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Union

import numpy as np
import torch

from ..errors import SliceError
from ..slice import Slice
from .geometry import Polygons, _fmix

__all__: list[str] = []

#: a per-slice tolerance: a float for a single slice, else a ``(P,)`` tensor indexed by slice id
Tol = Union[float, torch.Tensor]

# odd 64-bit constant mixed (times the slice index) into the domain vertices' identifiers, so that
# vertex identifiers of different slices differ too (slice 0 keeps the single-slice identifiers)
_SLICE_SALT = 0x2545F4914F6CDD1D


@dataclass
class _Start:
    """The starting state of a run over ``P`` slices."""

    poly0: Polygons  # P polygons: every slice's domain, centred
    inp: torch.Tensor  # (3 P, *input_shape): per slice the input at u = 0 and the two basis vectors
    sid: torch.Tensor  # (P,) slice index of every starting region
    radius: Tol  # each slice's domain scale (largest centred coordinate)
    points: torch.Tensor  # (P, K + 1, *input_shape): every slice's domain vertices (padded) and centre
    shape: tuple[int, ...]


def as_slices(slc: Slice | Sequence[Slice]) -> list[Slice]:
    """One slice or a list of them, as a non-empty list of slices of one input shape."""
    slices = [slc] if isinstance(slc, Slice) else list(slc)
    if not slices:
        raise SliceError("no slices given")
    shape = slices[0].input_shape
    for i, s in enumerate(slices):
        if not isinstance(s, Slice):
            raise SliceError(f"slices[{i}] is a {type(s).__name__}, not a splinecam.Slice")
        if s.input_shape != shape:
            raise SliceError(
                f"slices[0] has input shape {shape} but slices[{i}] has {s.input_shape}; one call "
                "takes slices of one model, hence of one input shape"
            )
    return slices


def start_state(slices: list[Slice], dtype: torch.dtype, device: torch.device) -> _Start:
    """Domains, input stacks and tolerances of ``slices`` (see the module docstring)."""
    p = len(slices)
    shape = slices[0].input_shape
    k = max(len(s.domain) for s in slices)
    nv = np.array([len(s.domain) for s in slices], dtype=np.int64)
    # every domain in its centred coordinates, padded slots repeating vertex 0 (see Polygons)
    slot = np.where(np.arange(k)[None] < nv[:, None], np.arange(k)[None], 0)
    doms = np.zeros((p, k, 2))
    for i, s in enumerate(slices):
        doms[i, : nv[i]] = s.domain - s.center
    doms = np.take_along_axis(doms, slot[..., None], 1)
    xy = torch.as_tensor(doms, dtype=dtype, device=device)
    sid = torch.arange(p, device=device)
    base = torch.as_tensor(slot + 1, device=device) * 7919 + 104729
    hsh = _fmix(base + sid[:, None] * _SLICE_SALT)  # (wrapping int64; slice 0 keeps its identifiers)
    # per slice: the input at the domain's centre and the two basis vectors
    rows = np.stack(
        [np.stack([s.origin + s.basis @ s.center, s.basis[:, 0], s.basis[:, 1]]) for s in slices]
    )
    inp = torch.as_tensor(rows, dtype=dtype, device=device).reshape(3 * p, *shape)
    poly0 = Polygons(
        xy, hsh, torch.full((p, k), -1, dtype=torch.int64, device=device), torch.as_tensor(nv, device=device)
    )
    radius: Tol = float(xy[0].abs().max()) if p == 1 else xy.abs().amax((1, 2))
    # every slice's domain vertices and centre, in input space: the points the layer scales
    # (the noise floors) are measured at
    u = torch.cat([xy, xy.new_zeros((p, 1, 2))], 1)  # (P, K + 1, 2)
    st = inp.reshape(p, 3, -1)
    pts = (st[:, :1] + torch.bmm(u, st[:, 1:])).reshape(p, k + 1, *shape)
    return _Start(poly0, inp, sid, radius, pts, shape)


def layer_floors(
    start: _Start, scales: Callable[[torch.Tensor, int], list[torch.Tensor]], noise_floor: float
) -> list[torch.Tensor]:
    """Every nonlinearity's least on-the-line tolerances, per slice and per unit ``(P, units)``:
    ``noise_floor`` times each unit's noise scale at the slice's domain vertices and centre
    (:func:`splinecam.engine.noise.unit_scales`; ``scales(x, P)`` gives them per group of points)."""
    p = start.points.shape[0]
    return [noise_floor * s for s in scales(start.points.reshape(-1, *start.shape), p)]


def _line_floor(floor: Tol, rows: torch.Tensor, units: torch.Tensor) -> Tol:
    """The floors of lines of ``units`` on regions ``rows``: a float stays a float, a per-region
    ``(P,)`` floor gives ``floor[rows]``, a per-region-and-unit ``(P, units)`` floor ``floor[rows, units]``."""
    if not isinstance(floor, torch.Tensor):
        return floor
    if floor.dim() == 1:
        return floor.index_select(0, rows)
    return floor[rows, units]


def _take(tol: Tol, idx: torch.Tensor) -> Tol:
    """The entries ``idx`` of a per-slice or per-region tolerance (a float stays a float): each
    region's value from its slice index, each pair's from its region index. A per-unit floor of one
    slice (``(1, units)``) is expanded, not copied: a layer of 10^5 units on 10^4 regions would be
    gigabytes."""
    if not isinstance(tol, torch.Tensor):
        return tol
    if tol.dim() == 2 and tol.shape[0] == 1:
        return tol.expand(len(idx), -1)
    return tol.index_select(0, idx)
