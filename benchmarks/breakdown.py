"""Where the exact partition's time goes, per region, as the MLP width grows.

Usage::

    python benchmarks/breakdown.py                          # 50x3 100x3 160x3 256x3
    python benchmarks/breakdown.py --configs 100x3 256x3 --repeats 5

For each config (the MLPs of ``benchmarks/run.py``: ``WxD`` ReLU MLP on ``[-2, 2]^2``) the script
times :func:`splinecam.partition` (best of ``--repeats`` calls after a warm-up) and splits one more
call into phases, in microseconds per final region:

* ``products``: the dense matrix products (torch ops ``mm``, ``addmm``, ``bmm``, measured by
  ``torch.profiler`` in a separate call). In an MLP they are the only work that grows with the
  product of two layer widths *per parent region*: the next layer's inputs on every region entering
  a nonlinearity (one ``width x width`` product per region, with three columns: value and two
  slopes), and the per-parent head terms of the tail path (see ``splinecam.engine.mlp_paths``);
* ``cutting``: splitting polygons by the lines that cross them (``splinecam.engine.cutting._cut_pairs``,
  conflict lists and ``splinecam.engine.geometry.split_by_lines``);
* ``assembly``: building the :class:`splinecam.Partition` (shared vertices, edges, codes);
* ``other``: the rest (filters and exact crossing tests, codes, sparse updates, bookkeeping).

The phases come from timers around those functions (``products`` from the profiled call, scaled to
the unprofiled call's share), so they are approximate; ``total`` is the best unprofiled call.

Examples
--------
>>> import subprocess, sys
>>> _ = subprocess.run([sys.executable, "benchmarks/breakdown.py", "--configs", "20x3"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, Callable

import torch

import splinecam as sc
from splinecam.engine import cutting, mlp_paths
from splinecam.result import Partition

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import make_config  # noqa: E402

__all__ = ["PRODUCT_OPS", "phase_times", "main"]

# torch ops counted as dense matrix products (``linear`` and ``matmul`` dispatch to these)
PRODUCT_OPS = ("aten::mm", "aten::addmm", "aten::bmm")


def _timed(fn: Callable, acc: dict[str, float], key: str) -> Callable:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[key] += time.perf_counter() - t0

    return wrapper


def phase_times(model: torch.nn.Module, sl: sc.Slice, repeats: int = 3) -> dict[str, float]:
    """Seconds of one partition call by phase (see the module docstring), and its region count.

    Examples
    --------
    >>> net, sl = make_config("10x3")
    >>> t = phase_times(net, sl, repeats=1)
    >>> sorted(t)
    ['assembly', 'cutting', 'other', 'products', 'regions', 'total']
    """
    sc.partition(model, sl)  # warm-up
    best = float("inf")
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        part = sc.partition(model, sl)
        best = min(best, time.perf_counter() - t0)
    acc = {"cutting": 0.0, "assembly": 0.0}
    saved = (cutting._cut_pairs, mlp_paths._cut_pairs, Partition.__dict__["_from_engine"])
    try:
        cutting._cut_pairs = _timed(saved[0], acc, "cutting")
        mlp_paths._cut_pairs = _timed(saved[1], acc, "cutting")
        Partition._from_engine = classmethod(_timed(saved[2].__func__, acc, "assembly"))
        t0 = time.perf_counter()
        sc.partition(model, sl)
        timed_total = time.perf_counter() - t0
    finally:
        cutting._cut_pairs, mlp_paths._cut_pairs = saved[0], saved[1]
        Partition._from_engine = saved[2]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        sc.partition(model, sl)
        prof_total = time.perf_counter() - t0
    products = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in PRODUCT_OPS) * 1e-6
    # phases as shares of their own call, applied to the best unprofiled time
    out = {
        "products": best * products / prof_total,
        "cutting": best * acc["cutting"] / timed_total,
        "assembly": best * acc["assembly"] / timed_total,
    }
    out["other"] = best - sum(out.values())
    out["total"] = best
    out["regions"] = float(part.num_regions)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+", default=["50x3", "100x3", "160x3", "256x3"], metavar="WxD")
    p.add_argument("--repeats", type=int, default=3, help="timed calls after the warm-up (best is kept)")
    args = p.parse_args(argv)
    cols = ["products", "cutting", "assembly", "other", "total"]
    print("| config | regions | regions/s | " + " | ".join(f"{c} us/region" for c in cols) + " |")
    print("|---|--:|--:|" + "--:|" * len(cols))
    for name in args.configs:
        model, sl = make_config(name)
        t = phase_times(model, sl, args.repeats)
        r = t["regions"]
        cells = " | ".join(f"{t[c] / r * 1e6:.2f}" for c in cols)
        print(f"| {name} | {int(r):,} | {r / t['total']:,.0f} | {cells} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
