"""The linear regions of a deep random MLP on a 2-D slice through one input point.

The original SplineCam toolbox's ``examples/visualize_mlp_random.py``, layer for layer: a randomly
initialized MLP with 10-D input, 10 hidden layers of width 20 + layer index (21, 22, ..., 30, the
original's ``width + offset``) with LeakyReLU(0.03), BatchNorm1d after every hidden Linear but the
first, and one output. Its BatchNorm layers are given non-trivial affine parameters and running
statistics (a few forward passes in training mode on shifted, scaled random data), then the model is
put in eval mode.

The partition of a square slice centred on a random input is computed twice, and the two agree:

* with the original toolbox's names (``sc.utils.get_square_slice_from_one_anchor``,
  ``sc.utils.get_proj_mat``, ``sc.wrappers.model_wrapper``, ``sc.compute.get_partitions_with_db``,
  ``sc.plot.plot_partition``), drawn with random colours as the original did;
* with the new API (``sc.Slice.from_anchors``, ``sc.partition``, ``part.plot``), drawn by slope norm
  with the decision boundary ``f = 0``, and by the layer whose neuron made each region border, and
  checked against the model with ``part.verify(model)``.

Run::

    python examples/visualize_mlp_random.py                      # a few seconds on a CPU
    python examples/visualize_mlp_random.py --fast --out /tmp/x  # a shallower network, smaller slice
"""

from __future__ import annotations

import argparse
import math
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

DEFAULT_OUT = Path(__file__).resolve().parent / "out"


def random_mlp(in_dim: int = 10, width: int = 20, depth: int = 10, seed: int = 0) -> torch.nn.Sequential:
    """The original's random MLP, in eval mode with non-trivial BatchNorm statistics.

    ``Linear(in_dim, width + 1), LeakyReLU(0.03)``, then ``depth - 1`` blocks
    ``Linear(width + i, width + i + 1), BatchNorm1d, LeakyReLU(0.03)``, then ``Linear(width + depth, 1)``.
    """
    torch.manual_seed(seed)
    act = torch.nn.LeakyReLU(0.03)
    layers: list[torch.nn.Module] = [torch.nn.Linear(in_dim, width + 1), act]
    offset = 1
    for _ in range(depth - 1):
        layers += [torch.nn.Linear(width + offset, width + offset + 1), torch.nn.BatchNorm1d(width + offset + 1), act]
        offset += 1
    layers.append(torch.nn.Linear(width + offset, 1))
    model = torch.nn.Sequential(*layers)
    # non-trivial BatchNorm: random affine parameters and running statistics from a few batches
    model.train()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
        for _ in range(20):
            model(1.5 * torch.randn(256, in_dim) + 0.3)
    return model.eval()


def colorbar(fig: Any, ax: Any, mappable: Any, label: str) -> Any:
    """A colorbar as tall as an equal-aspect axes."""
    cax = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.08)
    return fig.colorbar(mappable, cax=cax, label=label)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the example; returns a summary: ``files``, ``num_regions``, ``verified``, ``seconds``,
    ``partition``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (default: examples/out)")
    parser.add_argument("--fast", action="store_true", help="a shallower network and a smaller slice (for tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pad", type=float, default=None,
                        help="half-width of the square slice (default 2; 0.5 with --fast)")
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
    depth = 4 if args.fast else 10
    half = args.pad if args.pad is not None else (0.5 if args.fast else 2.0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    model = random_mlp(in_dim=10, width=20, depth=depth, seed=args.seed)
    anchor = torch.randn(1, 10)

    # ---- the original toolbox's names ------------------------------------------------------------
    # a square around the anchor whose corners are pad_dist away (half-width pad_dist / sqrt(2))
    domain = sc.utils.get_square_slice_from_one_anchor(anchor, pad_dist=half * math.sqrt(2), seed=args.seed)
    T = sc.utils.get_proj_mat(domain)  # (10, 3): x = T[:, :2] @ u + T[:, 2]
    NN = sc.wrappers.model_wrapper(model, input_shape=(10,), T=T, dtype=torch.float64)
    print("forward and affine equivalency flag", NN.verify())
    t0 = time.perf_counter()
    regions, db, Abw = sc.compute.get_partitions_with_db(domain, T, NN)
    t_orig = time.perf_counter() - t0
    print(f"original API: {len(regions)} regions, {len(db)} boundary segments, Abw {tuple(Abw.shape)}, "
          f"{t_orig:.2f} s")

    # ---- the new API: the same slice -------------------------------------------------------------
    sl = sc.Slice.from_anchors(anchor, pad=half, seed=args.seed)
    part = sc.partition(model, sl)
    t0 = time.perf_counter()
    report = part.verify(model)
    t_verify = time.perf_counter() - t0
    print(part)
    print(report)
    report.raise_if_failed()  # fail loudly: the picture would not be exact
    if part.num_regions != len(regions):
        raise RuntimeError(f"the two APIs disagree: {part.num_regions} != {len(regions)} regions")
    st = part.statistics()
    # a random network's output rarely crosses 0 on a small slice: draw the level set through the anchor
    with torch.no_grad():
        level = float(model(anchor.to(torch.float32)).reshape(-1)[0])
    contour = part.level_set(output=0, value=level)
    print(f"new API: {part.num_regions} regions in {part.seconds:.2f} s (verify {t_verify:.2f} s); "
          f"mean area {st['area_mean']:.3g}; decision boundary f = 0: length {st['boundary_length']:.3g}; "
          f"level set f = f(anchor) = {level:.4g}: length {contour.length:.3g} in {contour.num_components} piece(s)")

    # ---- pictures --------------------------------------------------------------------------------
    dpi = 60 if args.fast else 90
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.6), dpi=dpi)
    lim = [-half, half]
    sc.plot.plot_partition(regions, ax=axes[0], xlims=lim, ylims=lim, color_range=[0.4, 0.8])
    axes[0].set_title(f"original API: sc.plot.plot_partition(regions)\n{len(regions):,} regions, random colours",
                      fontsize=11)
    art = part.plot(ax=axes[1], color_by="slope", boundary=True, threshold=level, colorbar=False, cmap="viridis",
                    linewidth=0.15)
    colorbar(fig, axes[1], art.regions, r"slope norm $\|A_r\|_F$")
    axes[1].set_title("new API: part.plot(color_by='slope', threshold=f(anchor))\n"
                      "red: the level set f(x) = f(anchor); star: the anchor", fontsize=11)
    white = np.full((part.num_regions, 3), 0.98)
    art = part.plot(ax=axes[2], color_by=white, boundary=False, edges_by_layer=True, linewidth=0.6)
    cb = colorbar(fig, axes[2], art.edges, "hidden layer whose neuron made the border")
    cb.set_ticks(range(len(part.layer_names)))
    cb.set_ticklabels([str(i + 1) for i in range(len(part.layer_names))])
    axes[2].set_title("part.plot(edges_by_layer=True)\nregion borders coloured by the layer that made them",
                      fontsize=11)
    for ax in axes[1:]:
        ax.set_xlabel("$u_1$")
        ax.set_ylabel("$u_2$")
    widths = " -> ".join(str(20 + i) for i in range(1, depth + 1))
    fig.suptitle(
        f"Random MLP 10 -> {widths} -> 1 (BatchNorm1d, LeakyReLU(0.03)) on a {2 * half:g} x {2 * half:g} "
        f"slice through a random input: {part.num_regions:,} regions (verify: {'passed' if report else 'FAILED'})",
        fontsize=12,
        y=1.03,
    )
    fig.tight_layout()
    path = out / "visualize_mlp_random.png"
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
