"""The exact linear regions and decision boundary of LeNet-5 with max-pooling, in the plane of three images.

LeNet-5 with max-pooling for 28 x 28 grey images, 10 classes::

    Conv2d(1, 6, 5, padding=2) -> ReLU -> MaxPool2d(2)      # 6 x 28 x 28 -> 6 x 14 x 14
    -> Conv2d(6, 16, 5) -> ReLU -> MaxPool2d(2)              # 16 x 10 x 10 -> 16 x 5 x 5
    -> Flatten -> Linear(400, 120) -> ReLU -> Linear(120, 84) -> ReLU -> Linear(84, 10)

is trained for a few seconds (Adam, ``splinecam.training.train_classifier``) on generated digit-like
images (``splinecam.datasets.digit_images``: seven-segment glyphs with random slant, size, position,
thickness and noise; no download). Each max-pooling window is a max over 4 affine functions on a
region, so it cuts regions where its winner changes: these cuts are exact, like the ReLU ones.

The slice is the plane through three training images of three classes (``sc.Slice.from_anchors`` on
the three images). Their distances are 8 to 12 input units and a trained LeNet has on the order of
30,000 regions per unit of area in that plane (a million or more over the whole triangle), so the exact
partition is computed on a square window of that plane (half-width ``--pad``, 0.2 by default) around
the point of the plane where the three classes' logits are closest, where their decision boundaries
meet (or, if they do not meet near the images, where the predicted class first changes on the way from
the first image to the second). ``--whole`` partitions the whole square through the three images instead (hours here).

The picture: the three images; the whole plane with the triangle, the window and a class map sampled
on a grid (the only approximate panel, for orientation); the window's exact regions coloured by their
class with the exact decision boundary; and the window's region borders coloured by the layer that
made them (the two max-pooling layers included). ``part.verify(model)`` checks the partition against
the real model.

Run::

    python examples/lenet_maxpool.py                      # about a minute on a CPU
    python examples/lenet_maxpool.py --fast --out /tmp/x  # a few seconds: short training, small window
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
from matplotlib.patches import Patch, Polygon, Rectangle  # noqa: E402
from mpl_toolkits.axes_grid1 import make_axes_locatable  # noqa: E402

import splinecam as sc  # noqa: E402
from splinecam.datasets import digit_images  # noqa: E402
from splinecam.training import train_classifier  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
LAYER_LABELS = ["conv1 ReLU", "pool1 (max)", "conv2 ReLU", "pool2 (max)", "fc1 ReLU", "fc2 ReLU"]


def lenet(seed: int = 0) -> torch.nn.Sequential:
    """LeNet-5 with max-pooling for 1 x 28 x 28 inputs and 10 classes (PyTorch's default init)."""
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )


def pick_images(X: np.ndarray, y: np.ndarray, pred: np.ndarray, digits: list[int]) -> list[int]:
    """The first correctly classified training image of each digit (the first image if none is)."""
    out = []
    for d in digits:
        ok = np.flatnonzero((y == d) & (pred == d))
        any_ = np.flatnonzero(y == d)
        if len(any_) == 0:
            raise SystemExit(f"no training image of digit {d}")
        out.append(int(ok[0] if len(ok) else any_[0]))
    return out


def meeting_point(model: torch.nn.Module, plane: sc.Slice, classes: list[int], n: int = 41) -> np.ndarray:
    """A point of the plane where the logits of ``classes`` are closest: where they meet.

    Score of a point: the spread of the three logits, plus how far any other class's logit rises
    above the lowest of the three (0 exactly where the three classes tie for the top). Minimised on an
    ``n x n`` grid of twice the plane's square, then on finer grids around the best point (float32:
    this only places the window).
    """
    center = plane.domain.mean(0)
    half = float(np.ptp(plane.domain[:, 0]))
    t = np.linspace(-1.0, 1.0, n)
    for _ in range(5):
        gx, gy = np.meshgrid(center[0] + half * t, center[1] + half * t)
        u = np.stack([gx.ravel(), gy.ravel()], 1)
        with torch.no_grad():
            logits = model(torch.as_tensor(plane.to_input(u), dtype=torch.float32)).double().numpy()
        three = logits[:, classes]
        others = np.delete(logits, classes, axis=1)
        score = three.max(1) - three.min(1) + np.maximum(others.max(1) - three.min(1), 0.0)
        center = u[int(np.argmin(score))]
        half *= 4.0 / (n - 1)  # two grid steps around the best point
    return center


