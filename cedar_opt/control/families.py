"""The control-step model's constraint families: one function per family, math in the docstring.

Notation (``models/mip.md`` has the full table): tiers k, origins o, pools j (region r(j)),
blocks b with length τ_b and start t_b; E = eligible (k, j) pairs. Variables: replicas n[j,b]
(integer), served rate x[k,o,j,b] (requests/s), backlog q[k,o,b] (requests), shortfall
s[k,o,b] (requests/s), replica changes up/down[j,b], routing change dr[k,o,j] (block 0).
Every family is ``add_<family>(m, st)``; ``st`` is the run's :class:`~.data.Static`. Mutable
parameters (``m.lam`` …) carry the step's numbers; matrix coefficients are static.
"""

from __future__ import annotations

import pyomo.environ as pyo

from cedar_opt.control.data import Static


def _served(m, k, o, b):
    return sum(m.x[k, o, j, b] for j in m.J_of_k[k])


def _load(m, st: Static, j, b):
    """Σ_{k,o} a[k,j]/ρ_k · x[k,o,j,b]: replicas busy at the tier's target utilisation."""
    return sum(float(st.a[k, j] / st.rho[k]) * m.x[k, o, j, b] for k in m.K_of_j[j] for o in m.O)


def add_eligibility(m, st: Static) -> None:
    """**Eligibility / right-sizing** — the index set of routes.

    E = {(k, j) : rank(j) ≥ floor_k}, floor_k = the tier's ``min_model_rank`` with right-sizing
    on, the largest model's rank for every tier with it off. x[k,o,j,b] exists only for
    (k, j) ∈ E, so an ineligible route cannot carry work (no rows, no big-M).
    Creates: ``ELIGIBLE`` (set of (k, j)), ``J_of_k``, ``K_of_j``, ``X_INDEX``.
    """
    pairs = [(k, j) for k in range(st.K) for j in range(st.J) if st.eligible[k, j]]
    m.ELIGIBLE = pyo.Set(initialize=pairs, dimen=2, ordered=True)
    m.J_of_k = {k: [j for (kk, j) in pairs if kk == k] for k in range(st.K)}
    m.K_of_j = {j: [k for (k, jj) in pairs if jj == j] for j in range(st.J)}
    m.X_INDEX = pyo.Set(
        initialize=[(k, o, j, b) for (k, j) in pairs for o in range(st.O) for b in range(st.B)], dimen=4, ordered=True
    )


def add_demand(m, st: Static) -> None:
    """**Demand balance** — ``demand_balance[k,o,b]``, over all tiers, origins, blocks.

    q[k,o,b] = q[k,o,b−1] + τ_b·(λ[k,o,b] − Σ_{j:(k,j)∈E} x[k,o,j,b] − s[k,o,b]),
    with q[k,o,−1] = Q0[k,o] (the virtual-queue backlog now). Work is served, stays queued,
    or is counted as SLO shortfall s (penalised; keeps every step feasible).
    """

    def rule(m, k, o, b):
        prev = m.backlog0[k, o] if b == 0 else m.q[k, o, b - 1]
        tau = float(st.tau[b])
        return m.q[k, o, b] - prev + tau * (_served(m, k, o, b) + m.s[k, o, b]) == tau * m.lam[k, o, b]

    m.demand_balance = pyo.Constraint(m.K, m.O, m.B, rule=rule)


def add_deferral(m, st: Static) -> None:
    """**Deferral within deadlines** — ``deferral_deadline[k,o,b]``.

    q[k,o,b] ≤ W_k · λ[k,o,b] (Little's law: the mean wait of held work ≤ W_k), with
    W_k = ½·deadline_k for deferrable tiers when slack tracking is on, and W_k = 0 for HIGH
    (never deferred) and for every tier with slack tracking off (serve everything now).
    """

    def rule(m, k, o, b):
        return m.q[k, o, b] <= float(st.wait_s[k]) * m.lam[k, o, b]

    m.deferral_deadline = pyo.Constraint(m.K, m.O, m.B, rule=rule)


