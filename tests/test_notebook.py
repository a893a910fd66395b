"""Notebooks: the rich displays of Partition and DecisionBoundary, and the example notebook runs.

The displays are checked directly (PNG bytes that Pillow decodes, HTML with the sizes); the example
notebook ``examples/inr_2d.ipynb`` is executed with nbclient on a ``python3`` kernel of this
interpreter (skipped, with the reason, when nbclient, nbformat or ipykernel is missing).
"""

from __future__ import annotations

import base64
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import splinecam as sc

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "inr_2d.ipynb"


def _net(out: int, seed: int = 0) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(2, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, out)).eval()


@pytest.fixture(scope="module")
def part() -> sc.Partition:
    return sc.partition(_net(3), sc.Slice.box((-2, 2), (-2, 2)))


def _decode(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(png)) as im:
        im.verify()
    with Image.open(io.BytesIO(png)) as im:
        w, h = im.size
        assert 200 <= w <= 800 and 150 <= h <= 800, im.size  # a small picture, not a poster
        return np.asarray(im.convert("RGB"), dtype=np.float64)


def _no_pyplot_figures() -> list[int]:
    import matplotlib.pyplot as plt

    return plt.get_fignums()


def test_partition_png_and_html(part):
    import matplotlib

    backend = matplotlib.get_backend()
    before = _no_pyplot_figures()
    pix = _decode(part._repr_png_())
    assert pix.std() > 10 and len(np.unique(pix.reshape(-1, 3), axis=0)) > 50  # a real picture
    html = part._repr_html_()
    assert f"<td>{part.num_regions:,}</td>" in html and f"<td>{part.num_vertices:,}</td>" in html
    m = re.search(r'src="data:image/png;base64,([^"]+)"', html)
    assert m, "the HTML embeds the picture"
    _decode(base64.b64decode(m.group(1)))
    # no global pyplot state: no figure left open or made current, the backend is untouched
    assert _no_pyplot_figures() == before and matplotlib.get_backend() == backend


def test_mimebundle_draws_once(part, monkeypatch):
    import splinecam.viz.notebook as nbv

    calls = []
    real = nbv.partition_png
    monkeypatch.setattr(nbv, "partition_png", lambda p, *a, **k: calls.append(1) or real(p, *a, **k))
    bundle = part._repr_mimebundle_()
    assert sorted(bundle) == ["image/png", "text/html", "text/plain"] and len(calls) == 1
    assert bundle["text/plain"] == repr(part)
    assert base64.b64encode(bundle["image/png"]).decode() in bundle["text/html"]
    only_text = part._repr_mimebundle_(exclude=["image/png", "text/html"])
    assert sorted(only_text) == ["text/plain"] and len(calls) == 1
    assert sorted(part._repr_mimebundle_(include=["image/png"])) == ["image/png", "text/plain"]


def test_decision_boundary_display(part):
    db = part.decision_boundary()
    assert db.num_segments > 0
    pix = _decode(db._repr_png_())
    assert pix.std() > 10
    html = db._repr_html_()
    assert f"<td>{db.num_segments:,}</td>" in html and f"{db.length:.6g}" in html
    assert "data:image/png;base64," in html
    # a level set, and an empty boundary (no segments) display too
    ls = part.level_set(output=0, value=0.0)
    assert "level_set" in ls._repr_html_()
    const = nn.Sequential(nn.Linear(2, 1)).eval()
    with torch.no_grad():
        const[0].weight.zero_()
        const[0].bias.fill_(1.0)
    empty = sc.partition(const, sc.Slice.box()).decision_boundary()
    assert empty.num_segments == 0
    _decode(empty._repr_png_())
    assert "<td>0</td>" in empty._repr_html_()


def test_partition_display_huge_partition_skips_boundary(monkeypatch):
    import splinecam.viz.notebook as nbv

    p = sc.partition(_net(2), sc.Slice.box())
    monkeypatch.setattr(nbv, "MAX_BOUNDARY_REGIONS", p.num_regions - 1)
    monkeypatch.setattr(type(p), "decision_boundary", lambda *a, **k: pytest.fail("boundary computed"))
    _decode(p._repr_png_())


# ----------------------------------------------------------------------------- the example notebook
def _notebook_tools():
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install -e '.[test]')")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install -e '.[test]')")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install -e '.[test]')")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:  # pragma: no cover - ipykernel installs it
        pytest.skip("no Jupyter kernel named python3 (python -m ipykernel install --sys-prefix)")
    return nbformat, nbclient


def test_example_notebook_is_stored_executed():
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install -e '.[test]')")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code), "store the notebook executed, in order"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    shown = [o.data for c in code for o in c.outputs if o.output_type == "execute_result"]
    parts = [d for d in shown if d["text/plain"].startswith("Partition(")]
    assert parts and {"image/png", "text/html"} <= set(parts[0]), "the Partition cell shows its picture"


def test_example_notebook_runs(monkeypatch):
    """Execute the notebook from scratch (about 10 s on an idle machine) and check what it shows."""
    nbformat, nbclient = _notebook_tools()
    # the kernel (a child process of this interpreter) imports the splinecam under test
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs = []
            c.execution_count = None
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError on any failing cell
    code = [c for c in nb.cells if c.cell_type == "code"]
    results = [o for c in code for o in c.outputs if o.output_type == "execute_result"]
    parts = [o for o in results if o.data["text/plain"].startswith("Partition(")]
    assert len(parts) == 1, [o.data["text/plain"] for o in results]
    data = parts[0].data
    regions = int(re.match(r"Partition\((\d+) regions", data["text/plain"]).group(1))
    assert regions > 100
    assert f"<td>{regions:,}</td>" in data["text/html"]
    _decode(base64.b64decode(data["image/png"]))
    boundaries = [o for o in results if o.data["text/plain"].startswith("DecisionBoundary(level_set")]
    assert len(boundaries) == 1 and "image/png" in boundaries[0].data
    text = "".join(o.get("text", "") for c in code for o in c.outputs if o.output_type == "stream")
    assert "VerifyReport(ok)" in text
    figures = [o for c in code for o in c.outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(figures) >= 2  # the image, and the image next to its partition
