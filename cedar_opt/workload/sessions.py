"""Agentic sessions: chains of sequential calls, planned up front, timed by the simulator.

A :class:`Workload` holds, per session, its start time and origin region, and per call (flat
arrays, the calls of session ``s`` at ``call_offset[s]:call_offset[s + 1]``) everything that does
not depend on service: tier, true prompt/output tokens, estimated output tokens, the smallest
model rank allowed, and the think time before the call. Arrival times of calls after the first
are *not* planned: the next call arrives when the previous one completes (or is dropped) plus its
think time, so the simulator issues it (closed loop).

Structure of a session (document of record: ``docs/simulator.md``):

* calls per session ~ 1 + Geometric: mean ``session.calls_mean``;
* the first call is the user's interactive request (HIGH) whenever the HIGH share allows it
  (share_HIGH ≥ 1 / calls_mean); the following calls draw their tier i.i.d. with shares adjusted
  so that each tier's share of *all* calls equals its configured share in expectation;
* call 0's prompt and every call's output come from the token source (rows with replacement);
  call i's context = call i−1's context + its output + a tool result (exponential,
  mean ``session.tool_result_tokens_mean``), truncated to ``session.max_context_tokens``;
* estimated output = true output × LogNormal(0, ``token_estimate_error``) (median-unbiased);
* think time before call i ≥ 1 ~ Exponential(``session.think_time_s``);
* smallest allowed model = the tier's ``min_model`` rank (null: the fleet's smallest model).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cedar_opt.config.schema import TIER_NAMES, Scenario
from cedar_opt.workload.sources import RateShape, TokenSource, rate_shape, token_source

# RNG purposes: one independent stream per purpose, all derived from the seed.
_RNG_SESSIONS, _RNG_TOKENS, _RNG_TIERS, _RNG_THINK, _RNG_ESTIMATE, _RNG_ORIGIN, _RNG_SOURCE = range(1, 8)


def rng_for(seed: int, purpose: int) -> np.random.Generator:
    """One generator per purpose, independent of how many draws other purposes make."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(purpose)]))


