"""Recording the geometry during training (issue 5): snapshots, the trained model left untouched,
save/load, statistics over steps, animations and the training-dynamics example."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import copy  # noqa: E402
import importlib.util  # noqa: E402
import random  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import splinecam as sc  # noqa: E402
import splinecam.record as screc  # noqa: E402
from splinecam.record import Recorder, Snapshot, eval_copy, partition_copy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SLICE = sc.Slice.box(xlim=(-2, 2), ylim=(-2, 2))


def _net(seed: int = 0, bn: bool = False, out: int = 2) -> nn.Module:
    """A small network in training mode (BatchNorm and Dropout behave differently in training)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        layers: list[nn.Module] = [nn.Linear(2, 8)]
        if bn:
            layers.append(nn.BatchNorm1d(8))
        layers += [nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, out)]
        return nn.Sequential(*layers).train()


def _train_step(model: nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator) -> None:
    x = torch.randn(16, 2, generator=gen)
    y = (x[:, 0] * x[:, 1] > 0).long()
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def _recorded(n: int = 3, seed: int = 0, **kw) -> Recorder:
    rec = Recorder(SLICE, **kw)
    model = _net(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    gen = torch.Generator().manual_seed(seed)
    for step in range(n):
        rec.snapshot(model, step * 10, loss=0.1 * step)
        for _ in range(10):
            _train_step(model, opt, gen)
    return rec


# ============================================================================ snapshots
def test_snapshot_contents_match_partition_of_eval_copy():
    model = _net(1, bn=True)
    # non-trivial running statistics, so that training mode (batch statistics) would differ
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    rec = Recorder(SLICE, every=5)
    snap = rec.snapshot(model, 7, loss=torch.tensor(0.25), lr=1e-3)
    assert isinstance(snap, Snapshot) and rec[0] is snap and len(rec) == 1
    assert snap.step == 7 and snap.seconds > 0
    assert snap.info == {"loss": 0.25, "lr": 1e-3}
    part = snap.partition
    assert isinstance(part, sc.Partition)
    ref_model = copy.deepcopy(model).eval().double()
    ref = sc.partition(ref_model, SLICE)
    assert part.num_regions == ref.num_regions
    np.testing.assert_allclose(np.sort(part.areas()), np.sort(ref.areas()), rtol=1e-9, atol=1e-12)
    assert bool(part.verify(ref_model))
    # statistics: every scalar of Partition.statistics(), nothing else (no figures, no dicts)
    full = ref.statistics()
    scalar_keys = {k for k, v in full.items() if isinstance(v, (int, float))}
    assert set(snap.stats) == scalar_keys
    assert snap.stats["num_regions"] == ref.num_regions
    assert snap.stats["boundary_length"] == pytest.approx(full["boundary_length"], rel=1e-9)
    assert all(isinstance(v, (int, float)) for v in snap.stats.values())


def test_every_logic_and_call():
    rec = Recorder(SLICE, every=3)
    model = _net(0)
    got = [rec(model, s) for s in range(10)]
    assert [s for s, g in zip(range(10), got) if g is not None] == [0, 3, 6, 9]
    assert rec.steps.tolist() == [0, 3, 6, 9]
    assert rec.should_record(12) and not rec.should_record(13)
    rec.snapshot(model, 4)  # snapshot() always records
    assert rec.steps.tolist() == [0, 3, 6, 9, 4]
    assert len(rec.partitions) == 5 and rec.seconds.shape == (5,)
    rec.clear()
    assert len(rec) == 0
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="every"):
            Recorder(SLICE, every=bad)
    with pytest.raises(TypeError, match="Slice"):
        Recorder("not a slice")
    with pytest.raises(ValueError, match="info 'x'"):
        Recorder(SLICE).snapshot(model, 0, x="text")
    with pytest.raises(ValueError, match="step"):
        Recorder(SLICE).snapshot(model, 0.5)


