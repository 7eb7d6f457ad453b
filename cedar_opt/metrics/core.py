"""Metrics exactly as DESIGN.md §7 defines them (column names are part of the contract).

Inputs are the simulator's outputs: the per-request log (pandas) and the per-step state (xarray),
plus the per-step ``Action.info`` dicts. Every function is pure and tested against hand-computed
request logs (tests/test_metrics.py).

Definitions and the choices where §7 is silent:

* TTFT percentiles are over calls that got a first token (completed, or in flight past prefill).
* ``e2e_p95_s`` is over completed calls.
* A call violates its SLO when its TTFT exceeds its tier's deadline, when it was dropped, or when
  it is still without a first token at the end while already older than its deadline.
* ``oscillation``: for each step t ≥ 1 and tier k with traffic in both t−1 and t, the realised
  routing distribution p_{k,t}(o, r) = dispatched / Σ dispatched over (origin, region); its
  total-variation distance ½ Σ_{o,r} |p_{k,t} − p_{k,t−1}|; averaged over tiers weighted by
  the tier's dispatched calls in t; then the mean over steps that had any such tier.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from cedar_opt.interface import TIERS

SUMMARY_COLUMNS = [
    "policy", "requests", "completed", "dropped", "in_flight_end", "ttft_p50_s", "ttft_p95_s",
    "ttft_p99_s", "e2e_p95_s", "slo_violation_pct", "cost_usd", "carbon_marginal_kg",
    "carbon_average_kg", "energy_kwh", "gpu_hours", "oscillation", "scale_events",
    "kv_recompute_pct", "solve_p50_ms", "solve_p95_ms", "solve_max_ms", "fallback_steps",
]
BY_TIER_COLUMNS = ["policy", "tier", "requests", "ttft_p50_s", "ttft_p95_s", "ttft_p99_s", "slo_violation_pct"]


def _pct(values: np.ndarray, q: float) -> float:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return float(np.percentile(v, q)) if v.size else float("nan")


def slo_violated(requests: pd.DataFrame, end_s: float) -> np.ndarray:
    """Per call: True where the SLO was missed (see module docstring)."""
    ttft = requests["ttft_s"].to_numpy(float)
    deadline = requests["deadline_s"].to_numpy(float)
    status = requests["status"].to_numpy()
    late = np.where(np.isfinite(ttft), ttft > deadline, False)
    dropped = status == "dropped"
    waiting_late = (~np.isfinite(ttft)) & (status == "in_flight") & (end_s - requests["arrival_s"].to_numpy(float) > deadline)
    return late | dropped | waiting_late


def oscillation(dispatched: xr.DataArray, pool_region: np.ndarray, regions: list[str]) -> float:
    """Mean traffic-weighted TV distance of consecutive realised routing distributions.

    ``dispatched`` has dims (step, tier, origin, pool); ``pool_region`` gives each pool's region
    index into ``regions``.
    """
    d = np.asarray(dispatched.transpose("step", "tier", "origin", "pool").values, float)
    ns, nt, no, _ = d.shape
    by_region = np.zeros((ns, nt, no, len(regions)))
    for r in range(len(regions)):
        by_region[..., r] = d[..., pool_region == r].sum(-1)
    flat = by_region.reshape(ns, nt, no * len(regions))
    tot = flat.sum(-1)  # [step, tier]
    vals = []
    for t in range(1, ns):
        ok = (tot[t] > 0) & (tot[t - 1] > 0)
        if not ok.any():
            continue
        p1 = flat[t, ok] / tot[t, ok, None]
        p0 = flat[t - 1, ok] / tot[t - 1, ok, None]
        tv = 0.5 * np.abs(p1 - p0).sum(-1)
        w = tot[t, ok]
        vals.append(float((tv * w).sum() / w.sum()))
    return float(np.mean(vals)) if vals else 0.0


def summarise(
    policy: str,
    requests: pd.DataFrame,
    steps: xr.Dataset,
    actions_info: list[dict],
    *,
    gpus_per_replica: np.ndarray,
    pool_region: np.ndarray,
    regions: list[str],
    step_s: float,
    end_s: float,
) -> dict:
    """One row of ``summary.csv``."""
    status = requests["status"].to_numpy()
    n = len(requests)
    completed = int((status == "completed").sum())
    dropped = int((status == "dropped").sum())
    in_flight = int((status == "in_flight").sum())
    ttft = requests["ttft_s"].to_numpy(float)
    e2e = requests.loc[status == "completed", "e2e_s"].to_numpy(float)
    viol = slo_violated(requests, end_s)
    replicas = (steps["replicas_ready"] + steps["replicas_starting"] + steps["replicas_draining"]).values
    gpu_hours = float((replicas * gpus_per_replica[None, :]).sum() * step_s / 3600.0)
    prefill = float(requests["prefill_tokens"].sum())
    recomputed = float(requests["recomputed_tokens"].sum())
    solve = np.array([i.get("solve_ms", np.nan) for i in actions_info if i is not None], float)
    solve = solve[np.isfinite(solve)]
    fallbacks = sum(1 for i in actions_info if i and i.get("fallback"))
    return {
        "policy": policy,
        "requests": n,
        "completed": completed,
        "dropped": dropped,
        "in_flight_end": in_flight,
        "ttft_p50_s": _pct(ttft, 50),
        "ttft_p95_s": _pct(ttft, 95),
        "ttft_p99_s": _pct(ttft, 99),
        "e2e_p95_s": _pct(e2e, 95),
        "slo_violation_pct": 100.0 * float(viol.sum()) / n if n else 0.0,
        "cost_usd": float(steps["cost_usd"].sum()),
        "carbon_marginal_kg": float(steps["carbon_marginal_kg"].sum()),
        "carbon_average_kg": float(steps["carbon_average_kg"].sum()),
        "energy_kwh": float(steps["energy_kwh"].sum()),
        "gpu_hours": gpu_hours,
        "oscillation": oscillation(steps["dispatched"], pool_region, regions),
        "scale_events": int(steps["scale_starts"].sum() + steps["scale_stops"].sum()),
        "kv_recompute_pct": 100.0 * recomputed / prefill if prefill > 0 else 0.0,
        "solve_p50_ms": _pct(solve, 50),
        "solve_p95_ms": _pct(solve, 95),
        "solve_max_ms": float(solve.max()) if solve.size else float("nan"),
        "fallback_steps": int(fallbacks),
    }


def by_tier(policy: str, requests: pd.DataFrame, end_s: float) -> pd.DataFrame:
    """Rows of ``by_tier.csv`` for one policy."""
    viol = slo_violated(requests, end_s)
    rows = []
    for tier in TIERS:
        m = (requests["tier"] == tier).to_numpy()
        t = requests.loc[m, "ttft_s"].to_numpy(float)
        k = int(m.sum())
        rows.append(
            {
                "policy": policy,
                "tier": tier,
                "requests": k,
                "ttft_p50_s": _pct(t, 50),
                "ttft_p95_s": _pct(t, 95),
                "ttft_p99_s": _pct(t, 99),
                "slo_violation_pct": 100.0 * float(viol[m].sum()) / k if k else 0.0,
            }
        )
    return pd.DataFrame(rows, columns=BY_TIER_COLUMNS)


def relative_change(summary: pd.DataFrame, reference: str, columns: list[str]) -> pd.DataFrame:
    """Percent change of each policy's ``columns`` vs the ``reference`` policy's row."""
    s = summary.set_index("policy")
    if reference not in s.index:
        return pd.DataFrame()
    ref = s.loc[reference, columns].astype(float)
    rel = (s[columns].astype(float) - ref) / ref.abs().replace(0.0, np.nan) * 100.0
    return rel.reset_index()
