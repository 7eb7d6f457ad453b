"""Build the control-step model (Pyomo, the readable source of truth) and update it in place.

``build_model`` reads top to bottom as the list of families; optional families are switched by
configuration (urgency needs slack tracking), never by ``if``s inside other families.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pyomo.environ as pyo

from cedar_opt.control.data import Static, StepData
from cedar_opt.control.families import ADDERS
from cedar_opt.control.objective import add_objective


def active_families(st: Static) -> list[str]:
    """The families this configuration builds, in build order."""
    fams = ["eligibility", "demand", "deferral"]
    if st.switches.slack_tracking:
        fams.append("urgency")
    fams += ["capacity", "readiness", "spot", "quota", "scaling", "stability"]
    return fams


def _param_init(arr) -> dict:
    a = np.asarray(arr, dtype=float)
    return {idx: float(v) for idx, v in np.ndenumerate(a)}


def add_sets(m, st: Static) -> None:
    m.K = pyo.RangeSet(0, st.K - 1)
    m.O = pyo.RangeSet(0, st.O - 1)
    m.J = pyo.RangeSet(0, st.J - 1)
    m.B = pyo.RangeSet(0, st.B - 1)
    m.R = pyo.RangeSet(0, max(st.O, int(st.region_of.max()) + 1 if st.J else 0) - 1)


def add_params(m, st: Static, data: StepData) -> None:
    """One mutable Param per :class:`StepData` field, same name and index order."""
    idx = {
        "lam": (m.K, m.O, m.B), "backlog0": (m.K, m.O), "urgent0": (m.K, m.O), "n_now": (m.J,),
        "ready_cap": (m.J, m.B), "nmax": (m.J, m.B), "price": (m.J,), "mci": (m.R, m.B),
        "prev_rate": (m.K, m.O, m.J),
    }
    for f in fields(StepData):
        val = getattr(data, f.name)
        if f.name in idx:
            init = _param_init(val)
            if len(idx[f.name]) == 1:
                init = {k[0]: v for k, v in init.items()}
            setattr(m, f.name, pyo.Param(*idx[f.name], initialize=init, mutable=True, within=pyo.Reals))
        else:
            setattr(m, f.name, pyo.Param(initialize=float(val), mutable=True, within=pyo.Reals))


def add_variables(m, st: Static) -> None:
    def domain(m, j, b):
        return pyo.NonNegativeIntegers if b < st.integer_blocks else pyo.NonNegativeReals

    m.n = pyo.Var(m.J, m.B, domain=domain, bounds=lambda m, j, b: (0, float(st.max_rep[j])))
    m.x = pyo.Var(m.X_INDEX, domain=pyo.NonNegativeReals)
    m.q = pyo.Var(m.K, m.O, m.B, domain=pyo.NonNegativeReals)
    m.s = pyo.Var(m.K, m.O, m.B, domain=pyo.NonNegativeReals)
    m.up = pyo.Var(m.J, m.B, domain=pyo.NonNegativeReals)
    m.down = pyo.Var(m.J, m.B, domain=pyo.NonNegativeReals)
    m.ROUTES = pyo.Set(initialize=[(k, o, j) for (k, j) in m.ELIGIBLE for o in range(st.O)], dimen=3, ordered=True)
    m.dr = pyo.Var(m.ROUTES, domain=pyo.NonNegativeReals)


def build_model(st: Static, data: StepData) -> pyo.ConcreteModel:
    """The whole control-step model for ``st`` with parameters set from ``data``."""
    m = pyo.ConcreteModel(name="cedar_control_step")
    add_sets(m, st)
    add_params(m, st, data)
    fams = active_families(st)
    ADDERS["eligibility"](m, st)  # defines the route index sets the variables need
    add_variables(m, st)
    for fam in fams[1:]:
        ADDERS[fam](m, st)
    add_objective(m, st)
    m.families = tuple(fams)
    return m


def update_model(m, data: StepData) -> None:
    """Set every mutable parameter of ``m`` from ``data`` in place (no rebuild)."""
    for f in fields(StepData):
        p = getattr(m, f.name)
        val = getattr(data, f.name)
        if p.is_indexed():
            a = np.asarray(val, dtype=float)
            if a.ndim == 1:
                p.store_values({i: float(v) for i, v in enumerate(a)})
            else:
                p.store_values({idx: float(v) for idx, v in np.ndenumerate(a)})
        else:
            p.set_value(float(val))
