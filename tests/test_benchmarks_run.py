"""The end-to-end steps of ``benchmarks/run.py --million --end-to-end`` (not a timing test)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import splinecam as sc

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("run_bench", ROOT / "benchmarks" / "run.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_million_steps_record_the_boundary_and_the_plot():
    bench = load_benchmark()
    model = bench.build_mlp(8, 2, out_dim=bench.MILLION_OUTPUTS)
    part = sc.partition(model, sc.Slice.box((-2, 2), (-2, 2)))
    steps = bench._million_steps(part)
    assert [s["step"] for s in steps] == ["decision_boundary()", "plot + savefig"]
    assert steps[0]["length"] == pytest.approx(part.decision_boundary().length, rel=0, abs=0)
    assert all(s["seconds"] >= 0 and s["peak_rss_kib"] > 0 for s in steps)
