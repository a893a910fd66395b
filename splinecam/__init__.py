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

from . import boundary, compute, datasets, graph, plot, record, stats, utils, wrappers
from .boundary import BoundaryError, DecisionBoundary
from .engine import partition
from .errors import NotPiecewiseLinearError, SliceError, SplineCamError, UnsupportedModelError
from .graph import DecisionRegion
from .plot import plot_image, plot_partition, plot_surface
from .record import Recorder, Snapshot
from .result import Partition
from .slice import Slice
from .stats import density, statistics
from .verify import VerifyReport

__version__ = "0.1.0"

__all__ = [
    # core
    "Partition",
    "Slice",
    "partition",
    "VerifyReport",
    # downstream
    "DecisionBoundary",
    "DecisionRegion",
    "statistics",
    "density",
    "plot_partition",
    "plot_surface",
    "plot_image",
    # training dynamics
    "Recorder",
    "Snapshot",
    # errors
    "BoundaryError",
    "SplineCamError",
    "NotPiecewiseLinearError",
    "UnsupportedModelError",
    "SliceError",
    "__version__",
    # submodules (the original toolbox's names live in utils, wrappers, compute and plot)
    "boundary",
    "compute",
    "datasets",
    "graph",
    "plot",
    "record",
    "stats",
    "utils",
    "wrappers",
]
