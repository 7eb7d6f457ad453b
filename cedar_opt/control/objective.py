"""The control-step objective: five normalised, unitless terms with the scenario's weights.

min  w_lat·L + w_cost·C + w_carbon·E + w_slo·S + w_stab·T, where (Σ_b over blocks, τ_b in s)

* L = (1/D)·[Σ τ_b·ℓ[k,o,j]·x[k,o,j,b] + Σ τ_b·q[k,o,b]/d_k + Σ τ_0·κ[k,j]·dr[k,o,j]/2] — mean
  time to first token as a share of the deadline d_k: ℓ = (RTT + prefill + queueing at the tier's
  headroom + first token)/d_k; held work waits (Little); moved work re-prefills its context (κ);
* C = (1/C_ref)·Σ τ_b/3600 · price_j·(1 + h_j·cold_j/3600) · n[j,b] — replica cost plus the expected
  cost of replacing preempted spot replicas (hazard h per hour × a cold start of paid idle time);
* E = (1/E_ref)·Σ τ_b/3600 · PUE/1000 · m[r(j),b] · (P_idle,j·n[j,b] + (P_busy,j − P_idle,j)·Σ a[k,j]·x)
  — marginal emissions of the energy the plan draws;
* S = Σ τ_b·s[k,o,b]·(1/D + V_k/C_ref + G_k/E_ref) — work not served within its deadline, valued in
  each of the other terms' units at its *dearest* way of being served (V_k: the most expensive
  eligible pool's cost per request, G_k: its energy per request at 1,000 g/kWh), so that with
  w_slo > 1 dropping work never beats serving it on any pool, whatever the other weights;
* T = (1/N_ref)·Σ (up + down)[j,b] + (1/λ̄)·½·Σ dr[k,o,j] — replica churn and routing change
  (total-variation distance) in block 0.

D = expected requests over the horizon, C_ref / E_ref = cost / marginal emissions of serving them
on each tier's cheapest on-demand eligible pool, λ̄ = D / horizon, N_ref = replicas of that
reference plan; all smoothed across steps (``cedar_opt.control.data.References``).
"""

from __future__ import annotations

import pyomo.environ as pyo

from cedar_opt.control.data import Static

TERMS = ("latency_term", "cost_term", "carbon_term", "slo_term", "stability_term")


def add_objective(m, st: Static) -> None:
    """Creates the Expressions ``latency_term`` … ``stability_term`` and the Objective ``objective``."""
    tau = [float(t) for t in st.tau]
    K_of_j = m.K_of_j

    m.latency_term = pyo.Expression(
        expr=m.inv_demand
        * (
            sum(tau[b] * float(st.lat[k, o, j]) * m.x[k, o, j, b] for (k, o, j, b) in m.X_INDEX)
            + sum(tau[b] / float(st.deadline_s[k]) * m.q[k, o, b] for k in m.K for o in m.O for b in m.B)
            + sum(0.5 * tau[0] * float(st.kv[k, j]) * m.dr[k, o, j] for (k, o, j) in m.ROUTES)
        )
    )
    preempt = [1.0 + float(st.hazard_per_h[j] * st.cold_s[j]) / 3600.0 for j in range(st.J)]
    m.cost_term = pyo.Expression(
        expr=m.inv_cost_ref * sum(tau[b] / 3600.0 * preempt[j] * m.price[j] * m.n[j, b] for j in m.J for b in m.B)
    )
    e = st.pue / 1000.0 / 3600.0
    m.carbon_term = pyo.Expression(
        expr=m.inv_carbon_ref
        * sum(
            tau[b] * e * m.mci[int(st.region_of[j]), b]
            * (
                float(st.idle_w[j]) * m.n[j, b]
                + sum(float((st.busy_w[j] - st.idle_w[j]) * st.a[k, j]) * m.x[k, o, j, b] for k in K_of_j[j] for o in m.O)
            )
            for j in m.J
            for b in m.B
        )
    )
    v_cost = [float(st.slo_cost_per_req[k]) for k in range(st.K)]
    v_carbon = [float(st.slo_carbon_per_req[k]) for k in range(st.K)]
    m.slo_term = pyo.Expression(
        expr=sum(
            tau[b] * (m.inv_demand + v_cost[k] * m.inv_cost_ref + v_carbon[k] * m.inv_carbon_ref) * m.s[k, o, b]
            for k in m.K
            for o in m.O
            for b in m.B
        )
    )
    m.stability_term = pyo.Expression(
        expr=m.inv_replica_ref * sum(m.up[j, b] + m.down[j, b] for j in m.J for b in m.B)
        + m.inv_rate_ref * 0.5 * sum(m.dr[k, o, j] for (k, o, j) in m.ROUTES)
    )
    w = st.weights
    m.objective = pyo.Objective(
        expr=w.latency * m.latency_term
        + w.cost * m.cost_term
        + w.carbon * m.carbon_term
        + w.slo * m.slo_term
        + w.stability * m.stability_term,
        sense=pyo.minimize,
    )

