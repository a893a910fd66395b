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

import sys as _sys

from . import datasets, layers, models
from .analysis import boundary, graph, stats
from .analysis.boundary import BoundaryError, DecisionBoundary
from .analysis.complexity import LocalComplexity, local_complexity
from .analysis.graph import DecisionRegion
from .analysis.stats import density, statistics
from .compat import compute, utils, wrappers
from .engine.estimate import RegionEstimate, estimate_regions
from .errors import (
    AnchorShapeWarning,
    LargePartitionWarning,
    NotPiecewiseLinearError,
    PrecisionWarning,
    SliceError,
    SplineCamError,
    SplineCamWarning,
    UnsupportedModelError,
)
from .many import iter_partitions, partition_many
from .partitioning import partition
from .result import Partition
from .slice import Slice
from .verify import VerifyReport
from .viz import plot, record
from .viz.plot import plot_image, plot_partition, plot_surface
from .viz.record import Recorder, Snapshot

__version__ = "0.1.0"

# The original toolbox's module names (``sc.utils``, ``sc.wrappers``, ``sc.compute``, ``sc.plot``) and
# the earlier flat paths (``splinecam.boundary``, ``splinecam.graph``, ``splinecam.stats``,
# ``splinecam.record``) stay importable as aliases of the modules in their stage's folder.
for _name, _module in {
    "utils": utils, "wrappers": wrappers, "compute": compute, "plot": plot,
    "boundary": boundary, "graph": graph, "stats": stats, "record": record,
}.items():
    _sys.modules.setdefault(f"{__name__}.{_name}", _module)
del _name, _module

__all__ = [
    # core
    "Partition",
    "Slice",
    "partition",
    "partition_many",
    "iter_partitions",
    "estimate_regions",
    "RegionEstimate",
    "VerifyReport",
    # downstream
    "DecisionBoundary",
    "DecisionRegion",
    "statistics",
    "density",
    "local_complexity",
    "LocalComplexity",
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
    "SplineCamWarning",
    "LargePartitionWarning",
    "AnchorShapeWarning",
    "PrecisionWarning",
    "__version__",
    # submodules (the original toolbox's names live in utils, wrappers, compute and plot)
    "boundary",
    "compute",
    "datasets",
    "layers",
    "graph",
    "models",
    "plot",
    "record",
    "stats",
    "utils",
    "wrappers",
]
