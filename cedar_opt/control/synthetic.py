"""Small hand-built worlds for tests and benchmarks: contexts and observations without a simulator.

* :func:`context_from_scenario` — a :class:`PolicyContext` from a scenario and the catalogue;
* :func:`full_paper_catalogue` — the bundled catalogue plus a us-west-1 A100 offer, so the paper
  fleet has all 3 × 2 × 2 × 2 = 24 pools (the real one lacks p4d in us-west-1);
* :func:`synthetic_context` — any number of regions, GPU types and models, figures scaled from
  the catalogue's H100/A100 rows (for the 10× benchmark);
* :func:`make_observation` — an :class:`Observation` from a few arrays.
"""

from __future__ import annotations

import numpy as np

from cedar_opt.config.schema import Scenario
from cedar_opt.data.signalset import SignalSet
from cedar_opt.interface import Action, Observation, Pool, PolicyContext, PoolStatic, QueueState


def context_from_scenario(
    scenario: Scenario | None = None, catalogue=None, signals: SignalSet | None = None, workload_hint=None
) -> PolicyContext:
    from cedar_opt.fleet.catalogue import load_catalogue
    from cedar_opt.fleet.pools import build_pools

    sc = scenario or Scenario()
    cat = catalogue or load_catalogue()
    pools, static = build_pools(sc, cat)
    regions = tuple(sc.fleet.regions)
    rtt = np.array([[cat.regions[o].rtt_ms[r] / 1000.0 for r in regions] for o in regions])
    ranks = {m: cat.model_rank(m) for m in sc.fleet.models}
    tiers = ("HIGH", "MEDIUM", "LOW")
    min_rank = np.array(
        [ranks[sc.workload.tiers[t].min_model] if sc.workload.tiers[t].min_model else min(ranks.values()) for t in tiers]
    )
    if signals is None:
        signals = SignalSet.constant(regions, [400.0, 250.0, 150.0][: len(regions)] + [300.0] * max(0, len(regions) - 3),
                                     [300.0] * len(regions), span_s=sc.duration_s + 7200.0)
    return PolicyContext(
        tiers=tiers, regions=regions, pools=pools, static=static, step_s=sc.step_s, duration_s=sc.duration_s,
        seed=sc.seed, deadline_s=np.array([sc.workload.tiers[t].deadline_s for t in tiers]), min_model_rank=min_rank,
        default_model_rank=max(ranks.values()), rtt_s=rtt, pue=sc.fleet.pue, signals=signals,
        workload_hint=workload_hint, config=sc,
    )


def full_paper_catalogue():
    """The bundled catalogue with a us-west-1 A100 offer copied from us-east-1 (24 pools)."""
    from cedar_opt.fleet.catalogue import load_catalogue

    cat = load_catalogue()
    if cat.offer("us-west-1", "A100") is not None:
        return cat
    east = cat.offer("us-east-1", "A100")
    extra = east.model_copy(update={"region": "us-west-1", "source": "synthetic: copy of us-east-1 A100 (benchmark only)"})
    return cat.model_copy(update={"offers": list(cat.offers) + [extra]})


