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

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np
import torch

from ..errors import SliceError, UnsupportedModelError
from ..slice import Slice

__all__ = ["model_wrapper", "adapter", "wrapped_layer"]

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
    custom_layers, custom_activations : sequence of nn.Module classes
        The original needed its users to list module classes it did not know. splinecam traces any
        module whose ``forward`` is made of supported operations (``torch.fx``), so these lists are not
        needed: they are accepted (checked to be ``nn.Module`` classes) and kept as attributes; a
        listed module that is not piecewise-linear is still refused, by name, when traced.
    **legacy
        ``is_classifier`` and ``as_sequential`` of the original are accepted and ignored (the
        original ignored ``is_classifier`` too; call ``NN.layers[-1].to_decision_boundary()``).

    Attributes
    ----------
    model, T, input_shape, dtype, device
        As given (``T`` as a float64 CPU tensor).
    program : splinecam.trace.Program or None
        The traced program, after :meth:`verify`.
    layers : torch.nn.Sequential
        The original's per-layer view (built on first access): an :class:`adapter` for ``T`` (when
        given), then one :class:`wrapped_layer` per affine module of the model with the batch norm,
        activation, dropout and flatten modules after it (a model that is not an ``nn.Sequential``
        is one layer). ``NN.layers[-1].to_decision_boundary()`` switches the boundary that
        :func:`splinecam.compute.get_partitions_with_db` returns, as in the original.
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
        *,
        custom_layers: Sequence[type] = (),
        custom_activations: Sequence[type] = (),
        **legacy: Any,
    ) -> None:
        unknown = sorted(set(legacy) - set(_LEGACY_KWARGS))
        if unknown:
            raise TypeError(f"model_wrapper got unexpected keyword arguments {unknown}")
        for what, classes in (("custom_layers", custom_layers), ("custom_activations", custom_activations)):
            bad = [c for c in classes if not (isinstance(c, type) and issubclass(c, torch.nn.Module))]
            if bad:
                raise TypeError(f"{what} must list torch.nn.Module classes, got {bad!r}")
        self.custom_layers = list(custom_layers)
        self.custom_activations = list(custom_activations)
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
        self._layers: torch.nn.Sequential | None = None

    @property
    def layers(self) -> torch.nn.Sequential:
        """The original's per-layer view of the model (see the class docstring); built once."""
        if self._layers is None:
            self._layers = _build_layers(self)
        return self._layers

    def boundary_mode(self) -> tuple[str, tuple[int, int] | None]:
        """What :func:`splinecam.compute.get_partitions_with_db` returns as the boundary, following
        the original: ``("outputs", None)`` (the zero set of each output) unless
        ``NN.layers[-1].to_decision_boundary(between_class)`` was called: ``("pairs", between_class)``
        (where two outputs are equal: every pair, or the pair ``between_class``)."""
        last = None if self._layers is None or len(self._layers) == 0 else self._layers[-1]
        if isinstance(last, wrapped_layer) and last.is_classifier:
            return "pairs", last.between_class
        return "outputs", None

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


# --------------------------------------------------------------------------- the original's layer view
# modules that the original folded into the affine layer before them (BN, activation) or skipped
_FOLDED = (
    torch.nn.modules.batchnorm._BatchNorm,
    torch.nn.modules.dropout._DropoutNd,
    torch.nn.Flatten,
    torch.nn.Identity,
    torch.nn.ReLU,
    torch.nn.LeakyReLU,
    torch.nn.PReLU,
    torch.nn.ReLU6,
    torch.nn.Hardtanh,
)
_ACTIVATIONS = (torch.nn.ReLU, torch.nn.LeakyReLU, torch.nn.PReLU, torch.nn.ReLU6, torch.nn.Hardtanh)


