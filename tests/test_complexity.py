"""``sc.local_complexity``: per-point summaries of the exact partitions of small slices, checked
against ``sc.partition`` of each slice and against the real torch model (class constant in the disc
up to the boundary distance, classes differing across the nearest boundary point, slope norm from
finite differences of the model)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

import splinecam as sc


def _argmax(model: nn.Module, slc: sc.Slice, u: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        y = model.double()(torch.as_tensor(slc.to_input(u), dtype=torch.float64)).reshape(len(u), -1).numpy()
    return (y[:, 0] > 0).astype(int) if y.shape[1] == 1 else y.argmax(1)


@pytest.mark.parametrize("outputs", [1, 3])
def test_rows_match_the_partitions_and_the_model(outputs, make_mlp):
    model = make_mlp(4, (2, 24, 24, outputs)).double()
    with torch.no_grad():  # the boundary through the origin (one output: its zero level set)
        y0 = model(torch.zeros(1, 2, dtype=torch.float64))[0]
        model[-1].bias -= y0 - (y0.mean() if outputs > 1 else 0)
    X = np.random.default_rng(1).uniform(-2, 2, size=(40, 2))
    pad = 0.6
    t = sc.local_complexity(model, X, pad=pad, seed=5)
    assert len(t) == 40 and t.pad == pad and t.seed == 5
    assert t["num_regions"].dtype == np.int64
    rng = np.random.default_rng(0)
    crossed = 0
    for i, x in enumerate(X):
        slc = sc.Slice.from_anchors(x[None], pad=pad, seed=5 + i)
        part = sc.partition(model, slc)
        assert t["num_regions"][i] == part.num_regions
        assert t["density"][i] == pytest.approx(part.num_regions / (2 * pad) ** 2)
        db = part.decision_boundary()
        assert t["boundary_length"][i] == pytest.approx(db.length, rel=1e-9, abs=1e-12)
        u0 = slc.to_slice(x[None])[0]
        np.testing.assert_allclose(u0, 0.0, atol=1e-12)
        d = t["boundary_distance"][i]
        # the real model keeps the point's class in the disc of radius d (inside the square)
        r = min(0.999 * d, 2 * pad)
        ang = rng.uniform(0, 2 * np.pi, 400)
        disc = np.stack([np.cos(ang), np.sin(ang)], 1) * (r * np.sqrt(rng.uniform(0, 1, 400)))[:, None]
        disc = disc[(np.abs(slc.domain).max() >= np.abs(disc).max(1))]
        c0 = _argmax(model, slc, u0[None])[0]
        assert (_argmax(model, slc, disc) == c0).all()
        if np.isfinite(d):
            crossed += 1
            assert 0 <= d <= np.sqrt(2) * pad + 1e-9
            # the nearest boundary point: the class changes across it
            p, q = db.segments[:, 0], db.segments[:, 1]
            e = q - p
            s = np.clip(((u0 - p) * e).sum(1) / (e * e).sum(1), 0, 1)
            near = p + s[:, None] * e
            k = int(np.argmin(np.hypot(*(near - u0).T)))
            assert np.hypot(*(near[k] - u0)) == pytest.approx(d, rel=1e-12, abs=1e-12)
            nrm = np.array([e[k, 1], -e[k, 0]]) / np.hypot(*e[k])
            sides = _argmax(model, slc, np.stack([near[k] + 1e-6 * nrm, near[k] - 1e-6 * nrm]))
            assert sides[0] != sides[1]
        else:
            assert t["boundary_length"][i] == 0 and db.num_segments == 0
        # the slope norm: the real model's slope along the slice at the point (finite differences)
        h = 1e-6
        with torch.no_grad():
            pts = torch.as_tensor(slc.to_input(np.array([[h, 0], [-h, 0], [0, h], [0, -h]])))
            y = model(pts).reshape(4, -1).numpy()
        jac = np.stack([(y[0] - y[1]) / (2 * h), (y[2] - y[3]) / (2 * h)], 1)
        assert t["slope_norm"][i] == pytest.approx(np.linalg.norm(jac), rel=1e-6)
    assert 0 < crossed < 40  # both cases were met


def test_no_boundary_anywhere_gives_inf_distance(make_mlp):
    model = make_mlp(0, (2, 8, 2)).double()
    with torch.no_grad():
        model[-1].bias.copy_(torch.tensor([1e3, -1e3], dtype=torch.float64))  # class 0 everywhere
    t = sc.local_complexity(model, np.zeros((3, 2)), pad=1.0)
    assert np.isinf(t["boundary_distance"]).all() and (t["boundary_length"] == 0).all()


def test_any_input_shape_and_tensors(make_cnn):
    model, shape = make_cnn(0, "strided")
    X = torch.randn(3, *shape, generator=torch.Generator().manual_seed(0))
    t = sc.local_complexity(model, X, pad=0.3, seed=None)
    assert len(t) == 3 and (t["num_regions"] >= 1).all() and np.isfinite(t["slope_norm"]).all()
    t0 = sc.local_complexity(model, X, pad=0.3, seed=0)
    for i in range(3):
        part = sc.partition(model, sc.Slice.from_anchors(X[i][None], pad=0.3, seed=i))
        assert t0["num_regions"][i] == part.num_regions


def test_table_object(make_mlp):
    t = sc.local_complexity(make_mlp(0, (2, 8, 2)), np.zeros((2, 2)), pad=0.5)
    assert t.columns == ("num_regions", "density", "boundary_length", "boundary_distance", "slope_norm")
    assert set(t.to_dict()) == set(t.columns)
    assert "2 points" in repr(t) and "num_regions" in repr(t)
    assert t.summary()["num_regions"]["median"] == float(np.median(t["num_regions"]))
    with pytest.raises(KeyError, match="no column 'regions'"):
        t["regions"]
    assert isinstance(t, sc.LocalComplexity) and "LocalComplexity" in sc.__all__
    assert "local_complexity" in sc.__all__


def test_to_pandas(make_mlp, monkeypatch):
    t = sc.local_complexity(make_mlp(0, (2, 8, 2)), np.zeros((2, 2)), pad=0.5)
    try:
        import pandas  # noqa: F401
    except ImportError:
        pass
    else:
        df = t.to_pandas()
        assert list(df.columns) == list(t.columns) and len(df) == 2
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        t.to_pandas()


def test_bad_input(make_mlp):
    model = make_mlp(0, (2, 8, 2))
    with pytest.raises(ValueError, match="pad must be a positive"):
        sc.local_complexity(model, np.zeros((2, 2)), pad=0)
    with pytest.raises(ValueError, match="pad must be a positive"):
        sc.local_complexity(model, np.zeros((2, 2)), pad=float("inf"))
    with pytest.raises(ValueError, match=r"shape \(N, \*input_shape\)"):
        sc.local_complexity(model, np.zeros(2), pad=1.0)
    with pytest.raises(ValueError, match="seed must be an int"):
        sc.local_complexity(model, np.zeros((2, 2)), pad=1.0, seed=1.5)
    with pytest.raises(sc.SliceError, match="does not fit the model"):
        sc.local_complexity(model, np.zeros((2, 3)), pad=1.0)
    assert len(sc.local_complexity(model, np.zeros((0, 2)), pad=1.0)) == 0
