"""The lattice networks of benchmarks/lattice.py compute their max-min function, and partition exactly.

Not a timing test. These networks are the redundant extreme: whole groups of units are exact copies
of each other and the max tree's ``relu(v - u)`` units are identically zero, so the partition must
still have one region per activation pattern and pass ``verify``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import splinecam as sc

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("lattice_bench", ROOT / "benchmarks" / "lattice.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("width,seed", [(24, 0), (96, 1), (150, 2)])
def test_lattice_network_is_its_max_min_and_partitions_exactly(width, seed):
    bench = load_benchmark()
    net = bench.build_lattice(width, seed=seed)
    x = torch.rand(2000, 2, dtype=torch.float64) * 4 - 2
    assert torch.allclose(net(x)[:, 0], bench.lattice_function(net, x), atol=1e-12)
    part = sc.partition(net, sc.Slice.box(*bench.BOX))
    report = part.verify(net)
    assert bool(report), report
    # duplicates carry the same codes: units of the first ReLU layer that are copies of each other
    first = part.codes[0]
    w = [m for m in net if isinstance(m, torch.nn.Linear)]
    rows = (w[2].weight @ w[1].weight @ torch.cat([w[0].weight, w[0].bias[:, None]], 1)).detach()
    _, inv = torch.unique(rows, dim=0, return_inverse=True)
    inv = inv.numpy()
    for g in np.unique(inv):
        members = np.flatnonzero(inv == g)
        assert (first[:, members] == first[:, members[:1]]).all()


def test_the_benchmark_prints_a_table(capsys):
    bench = load_benchmark()
    rows = bench.main(["--widths", "24", "96", "--grid", "32"])
    assert [r["regions"] > 1 for r in rows] == [True, True]
    assert "regions/s fall" in capsys.readouterr().out
