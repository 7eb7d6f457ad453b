"""Public helpers for property-testing controllers: hypothesis strategies and a feasibility check.

Users who write their own variant of the controller (or any :class:`~cedar_opt.interface.Policy`)
test its constraints the way we test CEDAR's: draw small, valid, shrinkable worlds, ask the policy
for an action, and check the action with an independent checker written in plain numpy::

    from hypothesis import given
    from cedar_opt.testing import fleets, observations, assert_action_feasible

    @given(data=st.data())
    def test_my_policy_is_feasible(data):
        ctx = data.draw(fleets())
        obs = data.draw(observations(ctx))
        policy = MyPolicy(); policy.reset(ctx)
        assert_action_feasible(policy.act(obs), ctx, obs)

``docs/testing.md`` walks through a complete example, including a property of a user's own
constraint.

Strategies (all draw *small* instances and shrink towards the simplest one: one region, one GPU,
one model, empty queues, round prices):

* :func:`fleets` — a :class:`~cedar_opt.interface.PolicyContext`: regions, GPU types, purchase
  options, models, per-pool figures, quotas, tiers and a matching scenario as ``context.config``;
* :func:`queue_states` — a :class:`~cedar_opt.interface.QueueState` for a context;
* :func:`observations` — an :class:`~cedar_opt.interface.Observation` whose fleet respects quotas;
* :func:`forecasts` — arrival [block, tier, origin] and marginal-carbon [block, region] forecasts;
* :func:`signal_sets` — a :class:`~cedar_opt.data.signalset.SignalSet` over given regions;
* :func:`feasible_actions` — actions that satisfy every rule of the checker (to test checkers and
  code that consumes actions);
* :func:`scenario_documents` — scenario documents (plain dicts) generated from the pydantic schema,
  valid against the bundled catalogue and data pack.

Checks: :func:`check_action_feasible` / :func:`assert_action_feasible` wrap
:func:`cedar_opt.feasibility.check_action` (shapes, integrality, non-negativity, per-pool bounds,
quota groups, scaling limit, routing rows summing to one per tier and origin, eligibility and
right-sizing floors, live pools, HIGH never deferred, HIGH spot share). They accept either a
context (and optional observation) or a :class:`ControlInputs` bundle.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from cedar_opt.feasibility import TOL, check_action
from cedar_opt.interface import Action, Observation, Pool, PolicyContext, PoolStatic, QueueState

__all__ = [
    "ControlInputs",
    "assert_action_feasible",
    "check_action_feasible",
    "feasible_actions",
    "fleets",
    "forecasts",
    "observations",
    "queue_states",
    "scenario_documents",
    "signal_sets",
    "TOL",
]

TIERS = ("HIGH", "MEDIUM", "LOW")


# ============================================================================ checks


@dataclass(frozen=True)
class ControlInputs:
    """Everything one control step is decided from (what a property passes to the checker).

    ``arrivals_req_s`` [block, tier, origin] and ``marginal_g_per_kwh`` [block, region] are the
    forecasts (optional: the checker does not need them; properties that compare solves do).
    """

    context: PolicyContext
    observation: Observation | None = None
    arrivals_req_s: np.ndarray | None = None
    marginal_g_per_kwh: np.ndarray | None = None


def _split_inputs(inputs: ControlInputs | PolicyContext, observation: Observation | None) -> tuple[PolicyContext, Observation | None]:
    if isinstance(inputs, ControlInputs):
        return inputs.context, observation if observation is not None else inputs.observation
    if isinstance(inputs, PolicyContext):
        return inputs, observation
    raise TypeError(f"inputs must be a ControlInputs or a PolicyContext, got {type(inputs).__name__}")


def check_action_feasible(action: Action, inputs: ControlInputs | PolicyContext, observation: Observation | None = None) -> list[str]:
    """Every rule the action breaks (empty: feasible). See :mod:`cedar_opt.feasibility` for the rules."""
    ctx, obs = _split_inputs(inputs, observation)
    return check_action(action, ctx, obs)


def assert_action_feasible(action: Action, inputs: ControlInputs | PolicyContext, observation: Observation | None = None) -> None:
    """Raise ``AssertionError`` listing every rule the action breaks.

    ``inputs`` is a :class:`ControlInputs` or a :class:`~cedar_opt.interface.PolicyContext`
    (then pass the observation, if any, as the third argument: without it the scaling limit and
    the "ready now" part of the live-pool rule cannot be checked).
    """
    problems = check_action_feasible(action, inputs, observation)
    if problems:
        n = len(problems)
        raise AssertionError(f"action infeasible ({n} violation{'s' if n > 1 else ''}):\n  " + "\n  ".join(problems))


# ============================================================================ fleets


def _between(lo_hi: int | tuple[int, int]) -> st.SearchStrategy[int]:
    lo, hi = (lo_hi, lo_hi) if isinstance(lo_hi, int) else lo_hi
    return st.integers(min_value=lo, max_value=hi)


@st.composite
def fleets(
    draw,
    *,
    n_regions: int | tuple[int, int] = (1, 2),
    n_gpus: int | tuple[int, int] = 1,
    n_models: int | tuple[int, int] = (1, 2),
    spot: bool | None = None,
    quota_gpus: tuple[int, int] = (0, 16),
    horizon: Sequence[tuple[int, float]] = ((2, 10.0), (1, 60.0)),
    controller: dict[str, Any] | None = None,
    feasible: bool = True,
) -> PolicyContext:
    """A small fleet as a :class:`PolicyContext` with a matching scenario in ``context.config``.

    * ``n_regions`` / ``n_gpus`` / ``n_models``: a count or an inclusive (min, max) range;
      regions are named ``r0, r1…``, GPU types ``G0…``, models ``M0…`` (rank = index);
    * ``spot``: offer spot pools (None: drawn);
    * ``quota_gpus``: range of each (region, GPU, purchase) group's GPU quota;
    * ``horizon``: the controller's blocks as (count, length_s), the first length is the step;
    * ``controller``: extra ``controller`` fields of the scenario (weights, solver, …), merged in;
    * ``feasible``: guarantee that a feasible action exists from an empty fleet: the on-demand
      group of (r0, G0) has room for one replica of the largest model.

    Pools are ordered region × GPU × purchase × model like :func:`cedar_opt.fleet.pools.build_pools`;
    all figures are per replica and drawn from realistic ranges as round numbers.
    """
    from cedar_opt.config.schema import Scenario
    from cedar_opt.config.loader import deep_merge

    R, G, M = draw(_between(n_regions)), draw(_between(n_gpus)), draw(_between(n_models))
    with_spot = draw(st.booleans()) if spot is None else spot
    purchases = ("on_demand", "spot") if with_spot else ("on_demand",)
    regions = tuple(f"r{i}" for i in range(R))

    # per model: GPUs per replica, non-decreasing with size
    gpr = sorted(draw(st.lists(st.sampled_from([1, 2, 4, 8]), min_size=M, max_size=M)))
    # per (gpu, model) profile
    prof = {}
    for g in range(G):
        for m in range(M):
            cap = draw(st.integers(5, 200)) * 100.0  # decode tokens/s
            prof[g, m] = dict(
                capacity_tok_s=cap,
                prefill_tok_s=cap * draw(st.integers(2, 20)),
                itl_s=draw(st.integers(5, 60)) / 1000.0,
                max_batch=draw(st.sampled_from([16, 64, 128, 256])),
                idle_power_w=draw(st.integers(1, 10)) * 100.0 * gpr[m],
                busy_power_w=0.0,
                cold_start_s=float(draw(st.integers(1, 30)) * 10),
            )
            prof[g, m]["busy_power_w"] = prof[g, m]["idle_power_w"] + draw(st.integers(1, 6)) * 100.0 * gpr[m]
    # per (region, gpu) offer: on-demand USD per GPU-hour, spot discount, hazard
    offer = {}
    for r in range(R):
        for g in range(G):
            offer[r, g] = (
                float(draw(st.integers(1, 12))),
                draw(st.integers(2, 9)) / 10.0,
                draw(st.sampled_from([0.0, 0.01, 0.05, 0.2])),
            )
    pools: list[Pool] = []
    rows: list[dict] = []
    groups: dict[tuple[int, int, str], int] = {}
    group_quota: list[int] = []
    for r in range(R):
        for g in range(G):
            for p in purchases:
                gkey = (r, g, p)
                groups[gkey] = len(groups)
                q = draw(st.integers(*quota_gpus))
                if feasible and (r, g, p) == (0, 0, "on_demand"):
                    q = max(q, gpr[-1])
                group_quota.append(q)
                for m in range(M):
                    od, disc, hazard = offer[r, g]
                    price = od * gpr[m] * (disc if p == "spot" else 1.0)
                    pools.append(Pool(regions[r], f"G{g}", p, f"M{m}"))
                    rows.append(
                        dict(
                            price_usd_per_h=price, **prof[g, m],
                            spot_hazard_per_h=hazard if p == "spot" else 0.0, model_rank=m, quota_gpus=q,
                            quota_group=groups[gkey], gpus_per_replica=gpr[m], max_replicas=q // gpr[m],
                        )
                    )
    cols = {k: np.array([row[k] for row in rows]) for k in rows[0]}
    for k in ("max_batch", "model_rank", "quota_gpus", "quota_group", "gpus_per_replica", "max_replicas"):
        cols[k] = cols[k].astype(np.int64)
    static = PoolStatic(**cols)

    # tiers: ordered deadlines, headroom, right-sizing floors
    d_high = draw(st.sampled_from([0.5, 1.0, 2.0]))
    d_med = d_high * draw(st.sampled_from([2, 5, 10]))
    d_low = d_med * draw(st.sampled_from([2, 6]))
    deadline = np.array([d_high, d_med, d_low])
    headroom = [draw(st.sampled_from([0.5, 0.6, 0.8, 0.9])) for _ in TIERS]
    min_rank = np.array([draw(st.integers(0, M - 1)) for _ in TIERS], dtype=np.int64)

    # network: symmetric RTT, near-zero inside a region
    rtt = np.zeros((R, R))
    for a in range(R):
        rtt[a, a] = draw(st.integers(1, 5)) / 1000.0
        for b in range(a + 1, R):
            rtt[a, b] = rtt[b, a] = draw(st.integers(10, 80)) / 1000.0

    step_s = float(horizon[0][1])
    max_scale = draw(st.integers(1, 8))
    spot_cap = draw(st.sampled_from([0.0, 0.25, 0.5, 1.0]))
    pue = draw(st.sampled_from([1.0, 1.1, 1.2, 1.5]))
    duration = 3600.0
    ctl = {
        "horizon": [{"count": int(c), "length_s": float(l)} for c, l in horizon],
        "max_spot_share_high": spot_cap,
    }
    doc = {
        "name": "hypothesis-fleet",
        "seed": 0,
        "duration_s": duration,
        "step_s": step_s,
        "workload": {
            "trace": "synthetic",
            "tiers": {
                t: {"deadline_s": float(deadline[i]), "share": [0.4, 0.4, 0.2][i], "headroom": headroom[i]}
                for i, t in enumerate(TIERS)
            },
        },
        "fleet": {
            "regions": list(regions), "gpus": [f"G{g}" for g in range(G)], "models": [f"M{m}" for m in range(M)],
            "purchase": list(purchases), "quota_gpus": int(max(group_quota)), "max_scale_per_step": max_scale, "pue": pue,
        },
        "controller": deep_merge(ctl, controller or {}),
    }
    scenario = Scenario.model_validate(doc)
    signals = draw(signal_sets(regions, span_s=duration + 2 * scenario.controller.horizon_s))
    return PolicyContext(
        tiers=TIERS, regions=regions, pools=tuple(pools), static=static, step_s=step_s, duration_s=duration, seed=0,
        deadline_s=deadline, min_model_rank=min_rank, default_model_rank=M - 1, rtt_s=rtt, pue=pue, signals=signals,
        workload_hint=None, config=scenario,
    )


@st.composite
def signal_sets(draw, regions: Sequence[str], *, span_s: float = 7200.0, resolution_s: float = 300.0, max_g_per_kwh: int = 900):
    """Marginal and average carbon intensity per region on a regular grid (g CO2/kWh).

    Each region is flat or a step series whose levels are round numbers; shrinks to flat.
    """
    from cedar_opt.data.signalset import SignalSet

    n = int(math.ceil(span_s / resolution_s)) + 1
    R = len(regions)
    marg = np.empty((n, R))
    avg = np.empty((n, R))
    for r in range(R):
        levels = draw(st.lists(st.integers(0, max_g_per_kwh // 10), min_size=1, max_size=3))
        cuts = sorted(draw(st.lists(st.integers(1, n - 1), min_size=len(levels) - 1, max_size=len(levels) - 1)))
        seg = np.searchsorted(np.array(cuts, dtype=int), np.arange(n), side="right")
        marg[:, r] = np.array(levels, float)[seg] * 10.0
        avg[:, r] = draw(st.integers(0, 60)) * 10.0
    sig = SignalSet.constant(tuple(regions), [0.0] * R, [0.0] * R, span_s=span_s, resolution_s=resolution_s)
    return SignalSet(
        regions=tuple(regions), start=sig.start, resolution_s=resolution_s, marginal_g_per_kwh=marg,
        average_g_per_kwh=avg, provenance={r: "hypothesis" for r in regions},
    )


# ============================================================================ step inputs


@st.composite
def queue_states(draw, context: PolicyContext, *, max_backlog: int = 40, max_arrivals: int = 100):
    """Virtual queues per [tier, origin]: backlog, waits and slack consistent with the deadlines."""
    K, O = len(context.tiers), len(context.regions)
    ints = lambda hi: st.lists(st.integers(0, hi), min_size=K * O, max_size=K * O).map(lambda v: np.array(v, float).reshape(K, O))  # noqa: E731
    backlog = draw(ints(max_backlog))
    arrivals = draw(ints(max_arrivals))
    tok = float(draw(st.integers(2, 80)) * 100)
    # oldest wait as a fraction (in tenths) of up to twice the tier's deadline
    frac = draw(ints(20)) / 10.0
    oldest = np.where(backlog > 0, frac * np.asarray(context.deadline_s, float)[:, None], 0.0)
    slack = np.where(backlog > 0, np.asarray(context.deadline_s, float)[:, None] - oldest, np.inf)
    return QueueState(
        backlog_requests=backlog, backlog_tokens=backlog * tok, oldest_wait_s=oldest, min_slack_s=slack,
        arrivals_requests=arrivals, arrivals_tokens=arrivals * tok, trend_tokens_s=np.zeros((K, O)),
    )


def _within_quota(static: PoolStatic, n: np.ndarray) -> np.ndarray:
    """Lower ``n`` (largest pools first) until every quota group holds."""
    n = np.minimum(np.asarray(n, float).copy(), static.max_replicas)
    for g in np.unique(static.quota_group):
        js = np.flatnonzero(static.quota_group == g)
        while float(np.dot(n[js], static.gpus_per_replica[js])) > static.quota_gpus[js[0]] + TOL:
            j = js[np.argmax(np.where(n[js] > 0, static.gpus_per_replica[js], -1))]
            n[j] -= 1
    return n


@st.composite
def observations(
    draw,
    context: PolicyContext,
    *,
    step: int = 0,
    t_s: float | None = None,
    max_ready: int = 4,
    max_starting: int = 2,
    previous_action: Action | None = None,
    queues: QueueState | None = None,
) -> Observation:
    """An observation for ``context``: replicas ready and starting within every quota group,
    queues from :func:`queue_states`, prices around the catalogue's, carbon from the context's
    signals (or drawn when it has none)."""
    J, R, K = len(context.pools), len(context.regions), len(context.tiers)
    s = context.static
    t = float(step * context.step_s if t_s is None else t_s)
    ready = _within_quota(s, np.array(draw(st.lists(st.integers(0, max_ready), min_size=J, max_size=J)), float))
    starting = np.array(draw(st.lists(st.integers(0, max_starting), min_size=J, max_size=J)), float)
    starting = np.minimum(starting, s.max_replicas - ready)
    for g in np.unique(s.quota_group):  # drop starting replicas (never ready ones) until the quota holds
        js = np.flatnonzero(s.quota_group == g)
        while float(np.dot(ready[js] + starting[js], s.gpus_per_replica[js])) > s.quota_gpus[js[0]] + TOL:
            starting[js[np.argmax(np.where(starting[js] > 0, s.gpus_per_replica[js], -1))]] -= 1
    width = max(1, int(starting.max()) if J else 1)
    ready_in = np.full((J, width), np.inf)
    for j in range(J):
        for i in range(int(starting[j])):
            ready_in[j, i] = float(draw(st.integers(1, 10))) / 10.0 * s.cold_start_s[j]
    price = np.asarray(s.price_usd_per_h, float) * np.array(draw(st.lists(st.sampled_from([0.5, 1.0, 1.0, 2.0]), min_size=J, max_size=J)))
    if context.signals is not None:
        marg = np.asarray(context.signals.marginal_at(t), float)
        avg = np.asarray(context.signals.average_at(t), float)
    else:
        marg = np.array(draw(st.lists(st.integers(0, 90), min_size=R, max_size=R)), float) * 10.0
        avg = np.array(draw(st.lists(st.integers(0, 60), min_size=R, max_size=R)), float) * 10.0
    q = queues if queues is not None else draw(queue_states(context))
    util = np.where(ready > 0, np.array(draw(st.lists(st.integers(0, 10), min_size=J, max_size=J)), float) / 10.0, 0.0)
    return Observation(
        step=step, t_s=t, queues=q, replicas_ready=ready, replicas_starting=starting, replicas_draining=np.zeros(J),
        ready_in_s=ready_in, in_flight=np.zeros(J), utilisation=util, served_tokens_s=np.zeros((K, J)),
        marginal_g_per_kwh=marg, average_g_per_kwh=avg, price_usd_per_h=price, preemption_notices=np.zeros(J),
        previous_action=previous_action,
    )


@st.composite
def forecasts(draw, context: PolicyContext, n_blocks: int | None = None, *, max_rate_req_s: int = 20):
    """(arrivals [block, tier, origin] in requests/s, marginal carbon [block, region] in g/kWh).

    ``n_blocks`` defaults to the horizon of ``context.config``. Rates are multiples of 0.5
    requests/s, intensities multiples of 10 g/kWh.
    """
    K, O = len(context.tiers), len(context.regions)
    if n_blocks is None:
        n_blocks = sum(b.count for b in context.config.controller.horizon) if context.config is not None else 1
    lam = np.array(draw(st.lists(st.integers(0, 2 * max_rate_req_s), min_size=n_blocks * K * O, max_size=n_blocks * K * O)), float)
    mci = np.array(draw(st.lists(st.integers(0, 90), min_size=n_blocks * O, max_size=n_blocks * O)), float)
    return lam.reshape(n_blocks, K, O) / 2.0, mci.reshape(n_blocks, O) * 10.0


# ============================================================================ actions


@st.composite
def feasible_actions(draw, context: PolicyContext, observation: Observation | None = None) -> Action:
    """An action satisfying every rule of :func:`check_action_feasible` for (context, observation).

    Replicas move from the observed fleet by at most the scaling limit within quotas; each
    (tier, origin) row spreads its traffic over live eligible pools (HIGH's spot share capped);
    a deferrable row may be fully held back. Rejects (``assume``) the rare draw where HIGH has
    no live eligible on-demand pool and none can be started.
    """
    J, K, O = len(context.pools), len(context.tiers), len(context.regions)
    s = context.static
    cfg = context.config
    max_scale = 8 if cfg is None else int(cfg.fleet.max_scale_per_step)
    max_spot = 0.5 if cfg is None else float(cfg.controller.max_spot_share_high)
    if observation is not None:
        ready = np.asarray(observation.replicas_ready, float)
        cur = ready + np.asarray(observation.replicas_starting, float)
    else:
        ready = np.zeros(J)
        cur = np.zeros(J)
    delta = np.array(draw(st.lists(st.integers(-max_scale, max_scale), min_size=J, max_size=J)), float)
    n = np.clip(cur + delta, 0, s.max_replicas)
    lo = np.maximum(cur - max_scale, 0)
    n = np.maximum(_within_quota(s, n), np.minimum(lo, n))  # quota repair never goes below the scale floor
    assume(not _check_quota(s, n))
    rank = np.asarray(s.model_rank)
    top = int(context.default_model_rank)
    floor = np.array([draw(st.integers(int(context.min_model_rank[k]), max(int(context.min_model_rank[k]), min(top, int(rank.max()))))) for k in range(K)])
    spot = np.array([p.purchase == "spot" for p in context.pools], bool)

    def live() -> np.ndarray:
        return (ready > 0) | (n > 0)

    # HIGH needs a live eligible pool, on-demand unless spot may take all of it
    for k in range(K):
        if context.tiers[k] != "HIGH":
            continue
        need = (rank >= floor[k]) & (~spot if max_spot < 1.0 else np.ones(J, bool))
        if np.any(need & live()):
            continue
        for j in np.flatnonzero(need):
            trial = n.copy()
            trial[j] += 1
            if trial[j] <= min(cur[j] + max_scale, s.max_replicas[j]) and not _check_quota(s, trial):
                n = trial
                break
        assume(np.any(need & live()))
    alive = live()
    routing = np.zeros((K, O, J))
    for k in range(K):
        elig = (rank >= floor[k]) & alive
        for o in range(O):
            if not np.any(elig) or (context.tiers[k] != "HIGH" and draw(st.integers(0, 9)) == 0):
                continue  # deferrable row held back (HIGH always has a live pool, above)
            w = np.where(elig, np.array(draw(st.lists(st.integers(0, 4), min_size=J, max_size=J)), float), 0.0)
            if w.sum() == 0:
                w = elig.astype(float)
            if context.tiers[k] == "HIGH":
                od, sp = w * ~spot, w * spot
                if od.sum() == 0 and np.any(elig & ~spot):
                    od = (elig & ~spot).astype(float)
                if od.sum() == 0:
                    w = sp
                elif sp.sum() > 0:
                    share = min(max_spot, draw(st.integers(0, 10)) / 10.0)
                    w = od / od.sum() * (1 - share) + sp / sp.sum() * share
            routing[k, o] = w / w.sum()
    # Hold a deferrable tier only if an urgency margin fits between the longest round trip and
    # its deadline (the checker's deadline rule); the margin is drawn in that range.
    release = np.full(K, np.inf)
    rtt = float(np.max(context.rtt_s)) if np.size(context.rtt_s) else 0.0
    deadline = np.asarray(context.deadline_s, dtype=float)
    urgent = 2.0
    held = [k for k in range(K) if context.tiers[k] != "HIGH" and draw(st.booleans())]
    if held:
        hi = float(min(deadline[k] for k in held))
        if hi > rtt + 1e-3:
            urgent = draw(st.floats(min_value=rtt, max_value=hi, exclude_max=True, allow_nan=False))
            for k in held:
                release[k] = float(draw(st.integers(0, 1000)) * 100)
    return Action(
        replicas=n.astype(np.int64), routing=routing, dispatch="weighted", release_tok_s=release,
        urgent_slack_s=urgent, model_rank_floor=floor.astype(np.int64),
    )


def _check_quota(s: PoolStatic, n: np.ndarray) -> bool:
    """True when some quota group is exceeded."""
    for g in np.unique(s.quota_group):
        js = np.flatnonzero(s.quota_group == g)
        if float(np.dot(n[js], s.gpus_per_replica[js])) > s.quota_gpus[js[0]] + TOL:
            return True
    return False


# ============================================================================ scenario documents


def _leaf_strategy(ann, info) -> st.SearchStrategy | None:
    """A strategy for a schema leaf from its annotation and declared bounds (None: keep the default)."""
    import annotated_types as at

    origin = typing.get_origin(ann)
    if ann is bool:
        return st.booleans()
    if origin is typing.Literal:
        return st.sampled_from(typing.get_args(ann))
    if ann in (int, float):
        lo = hi = None
        lo_open = hi_open = False
        for m in info.metadata:
            if isinstance(m, at.Ge):
                lo = m.ge
            elif isinstance(m, at.Gt):
                lo, lo_open = m.gt, True
            elif isinstance(m, at.Le):
                hi = m.le
            elif isinstance(m, at.Lt):
                hi, hi_open = m.lt, True
        if ann is int:
            lo_i = None if lo is None else int(math.floor(lo)) + (1 if lo_open else 0)
            hi_i = None if hi is None else int(math.ceil(hi)) - (1 if hi_open else 0)
            return st.integers(min_value=lo_i if lo_i is not None else 0, max_value=hi_i if hi_i is not None else (lo_i or 0) + 1000)
        top = hi if hi is not None else (lo or 0) + 1e4
        return st.floats(min_value=lo if lo is not None else 0.0, max_value=top, exclude_min=lo_open, exclude_max=hi_open,
                         allow_nan=False, allow_infinity=False)
    return None


@st.composite
def _schema_model(draw, model, overrides: dict[str, st.SearchStrategy], prefix: str = "") -> dict:
    """A document for ``model``: each field either omitted (its default) or drawn from its type."""
    from pydantic import BaseModel

    doc: dict = {}
    for name, info in model.model_fields.items():
        path = prefix + name
        ann = info.annotation
        if path in overrides:
            v = draw(overrides[path])
            if v is not _OMIT:
                doc[name] = v
            continue
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            if draw(st.booleans()):
                doc[name] = draw(_schema_model(ann, overrides, path + "."))
            continue
        strat = _leaf_strategy(ann, info)
        if strat is not None and draw(st.booleans()):
            doc[name] = draw(strat)
    return doc


_OMIT = object()


def _omit_or(s: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.just(_OMIT), s)


@st.composite
def _fleet_and_tiers(draw) -> tuple[dict, dict, list]:
    """Catalogue-consistent fleet lists, tiers (ordered deadlines, shares summing to 1) and horizon."""
    from cedar_opt.fleet.catalogue import load_catalogue

    cat = load_catalogue()
    regions = draw(st.lists(st.sampled_from(sorted(cat.regions)), min_size=1, max_size=3, unique=True))
    # a GPU type offered in the first region, so the largest model gets an on-demand pool
    offered = sorted(g for g in cat.gpus if cat.offer(regions[0], g) is not None)
    gpus = draw(st.lists(st.sampled_from(offered), min_size=1, max_size=len(offered), unique=True))
    models = draw(st.lists(st.sampled_from(sorted(cat.models)), min_size=1, max_size=len(cat.models), unique=True))
    assume(all(any(cat.profile(m, g) is not None for g in gpus) for m in models))
    fleet = {"regions": regions, "gpus": gpus, "models": models}
    if draw(st.booleans()):
        fleet["purchase"] = draw(st.sampled_from([["on_demand"], ["on_demand", "spot"]]))
    d_high = draw(st.sampled_from([0.5, 1.0, 2.0]))
    d_med = d_high * draw(st.sampled_from([1.5, 5.0]))
    d_low = d_med * draw(st.sampled_from([1.5, 6.0]))
    shares = draw(st.sampled_from([(0.4, 0.4, 0.2), (1.0, 0.0, 0.0), (0.25, 0.25, 0.5)]))
    tiers = {}
    for t, d, sh in zip(TIERS, (d_high, d_med, d_low), shares):
        spec = {"deadline_s": d, "share": sh}
        if draw(st.booleans()):
            spec["min_model"] = draw(st.sampled_from(models))
        if draw(st.booleans()):
            spec["headroom"] = draw(st.sampled_from([0.5, 0.8, 1.0]))
        tiers[t] = spec
    cold = max(p.cold_start_s for p in cat.profiles if p.model in models and p.gpu in gpus)
    return fleet, tiers, cold


@st.composite
def scenario_documents(draw, *, max_duration_s: float = 1800.0) -> dict:
    """A scenario document (a dict, as a YAML file would hold) valid against the bundled catalogue
    and data pack: every scalar field of the schema is either left to its default or drawn within
    its declared bounds; fields that must agree with the catalogue, each other or the data
    (regions, GPUs, models, tiers, horizon, signal window, file paths) are drawn consistently.
    """
    from cedar_opt.config.schema import Scenario

    fleet, tiers, cold = draw(_fleet_and_tiers())
    step = draw(st.sampled_from([5.0, 10.0, 30.0]))
    duration = float(draw(st.integers(1, int(max_duration_s // step))) * step)
    horizon = [{"count": draw(st.integers(1, 6)), "length_s": step}, {"count": draw(st.integers(1, 4)), "length_s": 60.0}]
    covered = horizon[0]["count"] * step + horizon[1]["count"] * 60.0
    if covered < cold:
        horizon.append({"count": int(math.ceil((cold - covered) / 300.0)), "length_s": 300.0})
    day = draw(st.integers(1, 300))
    hour = draw(st.integers(0, 23))
    start = f"2022-{1 + (day - 1) // 28:02d}-{1 + (day - 1) % 28:02d}T{hour:02d}:00:00Z"
    gpu_for_autoscaler = draw(st.sampled_from(fleet["gpus"]))
    overrides = {
        "duration_s": st.just(duration),
        "step_s": st.just(step),
        "name": _omit_or(st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_0123456789", min_size=1, max_size=12)),
        "description": _omit_or(st.text(max_size=40)),
        "workload.trace": _omit_or(st.sampled_from(["azure_code", "azure_conv", "mooncake", "synthetic"])),
        "workload.trace_path": st.just(_OMIT),
        "workload.rate_shape_path": st.just(_OMIT),
        "workload.rate_shape_model": st.just(_OMIT),
        "workload.tiers": st.just(tiers),
        "workload.origins": st.just(_OMIT),
        "fleet.catalogue": st.just(_OMIT),
        "fleet.regions": st.just(fleet["regions"]),
        "fleet.gpus": st.just(fleet["gpus"]),
        "fleet.models": st.just(fleet["models"]),
        "fleet.purchase": st.just(fleet.get("purchase", _OMIT)),
        "fleet.quota_gpus": _omit_or(st.integers(8, 128)),
        "signals.carbon_pack": st.just(_OMIT),
        "signals.marginal_source": st.just(_OMIT),
        "signals.start": st.just(start),
        # the pack is hourly: a limit below one hour rejects gap-free data (see docs/testing.md)
        "signals.max_gap_s": _omit_or(st.floats(min_value=3600.0, max_value=86400.0)),
        "controller.horizon": st.just(horizon),
        "autoscaler.gpu": st.just(gpu_for_autoscaler),
    }
    doc = draw(_schema_model(Scenario, overrides))
    # the sub-model groups above are only present when drawn; make sure the consistent ones are
    doc.setdefault("workload", {})["tiers"] = tiers
    doc.setdefault("fleet", {}).update({k: v for k, v in fleet.items()})
    doc.setdefault("signals", {})["start"] = start
    doc.setdefault("controller", {})["horizon"] = horizon
    doc.setdefault("autoscaler", {})["gpu"] = gpu_for_autoscaler
    doc["duration_s"], doc["step_s"] = duration, step
    return doc
