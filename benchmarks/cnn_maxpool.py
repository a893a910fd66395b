"""Benchmarks of the exact partition of CNNs with max-pooling: LeNet-5 and VGG11 (32x32 and 64x64).

Usage::

    python benchmarks/cnn_maxpool.py                          # lenet, vgg11-32, vgg11-64 (minutes)
    python benchmarks/cnn_maxpool.py --configs lenet vgg11-32  # a subset
    python benchmarks/cnn_maxpool.py --pad-scale 0.5           # every slice half as wide
    python benchmarks/cnn_maxpool.py --json out.json           # also write the numbers as JSON

Every config runs in a fresh subprocess (so that its peak memory is its own) and reports:

* ``regions``, ``exact s``: one call of :func:`splinecam.partition` (float64, default settings), after
  a warm-up partition of a window 1/20 as wide (tracing caches, lazy imports, kernels), not timed;
* ``regions/s``;
* ``peak RSS GiB``: the subprocess's peak resident set size (Linux ``VmHWM``; ``ru_maxrss`` where
  that is missing; ``tracemalloc`` does not see torch's allocations), and ``base RSS GiB``, the peak
  before the timed call (model, data, warm-up);
* ``fwd ms``: the best time of one float32 forward pass of one image (batch of 1) of the model, and
  ``fwd / region``: exact seconds per region divided by it, the cost of a region in forward passes;
* ``grid s`` and ``grid / exact``: the approximate method used instead: an ``n x n`` grid of the
  slice's domain mapped to input space, run through a float64 copy of the network layer by layer,
  recording the activation pattern (the sign of every ReLU input and the winner of every max-pooling
  window) of every pixel, in chunks. ``n`` is 512 for LeNet and 256 for VGG11. A grid that would take
  longer than ``--grid-budget`` seconds is timed on its first chunks and extrapolated linearly (the
  cost per point is constant), marked ``(extrapolated)``; a complete grid also reports its distinct
  patterns, a lower bound of the region count.

Configs (PyTorch's default init right after ``torch.manual_seed(0)``, eval mode; the images are
``splinecam.datasets.digit_images(seed=0)``; the slice lies in the plane through the first three
images, ``sc.Slice.from_anchors(images[:3])``, restricted to a square of half-width ``pad`` around
the first image):

* ``lenet``: LeNet-5 with max-pooling (``Conv2d(1, 6, 5, padding=2)``, ReLU, ``MaxPool2d(2)``,
  ``Conv2d(6, 16, 5)``, ReLU, ``MaxPool2d(2)``, ``Linear(400, 120)``, ReLU, ``Linear(120, 84)``, ReLU,
  ``Linear(84, 10)``) on 1x28x28 images, ``pad`` 0.1;
* ``vgg11-32`` / ``vgg11-64``: VGG11 (8 conv 3x3 with ReLU, 5 ``MaxPool2d(2)``, classifier
  ``Linear -> ReLU -> Dropout`` twice with 4096 units, 200 classes) on 3x32x32 / 3x64x64 images,
  ``pad`` 0.005 / 0.002 (slices of side 0.01 / 0.004: hundreds of regions each).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import splinecam as sc
from splinecam.datasets import digit_images

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import _machine, _vm_hwm_kib  # noqa: E402

__all__ = ["CONFIGS", "build_lenet", "build_vgg11", "make_config", "time_grid", "run_config", "main"]

#: name -> (model, image size, channels, classes, slice half-width, grid side)
CONFIGS: dict[str, dict[str, Any]] = {
    "lenet": {"model": "lenet", "size": 28, "channels": 1, "classes": 10, "pad": 0.1, "grid": 512},
    "vgg11-32": {"model": "vgg11", "size": 32, "channels": 3, "classes": 200, "pad": 0.005, "grid": 256},
    "vgg11-64": {"model": "vgg11", "size": 64, "channels": 3, "classes": 200, "pad": 0.002, "grid": 256},
}
DEFAULT_CONFIGS = ["lenet", "vgg11-32", "vgg11-64"]
#: a grid that would take longer than this is timed on its first chunks and extrapolated
GRID_BUDGET_S = 60.0
VGG11_CFG: list[Any] = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


# ---------------------------------------------------------------------------- models and slices
def build_lenet(seed: int = 0) -> nn.Sequential:
    """LeNet-5 with max-pooling for 1x28x28 inputs, 10 classes, in eval mode.

    Examples
    --------
    >>> tuple(build_lenet()(torch.zeros(1, 1, 28, 28)).shape)
    (1, 10)
    """
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    ).eval()


def build_vgg11(size: int = 64, classes: int = 200, hidden: int = 4096, seed: int = 0) -> nn.Sequential:
    """VGG11 (no BatchNorm) for 3 x size x size inputs, in eval mode (as ``examples/vgg11.py``).

    Examples
    --------
    >>> tuple(build_vgg11(32, 10, hidden=16)(torch.zeros(1, 3, 32, 32)).shape)
    (1, 10)
    """
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    c_in = 3
    for v in VGG11_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU()]
            c_in = v
    s = size // 32
    layers += [nn.Flatten(), nn.Linear(c_in * s * s, hidden), nn.ReLU(), nn.Dropout(),
               nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(), nn.Linear(hidden, classes)]
    return nn.Sequential(*layers).eval()


def window(images: torch.Tensor, pad: float) -> sc.Slice:
    """The square of half-width ``pad`` around ``images[0]`` in the plane through ``images[:3]``."""
    plane = sc.Slice.from_anchors(images[:3], pad=pad, seed=0)
    c = np.asarray(plane.anchors)[0]
    sq = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    return sc.Slice(origin=plane.origin.reshape(plane.input_shape), basis=plane.basis, domain=c + pad * sq,
                    anchors=c[None])


def make_config(name: str, pad_scale: float = 1.0) -> tuple[nn.Sequential, sc.Slice, torch.Tensor]:
    """Model, slice and the anchor image (batch of 1) of a config.

    Examples
    --------
    >>> net, sl, x = make_config("lenet")
    >>> sl.input_shape, tuple(x.shape)
    ((1, 28, 28), (1, 1, 28, 28))
    """
    if name not in CONFIGS:
        raise SystemExit(f"unknown config {name!r}: choose from {', '.join(CONFIGS)}")
    c = CONFIGS[name]
    model = build_lenet() if c["model"] == "lenet" else build_vgg11(c["size"], c["classes"])
    X, _ = digit_images(n=3, num_classes=c["classes"], size=c["size"], channels=c["channels"], seed=0)
    images = torch.as_tensor(X)
    return model, window(images, c["pad"] * pad_scale), images[:1]


# ---------------------------------------------------------------------------- the grid baseline
def grid_patterns(model64: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """The activation pattern of a batch of inputs (a plain float64 layer loop): the sign of every ReLU
    input and the winner of every max-pooling window, hashed to two int64 per input (wrapping sums
    with fixed random weights), so that distinct patterns can be counted in little memory."""
    gen = torch.Generator().manual_seed(0)
    h = torch.zeros(len(x), 2, dtype=torch.int64)

    def mix(p: torch.Tensor) -> None:
        w = torch.randint(-2**62, 2**62, (p.shape[1], 2), generator=gen, dtype=torch.int64)
        h.add_((p.unsqueeze(2) * w).sum(1))

    for m in model64:
        if isinstance(m, nn.ReLU):
            mask = x > 0
            mix(mask.reshape(len(x), -1).to(torch.int64))
            x = x * mask
        elif isinstance(m, nn.MaxPool2d):
            x, idx = F.max_pool2d(x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, return_indices=True)
            mix(idx.reshape(len(x), -1))
        else:
            x = m(x)
    return h


def time_grid(model: nn.Sequential, sl: sc.Slice, n: int, budget: float = GRID_BUDGET_S) -> dict[str, Any]:
    """Seconds of the ``n x n`` activation-pattern grid (extrapolated past ``budget``), and the number
    of distinct patterns when the grid was completed."""
    model64 = copy.deepcopy(model).double().eval()
    lo, hi = sl.domain.min(0), sl.domain.max(0)
    xs = lo[0] + (np.arange(n) + 0.5) * (hi[0] - lo[0]) / n
    ys = lo[1] + (np.arange(n) + 0.5) * (hi[1] - lo[1]) / n
    gx, gy = np.meshgrid(xs, ys)
    u = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float64)
    d = int(np.prod(sl.input_shape))
    chunk = int(max(64, min(65536, 2**22 // d)))
    pats: list[torch.Tensor] = []
    with torch.no_grad():
        grid_patterns(model64, sl.to_input(u[:min(chunk, 64)]))  # warm-up
        t0 = time.perf_counter()
        done = 0
        while done < len(u):
            pats.append(grid_patterns(model64, sl.to_input(u[done:done + chunk])))
            done += len(pats[-1])
            if time.perf_counter() - t0 > budget and done < len(u):
                break
        spent = time.perf_counter() - t0
    complete = done == len(u)
    out: dict[str, Any] = {"grid": n, "grid_s": spent * len(u) / done, "grid_points_timed": done,
                           "grid_extrapolated": not complete, "grid_patterns": None}
    if complete:
        out["grid_patterns"] = len(torch.unique(torch.cat(pats), dim=0))
    return out


# ---------------------------------------------------------------------------- one config
def _peak_kib() -> int:
    """Peak resident memory of this process image (Linux ``VmHWM``; ``ru_maxrss`` elsewhere), KiB."""
    hwm = _vm_hwm_kib()
    if hwm is not None:
        return hwm
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r // 1024 if sys.platform == "darwin" else r


def forward_seconds(model: nn.Module, x: torch.Tensor, repeats: int = 10) -> float:
    """Best time of one float32 forward pass of ``x`` (one image)."""
    best = float("inf")
    with torch.no_grad():
        model(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            best = min(best, time.perf_counter() - t0)
    return best


def run_config(name: str, pad_scale: float = 1.0, grid: int | None = None, budget: float = GRID_BUDGET_S) -> dict[str, Any]:
    """Measure one config in this process (see the module docstring); returns its record."""
    model, sl, x = make_config(name, pad_scale)
    c = np.asarray(sl.anchors)[0]
    half = 0.5 * float(np.ptp(sl.domain[:, 0]))
    sq = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    small = sc.Slice(origin=sl.origin.reshape(sl.input_shape), basis=sl.basis, domain=c + 0.05 * half * sq)
    sc.partition(model, small)  # warm-up, not timed
    base = _peak_kib()
    t0 = time.perf_counter()
    part = sc.partition(model, sl)
    secs = time.perf_counter() - t0
    peak = _peak_kib()
    t_fwd = forward_seconds(model, x)
    rec = {"config": name, "input": "x".join(map(str, sl.input_shape)), "half_width": half,
           "regions": part.num_regions, "exact_s": secs, "regions_per_s": part.num_regions / secs,
           "base_rss_kib": base, "peak_rss_kib": peak, "forward_ms": 1e3 * t_fwd,
           "forward_passes_per_region": secs / part.num_regions / t_fwd}
    del part
    rec.update(time_grid(model, sl, grid or CONFIGS[name]["grid"], budget))
    rec["ratio"] = rec["grid_s"] / secs
    return rec


def _child(name: str, pad_scale: float, grid: int | None, budget: float) -> None:
    print(json.dumps(run_config(name, pad_scale, grid, budget)))


def _run_child(name: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--_child", name, "--pad-scale", str(args.pad_scale),
           "--grid-budget", str(args.grid_budget), "--threads", str(torch.get_num_threads())]
    if args.grid:
        cmd += ["--grid", str(args.grid)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    if res.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{res.stderr[-4000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the configs and print a markdown table; returns the exit status.

    Examples
    --------
    >>> main(["--configs", "lenet", "--pad-scale", "0.1"])  # doctest: +SKIP
    """
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, metavar="CFG",
                   help=f"configs to run (default: {' '.join(DEFAULT_CONFIGS)})")
    p.add_argument("--pad-scale", type=float, default=1.0, help="scale every slice's half-width (default 1)")
    p.add_argument("--grid", type=int, default=None, help="grid side (default 512 for lenet, 256 for vgg11)")
    p.add_argument("--grid-budget", type=float, default=GRID_BUDGET_S,
                   help=f"seconds of grid before extrapolating (default {GRID_BUDGET_S:g})")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's default)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per config (default 3600)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args._child:
        _child(args._child, args.pad_scale, args.grid, args.grid_budget)
        return 0
    for name in args.configs:
        if name not in CONFIGS:
            raise SystemExit(f"unknown config {name!r}: choose from {', '.join(CONFIGS)}")
    print(f"# splinecam CNN benchmarks (max-pooling), {datetime.date.today().isoformat()}")
    print(f"\n{_machine()}")
    print("exact: float64, one call after a small warm-up partition, each config in a fresh subprocess; "
          "grid: activation patterns (ReLU signs, max-pool winners) in float64\n")
    print("| config | input | slice side | regions | exact s | regions/s | peak RSS GiB | base RSS GiB | "
          "fwd ms | fwd / region | grid | grid s | grid / exact | grid patterns |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    rows = []
    for name in args.configs:
        r = _run_child(name, args)
        rows.append(r)
        gs = f"{r['grid_s']:.1f}" + (" (extrapolated)" if r["grid_extrapolated"] else "")
        pats = "-" if r["grid_patterns"] is None else f"{r['grid_patterns']:,}"
        print(f"| {name} | {r['input']} | {2 * r['half_width']:g} | {r['regions']:,} | {r['exact_s']:.2f} | "
              f"{r['regions_per_s']:,.1f} | {r['peak_rss_kib'] / 2**20:.2f} | {r['base_rss_kib'] / 2**20:.2f} | "
              f"{r['forward_ms']:.2f} | {r['forward_passes_per_region']:.1f} | {r['grid']} x {r['grid']} | {gs} | "
              f"{r['ratio']:.1f} | {pats} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": datetime.date.today().isoformat(), "machine": _machine(), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
