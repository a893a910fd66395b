"""Bad input gets its own clear exception naming the culprit, and the user's model is never modified."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import splinecam as sc
from splinecam.errors import NotPiecewiseLinearError, SliceError, SplineCamError, UnsupportedModelError

BOX = sc.Slice.box(xlim=(-1, 1), ylim=(-1, 1))


def _mlp(*middle: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Linear(2, 4), *middle, nn.Linear(4, 1)).eval()


class LayerList(nn.Module):
    """A custom module whose ``layers.2`` is the culprit (fx-traced, not a Sequential)."""

    def __init__(self, culprit: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(2, 4), nn.ReLU(), culprit, nn.Linear(4, 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


# ----------------------------------------------------------------------------- not piecewise-linear


@pytest.mark.parametrize("module", [nn.GELU(), nn.SiLU(), nn.Sigmoid(), nn.Softmax(dim=1), nn.Tanh()],
                         ids=lambda m: type(m).__name__)
def test_non_pwl_module_in_a_sequential(module):
    with pytest.raises(NotPiecewiseLinearError) as info:
        sc.partition(_mlp(nn.ReLU(), nn.Linear(4, 4), module), BOX)
    msg = str(info.value)
    assert msg.startswith(f"3 ({type(module).__name__})")  # module path and type
    assert "not piecewise-linear" in msg


def test_non_pwl_module_in_a_nested_sequential_names_its_dotted_path():
    model = nn.Sequential(nn.Linear(2, 4), nn.Sequential(nn.ReLU(), nn.Linear(4, 4), nn.SiLU()), nn.Linear(4, 1))
    with pytest.raises(NotPiecewiseLinearError, match=r"1\.2 \(SiLU\)"):
        sc.partition(model.eval(), BOX)


@pytest.mark.parametrize("module", [nn.GELU(), nn.Softmax(dim=1)], ids=lambda m: type(m).__name__)
def test_non_pwl_module_in_a_custom_model_names_its_path(module):
    with pytest.raises(NotPiecewiseLinearError, match=rf"layers\.2 \({type(module).__name__}\)"):
        sc.partition(LayerList(module).eval(), BOX)


class FunctionalGelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2, 4)
        self.fc2 = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


def test_functional_gelu_in_forward():
    with pytest.raises(NotPiecewiseLinearError, match="gelu") as info:
        sc.partition(FunctionalGelu().eval(), BOX)
    assert "not piecewise-linear" in str(info.value)


def test_hardswish_is_refused_with_its_path():
    # quadratic between -3 and 3: not piecewise-linear
    model = nn.Sequential(nn.Linear(2, 4), nn.Hardswish(), nn.Linear(4, 1))
    with pytest.raises(NotPiecewiseLinearError) as info:
        sc.partition(model.eval(), BOX)
    msg = str(info.value)
    assert "1 (Hardswish)" in msg and "not piecewise-linear" in msg


def test_maxpool_with_indices_is_refused():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, return_indices=True))
    sl = sc.Slice.from_anchors(torch.zeros(1, 1, 4, 4), pad=1.0)
    with pytest.raises(NotPiecewiseLinearError) as info:
        sc.partition(model.eval(), sl)
    msg = str(info.value)
    assert "2 (MaxPool2d)" in msg and "return_indices" in msg


class MaxOverBatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).amax(0, keepdim=True) + self.fc(x).amax(-2, keepdim=True)


def test_max_over_the_batch_axis_is_refused():
    with pytest.raises(UnsupportedModelError, match="batch axis"):
        sc.partition(MaxOverBatch().eval(), BOX)


class Square(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        return h * h


def test_product_of_two_input_dependent_tensors():
    with pytest.raises(NotPiecewiseLinearError, match="mul") as info:
        sc.partition(Square().eval(), BOX)
    assert "two input-dependent tensors" in str(info.value)


class DivideByInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 / (self.fc(x) + 10.0)


def test_division_by_an_input_dependent_tensor():
    with pytest.raises(NotPiecewiseLinearError, match="truediv"):
        sc.partition(DivideByInput().eval(), BOX)


class DataDependentBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        if h.sum() > 0:
            return h
        return -h


def test_data_dependent_control_flow():
    with pytest.raises(UnsupportedModelError) as info:
        sc.partition(DataDependentBranch().eval(), BOX)
    msg = str(info.value)
    assert "DataDependentBranch" in msg
    assert "control flow" in msg


# ----------------------------------------------------------------------------- model state


@pytest.mark.parametrize("where", ["root", "submodule"])
def test_model_in_training_mode(where):
    model = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1))
    if where == "submodule":
        model.eval()
        model[1].train()
    with pytest.raises(UnsupportedModelError, match=r"model\.eval\(\)") as info:
        sc.partition(model, BOX)
    assert "training mode" in str(info.value)
    if where == "submodule":
        assert "1" in str(info.value)
        assert model[1].training and not model[0].training  # still as the user left it


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("where", ["weight", "running_var"])
def test_nan_or_inf_weights(bad, where):
    model = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1)).eval()
    with torch.no_grad():
        if where == "weight":
            model[3].weight[0, 2] = bad
        else:
            model[1].running_var[1] = bad
    name = "3.weight" if where == "weight" else "1.running_var"
    with pytest.raises(UnsupportedModelError, match="NaN or Inf") as info:
        sc.partition(model, BOX)
    assert f"'{name}'" in str(info.value)


def test_model_that_is_not_a_module():
    with pytest.raises(UnsupportedModelError, match="torch.nn.Module"):
        sc.partition(lambda x: x, BOX)


def test_slice_that_is_not_a_slice():
    with pytest.raises(SliceError, match="splinecam.Slice"):
        sc.partition(_mlp(nn.ReLU()), np.eye(2))


# ----------------------------------------------------------------------------- bad slices


def test_non_convex_domain():
    arrow = [[0, 0], [2, 0], [1, 0.5], [2, 2], [0, 2]]
    with pytest.raises(SliceError, match="not strictly convex"):
        sc.Slice(origin=np.zeros(2), basis=np.eye(2), domain=arrow)


def test_self_intersecting_domain():
    star = [[np.cos(a), np.sin(a)] for a in np.arange(5) * 4 * np.pi / 5]  # a pentagram
    with pytest.raises(SliceError, match="self-intersecting"):
        sc.Slice(origin=np.zeros(2), basis=np.eye(2), domain=star)


def test_bowtie_domain_is_refused():
    with pytest.raises(SliceError, match="crosses itself"):
        sc.Slice(origin=np.zeros(2), basis=np.eye(2), domain=[[0, 0], [1, 1], [1, 0], [0, 1]])


@pytest.mark.parametrize(
    "domain",
    [[[0, 0], [1, 0]], [[0, 0], [1, 1], [2, 2]], [[0, 0], [1, 0], [1, 0], [0, 1]], [[0, 0, 0], [1, 0, 0], [0, 1, 0]]],
    ids=["two_points", "collinear", "repeated_vertex", "3d_points"],
)
def test_degenerate_domain(domain):
    with pytest.raises(SliceError, match="domain"):
        sc.Slice(origin=np.zeros(2), basis=np.eye(2), domain=domain)


def test_nan_in_domain():
    with pytest.raises(SliceError, match="NaN or Inf"):
        sc.Slice(origin=np.zeros(2), basis=np.eye(2), domain=[[0, 0], [1, np.nan], [0, 1]])


@pytest.mark.parametrize(
    "basis",
    [[[1, 2], [2, 4], [3, 6]], np.zeros((3, 2)), [[1, 1], [0, 1e-14], [0, 0]]],
    ids=["parallel", "zero", "nearly_parallel"],
)
def test_rank_deficient_basis(basis):
    with pytest.raises(SliceError, match="rank-deficient"):
        sc.Slice(origin=np.zeros(3), basis=basis, domain=[[0, 0], [1, 0], [0, 1]])


def test_basis_of_the_wrong_shape():
    with pytest.raises(SliceError, match=r"basis must have shape \(D, 2\) = \(4, 2\)"):
        sc.Slice(origin=np.zeros(4), basis=np.eye(3)[:, :2], domain=[[0, 0], [1, 0], [0, 1]])


@pytest.mark.parametrize(
    ("model", "shape"),
    [
        (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)), (2,)),
        (nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 1)), (1, 8, 8)),
        (nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 1)), (3, 9, 9)),
    ],
    ids=["mlp", "conv_channels", "conv_then_linear_size"],
)
def test_slice_input_shape_does_not_fit_the_model(model, shape):
    sl = sc.Slice.from_anchors([np.zeros(shape)], pad=1.0)
    with pytest.raises(SliceError, match="does not fit the model") as info:
        sc.partition(model.eval(), sl)
    assert str(shape) in str(info.value)


def test_all_errors_share_a_base_class():
    for cls in (NotPiecewiseLinearError, UnsupportedModelError, SliceError):
        assert issubclass(cls, SplineCamError)
    # and are ordinary TypeError / ValueError for callers that catch those
    assert issubclass(NotPiecewiseLinearError, TypeError)
    assert issubclass(SliceError, ValueError) and issubclass(UnsupportedModelError, ValueError)


# ----------------------------------------------------------------------------- the model is never modified


def _snapshot(model: nn.Module) -> dict:
    return {
        "params": {n: (p.detach().clone(), p.dtype, p.device, p.requires_grad) for n, p in model.named_parameters()},
        "buffers": {n: (b.detach().clone(), b.dtype, b.device) for n, b in model.named_buffers()},
        "training": {n: m.training for n, m in model.named_modules()},
        "hooks": {n: (len(m._forward_hooks), len(m._forward_pre_hooks)) for n, m in model.named_modules()},
        "ids": {n: id(p) for n, p in model.named_parameters()},
    }


def _assert_same(before: dict, model: nn.Module) -> None:
    after = _snapshot(model)
    assert after["training"] == before["training"]
    assert after["hooks"] == before["hooks"]
    assert after["ids"] == before["ids"]
    assert before["params"].keys() == after["params"].keys()
    for n, (t, dtype, device, grad) in before["params"].items():
        t2, dtype2, device2, grad2 = after["params"][n]
        assert (dtype2, device2, grad2) == (dtype, device, grad), n
        assert torch.equal(t, t2), n
    for n, (t, dtype, device) in before["buffers"].items():
        t2, dtype2, device2 = after["buffers"][n]
        assert (dtype2, device2) == (dtype, device), n
        assert torch.equal(t, t2), n


def _float32_bn_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2))
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
        model[1].weight.uniform_(0.5, 1.5)
        model[1].bias.uniform_(-0.2, 0.2)
    model[3].weight.requires_grad_(False)  # a frozen layer must stay frozen, the others trainable
    return model.eval()


def test_partition_and_verify_do_not_modify_the_model():
    model = _float32_bn_model()
    before = _snapshot(model)
    x = torch.randn(5, 2)
    with torch.no_grad():
        y_before = model(x)
    part = sc.partition(model, BOX)
    part.verify(model).raise_if_failed()
    _assert_same(before, model)
    assert next(model.parameters()).dtype == torch.float32
    with torch.no_grad():
        assert torch.equal(model(x), y_before)


def test_refused_model_is_not_modified():
    model = _float32_bn_model().train()
    before = _snapshot(model)
    with pytest.raises(UnsupportedModelError):
        sc.partition(model, BOX)
    _assert_same(before, model)
    assert model.training


def test_model_used_in_training_keeps_its_gradients():
    """A snapshot inside a training loop: gradients already accumulated are left alone."""
    model = _float32_bn_model()
    model(torch.randn(4, 2)).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    sc.partition(model, BOX)
    for n, p in model.named_parameters():
        if n in grads:
            assert torch.equal(p.grad, grads[n]), n


# ----------------------------------------------------------------------------- functions of the batch, not of x


@pytest.mark.parametrize("dims", [1, 2])
def test_batchnorm_without_running_statistics_is_refused(dims):
    """Regression (found by this suite): BatchNorm without running statistics normalises with batch
    statistics even in eval mode; it gave a wrong partition (2-D) or a misleading slice error (1-D)."""
    torch.manual_seed(0)
    if dims == 1:
        model = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4, track_running_stats=False), nn.ReLU(),
                              nn.Linear(4, 1))
        sl = BOX
    else:
        model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, track_running_stats=False), nn.ReLU(),
                              nn.Flatten(), nn.Linear(2 * 4 * 4, 1))
        sl = sc.Slice.from_anchors(torch.randn(1, 1, 6, 6), pad=1.0)
    with pytest.raises((NotPiecewiseLinearError, UnsupportedModelError), match=rf"1 \(BatchNorm{dims}d\)"):
        sc.partition(model.eval(), sl)


class AlwaysDropout(nn.Module):
    """F.dropout defaults to training=True: this model is random even in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2, 6)
        self.fc2 = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.dropout(torch.relu(self.fc1(x)), 0.5))