def test_statistics_only_mode():
    rec = Recorder(SLICE, statistics=False, keep_partitions=False)
    snap = rec.snapshot(_net(0), 0)
    assert snap.partition is None and set(snap.stats) == {"num_regions"} and snap.num_regions > 0
    with pytest.raises(ValueError, match="keep_partitions"):
        rec.animate("x.gif")


# ============================================================================ nothing is touched
def _state(model: nn.Module, opt: torch.optim.Optimizer) -> dict:
    return {
        "modes": [m.training for m in model.modules()],
        "params": [(p.detach().clone(), p.dtype, p.device, p.requires_grad) for p in model.parameters()],
        "grads": [(p.grad, p.grad.detach().clone()) for p in model.parameters()],
        "buffers": [b.detach().clone() for b in model.buffers()],
        "opt": copy.deepcopy(opt.state_dict()),
        "torch_rng": torch.get_rng_state(),
        "np_rng": np.random.get_state(),
        "py_rng": random.getstate(),
        "grad_mode": torch.is_grad_enabled(),
    }


def _assert_same_state(a: dict, b: dict) -> None:
    assert a["modes"] == b["modes"]
    for (p, dt, dev, rg), (q, dt2, dev2, rg2) in zip(a["params"], b["params"]):
        assert torch.equal(p, q) and dt == dt2 and dev == dev2 and rg == rg2
    for (g_obj, g), (h_obj, h) in zip(a["grads"], b["grads"]):
        assert g_obj is h_obj and torch.equal(g, h)  # the same .grad tensor, same values
    assert all(torch.equal(x, y) for x, y in zip(a["buffers"], b["buffers"]))
    sa, sb = a["opt"], b["opt"]
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for k in sa["state"]:
        for name, v in sa["state"][k].items():
            w = sb["state"][k][name]
            assert torch.equal(v, w) if isinstance(v, torch.Tensor) else v == w
    assert torch.equal(a["torch_rng"], b["torch_rng"])
    assert a["np_rng"][0] == b["np_rng"][0] and np.array_equal(a["np_rng"][1], b["np_rng"][1])
    assert a["np_rng"][2:] == b["np_rng"][2:]
    assert a["py_rng"] == b["py_rng"]
    assert a["grad_mode"] == b["grad_mode"]


def test_model_optimizer_and_rng_untouched():
    model = _net(2, bn=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):
        _train_step(model, opt, gen)  # grads and Adam state exist now
    torch.manual_seed(123)
    np.random.seed(5)
    random.seed(7)
    before = _state(model, opt)
    rec = Recorder(SLICE, every=1)
    rec(model, 0)
    rec.snapshot(model, 1)
    partition_copy(model, SLICE)
    _assert_same_state(before, _state(model, opt))
    # and the copy helper itself
    c = eval_copy(model)
    assert not c.training and all(not p.requires_grad and p.grad is None for p in c.parameters())
    assert all(p.dtype == torch.float64 for p in c.parameters())
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(c.parameters(), model.parameters()))


def test_training_with_snapshots_is_identical_to_training_without():
    """Interleaving snapshots changes nothing: same parameters after the same steps and seeds."""
    results = []
    for record in (False, True):
        model = _net(3)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        gen = torch.Generator().manual_seed(1)
        rec = Recorder(SLICE, every=2)
        torch.manual_seed(42)  # Dropout draws from the global generator
        for step in range(6):
            if record:
                rec(model, step)
            _train_step(model, opt, gen)
        results.append([p.detach().clone() for p in model.parameters()])
        assert len(rec) == (3 if record else 0)
    assert all(torch.equal(p, q) for p, q in zip(*results))


def test_eval_copy_keeps_tied_parameters_shared():
    lin = nn.Linear(2, 2)
    model = nn.Sequential(lin, nn.ReLU(), lin).train()
    c = eval_copy(model)
    assert c[0].weight is c[2].weight and c[0] is c[2]
    assert len(list(c.parameters())) == 2


