"""In-place activations and ops (``ReLU(inplace=True)``, ``F.relu(x, inplace=True)``, ``x.relu_()``,
``x.add_(y)``) overwrite their input: a later read of that tensor sees the new values in torch, and
must in the partition too (found by fuzzing: the partition used the old values, silently).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import splinecam as sc
from splinecam.errors import UnsupportedModelError


def _check(model: nn.Module, slc: sc.Slice) -> sc.Partition:
    before = copy.deepcopy(model.state_dict())
    part = sc.partition(model, slc)
    report = part.verify(model)
    assert report, report
    # and directly: the region's affine map gives the model's output at its interior points
    u = part.interior_points(2, seed=0)
    x = torch.as_tensor(slc.to_input(u.reshape(-1, 2)), dtype=torch.float32)
    with torch.no_grad():
        y = model(x).double().numpy().reshape(len(u), 2, -1)
    np.testing.assert_allclose(part.evaluate(u.reshape(-1, 2)).reshape(y.shape), y, rtol=1e-5, atol=1e-5)
    for k, v in model.state_dict().items():  # the model is left as it was
        assert torch.equal(v, before[k])
    return part


class _ReadAfterInPlace(nn.Module):
    """``a = relu_(h); return a + h``: torch computes ``2 relu(h)``."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.l1 = nn.Linear(2, 6)
        self.act = nn.ReLU(inplace=True)
        self.l2 = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.l1(x)
        if self.how == "module":
            a = self.act(h)
        elif self.how == "functional":
            a = F.relu(h, inplace=True)
        elif self.how == "method":
            a = h.relu_()
        else:  # leaky, positional inplace flag
            a = F.leaky_relu(h, 0.2, True)
        return self.l2(a + h)


@pytest.mark.parametrize("how", ["module", "functional", "method", "leaky"])
def test_reads_after_an_in_place_activation_see_its_output(how: str) -> None:
    torch.manual_seed(0)
    model = _ReadAfterInPlace(how).eval()
    part = _check(model, sc.Slice.box((-2, 2), (-1, 3)))
    # the same function as relu(h) * 2, written without in-place ops
    ref = nn.Sequential(model.l1, nn.ReLU() if how != "leaky" else nn.LeakyReLU(0.2), model.l2).eval()
    with torch.no_grad():
        ref[2] = copy.deepcopy(model.l2)
        ref[2].weight.mul_(2)
    assert part.num_regions == sc.partition(ref, sc.Slice.box((-2, 2), (-1, 3))).num_regions


def test_in_place_add_method() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.out = nn.Linear(2, 5), nn.Linear(2, 5), nn.Linear(5, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = F.relu(self.a(x))
            g = h.add_(self.b(x))  # h and g are the same tensor now
            return self.out(F.relu(g) + h)

    torch.manual_seed(1)
    _check(Net().eval(), sc.Slice.box((-2, 2), (-2, 2)))


def test_negative_slope_in_place_leaky_relu_verifies() -> None:
    # verify must read the unit inputs before an in-place activation overwrites them
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 4), nn.LeakyReLU(-0.5, inplace=True), nn.Linear(4, 1)).eval()
    ref = copy.deepcopy(net)
    ref[1] = nn.LeakyReLU(-0.5)
    ref.eval()
    slc = sc.Slice.box((-1, 1), (-1, 1))
    part = _check(net, slc)
    np.testing.assert_array_equal(part.vertices, sc.partition(ref, slc).vertices)


def test_in_place_first_step_does_not_overwrite_the_slice() -> None:
    # the model's first step works in place on its input; the slice's origin must survive it
    torch.manual_seed(0)
    net = nn.Sequential(nn.ReLU(inplace=True), nn.Linear(2, 3), nn.ReLU(inplace=True), nn.Linear(3, 1)).eval()
    _check(net, sc.Slice.box((-3, 1), (-3, -1)))


def test_read_through_another_view_is_refused() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l, self.o = nn.Linear(2, 4), nn.Linear(4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.l(x)
            v = h.view(h.size(0), 4)  # shares h's memory
            a = F.relu(h, inplace=True)
            return self.o(a + v)

    with pytest.raises(UnsupportedModelError, match=r"works in place.*inplace=False"):
        sc.partition(Net().eval(), sc.Slice.box())


def test_common_in_place_relus_are_unaffected() -> None:
    # the usual use (nothing reads the overwritten tensor again) gives the same partition
    torch.manual_seed(3)
    a = nn.Sequential(nn.Linear(2, 8), nn.ReLU(inplace=True), nn.Linear(8, 8), nn.ReLU(inplace=True), nn.Linear(8, 2))
    b = copy.deepcopy(a)
    b[1], b[3] = nn.ReLU(), nn.ReLU()
    slc = sc.Slice.box((-2, 2), (-2, 2))
    pa = _check(a.eval(), slc)
    np.testing.assert_array_equal(pa.vertices, sc.partition(b.eval(), slc).vertices)
