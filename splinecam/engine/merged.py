"""The model's units back from a run on merged duplicate units.

:func:`splinecam.trace.simplify.merge_duplicate_units` runs the engine on a program whose duplicate
units are kept once. Its result speaks of the kept units; :func:`expand_merged_units` turns it into
the result of the model's program: every unit's code is that of the unit standing for it, the unit
shapes are the model's, and the line id of every edge (``line_offset + unit * lines_per_unit + k``)
names the first unit of the group that made it, with the model's line offsets.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from ..trace.simplify import UnitMerge
from .geometry import Polygons

__all__: list[str] = []

#: regions whose bit-packed codes are unpacked at a time (bounds the expansion's memory; 2,048 rows
#: stay in cache: 1.7x faster than 65,536 on 131,072 x 1,500 -> 6,144 units)
_ROWS = 2048


def _code_columns(shape: tuple[int, ...], merge: UnitMerge) -> np.ndarray:
    """For every unit of the model's step (flat, row-major over ``(*shape[:-1], merge.units)``), the
    flat index of the kept unit that stands for it (kept shape ``shape``)."""
    lead = math.prod(shape[:-1])
    kept = shape[-1]
    rep = merge.rep.cpu().numpy()
    return (np.arange(lead)[:, None] * kept + rep[None, :]).reshape(-1)


def _expand_codes(code: Any, cols: np.ndarray) -> Any:
    """Codes of the kept units ``(R, kept)`` (or bit-packed ``(packed, kept)``) as codes of the model's
    units: column ``j`` is column ``cols[j]``."""
    # (np.take: several times faster than fancy indexing of columns)
    if not isinstance(code, tuple):
        return np.take(code, cols, axis=1)
    packed, units = code
    out = np.empty((packed.shape[0], (len(cols) + 7) // 8), dtype=np.uint8)
    for st in range(0, packed.shape[0], _ROWS):
        bits = np.unpackbits(packed[st:st + _ROWS], axis=1, count=units)
        out[st:st + _ROWS] = np.packbits(np.take(bits, cols, axis=1), axis=1)
    return out, len(cols)


def expand_merged_units(res: Any, merges: list[UnitMerge]) -> Any:
    """The engine result ``res`` of a merged program as that of the model's program (see the module
    docstring).

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> lin = torch.nn.Linear(2, 3).double()
    >>> with torch.no_grad():
    ...     lin.weight[2] = lin.weight[0]; lin.bias[2] = lin.bias[0]
    >>> net = torch.nn.Sequential(lin, torch.nn.ReLU(), torch.nn.Linear(3, 1).double()).eval()
    >>> part = sc.partition(net, sc.Slice.box((-2, 2), (-2, 2)))
    >>> codes = part.layer_codes(0)
    >>> part.unit_shapes, bool((codes[:, 0] == codes[:, 2]).all())
    ([(3,)], True)
    """
    by_layer = {m.pwl_index: m for m in merges}
    nb = list(res.num_breakpoints)
    shapes: list[tuple[int, ...]] = []
    codes: list[Any] = []
    for li, (shape, code) in enumerate(zip(res.unit_shapes, res.codes)):
        m = by_layer.get(li)
        if m is None:
            shapes.append(shape)
            codes.append(code)
            continue
        assert shape[-1] == len(m.first), (shape, len(m.first))
        shapes.append((*shape[:-1], m.units))
        codes.append(_expand_codes(code, _code_columns(shape, m)))
    sizes = [math.prod(s) * b for s, b in zip(shapes, nb)]
    offsets = [int(x) for x in np.concatenate([[0], np.cumsum(sizes[:-1], dtype=np.int64)])] if sizes else []
    lab = _relabel(res.poly.lab, res.line_offsets, offsets, res.unit_shapes, nb, by_layer)
    poly = Polygons(res.poly.xy, res.poly.hsh, lab, res.poly.nv)
    jumps = []
    for lo, _hi in res.jump_lines:
        li = int(np.searchsorted(np.asarray(res.line_offsets), lo, side="right")) - 1
        jumps.append((offsets[li], offsets[li] + sizes[li]))
    return replace(res, poly=poly, codes=codes, unit_shapes=shapes, line_offsets=offsets, jump_lines=jumps)


def _relabel(
    lab: torch.Tensor, off_kept: list[int], off_model: list[int], kept_shapes: list[tuple[int, ...]],
    nb: list[int], by_layer: dict[int, UnitMerge],
) -> torch.Tensor:
    """Edge labels (global line ids of the kept units, ``-1`` for the domain's border) as line ids of
    the model's units."""
    if not off_kept:
        return lab
    dev = lab.device
    ok = torch.tensor(off_kept, dtype=torch.int64, device=dev)
    om = torch.tensor(off_model, dtype=torch.int64, device=dev)
    nbt = torch.tensor(nb, dtype=torch.int64, device=dev)
    valid = lab >= 0
    li = (torch.searchsorted(ok, lab.clamp(min=0), right=True) - 1).clamp(min=0)
    local = lab - ok[li]
    b = nbt[li]
    unit, k = local // b, local % b
    for layer, m in by_layer.items():
        on = li == layer
        kept = kept_shapes[layer][-1]
        first = m.first.to(dev)
        u = unit[on]
        unit[on] = (u // kept) * m.units + first[u % kept]
    return torch.where(valid, om[li] + unit * b + k, lab)
