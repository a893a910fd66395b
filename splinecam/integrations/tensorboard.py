"""Log partitions to TensorBoard: the figure (``writer.add_figure``) and the statistics (scalars).

Works with any object that has TensorBoard's ``SummaryWriter`` methods ``add_figure`` and
``add_scalar`` (``torch.utils.tensorboard.SummaryWriter``, ``tensorboardX.SummaryWriter``, the
``experiment`` of Lightning's ``TensorBoardLogger``). Nothing is imported until a function is
called; :func:`summary_writer` makes a writer and says what to install if TensorBoard is missing.

Examples
--------
>>> import tempfile, torch, splinecam as sc
>>> from splinecam.integrations.tensorboard import log_partition, summary_writer
>>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
>>> with tempfile.TemporaryDirectory() as d:                      # doctest: +SKIP
...     writer = summary_writer(d)
...     part = log_partition(writer, net, step=0, slice=sc.Slice.box())
...     writer.close()
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from ..result import Partition
from ..slice import Slice

__all__ = ["summary_writer", "partition_figure", "log_partition", "log_statistics", "INSTALL_HINT"]

#: What to run when TensorBoard is missing.
INSTALL_HINT = "pip install tensorboard"


def _import_summary_writer() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # torch.utils.tensorboard raises ImportError without the package
        raise ImportError(
            "logging to TensorBoard needs the 'tensorboard' package, which is not installed "
            f"({e}). Install it with '{INSTALL_HINT}'"
        ) from e
    return SummaryWriter


def summary_writer(log_dir: Any = None, **kwargs: Any) -> Any:
    """A ``torch.utils.tensorboard.SummaryWriter`` (raises a clear ImportError without tensorboard).

    Parameters
    ----------
    log_dir : str or Path, optional
        Where to write event files (TensorBoard's default ``runs/...`` if None).
    **kwargs :
        Passed to ``SummaryWriter``.
    """
    writer_cls = _import_summary_writer()
    return writer_cls(log_dir=None if log_dir is None else str(log_dir), **kwargs)


def _as_partition(part_or_model: Any, slice: Slice | None) -> Partition:
    if isinstance(part_or_model, Partition):
        return part_or_model
    if isinstance(part_or_model, nn.Module):
        if slice is None:
            raise ValueError("pass slice=... to log the partition of a model (or pass a Partition)")
        from ..viz.record import partition_copy

        return partition_copy(part_or_model, slice)
    raise TypeError(
        f"expected a splinecam.Partition or a torch.nn.Module, got {type(part_or_model).__name__}"
    )


def partition_figure(
    part: Partition, figsize: tuple[float, float] = (5.5, 4.5), dpi: float = 100, title: str | None = None, **plot_kw: Any
) -> Any:
    """A standalone matplotlib ``Figure`` (not managed by pyplot) with ``part.plot(**plot_kw)``.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> from splinecam.integrations.tensorboard import partition_figure
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()
    >>> fig = partition_figure(sc.partition(net, sc.Slice.box()), color_by="random")
    >>> len(fig.axes) >= 1
    True
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    ax = fig.add_subplot(1, 1, 1)
    part.plot(ax=ax, **plot_kw)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def log_partition(
    writer: Any,
    part_or_model: Any,
    step: int,
    slice: Slice | None = None,
    tag: str = "splinecam/partition",
    *,
    figsize: tuple[float, float] = (5.5, 4.5),
    dpi: float = 100,
    statistics: bool = False,
    **plot_kw: Any,
) -> Partition:
    """Draw a partition and log it to a TensorBoard writer with ``writer.add_figure(tag, fig, step)``.

    Parameters
    ----------
    writer : SummaryWriter
        Anything with ``add_figure(tag, figure, global_step=..., close=...)``.
    part_or_model : Partition or torch.nn.Module
        A partition, or a model (in training or eval mode; it is not modified) whose partition on
        ``slice`` is computed with :func:`splinecam.record.partition_copy`.
    step : int
        The global step.
    slice : Slice, optional
        Needed when ``part_or_model`` is a model.
    tag : str
        TensorBoard tag of the image.
    figsize, dpi :
        Size of the figure.
    statistics : bool
        Also log the statistics as scalars (:func:`log_statistics`) under ``tag``'s parent.
    **plot_kw :
        Passed to :func:`splinecam.plot_partition` (``color_by``, ``boundary``, ``data``...).

    Returns
    -------
    Partition
        The partition drawn.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> from splinecam.integrations.tensorboard import log_partition
    >>> class Writer:  # any object with add_figure works
    ...     def add_figure(self, tag, figure, global_step=None, close=True):
    ...         self.logged = (tag, global_step)
    >>> w = Writer()
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).train()
    >>> part = log_partition(w, net, 3, slice=sc.Slice.box())
    >>> w.logged, net.training
    (('splinecam/partition', 3), True)
    """
    if not hasattr(writer, "add_figure"):
        raise TypeError(f"writer must have an add_figure method (a SummaryWriter), got {type(writer).__name__}")
    part = _as_partition(part_or_model, slice)
    fig = partition_figure(part, figsize=figsize, dpi=dpi, title=f"step {int(step)}", **plot_kw)
    writer.add_figure(tag, fig, global_step=int(step), close=True)
    if statistics:
        prefix = tag.rsplit("/", 1)[0] + "/" if "/" in tag else ""
        log_statistics(writer, part, step, prefix=prefix)
    return part


def log_statistics(
    writer: Any,
    part_or_stats: Any,
    step: int,
    prefix: str = "splinecam/",
    keys: Any = ("num_regions", "boundary_length", "boundary_pieces", "area_mean", "slope_norm_mean"),
) -> dict[str, float]:
    """Log statistics of a partition as scalars, ``writer.add_scalar(prefix + key, value, step)``.

    Parameters
    ----------
    writer : SummaryWriter
        Anything with ``add_scalar``.
    part_or_stats : Partition or dict
        A partition (its :meth:`~splinecam.Partition.statistics` are computed) or a dict of them.
    step : int
        The global step.
    prefix : str
        Prepended to each key.
    keys : sequence of str or None
        Which statistics; all scalar ones if None.

    Returns
    -------
    dict
        The values logged.
    """
    stats = part_or_stats.statistics() if isinstance(part_or_stats, Partition) else dict(part_or_stats)
    logged: dict[str, float] = {}
    for k in stats if keys is None else keys:
        v = stats.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            writer.add_scalar(prefix + k, float(v), global_step=int(step))
            logged[k] = float(v)
    return logged
