"""``python -m splinecam plot``: a model from a factory, weights from a state_dict, never a pickle."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid

import numpy as np
import pytest
import torch

import splinecam as sc
from splinecam.__main__ import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FACTORY = """
import torch

def make_mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(2, 12), torch.nn.ReLU(), torch.nn.Linear(12, 12),
                               torch.nn.ReLU(), torch.nn.Linear(12, 3))

def make_cnn():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(3 * 4 * 4, 2))

def needs_width(width):
    return make_mlp()

not_a_module = 3
"""


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A directory with a uniquely named factory module, as the current directory."""
    name = f"nets_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(FACTORY))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path, name
    sys.modules.pop(name, None)


def _trained_mlp() -> torch.nn.Module:
    torch.manual_seed(5)  # other weights than the factory's
    return torch.nn.Sequential(torch.nn.Linear(2, 12), torch.nn.ReLU(), torch.nn.Linear(12, 12),
                               torch.nn.ReLU(), torch.nn.Linear(12, 3)).eval()


def test_plot_box_with_weights_draws_the_partition_of_the_loaded_weights(project, capsys):
    tmp, name = project
    net = _trained_mlp()
    torch.save(net.state_dict(), tmp / "state.pt")
    rc = main(["plot", "--model", f"{name}:make_mlp", "--weights", "state.pt", "--box", "-2", "2", "-1", "1.5",
               "-o", "out/regions.png", "--dpi", "60", "--color-by", "class"])
    assert rc == 0
    png = tmp / "out" / "regions.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the region count printed is the exact partition of the saved weights, checked against the model
    part = sc.partition(net, sc.Slice.box((-2, 2), (-1, 1.5)))
    assert part.verify(net)
    out = capsys.readouterr().out
    assert f"plot: {part.num_regions} regions" in out
    # and differs from the factory's own initialisation (the weights were loaded)
    import importlib

    fresh = importlib.import_module(name).make_mlp().eval()
    assert sc.partition(fresh, sc.Slice.box((-2, 2), (-1, 1.5))).num_regions != part.num_regions


def test_plot_anchors_for_image_inputs(project, capsys):
    tmp, name = project
    anchors = torch.randn(2, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    torch.save(anchors, tmp / "a.pt")
    rc = main(["plot", "--model", f"{name}:make_cnn", "--anchors", "a.pt", "--pad", "1.0",
               "--no-boundary", "-o", "cnn.png", "--dpi", "50"])
    assert rc == 0 and (tmp / "cnn.png").exists()
    import importlib

    net = importlib.import_module(name).make_cnn().eval()
    part = sc.partition(net, sc.Slice.from_anchors(list(anchors), pad=1.0, seed=0))
    assert part.verify(net)
    assert f"plot: {part.num_regions} regions" in capsys.readouterr().out


def test_a_pickled_whole_model_is_refused_with_the_reason(project, capsys):
    tmp, name = project
    torch.save(_trained_mlp(), tmp / "model.pt")  # a whole module: needs unpickling
    rc = main(["plot", "--model", f"{name}:make_mlp", "--weights", "model.pt", "--box", "-1", "1", "-1", "1"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "weights_only=True" in err and "never unpickles arbitrary objects" in err
    assert "torch.save(model.state_dict()" in err
    assert not (tmp / "splinecam_plot.png").exists()


class _Evil:
    def __reduce__(self):
        return (open, ("PWNED", "w"))


def test_a_malicious_pickle_runs_no_code(project, capsys):
    tmp, name = project
    torch.save({"0.weight": _Evil()}, tmp / "evil.pt")
    rc = main(["plot", "--model", f"{name}:make_mlp", "--weights", "evil.pt", "--box", "-1", "1", "-1", "1"])
    assert rc == 1
    assert not (tmp / "PWNED").exists()
    assert "weights_only" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "no_such_module_xyz:f"], "cannot import module 'no_such_module_xyz'"),
        (["--model", "{name}:missing"], "has no attribute 'missing'"),
        (["--model", "{name}:not_a_module"], "not a function returning a module"),
        (["--model", "{name}:needs_width"], "must work with no arguments"),
        (["--model", "{name}"], "must be 'module:factory'"),
        (["--model", "{name}:make_mlp", "--weights", "nope.pt"], "does not exist"),
    ],
)
def test_bad_factories_and_files_get_clear_errors(project, capsys, argv, message):
    tmp, name = project
    argv = [a.format(name=name) for a in argv]
    rc = main(["plot", *argv, "--box", "-1", "1", "-1", "1"])
    assert rc == 1
    assert message in capsys.readouterr().err


def test_weights_that_do_not_fit_and_wrong_anchor_shapes(project, capsys):
    tmp, name = project
    torch.save({"0.weight": torch.zeros(3, 3)}, tmp / "bad.pt")
    assert main(["plot", "--model", f"{name}:make_mlp", "--weights", "bad.pt", "--box", "-1", "1", "-1", "1"]) == 1
    assert "does not fit the model" in capsys.readouterr().err
    torch.save(torch.zeros(5), tmp / "flat.pt")
    assert main(["plot", "--model", f"{name}:make_cnn", "--anchors", "flat.pt"]) == 1
    assert "(m, *input_shape)" in capsys.readouterr().err
    # a slice whose shape does not fit the model: the library's own SliceError
    torch.save(torch.zeros(1, 7), tmp / "seven.pt")
    assert main(["plot", "--model", f"{name}:make_cnn", "--anchors", "seven.pt"]) == 1
    assert "does not fit the model" in capsys.readouterr().err


def test_a_checkpoint_dict_with_a_state_dict_is_accepted(project, capsys):
    tmp, name = project
    net = _trained_mlp()
    torch.save({"epoch": 3, "state_dict": net.state_dict()}, tmp / "ckpt.pt")
    assert main(["plot", "--model", f"{name}:make_mlp", "--weights", "ckpt.pt", "--box", "-1", "1", "-1", "1",
                 "--dpi", "40"]) == 0
    n = sc.partition(net, sc.Slice.box((-1, 1), (-1, 1))).num_regions
    assert f"plot: {n} regions" in capsys.readouterr().out


def test_usage_errors_exit_2(project):
    tmp, name = project
    with pytest.raises(SystemExit) as info:
        main(["plot", "--model", f"{name}:make_mlp"])  # neither --box nor --anchors
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["plot", "--model", f"{name}:make_mlp", "--box", "-1", "1", "-1", "1", "--color-by", "rainbow"])


def test_python_m_splinecam_plot_in_a_subprocess(tmp_path):
    (tmp_path / "subnets.py").write_text(textwrap.dedent(FACTORY))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), MPLBACKEND="Agg")
    res = subprocess.run(
        [sys.executable, "-m", "splinecam", "plot", "--model", "subnets:make_mlp", "--box", "-2", "2", "-2", "2",
         "-o", "p.png", "--dpi", "40"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "p.png").exists()
    n = int(res.stdout.split("plot: ")[1].split(" regions")[0])
    sys.path.insert(0, str(tmp_path))
    try:
        import subnets

        net = subnets.make_mlp().eval()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("subnets", None)
    part = sc.partition(net, sc.Slice.box((-2, 2), (-2, 2)))
    assert part.num_regions == n and part.verify(net)
    assert np.isclose(part.areas().sum(), 16.0)
