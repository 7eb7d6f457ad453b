"""Simulator: hand-computed cases (latency, energy, cost, carbon, KV cache, timeout, deferral, scaling)."""

from __future__ import annotations

import numpy as np
import pytest

from cedar_opt.interface import Action
from cedar_opt.sim import Simulator, make_context
from test_sim_helpers import CAT, FixedPolicy, flat_signals, hand_workload, tiny_scenario

# Llama-3.1-8B on one H100 (models/catalogue.yaml)
PREFILL, ITL1, SLOPE, IDLE, BUSY, MAXB, GAMMA = 20000.0, 0.0068, 0.000076, 100.0, 669.0, 128, 0.14
PRICE = 98.32 / 8  # p5.48xlarge us-east-1 on-demand, one GPU of eight
RTT = 0.002


def run(sc, sessions, policy=None, **kw):
    wl = hand_workload(sc, sessions, **kw)
    sim = Simulator(sc, CAT, flat_signals(sc), wl)
    return sim.run(policy or FixedPolicy(1))


def test_single_replica_latency_energy_cost_carbon_from_the_formulas():
    sc = tiny_scenario()
    res = run(sc, [(0.5, 0, [(0, 1000, 101, 0.0)]), (20.5, 0, [(0, 1000, 101, 0.0)]), (40.5, 0, [(0, 1000, 101, 0.0)])])
    rq = res.requests
    assert list(rq.status) == ["completed"] * 3
    np.testing.assert_allclose(rq.ttft_s, RTT + 1000 / PREFILL, rtol=1e-12)
    busy = 1000 / PREFILL + 100 * ITL1
    np.testing.assert_allclose(rq.e2e_s, busy + RTT, rtol=1e-12)
    np.testing.assert_allclose(rq.prefill_tokens, 1000)
    assert rq.recomputed_tokens.sum() == 0
    ds = res.steps
    assert ds.sizes["step"] == 6
    seq = np.array([busy, 0, busy, 0, busy, 0])
    np.testing.assert_allclose(ds.seq_seconds.values[:, 0], seq, rtol=1e-9)
    np.testing.assert_allclose(ds.replica_seconds.values[:, 0], 10.0)
    # power curve P(b) = idle + (busy − idle)(b/max_batch)^γ; here the batch is 1 whenever busy
    e = 1.2 * (IDLE * 10 + (BUSY - IDLE) * seq * (1 / MAXB) ** GAMMA) / 3.6e6
    np.testing.assert_allclose(ds.energy_kwh.values[:, 0], e, rtol=1e-12)
    np.testing.assert_allclose(ds.cost_usd.values[:, 0], 10 * PRICE / 3600, rtol=1e-12)
    np.testing.assert_allclose(ds.carbon_marginal_kg.values[:, 0], e * 0.4, rtol=1e-12)
    np.testing.assert_allclose(ds.carbon_average_kg.values[:, 0], e * 0.3, rtol=1e-12)
    np.testing.assert_allclose(ds.utilisation.values[:, 0], seq / (10 * MAXB), rtol=1e-9)
    assert ds.dispatched.values.sum() == 3 and ds.dispatched.values[[0, 2, 4], 0, 0, 0].tolist() == [1, 1, 1]


def test_simultaneous_calls_serialise_prefill_and_decode_at_the_batch_itl():
    sc = tiny_scenario()
    res = run(sc, [(1.0, 0, [(0, 1000, 101, 0.0)]), (1.0, 0, [(0, 1000, 101, 0.0)])])
    a, b = res.requests.sort_values("request_id").itertuples()
    assert a.ttft_s == pytest.approx(RTT + 0.05) and b.ttft_s == pytest.approx(RTT + 0.10)
    assert a.e2e_s == pytest.approx(0.05 + 100 * ITL1 + RTT)
    assert b.e2e_s == pytest.approx(0.10 + 100 * (ITL1 + SLOPE) + RTT)
    assert (a.batch_admit, b.batch_admit) == (1, 2)


def test_batch_full_calls_wait_in_the_local_fifo():
    sc = tiny_scenario()
    n = MAXB + 1
    res = run(sc, [(1.0, 0, [(2, 100, 1001, 0.0)]) for _ in range(n)])
    rq = res.requests.sort_values("request_id")
    last = rq.iloc[-1]
    first_done = rq.finish_s.iloc[:-1].min() - RTT
    assert last.admit_s == pytest.approx(first_done)
    assert last.dispatch_s == pytest.approx(1.0)
    assert (rq.status == "completed").all()


