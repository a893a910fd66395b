"""The linear regions and decision boundaries of a random CNN on a 2-D slice through one input image.

The original SplineCam toolbox's ``examples/visualize_cnn_random.py`` network, layer for layer (the
same one ``benchmarks/run.py`` times): a randomly initialized CNN on 3 x 32 x 32 images::

    Conv2d(3, 6, 5, stride=2, padding=2, bias=False) -> BatchNorm2d(6) -> ReLU
    -> Conv2d(6, 16, 5, stride=2, padding=2, bias=False) -> ReLU
    -> Flatten -> Linear(1024, 120) -> Linear(120, 84) -> Linear(84, 10)

Its BatchNorm layer is given non-trivial running statistics and affine parameters, then the model is
put in eval mode. The two ReLU layers have 6 x 16 x 16 + 16 x 8 x 8 = 2,560 units; the three Linear
layers at the end are one affine map, so they cut no regions but shape the 10-class decision
boundary.

A square slice of input space is drawn through one random image (``sc.Slice.from_anchors``: two
random orthonormal directions in the 3,072-dimensional input space), its exact partition computed
with ``sc.partition`` and checked with ``part.verify(model)``, and drawn three ways: regions coloured
by their predicted class with the decision boundary (where the argmax of the 10 logits changes), by
the norm of their slope, and with region borders coloured by the ReLU layer that made them.

Run::

    python examples/visualize_cnn_random.py                      # ~20 s on a CPU
    python examples/visualize_cnn_random.py --fast --out /tmp/x  # a smaller slice
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
from matplotlib.patches import Patch  # noqa: E402
from mpl_toolkits.axes_grid1 import make_axes_locatable  # noqa: E402

import splinecam as sc  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
LAYER_LABELS = ["conv1, BN, ReLU", "conv2, ReLU"]


def random_cnn(seed: int = 0) -> tuple[torch.nn.Sequential, torch.Tensor]:
    """The original's random CNN in eval mode (non-trivial BatchNorm) and a random 3x32x32 anchor."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 5, stride=2, padding=2, bias=False),
        torch.nn.BatchNorm2d(6),
        torch.nn.ReLU(),
        torch.nn.Conv2d(6, 16, 5, stride=2, padding=2, bias=False),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * 8 * 8, 120),
        torch.nn.Linear(120, 84),
        torch.nn.Linear(84, 10),
    )
    anchor = torch.randn(1, 3, 32, 32)
    # non-trivial BatchNorm: running statistics of a few batches of random images (as the anchor),
    # and random affine parameters
    g = torch.Generator().manual_seed(seed + 1)
    bn = model[1]
    bn.momentum = None  # cumulative average over the batches
    model.train()
    with torch.no_grad():
        for _ in range(5):
            model(torch.randn(64, 3, 32, 32, generator=g))
        bn.weight.copy_(0.5 + torch.rand(6, generator=g))
        bn.bias.copy_(0.1 * torch.randn(6, generator=g))
    bn.momentum = 0.1
    return model.eval(), anchor


def colorbar(fig: Any, ax: Any, mappable: Any, label: str) -> Any:
    """A colorbar as tall as an equal-aspect axes."""
    cax = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.08)
    return fig.colorbar(mappable, cax=cax, label=label)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the example; returns a summary: ``files``, ``num_regions``, ``verified``, ``seconds``,
    ``partition``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (default: examples/out)")
    parser.add_argument("--fast", action="store_true", help="a smaller slice (for tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pad", type=float, default=None,
                        help="half-width of the square slice, in input-space units (default 4; 1 with --fast)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: fast, and robust on a busy machine)")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        torch.set_num_threads(threads)


