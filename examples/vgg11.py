"""The exact linear regions of VGG11 (8 convolutions, 5 max-pooling layers) on a small slice through an image.

The original SplineCam paper's VGG11 row (Tiny-ImageNet: 64 x 64 colour images, 200 classes). VGG11's
feature extractor, layer for layer (``--width`` scales the channel counts; ``--bn`` adds BatchNorm2d
after each convolution, with non-trivial running statistics)::

    conv64 - M - conv128 - M - conv256 - conv256 - M - conv512 - conv512 - M - conv512 - conv512 - M
    (every conv: Conv2d 3x3, padding 1, then ReLU; M: MaxPool2d(2))

then ``Flatten -> Linear(512 * (size / 32)^2, hidden) -> ReLU -> Dropout -> Linear(hidden, hidden) -> ReLU
-> Dropout -> Linear(hidden, classes)`` (``hidden`` 4096 as in torchvision's VGG11). The network is
randomly initialised (PyTorch's default init), or with ``--train`` trained for a few Adam steps on
generated colour images (``splinecam.datasets.digit_images``: one glyph of strokes per class; no
download). Each max-pooling window is a max over 4 affine functions on a region and cuts it where its
winner changes, exactly like a ReLU.

The slice lies in the plane through three generated images A, B, C (``sc.Slice.from_anchors`` on the
three); the partition is computed on the square of half-width ``--pad`` (0.002: side 0.004) centred on
image A. The script prints the regions, the time, the time per region in float32 forward passes of
one image, the peak resident memory of the process (``resource.getrusage(...).ru_maxrss``: torch's
allocations are not seen by ``tracemalloc``; the peak is of the whole process, so it is printed
before the partition as well) and ``part.verify(model)``, then draws the regions coloured by class
with the decision boundary, and the region borders coloured by the layer that made them.

Run::

    python examples/vgg11.py                      # VGG11, 64x64, 200 classes: ~4 min on 2 cores
    python examples/vgg11.py --size 32 --classes 10 --pad 0.005  # ~2 min, about 900 regions
    python examples/vgg11.py --train              # a few training steps first
    python examples/vgg11.py --fast --out /tmp/x  # 32x32, channels / 8, a tiny slice: seconds
"""

from __future__ import annotations

import argparse
import resource
import sys
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
from splinecam.datasets import digit_images  # noqa: E402
from splinecam.training import train_classifier  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
#: VGG11's feature extractor: conv output channels, "M" for MaxPool2d(2)
VGG11_CFG: list[Any] = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


def vgg11(
    size: int = 64, classes: int = 200, width: float = 1.0, hidden: int = 4096, bn: bool = False, seed: int = 0
) -> torch.nn.Sequential:
    """VGG11 for ``3 x size x size`` inputs (``size`` a multiple of 32), in training mode.

    ``width`` scales every conv's channel count (at least 1); ``bn`` puts a BatchNorm2d after every
    conv; the classifier is ``Linear -> ReLU -> Dropout`` twice (``hidden`` units) and a Linear head.
    """
    if size % 32:
        raise SystemExit(f"--size must be a multiple of 32 (five 2x2 max-poolings), got {size}")
    torch.manual_seed(seed)
    nn = torch.nn
    layers: list[nn.Module] = []
    c_in = 3
    for v in VGG11_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        c = max(1, round(v * width))
        layers.append(nn.Conv2d(c_in, c, 3, padding=1))
        if bn:
            layers.append(nn.BatchNorm2d(c))
        layers.append(nn.ReLU())
        c_in = c
    s = size // 32
    layers += [
        nn.Flatten(),
        nn.Linear(c_in * s * s, hidden), nn.ReLU(), nn.Dropout(),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(),
        nn.Linear(hidden, classes),
    ]
    return nn.Sequential(*layers)


def layer_labels(model: torch.nn.Sequential) -> list[str]:
    """One label per nonlinearity of ``model`` (in order): conv1 ... conv8, pool1 ... pool5, fc1, fc2."""
    labels, conv, pool, fc = [], 0, 0, 0
    last = ""
    for m in model:
        if isinstance(m, torch.nn.Conv2d):
            conv += 1
            last = f"conv{conv}"
        elif isinstance(m, torch.nn.Linear):
            fc += 1
            last = f"fc{fc}"
        elif isinstance(m, torch.nn.ReLU):
            labels.append(f"{last} ReLU")
        elif isinstance(m, torch.nn.MaxPool2d):
            pool += 1
            labels.append(f"pool{pool} (max)")
    return labels


