"""The CEDAR controller: receding-horizon model in Pyomo, compiled once to HiGHS arrays.

The only package that imports ``pyomo`` or ``highspy``. Layout (top to bottom of a step):

* :mod:`.data` — run-constant :class:`~.data.Static` and per-step :class:`~.data.StepData`;
* :mod:`.families` — one function per constraint family (math in each docstring);
* :mod:`.objective` — the five normalised objective terms;
* :mod:`.model` — ``build_model`` (the readable source of truth) and ``update_model``;
* :mod:`.compile` — the model walked once into arrays with θ-parametric bounds and costs;
* :mod:`.solve` — HiGHS: ``lp_round`` and ``mip``;
* :mod:`.actions` — solution → Action, shifted previous plan, safe heuristic;
* :mod:`.policy` — :class:`CedarPolicy`, the fallback chain.

``models/mip.md`` maps the LaTeX of every family to its constraint names.
"""

from cedar_opt.control.families import FAMILIES
from cedar_opt.control.policy import CedarPolicy

__all__ = ["CedarPolicy", "FAMILIES"]
