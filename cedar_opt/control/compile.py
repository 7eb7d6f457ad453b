"""Compile the Pyomo model once into HiGHS arrays whose parameter-dependent parts are maps of θ.

Why: rebuilding or re-walking the Pyomo model every step costs 10–100× the LP solve. The model is
linear in its variables; every constraint-matrix coefficient is static (a number) and every row
bound, variable cost and objective offset is a polynomial of degree ≤ 2 in the mutable
parameters θ (e.g. ``inv_cost_ref · price[j]``). So the model is walked once: each such quantity
becomes a list of monomials ``c · θ_p · θ_q`` and evaluating the step's numbers is two
``bincount`` calls. A matrix coefficient that depends on a parameter is refused at compile time.

The Pyomo model stays the source of truth: tests check that the live arrays evaluated at a new θ
equal a fresh compilation of a model built (or updated) with those numbers (drift check).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr import numeric_expr as ne
from pyomo.core.expr.numvalue import native_numeric_types
from pyomo.repn.standard_repn import generate_standard_repn
from scipy import sparse

from cedar_opt.control.data import Static, StepData

Poly = dict  # tuple(sorted θ positions) -> coefficient


class CompileError(ValueError):
    """The model uses a construct the array compiler does not support."""


def _padd(a: Poly, b: Poly, scale: float = 1.0) -> Poly:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0.0) + scale * v
    return out


def _pmul(a: Poly, b: Poly) -> Poly:
    out: Poly = {}
    for ka, va in a.items():
        for kb, vb in b.items():
            key = tuple(sorted(ka + kb))
            if len(key) > 2:
                raise CompileError("a parameter product of degree > 2")
            out[key] = out.get(key, 0.0) + va * vb
    return out


class _ParamPoly:
    """Turns a variable-free expression into a polynomial of the mutable parameters."""

    def __init__(self, positions: dict[int, int]):
        self.pos = positions

    def __call__(self, e) -> Poly:
        if e is None:
            return {}
        if type(e) in native_numeric_types:
            return {(): float(e)} if e != 0 else {}
        if not hasattr(e, "is_expression_type"):
            return {(): float(e)}
        if e.is_expression_type():
            if e.is_named_expression_type():
                return self(e.expr)
            if isinstance(e, (ne.SumExpression, ne.LinearExpression)):
                out: Poly = {}
                stack = list(e.args)  # flatten nested sums without recursion (they can be deep)
                while stack:
                    a = stack.pop()
                    if (hasattr(a, "is_expression_type") and a.is_expression_type() and not a.is_named_expression_type()
                            and isinstance(a, (ne.SumExpression, ne.LinearExpression))):
                        stack.extend(a.args)
                    else:
                        for k, v in self(a).items():
                            out[k] = out.get(k, 0.0) + v
                return out
            if isinstance(e, (ne.ProductExpression, ne.MonomialTermExpression)):
                return _pmul(self(e.args[0]), self(e.args[1]))
            if isinstance(e, ne.NegationExpression):
                return {k: -v for k, v in self(e.args[0]).items()}
            if isinstance(e, ne.DivisionExpression):
                den = self(e.args[1])
                if set(den) - {()}:
                    raise CompileError(f"division by a parameter in {e}")
                d = den.get((), 0.0)
                return {k: v / d for k, v in self(e.args[0]).items()}
            raise CompileError(f"unsupported expression {type(e).__name__}: {e}")
        if e.is_variable_type():
            raise CompileError(f"variable {e.name} where only parameters are allowed")
        if e.is_parameter_type() and id(e) in self.pos:
            return {(self.pos[id(e)],): 1.0}
        v = pyo.value(e)
        return {(): float(v)} if v != 0 else {}


class PolyVector:
    """A vector whose entries are degree-≤2 polynomials of θ, evaluated with bincount."""

    def __init__(self, size: int):
        self.size = size
        self._rows: list[tuple[int, Poly]] = []

    def set(self, i: int, p: Poly) -> None:
        self._rows.append((i, p))

    def freeze(self) -> "PolyVector":
        base = np.zeros(self.size)
        i1, c1, p1, i2, c2, p2, q2 = [], [], [], [], [], [], []
        for i, poly in self._rows:
            for key, c in poly.items():
                if len(key) == 0:
                    base[i] += c
                elif len(key) == 1:
                    i1.append(i); c1.append(c); p1.append(key[0])  # noqa: E702
                else:
                    i2.append(i); c2.append(c); p2.append(key[0]); q2.append(key[1])  # noqa: E702
        self.base = base
        self.i1, self.c1, self.p1 = np.array(i1, int), np.array(c1, float), np.array(p1, int)
        self.i2, self.c2, self.p2, self.q2 = np.array(i2, int), np.array(c2, float), np.array(p2, int), np.array(q2, int)
        del self._rows
        return self

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        out = self.base.copy()
        if self.i1.size:
            out += np.bincount(self.i1, weights=self.c1 * theta[self.p1], minlength=self.size)
        if self.i2.size:
            out += np.bincount(self.i2, weights=self.c2 * theta[self.p2] * theta[self.q2], minlength=self.size)
        return out


@dataclass
class Arrays:
    """One evaluated LP in HiGHS form: col bounds/costs, row bounds, the matrix (CSC)."""

    cost: np.ndarray
    offset: float
    col_lb: np.ndarray
    col_ub: np.ndarray
    row_lb: np.ndarray
    row_ub: np.ndarray
    A: sparse.csc_matrix
    integer: np.ndarray


@dataclass
class CompiledModel:
    """The model as arrays, with θ → (row bounds, costs) maps and name ↔ position maps."""

    static: Static
    n_cols: int
    n_rows: int
    A: sparse.csc_matrix
    col_lb: np.ndarray
    col_ub: np.ndarray
    integer: np.ndarray
    row_lo: PolyVector
    row_up: PolyVector
    cost: PolyVector
    offset: PolyVector
    cols: dict[str, dict] = field(default_factory=dict)
    """Per Var name: {index tuple: column}."""
    rows: dict[str, dict] = field(default_factory=dict)
    """Per Constraint name: {index: row}."""
    col_names: list[str] = field(default_factory=list)
    row_names: list[str] = field(default_factory=list)
    n_cols_of: dict[str, np.ndarray] = field(default_factory=dict)

    def evaluate(self, theta: np.ndarray) -> Arrays:
        return Arrays(
            cost=self.cost(theta), offset=float(self.offset(theta)[0]), col_lb=self.col_lb, col_ub=self.col_ub,
            row_lb=self.row_lo(theta), row_ub=self.row_up(theta), A=self.A, integer=self.integer,
        )

    def col_array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Columns of Var ``name`` as an array of ``shape`` (−1 where the index does not exist)."""
        out = np.full(shape, -1, dtype=int)
        for idx, c in self.cols[name].items():
            out[idx if isinstance(idx, tuple) else (idx,)] = c
        return out


