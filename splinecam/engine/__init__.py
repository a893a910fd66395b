"""Engine: the exact partition of a traced program on a slice, as batches of convex polygons.

Modules: :mod:`.run` (the run: prepare, cut one step, stream chunks, collect), :mod:`.stacks`
(affine stacks: running affine steps on them), :mod:`.geometry` (batched convex polygons, the
tolerance policy), :mod:`.cutting` (cutting polygons by a layer's lines), :mod:`.codes` (bit-packed
codes), :mod:`.mlp_paths` (faster exact paths through nonlinearity -> Linear), :mod:`.repair`
(mending the planar graph where snapping decided differently on two sides), :mod:`.kinds` (one module
per nonlinearity kind: the plug-in point). The engine imports :mod:`splinecam.trace`,
:mod:`splinecam.slice` and :mod:`splinecam.errors` only; never the result, analysis or viz.
"""

from __future__ import annotations

from .run import EngineResult, run_program

__all__ = ["EngineResult", "run_program"]
