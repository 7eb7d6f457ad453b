"""Numbers the control-step model is built from: static per run, and per step (mutable).

:class:`Static` is fixed for a run (shapes, block lengths, service times, weights, switches): it
decides the model's structure and every constraint-matrix coefficient. :class:`StepData` holds
the values of the model's *mutable parameters* for one step, one numpy array per Pyomo ``Param``
of the same name; the fast path concatenates them into one vector θ (see
:mod:`cedar_opt.control.compile`).

Units: requests/s for rates, requests for backlogs, replica-seconds per request for service
times, seconds for times, USD/h for prices, g CO2/kWh for intensities.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from cedar_opt.fleet.service import replica_seconds
from cedar_opt.interface import Observation, PolicyContext

DEFAULT_PROMPT_TOKENS = 2000.0
DEFAULT_UNCACHED_TOKENS = 600.0
DEFAULT_OUTPUT_TOKENS = 200.0
"""Per-request token defaults used when ``context.workload_hint`` is None (an agentic coding call:
a few thousand tokens of context of which the KV cache usually holds most, a short answer)."""

WAIT_FRACTION = 0.5
"""Share of a deferrable tier's deadline the plan may spend holding work in the virtual queue
(Little's law: backlog ≤ arrival rate × allowed wait); the rest is for network, queue and prefill."""

REF_SMOOTHING = 0.3
"""EWMA weight of the current step in the normalising references (cost, carbon, demand)."""


@dataclass(frozen=True)
class Switches:
    carbon_aware: bool = True
    slack_tracking: bool = True
    right_sizing: bool = True


@dataclass(frozen=True)
class Weights:
    latency: float = 1.0
    cost: float = 1.0
    carbon: float = 1.0
    slo: float = 20.0
    stability: float = 0.05


@dataclass(frozen=True)
class Static:
    """Run-constant inputs of the model (structure and matrix coefficients)."""

    K: int
    O: int
    J: int
    B: int
    tiers: tuple[str, ...]
    deadline_s: np.ndarray  # [k] TTFT deadline (s)
    step_s: float
    tau: np.ndarray  # [b] block length (s)
    start: np.ndarray  # [b] block start relative to now (s)
    deferrable: np.ndarray  # [k] bool
    floor: np.ndarray  # [k] model-rank floor the controller uses
    eligible: np.ndarray  # [k, j] bool
    a: np.ndarray  # [k, j] replica-seconds per request
    rho: np.ndarray  # [k] utilisation headroom
    wait_s: np.ndarray  # [k] allowed queueing wait (0: not deferrable)
    lat: np.ndarray  # [k, o, j] expected TTFT / deadline (dimensionless)
    kv: np.ndarray  # [k, j] extra TTFT / deadline of a request moved off its KV cache
    region_of: np.ndarray  # [j] region index of the pool
    spot: np.ndarray  # [j] bool
    gpus: np.ndarray  # [j]
    max_rep: np.ndarray  # [j]
    quota_group: np.ndarray  # [j]
    quota: np.ndarray  # [g]
    hazard_per_h: np.ndarray  # [j]
    cold_s: np.ndarray  # [j]
    idle_w: np.ndarray  # [j]
    busy_w: np.ndarray  # [j]
    pue: float
    omega: np.ndarray  # [j, b, b'] share of block b's time whose "cold start earlier" lies in block b'

    scale: np.ndarray  # [b] most replicas a pool may change into block b
    max_spot_share_high: float
    tokens_per_request: np.ndarray  # [k] prompt + output tokens (virtual-queue token units)
    weights: Weights
    switches: Switches
    urgent_slack_s: float = 2.0  # held calls are released with at least this much slack left
    slo_cost_per_req: np.ndarray = None  # [k] USD per request on the dearest eligible pool
    slo_carbon_per_req: np.ndarray = None  # [k] g CO2 per request there at 1,000 g/kWh
    integer_blocks: int = 1
    """Leading blocks whose replica counts are integer (the applied block); later blocks are a
    fluid plan (continuous replicas), re-planned every step anyway."""

    @property
    def horizon_s(self) -> float:
        return float(self.tau.sum())


@dataclass
class StepData:
    """Values of the mutable parameters for one step (names = Pyomo Param names)."""

    lam: np.ndarray  # [k, o, b] forecast arrivals (requests/s)
    backlog0: np.ndarray  # [k, o] virtual-queue backlog now (requests)
    urgent0: np.ndarray  # [k, o] backlog whose slack is below one step (requests)
    n_now: np.ndarray  # [j] replicas ready + starting
    ready_cap: np.ndarray  # [j, b] time-mean ready replicas from the current fleet (see ready_capacity)
    nmax: np.ndarray  # [j, b] useful upper bound on replicas (tight integer bound)
    price: np.ndarray  # [j] USD/h per replica
    mci: np.ndarray  # [r, b] marginal intensity forecast (g/kWh)
    prev_rate: np.ndarray  # [k, o, j] previous routing × expected rate (requests/s)
    inv_demand: float  # 1 / requests expected over the horizon
    inv_cost_ref: float  # 1 / reference cost over the horizon (1/USD)
    inv_carbon_ref: float  # 1 / reference marginal emissions over the horizon (1/g)
    inv_rate_ref: float  # 1 / mean request rate (s)
    inv_replica_ref: float  # 1 / reference replica count

    def theta(self) -> np.ndarray:
        """All parameter values as one vector, in field order (the compiled model's θ)."""
        return np.concatenate([np.ravel(np.asarray(getattr(self, f.name), dtype=float)) for f in fields(self)])

    @staticmethod
    def layout(static: "Static") -> dict[str, tuple[int, tuple[int, ...]]]:
        """Per parameter name: (offset in θ, shape)."""
        K, O, J, B = static.K, static.O, static.J, static.B
        R = int(static.region_of.max()) + 1 if J else 0
        R = max(R, O)
        shapes = {
            "lam": (K, O, B), "backlog0": (K, O), "urgent0": (K, O), "n_now": (J,), "ready_cap": (J, B),
            "nmax": (J, B), "price": (J,), "mci": (R, B), "prev_rate": (K, O, J),
            "inv_demand": (), "inv_cost_ref": (), "inv_carbon_ref": (), "inv_rate_ref": (), "inv_replica_ref": (),
        }
        out, off = {}, 0
        for f in fields(StepData):
            shp = shapes[f.name]
            out[f.name] = (off, shp)
            off += int(np.prod(shp)) if shp else 1
        return out


def horizon_blocks(controller) -> tuple[np.ndarray, np.ndarray]:
    tau = np.concatenate([np.full(h.count, float(h.length_s)) for h in controller.horizon])
    start = np.concatenate([[0.0], np.cumsum(tau)[:-1]])
    return tau, start


def _hint(context: PolicyContext, key: str, default: float) -> np.ndarray:
    K = len(context.tiers)
    h = context.workload_hint
    v = None
    if isinstance(h, dict):
        v = h.get(key)
    elif h is not None:
        v = getattr(h, key, None)
    if v is None:
        return np.full(K, default)
    arr = np.broadcast_to(np.asarray(v, dtype=float), (K,)).copy()
    return np.where(np.isfinite(arr) & (arr >= 0), arr, default)


def build_static(context: PolicyContext, switches: Switches) -> Static:
    """Everything run-constant, from the context and the scenario's controller settings."""
    from cedar_opt.config.schema import Scenario

    cfg = context.config if context.config is not None else Scenario()
    ctl = cfg.controller
    st = context.static
    K, O, J = len(context.tiers), len(context.regions), len(context.pools)
    tau, start = horizon_blocks(ctl)
    B = tau.size
    tiers = tuple(context.tiers)
    deadline = np.asarray(context.deadline_s, dtype=float)
    prompt = _hint(context, "mean_prompt_tokens", DEFAULT_PROMPT_TOKENS)
    output = _hint(context, "mean_output_tokens", DEFAULT_OUTPUT_TOKENS)

    if switches.right_sizing:
        floor = np.asarray(context.min_model_rank, dtype=float)
    else:
        floor = np.full(K, float(context.default_model_rank))
    # Prefill a call needs: with tiers on different models (right-sizing), each model holds only
    # the context of the session's last call *on that model* (the workload says how much that is).
    by_class = context.workload_hint.get("uncached_by_class") if isinstance(context.workload_hint, dict) else None
    if callable(by_class):
        uncached = np.asarray(by_class(floor.astype(int)), dtype=float)
    else:
        uncached = _hint(context, "mean_uncached_prompt_tokens", DEFAULT_UNCACHED_TOKENS)
    uncached = np.minimum(uncached, prompt)
    rank = np.asarray(st.model_rank, dtype=float)
    eligible = rank[None, :] >= floor[:, None]

    prefill_s = uncached[:, None] / np.asarray(st.prefill_tok_s, float)[None, :]
    a = replica_seconds(st, uncached, output)  # the work model the baselines' autoscaler uses too
    rho = np.array([cfg.workload.tiers[t].headroom if t in cfg.workload.tiers else 0.8 for t in tiers])
    deferrable = np.array([t != "HIGH" for t in tiers])
    wait_s = np.where(deferrable & switches.slack_tracking, WAIT_FRACTION * deadline, 0.0)

    region_index = {r: i for i, r in enumerate(context.regions)}
    region_of = np.array([region_index[p.region] for p in context.pools], dtype=int)
    rtt = np.asarray(context.rtt_s, dtype=float)[:, region_of]  # [o, j]
    queue_s = prefill_s * (rho / (1.0 - np.minimum(rho, 0.95)))[:, None]
    ttft = rtt[None, :, :] + (prefill_s + queue_s + np.asarray(st.itl_s, float)[None, :])[:, None, :]
    lat = ttft / deadline[:, None, None]
    kv = ((prompt - uncached)[:, None] / np.asarray(st.prefill_tok_s, float)[None, :]) / deadline[:, None]

    cold = np.asarray(st.cold_start_s, dtype=float)
    omega = np.zeros((J, B, B))
    end = start + tau
    for j in range(J):
        for b in range(B):
            lo, hi = start[b] - cold[j], end[b] - cold[j]  # order times whose replicas serve in block b
            omega[j, b] = np.clip(np.minimum(hi, end) - np.maximum(lo, start), 0.0, None) / tau[b]
    scale = float(cfg.fleet.max_scale_per_step) * np.maximum(1.0, np.ceil(tau / float(context.step_s) - 1e-9))
    groups = np.asarray(st.quota_group, dtype=int)
    quota = np.zeros(int(groups.max()) + 1 if J else 0)
    for j in range(J):
        quota[groups[j]] = float(st.quota_gpus[j])
    w = ctl.weights
    weights = Weights(
        latency=w.latency, cost=w.cost, carbon=w.carbon if switches.carbon_aware else 0.0, slo=w.slo, stability=w.stability
    )
    price0 = np.asarray(st.price_usd_per_h, dtype=float)
    busy0 = np.asarray(st.busy_power_w, dtype=float)
    per_req = a / rho[:, None]  # replica-seconds per request at the tier's headroom
    slo_cost = np.where(eligible, per_req * price0[None, :] / 3600.0, 0.0).max(axis=1) if J else np.zeros(K)
    slo_carbon = np.where(eligible, per_req * busy0[None, :], 0.0).max(axis=1) * float(context.pue) / 3.6e6 * 1000.0 if J else np.zeros(K)
    # release held work with 2 s of slack, less for short deadlines, never less than a round trip
    held_deadlines = deadline[deferrable] if deferrable.any() else deadline
    urgent = float(max(np.max(np.asarray(context.rtt_s, dtype=float)) if np.size(context.rtt_s) else 0.0,
                       min(2.0, 0.5 * float(held_deadlines.min()))))
    return Static(
        urgent_slack_s=urgent,
        slo_cost_per_req=slo_cost, slo_carbon_per_req=slo_carbon,
        K=K, O=O, J=J, B=B, tiers=tiers, deadline_s=deadline, step_s=float(context.step_s), tau=tau, start=start,
        deferrable=deferrable, floor=floor, eligible=eligible, a=a, rho=rho, wait_s=wait_s, lat=lat, kv=kv,
        region_of=region_of, spot=np.array([p.purchase == "spot" for p in context.pools], dtype=bool),
        gpus=np.asarray(st.gpus_per_replica, dtype=float), max_rep=np.asarray(st.max_replicas, dtype=float),
        quota_group=groups, quota=quota, hazard_per_h=np.asarray(st.spot_hazard_per_h, dtype=float), cold_s=cold,
        idle_w=np.asarray(st.idle_power_w, dtype=float), busy_w=np.asarray(st.busy_power_w, dtype=float),
        pue=float(context.pue), omega=omega, scale=scale, max_spot_share_high=float(ctl.max_spot_share_high),
        tokens_per_request=prompt + output, weights=weights, switches=switches,
    )


@dataclass
class References:
    """Smoothed normalising references carried from step to step."""

    cost_usd: float | None = None
    carbon_g: float | None = None
    demand_req: float | None = None

    def update(self, cost: float, carbon: float, demand: float) -> tuple[float, float, float]:
        a = REF_SMOOTHING
        self.cost_usd = cost if self.cost_usd is None else (1 - a) * self.cost_usd + a * cost
        self.carbon_g = carbon if self.carbon_g is None else (1 - a) * self.carbon_g + a * carbon
        self.demand_req = demand if self.demand_req is None else (1 - a) * self.demand_req + a * demand
        return self.cost_usd, self.carbon_g, self.demand_req


def urgent_backlog(static: Static, obs: Observation) -> np.ndarray:
    """[k, o] requests of the backlog whose slack is below one step (must be served now).

    The observation gives only the backlog, the oldest wait and the smallest slack; waits are
    taken as spread evenly over [0, oldest wait], so the share with slack < step is
    (step − min slack) / oldest wait, clipped to [0, 1].
    """
    q = obs.queues
    backlog = np.asarray(q.backlog_requests, dtype=float)
    slack = np.asarray(q.min_slack_s, dtype=float)
    oldest = np.maximum(np.asarray(q.oldest_wait_s, dtype=float), 1e-9)
    frac = np.where(np.isfinite(slack), np.clip((static.step_s - slack) / oldest, 0.0, 1.0), 0.0)
    return backlog * frac


def _integral_ready(ready: np.ndarray, ready_in: np.ndarray, a: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Per pool, ∫_a^e (replicas ready at t) dt for the current fleet (a, e per pool)."""
    span = np.maximum(e - a, 0.0)
    r = np.where(np.isfinite(ready_in), ready_in, np.inf)
    extra = np.clip(e[:, None] - np.maximum(a[:, None], r), 0.0, None)
    extra = np.where(np.isfinite(r), extra, 0.0)
    return ready * span + extra.sum(axis=1)


def ready_capacity(static: Static, ready: np.ndarray, starting: np.ndarray, ready_in: np.ndarray) -> np.ndarray:
    """[j, b] the constant part of the readiness row: the block's time-mean of
    R(t) = replicas ready at t (ready now + starting ones past their ready time) for t < cold_j,
    and of −P(t) = −(starting replicas not yet ready at t) for t ≥ cold_j (there the plan's own
    replicas, ordered one cold start earlier, carry the capacity)."""
    J, B = static.J, static.B
    out = np.zeros((J, B))
    cold = static.cold_s
    n_start = np.minimum(np.sum(np.isfinite(ready_in), axis=1), starting) if ready_in.size else np.zeros(J)
    ri = ready_in if ready_in.size else np.full((J, 1), np.inf)
    for b in range(B):
        a = np.full(J, static.start[b])
        e = a + static.tau[b]
        mid = np.clip(cold, a, e)
        ready_part = _integral_ready(ready, ri, a, mid)
        # ∫_mid^e P(t) dt = starting·len − ∫ (# started replicas ready by t)
        pend = n_start * (e - mid) - (_integral_ready(np.zeros(J), ri, mid, e))
        out[:, b] = (ready_part - pend) / static.tau[b]
    return out


def build_step(
    static: Static,
    obs: Observation,
    lam: np.ndarray,
    mci: np.ndarray,
    refs: References | None = None,
    work_factor: np.ndarray | None = None,
) -> StepData:
    """Mutable parameters for this step from the observation and the forecasts.

    ``lam`` [b, k, o] arrival forecast (requests/s), ``mci`` [b, r] marginal-carbon forecast.
    """
    K, O, J, B = static.K, static.O, static.J, static.B
    lam_kob = np.maximum(np.transpose(np.asarray(lam, dtype=float), (1, 2, 0)), 0.0)
    backlog0 = np.maximum(np.nan_to_num(np.asarray(obs.queues.backlog_requests, dtype=float)), 0.0)
    urgent0 = np.minimum(urgent_backlog(static, obs), backlog0) if static.switches.slack_tracking else np.zeros((K, O))
    if work_factor is not None:
        # telemetry says calls cost more than the model's a[k, ·]: plan for proportionally more work
        f = np.asarray(work_factor, dtype=float)
        lam_kob = lam_kob * f[:, None, None]
        backlog0 = backlog0 * f[:, None]
        urgent0 = urgent0 * f[:, None]
    ready = np.asarray(obs.replicas_ready, dtype=float)
    starting = np.asarray(obs.replicas_starting, dtype=float)
    n_now = ready + starting
    ready_in = np.asarray(obs.ready_in_s, dtype=float).reshape(J, -1) if J else np.zeros((0, 0))
    ready_cap = ready_capacity(static, ready, starting, ready_in)

    tau0 = static.tau[0]
    # Tight useful bound: replicas beyond what the largest possible served rate needs never help.
    lam_max = lam_kob.sum(axis=1).max(axis=1) if B else np.zeros(K)  # [k]
    q0 = backlog0.sum(axis=1)
    rate_bound = lam_max + (q0 + lam_max * static.wait_s) / float(static.tau.min())
    need = np.where(static.eligible, static.a / static.rho[:, None] * rate_bound[:, None], 0.0).sum(axis=0)
    useful = np.ceil(need - 1e-9) + 1.0
    nmax = np.minimum(static.max_rep, np.maximum(useful, n_now))[:, None].repeat(B, axis=1)

    price = np.asarray(obs.price_usd_per_h, dtype=float)
    R = max(int(static.region_of.max()) + 1 if J else 0, O)
    mci_rb = np.asarray(mci, dtype=float).T.reshape(R, B)

    exp_rate = lam_kob[:, :, 0] + backlog0 / tau0
    prev = obs.previous_action
    if prev is not None and np.asarray(prev.routing).shape == (K, O, J):
        share = np.nan_to_num(np.asarray(prev.routing, dtype=float))
    else:
        share = np.zeros((K, O, J))
    prev_rate = share * exp_rate[:, :, None]

    # References: serve the expected demand on each tier's cheapest on-demand eligible pool.
    demand_k = (lam_kob * static.tau[None, None, :]).sum(axis=(1, 2)) + q0  # requests over horizon
    od = ~static.spot
    per_req_cost = np.where(static.eligible & od[None, :], static.a / static.rho[:, None] * price[None, :] / 3600.0, np.inf)
    if not np.all(np.isfinite(per_req_cost.min(axis=1))):
        per_req_cost = np.where(static.eligible, static.a / static.rho[:, None] * price[None, :] / 3600.0, np.inf)
    jref = np.argmin(per_req_cost, axis=1)
    rs = static.a[np.arange(K), jref] / static.rho * demand_k  # replica-seconds
    cost_ref = float(np.sum(rs * price[jref] / 3600.0))
    mean_mci = float(np.mean(mci_rb)) if mci_rb.size else 0.0
    carbon_ref = float(np.sum(rs * static.busy_w[jref])) * static.pue / 3.6e6 * max(mean_mci, 1.0)
    demand = float(demand_k.sum())
    floor_req = 0.01 * static.horizon_s  # never normalise by less than 0.01 requests/s of demand
    if refs is not None:
        cost_ref, carbon_ref, demand = refs.update(cost_ref, carbon_ref, demand)
    demand = max(demand, floor_req)
    mean_rate = demand / static.horizon_s
    rep_ref = max(float(np.sum(rs)) / static.horizon_s, 1.0)
    min_price = float(price.min()) if J else 1.0
    cost_ref = max(cost_ref, floor_req * float(static.a.min()) * min_price / 3600.0, 1e-9)
    carbon_ref = max(carbon_ref, 1e-9)
    return StepData(
        lam=lam_kob, backlog0=backlog0, urgent0=urgent0, n_now=n_now, ready_cap=ready_cap, nmax=nmax,
        price=price, mci=mci_rb, prev_rate=prev_rate, inv_demand=1.0 / demand, inv_cost_ref=1.0 / cost_ref,
        inv_carbon_ref=1.0 / carbon_ref, inv_rate_ref=1.0 / mean_rate, inv_replica_ref=1.0 / rep_ref,
    )
