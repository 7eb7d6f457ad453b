"""CEDAR: the receding-horizon controller behind the :class:`~cedar_opt.interface.Policy` protocol.

Each step: observe arrivals → forecast arrivals and marginal carbon over the horizon blocks →
step parameters (:func:`~cedar_opt.control.data.build_step`) → evaluate the compiled model's
row bounds and costs → solve (``lp_round`` or ``mip``) within the wall-clock deadline → the
first block's replicas, routing and release as the Action → independent feasibility check.

Fallback chain, each candidate checked by :func:`cedar_opt.feasibility.check_action`:
solution → incumbent (rounded LP / MIP incumbent; or rounded LP-relaxation replicas with its
routing) → previous plan shifted one step → safe heuristic. ``info["fallback"]`` records why.
"""

from __future__ import annotations

import math
import time

import numpy as np

from cedar_opt.control.calibration import WorkCalibration
from cedar_opt.control.compile import CompiledModel, compile_model
from cedar_opt.control.data import References, Static, StepData, Switches, build_static, build_step
from cedar_opt.control.model import build_model
from cedar_opt.control.solve import HighsBackend, SolveResult
from cedar_opt.control import actions as acts
from cedar_opt.feasibility import check_action
from cedar_opt.forecast import make_arrival_forecaster, make_carbon_forecaster
from cedar_opt.interface import Action, Observation, PolicyContext


def _neutral_step(st: Static) -> StepData:
    K, O, J, B = st.K, st.O, st.J, st.B
    return StepData(
        lam=np.ones((K, O, B)), backlog0=np.zeros((K, O)), urgent0=np.zeros((K, O)), n_now=np.zeros(J),
        ready_cap=np.zeros((J, B)), nmax=np.tile(st.max_rep[:, None], (1, B)),
        price=np.ones(J), mci=np.ones((max(O, int(st.region_of.max()) + 1 if J else 0), B)),
        prev_rate=np.zeros((K, O, J)), inv_demand=1.0, inv_cost_ref=1.0, inv_carbon_ref=1.0, inv_rate_ref=1.0,
        inv_replica_ref=1.0,
    )


def _prior_rate(context: PolicyContext, cfg) -> np.ndarray | None:
    """[tier, origin] planning prior of the arrival rate (requests/s) before anything is observed:
    the workload's mean call rate over the run split by tier and origin shares (an operator's
    capacity plan). None when the workload hint does not say how many calls there are."""
    hint = context.workload_hint
    if not isinstance(hint, dict) or "n_calls" not in hint:
        return None
    K, O = len(context.tiers), len(context.regions)
    rate = float(hint["n_calls"]) / max(float(context.duration_s), 1.0)
    tier = np.array([float(hint.get(f"share_{t}", 1.0 / K)) for t in context.tiers])
    origins = cfg.workload.origins
    org = np.array([float(origins.get(r, 0.0)) for r in context.regions]) if origins else np.full(O, 1.0 / O)
    return rate * tier[:, None] * org[None, :]


