"""CEDAR controller: hand-solved tiny instances, one test per constraint family (with a register),
updated model = fresh model, compiler = Pyomo's own solve, fallback chain, determinism."""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo
import pytest

from cedar_opt.config.schema import Scenario
from cedar_opt.control import FAMILIES, CedarPolicy
from cedar_opt.control.compile import compile_model
from cedar_opt.control.data import Switches, build_static, build_step
from cedar_opt.control.model import active_families, build_model, update_model
from cedar_opt.control.solve import HighsBackend
from cedar_opt.control.synthetic import context_from_scenario, full_paper_catalogue, make_observation, synthetic_context
from cedar_opt.data.signalset import SignalSet
from cedar_opt.feasibility import check_action
from cedar_opt.interface import Pool, PolicyContext, PoolStatic

TIERS = ("HIGH", "MEDIUM", "LOW")


def tiny_context(pools, *, scenario: Scenario | None = None, marginal=(300.0,), regions=("r0",), rtt=None, hint=None):
    """A hand-sized world. ``pools``: list of dicts (region index, purchase, rank, price, …)."""
    sc = scenario or Scenario(
        controller={"horizon": [{"count": 2, "length_s": 10.0}, {"count": 1, "length_s": 60.0}]},
    )
    defaults = dict(capacity_tok_s=1000.0, prefill_tok_s=1000.0, itl_s=0.01, max_batch=64, idle_power_w=100.0,
                    busy_power_w=500.0, cold_start_s=0.0, spot_hazard_per_h=0.0, gpus_per_replica=1, quota_gpus=64)
    rows, plist, groups = [], [], {}
    for p in pools:
        d = {**defaults, **p}
        key = (d["region"], d.get("gpu", "G"), d["purchase"])
        g = groups.setdefault(key, len(groups))
        plist.append(Pool(regions[d["region"]], d.get("gpu", "G"), d["purchase"], f"m{d['rank']}"))
        rows.append(dict(
            price_usd_per_h=d["price"], capacity_tok_s=d["capacity_tok_s"], prefill_tok_s=d["prefill_tok_s"], itl_s=d["itl_s"],
            max_batch=d["max_batch"], idle_power_w=d["idle_power_w"], busy_power_w=d["busy_power_w"],
            cold_start_s=d["cold_start_s"], spot_hazard_per_h=d["spot_hazard_per_h"], model_rank=d["rank"],
            quota_gpus=d["quota_gpus"], quota_group=g, gpus_per_replica=d["gpus_per_replica"],
            max_replicas=d["quota_gpus"] // d["gpus_per_replica"],
        ))
    cols = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    for k in ("max_batch", "model_rank", "quota_gpus", "quota_group", "gpus_per_replica", "max_replicas"):
        cols[k] = cols[k].astype(np.int64)
    R = len(regions)
    sig = SignalSet.constant(regions, list(marginal), [300.0] * R, span_s=7200.0)
    return PolicyContext(
        tiers=TIERS, regions=tuple(regions), pools=tuple(plist), static=PoolStatic(**cols), step_s=10.0, duration_s=3600.0,
        seed=0, deadline_s=np.array([1.0, 5.0, 30.0]), min_model_rank=np.zeros(3, dtype=int),
        default_model_rank=int(max(p["rank"] for p in pools)), rtt_s=np.zeros((R, R)) if rtt is None else np.asarray(rtt),
        pue=1.0, signals=sig, workload_hint=hint or {"mean_prompt_tokens": [1000.0] * 3, "mean_uncached_prompt_tokens": [500.0] * 3,
                                                        "mean_output_tokens": [500.0] * 3},
        config=sc,
    )


def run_steps(policy, ctx, arrivals, n_steps=3, ready=None, backlog=None, **obs_kw):
    """Feed constant arrivals for a few steps; replicas ordered become ready at once (cold 0)."""
    J = len(ctx.pools)
    ready = np.zeros(J) if ready is None else np.asarray(ready, float)
    prev, action, obs = None, None, None
    for s in range(n_steps):
        obs = make_observation(ctx, step=s, t_s=10.0 * (s + 1), arrivals=arrivals, backlog=backlog, ready=ready,
                               previous_action=prev, **obs_kw)
        action = policy.act(obs)
        prev = action
    return action, obs