def test_eval_copy_of_a_float64_model_shares_no_storage():
    """Already float64 (no conversion needed): the copy must still not alias the trained tensors."""
    model = _net(4, bn=True).double()
    c = eval_copy(model)
    for a, b in zip(list(c.parameters()) + list(c.buffers()), list(model.parameters()) + list(model.buffers())):
        assert a.data_ptr() != b.data_ptr() and torch.equal(a, b)
    assert model.training and model[0].weight.requires_grad


def test_snapshot_of_a_model_holding_autograd_tensors():
    """A model that caches an activation in forward (a non-leaf tensor, which deepcopy refuses)."""

    class Caching(nn.Sequential):
        def forward(self, x):
            self.last = super().forward(x)
            return self.last

    model = Caching(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 1)).train()
    model(torch.randn(4, 2)).sum().backward()
    last = model.last
    snap = Recorder(SLICE).snapshot(model, 0)
    assert snap.num_regions > 1 and model.last is last and last.grad_fn is not None
    assert bool(snap.partition.verify(eval_copy(model)))


def test_snapshot_restores_random_states_drawn_while_computing(monkeypatch):
    """Whatever the engine or the statistics draw from the global generators is undone.

    The engine draws nothing today, so the random draws are injected: without `preserve_rng` around
    the partition and the statistics, this test fails."""
    import splinecam.partitioning as sceng

    calls = []
    orig_partition, orig_stats = sceng.partition, sc.Partition.statistics

    def draw(tag):
        calls.append(tag)
        torch.rand(3), np.random.rand(3), random.random()

    def partition(*args, **kwargs):
        draw("partition")
        return orig_partition(*args, **kwargs)

    def statistics(self, *args, **kwargs):
        draw("statistics")
        return orig_stats(self, *args, **kwargs)

    monkeypatch.setattr(sceng, "partition", partition)
    monkeypatch.setattr(sc.Partition, "statistics", statistics)
    model = _net(5)
    torch.manual_seed(11)
    np.random.seed(12)
    random.seed(13)
    t, n, p = torch.get_rng_state(), np.random.get_state(), random.getstate()
    Recorder(SLICE).snapshot(model, 0)
    partition_copy(model, SLICE)
    assert calls == ["partition", "statistics", "partition"]
    assert torch.equal(t, torch.get_rng_state()) and random.getstate() == p
    m = np.random.get_state()
    assert n[0] == m[0] and np.array_equal(n[1], m[1]) and n[2:] == m[2:]


# ============================================================================ persistence
def test_save_load_round_trip(tmp_path):
    rec = _recorded(3, every=10)
    out = rec.save(tmp_path / "run")
    assert (out / "recorder.json").is_file() and len(list(out.glob("snapshot_*.npz"))) == 3
    assert not list(out.glob("*.pkl"))
    back = Recorder.load(out)
    assert back.every == 10 and back.steps.tolist() == rec.steps.tolist() == [0, 10, 20]
    np.testing.assert_array_equal(back.slice.domain, rec.slice.domain)
    for a, b in zip(rec, back):
        assert a.stats == b.stats and a.info == b.info and a.seconds == b.seconds
        pa, pb = a.partition, b.partition
        for name in ("vertices", "region_ptr", "region_vertices", "edges", "edge_regions", "edge_layer"):
            np.testing.assert_array_equal(getattr(pa, name), getattr(pb, name))
        np.testing.assert_array_equal(pa.output_affine[0], pb.output_affine[0])
        np.testing.assert_array_equal(pa.output_affine[1], pb.output_affine[1])
        assert len(pa.codes) == len(pb.codes) and all(np.array_equal(x, y) for x, y in zip(pa.codes, pb.codes))
    cols_a, cols_b = rec.statistics(), back.statistics()
    assert cols_a.keys() == cols_b.keys()
    for k in cols_a:
        np.testing.assert_array_equal(cols_a[k], cols_b[k])
    assert back.animate(tmp_path / "loaded.gif", dpi=20).stat().st_size > 0  # a loaded run makes its movie
    # saving fewer snapshots into the same directory removes the stale files
    rec.snapshots = rec.snapshots[:1]
    rec.save(out)
    assert len(list(out.glob("snapshot_*.npz"))) == 1 and len(Recorder.load(out)) == 1
    # statistics-only recorders round-trip too
    lite = Recorder(SLICE, keep_partitions=False)
    lite.snapshot(_net(0), 5)
    back = Recorder.load(lite.save(tmp_path / "lite"))
    assert back[0].partition is None and back[0].stats == lite[0].stats and not back.keep_partitions
    with pytest.raises(FileNotFoundError, match="recorder.json"):
        Recorder.load(tmp_path)


