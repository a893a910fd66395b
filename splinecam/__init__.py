"""splinecam: exact geometry of piecewise-linear deep networks on 2-D slices of input space.

Examples
--------
>>> import torch, splinecam as sc
>>> net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2)).eval()
>>> part = sc.partition(net, sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2)))
>>> bool(part.verify(net))
True
"""

from __future__ import annotations

from .engine import partition
from .errors import NotPiecewiseLinearError, SliceError, SplineCamError, UnsupportedModelError
from .result import Partition
from .slice import Slice
from .verify import VerifyReport

__version__ = "0.1.0"

__all__ = [
    "Partition",
    "Slice",
    "partition",
    "VerifyReport",
    "SplineCamError",
    "NotPiecewiseLinearError",
    "UnsupportedModelError",
    "SliceError",
    "__version__",
]
