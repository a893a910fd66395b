"""Benchmarks of many slices in one call: ``sc.partition_many`` against a loop and a grid.

Usage::

    python benchmarks/many.py                  # the 120-slice table and the 10,000-slice run
    python benchmarks/many.py --quick          # best of 1, no cluster, 2,000 streamed slices
    python benchmarks/many.py --no-cluster     # without the 2-worker LocalCluster row
    python benchmarks/many.py --threads 1      # fix torch's CPU thread count
    python benchmarks/many.py --json out.json  # also write the numbers as JSON

The model is a ReLU MLP 10 -> 48 -> 48 -> 48 -> 3 (PyTorch's default init right after
``torch.manual_seed(0)``, eval mode). The slices are ``Slice.from_anchors(x, pad=PAD, seed=i)``
through ``N_SLICES`` anchors ``x`` drawn from ``numpy.random.default_rng(0).standard_normal`` (about
190 regions each). In one process and run, each best of ``--repeats`` after one warm-up:

* ``loop``: ``[sc.partition(model, s) for s in slices]``;
* ``partition_many``: ``sc.partition_many(model, slices)`` (one engine run for all slices);
* ``grid``: the activation pattern of every pixel of a ``GRID x GRID`` grid of every slice (float64,
  layer by layer, as in ``benchmarks/run.py``), the approximate method used instead;
* ``cluster``: ``sc.partition_many(model, slices, client=client)`` on a ``LocalCluster`` of two worker
  processes with one thread each (started before the timings; its start-up is reported apart). On a
  2-core machine the cluster shares the cores with this process, so it shows the overhead of the
  distributed path rather than a speed-up.

Then ``STREAM_SLICES`` slices (the same construction, more anchors) go through
``sc.iter_partitions`` in a fresh subprocess that keeps only the region counts: its peak resident
memory (Linux ``VmHWM``) shows that memory stays bounded by one batch, whatever the slice count.

Examples
--------
>>> import subprocess, sys
>>> _ = subprocess.run([sys.executable, "benchmarks/many.py", "--quick", "--no-cluster"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

import splinecam as sc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import _grid_points, _machine, _vm_hwm_kib, grid_patterns  # noqa: E402

__all__ = ["build_model", "make_slices", "time_loop", "time_many", "time_grid", "run_stream", "main"]

N_SLICES = 120
PAD = 0.6
GRID = 256
STREAM_SLICES = 10_000
WIDTHS = (10, 48, 48, 48, 3)


def build_model(seed: int = 0) -> nn.Sequential:
    """The ReLU MLP 10 -> 48 -> 48 -> 48 -> 3 (default init after ``torch.manual_seed(seed)``).

    Examples
    --------
    >>> build_model()[0]
    Linear(in_features=10, out_features=48, bias=True)
    """
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(WIDTHS[:-1], WIDTHS[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(WIDTHS) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


def make_slices(n: int = N_SLICES, pad: float = PAD) -> list[sc.Slice]:
    """``n`` square slices through random anchors (see the module docstring).

    Examples
    --------
    >>> make_slices(2)[0].input_shape
    (10,)
    """
    X = np.random.default_rng(0).standard_normal((n, WIDTHS[0]))
    return [sc.Slice.from_anchors(x[None], pad=pad, seed=i) for i, x in enumerate(X)]


def _best(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """(warm-up seconds, best seconds of ``repeats`` further calls, last result)."""
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return first, best, out


def time_loop(model: nn.Module, slices: list[sc.Slice], repeats: int) -> tuple[float, float, Any]:
    return _best(lambda: [sc.partition(model, s) for s in slices], repeats)


def time_many(model: nn.Module, slices: list[sc.Slice], repeats: int, client: Any = None) -> tuple[float, float, Any]:
    return _best(lambda: sc.partition_many(model, slices, client=client), repeats)


def time_grid(model: nn.Module, slices: list[sc.Slice], n: int, repeats: int) -> tuple[float, float, int]:
    """Warm-up s, best s of the grid patterns of all slices, and the distinct patterns found (summed)."""
    model64 = copy.deepcopy(model).double().eval()

    def run() -> list[list[torch.Tensor]]:
        return [grid_patterns(model64, s, _grid_points(s, n), 65536) for s in slices]

    first, best, pats = _best(run, repeats)
    distinct = 0
    for p in pats:
        bits = np.packbits(torch.cat(p, 1).numpy(), axis=1)
        distinct += len(np.unique(np.ascontiguousarray(bits).view(np.dtype((np.void, bits.shape[1])))))
    return first, best, distinct


def _stream_child(n: int) -> None:
    """In a fresh process: ``n`` slices through iter_partitions, keeping only the region counts."""
    model = build_model()
    sc.partition_many(model, make_slices(4))  # warm-up (lazy imports, kernels)
    slices = make_slices(n)
    base = _vm_hwm_kib() or 0
    t0 = time.perf_counter()
    counts = np.zeros(n, dtype=np.int64)
    for i, part in sc.iter_partitions(model, slices):
        counts[i] = part.num_regions
    secs = time.perf_counter() - t0
    print(json.dumps({"slices": n, "regions": int(counts.sum()), "seconds": secs,
                      "base_rss_kib": base, "peak_rss_kib": _vm_hwm_kib() or 0}))


def run_stream(n: int = STREAM_SLICES, timeout: float = 3600) -> dict[str, Any]:
    """The streamed run in a subprocess (its own peak memory); returns its JSON record."""
    res = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--_stream-child", str(n), "--threads", str(torch.get_num_threads())],
        capture_output=True, text=True, timeout=timeout,
    )
    if res.returncode != 0:
        raise RuntimeError(f"streamed run failed:\n{res.stderr[-4000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print markdown tables; returns the exit status.

    Examples
    --------
    >>> main(["--quick", "--no-cluster"])  # doctest: +SKIP
    """
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="best of 1, no cluster, 2,000 streamed slices")
    p.add_argument("--repeats", type=int, default=None, help="timed calls after the warm-up (default 3, quick 1)")
    p.add_argument("--no-cluster", action="store_true", help="skip the 2-worker LocalCluster row")
    p.add_argument("--stream", type=int, default=None, help=f"slices of the streamed run (default {STREAM_SLICES:,})")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's default)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--_stream-child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args._stream_child:
        _stream_child(args._stream_child)
        return 0
    repeats = args.repeats or (1 if args.quick else 3)
    n_stream = args.stream or (2_000 if args.quick else STREAM_SLICES)
    # the streamed run first, while this process is small (ru_maxrss survives fork + exec)
    stream = run_stream(n_stream)

    print(f"# splinecam many-slice benchmark, {datetime.date.today().isoformat()}")
    print(f"\n{_machine()}")
    print(f"MLP {' -> '.join(map(str, WIDTHS))}, {N_SLICES} slices from_anchors(pad={PAD}); best of {repeats} "
          "after 1 warm-up call\n")
    model = build_model()
    slices = make_slices()
    rows: dict[str, dict[str, Any]] = {}
    lf, lb, loop_parts = time_loop(model, slices, repeats)
    regions = sum(q.num_regions for q in loop_parts)
    rows["loop over sc.partition"] = {"first_s": lf, "s": lb}
    mf, mb, many_parts = time_many(model, slices, repeats)
    assert [q.num_regions for q in many_parts] == [q.num_regions for q in loop_parts], "region counts differ"
    rows["sc.partition_many"] = {"first_s": mf, "s": mb}
    gf, gb, distinct = time_grid(model, slices, GRID, repeats)
    rows[f"{GRID} x {GRID} grid per slice"] = {"first_s": gf, "s": gb}
    cluster_start = None
    if not (args.no_cluster or args.quick):
        from distributed import Client, LocalCluster

        t0 = time.perf_counter()
        with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                          dashboard_address=None, worker_dashboard_address=None) as cl, Client(cl) as client:
            cluster_start = time.perf_counter() - t0
            cf, cb, cparts = time_many(model, slices, repeats, client=client)
        assert [q.num_regions for q in cparts] == [q.num_regions for q in loop_parts], "cluster counts differ"
        rows["sc.partition_many, 2-worker LocalCluster"] = {"first_s": cf, "s": cb}
    print(f"{regions:,} regions in all ({regions / N_SLICES:.0f} a slice on average); the grid finds "
          f"{distinct:,} distinct activation patterns ({distinct / regions:.0%} of the regions)\n")
    print("| method | seconds | first call s | regions/s | vs partition_many |")
    print("|---|--:|--:|--:|--:|")
    for name, row in rows.items():
        print(f"| {name} | {row['s']:.3f} | {row['first_s']:.3f} | {regions / row['s']:,.0f} | "
              f"{row['s'] / mb:.2f}x |")
    if cluster_start is not None:
        print(f"\ncluster start-up (not in the times): {cluster_start:.1f} s")
    gib = stream["peak_rss_kib"] / 2**20
    print("\n| streamed slices | regions | seconds | regions/s | peak RSS GiB | baseline RSS GiB |")
    print("|--:|--:|--:|--:|--:|--:|")
    print(f"| {stream['slices']:,} | {stream['regions']:,} | {stream['seconds']:.1f} | "
          f"{stream['regions'] / stream['seconds']:,.0f} | {gib:.2f} | {stream['base_rss_kib'] / 2**20:.2f} |")
    checks = [
        ("partition_many >= 5x the loop", lb / mb >= 5, lb / mb),
        ("partition_many >= 10x the grid", gb / mb >= 10, gb / mb),
    ]
    print("\ntargets:")
    for text, ok, ratio in checks:
        print(f"- [{'x' if ok else ' '}] {text} ({ratio:.1f}x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": datetime.date.today().isoformat(), "machine": _machine(), "repeats": repeats,
                       "regions": regions, "grid_patterns": distinct, "rows": rows, "stream": stream,
                       "cluster_start_s": cluster_start,
                       "targets": [{"target": t, "met": ok, "ratio": r} for t, ok, r in checks]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