class adapter(torch.nn.Module):  # noqa: N801 - the original toolbox's name
    """The original's first layer: slice coordinates ``u`` ``(N, 2)`` to flat input points ``(N, D)``.

    Examples
    --------
    >>> a = adapter(torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]]))
    >>> a(torch.tensor([[1.0, 2.0]])).tolist(), a.get_weights().shape
    ([[1.5, 2.5, 1.0]], torch.Size([3, 3]))
    """

    def __init__(self, T: torch.Tensor, dtype: torch.dtype = torch.float64, device: Any = None) -> None:
        super().__init__()
        t = T if T.shape[1] == 3 else torch.cat([T, T.new_zeros(T.shape[0], 1)], 1)
        self.register_buffer("T", t.to(device=device, dtype=dtype))
        self.input_shape = (2,)
        self.output_shape = (int(t.shape[0]),)
        self.is_classifier = False

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return u.to(self.T.dtype) @ self.T[:, :2].T + self.T[:, 2]

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        """Flat input points back to slice coordinates (least squares for orthonormal ``T``)."""
        return (x.to(self.T.dtype) - self.T[:, 2]) @ self.T[:, :2]

    def get_weights(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """``T`` = ``[v1 | v2 | c]``, ``(D, 3)``."""
        return self.T.to(dtype)

    def get_activation_pattern(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones(len(x), self.output_shape[0], dtype=x.dtype, device=x.device)

    get_intersection_pattern = get_activation_pattern


class wrapped_layer(torch.nn.Module):  # noqa: N801 - in the spirit of the original's linear/conv2d classes
    """One layer of the original's view: an affine module and the BN/activation/dropout after it.

    Works on flat inputs ``(N, prod(input_shape))`` like the original's wrapped layers, on the
    wrapper's private copy of the model (the user's model is not touched).

    Attributes
    ----------
    name : str
        Module path of the group's first module.
    input_shape, output_shape : tuple of int
        Without the batch axis (``output_shape`` counts the boundary's functions after
        :meth:`to_decision_boundary`).
    has_act, has_bn : bool
    is_classifier : bool
        True after :meth:`to_decision_boundary`.
    between_class : (int, int) or None
        The pair of :meth:`to_decision_boundary`, or None for every pair.
    """

    def __init__(self, name: str, modules: list[torch.nn.Module], input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.name = name
        self.block = torch.nn.Sequential(*modules)
        self.input_shape = tuple(int(v) for v in input_shape)
        self.has_act = any(isinstance(m, _ACTIVATIONS) for m in modules)
        self.has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in modules)
        ref = next(iter(list(self.block.parameters()) + list(self.block.buffers())), None)
        dt = ref.dtype if ref is not None and ref.is_floating_point() else torch.float64
        dev = ref.device if ref is not None else None
        with torch.no_grad():
            out = self.block(torch.zeros(1, *self.input_shape, dtype=dt, device=dev))
        self.output_shape: tuple[int, ...] = tuple(int(v) for v in out.shape[1:])
        self._n_out = int(np.prod(self.output_shape))
        self.is_classifier = False
        self.between_class: tuple[int, int] | None = None

    def _affine_part(self) -> torch.nn.Sequential:
        mods = list(self.block)
        while mods and isinstance(mods[-1], (*_ACTIVATIONS, torch.nn.modules.dropout._DropoutNd)):
            mods.pop()
        return torch.nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x.reshape(len(x), *self.input_shape))
        return y.reshape(len(x), -1)

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """The input of the group's activation (flat), at flat inputs ``x``."""
        return self._affine_part()(x.reshape(len(x), *self.input_shape)).reshape(len(x), -1)

    @torch.no_grad()
    def get_weights(self, row_idx: Any = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """``[A | b]`` of the affine part (BN folded in), ``(out, in + 1)``, as the original; after
        :meth:`to_decision_boundary`, the rows of the differences of output pairs."""
        n_in = int(np.prod(self.input_shape))
        ref = next(iter(list(self.block.parameters()) + list(self.block.buffers())), None)
        dt = ref.dtype if ref is not None and ref.is_floating_point() else torch.float64
        dev = ref.device if ref is not None else None
        basis = torch.cat([torch.zeros(1, n_in, dtype=dt, device=dev), torch.eye(n_in, dtype=dt, device=dev)])
        y = self.pre_activation(basis)
        ab = torch.cat([(y[1:] - y[:1]).T, y[:1].T], 1)
        if self.is_classifier:
            pairs = _pairs(ab.shape[0], self.between_class)
            ab = ab[pairs[:, 0]] - ab[pairs[:, 1]]
        if row_idx is not None:
            ab = ab[torch.as_tensor(row_idx, dtype=torch.int64, device=ab.device)]
        return ab.to(dtype)

    @torch.no_grad()
    def get_activation_pattern(self, x: torch.Tensor) -> torch.Tensor:
        """Slope of the activation at each unit (1 without one), ``(N, out)``, as the original's."""
        pre = self.pre_activation(x)
        act = next((m for m in self.block if isinstance(m, _ACTIVATIONS)), None)
        if act is None:
            return torch.ones_like(pre)
        if isinstance(act, torch.nn.ReLU):
            return (pre > 0).to(pre.dtype)
        if isinstance(act, torch.nn.LeakyReLU):
            return torch.where(pre > 0, torch.ones_like(pre), torch.full_like(pre, act.negative_slope))
        raise NotImplementedError(
            f"get_activation_pattern of {type(act).__name__} (the original supported ReLU and LeakyReLU); "
            "use splinecam.partition(...).codes"
        )

    @torch.no_grad()
    def get_intersection_pattern(self, x: torch.Tensor) -> torch.Tensor:
        """``1`` where the point is on the positive side of each unit's hyperplane, ``(N, out)``."""
        if self.is_classifier:
            ab = self.get_weights(dtype=x.dtype)
            return ((x.reshape(len(x), -1) @ ab[:, :-1].T + ab[:, -1]) > 0).to(x.dtype)
        return (self.pre_activation(x) > 0).to(x.dtype)

    def to_decision_boundary(self, between_class: Any = None) -> bool:
        """Make this (the last) layer's hyperplanes the equalities of pairs of outputs, as the original.

        Afterwards :func:`splinecam.compute.get_partitions_with_db` returns, as its boundary, where
        two outputs are equal (every pair ``i < j``, or only ``between_class``) inside each region,
        instead of the zero set of each output. (The exact argmax boundary is
        ``get_partitions_with_db(..., argmax=True)`` or :meth:`splinecam.Partition.decision_boundary`.)

        Parameters
        ----------
        between_class : (int, int), optional
            One pair of outputs; every pair when None.

        Returns
        -------
        bool
            True (the original returned its ``is_classifier`` flag).
        """
        self.between_class = None if between_class is None else tuple(int(c) for c in between_class)
        _pairs(self._n_out, self.between_class)  # checks the pair
        self.is_classifier = True
        self.output_shape = (len(_pairs(self._n_out, self.between_class)),)
        return True


def _pairs(n: int, between: tuple[int, ...] | None) -> torch.Tensor:
    if between is None:
        if n < 2:
            raise ValueError("to_decision_boundary needs a layer with at least two outputs")
        return torch.tensor(list(combinations(range(n), 2)), dtype=torch.int64)
    if len(between) != 2 or between[0] == between[1] or not all(0 <= c < n for c in between):
        raise ValueError(f"between_class must be two different outputs in [0, {n}), got {between}")
    return torch.tensor([between], dtype=torch.int64)


def _flat_children(m: torch.nn.Module, prefix: str = "") -> list[tuple[str, torch.nn.Module]]:
    out: list[tuple[str, torch.nn.Module]] = []
    for name, child in m.named_children():
        path = f"{prefix}{name}"
        if isinstance(child, torch.nn.Sequential):
            out += _flat_children(child, path + ".")
        else:
            out.append((path, child))
    return out


def _build_layers(nn_: model_wrapper) -> torch.nn.Sequential:
    copy_, dev = nn_.prepared()
    layers: list[torch.nn.Module] = []
    if nn_.T is not None:
        layers.append(adapter(nn_.T, dtype=nn_.dtype, device=dev))
    shape = nn_.input_shape
    if shape is None:
        raise SliceError("NN.layers needs the model's input shape: pass input_shape (or T) to model_wrapper")
    if isinstance(copy_, torch.nn.Sequential):
        groups: list[tuple[str, list[torch.nn.Module]]] = []
        for name, m in _flat_children(copy_):
            if groups and isinstance(m, _FOLDED):
                groups[-1][1].append(m)
            else:
                groups.append((name, [m]))
    else:
        groups = [(type(copy_).__name__, [copy_])]
    for name, mods in groups:
        w = wrapped_layer(name, mods, shape)
        layers.append(w)
        shape = w.output_shape
    return torch.nn.Sequential(*layers)