def add_urgency(m, st: Static) -> None:
    """**Slack-driven urgency** — ``urgency_serve_now[k,o]`` (only with slack tracking on).

    τ_0·(Σ_j x[k,o,j,0] + s[k,o,0]) ≥ U[k,o], U = backlog whose slack to its deadline is below
    one control step (estimated from the oldest wait and smallest slack): it must be served in
    the first block, or counted as shortfall.
    """
    tau0 = float(st.tau[0])

    def rule(m, k, o):
        return tau0 * (_served(m, k, o, 0) + m.s[k, o, 0]) >= m.urgent0[k, o]

    m.urgency_serve_now = pyo.Constraint(m.K, m.O, rule=rule)


def add_capacity(m, st: Static) -> None:
    """**Capacity with tier headroom** — ``capacity_headroom[j,b]``.

    Σ_{k,o} a[k,j]/ρ_k · x[k,o,j,b] ≤ n[j,b]; a[k,j] = uncached prompt/prefill rate + output/decode
    rate (replica-seconds per request), ρ_k the tier's target utilisation (lower ρ, more headroom,
    shorter queues).
    """

    def rule(m, j, b):
        if not m.K_of_j[j]:
            return pyo.Constraint.Skip
        return _load(m, st, j, b) - m.n[j, b] <= 0

    m.capacity_headroom = pyo.Constraint(m.J, m.B, rule=rule)


def add_readiness(m, st: Static) -> None:
    """**Cold-start readiness** — ``readiness_cold_start[j,b]``.

    Only replicas past their cold start serve. Averaged over block b = [t_b, t_b + τ_b):
    Σ_{k,o} a[k,j]/ρ_k · x[k,o,j,b] ≤ Σ_{b'} ω[j,b,b'] · n[j,b'] + R̄[j,b],
    ω[j,b,b'] = |[t_b − c_j, t_b + τ_b − c_j) ∩ [t_b', t_b' + τ_b')| / τ_b (the share of block b
    whose time one cold start c_j earlier falls in block b'), R̄[j,b] = the block's time-mean of
    the current fleet's ready replicas before c_j, minus its still-starting replicas after c_j.
    A replica ordered now therefore adds capacity from c_j on — also partway through a coarse
    block — so ordering now strictly beats ordering later for the same need.

    ``readiness_warm_fleet[j,b,b']`` (b' < b, block b ending before c_j):
    Σ_{k,o} a[k,j]/ρ_k · x[k,o,j,b] ≤ n[j,b']. R̄ credits the current fleet before c_j, but only
    the replicas the plan keeps: one stopped in block b' is gone until a cold start later. Without
    these rows a plan could stop the warm fleet now and "restart" it instantly next block.
    """

    def rule(m, j, b):
        if not m.K_of_j[j]:
            return pyo.Constraint.Skip
        terms = [float(st.omega[j, b, bp]) * m.n[j, bp] for bp in range(st.B) if st.omega[j, b, bp] > 0]
        return _load(m, st, j, b) - sum(terms) <= m.ready_cap[j, b]

    m.readiness_cold_start = pyo.Constraint(m.J, m.B, rule=rule)

    # A warm replica stopped earlier in the plan cannot come back before a cold start: in a block
    # that ends before c_j, capacity is bounded by the replicas kept in every earlier block.
    warm = [
        (j, b, bp)
        for j in range(st.J)
        for b in range(1, st.B)
        if m.K_of_j[j] and st.start[b] + st.tau[b] <= st.cold_s[j] + 1e-9
        for bp in range(b)
    ]
    m.WARM = pyo.Set(initialize=warm, dimen=3, ordered=True)

    def warm_rule(m, j, b, bp):
        return _load(m, st, j, b) - m.n[j, bp] <= 0

    m.readiness_warm_fleet = pyo.Constraint(m.WARM, rule=warm_rule)


def add_spot(m, st: Static) -> None:
    """**Spot share of HIGH** — ``spot_share_high[o,b]`` (the preemption cost is in the objective).

    Σ_{j spot} x[H,o,j,b] ≤ σ · Σ_j x[H,o,j,b], σ = ``max_spot_share_high``; per origin, so every
    routing row of the action respects the cap.
    """
    high = [k for k, t in enumerate(st.tiers) if t == "HIGH"]
    if not high:
        return
    k = high[0]
    sigma = st.max_spot_share_high
    js = m.J_of_k[k]

    def rule(m, o, b):
        spot = [j for j in js if st.spot[j]]
        if not spot or sigma >= 1.0:
            return pyo.Constraint.Skip
        return sum(m.x[k, o, j, b] for j in spot) - sigma * sum(m.x[k, o, j, b] for j in js) <= 0

    m.spot_share_high = pyo.Constraint(m.O, m.B, rule=rule)


