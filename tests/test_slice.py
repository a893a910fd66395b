"""Slices: constructors, maps between slice coordinates and input space, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import splinecam as sc
from splinecam.errors import SliceError

SHAPES = [(2,), (10,), (3, 8, 8), (2, 12)]


def _anchors(shape, n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for _ in range(n)]


def _inside(domain, pts, margin=0.0):
    """Points at distance >= margin inside a CCW convex polygon."""
    e = np.roll(domain, -1, 0) - domain
    d = pts[:, None] - domain[None]
    cr = (e[None, :, 0] * d[..., 1] - e[None, :, 1] * d[..., 0]) / np.hypot(e[:, 0], e[:, 1])
    return np.all(cr >= margin, axis=1)


# ----------------------------------------------------------------------------- box


def test_box():
    sl = sc.Slice.box(xlim=(-2, 3), ylim=(-1, 1))
    assert sl.input_shape == (2,)
    assert sl.dim == 2
    np.testing.assert_array_equal(sl.origin, [0, 0])
    np.testing.assert_array_equal(sl.basis, np.eye(2))
    np.testing.assert_array_equal(sl.domain, [[-2, -1], [3, -1], [3, 1], [-2, 1]])
    np.testing.assert_array_equal(sl.center, [0.5, 0.0])
    u = np.array([[0.25, -0.5], [3.0, 1.0]])
    np.testing.assert_array_equal(sl.to_input(u), u)
    np.testing.assert_array_equal(sl.to_slice(u), u)


@pytest.mark.parametrize(("xlim", "ylim"), [((1, 1), (0, 1)), ((2, 1), (0, 1)), ((0, 1), (1, -1))])
def test_box_with_empty_limits(xlim, ylim):
    with pytest.raises(SliceError, match="xlim"):
        sc.Slice.box(xlim, ylim)


# ----------------------------------------------------------------------------- from_anchors


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_from_anchors_geometry(shape, n):
    anchors = _anchors(shape, n, seed=n)
    pad = 0.7
    sl = sc.Slice.from_anchors(anchors, pad=pad, seed=3)
    assert sl.input_shape == shape
    # orthonormal basis
    np.testing.assert_allclose(sl.basis.T @ sl.basis, np.eye(2), atol=1e-12)
    # the anchors lie in the plane: projecting and mapping back gives them again
    x = np.stack(anchors)
    u = sl.to_slice(x)
    np.testing.assert_allclose(sl.to_input(u), x, atol=1e-12 * max(1.0, np.abs(x).max()))
    np.testing.assert_allclose(sl.anchors, u, atol=1e-12)
    # ... at least pad inside the square domain
    assert np.all(_inside(sl.domain, u, margin=pad - 1e-12))
    side = np.ptp(sl.domain, axis=0)
    assert side[0] == pytest.approx(side[1])
    if n == 1:
        np.testing.assert_allclose(u, [[0.0, 0.0]], atol=1e-12)
        assert side[0] == pytest.approx(2 * pad)
    if n == 2:
        # the line through both anchors is the first axis, centred on their midpoint
        np.testing.assert_allclose(u[:, 1], 0.0, atol=1e-12)
        dist = np.linalg.norm(x[1] - x[0])
        np.testing.assert_allclose(u[:, 0], [-dist / 2, dist / 2], rtol=1e-12)


def test_from_anchors_round_trip_of_random_points():
    sl = sc.Slice.from_anchors(_anchors((3, 8, 8), 3), pad=1.0)
    u = np.random.default_rng(0).uniform(-2, 2, (50, 2))
    np.testing.assert_allclose(sl.to_slice(sl.to_input(u)), u, atol=1e-12)


@pytest.mark.parametrize("n", [1, 2])
def test_from_anchors_seed_is_reproducible(n):
    anchors = _anchors((10,), n)
    a = sc.Slice.from_anchors(anchors, seed=5)
    b = sc.Slice.from_anchors(anchors, seed=5)
    c = sc.Slice.from_anchors(anchors, seed=6)
    np.testing.assert_array_equal(a.basis, b.basis)
    np.testing.assert_array_equal(a.domain, b.domain)
    assert not np.allclose(np.abs(a.basis[:, -1]), np.abs(c.basis[:, -1]))


def test_from_anchors_with_three_anchors_ignores_the_seed():
    anchors = _anchors((10,), 3)
    a = sc.Slice.from_anchors(anchors, seed=1)
    b = sc.Slice.from_anchors(anchors, seed=2)
    np.testing.assert_allclose(a.basis, b.basis, atol=1e-15)


@pytest.mark.parametrize("kind", ["list_of_tensors", "stacked_tensor", "stacked_array", "input_shape"])
def test_from_anchors_input_forms(kind):
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    if kind == "list_of_tensors":
        sl = sc.Slice.from_anchors([x[0], x[1]], pad=1.0)
        n = 2
    elif kind == "stacked_tensor":
        sl = sc.Slice.from_anchors(x, pad=1.0)
        n = 2
    elif kind == "stacked_array":
        sl = sc.Slice.from_anchors(x[:1].numpy(), pad=1.0)
        n = 1
    else:
        sl = sc.Slice.from_anchors(x[0], pad=1.0, input_shape=(3, 8, 8))
        n = 1
    assert sl.input_shape == (3, 8, 8)
    assert sl.anchors.shape == (n, 2)
    np.testing.assert_allclose(sl.to_input(sl.anchors), x[:n].numpy(), atol=1e-12)


@pytest.mark.parametrize(
    ("anchors", "kwargs", "match"),
    [
        ([], {}, "1, 2 or 3 anchors"),
        ([np.zeros(4)] * 4, {}, "1, 2 or 3 anchors"),
        ([np.ones(4), np.ones(4)], {}, "coincide"),
        ([np.zeros(4), np.ones(4), 2 * np.ones(4)], {}, "collinear"),
        ([np.zeros(4), np.zeros(5)], {}, "different shapes"),
        ([np.zeros(4)], {"pad": 0.0}, "pad must be positive"),
        ([np.zeros(4)], {"input_shape": (5,)}, "expected input_shape"),
        ([np.zeros(1)], {}, "at least 2 dimensions"),
        ([np.array([0.0, np.inf])], {}, "NaN or Inf"),
    ],
    ids=["none", "four", "coincide", "collinear", "shapes", "pad", "input_shape", "1d", "inf"],
)
def test_from_anchors_errors(anchors, kwargs, match):
    with pytest.raises(SliceError, match=match):
        sc.Slice.from_anchors(anchors, **kwargs)


# ----------------------------------------------------------------------------- maps


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_to_input_and_to_slice_with_numpy_and_torch(shape):
    sl = sc.Slice.from_anchors(_anchors(shape, 2), pad=1.0)
    u = np.random.default_rng(1).uniform(-1, 1, (7, 2))
    x_np = sl.to_input(u)
    assert isinstance(x_np, np.ndarray) and x_np.shape == (7, *shape) and x_np.dtype == np.float64
    x_t = sl.to_input(torch.as_tensor(u))
    assert isinstance(x_t, torch.Tensor) and x_t.shape == (7, *shape) and x_t.dtype == torch.float64
    np.testing.assert_allclose(x_t.numpy(), x_np, rtol=1e-15, atol=1e-15)
    x32 = sl.to_input(torch.as_tensor(u, dtype=torch.float32))
    assert x32.dtype == torch.float32
    # x = origin + basis @ u, element by element
    np.testing.assert_allclose(x_np.reshape(7, -1), sl.origin + u @ sl.basis.T, rtol=1e-15)
    for x in (x_np, x_t, x_np.tolist()):
        back = sl.to_slice(x)
        assert isinstance(back, np.ndarray) and back.shape == (7, 2)
        np.testing.assert_allclose(back, u, atol=1e-12)


def test_to_slice_is_the_least_squares_projection():
    rng = np.random.default_rng(2)
    basis = rng.standard_normal((5, 2))  # not orthonormal
    origin = rng.standard_normal(5)
    sl = sc.Slice(origin=origin, basis=basis, domain=[[0, 0], [1, 0], [0, 1]])
    u = rng.standard_normal((4, 2))
    normal = np.linalg.svd(basis)[0][:, 2:]  # orthogonal complement of the plane
    off = rng.standard_normal((4, 3)) @ normal.T
    np.testing.assert_allclose(sl.to_slice(sl.to_input(u) + off), u, atol=1e-12)


def test_to_input_accepts_a_single_point_and_integer_tensors():
    sl = sc.Slice.box()
    np.testing.assert_array_equal(sl.to_input([0.5, 0.25]), [[0.5, 0.25]])
    x = sl.to_input(torch.tensor([[1, 2]]))
    assert x.dtype == torch.float64
    np.testing.assert_array_equal(x.numpy(), [[1.0, 2.0]])


# ----------------------------------------------------------------------------- general constructor


def test_general_slice_orients_the_domain_counter_clockwise():
    cw = [[0, 0], [0, 1], [1, 1], [1, 0]]
    sl = sc.Slice(origin=np.zeros(3), basis=np.eye(3)[:, :2], domain=cw)
    x, y = sl.domain[:, 0], sl.domain[:, 1]
    assert np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0
    assert {tuple(p) for p in sl.domain.tolist()} == {tuple(map(float, p)) for p in cw}


def test_general_slice_accepts_a_transposed_basis_and_any_origin_shape():
    origin = torch.zeros(2, 3)
    basis = np.zeros((2, 6))
    basis[0, 0] = basis[1, 5] = 1.0
    sl = sc.Slice(origin=origin, basis=basis, domain=[[0, 0], [1, 0], [0, 1]])
    assert sl.input_shape == (2, 3)
    assert sl.basis.shape == (6, 2)
    np.testing.assert_array_equal(sl.to_input([[2.0, 3.0]]), [[[2.0, 0, 0], [0, 0, 3.0]]])


def test_scalar_origin_is_refused():
    with pytest.raises(SliceError, match="origin"):
        sc.Slice(origin=1.0, basis=np.eye(2), domain=[[0, 0], [1, 0], [0, 1]])


def test_to_dict_and_repr():
    sl = sc.Slice.from_anchors(_anchors((3, 8, 8), 2), pad=0.5)
    d = sl.to_dict()
    assert d["origin"].shape == (3, 8, 8)
    assert d["basis"].shape == (192, 2)
    assert d["anchors"].shape == (2, 2)
    np.testing.assert_array_equal(d["domain"], sl.domain)
    rebuilt = sc.Slice(**d)
    np.testing.assert_array_equal(rebuilt.to_input([[0.1, 0.2]]), sl.to_input([[0.1, 0.2]]))
    text = repr(sl)
    assert "(3, 8, 8)" in text and "4-gon" in text
