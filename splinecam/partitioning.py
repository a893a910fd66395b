"""The public entry point: :func:`partition` runs trace -> engine -> :class:`~splinecam.result.Partition`."""

from __future__ import annotations

import numbers
import time
import warnings
from typing import Any

import torch
import torch.nn as nn

from .engine import estimate as _estimate
from .engine import run_program
from .engine.estimate import WARN_REGIONS, warn_if_large
from .engine.progress import ProgressBar
from .engine.threads import engine_threads
from .errors import PrecisionWarning, SliceError
from .result import Partition
from .slice import Slice
from .trace import prepare_model, trace_model

__all__ = ["partition"]


def partition(
    model: nn.Module,
    slice: Slice,
    *,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device | None = None,
    progress: bool | ProgressBar = False,
    chunk_size: int | None = None,
    warn_regions: float | None = WARN_REGIONS,
) -> Partition:
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
        Precision of all computations (float64 by default; the exactness contract and the
        engine's tolerances assume it). ``torch.float32`` works for small networks but warns
        (:class:`~splinecam.errors.PrecisionWarning`): its affine maps are off by about 1e-7 relative
        and it makes needless cuts; where rounding breaks the shared vertices it is refused with that
        reason, and :meth:`Partition.verify` checks it against float32 tolerances. Half precision is
        refused.
    device : str or torch.device, optional
        Where to compute (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``); defaults to the model's
        device. An unknown name (``"gpu"``) or a device this torch cannot use (``"cuda"`` on a
        CPU-only build) is refused with its own message.
    progress : bool or tqdm bar
        Show a tqdm bar of the fraction of the domain's area whose regions are final (percent, with
        the time left and the regions so far), or update the tqdm bar given (it is reset).
    chunk_size : int, optional
        Regions streamed together through the remaining layers (a positive integer); chosen from a
        memory budget if None.
    warn_regions : float or None
        During the run, the final region count is estimated from the model's activation patterns on a
        coarse grid (:func:`splinecam.estimate_regions`: 32 model evaluations on a 4 x 4 grid,
        refined on 16 x 16 and 64 x 64 grids only past a quarter and half the threshold), once the
        engine has found :data:`~splinecam.engine.estimate.CHECK_AFTER` regions (32,768; at once when
        a twentieth of ``warn_regions`` is fewer), so that smaller partitions do not pay for the
        check and a run near the threshold is warned of within its first 3%. At or above
        ``warn_regions`` (default :data:`splinecam.engine.estimate.WARN_REGIONS`, one million) a
        :class:`~splinecam.errors.LargePartitionWarning` gives the estimate and how to shrink the
        slice. None skips the check.

    Returns
    -------
    Partition
        Regions, planar graph, affine maps and codes; ``part.seconds`` is the wall time and
        ``part.dtype`` the precision.

    Raises
    ------
    NotPiecewiseLinearError
        A module or function of the model is not piecewise-linear (named by path and type).
    UnsupportedModelError
        The model cannot be analysed (training mode, NaN/Inf weights, hooks, half precision, a
        TorchScript module, the meta device, an operation on the batch axis...) or ``device`` is
        unusable; the message names the culprit.
    SliceError
        ``slice`` is not a :class:`Slice`, or its input shape does not fit the model.
    TypeError, ValueError
        ``chunk_size`` is not a positive integer or None.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).eval()
    >>> part = sc.partition(net, sc.Slice.box((-2, 2), (-2, 2)))
    >>> part.num_regions > 1, part.dtype
    (True, torch.float64)
    """
    if not isinstance(slice, Slice):
        raise SliceError(f"slice must be a splinecam.Slice, got {type(slice).__name__}")
    chunk_size = _check_chunk_size(chunk_size)
    with engine_threads():  # one CPU thread on a busy machine (splinecam.engine.threads)
        return _partition(model, slice, dtype, device, progress, chunk_size, warn_regions)


def _partition(
    model: nn.Module, slice: Slice, dtype: torch.dtype, device: Any, progress: Any, chunk_size: int | None,
    warn_regions: float | None,
) -> Partition:
    t0 = time.perf_counter()
    copy_, dev = prepare_model(model, dtype=dtype, device=device, share_parameters=True)
    if dtype == torch.float32:
        warnings.warn(
            "dtype=torch.float32: the partition is computed in single precision, so its affine maps "
            "differ from the model's by about 1e-7 relative and nearly coincident lines make needless "
            "cuts; the exactness contract assumes dtype=torch.float64, the default (verify() checks a "
            "float32 partition against float32 tolerances)",
            PrecisionWarning,
            stacklevel=3,
        )
    program = trace_model(copy_)
    check = None
    if warn_regions is not None:
        # the estimate runs once the engine has found CHECK_AFTER regions, long before a run near
        # the threshold ends (see CHECK_AFTER)
        check = (
            min(_estimate.CHECK_AFTER, int(warn_regions / 20)),
            lambda: warn_if_large(program, copy_, slice, warn_regions, dtype=dtype, device=dev, stacklevel=6),
        )
    res = run_program(copy_, program, slice, dtype, dev, progress=progress, chunk_size=chunk_size, check=check)
    part = Partition._from_engine(res, slice, program, dtype=dtype)
    part.seconds = time.perf_counter() - t0
    return part


def _check_chunk_size(chunk_size: Any) -> int | None:
    """``chunk_size`` as a positive ``int``, or None (chosen from the memory budget)."""
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral):
        raise TypeError(
            f"chunk_size must be a positive integer (regions per chunk) or None for automatic, got "
            f"{chunk_size!r} ({type(chunk_size).__name__})"
        )
    if int(chunk_size) < 1:
        raise ValueError(
            f"chunk_size must be a positive integer (regions per chunk) or None for automatic, got {int(chunk_size)}"
        )
    return int(chunk_size)