def test_functional_dropout_in_training_mode_is_refused():
    """Regression (found by this suite): this used to give a random, wrong partition."""
    with pytest.raises(SplineCamError, match="dropout"):
        sc.partition(AlwaysDropout().eval(), BOX)


class BatchCentred(nn.Module):
    """Subtracts the batch mean: the output of one sample depends on the other samples."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2, 6)
        self.fc2 = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        return self.fc2(torch.relu(h - h.mean(0, keepdim=True)))


def test_reduction_over_the_batch_axis_is_refused():
    """Regression (found by this suite): h.mean(0) used to mix the regions' affine stacks."""
    with pytest.raises(SplineCamError, match="batch"):
        sc.partition(BatchCentred().eval(), BOX)


class _CachesActivation(nn.Module):
    """Keeps its last hidden activation (made by autograd during training) as a plain attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(2, 8)
        self.l2 = nn.Linear(8, 1)
        self.last = None

    def forward(self, x):
        h = torch.relu(self.l1(x))
        self.last = h
        return self.l2(h)


def test_models_holding_autograd_tensors_are_copied_detached(make_checked_partition):
    """deepcopy refuses non-leaf tensors; the private copy takes them detached, the user's stay."""
    torch.manual_seed(0)
    cached = _CachesActivation()
    cached(torch.randn(5, 2))  # ``last`` now has a grad_fn
    cached.eval()
    last = cached.last
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # old-style weight_norm is deprecated
        wn = nn.Sequential(nn.utils.weight_norm(nn.Linear(2, 6)), nn.ReLU(), nn.Linear(6, 1)).eval()
    assert wn[0].weight.grad_fn is not None
    for model in (cached, wn):
        before = _snapshot(model)
        make_checked_partition(model, sc.Slice.box((-2, 2), (-2, 2)))
        _assert_same(before, model)
    assert cached.last is last and last.grad_fn is not None


