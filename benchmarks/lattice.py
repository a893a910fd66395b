"""Benchmarks on wide, redundant "lattice" networks: max-min of affine pieces written with ReLUs.

Usage::

    python benchmarks/lattice.py                          # widths 384 .. 6144 (minutes)
    python benchmarks/lattice.py --widths 384 768 1536    # a subset
    python benchmarks/lattice.py --json out.json          # also write the numbers as JSON
    python benchmarks/lattice.py --variants 16            # groups in 16 distinct orders (more regions)

A lattice network computes ``f(x) = max_g min_j (a_j . x + b_j)``, here with ``n`` affine pieces of
the 2-D input and ``n`` groups that each take the min of all ``n`` pieces, through a pairwise tree in
one of ``VARIANTS`` orders of the pieces (so whole groups are exact copies of each other). As a ReLU
network (:func:`build_lattice`):

* ``Linear(2, n)`` computes the pieces and an activation-free ``Linear(n, n * n)`` copies them into
  the groups (exact duplicate rows);
* every level of the pairwise min trees (then of the max tree over the groups) maps its values
  through one ReLU layer of three units per pair, ``relu(u), relu(-u), relu(u - v)``, and a Linear
  layer back to one value per pair: ``min(u, v) = relu(u) - relu(-u) - relu(u - v)`` (``max(u, v) =
  relu(u) - relu(-u) + relu(v - u)``); an odd value out is carried by ``relu(u) - relu(-u)``. The
  Linear layer of one level and the first of the next are consecutive affine steps.

The widest ReLU layer (the first min level) has ``3 n^2 / 2`` units. Most units duplicate others
exactly (the copied groups), the max tree compares equal values (its ``relu(v - u)`` units are
identically zero), and the region count grows with ``n`` (the pieces' pairwise comparisons).

For each width, in one process and run: the exact partition (float64, best of ``--repeats``), regions
per second, and the ``--grid`` x ``--grid`` activation-pattern grid of ``benchmarks/run.py`` (float64,
layer by layer) with the ratio grid / exact. The table ends with how the rate falls from the
narrowest to the widest network.

Examples
--------
>>> net = build_lattice(48, seed=0)
>>> [m.out_features for m in net if isinstance(m, torch.nn.Linear)][:3]
[6, 36, 54]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

import splinecam as sc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import _best, _machine, time_grid  # noqa: E402

__all__ = ["VARIANTS", "WIDTHS", "build_lattice", "lattice_function", "run_width", "main"]

#: distinct orders of the pieces among the groups (each group's min tree follows one)
VARIANTS = 2
#: default widths (widest ReLU layer, about 3 n^2 / 2 for n pieces and n groups)
WIDTHS = [384, 864, 1536, 3456, 6144, 8214]
#: the box of the slice (the input plane itself)
BOX = ((-2.0, 2.0), (-2.0, 2.0))


def _pair_level(n: int, sign: float, size: int) -> tuple[nn.Linear, nn.Linear]:
    """One level of pairwise mins (``sign = -1``) or maxes (``+1``) inside each group of ``size``
    consecutive values of ``n``: the Linear into its ReLU units and the Linear out of them (each
    group of ``size`` values becomes ``(size + 1) // 2``)."""
    groups = n // size
    pairs, odd = size // 2, size % 2
    per = 3 * pairs + 2 * odd
    outs = (size + 1) // 2
    w_in = torch.zeros(groups * per, n, dtype=torch.float64)
    w_out = torch.zeros(groups * outs, groups * per, dtype=torch.float64)
    for gi in range(groups):
        base, ub, ob = gi * size, gi * per, gi * outs
        for p in range(pairs):
            u, v, r = base + 2 * p, base + 2 * p + 1, ub + 3 * p
            w_in[r, u], w_in[r + 1, u] = 1.0, -1.0  # relu(u), relu(-u)
            w_in[r + 2, u], w_in[r + 2, v] = -sign, sign  # relu(u - v) for a min, relu(v - u) for a max
            w_out[ob + p, r], w_out[ob + p, r + 1], w_out[ob + p, r + 2] = 1.0, -1.0, sign
        if odd:
            r = ub + 3 * pairs
            w_in[r, base + size - 1], w_in[r + 1, base + size - 1] = 1.0, -1.0
            w_out[ob + pairs, r], w_out[ob + pairs, r + 1] = 1.0, -1.0
    lin_in = nn.Linear(n, groups * per, bias=False)
    lin_out = nn.Linear(groups * per, groups * outs, bias=False)
    with torch.no_grad():
        lin_in.weight.copy_(w_in)
        lin_out.weight.copy_(w_out)
    return lin_in, lin_out


def build_lattice(width: int, seed: int = 0, variants: int = VARIANTS) -> nn.Sequential:
    """The lattice network whose widest ReLU layer has about ``width`` units (see the module
    docstring), float64, eval mode.

    Examples
    --------
    >>> net = build_lattice(96)
    >>> x = torch.randn(5, 2, dtype=torch.float64)
    >>> bool(torch.allclose(net(x)[:, 0], lattice_function(net, x)))
    True
    """
    n = max(2, round(math.sqrt(2 * width / 3)))  # pieces = groups = n: widest layer 3 n^2 / 2
    g = torch.Generator().manual_seed(seed)
    first = nn.Linear(2, n)
    with torch.no_grad():
        ang = torch.rand(n, generator=g, dtype=torch.float64) * 2 * np.pi
        scale = 0.5 + torch.rand(n, 1, generator=g, dtype=torch.float64)
        first.weight.copy_(torch.stack([ang.cos(), ang.sin()], 1) * scale)
        first.bias.copy_(torch.randn(n, generator=g, dtype=torch.float64))
    orders = [torch.randperm(n, generator=g) for _ in range(variants)]
    sel = torch.stack([orders[i % variants] for i in range(n)])  # (groups, pieces)
    copy_ = nn.Linear(n, n * n, bias=False)
    with torch.no_grad():
        copy_.weight.zero_()
        copy_.weight[torch.arange(n * n), sel.reshape(-1)] = 1.0
    layers: list[nn.Module] = [first, copy_]
    m, size = n * n, n  # values, values per group
    while m > 1:
        # min levels inside the groups (values of a group are consecutive), then max levels
        if size > 1:
            lin_in, lin_out = _pair_level(m, -1.0, size)
            size = (size + 1) // 2
        else:
            lin_in, lin_out = _pair_level(m, 1.0, m)
        layers += [lin_in, nn.ReLU(), lin_out]
        m = lin_out.out_features
    net = nn.Sequential(*layers).double().eval()
    net.pieces, net.groups, net.selection = n, n, sel  # type: ignore[assignment]
    return net


def lattice_function(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``max_g min_{j in S_g} piece_j(x)`` computed directly (the check of :func:`build_lattice`)."""
    pieces = net[0](x)  # (N, pieces)
    sel = net.selection  # type: ignore[attr-defined]
    return pieces[:, sel].amin(2).amax(1)


def run_width(width: int, repeats: int, grid: int, variants: int = VARIANTS) -> dict[str, Any]:
    """Regions, exact seconds, regions/s, grid seconds and the grid ratio of one width."""
    net = build_lattice(width, variants=variants)
    sl = sc.Slice.box(*BOX)
    widest = max(m.out_features for m in net if isinstance(m, nn.Linear))
    first, best, part = _best(lambda: sc.partition(net, sl, warn_regions=None), repeats)
    _, g_best, distinct = time_grid(net, sl, grid, 1)
    return {
        "width": widest, "pieces": net.pieces, "groups": net.groups,  # type: ignore[attr-defined]
        "relu_layers": sum(isinstance(m, nn.ReLU) for m in net),
        "regions": part.num_regions, "exact_s": best, "first_s": first,
        "regions_per_s": part.num_regions / best, "grid_s": g_best, "grid_patterns": distinct,
        "grid_ratio": g_best / best,
    }


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--widths", type=int, nargs="+", default=WIDTHS)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--grid", type=int, default=512)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--variants", type=int, default=VARIANTS,
                   help="distinct orders of the pieces among the groups (default %(default)s; up to the pieces)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    print(f"# lattice networks ({args.variants} variants), {datetime.date.today()}, {_machine()}, "
          f"load {os.getloadavg()[0]:.2f}")
    print("| widest layer | pieces | groups | ReLU layers | regions | exact s | regions/s | grid s | grid / exact |")
    print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for w in args.widths:
        t0 = time.perf_counter()
        r = run_width(w, args.repeats, args.grid, args.variants)
        rows.append(r)
        print(f"| {r['width']:,} | {r['pieces']} | {r['groups']} | {r['relu_layers']} | {r['regions']:,} | "
              f"{r['exact_s']:.2f} | {r['regions_per_s']:,.0f} | {r['grid_s']:.2f} | {r['grid_ratio']:.2f} |",
              flush=True)
        del t0
    if len(rows) > 1:
        fall = rows[0]["regions_per_s"] / rows[-1]["regions_per_s"]
        print(f"\nregions/s fall {fall:.1f}x from width {rows[0]['width']:,} to {rows[-1]['width']:,}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