def give_bn_statistics(model: torch.nn.Sequential, images: torch.Tensor) -> None:
    """Non-trivial BatchNorm: running statistics of the images, random affine parameters."""
    g = torch.Generator().manual_seed(1)
    bns = [m for m in model if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for batch in images.split(32):
            model(batch)
        for bn in bns:
            bn.weight.copy_(0.5 + torch.rand(bn.num_features, generator=g))
            bn.bias.copy_(0.1 * torch.randn(bn.num_features, generator=g))
            bn.momentum = 0.1


def peak_rss_gib() -> float:
    """Peak resident set size of this process so far, GiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (2**30 if sys.platform == "darwin" else 2**20)


def forward_seconds(model: torch.nn.Module, x: torch.Tensor, repeats: int = 5) -> float:
    """Best time of one float32 forward pass of one image."""
    best = float("inf")
    with torch.no_grad():
        model(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            best = min(best, time.perf_counter() - t0)
    return best


def colorbar(fig: Any, ax: Any, mappable: Any, label: str) -> Any:
    """A colorbar as tall as an equal-aspect axes."""
    cax = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.08)
    return fig.colorbar(mappable, cax=cax, label=label)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the example; returns a summary: ``files``, ``num_regions``, ``verified``, ``seconds``,
    ``peak_rss_gib``, ``forward_passes_per_region``, ``partition``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (default: examples/out)")
    parser.add_argument("--fast", action="store_true",
                        help="a tiny version: 32x32 input, 10 classes, width 1/8, hidden 64, pad 0.015")
    parser.add_argument("--size", type=int, default=None, choices=(32, 64), help="input side (default 64)")
    parser.add_argument("--classes", type=int, default=None, help="number of classes (default 200)")
    parser.add_argument("--width", type=float, default=None, help="channel multiplier (default 1)")
    parser.add_argument("--hidden", type=int, default=None, help="classifier width (default 4096)")
    parser.add_argument("--bn", action="store_true", help="BatchNorm2d after every convolution")
    parser.add_argument("--pad", type=float, default=None,
                        help="half-width of the square slice around image A, input units (default 0.002)")
    parser.add_argument("--train", action="store_true", help="train for a few steps on generated images first")
    parser.add_argument("--steps", type=int, default=None, help="training steps with --train (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="device of the model and the partition (default cpu)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's default; 1 with --fast)")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    n_threads = args.threads if args.threads is not None else (1 if args.fast else None)
    if n_threads:
        torch.set_num_threads(n_threads)
    try:
        return run(args)
    finally:
        torch.set_num_threads(threads)


def run(args: argparse.Namespace) -> dict[str, Any]:
    fast = args.fast
    size = args.size or (32 if fast else 64)
    classes = args.classes or (10 if fast else 200)
    width = args.width or (0.125 if fast else 1.0)
    hidden = args.hidden or (64 if fast else 4096)
    pad = args.pad if args.pad is not None else (0.015 if fast else 0.002)
    steps = args.steps if args.steps is not None else (5 if fast else 20)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    model = vgg11(size, classes, width, hidden, args.bn, args.seed)
    n_data = max(64, 2 * classes) if args.train or args.bn else 3
    X, y = digit_images(n=n_data, num_classes=classes, size=size, channels=3, noise=0.05, seed=args.seed)
    Xt = torch.as_tensor(X)
    if args.bn:
        give_bn_statistics(model, Xt)
    what = "randomly initialised"
    if args.train:
        t0 = time.perf_counter()
        model, acc = train_classifier(model, X, y, steps=steps, lr=1e-4, batch_size=32, seed=args.seed,
                                      num_threads=None)
        what = f"trained {steps} steps ({time.perf_counter() - t0:.1f} s, training accuracy {acc:.2f})"
    model = model.eval().to(args.device)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in model)
    params = sum(p.numel() for p in model.parameters())
    print(f"VGG11{'-BN' if args.bn else ''} ({convs} conv, 5 max-pool; width x{width:g}, hidden {hidden}, "
          f"{params / 1e6:.2f} M parameters) for 3x{size}x{size} inputs, {classes} classes, {what}")

    # ---- the slice: the plane through three images, a small square around the first --------------
    images = Xt[:3]
    plane = sc.Slice.from_anchors(images, pad=pad, seed=args.seed)
    center = np.asarray(plane.anchors)[0]
    square = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    sl = sc.Slice(origin=plane.origin.reshape(plane.input_shape), basis=plane.basis,
                  domain=center + pad * square, anchors=center[None])

    t_fwd = forward_seconds(model, images[:1].to(args.device))
    rss_before = peak_rss_gib()
    part = sc.partition(model, sl)
    rss_after = peak_rss_gib()
    t0 = time.perf_counter()
    report = part.verify(model)
    t_verify = time.perf_counter() - t0
    print(part)
    print(report)
    report.raise_if_failed()  # fail loudly: the picture would not be exact
    per_region = part.seconds / part.num_regions / t_fwd
    labels = layer_labels(model)
    edges_per_layer = np.bincount(part.edge_layer[part.edge_layer >= 0], minlength=len(part.layer_names))
    print(f"{part.num_regions} regions in {part.seconds:.2f} s ({part.num_regions / part.seconds:.1f} regions/s; "
          f"verify {t_verify:.2f} s) on a {2 * pad:g} x {2 * pad:g} square around image A; one float32 forward "
          f"pass of one image takes {1e3 * t_fwd:.2f} ms, so a region costs {per_region:.1f} forward passes")
    print(f"peak resident memory of the process (ru_maxrss): {rss_before:.2f} GiB before the partition, "
          f"{rss_after:.2f} GiB after")
    print("region borders made by each nonlinearity: " + ", ".join(
        f"{lab}: {int(c)}" for lab, c in zip(labels, edges_per_layer)))

    # ---- pictures --------------------------------------------------------------------------------
    dpi = 60 if fast else 90
    fig = plt.figure(figsize=(16, 6.4), dpi=dpi)
    gs = fig.add_gridspec(3, 3, width_ratios=[0.3, 1, 1], wspace=0.3, hspace=0.25)
    for k in range(3):
        ax = fig.add_subplot(gs[k, 0])
        ax.imshow(X[k].transpose(1, 2, 0))
        ax.set_title(f"image {'ABC'[k]} (class {int(y[k])})", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    ax1 = fig.add_subplot(gs[:, 1])
    part.plot(ax=ax1, color_by="class", boundary=True, boundary_color="k", boundary_width=1.5, linewidth=0.15)
    a, b = part.output_affine
    cls = np.argmax(np.einsum("roi,ri->ro", a, part.centroids()) + b, axis=1)
    ax1.set_title(f"part.plot(color_by='class'): {len(np.unique(cls))} of {classes} classes\n"
                  "decision boundary in black; image A: star", fontsize=11)
    ax2 = fig.add_subplot(gs[:, 2])
    white = np.full((part.num_regions, 3), 0.98)
    art = part.plot(ax=ax2, color_by=white, boundary=False, edges_by_layer=True, linewidth=0.5)
    cb = colorbar(fig, ax2, art.edges, "nonlinearity that made the border")
    cb.set_ticks(range(len(part.layer_names)))
    cb.set_ticklabels(labels[: len(part.layer_names)], fontsize=8)
    ax2.set_title("part.plot(edges_by_layer=True)\nborders by the ReLU or max-pool layer that made them",
                  fontsize=11)
    for ax in (ax1, ax2):  # (part.plot labels the axes u_1, u_2 itself)
        ax.locator_params(nbins=5)
    fig.suptitle(
        f"VGG11{'-BN' if args.bn else ''} (3x{size}x{size}, {classes} classes, {what}): {part.num_regions:,} regions "
        f"in {part.seconds:.1f} s on a {2 * pad:g} x {2 * pad:g} square of the plane through images A, B, C "
        f"(verify: {'passed' if report else 'FAILED'})",
        fontsize=12, y=1.02,
    )
    path = out / "vgg11.png"
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    seconds = time.perf_counter() - t_start
    print(f"wrote {path} in {seconds:.1f} s")
    return {
        "files": [path],
        "num_regions": part.num_regions,
        "verified": bool(report),
        "seconds": seconds,
        "peak_rss_gib": rss_after,
        "forward_passes_per_region": per_region,
        "partition": part,
    }


if __name__ == "__main__":
    main()
