"""Geometry during training: snapshots of a network's partition every N steps, and movies of them.

A :class:`Recorder` is called from a training loop. Every ``every`` steps it computes the exact
partition of the model on a fixed :class:`~splinecam.Slice`, on a private float64 copy of the model
in eval mode, so the model being trained is left exactly as it was: its mode, device, dtype,
parameters, ``.grad`` tensors, the optimizer's state, and the global random states of torch (CPU and
CUDA), NumPy and Python. Snapshots keep the :class:`~splinecam.Partition` (arrays only, no figures),
the step, the scalar :func:`~splinecam.statistics` and the time taken; they are saved to a directory
of ``.npz`` files plus one JSON file (no pickle), plotted over steps, and made into a GIF or MP4 with a
fixed colour scale and fixed axes (the original SplineCam's training videos).

matplotlib, Pillow and tqdm are imported lazily, inside the functions that need them.

Examples
--------
>>> import torch, splinecam as sc
>>> from splinecam.record import Recorder
>>> from splinecam.training import mlp
>>> model = mlp(width=8, depth=2, out_dim=1, seed=0).train()
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> rec = Recorder(sc.Slice.box((-2, 2), (-2, 2)), every=5)
>>> for step in range(11):
...     loss = model(torch.randn(16, 2)).pow(2).mean()
...     opt.zero_grad(); loss.backward(); opt.step()
...     _ = rec(model, step, loss=loss.item())
>>> rec.steps.tolist(), model.training
([0, 5, 10], True)
>>> sorted(rec.statistics())[:3]
['area_max', 'area_mean', 'area_min']
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from ..errors import SplineCamError
from ..result import Partition
from ..slice import Slice
from ..trace import autograd_attributes

__all__ = [
    "Recorder",
    "Snapshot",
    "StatisticsPlot",
    "eval_copy",
    "partition_copy",
    "preserve_rng",
    "ANIMATION_FORMATS",
]

#: File suffixes :meth:`Recorder.animate` can write.
ANIMATION_FORMATS = (".gif", ".mp4")

_META = "recorder.json"
_SLICE = "slice.npz"
_FORMAT = 1


# =========================================================================== model copies
@contextlib.contextmanager
def preserve_rng() -> Iterator[None]:
    """Restore the global random states of Python, NumPy, torch (CPU and initialized CUDA) on exit.

    Examples
    --------
    >>> import torch
    >>> from splinecam.record import preserve_rng
    >>> a = torch.get_rng_state()
    >>> with preserve_rng():
    ...     _ = torch.rand(3)
    >>> torch.equal(a, torch.get_rng_state())
    True
    """
    py = random.getstate()
    npst = np.random.get_state()
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(npst)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def _model_device(model: nn.Module) -> torch.device:
    t = next(iter(list(model.parameters()) + list(model.buffers())), None)
    return t.device if t is not None else torch.device("cpu")


def eval_copy(model: nn.Module, dtype: torch.dtype = torch.float64, device: Any = None) -> nn.Module:
    """A private copy of ``model`` in eval mode, in ``dtype``, on ``device`` (default: the model's).

    Parameters and buffers are copied as detached tensors (no ``.grad``, ``requires_grad=False``), so
    gradients, optimizer state and autograd graphs are neither copied nor touched; shared (tied)
    parameters stay shared. The model itself is not modified. A LightningModule's trainer is not
    copied (its ``__getstate__`` drops it).

    Parameters
    ----------
    model : torch.nn.Module
        The model, in any mode (typically training mode, during training).
    dtype : torch.dtype
        Floating dtype of the copy's floating parameters and buffers.
    device : str or torch.device, optional
        Device of the copy; the model's device if None.

    Returns
    -------
    torch.nn.Module
        The copy, in eval mode.

    Examples
    --------
    >>> import torch
    >>> from splinecam.record import eval_copy
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU()).train()
    >>> c = eval_copy(net)
    >>> c.training, net.training, c[0].weight.dtype, c[0].weight.requires_grad
    (False, True, torch.float64, False)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    dev = _model_device(model) if device is None else torch.device(device)

    def conv(t: torch.Tensor) -> torch.Tensor:
        t = t.detach()
        out = t.to(device=dev, dtype=dtype) if t.is_floating_point() else t.to(device=dev)
        return out.clone() if out.data_ptr() == t.data_ptr() else out

    memo: dict[int, Any] = {}
    with torch.no_grad():
        for p in model.parameters():
            if id(p) not in memo:
                memo[id(p)] = nn.Parameter(conv(p), requires_grad=False)
        for b in model.buffers():
            if id(b) not in memo:
                memo[id(b)] = conv(b)
        for v in autograd_attributes(model):  # deepcopy refuses them: detached, like the parameters
            if id(v) not in memo:
                memo[id(v)] = conv(v)
        out = copy.deepcopy(model, memo)
    return out.eval()


