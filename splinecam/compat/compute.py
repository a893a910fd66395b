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

from typing import Any

import numpy as np
import torch

from .wrappers import model_wrapper

__all__ = ["get_partitions_with_db"]


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
    classes : optional
        Passed to :meth:`Partition.decision_boundary`.
    fwd_batch_size, batch_size, n_workers, Abw_batch_size : optional
        The original's batching settings, in its order (positional or keyword): accepted and ignored
        (the engine streams regions in chunks of its own; see ``chunk_size``).
    progress, chunk_size :
        Passed to :func:`splinecam.partition` (keyword only).

    Returns
    -------
    regions : list of (k_i + 1, 2) float64 tensors
        Each region's vertices in slice coordinates ``u`` (counter-clockwise), closed: the last
        vertex repeats the first, as in the original.
    boundary_segments : (S, 2, 2) float64 tensor
        The decision boundary's segments ``[[u_start], [u_end]]`` (slice coordinates).
    affine_maps : (R, out, 3) float64 tensor
        ``[A | b]`` of each region: the network's output is ``Abw[r] @ [u, 1]`` on region ``r``
        (the original returned the maps of the penultimate layer; these are the output's).

    The :class:`~splinecam.Partition` itself is kept as ``NN.last_partition``.
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
    db = part.decision_boundary(classes=classes)
    seg = np.asarray(db.segments, dtype=np.float64).reshape(-1, 2, 2)
    a, b = part.output_affine
    abw = np.concatenate([np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)[..., None]], -1)
    return regions, torch.from_numpy(seg.copy()), torch.from_numpy(abw)
