"""Exact extremes of one output of the network over the slice's domain.

On every region the network is affine, so over the region's (convex) polygon each output reaches
its extremes at vertices of the polygon; over the whole domain, the minimum and the maximum of a
continuous piecewise-affine function are therefore reached at vertices of the partition. Each
region's own affine map is evaluated at each of its own vertices: a vertex shared by several
regions is evaluated by every one of them (their values agree up to rounding; the largest and the
smallest count), so nothing depends on which region a vertex is read from.

With a :meth:`splinecam.Slice.box` slice of a network with 2 inputs, this decides input-box
properties exactly, as neural-network verifiers do: ``f_k(x) <= c`` for every ``x`` in the box iff
``output_range(part, k).max <= c``.

Examples
--------
>>> import torch, splinecam as sc
>>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1)).double().eval()
>>> with torch.no_grad():  # f(x, y) = relu(x) + relu(-y)
...     _ = net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]])); _ = net[0].bias.zero_()
...     _ = net[2].weight.fill_(1.0); _ = net[2].bias.zero_()
>>> r = sc.partition(net, sc.Slice.box((-1, 2), (-3, 1))).output_range(0)
>>> r.min, r.max, r.argmax_u.tolist()
(0.0, 5.0, [2.0, -3.0])
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SplineCamError

__all__ = ["OutputRange", "OutputRangeError", "output_range"]


class OutputRangeError(SplineCamError, ValueError):
    """An output range was requested with invalid arguments."""


@dataclass(frozen=True)
class OutputRange:
    """The exact minimum and maximum of one output over a partition's domain.

    Attributes
    ----------
    output : int
        Index of the output (in the flattened output).
    min, max : float
        The smallest and the largest value of the output over the domain.
    argmin_u, argmax_u : ndarray, shape (2,)
        A point of the domain (a vertex of the partition, in slice coordinates) where the minimum,
        resp. the maximum, is reached.
    argmin_x, argmax_x : ndarray, shape (*input_shape)
        The same points in the model's input space (``slice.to_input``).
    argmin_region, argmax_region : int
        A region having that vertex, whose affine map gives the value.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 1)).double().eval()
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0, 2.0]])); _ = net[0].bias.fill_(0.5)
    >>> r = sc.partition(net, sc.Slice.box((0, 1), (0, 1))).output_range()
    >>> (r.min, r.max, r.span)
    (0.5, 3.5, 3.0)
    """

    output: int
    min: float
    max: float
    argmin_u: np.ndarray
    argmax_u: np.ndarray
    argmin_x: np.ndarray
    argmax_x: np.ndarray
    argmin_region: int
    argmax_region: int

    @property
    def span(self) -> float:
        """``max - min``."""
        return self.max - self.min

    def __repr__(self) -> str:
        return (
            f"OutputRange(output {self.output}: min {self.min:.6g} at u={np.round(self.argmin_u, 6).tolist()}, "
            f"max {self.max:.6g} at u={np.round(self.argmax_u, 6).tolist()})"
        )


def output_range(part: Any, output: int = 0) -> OutputRange:
    """The exact minimum and maximum of one output over the partition's domain, and where.

    Parameters
    ----------
    part : Partition
        A partition computed with the network's outputs (``sc.partition(model, slice)``).
    output : int
        Index of the output (of the flattened output) in ``[0, num_outputs)``.

    Returns
    -------
    OutputRange

    Raises
    ------
    OutputRangeError
        The partition stores no outputs, or ``output`` is not an index in ``[0, num_outputs)``.

    Notes
    -----
    Exact up to float64 rounding: the values are those of the regions' affine maps, which agree
    with the model up to rounding (``Partition.verify`` checks 1e-9 relative). The maps are
    evaluated in coordinates centred on the domain, as the engine computes them, so that a small
    domain far from the origin loses no precision.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> torch.manual_seed(0) and None
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2)).eval()
    >>> part = sc.partition(net, sc.Slice.box((-2, 2), (-2, 2)))
    >>> from splinecam.analysis.extremes import output_range
    >>> r = output_range(part, output=1)
    >>> y = net(torch.as_tensor(r.argmax_x[None], dtype=torch.float32))[0, 1].item()
    >>> abs(y - r.max) < 1e-5
    True
    """
    n_out = int(part.num_outputs)
    if n_out == 0:
        raise OutputRangeError(
            "this partition stores no outputs (num_outputs == 0), so it has no output range; compute "
            "the partition of the full model (including its output layer) with sc.partition(model, slice)"
        )
    bad = isinstance(output, (bool, np.bool_)) or "bool" in str(getattr(output, "dtype", ""))
    try:
        if bad:
            raise TypeError
        k = operator.index(output)
    except TypeError:
        raise OutputRangeError(f"output must be an integer output index, got {output!r}") from None
    if not 0 <= k < n_out:
        raise OutputRangeError(f"output must be an output index in [0, {n_out}), got {k}")
    a, b = part.output_affine
    a_k = np.asarray(a, dtype=np.float64)[:, k]  # (R, 2)
    c = np.asarray(part.slice.center, dtype=np.float64)
    b_k = np.asarray(b, dtype=np.float64)[:, k] + a_k @ c  # constants at the centre
    rv = np.asarray(part.region_vertices, dtype=np.int64)
    ptr = np.asarray(part.region_ptr, dtype=np.int64)
    reg = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    q = np.asarray(part.vertices, dtype=np.float64)[rv] - c
    # every region's map at every one of its vertices
    val = np.einsum("nd,nd->n", a_k[reg], q) + b_k[reg]
    lo = int(np.argmin(val))
    hi = int(np.argmax(val))
    verts = np.asarray(part.vertices, dtype=np.float64)
    u_lo = verts[rv[lo]].copy()
    u_hi = verts[rv[hi]].copy()
    x = np.asarray(part.slice.to_input(np.stack([u_lo, u_hi])))
    return OutputRange(
        output=k,
        min=float(val[lo]),
        max=float(val[hi]),
        argmin_u=u_lo,
        argmax_u=u_hi,
        argmin_x=x[0],
        argmax_x=x[1],
        argmin_region=int(reg[lo]),
        argmax_region=int(reg[hi]),
    )
