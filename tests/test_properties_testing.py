"""The public testing helpers themselves: strategies draw valid inputs, and the checker they wrap
catches every rule broken on purpose (a checker that cannot fail would prove nothing)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import assume, event, given, note
from hypothesis import strategies as st

from cedar_opt.config.schema import Scenario
from cedar_opt.interface import Action
from cedar_opt.testing import (
    ControlInputs,
    assert_action_feasible,
    check_action_feasible,
    feasible_actions,
    fleets,
    forecasts,
    observations,
    scenario_documents,
)


def _quota_ok(ctx, n) -> bool:
    s = ctx.static
    return all(
        float(np.dot(n[s.quota_group == g], s.gpus_per_replica[s.quota_group == g])) <= s.quota_gpus[s.quota_group == g][0]
        for g in np.unique(s.quota_group)
    )


@given(data=st.data())
def test_strategies_draw_consistent_inputs(data):
    ctx = data.draw(fleets(n_regions=(1, 3), n_models=(1, 3)))
    K, O, J = len(ctx.tiers), len(ctx.regions), len(ctx.pools)
    s = ctx.static
    assert J == O * len(ctx.config.fleet.purchase) * len(ctx.config.fleet.models)
    assert np.all(s.max_replicas == s.quota_gpus // s.gpus_per_replica)
    assert np.all(np.diff(ctx.deadline_s) > 0) and np.all(s.busy_power_w > s.idle_power_w)
    spot = np.array([p.purchase == "spot" for p in ctx.pools])
    assert np.all(s.spot_hazard_per_h[~spot] == 0)
    obs = data.draw(observations(ctx))
    cur = obs.replicas_ready + obs.replicas_starting
    assert _quota_ok(ctx, cur) and np.all(cur <= s.max_replicas)
    assert obs.ready_in_s.shape[0] == J and np.all(np.isfinite(obs.ready_in_s).sum(axis=1) == obs.replicas_starting)
    q = obs.queues
    assert q.backlog_requests.shape == (K, O) and np.all(np.isinf(q.min_slack_s) == (q.backlog_requests == 0))
    lam, mci = data.draw(forecasts(ctx))
    B = sum(b.count for b in ctx.config.controller.horizon)
    assert lam.shape == (B, K, O) and mci.shape == (B, O) and np.all(lam >= 0) and np.all(mci >= 0)


@given(data=st.data())
def test_feasible_actions_pass_the_checker(data):
    ctx = data.draw(fleets(n_regions=(1, 3), n_models=(1, 3)))
    obs = data.draw(observations(ctx))
    a = data.draw(feasible_actions(ctx, obs))
    assert_action_feasible(a, ctx, obs)
    assert_action_feasible(a, ControlInputs(ctx, obs))
    assert check_action_feasible(a, ControlInputs(ctx), obs) == []


def _break(rule: str, a: Action, ctx, obs, draw) -> Action:
    """``a`` with exactly the rule ``rule`` broken (rejects draws where that is impossible)."""
    s = ctx.static
    n = np.asarray(a.replicas, float).copy()
    r = np.asarray(a.routing, float).copy()
    K, O, J = r.shape
    live = (obs.replicas_ready > 0) | (n > 0)
    high = ctx.tiers.index("HIGH")
    if rule == "fractional":
        j = draw(st.integers(0, J - 1))
        n[j] += 0.5
        assume(n[j] <= s.max_replicas[j])
        return dataclasses.replace(a, replicas=n)
    if rule == "negative":
        return dataclasses.replace(a, replicas=np.where(np.arange(J) == draw(st.integers(0, J - 1)), -1.0, n))
    if rule == "over_max_replicas":
        j = draw(st.integers(0, J - 1))
        n[j] = s.max_replicas[j] + 1
        return dataclasses.replace(a, replicas=n)
    if rule == "over_scale":
        j = draw(st.integers(0, J - 1))
        n[j] = obs.replicas_ready[j] + obs.replicas_starting[j] + ctx.config.fleet.max_scale_per_step + 1
        return dataclasses.replace(a, replicas=n)
    if rule == "row_sum":
        k, o = draw(st.integers(0, K - 1)), draw(st.integers(0, O - 1))
        assume(r[k, o].sum() > 0)
        r[k, o] *= draw(st.sampled_from([0.5, 1.5]))
        return dataclasses.replace(a, routing=r)
    if rule == "negative_share":
        k, o = draw(st.integers(0, K - 1)), draw(st.integers(0, O - 1))
        js = np.flatnonzero(r[k, o] > 0)
        assume(js.size)
        j = js[0]
        other = draw(st.integers(0, J - 1))
        assume(other != j)
        r[k, o, j] += r[k, o, other] + 0.25  # the row still sums to one
        r[k, o, other] = -0.25
        return dataclasses.replace(a, routing=r)
    if rule == "ineligible":
        floor = np.asarray(a.model_rank_floor)
        k, o = draw(st.integers(0, K - 1)), draw(st.integers(0, O - 1))
        bad = np.flatnonzero((s.model_rank < floor[k]) & live)
        assume(bad.size and r[k, o].sum() > 0)
        r[k, o] *= 0.5
        r[k, o, bad[0]] += 0.5
        return dataclasses.replace(a, routing=r)
    if rule == "dead_pool":
        k, o = draw(st.integers(0, K - 1)), draw(st.integers(0, O - 1))
        dead = np.flatnonzero(~live)
        assume(dead.size and r[k, o].sum() > 0)
        r[k, o] *= 0.5
        r[k, o, dead[0]] += 0.5
        return dataclasses.replace(a, routing=r)
    if rule == "high_deferred":
        rel = np.asarray(a.release_tok_s, float).copy()
        rel[high] = draw(st.sampled_from([0.0, 100.0]))
        return dataclasses.replace(a, release_tok_s=rel)
    if rule == "high_held_back":
        r[high, draw(st.integers(0, O - 1))] = 0.0
        return dataclasses.replace(a, routing=r)
    if rule == "high_spot":
        cap = ctx.config.controller.max_spot_share_high
        spot = np.array([p.purchase == "spot" for p in ctx.pools])
        js = np.flatnonzero(spot & live & (s.model_rank >= np.asarray(a.model_rank_floor)[high]))
        assume(cap < 1.0 and js.size)
        o = draw(st.integers(0, O - 1))
        r[high, o] = 0.0
        r[high, o, js[0]] = 1.0
        return dataclasses.replace(a, routing=r)
    if rule == "floor_below_min":
        f = np.asarray(a.model_rank_floor).copy()
        k = draw(st.integers(0, K - 1))
        assume(ctx.min_model_rank[k] > 0)
        f[k] = ctx.min_model_rank[k] - 1
        return dataclasses.replace(a, model_rank_floor=f)
    if rule == "quota":
        g = draw(st.sampled_from(sorted(set(s.quota_group.tolist()))))
        js = np.flatnonzero(s.quota_group == g)
        assume(s.quota_gpus[js[0]] >= s.gpus_per_replica[js].min() * 2)
        # fill the group past its quota while each pool stays within its own max_replicas
        for j in js:
            n[j] = s.max_replicas[j]
        assume(float(np.dot(n[js], s.gpus_per_replica[js])) > s.quota_gpus[js[0]])
        return dataclasses.replace(a, replicas=n)
    raise AssertionError(rule)


RULES = ("fractional", "negative", "over_max_replicas", "over_scale", "row_sum", "negative_share", "ineligible", "dead_pool",
         "high_deferred", "high_held_back", "high_spot", "floor_below_min", "quota")


@given(data=st.data(), rule=st.sampled_from(RULES))
def test_checker_catches_every_broken_rule(data, rule):
    ctx = data.draw(fleets(n_regions=(1, 2), n_models=(1, 3), quota_gpus=(0, 32)))
    obs = data.draw(observations(ctx))
    a = data.draw(feasible_actions(ctx, obs))
    bad = _break(rule, a, ctx, obs, data.draw)
    event(f"broke {rule}")
    problems = check_action_feasible(bad, ctx, obs)
    note(f"{rule}: {problems}")
    assert problems, f"the checker missed a broken rule: {rule}"
    with pytest.raises(AssertionError, match="infeasible"):
        assert_action_feasible(bad, ControlInputs(ctx, obs))


def test_checker_rejects_unknown_inputs():
    with pytest.raises(TypeError, match="ControlInputs or a PolicyContext"):
        check_action_feasible(Action(replicas=np.zeros(1), routing=np.zeros((3, 1, 1))), {"context": None})


@given(doc=scenario_documents())
def test_scenario_documents_are_schema_valid(doc):
    s = Scenario.model_validate(doc)
    assert s.controller.horizon[0].length_s == s.step_s and s.step_s <= s.duration_s