@dataclass(frozen=True)
class Workload:
    """Planned sessions and their calls (arrays; see the module docstring)."""

    tiers: tuple[str, ...]
    origins: tuple[str, ...]
    deadline_s: np.ndarray
    """[tier] TTFT deadline (s)."""
    session_start_s: np.ndarray
    """[session] first-call arrival (s of run time), sorted."""
    session_origin: np.ndarray
    """[session] index into ``origins``."""
    call_offset: np.ndarray
    """[session + 1] start of each session's calls in the flat call arrays."""
    tier: np.ndarray
    """[call] index into ``tiers``."""
    prompt_tokens: np.ndarray
    """[call] true context (prompt) tokens, previous turns included."""
    output_tokens: np.ndarray
    """[call] true output tokens."""
    est_output_tokens: np.ndarray
    """[call] output tokens as estimated at arrival (what the queues report)."""
    min_model_rank: np.ndarray
    """[call] smallest catalogue model rank allowed to serve the call."""
    think_s: np.ndarray
    """[call] tool/think time between the previous call's completion and this call (0 for first)."""
    seed: int
    source: str = ""
    shape: RateShape | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_sessions(self) -> int:
        return len(self.session_start_s)

    @property
    def n_calls(self) -> int:
        return len(self.tier)

    @property
    def call_session(self) -> np.ndarray:
        """[call] session index."""
        return np.repeat(np.arange(self.n_sessions), np.diff(self.call_offset))

    @property
    def call_index(self) -> np.ndarray:
        """[call] position of the call in its session (0 = first)."""
        return np.arange(self.n_calls) - np.repeat(self.call_offset[:-1], np.diff(self.call_offset))

    def hint(self) -> dict:
        """Statistics a forecaster may use (per tier mean tokens, calls per session, rates)."""
        out: dict = {"n_sessions": self.n_sessions, "n_calls": self.n_calls,
                     "calls_per_session": self.n_calls / max(self.n_sessions, 1)}
        for k, t in enumerate(self.tiers):
            m = self.tier == k
            out[f"share_{t}"] = float(m.mean()) if self.n_calls else 0.0
            out[f"mean_prompt_tokens_{t}"] = float(self.prompt_tokens[m].mean()) if m.any() else 0.0
            out[f"mean_output_tokens_{t}"] = float(self.output_tokens[m].mean()) if m.any() else 0.0
        # Per-tier arrays in tier order, the form PolicyContext.workload_hint documents
        # (cedar_opt.fleet.service.service_time_s reads them).
        first = self.call_index == 0
        prev_ctx = np.r_[0, self.prompt_tokens[:-1] + self.output_tokens[:-1]].astype(float)
        new_tok = self.prompt_tokens - prev_ctx
        uncached = np.where(first | (new_tok < 0), self.prompt_tokens, new_tok)
        nt = len(self.tiers)

        def per_tier(a: np.ndarray) -> np.ndarray:
            return np.array([float(a[self.tier == k].mean()) if (self.tier == k).any() else 0.0 for k in range(nt)])

        out["mean_prompt_tokens"] = per_tier(self.prompt_tokens.astype(float))
        out["mean_uncached_prompt_tokens"] = per_tier(uncached.astype(float))
        out["mean_output_tokens"] = per_tier(self.output_tokens.astype(float))
        out["mean_est_output_tokens"] = per_tier(self.est_output_tokens.astype(float))
        out["uncached_by_class"] = self.uncached_by_class
        return out

    def uncached_by_class(self, tier_class) -> np.ndarray:
        """[tier] mean prompt tokens a call must prefill when each tier is served by one model
        class (``tier_class[k]``, e.g. the model rank a controller routes tier k to) and every
        model keeps the session's context from the session's previous call on that class.

        A session alternating between a small and a large model finds on each only the context
        of its last call there, so the new part is longer than the one-call increment
        ``mean_uncached_prompt_tokens`` assumes. Truncated contexts count as full re-prefills.
        """
        cls = np.asarray(tier_class)[self.tier]
        sess = self.call_session
        unc = self.prompt_tokens.astype(float).copy()
        for c in np.unique(cls):
            idx = np.flatnonzero(cls == c)  # calls of this class, in (session, call) order
            if idx.size < 2:
                continue
            prev, cur = idx[:-1], idx[1:]
            same = sess[prev] == sess[cur]
            cached = (self.prompt_tokens[prev] + self.output_tokens[prev]).astype(float)
            new = self.prompt_tokens[cur] - cached
            ok = same & (new >= 0)
            unc[cur[ok]] = new[ok]
        nt = len(self.tiers)
        return np.array([float(unc[self.tier == k].mean()) if (self.tier == k).any() else 0.0 for k in range(nt)])


def _session_starts(rng: np.random.Generator, shape: RateShape, sessions_per_s: float) -> np.ndarray:
    lo, hi = shape.edges_s[:-1], shape.edges_s[1:]
    n = rng.poisson(sessions_per_s * shape.shape * (hi - lo))
    starts = np.repeat(lo, n) + rng.random(int(n.sum())) * np.repeat(hi - lo, n)
    return np.sort(starts)


def tier_probabilities(shares: np.ndarray, calls_mean: float) -> tuple[bool, np.ndarray]:
    """(first call forced HIGH?, i.i.d. tier probabilities of the other calls).

    Keeps E[#calls of tier k] / E[#calls] = shares[k]: with the first call HIGH and the rest
    drawn with p, HIGH's share is (1 + (m − 1) p_H) / m, so p_H = (s_H m − 1) / (m − 1) and the
    other tiers scale by m / (m − 1).
    """
    m = float(calls_mean)
    if m <= 1.0 or shares[0] * m < 1.0:
        return False, shares / shares.sum()
    p = shares * m / (m - 1.0)
    p[0] = (shares[0] * m - 1.0) / (m - 1.0)
    p = np.clip(p, 0.0, None)
    return True, p / p.sum()


