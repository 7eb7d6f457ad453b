"""The independent feasibility checker: one violating case per rule, precise messages, and a
hypothesis property (the controller's safe heuristic is always feasible on random small fleets)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as hs

from cedar_opt.config.schema import Scenario
from cedar_opt.control.actions import safe_action
from cedar_opt.control.data import Switches, build_static
from cedar_opt.control.synthetic import make_observation, synthetic_context
from cedar_opt.feasibility import assert_action_feasible, check_action
from cedar_opt.interface import Action

CTX = synthetic_context(n_regions=2, n_gpus=1, n_models=2)  # pools: r, G0, {od, spot}, {M0, M1} → 8
J = len(CTX.pools)


def base_action() -> tuple[Action, object]:
    obs = make_observation(CTX, ready=np.ones(J))
    routing = np.zeros((3, 2, J))
    od = [j for j, p in enumerate(CTX.pools) if p.purchase == "on_demand"]
    routing[:, :, od[0]] = 1.0
    a = Action(replicas=np.ones(J, dtype=int), routing=routing, release_tok_s=np.array([np.inf, 5.0, 0.0]),
               model_rank_floor=np.zeros(3, dtype=int))
    return a, obs


def test_base_action_is_feasible():
    a, obs = base_action()
    assert check_action(a, CTX, obs) == []
    assert_action_feasible(a, CTX, obs)


def problems(**changes):
    a, obs = base_action()
    return check_action(replace(a, **changes), CTX, obs)


def test_shapes():
    assert problems(replicas=np.ones(J + 1)) == [f"replicas has shape ({J + 1},), expected ({J},)"]
    assert "routing has shape" in problems(routing=np.zeros((3, 3, J)))[0]


def test_replica_rules():
    n = np.ones(J)
    n[2] = 1.5
    assert problems(replicas=n) == [f"replicas[2] pool 2 ({CTX.pools[2].key}) = 1.5 is not an integer"]
    n = np.ones(J)
    n[0] = -1
    assert any("is negative" in p for p in problems(replicas=n))
    n = np.ones(J)
    n[1] = CTX.static.max_replicas[1] + 1
    assert any("exceeds max_replicas" in p for p in problems(replicas=n))


def test_quota_group():
    st = CTX.static
    g = st.quota_group[0]
    members = np.flatnonzero(st.quota_group == g)
    n = np.zeros(J, dtype=int)
    n[members] = st.max_replicas[members] // 2 + 1  # each alone within max_replicas, together over the quota
    p = [x for x in problems(replicas=n, routing=base_action()[0].routing) if "quota group" in x]
    assert len(p) == 1 and f"quota group {g} uses" in p[0] and "> quota 64" in p[0]


def test_scaling_limit_vs_current_replicas():
    n = np.ones(J, dtype=int)
    n[0] = 10  # current is 1 ready + 0 starting; limit 8
    assert any("changes by +9 from the current 1" in p and "max_scale_per_step 8" in p for p in problems(replicas=n))


def test_routing_rows():
    a, obs = base_action()
    r = a.routing.copy()
    r[0, 1] = 0.0  # HIGH row held back: not allowed
    assert any("routing[0, 1] (HIGH, origin r1): shares sum to 0" in p for p in problems(routing=r))
    r = a.routing.copy()
    r[2, 0] = 0.0  # LOW row fully held back: allowed
    assert problems(routing=r) == []
    r = a.routing.copy()
    r[1, 0] *= 0.9
    assert any("shares sum to 0.9" in p for p in problems(routing=r))


def test_eligibility_floor_and_live_pools():
    a, obs = base_action()
    r = np.zeros_like(a.routing)
    small = [j for j, p in enumerate(CTX.pools) if p.model == "M0" and p.purchase == "on_demand"][0]
    r[:, :, small] = 1.0
    p = check_action(replace(a, routing=r, model_rank_floor=np.array([1, 0, 0])), CTX, obs)
    assert len(p) == 2 and all("model rank 0 is below the floor 1" in x for x in p)
    n = np.ones(J, dtype=int)
    n[small] = 0
    obs0 = make_observation(CTX, ready=np.where(np.arange(J) == small, 0, 1))
    p = check_action(replace(a, routing=r, replicas=n), CTX, obs0)
    assert len(p) == 6 and all("has no replica ready or planned" in x for x in p)
    assert any("below the tier's min_model_rank" in x for x in problems(model_rank_floor=np.array([-1, 0, 0])))


def test_high_never_deferred_and_release_sign():
    assert problems(release_tok_s=np.array([5.0, 1.0, 1.0])) == ["release_tok_s[0] (HIGH) = 5: HIGH is never deferred, must be inf"]
    assert any("must be ≥ 0" in p for p in problems(release_tok_s=np.array([np.inf, -1.0, 1.0])))


def test_held_work_released_in_time_for_its_deadline():
    rtt = float(np.max(CTX.rtt_s))
    # holding MEDIUM and LOW with an urgency margin below one round trip: released too late
    late = problems(urgent_slack_s=0.5 * rtt)
    assert len(late) == 2 and all("below the longest round trip" in p for p in late)
    # a margin at or past a held tier's deadline leaves nothing that could be held
    d_med = float(CTX.deadline_s[1])
    assert any("not below the tier's deadline" in p and "MEDIUM" in p for p in problems(urgent_slack_s=d_med))
    # nothing held: any finite margin is fine
    assert problems(urgent_slack_s=0.5 * rtt, release_tok_s=np.full(3, np.inf)) == []


def test_spot_share_of_high():
    a, _ = base_action()
    r = a.routing.copy()
    spot = [j for j, p in enumerate(CTX.pools) if p.purchase == "spot"][0]
    r[0, 0] = 0.0
    r[0, 0, 0] = 0.4
    r[0, 0, spot] = 0.6
    p = problems(routing=r)
    assert p == ["routing[0, 0] (HIGH, origin r0): spot share 0.6 exceeds max_spot_share_high 0.5"]


@settings(max_examples=25, deadline=None)
@given(
    regions=hs.integers(1, 3), models=hs.integers(1, 2), seed=hs.integers(0, 1000),
    ready=hs.lists(hs.integers(0, 12), min_size=24, max_size=24), right_sizing=hs.booleans(),
)
def test_safe_heuristic_is_feasible_on_random_fleets(regions, models, seed, ready, right_sizing):
    ctx = synthetic_context(n_regions=regions, n_gpus=2, n_models=models, seed=seed, scenario=Scenario())
    Jr = len(ctx.pools)
    st = build_static(ctx, Switches(right_sizing=right_sizing))
    obs = make_observation(ctx, ready=np.asarray(ready[:Jr], float))
    a = safe_action(st, ctx, obs, 8, {})
    assert_action_feasible(a, ctx, obs)