# ----------------------------------------------------------------------------- errors a new user meets (issue 18)


def test_training_mode_names_only_modules_whose_flag_matters():
    plain = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))  # training, but nothing differs
    with pytest.raises(UnsupportedModelError) as info:
        sc.partition(plain, BOX)
    msg = str(info.value)
    assert "model.training is True" in msg and "none of its modules behaves differently" in msg
    assert "BatchNorm" not in msg and "Dropout" not in msg and "Sequential" not in msg
    mixed = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Dropout(0.1), nn.Linear(4, 1))
    with pytest.raises(UnsupportedModelError) as info:
        sc.partition(mixed, BOX)
    msg = str(info.value)
    assert "'1' (BatchNorm1d)" in msg and "'3' (Dropout)" in msg
    assert "'0'" not in msg and "'2'" not in msg and "'4'" not in msg  # Linear, ReLU: no difference

    class Reads(nn.Module):  # a custom module whose forward reads self.training
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) * (2.0 if self.training else 1.0)

    with pytest.raises(UnsupportedModelError, match=r"'\(the model\)' \(Reads\)"):
        sc.partition(Reads(), BOX)
    # the compat wrapper gives the same diagnosis
    with pytest.raises(UnsupportedModelError, match="none of its modules behaves differently"):
        sc.wrappers.model_wrapper(plain, input_shape=(2,))


