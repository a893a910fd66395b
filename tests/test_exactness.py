"""The exactness contract of DESIGN.md on many seeded random networks.

Every test computes a partition, runs ``part.verify(model)`` and then the independent checks of
``conftest.check_exact`` / ``check_coverage`` (real activation patterns recorded with hooks on a float64
copy of the model, output maps, areas, point location, planar graph).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import splinecam as sc

BOX = sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2))

MLP_WIDTHS = [
    (2, 8, 8, 1),
    (2, 12, 6, 3),
    (2, 5, 5, 5, 5, 2),
    (2, 16, 1),
    (2, 7, 9, 4),
]


@pytest.mark.parametrize("seed", range(12))
def test_relu_mlp_on_the_input_plane(seed, make_mlp, make_checked_partition):
    model = make_mlp(seed, MLP_WIDTHS[seed % len(MLP_WIDTHS)])
    part = make_checked_partition(model, BOX)
    assert part.num_regions > 1
    assert len(part.codes) == len(MLP_WIDTHS[seed % len(MLP_WIDTHS)]) - 2


@pytest.mark.parametrize("seed", range(6))
def test_leaky_relu_mlp(seed, make_mlp, make_checked_partition):
    model = make_mlp(seed, (2, 10, 8, 2), act="leaky", negative_slope=0.05 + 0.1 * seed)
    part = make_checked_partition(model, BOX)
    # LeakyReLU is never flat: the output map differs between every pair of neighbours that a
    # first-layer line separates, so the slopes are not all equal
    a_mat, _ = part.output_affine
    assert np.ptp(a_mat.reshape(part.num_regions, -1), axis=0).max() > 0


@pytest.mark.parametrize("seed", range(6))
def test_batchnorm1d_with_running_statistics(seed, make_mlp, make_checked_partition):
    model = make_mlp(seed, (2, 8, 8, 2), batchnorm=True, act="relu" if seed % 2 else "leaky")
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert bn and all(not torch.allclose(m.running_var, torch.ones_like(m.running_var)) for m in bn)
    make_checked_partition(model, sc.Slice.box(xlim=(-3, 3), ylim=(-2, 2)))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("n_anchors", [1, 2, 3])
def test_high_dimensional_mlp_through_anchor_slices(seed, n_anchors, make_mlp, make_checked_partition):
    model = make_mlp(seed, (10, 12, 8, 3), act="relu" if seed != 1 else "leaky")
    g = torch.Generator().manual_seed(100 + seed)
    anchors = [torch.randn(10, generator=g) for _ in range(n_anchors)]
    sl = sc.Slice.from_anchors(anchors, pad=1.0, seed=seed)
    assert sl.input_shape == (10,)
    part = make_checked_partition(model, sl)
    # the anchors are inside the domain and located in some region
    assert np.all(part.locate(sl.anchors) >= 0)


CNN_CASES = [("strided", 0, 1), ("strided", 1, 3), ("dilated_groups", 0, 2), ("dilated_groups", 1, 1),
             ("adaptive16", 0, 2), ("adaptive16", 1, 3)]


@pytest.mark.parametrize(("arch", "seed", "n_anchors"), CNN_CASES)
def test_small_cnn_on_images(arch, seed, n_anchors, make_cnn, make_checked_partition):
    model, shape = make_cnn(seed, arch)
    g = torch.Generator().manual_seed(200 + seed)
    x0 = torch.randn(shape, generator=g)
    # anchors close to each other keep the number of regions (and the runtime) small
    anchors = [x0 + 0.15 * torch.randn(shape, generator=g) for _ in range(n_anchors)]
    sl = sc.Slice.from_anchors(anchors, pad=0.15, seed=seed)
    assert sl.input_shape == shape
    part = make_checked_partition(model, sl, points_per_region=2)
    assert part.num_regions > 1
    assert part.codes[0].shape[1] == int(np.prod(part.unit_shapes[0]))


@pytest.mark.parametrize("seed", range(3))
def test_conv1d_model(seed, make_conv1d, make_checked_partition):
    model, shape = make_conv1d(seed)
    g = torch.Generator().manual_seed(300 + seed)
    sl = sc.Slice.from_anchors([torch.randn(shape, generator=g)], pad=1.5, seed=seed)
    part = make_checked_partition(model, sl)
    assert part.num_regions > 1


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", ["residual", "cat", "functional"])
def test_fx_traced_models(kind, seed, make_custom, make_checked_partition):
    """Residual ``x + f(x)``, torch.cat of two branches, functional activations, constant scalings,
    Dropout and Identity in eval mode: all captured with torch.fx."""
    model = make_custom(seed, kind)
    part = make_checked_partition(model, BOX)
    assert part.num_regions > 1


def test_inplace_activations_give_the_same_partition(make_mlp, make_checked_partition):
    model = make_mlp(5, (2, 8, 8, 8, 1), act="leaky")
    inplace = copy.deepcopy(model)
    inplace[1] = nn.LeakyReLU(inplace[1].negative_slope, inplace=True)
    inplace[3] = nn.ReLU(inplace=True)
    model[3] = nn.ReLU()
    model.eval()
    inplace.eval()
    ref = sc.partition(model, BOX)
    part = make_checked_partition(inplace, BOX)
    assert part.num_regions == ref.num_regions
    np.testing.assert_array_equal(part.vertices, ref.vertices)


def test_functional_model_lists_every_functional_nonlinearity(make_custom):
    part = sc.partition(make_custom(0, "functional"), BOX)
    assert len(part.layer_names) == 3
    assert len(part.codes) == 3


def test_verify_report_has_every_check(make_mlp):
    model = make_mlp(3, (2, 8, 8, 2))
    report = sc.partition(model, BOX).verify(model)
    assert report
    for name in ("area", "overlap", "codes", "affine", "neighbours", "graph"):
        assert report[name].passed, report
    assert report["area"].value <= 1e-9
    report.raise_if_failed()


def test_verify_detects_a_wrong_model(make_mlp):
    """verify must be able to fail: a partition checked against another network is rejected."""
    part = sc.partition(make_mlp(0, (2, 8, 8, 1)), BOX)
    report = part.verify(make_mlp(1, (2, 8, 8, 1)))
    assert not report
    assert not report["affine"].passed
    with pytest.raises(AssertionError):
        report.raise_if_failed()


def test_verify_detects_one_wrong_code(make_mlp):
    """The codes check must catch a single flipped unit in one region (its tie margins are small)."""
    model = make_mlp(0, (2, 8, 8, 1))
    part = sc.partition(model, BOX)
    big = int(np.argmax(part.areas()))
    codes = part.codes[0].copy()
    codes[big, 0] = 1 - codes[big, 0]
    part._codes[0], part._code_packed[0], part._codes_cache = codes, False, None
    report = part.verify(model)
    assert not report["codes"].passed and report["codes"].value >= 1


def test_independent_check_detects_a_wrong_model(make_mlp, make_exactness_check):
    """The independent check must be able to fail too."""
    part = sc.partition(make_mlp(0, (2, 8, 8, 1)), BOX)
    with pytest.raises(AssertionError):
        make_exactness_check(make_mlp(1, (2, 8, 8, 1)), part, run_verify=False)


@pytest.mark.parametrize("seed", range(2))
def test_float32_and_float64_models_give_the_same_partition(seed, make_mlp, make_checked_partition):
    """A float32 model is analysed in float64 as the function with the same (exactly widened) weights."""
    model32 = make_mlp(seed, (2, 10, 10, 2))
    assert next(model32.parameters()).dtype == torch.float32
    part32 = sc.partition(model32, BOX)
    part64 = make_checked_partition(copy.deepcopy(model32).double(), BOX)
    assert part32.num_regions == part64.num_regions
    np.testing.assert_allclose(np.sort(part32.areas()), np.sort(part64.areas()), rtol=1e-9, atol=1e-15)
    assert part32.output_affine[0].dtype == np.float64


class FeatureSplit(nn.Module):
    """Splits the features of a hidden layer in two halves (a GLU-like pattern without the product)."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.fc1 = nn.Linear(2, 6)
        self.fc2 = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        if self.how == "chunk":
            a, b = h.chunk(2, dim=1)
        elif self.how == "split_method":
            a, b = h.split(3, dim=1)
        elif self.how == "torch_split":
            a, b = torch.split(h, 3, dim=1)
        elif self.how == "ellipsis":
            a, b = h[..., :3], h[..., 3:]
        else:  # "slicing"
            a, b = h[:, :3], h[:, 3:]
        return self.fc2(torch.relu(a) - b)


@pytest.mark.parametrize("how", ["slicing", "chunk", "split_method", "torch_split", "ellipsis"])
def test_feature_splits(how, make_checked_partition):
    """Regression (found by this suite): chunk / split results and x[..., :k] used to be refused."""
    torch.manual_seed(0)
    model = FeatureSplit(how).eval()
    part = make_checked_partition(model, BOX)
    assert part.num_regions > 1