def solved(policy, obs):
    """The last solution split by variable (uses the policy's live arrays)."""
    data = policy.step_data(obs)
    res = policy.backend.solve(policy.compiled.evaluate(data.theta()), "lp_round", 5.0)
    assert res.ok
    return policy._split(res.x), res, data


# -- exact tiny instances -------------------------------------------------------------------


def test_hand_solved_single_pool_high_only():
    """One on-demand pool, HIGH only at 10 req/s. a = 500/1000 + 500/1000 = 1 replica-s/request,
    ρ_HIGH = 0.6 → 10/0.6 = 16.67 replicas of load → block 0 (integer) needs 17, the fluid blocks
    16.67; nothing is deferred or short, every request goes to the only pool."""
    ctx = tiny_context([dict(region=0, purchase="on_demand", rank=0, price=10.0)])
    pol = CedarPolicy()
    pol.reset(ctx)
    arrivals = np.array([[100.0], [0.0], [0.0]])  # per 10 s step → 10 req/s
    action, obs = run_steps(pol, ctx, arrivals, n_steps=4, ready=[17])
    assert action.info["fallback"] is None
    assert action.replicas.tolist() == [17]
    np.testing.assert_allclose(action.routing[0, 0], [1.0])
    assert math.isinf(action.release_tok_s[0])
    v, res, data = solved(pol, obs)
    np.testing.assert_allclose(v["n"][0], [17.0, 10 / 0.6, 10 / 0.6], rtol=1e-6)
    np.testing.assert_allclose(v["x"][0, 0, 0], [10.0, 10.0, 10.0], rtol=1e-6)
    assert np.all(np.abs(v["q"]) < 1e-9)
    # gap = rounding 16.67 → 17 in the 10 s block only; the cost term dominates it
    assert 0 < res.gap < 0.02