def partition_copy(
    model: nn.Module,
    slice: Slice,
    *,
    dtype: torch.dtype = torch.float64,
    device: Any = None,
    progress: Any = False,
) -> Partition:
    """The partition of ``model`` on ``slice``, computed on an eval-mode copy (for use during training).

    Unlike :func:`splinecam.partition`, which refuses a model in training mode, this evaluates
    :func:`eval_copy` of it, and leaves the model, its gradients, the optimizer and the global random
    states (:func:`preserve_rng`) exactly as they were.

    Parameters
    ----------
    model : torch.nn.Module
        A piecewise-linear network, in training or eval mode.
    slice : Slice
        The slice of input space.
    dtype, device, progress :
        As in :func:`splinecam.partition`.

    Returns
    -------
    Partition

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> from splinecam.record import partition_copy
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).train()
    >>> partition_copy(net, sc.Slice.box()).num_regions >= 1, net.training
    (True, True)
    """
    from ..partitioning import partition

    if not isinstance(slice, Slice):
        raise TypeError(f"slice must be a splinecam.Slice, got {type(slice).__name__}")
    with preserve_rng(), torch.no_grad():
        model_copy = eval_copy(model, dtype=dtype, device=device)
        return partition(model_copy, slice, dtype=dtype, device=device, progress=progress)


# =========================================================================== snapshots
def _scalar(v: Any) -> float | int | None:
    """``v`` as a Python int or float if it is a real scalar (bool, int, float, 0-d array), else None."""
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, torch.Tensor) and v.numel() == 1 and not v.is_complex():
        x = v.detach().cpu().reshape(()).item()
        return x if isinstance(x, (int, float)) else None
    if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "biuf":
        return _scalar(v.item())
    return None


def _scalars(d: dict[str, Any]) -> dict[str, float | int]:
    out: dict[str, float | int] = {}
    for k, v in d.items():
        s = _scalar(v)
        if s is not None:
            out[str(k)] = s
    return out


@dataclass
class Snapshot:
    """One recorded step.

    Attributes
    ----------
    step : int
        The training step.
    partition : Partition or None
        The partition (None if the recorder was made with ``keep_partitions=False``).
    stats : dict
        The scalar entries of :meth:`Partition.statistics` (at least ``num_regions``).
    seconds : float
        Wall time of the whole snapshot (copy, partition, statistics).
    info : dict
        Scalars given by the caller (``rec(model, step, loss=...)``).
    """

    step: int
    partition: Partition | None
    stats: dict[str, float | int] = field(default_factory=dict)
    seconds: float = 0.0
    info: dict[str, float | int] = field(default_factory=dict)

    @property
    def num_regions(self) -> int:
        """Number of regions of the partition."""
        if "num_regions" in self.stats:
            return int(self.stats["num_regions"])
        return self.partition.num_regions if self.partition is not None else -1

    def __repr__(self) -> str:
        return f"Snapshot(step={self.step}, {self.num_regions} regions, {self.seconds:.3g} s)"


