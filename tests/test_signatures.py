"""Public names show real signatures, return types and numpydoc (issue 18)."""

from __future__ import annotations

import inspect

import pytest

import splinecam as sc

METHODS = [
    "verify", "decision_boundary", "level_set", "decision_regions", "to_networkx", "to_igraph",
    "to_graph_tool", "statistics", "density", "plot", "locate", "evaluate", "interior_points", "save",
]


@pytest.mark.parametrize("name", ["partition", "estimate_regions"] + [f"Partition.{m}" for m in METHODS])
def test_real_return_types_and_numpydoc(name):
    obj = sc
    for part in name.split("."):
        obj = getattr(obj, part)
    sig = inspect.signature(obj)
    ret = sig.return_annotation
    assert ret is not inspect.Signature.empty and ret not in ("Any", "Any | None"), (name, ret)
    doc = inspect.getdoc(obj) or ""
    assert "Examples\n--------" in doc, name
    if ret not in (None, "None"):
        assert "Returns\n-------" in doc, name
    if len([p for p in sig.parameters if p != "self"]) > 0:
        assert "Parameters\n----------" in doc, name
    assert not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()), (name, "hides options in **kw")


def test_partition_plot_lists_plot_partitions_options():
    params = inspect.signature(sc.Partition.plot).parameters
    for opt in ("legend", "edges_by_layer", "max_layer", "linewidth", "cmap", "vmin", "vmax", "colorbar",
                "data", "anchors", "xlim", "ylim", "boundary_color", "axis_labels", "legend_kw", "class_names"):
        assert opt in params, opt
    assert params["legend"].default is False


def test_splinecam_callback_shows_its_parameters():
    from splinecam.integrations.lightning import SplineCamCallback

    params = inspect.signature(SplineCamCallback).parameters
    assert list(params)[:4] == ["slice", "every_n_steps", "recorder", "log_figure"]
    assert {"log_statistics", "module", "on_train_start", "tag", "plot_kw"} <= set(params)
    assert "Parameters\n----------" in inspect.getdoc(SplineCamCallback)


def test_splinecam_callback_passes_its_parameters_through(monkeypatch):
    import types

    import splinecam.integrations.lightning as L

    fake = types.ModuleType("fake_lightning_for_signature_test")

    class Callback:
        def __init__(self) -> None:
            pass

    fake.Callback = Callback
    monkeypatch.setattr(L, "_import_lightning", lambda: fake)
    monkeypatch.setattr(L, "_CLASSES", {})
    cb = L.SplineCamCallback(sc.Slice.box(), 7, None, False, tag="run/geometry", on_train_start=False)
    assert isinstance(cb, L.SplineCamCallback) and isinstance(cb, Callback)
    assert (cb.every_n_steps, cb.log_figure, cb.tag, cb.record_on_train_start) == (7, False, "run/geometry", False)
    rec = sc.Recorder(sc.Slice.box(), every=3)
    assert L.SplineCamCallback(recorder=rec).every_n_steps == 3


def test_partition_plot_passes_every_option_of_plot_partition():
    """The facade lists plot_partition's options: none is missing from its signature."""
    from splinecam.viz import plot as plot_mod

    facade = set(inspect.signature(sc.Partition.plot).parameters) - {"self"}
    full = set(inspect.signature(plot_mod._plot_partition).parameters) - {"part"}
    assert full <= facade, sorted(full - facade)
