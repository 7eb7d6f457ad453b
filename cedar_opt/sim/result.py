"""Simulation outputs: the per-request log (pandas) and the per-step state (xarray)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

STATUSES = ("completed", "dropped", "in_flight")


@dataclass
class SimResult:
    """``requests``: one row per arrived call; ``steps``: per-step Dataset; ``actions_info``: each
    step's ``Action.info``; ``stats``: wall time and internal counters."""

    requests: pd.DataFrame
    steps: xr.Dataset
    actions_info: list[dict]
    context: Any = None
    wall_s: float = 0.0
    stats: dict = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        vc = self.requests["status"].value_counts()
        out = {s: int(vc.get(s, 0)) for s in STATUSES}
        out["requests"] = int(len(self.requests))
        return out


def build_requests(sim) -> pd.DataFrame:
    """The request log from the simulator's per-call lists (arrived calls only)."""
    from cedar_opt.sim.engine import BATCH, DONE, DROPPED, NEW

    wl, ctx = sim.workload, sim.context
    state = np.asarray(sim.state, np.int64)
    idx = np.flatnonzero(state != NEW)
    st = state[idx]

    def col(x, dtype=float):
        return np.asarray(x, dtype=dtype)[idx] if len(x) else np.zeros(0, dtype)

    inf2nan = lambda v: np.where(np.isfinite(v), v, np.nan)  # noqa: E731
    arrival = col(sim.arrival)
    ft = col(sim.ft)
    ft = np.where((ft >= 0) & (ft <= sim.t_end), ft, np.nan)
    ft = np.where(st == DROPPED, np.nan, ft)
    fin = inf2nan(col(sim.fin))
    pool = col(sim.c_pool, np.int64)
    pools = ctx.pools
    names = np.array([p.key for p in pools] + [""], dtype=object)
    reg = np.array([p.region for p in pools] + [""], dtype=object)
    gpu = np.array([p.gpu for p in pools] + [""], dtype=object)
    pur = np.array([p.purchase for p in pools] + [""], dtype=object)
    mod = np.array([p.model for p in pools] + [""], dtype=object)
    pi = np.where(pool >= 0, pool, len(pools))
    status = np.where(st == DONE, "completed", np.where(st == DROPPED, "dropped", "in_flight"))
    tiers = np.array(ctx.tiers, dtype=object)
    origins = np.array(ctx.regions, dtype=object)
    tier = wl.tier[idx].astype(np.int64)
    df = pd.DataFrame({
        "request_id": idx,
        "session_id": wl.call_session[idx],
        "call_index": wl.call_index[idx],
        "tier": tiers[tier],
        "origin": origins[wl.session_origin[wl.call_session[idx]]],
        "arrival_s": arrival,
        "pool": names[pi], "region": reg[pi], "gpu": gpu[pi], "purchase": pur[pi], "model": mod[pi],
        "pool_index": pool,
        "model_rank": np.where(pool >= 0, np.append(ctx.static.model_rank, -1)[pi], -1),
        "min_model_rank": wl.min_model_rank[idx],
        "dispatch_s": inf2nan(col(sim.dispatch_s)),
        "admit_s": inf2nan(col(sim.admit_s)),
        "first_token_s": ft,
        "finish_s": fin,
        "dropped_s": inf2nan(col(sim.drop_s)),
        "ttft_s": ft - arrival,
        "e2e_s": fin - arrival,
        "prompt_tokens": wl.prompt_tokens[idx],
        "output_tokens": wl.output_tokens[idx],
        "est_output_tokens": wl.est_output_tokens[idx],
        "prefill_tokens": col(sim.prefill, np.int64),
        "recomputed_tokens": col(sim.recomp, np.int64),
        "deadline_s": np.asarray(ctx.deadline_s)[tier],
        "batch_admit": col(sim.b_admit, np.int64),
        "batch_mean": inf2nan(col(sim.b_mean)),
        "status": pd.Categorical(status, categories=list(STATUSES)),
    })
    df.attrs["in_batch_state"] = int(BATCH)
    return df
