"""The original SplineCam toolbox's ``splinecam.utils`` names, built on :class:`splinecam.Slice`.

Conventions of the original kept here:

* A **domain** is a closed polygon *in input space*: a ``(k + 1, D)`` array whose last row repeats
  the first (``D`` is the flattened input size).
* ``T = get_proj_mat(domain)`` is the ``(D, 3)`` projection matrix ``[v1 | v2 | c]``: it maps
  homogeneous slice coordinates ``[u, 1]`` to input space, ``x = T[:, :2] @ u + T[:, 2]``, and back by
  ``u = T[:, :2].T @ (x - T[:, 2])`` (``v1``, ``v2`` orthonormal).
* Functions given torch tensors return torch tensors (float64 unless the input was another float
  type); given NumPy arrays they return NumPy arrays.

New code should use :meth:`splinecam.Slice.from_anchors` and :func:`splinecam.partition` directly;
:func:`slice_from_proj` turns a ``(domain, T)`` pair into a :class:`~splinecam.Slice`.

Examples
--------
>>> import torch, splinecam as sc
>>> domain = sc.utils.get_square_slice_from_one_anchor(torch.zeros(1, 10), pad_dist=2, seed=0)
>>> domain.shape
torch.Size([5, 10])
>>> T = sc.utils.get_proj_mat(domain)
>>> T.shape
torch.Size([10, 3])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import SliceError
from ..slice import Slice

__all__ = [
    "get_square_slice_from_one_anchor",
    "get_square_slice_from_two_anchors",
    "get_square_slice_from_centroid",
    "get_proj_mat",
    "slice_from_proj",
    "get_region_statistics",
    "RegionStatistics",
    "REGION_STATISTICS",
    "get_region_means",
    "split_domain_by_edge",
    "get_nneigh_points",
    "region_area_2d",
    "region_eccentricity_2d",
    "centrality",
    "create_polytope_2d",
]


# --------------------------------------------------------------------------- array plumbing
def _is_torch(x: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return isinstance(x, torch.Tensor)


def _np(x: Any, name: str = "array") -> np.ndarray:
    if _is_torch(x):
        x = x.detach().cpu().double().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SliceError(f"{name} must be an array of numbers, got {type(x).__name__}") from exc


def _like(arr: np.ndarray, ref: Any) -> Any:
    """``arr`` as the same kind of array as ``ref`` (torch tensor on ref's device, or NumPy)."""
    if _is_torch(ref):
        import torch

        dt = ref.dtype if ref.is_floating_point() else torch.float64
        return torch.as_tensor(arr, dtype=dt, device=ref.device)
    return arr


def _open_polygon(poly: np.ndarray) -> np.ndarray:
    """Drop the closing vertex of a closed polygon (last row equal to the first)."""
    if len(poly) > 1 and np.array_equal(poly[0], poly[-1]):
        return poly[:-1]
    return poly


def _anchor_rows(anchors: Any, name: str) -> np.ndarray:
    a = _np(anchors, name)
    if a.ndim == 1:
        a = a[None]
    return a.reshape(len(a), -1)


def _seed(seed: int | None) -> int | None:
    """The original's scripts passed ``seed=-1`` for "no fixed seed": any negative seed means None."""
    if seed is None:
        return None
    seed = int(seed)
    return None if seed < 0 else seed


def _square(sl: Slice, half: float) -> np.ndarray:
    corners = np.array([[-half, -half], [half, -half], [half, half], [-half, half], [-half, -half]])
    return sl.to_input(corners).reshape(5, -1)


# --------------------------------------------------------------------------- slices
def get_square_slice_from_one_anchor(anchors: Any, pad_dist: float = 1, seed: int | None = None) -> Any:
    """A square domain centred on one anchor, along two random orthonormal directions.

    As in the original, the square's vertices are ``pad_dist`` from the anchor (its half-width is
    ``pad_dist / sqrt(2)``). Built on :meth:`Slice.from_anchors`.

    Parameters
    ----------
    anchors : array_like, shape (1, D)
        The anchor (a flattened input); ``(D,)`` is accepted too.
    pad_dist : float
        Distance of the square's vertices from the anchor.
    seed : int or None
        Seed of the random directions (None or a negative seed such as ``-1``: random each call).

    Returns
    -------
    domain : (5, D) tensor or array
        The closed square in input space (last row repeats the first); use :func:`get_proj_mat`.

    Examples
    --------
    >>> import numpy as np
    >>> d = get_square_slice_from_one_anchor(np.zeros((1, 4)), pad_dist=1.0, seed=0)
    >>> d.shape, bool(np.allclose(np.linalg.norm(d, axis=1), 1.0))
    ((5, 4), True)
    """
    a = _anchor_rows(anchors, "anchors")
    if len(a) != 1:
        raise SliceError(f"get_square_slice_from_one_anchor takes one anchor (shape (1, D)), got {len(a)}")
    if not pad_dist > 0:
        raise SliceError(f"pad_dist must be positive, got {pad_dist}")
    half = float(pad_dist) / math.sqrt(2.0)
    sl = Slice.from_anchors(a, pad=half, seed=_seed(seed))
    return _like(_square(sl, half), anchors)


def _multi_anchor_square(anchors: Any, n: tuple[int, ...], pad_dist: float, seed: int | None, who: str) -> Any:
    a = _anchor_rows(anchors, "anchors")
    if len(a) not in n:
        want = " or ".join(str(k) for k in n)
        raise SliceError(f"{who} takes {want} anchors (shape ({n[0]}, D)), got {len(a)}")
    if not pad_dist > 0:
        raise SliceError(f"pad_dist must be positive, got {pad_dist}")
    sl = Slice.from_anchors(list(a), pad=float(pad_dist), seed=_seed(seed))
    half = float(np.abs(sl.domain).max())
    return _like(_square(sl, half), anchors)


def get_square_slice_from_two_anchors(anchors: Any, pad_dist: float = 1, seed: int | None = 0) -> Any:
    """A square domain in a plane through two anchors (and a random orthogonal direction).

    Centred on the anchors' midpoint; its half-width is the anchors' half-distance plus ``pad_dist``,
    so both anchors lie inside with a margin ``pad_dist``. Built on :meth:`Slice.from_anchors`.

    Parameters
    ----------
    anchors : array_like, shape (2, D)
        Two anchors (a third one, as the original allowed, fixes the plane instead of a random
        direction, and the square is centred on the three anchors' centroid).
    pad_dist : float
    seed : int or None
        Seed of the random second direction; None or a negative seed (the original's scripts passed
        ``-1``): random each call.

    Returns
    -------
    domain : (5, D) tensor or array, closed.

    Examples
    --------
    >>> import numpy as np
    >>> d = get_square_slice_from_two_anchors(np.array([[0.0, 0, 0], [2.0, 0, 0]]), pad_dist=1.0)
    >>> T = get_proj_mat(d)
    >>> np.round(T[:, :2].T @ (np.array([2.0, 0, 0]) - T[:, 2]), 6).tolist()
    [1.0, 0.0]
    """
    return _multi_anchor_square(anchors, (2, 3), pad_dist, seed, "get_square_slice_from_two_anchors")


def get_square_slice_from_centroid(anchors: Any, pad_dist: float = 1, seed: int | None = 0) -> Any:
    """A square domain in the plane of three anchors, centred on their centroid.

    Its half-width is the largest anchor coordinate plus ``pad_dist``, so all three anchors lie
    inside. Built on :meth:`Slice.from_anchors`.

    Parameters
    ----------
    anchors : array_like, shape (3, D)
    pad_dist : float
    seed : int or None
        Unused (the plane is fixed by the anchors); kept for the original's call shape.

    Returns
    -------
    domain : (5, D) tensor or array, closed.

    Examples
    --------
    >>> import numpy as np
    >>> d = get_square_slice_from_centroid(np.eye(3), pad_dist=0.5)
    >>> d.shape
    (5, 3)
    """
    return _multi_anchor_square(anchors, (3,), pad_dist, seed, "get_square_slice_from_centroid")


def get_proj_mat(domain: Any) -> Any:
    """The ``(D, 3)`` projection matrix ``T = [v1 | v2 | c]`` of a planar domain in input space.

    ``x = T[:, :2] @ u + T[:, 2]`` maps slice coordinates ``u`` to input space. With ``P`` the
    domain's distinct vertices (the closing repeat dropped): ``v1`` is ``P[1] - P[0]`` normalized,
    ``v2`` is ``P[-1] - P[0]`` made orthogonal to ``v1`` and normalized (the original toolbox
    normalized without orthogonalizing; for its square domains this is the same), and ``c`` is the
    mean of ``P`` (the original averaged the closing repeat too, which shifts the centre).

    Parameters
    ----------
    domain : array_like, shape (k, D)
        Polygon vertices in input space (closed or not), or any three or more points spanning the
        plane (e.g. three anchors).

    Returns
    -------
    T : (D, 3) tensor or array

    Examples
    --------
    >>> import numpy as np
    >>> T = get_proj_mat(np.array([[0.0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1], [0, 0, 1]]))
    >>> T.tolist()
    [[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]]
    """
    d = _np(domain, "domain")
    if d.ndim != 2:
        d = d.reshape(len(d), -1)
    p = _open_polygon(d)
    if len(p) < 3:
        raise SliceError(f"get_proj_mat needs at least 3 distinct points spanning a plane, got {len(p)}")
    v1 = p[1] - p[0]
    n1 = np.linalg.norm(v1)
    v2 = p[-1] - p[0]
    scale = max(float(np.abs(p).max()), 1.0)
    if n1 <= 1e-12 * scale:
        raise SliceError("get_proj_mat: the domain's first two vertices coincide")
    v1 = v1 / n1
    v2 = v2 - (v2 @ v1) * v1
    n2 = np.linalg.norm(v2)
    if n2 <= 1e-9 * max(float(np.linalg.norm(p[-1] - p[0])), 1e-300):
        raise SliceError("get_proj_mat: the domain's vertices are collinear; they do not span a plane")
    v2 = v2 / n2
    t = np.stack([v1, v2, p.mean(0)], 1)
    return _like(t, domain)


def slice_from_proj(domain: Any, T: Any, input_shape: Any = None) -> Slice:
    """A :class:`~splinecam.Slice` from the original's ``(domain, T)`` pair.

    Parameters
    ----------
    domain : array_like
        The domain polygon, closed or not: ``(k, D)`` in input space (projected with ``T``), or
        ``(k, 2)`` already in slice coordinates when ``D != 2``.
    T : array_like, shape (D, 3) or (D, 2)
        ``[v1 | v2 | c]`` (see :func:`get_proj_mat`); ``(D, 2)`` means ``c = 0``.
    input_shape : tuple of int, optional
        The model's input shape (``(3, 32, 32)``); ``(D,)`` by default.

    Returns
    -------
    Slice
        ``origin = c`` reshaped to ``input_shape``, ``basis = [v1, v2]``, and the domain in ``u``.

    Examples
    --------
    >>> import numpy as np
    >>> dom = get_square_slice_from_one_anchor(np.zeros((1, 6)), pad_dist=1.0, seed=0)
    >>> sl = slice_from_proj(dom, get_proj_mat(dom), input_shape=(2, 3))
    >>> sl.input_shape, sl.domain.shape
    ((2, 3), (4, 2))
    """
    t = _np(T, "T")
    if t.ndim != 2 or t.shape[1] not in (2, 3):
        raise SliceError(f"T must be a (D, 3) projection matrix [v1 | v2 | c] (or (D, 2)), got shape {t.shape}")
    dim = t.shape[0]
    shape = (dim,) if input_shape is None else tuple(int(s) for s in np.atleast_1d(input_shape))
    if int(np.prod(shape)) != dim:
        raise SliceError(
            f"input_shape {shape} has {int(np.prod(shape))} entries but T has {dim} rows; T must be "
            "(prod(input_shape), 3)"
        )
    basis = t[:, :2]
    origin = t[:, 2] if t.shape[1] == 3 else np.zeros(dim)
    d = _np(domain, "domain")
    d = d.reshape(len(d), -1)
    d = _open_polygon(d)
    if d.shape[1] == dim:
        sol, *_ = np.linalg.lstsq(basis, (d - origin).T, rcond=None)
        u = sol.T
    elif d.shape[1] == 2:
        u = d
    else:
        raise SliceError(
            f"domain must have shape (k, {dim}) (input space) or (k, 2) (slice coordinates), got {d.shape}"
        )
    return Slice(origin=origin.reshape(shape), basis=basis, domain=u)


# --------------------------------------------------------------------------- region statistics
def region_area_2d(poly: Any) -> Any:
    """Area of a polygon ``(k, 2)`` (closed or not), by the shoelace formula.

    Returns a 0-d tensor for a tensor input, a float otherwise.

    Examples
    --------
    >>> region_area_2d([[0, 0], [2, 0], [2, 1], [0, 1], [0, 0]])
    2.0
    """
    p = _open_polygon(_np(poly, "poly").reshape(-1, 2))
    x, y = p[:, 0], p[:, 1]
    area = 0.5 * abs(float(np.sum(x * np.roll(y, -1)) - np.sum(y * np.roll(x, -1))))
    return _like(np.asarray(area), poly) if _is_torch(poly) else area


def region_eccentricity_2d(poly: Any, eps: float = 1e-10) -> Any:
    """Eccentricity of a polygon as the original defines it: longest / (shortest + eps) vertex distance.

    Examples
    --------
    >>> round(region_eccentricity_2d([[0, 0], [2, 0], [2, 1], [0, 1], [0, 0]]), 6)
    2.236068
    """
    p = _open_polygon(_np(poly, "poly").reshape(-1, 2))
    i, j = np.triu_indices(len(p), 1)
    d = np.hypot(*(p[i] - p[j]).T)
    ecc = float(d.max() / (d.min() + eps)) if len(d) else float("nan")
    return _like(np.asarray(ecc), poly) if _is_torch(poly) else ecc


def centrality(polys: Any) -> tuple[float, float]:
    """The original's centrality: mean and std of the distances of all region vertices (pooled) to
    their mean."""
    verts = np.concatenate([_open_polygon(_np(p, "poly").reshape(-1, 2)) for p in polys], 0)
    d = np.linalg.norm(verts - verts.mean(0), axis=1)
    return float(d.mean()), float(d.std(ddof=1)) if len(d) > 1 else float("nan")


#: Names of :func:`get_region_statistics`, in the original's order.
REGION_STATISTICS = ("vol_m", "vol_std", "nverts", "nregions", "ecc_m", "ecc_std", "centr_m", "centr_std", "avg_verts")


class RegionStatistics(tuple):
    """The result of :func:`get_region_statistics`: the original's ``(names, values)`` pair, which
    also answers by name.

    ``stats, vals = result`` unpacks it as the original's 2-tuple (``names`` a list of str,
    ``vals`` a tensor, or an array for NumPy input); ``result["vol_m"]``, ``result.keys()``,
    ``result.items()``, ``"vol_m" in result`` and :meth:`as_dict` read it by name (as splinecam's
    earlier dict did).

    Examples
    --------
    >>> r = get_region_statistics([[[0, 0], [1, 0], [1, 1], [0, 1]]])
    >>> names, vals = r
    >>> names[:2], r["nregions"], dict(r.items())["vol_m"]
    (['vol_m', 'vol_std'], 1, 1.0)
    """

    _mapping: dict[str, float]

    def __new__(cls, names: list[str], values: Any, mapping: dict[str, float]) -> RegionStatistics:
        obj = super().__new__(cls, (names, values))
        obj._mapping = mapping
        return obj

    def __getnewargs__(self) -> tuple[Any, ...]:
        return (self[0], self[1], self._mapping)

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return self._mapping[key]
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        return key in self._mapping if isinstance(key, str) else super().__contains__(key)

    def keys(self) -> Any:
        """The statistics' names."""
        return self._mapping.keys()

    def items(self) -> Any:
        """``(name, value)`` pairs (Python numbers)."""
        return self._mapping.items()

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default``."""
        return self._mapping.get(key, default)

    def as_dict(self) -> dict[str, float]:
        """The statistics as a plain dict of Python numbers."""
        return dict(self._mapping)

    def __repr__(self) -> str:
        return "RegionStatistics(" + ", ".join(f"{k}={v:.6g}" for k, v in self._mapping.items()) + ")"


def get_region_statistics(polys: Any) -> RegionStatistics:
    """Region statistics of a list of polygons, with the original toolbox's names and definitions.

    Parameters
    ----------
    polys : list of (k, 2) arrays or tensors
        Regions, closed (the original's convention) or not.

    Returns
    -------
    RegionStatistics
        As the original, a 2-tuple ``(names, values)``: ``stats, vals = get_region_statistics(regions)``.
        ``names`` are ``vol_m``, ``vol_std`` (area mean and std), ``nverts`` (region vertices counted
        per region), ``nregions``, ``ecc_m``, ``ecc_std`` (eccentricity), ``centr_m``, ``centr_std``
        (see :func:`centrality`), ``avg_verts`` (vertices per region); ``values`` holds them in that
        order, a float64 tensor when the polygons are tensors (an array otherwise). The original's
        tensor stopped before ``avg_verts``; here it has all nine, so ``zip(stats, vals)`` pairs
        every name. The result also reads by name: ``result["vol_m"]`` (as splinecam's earlier
        dict result did; :meth:`RegionStatistics.as_dict` gives the dict). Standard deviations are
        unbiased (``ddof=1``), like ``torch.std``.

    Examples
    --------
    >>> sq = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
    >>> stats, vals = get_region_statistics([sq, [[1, 0], [2, 0], [2, 1], [1, 1]]])
    >>> stats[:4], vals[:4].tolist()
    (['vol_m', 'vol_std', 'nverts', 'nregions'], [1.0, 0.0, 8.0, 2.0])
    >>> s = get_region_statistics([sq])
    >>> s["nregions"], s["avg_verts"]
    (1, 4.0)
    """
    polys = list(polys)
    if not polys:
        raise ValueError("get_region_statistics needs at least one region")
    open_p = [_open_polygon(_np(p, "poly").reshape(-1, 2)) for p in polys]
    vols = np.array([region_area_2d(p) for p in open_p])
    eccs = np.array([region_eccentricity_2d(p) for p in open_p])
    nv = np.array([len(p) for p in open_p], dtype=np.float64)
    cm, cs = centrality(open_p)

    def sd(x: np.ndarray) -> float:
        return float(np.std(x, ddof=1)) if len(x) > 1 else float("nan")

    mapping: dict[str, float] = {
        "vol_m": float(vols.mean()),
        "vol_std": sd(vols),
        "nverts": int(nv.sum()),
        "nregions": len(open_p),
        "ecc_m": float(eccs.mean()),
        "ecc_std": sd(eccs),
        "centr_m": cm,
        "centr_std": cs,
        "avg_verts": float(nv.mean()),
    }
    values: Any = np.array([float(mapping[k]) for k in REGION_STATISTICS])
    ref = next((p for p in polys if _is_torch(p)), None)
    if ref is not None:
        import torch

        values = torch.as_tensor(values, dtype=torch.float64, device=ref.device)
    return RegionStatistics(list(REGION_STATISTICS), values, mapping)


def get_region_means(
    regions: Any, dims: int | None = None, dtype: Any = None, device: Any = None
) -> Any:
    """The mean of each region's vertices, ``(R, dims)``, as the original's ``get_region_means``.

    As in the original, every row given counts (a closed polygon's repeated first vertex too);
    the mean is then a point inside the convex region. Returns a torch tensor, as the original.

    Parameters
    ----------
    regions : list of (k_i, dims) arrays or tensors
    dims : int, optional
        Coordinates per vertex (checked; taken from the regions when None).
    dtype : torch.dtype, optional
        Of the result (float64 by default, as the original).
    device : str or torch.device, optional
        Of the result: the first region's device by default (the original defaulted to ``'cuda'``).

    Examples
    --------
    >>> get_region_means([[[0, 0], [2, 0], [2, 2], [0, 2]]], dims=2).tolist()
    [[1.0, 1.0]]
    """
    import torch

    regions = list(regions)
    dt = torch.float64 if dtype is None else dtype
    if device is None:
        device = regions[0].device if regions and _is_torch(regions[0]) else "cpu"
    d = None if dims is None else int(dims)
    rows = []
    for i, r in enumerate(regions):
        t = r if _is_torch(r) else torch.as_tensor(_np(r, "region"))
        t = t.reshape(len(t), -1)
        if d is None:
            d = int(t.shape[1])
        if t.shape[1] != d or len(t) == 0:
            raise SliceError(f"region {i} has shape {tuple(t.shape)}; expected (k, {d}) vertices")
        rows.append(t.to(device=device, dtype=dt).mean(0))
    if not rows:
        return torch.zeros((0, d or 0), dtype=dt, device=device)
    return torch.stack(rows)


def split_domain_by_edge(domain: Any) -> list[Any]:
    """The original's ``split_domain_by_edge``: one closed triangle ``[a, b, c, a]`` per edge ``a -> b``
    of a closed domain polygon, with ``c`` the mean of its distinct vertices.

    The triangles tile the (convex) domain, so they can be partitioned separately (one per worker)
    and their regions put together.

    Parameters
    ----------
    domain : (k + 1, d) array or tensor
        A closed polygon (last row repeats the first), in slice coordinates or input space.

    Returns
    -------
    list of (4, d) arrays or tensors
        The same kind as ``domain``.

    Examples
    --------
    >>> import numpy as np
    >>> tris = split_domain_by_edge(np.array([[0.0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]))
    >>> len(tris), tris[0].tolist()
    (4, [[0.0, 0.0], [2.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    """
    d = _np(domain, "domain")
    d = d.reshape(len(d), -1)
    if len(d) < 4 or not np.array_equal(d[0], d[-1]):
        raise SliceError(
            "split_domain_by_edge takes a closed polygon (k + 1, d) whose last row repeats the first, "
            f"with k >= 3; got shape {d.shape}"
        )
    c = d[:-1].mean(0)
    return [_like(np.stack([a, b, c, a]), domain) for a, b in zip(d[:-1], d[1:])]


def get_nneigh_points(dataset: Any, target_classes: Any, device: Any = None) -> Any:
    """Three anchors between two classes of a dataset, as the original's ``get_nneigh_points``.

    The point of class ``target_classes[0]`` closest to any point of class ``target_classes[1]``,
    and its two nearest neighbours of that class: a ``(3, D)`` float32 tensor of flattened,
    channel-first images (pixel values as stored, unscaled), for
    :func:`get_square_slice_from_centroid` or :meth:`splinecam.Slice.from_anchors`.

    Parameters
    ----------
    dataset : torchvision-style dataset, or (data, targets)
        With ``.data`` (``(N, H, W, C)`` NumPy arrays as in CIFAR, or ``(N, H, W)`` as in MNIST;
        a tensor works too) and ``.targets`` (labels).
    target_classes : (int, int)
        The two classes.
    device : str or torch.device, optional
        Where to compute the distances (the original used ``'cuda'``); the result is on the CPU.

    Returns
    -------
    torch.Tensor, shape (3, D)

    Notes
    -----
    Images are made channel-first as torchvision's ``ToTensor`` does, ``(C, H, W)``; the original's
    ``transpose(1, 3)`` also swapped height and width. Grey images ``(N, H, W)`` get one channel.

    Examples
    --------
    >>> import numpy as np
    >>> data = np.zeros((4, 2, 2, 1), dtype=np.uint8); data[2:] = 10; data[1] = 4
    >>> pts = get_nneigh_points((data, [0, 0, 1, 1]), (0, 1))
    >>> pts.shape, pts[:, 0].tolist()
    (torch.Size([3, 4]), [4.0, 10.0, 10.0])
    """
    import torch

    if isinstance(dataset, (tuple, list)) and len(dataset) == 2:
        data, targets = dataset
    elif hasattr(dataset, "data") and hasattr(dataset, "targets"):
        data, targets = dataset.data, dataset.targets
    else:
        raise TypeError(
            "dataset must have .data and .targets (a torchvision dataset such as CIFAR10) or be a "
            f"(data, targets) pair, got {type(dataset).__name__}"
        )
    c0, c1 = (int(c) for c in target_classes)
    x = torch.as_tensor(np.asarray(data.cpu() if _is_torch(data) else data))
    y = np.asarray(targets.cpu() if _is_torch(targets) else targets).reshape(-1)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        x = x.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    else:
        raise SliceError(f"dataset.data must be (N, H, W, C) or (N, H, W) images, got shape {tuple(x.shape)}")
    if len(x) != len(y):
        raise SliceError(f"dataset has {len(x)} images but {len(y)} targets")
    x = x.reshape(len(x), -1).to(device or "cpu", torch.float32)
    m0, m1 = torch.as_tensor(y == c0), torch.as_tensor(y == c1)
    if int(m0.sum()) < 1 or int(m1.sum()) < 2:
        raise SliceError(
            f"get_nneigh_points needs at least one point of class {c0} and two of class {c1}; "
            f"found {int(m0.sum())} and {int(m1.sum())}"
        )
    a, b = x[m0.to(x.device)], x[m1.to(x.device)]
    dist = torch.cdist(a, b)
    i = int(torch.argmin(dist.min(1).values))
    j = torch.argsort(dist[i])[:2]
    return torch.vstack([a[i : i + 1], b[j]]).cpu()


def create_polytope_2d(scale: float = 1, seed: int | None = None, init_points_n: int = 30) -> np.ndarray:
    """A random convex polygon (closed, ``(k + 1, 2)``): the convex hull of random points, centred
    and scaled, as in the original.

    Examples
    --------
    >>> p = create_polytope_2d(seed=10)
    >>> bool((p[0] == p[-1]).all())
    True
    """
    rng = np.random.default_rng(seed)
    pts = rng.random((int(init_points_n), 2))
    hull = _convex_hull(pts)
    poly = hull - hull.mean()
    poly = poly * scale
    return np.vstack([poly, poly[:1]])


def _convex_hull(p: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull (monotone chain)."""
    pts = p[np.lexsort((p[:, 1], p[:, 0]))]

    def half(seq: np.ndarray) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for q in seq:
            while len(out) >= 2:
                a, b = out[-2], out[-1]
                if (b[0] - a[0]) * (q[1] - a[1]) - (b[1] - a[1]) * (q[0] - a[0]) <= 0:
                    out.pop()
                else:
                    break
            out.append(q)
        return out

    lower = half(pts)
    upper = half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])
