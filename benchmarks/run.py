"""Benchmarks of the exact partition against the 512 x 512 activation-pattern grid.

Usage::

    python benchmarks/run.py                      # all configs, best of 3
    python benchmarks/run.py --quick              # best of 1, without the 256x3 MLP
    python benchmarks/run.py --configs 100x3 cnn  # a subset
    python benchmarks/run.py --million            # also: a >= 1,000,000-region partition, time and peak RSS
    python benchmarks/run.py --million --end-to-end --configs 10x5 --no-scaling  # + its boundary and plot

For every config the script times, in the same process and run:

* ``exact``: :func:`splinecam.partition` (float64, default settings), best of ``--repeats`` calls
  (more, up to ``EXACT_MAX_REPEATS``, while they have used under ``EXACT_MIN_TIME_S`` seconds) after
  one warm-up call; the warm-up (first call: tracing caches, lazy imports, allocator growth) is
  reported separately in the ``first call`` column and excluded from ``exact``.
* ``grid``: the approximate method used instead of an exact partition: map the centres of a
  ``--grid`` x ``--grid`` pixel grid of the slice's domain to input space with
  :meth:`splinecam.Slice.to_input`, run the network in float64 layer by layer and record the sign of
  every ReLU (the activation pattern of every pixel); best of ``--repeats`` (fewer once the timed
  calls have used ``GRID_BUDGET_S`` seconds), after a warm-up on the first chunk of points. Points
  go through in chunks so the memory stays bounded (the CNN's 262,144 input images would be 6.4 GB at
  once). The distinct patterns found on the grid (a lower bound of the region count: every pattern of a
  ReLU network is one convex region) are counted outside the timing.

MLP configs ``WxD`` are 2-D-input ReLU MLPs with ``D`` hidden layers of width ``W`` and one output,
PyTorch's default init right after ``torch.manual_seed(0)``, on the box ``[-2, 2]^2``. ``cnn`` is the
original SplineCam toolbox's random CNN on a 3x32x32 input (built after ``torch.manual_seed(0)``, eval
mode) on ``Slice.from_anchors(x, pad=CNN_PAD, seed=0)`` through one random anchor
``x = torch.randn(1, 3, 32, 32)`` drawn right after the model.

``--million`` runs ``MILLION_CONFIG`` in a fresh subprocess, so that its peak resident memory
measures that partition alone (plus the interpreter, torch and one small warm-up partition, reported
as the baseline). The peak is Linux's ``VmHWM`` of the child (``ru_maxrss`` elsewhere; both are
recorded in ``--json``). The child is started before the parent allocates anything large, because
on Linux ``ru_maxrss`` carries over from the parent across ``fork`` + ``exec``. Its time excludes the
warm-up. With ``--end-to-end`` the child then computes that partition's decision boundary (the
network gets ``MILLION_OUTPUTS`` outputs) and draws it (``plot`` + ``savefig``, Agg, ``dpi=100``),
recording the seconds and the process peak after each step.

Examples
--------
>>> import subprocess, sys
>>> _ = subprocess.run([sys.executable, "benchmarks/run.py", "--quick", "--configs", "10x5"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

import splinecam as sc

__all__ = [
    "CONFIGS",
    "CNN_PAD",
    "MILLION_CONFIG",
    "build_mlp",
    "build_cnn",
    "make_config",
    "time_exact",
    "time_grid",
    "grid_patterns",
    "run_million",
    "run_scaling",
    "main",
]

DEFAULT_CONFIGS = ["10x5", "20x5", "50x4", "100x3", "256x3", "cnn"]
QUICK_CONFIGS = ["10x5", "20x5", "50x4", "100x3", "cnn"]
CONFIGS = DEFAULT_CONFIGS
#: half-width of the CNN slice around its anchor (input-space units; the anchor's norm is about 55)
CNN_PAD = 2.0
#: the MLP of the ``--million`` run (width x depth, box [-2, 2]^2)
MILLION_CONFIG = "640x3"
#: outputs of the ``--end-to-end`` million network (an argmax decision boundary; the hidden layers,
#: hence the partition, are those of the one-output network)
MILLION_OUTPUTS = 3
#: fast exact configs are timed until their calls have used this many seconds (at most this many calls)
EXACT_MIN_TIME_S = 3.0
EXACT_MAX_REPEATS = 10
#: timed grid calls stop once they have used this many seconds (the CNN grid takes about a minute)
GRID_BUDGET_S = 60.0
#: the scaling table: these MLPs on the boxes [-s, s]^2 for these half-widths s
SCALING_CONFIGS = ["100x3", "256x3"]
SCALING_HALF_WIDTHS = [1.0, 2.0, 4.0]
#: region counts that must not change (the exact partition is deterministic)
EXPECTED_REGIONS = {"100x3": 29_577}


# ---------------------------------------------------------------------------- models and slices
def build_mlp(width: int, depth: int, out_dim: int = 1, seed: int = 0) -> nn.Sequential:
    """A 2-D-input ReLU MLP with ``depth`` hidden layers of ``width`` units, PyTorch default init.

    Examples
    --------
    >>> build_mlp(4, 2)[0]
    Linear(in_features=2, out_features=4, bias=True)
    """
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(2, width), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers).eval()


def build_cnn(seed: int = 0) -> tuple[nn.Sequential, torch.Tensor]:
    """The original toolbox's random CNN (eval mode) and one random 3x32x32 anchor drawn after it.

    Examples
    --------
    >>> net, x = build_cnn()
    >>> tuple(net(x).shape)
    (1, 10)
    """
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 5, stride=2, padding=2, bias=False),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 16, 5, stride=2, padding=2, bias=False),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(1024, 120),
        nn.Linear(120, 84),
        nn.Linear(84, 10),
    ).eval()
    x = torch.randn(1, 3, 32, 32)
    return net, x


def make_config(name: str) -> tuple[nn.Module, sc.Slice]:
    """The model and slice of a config name (``"WxD"`` or ``"cnn"``).

    Examples
    --------
    >>> net, sl = make_config("10x5")
    >>> sl.domain.tolist()
    [[-2.0, -2.0], [2.0, -2.0], [2.0, 2.0], [-2.0, 2.0]]
    """
    if name == "cnn":
        net, x = build_cnn()
        return net, sc.Slice.from_anchors(x, pad=CNN_PAD, seed=0)
    try:
        w, d = (int(v) for v in name.lower().split("x"))
    except ValueError:
        raise SystemExit(f"unknown config {name!r}: use WIDTHxDEPTH (e.g. 100x3) or cnn") from None
    return build_mlp(w, d), sc.Slice.box((-2, 2), (-2, 2))


# ---------------------------------------------------------------------------- timings
def _best(
    fn: Callable[[], Any], repeats: int, warmup: Callable[[], Any] | None = None, budget: float = float("inf"),
    min_time: float = 0.0, max_repeats: int = 1,
) -> tuple[float, float, Any]:
    """(warm-up seconds, best seconds of the further calls, last result).

    The warm-up runs ``warmup`` (default ``fn``) once. Then ``repeats`` timed calls, and more (up to
    ``max_repeats`` in all) while the timed calls have used less than ``min_time`` seconds, so that
    fast configs get enough tries on a noisy machine. Timed calls stop early once they have used
    ``budget`` seconds (at least one is always made).
    """
    t0 = time.perf_counter()
    out = (warmup or fn)()
    first = time.perf_counter() - t0
    best = float("inf")
    spent = 0.0
    calls = 0
    while True:
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        best = min(best, dt)
        spent += dt
        calls += 1
        if spent > budget:
            break
        if calls >= max(1, repeats) and (spent >= min_time or calls >= max_repeats):
            break
    return first, best, out


def time_exact(model: nn.Module, sl: sc.Slice, repeats: int) -> tuple[float, float, Any]:
    """Warm-up seconds, best seconds and the :class:`splinecam.Partition` (float64).

    Best of ``repeats`` calls, or of more (up to ``EXACT_MAX_REPEATS``) until the timed calls have
    used ``EXACT_MIN_TIME_S`` seconds.
    """
    min_time = EXACT_MIN_TIME_S if repeats > 1 else 0.0
    return _best(lambda: sc.partition(model, sl, dtype=torch.float64), repeats,
                 min_time=min_time, max_repeats=EXACT_MAX_REPEATS)


def _grid_points(sl: sc.Slice, n: int) -> torch.Tensor:
    lo, hi = sl.domain.min(0), sl.domain.max(0)
    xs = lo[0] + (np.arange(n) + 0.5) * (hi[0] - lo[0]) / n
    ys = lo[1] + (np.arange(n) + 0.5) * (hi[1] - lo[1]) / n
    gx, gy = np.meshgrid(xs, ys)
    return torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float64)


def grid_patterns(model64: nn.Sequential, sl: sc.Slice, u: torch.Tensor, chunk: int) -> list[torch.Tensor]:
    """The activation pattern (bool, one tensor per ReLU, ``(N, units)``) at slice points ``u``.

    A plain layer loop over the float64 ``nn.Sequential``, recording ``pre-activation > 0`` at every
    ReLU: what one does to approximate the partition by sampling.
    """
    relus = [i for i, m in enumerate(model64) if isinstance(m, nn.ReLU)]
    out: list[list[torch.Tensor]] = [[] for _ in relus]
    with torch.no_grad():
        for st in range(0, len(u), chunk):
            x = sl.to_input(u[st:st + chunk])
            k = 0
            for i, m in enumerate(model64):
                if k < len(relus) and i == relus[k]:
                    mask = x > 0
                    out[k].append(mask.reshape(len(mask), -1))
                    x = x * mask
                    k += 1
                else:
                    x = m(x)
    return [torch.cat(o) for o in out]


def time_grid(model: nn.Module, sl: sc.Slice, n: int, repeats: int) -> tuple[float, float, int]:
    """Warm-up seconds, best seconds of the ``n x n`` grid patterns, distinct patterns found."""
    model64 = copy.deepcopy(model).double().eval()
    d = int(np.prod(sl.input_shape))
    chunk = int(max(1024, min(65536, 2**22 // d)))

    def run() -> list[torch.Tensor]:
        return grid_patterns(model64, sl, _grid_points(sl, n), chunk)

    def warm() -> list[torch.Tensor]:  # one chunk is enough to warm up the kernels
        return grid_patterns(model64, sl, _grid_points(sl, n)[:chunk], chunk)

    first, best, pats = _best(run, repeats, warmup=warm, budget=GRID_BUDGET_S)
    bits = np.packbits(torch.cat(pats, 1).numpy(), axis=1)
    distinct = len(np.unique(np.ascontiguousarray(bits).view(np.dtype((np.void, bits.shape[1])))))
    return first, best, distinct


# ---------------------------------------------------------------------------- the million run
def _vm_hwm_kib() -> int | None:
    """Peak resident memory of this process image (Linux ``VmHWM``, reset by ``exec``), in KiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _million_child(name: str, end_to_end: bool = False) -> None:
    """Run in a fresh process: one warm-up partition, then the big one; print a JSON line.

    Peak memory: ``VmHWM`` where available, else ``ru_maxrss``. On Linux ``ru_maxrss`` survives
    ``fork`` + ``exec`` (a child of a big process starts with the parent's peak), so the parent runs
    this child before it allocates anything large, and both numbers are recorded.

    With ``end_to_end`` the network has ``MILLION_OUTPUTS`` outputs and the child goes on with
    :func:`_million_steps`: the record gets ``"steps"``, the seconds and process peak after each.
    """
    small, sl_small = make_config("10x5")
    sc.partition(small, sl_small)
    base = _vm_hwm_kib() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model, sl = make_config(name)
    if end_to_end:
        w, d = (int(v) for v in name.lower().split("x"))
        model = build_mlp(w, d, out_dim=MILLION_OUTPUTS)
    t0 = time.perf_counter()
    part = sc.partition(model, sl)
    secs = time.perf_counter() - t0
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = _vm_hwm_kib() or maxrss
    record: dict[str, Any] = {
        "config": name, "regions": part.num_regions, "seconds": secs,
        "base_rss_kib": base, "peak_rss_kib": peak, "ru_maxrss_kib": maxrss,
    }
    if end_to_end:
        record["outputs"] = MILLION_OUTPUTS
        record["steps"] = [{"step": "partition", "seconds": secs, "peak_rss_kib": peak}, *_million_steps(part)]
    print(json.dumps(record))