def synthetic_context(
    n_regions: int = 3, n_gpus: int = 2, n_models: int = 2, purchases=("on_demand", "spot"), seed: int = 0,
    scenario: Scenario | None = None,
) -> PolicyContext:
    """A fleet of n_regions × n_gpus × len(purchases) × n_models pools with plausible figures."""
    rng = np.random.default_rng(seed)
    sc = scenario or Scenario()
    regions = tuple(f"r{i}" for i in range(n_regions))
    gpu_speed = np.linspace(1.0, 2.5, n_gpus)  # relative to A100
    model_size = np.geomspace(8, 70, n_models)
    pools, rows = [], []
    groups: dict = {}
    for ri, r in enumerate(regions):
        for gi in range(n_gpus):
            for p in purchases:
                for mi in range(n_models):
                    g = groups.setdefault((ri, gi, p), len(groups))
                    gpr = int(2 ** np.ceil(np.log2(max(1.0, model_size[mi] / 16.0))))
                    base = 33.0 * (1 + 1.5 * (gi / max(1, n_gpus - 1))) * rng.uniform(0.9, 1.1)
                    price = base * gpr / 8.0 * (0.3 if p == "spot" else 1.0)
                    pools.append(Pool(r, f"G{gi}", p, f"M{mi}"))
                    rows.append(dict(
                        price_usd_per_h=price, capacity_tok_s=3000.0 * gpu_speed[gi] * gpr * 8.0 / model_size[mi] ** 0.8,
                        prefill_tok_s=60000.0 * gpu_speed[gi] * gpr / model_size[mi], itl_s=0.01 * model_size[mi] ** 0.3 / gpu_speed[gi],
                        max_batch=128, idle_power_w=80.0 * gpr, busy_power_w=500.0 * gpr * gpu_speed[gi] ** 0.5,
                        cold_start_s=90.0 + 3.0 * model_size[mi], spot_hazard_per_h=(0.0003 if p == "spot" else 0.0),
                        model_rank=mi, quota_gpus=sc.fleet.quota_gpus, quota_group=g, gpus_per_replica=gpr,
                        max_replicas=sc.fleet.quota_gpus // gpr,
                    ))
    cols = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    for k in ("max_batch", "model_rank", "quota_gpus", "quota_group", "gpus_per_replica", "max_replicas"):
        cols[k] = cols[k].astype(np.int64)
    pos = rng.uniform(0, 1, size=(n_regions, 2))
    rtt = 0.002 + 0.08 * np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=2)
    tiers = ("HIGH", "MEDIUM", "LOW")
    marg = list(rng.uniform(150, 600, n_regions))
    sig = SignalSet.constant(regions, marg, [300.0] * n_regions, span_s=sc.duration_s + 7200.0)
    return PolicyContext(
        tiers=tiers, regions=regions, pools=tuple(pools), static=PoolStatic(**cols), step_s=sc.step_s,
        duration_s=sc.duration_s, seed=sc.seed, deadline_s=np.array([sc.workload.tiers[t].deadline_s for t in tiers]),
        min_model_rank=np.zeros(3, dtype=int), default_model_rank=n_models - 1, rtt_s=rtt, pue=sc.fleet.pue,
        signals=sig, workload_hint=None, config=sc,
    )


def make_observation(
    context: PolicyContext,
    *,
    step: int = 0,
    t_s: float = 0.0,
    arrivals=None,
    backlog=None,
    min_slack_s=None,
    oldest_wait_s=None,
    ready=None,
    starting=None,
    ready_in_s=None,
    price=None,
    previous_action: Action | None = None,
    tokens_per_request: float = 2200.0,
) -> Observation:
    """An observation; ``arrivals`` and ``backlog`` are [tier, origin] request counts over the last step."""
    K, O, J = len(context.tiers), len(context.regions), len(context.pools)
    arrivals = np.zeros((K, O)) if arrivals is None else np.asarray(arrivals, float)
    backlog = np.zeros((K, O)) if backlog is None else np.asarray(backlog, float)
    slack = np.where(backlog > 0, context.deadline_s[:, None], np.inf) if min_slack_s is None else np.asarray(min_slack_s, float)
    oldest = np.zeros((K, O)) if oldest_wait_s is None else np.asarray(oldest_wait_s, float)
    ready = np.zeros(J) if ready is None else np.asarray(ready, float)
    starting = np.zeros(J) if starting is None else np.asarray(starting, float)
    if ready_in_s is None:
        width = max(1, int(starting.max()) if J else 1)
        ready_in_s = np.full((J, width), np.inf)
        for j in range(J):
            ready_in_s[j, : int(starting[j])] = context.static.cold_start_s[j]
    q = QueueState(
        backlog_requests=backlog, backlog_tokens=backlog * tokens_per_request, oldest_wait_s=oldest, min_slack_s=slack,
        arrivals_requests=arrivals, arrivals_tokens=arrivals * tokens_per_request, trend_tokens_s=np.zeros((K, O)),
    )
    sig = context.signals
    marg = sig.marginal_at(t_s) if sig is not None else np.full(O, 300.0)
    avg = sig.average_at(t_s) if sig is not None else np.full(O, 300.0)
    return Observation(
        step=step, t_s=t_s, queues=q, replicas_ready=ready, replicas_starting=starting, replicas_draining=np.zeros(J),
        ready_in_s=np.asarray(ready_in_s, float), in_flight=np.zeros(J), utilisation=np.zeros(J),
        served_tokens_s=np.zeros((K, J)), marginal_g_per_kwh=marg, average_g_per_kwh=avg,
        price_usd_per_h=np.asarray(context.static.price_usd_per_h if price is None else price, float),
        preemption_notices=np.zeros(J), previous_action=previous_action,
    )