# =========================================================================== recorder
class Recorder:
    """Record the partition of a network on a fixed slice during training.

    Call it every step (``rec(model, step)``: records when ``step % every == 0``) or call
    :meth:`snapshot` to record unconditionally. Each snapshot is computed on a float64 eval-mode copy
    of the model (:func:`partition_copy`), so the model being trained, its gradients, the optimizer
    and the global random states are left as they were.

    Parameters
    ----------
    slice : Slice
        The slice of input space, the same for every snapshot.
    every : int
        Record at steps that are multiples of ``every`` (with :meth:`__call__`).
    statistics : bool
        Compute :meth:`Partition.statistics` (including the decision boundary's length) for every
        snapshot. With False only ``num_regions`` is kept.
    keep_partitions : bool
        Keep each snapshot's :class:`Partition` (needed by :meth:`animate`); False keeps only the
        statistics, for long runs.
    dtype : torch.dtype
        Precision of the partition (float64 for the exactness contract).
    device : str or torch.device, optional
        Where to compute; the model's device if None.
    progress : bool
        Show progress: one tqdm bar over all snapshots (each snapshot's partition fills it by the
        fraction of the domain's area done, with the time left; its description names the step),
        and a bar over frames in :meth:`animate`.

    Attributes
    ----------
    snapshots : list of Snapshot
        The recorded snapshots, in recording order.

    Examples
    --------
    >>> import torch, splinecam as sc
    >>> from splinecam.training import mlp
    >>> from splinecam.record import Recorder
    >>> rec = Recorder(sc.Slice.box((-2, 2), (-2, 2)), every=10)
    >>> model = mlp(width=8, depth=2, seed=0).train()
    >>> [rec(model, s) is not None for s in (0, 5, 10)]
    [True, False, True]
    >>> snap = rec.snapshot(model, 11)          # always records
    >>> len(rec), snap.step, snap.partition.num_regions == snap.stats["num_regions"]
    (3, 11, True)
    """

    def __init__(
        self,
        slice: Slice,
        every: int = 1,
        *,
        statistics: bool = True,
        keep_partitions: bool = True,
        dtype: torch.dtype = torch.float64,
        device: Any = None,
        progress: bool = False,
    ) -> None:
        if not isinstance(slice, Slice):
            raise TypeError(f"slice must be a splinecam.Slice, got {type(slice).__name__}")
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every must be an int >= 1, got {every!r}")
        self.slice = slice
        self.every = int(every)
        self.statistics_enabled = bool(statistics)
        self.keep_partitions = bool(keep_partitions)
        self.dtype = dtype
        self.device = device
        self.progress = bool(progress)
        self.snapshots: list[Snapshot] = []
        self._bar: Any = None  # the one progress bar over all snapshots, made at the first one

    # ------------------------------------------------------------------ recording
    def should_record(self, step: int) -> bool:
        """Whether :meth:`__call__` records at ``step`` (``step % every == 0``)."""
        return int(step) % self.every == 0

    def __call__(self, model: nn.Module, step: int, **info: Any) -> Snapshot | None:
        """Record a snapshot if ``step % every == 0``; returns it, or None when skipped.

        Keyword arguments are scalars stored with the snapshot (``loss=loss.item()``).
        """
        if not self.should_record(step):
            return None
        return self.snapshot(model, step, **info)

    def snapshot(self, model: nn.Module, step: int, **info: Any) -> Snapshot:
        """Record a snapshot of ``model`` at ``step`` now (whatever ``every`` says) and return it.

        Parameters
        ----------
        model : torch.nn.Module
            The network, in training or eval mode; it is not modified.
        step : int
            The training step.
        **info : scalar
            Extra scalars stored with the snapshot (loss, accuracy, learning rate...).

        Returns
        -------
        Snapshot
        """
        if isinstance(step, bool) or _scalar(step) is None or float(step) != int(step):
            raise ValueError(f"step must be an int, got {step!r}")
        extra = {}
        for k, v in info.items():
            s = _scalar(v)
            if s is None:
                raise ValueError(f"info {k!r} must be a real scalar (int, float, 1-element tensor), got {v!r}")
            extra[str(k)] = s
        t0 = time.perf_counter()
        bar: Any = False
        if self.progress:
            from ..engine.progress import new_bar

            if self._bar is None:
                self._bar = new_bar("splinecam")
            bar = self._bar
            bar.set_description_str(f"splinecam snapshot {len(self.snapshots) + 1} (step {int(step)})", refresh=False)
        part = partition_copy(model, self.slice, dtype=self.dtype, device=self.device, progress=bar)
        if self.statistics_enabled:
            with preserve_rng():
                stats = _scalars(part.statistics())
        else:
            stats = {"num_regions": part.num_regions}
        seconds = time.perf_counter() - t0
        snap = Snapshot(
            step=int(step),
            partition=part if self.keep_partitions else None,
            stats=stats,
            seconds=seconds,
            info=extra,
        )
        self.snapshots.append(snap)
        return snap

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.snapshots)

    def __getitem__(self, i: int) -> Snapshot:
        return self.snapshots[i]

    def __iter__(self) -> Iterator[Snapshot]:
        return iter(self.snapshots)

    def __repr__(self) -> str:
        steps = f", steps {self.snapshots[0].step}..{self.snapshots[-1].step}" if self.snapshots else ""
        return f"Recorder({len(self)} snapshots, every={self.every}{steps}; {self.slice!r})"

    @property
    def steps(self) -> np.ndarray:
        """Steps of the snapshots, ``(n,)`` int64."""
        return np.array([s.step for s in self.snapshots], dtype=np.int64)

    @property
    def partitions(self) -> list[Partition | None]:
        """The snapshots' partitions."""
        return [s.partition for s in self.snapshots]

    @property
    def seconds(self) -> np.ndarray:
        """Wall time of each snapshot, ``(n,)``."""
        return np.array([s.seconds for s in self.snapshots], dtype=np.float64)

    def clear(self) -> None:
        """Forget all snapshots."""
        self.snapshots.clear()

    # ------------------------------------------------------------------ statistics
    def statistics(self) -> dict[str, np.ndarray]:
        """Statistics of every snapshot as columns over steps.

        Returns
        -------
        dict of str to ndarray
            ``"step"``, ``"seconds"`` (time of each snapshot), every scalar of
            :meth:`Partition.statistics` (``num_regions``, ``boundary_length``, ...) and every
            ``info`` scalar given to :meth:`snapshot`, each of shape ``(n,)``. Integer statistics
            are int64 when present in every snapshot; missing values are NaN.

        Examples
        --------
        >>> import splinecam as sc
        >>> from splinecam.training import mlp
        >>> from splinecam.record import Recorder
        >>> rec = Recorder(sc.Slice.box())
        >>> for s in range(2):
        ...     _ = rec.snapshot(mlp(width=4, depth=1, seed=s), s)
        >>> cols = rec.statistics()
        >>> cols["step"].tolist(), cols["num_regions"].shape
        ([0, 1], (2,))
        """
        keys: dict[str, None] = {}
        for s in self.snapshots:
            for k in s.stats:
                keys.setdefault(k, None)
        info_keys: dict[str, None] = {}
        for s in self.snapshots:
            for k in s.info:
                if k not in keys:
                    info_keys.setdefault(k, None)
        out: dict[str, np.ndarray] = {
            "step": self.steps,
            "seconds": self.seconds,
        }
        for k in list(keys) + list(info_keys):
            if k in ("step", "seconds"):
                continue
            vals = [s.stats.get(k, s.info.get(k)) for s in self.snapshots]
            if all(isinstance(v, int) for v in vals):
                out[k] = np.array(vals, dtype=np.int64)
            else:
                out[k] = np.array([np.nan if v is None else v for v in vals], dtype=np.float64)
        return out

    def plot_statistics(
        self,
        keys: str | Sequence[str] = ("num_regions", "boundary_length"),
        ax: Any = None,
        **line_kw: Any,
    ) -> StatisticsPlot:
        """Plot statistics over steps, each on its own axes.

        Statistics of very different sizes (about 2,000 regions and a boundary of length 5) each
        get their own y-axis: the axes are stacked and share the step axis. Integer-valued
        statistics (region counts) get integer ticks; the y labels are aligned.

        Parameters
        ----------
        keys : str or sequence of str
            Columns of :meth:`statistics` to plot.
        ax : Axes or sequence of Axes, optional
            None: stacked axes on the current figure when it is empty, else on a new figure (one
            key: the current axes). One Axes and several keys: its place in the figure is split
            into one stacked axes per key (the Axes given is removed). As many Axes as keys: one
            key on each.
        **line_kw :
            Passed to ``Axes.plot``.

        Returns
        -------
        StatisticsPlot
            ``axes`` (one per key), ``lines`` (one Line2D per key) and ``figure``; it also reads as
            the sequence of lines (``len(p)``, ``p[0]``).

        Examples
        --------
        >>> import matplotlib; matplotlib.use("Agg")
        >>> import matplotlib.pyplot as plt, splinecam as sc
        >>> from splinecam.training import mlp
        >>> from splinecam.record import Recorder
        >>> rec = Recorder(sc.Slice.box())
        >>> for s in range(3):
        ...     _ = rec.snapshot(mlp(width=4, depth=1, seed=s), s)
        >>> fig, ax = plt.subplots()
        >>> p = rec.plot_statistics(["num_regions", "boundary_length"], ax=ax)
        >>> len(p.axes), p.axes[0] is not p.axes[1], [a.get_ylabel() for a in p.axes]
        (2, True, ['num_regions', 'boundary_length'])
        >>> plt.close(fig)
        """
        keys = [keys] if isinstance(keys, str) else list(keys)
        if not keys:
            raise ValueError("keys is empty; name at least one statistic, e.g. 'num_regions'")
        cols = self.statistics()
        missing = [k for k in keys if k not in cols]
        if missing:
            raise KeyError(f"no statistic {missing[0]!r}; available: {sorted(cols)}")
        made = False  # whether the axes are ours (stacked, sharing x)
        if isinstance(ax, (list, tuple, np.ndarray)):
            axes = list(np.ravel(ax))
            if len(axes) != len(keys):
                raise ValueError(f"got {len(axes)} axes for {len(keys)} keys; pass one axes or one per key")
        elif len(keys) == 1:
            if ax is None:
                import matplotlib.pyplot as plt

                ax = plt.gca()
            axes = [ax]
        else:
            axes = _stacked_axes(ax, len(keys))
            made = True
        from matplotlib.ticker import MaxNLocator

        lines = []
        kw = {"marker": ".", **line_kw}
        steps = cols["step"]
        for k, a in zip(keys, axes):
            (ln,) = a.plot(steps, cols[k], label=k, **kw)
            lines.append(ln)
            a.set_ylabel(k)
            vals = np.asarray(cols[k], dtype=np.float64)
            fin = vals[np.isfinite(vals)]
            if np.issubdtype(np.asarray(cols[k]).dtype, np.integer) or (len(fin) and np.all(fin == np.round(fin))):
                a.yaxis.set_major_locator(MaxNLocator(nbins="auto", integer=True, steps=[1, 2, 2.5, 5, 10]))
            a.xaxis.set_major_locator(MaxNLocator(nbins="auto", integer=True, steps=[1, 2, 5, 10]))
            a.grid(alpha=0.3)
        for a in {id(a): a for a in axes}.values():
            if not made or a is axes[-1]:
                a.set_xlabel("step")
        fig = axes[0].figure
        if len(axes) > 1 and all(a.figure is fig for a in axes):
            fig.align_ylabels(axes)
        return StatisticsPlot(figure=fig, axes=axes, lines=lines)

    # ------------------------------------------------------------------ persistence
    def save(self, path: Any) -> Path:
        """Save to a directory: ``recorder.json``, ``slice.npz`` and ``snapshot_NNNNNN.npz`` files.

        Arrays only, no pickle (each partition through :meth:`Partition.save`). Older snapshot
        files of a recorder saved in the same directory are removed. Returns the directory.

        Examples
        --------
        >>> import tempfile, splinecam as sc
        >>> from splinecam.training import mlp
        >>> from splinecam.record import Recorder
        >>> rec = Recorder(sc.Slice.box())
        >>> _ = rec.snapshot(mlp(width=4, depth=1, seed=0), 0, loss=0.5)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     back = Recorder.load(rec.save(d))
        >>> back.steps.tolist(), back[0].info, back[0].partition.num_regions == rec[0].partition.num_regions
        ([0], {'loss': 0.5}, True)
        """
        root = Path(path)
        if root.exists() and not root.is_dir():
            raise ValueError(f"{root} exists and is not a directory; Recorder.save writes a directory")
        root.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(root / _SLICE, **self.slice.to_dict())
        entries = []
        written = set()
        for i, s in enumerate(self.snapshots):
            fname = None
            if s.partition is not None:
                fname = f"snapshot_{i:06d}.npz"
                s.partition.save(root / fname)
                written.add(fname)
            entries.append(
                {"step": s.step, "seconds": s.seconds, "stats": s.stats, "info": s.info, "file": fname}
            )
        if (root / _META).exists():
            for old in root.glob("snapshot_*.npz"):
                if old.name not in written:
                    old.unlink()
        meta = {
            "format": _FORMAT,
            "every": self.every,
            "dtype": str(self.dtype).replace("torch.", ""),
            "statistics": self.statistics_enabled,
            "keep_partitions": self.keep_partitions,
            "snapshots": entries,
        }
        (root / _META).write_text(json.dumps(meta, indent=1))
        return root

    @classmethod
    def load(cls, path: Any) -> Recorder:
        """Load a recorder written by :meth:`save` (a directory)."""
        root = Path(path)
        if not (root / _META).is_file():
            raise FileNotFoundError(f"{root} has no {_META}: not a directory written by Recorder.save")
        meta = json.loads((root / _META).read_text())
        if meta.get("format") != _FORMAT:
            raise ValueError(f"unsupported recorder format {meta.get('format')!r} in {root / _META}")
        with np.load(root / _SLICE, allow_pickle=False) as z:
            slc = Slice(
                origin=z["origin"],
                basis=z["basis"],
                domain=z["domain"],
                anchors=z["anchors"] if "anchors" in z else None,
            )
        rec = cls(
            slc,
            every=int(meta["every"]),
            statistics=bool(meta["statistics"]),
            keep_partitions=bool(meta["keep_partitions"]),
            dtype=getattr(torch, meta.get("dtype", "float64")),
        )
        for e in meta["snapshots"]:
            part = Partition.load(root / e["file"]) if e.get("file") else None
            rec.snapshots.append(
                Snapshot(
                    step=int(e["step"]),
                    partition=part,
                    stats=dict(e["stats"]),
                    seconds=float(e["seconds"]),
                    info=dict(e["info"]),
                )
            )
        return rec

    # ------------------------------------------------------------------ animation
    def _series(self, key: str) -> np.ndarray | None:
        """A statistic over snapshots; ``boundary_length`` is computed from partitions if missing."""
        cols = self.statistics()
        if key in cols:
            return cols[key].astype(np.float64)
        if key == "boundary_length" and all(s.partition is not None for s in self.snapshots):
            try:
                return np.array([s.partition.decision_boundary().length for s in self.snapshots])
            except SplineCamError:
                return None
        return None

    def animate(
        self,
        path: Any,
        color_by: str | Callable[[Partition], Any] = "slope",
        fps: float = 5,
        boundary: bool = True,
        *,
        dpi: float = 100,
        figsize: tuple[float, float] | None = None,
        side_panel: bool = True,
        cmap: Any = None,
        vmin: float | None = None,
        vmax: float | None = None,
        title: str = "step {step}",
        progress: bool | None = None,
        **plot_kw: Any,
    ) -> Path:
        """Make a movie of the snapshots: ``.gif`` (Pillow) or ``.mp4`` (ffmpeg).

        Every frame has the same axes (the slice's domain) and the same colour scale (limits taken
        over all snapshots), and, with ``side_panel``, a panel of the region count and the decision
        boundary's length over steps with a marker at the frame's step. ``plt.show()`` is never
        called and no pyplot figure is left open.

        Parameters
        ----------
        path : str or Path
            Output file; its suffix picks the format: ``.gif`` (matplotlib's PillowWriter) or ``.mp4``
            (matplotlib's FFMpegWriter; needs the ``ffmpeg`` program).
        color_by : str or callable
            As in :func:`splinecam.plot_partition` (``"slope"``, ``"class"``, ``"area"``,
            ``"random"``, ``"layer"``), or a function of a Partition returning ``(R,)`` values.
        fps : float
            Frames per second.
        boundary : bool
            Draw the decision boundary.
        dpi : float
            Resolution of the frames.
        figsize : (float, float), optional
            Figure size in inches; ``(10, 4.4)`` with the side panel, ``(5.6, 4.4)`` without.
        side_panel : bool
            Draw the region count and boundary length over steps next to the partition.
        cmap : str or Colormap, optional
            Colormap of a continuous colouring.
        vmin, vmax : float, optional
            Colour limits; the minimum and maximum over all snapshots by default (``"area"``: the
            2nd and 98th percentiles of the log areas, see :func:`splinecam.viz.plot.area_limits`).
        title : str
            Frame title, formatted with ``step``, ``regions`` and the snapshot's ``info`` scalars.
        progress : bool, optional
            Show a progress bar over frames; the recorder's ``progress`` if None.
        **plot_kw :
            Passed to :func:`splinecam.plot_partition` (``data=(X, y)``, ``linewidth``,
            ``edges_by_layer``...).

        Returns
        -------
        Path
            ``path``.

        Raises
        ------
        RuntimeError
            For ``.mp4`` when ffmpeg is not installed.
        ValueError
            For another suffix, or when no snapshot has a partition.

        Examples
        --------
        >>> import tempfile, os, splinecam as sc
        >>> from splinecam.training import mlp
        >>> from splinecam.record import Recorder
        >>> rec = Recorder(sc.Slice.box())
        >>> for s in range(2):
        ...     _ = rec.snapshot(mlp(width=4, depth=2, seed=s), s)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     out = rec.animate(os.path.join(d, "geometry.gif"), fps=2, dpi=40)
        ...     out.stat().st_size > 0
        True
        """
        from matplotlib.figure import Figure

        from .plot import COLOR_BY, area_limits, plot_partition, region_colors

        out = Path(path)
        suffix = out.suffix.lower()
        if suffix not in ANIMATION_FORMATS:
            raise ValueError(f"cannot write {out.name!r}: the suffix must be one of {ANIMATION_FORMATS}")
        idx = [i for i, s in enumerate(self.snapshots) if s.partition is not None]
        snaps = [self.snapshots[i] for i in idx]
        if not snaps:
            raise ValueError(
                "no snapshot has a partition to draw (record some first; keep_partitions=False keeps "
                "statistics only)"
            )
        if isinstance(color_by, str) and color_by not in COLOR_BY:
            raise ValueError(f"color_by must be one of {COLOR_BY} or a function of a Partition, got {color_by!r}")
        if suffix == ".mp4":
            if not _ffmpeg_available():
                raise RuntimeError(
                    f"cannot write {out.name!r}: MP4 needs the ffmpeg program, which matplotlib cannot "
                    "find. Write a '.gif' instead (Pillow), or install ffmpeg (e.g. 'apt install ffmpeg', "
                    "'conda install -c conda-forge ffmpeg' or 'brew install ffmpeg') and retry"
                )
            from matplotlib.animation import FFMpegWriter

            writer: Any = FFMpegWriter(fps=fps)
        else:
            from matplotlib.animation import PillowWriter

            writer = PillowWriter(fps=fps)
        show_progress = self.progress if progress is None else bool(progress)

        # per-frame colourings and one colour scale for all frames
        colorings = []
        for s in snaps:
            if callable(color_by) and not isinstance(color_by, str):
                v = np.asarray(color_by(s.partition), dtype=np.float64)
                colorings.append((v, "continuous"))
            else:
                colorings.append(region_colors(s.partition, color_by))
        continuous = all(k == "continuous" for _, k in colorings)
        mode = color_by if isinstance(color_by, str) else "array"
        lo, hi = vmin, vmax
        if continuous and mode != "layer":
            allv = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v, _ in colorings])
            allv = allv[np.isfinite(allv)]
            if mode == "area":  # log scale: limits from quantiles, as in plot_partition
                lo, hi = area_limits(allv, lo, hi)
            if lo is None:
                lo = float(allv.min()) if len(allv) else 0.0
            if hi is None:
                hi = float(allv.max()) if len(allv) else 1.0
            if hi <= lo:
                hi = lo + (abs(lo) * 1e-6 or 1.0)

        # layout: partition | colorbar | side panel
        if figsize is None:
            figsize = (10.0, 4.4) if side_panel else (5.6, 4.4)
        fig = Figure(figsize=figsize, dpi=dpi)
        ratios = [1.3, 1.0] if side_panel else [1.0]
        gs = fig.add_gridspec(
            1, len(ratios), width_ratios=ratios, wspace=0.32,
            left=0.085, right=0.92 if side_panel else 0.84, bottom=0.12, top=0.9,
        )
        ax = fig.add_subplot(gs[0, 0])
        ax.set_anchor("W")  # the equal-aspect plot hugs the left; its colorbar goes right of it
        cax = fig.add_axes((0.0, 0.0, 0.01, 0.01)) if continuous else None
        xlim, ylim = _limits(self.slice)

        markers: list[Any] = []
        if side_panel:
            sax = fig.add_subplot(gs[0, 1])
            steps = np.array([s.step for s in snaps], dtype=np.float64)
            nreg = np.array([s.num_regions for s in snaps], dtype=np.float64)
            sax.plot(steps, nreg, color="C0", lw=1.5, label="regions")
            (m0,) = sax.plot([steps[0]], [nreg[0]], "o", color="C0", ms=7)
            markers.append((m0, nreg))
            sax.set_xlabel("step")
            sax.set_ylabel("number of regions", color="C0")
            sax.tick_params(axis="y", colors="C0")
            blen = self._series("boundary_length")
            if blen is not None:
                blen = blen[idx]
                bax = sax.twinx()
                bax.plot(steps, blen, color="C3", lw=1.5, label="boundary length")
                (m1,) = bax.plot([steps[0]], [blen[0]], "o", color="C3", ms=7)
                markers.append((m1, blen))
                bax.set_ylabel("decision boundary length", color="C3")
                bax.tick_params(axis="y", colors="C3")
            if len(steps) > 1 and steps[-1] > steps[0]:
                pad = 0.02 * (steps[-1] - steps[0])
                sax.set_xlim(steps[0] - pad, steps[-1] + pad)
            sax.set_title("geometry over training", fontsize=10)
            sax.grid(alpha=0.3)

        iterator: Any = enumerate(zip(snaps, colorings))
        if show_progress:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, total=len(snaps), desc="frames", unit="frame")
        kw = dict(plot_kw)
        kw.setdefault("cmap", cmap)
        try:
            with writer.saving(fig, str(out), dpi):
                for i, (s, (values, _kind)) in iterator:
                    ax.cla()
                    cb_arg = values if (callable(color_by) and not isinstance(color_by, str)) else color_by
                    art = plot_partition(
                        s.partition,
                        ax=ax,
                        color_by=cb_arg,
                        boundary=boundary,
                        colorbar=False,
                        vmin=lo,
                        vmax=hi,
                        **kw,
                    )
                    ax.set_xlim(*xlim)
                    ax.set_ylim(*ylim)
                    fmt = {"regions": s.num_regions, **s.info, "step": s.step}
                    try:
                        ax.set_title(title.format(**fmt), fontsize=11)
                    except (KeyError, IndexError, ValueError):
                        ax.set_title(title, fontsize=11)
                    if i == 0 and cax is not None and art.regions is not None:
                        ax.apply_aspect()
                        pos = ax.get_position()
                        cax.set_position((pos.x1 + 0.012, pos.y0, 0.016, pos.height))
                        cb = fig.colorbar(art.regions, cax=cax)
                        cb.set_label(_color_label(mode))
                        if mode == "layer":
                            nl = max(len(s.partition.layer_names), 1)
                            cb.set_ticks(np.arange(-1 if np.min(values, initial=0) < 0 else 0, nl))
                    for m, series in markers:
                        m.set_data([s.step], [series[i]])
                    writer.grab_frame()
        finally:
            fig.clear()  # a plain Figure (no pyplot): nothing is left open
        return out


