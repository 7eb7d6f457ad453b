"""The contract between the simulator and every policy.

The simulator (``cedar_opt.sim``) and the policies (``cedar_opt.policies``, ``cedar_opt.control``)
never import each other: they meet here, at plain typed data.

* :class:`PolicyContext` is handed to ``Policy.reset`` once per run: the static world (tiers,
  regions, pools, catalogue figures, signals the policy may forecast from, step length).
* :class:`Observation` is what the simulator shows a policy at the start of each control step.
* :class:`Action` is what the policy answers: replica targets per pool, routing shares per tier and
  origin over pools, the per-request dispatch rule, and how much deferrable work to release.

Arrays are numpy, indexed in the fixed orders given by ``PolicyContext`` (``tiers``, ``regions``
as origins, ``pools``). Units are in the field names where they are not obvious.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

TIERS: tuple[str, ...] = ("HIGH", "MEDIUM", "LOW")
"""Tier names in priority order: interactive completion, tool/planning step, background stage."""

PURCHASES: tuple[str, ...] = ("on_demand", "spot")

DispatchRule = Literal["weighted", "round_robin", "least_connections", "min_ttft"]
"""Per-request dispatch mechanism the simulator applies between control steps.

* ``weighted``: each request goes to a pool drawn by the action's routing shares for its
  (tier, origin); within the pool, the replica holding the session's KV cache if it has room,
  else the least-loaded ready replica (session stickiness).
* ``round_robin``: cycle over all ready replicas of eligible models, ignoring region and tier.
* ``least_connections``: the eligible ready replica with the fewest in-flight requests.
* ``min_ttft``: the eligible ready replica with the lowest expected time to first token
  (network round trip + queue + prefill of the uncached context).
"""


@dataclass(frozen=True, slots=True)
class Pool:
    """One pool of identical replicas: (region, GPU, purchase option, LLM model)."""

    region: str
    gpu: str
    purchase: str
    model: str

    @property
    def key(self) -> str:
        return f"{self.region}/{self.gpu}/{self.purchase}/{self.model}"


@dataclass(frozen=True)
class PoolStatic:
    """Static figures of each pool, arrays aligned with ``PolicyContext.pools``.

    All per *replica* (one model instance on ``gpus_per_replica`` GPUs).
    """

    price_usd_per_h: np.ndarray
    """Replica price per hour at the pool's purchase option (spot pools: spot price)."""
    capacity_tok_s: np.ndarray
    """Sustainable token work rate of one replica at full batch (prefill+decode tokens/s)."""
    prefill_tok_s: np.ndarray
    """Prefill throughput of one replica (prompt tokens/s)."""
    itl_s: np.ndarray
    """Per-output-token latency at batch 1 (s)."""
    max_batch: np.ndarray
    """Maximum concurrent sequences per replica."""
    idle_power_w: np.ndarray
    busy_power_w: np.ndarray
    cold_start_s: np.ndarray
    spot_hazard_per_h: np.ndarray
    """Preemption hazard of one spot replica per hour (0 for on-demand)."""
    model_rank: np.ndarray
    """Size rank of the pool's model (0 = smallest)."""
    quota_gpus: np.ndarray
    """Per pool: the GPU quota of its (region, gpu, purchase) group; see ``quota_group``."""
    quota_group: np.ndarray
    """Per pool: index of its quota group (pools sharing a group share ``quota_gpus``)."""
    gpus_per_replica: np.ndarray
    max_replicas: np.ndarray
    """Upper bound on replicas of this pool alone (quota // gpus_per_replica)."""
    power_exponent: np.ndarray | None = None
    """γ of the power curve P(b) = idle + (busy − idle)·(b/max_batch)^γ; None: linear (γ = 1)."""


@dataclass(frozen=True)
class PolicyContext:
    """The static world a policy is reset with. Never changes during a run."""

    tiers: tuple[str, ...]
    regions: tuple[str, ...]
    """Serving regions; request origins are the same regions in the same order."""
    pools: tuple[Pool, ...]
    static: PoolStatic
    step_s: float
    duration_s: float
    seed: int
    deadline_s: np.ndarray
    """Per tier: TTFT deadline of the SLO (s)."""
    min_model_rank: np.ndarray
    """Per tier: smallest model rank allowed when right-sizing is on (requests may carry their own)."""
    default_model_rank: int
    """Rank of the largest model: what every request uses when right-sizing is off."""
    rtt_s: np.ndarray
    """[origin, region] network round trip (s)."""
    pue: float
    signals: Any = None
    """Carbon and price signals (``cedar_opt.data.signals.SignalSet``) for forecasting."""
    workload_hint: Any = None
    """Optional workload statistics (e.g. mean tokens per tier) for forecasting."""
    config: Any = None
    """The resolved scenario (``cedar_opt.config.Scenario``) for policy-specific settings."""


