"""Many slices in one call: :func:`partition_many` and its streaming form :func:`iter_partitions`.

On one machine the slices go through the engine together: the model is prepared and traced once,
every slice's domain is one starting region, the regions of all slices are cut in the same batched
steps (each region carries its slice's index, which selects its slice's tolerances), and the result
is split by slice at the end into one :class:`~splinecam.result.Partition` per slice. Each equals
what :func:`splinecam.partition` gives for that slice (the same regions, vertices, affine maps and
codes; only the order of the regions may differ). :func:`partition_many`, which keeps every result,
runs all slices in one engine run (the engine streams the regions in bounded chunks);
:func:`iter_partitions` runs them in batches of about :data:`BATCH_REGIONS` regions and hands each
batch over before the next, so memory stays bounded however many slices are given.

With a ``dask.distributed`` client, chunks of slices go to the workers instead (the model is sent
to every worker once); a chunk whose worker dies is run again by Dask on another worker. Dask is an
optional dependency (``pip install "splinecam[distributed]"``), imported only when a client is
given.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from typing import Any, Callable

import torch
import torch.nn as nn

from .engine import EngineResult, run_program
from .engine.geometry import Polygons
from .engine.slices import as_slices
from .engine.threads import engine_threads
from .errors import SliceError, SplineCamError
from .result import Partition
from .slice import Slice
from .trace import Program, prepare_model, trace_model

__all__ = ["partition_many", "iter_partitions", "BATCH_REGIONS"]

#: regions aimed at in one engine run on one machine (the slices of a batch are chosen from the
#: region counts of the slices done so far); memory is bounded by about this many finished regions
BATCH_REGIONS = 65_536
#: slices in the first batch, before any region count is known
_FIRST_BATCH = 8
#: most slices in one Dask task when ``chunk_size`` is not given
_MAX_TASK_SLICES = 256


# --------------------------------------------------------------------------- one machine
def _split_result(res: EngineResult, n: int) -> list[EngineResult]:
    """The engine's result of a run over ``n`` slices, as one result per slice (by ``slice_id``)."""
    sid = res.slice_id
    if sid is None or n == 1:
        return [res]
    dev = sid.device
    order = torch.argsort(sid, stable=True)
    counts = torch.bincount(sid, minlength=n).tolist()
    poly = res.poly
    xy, hsh, lab, nv = (t.index_select(0, order) for t in (poly.xy, poly.hsh, poly.lab, poly.nv))
    oc = res.out_const.index_select(0, order)
    og = res.out_grad.index_select(0, order)
    on = order.to("cpu").numpy()
    codes = [(c[0][on], c[1]) if isinstance(c, tuple) else c[on] for c in res.codes]
    # each slice's most vertices per polygon (one reduction, not one per slice)
    kmax = torch.zeros(n, dtype=nv.dtype, device=dev).scatter_reduce_(0, sid.index_select(0, order), nv, "amax")
    out = []
    a = 0
    for cnt, k in zip(counts, kmax.tolist()):
        b = a + cnt
        sl = slice(a, b)
        out.append(dataclasses.replace(  # (the per-run fields are kept as they are)
            res,
            poly=Polygons(xy[sl, :k], hsh[sl, :k], lab[sl, :k], nv[sl]),
            out_const=oc[sl],
            out_grad=og[sl],
            codes=[(c[0][sl], c[1]) if isinstance(c, tuple) else c[sl] for c in codes],
            slice_id=torch.full((cnt,), len(out), dtype=torch.int64, device=dev),
        ))
        a = b
    return out


@engine_threads()  # one CPU thread on a busy machine (splinecam.engine.threads)
def _run_batch(
    copy_: nn.Module, program: Program, slices: list[Slice], dtype: torch.dtype, dev: torch.device
) -> list[Partition]:
    """One engine run over ``slices`` (prepared model ``copy_``, traced ``program``), split by slice."""
    t0 = time.perf_counter()
    res = run_program(copy_, program, slices, dtype, dev)
    parts = [Partition._from_engine(r, s, program, dtype=dtype) for r, s in zip(_split_result(res, len(slices)), slices)]
    secs = time.perf_counter() - t0
    total = max(1, sum(p.num_regions for p in parts))
    for p in parts:  # each slice's share of the batch's time, by its regions
        p.seconds = secs * p.num_regions / total
    return parts