def first_boundary(model: torch.nn.Module, plane: sc.Slice, n: int = 400) -> np.ndarray:
    """The first point from image A to image B where the predicted class changes (bisection)."""
    a, b = np.asarray(plane.anchors)[:2]

    def cls(t: np.ndarray) -> np.ndarray:
        u = a + np.asarray(t).reshape(-1, 1) * (b - a)
        with torch.no_grad():
            return model(torch.as_tensor(plane.to_input(u), dtype=torch.float32)).argmax(1).numpy()

    t = np.linspace(0.0, 1.0, n)
    c = cls(t)
    k = int(np.flatnonzero(c != c[0])[0]) if (c != c[0]).any() else n // 2
    lo, hi = t[max(k - 1, 0)], t[k]
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cls(mid)[0] == c[0] else (lo, mid)
    return a + 0.5 * (lo + hi) * (b - a)


def classes_in(model: torch.nn.Module, sl: sc.Slice, n: int = 15) -> int:
    """How many classes the model predicts on an ``n x n`` grid of the slice's domain (float32)."""
    lo, hi = sl.domain.min(0), sl.domain.max(0)
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
    with torch.no_grad():
        x = torch.as_tensor(sl.to_input(np.stack([gx.ravel(), gy.ravel()], 1)), dtype=torch.float32)
        return len(torch.unique(model(x).argmax(1)))


def colorbar(fig: Any, ax: Any, mappable: Any, label: str) -> Any:
    """A colorbar as tall as an equal-aspect axes."""
    cax = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.08)
    return fig.colorbar(mappable, cax=cax, label=label)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the example; returns a summary: ``files``, ``num_regions``, ``verified``, ``seconds``,
    ``accuracy``, ``partition``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (default: examples/out)")
    parser.add_argument("--fast", action="store_true", help="short training and a small window (for tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 400; 60 with --fast)")
    parser.add_argument("--pad", type=float, default=None,
                        help="half-width of the square window, in input-space units (default 0.2; 0.02 with --fast)")
    parser.add_argument("--whole", action="store_true",
                        help="partition the whole square through the three images (millions of regions)")
    parser.add_argument("--digits", type=int, nargs=3, default=[2, 3, 8], metavar="D",
                        help="the classes of the three training images (default 2 3 8)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: fast, and robust on a busy machine)")
    args = parser.parse_args(argv)
    if len(set(args.digits)) != 3 or not all(0 <= d <= 9 for d in args.digits):
        parser.error(f"--digits needs three different digits 0-9, got {args.digits}")
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        torch.set_num_threads(threads)


