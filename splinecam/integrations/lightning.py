"""PyTorch Lightning callback: record the partition every N training steps, log figure and statistics.

:class:`SplineCamCallback` is a ``lightning.pytorch.Callback`` (or ``pytorch_lightning.Callback``
when only the older package is installed). Lightning is imported when the class is first used, not
when this module is imported; without it, that use raises an ``ImportError`` saying
``pip install lightning``.

Examples
--------
>>> import splinecam as sc
>>> from splinecam.integrations.lightning import SplineCamCallback   # doctest: +SKIP
>>> cb = SplineCamCallback(sc.Slice.box((-2, 2), (-2, 2)), every_n_steps=50)  # doctest: +SKIP
>>> trainer = lightning.Trainer(callbacks=[cb], max_steps=500)       # doctest: +SKIP
>>> trainer.fit(module, loader)                                      # doctest: +SKIP
>>> cb.recorder.animate("geometry.gif")                              # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

from ..slice import Slice
from ..viz.record import Recorder

__all__ = ["SplineCamCallback", "callback_class", "INSTALL_HINT"]

#: What to run when Lightning is missing.
INSTALL_HINT = "pip install lightning"

_CLASSES: dict[str, type] = {}


def _import_lightning() -> Any:
    """``lightning.pytorch``, else ``pytorch_lightning``, else a clear ImportError."""
    try:
        import lightning.pytorch as pl
    except ImportError as e1:
        try:
            import pytorch_lightning as pl
        except ImportError:
            raise ImportError(
                "splinecam.integrations.lightning.SplineCamCallback needs PyTorch Lightning, which is "
                f"not installed ({e1}). Install it with '{INSTALL_HINT}' (it keeps your torch if it "
                "is recent enough)"
            ) from e1
    return pl


def _resolve_module(pl_module: nn.Module, module: str | Callable[[nn.Module], nn.Module] | None) -> nn.Module:
    if module is None:
        return pl_module
    if isinstance(module, str):
        return pl_module.get_submodule(module)
    return module(pl_module)


def callback_class() -> type:
    """The :class:`SplineCamCallback` class, subclassing the installed Lightning's ``Callback``.

    Raises
    ------
    ImportError
        When neither ``lightning`` nor ``pytorch_lightning`` is installed.
    """
    pl = _import_lightning()
    key = pl.__name__
    if key in _CLASSES:
        return _CLASSES[key]

    class SplineCamCallback(pl.Callback):  # type: ignore[misc, name-defined]
        """Record the partition of the trained model on a slice every ``every_n_steps`` steps.

        At the start of training and after every optimizer step whose ``trainer.global_step`` is a
        multiple of ``every_n_steps``, the partition of an eval-mode float64 copy of the model is
        recorded (:meth:`splinecam.record.Recorder.snapshot`; the model, its gradients, the
        optimizers and the random states are left as they were). On the global-zero process only.
        With ``log_figure``, the figure goes to every logger whose ``experiment`` has
        ``add_figure`` (TensorBoard), and the statistics to every logger (``log_metrics``).

        Parameters
        ----------
        slice : Slice, optional
            The slice; may be omitted when ``recorder`` is given.
        every_n_steps : int, optional
            Record every that many global steps (default: the recorder's ``every``, or 50).
        recorder : Recorder, optional
            Where snapshots go; a new ``Recorder(slice, every=every_n_steps)`` if None.
        log_figure : bool
            Log the partition figure to the loggers that take figures.
        log_statistics : bool
            Log ``num_regions`` and ``boundary_length`` with ``logger.log_metrics``.
        module : str or callable, optional
            Which network to analyse: the LightningModule itself (None), a submodule path
            (``"net"``), or a function of the LightningModule returning a module (for a
            LightningModule whose ``forward`` is not piecewise-linear).
        on_train_start : bool
            Also record the untrained model when training starts.
        tag : str
            Logger tag (figure) and prefix (metrics).
        plot_kw : dict, optional
            Passed to :func:`splinecam.plot_partition` for the logged figure.

        Attributes
        ----------
        recorder : Recorder
            The snapshots (``callback.recorder.animate("run.gif")`` after training).
        """

        def __init__(
            self,
            slice: Slice | None = None,
            every_n_steps: int | None = None,
            recorder: Recorder | None = None,
            log_figure: bool = True,
            *,
            log_statistics: bool = True,
            module: str | Callable[[nn.Module], nn.Module] | None = None,
            on_train_start: bool = True,
            tag: str = "splinecam/partition",
            plot_kw: dict[str, Any] | None = None,
        ) -> None:
            super().__init__()
            if recorder is None:
                if slice is None:
                    raise ValueError("SplineCamCallback needs a slice (or a recorder)")
                recorder = Recorder(slice, every=50 if every_n_steps is None else every_n_steps)
            elif not isinstance(recorder, Recorder):
                raise TypeError(f"recorder must be a splinecam Recorder, got {type(recorder).__name__}")
            n = recorder.every if every_n_steps is None else every_n_steps
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"every_n_steps must be an int >= 1, got {n!r}")
            self.recorder = recorder
            self.every_n_steps = int(n)
            self.log_figure = bool(log_figure)
            self.log_statistics = bool(log_statistics)
            self.module = module
            self.record_on_train_start = bool(on_train_start)
            self.tag = tag
            self.plot_kw = dict(plot_kw or {})
            self._last_step: int | None = None

        # -------------------------------------------------------------- hooks
        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            if self.record_on_train_start:
                self._record(trainer, pl_module, int(trainer.global_step))

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            step = int(trainer.global_step)
            if step % self.every_n_steps == 0:
                self._record(trainer, pl_module, step)

        # -------------------------------------------------------------- work
        def _record(self, trainer: Any, pl_module: Any, step: int) -> None:
            # once per global step (gradient accumulation calls batch_end several times per step)
            if step == self._last_step or not getattr(trainer, "is_global_zero", True):
                return
            self._last_step = step
            snap = self.recorder.snapshot(_resolve_module(pl_module, self.module), step)
            loggers = list(getattr(trainer, "loggers", None) or [])
            if self.log_statistics:
                metrics = {
                    f"{self.tag.rsplit('/', 1)[0]}/{k}": float(snap.stats[k])
                    for k in ("num_regions", "boundary_length")
                    if k in snap.stats
                }
                for lg in loggers:
                    lg.log_metrics(metrics, step=step)
            if self.log_figure and snap.partition is not None:
                from .tensorboard import log_partition

                for lg in loggers:
                    exp = getattr(lg, "experiment", None)
                    if exp is not None and hasattr(exp, "add_figure"):
                        log_partition(exp, snap.partition, step, tag=self.tag, **self.plot_kw)

        # -------------------------------------------------------------- checkpoints
        def state_dict(self) -> dict[str, Any]:
            return {"last_step": self._last_step}

        def load_state_dict(self, state_dict: dict[str, Any]) -> None:
            self._last_step = state_dict.get("last_step")

    SplineCamCallback.__module__ = __name__
    SplineCamCallback.__qualname__ = "SplineCamCallback"
    _CLASSES[key] = SplineCamCallback
    return SplineCamCallback


class _CallbackMeta(type):
    # isinstance / issubclass against the public name answer for the Lightning class it builds
    def __instancecheck__(cls, obj: Any) -> bool:
        return any(isinstance(obj, c) for c in _CLASSES.values())

    def __subclasscheck__(cls, sub: type) -> bool:
        return any(issubclass(sub, c) for c in _CLASSES.values())


class SplineCamCallback(metaclass=_CallbackMeta):
    """Record the partition of the trained model on a slice every ``every_n_steps`` steps.

    A PyTorch Lightning callback: at the start of training and after every optimizer step whose
    ``trainer.global_step`` is a multiple of ``every_n_steps``, the partition of an eval-mode float64
    copy of the model is recorded (:meth:`splinecam.Recorder.snapshot`; the model, its gradients,
    the optimizers and the random states are left as they were), on the global-zero process only.
    With ``log_figure`` the figure goes to every logger whose ``experiment`` has ``add_figure``
    (TensorBoard), and with ``log_statistics`` the statistics to every logger.

    Calling ``SplineCamCallback(...)`` imports Lightning (``lightning``, else ``pytorch_lightning``)
    and returns an instance of the ``Callback`` subclass made by :func:`callback_class`
    (``isinstance`` against this name works); without Lightning it raises an ``ImportError`` saying
    ``pip install lightning``.

    Parameters
    ----------
    slice : Slice, optional
        The slice; may be omitted when ``recorder`` is given.
    every_n_steps : int, optional
        Record every that many global steps (default: the recorder's ``every``, or 50).
    recorder : Recorder, optional
        Where snapshots go; a new ``Recorder(slice, every=every_n_steps)`` if None.
    log_figure : bool
        Log the partition figure to the loggers that take figures.
    log_statistics : bool
        Log ``num_regions`` and ``boundary_length`` with ``logger.log_metrics``.
    module : str or callable, optional
        Which network to analyse: the LightningModule itself (None), a submodule path (``"net"``),
        or a function of the LightningModule returning a module.
    on_train_start : bool
        Also record the untrained model when training starts.
    tag : str
        Logger tag (figure) and prefix (metrics).
    plot_kw : dict, optional
        Passed to :func:`splinecam.plot_partition` for the logged figure.

    Attributes
    ----------
    recorder : Recorder
        The snapshots (``callback.recorder.animate("run.gif")`` after training).

    Raises
    ------
    ImportError
        Lightning is not installed.
    ValueError
        Neither ``slice`` nor ``recorder``, or ``every_n_steps`` not an int >= 1.

    Examples
    --------
    >>> import splinecam as sc
    >>> cb = SplineCamCallback(sc.Slice.box((-2, 2), (-2, 2)), every_n_steps=50)  # doctest: +SKIP
    >>> cb.recorder.every                                                         # doctest: +SKIP
    50
    """

    def __new__(
        cls,
        slice: Slice | None = None,
        every_n_steps: int | None = None,
        recorder: Recorder | None = None,
        log_figure: bool = True,
        *,
        log_statistics: bool = True,
        module: str | Callable[[nn.Module], nn.Module] | None = None,
        on_train_start: bool = True,
        tag: str = "splinecam/partition",
        plot_kw: dict[str, Any] | None = None,
    ) -> Any:
        return callback_class()(
            slice, every_n_steps, recorder, log_figure, log_statistics=log_statistics, module=module,
            on_train_start=on_train_start, tag=tag, plot_kw=plot_kw,
        )
