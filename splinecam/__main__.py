"""Command-line interface: ``python -m splinecam <command>`` (also installed as ``splinecam``).

Commands
--------
demo
    Train a small ReLU MLP on the built-in two-moons data for a few seconds, compute its exact
    partition and decision boundary over a box around the data, check it against the model with
    :meth:`splinecam.Partition.verify`, and write a PNG.

Examples
--------
From a shell::

    python -m splinecam demo --out /tmp --steps 1000
    # demo: 1234 regions, boundary length 5.67, exact partition in 0.05 s; wrote /tmp/splinecam_demo.png

From Python:

>>> from splinecam.__main__ import main
>>> main(["--version"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["main", "run_demo", "build_parser"]

DEMO_FILENAME = "splinecam_demo.png"


def run_demo(
    out: str = ".",
    steps: int = 1500,
    seed: int = 0,
    width: int = 32,
    depth: int = 3,
    n: int = 512,
    noise: float = 0.1,
    verbose: bool = True,
) -> dict[str, Any]:
    """Train a ReLU MLP on two moons, partition it exactly, and save a picture.

    Parameters
    ----------
    out : str
        Directory of the PNG (created if missing); the file is ``splinecam_demo.png``.
    steps : int
        Adam steps of :func:`splinecam.training.train_classifier`.
    seed : int
        Seed of the data, the initialization and the mini-batches.
    width, depth : int
        Hidden units per layer and number of hidden layers of the MLP.
    n, noise : int, float
        Number of points and noise of :func:`splinecam.datasets.two_moons`.
    verbose : bool
        Print the summary lines.

    Returns
    -------
    dict
        ``regions``, ``boundary_length``, ``seconds`` (exact partition), ``accuracy``,
        ``verified`` (bool), ``report`` (the :class:`splinecam.VerifyReport`), ``path`` (the PNG),
        ``partition`` and ``model``.

    Examples
    --------
    >>> import tempfile
    >>> from splinecam.__main__ import run_demo
    >>> info = run_demo(out=tempfile.mkdtemp(), steps=50, width=8, depth=2, verbose=False)  # doctest: +SKIP
    >>> info["verified"], info["regions"] > 1  # doctest: +SKIP
    (True, True)
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from . import Slice, partition
    from .datasets import two_moons
    from .training import mlp, train_classifier

    X, y = two_moons(n=n, noise=noise, seed=seed)
    model = mlp(in_dim=2, width=width, depth=depth, out_dim=2, activation="relu", seed=seed)
    t0 = time.perf_counter()
    model, acc = train_classifier(model, X, y, steps=steps, lr=1e-2, batch_size=128, seed=seed)
    train_s = time.perf_counter() - t0

    # a box around the data with a margin of 0.5, rounded outwards to 0.5
    lo = np.floor((X.min(0) - 0.5) * 2) / 2
    hi = np.ceil((X.max(0) + 0.5) * 2) / 2
    sl = Slice.box(xlim=(float(lo[0]), float(hi[0])), ylim=(float(lo[1]), float(hi[1])))

    t0 = time.perf_counter()
    part = partition(model, sl)
    part_s = time.perf_counter() - t0
    db = part.decision_boundary()
    length = float(db.length)
    report = part.verify(model)

    fig, ax = plt.subplots(figsize=(7, 5), dpi=150)
    try:
        art = part.plot(ax=ax, color_by="slope", boundary=True, data=(X, y), legend=True,
                        legend_kw={"loc": "upper left", "fontsize": 7})
        cb = getattr(art, "colorbar", None)
        if cb is not None:
            # a colorbar as tall as the (equal-aspect) axes
            from mpl_toolkits.axes_grid1 import make_axes_locatable

            label = cb.ax.get_ylabel()
            cb.remove()
            ax.set_aspect("equal")
            cax = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.1)
            fig.colorbar(art.regions, cax=cax, label=label)
        widths = "x".join([str(width)] * depth)
        ax.set_title(
            f"ReLU MLP 2x{widths}x2 on two moons (train acc {acc:.1%})\n"
            f"exact partition: {part.num_regions} regions, decision boundary length {length:.2f}",
            fontsize=9,
        )
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
        os.makedirs(out, exist_ok=True)
        path = os.path.join(out, DEMO_FILENAME)
        fig.savefig(path, bbox_inches="tight")
    finally:
        plt.close(fig)

    if verbose:
        print(f"trained a 2x{widths}x2 ReLU MLP for {steps} steps in {train_s:.1f} s, accuracy {acc:.3f}")
        print(f"verify: {'passed' if report else 'FAILED'} ({len(report.checks)} checks)")
        if not report:
            print(repr(report))
        print(
            f"demo: {part.num_regions} regions, boundary length {length:.2f}, "
            f"exact partition in {part_s:.2f} s; wrote {path}"
        )
    return {
        "regions": part.num_regions,
        "boundary_length": length,
        "seconds": part_s,
        "accuracy": acc,
        "verified": bool(report),
        "report": report,
        "path": path,
        "partition": part,
        "model": model,
    }


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per command.

    Examples
    --------
    >>> from splinecam.__main__ import build_parser
    >>> args = build_parser().parse_args(["demo", "--steps", "10"])
    >>> args.command, args.steps, args.out
    ('demo', 10, '.')
    """
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="splinecam",
        description="Exact linear regions and decision boundaries of piecewise-linear torch networks "
        "on 2-D slices of input space.",
    )
    parser.add_argument("--version", action="version", version=f"splinecam {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="train a small ReLU MLP on two moons and draw its exact partition",
        description="Train a small ReLU MLP on built-in two-moons data for a few seconds, compute its "
        "exact partition and decision boundary, verify them against the model, and write a PNG.",
    )
    demo.add_argument("--out", default=".", help="directory of the PNG (default: current directory)")
    demo.add_argument("--steps", type=int, default=1500, help="training steps (default: 1500)")
    demo.add_argument("--seed", type=int, default=0, help="seed of data, init and batches (default: 0)")
    demo.add_argument("--width", type=int, default=32, help="hidden units per layer (default: 32)")
    demo.add_argument("--depth", type=int, default=3, help="number of hidden layers (default: 3)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m splinecam`` and of the ``splinecam`` console script.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (without the program name); ``sys.argv[1:]`` when None.

    Returns
    -------
    int
        Exit status: 0 on success, 1 when the demo's verification failed, 2 without a command.

    Examples
    --------
    >>> from splinecam.__main__ import main
    >>> main([])  # doctest: +ELLIPSIS
    usage: splinecam ...
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stdout)
        return 2
    if args.command == "demo":
        if args.steps < 0 or args.width < 1 or args.depth < 1:
            parser.error("--steps must be >= 0, --width and --depth >= 1")
        info = run_demo(out=args.out, steps=args.steps, seed=args.seed, width=args.width, depth=args.depth)
        return 0 if info["verified"] else 1
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse rejects it first
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
