"""Tests of the generated toy data sets in :mod:`splinecam.datasets`."""

from __future__ import annotations

import numpy as np
import pytest

from splinecam.datasets import two_blobs, two_circles, two_moons

GENERATORS = [two_moons, two_circles, two_blobs]


@pytest.mark.parametrize("gen", GENERATORS)
@pytest.mark.parametrize("n", [2, 7, 100, 513])
def test_shapes_dtypes_and_balance(gen, n):
    X, y = gen(n=n, seed=0)
    assert X.shape == (n, 2) and X.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int64
    assert set(np.unique(y).tolist()) == {0, 1}
    assert int((y == 0).sum()) == n // 2 and int((y == 1).sum()) == n - n // 2
    assert np.isfinite(X).all()


@pytest.mark.parametrize("gen", GENERATORS)
def test_deterministic_given_seed(gen):
    X1, y1 = gen(n=64, seed=5)
    X2, y2 = gen(n=64, seed=5)
    X3, _ = gen(n=64, seed=6)
    assert np.array_equal(X1, X2) and np.array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize("gen", GENERATORS)
def test_shuffled(gen):
    _, y = gen(n=200, seed=0)
    # not all of class 0 first
    assert not np.array_equal(y, np.sort(y))


def test_moons_geometry_without_noise():
    X, y = two_moons(n=101, noise=0.0, seed=0)
    r0 = np.hypot(X[y == 0, 0], X[y == 0, 1])
    r1 = np.hypot(X[y == 1, 0] - 1.0, X[y == 1, 1] - 0.5)
    np.testing.assert_allclose(r0, 1.0, atol=1e-6)
    np.testing.assert_allclose(r1, 1.0, atol=1e-6)
    assert (X[y == 0, 1] >= -1e-6).all() and (X[y == 1, 1] <= 0.5 + 1e-6).all()


def test_circles_geometry_without_noise():
    X, y = two_circles(n=60, noise=0.0, factor=0.25, seed=0)
    r = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(r[y == 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(r[y == 1], 0.25, atol=1e-6)
    # no repeated point at angle 0 and 2 pi
    assert len(np.unique(X[y == 0].round(5), axis=0)) == 30


def test_blobs_centres():
    X, y = two_blobs(n=4000, std=0.2, seed=1)
    np.testing.assert_allclose(X[y == 0].mean(0), [-1, -1], atol=0.02)
    np.testing.assert_allclose(X[y == 1].mean(0), [1, 1], atol=0.02)
    np.testing.assert_allclose(X[y == 1].std(0), [0.2, 0.2], atol=0.02)


def test_noise_changes_points():
    a, _ = two_moons(n=50, noise=0.0, seed=0)
    b, _ = two_moons(n=50, noise=0.2, seed=0)
    assert not np.allclose(a, b)


@pytest.mark.parametrize(
    "call, exc",
    [
        (lambda: two_moons(n=1), ValueError),
        (lambda: two_moons(n=2.5), TypeError),
        (lambda: two_moons(noise=-1), ValueError),
        (lambda: two_circles(factor=1.0), ValueError),
        (lambda: two_circles(factor=0.0), ValueError),
        (lambda: two_blobs(std=float("nan")), ValueError),
    ],
)
def test_bad_arguments(call, exc):
    with pytest.raises(exc):
        call()
