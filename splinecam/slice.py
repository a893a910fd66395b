"""Two-dimensional affine slices of a model's input space.

A :class:`Slice` maps slice coordinates ``u`` (shape ``(N, 2)``) into input space through
``x = origin + basis @ u`` and carries a convex *domain* polygon in ``u`` over which a partition
is computed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import AnchorShapeWarning, SliceError

__all__ = ["Slice"]


def _as_numpy(x: Any, name: str) -> np.ndarray:
    try:
        import torch

        if isinstance(x, torch.Tensor):
            x = x.detach().to("cpu", torch.float64).numpy()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SliceError(f"{name} must be an array of numbers, got {type(x).__name__}") from exc
    if not np.all(np.isfinite(arr)):
        raise SliceError(f"{name} contains NaN or Inf values; pass finite coordinates")
    return arr


def _check_domain(domain: Any) -> np.ndarray:
    """Validate a convex polygon and return it counter-clockwise, shape ``(k, 2)``."""
    poly = _as_numpy(domain, "domain")
    if poly.ndim != 2 or poly.shape[1] != 2 or poly.shape[0] < 3:
        raise SliceError(
            f"domain must be a (k, 2) array of k >= 3 polygon vertices, got shape {poly.shape}"
        )
    # every test on the polygon centred and scaled to about [-1, 1]: areas and cross products of
    # huge coordinates (1e200) would overflow, and of tiny ones underflow
    # (halves first: neither the sum nor the difference of two coordinates near 1e308 overflows)
    mid = 0.5 * poly.max(0) + 0.5 * poly.min(0)
    half = float(np.max(0.5 * poly.max(0) - 0.5 * poly.min(0))) or 0.5
    q = 2.0 * ((0.5 * poly - 0.5 * mid) / half)
    # orientation from the shoelace formula; make it counter-clockwise
    x, y = (q - q.mean(0)).T
    area2 = float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    if not abs(area2) > 1e-14:
        raise SliceError(
            "domain polygon has zero signed area: its vertices are collinear or the polygon crosses "
            "itself; give the vertices of a convex polygon in order around it"
        )
    if area2 < 0:
        poly = poly[::-1].copy()
        q = q[::-1].copy()
    e = np.roll(q, -1, axis=0) - q
    if np.any(np.hypot(e[:, 0], e[:, 1]) <= 1e-14):
        raise SliceError("domain polygon has repeated consecutive vertices; remove the duplicates")
    turn = e[:, 0] * np.roll(e[:, 1], -1) - e[:, 1] * np.roll(e[:, 0], -1)
    norms = np.hypot(e[:, 0], e[:, 1]) * np.roll(np.hypot(e[:, 0], e[:, 1]), -1)
    if np.any(turn <= 1e-12 * norms):
        raise SliceError(
            "domain polygon is not strictly convex (a reflex or straight angle); splinecam needs a "
            "convex polygon with vertices in order, e.g. a box or the convex hull of your points"
        )
    angles = np.arctan2(turn, np.sum(e * np.roll(e, -1, axis=0), axis=1))
    if abs(float(np.sum(angles)) - 2 * math.pi) > 1e-6:
        raise SliceError(
            "domain polygon is self-intersecting (it winds around more than once); give the "
            "vertices of a convex polygon in order"
        )
    return poly


class Slice:
    """A 2-D affine slice ``x = origin + basis @ u`` of input space with a convex domain.

    Parameters
    ----------
    origin : array_like
        A point of input space, any shape (``(2,)``, ``(10,)``, ``(3, 32, 32)``). Its shape is the
        model's input shape (without the batch axis).
    basis : array_like, shape (D, 2)
        Two directions of input space (``D = origin.size``), linearly independent.
    domain : array_like, shape (k, 2)
        Vertices of a convex polygon in slice coordinates, in order (either orientation).
    anchors : array_like, shape (m, 2), optional
        Slice coordinates of special points (the anchors of :meth:`from_anchors`), for plotting.

    Examples
    --------
    >>> import numpy as np, splinecam as sc
    >>> sl = sc.Slice(origin=np.zeros(3), basis=np.eye(3)[:, :2],
    ...               domain=[[-1, -1], [1, -1], [1, 1], [-1, 1]])
    >>> sl.to_input(np.array([[0.5, 0.25]]))
    array([[0.5 , 0.25, 0.  ]])
    """

    def __init__(self, origin: Any, basis: Any, domain: Any, anchors: Any = None) -> None:
        o = _as_numpy(origin, "origin")
        if o.ndim == 0:
            raise SliceError("origin must be a point of input space (an array), not a scalar")
        self.input_shape: tuple[int, ...] = tuple(int(s) for s in o.shape)
        d = int(o.size)
        b = _as_numpy(basis, "basis")
        if b.shape == (2, d) and d != 2:
            b = b.T
        if b.ndim != 2 or b.shape != (d, 2):
            raise SliceError(
                f"basis must have shape (D, 2) = ({d}, 2) for an origin of shape {o.shape}, "
                f"got {b.shape}"
            )
        sv = np.linalg.svd(b, compute_uv=False)
        if sv[0] == 0 or sv[1] <= 1e-12 * sv[0]:
            raise SliceError(
                "basis is rank-deficient: its two directions are (nearly) parallel or zero; give "
                "two linearly independent directions"
            )
        self.origin = o.reshape(-1)
        self.basis = b
        self.domain = _check_domain(domain)
        self.anchors = None if anchors is None else _as_numpy(anchors, "anchors").reshape(-1, 2)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def box(cls, xlim: Sequence[float] = (-1.0, 1.0), ylim: Sequence[float] = (-1.0, 1.0)) -> Slice:
        """The input plane of a model with 2-D input, restricted to a box.

        Examples
        --------
        >>> import splinecam as sc
        >>> sc.Slice.box(xlim=(-2, 2), ylim=(-1, 1)).domain.tolist()
        [[-2.0, -1.0], [2.0, -1.0], [2.0, 1.0], [-2.0, 1.0]]
        """
        (x0, x1), (y0, y1) = (map(float, xlim), map(float, ylim))
        if not (x1 > x0 and y1 > y0):
            raise SliceError(f"box needs xlim[0] < xlim[1] and ylim[0] < ylim[1], got {xlim}, {ylim}")
        dom = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
        return cls(origin=np.zeros(2), basis=np.eye(2), domain=dom)

    @classmethod
    def from_anchors(
        cls,
        anchors: Any,
        pad: float = 2.0,
        seed: int | None = 0,
        input_shape: Sequence[int] | None = None,
    ) -> Slice:
        """A square slice through 1, 2 or 3 anchor points of input space.

        Parameters
        ----------
        anchors : list of arrays, or array of shape (m, *input_shape)
            One anchor: the slice is centred on it, along two random orthonormal directions.
            Two: it contains the line through both, plus a random orthogonal direction.
            Three: the plane through all three. A list gives one anchor per element; an array's first
            axis indexes the anchors (pass ``x[None]`` for a single anchor, or ``input_shape``). A
            3-D array of at most 3 rows without ``input_shape`` (``(3, 8, 8)``: probably one
            unbatched image) is read as anchors of shape ``(8, 8)`` with an
            :class:`~splinecam.errors.AnchorShapeWarning`.
        pad : float
            Margin around the anchors, in input-space units (the half-width for one anchor).
        seed : int or None
            Seed of the random directions.
        input_shape : sequence of int, optional
            The model's input shape, to read a single array as one anchor unambiguously.

        Examples
        --------
        >>> import numpy as np, splinecam as sc
        >>> sl = sc.Slice.from_anchors([np.zeros(5), np.ones(5)], pad=1.0)
        >>> np.round(sl.to_slice(np.ones((1, 5))), 6).tolist()
        [[1.118034, 0.0]]
        """
        if isinstance(anchors, (list, tuple)):
            pts = [_as_numpy(a, "anchor") for a in anchors]
        else:
            arr = _as_numpy(anchors, "anchors")
            if input_shape is not None and tuple(arr.shape) == tuple(input_shape):
                arr = arr[None]
            if arr.ndim < 2:
                arr = arr[None]
            elif arr.ndim == 3 and input_shape is None and arr.shape[0] <= 3:
                # anchors of rank 2 are unusual (vectors are 1-D, images (C, H, W)): most likely one
                # unbatched image read along its channel axis
                warnings.warn(
                    f"Slice.from_anchors: a {tuple(arr.shape)} {type(anchors).__name__} was read as "
                    f"{arr.shape[0]} anchor{'s' if arr.shape[0] > 1 else ''} of shape {tuple(arr.shape[1:])}; "
                    f"for one input of shape {tuple(arr.shape)} pass x[None] (or input_shape="
                    f"{tuple(arr.shape)}). To mean {arr.shape[0]} anchors, pass them as a list",
                    AnchorShapeWarning,
                    stacklevel=2,
                )
            pts = list(arr)
        if not 1 <= len(pts) <= 3:
            raise SliceError(f"from_anchors takes 1, 2 or 3 anchors, got {len(pts)}")
        shape = pts[0].shape
        if any(p.shape != shape for p in pts):
            raise SliceError(f"anchors have different shapes: {[p.shape for p in pts]}")
        if input_shape is not None and tuple(shape) != tuple(input_shape):
            raise SliceError(f"anchors have shape {shape}, expected input_shape {tuple(input_shape)}")
        if not pad > 0:
            raise SliceError(f"pad must be positive, got {pad}")
        flat = np.stack([p.reshape(-1) for p in pts])
        d = flat.shape[1]
        if d < 2:
            raise SliceError("a slice needs an input space of at least 2 dimensions")
        rng = np.random.default_rng(seed)

        def random_orthogonal(against: list[np.ndarray]) -> np.ndarray:
            for _ in range(100):
                v = rng.standard_normal(d)
                for q in against:
                    v -= (v @ q) * q
                n = np.linalg.norm(v)
                if n > 1e-6:
                    return v / n
            raise SliceError("could not draw a direction orthogonal to the anchors")  # pragma: no cover

        if len(pts) == 1:
            origin = flat[0]
            q1 = random_orthogonal([])
            q2 = random_orthogonal([q1])
            half = float(pad)
        else:
            origin = flat.mean(0)
            q1 = flat[1] - flat[0]
            n1 = np.linalg.norm(q1)
            if n1 <= 1e-12 * max(1.0, np.abs(flat).max()):
                raise SliceError("anchors coincide; give distinct anchor points")
            q1 = q1 / n1
            if len(pts) == 2:
                q2 = random_orthogonal([q1])
            else:
                v = flat[2] - flat[0]
                v = v - (v @ q1) * q1
                n2 = np.linalg.norm(v)
                if n2 <= 1e-9 * n1:
                    raise SliceError("the three anchors are collinear; they do not span a plane")
                q2 = v / n2
            basis = np.stack([q1, q2], 1)
            uv = (flat - origin) @ basis
            half = float(np.abs(uv).max()) + float(pad)
        basis = np.stack([q1, q2], 1)
        uv = (flat - origin) @ basis
        dom = [[-half, -half], [half, -half], [half, half], [-half, half]]
        return cls(origin=origin.reshape(shape), basis=basis, domain=dom, anchors=uv)

    # ------------------------------------------------------------------ maps
    @property
    def dim(self) -> int:
        """Number of input-space dimensions ``D``."""
        return int(self.origin.size)

    def to_input(self, u: Any) -> Any:
        """Map slice points ``(N, 2)`` to input space ``(N, *input_shape)``.

        A torch tensor gives a torch tensor (same device, float64 unless ``u`` is another float
        type); anything else gives a NumPy array.
        """
        try:
            import torch

            if isinstance(u, torch.Tensor):
                dt = u.dtype if u.is_floating_point() else torch.float64
                o = torch.as_tensor(self.origin, dtype=dt, device=u.device)
                b = torch.as_tensor(self.basis, dtype=dt, device=u.device)
                x = o + u.to(dt).reshape(-1, 2) @ b.T
                return x.reshape(-1, *self.input_shape)
        except ImportError:  # pragma: no cover
            pass
        uu = np.asarray(u, dtype=np.float64).reshape(-1, 2)
        return (self.origin + uu @ self.basis.T).reshape(-1, *self.input_shape)

    def to_slice(self, x: Any) -> np.ndarray:
        """Least-squares projection of input points ``(N, *input_shape)`` to slice coordinates."""
        xx = _as_numpy(x, "x").reshape(-1, self.dim) - self.origin
        sol, *_ = np.linalg.lstsq(self.basis, xx.T, rcond=None)
        return sol.T

    @property
    def input_axes(self) -> tuple[int, int] | None:
        """The two input coordinates that ``u`` *is*, or None for a general slice.

        ``(i, j)`` (flat indices into the input) when the basis columns are the unit vectors
        ``e_i`` and ``e_j`` and the origin is zero at ``i`` and ``j``, so that ``u_1 = x_i`` and
        ``u_2 = x_j`` exactly: :meth:`box` gives ``(0, 1)``; an axis-aligned slice of a 3-D input at
        height ``z = 0.5`` gives ``(0, 1)`` too. Plots label such axes ``x_{i+1}``, ``x_{j+1}``.

        Examples
        --------
        >>> import numpy as np, splinecam as sc
        >>> sc.Slice.box().input_axes
        (0, 1)
        >>> sc.Slice(origin=[0.0, 0.5, 0.0], basis=np.eye(3)[:, [0, 2]], domain=sc.Slice.box().domain).input_axes
        (0, 2)
        >>> print(sc.Slice.from_anchors(np.zeros(4)).input_axes)
        None
        """
        b = self.basis
        idx = np.argmax(np.abs(b), axis=0)
        unit = np.zeros_like(b)
        unit[idx, [0, 1]] = 1.0
        if idx[0] == idx[1] or not np.array_equal(b, unit) or np.any(self.origin[idx] != 0):
            return None
        return int(idx[0]), int(idx[1])

    # ------------------------------------------------------------------ misc
    @property
    def center(self) -> np.ndarray:
        """Vertex mean of the domain polygon (a point strictly inside it)."""
        return self.domain.mean(0)

    def to_dict(self) -> dict[str, np.ndarray]:
        out = {
            "origin": self.origin.reshape(self.input_shape),
            "basis": self.basis,
            "domain": self.domain,
        }
        if self.anchors is not None:
            out["anchors"] = self.anchors
        return out

    def __repr__(self) -> str:
        lo, hi = self.domain.min(0), self.domain.max(0)
        return (
            f"Slice(input_shape={self.input_shape}, domain={len(self.domain)}-gon in "
            f"[{lo[0]:.3g}, {hi[0]:.3g}] x [{lo[1]:.3g}, {hi[1]:.3g}])"
        )
