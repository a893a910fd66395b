"""The original SplineCam toolbox's ``model_wrapper``, on top of splinecam's tracer.

The original wrapped each supported layer of an ``nn.Sequential`` into its own class and checked
that its matrix products reproduced ``model.forward``. Here the model is traced by
:func:`splinecam.trace.trace_model` (any ``nn.Sequential`` or ``torch.fx``-traceable module of
affine and piecewise-linear pieces), and the exactness check of a computed partition is
:meth:`splinecam.Partition.verify`.

Examples
--------
>>> import torch, splinecam as sc
>>> model = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).eval()
>>> domain = sc.utils.get_square_slice_from_one_anchor(torch.randn(1, 10), pad_dist=1.0, seed=0)
>>> NN = sc.wrappers.model_wrapper(model, input_shape=(10,), T=sc.utils.get_proj_mat(domain))
>>> NN.verify()
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import SliceError, UnsupportedModelError
from ..slice import Slice

__all__ = ["model_wrapper"]

_LEGACY_KWARGS = ("is_classifier", "as_sequential")


class model_wrapper:  # noqa: N801 - the original toolbox's name
    """Hold a model, its slice projection ``T`` and the computation settings (original call shape).

    Parameters
    ----------
    model : torch.nn.Module
        A piecewise-linear network in eval mode. It is never modified (work happens on copies).
    input_shape : tuple of int, optional
        The model's input shape without the batch axis (``(3, 32, 32)``); ``(D,)`` from ``T`` if None.
    T : array_like, shape (D, 3), optional
        Projection matrix ``[v1 | v2 | c]`` (:func:`splinecam.utils.get_proj_mat`): input point
        ``x = T[:, :2] @ u + T[:, 2]`` for slice coordinates ``u``. ``(D, 2)`` means ``c = 0``.
    dtype : torch.dtype
        Precision of the computations (float64 by default).
    device : str or torch.device, optional
        Where to compute; the model's device if None (the original defaulted to ``'cuda'``).
    **legacy
        ``is_classifier`` and ``as_sequential`` of the original are accepted and ignored.

    Attributes
    ----------
    model, T, input_shape, dtype, device
        As given (``T`` as a float64 CPU tensor).
    program : splinecam.trace.Program or None
        The traced program, after :meth:`verify`.
    last_partition : splinecam.Partition or None
        The partition of the last :func:`splinecam.compute.get_partitions_with_db` call.

    Raises
    ------
    UnsupportedModelError
        If ``model`` is not a module or is in training mode (as the original, which raised ValueError).
    SliceError
        If ``T`` is malformed or does not match ``input_shape``.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(),
    ...                           torch.nn.Linear(8, 2)).eval()
    >>> model_wrapper(net, input_shape=(1, 4, 4), T=torch.randn(16, 3)).verify()
    True
    """

    def __init__(
        self,
        model: torch.nn.Module,
        input_shape: Any = None,
        T: Any = None,
        dtype: torch.dtype = torch.float64,
        device: Any = None,
        **legacy: Any,
    ) -> None:
        unknown = sorted(set(legacy) - set(_LEGACY_KWARGS))
        if unknown:
            raise TypeError(f"model_wrapper got unexpected keyword arguments {unknown}")
        from ..trace.prepare import check_model_kind, training_mode_message

        check_model_kind(model)
        msg = training_mode_message(model, "Call model.eval() before wrapping it")
        if msg:
            raise UnsupportedModelError(msg)
        self.model = model
        self.dtype = dtype
        self.device = device
        self.T: torch.Tensor | None = None
        if T is not None:
            t = T.detach().to("cpu", torch.float64) if isinstance(T, torch.Tensor) else torch.as_tensor(
                np.asarray(T, dtype=np.float64)
            )
            if t.ndim != 2 or t.shape[1] not in (2, 3):
                raise SliceError(
                    f"T must be a (D, 3) projection matrix [v1 | v2 | c] (or (D, 2)), got shape {tuple(t.shape)}"
                )
            if not bool(torch.isfinite(t).all()):
                raise SliceError("T contains NaN or Inf values")
            self.T = t
        if input_shape is None:
            self.input_shape: tuple[int, ...] | None = None if self.T is None else (int(self.T.shape[0]),)
        else:
            self.input_shape = tuple(int(s) for s in np.atleast_1d(input_shape))
        if self.T is not None and self.input_shape is not None:
            n = int(np.prod(self.input_shape))
            if n != self.T.shape[0]:
                raise SliceError(
                    f"input_shape {self.input_shape} has {n} entries but T has {self.T.shape[0]} rows; "
                    "T must be (prod(input_shape), 3)"
                )
        self.program: Any = None
        self.last_partition: Any = None

    def __repr__(self) -> str:
        t = None if self.T is None else tuple(self.T.shape)
        return (
            f"model_wrapper({type(self.model).__name__}, input_shape={self.input_shape}, T={t}, "
            f"dtype={self.dtype}, device={self.device})"
        )

    def prepared(self) -> tuple[torch.nn.Module, torch.device]:
        """A private eval-mode copy of the model in ``dtype`` on ``device``, and that device."""
        from ..trace import prepare_model

        return prepare_model(self.model, dtype=self.dtype, device=self.device)

    def verify(self, seed: int = 0, eps: float = 1e-5) -> bool:
        """Check that splinecam supports the wrapped model; True, or an exception that says why.

        Traces a prepared copy with :func:`splinecam.trace.trace_model` and, when the input shape
        is known, runs it once on a point of the slice to check that the shape fits.

        ``seed`` and ``eps`` (the original's random test point and tolerance) are accepted for its
        call shape and ignored: nothing is compared numerically here; the exactness check of a
        computed partition is :meth:`splinecam.Partition.verify`.

        Raises
        ------
        NotPiecewiseLinearError
            A module is not piecewise-linear (named by path and type).
        UnsupportedModelError
            The model cannot be traced, or does not accept inputs of ``input_shape``.
        """
        from ..trace import trace_model

        del seed, eps
        copy_, dev = self.prepared()
        program = trace_model(copy_)
        if self.input_shape is not None:
            if self.T is not None and self.T.shape[1] == 3:
                x = self.T[:, 2].to(dev, self.dtype).reshape(1, *self.input_shape)
            else:
                x = torch.zeros(1, *self.input_shape, dtype=self.dtype, device=dev)
            try:
                with torch.no_grad():
                    copy_(x.clone())  # (an in-place first step must not write into T)
            except (RuntimeError, ValueError, IndexError) as exc:
                raise UnsupportedModelError(
                    f"the model does not accept inputs of shape {self.input_shape} (batch of 1): {exc}. "
                    "Pass the model's input shape as input_shape=..."
                ) from exc
        self.program = program
        return True

    def slice(self, domain: Any, T: Any = None) -> Slice:
        """The :class:`~splinecam.Slice` of ``domain`` (input space or slice coordinates) under ``T``."""
        from .utils import slice_from_proj

        t = self.T if T is None else T
        if t is None:
            raise SliceError("no projection matrix: pass T to model_wrapper or to this call")
        return slice_from_proj(domain, t, input_shape=self.input_shape)

    def forward(self, u: Any) -> torch.Tensor:
        """The model's output at slice coordinates ``u`` ``(N, 2)`` (through ``T``), as the original's
        wrapped layers computed it; float ``dtype`` on ``device``."""
        if self.T is None:
            raise SliceError("forward takes slice coordinates and needs T; call the model directly instead")
        copy_, dev = self.prepared()
        uu = torch.as_tensor(np.asarray(u.detach().cpu() if isinstance(u, torch.Tensor) else u, dtype=np.float64))
        t = self.T.to(dev, self.dtype)
        x = uu.to(dev, self.dtype).reshape(-1, 2) @ t[:, :2].T
        if t.shape[1] == 3:
            x = x + t[:, 2]
        shape = self.input_shape or (int(t.shape[0]),)
        with torch.no_grad():
            return copy_(x.reshape(-1, *shape))

    __call__ = forward
