"""docs/layers.md is generated from the trace tables and must match them (it cannot drift).

``scripts/layers_doc.py`` writes the page; here it is regenerated in memory and compared with the
committed file. After changing a table in ``splinecam/trace/nonlinear.py`` or
``splinecam/trace/tables.py``, run ``python scripts/layers_doc.py``.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import torch.nn as nn

from splinecam.trace import nonlinear, tables

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "layers.md"


@pytest.fixture(scope="module")
def layers_doc():
    spec = importlib.util.spec_from_file_location("layers_doc", ROOT / "scripts" / "layers_doc.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_page_is_up_to_date(layers_doc):
    text = layers_doc.render()
    assert PAGE.read_text(encoding="utf-8") == text, (
        "docs/layers.md is out of date with the trace tables: run python scripts/layers_doc.py"
    )


def test_page_lists_every_table_entry(layers_doc):
    text = layers_doc.render()
    for cls in list(nonlinear.PWL_MODULES) + list(tables._AFFINE_MODULES) + list(tables._LINEAR_MODULES):
        assert f"`{layers_doc._class_name(cls)}`" in text, cls
    for cls in tables._NOT_PWL_MODULES:
        refused = text.split("## Refused")[1]
        assert f"`{layers_doc._class_name(cls)}`" in refused, cls
    for key in nonlinear.PWL_FUNCTIONS:
        assert f"`{layers_doc._public_name(key)}`" in text, key
    for entry in set(nonlinear.PWL_MODULES.values()) | set(nonlinear.PWL_FUNCTIONS.values()):
        assert entry.doc.replace("|", "\\|") in text, entry.doc


def test_names_are_public_and_rows_are_tables(layers_doc):
    """Every function name on the page is a real public attribute (not a C alias like torch.softshrink
    for F.softshrink), and every table row has three cells."""
    import operator

    import torch

    text = layers_doc.render()
    for name in re.findall(r"`((?:torch|operator)\.[\w.]+)`", text):
        if name.startswith("torch.nn.") and name[len("torch.nn."):len("torch.nn.") + 1].isupper():
            obj = getattr(nn, name.split(".")[-1])
        else:
            ns, attr = name.rsplit(".", 1)
            obj = getattr({"torch": torch, "torch.nn.functional": torch.nn.functional, "operator": operator}[ns], attr)
        assert obj is not None
    assert layers_doc._public_name(torch.nn.functional.softshrink) == "torch.nn.functional.softshrink"
    assert layers_doc._public_name(torch.nn.functional.threshold) == "torch.nn.functional.threshold"
    assert layers_doc._public_name("abs_") == "Tensor.abs_"
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = re.split(r"(?<!\\)\|", line)[1:-1]
            assert len(cells) == 3, line


def test_page_is_linked(layers_doc):
    assert "(layers.md)" in (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    assert "(docs/layers.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_check_mode(layers_doc, capsys):
    assert layers_doc.main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out