def build_workload(scenario: Scenario, seed: int | None = None, *, catalogue=None, tokens: TokenSource | None = None,
                   shape: RateShape | None = None) -> Workload:
    """Plan the sessions of ``scenario`` (deterministic per ``seed``, default the scenario's).

    ``catalogue`` (default: the scenario's) gives model ranks; ``tokens`` and ``shape`` override
    the token source and rate shape (tests, or a caller that already loaded them).
    """
    from cedar_opt.fleet.catalogue import load_catalogue

    seed = scenario.seed if seed is None else int(seed)
    w = scenario.workload
    cat = catalogue if catalogue is not None else load_catalogue(scenario.fleet.catalogue)
    frame = None
    if (tokens is None and w.trace != "synthetic") or (shape is None and w.rate_shape == "trace"):
        from cedar_opt.workload.sources import _load_trace_frame

        frame = _load_trace_frame(w)
    tokens = tokens if tokens is not None else token_source(w, rng_for(seed, _RNG_SOURCE), frame)
    shape = shape if shape is not None else rate_shape(w, scenario.duration_s, frame)

    regions = tuple(scenario.fleet.regions)
    starts = _session_starts(rng_for(seed, _RNG_SESSIONS), shape, w.sessions_per_s)
    S = len(starts)
    if w.origins is None:
        o_p = np.full(len(regions), 1.0 / len(regions))
    else:
        o_p = np.array([w.origins.get(r, 0.0) for r in regions], float)
        o_p = o_p / o_p.sum()
    origin = rng_for(seed, _RNG_ORIGIN).choice(len(regions), size=S, p=o_p).astype(np.int64)

    sess = w.session
    rt = rng_for(seed, _RNG_TIERS)
    n_calls = rt.geometric(1.0 / sess.calls_mean, size=S).astype(np.int64) if S else np.zeros(0, np.int64)
    offset = np.zeros(S + 1, np.int64)
    np.cumsum(n_calls, out=offset[1:])
    C = int(offset[-1])
    first = np.zeros(C, bool)
    first[offset[:-1][n_calls > 0]] = True

    shares = np.array([w.tiers[t].share for t in TIER_NAMES], float)
    force_high, p = tier_probabilities(shares, sess.calls_mean)
    tier = rt.choice(len(TIER_NAMES), size=C, p=p).astype(np.int8)
    if force_high:
        tier[first] = 0

    rk = rng_for(seed, _RNG_TOKENS)
    p0, out = tokens.draw(rk, C)
    tool = np.round(rk.exponential(sess.tool_result_tokens_mean, size=C)).astype(np.int64) if sess.tool_result_tokens_mean > 0 else np.zeros(C, np.int64)
    # growth added before call i (i ≥ 1 in its session): previous output + this call's tool result
    growth = np.zeros(C, np.int64)
    if C:
        growth[1:] = out[:-1] + tool[1:]
        growth[first] = 0
        cum = np.cumsum(growth)
        base = np.repeat(cum[offset[:-1]], n_calls)  # cumulative growth at each session's first call
        ctx = np.repeat(p0[offset[:-1]], n_calls) + (cum - base)
    else:
        ctx = np.zeros(0, np.int64)
    prompt = np.minimum(ctx, sess.max_context_tokens).astype(np.int64)

    est = out.astype(float)
    if w.token_estimate_error > 0:
        est = est * rng_for(seed, _RNG_ESTIMATE).lognormal(0.0, w.token_estimate_error, size=C)
    est = np.maximum(1, np.round(est)).astype(np.int64)

    think = rng_for(seed, _RNG_THINK).exponential(sess.think_time_s, size=C) if sess.think_time_s > 0 else np.zeros(C)
    think[first] = 0.0

    fleet_ranks = [cat.model_rank(m) for m in scenario.fleet.models]
    tier_rank = np.array([cat.model_rank(w.tiers[t].min_model) if w.tiers[t].min_model else min(fleet_ranks) for t in TIER_NAMES], np.int64)
    deadline = np.array([w.tiers[t].deadline_s for t in TIER_NAMES], float)
    return Workload(
        tiers=TIER_NAMES, origins=regions, deadline_s=deadline,
        session_start_s=starts, session_origin=origin, call_offset=offset,
        tier=tier, prompt_tokens=prompt, output_tokens=out.astype(np.int64), est_output_tokens=est,
        min_model_rank=tier_rank[tier], think_s=think, seed=seed, source=tokens.name, shape=shape,
        meta={"first_call_high": force_high, "tier_probabilities": p.tolist()},
    )