def _local_batches(
    copy_: nn.Module, program: Program, slices: list[Slice], dtype: torch.dtype, dev: torch.device,
    chunk_size: int | None, bounded: bool = True,
) -> Iterator[tuple[int, list[Partition]]]:
    """``(first index, partitions)`` of consecutive batches of ``slices``: ``chunk_size`` slices
    each, or batches of about :data:`BATCH_REGIONS` regions (from the counts seen so far) when
    ``bounded``, else all slices in one engine run."""
    n = len(slices)
    i = 0
    done_regions = 0
    while i < n:
        if chunk_size:
            size = chunk_size
        elif not bounded:
            size = n
        elif i == 0:
            size = _FIRST_BATCH
        else:
            per_slice = max(1.0, done_regions / i)
            size = max(1, int(BATCH_REGIONS / per_slice))
        batch = slices[i:i + size]
        parts = _run_batch(copy_, program, batch, dtype, dev)
        done_regions += sum(p.num_regions for p in parts)
        yield i, parts
        i += len(batch)


# --------------------------------------------------------------------------- Dask
# prepared copies and programs of the models a worker has received (the scattered model is one
# object per worker, reused by all its tasks of one call; dropped with it)
_WORKER_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# the engine keeps a run's state in module globals (the lines of steps with jumps): tasks of one
# worker process run one at a time (torch still uses its threads within a run)
_ENGINE_LOCK = threading.Lock()


def _task(
    model: nn.Module, start: int, slices: list[Slice], dtype: torch.dtype, device: Any, fn: Callable | None
) -> tuple[int, list[Any]]:
    """A Dask task: partitions (or ``fn`` of them) of a chunk of slices, on a worker."""
    key = (dtype, None if device is None else str(device))
    out: list[Any] = []
    with _ENGINE_LOCK:
        per_model = _WORKER_CACHE.setdefault(model, {})
        if key not in per_model:
            copy_, dev = prepare_model(model, dtype=dtype, device=device)
            per_model[key] = (copy_, dev, trace_model(copy_))
        copy_, dev, program = per_model[key]
        for _, parts in _local_batches(copy_, program, slices, dtype, dev, None, bounded=False):
            out += parts if fn is None else [fn(p) for p in parts]
    return start, out


def _check_client(client: Any) -> Any:
    """The ``as_completed`` of ``dask.distributed``, after checking ``client`` can take work."""
    try:
        from distributed import as_completed
    except ImportError as exc:
        raise ImportError(
            "client= needs dask.distributed: pip install \"splinecam[distributed]\" "
            "(or pip install \"dask[distributed]\")"
        ) from exc
    if not (hasattr(client, "submit") and hasattr(client, "scatter")):
        raise SplineCamError(
            f"client must be a dask.distributed.Client, got {type(client).__name__}; "
            "pass client=None to compute on this machine"
        )
    status = str(getattr(client, "status", "running"))
    if status in ("closing", "closed", "failed"):
        raise SplineCamError(
            f"the dask client is {status}: it cannot run tasks. Connect a new one "
            "(dask.distributed.Client(...)) or pass client=None to compute on this machine"
        )
    return as_completed


def _dask_results(
    client: Any, model: nn.Module, slices: list[Slice], dtype: torch.dtype, device: Any,
    chunk_size: int | None, fn: Callable | None,
) -> Iterator[tuple[int, Any]]:
    as_completed = _check_client(client)
    n = len(slices)
    try:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
    except Exception:  # pragma: no cover - an unusual client
        workers = 1
    size = chunk_size or max(1, min(_MAX_TASK_SLICES, math.ceil(n / (4 * workers))))
    starts = list(range(0, n, size))
    # the model goes to every worker once; tasks get a reference to it
    [mfut] = client.scatter([model], broadcast=True, hash=False)
    # a bounded number of chunks in flight: results wait on the workers until fetched, so this
    # bounds the memory there and here
    window = max(4, 3 * workers)

    def submit(st: int) -> Any:
        return client.submit(_task, mfut, st, slices[st:st + size], dtype, device, fn, pure=False)

    pending = iter(starts)
    first = [submit(st) for _, st in zip(range(window), pending)]
    ac = as_completed(first)
    try:
        for fut in ac:
            st, out = fut.result()
            fut.release()
            nxt = next(pending, None)
            if nxt is not None:
                ac.add(submit(nxt))
            for j, item in enumerate(out):
                yield st + j, item
    finally:
        for fut in list(ac.futures):
            fut.cancel()
        mfut.release()