def param_positions(m, st: Static) -> dict[int, int]:
    """id(ParamData) → position in θ (the :meth:`StepData.theta` layout)."""
    layout = StepData.layout(st)
    pos: dict[int, int] = {}
    for name, (off, shape) in layout.items():
        p = getattr(m, name)
        if not shape:
            pos[id(p)] = off
            continue
        for idx in p:
            tup = idx if isinstance(idx, tuple) else (idx,)
            pos[id(p[idx])] = off + int(np.ravel_multi_index(tup, shape))
    return pos


def compile_model(m, st: Static) -> CompiledModel:
    """Walk the model once; see the module docstring."""
    pp = _ParamPoly(param_positions(m, st))
    cols: dict[str, dict] = {}
    col_of: dict[int, int] = {}
    col_names: list[str] = []
    lbs, ubs, ints = [], [], []
    for var in m.component_objects(pyo.Var, active=True, descend_into=True):
        d = {}
        for idx in var:
            v = var[idx]
            c = len(col_names)
            col_of[id(v)] = c
            d[idx] = c
            col_names.append(v.name)
            lbs.append(-np.inf if v.lb is None else float(v.lb))
            ubs.append(np.inf if v.ub is None else float(v.ub))
            ints.append(v.is_integer())
        cols[var.local_name] = d
    n_cols = len(col_names)

    rows: dict[str, dict] = {}
    row_names: list[str] = []
    ri, ci, vals = [], [], []
    row_lo_polys, row_up_polys = [], []
    for con in m.component_objects(pyo.Constraint, active=True, descend_into=True):
        d = {}
        for idx in con:
            cd = con[idx]
            if not cd.active:
                continue
            r = len(row_names)
            repn = generate_standard_repn(cd.body, compute_values=False, quadratic=False)
            if repn.nonlinear_expr is not None or repn.quadratic_vars:
                raise CompileError(f"{cd.name} is not linear")
            for v, coef in zip(repn.linear_vars, repn.linear_coefs):
                p = pp(coef)
                if set(p) - {()}:
                    raise CompileError(f"{cd.name}: the coefficient of {v.name} depends on a parameter")
                val = p.get((), 0.0)
                if val != 0.0:
                    ri.append(r); ci.append(col_of[id(v)]); vals.append(val)  # noqa: E702
            const = pp(repn.constant)
            lo = None if cd.lower is None else _padd(pp(cd.lower), const, -1.0)
            up = None if cd.upper is None else _padd(pp(cd.upper), const, -1.0)
            row_lo_polys.append(lo)
            row_up_polys.append(up)
            d[idx] = r
            row_names.append(cd.name)
        rows[con.local_name] = d
    n_rows = len(row_names)
    A = sparse.csc_matrix((vals, (ri, ci)), shape=(n_rows, n_cols))
    A.sum_duplicates()

    row_lo, row_up = PolyVector(n_rows), PolyVector(n_rows)
    inf_lo, inf_up = np.zeros(n_rows, bool), np.zeros(n_rows, bool)
    for r, (lo, up) in enumerate(zip(row_lo_polys, row_up_polys)):
        if lo is None:
            inf_lo[r] = True
        else:
            row_lo.set(r, lo)
        if up is None:
            inf_up[r] = True
        else:
            row_up.set(r, up)
    row_lo.freeze()
    row_up.freeze()
    row_lo.base[inf_lo] = -np.inf
    row_up.base[inf_up] = np.inf

    objs = list(m.component_data_objects(pyo.Objective, active=True))
    if len(objs) != 1:
        raise CompileError("exactly one active objective is needed")
    repn = generate_standard_repn(objs[0].expr, compute_values=False, quadratic=False)
    cost = PolyVector(n_cols)
    acc: dict[int, Poly] = {}
    for v, coef in zip(repn.linear_vars, repn.linear_coefs):
        c = col_of[id(v)]
        acc[c] = _padd(acc.get(c, {}), pp(coef))
    for c, p in acc.items():
        cost.set(c, p)
    cost.freeze()
    offset = PolyVector(1)
    offset.set(0, pp(repn.constant))
    offset.freeze()
    return CompiledModel(
        static=st, n_cols=n_cols, n_rows=n_rows, A=A, col_lb=np.array(lbs), col_ub=np.array(ubs),
        integer=np.array(ints, bool), row_lo=row_lo, row_up=row_up, cost=cost, offset=offset, cols=cols, rows=rows,
        col_names=col_names, row_names=row_names,
    )
