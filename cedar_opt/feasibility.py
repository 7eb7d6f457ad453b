"""Independent feasibility check of an :class:`~cedar_opt.interface.Action` — plain numpy, no solver.

Written separately from the MIP (it never imports Pyomo or HiGHS) so it can catch a modelling or
extraction error in the controller, and so users can call it in their own property tests::

    problems = check_action(action, context, observation)   # [] when feasible
    assert_action_feasible(action, context, observation)    # AssertionError listing them

Rules (``TOL`` = 1e-6 absolute):

* shapes: ``replicas`` [pool], ``routing`` [tier, origin, pool], ``release_tok_s`` and
  ``model_rank_floor`` [tier] when given; all finite (``release_tok_s`` may be +inf);
* ``replicas`` are non-negative integers, ≤ ``static.max_replicas`` per pool, and per quota group
  Σ replicas × gpus_per_replica ≤ the group's ``quota_gpus``;
* with an observation: |replicas − current| ≤ ``fleet.max_scale_per_step`` per pool, where current
  = ready + starting (draining replicas are already leaving);
* routing shares ≥ 0, each (tier, origin) row sums to 1, or to 0 for a deferrable tier (any tier
  but HIGH) whose row is entirely held back;
* a share > 0 only to an eligible pool: model rank ≥ the tier's floor (the action's
  ``model_rank_floor`` if given, which must itself be ≥ ``context.min_model_rank``) and the pool has
  replicas ready (observation) or planned (``replicas`` > 0);
* HIGH is never deferred: its ``release_tok_s`` is +inf; others are ≥ 0 (inf = no deferral);
* deadlines: when a tier is held back (finite ``release_tok_s``), held calls are released while
  they can still meet their deadline — ``urgent_slack_s`` ≥ the longest network round trip
  (``context.rtt_s``), and < that tier's deadline;
* per origin, the HIGH share routed to spot pools ≤ ``controller.max_spot_share_high``.

``fleet.max_scale_per_step`` and ``controller.max_spot_share_high`` come from ``context.config``
(a Scenario); without a config the schema defaults (8 and 0.5) apply.
"""

from __future__ import annotations

import numpy as np

from cedar_opt.interface import Action, Observation, PolicyContext

TOL = 1e-6
DISPATCH_RULES = ("weighted", "round_robin", "least_connections", "min_ttft")


def _limits(context: PolicyContext) -> tuple[int, float]:
    cfg = context.config
    scale = 8 if cfg is None else int(cfg.fleet.max_scale_per_step)
    spot = 0.5 if cfg is None else float(cfg.controller.max_spot_share_high)
    return scale, spot


def _pool(context: PolicyContext, j: int) -> str:
    return f"pool {j} ({context.pools[j].key})" if j < len(context.pools) else f"pool {j}"


def _shape(name: str, a, want: tuple[int, ...]) -> list[str]:
    if a is None:
        return [f"{name} is missing (expected shape {want})"]
    arr = np.asarray(a)
    if arr.shape != want:
        return [f"{name} has shape {arr.shape}, expected {want}"]
    return []


