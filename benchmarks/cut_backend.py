"""The cutting loop on torch against its numpy twin (``SPLINECAM_CUT_BACKEND``).

Usage::

    python benchmarks/cut_backend.py                        # both parts, one CPU thread
    python benchmarks/cut_backend.py --part partition --repeats 30
    python benchmarks/cut_backend.py --part scaling --call-configs 100x3 --threads 2

Two parts, each in one process and run, the backends interleaved call by call:

* ``partition``: :func:`splinecam.partition` on the MLPs of ``benchmarks/run.py`` (``WxD`` ReLU MLP,
  box ``[-2, 2]^2``), median of ``--repeats`` calls after one warm-up, with
  ``SPLINECAM_CUT_BACKEND=torch`` and ``=auto``;
* ``calls``: the inputs of every :func:`splinecam.engine.cutting._cut_pairs` call of a partition are
  captured, then each call is timed on its own (median of ``--call-repeats``) with ``torch`` and
  ``numpy``, by number of pairs;
* ``scaling``: the engine cuts in chunks of regions, so a call rarely has more than some 10,000
  pairs; to see larger ones, the largest captured call of ``--call-configs`` is tiled ``m`` times
  (``m`` copies of its regions and pairs, ``m`` = 1, 2, 4, ... up to ``--max-tiles``) and timed the
  same way. Where numpy stops winning sets ``cutting.NUMPY_MAX_WORK``.

The 1-minute load average (``os.getloadavg``) is printed before and after: the timings of a busy
machine are noisy.

Examples
--------
>>> import subprocess, sys
>>> _ = subprocess.run([sys.executable, "benchmarks/cut_backend.py", "--repeats", "3"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch

import splinecam as sc
from splinecam.engine import cutting
from splinecam.engine.geometry import Polygons

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import make_config  # noqa: E402

__all__ = [
    "PARTITION_CONFIGS",
    "CALL_CONFIGS",
    "time_partitions",
    "capture_calls",
    "time_calls",
    "tiled",
    "main",
]

#: 2-8-8-1, 2-10x5-1, 2-20x5-1, 2-50x4-1, 2-100x3-1
PARTITION_CONFIGS = ["8x2", "10x5", "20x5", "50x4", "100x3"]
#: networks whose layers give calls from a few pairs to a few hundred thousand
CALL_CONFIGS = ["20x5", "100x3", "256x3"]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _set_backend(name: str) -> None:
    os.environ["SPLINECAM_CUT_BACKEND"] = name


def time_partitions(configs: Sequence[str], repeats: int) -> list[dict[str, Any]]:
    """Median seconds of ``sc.partition`` per config with the ``torch`` and ``auto`` backends."""
    rows = []
    for name in configs:
        net, sl = make_config(name)
        times: dict[str, list[float]] = {"torch": [], "auto": []}
        regions = set()
        for b in times:  # warm-up
            _set_backend(b)
            regions.add(sc.partition(net, sl).num_regions)
        for _ in range(repeats):
            for b in times:
                _set_backend(b)
                t0 = time.perf_counter()
                part = sc.partition(net, sl)
                times[b].append(time.perf_counter() - t0)
                regions.add(part.num_regions)
        assert len(regions) == 1, regions
        med = {b: statistics.median(v) for b, v in times.items()}
        rows.append({"config": name, "regions": regions.pop(), **med, "speedup": med["torch"] / med["auto"]})
    return rows


def capture_calls(configs: Sequence[str]) -> list[tuple[Any, ...]]:
    """The arguments of every ``_cut_pairs`` call made by partitions of ``configs``."""
    real = cutting._cut_pairs
    calls: list[tuple[Any, ...]] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(copy.deepcopy((args, kwargs)))
        return real(*args, **kwargs)

    from splinecam.engine import mlp_paths
    from splinecam.engine.kinds import elementwise, groups

    mods = (cutting, mlp_paths, elementwise, groups)
    saved = [m._cut_pairs for m in mods]
    _set_backend("torch")
    try:
        for m in mods:
            m._cut_pairs = spy
        for name in configs:
            net, sl = make_config(name)
            sc.partition(net, sl)
    finally:
        for m, f in zip(mods, saved):
            m._cut_pairs = f
    return calls


def time_calls(calls: list[tuple[Any, ...]], repeats: int) -> list[dict[str, Any]]:
    """Median seconds of each captured call with the ``torch`` and ``numpy`` backends."""
    rows = []
    for args, kwargs in sorted(calls, key=lambda c: len(c[0][1])):
        times: dict[str, list[float]] = {"torch": [], "numpy": []}
        for _ in range(repeats):
            for b in times:
                _set_backend(b)
                t0 = time.perf_counter()
                cutting._cut_pairs(*args, **kwargs)
                times[b].append(time.perf_counter() - t0)
        med = {b: statistics.median(v) for b, v in times.items()}
        rows.append(
            {"pairs": len(args[1]), "regions": len(args[0]), **med, "speedup": med["torch"] / med["numpy"]}
        )
    return rows


def tiled(call: tuple[Any, ...], m: int) -> tuple[Any, ...]:
    """A captured call with ``m`` copies of its regions and pairs (the copies' pairs stay sorted)."""
    (poly, pp, ll, tab, *rest), kwargs = call
    big = Polygons(*(t.repeat(m, *([1] * (t.dim() - 1))) for t in (poly.xy, poly.hsh, poly.lab, poly.nv)))
    shift = torch.arange(m).repeat_interleave(len(pp)) * len(poly)
    kw = dict(kwargs)
    if kw.get("rank") is not None:
        kw["rank"] = kw["rank"].repeat(m)
    return (big, pp.repeat(m) + shift, ll.repeat(m), tab.repeat(m, 1), *rest), kw


def _table(rows: list[dict[str, Any]], keys: tuple[str, str], backends: tuple[str, str]) -> None:
    """Print rows: two key columns, the two backends' milliseconds and their ratio."""
    print(f"{keys[0]:>8} {keys[1]:>8} {backends[0] + ' ms':>9} {backends[1] + ' ms':>9} {'speedup':>8}")
    for r in rows:
        ms = [1e3 * r[b] for b in backends]
        print(f"{r[keys[0]]:>8} {r[keys[1]]:>8} {ms[0]:9.3f} {ms[1]:9.3f} {r['speedup']:8.2f}")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=["partition", "calls", "scaling", "all"], default="all")
    ap.add_argument("--configs", nargs="*", default=PARTITION_CONFIGS)
    ap.add_argument("--call-configs", nargs="*", default=CALL_CONFIGS)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--call-repeats", type=int, default=7)
    ap.add_argument("--max-tiles", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    saved = os.environ.get("SPLINECAM_CUT_BACKEND")
    print(f"torch {torch.__version__}, {args.threads} thread(s), load before: {_load()}")
    try:
        if args.part in ("partition", "all"):
            print(f"\nsc.partition, median of {args.repeats} calls")
            _table(time_partitions(args.configs, args.repeats), ("config", "regions"), ("torch", "auto"))
        calls = capture_calls(args.call_configs) if args.part in ("calls", "scaling", "all") else []
        if args.part in ("calls", "all"):
            print(f"\n_cut_pairs calls, median of {args.call_repeats}")
            _table(time_calls(calls, args.call_repeats), ("pairs", "regions"), ("torch", "numpy"))
        if args.part in ("scaling", "all"):
            base = max(calls, key=lambda c: len(c[0][1]))
            tiles = [1 << i for i in range(args.max_tiles.bit_length()) if 1 << i <= args.max_tiles]
            print(f"\nthe largest call tiled 1 .. {tiles[-1]} times, median of {args.call_repeats}")
            rows = time_calls([tiled(base, m) for m in tiles], args.call_repeats)
            _table(rows, ("pairs", "regions"), ("torch", "numpy"))
    finally:
        if saved is None:
            os.environ.pop("SPLINECAM_CUT_BACKEND", None)
        else:
            os.environ["SPLINECAM_CUT_BACKEND"] = saved
    print(f"\nload after: {_load()}")


if __name__ == "__main__":
    main()
