"""Architectures of the original SplineCam toolbox's ``splinecam.models``, randomly initialised.

The original's ``vgg11_bn`` and ``vgg16_bn`` took torchvision's VGG with batch norm, replaced every
max-pooling by a 2x2 average pooling (so that the network is piecewise-linear with ReLU as its only
nonlinearity), removed the convolutions' biases, gave the first convolution stride 2 (64 x 64 Tiny
ImageNet inputs), and flattened the features into a linear head. These functions build the same
``nn.Sequential`` (same layers, same indices), configurable for the input size and the number of
classes, with PyTorch's default random initialisation: no download, no torchvision. To start from
torchvision's ImageNet weights, load its ``features`` into the convolutional part (the indices match;
the convolutions have no bias)::

    import torchvision
    tv = torchvision.models.vgg11_bn(weights="IMAGENET1K_V1")
    net = splinecam.models.vgg11_bn(num_classes=200, input_size=64)
    net.load_state_dict(tv.features.state_dict(), strict=False)   # conv biases and the head are left out

This module imports only torch.

Examples
--------
>>> import torch
>>> from splinecam.models import vgg11_bn
>>> net = vgg11_bn(num_classes=10, input_size=64, seed=0).eval()
>>> tuple(net(torch.zeros(2, 3, 64, 64)).shape)
(2, 10)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn as nn

__all__ = ["vgg11_bn", "vgg16_bn", "VGG11_CFG", "VGG16_CFG", "vgg_features"]

#: Output channels of VGG-11's convolutions, "M" for a 2x2 pooling (torchvision's configuration "A").
VGG11_CFG: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
#: VGG-16 (configuration "D").
VGG16_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)


def vgg_features(cfg: Sequence[int | str], in_channels: int = 3, first_stride: int = 2) -> list[nn.Module]:
    """Conv(3x3, no bias) -> BatchNorm2d -> ReLU blocks and 2x2 average poolings, as a list of modules.

    Examples
    --------
    >>> [type(m).__name__ for m in vgg_features((8, "M"))]
    ['Conv2d', 'BatchNorm2d', 'ReLU', 'AvgPool2d']
    """
    layers: list[nn.Module] = []
    c = int(in_channels)
    first = True
    for v in cfg:
        if v == "M":
            layers.append(nn.AvgPool2d(kernel_size=2, stride=2, padding=0))
            continue
        stride = first_stride if first else 1
        first = False
        layers += [nn.Conv2d(c, int(v), kernel_size=3, stride=stride, padding=1, bias=False),
                   nn.BatchNorm2d(int(v)), nn.ReLU(inplace=True)]
        c = int(v)
    return layers


def _final_side(input_size: int, cfg: Sequence[int | str], first_stride: int) -> int:
    pools = sum(1 for v in cfg if v == "M")
    div = first_stride * 2**pools
    if input_size < div or input_size % div:
        raise ValueError(
            f"input_size must be a positive multiple of {div} (the first convolution has stride "
            f"{first_stride} and {pools} 2x2 poolings follow), got {input_size}; for 32 x 32 inputs "
            "pass first_stride=1"
        )
    return input_size // div


def _resolve(num_classes: int | None, n_class: int, input_size: int | None, input_res: int) -> tuple[int, int]:
    nc = int(n_class if num_classes is None else num_classes)
    size = int(input_res if input_size is None else input_size)
    if nc < 1:
        raise ValueError(f"num_classes must be >= 1, got {nc}")
    return nc, size


def _build(
    cfg: Sequence[int | str], head: Callable[[], list[nn.Module]], in_channels: int, first_stride: int,
    seed: int | None,
) -> nn.Sequential:
    if seed is None:
        return nn.Sequential(*vgg_features(cfg, in_channels, first_stride), *head())
    # the default initialisation from the seed; the global random state is restored afterwards
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(int(seed))
        return nn.Sequential(*vgg_features(cfg, in_channels, first_stride), *head())
    finally:
        torch.random.set_rng_state(state)


def vgg11_bn(
    n_class: int = 200,
    input_res: int = 64,
    weights: None = None,
    *,
    num_classes: int | None = None,
    input_size: int | None = None,
    in_channels: int = 3,
    first_stride: int = 2,
    seed: int | None = None,
) -> nn.Sequential:
    """VGG-11 with batch norm, average pooling and bias-free convolutions, as the original's.

    ``Sequential(conv, bn, relu, pool, ..., Flatten, Linear(512 * s * s, num_classes))`` with
    ``s = input_size / (first_stride * 32)`` (1 for the original's 64 x 64 inputs); pooling layers at
    indices 3, 7, 14, 21, 28 and convolutions at 0, 4, 8, 11, 15, 18, 22, 25, as in the original.

    Parameters
    ----------
    n_class, input_res :
        The original's names for ``num_classes`` and ``input_size`` (positional, as it took them).
    weights : None
        The original loaded torchvision's ImageNet weights here; this builds the architecture only
        (see the module docstring to load them). Anything but None raises ``ValueError``.
    num_classes : int, optional
        Outputs of the head (default ``n_class``, 200: Tiny ImageNet).
    input_size : int, optional
        Side of the square input images (default ``input_res``, 64).
    in_channels : int
        Channels of the input images.
    first_stride : int
        Stride of the first convolution (2 as in the original; 1 for 32 x 32 inputs).
    seed : int, optional
        Seed of the random initialisation (the global random state is left as it was); None draws
        from the global generator like any torch module.

    Returns
    -------
    torch.nn.Sequential
        In training mode, like any new module; call ``.eval()`` before :func:`splinecam.partition`.

    Examples
    --------
    >>> net = vgg11_bn(num_classes=200, input_size=64, seed=0)
    >>> len(net), type(net[3]).__name__, net[0].bias is None, net[-1].out_features
    (31, 'AvgPool2d', True, 200)
    """
    if weights is not None:
        raise ValueError(
            "splinecam.models builds the architecture randomly initialised (no download); load "
            "pretrained weights yourself, see the splinecam.models docstring"
        )
    nc, size = _resolve(num_classes, n_class, input_size, input_res)
    s = _final_side(size, VGG11_CFG, first_stride)
    return _build(VGG11_CFG, lambda: [nn.Flatten(), nn.Linear(512 * s * s, nc)], in_channels, first_stride, seed)


def vgg16_bn(
    n_class: int = 200,
    input_res: int = 64,
    weights: None = None,
    *,
    num_classes: int | None = None,
    input_size: int | None = None,
    in_channels: int = 3,
    first_stride: int = 2,
    hidden: int = 2048,
    seed: int | None = None,
) -> nn.Sequential:
    """VGG-16 with batch norm, average pooling and bias-free convolutions, as the original's.

    The features as in :func:`vgg11_bn` (configuration "D"), then the original's head
    ``Flatten, Linear(512 * s * s, hidden), ReLU, Linear(hidden, 512), ReLU, Linear(512, num_classes)``
    (the original always made 200 outputs, whatever ``n_class`` said; here ``num_classes`` is used).

    Parameters
    ----------
    n_class, input_res, weights, num_classes, input_size, in_channels, first_stride, seed :
        As in :func:`vgg11_bn`.
    hidden : int
        Width of the head's first hidden layer (2048 in the original).

    Returns
    -------
    torch.nn.Sequential

    Examples
    --------
    >>> net = vgg16_bn(num_classes=10, seed=0)
    >>> sum(isinstance(m, torch.nn.Conv2d) for m in net), net[-1].out_features
    (13, 10)
    """
    if weights is not None:
        raise ValueError(
            "splinecam.models builds the architecture randomly initialised (no download); load "
            "pretrained weights yourself, see the splinecam.models docstring"
        )
    nc, size = _resolve(num_classes, n_class, input_size, input_res)
    s = _final_side(size, VGG16_CFG, first_stride)
    def head() -> list[nn.Module]:
        return [
            nn.Flatten(), nn.Linear(512 * s * s, int(hidden)), nn.ReLU(inplace=True),
            nn.Linear(int(hidden), 512), nn.ReLU(inplace=True), nn.Linear(512, nc),
        ]

    return _build(VGG16_CFG, head, in_channels, first_stride, seed)
