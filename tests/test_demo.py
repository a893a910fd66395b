"""Tests of the training helpers and of the ``python -m splinecam demo`` command."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from splinecam.__main__ import main
from splinecam.datasets import two_blobs, two_moons
from splinecam.training import mlp, train_classifier

LINE = re.compile(
    r"demo: (\d+) regions, boundary length ([0-9.]+), exact partition in ([0-9.]+) s; wrote (.+splinecam_demo\.png)"
)


# ---------------------------------------------------------------------------- training helpers
def test_mlp_structure_and_seed():
    net = mlp(in_dim=3, width=5, depth=2, out_dim=4, activation="leaky_relu", seed=1)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "LeakyReLU", "Linear", "LeakyReLU", "Linear"]
    assert net[0].in_features == 3 and net[-1].out_features == 4 and not net.training
    same = mlp(in_dim=3, width=5, depth=2, out_dim=4, activation="leaky_relu", seed=1)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), same.parameters()))


def test_mlp_matches_manual_seed_init():
    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Linear(2, 7), torch.nn.ReLU(), torch.nn.Linear(7, 1))
    net = mlp(width=7, depth=1, out_dim=1, seed=0)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), ref.parameters()))


def test_mlp_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        mlp(activation="gelu")
    with pytest.raises(ValueError, match="width"):
        mlp(width=0)


@pytest.mark.parametrize("out_dim", [1, 2])
def test_train_classifier_learns_and_keeps_global_rng(out_dim):
    X, y = two_blobs(n=200, std=0.3, seed=0)
    state = torch.get_rng_state()
    model, acc = train_classifier(mlp(width=8, depth=2, out_dim=out_dim, seed=0), X, y, steps=150, seed=3)
    assert torch.equal(state, torch.get_rng_state())
    assert acc == 1.0 and not model.training


def test_train_classifier_restores_thread_count():
    X, y = two_blobs(n=20, seed=0)
    before = torch.get_num_threads()
    train_classifier(mlp(width=4, depth=1, seed=0), X, y, steps=2, num_threads=1)
    assert torch.get_num_threads() == before


def test_train_classifier_deterministic_with_dropout():
    X, y = two_moons(n=128, seed=0)

    def run():
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(16, 2))
        torch.rand(int(torch.randint(1, 5, ())))  # a different global state at each call
        state = torch.get_rng_state()
        train_classifier(net, X, y, steps=30, seed=1)
        assert torch.equal(state, torch.get_rng_state())
        return [p.detach().clone() for p in net.parameters()]

    a, b = run(), run()
    assert all(torch.equal(p, q) for p, q in zip(a, b))


def test_train_classifier_label_checks():
    X = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match="0 and 1"):
        train_classifier(mlp(out_dim=1), X, np.array([0, 1, 2, 1]), steps=1)
    with pytest.raises(ValueError, match="labels"):
        train_classifier(mlp(out_dim=2), X, np.array([0, 1, 2, 1]), steps=1)


# ---------------------------------------------------------------------------- the demo command
def test_demo_writes_png_and_prints_summary(tmp_path, capsys):
    state = torch.get_rng_state()
    rc = main(["demo", "--out", str(tmp_path / "out"), "--steps", "200", "--width", "16", "--depth", "2"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "verify: passed" in out
    m = LINE.search(out)
    assert m is not None, out
    regions, length = int(m.group(1)), float(m.group(2))
    assert regions > 1 and length > 0
    png = tmp_path / "out" / "splinecam_demo.png"
    assert m.group(4) == str(png)
    data = png.read_bytes()
    assert len(data) > 10_000 and data[:8] == b"\x89PNG\r\n\x1a\n"
    assert torch.equal(state, torch.get_rng_state())


def test_demo_default_out_is_current_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--steps", "20", "--width", "6", "--depth", "1", "--seed", "1"]) == 0
    assert LINE.search(capsys.readouterr().out)
    assert (tmp_path / "splinecam_demo.png").stat().st_size > 0


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_module_help_runs():
    res = subprocess.run(
        [sys.executable, "-m", "splinecam", "--help"], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert "demo" in res.stdout and "usage: splinecam" in res.stdout