def add_quota(m, st: Static) -> None:
    """**GPU quotas** — ``quota_gpus[g,b]``: Σ_{j∈g} gpus_j · n[j,b] ≤ quota_g per quota group g
    (region, GPU, purchase). Per-pool ``max_replicas`` is the bound of n."""
    groups = sorted(set(int(g) for g in st.quota_group))

    def rule(m, g, b):
        members = [j for j in range(st.J) if st.quota_group[j] == g]
        return sum(float(st.gpus[j]) * m.n[j, b] for j in members) <= float(st.quota[g])

    m.QUOTA_GROUPS = pyo.Set(initialize=groups, ordered=True)
    m.quota_gpus = pyo.Constraint(m.QUOTA_GROUPS, m.B, rule=rule)


def add_scaling(m, st: Static) -> None:
    """**Scaling limits and tight bounds** — ``scaling_up[j,b]``, ``scaling_down[j,b]``,
    ``replica_bound[j,b]``.

    up[j,b] ≤ S_b, down[j,b] ≤ S_b with S_b = max_scale_per_step × (steps in block b), where
    up − down = n[j,b] − n[j,b−1] (``replica_change``, below; n[j,−1] = replicas ready + starting);
    n[j,b] ≤ N̄[j,b] = min(max_replicas, max(⌈replicas the largest servable rate needs⌉ + 1, now)):
    a tight integer bound from demand (no replica beyond it can lower the objective).
    """

    def up(m, j, b):
        return m.up[j, b] <= float(st.scale[b])

    def down(m, j, b):
        return m.down[j, b] <= float(st.scale[b])

    def bound(m, j, b):
        return m.n[j, b] <= m.nmax[j, b]

    m.scaling_up = pyo.Constraint(m.J, m.B, rule=up)
    m.scaling_down = pyo.Constraint(m.J, m.B, rule=down)
    m.replica_bound = pyo.Constraint(m.J, m.B, rule=bound)


def add_stability(m, st: Static) -> None:
    """**Stability and KV affinity** — ``replica_change[j,b]``, ``route_change_up[k,o,j]``,
    ``route_change_down[k,o,j]``.

    n[j,b] − n[j,b−1] = up[j,b] − down[j,b]  (n[j,−1] = N0[j], replicas now);
    dr[k,o,j] ≥ ±(x[k,o,j,0] − x̂[k,o,j]), x̂ = previous routing share × expected rate.
    up, down and dr are penalised in the objective (stability term), and dr also pays the
    re-prefill latency of requests moved away from their KV cache (latency term).
    """

    def change(m, j, b):
        prev = m.n_now[j] if b == 0 else m.n[j, b - 1]
        return m.n[j, b] - prev - m.up[j, b] + m.down[j, b] == 0

    def r_up(m, k, o, j):
        return m.dr[k, o, j] - m.x[k, o, j, 0] >= -m.prev_rate[k, o, j]

    def r_down(m, k, o, j):
        return m.dr[k, o, j] + m.x[k, o, j, 0] >= m.prev_rate[k, o, j]

    m.replica_change = pyo.Constraint(m.J, m.B, rule=change)
    m.route_change_up = pyo.Constraint(m.ROUTES, rule=r_up)
    m.route_change_down = pyo.Constraint(m.ROUTES, rule=r_down)


FAMILIES: dict[str, tuple[str, ...]] = {
    "eligibility": (),
    "demand": ("demand_balance",),
    "deferral": ("deferral_deadline",),
    "urgency": ("urgency_serve_now",),
    "capacity": ("capacity_headroom",),
    "readiness": ("readiness_cold_start", "readiness_warm_fleet"),
    "spot": ("spot_share_high",),
    "quota": ("quota_gpus",),
    "scaling": ("scaling_up", "scaling_down", "replica_bound"),
    "stability": ("replica_change", "route_change_up", "route_change_down"),
}
"""Every constraint family and the constraint names it creates (the register tests check)."""

ADDERS = {
    "eligibility": add_eligibility,
    "demand": add_demand,
    "deferral": add_deferral,
    "urgency": add_urgency,
    "capacity": add_capacity,
    "readiness": add_readiness,
    "spot": add_spot,
    "quota": add_quota,
    "scaling": add_scaling,
    "stability": add_stability,
}
