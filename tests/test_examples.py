"""Every example in ``examples/`` runs in its fast mode and writes sane pictures.

Each example is imported from its file and its ``main(["--fast", "--out", tmp_path])`` is called in
this process; the test checks the files it wrote (real images, not blank) and the summary it returns.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

#: example -> the files its fast mode must write
OUTPUTS = {
    "toy2d": ["toy2d.png"],
    "visualize_mlp_random": ["visualize_mlp_random.png"],
    "visualize_cnn_random": ["visualize_cnn_random.png"],
    "inr_2d": ["inr_2d.png"],
    "neural_sdf": ["neural_sdf.png"],
    "training_dynamics": ["training_dynamics.gif"],
    "local_complexity": ["local_complexity.png"],
    "lenet_maxpool": ["lenet_maxpool.png"],
    "vgg11": ["vgg11.png"],
}


def load_example(name: str) -> Any:
    """Import ``examples/<name>.py`` as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"splinecam_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _restore_global_state():
    """Examples may set torch's thread count (one restores it, one does not) and leave figures open."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
    import matplotlib.pyplot as plt

    plt.close("all")


def check_image(path: Path, min_size: int = 150) -> None:
    """A real, non-blank picture: readable by Pillow, big enough, with more than one colour."""
    assert path.is_file(), f"{path} was not written"
    assert path.stat().st_size > 2000, f"{path} is suspiciously small ({path.stat().st_size} bytes)"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        w, h = im.size
        assert w >= min_size and h >= min_size, f"{path} is only {w} x {h} pixels"
        frames = getattr(im, "n_frames", 1)
        if path.suffix == ".gif":
            assert frames > 1, f"{path} has a single frame"
        pixels = np.asarray(im.convert("RGB"), dtype=np.float64)
    assert pixels.std() > 10, f"{path} looks blank (pixel std {pixels.std():.2g})"
    # a figure, not a flat background with a few specks: many distinct colours
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50, f"{path} has too few colours"


def test_every_example_is_tested():
    found = sorted(p.stem for p in EXAMPLES.glob("*.py"))
    assert found == sorted(OUTPUTS), "add new examples to OUTPUTS in tests/test_examples.py"


def test_readme_and_gallery_list_every_example():
    """README lists every example and shows a picture; the gallery shows each example's picture."""
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    gallery = (ROOT / "docs" / "gallery.md").read_text(encoding="utf-8")
    shown = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", readme)
    assert shown and all((ROOT / s).is_file() for s in shown), shown
    images = set(re.findall(r"!\[[^\]]*\]\(images/([^)\s]+)\)", gallery))
    for name, files in OUTPUTS.items():
        assert f"examples/{name}.py" in readme, f"README does not list examples/{name}.py"
        assert f"examples/{name}.py" in gallery, f"docs/gallery.md does not describe examples/{name}.py"
        for f in files:
            assert f in images, f"docs/gallery.md does not show {f}"
            with Image.open(ROOT / "docs" / "images" / f) as im:
                assert min(im.size) >= 150, f"docs/images/{f} is only {im.size}"


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_example_conventions(name):
    """A module docstring that says how to run it, --fast and --out, and a main(argv=None)."""
    src = (EXAMPLES / f"{name}.py").read_text()
    tree = ast.parse(src)
    doc = ast.get_docstring(tree)
    assert doc and f"python examples/{name}.py" in doc, "the docstring must say how to run the example"
    assert '"--fast"' in src and '"--out"' in src
    assert 'matplotlib.use("Agg")' in src
    mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
    assert mains and [a.arg for a in mains[0].args.args] == ["argv"]
    assert 'if __name__ == "__main__":' in src


@pytest.mark.parametrize(
    "name", ["toy2d", "visualize_mlp_random", "visualize_cnn_random", "inr_2d", "neural_sdf", "local_complexity",
             "lenet_maxpool", "vgg11"]
)
def test_example_fast(name, tmp_path, capsys):
    summary = load_example(name).main(["--fast", "--out", str(tmp_path)])
    for f in OUTPUTS[name]:
        check_image(tmp_path / f)
    assert sorted(Path(p).name for p in summary["files"]) == sorted(OUTPUTS[name])
    assert summary["verified"] is True
    counts = summary["num_regions"]
    counts = list(counts.values()) if isinstance(counts, dict) else [counts]
    assert all(isinstance(c, int) and c > 1 for c in counts), counts
    assert summary["seconds"] > 0
    assert "wrote" in capsys.readouterr().out


def test_toy2d_summary(tmp_path):
    summary = load_example("toy2d").main(["--fast", "--out", str(tmp_path)])
    assert list(summary["num_regions"]) == ["two moons", "two circles", "two blobs"]
    for st in summary["statistics"].values():
        assert st["boundary_length"] > 0 and st["boundary_pieces"] >= 1
        assert 0.5 <= st["accuracy"] <= 1.0


def test_local_complexity_compares_the_point_sets(tmp_path):
    summary = load_example("local_complexity").main(["--fast", "--out", str(tmp_path)])
    tables = summary["tables"]
    assert list(tables) == ["training", "test", "random"]
    assert all(len(t) == 64 for t in tables.values())
    for name, t in tables.items():
        assert summary["num_regions"][name] == int(t["num_regions"].sum())
        assert summary["medians"][name]["density"] == float(np.median(t["density"]))


