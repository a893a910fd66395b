"""The grid baseline of benchmarks/cnn_maxpool.py records real activation patterns.

Not a timing test: the patterns the benchmark's grid records (ReLU signs and max-pool winners) must
be constant on every exact region of the partition (grid points located with ``part.locate``), so
the grid never finds more patterns than there are regions.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

import splinecam as sc

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("cnn_maxpool_bench", ROOT / "benchmarks" / "cnn_maxpool.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_grid_patterns_are_constant_on_regions():
    bench = load_benchmark()
    model, sl, x = bench.make_config("lenet", pad_scale=0.3)
    assert tuple(x.shape) == (1, 1, 28, 28) and sl.input_shape == (1, 28, 28)
    part = sc.partition(model, sl)
    assert part.num_regions > 10
    lo, hi = sl.domain.min(0), sl.domain.max(0)
    n = 40
    g = (np.arange(n) + 0.5) / n
    gx, gy = np.meshgrid(lo[0] + g * (hi[0] - lo[0]), lo[1] + g * (hi[1] - lo[1]))
    u = np.stack([gx.ravel(), gy.ravel()], 1)
    with torch.no_grad():
        h = bench.grid_patterns(model.double(), sl.to_input(torch.as_tensor(u))).numpy()
    region = part.locate(u)
    assert (region >= 0).all()
    seen: dict[int, tuple[int, int]] = {}
    for r, key in zip(region.tolist(), map(tuple, h.tolist())):
        assert seen.setdefault(r, key) == key, f"two patterns in region {r}"
    patterns = {tuple(k) for k in h.tolist()}
    assert 1 < len(patterns) <= len(set(region.tolist())) <= part.num_regions


def test_time_grid_extrapolates_past_its_budget():
    bench = load_benchmark()
    model, sl, _ = bench.make_config("lenet", pad_scale=0.1)
    full = bench.time_grid(model, sl, 16, budget=60.0)
    assert not full["grid_extrapolated"] and full["grid_points_timed"] == 256 and full["grid_patterns"] >= 1
    part = bench.time_grid(model, sl, 300, budget=0.0)  # stops after the first chunk
    assert part["grid_extrapolated"] and part["grid_points_timed"] < 300 * 300 and part["grid_patterns"] is None
    assert part["grid_s"] > 0
