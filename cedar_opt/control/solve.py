"""HiGHS backend: the compiled model held in highspy objects, updated in place, solved two ways.

* ``lp_round`` (default): LP relaxation (bound z_LP) → round replicas (two candidates: all up, and
  to nearest) with a quota repair → re-solve the LP with replicas fixed (hot-started from the
  relaxation's basis) → keep the better candidate; gap = (z − z_LP)/|z|.
* ``mip``: the above, then branch and bound on a second highspy object warm-started
  (``setSolution``) from the rounded solution, to ``mip_rel_gap`` within the time left; gap =
  HiGHS's own MIP gap; on time-out the incumbent (never worse than the rounded start) is kept.

Every ``run()`` gets the wall-clock time left as its ``time_limit``; :class:`SolveResult` records
the status of each stage so the caller's fallback chain can say why it fell back.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field

import highspy
import numpy as np

from cedar_opt.control.compile import Arrays, CompiledModel

_STATE = {"threads": None}


def _configure_threads(threads: int) -> None:
    """HiGHS's thread scheduler is global per process: reset it when the count changes."""
    if _STATE["threads"] is not None and _STATE["threads"] != threads:
        highspy.Highs.resetGlobalScheduler(True)
    _STATE["threads"] = threads


def _quiet_highs() -> highspy.Highs:
    """A Highs object without the copyright banner HiGHS writes to the process's stdout (file
    descriptor 1) on construction, before any option can switch output off: it would otherwise
    land in the middle of the CLI's tables and in users' logs."""
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no real stdout (e.g. captured): nothing to hide
        return highspy.Highs()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            try:
                return highspy.Highs()
            finally:
                os.dup2(saved, fd)
    finally:
        os.close(saved)


@dataclass
class SolveResult:
    ok: bool
    """True when ``x`` is a solution with integral replicas (rounded LP or MIP)."""
    method: str
    status: str
    """Why it ended: ``optimal``, ``lp_round``, ``mip_time_limit`` … or the failure."""
    x: np.ndarray | None = None
    objective: float = math.nan
    bound: float = math.nan
    gap: float = math.nan
    highs_ms: float = 0.0
    lp_x: np.ndarray | None = None
    """The LP relaxation's solution (the incumbent of last resort when re-solves fail)."""
    incumbent: np.ndarray | None = None
    """Best integral solution known before the stage that failed (MIP: the rounded start)."""
    stages: list[str] = field(default_factory=list)


def _status_name(h: highspy.Highs) -> str:
    return h.modelStatusToString(h.getModelStatus()).strip().lower().replace(" ", "_")