# ============================================================================ statistics
def test_statistics_columns():
    rec = _recorded(3)
    cols = rec.statistics()
    assert cols["step"].tolist() == [0, 10, 20] and cols["step"].dtype == np.int64
    assert "seconds" in cols and "loss" in cols
    np.testing.assert_allclose(cols["loss"], [0.0, 0.1, 0.2])
    for k in rec[0].stats:
        assert k in cols and cols[k].shape == (3,)
        assert cols[k][0] == pytest.approx(rec[0].stats[k], nan_ok=True)
    assert cols["num_regions"].dtype == np.int64
    assert cols["num_regions"].tolist() == [p.num_regions for p in rec.partitions]
    np.testing.assert_allclose(
        cols["boundary_length"], [p.decision_boundary().length for p in rec.partitions], rtol=1e-9
    )
    assert "slope_norm_quantiles" not in cols  # not a scalar
    empty = Recorder(SLICE).statistics()
    assert empty["step"].shape == (0,)


def test_plot_statistics():
    rec = _recorded(3)
    cols = rec.statistics()
    fig, axes = plt.subplots(2, 1)
    lines = rec.plot_statistics(["num_regions", "loss"], ax=axes)
    assert lines[1].axes is axes[1] and list(lines.axes) == list(axes)
    np.testing.assert_array_equal(lines[0].get_xdata(), [0, 10, 20])
    np.testing.assert_array_equal(lines[0].get_ydata(), cols["num_regions"])
    plt.close(fig)
    fig, ax = plt.subplots()
    with pytest.raises(KeyError, match="no statistic"):
        rec.plot_statistics("nope", ax=ax)
    with pytest.raises(ValueError, match="one per key"):
        rec.plot_statistics(["num_regions", "loss"], ax=[ax])
    with pytest.raises(ValueError, match="empty"):
        rec.plot_statistics([], ax=ax)
    one = rec.plot_statistics("num_regions", ax=ax)
    assert one.axes == [ax] and ax.get_ylabel() == "num_regions"
    plt.close(fig)


def _overlap(a, b) -> bool:
    return a.width > 0 and b.width > 0 and a.overlaps(b)


