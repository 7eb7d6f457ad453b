"""Turning a solution into an Action, and the actions of the fallback chain (plain numpy).

* :func:`action_from_plan` — replicas of block 0, routing = block-0 served rates normalised per
  (tier, origin), planned release of deferrable tiers;
* :func:`shifted_plan` — the previous step's plan for its second block (what it expected to do
  now), replicas clipped to the scaling limit around the current fleet;
* :func:`safe_action` — the heuristic of last resort: keep the current fleet (clipped to quotas
  and the scaling limit), make sure every tier has a live eligible on-demand pool, route by
  capacity over nearby pools, cap HIGH's spot share, defer nothing.
"""

from __future__ import annotations

import numpy as np

from cedar_opt.control.data import Static
from cedar_opt.interface import Action, Observation, PolicyContext

EPS_SHARE = 1e-9


def default_row(st: Static, k: int, o: int, live: np.ndarray) -> np.ndarray:
    """All of (k, o) to the nearest live eligible pool (on-demand first for HIGH), or zeros."""
    row = np.zeros(st.J)
    cand = st.eligible[k] & live
    if st.tiers[k] == "HIGH" and np.any(cand & ~st.spot):
        cand = cand & ~st.spot
    if not np.any(cand):
        return row
    js = np.flatnonzero(cand)
    j = js[np.argmin(st.lat[k, o, js])]
    row[j] = 1.0
    return row


