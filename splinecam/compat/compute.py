"""The original SplineCam toolbox's ``get_partitions_with_db``, computed by :func:`splinecam.partition`.

Examples
--------
>>> import torch, splinecam as sc
>>> _ = torch.manual_seed(0)
>>> model = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).eval()
>>> domain = sc.utils.get_square_slice_from_one_anchor(torch.randn(1, 10), pad_dist=1.0, seed=0)
>>> T = sc.utils.get_proj_mat(domain)
>>> NN = sc.wrappers.model_wrapper(model, input_shape=(10,), T=T)
>>> regions, db, Abw = sc.compute.get_partitions_with_db(domain, T, NN)
>>> Abw.shape[1:], bool((regions[0][0] == regions[0][-1]).all())
(torch.Size([1, 3]), True)
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import torch

from .wrappers import model_wrapper

__all__ = ["get_partitions_with_db", "zero_set_segments"]


def get_partitions_with_db(
    domain: Any,
    T: Any,
    NN: Any,
    fwd_batch_size: Any = None,
    batch_size: Any = None,
    n_workers: Any = None,
    Abw_batch_size: Any = None,  # noqa: N803 - the original toolbox's name
    *,
    classes: Any = None,
    argmax: bool = False,
    progress: bool = False,
    chunk_size: int | None = None,
) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Linear regions, decision boundary and per-region affine maps of ``NN`` on ``domain``.

    Parameters
    ----------
    domain : array_like
        The domain polygon (closed or not): ``(k, D)`` in input space, as returned by
        :func:`splinecam.utils.get_square_slice_from_one_anchor`, or ``(k, 2)`` in slice coordinates.
    T : array_like, shape (D, 3)
        Projection matrix ``[v1 | v2 | c]`` (:func:`splinecam.utils.get_proj_mat`); None: ``NN.T``.
    NN : model_wrapper or torch.nn.Module
        The wrapped model (a bare module is wrapped with ``input_shape=(D,)``).
    fwd_batch_size, batch_size, n_workers, Abw_batch_size : optional
        The original's batching settings, in its order (positional or keyword): accepted and ignored
        (the engine streams regions in chunks of its own; see ``chunk_size``).
    classes : (int, int), optional
        Only where these two outputs are equal, as after
        ``NN.layers[-1].to_decision_boundary(between_class=classes)``.
    argmax : bool
        Return the exact decision boundary instead (where the argmax class changes:
        :meth:`splinecam.Partition.decision_boundary`, restricted to ``classes`` if given).
    progress, chunk_size :
        Passed to :func:`splinecam.partition` (keyword only).

    Returns
    -------
    regions : list of (k_i + 1, 2) float64 tensors
        Each region's vertices in slice coordinates ``u`` (counter-clockwise), closed: the last
        vertex repeats the first, as in the original.
    boundary_segments : (S, 2, 2) float64 tensor
        Segments ``[[u_start], [u_end]]`` (slice coordinates), following the original's
        ``endpoints``: the pieces, inside each region, of the zero set of each output (for one
        output: its decision boundary ``f = 0``), unless ``NN.layers[-1].to_decision_boundary()`` was
        called: then of the sets where two outputs are equal (every pair ``i < j``, or its
        ``between_class``). For several outputs neither is the decision boundary (a pair's equality
        set runs on where a third class wins); ``argmax=True`` gives the exact argmax boundary.
    affine_maps : (R, out, 3) float64 tensor
        ``[A | b]`` of each region: the network's output is ``Abw[r] @ [u, 1]`` on region ``r``
        (the original returned the maps of the penultimate layer; these are the output's).

    The :class:`~splinecam.Partition` itself is kept as ``NN.last_partition``.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    >>> dom = sc.utils.get_square_slice_from_one_anchor(torch.randn(1, 4), pad_dist=2.0, seed=0)
    >>> NN = sc.wrappers.model_wrapper(net, input_shape=(4,), T=sc.utils.get_proj_mat(dom))
    >>> _, zero_sets, _ = sc.compute.get_partitions_with_db(dom, None, NN)      # f_k = 0, k = 0, 1, 2
    >>> NN.layers[-1].to_decision_boundary()
    True
    >>> _, pairs, _ = sc.compute.get_partitions_with_db(dom, None, NN)          # f_i = f_j, i < j
    >>> _, db, _ = sc.compute.get_partitions_with_db(dom, None, NN, argmax=True)  # the argmax boundary
    >>> len(db) <= len(pairs)
    True
    """
    from ..partitioning import partition

    del fwd_batch_size, batch_size, n_workers, Abw_batch_size  # the original's batching: not needed
    if not isinstance(NN, model_wrapper):
        if isinstance(NN, torch.nn.Module):
            NN = model_wrapper(NN, T=T)
        else:
            raise TypeError(f"NN must be a splinecam.wrappers.model_wrapper or a torch.nn.Module, got {type(NN).__name__}")
    sl = NN.slice(domain, T)
    part = partition(NN.model, sl, dtype=NN.dtype, device=NN.device, progress=progress, chunk_size=chunk_size)
    NN.last_partition = part
    regions = [torch.from_numpy(np.concatenate([p, p[:1]], 0)) for p in part.polygons()]
    a, b = part.output_affine
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if argmax:
        seg = np.asarray(part.decision_boundary(classes=classes).segments, dtype=np.float64).reshape(-1, 2, 2)
    else:
        mode, pair = NN.boundary_mode()
        if classes is not None:
            mode, pair = "pairs", tuple(int(c) for c in classes)
        if mode == "pairs" and a.shape[1] >= 2:
            n = a.shape[1]
            pairs = np.array(list(combinations(range(n), 2)) if pair is None else [pair], dtype=np.int64)
            if pair is not None and (pair[0] == pair[1] or not all(0 <= c < n for c in pair)):
                raise ValueError(f"classes must be two different outputs in [0, {n}), got {pair}")
            g, h = a[:, pairs[:, 0]] - a[:, pairs[:, 1]], b[:, pairs[:, 0]] - b[:, pairs[:, 1]]
        else:
            g, h = a, b
        seg = zero_set_segments(part, g, h)
    abw = np.concatenate([a, b[..., None]], -1)
    return regions, torch.from_numpy(np.ascontiguousarray(seg)), torch.from_numpy(abw)


