"""Products with sparse ``nn.Linear`` weights on CPU stacks.

Networks that encode min and max with ReLUs (lattice networks, max-pooling written as ReLUs) have
weights with one to three non-zeros per row; their wide layers make the engine's dense products
``(3 P, n) @ W.T`` cost ``3 P n out`` multiply-adds where ``3 P nnz`` would do. :func:`linear_rows`
computes ``x @ w.T`` with a compressed sparse weight when that pays: the tensors are on the CPU,
float32 or float64, without gradients, the weight has at least :data:`MIN_ELEMENTS` entries and at
most :data:`MAX_DENSITY` of them are non-zero, and scipy is installed (an optional accelerator: without
it every product stays dense, with the same results up to rounding). The sums then run in another
order than the dense product's, so values may differ from it in the last bits, as between two BLAS
builds.

The sparse form of a weight is made once and kept while the tensor lives and is not changed in place
(its ``_version``).
"""

from __future__ import annotations

import importlib.util
import os
import weakref
from typing import Any

import numpy as np
import torch

__all__ = ["MAX_DENSITY", "MIN_ELEMENTS", "linear_rows", "sparse_weight"]

#: least number of weight entries for the sparse product (below it the dense product is as fast)
MIN_ELEMENTS = 1 << 15
#: most fraction of non-zero weight entries for the sparse product (measured on CPU: 2-4x faster
#: than the dense product at 0.5-2% non-zeros, break-even near 5%)
MAX_DENSITY = 0.02

_HAS_SCIPY: bool | None = None
# id(weight) -> (weak reference to it, its _version then, the sparse form or None); an entry goes with
# its tensor (tensors compare elementwise, so they cannot be keys of a WeakKeyDictionary)
_CACHE: dict[int, tuple[weakref.ref, int, Any]] = {}


def _scipy_sparse() -> Any:
    """``scipy.sparse``, or None where scipy is not installed or ``SPLINECAM_SPARSE=0``."""
    global _HAS_SCIPY
    if os.environ.get("SPLINECAM_SPARSE", "1") == "0":
        return None
    if _HAS_SCIPY is None:
        _HAS_SCIPY = importlib.util.find_spec("scipy") is not None
    if not _HAS_SCIPY:
        return None
    import scipy.sparse

    return scipy.sparse


def sparse_weight(w: torch.Tensor) -> Any:
    """The transposed weight ``w.T`` ``(in, out)`` as a scipy CSR matrix when the sparse product
    serves (see the module docstring), else None.

    Examples
    --------
    >>> w = torch.zeros(300, 200, dtype=torch.float64)
    >>> w[torch.arange(300), torch.arange(300) % 200] = 1.0
    >>> sparse_weight(w) is not None or _scipy_sparse() is None
    True
    >>> sparse_weight(torch.ones(300, 200, dtype=torch.float64)) is None
    True
    """
    if (
        w.dim() != 2
        or w.numel() < MIN_ELEMENTS
        or w.device.type != "cpu"
        or w.dtype not in (torch.float32, torch.float64)
        or w.requires_grad
        or w.is_sparse
    ):
        return None
    key = id(w)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is w and hit[1] == w._version:
        return hit[2]
    sp = _scipy_sparse()
    mat = None
    if sp is not None:
        a = w.detach().numpy()
        nnz = int(np.count_nonzero(a))
        if nnz <= MAX_DENSITY * a.size:
            mat = sp.csr_matrix(a.T)
    try:
        ref = weakref.ref(w, lambda _r, k=key: _CACHE.pop(k, None))
    except TypeError:  # (a tensor that cannot be weakly referenced: no cache)
        return mat
    _CACHE[key] = (ref, w._version, mat)
    return mat


def linear_rows(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x @ w.T`` for rows ``x`` ``(N, in)`` and a weight ``w`` ``(out, in)``: ``(N, out)``, with the
    sparse weight of :func:`sparse_weight` where it serves, else ``torch.nn.functional.linear``.

    Examples
    --------
    >>> w = torch.zeros(400, 300, dtype=torch.float64)
    >>> w[torch.arange(400), torch.arange(400) % 300] = 2.0
    >>> x = torch.randn(6, 300, dtype=torch.float64)
    >>> bool(torch.allclose(linear_rows(x, w), x @ w.T))
    True
    """
    mat = sparse_weight(w) if not x.requires_grad and x.device.type == "cpu" and x.dtype == w.dtype else None
    if mat is None or x.dim() != 2:
        return torch.nn.functional.linear(x, w)
    xa = x.detach().numpy() if x.is_contiguous() else x.detach().contiguous().numpy()
    # scipy's sparse @ dense reads the dense operand and writes its result in C order: the input's
    # and the result's transposes are made in blocks of rows (2-4x faster than numpy's plain
    # transposing copy on arrays of tens of MB, which walks one of the two arrays across the cache)
    y = mat.T @ _transposed(xa)  # (out, N)
    return torch.from_numpy(_transposed(y))


#: rows per block of :func:`_transposed`
_BLOCK = 1024


def _transposed(a: np.ndarray) -> np.ndarray:
    """``a.T`` as a C-contiguous copy, made in blocks of rows of ``a``."""
    n0, n1 = a.shape
    if n0 * n1 <= _BLOCK * 64:
        return np.ascontiguousarray(a.T)
    out = np.empty((n1, n0), dtype=a.dtype)
    for i in range(0, n0, _BLOCK):
        out[:, i:i + _BLOCK] = a[i:i + _BLOCK].T
    return out