def test_kv_cache_hit_prefills_only_new_tokens_and_expiry_recomputes():
    sessions = [(0.5, 0, [(0, 1000, 101, 0.0), (1, 1151, 50, 3.0)])]
    res = run(tiny_scenario(), sessions)
    rq = res.requests.sort_values("call_index")
    second = rq.iloc[1]
    assert second.arrival_s == pytest.approx(rq.iloc[0].finish_s + 3.0)
    assert second.prefill_tokens == 50 and second.recomputed_tokens == 0
    assert second.ttft_s == pytest.approx(RTT + 50 / PREFILL)
    res = run(tiny_scenario(fleet={"kv_ttl_s": 1.0}), sessions)
    second = res.requests.sort_values("call_index").iloc[1]
    assert second.prefill_tokens == 1151 and second.recomputed_tokens == 1101
    assert second.ttft_s == pytest.approx(RTT + 1151 / PREFILL)


def test_timeout_drops_and_the_session_continues_after_its_think_time():
    sc = tiny_scenario(fleet={"initial_replicas": 0}, workload={"timeout_factor": 2.0})
    res = run(sc, [(0.5, 0, [(0, 1000, 10, 0.0), (0, 1000, 10, 1.5)])], policy=FixedPolicy(0))
    rq = res.requests.sort_values("call_index")
    assert list(rq.status) == ["dropped", "dropped"]
    np.testing.assert_allclose(rq.dropped_s, [2.5, 2.5 + 1.5 + 2.0])
    assert rq.ttft_s.isna().all()
    np.testing.assert_allclose(res.steps.replica_seconds.values, 0.0)


def test_zero_release_rate_defers_low_until_its_urgent_slack():
    sc = tiny_scenario()
    pol = FixedPolicy(1, release=np.array([np.inf, np.inf, 0.0]), urgent=2.0)
    res = run(sc, [(1.0, 0, [(2, 1000, 10, 0.0)]), (1.5, 0, [(0, 1000, 10, 0.0)])], policy=pol)
    rq = res.requests.set_index("tier")
    assert rq.loc["LOW", "dispatch_s"] == pytest.approx(1.0 + 30.0 - 2.0)
    assert rq.loc["HIGH", "dispatch_s"] == pytest.approx(1.5)
    # the observation at t = 10 sees the LOW call in its virtual queue
    q = pol.observations[1].queues
    assert q.backlog_requests[2, 0] == 1 and q.oldest_wait_s[2, 0] == pytest.approx(9.0)
    assert q.min_slack_s[2, 0] == pytest.approx(21.0) and q.backlog_tokens[2, 0] == 1010


def test_token_bucket_release_rate_paces_deferred_work():
    sc = tiny_scenario(duration_s=100)
    # 20 LOW calls of 1000 + 10 estimated tokens at t = 0.5; 1010 tok/s released → about one per second
    pol = FixedPolicy(1, release=np.array([np.inf, np.inf, 1010.0]), urgent=0.0)
    res = run(sc, [(0.5, 0, [(2, 1000, 10, 0.0)]) for _ in range(20)], policy=pol)
    d = np.sort(res.requests.dispatch_s.values)
    # the bucket starts full at one step of work (10 100 tokens → 10 calls at once), then 1 call/s
    assert np.sum(d == 0.5) == 10
    np.testing.assert_allclose(np.diff(d[10:]), 1.0, atol=1e-6)


def test_cold_start_quota_and_scaling_limits():
    sc = tiny_scenario(duration_s=200, fleet={"quota_gpus": 3, "max_scale_per_step": 1})
    res = run(sc, [], policy=FixedPolicy(5))
    ds = res.steps
    # one more replica per step until the quota (3 GPUs) is reached; clip recorded
    assert ds.replicas_starting.values[:3, 0].tolist() == [1, 2, 2]
    assert ds.scale_starts.values[:4, 0].tolist() == [1, 1, 0, 0]
    assert ds.scale_clipped.values[:3, 0].tolist() == [3, 2, 2]
    # ordered at 0 and 10 s, ready after the 90 s cold start (an event exactly at a step boundary
    # is processed after that step's action, so the counts move one step later)
    assert ds.replicas_ready.values[[8, 9, 10, 11], 0].tolist() == [1, 1, 2, 3]
    # starting replicas are billed
    np.testing.assert_allclose(ds.replica_seconds.values[0, 0], 20.0)


def test_scale_down_stops_idle_and_drains_busy_replicas():
    sc = tiny_scenario(duration_s=40)

    class Down(FixedPolicy):
        def act(self, obs):
            rep = np.array([2.0 if obs.step == 0 else 0.0])
            return Action(replicas=rep, routing=self.rt)

    # a long call on the initial replica, still decoding when the target drops to 0 at t = 10
    res = run(sc, [(1.0, 0, [(2, 100, 2000, 0.0)])], policy=Down(1))
    ds = res.steps
    assert ds.scale_stops.values[1, 0] == 2  # one starting replica cancelled, the busy one drains
    assert ds.replicas_draining.values[1, 0] == 1 and ds.replicas_starting.values[1, 0] == 0
    rq = res.requests.iloc[0]
    assert rq.status == "completed"
    end = rq.finish_s - RTT
    # the drained replica stops right after its last call: billed until then
    np.testing.assert_allclose(ds.replica_seconds.values[:, 0].sum(), 10.0 + 10.0 + (end - 10.0), rtol=1e-9)


