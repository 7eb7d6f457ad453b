"""Every metric of DESIGN.md §7 against a hand-computed request log and step record."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from cedar_opt.experiments.report import targets
from cedar_opt.metrics import SUMMARY_COLUMNS, by_tier, oscillation, relative_change, summarise

REGIONS = ["r0", "r1"]
POOL_REGION = np.array([0, 1, 1])  # pool 0 in r0, pools 1 and 2 in r1


def _requests() -> pd.DataFrame:
    # 6 calls: 3 HIGH (deadline 1 s), 2 MEDIUM (5 s), 1 LOW (30 s)
    rows = [
        # tier, arrival, ttft, e2e, status, prefill, recomputed
        ("HIGH", 0.0, 0.5, 2.0, "completed", 100, 0),
        ("HIGH", 1.0, 1.5, 3.0, "completed", 100, 100),  # late (1.5 > 1)
        ("HIGH", 2.0, np.nan, np.nan, "dropped", 0, 0),  # dropped
        ("MEDIUM", 3.0, 2.0, 4.0, "completed", 200, 0),
        ("MEDIUM", 95.0, np.nan, np.nan, "in_flight", 0, 0),  # waiting 5 s at end=100: not late yet
        ("LOW", 50.0, 10.0, np.nan, "in_flight", 400, 200),  # got first token, still decoding
    ]
    df = pd.DataFrame(rows, columns=["tier", "arrival_s", "ttft_s", "e2e_s", "status", "prefill_tokens", "recomputed_tokens"])
    df["deadline_s"] = df["tier"].map({"HIGH": 1.0, "MEDIUM": 5.0, "LOW": 30.0})
    return df


def _steps() -> xr.Dataset:
    ns, npool = 3, 3
    dispatched = np.zeros((ns, 3, 2, npool))
    # HIGH from origin 0: step0 all to pool0 (r0); step1 half r0 half r1; step2 all r1 (pool 2)
    dispatched[0, 0, 0, 0] = 4
    dispatched[1, 0, 0, 0] = 2
    dispatched[1, 0, 0, 1] = 2
    dispatched[2, 0, 0, 2] = 4
    # MEDIUM from origin 1: same single route every step (pool 1 then pool 2, both r1): TV 0
    dispatched[0, 1, 1, 1] = 1
    dispatched[1, 1, 1, 2] = 2
    dispatched[2, 1, 1, 1] = 4
    ones = np.ones((ns, npool))
    return xr.Dataset(
        {
            "replicas_ready": (("step", "pool"), ones * [1, 2, 0]),
            "replicas_starting": (("step", "pool"), ones * [0, 0, 1]),
            "replicas_draining": (("step", "pool"), np.zeros((ns, npool))),
            "energy_kwh": (("step", "pool"), ones * 0.5),
            "cost_usd": (("step", "pool"), ones * 2.0),
            "carbon_marginal_kg": (("step", "pool"), ones * 0.25),
            "carbon_average_kg": (("step", "pool"), ones * 0.125),
            "scale_starts": (("step", "pool"), np.array([[0, 0, 1], [0, 0, 0], [1, 0, 0]])),
            "scale_stops": (("step", "pool"), np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]])),
            "dispatched": (("step", "tier", "origin", "pool"), dispatched),
        },
        coords={"step": np.arange(ns), "tier": ["HIGH", "MEDIUM", "LOW"], "origin": REGIONS, "pool": ["a", "b", "c"]},
    )


def _summary(**kw):
    info = [{"solve_ms": 10.0, "fallback": None}, {"solve_ms": 30.0, "fallback": "timeout"}, {"solve_ms": 20.0, "fallback": None}]
    return summarise(
        "p", _requests(), _steps(), info, gpus_per_replica=np.array([1, 4, 8]), pool_region=POOL_REGION, regions=REGIONS, step_s=10.0, end_s=100.0, **kw
    )


def test_counts_and_conservation():
    s = _summary()
    assert list(s) == SUMMARY_COLUMNS
    assert (s["requests"], s["completed"], s["dropped"], s["in_flight_end"]) == (6, 3, 1, 2)
    assert s["requests"] == s["completed"] + s["dropped"] + s["in_flight_end"]


def test_latency_percentiles():
    s = _summary()
    ttft = np.array([0.5, 1.5, 2.0, 10.0])  # calls with a first token
    assert s["ttft_p50_s"] == pytest.approx(np.percentile(ttft, 50)) == pytest.approx(1.75)
    assert s["ttft_p95_s"] == pytest.approx(np.percentile(ttft, 95))
    assert s["e2e_p95_s"] == pytest.approx(np.percentile([2.0, 3.0, 4.0], 95))


def test_slo_violation_pct():
    # late HIGH (1.5 s > 1 s) + dropped HIGH = 2 of 6; the MEDIUM waiting 5 s at end is not late
    assert _summary()["slo_violation_pct"] == pytest.approx(100 * 2 / 6)


def test_waiting_call_older_than_deadline_counts():
    req = _requests()
    req.loc[4, "arrival_s"] = 90.0  # waited 10 s > 5 s deadline at end = 100
    s = summarise("p", req, _steps(), [], gpus_per_replica=np.array([1, 4, 8]), pool_region=POOL_REGION, regions=REGIONS, step_s=10.0, end_s=100.0)
    assert s["slo_violation_pct"] == pytest.approx(100 * 3 / 6)


def test_resource_sums():
    s = _summary()
    assert s["cost_usd"] == pytest.approx(9 * 2.0)
    assert s["energy_kwh"] == pytest.approx(9 * 0.5)
    assert s["carbon_marginal_kg"] == pytest.approx(9 * 0.25)
    assert s["carbon_average_kg"] == pytest.approx(9 * 0.125)
    # replicas per step: pool0 1×1 GPU, pool1 2×4 GPUs, pool2 1 starting ×8 GPUs = 17 GPUs × 3 steps × 10 s
    assert s["gpu_hours"] == pytest.approx(17 * 3 * 10 / 3600)
    assert s["scale_events"] == 3


def test_kv_recompute_pct():
    assert _summary()["kv_recompute_pct"] == pytest.approx(100 * 300 / 800)


def test_solver_figures():
    s = _summary()
    assert (s["solve_p50_ms"], s["solve_max_ms"], s["fallback_steps"]) == (20.0, 30.0, 1)
    assert s["solve_p95_ms"] == pytest.approx(np.percentile([10, 20, 30], 95))


def test_no_solver_gives_nan_not_zero():
    s = summarise("p", _requests(), _steps(), [{}, {}], gpus_per_replica=np.array([1, 4, 8]), pool_region=POOL_REGION, regions=REGIONS, step_s=10.0, end_s=100.0)
    assert math.isnan(s["solve_p95_ms"]) and s["fallback_steps"] == 0


def test_oscillation_hand_computed():
    # HIGH: step0 (o0,r0)=1; step1 (o0,r0)=.5,(o0,r1)=.5 -> TV .5; step2 (o0,r1)=1 -> TV .5
    # MEDIUM: always (o1,r1) -> TV 0 (pool changes inside a region do not count)
    # step1: (0.5*4 + 0*2)/6 = 1/3 ; step2: (0.5*4 + 0*4)/8 = 1/4 ; mean = 7/24
    assert oscillation(_steps()["dispatched"], POOL_REGION, REGIONS) == pytest.approx(7 / 24)


def test_oscillation_constant_routing_is_zero_and_skips_empty_steps():
    d = np.zeros((4, 3, 2, 3))
    d[0, 0, 0, 0] = 3
    d[2, 0, 0, 0] = 5  # step 1 empty: no pair (0,1) or (1,2) counts
    d[3, 0, 0, 0] = 1
    da = xr.DataArray(d, dims=("step", "tier", "origin", "pool"))
    assert oscillation(da, POOL_REGION, REGIONS) == 0.0


def test_by_tier():
    bt = by_tier("p", _requests(), 100.0).set_index("tier")
    assert bt.loc["HIGH", "requests"] == 3
    assert bt.loc["HIGH", "slo_violation_pct"] == pytest.approx(100 * 2 / 3)
    assert bt.loc["HIGH", "ttft_p50_s"] == pytest.approx(1.0)
    assert bt.loc["MEDIUM", "slo_violation_pct"] == 0.0
    assert bt.loc["LOW", "ttft_p95_s"] == pytest.approx(10.0)


def test_relative_change_from_csv_values():
    summary = pd.DataFrame({"policy": ["performance_only", "cedar"], "cost_usd": [100.0, 70.0], "slo_violation_pct": [2.0, 3.0]})
    rel = relative_change(summary, "performance_only", ["cost_usd", "slo_violation_pct"]).set_index("policy")
    assert rel.loc["cedar", "cost_usd"] == pytest.approx(-30.0)
    assert rel.loc["cedar", "slo_violation_pct"] == pytest.approx(50.0)
    assert rel.loc["performance_only", "cost_usd"] == 0.0


def test_targets_verdicts():
    summary = pd.DataFrame(
        {
            "policy": ["performance_only", "round_robin", "cedar"],
            "cost_usd": [100.0, 100.0, 70.0],
            "carbon_marginal_kg": [10.0, 10.0, 7.0],
            "ttft_p95_s": [0.76, 1.0, 0.88],
            "slo_violation_pct": [1.0, 22.3, 4.3],
            "oscillation": [0.1, 0.3, 0.1],
        }
    )
    v = {t: verdict for t, _, verdict in targets(summary)}
    assert v["cost ≥ 26 % lower than performance_only"] == "met"  # -30 %
    assert v["marginal carbon ≥ 27 % lower than performance_only"] == "met"  # -30 %
    assert v["TTFT p95 at most 16 % higher than performance_only"] == "met"  # +15.8 %
    assert v["SLO violations ≤ 4.3 %"] == "met"
    assert v["SLO violations at most a fifth of round_robin's"] == "met"  # 4.3 ≤ 4.46
    assert v["oscillation ≥ 63 % lower than round_robin"] == "met"  # -66.7 %
    summary.loc[2, "cost_usd"] = 80.0
    v = {t: verdict for t, _, verdict in targets(summary)}
    assert v["cost ≥ 26 % lower than performance_only"] == "not met"
