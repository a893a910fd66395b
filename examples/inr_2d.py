"""An implicit neural representation (INR) of an image, and its exact linear regions.

A ReLU MLP ``(x, y) -> grey level`` (2 -> 64 x 5 -> 1, 320 ReLU units) is fitted to a 64 x 64 grey-scale
photograph of Grace Hopper that ships with matplotlib (``matplotlib.cbook.get_sample_data``, no
download). Such a network is a continuous piecewise-affine function of the pixel coordinates: the
image it renders is made of pieces, one per linear region, on each of which the grey level is an
affine ramp (a plane over the region). The exact partition of the image square is computed with
:func:`splinecam.partition`, checked with :meth:`~splinecam.Partition.verify`, and drawn next to
the image:

1. the 64 x 64 training image;
2. the network's rendering at 256 x 256 from the partition's exact affine maps
   (:func:`splinecam.plot_image`), i.e. without running the network;
3. the exact partition, one random colour per region;
4. a zoom on the cap: the partition of a small window (computed exactly on that window) drawn over
   the rendering, so the polygons that make up the picture are visible.

Run::

    python examples/inr_2d.py                      # under a minute on a CPU (mostly training)
    python examples/inr_2d.py --fast --out /tmp/x  # a few seconds (small image and network)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.cbook as cbook  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from PIL import Image  # noqa: E402

import splinecam as sc  # noqa: E402
from splinecam.training import mlp  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
#: the face, a square crop (left, top, right, bottom) of the 512 x 600 photograph
CROP = (56, 10, 456, 410)
#: the zoom window (on the cap's badge and brim), in image coordinates [-1, 1]^2 (y up)
ZOOM = ((-0.25, 0.25), (0.4, 0.9))


def load_image(res: int) -> np.ndarray:
    """The grey-scale face, ``res x res``, values in [0, 1], row 0 at the top."""
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with Image.open(path) as im:
        grey = im.convert("L").crop(CROP).resize((res, res), Image.LANCZOS)
    return np.asarray(grey, dtype=np.float32) / 255.0


def pixel_coordinates(res: int) -> np.ndarray:
    """Pixel centres in [-1, 1]^2, ``(res * res, 2)``, row-major from the top row (y up)."""
    c = (np.arange(res) + 0.5) / res * 2 - 1
    x, y = np.meshgrid(c, -c)
    return np.stack([x.ravel(), y.ravel()], 1).astype(np.float32)


def fit(model: torch.nn.Module, u: np.ndarray, target: np.ndarray, steps: int, lr: float, seed: int) -> float:
    """Full-batch Adam with a cosine learning-rate schedule on the squared error; returns the final MSE."""
    torch.manual_seed(seed)
    x = torch.as_tensor(u)
    t = torch.as_tensor(target.reshape(-1, 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    for _ in range(steps):
        loss = torch.nn.functional.mse_loss(model(x), t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        return float(torch.nn.functional.mse_loss(model(x), t))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the example; returns a summary: ``files``, ``num_regions``, ``verified``, ``seconds``,
    ``psnr``, ``partition``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (default: examples/out)")
    parser.add_argument("--fast", action="store_true", help="a small image and network, few steps (for tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 3000; 150 with --fast)")
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
    res, width, depth = (24, 16, 3) if args.fast else (64, 64, 5)
    steps = args.steps if args.steps is not None else (150 if args.fast else 3000)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    img = load_image(res)
    u = pixel_coordinates(res)
    model = mlp(in_dim=2, width=width, depth=depth, out_dim=1, seed=args.seed)
    t0 = time.perf_counter()
    mse = fit(model, u, img, steps=steps, lr=5e-3, seed=args.seed)
    t_train = time.perf_counter() - t0
    psnr = -10 * np.log10(mse)
    print(f"fitted a {width} x {depth} ReLU MLP to a {res} x {res} image in {steps} steps, {t_train:.1f} s: "
          f"PSNR {psnr:.1f} dB")

    part = sc.partition(model, sc.Slice.box(xlim=(-1, 1), ylim=(-1, 1)))
    t0 = time.perf_counter()
    report = part.verify(model)
    t_verify = time.perf_counter() - t0
    print(part)
    print(report)
    report.raise_if_failed()  # fail loudly: the picture would not be exact
    # the partition's affine maps reproduce the network at the pixel centres
    render_err = float(np.abs(part.evaluate(u)[:, 0] - model(torch.as_tensor(u)).detach().numpy()[:, 0]).max())
    (zx0, zx1), (zy0, zy1) = ZOOM
    zoom = sc.partition(model, sc.Slice.box(xlim=(zx0, zx1), ylim=(zy0, zy1)))
    zoom.verify(model).raise_if_failed()
    print(f"{part.num_regions} regions in {part.seconds:.2f} s (verify {t_verify:.2f} s), "
          f"mean area {4 / part.num_regions:.2g} = {4 / part.num_regions / (2 / res) ** 2:.2f} pixels; "
          f"max |rendering - network| at the pixels {render_err:.1g} (float32 network); zoom: {zoom.num_regions} regions")

    # ---- pictures --------------------------------------------------------------------------------
    dpi = 60 if args.fast else 90
    fig, axes = plt.subplots(1, 4, figsize=(20, 5.6), dpi=dpi)
    axes[0].imshow(img, cmap="gray", vmin=0, vmax=1, extent=(-1, 1, -1, 1), interpolation="nearest")
    axes[0].set_title(f"training image ({res} x {res} pixels)", fontsize=11)
    sc.plot_image(part, ax=axes[1], resolution=256, vmin=0, vmax=1)
    axes[1].set_title(f"the network's rendering (256 x 256)\nfrom the exact affine maps, PSNR {psnr:.1f} dB",
                      fontsize=11)
    part.plot(ax=axes[2], color_by="random", boundary=False, linewidth=0, seed=args.seed)
    axes[2].set_title(f"exact partition: {part.num_regions:,} linear regions\n(random colours)", fontsize=11)
    sc.plot_image(zoom, ax=axes[3], resolution=400, vmin=0, vmax=1, edges=True, edgecolor="tab:red",
                  linewidth=0.4)
    axes[3].set_title(f"zoom on the cap: the rendering and the borders\nof its {zoom.num_regions:,} regions "
                      "(computed on the window)", fontsize=11)
    for ax, ec in zip(axes[:3], ["tab:red", "tab:red", "k"]):
        ax.add_patch(Rectangle((zx0, zy0), zx1 - zx0, zy1 - zy0, fill=False, ec=ec, lw=1.5))
    for ax in axes:
        ax.set_xlabel("$x$")
        ax.set_ylabel("$y$")
    fig.suptitle(
        f"Implicit neural representation: ReLU MLP 2 -> {' -> '.join([str(width)] * depth)} -> 1 fitted to an "
        f"image (verify: {'passed' if report else 'FAILED'})",
        fontsize=12,
        y=1.02,
    )
    fig.tight_layout()
    path = out / "inr_2d.png"
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    seconds = time.perf_counter() - t_start
    print(f"wrote {path} in {seconds:.1f} s")
    return {
        "files": [path],
        "num_regions": part.num_regions,
        "verified": bool(report),
        "seconds": seconds,
        "psnr": psnr,
        "partition": part,
    }


if __name__ == "__main__":
    main()
