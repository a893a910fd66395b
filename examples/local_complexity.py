"""Local complexity around training, test and random points of a classifier trained on toy data.

A ReLU MLP (2 -> 64 x 3 -> 2) is trained with Adam on two moons (:mod:`splinecam.datasets`,
:func:`splinecam.training.train_classifier`). Around every point of three sets (the training points,
fresh test points from the same distribution, and points drawn uniformly from the data's bounding
box) :func:`splinecam.local_complexity` computes the exact partition of a small square slice (side
``2 * pad``, random orientation per point) and summarises it: regions per unit area, length of the
decision boundary inside the square, distance to that boundary, and the slope norm of the region at the point. All 1,536 slices go
through :func:`splinecam.partition_many` in one engine run. The figure shows the partition of the
whole data box with the three point sets, and the histograms of the per-point summaries for each
set (the kind of figure of the SplineCam paper's local-complexity comparisons): the network is
finest near the data and its decision boundary, and coarser at random points.

Run::

    python examples/local_complexity.py                      # ~20 s on a CPU, examples/out/
    python examples/local_complexity.py --fast --out /tmp/x  # a few seconds (tiny network)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import splinecam as sc  # noqa: E402
from splinecam.datasets import two_moons  # noqa: E402
from splinecam.training import mlp, train_classifier  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "out"

#: the point sets compared, with their colours
GROUPS = {"training": "#1f77b4", "test": "#2ca02c", "random": "#ff7f0e"}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the example; returns a summary: ``files``, ``num_regions`` (regions of all slices per
    point set), ``verified``, ``seconds``, ``medians`` (per set, of every column)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (default: examples/out)")
    parser.add_argument("--fast", action="store_true", help="a tiny network, few steps and points (for tests)")
    parser.add_argument("--pad", type=float, default=None, help="half-width of the squares (default 0.15)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        torch.set_num_threads(threads)


def point_sets(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Training data ``(X, y)`` and the three point sets: training, test and uniform random points."""
    X, y = two_moons(n=n, noise=0.1, seed=seed)
    X_test, _ = two_moons(n=n, noise=0.1, seed=seed + 1)
    lo, hi = X.min(0) - 0.25, X.max(0) + 0.25
    X_rand = np.random.default_rng(seed + 2).uniform(lo, hi, size=(n, 2))
    return X, y, {"training": X, "test": X_test, "random": X_rand}


def run(args: argparse.Namespace) -> dict[str, Any]:
    width, depth, steps, n = (16, 2, 150, 64) if args.fast else (64, 3, 3000, 512)
    pad = args.pad if args.pad is not None else 0.15
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    X, y, sets = point_sets(n, args.seed)
    model = mlp(in_dim=2, width=width, depth=depth, out_dim=2, seed=args.seed)
    model, acc = train_classifier(model, X, y, steps=steps, lr=3e-3, seed=args.seed, num_threads=None)

    t0 = time.perf_counter()
    tables = {name: sc.local_complexity(model, pts, pad=pad, seed=args.seed) for name, pts in sets.items()}
    lc_s = time.perf_counter() - t0

    # check a few of the squares against the real model, and that the table counts their regions
    slices = [sc.Slice.from_anchors(sets["test"][i][None], pad=pad, seed=args.seed + i) for i in range(3)]
    verified = True
    for i, part in enumerate(sc.partition_many(model, slices)):
        report = part.verify(model)
        if not report:
            print(report)
            report.raise_if_failed()
        verified &= bool(report) and part.num_regions == int(tables["test"]["num_regions"][i])

    # ---- figure -------------------------------------------------------------------------------------
    fig, axes = plt.subplots(2, 2, figsize=(12, 10), dpi=60 if args.fast else 100)
    lo, hi = X.min(0) - 0.5, X.max(0) + 0.5
    half = float((hi - lo).max() / 2)
    mid = (lo + hi) / 2
    whole = sc.partition(model, sc.Slice.box((mid[0] - half, mid[0] + half), (mid[1] - half, mid[1] + half)))
    ax = axes[0, 0]
    whole.plot(ax=ax, color_by="slope", boundary=True, colorbar=False, cmap="Greys", linewidth=0.15)
    for name, color in GROUPS.items():
        ax.scatter(*sets[name].T, s=3 if not args.fast else 8, color=color, alpha=0.8, label=f"{name} points",
                   zorder=3, linewidths=0)
    ax.legend(loc="lower left", fontsize=8, markerscale=2)
    ax.set_title(f"{whole.num_regions:,} regions, training accuracy {acc:.0%}", fontsize=11)

    def hist(ax: Any, column: str, label: str, log: bool = False) -> None:
        vals = {name: tables[name][column] for name in GROUPS}
        finite = np.concatenate([v[np.isfinite(v)] for v in vals.values()])
        if log:
            finite = finite[finite > 0]
        if not len(finite):
            ax.text(0.5, 0.5, "no finite values", ha="center", transform=ax.transAxes)
            return
        lo_, hi_ = float(finite.min()), float(finite.max())
        bins = (np.geomspace(lo_, hi_ * 1.0001, 30) if log and hi_ > lo_
                else np.linspace(lo_, hi_ + 1e-12, 30))
        for name, color in GROUPS.items():
            v = vals[name]
            fin = v[np.isfinite(v)]
            extra = f", {np.mean(~np.isfinite(v)):.0%} none in the square" if (~np.isfinite(v)).any() else ""
            ax.hist(fin, bins=bins, histtype="step", linewidth=1.8, color=color,
                    weights=np.full(len(fin), 1.0 / max(1, len(v))),
                    label=f"{name} (median {np.median(v):.3g}{extra})")
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("fraction of the points")
        ax.legend(fontsize=8)

    hist(axes[0, 1], "density", f"regions per unit area in a {2 * pad:g} x {2 * pad:g} square", log=True)
    hist(axes[1, 0], "slope_norm", "slope norm of the region at the point", log=True)
    hist(axes[1, 1], "boundary_distance", "distance to the decision boundary, where it crosses the square")
    arch = " -> ".join(["2"] + [str(width)] * depth + ["2"])
    total = sum(len(t) for t in tables.values())
    fig.suptitle(
        f"Local complexity of a ReLU MLP {arch} trained on two moons: exact partitions of {total:,} squares "
        f"of side {2 * pad:g} ({lc_s:.1f} s)",
        fontsize=12,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    path = out / "local_complexity.png"
    fig.savefig(path)
    plt.close(fig)
    seconds = time.perf_counter() - t_start

    medians = {name: {c: v["median"] for c, v in t.summary().items()} for name, t in tables.items()}
    print(f"{'points':>9} {'regions':>8} {'per area':>9} {'boundary':>9} {'distance':>9} {'slope':>7}")
    for name, md in medians.items():
        print(f"{name:>9} {md['num_regions']:8.0f} {md['density']:9.1f} {md['boundary_length']:9.3f} "
              f"{md['boundary_distance']:9.3f} {md['slope_norm']:7.3f}")
    print(f"local complexity of {total} points in {lc_s:.2f} s; wrote {path} in {seconds:.1f} s")
    return {
        "files": [path],
        "num_regions": {name: int(t["num_regions"].sum()) for name, t in tables.items()},
        "verified": verified,
        "seconds": seconds,
        "medians": medians,
        "tables": tables,
    }


if __name__ == "__main__":
    main()
