"""Framework integrations (issue 5): lazy imports, install hints, TensorBoard and Lightning.

The TensorBoard and Lightning tests run when those packages are installed and are skipped (with the
reason) otherwise.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import importlib.util  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402
import warnings  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import splinecam as sc  # noqa: E402
import splinecam.integrations.lightning as sclight  # noqa: E402
import splinecam.integrations.tensorboard as sctb  # noqa: E402
from splinecam.record import Recorder  # noqa: E402

SLICE = sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2))
HAS_TB = importlib.util.find_spec("tensorboard") is not None
HAS_PL = importlib.util.find_spec("lightning") is not None or importlib.util.find_spec("pytorch_lightning") is not None


def _net(seed: int = 0) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)).train()


def _event_tags(log_dir) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = list(log_dir.rglob("events.out.tfevents.*"))
    assert files, f"no events file under {log_dir}"
    tags: dict = {"images": set(), "scalars": set()}
    for f in files:
        acc = EventAccumulator(str(f), size_guidance={"images": 0, "scalars": 0})
        acc.Reload()
        tags["images"] |= set(acc.Tags()["images"])
        tags["scalars"] |= set(acc.Tags()["scalars"])
        tags.setdefault("acc", []).append(acc)
    return tags


# ============================================================================ lazy imports and hints
def test_integrations_import_no_framework():
    code = (
        "import sys, splinecam, splinecam.record, splinecam.integrations, "
        "splinecam.integrations.lightning, splinecam.integrations.tensorboard\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning', 'tensorboard',"
        " 'matplotlib', 'PIL') or m.startswith('torch.utils.tensorboard')]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_lightning_missing_gives_install_hint(monkeypatch):
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning"):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setattr(sclight, "_CLASSES", {})
    with pytest.raises(ImportError, match="pip install lightning"):
        sclight.callback_class()
    # the name exists without Lightning (hasattr, getattr, docs tools work); using it raises
    from splinecam.integrations.lightning import SplineCamCallback

    assert hasattr(sclight, "SplineCamCallback")
    assert not isinstance(object(), SplineCamCallback)
    with pytest.raises(ImportError, match="pip install lightning"):
        SplineCamCallback(sc.Slice.box((-1, 1), (-1, 1)))


def test_tensorboard_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match="pip install tensorboard"):
        sctb.summary_writer("unused")


# ============================================================================ TensorBoard
class _FakeWriter:
    def __init__(self) -> None:
        self.figures: list = []
        self.scalars: dict = {}

    def add_figure(self, tag, figure, global_step=None, close=True):
        self.figures.append((tag, figure, global_step))

    def add_scalar(self, tag, value, global_step=None):
        self.scalars[tag] = (value, global_step)


def test_log_partition_with_any_writer():
    w = _FakeWriter()
    model = _net(0)
    part = sctb.log_partition(w, model, 5, slice=SLICE, tag="geo/part", color_by="class", statistics=True)
    assert model.training  # the model in training mode is analysed on a copy
    assert isinstance(part, sc.Partition)
    (tag, fig, step), = w.figures
    assert tag == "geo/part" and step == 5 and len(fig.axes[0].collections) >= 1
    assert w.scalars["geo/num_regions"] == (part.num_regions, 5)
    same = sctb.log_partition(w, part, 6)
    assert same is part and w.figures[-1][2] == 6
    with pytest.raises(ValueError, match="slice"):
        sctb.log_partition(w, model, 0)
    with pytest.raises(TypeError, match="add_figure"):
        sctb.log_partition(object(), part, 0)
    with pytest.raises(TypeError, match="Partition"):
        sctb.log_partition(w, "x", 0)


@pytest.mark.skipif(not HAS_TB, reason="tensorboard is not installed (pip install tensorboard)")
def test_log_partition_writes_tensorboard_events(tmp_path):
    writer = sctb.summary_writer(tmp_path / "tb")
    model = _net(1)
    part = sctb.log_partition(writer, model, 3, slice=SLICE, statistics=True)
    sctb.log_statistics(writer, part, 4, prefix="extra/", keys=None)
    writer.close()
    tags = _event_tags(tmp_path / "tb")
    assert "splinecam/partition" in tags["images"]
    assert {"splinecam/num_regions", "splinecam/boundary_length", "extra/area_mean"} <= tags["scalars"]
    (acc,) = tags["acc"]
    (img,) = acc.Images("splinecam/partition")
    assert img.step == 3 and img.width > 50 and img.height > 50
    assert acc.Scalars("splinecam/num_regions")[0].value == part.num_regions
    assert model.training


# ============================================================================ Lightning
@pytest.fixture(params=["stub", "lightning"])
def lightning_pl(request, monkeypatch):
    """``lightning.pytorch``: the real one (skipped when not installed), or a stub with only the
    ``Callback`` base class, so that the callback's own logic is exercised where Lightning is not
    installed (CI)."""
    monkeypatch.setattr(sclight, "_CLASSES", {})  # no class built against the other variant
    if request.param == "lightning":
        if not HAS_PL:
            pytest.skip("PyTorch Lightning is not installed (pip install lightning)")
        return sclight._import_lightning()
    top, pl = types.ModuleType("lightning"), types.ModuleType("lightning.pytorch")
    pl.Callback = type("Callback", (), {})
    top.pytorch = pl
    monkeypatch.setitem(sys.modules, "lightning", top)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", pl)
    assert sclight._import_lightning() is pl
    return pl


def test_lightning_callback_records_once_per_step(lightning_pl):
    from splinecam.integrations.lightning import SplineCamCallback

    pl = lightning_pl
    cb = SplineCamCallback(SLICE, every_n_steps=2, log_figure=True)
    assert isinstance(cb, pl.Callback) and isinstance(cb, SplineCamCallback) and cb.recorder.every == 2
    module = nn.Module()  # stands in for a LightningModule: `module="net"` picks the network
    module.net = net = _net(0)
    cb.module = "net"
    logger = SimpleNamespace(experiment=_FakeWriter(), metrics=[])
    logger.log_metrics = lambda metrics, step: logger.metrics.append((step, metrics))
    trainer = SimpleNamespace(global_step=0, is_global_zero=True, loggers=[logger])
    cb.on_train_start(trainer, module)
    for gs in (1, 2, 2, 3, 4):  # 2 twice: gradient accumulation
        trainer.global_step = gs
        cb.on_train_batch_end(trainer, module, None, None, 0)
    assert cb.recorder.steps.tolist() == [0, 2, 4]
    assert [s for s, _ in logger.metrics] == [0, 2, 4]
    assert "splinecam/num_regions" in logger.metrics[0][1]
    assert [f[2] for f in logger.experiment.figures] == [0, 2, 4]
    trainer.is_global_zero = False
    trainer.global_step = 6
    cb.on_train_batch_end(trainer, module, None, None, 0)
    assert len(cb.recorder) == 3  # other ranks do not record
    assert net.training and all(p.grad is None for p in net.parameters())
    assert cb.state_dict() == {"last_step": 4}
    cb.load_state_dict({"last_step": 8})
    trainer.is_global_zero, trainer.global_step = True, 8
    cb.on_train_batch_end(trainer, module, None, None, 0)  # step 8 was recorded before the restart
    assert len(cb.recorder) == 3
    cb.module = lambda m: m.net  # a function of the LightningModule
    cb.on_train_start(trainer, SimpleNamespace(net=_net(1)))
    trainer.global_step = 10
    cb.on_train_batch_end(trainer, SimpleNamespace(net=_net(1)), None, None, 0)
    assert cb.recorder.steps.tolist() == [0, 2, 4, 10]
    # a recorder can be passed in; its `every` is the default
    rec = Recorder(SLICE, every=7)
    cb2 = SplineCamCallback(recorder=rec)
    assert cb2.recorder is rec and cb2.every_n_steps == 7
    with pytest.raises(ValueError, match="slice"):
        SplineCamCallback()


@pytest.mark.skipif(not HAS_PL, reason="PyTorch Lightning is not installed (pip install lightning)")
@pytest.mark.skipif(not HAS_TB, reason="tensorboard is not installed (pip install tensorboard)")
def test_lightning_trainer_fit_with_callback(tmp_path):
    """A real Trainer: snapshots of the whole LightningModule (attached to the trainer) every 2 steps,
    logged to TensorBoard, and the training is the same as without the callback (Dropout, shuffling
    and Adam all depend on the random states and the parameters)."""
    pl = sclight._import_lightning()
    loggers = pytest.importorskip(f"{pl.__name__}.loggers")
    from splinecam.integrations.lightning import SplineCamCallback

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            with torch.random.fork_rng():
                torch.manual_seed(2)
                self.net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 2))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.cross_entropy(self(x), y)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=0.05)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=g)
    data = torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long())

    def fit(callbacks, name):
        torch.manual_seed(0)
        loader = torch.utils.data.DataLoader(data, batch_size=16, shuffle=True)
        trainer = pl.Trainer(
            max_steps=4,
            accelerator="cpu",
            devices=1,
            logger=loggers.TensorBoardLogger(str(tmp_path), name=name),
            callbacks=callbacks,
            default_root_dir=str(tmp_path),
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            log_every_n_steps=1,
        )
        module = Module()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit(module, loader)
        return module

    cb = SplineCamCallback(SLICE, every_n_steps=2)  # module=None: the LightningModule itself
    rng = torch.get_rng_state()
    with_cb = fit([cb], "run")
    without = fit([], "plain")
    torch.set_rng_state(rng)
    assert cb.recorder.steps.tolist() == [0, 2, 4]
    assert all(s.partition is not None and s.stats["num_regions"] >= 1 for s in cb.recorder)
    assert bool(cb.recorder[-1].partition.verify(with_cb.net.eval()))
    assert all(torch.equal(p, q) for p, q in zip(with_cb.parameters(), without.parameters()))
    tags = _event_tags(tmp_path / "run")
    assert "splinecam/partition" in tags["images"]
    assert "splinecam/num_regions" in tags["scalars"]
