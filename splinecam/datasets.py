"""Small generated 2-D toy data sets (no download), for demos, tests and tutorials.

Every generator returns ``(X, y)`` with ``X`` a ``float32`` array of shape ``(n, 2)`` and ``y`` an
``int64`` array of shape ``(n,)`` holding the class labels ``0`` and ``1``. The two classes have
``n // 2`` and ``n - n // 2`` points, the samples are shuffled, and the same ``seed`` always gives the
same data.

Examples
--------
>>> from splinecam.datasets import two_moons
>>> X, y = two_moons(n=100, noise=0.1, seed=0)
>>> X.shape, X.dtype, y.dtype, int(y.sum())
((100, 2), dtype('float32'), dtype('int64'), 50)
"""

from __future__ import annotations

import numpy as np

__all__ = ["two_moons", "two_circles", "two_blobs"]


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 2:
        raise ValueError(f"n must be at least 2 (one point per class), got {n}")
    return int(n)


def _check_nonneg(value: float, name: str) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def _finish(
    x0: np.ndarray, x1: np.ndarray, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Stack the two classes, add Gaussian noise, shuffle, and cast to the documented dtypes."""
    X = np.concatenate([x0, x1])
    y = np.concatenate([np.zeros(len(x0), np.int64), np.ones(len(x1), np.int64)])
    if noise > 0:
        X = X + rng.normal(scale=noise, size=X.shape)
    perm = rng.permutation(len(X))
    return X[perm].astype(np.float32), y[perm]


def two_moons(n: int = 512, noise: float = 0.1, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (the classic "moons").

    Class 0 lies on the upper half of the unit circle centred at ``(0, 0)``; class 1 on the lower half
    of the unit circle centred at ``(1, 0.5)``. Points are evenly spaced along each arc, then
    perturbed. The data fill roughly ``[-1, 2] x [-0.5, 1]`` plus the noise.

    Parameters
    ----------
    n : int
        Total number of points (``n // 2`` in class 0, the rest in class 1).
    noise : float
        Standard deviation of the Gaussian noise added to every coordinate.
    seed : int or None
        Seed of the NumPy random generator; ``None`` draws fresh randomness.

    Returns
    -------
    X : ndarray of float32, shape (n, 2)
        The points.
    y : ndarray of int64, shape (n,)
        Their labels, 0 or 1.

    Examples
    --------
    >>> from splinecam.datasets import two_moons
    >>> X, y = two_moons(n=200, noise=0.0, seed=1)
    >>> bool((X[y == 0, 1] >= 0).all()), bool((X[y == 1, 1] <= 0.5).all())
    (True, True)
    >>> import numpy as np
    >>> np.array_equal(two_moons(50, seed=3)[0], two_moons(50, seed=3)[0])
    True
    """
    n = _check_n(n)
    noise = _check_nonneg(noise, "noise")
    rng = np.random.default_rng(seed)
    n0 = n // 2
    n1 = n - n0
    t0 = np.linspace(0.0, np.pi, n0)
    t1 = np.linspace(0.0, np.pi, n1)
    x0 = np.stack([np.cos(t0), np.sin(t0)], 1)
    x1 = np.stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)], 1)
    return _finish(x0, x1, noise, rng)


def two_circles(
    n: int = 512, noise: float = 0.05, factor: float = 0.5, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric circles: class 0 on the unit circle, class 1 on a circle of radius ``factor``.

    Parameters
    ----------
    n : int
        Total number of points (``n // 2`` on the outer circle, the rest on the inner one).
    noise : float
        Standard deviation of the Gaussian noise added to every coordinate.
    factor : float
        Radius of the inner circle relative to the outer one, ``0 < factor < 1``.
    seed : int or None
        Seed of the NumPy random generator; ``None`` draws fresh randomness.

    Returns
    -------
    X : ndarray of float32, shape (n, 2)
        The points.
    y : ndarray of int64, shape (n,)
        Their labels: 0 outer, 1 inner.

    Examples
    --------
    >>> import numpy as np
    >>> from splinecam.datasets import two_circles
    >>> X, y = two_circles(n=100, noise=0.0, factor=0.3, seed=0)
    >>> r = np.hypot(X[:, 0], X[:, 1])
    >>> bool(np.allclose(r[y == 0], 1.0)), bool(np.allclose(r[y == 1], 0.3))
    (True, True)
    """
    n = _check_n(n)
    noise = _check_nonneg(noise, "noise")
    factor = float(factor)
    if not 0.0 < factor < 1.0:
        raise ValueError(f"factor must be strictly between 0 and 1, got {factor}")
    rng = np.random.default_rng(seed)
    n0 = n // 2
    n1 = n - n0
    # endpoint=False: 0 and 2 pi are the same point
    t0 = np.linspace(0.0, 2 * np.pi, n0, endpoint=False)
    t1 = np.linspace(0.0, 2 * np.pi, n1, endpoint=False)
    x0 = np.stack([np.cos(t0), np.sin(t0)], 1)
    x1 = factor * np.stack([np.cos(t1), np.sin(t1)], 1)
    return _finish(x0, x1, noise, rng)


def two_blobs(n: int = 512, std: float = 0.5, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two isotropic Gaussian blobs, centred at ``(-1, -1)`` (class 0) and ``(1, 1)`` (class 1).

    Parameters
    ----------
    n : int
        Total number of points (``n // 2`` in class 0, the rest in class 1).
    std : float
        Standard deviation of each blob along each axis.
    seed : int or None
        Seed of the NumPy random generator; ``None`` draws fresh randomness.

    Returns
    -------
    X : ndarray of float32, shape (n, 2)
        The points.
    y : ndarray of int64, shape (n,)
        Their labels, 0 or 1.

    Examples
    --------
    >>> from splinecam.datasets import two_blobs
    >>> X, y = two_blobs(n=1000, std=0.3, seed=0)
    >>> [round(float(v), 1) for v in X[y == 1].mean(0)]
    [1.0, 1.0]
    """
    n = _check_n(n)
    std = _check_nonneg(std, "std")
    rng = np.random.default_rng(seed)
    n0 = n // 2
    n1 = n - n0
    x0 = np.tile([-1.0, -1.0], (n0, 1))
    x1 = np.tile([1.0, 1.0], (n1, 1))
    return _finish(x0, x1, std, rng)
