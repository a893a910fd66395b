"""A neural signed distance function (SDF) of a 3-D shape, and three exact slices through it.

A ReLU MLP ``(x, y, z) -> signed distance`` (3 -> 48 x 4 -> 1) is fitted to the analytic signed
distance of a torus (major radius 0.6, minor radius 0.25, around the z-axis; no download). Such a
network is a continuous piecewise-affine function of the point: space is cut into convex linear
regions, and on each the network is one affine map, so its zero level set (the learnt surface) is
made of flat facets. Three axis-aligned 2-D slices through the shape are given as general
:class:`splinecam.Slice` objects (an origin and two basis vectors in R^3); on each, the exact
partition (:func:`splinecam.partition`, checked with :meth:`~splinecam.Partition.verify`) and the exact
zero level set (``part.level_set(output=0, value=0.0)``: straight segments, one per region it
crosses) are drawn, next to the shape's true signed distance and true zero contour on the same slice:

1. the torus and the three slice planes (3-D view);
2. top row: each slice's linear regions, coloured by the network's value at their centroid, and the
   network's exact zero level set (black);
3. bottom row: the true signed distance on the slice, its zero contour (black), and the network's
   level set again (dashed), to compare.

Run::

    python examples/neural_sdf.py                      # under a minute on a CPU (mostly training)
    python examples/neural_sdf.py --fast --out /tmp/x  # a few seconds (small network, few steps)
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
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # noqa: E402

import splinecam as sc  # noqa: E402
from splinecam.training import mlp  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
#: the torus: major radius (centre of the tube) and minor radius (the tube), around the z-axis
MAJOR, MINOR = 0.6, 0.25
#: half-width of the cube the network is fitted on and of the slices' square domains
HALF = 1.0
#: the three slices: (name, origin in R^3, basis (3, 2): the directions of u_1 and u_2, axis labels)
SLICES = [
    ("z = 0 (through the hole)", [0.0, 0.0, 0.0], [[1, 0], [0, 1], [0, 0]], ("$x$", "$y$")),
    ("y = 0 (across the tube)", [0.0, 0.0, 0.0], [[1, 0], [0, 0], [0, 1]], ("$x$", "$z$")),
    ("x = 0.45 (grazing the tube)", [0.45, 0.0, 0.0], [[0, 0], [1, 0], [0, 1]], ("$y$", "$z$")),
]


def torus_sdf(p: np.ndarray) -> np.ndarray:
    """Exact signed distance to the torus (negative inside), for points ``(N, 3)``."""
    q = np.stack([np.hypot(p[:, 0], p[:, 1]) - MAJOR, p[:, 2]], 1)
    return np.hypot(q[:, 0], q[:, 1]) - MINOR


def training_points(n: int, seed: int) -> np.ndarray:
    """Half uniform in the cube, half near the surface (where the level set has to be right)."""
    rng = np.random.default_rng(seed)
    uniform = rng.uniform(-HALF, HALF, size=(n - n // 2, 3))
    phi = rng.uniform(0, 2 * np.pi, n // 2)
    theta = rng.uniform(0, 2 * np.pi, n // 2)
    rad = MINOR + rng.normal(0.0, 0.08, n // 2)
    ring = MAJOR + rad * np.cos(theta)
    near = np.stack([ring * np.cos(phi), ring * np.sin(phi), rad * np.sin(theta)], 1)
    return np.concatenate([uniform, near]).astype(np.float32)


def fit(model: torch.nn.Module, steps: int, n: int, seed: int) -> float:
    """Full-batch Adam with a cosine schedule on the L1 error of the signed distance; returns the
    mean absolute error on fresh points."""
    torch.manual_seed(seed)
    x = torch.as_tensor(training_points(n, seed))
    t = torch.as_tensor(torus_sdf(x.numpy().astype(np.float64)), dtype=torch.float32)[:, None]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    for _ in range(steps):
        loss = (model(x) - t).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    test = training_points(4096, seed + 1)
    with torch.no_grad():
        pred = model(torch.as_tensor(test)).numpy()[:, 0]
    return float(np.abs(pred - torus_sdf(test.astype(np.float64))).mean())


def make_slice(origin: list[float], basis: list[list[float]]) -> sc.Slice:
    """A square slice ``x = origin + basis @ u``, ``u`` in ``[-HALF, HALF]^2``."""
    dom = [[-HALF, -HALF], [HALF, -HALF], [HALF, HALF], [-HALF, HALF]]
    return sc.Slice(origin=np.asarray(origin), basis=np.asarray(basis, dtype=np.float64), domain=dom)


def draw_shape(ax: Any) -> None:
    """The torus surface and the three slice planes."""
    phi, theta = np.meshgrid(np.linspace(0, 2 * np.pi, 48), np.linspace(0, 2 * np.pi, 24))
    ring = MAJOR + MINOR * np.cos(theta)
    ax.plot_surface(ring * np.cos(phi), ring * np.sin(phi), MINOR * np.sin(theta), color="0.75",
                    edgecolor="0.45", linewidth=0.2, alpha=0.9, shade=True)
    corners = np.array([[-HALF, -HALF], [HALF, -HALF], [HALF, HALF], [-HALF, HALF]])
    for i, (_name, origin, basis, _labels) in enumerate(SLICES):
        quad = np.asarray(origin) + corners @ np.asarray(basis, dtype=np.float64).T
        ax.add_collection3d(Poly3DCollection([quad], facecolors=f"C{i}", edgecolors=f"C{i}", alpha=0.18,
                                             linewidths=1.2))
        ax.text(*(quad[2] + 0.05), f"{i + 1}", color=f"C{i}", fontsize=12, weight="bold")
    ax.set_xlim(-HALF, HALF)
    ax.set_ylim(-HALF, HALF)
    ax.set_zlim(-HALF, HALF)
    ax.set_box_aspect((1, 1, 1))
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.set_ticks([-HALF, 0.0, HALF])
    ax.set_xlabel("$x$")
    ax.set_ylabel("$y$")
    ax.set_zlabel("$z$")
    ax.view_init(elev=28, azim=-60)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the example; returns a summary: ``files``, ``num_regions`` (per slice), ``verified``,
    ``seconds``, ``mae``, ``level_set_residual``, ``level_set_distance``, ``partitions``, ``model``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (default: examples/out)")
    parser.add_argument("--fast", action="store_true", help="a small network, few steps (for tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 1500; 300 with --fast)")
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
    width, depth, n = (24, 3, 2048) if args.fast else (48, 4, 4096)
    steps = args.steps if args.steps is not None else (300 if args.fast else 1500)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    model = mlp(in_dim=3, width=width, depth=depth, out_dim=1, seed=args.seed)
    t0 = time.perf_counter()
    mae = fit(model, steps=steps, n=n, seed=args.seed)
    print(f"fitted a {width} x {depth} ReLU MLP to the torus's signed distance in {steps} steps, "
          f"{time.perf_counter() - t0:.1f} s: mean |error| {mae:.3f}")

    parts, level_sets, verified = [], [], True
    residual, distance = 0.0, 0.0
    for name, origin, basis, _labels in SLICES:
        sl = make_slice(origin, basis)
        part = sc.partition(model, sl)
        report = part.verify(model)
        report.raise_if_failed()  # fail loudly: the picture would not be exact
        verified &= bool(report)
        ls = part.level_set(output=0, value=0.0)
        # the level set is exact: the real network is zero on it (up to its float32 rounding) ...
        if ls.length > 0:
            _, x = ls.sample(500, seed=0)
            with torch.no_grad():
                f = model(torch.as_tensor(x, dtype=torch.float32)).numpy()[:, 0]
            residual = max(residual, float(np.abs(f).max()))
            # ... and close to the true surface when the network is a good fit
            distance = max(distance, float(np.abs(torus_sdf(x)).mean()))
        print(f"slice {name}: {part.num_regions} regions in {part.seconds:.2f} s, zero level set of length "
              f"{ls.length:.3f} in {ls.num_polylines} polylines ({int(ls.closed.sum())} closed)")
        parts.append(part)
        level_sets.append(ls)
    print(f"on the level sets: max |network| {residual:.1g} (float32 network), mean |true distance| {distance:.3f}")

    # ---- pictures --------------------------------------------------------------------------------
    dpi = 60 if args.fast else 90
    fig = plt.figure(figsize=(19, 9.2), dpi=dpi)
    gs = fig.add_gridspec(2, 4, width_ratios=[1.25, 1, 1, 1], wspace=0.28, hspace=0.22)
    draw_shape(fig.add_subplot(gs[:, 0], projection="3d"))
    fig.axes[0].set_title(f"the torus (R = {MAJOR}, r = {MINOR})\nand the three slices", fontsize=11)
    # one colour scale for the network's values and the true distances
    vlim = 0.6
    norm = matplotlib.colors.TwoSlopeNorm(vmin=-0.3, vcenter=0.0, vmax=vlim)
    grid = np.linspace(-HALF, HALF, 241)
    gu, gv = np.meshgrid(grid, grid)
    uv = np.stack([gu.ravel(), gv.ravel()], 1)
    level_style = {"colors": "k", "linewidths": 2.0, "zorder": 4}
    for i, ((name, _origin, _basis, labels), part, ls) in enumerate(zip(SLICES, parts, level_sets)):
        top = fig.add_subplot(gs[0, i + 1])
        value = part.evaluate(part.centroids())[:, 0]
        art = part.plot(ax=top, color_by=value, boundary=False, cmap="RdBu", colorbar=False, linewidth=0.25,
                        axis_labels=labels)
        art.regions.set_norm(norm)
        top.add_collection(LineCollection(ls.segments, **level_style))
        top.set_title(f"{i + 1}. slice {name}\n{part.num_regions:,} linear regions", fontsize=10, color=f"C{i}")
        bottom = fig.add_subplot(gs[1, i + 1])
        true = torus_sdf(part.slice.to_input(uv)).reshape(gu.shape)
        im = bottom.imshow(true, origin="lower", extent=(-HALF, HALF, -HALF, HALF), cmap="RdBu", norm=norm)
        bottom.contour(gu, gv, true, levels=[0.0], colors="k", linewidths=2.0)
        bottom.add_collection(LineCollection(ls.segments, colors="gold", linewidths=1.6, linestyles="--",
                                             zorder=4))
        bottom.set_aspect("equal")
        bottom.set_xlabel(labels[0])
        bottom.set_ylabel(labels[1])
        bottom.set_title("the true signed distance", fontsize=10)
    handles = [
        Line2D([], [], color="k", linewidth=2.0, label="network's exact zero level set (top) / true surface (bottom)"),
        Line2D([], [], color="gold", linewidth=1.6, linestyle="--", label="network's zero level set (bottom)"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=10, frameon=False, bbox_to_anchor=(0.6, 0.0))
    cb = fig.colorbar(im, ax=fig.axes[1:], shrink=0.8, pad=0.02, extend="both")
    cb.set_label("signed distance (network: value at the region's centroid)")
    fig.suptitle(
        f"Neural SDF: ReLU MLP 3 -> {' -> '.join([str(width)] * depth)} -> 1 fitted to a torus "
        f"(mean |error| {mae:.3f}; verify: {'passed' if verified else 'FAILED'})",
        fontsize=13,
    )
    path = out / "neural_sdf.png"
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    seconds = time.perf_counter() - t_start
    print(f"wrote {path} in {seconds:.1f} s")
    return {
        "files": [path],
        "num_regions": {name: p.num_regions for (name, *_), p in zip(SLICES, parts)},
        "verified": verified,
        "seconds": seconds,
        "mae": mae,
        "level_set_residual": residual,
        "level_set_distance": distance,
        "level_sets": level_sets,
        "partitions": parts,
        "model": model,
    }


if __name__ == "__main__":
    main()