def test_visualize_mlp_random_is_deterministic(tmp_path):
    mod = load_example("visualize_mlp_random")
    a = mod.main(["--fast", "--out", str(tmp_path / "a")])["partition"]
    b = mod.main(["--fast", "--out", str(tmp_path / "b")])["partition"]
    assert a.num_regions == b.num_regions
    np.testing.assert_array_equal(a.vertices, b.vertices)


def test_visualize_cnn_random_matches_the_original_network():
    mod = load_example("visualize_cnn_random")
    model, anchor = mod.random_cnn(0)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "ReLU", "Flatten", "Linear", "Linear", "Linear"]
    assert not model.training and tuple(anchor.shape) == (1, 3, 32, 32)
    bn = model[1]
    assert not torch.allclose(bn.running_var, torch.ones(6)) and not torch.allclose(bn.running_mean, torch.zeros(6))
    assert tuple(model(anchor).shape) == (1, 10)


def test_neural_sdf_level_sets_are_exact(tmp_path):
    """The zero level sets of the three slices: the real network is zero on them, they lie on the
    slices' planes in R^3, and (fitted even briefly) they follow the torus's surface."""
    mod = load_example("neural_sdf")
    summary = mod.main(["--fast", "--out", str(tmp_path)])
    model = summary["model"]
    assert not model.training
    ref = copy.deepcopy(model).double()  # the partition is exact for the float32 weights in float64
    for part, ls, (_name, origin, basis, _labels) in zip(summary["partitions"], summary["level_sets"], mod.SLICES):
        assert part.slice.input_shape == (3,) and part.slice.dim == 3
        assert ls.kind == "level_set" and ls.length > 0 and ls.closed.all()
        u, x = ls.sample(200, seed=1)
        # on the slice's plane: x = origin + basis @ u
        np.testing.assert_allclose(x, np.asarray(origin) + u @ np.asarray(basis, dtype=float).T, atol=1e-12)
        with torch.no_grad():
            f = ref(torch.as_tensor(x)).numpy()[:, 0]
        assert np.abs(f).max() < 1e-9, np.abs(f).max()
        assert np.abs(mod.torus_sdf(x)).mean() < 0.2
    assert summary["level_set_residual"] < 1e-5 and summary["level_set_distance"] < 0.2


def test_lenet_maxpool_network_and_window(tmp_path):
    """LeNet-5 with max-pooling, trained; the window shows the three classes meeting, and both
    max-pooling layers cut regions (checked against the real model by verify in the fast test)."""
    mod = load_example("lenet_maxpool")
    kinds = [type(m).__name__ for m in mod.lenet(0)]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten",
                     "Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert tuple(mod.lenet(0)(torch.zeros(2, 1, 28, 28)).shape) == (2, 10)
    summary = mod.main(["--fast", "--out", str(tmp_path)])
    part = summary["partition"]
    assert summary["accuracy"] > 0.5
    assert len(part.layer_names) == 6
    layers_cutting = set(np.unique(part.edge_layer[part.edge_layer >= 0]).tolist())
    assert {1, 3} & layers_cutting, layers_cutting  # a max-pooling layer made borders
    a, b = part.output_affine
    classes = np.unique(np.argmax(np.einsum("roi,ri->ro", a, part.centroids()) + b, axis=1))
    assert len(classes) >= 2 and part.decision_boundary().length > 0


def test_vgg11_network_and_summary(tmp_path, capsys):
    mod = load_example("vgg11")
    model = mod.vgg11(size=64, classes=200)
    convs = [m for m in model if isinstance(m, torch.nn.Conv2d)]
    pools = [m for m in model if isinstance(m, torch.nn.MaxPool2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 256, 512, 512, 512, 512] and len(pools) == 5
    assert model[-1].out_features == 200 and model[-1].in_features == 4096
    small = mod.vgg11(size=32, classes=10, width=0.125, hidden=16, bn=True).eval()
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in small) == 8
    assert tuple(small(torch.zeros(1, 3, 32, 32)).shape) == (1, 10)
    assert len(mod.layer_labels(small)) == 15
    summary = mod.main(["--fast", "--bn", "--train", "--steps", "2", "--out", str(tmp_path)])
    assert summary["verified"] is True and summary["num_regions"] > 1
    assert summary["peak_rss_gib"] > 0 and summary["forward_passes_per_region"] > 0
    assert len(summary["partition"].layer_names) == 15
    out = capsys.readouterr().out
    assert "ru_maxrss" in out and "forward passes" in out


def test_training_dynamics_fast(tmp_path, capsys):
    summary = load_example("training_dynamics").main(["--fast", "--out", str(tmp_path)])
    check_image(tmp_path / "training_dynamics.gif", min_size=100)
    assert summary["per_step"] > 0 and summary["per_snapshot"] > 0
    assert "wrote" in capsys.readouterr().out


def test_example_runs_as_a_script(tmp_path):
    """The command line of the docstrings works (one example, in a fresh interpreter)."""
    res = subprocess.run(
        [sys.executable, str(EXAMPLES / "visualize_mlp_random.py"), "--fast", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr
    check_image(tmp_path / "visualize_mlp_random.png")
