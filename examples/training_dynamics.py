"""Geometry during training: the linear regions of a small classifier, recorded every few steps.

A binary classifier MLP (width 10, depth 5, one logit) is trained with Adam on two concentric
circles. Every ``--every`` steps a :class:`splinecam.record.Recorder` computes the exact partition of
the input plane (on a float64 eval-mode copy; the training itself is untouched), and at the end the
snapshots become a GIF: regions coloured by the norm of their slope (one colour scale for all
frames), the decision boundary in red, the data, and a side panel with the region count and the
boundary's length over training (the original SplineCam's headline video).

It prints the overhead of recording: the time of one snapshot relative to one training step.

Run::

    python examples/training_dynamics.py                          # ~15 s on a CPU, examples/out/
    python examples/training_dynamics.py --fast --out /tmp/quick  # a few seconds
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import splinecam as sc  # noqa: E402
from splinecam.datasets import two_circles  # noqa: E402
from splinecam.record import Recorder  # noqa: E402
from splinecam.training import mlp  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "out"


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (default: examples/out)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 450; 30 with --fast)")
    parser.add_argument("--every", type=int, default=None, help="record every N steps (default 15; 10 with --fast)")
    parser.add_argument("--fps", type=float, default=5.0, help="frames per second of the GIF")
    parser.add_argument("--dpi", type=int, default=None, help="resolution of the GIF frames (default 80; 50 with --fast)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", action="store_true", help="a few steps and small frames (for tests)")
    args = parser.parse_args(argv)
    steps = args.steps if args.steps is not None else (30 if args.fast else 450)
    every = args.every if args.every is not None else (10 if args.fast else 15)
    dpi = args.dpi or (50 if args.fast else 80)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: one thread is fastest and fair to a busy machine
    try:
        return _run(args, steps, every, dpi, out)
    finally:
        torch.set_num_threads(threads)


def _run(args: argparse.Namespace, steps: int, every: int, dpi: int, out: Path) -> dict[str, object]:

    X, y = two_circles(n=512, noise=0.06, factor=0.5, seed=args.seed)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32)
    model = mlp(in_dim=2, width=10, depth=5, out_dim=1, seed=args.seed).train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(args.seed)
    rec = Recorder(sc.Slice.box(xlim=(-1.6, 1.6), ylim=(-1.6, 1.6)), every=every)

    train_seconds = 0.0
    for step in range(steps + 1):
        # record the geometry reached after `step` updates (step 0: the initialization)
        with torch.no_grad():
            acc = float(((model(Xt).reshape(-1) > 0).float() == yt).float().mean()) if step % every == 0 else 0.0
        rec(model, step, accuracy=acc)
        if step == steps:
            break
        t0 = time.perf_counter()
        idx = torch.randint(0, len(Xt), (64,), generator=gen)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(Xt[idx]).reshape(-1), yt[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        train_seconds += time.perf_counter() - t0

    per_step = train_seconds / max(steps, 1)
    per_snapshot = float(np.mean(rec.seconds))
    cols = rec.statistics()
    print(
        f"trained {steps} steps: {per_step * 1e3:.2f} ms per step; {len(rec)} snapshots: "
        f"{per_snapshot * 1e3:.1f} ms per snapshot = {per_snapshot / per_step:.0f}x one training step "
        f"(recording every {every} steps adds {100 * per_snapshot / (every * per_step):.0f}% to training)"
    )
    print(
        f"regions: {cols['num_regions'][0]} at step 0 -> {cols['num_regions'][-1]} at step {cols['step'][-1]}; "
        f"boundary length {cols['boundary_length'][0]:.2f} -> {cols['boundary_length'][-1]:.2f}; "
        f"final accuracy {cols['accuracy'][-1]:.3f}"
    )
    t0 = time.perf_counter()
    sub = np.random.default_rng(args.seed).choice(len(X), size=min(len(X), 200), replace=False)
    gif = rec.animate(
        out / "training_dynamics.gif",
        color_by="slope",
        fps=args.fps,
        boundary=True,
        dpi=dpi,
        title="step {step}: {regions} regions, accuracy {accuracy:.2f}",
        data=(X[sub], y[sub]),
        data_size=6,
        cmap="magma",
    )
    print(f"wrote {gif} ({len(rec)} frames) in {time.perf_counter() - t0:.1f} s")
    # the last snapshot is the trained model's partition: check it against the model itself
    report = rec.snapshots[-1].partition.verify(model.eval())
    if not report:
        raise RuntimeError(f"the recorded partition does not match the model:\n{report}")
    print(f"last snapshot verified against the trained model: {report.ok}")
    return {
        "per_step": per_step,
        "per_snapshot": per_snapshot,
        "ratio": per_snapshot / per_step,
        "files": [Path(gif)],
        "num_regions": int(cols["num_regions"][-1]),
        "verified": bool(report),
    }


if __name__ == "__main__":
    main()
