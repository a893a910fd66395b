"""Integrations of splinecam with training frameworks; each imports its framework lazily.

* :mod:`splinecam.integrations.lightning`: :class:`SplineCamCallback`, a PyTorch Lightning
  callback that records the partition every N steps with a :class:`splinecam.record.Recorder` and
  logs the figure and statistics to the trainer's loggers (``pip install lightning``).
* :mod:`splinecam.integrations.tensorboard`: :func:`log_partition` draws a partition (or the
  partition of a model, even one in training mode) into a TensorBoard ``SummaryWriter``
  (``pip install tensorboard``).

Importing this package, or either module, imports neither framework: they are imported when a
function is called or the callback class is first used, with an ``ImportError`` saying what to
install when they are missing.

Examples
--------
>>> from splinecam.integrations.tensorboard import log_partition  # imports no TensorBoard
>>> from splinecam.integrations.lightning import SplineCamCallback  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = ["lightning", "tensorboard"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
