"""Linear regions, decision boundaries and region statistics of classifiers trained on 2-D toy data.

Three ReLU MLPs (2 -> 32 -> 32 -> 32 -> 2) are trained with Adam on two moons, two circles and two
blobs (the built-in generators of :mod:`splinecam.datasets`, no download; training with
:func:`splinecam.training.train_classifier`). For each, the exact partition of a box around the data
is computed with :func:`splinecam.partition`, checked against the model with
:meth:`~splinecam.Partition.verify`, and drawn in one figure: the regions coloured by the norm of
their slope, the decision boundary in red, the training data, and below them a table of the region
statistics of :meth:`~splinecam.Partition.statistics` (the original SplineCam's region count, area,
eccentricity and centrality, plus the decision boundary's length and the regions it crosses).

Run::

    python examples/toy2d.py                      # ~10 s on a CPU, writes examples/out/toy2d.png
    python examples/toy2d.py --fast --out /tmp/x  # a few seconds (tiny networks, few steps)
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
from mpl_toolkits.axes_grid1 import make_axes_locatable  # noqa: E402

import splinecam as sc  # noqa: E402
from splinecam.datasets import two_blobs, two_circles, two_moons  # noqa: E402
from splinecam.training import mlp, train_classifier  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "out"

DATASETS = {
    "two moons": lambda n, seed: two_moons(n=n, noise=0.1, seed=seed),
    "two circles": lambda n, seed: two_circles(n=n, noise=0.06, factor=0.5, seed=seed),
    "two blobs": lambda n, seed: two_blobs(n=n, std=0.5, seed=seed),
}

#: rows of the statistics table: (label, key of part.statistics() / of the row, format)
TABLE = [
    ("training accuracy", "accuracy", "{:.1%}"),
    ("regions", "num_regions", "{:,}"),
    ("vertices / edges", "graph", "{}"),
    ("regions per unit area", "region_density", "{:.0f}"),
    ("area: mean / std", "area", "{}"),
    ("eccentricity: mean / std", "eccentricity", "{}"),
    ("centrality: mean / std", "centrality", "{}"),
    ("slope norm: median / 95%", "slope", "{}"),
    ("boundary: length / pieces", "boundary", "{}"),
    ("regions on the boundary", "boundary_regions", "{}"),
    ("partition + verify time", "time", "{}"),
]


def data_box(X: np.ndarray, margin: float = 0.5) -> sc.Slice:
    """The input plane restricted to a square around the data (centre and half-width rounded to 0.25)."""
    lo, hi = X.min(0), X.max(0)
    centre = np.round((lo + hi) / 2 * 4) / 4
    half = np.ceil(((hi - lo).max() / 2 + margin) * 4) / 4
    return sc.Slice.box(xlim=(centre[0] - half, centre[0] + half), ylim=(centre[1] - half, centre[1] + half))


def table_cells(st: dict[str, Any]) -> list[str]:
    """The statistics column of one data set, in the order of :data:`TABLE`."""
    merged = {
        **st,
        "graph": f"{st['num_vertices']:,} / {st['num_edges']:,}",
        "area": f"{st['area_mean']:.3g} / {st['area_std']:.3g}",
        "eccentricity": f"{st['eccentricity_mean']:.2f} / {st['eccentricity_std']:.2f}",
        "centrality": f"{st['centrality_mean']:.2f} / {st['centrality_std']:.2f}",
        "slope": f"{st['slope_norm_q50']:.3g} / {st['slope_norm_q95']:.3g}",
        "boundary": f"{st['boundary_length']:.2f} / {st['boundary_pieces']}",
        "boundary_regions": f"{st['boundary_regions']} ({st['boundary_region_fraction']:.1%})",
        "time": f"{st['partition_s'] * 1e3:.0f} ms + {st['verify_s'] * 1e3:.0f} ms",
    }
    return [fmt.format(merged[key]) for _, key, fmt in TABLE]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the example; returns a summary: ``files``, ``num_regions`` (per data set), ``verified``,
    ``seconds`` (total), ``statistics`` (per data set)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (default: examples/out)")
    parser.add_argument("--fast", action="store_true", help="tiny networks and few steps (for tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: fastest for small models, and on a busy machine)")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        torch.set_num_threads(threads)


def run(args: argparse.Namespace) -> dict[str, Any]:
    width, depth, steps, n = (8, 2, 60, 128) if args.fast else (32, 3, 2000, 512)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    fig = plt.figure(figsize=(16, 7.6), dpi=60 if args.fast else 100)
    grid = fig.add_gridspec(2, 3, height_ratios=[4.4, 2.6], hspace=0.08, wspace=0.45, top=0.9, bottom=0.02)
    axes = [fig.add_subplot(grid[0, i]) for i in range(3)]
    stats: dict[str, dict[str, Any]] = {}
    verified = True
    for ax, (name, make) in zip(axes, DATASETS.items()):
        X, y = make(n, args.seed)
        model = mlp(in_dim=2, width=width, depth=depth, out_dim=2, seed=args.seed)
        model, acc = train_classifier(model, X, y, steps=steps, lr=1e-2, seed=args.seed, num_threads=None)

        t0 = time.perf_counter()
        part = sc.partition(model, data_box(X))
        t1 = time.perf_counter()
        report = part.verify(model)
        t2 = time.perf_counter()
        if not report:
            print(report)
            report.raise_if_failed()  # fail loudly: the picture would not be exact
        verified &= bool(report)
        st = part.statistics()
        st.update(accuracy=acc, partition_s=t1 - t0, verify_s=t2 - t1)
        stats[name] = st

        art = part.plot(ax=ax, color_by="slope", boundary=True, data=(X, y), data_size=6, colorbar=False,
                        cmap="magma", linewidth=0.2)
        cax = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.08)
        fig.colorbar(art.regions, cax=cax, label=r"slope norm $\|A_r\|_F$")
        ax.set_title(f"{name}: {part.num_regions:,} regions, accuracy {acc:.0%}", fontsize=11)
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")

    # ---- statistics table under the three panels ---------------------------------------------------
    tax = fig.add_subplot(grid[1, :])
    tax.axis("off")
    cells = np.array([table_cells(st) for st in stats.values()]).T.tolist()
    table = tax.table(
        cellText=cells,
        rowLabels=[label for label, _, _ in TABLE],
        colLabels=list(stats),
        loc="upper center",
        cellLoc="center",
        colWidths=[0.22] * len(stats),
    )
    table.auto_set_font_size(False)
    table.set_fontsize(9.5)
    table.scale(1.0, 1.25)
    for (row, _), cell in table.get_celld().items():
        cell.set_edgecolor("0.8")
        if row == 0:
            cell.set_text_props(weight="bold")
    arch = " -> ".join(["2"] + [str(width)] * depth + ["2"])
    fig.suptitle(
        f"Exact linear regions of ReLU MLPs {arch} trained on toy data "
        f"(decision boundary in red; verify: {'passed' if verified else 'FAILED'})",
        fontsize=13,
        y=0.97,
    )
    path = out / "toy2d.png"
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    seconds = time.perf_counter() - t_start

    print(f"{'data':>12} {'accuracy':>9} {'regions':>8} {'boundary':>9} {'pieces':>6} {'partition':>10} verify")
    for name, st in stats.items():
        print(f"{name:>12} {st['accuracy']:9.1%} {st['num_regions']:8d} {st['boundary_length']:9.2f} "
              f"{st['boundary_pieces']:6d} {st['partition_s']:9.3f}s passed")
    print(f"wrote {path} in {seconds:.1f} s")
    return {
        "files": [path],
        "num_regions": {name: st["num_regions"] for name, st in stats.items()},
        "verified": verified,
        "seconds": seconds,
        "statistics": stats,
    }


if __name__ == "__main__":
    main()