def _million_steps(part: sc.Partition) -> list[dict[str, Any]]:
    """``decision_boundary()``, then ``plot`` + ``savefig`` (Agg, ``dpi=100``, a temporary PNG) of
    ``part``: the seconds of each and the process peak after it (KiB)."""
    import tempfile

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def peak() -> int:
        return _vm_hwm_kib() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    t0 = time.perf_counter()
    db = part.decision_boundary()
    steps = [{"step": "decision_boundary()", "seconds": time.perf_counter() - t0, "peak_rss_kib": peak(),
              "length": db.length}]
    del db
    t0 = time.perf_counter()
    fig, ax = plt.subplots()
    part.plot(ax=ax)
    with tempfile.TemporaryDirectory() as tmp:
        fig.savefig(os.path.join(tmp, "million.png"), dpi=100)
    plt.close(fig)
    steps.append({"step": "plot + savefig", "seconds": time.perf_counter() - t0, "peak_rss_kib": peak()})
    return steps


def run_million(name: str = MILLION_CONFIG, timeout: float = 3600, end_to_end: bool = False) -> dict[str, Any]:
    """Run the million-region partition in a subprocess (with ``end_to_end``: then its decision
    boundary and plot, see :func:`_million_child`); returns its JSON record."""
    res = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--_million-child", name,
         "--threads", str(torch.get_num_threads()), *(["--end-to-end"] if end_to_end else [])],
        capture_output=True, text=True, timeout=timeout,
    )
    if res.returncode != 0:
        raise RuntimeError(f"million-region run failed:\n{res.stderr[-4000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- scaling
def run_scaling(
    configs: Sequence[str] = SCALING_CONFIGS, half_widths: Sequence[float] = SCALING_HALF_WIDTHS, repeats: int = 1
) -> list[dict[str, Any]]:
    """Time one network on growing boxes ``[-s, s]^2``: the cost should grow like the region count.

    Within one network every region costs about the same (its polygon, its affine maps through the
    remaining layers), so regions/s should stay about constant as the box grows; across widths the
    per-region cost grows with the width^2 multiply-adds of the Linear layers.

    Examples
    --------
    >>> rows = run_scaling(["10x5"], [1.0])  # doctest: +SKIP
    """
    rows = []
    for name in configs:
        model, _ = make_config(name)
        for s in half_widths:
            sl = sc.Slice.box((-s, s), (-s, s))
            _, best, part = time_exact(model, sl, repeats)
            rows.append({"config": name, "half_width": s, "regions": part.num_regions, "exact_s": best,
                         "regions_per_s": part.num_regions / best})
    return rows


# ---------------------------------------------------------------------------- main
def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = "GPU: " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{os.cpu_count()}-core {cpu}, {gpu}; torch {torch.__version__} ({torch.get_num_threads()} "
            f"threads), Python {platform.python_version()}, splinecam {sc.__version__}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks and print markdown tables; returns the exit status.

    Examples
    --------
    >>> main(["--quick", "--configs", "10x5"])  # doctest: +SKIP
    """
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="best of 1 and no 256x3 (unless --configs)")
    p.add_argument("--configs", nargs="+", default=None, metavar="CFG",
                   help=f"configs to run: WxD MLPs and/or cnn (default: {' '.join(DEFAULT_CONFIGS)})")
    p.add_argument("--repeats", type=int, default=None, help="timed calls after the warm-up (default 3, quick 1)")
    p.add_argument("--grid", type=int, default=512, help="grid side of the sampling baseline (default 512)")
    p.add_argument("--million", action="store_true", help=f"also run {MILLION_CONFIG} (>= 1M regions)")
    p.add_argument("--million-config", default=MILLION_CONFIG, help=argparse.SUPPRESS)
    p.add_argument("--end-to-end", action="store_true",
                   help="with --million: also decision_boundary() and plot + savefig of that partition "
                        f"({MILLION_OUTPUTS} outputs), peak RSS after each step")
    p.add_argument("--no-scaling", action="store_true", help="skip the growing-box scaling table")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's default)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--_million-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args._million_child:
        _million_child(args._million_child, args.end_to_end)
        return 0
    configs = args.configs or (QUICK_CONFIGS if args.quick else DEFAULT_CONFIGS)
    repeats = args.repeats or (1 if args.quick else 3)

    print(f"# splinecam benchmarks, {datetime.date.today().isoformat()}")
    print(f"\n{_machine()}")
    more = f" (up to {EXACT_MAX_REPEATS} within {EXACT_MIN_TIME_S:g} s)" if repeats > 1 else ""
    print(f"exact: float64, best of {repeats}{more} after 1 warm-up call; grid: {args.grid} x {args.grid} "
          f"activation patterns in float64, best of {repeats} (at most {GRID_BUDGET_S:.0f} s of timed calls) "
          "after a 1-chunk warm-up\n")
    header = ("| config | regions | exact s | regions/s | first call s | grid s | grid / exact | "
              "grid patterns |")
    print(header)
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    rows: list[dict[str, Any]] = []
    failed = []
    # the million run first, while this process is still small (see _million_child)
    million = run_million(args.million_config, end_to_end=args.end_to_end) if args.million else None
    for name in configs:
        model, sl = make_config(name)
        first, best, part = time_exact(model, sl, repeats)
        gfirst, gbest, distinct = time_grid(model, sl, args.grid, repeats)
        r = part.num_regions
        row = {"config": name, "regions": r, "exact_s": best, "first_s": first, "regions_per_s": r / best,
               "grid_s": gbest, "grid_first_s": gfirst, "ratio": gbest / best, "grid_patterns": distinct}
        rows.append(row)
        print(f"| {name} | {r:,} | {best:.3f} | {r / best:,.0f} | {first:.3f} | {gbest:.3f} | "
              f"{gbest / best:.2f} | {distinct:,} |", flush=True)
        if name in EXPECTED_REGIONS and r != EXPECTED_REGIONS[name]:
            failed.append(f"{name}: {r} regions, expected {EXPECTED_REGIONS[name]}")
    if million is not None:
        gib = million["peak_rss_kib"] / 2**20
        print("\n| million config | regions | seconds | regions/s | peak RSS GiB | baseline RSS GiB |")
        print("|---|--:|--:|--:|--:|--:|")
        print(f"| {million['config']} | {million['regions']:,} | {million['seconds']:.1f} | "
              f"{million['regions'] / million['seconds']:,.0f} | {gib:.2f} | "
              f"{million['base_rss_kib'] / 2**20:.2f} |")
        if million["regions"] < 1_000_000:
            failed.append(f"million run made only {million['regions']} regions")
        if "steps" in million:
            print(f"\nend to end ({million['outputs']} outputs): process peak RSS after each step\n")
            print("| step | seconds | peak RSS GiB |")
            print("|---|--:|--:|")
            for st in million["steps"]:
                print(f"| {st['step']} | {st['seconds']:.1f} | {st['peak_rss_kib'] / 2**20:.2f} |")
    scaling = None
    if not args.no_scaling and not args.quick:
        scaling = run_scaling(repeats=repeats)
        print("\nscaling: the same network on growing boxes [-s, s]^2 (exact timed as above)\n")
        print("| config | box half-width s | regions | exact s | regions/s |")
        print("|---|--:|--:|--:|--:|")
        for row in scaling:
            print(f"| {row['config']} | {row['half_width']:g} | {row['regions']:,} | {row['exact_s']:.3f} | "
                  f"{row['regions_per_s']:,.0f} |", flush=True)
    # targets
    by = {row["config"]: row for row in rows}
    print("\ntargets:")
    checks: list[tuple[str, bool | None]] = []
    if "100x3" in by:
        checks.append(("100x3 (29,577 regions) in <= 0.3 s", by["100x3"]["exact_s"] <= 0.3))
    if "100x3" in by and "256x3" in by:
        checks.append(("256x3 regions/s >= 100x3 regions/s",
                       by["256x3"]["regions_per_s"] >= by["100x3"]["regions_per_s"]))
    if "cnn" in by:
        checks.append(("CNN < 1 s", by["cnn"]["exact_s"] < 1.0))
    if rows:
        slow = [row["config"] for row in rows if row["ratio"] <= 1.0]
        checks.append(("exact faster than the grid for every config"
                       + (f" (not: {', '.join(slow)})" if slow else ""), not slow))
    if million is not None:
        checks.append(("1M regions under 4 GiB peak RSS", million["peak_rss_kib"] < 4 * 2**20))
        if "steps" in million:
            top = max(st["peak_rss_kib"] for st in million["steps"])
            checks.append(("1M regions end to end (partition, boundary, plot) under 4 GiB peak RSS",
                           top < 4 * 2**20))
    for text, ok in checks:
        print(f"- [{'x' if ok else ' '}] {text}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": datetime.date.today().isoformat(), "machine": _machine(), "repeats": repeats,
                       "grid": args.grid, "rows": rows, "million": million, "scaling": scaling,
                       "targets": [{"target": t, "met": ok} for t, ok in checks]}, f, indent=1)
    if failed:
        raise AssertionError("; ".join(failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
