"""Command-line interface: ``python -m splinecam <command>`` (also installed as ``splinecam``).

Commands
--------
demo
    Train a small ReLU MLP on the built-in two-moons data for a few seconds, compute its exact
    partition and decision boundary over a box around the data, check it against the model with
    :meth:`splinecam.Partition.verify`, and write a PNG.
plot
    Draw the exact partition of your own model without writing code: the model comes from a Python
    factory you name (``pkg.module:make_model``, imported with the current directory on the path),
    its weights from a ``state_dict`` file, the slice from ``--box`` (2-D input) or ``--anchors``
    (a tensor file of 1-3 input points). Files are read with ``torch.load(weights_only=True)``: the
    CLI never unpickles arbitrary objects (a pickle can run any code), and says so when a file
    needs it.

Examples
--------
From a shell::

    python -m splinecam demo --out /tmp --steps 1000
    # demo: 1234 regions, boundary length 5.67, exact partition in 0.05 s; wrote /tmp/splinecam_demo.png

    # mynets.py defines make_model() -> nn.Module; weights saved by torch.save(model.state_dict(), ...)
    python -m splinecam plot --model mynets:make_model --weights state.pt --box -2 2 -2 2 -o regions.png
    python -m splinecam plot --model mynets:make_cnn --weights cnn.pt --anchors images.pt --pad 1 -o cnn.png

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

__all__ = ["main", "run_demo", "run_plot", "load_factory", "load_tensor_file", "build_parser", "CLIError"]

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


class CLIError(Exception):
    """A user error of the command line (bad factory, weights or anchors file); printed, exit status 1."""


_WEIGHTS_ONLY_HINT = (
    "The splinecam CLI reads files only with torch.load(weights_only=True), which loads tensors and "
    "plain containers and never unpickles arbitrary objects (a pickle can run any code when loaded). "
)


def load_factory(spec: str) -> Any:
    """The ``nn.Module`` made by a factory named ``"pkg.module:attr"`` (``attr`` may be dotted).

    The module is imported with the current directory first on ``sys.path``. A callable (a function
    or a class) is called with no arguments; an ``nn.Module`` instance is used as it is.

    Examples
    --------
    >>> net = load_factory("splinecam.training:mlp")
    >>> type(net).__name__
    'Sequential'
    """
    import importlib

    import torch.nn as nn

    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise CLIError(f"--model must be 'module:factory' (e.g. mynets:make_model), got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise CLIError(
            f"cannot import module {mod_name!r} for --model ({exc}); run from the directory that holds "
            f"{mod_name.split('.')[0]}.py (or its package), or install it"
        ) from exc
    obj: Any = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CLIError(f"module {mod_name!r} has no attribute {attr!r} (for --model {spec})")
        obj = getattr(obj, part)
    if isinstance(obj, nn.Module):
        return obj
    if not callable(obj):
        raise CLIError(f"--model {spec}: {attr!r} is a {type(obj).__name__}, not a function returning a module")
    try:
        model = obj()
    except TypeError as exc:
        raise CLIError(
            f"--model {spec}: calling {attr}() failed ({exc}); the factory must work with no arguments "
            "(wrap it: def make_model(): return Net(width=64))"
        ) from exc
    if not isinstance(model, nn.Module):
        raise CLIError(f"--model {spec}: {attr}() returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def load_tensor_file(path: str, what: str) -> Any:
    """``torch.load(path, weights_only=True, map_location="cpu")`` with messages for the CLI."""
    import pickle

    import torch

    if not os.path.isfile(path):
        raise CLIError(f"{what} file {path!r} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CLIError(
            f"{what} file {path!r} holds objects other than tensors ({first}). {_WEIGHTS_ONLY_HINT}"
            + (
                "If it is a whole model saved with torch.save(model, ...), save its weights instead: "
                "torch.save(model.state_dict(), 'state.pt'), and name the code that builds the model "
                "with --model."
                if what == "--weights"
                else "Save the anchors as a plain tensor: torch.save(x, 'anchors.pt')."
            )
        ) from exc
    except (RuntimeError, OSError, EOFError) as exc:
        raise CLIError(f"cannot read {what} file {path!r} with torch.load: {exc}") from exc


def _state_dict(obj: Any, path: str) -> dict[str, Any]:
    import torch

    def tensors(d: Any) -> bool:
        return isinstance(d, dict) and bool(d) and all(isinstance(v, torch.Tensor) for v in d.values())

    if tensors(obj):
        return obj
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if tensors(obj.get(key)):
                return obj[key]
    raise CLIError(
        f"--weights file {path!r} is not a state_dict (a dict of tensors), nor a checkpoint dict with one "
        f"under 'state_dict' or 'model_state_dict'; it holds a {type(obj).__name__}. Save the weights "
        "with torch.save(model.state_dict(), 'state.pt')"
    )


def run_plot(
    model: str,
    out: str = "splinecam_plot.png",
    *,
    weights: str | None = None,
    box: Sequence[float] | None = None,
    anchors: str | None = None,
    pad: float = 2.0,
    seed: int = 0,
    color_by: str = "slope",
    boundary: bool = True,
    dpi: float = 150,
    device: str | None = None,
    progress: bool = False,
    verbose: bool = True,
) -> dict[str, Any]:
    """Build a model from a factory, load its weights, partition a slice and save the picture.

    Parameters
    ----------
    model : str
        ``"pkg.module:factory"`` (:func:`load_factory`).
    out : str
        The image file (its suffix picks the format: ``.png``, ``.pdf``, ``.svg``...).
    weights : str, optional
        A ``state_dict`` file (``torch.save(model.state_dict(), path)``), loaded with
        ``torch.load(weights_only=True)`` into ``model.load_state_dict`` (strict).
    box : (x0, x1, y0, y1), optional
        The slice for a model with 2-D input: :meth:`Slice.box`.
    anchors : str, optional
        A tensor file of 1-3 input points, shape ``(m, *input_shape)`` (one image: ``x[None]``), or
        a list of tensors: :meth:`Slice.from_anchors` with ``pad`` and ``seed``.
    color_by, boundary :
        As in :meth:`Partition.plot`.
    dpi : float
        Resolution of the image.
    device : str, optional
        Where to compute (:func:`splinecam.partition`).
    progress : bool
        Show the progress bar.
    verbose : bool
        Print a summary line.

    Returns
    -------
    dict
        ``regions``, ``seconds``, ``path``, ``partition``.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> info = run_plot("splinecam.training:mlp", os.path.join(d, "p.png"), box=(-1, 1, -1, 1),
    ...                 verbose=False)
    >>> info["regions"] > 1, os.path.exists(info["path"])
    (True, True)
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from . import Slice, partition

    if (box is None) == (anchors is None):
        raise CLIError("give exactly one of --box X0 X1 Y0 Y1 (models with 2-D input) and --anchors FILE")
    net = load_factory(model)
    if weights is not None:
        sd = _state_dict(load_tensor_file(weights, "--weights"), weights)
        try:
            net.load_state_dict(sd)
        except RuntimeError as exc:
            raise CLIError(f"--weights {weights!r} does not fit the model from {model}: {exc}") from exc
    net.eval()  # the CLI's own instance
    if box is not None:
        x0, x1, y0, y1 = (float(v) for v in box)
        sl = Slice.box((x0, x1), (y0, y1))
    else:
        assert anchors is not None
        a = load_tensor_file(anchors, "--anchors")
        if isinstance(a, torch.Tensor):
            if a.ndim < 2 or not 1 <= a.shape[0] <= 3:
                raise CLIError(
                    f"--anchors {anchors!r} holds a tensor of shape {tuple(a.shape)}; it must be (m, *input_shape) "
                    "with m = 1, 2 or 3 anchors (one input x: save x[None])"
                )
            pts: Any = list(a)
        elif isinstance(a, (list, tuple)) and all(isinstance(t, torch.Tensor) for t in a):
            pts = list(a)
        else:
            raise CLIError(f"--anchors {anchors!r} must hold a tensor (m, *input_shape) or a list of tensors")
        sl = Slice.from_anchors(pts, pad=pad, seed=seed)
    part = partition(net, sl, device=device, progress=progress)
    fig, ax = plt.subplots(figsize=(6, 5), dpi=dpi)
    try:
        part.plot(ax=ax, color_by=color_by, boundary=boundary)
        ax.set_title(f"{model}: {part.num_regions:,} regions", fontsize=9)
        ax.set_aspect("equal")
        parent = os.path.dirname(os.path.abspath(out))
        os.makedirs(parent, exist_ok=True)
        fig.savefig(out, bbox_inches="tight", dpi=dpi)
    finally:
        plt.close(fig)
    if verbose:
        print(f"plot: {part.num_regions} regions, exact partition in {part.seconds:.2f} s; wrote {out}")
    return {"regions": part.num_regions, "seconds": part.seconds, "path": out, "partition": part}


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
    from .viz.plot import COLOR_BY

    plot = sub.add_parser(
        "plot",
        help="draw the exact partition of your model (from a factory and a state_dict) on a slice",
        description="Build a model with a Python factory, load its weights (torch.load(weights_only=True): "
        "never an arbitrary pickle), compute its exact partition on a box (2-D input) or a slice through "
        "anchor points, and write a picture.",
    )
    plot.add_argument("--model", required=True, metavar="MODULE:FACTORY",
                      help="a function (or class) called with no arguments that returns the nn.Module, "
                      "e.g. mynets:make_model (the current directory is on the import path)")
    plot.add_argument("--weights", metavar="FILE",
                      help="state_dict file, torch.save(model.state_dict(), FILE); loaded with weights_only=True")
    plot.add_argument("--box", nargs=4, type=float, metavar=("X0", "X1", "Y0", "Y1"),
                      help="the slice for a model with 2-D input: the box [X0, X1] x [Y0, Y1]")
    plot.add_argument("--anchors", metavar="FILE",
                      help="tensor file of 1-3 input points, shape (m, *input_shape): a slice through them")
    plot.add_argument("--pad", type=float, default=2.0, help="margin around the anchors (default: 2.0)")
    plot.add_argument("--seed", type=int, default=0, help="seed of the anchors' random directions (default: 0)")
    plot.add_argument("-o", "--out", default="splinecam_plot.png", help="image file (default: splinecam_plot.png)")
    plot.add_argument("--color-by", default="slope", choices=COLOR_BY, help="region colouring (default: slope)")
    plot.add_argument("--no-boundary", action="store_true", help="do not draw the decision boundary")
    plot.add_argument("--dpi", type=float, default=150, help="resolution (default: 150)")
    plot.add_argument("--device", default=None, help="where to compute (default: cpu)")
    plot.add_argument("--progress", action="store_true", help="show the progress bar")
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
        Exit status: 0 on success, 1 when the demo's verification failed or ``plot`` met a bad
        model, weights or slice (the message is printed), 2 without a command or on a usage error.

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
    if args.command == "plot":
        if (args.box is None) == (args.anchors is None):
            parser.error("plot: give exactly one of --box X0 X1 Y0 Y1 and --anchors FILE")
        if args.dpi <= 0 or args.pad <= 0:
            parser.error("plot: --dpi and --pad must be positive")
        from .errors import SplineCamError

        try:
            run_plot(
                args.model, args.out, weights=args.weights, box=args.box, anchors=args.anchors,
                pad=args.pad, seed=args.seed, color_by=args.color_by, boundary=not args.no_boundary,
                dpi=args.dpi, device=args.device, progress=args.progress,
            )
        except (CLIError, SplineCamError) as exc:
            print(f"splinecam plot: error: {exc}", file=sys.stderr)
            return 1
        return 0
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse rejects it first
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