def routing_from_rates(st: Static, x0: np.ndarray, live: np.ndarray) -> np.ndarray:
    """[k, o, j] shares from block-0 rates x0 [k, o, j]; rows without traffic get a default row."""
    r = np.where(x0 > 0, x0, 0.0)
    tot = r.sum(axis=2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(tot > 1e-12, r / np.maximum(tot, 1e-300), 0.0)
    share[share < EPS_SHARE] = 0.0
    tot = share.sum(axis=2, keepdims=True)
    share = np.where(tot > 0, share / np.where(tot > 0, tot, 1.0), 0.0)
    for k in range(st.K):
        for o in range(st.O):
            if share[k, o].sum() == 0.0:
                share[k, o] = default_row(st, k, o, live)
    return share


def action_from_plan(
    st: Static, n0: np.ndarray, x0: np.ndarray, q0: np.ndarray, obs: Observation, info: dict
) -> Action:
    """``n0`` [j] replicas, ``x0`` [k, o, j] block-0 rates, ``q0`` [k, o] block-0 end backlog."""
    replicas = ensure_high_server(st, np.maximum(np.rint(np.nan_to_num(n0, nan=0.0, posinf=0.0)), 0).astype(np.int64), obs)
    live = (np.asarray(obs.replicas_ready) > 0) | (replicas > 0)
    routing = routing_from_rates(st, x0, live)
    release = np.full(st.K, np.inf)
    demand = np.asarray(obs.queues.backlog_requests, float).sum(axis=1) + x0.sum(axis=(1, 2)) * st.tau[0]
    for k in range(st.K):
        if st.deferrable[k] and q0[k].sum() > 1e-6 * max(1.0, demand[k]):
            release[k] = float(x0[k].sum() * st.tokens_per_request[k])
    if not (st.urgent_slack_s < float(st.deadline_s[st.deferrable].min(initial=np.inf))):
        release[:] = np.inf  # no margin fits below the deadlines: hold nothing
    return Action(
        replicas=replicas, routing=routing, dispatch="weighted", release_tok_s=release,
        urgent_slack_s=st.urgent_slack_s, model_rank_floor=st.floor.astype(np.int64), info=info,
    )


def ensure_high_server(st: Static, replicas: np.ndarray, obs: Observation) -> np.ndarray:
    """HIGH is never held back, so its routing row needs a live eligible pool even when the plan
    (rightly, for an idle step) buys nothing. If none is live, add one replica to the cheapest
    HIGH-eligible on-demand pool (spot only if no on-demand pool is eligible) that the quota
    allows — stopping one replica of a pool HIGH cannot use in the same quota group if that is
    what frees the GPUs. One replica more or less per pool is within any scaling limit."""
    ks = [k for k, t in enumerate(st.tiers) if t == "HIGH"]
    if not ks:
        return replicas
    k = ks[0]
    ready = np.asarray(obs.replicas_ready) > 0
    live = ready | (replicas > 0)
    cand = st.eligible[k] & ~st.spot
    if not cand.any():
        cand = st.eligible[k].copy()
    if (cand & live).any() or not cand.any():
        return replicas
    price = np.asarray(obs.price_usd_per_h, dtype=float)
    out = replicas.copy()
    cur = np.asarray(obs.replicas_ready, float) + np.asarray(obs.replicas_starting, float)
    step = float(st.scale[0]) if len(st.scale) else 1.0  # replicas a pool may start or stop now
    for j in np.flatnonzero(cand)[np.argsort(price[cand], kind="stable")]:
        if out[j] + 1 > st.max_rep[j] or out[j] + 1 > cur[j] + step:
            continue
        g = st.quota_group[j]
        members = st.quota_group == g
        used = float((st.gpus[members] * out[members]).sum())
        if used + st.gpus[j] <= st.quota[g] + 1e-9:
            out[j] += 1
            return out
        for i in np.flatnonzero(members & ~st.eligible[k] & (out > 0)):
            if out[i] - 1 < cur[i] - step:
                continue
            if used - st.gpus[i] + st.gpus[j] <= st.quota[g] + 1e-9:
                out[i] -= 1
                out[j] += 1
                return out
    return replicas


def _scale_clip(st: Static, n: np.ndarray, obs: Observation, max_scale: int) -> np.ndarray:
    cur = np.asarray(obs.replicas_ready, float) + np.asarray(obs.replicas_starting, float)
    n = np.clip(n, np.maximum(cur - max_scale, 0), cur + max_scale)
    return np.minimum(n, st.max_rep)


def shifted_plan(st: Static, plan: dict | None, obs: Observation, max_scale: int, info: dict) -> Action | None:
    """The previous plan's next block as an action (None without a previous plan)."""
    if plan is None:
        return None
    n = _scale_clip(st, np.rint(plan["n1"]), obs, max_scale)
    return action_from_plan(st, n, plan["x1"], np.zeros((st.K, st.O)), obs, info)


def _repair_quota(st: Static, n: np.ndarray, floor_n: np.ndarray) -> np.ndarray:
    n = n.copy()
    for g in range(st.quota.size):
        js = np.flatnonzero(st.quota_group == g)
        while float(np.dot(n[js], st.gpus[js])) > st.quota[g] + 1e-9:
            room = n[js] - floor_n[js]
            if not np.any(room > 0):
                break
            i = js[np.argmax(np.where(room > 0, st.gpus[js] * 1e3 + n[js], -np.inf))]
            n[i] -= 1
    return n


def _quota_free(st: Static, n: np.ndarray, j: int) -> bool:
    g = st.quota_group[j]
    js = np.flatnonzero(st.quota_group == g)
    return float(np.dot(n[js], st.gpus[js])) + st.gpus[j] <= st.quota[g] + 1e-9 and n[j] + 1 <= st.max_rep[j]


def safe_action(st: Static, context: PolicyContext, obs: Observation, max_scale: int, info: dict) -> Action:
    """The heuristic of last resort (see the module docstring)."""
    ready = np.asarray(obs.replicas_ready, float)
    cur = ready + np.asarray(obs.replicas_starting, float)
    lo = np.maximum(cur - max_scale, 0)
    n = np.clip(cur, lo, np.minimum(cur + max_scale, st.max_rep))
    n = _repair_quota(st, np.floor(n), np.ceil(lo))
    price = np.asarray(obs.price_usd_per_h, float)
    added = np.zeros(st.J)
    for k in range(st.K):
        live = (ready > 0) | (n > 0)
        need_od = st.tiers[k] == "HIGH" and st.max_spot_share_high < 1.0
        ok = st.eligible[k] & live & (~st.spot if need_od else True)
        if np.any(ok):
            continue
        cand = st.eligible[k] & (~st.spot if need_od else True)
        order = np.flatnonzero(cand)[np.argsort((price * st.a[k])[cand])]
        for j in order:
            if added[j] < max_scale and n[j] + 1 <= cur[j] + max_scale and _quota_free(st, n, j):
                n[j] += 1
                added[j] += 1
                break
    n = ensure_high_server(st, n.astype(np.int64), obs).astype(float)
    live = (ready > 0) | (n > 0)
    cap = np.maximum(n, ready)
    routing = np.zeros((st.K, st.O, st.J))
    for k in range(st.K):
        for o in range(st.O):
            w = np.where(st.eligible[k] & live, cap / np.maximum(st.a[k], 1e-12), 0.0)
            w = w / (1.0 + 10.0 * st.lat[k, o] * st.deadline_s[k])
            if st.tiers[k] == "HIGH":
                od, sp = w * ~st.spot, w * st.spot
                if od.sum() == 0:
                    w = sp
                else:
                    sp_share = sp.sum() / (od.sum() + sp.sum())
                    s = min(sp_share, st.max_spot_share_high)
                    w = od / od.sum() * (1 - s) + (sp / sp.sum() * s if sp.sum() > 0 else 0)
            routing[k, o] = w / w.sum() if w.sum() > 0 else default_row(st, k, o, live)
    return Action(
        replicas=n.astype(np.int64), routing=routing, dispatch="weighted", release_tok_s=np.full(st.K, np.inf),
        model_rank_floor=st.floor.astype(np.int64), info=info,
    )