def test_plot_statistics_one_axes_per_statistic():
    """The docs' call: one axes, two statistics of very different sizes -> two stacked axes, each
    scaled to its own statistic, sharing the step axis; integer ticks for counts; no overlapping text."""
    rec = _recorded(4)
    cols = rec.statistics()
    assert cols["num_regions"].min() > 5 * cols["boundary_length"].max()  # ~70 vs ~5
    fig, ax = plt.subplots()
    p = rec.plot_statistics(["num_regions", "boundary_length"], ax=ax)
    assert len(p) == 2 and len(p.axes) == 2 and p.axes[0] is not p.axes[1] and p.figure is fig
    assert ax not in fig.axes and len(fig.axes) == 2  # its place was split
    for line, a, k in zip(p, p.axes, ["num_regions", "boundary_length"]):
        assert line.axes is a and a.get_ylabel() == k
        lo, hi = a.get_ylim()
        v = cols[k]
        # each axis spans its own statistic (not both)
        assert lo <= v.min() and hi >= v.max() and hi - lo < 3 * (v.max() - v.min()) + 1e-9
    assert p.axes[0].get_shared_x_axes().joined(p.axes[0], p.axes[1])
    assert p.axes[0].get_xlabel() == "" and p.axes[1].get_xlabel() == "step"
    fig.canvas.draw()
    ticks = p.axes[0].get_yticks()
    visible = ticks[(ticks >= p.axes[0].get_ylim()[0]) & (ticks <= p.axes[0].get_ylim()[1])]
    assert len(visible) >= 2 and np.all(visible == np.round(visible))  # integer counts
    assert np.all(p.axes[1].get_xticks() == np.round(p.axes[1].get_xticks()))  # integer steps
    # no colliding text: tick labels and axis labels of different axes do not overlap
    r = fig.canvas.get_renderer()
    texts = []
    for a in p.axes:
        (x0, x1), (y0, y1) = sorted(a.get_xlim()), sorted(a.get_ylim())
        # the labels drawn: those of ticks inside the view limits
        items = [a.yaxis.label] + [t for t in a.get_yticklabels() if y0 <= t.get_position()[1] <= y1]
        items += [t for t in a.get_xticklabels() if t.get_visible() and x0 <= t.get_position()[0] <= x1]
        items += [a.xaxis.label]
        texts.append([t.get_window_extent(r) for t in items if t.get_text()])
    for b0 in texts[0]:
        for b1 in texts[1]:
            assert not _overlap(b0, b1)
    plt.close(fig)
    # ax=None: stacked axes on a new figure when the current one has axes
    f0, _ = plt.subplots()
    p2 = rec.plot_statistics(["num_regions", "boundary_length", "loss"])
    assert p2.figure is not f0 and len(p2.figure.axes) == 3 and len(f0.axes) == 1
    plt.close("all")
    # an axes placed by hand is split too
    fig = plt.figure()
    a = fig.add_axes((0.1, 0.1, 0.8, 0.8))
    p3 = rec.plot_statistics(["num_regions", "loss"], ax=a)
    y0 = [ax_.get_position().y0 for ax_ in p3.axes]
    assert y0[0] > y0[1] and p3.axes[0].get_position().y0 >= p3.axes[1].get_position().y1
    plt.close(fig)


# ============================================================================ animation
def test_animate_gif_frames(tmp_path):
    from PIL import Image

    rec = _recorded(3)
    figs = plt.get_fignums()
    path = rec.animate(tmp_path / "run.gif", fps=4, dpi=30)
    assert path == tmp_path / "run.gif" and path.is_file()
    assert plt.get_fignums() == figs  # no pyplot figure left open (nor shown)
    with Image.open(path) as im:
        assert im.format == "GIF"
        assert im.n_frames == 3
        assert im.info["duration"] == pytest.approx(250, abs=10)  # fps=4
        size = im.size
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB"), dtype=np.int16))
    assert all(np.abs(a - b).sum() > 0 for a, b in zip(frames, frames[1:]))  # the geometry changes
    # other colourings, no side panel
    p2 = rec.animate(str(tmp_path / "class.GIF"), color_by="class", side_panel=False, dpi=30, boundary=False)
    with Image.open(p2) as im:
        assert im.n_frames == 3 and im.size[0] < size[0]
    p3 = rec.animate(tmp_path / "fn.gif", color_by=lambda p: p.areas(), dpi=30, side_panel=False)
    assert p3.is_file()


def test_animate_uses_one_colour_scale(tmp_path, monkeypatch):
    rec = _recorded(3)
    seen = []
    import splinecam.plot as scp

    orig = scp.plot_partition

    def spy(*args, **kwargs):
        art = orig(*args, **kwargs)
        seen.append(art.regions.norm)
        return art

    monkeypatch.setattr(scp, "plot_partition", spy)
    rec.animate(tmp_path / "a.gif", dpi=20, side_panel=False)
    slopes = np.concatenate([sc.plot.slope_norms(p) for p in rec.partitions])
    assert len(seen) == 3
    for norm in seen:
        assert norm.vmin == pytest.approx(slopes.min()) and norm.vmax == pytest.approx(slopes.max())


