"""Exceptions raised by splinecam.

Every error names the culprit (a module path, an argument) and says what to do about it.
"""

from __future__ import annotations

__all__ = [
    "SplineCamError",
    "NotPiecewiseLinearError",
    "UnsupportedModelError",
    "SliceError",
    "SplineCamWarning",
    "LargePartitionWarning",
    "AnchorShapeWarning",
    "PrecisionWarning",
]


class SplineCamError(Exception):
    """Base class of all splinecam errors."""


class NotPiecewiseLinearError(SplineCamError, TypeError):
    """A module or function of the model is not piecewise-linear (or not supported yet)."""


class UnsupportedModelError(SplineCamError, ValueError):
    """The model as a whole cannot be analysed (training mode, NaN weights, wrong input shape...)."""


class SliceError(SplineCamError, ValueError):
    """A slice is malformed (rank-deficient basis, non-convex domain, shape mismatch...)."""


class SplineCamWarning(UserWarning):
    """Base class of all splinecam warnings."""


class LargePartitionWarning(SplineCamWarning):
    """The slice is estimated to have very many regions (see :func:`splinecam.estimate_regions`):
    the run will take long and use much memory. Shrink the slice (a smaller ``pad`` or box) or raise
    the threshold (``partition(..., warn_regions=...)``)."""


class AnchorShapeWarning(SplineCamWarning):
    """An array given to :meth:`splinecam.Slice.from_anchors` was split along its first axis into
    anchors of an unusual shape (probably one unbatched image read as several anchors)."""


class PrecisionWarning(SplineCamWarning):
    """A computation runs in a precision below the exactness contract's (float64): results may hold
    rounding errors far above its tolerances (``dtype=torch.float32``)."""
