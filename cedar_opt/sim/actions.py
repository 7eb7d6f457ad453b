"""Checking a policy's :class:`~cedar_opt.interface.Action` before the simulator applies it."""

from __future__ import annotations

import numpy as np

from cedar_opt.interface import Action

DISPATCH_RULES = ("weighted", "round_robin", "least_connections", "min_ttft")
ROW_SUM_TOL = 1e-6
NEG_TOL = 1e-6
"""Negative entries down to −NEG_TOL are solver round-off and are clipped to 0."""


def _arr(policy: str, name: str, v, shape: tuple[int, ...]) -> np.ndarray:
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"policy {policy!r}: action.{name} is not numeric") from None
    if a.shape != shape:
        raise ValueError(f"policy {policy!r}: action.{name} has shape {a.shape}, expected {shape}")
    if np.isnan(a).any():
        raise ValueError(f"policy {policy!r}: action.{name} contains NaN")
    if (a < -NEG_TOL).any():
        i = tuple(int(j) for j in np.argwhere(a < -NEG_TOL)[0])
        raise ValueError(f"policy {policy!r}: action.{name}{list(i)} is negative ({a[i]:.6g})")
    return np.where(a < 0, 0.0, a)  # solver round-off below NEG_TOL is clipped to 0


def validate_action(action: Action, policy: str, n_tiers: int, n_origins: int, n_pools: int) -> dict:
    """Return the action's arrays in canonical form; raise ``ValueError`` naming the policy."""
    if not isinstance(action, Action):
        raise ValueError(f"policy {policy!r}: act() returned {type(action).__name__}, not an Action")
    rep = _arr(policy, "replicas", action.replicas, (n_pools,))
    if not np.isfinite(rep).all() or (np.abs(rep - np.round(rep)) > 1e-6).any():
        raise ValueError(f"policy {policy!r}: action.replicas must be finite non-negative integers")
    rt = _arr(policy, "routing", action.routing, (n_tiers, n_origins, n_pools))
    if not np.isfinite(rt).all():
        raise ValueError(f"policy {policy!r}: action.routing must be finite")
    sums = rt.sum(-1)
    bad = ~((np.abs(sums - 1.0) <= ROW_SUM_TOL) | (sums == 0.0))
    if bad.any():
        k, o = map(int, np.argwhere(bad)[0])
        raise ValueError(f"policy {policy!r}: action.routing[{k}, {o}, :] sums to {sums[k, o]:.6g}, expected 1 (or 0)")
    if action.dispatch not in DISPATCH_RULES:
        raise ValueError(f"policy {policy!r}: action.dispatch {action.dispatch!r} is not one of {', '.join(DISPATCH_RULES)}")
    rel = None if action.release_tok_s is None else _arr(policy, "release_tok_s", action.release_tok_s, (n_tiers,))
    try:
        urgent = float(action.urgent_slack_s)
    except (TypeError, ValueError):
        raise ValueError(f"policy {policy!r}: action.urgent_slack_s is not a number") from None
    if np.isnan(urgent):
        raise ValueError(f"policy {policy!r}: action.urgent_slack_s is NaN")
    floor = None
    if action.model_rank_floor is not None:
        floor = _arr(policy, "model_rank_floor", action.model_rank_floor, (n_tiers,))
        if not np.isfinite(floor).all() or (np.abs(floor - np.round(floor)) > 1e-9).any():
            raise ValueError(f"policy {policy!r}: action.model_rank_floor must be non-negative integers")
        floor = np.round(floor).astype(np.int64)
    return {
        "replicas": np.round(rep).astype(np.int64),
        "routing": rt,
        "dispatch": action.dispatch,
        "release_tok_s": np.full(n_tiers, np.inf) if rel is None else rel,
        "urgent_slack_s": urgent,
        "model_rank_floor": floor,
    }
