"""Torch's CPU threads during a run: one for the engine's many small operations, the user's count
for its big products.

A run makes thousands of tensor operations on a few hundred or thousand elements each (cutting
polygons, gathering stacks, small products). With more than one intra-op thread, each of those
waits for the others at the end of every parallel region; where the other cores are busy (another
process, a data loader, a second notebook) such a wait costs milliseconds, not microseconds.
Measured on a 2-core machine at load 4: a 5 x 384 by 384 x 384 product took 16 ms with two threads
and 0.2 ms with one; ``torch.repeat_interleave`` of 1,000 counts 8 ms against 21 us; a 546-region
partition of a lattice network 2.29 s against 0.15 s. Big products do not suffer (a 6,000 x 384
product: 114 against 107 ms) and do gain from more cores on a quiet machine.

On a quiet machine, though, one thread costs 10-27% on mid-size runs (2-50x4-1 and 2-100x3-1 MLPs,
8,277 and 29,577 regions, against two threads throughout). So :func:`engine_threads` runs its body
with one thread only where the machine is busy: its 1-minute load average is at least the number of
CPUs plus one (this process's own threads count for up to its thread count). Inside, :func:`big_op`
gives an operation on at least :data:`BIG_OP_ELEMENTS` input elements the count that was set before
(the user's). Nested and concurrent uses (threads) share one saved count: the first to enter saves
it, the last to leave restores it. ``SPLINECAM_THREADS=1`` in the environment makes every run
single-threaded, ``SPLINECAM_THREADS=keep`` leaves torch's setting alone.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["BIG_OP_ELEMENTS", "engine_threads", "big_op", "machine_is_busy"]

#: Input elements from which an affine product runs with the user's thread count (about 2 ms of
#: single-threaded float64 work for a dense layer of a few hundred units).
BIG_OP_ELEMENTS = 1 << 18

_LOCK = threading.Lock()
_DEPTH = 0
_SAVED = 1


@contextmanager
def engine_threads() -> Iterator[None]:
    """Run the body with one torch CPU thread where the machine is busy (see the module docstring);
    the previous count is restored on exit, also after an exception.

    Examples
    --------
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with engine_threads():
    ...     inside = torch.get_num_threads()
    >>> inside in (1, before), torch.get_num_threads() == before
    (True, True)
    """
    global _DEPTH, _SAVED
    mode = os.environ.get("SPLINECAM_THREADS", "auto")
    if mode == "keep":
        yield
        return
    with _LOCK:
        if _DEPTH == 0:
            _SAVED = torch.get_num_threads()
            if _SAVED > 1 and (mode == "1" or machine_is_busy()):
                torch.set_num_threads(1)
            else:
                _SAVED = 1  # (nothing to restore, and big_op leaves the threads alone)
        _DEPTH += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH -= 1
            if _DEPTH == 0 and _SAVED > 1:
                torch.set_num_threads(_SAVED)


@contextmanager
def big_op(elements: int) -> Iterator[None]:
    """Inside :func:`engine_threads`, run the body with the saved (user's) thread count when it
    works on at least :data:`BIG_OP_ELEMENTS` input elements; else as it is."""
    if _DEPTH == 0 or _SAVED <= 1 or elements < BIG_OP_ELEMENTS or torch.get_num_threads() != 1:
        yield
        return
    torch.set_num_threads(_SAVED)
    try:
        yield
    finally:
        torch.set_num_threads(1)



def machine_is_busy() -> bool:
    """Whether the 1-minute load average is at least the number of CPUs plus one (False where the
    platform has no load average)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return False
    return load >= (os.cpu_count() or 1) + 1