def run(args: argparse.Namespace) -> dict[str, Any]:
    half = args.pad if args.pad is not None else (1.0 if args.fast else 4.0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    model, anchor = random_cnn(args.seed)
    # the original's check that every layer is supported and the shapes fit
    NN = sc.wrappers.model_wrapper(model, input_shape=(3, 32, 32), dtype=torch.float64)
    print("forward and affine equivalency flag", NN.verify())

    sl = sc.Slice.from_anchors(anchor, pad=half, seed=args.seed)
    part = sc.partition(model, sl)
    t0 = time.perf_counter()
    report = part.verify(model)
    t_verify = time.perf_counter() - t0
    print(part)
    print(report)
    report.raise_if_failed()  # fail loudly: the picture would not be exact
    st = part.statistics()
    with torch.no_grad():
        anchor_class = int(model(anchor).argmax())
    a, b = part.output_affine  # logits = a[r] @ u + b[r] on region r
    pred = np.argmax(np.einsum("roi,ri->ro", a, part.centroids()) + b, axis=1)  # class of each region
    classes = np.unique(pred)
    print(f"{part.num_regions} regions in {part.seconds:.2f} s (verify {t_verify:.2f} s); anchor norm "
          f"{float(anchor.norm()):.1f}, slice {2 * half:g} x {2 * half:g}; "
          f"classes on the slice: {classes.tolist()}; "
          f"decision boundary length {st['boundary_length']:.3g} in {st['boundary_pieces']} piece(s), "
          f"crossing {st['boundary_regions']} regions")

    # ---- pictures --------------------------------------------------------------------------------
    dpi = 60 if args.fast else 90
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.6), dpi=dpi)
    art = part.plot(ax=axes[0], color_by="class", boundary=True, boundary_color="k", boundary_width=1.5,
                    linewidth=0.1)
    colors = art.regions.get_facecolors()  # one per region
    first = {int(c): int(np.flatnonzero(pred == c)[0]) for c in classes}
    axes[0].legend(handles=[Patch(color=colors[r], label=f"class {c}") for c, r in first.items()],
                   loc="upper right", fontsize=9, framealpha=0.9)
    axes[0].set_title(f"part.plot(color_by='class'): predicted class\n"
                      f"decision boundary (argmax change) in black; anchor (class {anchor_class}): star",
                      fontsize=11)
    art = part.plot(ax=axes[1], color_by="slope", boundary=True, colorbar=False, cmap="viridis",
                    linewidth=0.1, boundary_width=1.5)
    colorbar(fig, axes[1], art.regions, r"slope norm $\|A_r\|_F$ (10 logits)")
    axes[1].set_title("part.plot(color_by='slope')\ndecision boundary in red", fontsize=11)
    white = np.full((part.num_regions, 3), 0.98)
    art = part.plot(ax=axes[2], color_by=white, boundary=False, edges_by_layer=True, linewidth=0.5)
    cb = colorbar(fig, axes[2], art.edges, "ReLU layer that made the border")
    cb.set_ticks(range(len(part.layer_names)))
    cb.set_ticklabels(LAYER_LABELS[: len(part.layer_names)], rotation=90, va="center")
    axes[2].set_title("part.plot(edges_by_layer=True)\nregion borders coloured by the layer that made them",
                      fontsize=11)
    for ax in axes:
        ax.set_xlabel("$u_1$")
        ax.set_ylabel("$u_2$")
    fig.suptitle(
        f"Random CNN (2 conv + ReLU, 3 linear; input 3 x 32 x 32) on a {2 * half:g} x {2 * half:g} slice through "
        f"a random image: {part.num_regions:,} regions in {part.seconds:.1f} s (verify: "
        f"{'passed' if report else 'FAILED'})",
        fontsize=12,
        y=1.03,
    )
    fig.tight_layout()
    path = out / "visualize_cnn_random.png"
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    seconds = time.perf_counter() - t_start
    print(f"wrote {path} in {seconds:.1f} s")
    return {
        "files": [path],
        "num_regions": part.num_regions,
        "verified": bool(report),
        "seconds": seconds,
        "partition": part,
    }


if __name__ == "__main__":
    main()