def test_malformed_actions_raise_naming_the_policy():
    sc = tiny_scenario()

    class Bad(FixedPolicy):
        name = "badpol"

        def act(self, obs):
            return Action(replicas=np.array([1.0]), routing=np.full((3, 1, 1), 0.5))

    with pytest.raises(ValueError, match="badpol.*routing"):
        run(sc, [(0.5, 0, [(0, 10, 10, 0.0)])], policy=Bad())

    class Bad2(FixedPolicy):
        name = "shape"

        def act(self, obs):
            return Action(replicas=np.array([1.0, 2.0]), routing=self.rt)

    with pytest.raises(ValueError, match="shape.*replicas.*shape"):
        run(sc, [], policy=Bad2())


def test_context_describes_the_world():
    sc = tiny_scenario()
    wl = hand_workload(sc, [(0.5, 0, [(0, 10, 10, 0.0)])])
    ctx = make_context(sc, CAT, flat_signals(sc), wl)
    assert ctx.tiers == ("HIGH", "MEDIUM", "LOW") and ctx.regions == ("us-east-1",)
    assert [p.key for p in ctx.pools] == ["us-east-1/H100/on_demand/llama-3.1-8b"]
    np.testing.assert_allclose(ctx.rtt_s, [[0.002]])
    np.testing.assert_allclose(ctx.deadline_s, [1, 5, 30])


def test_policy_is_reset_once_and_called_every_step_including_drain():
    sc = tiny_scenario(duration_s=50, drain_s=25)
    pol = FixedPolicy(1)
    res = run(sc, [(0.5, 0, [(0, 10, 10, 0.0)])], policy=pol)
    assert pol.resets == 1
    assert [o.step for o in pol.observations] == list(range(8))
    assert [i["step"] for i in res.actions_info] == list(range(8))
    np.testing.assert_allclose(res.steps.time_s, np.arange(8) * 10.0)


def test_solver_round_off_is_clipped_but_real_negatives_are_rejected():
    from cedar_opt.sim.actions import validate_action

    ok = Action(replicas=np.array([1.0]), routing=np.ones((3, 1, 1)), release_tok_s=np.array([-1e-9, 5.0, np.inf]))
    a = validate_action(ok, "p", 3, 1, 1)
    assert a["release_tok_s"].tolist() == [0.0, 5.0, np.inf]
    bad = Action(replicas=np.array([1.0]), routing=np.ones((3, 1, 1)), release_tok_s=np.array([-1.0, 5.0, np.inf]))
    with pytest.raises(ValueError, match=r"'p'.*release_tok_s\[0\] is negative"):
        validate_action(bad, "p", 3, 1, 1)
    with pytest.raises(ValueError, match="dispatch"):
        validate_action(Action(replicas=np.array([1.0]), routing=np.ones((3, 1, 1)), dispatch="nope"), "p", 3, 1, 1)


def test_energy_integrates_the_concave_power_curve_over_the_real_batch():
    """Energy per step equals an independent integral of P(b(t)) rebuilt from the request log."""
    sc = tiny_scenario()
    rng = np.random.default_rng(5)
    sessions = [(float(t), 0, [(0, int(rng.integers(200, 3000)), int(rng.integers(20, 400)), 0.0)]) for t in np.sort(rng.uniform(0, 50, 60))]
    res = run(sc, sessions)
    rq = res.requests
    assert (rq.status == "completed").all()
    # replica-side batch membership: from admission to finish minus the return trip
    ev = sorted([(a, +1) for a in rq.admit_s] + [(f - RTT, -1) for f in rq.finish_s])
    edges = np.arange(0, 70, 10.0)
    pw = np.zeros(len(edges) - 1)
    b, last = 0, 0.0
    for t, d in ev + [(edges[-1], 0)]:
        lo = last
        while lo < t:
            k = int(lo // 10)
            hi = min(t, (k + 1) * 10.0)
            pw[k] += (hi - lo) * (b / MAXB) ** GAMMA
            lo = hi
        b += d
        last = t
    e = 1.2 * (IDLE * 10 + (BUSY - IDLE) * pw) / 3.6e6
    np.testing.assert_allclose(res.steps.energy_kwh.values[:, 0], e, rtol=1e-9)
    assert res.steps.seq_seconds.values.sum() > 0