class HighsBackend:
    """Two highspy objects (LP and, on demand, MIP) sharing the compiled model's structure."""

    def __init__(self, compiled: CompiledModel, *, threads: int = 1, seed: int = 0, mip_rel_gap: float = 0.02):
        _configure_threads(threads)
        self.c = compiled
        self.threads = threads
        self.seed = seed
        self.mip_rel_gap = mip_rel_gap
        self.int_cols = np.flatnonzero(compiled.integer).astype(np.int32)
        self.all_cols = np.arange(compiled.n_cols, dtype=np.int32)
        self.all_rows = np.arange(compiled.n_rows, dtype=np.int32)
        self.lp = self._new(integer=False)
        self._mip: highspy.Highs | None = None
        self._int_lb = compiled.col_lb[self.int_cols]
        self._int_ub = compiled.col_ub[self.int_cols]
        self.quota_members = self._quota_members()

    # -- model ------------------------------------------------------------------------------
    def _new(self, integer: bool) -> highspy.Highs:
        h = _quiet_highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", int(self.threads))
        h.setOptionValue("random_seed", int(self.seed))
        if integer:
            h.setOptionValue("mip_rel_gap", float(self.mip_rel_gap))
        c = self.c
        lp = highspy.HighsLp()
        lp.num_col_ = c.n_cols
        lp.num_row_ = c.n_rows
        lp.col_cost_ = np.zeros(c.n_cols)
        lp.col_lower_ = c.col_lb
        lp.col_upper_ = c.col_ub
        lp.row_lower_ = np.full(c.n_rows, -highspy.kHighsInf)
        lp.row_upper_ = np.full(c.n_rows, highspy.kHighsInf)
        A = c.A.tocsc()
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = A.indptr.astype(np.int32)
        lp.a_matrix_.index_ = A.indices.astype(np.int32)
        lp.a_matrix_.value_ = A.data.astype(float)
        lp.a_matrix_.num_col_ = c.n_cols
        lp.a_matrix_.num_row_ = c.n_rows
        if integer:
            lp.integrality_ = [highspy.HighsVarType.kInteger if b else highspy.HighsVarType.kContinuous for b in c.integer]
        h.passModel(lp)
        return h

    @property
    def mip(self) -> highspy.Highs:
        if self._mip is None:
            self._mip = self._new(integer=True)
        return self._mip

    def _quota_members(self) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """Per (quota group, block): (columns of n, GPUs per replica, quota)."""
        st = self.c.static
        ncol = self.c.col_array("n", (st.J, st.B))
        pos = {int(c): i for i, c in enumerate(self.int_cols)}
        out = []
        for g in range(st.quota.size):
            js = np.flatnonzero(st.quota_group == g)
            for b in range(st.B):
                if all(int(c) in pos for c in ncol[js, b]):
                    out.append((np.array([pos[int(c)] for c in ncol[js, b]]), st.gpus[js], float(st.quota[g])))
        return out

    @staticmethod
    def _load(h: highspy.Highs, arr: Arrays, cols, rows) -> None:
        h.changeColsCost(len(cols), cols, arr.cost)
        h.changeRowsBounds(len(rows), rows, arr.row_lb, arr.row_ub)

    def _run(self, h: highspy.Highs, deadline: float) -> tuple[str, float]:
        left = deadline - time.perf_counter()
        if left <= 0:
            return "time_limit", 0.0
        # HiGHS compares time_limit with the object's *cumulative* run clock: offset by it.
        h.setOptionValue("time_limit", float(h.getRunTime() + left))
        t = time.perf_counter()
        h.run()
        return _status_name(h), (time.perf_counter() - t) * 1000.0

    # -- rounding ---------------------------------------------------------------------------
    def round_candidates(self, x_lp: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """Integral replica vectors (for the integer columns) from the LP relaxation."""
        v = x_lp[self.int_cols]
        up = np.ceil(v - 1e-6)
        near = np.floor(v + 0.5 - 1e-9)
        out = []
        for name, cand in (("ceil", up), ("nearest", near)):
            cand = np.clip(cand, self._int_lb, self._int_ub)
            out.append((name, self._repair_quota(cand, v)))
        return out

    def _repair_quota(self, cand: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Where rounding up broke a quota, round down the members rounded up most, one at a time.

        Flooring every member satisfies the quota because the LP did, so this always ends."""
        full = cand.copy()
        for idx, gpus, quota in self.quota_members:
            while float(np.dot(full[idx], gpus)) > quota + 1e-9:
                excess = full[idx] - np.floor(v[idx] + 1e-9)
                i = int(np.argmax(np.where(excess > 0, full[idx] - v[idx], -np.inf)))
                if excess[i] <= 0:
                    break
                full[idx[i]] -= 1
        return full

    # -- solving ----------------------------------------------------------------------------
    def solve(self, arr: Arrays, method: str, time_limit_s: float, *, candidates: tuple[str, ...] = ("ceil", "nearest")) -> SolveResult:
        deadline = time.perf_counter() + time_limit_s
        h = self.lp
        self._load(h, arr, self.all_cols, self.all_rows)
        h.changeColsBounds(len(self.int_cols), self.int_cols, self._int_lb, self._int_ub)
        res = SolveResult(ok=False, method=method, status="")
        status, ms = self._run(h, deadline)
        res.highs_ms += ms
        res.stages.append(f"lp:{status}")
        if status != "optimal":
            res.status = f"lp relaxation {status}"
            return res
        z_lp = h.getInfo().objective_function_value + arr.offset
        res.bound = z_lp
        x_lp = np.asarray(h.getSolution().col_value)
        res.lp_x = x_lp
        best_z, best_x = math.inf, None
        last = "no candidate"
        for name, cand in self.round_candidates(x_lp):
            if name not in candidates:
                continue
            h.changeColsBounds(len(self.int_cols), self.int_cols, cand, cand)
            status, ms = self._run(h, deadline)
            res.highs_ms += ms
            res.stages.append(f"{name}:{status}")
            last = status
            if status == "optimal":
                xc = np.asarray(h.getSolution().col_value)
                z = float(arr.cost @ xc) + arr.offset  # the objective of the x we return
                if z < best_z - 1e-12:
                    best_z, best_x = z, xc
            if status == "time_limit":
                break
        h.changeColsBounds(len(self.int_cols), self.int_cols, self._int_lb, self._int_ub)
        if best_x is None:
            res.status = f"rounded re-solve {last}"
            return res
        res.incumbent = best_x
        res.ok, res.x, res.objective = True, best_x, best_z
        res.gap = max(0.0, (best_z - z_lp) / max(abs(best_z), 1e-12))
        res.status = "lp_round"
        if method == "lp_round":
            return res

        m = self.mip
        self._load(m, arr, self.all_cols, self.all_rows)
        m.setSolution(_solution(best_x))
        status, ms = self._run(m, deadline)
        res.highs_ms += ms
        res.stages.append(f"mip:{status}")
        info = m.getInfo()
        has_sol = info.primal_solution_status == 2  # kSolutionStatusFeasible
        if has_sol:
            xm = np.asarray(m.getSolution().col_value)
            # c·x of the solution itself: HiGHS's reported objective_function_value after a MIP
            # was seen below the LP bound (tests/test_properties_control.py regression)
            z = float(arr.cost @ xm) + arr.offset
            if z <= best_z + 1e-9 * max(1.0, abs(best_z)):
                res.x, res.objective = xm, z
            bound = info.mip_dual_bound + arr.offset
            res.bound = max(res.bound, bound)
            res.gap = max(0.0, (res.objective - res.bound) / max(abs(res.objective), 1e-12))
        if status == "optimal":
            res.status = "mip"
        else:
            res.ok = False  # the caller's chain decides: the incumbent is res.x / res.incumbent
            res.status = f"mip {status}"
            res.incumbent = res.x
        return res


def _solution(x: np.ndarray) -> highspy.HighsSolution:
    s = highspy.HighsSolution()
    s.col_value = list(map(float, x))
    s.value_valid = True
    return s