def zero_set_segments(part: Any, g: np.ndarray, h: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Where affine functions vanish inside each region: segments ``(S, 2, 2)``.

    On region ``r`` the ``m`` functions are ``g[r, j] @ u + h[r, j]`` (``g`` ``(R, m, 2)``, ``h``
    ``(R, m)``). Each one whose sign differs between the region's vertices gives the segment between
    the two points where it crosses the region's border (regions are convex). Ordered by region,
    then function.

    Examples
    --------
    >>> import torch, numpy as np, splinecam as sc
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 1)).eval()
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0, 0.0]])); _ = net[0].bias.zero_()
    >>> part = sc.partition(net, sc.Slice.box())
    >>> a, b = part.output_affine
    >>> zero_set_segments(part, a, b).round(12).tolist()
    [[[0.0, -1.0], [0.0, 1.0]]]
    """
    poly, nv = part.padded_polygons()
    r, k, _ = poly.shape
    out: list[np.ndarray] = []
    slot = np.arange(k)
    nxt = np.where(slot[None] + 1 < nv[:, None], slot[None] + 1, 0)  # (R, K)
    valid = slot[None] < nv[:, None]
    for s in range(0, r, chunk):
        p = poly[s : s + chunk]
        v = np.einsum("rkd,rmd->rkm", p, g[s : s + chunk]) + h[s : s + chunk, None, :]  # (C, K, m)
        nx = nxt[s : s + chunk]
        vn = np.take_along_axis(v, nx[..., None], axis=1)
        pn = np.take_along_axis(p, nx[..., None], axis=1)
        cross = ((v > 0) != (vn > 0)) & valid[s : s + chunk, :, None]  # (C, K, m)
        cnt = cross.sum(1)  # (C, m): 0 or 2 for a convex region
        ci, mi = np.nonzero(cnt == 2)
        if not len(ci):
            continue
        cr = cross[ci, :, mi]  # (S, K)
        first = np.argmax(cr, axis=1)
        second = k - 1 - np.argmax(cr[:, ::-1], axis=1)
        pts = []
        for e in (first, second):
            va, vb = v[ci, e, mi], vn[ci, e, mi]
            t = va / (va - vb)
            pts.append(p[ci, e] + t[:, None] * (pn[ci, e] - p[ci, e]))
        seg = np.stack(pts, 1)
        keep = np.hypot(*(seg[:, 1] - seg[:, 0]).T) > 0
        out.append(seg[keep])
    return np.concatenate(out) if out else np.zeros((0, 2, 2))