def test_hand_solved_two_regions_prefers_clean_and_near():
    """Two identical pools in regions with marginal 100 vs 900 g/kWh and no RTT difference:
    all LOW work goes to the clean one. With a 0.5 s RTT to the clean region (half the HIGH
    deadline: +0.5 on the latency term when all HIGH moves) and the carbon weight cut to 0.1
    (the carbon term's saving is ≤ (900 − 100)/500 × 0.1 = 0.16), HIGH stays local."""
    pools = [dict(region=0, purchase="on_demand", rank=0, price=10.0), dict(region=1, purchase="on_demand", rank=0, price=10.0)]
    ctx = tiny_context(pools, regions=("dirty", "clean"), marginal=(900.0, 100.0))
    pol = CedarPolicy()
    pol.reset(ctx)
    arr = np.array([[0.0, 0.0], [0.0, 0.0], [40.0, 0.0]])  # LOW from the dirty origin: 4.4 replicas of load
    action, _ = run_steps(pol, ctx, arr, n_steps=3, ready=[5, 5])
    np.testing.assert_allclose(action.routing[2, 0], [0.0, 1.0], atol=1e-9)
    rtt = np.array([[0.0, 0.5], [0.5, 0.0]])
    sc = Scenario(controller={"horizon": [{"count": 2, "length_s": 10.0}, {"count": 1, "length_s": 60.0}], "weights": {"carbon": 0.1}})
    ctx2 = tiny_context(pools, regions=("dirty", "clean"), marginal=(900.0, 100.0), rtt=rtt, scenario=sc)
    pol2 = CedarPolicy()
    pol2.reset(ctx2)
    arr2 = np.array([[50.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    action2, _ = run_steps(pol2, ctx2, arr2, n_steps=3, ready=[5, 5])
    np.testing.assert_allclose(action2.routing[0, 0], [1.0, 0.0], atol=1e-9)
    # carbon-blind ablation sends LOW locally when RTT costs latency
    pol3 = CedarPolicy("cedar_no_carbon", carbon_aware=False)
    pol3.reset(ctx2)
    action3, _ = run_steps(pol3, ctx2, arr, n_steps=3, ready=[5, 5])
    np.testing.assert_allclose(action3.routing[2, 0], [1.0, 0.0], atol=1e-9)


# -- one test per constraint family -----------------------------------------------------------


def _two_rank_ctx(**kw):
    return tiny_context([dict(region=0, purchase="on_demand", rank=0, price=2.0), dict(region=0, purchase="on_demand", rank=1, price=20.0)], **kw)


def family_eligibility():
    ctx = _two_rank_ctx()
    on, off = CedarPolicy(), CedarPolicy("cedar_no_rightsizing", right_sizing=False)
    on.reset(ctx)
    off.reset(ctx)
    assert {j for (k, j) in on.model.ELIGIBLE if k == 2} == {0, 1}
    assert {j for (k, j) in off.model.ELIGIBLE} == {1}
    arr = np.array([[20.0], [20.0], [20.0]])
    a_on, _ = run_steps(on, ctx, arr, ready=[5, 5])
    a_off, _ = run_steps(off, ctx, arr, ready=[5, 5])
    assert a_off.model_rank_floor.tolist() == [1, 1, 1]
    assert np.all(a_off.routing[:, :, 0] == 0)
    assert a_on.routing[:, :, 0].sum() > 0  # the small cheap model is used when allowed


def family_demand():
    ctx = _two_rank_ctx()
    pol = CedarPolicy()
    pol.reset(ctx)
    _, obs = run_steps(pol, ctx, np.array([[30.0], [20.0], [10.0]]), ready=[5, 5], backlog=np.array([[0.0], [4.0], [6.0]]))
    v, _, data = solved(pol, obs)
    tau = pol.static.tau
    served = v["x"].sum(axis=2)  # [k, o, b]
    for b in range(len(tau)):
        prev = data.backlog0 if b == 0 else v["q"][..., b - 1]
        np.testing.assert_allclose(v["q"][..., b], prev + tau[b] * (data.lam[..., b] - served[..., b] - 0 * v["q"][..., b]) - tau[b] * _short(pol, obs)[..., b], atol=1e-6)


def _short(pol, obs):
    data = pol.step_data(obs)
    res = pol.backend.solve(pol.compiled.evaluate(data.theta()), "lp_round", 5.0)
    c = pol.compiled.col_array("s", (pol.static.K, pol.static.O, pol.static.B))
    return res.x[c]


def family_deferral():
    # LOW work now in a dirty hour, clean later (oracle carbon): it is held, within λ·W.
    ctx = tiny_context([dict(region=0, purchase="on_demand", rank=0, price=1.0, idle_power_w=0.0, busy_power_w=5000.0)],
                       scenario=Scenario(signals={"forecast": "oracle"},
                                         controller={"horizon": [{"count": 2, "length_s": 10.0}, {"count": 1, "length_s": 60.0}],
                                                     "weights": {"carbon": 50.0}}))
    sig = ctx.signals
    marg = sig.marginal_g_per_kwh.copy()
    marg[:] = 100.0
    marg[:3] = 2000.0  # the first 60 s are dirty, then clean
    ctx = PolicyContext(**{**ctx.__dict__, "signals": SignalSet(sig.regions, sig.start, 20.0, marg, marg)})
    pol = CedarPolicy()
    pol.reset(ctx)
    _, obs = run_steps(pol, ctx, np.array([[0.0], [0.0], [100.0]]), ready=[20])
    v, _, data = solved(pol, obs)
    W = pol.static.wait_s
    assert W.tolist() == [0.0, 2.5, 15.0]
    assert np.all(v["q"] <= W[:, None, None] * data.lam + 1e-6)
    assert v["q"][2, 0, 0] > 1.0  # something is held
    off = CedarPolicy("cedar_no_slack", slack_tracking=False)
    off.reset(ctx)
    _, obs = run_steps(off, ctx, np.array([[0.0], [0.0], [100.0]]), ready=[20])
    v2, _, _ = solved(off, obs)
    assert np.all(np.abs(v2["q"]) < 1e-9) and off.static.wait_s.tolist() == [0.0, 0.0, 0.0]


def family_urgency():
    ctx = tiny_context([dict(region=0, purchase="on_demand", rank=0, price=1.0)])
    pol = CedarPolicy()
    pol.reset(ctx)
    # LOW backlog 40 with oldest wait 28 s and min slack 2 s (< step 10 s): share (10−2)/28 urgent
    _, obs = run_steps(pol, ctx, np.zeros((3, 1)), ready=[3], backlog=np.array([[0.0], [0.0], [40.0]]),
                       oldest_wait_s=np.array([[0.0], [0.0], [28.0]]), min_slack_s=np.array([[np.inf], [np.inf], [2.0]]))
    v, _, data = solved(pol, obs)
    np.testing.assert_allclose(data.urgent0[2, 0], 40 * 8 / 28)
    tau0 = pol.static.tau[0]
    assert tau0 * (v["x"][2, 0, :, 0].sum() + _short(pol, obs)[2, 0, 0]) >= data.urgent0[2, 0] - 1e-6
    assert "urgency_serve_now" in pol.compiled.rows
    off = CedarPolicy(slack_tracking=False)
    off.reset(ctx)
    assert "urgency_serve_now" not in off.compiled.rows


def family_capacity():
    ctx = _two_rank_ctx()
    pol = CedarPolicy()
    pol.reset(ctx)
    _, obs = run_steps(pol, ctx, np.array([[40.0], [40.0], [40.0]]), ready=[10, 10])
    v, _, _ = solved(pol, obs)
    st = pol.static
    load = np.einsum("kj,kojb->jb", st.a / st.rho[:, None], v["x"])
    assert np.all(load <= v["n"] + 1e-6)
    assert np.any(np.isclose(load[:, 1:], v["n"][:, 1:], rtol=1e-6) & (v["n"][:, 1:] > 0))  # binds in the fluid plan


def family_readiness():
    # No replica ready, cold start 15 s, blocks [0,10) [10,20) [20,80): an order now serves from
    # t = 15: half of block 1 and all of block 2 (ω = 0.5 and 1); block 0 cannot be served.
    ctx = tiny_context([dict(region=0, purchase="on_demand", rank=0, price=1.0, cold_start_s=15.0)])
    pol = CedarPolicy()
    pol.reset(ctx)
    np.testing.assert_allclose(pol.static.omega[0], [[0, 0, 0], [0.5, 0, 0], [5 / 60, 10 / 60, 45 / 60]])
    _, obs = run_steps(pol, ctx, np.array([[10.0], [0.0], [0.0]]), ready=[0])
    v, _, data = solved(pol, obs)
    np.testing.assert_allclose(data.ready_cap[0], 0.0)
    assert v["x"][0, 0, 0, 0] == pytest.approx(0.0, abs=1e-9)
    st = pol.static
    load = np.einsum("kj,kojb->jb", st.a / st.rho[:, None], v["x"])
    assert load[0, 1] <= 0.5 * v["n"][0, 0] + 1e-6
    # a replica starting now with 5 s left is ready for half of block 0 (and all later blocks)
    from cedar_opt.control.data import ready_capacity

    cap = ready_capacity(st, np.array([1.0]), np.array([1.0]), np.array([[5.0]]))
    # block 0: R = 1 on [0,5), 2 on [5,10) → 1.5; block 1: R = 2 on [10,15), after t = 15 the plan's
    # n carries the capacity and nothing is pending → 10/10 = 1; block 2: all after 15 → 0
    np.testing.assert_allclose(cap[0], [1.5, 1.0, 0.0])


def test_readiness_warm_fleet_cannot_restart_within_a_cold_start():
    """Found in the first end-to-end runs: the plan stopped the warm fleet in block 0 and counted
    its capacity again in block 1 (R̄ credits the current fleet before the cold start). With
    ``readiness_warm_fleet`` the load of a block that ends before c_j is ≤ n of every earlier block."""
    ctx = tiny_context([dict(region=0, purchase="on_demand", rank=0, price=1.0, cold_start_s=30.0)])
    pol = CedarPolicy()
    pol.reset(ctx)
    assert [(b, bp) for (_, b, bp) in pol.model.WARM] == [(1, 0)]  # block 1 = [10, 20) ends before 30 s
    _, obs = run_steps(pol, ctx, np.array([[5.0], [0.0], [0.0]]), ready=[10])
    v, _, _ = solved(pol, obs)
    st = pol.static
    load = np.einsum("kj,kojb->jb", st.a / st.rho[:, None], v["x"])
    assert load[0, 1] <= v["n"][0, 0] + 1e-6
    # and the warm fleet is kept: the demand of block 1 is served, not dropped
    assert v["n"][0, 0] >= np.ceil(load[0, 1] - 1e-6) and load[0, 1] > 0


def family_spot():
    sc = Scenario(controller={"horizon": [{"count": 2, "length_s": 10.0}, {"count": 1, "length_s": 60.0}], "max_spot_share_high": 0.25})
    ctx = tiny_context([dict(region=0, purchase="on_demand", rank=0, price=10.0), dict(region=0, purchase="spot", rank=0, price=1.0)], scenario=sc)
    pol = CedarPolicy()
    pol.reset(ctx)
    action, obs = run_steps(pol, ctx, np.array([[50.0], [50.0], [0.0]]), ready=[10, 10])
    assert action.routing[0, 0, 1] == pytest.approx(0.25, abs=1e-6)  # cheap spot up to the cap
    assert action.routing[1, 0, 1] > 0.5  # MEDIUM is not capped
    assert not check_action(action, ctx, obs)


def family_quota():
    ctx = tiny_context([dict(region=0, purchase="on_demand", rank=0, price=1.0, gpus_per_replica=2, quota_gpus=8)])
    pol = CedarPolicy()
    pol.reset(ctx)
    action, obs = run_steps(pol, ctx, np.array([[200.0], [0.0], [0.0]]), ready=[4])
    v, _, _ = solved(pol, obs)
    assert action.replicas[0] == 4 and np.all(v["n"] <= 4 + 1e-9)  # 4 × 2 GPUs = the quota of 8
    assert v["n"][0].max() == pytest.approx(4.0)


def family_scaling():
    sc = Scenario(fleet={"max_scale_per_step": 2}, controller={"horizon": [{"count": 2, "length_s": 10.0}, {"count": 1, "length_s": 60.0}]})
    ctx = tiny_context([dict(region=0, purchase="on_demand", rank=0, price=1.0)], scenario=sc)
    pol = CedarPolicy()
    pol.reset(ctx)
    np.testing.assert_allclose(pol.static.scale, [2, 2, 12])
    obs = make_observation(ctx, t_s=10.0, arrivals=np.array([[300.0], [0.0], [0.0]]), ready=[1])
    action = pol.act(obs)
    assert action.replicas[0] == 3  # 1 + at most 2
    v, _, data = solved(pol, obs)
    assert np.all(v["n"] <= data.nmax + 1e-9)
    assert data.nmax[0, 0] == min(64, max(math.ceil(30 * 1 / 0.6) + 1, 1))


def family_stability():
    ctx = tiny_context([dict(region=0, purchase="on_demand", rank=0, price=1.0), dict(region=0, purchase="on_demand", rank=0, price=1.05)],
                       scenario=Scenario(controller={"horizon": [{"count": 2, "length_s": 10.0}, {"count": 1, "length_s": 60.0}],
                                                     "weights": {"stability": 5.0}}))
    pol = CedarPolicy()
    pol.reset(ctx)
    prev = pol.act(make_observation(ctx, t_s=10.0, arrivals=np.array([[50.0], [0.0], [0.0]]), ready=[10, 10]))
    # the previous action routed HIGH to the slightly dearer pool: with a strong stability weight it stays
    forced = np.zeros_like(prev.routing)
    forced[:, :, 1] = 1.0
    from dataclasses import replace

    prev2 = replace(prev, routing=forced)
    obs = make_observation(ctx, t_s=20.0, arrivals=np.array([[50.0], [0.0], [0.0]]), ready=[10, 10], previous_action=prev2)
    action = pol.act(obs)
    assert action.routing[0, 0, 1] > 0.99
    v, res, data = solved(pol, obs)
    cols = pol.compiled.col_array
    up = res.x[cols("up", (2, pol.static.B))]
    down = res.x[cols("down", (2, pol.static.B))]
    n = v["n"]
    np.testing.assert_allclose(np.diff(np.concatenate([data.n_now[:, None], n], axis=1), axis=1), up - down, atol=1e-7)


FAMILY_TESTS = {
    "eligibility": family_eligibility, "demand": family_demand, "deferral": family_deferral, "urgency": family_urgency,
    "capacity": family_capacity, "readiness": family_readiness, "spot": family_spot, "quota": family_quota,
    "scaling": family_scaling, "stability": family_stability,
}


def test_every_family_has_a_test():
    assert set(FAMILY_TESTS) == set(FAMILIES)
    st = build_static(tiny_context([dict(region=0, purchase="on_demand", rank=0, price=1.0)]), Switches())
    assert set(active_families(st)) == set(FAMILIES)


@pytest.mark.parametrize("family", sorted(FAMILY_TESTS))
def test_family(family):
    FAMILY_TESTS[family]()


def test_family_constraint_names_exist():
    ctx = tiny_context([dict(region=0, purchase="on_demand", rank=0, price=1.0), dict(region=0, purchase="spot", rank=0, price=0.5)])
    pol = CedarPolicy()
    pol.reset(ctx)
    for fam, names in FAMILIES.items():
        for name in names:
            assert isinstance(getattr(pol.model, name), pyo.Constraint), (fam, name)


# -- updated model = fresh model; compiler = Pyomo ----------------------------------------


def _paper_step(seed):
    ctx = context_from_scenario(Scenario(), full_paper_catalogue())
    st = build_static(ctx, Switches())
    rng = np.random.default_rng(seed)
    ready = rng.integers(0, 3, len(ctx.pools))
    obs = make_observation(ctx, t_s=100.0, arrivals=rng.uniform(5, 60, (3, 3)), backlog=rng.uniform(0, 10, (3, 3)), ready=ready,
                           starting=rng.integers(0, 2, len(ctx.pools)))
    lam = rng.uniform(0.5, 6, (st.B, 3, 3))
    mci = rng.uniform(100, 700, (st.B, 3))
    return ctx, st, build_step(st, obs, lam, mci)


def _arrays_equal(a, b):
    np.testing.assert_allclose(a.cost, b.cost, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a.row_lb, b.row_lb, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.row_ub, b.row_ub, rtol=1e-12, atol=1e-12)
    assert (a.A != b.A).nnz == 0


def test_updated_model_equals_fresh_model():
    ctx, st, d1 = _paper_step(1)
    _, _, d2 = _paper_step(2)
    m = build_model(st, d1)
    live = compile_model(m, st)
    update_model(m, d2)
    updated = compile_model(m, st)
    fresh = compile_model(build_model(st, d2), st)
    _arrays_equal(live.evaluate(d2.theta()), fresh.evaluate(d2.theta()))  # drift check of the live arrays
    _arrays_equal(updated.evaluate(d2.theta()), fresh.evaluate(d2.theta()))
    r1 = HighsBackend(live).solve(live.evaluate(d2.theta()), "lp_round", 10.0)
    r2 = HighsBackend(fresh).solve(fresh.evaluate(d2.theta()), "lp_round", 10.0)
    assert r1.objective == pytest.approx(r2.objective, rel=1e-9)
    np.testing.assert_allclose(r1.x[live.col_array("n", (st.J, st.B))[:, 0]], r2.x[fresh.col_array("n", (st.J, st.B))[:, 0]])


def test_compiled_lp_matches_pyomo_solve():
    ctx, st, d = _paper_step(3)
    m = build_model(st, d)
    comp = compile_model(m, st)
    bound = HighsBackend(comp).solve(comp.evaluate(d.theta()), "lp_round", 10.0).bound
    pyo.TransformationFactory("core.relax_integer_vars").apply_to(m)
    res = pyo.SolverFactory("appsi_highs").solve(m)
    assert str(res.solver.termination_condition) == "optimal"
    assert pyo.value(m.objective) == pytest.approx(bound, rel=1e-7)


def test_compiler_refuses_parameter_in_matrix():
    from cedar_opt.control.compile import CompileError

    ctx, st, d = _paper_step(4)
    m = build_model(st, d)
    m.bad = pyo.Constraint(expr=m.price[0] * m.n[0, 0] <= 3)
    with pytest.raises(CompileError, match="depends on a parameter"):
        compile_model(m, st)


# -- fallback chain ----------------------------------------------------------------------------


def test_forced_timeout_falls_back_and_stays_feasible():
    ctx = synthetic_context(scenario=Scenario(controller={"solver": {"time_limit_s": 1e-7}}))
    pol = CedarPolicy()
    pol.reset(ctx)
    ready = np.ones(len(ctx.pools))
    obs = make_observation(ctx, t_s=10.0, arrivals=np.full((3, 3), 20.0), ready=ready)
    a = pol.act(obs)
    assert a.info["fallback"] is not None and "time_limit" in a.info["fallback"] and "safe heuristic" in a.info["fallback"]
    assert not check_action(a, ctx, obs)
    # with a plan from a normal step, a timed-out step uses the previous plan shifted
    pol.time_limit_s = 5.0
    a1 = pol.act(obs)
    assert a1.info["fallback"] is None
    pol.time_limit_s = 1e-7
    obs2 = make_observation(ctx, step=1, t_s=20.0, arrivals=np.full((3, 3), 20.0), ready=ready, previous_action=a1)
    a2 = pol.act(obs2)
    assert "previous plan shifted" in a2.info["fallback"]
    assert not check_action(a2, ctx, obs2)


def test_mip_timeout_uses_checked_incumbent(monkeypatch):
    ctx = synthetic_context(scenario=Scenario(controller={"solver": {"method": "mip", "mip_rel_gap": 0.0}}))
    pol = CedarPolicy()
    pol.reset(ctx)
    real = pol.backend._run

    def run(h, deadline):  # the MIP stage always runs out of time
        if h is pol.backend._mip:
            return "time_limit", 0.0
        return real(h, deadline)

    monkeypatch.setattr(pol.backend, "_run", run)
    obs = make_observation(ctx, t_s=10.0, arrivals=np.full((3, 3), 20.0), ready=np.ones(len(ctx.pools)))
    a = pol.act(obs)
    assert a.info["fallback"] == "mip time_limit; incumbent"
    assert not check_action(a, ctx, obs)


def test_infeasible_input_falls_back(monkeypatch):
    ctx = synthetic_context()
    pol = CedarPolicy()
    pol.reset(ctx)
    ready = np.ones(len(ctx.pools))
    obs = make_observation(ctx, t_s=10.0, arrivals=np.full((3, 3), 20.0), ready=ready)
    a1 = pol.act(obs)
    import cedar_opt.control.policy as P

    real = P.build_step

    def broken(*args, **kw):
        d = real(*args, **kw)
        d.nmax[:] = -1.0  # no replica count satisfies n ≤ −1: the LP is infeasible
        return d

    monkeypatch.setattr(P, "build_step", broken)
    obs2 = make_observation(ctx, step=1, t_s=20.0, arrivals=np.full((3, 3), 20.0), ready=ready, previous_action=a1)
    a2 = pol.act(obs2)
    assert a2.info["fallback"].startswith("lp relaxation infeasible") and "previous plan shifted" in a2.info["fallback"]
    assert not check_action(a2, ctx, obs2)
    # no previous plan: the safe heuristic
    pol2 = CedarPolicy()
    pol2.reset(ctx)
    a3 = pol2.act(obs)
    assert a3.info["fallback"].endswith("safe heuristic") and not check_action(a3, ctx, obs)


def test_fleet_over_quota_beyond_scaling_limit_still_acts():
    """Current replicas far above the quota: no action can be feasible; one is still returned. The
    heuristic honours the hard limits (quota, max_replicas) over the scaling rule, and says so."""
    ctx = tiny_context([dict(region=0, purchase="on_demand", rank=0, price=1.0, gpus_per_replica=8, quota_gpus=16)])
    pol = CedarPolicy()
    pol.reset(ctx)
    obs = make_observation(ctx, t_s=10.0, arrivals=np.array([[10.0], [0.0], [0.0]]), ready=[20])
    a = pol.act(obs)
    assert "infeasible" in a.info["fallback"] and "still infeasible" in a.info["fallback"]
    assert a.replicas[0] == 2 and "changes by -18" in a.info["fallback"]


# -- determinism, ablations, API -----------------------------------------------------------


def test_deterministic_with_fixed_seed():
    def run():
        ctx = synthetic_context(seed=5, scenario=Scenario(signals={"arrival_forecast": "persistence"}))
        pol = CedarPolicy()
        pol.reset(ctx)
        rng = np.random.default_rng(0)
        out, prev, ready = [], None, np.ones(len(ctx.pools))
        for s in range(5):
            obs = make_observation(ctx, step=s, t_s=10.0 * (s + 1), arrivals=rng.poisson(30, (3, 3)), ready=ready, previous_action=prev)
            a = pol.act(obs)
            out.append((a.replicas.copy(), a.routing.copy(), a.release_tok_s.copy(), a.info["objective"]))
            prev, ready = a, a.replicas.astype(float)
        return out

    r1, r2 = run(), run()
    for a, b in zip(r1, r2):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[2], b[2])
        assert a[3] == b[3]


def test_ablation_constructors_and_info_contract():
    ctx = synthetic_context()
    for pol, check in [
        (CedarPolicy("cedar_no_carbon", carbon_aware=False), lambda p: p.static.weights.carbon == 0.0),
        (CedarPolicy("cedar_no_slack", slack_tracking=False), lambda p: not np.any(p.static.wait_s)),
        (CedarPolicy("cedar_no_rightsizing", right_sizing=False), lambda p: np.all(p.static.floor == ctx.default_model_rank)),
        (CedarPolicy(), lambda p: p.static.weights.carbon == 1.0 and p.static.wait_s[2] > 0),
    ]:
        pol.reset(ctx)
        assert check(pol), pol.name
        a = pol.act(make_observation(ctx, t_s=10.0, arrivals=np.full((3, 3), 10.0), ready=np.ones(len(ctx.pools))))
        for key in ("solve_ms", "highs_ms", "gap", "objective", "fallback", "method"):
            assert key in a.info
        assert a.dispatch == "weighted"
        assert math.isinf(a.release_tok_s[0])
    # config switches are followed when the constructor says None
    sc = Scenario(controller={"carbon_aware": False, "right_sizing": False})
    pol = CedarPolicy()
    pol.reset(synthetic_context(scenario=sc))
    assert pol.static.weights.carbon == 0.0 and np.all(pol.static.floor == 1)


def test_mip_method_reports_gap_within_target():
    ctx = context_from_scenario(Scenario(controller={"solver": {"method": "mip"}}), full_paper_catalogue())
    pol = CedarPolicy()
    pol.reset(ctx)
    ready = np.array([1.0 if p.purchase == "on_demand" else 0.0 for p in ctx.pools])
    obs = make_observation(ctx, t_s=10.0, arrivals=np.full((3, 3), 30.0), ready=ready)
    a = pol.act(obs)
    assert a.info["fallback"] is None and a.info["method"] == "mip"
    assert 0.0 <= a.info["gap"] <= 0.02 + 1e-9


def test_time_limit_is_per_solve_not_cumulative():
    """HiGHS's clock is cumulative per object; after more solve time than the limit in total,
    a normal step must still not time out."""
    ctx = synthetic_context(scenario=Scenario(controller={"solver": {"time_limit_s": 0.5}}))
    pol = CedarPolicy()
    pol.reset(ctx)
    obs = make_observation(ctx, t_s=10.0, arrivals=np.full((3, 3), 20.0), ready=np.ones(len(ctx.pools)))
    pol.act(obs)
    pol.backend.lp.setOptionValue("time_limit", 1e9)
    import time

    t = time.perf_counter()
    while pol.backend.lp.getRunTime() < 0.6 and time.perf_counter() - t < 20:
        pol.backend.lp.clearSolver()  # cold re-solves to burn clock
        pol.backend.lp.run()
    a = pol.act(obs)
    assert a.info["fallback"] is None, a.info["fallback"]