# --------------------------------------------------------------------------- public
def _results(
    model: nn.Module, slices: Iterable[Slice], *, client: Any, chunk_size: int | None, progress: bool,
    dtype: torch.dtype, device: Any, fn: Callable | None = None, bounded: bool = True,
) -> Iterator[tuple[int, Any]]:
    """``(index, fn(partition))`` (the partition when ``fn`` is None) for every slice, as they come.

    The arguments are checked here, before the first result is asked for. ``bounded``: on one
    machine, batches of about :data:`BATCH_REGIONS` regions (else, without ``chunk_size``, one
    engine run for all slices: for a caller that keeps every result anyway)."""
    if isinstance(slices, Slice):
        raise SliceError("slices must be a list of splinecam.Slice; for one slice use splinecam.partition")
    slices = list(slices)
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive int (slices per batch) or None, got {chunk_size!r}")
    if not slices:
        return iter(())
    as_slices(slices)  # one input shape, all Slice objects (the errors name the culprits)
    if client is not None:
        _check_client(client)
    # prepared and traced here also with a client: a model that cannot be partitioned fails now,
    # with the same errors as splinecam.partition, before anything is sent
    copy_, dev = prepare_model(model, dtype=dtype, device=device)
    program = trace_model(copy_)
    if client is not None:
        gen = _dask_results(client, model, slices, dtype, device, chunk_size, fn)
    else:
        gen = _local_results(copy_, program, slices, dtype, dev, chunk_size, fn, bounded)
    return _with_progress(gen, len(slices)) if progress else gen


def _local_results(
    copy_: nn.Module, program: Program, slices: list[Slice], dtype: torch.dtype, dev: torch.device,
    chunk_size: int | None, fn: Callable | None, bounded: bool,
) -> Iterator[tuple[int, Any]]:
    for st, parts in _local_batches(copy_, program, slices, dtype, dev, chunk_size, bounded):
        for j in range(len(parts)):
            p, parts[j] = parts[j], None  # (hand each partition over once: the caller may drop it)
            yield st + j, (p if fn is None else fn(p))


def _with_progress(gen: Iterator[tuple[int, Any]], total: int) -> Iterator[tuple[int, Any]]:
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:  # pragma: no cover - tqdm is a dependency
        raise ImportError("progress=True needs tqdm: pip install tqdm") from exc
    with tqdm(total=total, desc="splinecam slices", unit="slice") as bar:
        for item in gen:
            bar.update(1)
            yield item