def run(args: argparse.Namespace) -> dict[str, Any]:
    steps = args.steps if args.steps is not None else (60 if args.fast else 400)
    side = 2 * (args.pad if args.pad is not None else (0.02 if args.fast else 0.2))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    # ---- data and training -----------------------------------------------------------------------
    n_train = 600 if args.fast else 2000
    X, y = digit_images(n=n_train, size=28, noise=0.05, seed=args.seed)
    Xtest, ytest = digit_images(n=500, size=28, noise=0.05, seed=args.seed + 1)
    model = lenet(args.seed)
    t0 = time.perf_counter()
    model, acc = train_classifier(model, X, y, steps=steps, lr=2e-3, batch_size=64, seed=args.seed,
                                  num_threads=args.threads)
    t_train = time.perf_counter() - t0
    with torch.no_grad():
        pred = model(torch.as_tensor(X)).argmax(1).numpy()
        test_acc = float((model(torch.as_tensor(Xtest)).argmax(1).numpy() == ytest).mean())
    print(f"LeNet-5 (max-pooling) trained for {steps} steps in {t_train:.1f} s on {n_train} generated "
          f"28x28 digit images: training accuracy {acc:.3f}, test accuracy {test_acc:.3f}")

    # ---- the plane through three training images, and the window -------------------------------
    idx = pick_images(X, y, pred, args.digits)
    images = torch.as_tensor(X[idx])  # (3, 1, 28, 28)
    plane = sc.Slice.from_anchors(images, pad=0.5, seed=args.seed)
    dist = torch.cdist(images.flatten(1).double(), images.flatten(1).double())
    print(f"three training images #{idx} (digits {args.digits}); pairwise distances "
          f"{dist[0, 1]:.2f}, {dist[0, 2]:.2f}, {dist[1, 2]:.2f}")
    if args.whole:
        window = plane
        side = float(np.ptp(plane.domain[:, 0]))
    else:
        square = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])

        def window_at(center: np.ndarray) -> sc.Slice:
            return sc.Slice(origin=plane.origin.reshape(plane.input_shape), basis=plane.basis,
                            domain=center + 0.5 * side * square)

        window = window_at(meeting_point(model, plane, args.digits))
        where = f"where the logits of digits {args.digits} are closest"
        if classes_in(model, window) < 2:  # the three do not meet nearby: a boundary between A and B
            window = window_at(first_boundary(model, plane))
            where = "where the class first changes from image A to image B"
        print(f"window: {side:g} x {side:g}, centred {where}")

    # ---- the exact partition -------------------------------------------------------------------
    part = sc.partition(model, window)
    t0 = time.perf_counter()
    report = part.verify(model)
    t_verify = time.perf_counter() - t0
    print(part)
    print(report)
    report.raise_if_failed()  # fail loudly: the picture would not be exact
    st = part.statistics()
    a, b = part.output_affine
    cls = np.argmax(np.einsum("roi,ri->ro", a, part.centroids()) + b, axis=1)
    edges_per_layer = np.bincount(part.edge_layer[part.edge_layer >= 0], minlength=len(part.layer_names))
    print(f"{part.num_regions} regions in {part.seconds:.2f} s (verify {t_verify:.2f} s) on a "
          f"{side:g} x {side:g} window; classes on it: {np.unique(cls).tolist()}; decision boundary length "
          f"{st['boundary_length']:.3g} in {st['boundary_pieces']} piece(s)")
    print("region borders made by each nonlinearity: " + ", ".join(
        f"{lab}: {int(c)}" for lab, c in zip(LAYER_LABELS, edges_per_layer)))

    # ---- pictures --------------------------------------------------------------------------------
    dpi = 60 if args.fast else 90
    fig = plt.figure(figsize=(22, 6.2), dpi=dpi)
    gs = fig.add_gridspec(3, 4, width_ratios=[0.33, 1, 1, 1], wspace=0.28, hspace=0.25)
    palette = plt.get_cmap("tab10").colors
    for k in range(3):
        ax = fig.add_subplot(gs[k, 0])
        ax.imshow(X[idx[k], 0], cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"image {'ABC'[k]}: digit {args.digits[k]}", fontsize=10, color=palette[args.digits[k]])
        ax.set_xticks([])
        ax.set_yticks([])

    # overview: the whole plane, a sampled class map, the triangle and the window
    ax = overview = fig.add_subplot(gs[:, 1])
    n_grid = 60 if args.fast else 160
    (x0, y0), (x1, y1) = plane.domain.min(0), plane.domain.max(0)
    gx, gy = np.meshgrid(np.linspace(x0, x1, n_grid), np.linspace(y0, y1, n_grid))
    with torch.no_grad():
        g = model(torch.as_tensor(plane.to_input(np.stack([gx.ravel(), gy.ravel()], 1)), dtype=torch.float32))
    grid_cls = g.argmax(1).numpy().reshape(n_grid, n_grid)
    ax.imshow(np.asarray(palette)[grid_cls], origin="lower", extent=(x0, x1, y0, y1), alpha=0.55,
              interpolation="nearest")
    anc = np.asarray(plane.anchors)
    ax.add_patch(Polygon(anc, closed=True, fill=False, edgecolor="k", linewidth=1.0, linestyle="--"))
    ax.scatter(anc[:, 0], anc[:, 1], marker="*", s=220, c="gold", edgecolors="k", zorder=4)
    for k in range(3):
        ax.annotate("ABC"[k], anc[k], textcoords="offset points", xytext=(7, 7), fontsize=13, weight="bold")
    lo = window.domain.min(0)
    wside = window.domain.max(0) - lo
    ax.add_patch(Rectangle(lo, wside[0], wside[1], fill=False, edgecolor="k", linewidth=2.0, zorder=5))
    ax.set_xlim(min(x0, lo[0]) - 0.1, max(x1, lo[0] + wside[0]) + 0.1)
    ax.set_ylim(min(y0, lo[1]) - 0.1, max(y1, lo[1] + wside[1]) + 0.1)
    ax.set_aspect("equal")
    ax.set_title(f"the plane through images A, B, C (stars)\nclass map sampled on a {n_grid} x {n_grid} grid "
                 f"(approximate); window: black square", fontsize=11)

    # the exact partition of the window, coloured by class, with the decision boundary
    ax = classes_ax = fig.add_subplot(gs[:, 2])
    art = part.plot(ax=ax, color_by="class", boundary=True, boundary_color="k", boundary_width=1.5,
                    linewidth=0.15)
    colors = art.regions.get_facecolors()
    first = {int(c): int(np.flatnonzero(cls == c)[0]) for c in np.unique(cls)}
    ax.legend(handles=[Patch(color=colors[r], label=f"digit {c}") for c, r in first.items()],
              loc="upper right", fontsize=9, framealpha=0.9)
    ax.set_title(f"part.plot(color_by='class'): {part.num_regions:,} exact regions of the window\n"
                 "decision boundary (argmax change) in black", fontsize=11)

    # region borders by the layer that made them
    ax = layers_ax = fig.add_subplot(gs[:, 3])
    white = np.full((part.num_regions, 3), 0.98)
    art = part.plot(ax=ax, color_by=white, boundary=False, edges_by_layer=True, linewidth=0.5)
    cb = colorbar(fig, ax, art.edges, "nonlinearity that made the border")
    cb.set_ticks(range(len(part.layer_names)))
    cb.set_ticklabels(LAYER_LABELS[: len(part.layer_names)], fontsize=9)
    ax.set_title("part.plot(edges_by_layer=True)\nborders coloured by the ReLU or max-pool layer that made them",
                 fontsize=11)
    for ax in (overview, classes_ax, layers_ax):
        ax.set_xlabel("$u_1$")
        ax.set_ylabel("$u_2$")
        ax.locator_params(nbins=5)
    fig.suptitle(
        f"LeNet-5 with max-pooling, trained {steps} steps on generated digits (test accuracy {test_acc:.2f}): "
        f"{part.num_regions:,} regions in {part.seconds:.1f} s on a {side:g} x {side:g} window of the plane "
        f"through three training images (verify: {'passed' if report else 'FAILED'})",
        fontsize=12, y=1.02,
    )
    path = out / "lenet_maxpool.png"
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    seconds = time.perf_counter() - t_start
    print(f"wrote {path} in {seconds:.1f} s")
    return {
        "files": [path],
        "num_regions": part.num_regions,
        "verified": bool(report),
        "seconds": seconds,
        "accuracy": test_acc,
        "partition": part,
    }


if __name__ == "__main__":
    main()
