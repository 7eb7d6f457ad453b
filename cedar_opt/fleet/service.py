"""How much replica time a call costs on each pool: the shared work model.

One call of tier k on pool j occupies its replica for

    a[k, j] = uncached_prompt_k / prefill_tok_s_j  +  output_k / decode_tok_s_j      (replica·s)

where decode_tok_s_j is the pool's decode throughput at full batch (continuous batching shares the
replica among ``max_batch`` sequences). A pool's ``n`` replicas serve requests of tier k at rate
x[k] as long as Σ_k a[k, j]·x[k] ≤ ρ·n (ρ: utilisation target). CEDAR's capacity constraint and the
baselines' autoscaler both use this, so they plan with the same physics.
"""

from __future__ import annotations

import numpy as np

from cedar_opt.interface import PoolStatic

DEFAULT_HINT = {
    # Azure 2023 code trace medians (prompt ≈ 2k tokens, short outputs) as a fallback only.
    "mean_prompt_tokens": np.array([2048.0, 2048.0, 2048.0]),
    "mean_uncached_prompt_tokens": np.array([512.0, 512.0, 512.0]),
    "mean_output_tokens": np.array([128.0, 128.0, 128.0]),
}


def replica_seconds(static: PoolStatic, uncached_tokens: np.ndarray, output_tokens: np.ndarray) -> np.ndarray:
    """Replica-seconds per call, shape [tier, pool], from per-tier mean uncached prompt tokens and
    mean output tokens (the formula in the module docstring)."""
    unc = np.asarray(uncached_tokens, dtype=float)
    out = np.asarray(output_tokens, dtype=float)
    return unc[:, None] / np.asarray(static.prefill_tok_s, float)[None, :] + out[:, None] / np.asarray(static.capacity_tok_s, float)[None, :]


def service_time_s(static: PoolStatic, hint: dict | None, n_tiers: int = 3) -> np.ndarray:
    """Replica-seconds per call, shape [tier, pool], from a workload hint (one-call KV increments)."""
    h = hint or DEFAULT_HINT
    prompt = np.asarray(h.get("mean_uncached_prompt_tokens", h["mean_prompt_tokens"]), float)[:n_tiers]
    out = np.asarray(h["mean_output_tokens"], float)[:n_tiers]
    return replica_seconds(static, prompt, out)