@dataclass
class StatisticsPlot:
    """What :meth:`Recorder.plot_statistics` drew: one axes and one line per statistic.

    Reads as the sequence of its lines: ``len(p)``, ``p[0]``, ``for line in p``.

    Attributes
    ----------
    figure : Figure
        The figure of the axes.
    axes : list of Axes
        One per statistic, in the order of the keys.
    lines : list of Line2D
        One per statistic.
    """

    figure: Any
    axes: list[Any]
    lines: list[Any]

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, i: int) -> Any:
        return self.lines[i]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.lines)


def _stacked_axes(ax: Any, n: int) -> list[Any]:
    """``n`` axes stacked vertically, sharing x: in ``ax``'s place (which is removed), or on the
    current figure when it is empty, or on a new figure."""
    if ax is None:
        import matplotlib.pyplot as plt

        fig = plt.gcf() if plt.get_fignums() and not plt.gcf().axes else None
        if fig is None:
            fig = plt.figure(figsize=(6.4, 1.2 + 1.5 * n), layout="constrained")
        elif fig.get_layout_engine() is None:
            fig.set_layout_engine("constrained")
        return list(fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0])
    fig = ax.figure
    spec = ax.get_subplotspec() if hasattr(ax, "get_subplotspec") else None
    if spec is not None:
        gs = spec.subgridspec(n, 1, hspace=0.15)
        ax.remove()
        axes = [fig.add_subplot(gs[0, 0])]
        axes += [fig.add_subplot(gs[i, 0], sharex=axes[0]) for i in range(1, n)]
    else:  # an axes placed by hand: split its rectangle
        x0, y0, w, h = ax.get_position().bounds
        ax.remove()
        gap = 0.15 * h / n
        hh = (h - gap * (n - 1)) / n
        axes = []
        for i in range(n):
            rect = (x0, y0 + (n - 1 - i) * (hh + gap), w, hh)
            axes.append(fig.add_axes(rect, sharex=axes[0] if axes else None))
    for a in axes[:-1]:
        a.tick_params(labelbottom=False)
    return axes


def _color_label(mode: str) -> str:
    return {
        "slope": "slope norm $\\|A_r\\|_F$",
        "area": "region area",
        "layer": "layer that made the region",
    }.get(mode, "")


def _limits(slc: Slice) -> tuple[tuple[float, float], tuple[float, float]]:
    dom = np.asarray(slc.domain)
    lo, hi = dom.min(0), dom.max(0)
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def _ffmpeg_available() -> bool:
    """Whether matplotlib can write MP4 with ffmpeg (monkeypatched in tests)."""
    from matplotlib.animation import writers

    return bool(writers.is_available("ffmpeg"))
