"""Local complexity over a data set: the exact partition of a small slice around every point.

For each point ``x`` of a data set, :func:`local_complexity` computes the exact partition of the
square slice of side ``2 * pad`` centred on ``x`` (:meth:`splinecam.Slice.from_anchors` with one
anchor: two random orthonormal directions through ``x``) and summarises it in one row of a
:class:`LocalComplexity` table:

* ``num_regions``: regions in the slice (regions cut by the slice's border count once);
* ``density``: ``num_regions`` over the slice's area ``(2 * pad) ** 2``, regions per unit area;
* ``boundary_length``: length of the decision boundary inside the slice
  (:meth:`splinecam.Partition.decision_boundary`: where the argmax changes, or for one output
  where it crosses 0);
* ``boundary_distance``: distance within the slice from ``x`` to the decision boundary, ``inf``
  when the boundary does not meet the slice (it bounds the distance in input space from above);
* ``slope_norm``: Frobenius norm of the output's slope on the slice ``A_r`` ``(out, 2)`` of the
  region holding ``x`` (see :func:`splinecam.analysis.stats.slope_norms`).

All slices go through :func:`splinecam.partition_many` in one run (or on a Dask cluster); every
partition is summarised where it is made and then dropped, so memory stays bounded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..many import _results
from ..slice import Slice

__all__ = ["LocalComplexity", "local_complexity"]

#: the table's columns, in order
COLUMNS = ("num_regions", "density", "boundary_length", "boundary_distance", "slope_norm")


@dataclass(repr=False, eq=False)
class LocalComplexity:
    """Per-point summary of the partitions of small slices around data points (one row a point).

    Made by :func:`local_complexity`; the columns are NumPy arrays of length ``N`` (see the module
    :mod:`splinecam.analysis.complexity` for their definitions). ``table["density"]`` reads a
    column, :meth:`to_pandas` gives a DataFrame, :meth:`summary` the median and mean of every column.

    Examples
    --------
    >>> import numpy as np
    >>> t = LocalComplexity(np.array([3, 5]), np.array([0.75, 1.25]), np.array([1.0, 0.0]),
    ...                     np.array([0.5, np.inf]), np.array([2.0, 1.0]), pad=1.0)
    >>> len(t), t["num_regions"].tolist()
    (2, [3, 5])
    >>> t.summary()["density"]["median"]
    1.0
    """

    num_regions: np.ndarray
    density: np.ndarray
    boundary_length: np.ndarray
    boundary_distance: np.ndarray
    slope_norm: np.ndarray
    pad: float = 1.0
    seed: int | None = 0
    seconds: float = 0.0
    columns: tuple[str, ...] = field(default=COLUMNS, init=False)

    def __len__(self) -> int:
        return len(self.num_regions)

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in COLUMNS:
            raise KeyError(f"no column {name!r}; the columns are {', '.join(COLUMNS)}")
        return getattr(self, name)

    def to_dict(self) -> dict[str, np.ndarray]:
        """The columns as a dict of NumPy arrays."""
        return {c: getattr(self, c) for c in COLUMNS}

    def to_pandas(self) -> Any:
        """The table as a :class:`pandas.DataFrame` (one row per point; needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("LocalComplexity.to_pandas() needs pandas: pip install pandas") from exc
        return pd.DataFrame(self.to_dict())

    def summary(self) -> dict[str, dict[str, float]]:
        """Median and mean of every column (the mean of ``boundary_distance`` over finite values)."""
        out = {}
        for c in COLUMNS:
            v = np.asarray(getattr(self, c), dtype=np.float64)
            fin = v[np.isfinite(v)]
            out[c] = {
                "median": float(np.median(v)) if len(v) else float("nan"),
                "mean": float(fin.mean()) if len(fin) else float("nan"),
            }
        return out

    def __repr__(self) -> str:
        n = len(self)
        if not n:
            return f"LocalComplexity(0 points, pad={self.pad:g})"
        med = self.summary()
        cols = ", ".join(f"{c} {med[c]['median']:.4g}" for c in COLUMNS)
        return f"LocalComplexity({n} points, pad={self.pad:g}; medians: {cols})"


def _region_at(part: Any, u: np.ndarray) -> int:
    """The region holding the point ``u`` ``(2,)``: the one it lies deepest inside (relative to
    the edges' lengths), ``-1`` outside the domain. One vectorized test over all regions (no index
    is built, unlike :meth:`~splinecam.Partition.locate`: each partition is asked once)."""
    poly, nv = part.padded_polygons()
    nxt = np.roll(poly, -1, axis=1)
    last = nv - 1
    rows = np.arange(len(poly))
    nxt[rows, last] = poly[:, 0]  # (the edge from the last vertex closes the cycle)
    e = nxt - poly
    ln = np.hypot(e[..., 0], e[..., 1])
    d = u - poly
    cr = (e[..., 0] * d[..., 1] - e[..., 1] * d[..., 0]) / np.where(ln > 0, ln, 1.0)
    cr = np.where(np.arange(poly.shape[1])[None] < nv[:, None], cr, np.inf)
    depth = cr.min(1)
    r = int(np.argmax(depth))
    scale = float(np.abs(part.slice.domain - part.slice.domain.mean(0)).max())
    return r if depth[r] >= -1e-9 * scale else -1


def _one_class(part: Any) -> bool:
    """Whether the network picks one class at every vertex of every region, each with a clear
    margin: then (the outputs being affine on each convex region) there is no decision boundary
    in the slice. A quick test that spares building the boundary around most points."""
    a, b = part.output_affine
    if b.shape[1] == 0:
        return False
    verts = part.vertices[part.region_vertices]
    reg = np.repeat(np.arange(part.num_regions), np.diff(part.region_ptr))
    y = np.einsum("soi,si->so", a[reg], verts) + b[reg]
    if y.shape[1] == 1:  # one output: the classes are y <= 0 and y > 0
        y = np.concatenate([np.zeros_like(y), y], 1)
    top = np.sort(y, axis=1)[:, -2:]
    margin = top[:, 1] - top[:, 0]
    scale = float(np.abs(y).max()) + 1e-300
    cls = y.argmax(1)
    return bool((cls == cls[0]).all() and (margin > 1e-9 * scale).all())


def _row(part: Any) -> tuple[int, float, float, float, float]:
    """One table row from a partition of a slice made by ``Slice.from_anchors`` with one anchor."""
    slc = part.slice
    u0 = np.zeros(2) if slc.anchors is None else np.asarray(slc.anchors[0], dtype=np.float64)
    dom = slc.domain - slc.domain.mean(0)
    area = 0.5 * float(np.sum(dom[:, 0] * np.roll(dom[:, 1], -1) - np.roll(dom[:, 0], -1) * dom[:, 1]))
    length, dist = 0.0, float("inf")
    if not _one_class(part):
        db = part.decision_boundary()
        length = db.length
        if db.num_segments:
            p, q = db.segments[:, 0], db.segments[:, 1]
            d = q - p
            ll = np.einsum("ij,ij->i", d, d)
            t = np.clip(np.einsum("ij,ij->i", u0 - p, d) / np.where(ll > 0, ll, 1.0), 0.0, 1.0)
            dist = float(np.min(np.hypot(*(p + t[:, None] * d - u0).T)))
    r = _region_at(part, u0)
    slope = float(np.linalg.norm(part.output_affine[0][r])) if r >= 0 else float("nan")
    return part.num_regions, part.num_regions / area, length, dist, slope


def local_complexity(
    model: nn.Module,
    X: Any,
    *,
    pad: float,
    seed: int | None = 0,
    client: Any = None,
    progress: bool = False,
) -> LocalComplexity:
    """Local complexity of ``model`` around every point of ``X``: exact partitions of small slices.

    Parameters
    ----------
    model : torch.nn.Module
        A piecewise-linear network in eval mode; never modified.
    X : array_like or torch.Tensor, shape (N, *input_shape)
        The points (a data set, test points, random points), any input shape.
    pad : float
        Half-width of the square slice around each point, in input-space units (> 0).
    seed : int or None
        Point ``i``'s slice directions are drawn with seed ``seed + i`` (None: random).
    client : dask.distributed.Client, optional
        Compute on this cluster (see :func:`splinecam.partition_many`); only the rows travel back.
    progress : bool
        Show a tqdm progress bar of finished points.

    Returns
    -------
    LocalComplexity
        One row per point, in the order of ``X``.

    Examples
    --------
    >>> import numpy as np, torch, splinecam as sc
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2)).eval()
    >>> table = sc.local_complexity(net, np.zeros((3, 2)), pad=0.5)
    >>> len(table), bool((table["num_regions"] >= 1).all())
    (3, True)
    """
    if hasattr(X, "detach"):
        X = X.detach().cpu().numpy()
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"X must be an array of points (N, *input_shape), got {type(X).__name__}") from exc
    if X.ndim < 2:
        raise ValueError(
            f"X must have shape (N, *input_shape) (one point per row), got shape {X.shape}; "
            "for one point pass X[None]"
        )
    try:
        pad = float(pad)
    except (TypeError, ValueError):
        raise ValueError(f"pad must be a positive number, got {pad!r}") from None
    if not (pad > 0 and np.isfinite(pad)):
        raise ValueError(f"pad must be a positive finite number, got {pad}")
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int or None, got {seed!r}")
    slices = [
        Slice.from_anchors(x[None], pad=pad, seed=None if seed is None else int(seed) + i)
        for i, x in enumerate(X)
    ]
    n = len(slices)
    cols = np.zeros((n, 5))
    t0 = time.perf_counter()
    for i, row in _results(model, slices, client=client, chunk_size=None, progress=progress,
                           dtype=torch.float64, device=None, fn=_row):
        cols[i] = row
    return LocalComplexity(
        num_regions=cols[:, 0].astype(np.int64),
        density=cols[:, 1],
        boundary_length=cols[:, 2],
        boundary_distance=cols[:, 3],
        slope_norm=cols[:, 4],
        pad=pad,
        seed=seed,
        seconds=time.perf_counter() - t0,
    )