def test_an_unbatched_image_read_as_anchors_warns():
    x = torch.randn(3, 8, 8)
    with pytest.warns(sc.AnchorShapeWarning, match=r"a \(3, 8, 8\) Tensor was read as 3 anchors.*pass x\[None\]"):
        sl = sc.Slice.from_anchors(x)
    assert sl.input_shape == (8, 8)  # what was asked for, literally
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sc.Slice.from_anchors(x[None]).input_shape == (3, 8, 8)
        assert sc.Slice.from_anchors(x, input_shape=(3, 8, 8)).input_shape == (3, 8, 8)
        assert sc.Slice.from_anchors(list(x)).input_shape == (8, 8)  # a list means anchors
        assert sc.Slice.from_anchors(torch.randn(3, 10)).input_shape == (10,)  # three vectors: usual


def test_a_torchscript_model_is_refused_by_name():
    net = _mlp(nn.ReLU())
    for scripted in (torch.jit.script(net), torch.jit.trace(net, torch.zeros(1, 2))):
        with pytest.raises(UnsupportedModelError, match="TorchScript module") as info:
            sc.partition(scripted, BOX)
        assert "load_state_dict(scripted.state_dict())" in str(info.value)


def test_a_model_on_the_meta_device_is_refused():
    with torch.device("meta"):
        net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1)).eval()
    with pytest.raises(UnsupportedModelError, match="meta device") as info:
        sc.partition(net, BOX)
    assert "to_empty" in str(info.value)
    with pytest.raises(UnsupportedModelError, match="meta"):
        sc.partition(_mlp(nn.ReLU()), BOX, device="meta")


