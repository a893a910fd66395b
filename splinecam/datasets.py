"""Small generated data sets (no download), for demos, tests and tutorials.

Two kinds:

* 2-D toy sets (:func:`two_moons`, :func:`two_circles`, :func:`two_blobs`);
* digit-like images (:func:`digit_images`): glyphs drawn from strokes, for CNN examples.

Every 2-D generator returns ``(X, y)`` with ``X`` a ``float32`` array of shape ``(n, 2)`` and ``y`` an
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

__all__ = ["two_moons", "two_circles", "two_blobs", "digit_images"]


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


# --------------------------------------------------------------------------- digit-like images
#: strokes of a glyph in its unit box (x to the right, y downwards): (x0, y0, x1, y1)
_STROKES = np.array([
    [0.0, 0.0, 1.0, 0.0],  # 0 a: top
    [1.0, 0.0, 1.0, 0.5],  # 1 b: upper right
    [1.0, 0.5, 1.0, 1.0],  # 2 c: lower right
    [0.0, 1.0, 1.0, 1.0],  # 3 d: bottom
    [0.0, 0.5, 0.0, 1.0],  # 4 e: lower left
    [0.0, 0.0, 0.0, 0.5],  # 5 f: upper left
    [0.0, 0.5, 1.0, 0.5],  # 6 g: middle
    [0.0, 0.0, 1.0, 0.5],  # 7 upper diagonal, falling
    [1.0, 0.0, 0.0, 0.5],  # 8 upper diagonal, rising
    [0.0, 0.5, 1.0, 1.0],  # 9 lower diagonal, falling
    [1.0, 0.5, 0.0, 1.0],  # 10 lower diagonal, rising
    [0.5, 0.0, 0.5, 0.5],  # 11 upper centre vertical
    [0.5, 0.5, 0.5, 1.0],  # 12 lower centre vertical
])
#: the digits 0-9 on a seven-segment display (segments a-g are strokes 0-6)
_DIGITS = ["abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc", "abcdefg", "abcdfg"]
#: the most classes :func:`digit_images` can make (distinct stroke sets of 2 to 7 of the 13 strokes)
MAX_DIGIT_CLASSES = 4000


def _glyph_table(num_classes: int) -> np.ndarray:
    """(num_classes, 13) bool: the strokes of each class. Classes 0-9 are the seven-segment digits;
    further classes are distinct sets of 2 to 7 strokes drawn from a generator with a fixed seed, so a
    class looks the same whatever the data seed."""
    table = np.zeros((num_classes, len(_STROKES)), bool)
    seen = set()
    for k, segs in enumerate(_DIGITS[:num_classes]):
        for ch in segs:
            table[k, "abcdefg".index(ch)] = True
        seen.add(table[k].tobytes())
    rng = np.random.default_rng(20231)
    k = len(_DIGITS)
    while k < num_classes:
        row = np.zeros(len(_STROKES), bool)
        row[rng.choice(len(_STROKES), size=int(rng.integers(2, 8)), replace=False)] = True
        if row.tobytes() not in seen:
            seen.add(row.tobytes())
            table[k] = row
            k += 1
    return table


def _class_colors(num_classes: int) -> np.ndarray:
    """(num_classes, 3) stroke colours: hues spread by the golden ratio, full saturation."""
    import colorsys

    return np.array([colorsys.hsv_to_rgb((0.61803398875 * k) % 1.0, 0.85, 1.0) for k in range(num_classes)])


def digit_images(
    n: int = 1000,
    num_classes: int = 10,
    size: int = 28,
    channels: int = 1,
    noise: float = 0.05,
    seed: int | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Digit-like images: glyphs drawn from strokes, with random slant, size, position and thickness.

    Class ``k < 10`` is the digit ``k`` as on a seven-segment display; classes from 10 on are other
    fixed sets of 2 to 7 strokes among 13 (the seven segments, four half-diagonals and two half
    verticals), the same whatever ``seed``. Every image draws its glyph with a random box (width 35-50%
    and height 55-70% of the image), centre (+-8%), slant, stroke thickness, ink level and endpoint
    jitter, antialiased, then adds Gaussian pixel noise and clips to ``[0, 1]``. With ``channels=3``
    the strokes have a colour per class (ink times a class hue) on a random dark-grey background.
    The classes are balanced (``n // num_classes`` or one more each) and the samples shuffled.

    Parameters
    ----------
    n : int
        Number of images.
    num_classes : int
        Number of classes, 2 to ``MAX_DIGIT_CLASSES`` (4000).
    size : int
        Image side in pixels (at least 8).
    channels : int
        1 (grey) or 3 (colour).
    noise : float
        Standard deviation of the Gaussian pixel noise.
    seed : int or None
        Seed of the NumPy random generator; ``None`` draws fresh randomness.

    Returns
    -------
    X : ndarray of float32, shape (n, channels, size, size)
        The images, values in ``[0, 1]``.
    y : ndarray of int64, shape (n,)
        Their labels, ``0 <= y < num_classes``.

    Examples
    --------
    >>> from splinecam.datasets import digit_images
    >>> X, y = digit_images(n=50, seed=0)
    >>> X.shape, X.dtype, y.dtype, float(X.min()) >= 0.0, float(X.max()) <= 1.0
    ((50, 1, 28, 28), dtype('float32'), dtype('int64'), True, True)
    >>> X, y = digit_images(n=400, num_classes=200, size=64, channels=3, seed=1)
    >>> X.shape, sorted(set(y.tolist())) == list(range(200))
    ((400, 3, 64, 64), True)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or not (
        2 <= num_classes <= MAX_DIGIT_CLASSES
    ):
        raise ValueError(f"num_classes must be an int from 2 to {MAX_DIGIT_CLASSES}, got {num_classes!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"size must be an int >= 8 (pixels), got {size!r}")
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ValueError(f"channels must be 1 (grey) or 3 (colour), got {channels!r}")
    noise = _check_nonneg(noise, "noise")
    n, num_classes, size = int(n), int(num_classes), int(size)
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    table = _glyph_table(num_classes)
    # per image: glyph box, centre, slant, thickness, ink (all in units of the image side)
    w = rng.uniform(0.35, 0.5, n)
    h = rng.uniform(0.55, 0.7, n)
    cx = 0.5 + rng.uniform(-0.08, 0.08, n)
    cy = 0.5 + rng.uniform(-0.08, 0.08, n)
    slant = rng.uniform(-0.25, 0.25, n)
    thick = rng.uniform(0.04, 0.075, n)
    ink = rng.uniform(0.75, 1.0, n)
    jitter = rng.normal(scale=0.03, size=(n, len(_STROKES), 4))
    pix = (np.arange(size) + 0.5) / size
    px, py = np.meshgrid(pix, pix)  # (size, size): x along columns, y along rows
    px, py = px.ravel(), py.ravel()
    glyph = np.zeros((n, size * size))
    for s, (x0, y0, x1, y1) in enumerate(_STROKES):
        on = np.flatnonzero(table[y, s])
        if len(on) == 0:
            continue
        j = jitter[on, s]
        ends = []
        for gx, gy, dj in ((x0, y0, 0), (x1, y1, 2)):
            gx = gx + j[:, dj]
            gy = gy + j[:, dj + 1]
            ex = cx[on] + (gx - 0.5) * w[on] + slant[on] * (0.5 - gy) * h[on]
            ey = cy[on] + (gy - 0.5) * h[on]
            ends.append((ex[:, None], ey[:, None]))
        (ax, ay), (bx, by) = ends
        dx, dy = bx - ax, by - ay
        t = np.clip(((px - ax) * dx + (py - ay) * dy) / np.maximum(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
        dist = np.hypot(px - ax - t * dx, py - ay - t * dy)
        # antialiased stroke: 1 inside the half-thickness, falling to 0 over one pixel
        val = np.clip((thick[on, None] / 2 - dist) * size + 0.5, 0.0, 1.0)
        glyph[on] = np.maximum(glyph[on], val)
    glyph *= ink[:, None]
    if channels == 1:
        X = glyph.reshape(n, 1, size, size)
    else:
        color = _class_colors(num_classes)[y]  # (n, 3)
        back = rng.uniform(0.0, 0.25, n)
        X = back[:, None, None] + glyph[:, None, :] * (color[:, :, None] - back[:, None, None])
        X = X.reshape(n, 3, size, size)
    if noise > 0:
        X = X + rng.normal(scale=noise, size=X.shape)
    return np.clip(X, 0.0, 1.0).astype(np.float32), y
