"""Big slices (issue 18): the region-count estimate, the warning before a big run, the progress bar
as the fraction of the domain's area done, one bar over a Recorder's snapshots, verify(quick=True)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import splinecam as sc
import splinecam.engine.estimate as est_mod
import splinecam.engine.progress as progress_mod
from splinecam.engine.estimate import estimate_regions


def _mlp(width: int, depth: int, seed: int, act: type[nn.Module] = nn.ReLU, bias: bool = True) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(2, width, bias=bias), act()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width, bias=bias), act()]
    return nn.Sequential(*layers, nn.Linear(width, 3, bias=bias)).eval()


def _cnn() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 5))
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.3, 0.3)
    return net.eval(), torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(2))


class _Maxout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.a = nn.Linear(2, 24)
        self.b = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x).reshape(-1, 8, 3).amax(-1))


def _maxpool_cnn() -> tuple[nn.Module, sc.Slice]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 3))
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    return net.eval(), sc.Slice.from_anchors(x, pad=2.0, seed=0)


CASES = {
    "maxout": lambda: (_Maxout().eval(), sc.Slice.box((-2, 2), (-2, 2))),
    "maxpool cnn": _maxpool_cnn,
    "hardtanh relu6": lambda: ((lambda: (torch.manual_seed(6), nn.Sequential(
        nn.Linear(2, 16), nn.Hardtanh(), nn.Linear(16, 16), nn.ReLU6(), nn.Linear(16, 1)).eval())[1])(),
        sc.Slice.box((-2, 2), (-2, 2))),
    "relu 16x1": lambda: (_mlp(16, 1, 0), sc.Slice.box((-2, 2), (-2, 2))),
    "relu 24x3": lambda: (_mlp(24, 3, 1), sc.Slice.box((-2, 2), (-1, 3))),
    "leaky 20x4": lambda: (_mlp(20, 4, 2, act=lambda: nn.LeakyReLU(0.1)), sc.Slice.box((-3, 3), (-3, 3))),
    "bias-free 32x1": lambda: (_mlp(32, 1, 3, bias=False), sc.Slice.box((-2, 2), (-1.5, 2.5))),
    "cnn": lambda: (lambda n, x: (n, sc.Slice.from_anchors(x, pad=3.0, seed=0)))(*_cnn()),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_estimate_is_close_to_the_exact_count(name):
    model, sl = CASES[name]()
    exact = sc.partition(model, sl, warn_regions=None).num_regions
    est = estimate_regions(model, sl, grid=64)
    assert isinstance(est, sc.RegionEstimate)
    assert abs(est.regions - exact) <= 0.3 * exact, (est, exact)
    assert est.distinct_codes <= exact  # codes seen on the grid: a lower bound here
    assert est.evaluations == 64 * 64 + 4 * 64  # a square domain: every grid node, 64 points a side
    assert int(est) == round(est.regions) and float(est) == est.regions
    # a coarse grid is in the same range (what partition() checks first)
    coarse = estimate_regions(model, sl, grid=4)
    assert 0.5 * exact <= coarse.regions <= 2.0 * exact, (coarse, exact)


def test_bias_free_lines_through_one_point_count_once():
    """32 lines through the origin make 64 regions, not 1 + 32 + 32 * 31 / 2."""
    model, sl = CASES["bias-free 32x1"]()
    assert sc.partition(model, sl).num_regions == 64
    assert estimate_regions(model, sl, grid=16).regions == pytest.approx(64, abs=2)


def test_estimate_does_not_touch_the_model_and_checks_shapes():
    model = _mlp(8, 2, 0)
    before = [p.clone() for p in model.parameters()]
    estimate_regions(model, sc.Slice.box())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert not model.training and model[0].weight.dtype == torch.float32
    with pytest.raises(sc.SliceError, match="does not fit the model"):
        estimate_regions(model, sc.Slice.from_anchors(np.zeros((1, 5))))
    with pytest.raises(ValueError, match="grid"):
        estimate_regions(model, sc.Slice.box(), grid=1)


def test_partition_warns_before_a_big_run_with_how_to_shrink_it():
    model, sl = CASES["relu 24x3"]()
    exact = sc.partition(model, sl, warn_regions=None).num_regions
    with pytest.warns(sc.LargePartitionWarning) as rec:
        part = sc.partition(model, sl, warn_regions=exact / 2)
    assert part.num_regions == exact  # a warning, not a refusal
    msg = str(rec[0].message)
    assert "estimated to have about" in msg and "GB" in msg
    assert "a smaller pad in Slice.from_anchors, or a smaller box" in msg and "warn_regions=None" in msg
    assert rec[0].filename == __file__  # points at the caller's line
    # the side it suggests gives fewer regions than the threshold
    side = float(msg.split("a square of side about ")[1].split(" ")[0])
    c = sl.center
    small = sc.Slice.box((c[0] - side / 2, c[0] + side / 2), (c[1] - side / 2, c[1] + side / 2))
    assert sc.partition(model, small, warn_regions=None).num_regions < exact / 2 * 1.3
    # below the threshold: silent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sc.partition(model, sl, warn_regions=10 * exact)
        sc.partition(model, sl)  # the default threshold, one million


def test_the_check_is_cheap_and_can_be_skipped(monkeypatch):
    calls: list[int] = []
    real = est_mod.estimate_program

    def counting(program, model, slc, grid=64, **kw):
        calls.append(grid)
        return real(program, model, slc, grid=grid, **kw)

    monkeypatch.setattr(est_mod, "estimate_program", counting)
    model, sl = CASES["relu 16x1"]()
    n = sc.partition(model, sl, warn_regions=None).num_regions
    assert calls == []
    sc.partition(model, sl)
    assert calls == []  # fewer regions than CHECK_AFTER: the check never runs
    monkeypatch.setattr(est_mod, "CHECK_AFTER", n // 2)
    part = sc.partition(model, sl)
    assert calls == [4]  # once, during the run: one 4 x 4 grid (32 evaluations) far below the threshold
    assert part.num_regions == n
    calls.clear()
    with pytest.warns(sc.LargePartitionWarning) as rec:
        sc.partition(model, sl, warn_regions=10)
    assert calls == [4, 16, 64]  # at once (a twentieth of 10 is < 1), refined near (here: past) the threshold
    assert rec[0].filename == __file__  # the warning points at the caller's line


class FakeBar:
    """Records what AreaProgress does to a tqdm-like bar."""

    def __init__(self) -> None:
        self.total = None
        self.n = 0.0
        self.steps: list[float] = []
        self.postfix = ""
        self.resets = 0
        self.refreshed = 0

    def update(self, n=1):
        self.steps.append(n)
        self.n += n

    def reset(self, total=None):
        self.resets += 1
        self.total = total
        self.n = 0.0

    def refresh(self):
        self.refreshed += 1

    def set_postfix_str(self, s="", refresh=True):
        self.postfix = s

    def set_description_str(self, s="", refresh=True):
        self.desc = s


def test_progress_is_the_fraction_of_the_domain_done():
    model, sl = CASES["relu 24x3"]()
    bar = FakeBar()
    part = sc.partition(model, sl, progress=bar, chunk_size=64)
    assert bar.resets == 1 and bar.total == 1.0 and bar.n == 1.0
    assert len(bar.steps) > 3 and all(s >= 0 for s in bar.steps)
    assert sum(bar.steps) == pytest.approx(1.0, rel=1e-9)  # finished regions cover the domain
    assert bar.postfix == f"{part.num_regions:,} regions"
    # the steps are the areas of the finished chunks: their sizes match the partition's areas
    dom_area = float(part.areas().sum())
    assert min(bar.steps) * dom_area >= part.areas().min() * 0.999


def test_progress_true_shows_percent_and_eta(capsys):
    model, sl = CASES["relu 16x1"]()
    sc.partition(model, sl, progress=True)
    err = capsys.readouterr().err
    assert "100.0%" in err and "regions" in err and "<" in err  # percent, elapsed<remaining
    with pytest.raises(TypeError, match="tqdm progress bar"):
        sc.partition(model, sl, progress="yes")


def test_polygon_areas_match_the_shoelace_of_the_partition():
    model, sl = CASES["leaky 20x4"]()
    part = sc.partition(model, sl)
    poly, nv = part.padded_polygons()
    from splinecam.engine.geometry import Polygons

    p = Polygons(torch.as_tensor(poly), torch.zeros(poly.shape[:2], dtype=torch.int64),
                 torch.zeros(poly.shape[:2], dtype=torch.int64), torch.as_tensor(nv))
    np.testing.assert_allclose(progress_mod.polygon_areas(p).numpy(), part.areas(), rtol=1e-9, atol=1e-15)


def test_one_bar_over_a_recorders_snapshots(monkeypatch):
    made: list[FakeBar] = []

    def new_bar(desc="splinecam", **kw):
        made.append(FakeBar())
        return made[-1]

    monkeypatch.setattr(progress_mod, "new_bar", new_bar)
    rec = sc.Recorder(sc.Slice.box((-2, 2), (-2, 2)), every=5, progress=True, statistics=False)
    for step in range(11):
        rec(_mlp(8, 2, step), step)
    assert len(rec) == 3 and len(made) == 1  # one bar for all snapshots
    bar = made[0]
    assert bar.resets == 3 and bar.n == 1.0
    assert bar.desc == "splinecam snapshot 3 (step 10)"
    assert bar.postfix == f"{rec[-1].num_regions:,} regions"


def test_verify_quick_has_a_fixed_cost_and_still_checks(monkeypatch):
    import splinecam.verify as v

    model, sl = _mlp(32, 3, 0), sc.Slice.box((-3, 3), (-3, 3))
    part = sc.partition(model, sl)
    assert part.num_regions > v.QUICK_REGIONS

    seen: list[int] = []
    real = v.evaluate_program

    def counting(program, model, x, **kw):
        seen.append(len(x))
        return real(program, model, x, **kw)

    monkeypatch.setattr(v, "evaluate_program", counting)
    full = part.verify(model)
    n_full = sum(seen)
    seen.clear()
    quick = part.verify(model, quick=True)
    n_quick = sum(seen)
    assert full and quick
    # (+ 1: one point first measures what a point records, to size the batches)
    assert n_full == 2 * part.num_regions + 1
    assert n_quick == min(part.num_regions, v.QUICK_REGIONS) + 1
    # quick still catches a wrong partition: corrupt one region's affine map
    a, b = part.output_affine
    b[:] += 1.0
    assert not part.verify(model, quick=True)["affine"].passed