def check_action(action: Action, context: PolicyContext, observation: Observation | None = None) -> list[str]:
    """All violations of the rules in the module docstring (empty list: feasible)."""
    K, O, J = len(context.tiers), len(context.regions), len(context.pools)
    st = context.static
    out: list[str] = []
    out += _shape("replicas", action.replicas, (J,))
    out += _shape("routing", action.routing, (K, O, J))
    if action.release_tok_s is not None:
        out += _shape("release_tok_s", action.release_tok_s, (K,))
    if action.model_rank_floor is not None:
        out += _shape("model_rank_floor", action.model_rank_floor, (K,))
    if out:
        return out  # nothing else is meaningful with wrong shapes
    if action.dispatch not in DISPATCH_RULES:
        out.append(f"dispatch {action.dispatch!r} is not one of {', '.join(DISPATCH_RULES)}")
    max_scale, max_spot = _limits(context)

    # -- replicas ------------------------------------------------------------------------------
    n = np.asarray(action.replicas, dtype=float)
    for j in range(J):
        v = n[j]
        if not np.isfinite(v):
            out.append(f"replicas[{j}] {_pool(context, j)} = {v} is not finite")
            continue
        if abs(v - round(v)) > TOL:
            out.append(f"replicas[{j}] {_pool(context, j)} = {v:g} is not an integer")
        if v < -TOL:
            out.append(f"replicas[{j}] {_pool(context, j)} = {v:g} is negative")
        if v > st.max_replicas[j] + TOL:
            out.append(f"replicas[{j}] {_pool(context, j)} = {v:g} exceeds max_replicas {int(st.max_replicas[j])}")
    nf = np.where(np.isfinite(n), n, 0.0)
    for g in np.unique(st.quota_group):
        members = np.flatnonzero(st.quota_group == g)
        used = float(np.sum(nf[members] * st.gpus_per_replica[members]))
        quota = float(st.quota_gpus[members[0]])
        if used > quota + TOL:
            names = ", ".join(context.pools[j].key for j in members) if context.pools else str(members.tolist())
            out.append(f"quota group {int(g)} uses {used:g} GPUs > quota {quota:g} (pools: {names})")
    if observation is not None:
        cur = np.asarray(observation.replicas_ready, float) + np.asarray(observation.replicas_starting, float)
        for j in range(J):
            if abs(nf[j] - cur[j]) > max_scale + TOL:
                out.append(
                    f"replicas[{j}] {_pool(context, j)} = {nf[j]:g} changes by {nf[j] - cur[j]:+g} from the current "
                    f"{cur[j]:g} (ready + starting) > max_scale_per_step {max_scale}"
                )

    # -- floors ---------------------------------------------------------------------------------
    floor = np.asarray(context.min_model_rank, dtype=float).copy()
    if action.model_rank_floor is not None:
        mf = np.asarray(action.model_rank_floor, dtype=float)
        for k in range(K):
            if not np.isfinite(mf[k]) or mf[k] < context.min_model_rank[k] - TOL:
                out.append(f"model_rank_floor[{k}] ({context.tiers[k]}) = {mf[k]:g} is below the tier's min_model_rank {int(context.min_model_rank[k])}")
        floor = np.maximum(floor, np.where(np.isfinite(mf), mf, floor))

    # -- routing --------------------------------------------------------------------------------
    r = np.asarray(action.routing, dtype=float)
    if not np.all(np.isfinite(r)):
        bad = np.argwhere(~np.isfinite(r))[0]
        out.append(f"routing[{bad[0]}, {bad[1]}, {bad[2]}] is not finite")
        return out
    ready = np.asarray(observation.replicas_ready, float) if observation is not None else np.zeros(J)
    live = (ready > 0) | (nf > TOL)
    spot = np.array([p.purchase == "spot" for p in context.pools], dtype=bool)
    for k in range(K):
        tier = context.tiers[k]
        deferrable = tier != "HIGH"
        for o in range(O):
            row = r[k, o]
            where = f"routing[{k}, {o}] ({tier}, origin {context.regions[o]})"
            if np.any(row < -TOL):
                j = int(np.argmin(row))
                out.append(f"{where}: share {row[j]:g} to {_pool(context, j)} is negative")
            total = float(row.sum())
            if abs(total - 1.0) > TOL and not (deferrable and abs(total) <= TOL):
                allowed = "1 (or 0 when fully held back)" if deferrable else "1 (HIGH cannot be held back)"
                out.append(f"{where}: shares sum to {total:.9g}, expected {allowed}")
            for j in np.flatnonzero(row > TOL):
                if st.model_rank[j] < floor[k] - TOL:
                    out.append(f"{where}: share {row[j]:.6g} to {_pool(context, j)} whose model rank {int(st.model_rank[j])} is below the floor {floor[k]:g}")
                if not live[j]:
                    out.append(f"{where}: share {row[j]:.6g} to {_pool(context, j)} which has no replica ready or planned")
            if tier == "HIGH" and total > TOL:
                share = float(row[spot].sum()) / total
                if share > max_spot + TOL:
                    out.append(f"{where}: spot share {share:.6g} exceeds max_spot_share_high {max_spot:g}")

    # -- release -------------------------------------------------------------------------------
    if action.release_tok_s is not None:
        rel = np.asarray(action.release_tok_s, dtype=float)
        for k in range(K):
            if np.isnan(rel[k]) or rel[k] < -TOL:
                out.append(f"release_tok_s[{k}] ({context.tiers[k]}) = {rel[k]} must be ≥ 0 (inf = no deferral)")
            elif context.tiers[k] == "HIGH" and not np.isposinf(rel[k]):
                out.append(f"release_tok_s[{k}] (HIGH) = {rel[k]:g}: HIGH is never deferred, must be inf")
    if not (np.isfinite(action.urgent_slack_s) and action.urgent_slack_s >= 0):
        out.append(f"urgent_slack_s = {action.urgent_slack_s} must be finite and ≥ 0")
    elif action.release_tok_s is not None:
        rel = np.asarray(action.release_tok_s, dtype=float)
        rtt = float(np.max(context.rtt_s)) if np.size(context.rtt_s) else 0.0
        deadline = np.asarray(context.deadline_s, dtype=float)
        for k in range(K):
            if np.isfinite(rel[k]) and rel[k] >= 0 and context.tiers[k] != "HIGH":  # HIGH: rule above
                if action.urgent_slack_s < rtt - TOL:
                    out.append(
                        f"release_tok_s[{k}] ({context.tiers[k]}) holds work but urgent_slack_s = {action.urgent_slack_s:g} s is "
                        f"below the longest round trip ({rtt:g} s): held calls would be released too late to meet their deadline"
                    )
                if action.urgent_slack_s >= deadline[k] - TOL:
                    out.append(
                        f"release_tok_s[{k}] ({context.tiers[k]}) holds work but urgent_slack_s = {action.urgent_slack_s:g} s is "
                        f"not below the tier's deadline ({deadline[k]:g} s): nothing could be held"
                    )
    return out


def assert_action_feasible(action: Action, context: PolicyContext, observation: Observation | None = None) -> None:
    """Raise AssertionError listing every violation of :func:`check_action`."""
    problems = check_action(action, context, observation)
    if problems:
        raise AssertionError(f"action infeasible ({len(problems)} violation{'s' if len(problems) > 1 else ''}):\n  " + "\n  ".join(problems))