@pytest.mark.parametrize("device", ["gpu", "GPU:0"])
def test_device_gpu_is_not_a_torch_device(device):
    with pytest.raises(UnsupportedModelError, match=r"not a torch device; use 'cuda'"):
        sc.partition(_mlp(nn.ReLU()), BOX, device=device)


def test_unknown_device_names_get_a_clear_message():
    with pytest.raises(UnsupportedModelError, match=r"device='tpu' is not a torch device"):
        sc.partition(_mlp(nn.ReLU()), BOX, device="tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a usable CUDA device")
def test_cuda_without_cuda_says_why():
    with pytest.raises(UnsupportedModelError) as info:
        sc.partition(_mlp(nn.ReLU()), BOX, device="cuda")
    msg = str(info.value)
    if torch.version.cuda is None:
        assert "CPU-only build" in msg and "torch.version.cuda is None" in msg
    else:
        assert "torch.cuda.is_available() is False" in msg


def test_float32_partition_is_verified_with_float32_tolerances():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    part = sc.partition(net, BOX, dtype=torch.float32)
    assert part.dtype == torch.float32 and sc.partition(net, BOX).dtype == torch.float64
    report = part.verify(net)
    assert report, report
    assert report["affine"].bound == pytest.approx(100 * torch.finfo(torch.float32).eps)
    assert "float32" in report["affine"].detail
    # the float64 bound applied to the float32 partition fails, as it did before (no silent pass)
    assert not part.verify(net, rtol=1e-9)["affine"].passed
    # the dtype survives save/load
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        part.save(f"{d}/p.npz")
        assert sc.Partition.load(f"{d}/p.npz").dtype == torch.float32