def iter_partitions(
    model: nn.Module,
    slices: Iterable[Slice],
    *,
    client: Any = None,
    chunk_size: int | None = None,
    progress: bool = False,
    dtype: torch.dtype = torch.float64,
    device: Any = None,
) -> Iterator[tuple[int, Partition]]:
    """Exact partitions of many slices, yielded as ``(index, Partition)`` as they are finished.

    The streaming form of :func:`partition_many`, for more slices than fit in memory at once: only
    one batch of partitions (about :data:`BATCH_REGIONS` regions, one engine run each; with a
    client, a few chunks per worker) is held at a time. Partitions come in the order of ``slices``
    on one machine, and in the order they finish with a client.

    Parameters
    ----------
    model : torch.nn.Module
        A piecewise-linear network in eval mode; never modified.
    slices : iterable of Slice
        Slices of the model's input space, all of one input shape.
    client : dask.distributed.Client, optional
        Run chunks of slices on this cluster's workers (the model is scattered to them once).
        Needs ``pip install "splinecam[distributed]"``.
    chunk_size : int, optional
        Slices per batch (per Dask task with a client). By default, on one machine, batches of
        about :data:`BATCH_REGIONS` regions; with a client, about four chunks per worker (at most
        256 slices each).
    progress : bool
        Show a tqdm progress bar of finished slices.
    dtype : torch.dtype
        Precision of all computations (float64 by default).
    device : str or torch.device, optional
        Where to compute; defaults to the model's device.

    Yields
    ------
    (int, Partition)
        The index of a slice in ``slices`` and its partition, equal to ``splinecam.partition(model,
        slices[index])`` (its regions may come in another order).

    Raises
    ------
    SliceError
        An element is not a :class:`~splinecam.Slice`, or two slices have different input shapes.
    SplineCamError
        ``client`` is closed or not a Dask client.

    Examples
    --------
    >>> import numpy as np, torch, splinecam as sc
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2)).eval()
    >>> slices = [sc.Slice.from_anchors(x[None], pad=1.0) for x in np.random.default_rng(0).normal(size=(3, 5))]
    >>> [(i, part.num_regions > 1) for i, part in sc.iter_partitions(net, slices)]
    [(0, True), (1, True), (2, True)]
    """
    return _results(model, slices, client=client, chunk_size=chunk_size, progress=progress, dtype=dtype,
                    device=device)


def partition_many(
    model: nn.Module,
    slices: Iterable[Slice],
    *,
    client: Any = None,
    chunk_size: int | None = None,
    progress: bool = False,
    dtype: torch.dtype = torch.float64,
    device: Any = None,
) -> list[Partition]:
    """Exact partitions of many slices at once, in the order of ``slices``.

    Each is equal to ``splinecam.partition(model, slices[i])`` (the same regions, vertices, affine
    maps and codes; the regions may come in another order), but all slices go through one engine
    run: the model is prepared and traced once, the regions of all slices are cut together, and
    the fixed cost of a call is paid once, which makes many small slices several times faster than
    a loop over :func:`splinecam.partition`. With a Dask ``client`` the slices are spread over its
    workers. Built on :func:`iter_partitions` (same parameters), which streams the results in
    batches of bounded size instead: use it for more slices than fit in memory.

    Parameters
    ----------
    model : torch.nn.Module
        A piecewise-linear network in eval mode; never modified.
    slices : iterable of Slice
        Slices of the model's input space, all of one input shape. An empty list gives ``[]``.
    client : dask.distributed.Client, optional
        Run chunks of slices on this cluster's workers (``pip install "splinecam[distributed]"``);
        a chunk whose worker dies is run again by Dask elsewhere.
    chunk_size : int, optional
        Slices per engine run (per Dask task with a client). By default all slices go through one
        engine run on one machine; with a client, about four chunks per worker (at most 256
        slices each).
    progress : bool
        Show a tqdm progress bar of finished slices.
    dtype : torch.dtype
        Precision of all computations (float64 by default; the exactness contract assumes it).
    device : str or torch.device, optional
        Where to compute; defaults to the model's device.

    Returns
    -------
    list of Partition
        One per slice, in order. ``Partition.seconds`` is each slice's share of its batch's time.

    Examples
    --------
    >>> import numpy as np, torch, splinecam as sc
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2)).eval()
    >>> X = np.random.default_rng(0).normal(size=(4, 5))
    >>> parts = sc.partition_many(net, [sc.Slice.from_anchors(x[None], pad=1.0) for x in X])
    >>> [p.num_regions for p in parts] == [sc.partition(net, p.slice).num_regions for p in parts]
    True
    """
    items = [slices] if isinstance(slices, Slice) else list(slices)  # (one Slice: the error below)
    gen = _results(model, slices if isinstance(slices, Slice) else items, client=client,
                   chunk_size=chunk_size, progress=progress, dtype=dtype, device=device, bounded=False)
    out: list[Partition | None] = [None] * len(items)
    for i, part in gen:
        out[i] = part
    return out  # type: ignore[return-value]