def test_animate_frames_share_axes_colour_scale_and_side_panel(tmp_path, monkeypatch):
    """Look at the figure as each frame is grabbed: the same axes limits and colour limits in every
    frame, and a side panel with the region count and boundary length over all steps and a marker
    at the frame's step."""
    from matplotlib.animation import PillowWriter

    rec = _recorded(3)
    cols = rec.statistics()
    frames = []
    orig = PillowWriter.grab_frame

    def grab(self, **kw):
        fig = self.fig
        ax = fig.axes[0]
        labelled = {a.get_ylabel(): a for a in fig.axes[1:] if a.get_ylabel()}
        panel = {k: a for k, a in labelled.items() if k in ("number of regions", "decision boundary length")}
        (cbar,) = [a for k, a in labelled.items() if k.startswith("slope norm")]
        regions = [c for c in ax.collections if c.get_array() is not None]
        frames.append({
            "lims": (ax.get_xlim(), ax.get_ylim()),
            "norm": (regions[0].norm.vmin, regions[0].norm.vmax),
            "title": ax.get_title(),
            "colorbar": cbar.get_ylim(),
            "panel": {
                k: ([np.asarray(ln.get_xdata()).tolist() for ln in a.lines],
                    [np.asarray(ln.get_ydata()).tolist() for ln in a.lines],
                    a.get_xlim(), a.get_ylim())
                for k, a in panel.items()
            },
        })
        return orig(self, **kw)

    monkeypatch.setattr(PillowWriter, "grab_frame", grab)
    rec.animate(tmp_path / "a.gif", dpi=20, title="step {step} loss {loss:.1f}")
    assert len(frames) == 3
    slopes = np.concatenate([sc.plot.slope_norms(p) for p in rec.partitions])
    steps = cols["step"].tolist()
    for i, f in enumerate(frames):
        assert f["lims"] == ((-2.0, 2.0), (-2.0, 2.0))
        assert f["norm"] == pytest.approx((slopes.min(), slopes.max()))
        assert f["colorbar"] == pytest.approx((slopes.min(), slopes.max()))
        assert f["title"] == f"step {steps[i]} loss {0.1 * i:.1f}"
        assert set(f["panel"]) == {"number of regions", "decision boundary length"}
        for label, key in (("number of regions", "num_regions"), ("decision boundary length", "boundary_length")):
            xs, ys, xlim, ylim = f["panel"][label]
            assert xs[0] == steps and ys[0] == pytest.approx(cols[key].tolist())  # the whole curve
            assert xs[1] == [steps[i]] and ys[1] == pytest.approx([cols[key][i]])  # this frame's marker
            assert (xlim, ylim) == frames[0]["panel"][label][2:]  # fixed panel axes
    assert len({f["lims"] for f in frames}) == 1


def test_animate_mp4_without_ffmpeg(tmp_path, monkeypatch):
    rec = _recorded(2)
    monkeypatch.setattr(screc, "_ffmpeg_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"ffmpeg.*\.gif|\.gif.*ffmpeg") as err:
        rec.animate(tmp_path / "run.mp4")
    assert "install" in str(err.value)
    assert not (tmp_path / "run.mp4").exists()
    with pytest.raises(ValueError, match="suffix"):
        rec.animate(tmp_path / "run.avi")
    with pytest.raises(ValueError, match="color_by"):
        rec.animate(tmp_path / "run.gif", color_by="rainbow")


@pytest.mark.skipif(not screc._ffmpeg_available(), reason="ffmpeg is not installed")
def test_animate_mp4(tmp_path):
    path = _recorded(2).animate(tmp_path / "run.mp4", dpi=33)  # 330 x 145.2 px: odd size for h264
    assert path.read_bytes()[4:8] == b"ftyp"  # an MP4 (ISO base media) file


# ============================================================================ example
def test_training_dynamics_example_fast(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("training_dynamics", ROOT / "examples" / "training_dynamics.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    threads = torch.get_num_threads()
    try:
        res = mod.main(["--fast", "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "per snapshot" in out and "x one training step" in out
    assert res["ratio"] > 0
    from PIL import Image

    with Image.open(tmp_path / "training_dynamics.gif") as im:
        assert im.n_frames == 4  # steps 0, 10, 20, 30