class CedarPolicy:
    """The CEDAR controller and its ablations (``None`` switches follow ``config.controller``)."""

    def __init__(
        self,
        name: str = "cedar",
        *,
        carbon_aware: bool | None = None,
        slack_tracking: bool | None = None,
        right_sizing: bool | None = None,
    ):
        self.name = name
        self._switch_args = dict(carbon_aware=carbon_aware, slack_tracking=slack_tracking, right_sizing=right_sizing)
        self.context: PolicyContext | None = None

    # -- setup ------------------------------------------------------------------------------
    def reset(self, context: PolicyContext) -> None:
        from cedar_opt.config.schema import Scenario

        self.context = context
        cfg = context.config if context.config is not None else Scenario()
        self.config = cfg
        ctl = cfg.controller
        sw = {k: (getattr(ctl, k) if v is None else bool(v)) for k, v in self._switch_args.items()}
        self.switches = Switches(**sw)
        self.static = build_static(context, self.switches)
        self.solver = ctl.solver
        self.max_scale = int(cfg.fleet.max_scale_per_step)
        self.model = build_model(self.static, _neutral_step(self.static))
        self.compiled: CompiledModel = compile_model(self.model, self.static)
        self.backend = HighsBackend(self.compiled, threads=self.solver.threads, seed=context.seed, mip_rel_gap=self.solver.mip_rel_gap)
        st = self.static
        self._cols = {
            "n": self.compiled.col_array("n", (st.J, st.B)),
            "x": self.compiled.col_array("x", (st.K, st.O, st.J, st.B)),
            "q": self.compiled.col_array("q", (st.K, st.O, st.B)),
        }
        sig = cfg.signals
        self.carbon = None
        if context.signals is not None:
            self.carbon = make_carbon_forecaster(sig.forecast, context.signals, noise=sig.forecast_noise, seed=context.seed)
            self._region_map = np.array([list(context.signals.regions).index(r) for r in context.regions])
        truth = None
        hint = context.workload_hint
        if isinstance(hint, dict) and callable(hint.get("arrival_rate")):
            truth = hint["arrival_rate"]
        self.arrivals = make_arrival_forecaster(
            sig.arrival_forecast, context.step_s, st.K, st.O, noise=sig.forecast_noise, seed=context.seed + 1, truth=truth,
            prior=_prior_rate(context, cfg),
        )
        self.refs = References()
        self.calibration = WorkCalibration(st)
        self.calibration.bind_ranks(np.asarray(context.static.model_rank))
        self.work_factor = np.ones(st.K)
        self._plan: dict | None = None
        self.time_limit_s = float(self.solver.time_limit_s)

    # -- one step ---------------------------------------------------------------------------
    def step_data(self, obs: Observation) -> StepData:
        """Observe, forecast and compute this step's parameters (also used by the benchmark)."""
        st = self.static
        q = obs.queues
        self.arrivals.observe(obs.t_s, q.arrivals_requests, q.arrivals_tokens)
        starts = obs.t_s + st.start
        lam = self.arrivals.forecast(obs.t_s, starts, st.tau)
        if self.carbon is not None:
            mci = self.carbon.forecast(obs.t_s, starts, st.tau)[:, self._region_map]
        else:
            mci = np.tile(np.asarray(obs.marginal_g_per_kwh, float), (st.B, 1))
        self.calibration.observe(obs)
        self.work_factor = self.calibration.tier_factors()
        return build_step(st, obs, lam, mci, self.refs, self.work_factor)

    def _vector_problems(self, x) -> str:
        """Why a solver's vector cannot be read as a solution ('' if it can): it is never loaded
        silently — extraction would otherwise round NaN or out-of-bound values into a plausible
        fleet."""
        c = self.compiled
        if x is None or np.shape(x) != (c.n_cols,):
            return "wrong length"
        x = np.asarray(x, dtype=float)
        if not np.all(np.isfinite(x)):
            return "non-finite values"
        tol = 1e-6
        if np.any(x < c.col_lb - tol) or np.any(x > c.col_ub + tol):
            return "values outside the variable bounds"
        xi = x[c.integer]
        if np.any(np.abs(xi - np.rint(xi)) > 1e-5):
            return "fractional replica counts"
        return ""

    def _split(self, x: np.ndarray) -> dict[str, np.ndarray]:
        c = self._cols
        xx = np.where(c["x"] >= 0, x[np.maximum(c["x"], 0)], 0.0)
        return {"n": x[c["n"]], "x": xx, "q": x[c["q"]]}

    def _from_solution(self, x: np.ndarray, obs: Observation, info: dict) -> Action:
        v = self._split(x)
        f = self.work_factor  # rates and backlogs were planned in calibrated work units
        info["work_factor"] = [round(float(a), 3) for a in f]
        return acts.action_from_plan(
            self.static, v["n"][:, 0], v["x"][..., 0] / f[:, None, None], v["q"][..., 0] / f[:, None], obs, info
        )

    def act(self, obs: Observation) -> Action:
        t0 = time.perf_counter()
        ctx, st = self.context, self.static
        info: dict = {"method": self.solver.method, "fallback": None, "gap": math.nan, "objective": math.nan, "highs_ms": 0.0}
        reasons: list[str] = []
        res: SolveResult | None = None
        try:
            data = self.step_data(obs)
            arr = self.compiled.evaluate(data.theta())
            left = self.time_limit_s - (time.perf_counter() - t0)
            res = self.backend.solve(arr, self.solver.method, max(left, 0.0))
            info["highs_ms"] = res.highs_ms
            info["stages"] = res.stages
        except Exception as e:  # noqa: BLE001 — the chain must still produce an action
            reasons.append(f"error: {type(e).__name__}: {e}")

        action: Action | None = None
        if res is not None and res.ok and self._vector_problems(res.x):
            reasons.append("solver returned an unusable solution: " + self._vector_problems(res.x))
            res.ok = False
            if res.incumbent is res.x:
                res.incumbent = None
            res.x = None
        if res is not None and res.ok:
            cand = self._from_solution(res.x, obs, info)
            problems = check_action(cand, ctx, obs)
            if not problems:
                action = cand
                info.update(objective=res.objective, gap=res.gap, bound=res.bound)
            else:
                reasons.append("solution failed the feasibility check: " + "; ".join(problems[:3]))
        elif res is not None:
            reasons.append(res.status)

        if action is None and res is not None:
            inc = res.incumbent if res.incumbent is not None else res.x
            if inc is None and res.lp_x is not None:
                inc = res.lp_x.copy()
                ncol = self._cols["n"][:, 0]
                inc[ncol] = np.ceil(inc[ncol] - 1e-6)
            if inc is not None and self._vector_problems(inc):
                reasons.append("incumbent unusable: " + self._vector_problems(inc))
                inc = None
            if inc is not None:
                cand = self._from_solution(inc, obs, info)
                problems = check_action(cand, ctx, obs)
                if not problems:
                    action = cand
                    reasons.append("incumbent")
                    if res.x is not None and not math.isnan(res.objective):
                        info.update(objective=res.objective, gap=res.gap, bound=res.bound)
                else:
                    reasons.append("incumbent infeasible: " + "; ".join(problems[:3]))
        if action is None:
            cand = acts.shifted_plan(st, self._plan, obs, self.max_scale, info)
            if cand is not None:
                problems = check_action(cand, ctx, obs)
                if not problems:
                    action = cand
                    reasons.append("previous plan shifted")
                else:
                    reasons.append("previous plan infeasible: " + "; ".join(problems[:3]))
        if action is None:
            action = acts.safe_action(st, ctx, obs, self.max_scale, info)
            problems = check_action(action, ctx, obs)
            reasons.append("safe heuristic" if not problems else "safe heuristic (still infeasible: " + "; ".join(problems[:3]) + ")")

        # Remember the plan for the next step's fallback.
        if action is not None and res is not None and (res.x is not None) and not info.get("fallback_used_plan"):
            v = self._split(res.x)
            b1 = 1 if st.B > 1 else 0
            self._plan = {"n1": v["n"][:, b1], "x1": v["x"][..., b1]}
        info["fallback"] = "; ".join(reasons) if reasons else None
        info["solve_ms"] = (time.perf_counter() - t0) * 1000.0
        info["switches"] = dict(vars(self.switches)) if hasattr(self.switches, "__dict__") else None
        return action
