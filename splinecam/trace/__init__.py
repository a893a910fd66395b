"""Trace: turn a PyTorch model into an ordered program of affine and piecewise-linear steps.

``nn.Sequential`` models are walked directly (nested ones are flattened); any other module is
captured with :mod:`torch.fx`, which is what makes residual additions, concatenation and reshapes
possible. Each step of the resulting :class:`Program` is one of

* ``input``: the model's input,
* ``const``: a tensor that does not depend on the input (a parameter, a buffer, a literal),
* ``affine``: an affine function of its input-dependent arguments, applied to *affine stacks* (see
  :mod:`splinecam.engine`) by running the real torch module or function,
* ``pwl``: an elementwise piecewise-linear function (ReLU, LeakyReLU, ...) described by its
  breakpoints and slopes; these are the steps that cut regions,
* ``meta``: a shape query (``x.size(0)``, ``x.shape[0]``, ``x.dim()``), or a value computed from
  one, that feeds a reshape. Its value may depend on the number of regions in a batch, so the
  engine computes it again whenever it regroups regions; the values it reads stay alive as long
  as it does.

Anything else raises :class:`~splinecam.errors.NotPiecewiseLinearError` naming the module path and
type, before any work is done.

Modules: :mod:`.specs` (what a piecewise-linear step is), :mod:`.tables` (classification of torch
modules and functions), :mod:`.capture` (Sequential walk and fx capture), :mod:`.program` (steps and
running them), :mod:`.in_place`, :mod:`.batch_axis`, :mod:`.prepare`. The trace imports only
:mod:`splinecam.errors` and :mod:`splinecam.layers`; nothing of the engine or later stages.
"""

from __future__ import annotations

from .capture import trace_model
from .prepare import autograd_attributes, prepare_model
from .program import Program, Step, _map_args, _Ref, _refs, call_step, evaluate_program
from .specs import PWLSpec

__all__ = [
    "PWLSpec", "Step", "Program", "trace_model", "prepare_model", "evaluate_program", "call_step",
    "autograd_attributes", "_map_args", "_Ref", "_refs",
]
