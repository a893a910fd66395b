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


# --------------------------------------------------------------------------- digit_images
def test_digit_images_shapes_dtypes_balance_and_range():
    from splinecam.datasets import digit_images

    X, y = digit_images(n=53, num_classes=10, size=28, seed=0)
    assert X.shape == (53, 1, 28, 28) and X.dtype == np.float32
    assert y.shape == (53,) and y.dtype == np.int64
    assert 0.0 <= X.min() and X.max() <= 1.0
    counts = np.bincount(y, minlength=10)
    assert counts.min() == 53 // 10 and counts.max() == 53 // 10 + 1
    assert not np.array_equal(y, np.sort(y))  # shuffled
    X3, y3 = digit_images(n=40, num_classes=20, size=16, channels=3, seed=1)
    assert X3.shape == (40, 3, 16, 16) and set(y3.tolist()) == set(range(20))


def test_digit_images_deterministic_given_seed():
    from splinecam.datasets import digit_images

    a = digit_images(n=30, seed=4)
    b = digit_images(n=30, seed=4)
    c = digit_images(n=30, seed=5)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_digit_images_draw_the_seven_segment_digits():
    """Without noise, the ink sits where the digit's segments are: "1" only on the right, "8" has a middle bar."""
    from splinecam.datasets import digit_images

    X, y = digit_images(n=400, num_classes=10, size=28, noise=0.0, seed=0)
    assert (X.reshape(len(X), -1).max(1) > 0.5).all()  # every image has a glyph
    mean = {k: X[y == k, 0].mean(0) for k in range(10)}
    left, right = slice(0, 11), slice(17, 28)
    # "1" (segments b, c): ink on the right half of the glyph box, hardly any on the left
    assert mean[1][:, right].sum() > 5 * mean[1][:, left].sum()
    # "8" and "0" differ by the middle bar (segment g): more ink in the middle rows of "8"
    mid = slice(12, 16)
    assert mean[8][mid, 10:18].sum() > 2 * mean[0][mid, 10:18].sum()


def test_digit_images_classes_are_separable():
    """A nearest-class-mean classifier on noisy images tells the classes apart (also for 200 classes)."""
    from splinecam.datasets import digit_images

    for k, n in ((10, 600), (200, 2000)):
        X, y = digit_images(n=n, num_classes=k, size=32, channels=3 if k > 10 else 1, seed=0)
        Xt, yt = digit_images(n=300, num_classes=k, size=32, channels=3 if k > 10 else 1, seed=1)
        means = np.stack([X[y == c].reshape((y == c).sum(), -1).mean(0) for c in range(k)])
        d = ((Xt.reshape(len(Xt), -1)[:, None, :] - means[None]) ** 2).sum(-1)
        acc = float((d.argmin(1) == yt).mean())
        assert acc > (0.45 if k == 10 else 0.25), (k, acc)  # chance: 0.1 and 0.005 (here 0.65 and 0.45)


def test_digit_images_refuses_bad_arguments():
    from splinecam.datasets import digit_images

    for kw in ({"n": 0}, {"num_classes": 1}, {"num_classes": 10**6}, {"size": 4}, {"channels": 2},
               {"noise": -1.0}, {"n": 2.5}):
        with pytest.raises(ValueError):
            digit_images(**kw)
