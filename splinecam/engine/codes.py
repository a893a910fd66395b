"""Bit-packed codes: the piece of every unit with one breakpoint, one bit each.

The engine keeps such codes packed from the moment they are made (``(R, ceil(units / 8))`` uint8,
first unit in the highest bit: the layout of ``numpy.packbits``, which :class:`splinecam.Partition`
stores), so that gathering them for child regions moves 8 times fewer bytes.
"""

from __future__ import annotations

import torch

__all__: list[str] = []


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
