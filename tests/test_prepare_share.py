"""The engine's private copy shares the user's float64 parameters read-only for one call
(splinecam.trace.prepare.clone_module(share_parameters=True)): nothing is written into them, the
result keeps nothing that follows later changes, and copies that outlive the call stay copies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import splinecam as sc
from splinecam.trace.prepare import clone_module, prepare_model


def _net(seed: int, dtype=torch.float64) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 12), nn.ReLU(), nn.Linear(12, 12), nn.LeakyReLU(0.1),
                         nn.Linear(12, 3)).to(dtype).eval()


def test_shared_parameters_are_views_without_grad_and_buffers_are_copied():
    net = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU()).double().eval()
    copy_, _ = prepare_model(net, share_parameters=True)
    assert copy_[0].weight.data_ptr() == net[0].weight.data_ptr()
    assert not copy_[0].weight.requires_grad and net[0].weight.requires_grad
    assert copy_[1].running_mean.data_ptr() != net[1].running_mean.data_ptr()
    # another dtype (or the default) gives copies
    copy32, _ = prepare_model(net, dtype=torch.float32, share_parameters=True)
    assert copy32[0].weight.data_ptr() != net[0].weight.data_ptr()
    plain = clone_module(net, torch.device("cpu"), torch.float64)
    assert plain[0].weight.data_ptr() != net[0].weight.data_ptr()
    kept, _ = prepare_model(net)
    assert kept[0].weight.data_ptr() != net[0].weight.data_ptr()


@pytest.mark.parametrize("seed", range(3))
def test_partition_leaves_the_model_alone_and_keeps_no_view(seed):
    net = _net(seed)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    grads = [p.requires_grad for p in net.parameters()]
    sl = sc.Slice.box((-2, 2), (-2, 2))
    part = sc.partition(net, sl)
    assert bool(part.verify(net))
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    assert [p.requires_grad for p in net.parameters()] == grads and net.training is False
    a, b = (np.array(x, copy=True) for x in part.output_affine)
    with torch.no_grad():  # the user trains on: the partition does not change with the model
        for p in net.parameters():
            p.mul_(-2.0)
    np.testing.assert_array_equal(part.output_affine[0], a)
    np.testing.assert_array_equal(part.output_affine[1], b)
    # and the next call sees the new weights
    again = sc.partition(net, sl)
    assert bool(again.verify(net))


def test_iter_partitions_uses_the_weights_of_the_call():
    net = _net(5)
    slices = [sc.Slice.box((-2, 2), (-2, 2)), sc.Slice.box((-1, 3), (-2, 1))]
    ref = [p.num_regions for p in sc.partition_many(net, slices)]
    gen = sc.iter_partitions(net, slices, chunk_size=1)
    first = next(gen)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    assert [p.num_regions for p in sc.partition_many(net, slices)] != ref  # (the change shows)
    rest = list(gen)
    parts = [x[1] if isinstance(x, tuple) else x for x in [first, *rest]]
    assert [p.num_regions for p in parts] == ref
