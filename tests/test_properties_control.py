"""Properties of the CEDAR control step on random small fleets (hypothesis, ``cedar_opt.testing``).

* every solved or fallback action passes the independent checker (``cedar_opt.feasibility``);
* raising the carbon weight never raises the step's marginal carbon; raising the cost weight
  never raises its cost;
* adding quota never raises the optimal objective;
* relabelling regions permutes the solution (same optimal objective);
* scaling every price by a constant under a cost-only objective leaves the decision unchanged;
* the fallback chain always returns a feasible action whatever the solver does, and the next
  normal step is exactly what a policy that never failed would decide.

The optimality properties solve to proven optimality (``mip``, ``mip_rel_gap`` 0) on instances of
1–2 regions, 1 GPU type, 1–2 models and 3 horizon blocks, so a time-limited gap can neither hide
nor fake a violation. Ties in a MIP may give different decisions of equal objective, so decisions
are compared through objectives (within ``OBJ_TOL``) wherever they may legitimately differ.

Entry points used (``cedar_opt.control``): ``CedarPolicy.reset/act`` (the public path);
``build_step`` + ``CedarPolicy.compiled.evaluate`` + ``CedarPolicy.backend.solve`` to solve one
step from given forecasts; the Pyomo model's ``*_term`` Expressions to read objective terms.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pyomo.environ as pyo
import pytest
from hypothesis import Phase, assume, given, note, settings
from hypothesis import strategies as st

from cedar_opt.config.loader import deep_merge
from cedar_opt.config.schema import Scenario
from cedar_opt.control import CedarPolicy
from cedar_opt.control.data import References, build_step
from cedar_opt.control.model import update_model
from cedar_opt.control.objective import TERMS
from cedar_opt.control.solve import SolveResult
from cedar_opt.interface import Action, Observation, PolicyContext, QueueState
from cedar_opt.testing import ControlInputs, assert_action_feasible, check_action_feasible, fleets, forecasts, observations

EXACT = {"solver": {"method": "mip", "mip_rel_gap": 0.0, "time_limit_s": 30.0}}
HORIZON = ((2, 10.0), (1, 60.0))
OBJ_TOL = 1e-6
"""Relative (and absolute, around 1) tolerance on optimal objectives: HiGHS's default absolute MIP
gap is 1e-6 and its primal feasibility tolerance 1e-7."""


# ----------------------------------------------------------------------------- helpers


def with_controller(ctx: PolicyContext, **controller) -> PolicyContext:
    """The context with ``controller`` fields merged into its scenario."""
    doc = ctx.config.model_dump(mode="json")
    doc["controller"] = deep_merge(doc["controller"], controller)
    return dataclasses.replace(ctx, config=Scenario.model_validate(doc))


def policy_for(ctx: PolicyContext) -> CedarPolicy:
    p = CedarPolicy()
    p.reset(ctx)
    return p


@dataclasses.dataclass
class Solved:
    objective: float
    terms: dict[str, float]
    replicas: np.ndarray
    x: np.ndarray
    status: str


def solve_exact(ctx: PolicyContext, inputs: ControlInputs) -> Solved:
    """Solve one step from the given forecasts by plain branch and bound to proven optimality
    (HiGHS, gap 0, on the controller's compiled arrays: independent of its rounding stages) and
    read the objective terms from the Pyomo model at the solution."""
    import highspy

    p = policy_for(ctx)
    data = build_step(p.static, inputs.observation, inputs.arrivals_req_s, inputs.marginal_g_per_kwh, References())
    arr = p.compiled.evaluate(data.theta())
    h = p.backend.mip
    p.backend._load(h, arr, p.backend.all_cols, p.backend.all_rows)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("time_limit", 30.0)
    h.run()
    status = h.modelStatusToString(h.getModelStatus()).strip().lower()
    if status == "infeasible" and not high_can_be_served(ctx, inputs.observation):
        assume(False)  # no feasible action exists (HIGH cannot get a server): nothing to compare
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal, f"not solved to optimality: {status}"
    x = np.asarray(h.getSolution().col_value)
    m = p.model
    update_model(m, data)
    for name, cols in p.compiled.cols.items():
        var = getattr(m, name)
        for idx, c in cols.items():
            var[idx].set_value(float(x[c]), skip_validation=True)
    terms = {t: float(pyo.value(getattr(m, t))) for t in TERMS}
    objective = float(pyo.value(m.objective))
    assert math.isclose(objective, float(arr.cost @ x) + arr.offset, rel_tol=1e-9, abs_tol=1e-9)  # a check on this reading
    n0 = p.compiled.col_array("n", (p.static.J, p.static.B))[:, 0]
    return Solved(objective, terms, np.rint(x[n0]).astype(int), x, status)


@st.composite
def step_inputs(draw, controller: dict | None = None, **fleet_kw) -> tuple[PolicyContext, ControlInputs]:
    ctx = draw(fleets(horizon=HORIZON, controller=deep_merge(EXACT, controller or {}), **fleet_kw))
    obs = draw(observations(ctx))
    lam, mci = draw(forecasts(ctx))
    return ctx, ControlInputs(ctx, obs, lam, mci)


def close(a: float, b: float, tol: float = OBJ_TOL) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


# ----------------------------------------------------------------------------- feasibility


def high_can_be_served(ctx: PolicyContext, obs: Observation) -> bool:
    """Whether any action can give HIGH a server: some HIGH-eligible pool (on-demand ones when there
    are any, as the controller's ``coverage_high`` asks) can hold ≥ 1 replica next step within
    its bound, its scaling limit and its quota group — the others of the group shrunk as far as
    their own scaling limits allow. When not, no feasible action exists at all."""
    s, cfg = ctx.static, ctx.config
    k = ctx.tiers.index("HIGH")
    scale = cfg.fleet.max_scale_per_step
    elig = s.model_rank >= ctx.min_model_rank[k]
    od = np.array([p.purchase == "on_demand" for p in ctx.pools])
    cand = elig & od if np.any(elig & od) else elig
    cur = obs.replicas_ready + obs.replicas_starting
    for j in np.flatnonzero(cand):
        if min(s.max_replicas[j], cur[j] + scale) < 1:
            continue
        grp = np.flatnonzero(s.quota_group == s.quota_group[j])
        least = sum(max(cur[i] - scale, 0) * s.gpus_per_replica[i] for i in grp if i != j)
        if least + max(1, cur[j] - scale) * s.gpus_per_replica[j] <= s.quota_gpus[j]:
            return True
    return False


@given(data=st.data())
def test_every_action_passes_the_independent_checker(data):
    """Two consecutive steps with the default (time-limited, ``lp_round``) solver: both actions
    pass the checker, whether the solution or a fallback was applied."""
    ctx = data.draw(fleets(horizon=HORIZON))
    p = policy_for(ctx)
    prev = None
    for step in range(2):
        obs = data.draw(observations(ctx, step=step, previous_action=prev))
        a = p.act(obs)
        note(f"step {step} info: {a.info}")
        problems = check_action_feasible(a, ctx, obs)
        if problems and not high_can_be_served(ctx, obs):  # no feasible action exists: say so
            assert "still infeasible" in a.info["fallback"], "an infeasible action must be reported as such"
            continue
        assert not problems, problems
        prev = a


# ----------------------------------------------------------------------------- regressions (shrunk counterexamples)


def hand_context(pools: list[dict], *, min_rank=(0, 0, 0), spot_cap: float = 0.0, max_scale: int = 1) -> PolicyContext:
    """A context written out by hand: ``pools`` are dicts with region (index), purchase, rank, gpr
    (GPUs per replica) and quota (GPUs of the pool's (region, purchase) group); one GPU type,
    1 USD/h per GPU (spot 0.5), 500 tok/s, cold start 10 s, deadlines 0.5/1/2 s, zero carbon."""
    from cedar_opt.data.signalset import SignalSet
    from cedar_opt.interface import Pool, PoolStatic

    R = 1 + max(p["region"] for p in pools)
    regions = tuple(f"r{i}" for i in range(R))
    groups: dict = {}
    gid = [groups.setdefault((p["region"], p["purchase"]), len(groups)) for p in pools]
    col = lambda f, t=float: np.array([f(p) for p in pools], dtype=t)  # noqa: E731
    static = PoolStatic(
        price_usd_per_h=col(lambda p: p["gpr"] * (0.5 if p["purchase"] == "spot" else 1.0)), capacity_tok_s=col(lambda p: 500.0),
        prefill_tok_s=col(lambda p: 1000.0), itl_s=col(lambda p: 0.005), max_batch=col(lambda p: 16, np.int64),
        idle_power_w=col(lambda p: 100.0), busy_power_w=col(lambda p: 200.0), cold_start_s=col(lambda p: 10.0),
        spot_hazard_per_h=col(lambda p: 0.0), model_rank=col(lambda p: p["rank"], np.int64), quota_gpus=col(lambda p: p["quota"], np.int64),
        quota_group=np.array(gid, np.int64), gpus_per_replica=col(lambda p: p["gpr"], np.int64),
        max_replicas=col(lambda p: p["quota"] // p["gpr"], np.int64),
    )
    M = 1 + max(p["rank"] for p in pools)
    tiers = {t: {"deadline_s": d, "share": sh, "headroom": 0.5} for t, d, sh in (("HIGH", 0.5, 0.4), ("MEDIUM", 1.0, 0.4), ("LOW", 2.0, 0.2))}
    cfg = Scenario.model_validate({
        "workload": {"trace": "synthetic", "tiers": tiers},
        "fleet": {"regions": list(regions), "gpus": ["G0"], "models": [f"M{m}" for m in range(M)], "purchase": sorted({p["purchase"] for p in pools}),
                  "quota_gpus": int(max(p["quota"] for p in pools)), "max_scale_per_step": max_scale, "pue": 1.0},
        "controller": {"horizon": [{"count": 2, "length_s": 10.0}, {"count": 1, "length_s": 60.0}], "max_spot_share_high": spot_cap},
    })
    rtt = np.full((R, R), 0.01) - 0.009 * np.eye(R)
    return PolicyContext(
        tiers=("HIGH", "MEDIUM", "LOW"), regions=regions,
        pools=tuple(Pool(regions[p["region"]], "G0", p["purchase"], f"M{p['rank']}") for p in pools), static=static, step_s=10.0,
        duration_s=3600.0, seed=0, deadline_s=np.array([0.5, 1.0, 2.0]), min_model_rank=np.array(min_rank, np.int64),
        default_model_rank=M - 1, rtt_s=rtt, pue=1.0, signals=SignalSet.constant(regions, [0.0] * R, [0.0] * R, span_s=7200.0), config=cfg,
    )


def hand_observation(ctx: PolicyContext, *, ready=None, starting=None, arrivals=None) -> Observation:
    """Empty queues; ``arrivals`` [tier, origin] requests over the last step (default none)."""
    K, O, J = len(ctx.tiers), len(ctx.regions), len(ctx.pools)
    z = np.zeros((K, O))
    arr = z if arrivals is None else np.asarray(arrivals, float)
    q = QueueState(backlog_requests=z, backlog_tokens=z, oldest_wait_s=z, min_slack_s=np.full((K, O), np.inf),
                   arrivals_requests=arr, arrivals_tokens=arr * 1000.0, trend_tokens_s=z)
    ready = np.zeros(J) if ready is None else np.asarray(ready, float)
    starting = np.zeros(J) if starting is None else np.asarray(starting, float)
    ready_in = np.where(np.arange(max(1, int(starting.max())))[None, :] < starting[:, None], 5.0, np.inf)
    return Observation(
        step=0, t_s=0.0, queues=q, replicas_ready=ready, replicas_starting=starting, replicas_draining=np.zeros(J),
        ready_in_s=ready_in, in_flight=np.zeros(J), utilisation=np.zeros(J), served_tokens_s=np.zeros((K, J)),
        marginal_g_per_kwh=np.zeros(O), average_g_per_kwh=np.zeros(O), price_usd_per_h=ctx.static.price_usd_per_h.copy(),
        preemption_notices=np.zeros(J),
    )


SWAP_POOLS = [dict(region=0, purchase="on_demand", rank=0, gpr=1, quota=1), dict(region=0, purchase="on_demand", rank=1, gpr=1, quota=1)]


def test_swap_world_has_a_feasible_action():
    """The world of the swap regression below admits a feasible action (so the failure is real)."""
    from cedar_opt.interface import Action

    ctx = hand_context(SWAP_POOLS, min_rank=(1, 0, 0))
    obs = hand_observation(ctx, starting=[1, 0])
    swap = Action(replicas=np.array([0, 1]), routing=np.array([[[0.0, 1.0]]] * 3), release_tok_s=np.full(3, np.inf), model_rank_floor=np.array([1, 0, 0]))
    assert_action_feasible(swap, ctx, obs)
    assert high_can_be_served(ctx, obs)
    # two small replicas ready, the big model needs both GPUs, one replica may stop per step: no server
    ctx2 = hand_context([dict(region=0, purchase="on_demand", rank=0, gpr=1, quota=2), dict(region=0, purchase="on_demand", rank=1, gpr=2, quota=2)], min_rank=(1, 0, 0))
    assert not high_can_be_served(ctx2, hand_observation(ctx2, ready=[2, 0]))
    assert high_can_be_served(ctx2, hand_observation(ctx2, ready=[1, 0]))


def test_regression_idle_fleet_solution_keeps_high_routable():
    """Found by test_every_action_passes_the_independent_checker (shrunk): one on-demand pool,
    empty queues, no arrivals, nothing ready. The MIP rightly buys nothing, but HIGH's routing row
    is then all zero, the action contract (HIGH is never held back; it needs a live eligible pool)
    rejects the solution, and every idle step falls back to the safe heuristic."""
    ctx = hand_context([dict(region=0, purchase="on_demand", rank=0, gpr=1, quota=1)])
    obs = hand_observation(ctx)
    a = policy_for(ctx).act(obs)
    assert_action_feasible(a, ctx, obs)  # holds: the fallback chain repaired it
    assert a.info["fallback"] is None, a.info["fallback"]


def test_regression_high_on_spot_only_respects_the_cap():
    """Found by test_every_action_passes_the_independent_checker (reduced by hand from the shrunk
    case): HIGH traffic, the only live pool is spot, spot cap 0.5. Nothing on-demand is ready in
    block 0, so the model serves HIGH nothing there (all shortfall, which the cap permits) and the
    extraction's default row sends HIGH entirely to spot: the checker rejects the solution."""
    ctx = hand_context(
        [dict(region=0, purchase="on_demand", rank=0, gpr=1, quota=4), dict(region=0, purchase="spot", rank=0, gpr=1, quota=4)], spot_cap=0.5
    )
    obs = hand_observation(ctx, ready=[0, 1], arrivals=[[10.0], [0.0], [0.0]])
    a = policy_for(ctx).act(obs)
    assert_action_feasible(a, ctx, obs)
    assert a.info["fallback"] is None, a.info["fallback"]


def test_regression_safe_heuristic_frees_quota_for_high():
    """Found by test_every_action_passes_the_independent_checker (shrunk): one on-demand quota
    group of 1 GPU, a replica of the small model M0 starting, HIGH needs M1. Stopping M0 and
    starting M1 is feasible (each pool moves by 1 ≤ max_scale_per_step), but the solution leaves
    HIGH unroutable and the safe heuristic keeps the fleet and finds no quota to add M1: the step
    ends with an infeasible action (reported as "still infeasible")."""
    ctx = hand_context(SWAP_POOLS, min_rank=(1, 0, 0))
    obs = hand_observation(ctx, starting=[1, 0])
    a = policy_for(ctx).act(obs)
    assert_action_feasible(a, ctx, obs)


@settings(derandomize=True, max_examples=300, database=None, phases=(Phase.generate,))
@given(data=st.data())
def test_regression_safe_heuristic_finds_a_feasible_action_when_one_exists(data):
    """Found by test_fallback_chain_always_acts_and_recovers: with the solver timed out and no
    plan to shift, the safe heuristic returns an action that leaves HIGH unroutable although
    ``high_can_be_served`` shows a feasible one exists (shrink other pools of the quota group
    within their scaling limits). Derandomised on purpose: it replays the same search."""
    ctx = data.draw(fleets(horizon=HORIZON))
    obs = data.draw(observations(ctx))
    assume(high_can_be_served(ctx, obs))
    p = policy_for(ctx)
    p.time_limit_s = 0.0
    a = p.act(obs)
    assert not check_action_feasible(a, ctx, obs), a.info["fallback"]


def test_regression_no_server_for_high_within_scaling_limit_still_acts():
    """Found by the optimality properties once ``coverage_high`` landed (shrunk): one on-demand
    group of 2 GPUs full with two 1-GPU replicas of M0, HIGH needs M1 (2 GPUs), one replica may
    stop per step. No feasible action exists this step (the model is infeasible by design);
    the policy must still act, keep the hard limits and say the action is infeasible."""
    ctx = hand_context(
        [dict(region=0, purchase="on_demand", rank=0, gpr=1, quota=2), dict(region=0, purchase="on_demand", rank=1, gpr=2, quota=2)], min_rank=(1, 0, 0)
    )
    obs = hand_observation(ctx, ready=[2, 0], arrivals=[[5.0], [5.0], [5.0]])
    a = policy_for(ctx).act(obs)
    assert isinstance(a, Action) and "still infeasible" in a.info["fallback"]
    assert all("HIGH" in problem for problem in check_action_feasible(a, ctx, obs))


# ----------------------------------------------------------------------------- weights


def _weight_monotone(data, weight: str, term: str):
    base = data.draw(st.sampled_from([0.0, 0.5, 1.0, 2.0]), label=f"{weight} weight")
    raised = base + data.draw(st.sampled_from([0.5, 1.0, 4.0]), label="raise")
    ctx, inputs = data.draw(step_inputs(controller={"weights": {weight: base}}))
    lo = solve_exact(ctx, inputs)
    hi = solve_exact(with_controller(ctx, weights={weight: raised}), inputs)
    note(f"{term}: {lo.terms[term]!r} at {base}, {hi.terms[term]!r} at {raised}")
    # optimality of both: (w' − w)·(T(x') − T(x)) ≤ ε + ε'  (ε: absolute optimality tolerance)
    slack = 2 * OBJ_TOL * max(1.0, abs(lo.objective), abs(hi.objective)) / (raised - base)
    assert hi.terms[term] <= lo.terms[term] + slack


@given(data=st.data())
def test_raising_carbon_weight_never_raises_marginal_carbon(data):
    _weight_monotone(data, "carbon", "carbon_term")


@given(data=st.data())
def test_raising_cost_weight_never_raises_cost(data):
    _weight_monotone(data, "cost", "cost_term")


# ----------------------------------------------------------------------------- quota


def with_more_quota(ctx: PolicyContext, group: int, extra_gpus: int) -> PolicyContext:
    s = ctx.static
    quota = s.quota_gpus + np.where(s.quota_group == group, extra_gpus, 0)
    return dataclasses.replace(ctx, static=dataclasses.replace(s, quota_gpus=quota, max_replicas=quota // s.gpus_per_replica))


@given(data=st.data())
def test_adding_quota_never_raises_the_optimal_objective(data):
    ctx, inputs = data.draw(step_inputs())
    group = data.draw(st.sampled_from(sorted(set(ctx.static.quota_group.tolist()))), label="group")
    extra = data.draw(st.sampled_from([1, 4, 16]), label="extra GPUs")
    small = solve_exact(ctx, inputs)
    big_ctx = with_more_quota(ctx, group, extra)
    big = solve_exact(big_ctx, dataclasses.replace(inputs, context=big_ctx))
    note(f"objective {small.objective!r} → {big.objective!r}")
    assert big.objective <= small.objective + OBJ_TOL * max(1.0, abs(small.objective))


# ----------------------------------------------------------------------------- relabelling


def relabel_regions(ctx: PolicyContext, inputs: ControlInputs, perm: list[int]) -> tuple[PolicyContext, ControlInputs, np.ndarray]:
    """Regions in the order ``perm`` (new region i = old region perm[i]); pools reordered to stay
    grouped by region; every per-region, per-pool and per-origin array permuted alike. Returns the
    new context and inputs and the pool map (new pool j = old pool jmap[j])."""
    regions = tuple(ctx.regions[i] for i in perm)
    jmap = np.array([j for r in regions for j, p in enumerate(ctx.pools) if p.region == r])
    s = ctx.static
    static = dataclasses.replace(s, **{f.name: np.asarray(getattr(s, f.name))[jmap] for f in dataclasses.fields(s) if getattr(s, f.name) is not None})
    sig = ctx.signals
    signals = dataclasses.replace(
        sig, regions=regions, marginal_g_per_kwh=sig.marginal_g_per_kwh[:, perm], average_g_per_kwh=sig.average_g_per_kwh[:, perm]
    )
    cfg = ctx.config.model_copy(update={"fleet": ctx.config.fleet.model_copy(update={"regions": list(regions)})})
    new_ctx = dataclasses.replace(
        ctx, regions=regions, pools=tuple(ctx.pools[j] for j in jmap), static=static, rtt_s=ctx.rtt_s[np.ix_(perm, perm)],
        signals=signals, config=cfg,
    )
    o = inputs.observation
    q = o.queues
    queues = QueueState(**{f.name: np.asarray(getattr(q, f.name))[:, perm] for f in dataclasses.fields(q)})
    per_pool = ("replicas_ready", "replicas_starting", "replicas_draining", "ready_in_s", "in_flight", "utilisation", "price_usd_per_h", "preemption_notices")
    obs = dataclasses.replace(
        o, queues=queues, marginal_g_per_kwh=o.marginal_g_per_kwh[perm], average_g_per_kwh=o.average_g_per_kwh[perm],
        served_tokens_s=o.served_tokens_s[:, jmap], **{f: np.asarray(getattr(o, f))[jmap] for f in per_pool},
    )
    return new_ctx, ControlInputs(new_ctx, obs, inputs.arrivals_req_s[:, :, perm], inputs.marginal_g_per_kwh[:, perm]), jmap


@given(data=st.data())
def test_relabelling_regions_permutes_the_solution(data):
    ctx, inputs = data.draw(step_inputs(n_regions=2))
    a = solve_exact(ctx, inputs)
    new_ctx, new_inputs, jmap = relabel_regions(ctx, inputs, [1, 0])
    b = solve_exact(new_ctx, new_inputs)
    note(f"objective {a.objective!r} vs {b.objective!r}; replicas {a.replicas[jmap]} vs {b.replicas}")
    assert close(a.objective, b.objective)
    if np.array_equal(a.replicas[jmap], b.replicas):  # same decision: the same terms (references are permutation-invariant)
        for t in TERMS:
            assert close(a.terms[t], b.terms[t], 1e-5), t


# ----------------------------------------------------------------------------- price scaling


COST_ONLY = {"weights": {"latency": 0.0, "cost": 1.0, "carbon": 0.0, "slo": 20.0, "stability": 0.0}}


@given(data=st.data())
def test_scaling_prices_leaves_a_cost_only_decision_unchanged(data):
    """Cost-only objective (SLO shortfall still penalised, so serving stays worth paying for):
    multiplying every price by c multiplies the cost and its reference by c, so the decision (up
    to ties of equal objective) and the normalised objective are unchanged."""
    ctx, inputs = data.draw(step_inputs(controller=COST_ONLY))
    c = data.draw(st.sampled_from([0.25, 0.5, 3.0, 10.0]), label="price factor")
    a = solve_exact(ctx, inputs)
    # all prices: the observed ones and the catalogue's in the context (the controller values SLO
    # shortfall at the dearest catalogue price, the fleet at the observed price)
    o = inputs.observation
    ctx_c = dataclasses.replace(ctx, static=dataclasses.replace(ctx.static, price_usd_per_h=ctx.static.price_usd_per_h * c))
    scaled = ControlInputs(ctx_c, dataclasses.replace(o, price_usd_per_h=o.price_usd_per_h * c), inputs.arrivals_req_s, inputs.marginal_g_per_kwh)
    b = solve_exact(ctx_c, scaled)
    note(f"objective {a.objective!r} vs {b.objective!r}; replicas {a.replicas} vs {b.replicas}")
    assert close(a.objective, b.objective)
    if np.array_equal(a.replicas, b.replicas):
        assert close(a.terms["cost_term"], b.terms["cost_term"], 1e-5)


# ----------------------------------------------------------------------------- fallback chain


FAILURES = ("timeout", "error", "infeasible", "garbage", "nan_solution", "incumbent_only")


def break_solver(p: CedarPolicy, mode: str, rng: np.random.Generator):
    """Make the next solves fail in ``mode``; returns a function restoring the solver."""
    real = p.backend.solve
    if mode == "timeout":
        limit = p.time_limit_s
        p.time_limit_s = 0.0

        def restore():
            p.time_limit_s = limit

        return restore

    def fake(arr, method, time_limit_s, **kw):
        n = p.compiled.n_cols
        if mode == "error":
            raise RuntimeError("solver crashed")
        if mode == "infeasible":
            return SolveResult(ok=False, method=method, status="lp relaxation infeasible")
        if mode == "garbage":  # claims success with a wrong point: negative, fractional, out of bounds
            return SolveResult(ok=True, method=method, status="optimal", x=rng.uniform(-5, 50, n), objective=0.0)
        if mode == "nan_solution":
            return SolveResult(ok=True, method=method, status="optimal", x=np.full(n, np.nan), objective=0.0)
        res = real(arr, method, time_limit_s, **kw)  # incumbent_only: the MIP ran out of time after rounding
        res.ok, res.status = False, "mip time_limit"
        return res

    p.backend.solve = fake

    def restore():
        p.backend.solve = real

    return restore


@given(data=st.data())
def test_fallback_chain_always_acts_and_recovers(data):
    """A normal step (or none), a step whose solve fails in one of ``FAILURES``, a normal step:
    every step acts feasibly, the failed one says why it fell back, and the step after reaches
    the same optimal objective as a twin policy that never failed, from the same observation."""
    ctx = data.draw(fleets(horizon=HORIZON, controller=EXACT))  # optimal solves: ties differ only in decisions
    mode = data.draw(st.sampled_from(FAILURES), label="failure")
    first_normal = data.draw(st.booleans(), label="a normal step first (a plan to shift)")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="rng"))
    p, twin = policy_for(ctx), policy_for(ctx)
    prev, step = None, 0
    if first_normal:
        obs0 = data.draw(observations(ctx, step=0))
        prev = p.act(obs0)
        twin.act(obs0)
        step = 1
    obs1 = data.draw(observations(ctx, step=step, previous_action=prev))
    restore = break_solver(p, mode, rng)
    a1 = p.act(obs1)
    restore()
    twin.act(obs1)
    note(f"failed step: {a1.info['fallback']}")
    assert isinstance(a1, Action) and a1.info["fallback"], "a failed solve must say why it fell back"
    problems = check_action_feasible(a1, ctx, obs1)
    # the heuristic of last resort may miss a feasible action (regression below); it must say so
    assert not problems or "still infeasible" in a1.info["fallback"], problems
    obs2 = data.draw(observations(ctx, step=step + 1, previous_action=a1))
    a2, b2 = p.act(obs2), twin.act(obs2)
    problems = check_action_feasible(a2, ctx, obs2)
    assert not problems or not high_can_be_served(ctx, obs2), problems
    if b2.info["fallback"] is not None:
        # the twin fell back too: one of the known gaps (regressions above), where the plan each
        # shifts legitimately differs; both must still be about HIGH's routing row
        assert "HIGH" in a2.info["fallback"] and "HIGH" in b2.info["fallback"], (a2.info["fallback"], b2.info["fallback"])
        return
    # recovery is clean: the failure left nothing behind in the state the next solve reads. The
    # LP's warm-start basis does differ (the twin solved the failed step), so among tied optima
    # the decision may differ: compare optimal objectives, and decisions only when they agree.
    assert a2.info["fallback"] is None, a2.info["fallback"]
    assert close(a2.info["objective"], b2.info["objective"]), (a2.info["objective"], b2.info["objective"])


@given(data=st.data())
def test_fallback_on_unusable_observation_still_feasible(data):
    """NaN arrivals for the forecaster: whatever the solver makes of them, an action comes back
    and passes the checker."""
    ctx = data.draw(fleets(horizon=HORIZON))
    obs = data.draw(observations(ctx))
    q = obs.queues
    nan = np.full_like(q.arrivals_requests, np.nan)
    obs = dataclasses.replace(obs, queues=dataclasses.replace(q, arrivals_requests=nan, arrivals_tokens=nan))
    a = policy_for(ctx).act(obs)
    note(f"info: {a.info}")
    problems = check_action_feasible(a, ctx, obs)
    assert not problems or "still infeasible" in a.info["fallback"], problems
