"""What ``Partition.verify`` and the region-count estimate cost next to the partition itself.

On the benchmark CNN (``benchmarks/run.py``'s ``cnn`` config) with ``pad=4``: 10,804 regions. Prints
the best of ``--repeats`` wall times of ``sc.partition``, ``part.verify(model)``,
``part.verify(model, quick=True)`` and ``sc.estimate_regions`` (grids 4 and 64), and their ratios to the
partition. Ratios from one run on one machine; a loaded machine moves all of them.

Usage::

    python benchmarks/verify_cost.py [--pad 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from run import build_cnn  # noqa: E402

import splinecam as sc  # noqa: E402


def best(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pad", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    net, x = build_cnn()
    sl = sc.Slice.from_anchors(x, pad=args.pad, seed=0)
    part = sc.partition(net, sl, warn_regions=None)  # warm-up
    rows = [
        ("partition", best(lambda: sc.partition(net, sl, warn_regions=None), args.repeats)),
        ("verify", best(lambda: part.verify(net), args.repeats)),
        ("verify quick=True", best(lambda: part.verify(net, quick=True), args.repeats)),
        ("estimate_regions grid=4", best(lambda: sc.estimate_regions(net, sl, grid=4), args.repeats)),
        ("estimate_regions grid=64", best(lambda: sc.estimate_regions(net, sl, grid=64), args.repeats)),
    ]
    base = rows[0][1]
    print(f"cnn, pad {args.pad}: {part.num_regions:,} regions")
    for name, s in rows:
        print(f"  {name:26s} {s:8.3f} s  {s / base:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