@dataclass(frozen=True)
class QueueState:
    """Virtual queues at the ingress, per [tier, origin]: work waiting for a replica slot.

    Includes requests held back by deferral and requests waiting in replicas' local queues
    (admitted but not yet prefilling).
    """

    backlog_requests: np.ndarray
    backlog_tokens: np.ndarray
    """Estimated token work (prompt + estimated output tokens) of the backlog."""
    oldest_wait_s: np.ndarray
    min_slack_s: np.ndarray
    """Smallest (deadline − wait) over waiting requests; +inf when empty."""
    arrivals_requests: np.ndarray
    """Arrivals during the last control step."""
    arrivals_tokens: np.ndarray
    """Estimated token work of the arrivals during the last step."""
    trend_tokens_s: np.ndarray
    """Change of backlog tokens per second over the last step (positive: growing)."""


@dataclass(frozen=True)
class Observation:
    """What a policy sees at the start of a control step."""

    step: int
    t_s: float
    """Simulated seconds since the run started."""
    queues: QueueState
    replicas_ready: np.ndarray
    """Per pool: replicas serving."""
    replicas_starting: np.ndarray
    """Per pool: replicas ordered, still in cold start."""
    replicas_draining: np.ndarray
    """Per pool: replicas stopping (finishing their requests, taking no new ones)."""
    ready_in_s: np.ndarray
    """Per pool, shape [pool, k]: seconds until each starting replica is ready (padded with inf)."""
    in_flight: np.ndarray
    """Per pool: requests admitted to a replica and not finished."""
    utilisation: np.ndarray
    """Per pool: mean busy fraction of its ready replicas over the last step (0..1)."""
    served_tokens_s: np.ndarray
    """Per [tier, pool]: token work completed per second over the last step."""
    marginal_g_per_kwh: np.ndarray
    """Per region: current marginal carbon intensity."""
    average_g_per_kwh: np.ndarray
    """Per region: current average carbon intensity."""
    price_usd_per_h: np.ndarray
    """Per pool: current replica price."""
    preemption_notices: np.ndarray
    """Per pool: spot replicas under a two-minute preemption notice."""
    previous_action: "Action | None" = None
    work_s: np.ndarray | None = None
    """Per pool: replica-seconds of work done over the last step — prefill engine time plus decode
    slot-time / max_batch (what GPU telemetry would show); None if the simulator does not say."""
    dispatched: np.ndarray | None = None
    """Per [tier, pool]: calls dispatched over the last step."""


@dataclass(frozen=True)
class Action:
    """A policy's decision for the next control step.

    * ``replicas``: target replicas per pool (non-negative integers). The simulator orders the
      difference: new replicas start (ready after the cold start), surplus replicas drain.
    * ``routing``: shares [tier, origin, pool], each (tier, origin) row summing to 1 over pools
      (or all zero when that tier/origin is entirely held back). Used by the ``weighted`` rule.
    * ``dispatch``: the per-request rule (see :data:`DispatchRule`).
    * ``release_tok_s``: per tier, the token work per second released from the virtual queue to
      replicas; ``inf`` releases everything (no deferral). Requests whose slack falls below
      ``urgent_slack_s`` are released regardless (never held past their deadline by deferral).
    * ``model_rank_floor``: per tier, the smallest model rank the policy allows (≥ the request's
      own floor); with right-sizing off a policy sets the largest rank here.
    """

    replicas: np.ndarray
    routing: np.ndarray
    dispatch: DispatchRule = "weighted"
    release_tok_s: np.ndarray | None = None
    urgent_slack_s: float = 2.0
    model_rank_floor: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    """Diagnostics (solve time, gap, fallback reason); never read by the simulator."""


@runtime_checkable
class Policy(Protocol):
    """Everything that decides implements this: CEDAR, its ablations and every baseline."""

    name: str

    def reset(self, context: PolicyContext) -> None: ...

    def act(self, observation: Observation) -> Action: ...
