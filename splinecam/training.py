"""Small helpers to build and train toy piecewise-linear classifiers, for demos and tests.

:func:`mlp` builds a plain ``nn.Sequential`` of Linear layers and ReLU (or LeakyReLU) units, which
:func:`splinecam.partition` handles exactly; :func:`train_classifier` fits it with a short Adam loop.
Both are deterministic given their ``seed`` and leave PyTorch's global random state as they found it.

Examples
--------
>>> import splinecam as sc
>>> from splinecam.datasets import two_blobs
>>> from splinecam.training import mlp, train_classifier
>>> X, y = two_blobs(n=200, std=0.3, seed=0)
>>> model, acc = train_classifier(mlp(width=8, depth=2, out_dim=2, seed=0), X, y, steps=100)
>>> acc
1.0
>>> part = sc.partition(model, sc.Slice.box((-2, 2), (-2, 2)))
>>> part.num_regions > 1
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

__all__ = ["mlp", "train_classifier"]


def mlp(
    in_dim: int = 2,
    width: int = 32,
    depth: int = 3,
    out_dim: int = 2,
    activation: str = "relu",
    seed: int | None = 0,
    negative_slope: float = 0.1,
) -> nn.Sequential:
    """A multilayer perceptron ``Linear -> act -> ... -> Linear`` with ``depth`` hidden layers.

    Parameters
    ----------
    in_dim : int
        Input dimension (2 for data in the plane).
    width : int
        Units per hidden layer.
    depth : int
        Number of hidden layers (each a Linear followed by the activation); 0 gives one Linear layer.
    out_dim : int
        Output dimension: the number of classes, or 1 for a single logit (binary classification).
    activation : {"relu", "leaky_relu"}
        The hidden nonlinearity.
    seed : int or None
        With an int, the weights are PyTorch's default initialization drawn right after
        ``torch.manual_seed(seed)`` (so ``mlp(2, 100, 3, seed=0)`` is the same network as building the
        layers by hand after ``torch.manual_seed(0)``), and the global random state is restored
        afterwards. With ``None`` the current global random state is used (and advanced).
    negative_slope : float
        Slope of LeakyReLU for negative inputs (ignored for ReLU).

    Returns
    -------
    torch.nn.Sequential
        The network, in eval mode, float32, on the CPU.

    Examples
    --------
    >>> from splinecam.training import mlp
    >>> mlp(width=4, depth=2)
    Sequential(
      (0): Linear(in_features=2, out_features=4, bias=True)
      (1): ReLU()
      (2): Linear(in_features=4, out_features=4, bias=True)
      (3): ReLU()
      (4): Linear(in_features=4, out_features=2, bias=True)
    )
    >>> import torch
    >>> a, b = mlp(seed=1), mlp(seed=1)
    >>> all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    True
    """
    for name, v, lo in (("in_dim", in_dim, 1), ("width", width, 1), ("depth", depth, 0), ("out_dim", out_dim, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    if activation == "relu":
        def act() -> nn.Module:
            return nn.ReLU()
    elif activation == "leaky_relu":
        def act() -> nn.Module:
            return nn.LeakyReLU(negative_slope)
    else:
        raise ValueError(f"activation must be 'relu' or 'leaky_relu', got {activation!r}")

    def build() -> nn.Sequential:
        layers: list[nn.Module] = []
        d = int(in_dim)
        for _ in range(int(depth)):
            layers += [nn.Linear(d, int(width)), act()]
            d = int(width)
        layers.append(nn.Linear(d, int(out_dim)))
        return nn.Sequential(*layers)

    if seed is None:
        net = build()
    else:
        state = torch.get_rng_state()
        try:
            torch.manual_seed(int(seed))
            net = build()
        finally:
            torch.set_rng_state(state)
    return net.eval()


def _accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor, out_dim: int) -> float:
    with torch.no_grad():
        logits = model(X)
    pred = logits.argmax(1) if out_dim >= 2 else (logits.reshape(-1) > 0).long()
    return float((pred == y).double().mean())


def train_classifier(
    model: nn.Module,
    X: Any,
    y: Any,
    steps: int = 1000,
    lr: float = 1e-2,
    batch_size: int = 128,
    seed: int = 0,
    weight_decay: float = 0.0,
    num_threads: int | None = 1,
) -> tuple[nn.Module, float]:
    """Fit a classifier with a short Adam loop on mini-batches; returns ``(model, accuracy)``.

    The loss is cross-entropy when the model has two or more outputs (``y`` holds class indices) and
    binary cross-entropy on the logit when it has one (``y`` holds 0 and 1). The model is trained in
    place in training mode and returned in eval mode. Mini-batches are drawn with a private
    ``torch.Generator``; random modules (Dropout) draw from the global generator, reseeded from
    ``seed`` for the loop and restored afterwards. So the result depends only on the model, the data
    and ``seed``, and PyTorch's global random state is left as it was. A few thousand steps of a
    small MLP take a few seconds on a CPU.

    Parameters
    ----------
    model : torch.nn.Module
        The network to train (its parameters are updated in place).
    X : array_like, shape (n, in_dim)
        Training inputs (NumPy array or tensor); converted to the model's dtype and device.
    y : array_like of int, shape (n,)
        Class labels.
    steps : int
        Number of Adam steps (mini-batches).
    lr : float
        Adam learning rate.
    batch_size : int
        Mini-batch size (capped at ``n``).
    seed : int
        Seed of the mini-batch sampler.
    weight_decay : float
        Adam's L2 penalty.
    num_threads : int or None
        CPU threads torch uses during the loop (restored afterwards). One thread is fastest for the
        small batches of toy models and avoids a large slow-down when the cores are busy; ``None``
        keeps torch's current setting.

    Returns
    -------
    model : torch.nn.Module
        The same model object, trained, in eval mode.
    accuracy : float
        Training accuracy of the final model on all of ``(X, y)``, in ``[0, 1]``.

    Examples
    --------
    >>> from splinecam.datasets import two_moons
    >>> from splinecam.training import mlp, train_classifier
    >>> X, y = two_moons(n=256, noise=0.05, seed=0)
    >>> model, acc = train_classifier(mlp(width=32, depth=2, seed=0), X, y, steps=500)
    >>> acc > 0.95, model.training
    (True, False)
    >>> _, acc1 = train_classifier(mlp(width=16, depth=2, out_dim=1, seed=0), X, y, steps=500)
    >>> acc1 > 0.95
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if int(steps) < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    dtype, device = params[0].dtype, params[0].device
    Xt = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X).to(device, dtype)
    yt = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).to(device).long().reshape(-1)
    if Xt.ndim < 2 or Xt.shape[0] != yt.shape[0] or Xt.shape[0] == 0:
        raise ValueError(
            f"X must have shape (n, ...) and y shape (n,) with n >= 1, got {tuple(Xt.shape)} and {tuple(yt.shape)}"
        )
    n = Xt.shape[0]
    with torch.no_grad():
        out_dim = int(model.eval()(Xt[:1]).reshape(1, -1).shape[1])
    if out_dim == 1:
        if bool(((yt != 0) & (yt != 1)).any()):
            raise ValueError("a model with one output needs labels 0 and 1 (binary cross-entropy)")

        def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return nn.functional.binary_cross_entropy_with_logits(logits.reshape(-1), target.to(logits.dtype))
    else:
        if bool(((yt < 0) | (yt >= out_dim)).any()):
            raise ValueError(f"labels must lie in [0, {out_dim}) for a model with {out_dim} outputs")

        def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return nn.functional.cross_entropy(logits, target)

    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed))
    bs = min(int(batch_size), n)
    opt = torch.optim.Adam(params, lr=float(lr), weight_decay=float(weight_decay))
    # the private generator draws the batches; random modules of the model (Dropout in training
    # mode) use the global generator, seeded from `seed` inside fork_rng, which restores it after
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    model.train()
    try:
        with torch.random.fork_rng(devices=rng_devices):
            torch.default_generator.manual_seed(int(seed))
            if device.type == "cuda":
                torch.cuda.manual_seed(int(seed))
            for _ in range(int(steps)):
                idx = torch.randint(0, n, (bs,), generator=gen).to(device)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(Xt[idx]), yt[idx])
                loss.backward()
                opt.step()
    finally:
        model.eval()
        torch.set_num_threads(threads)
    return model, _accuracy(model, Xt, yt, out_dim)
