"""Scenario schema: every parameter defined once, with its unit, default and description.

All models are frozen and forbid unknown fields, so a typo in a scenario file is an error, not a
silently ignored setting. Semantic checks that need more than one field, or the catalogue, live in
:mod:`cedar_opt.config.checks` and run before anything is simulated.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Tier = Literal["HIGH", "MEDIUM", "LOW"]
TIER_NAMES: tuple[str, ...] = ("HIGH", "MEDIUM", "LOW")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False)


def _finite_non_negative(v: float) -> float:
    if not math.isfinite(v) or v < 0:
        raise ValueError("must be a finite number ≥ 0")
    return v


class TierSpec(_Model):
    """One service tier of agentic calls."""

    deadline_s: float = Field(gt=0)
    """SLO deadline on time to first token (s), measured from arrival at ingress."""
    share: float = Field(ge=0, le=1)
    """Fraction of a session's calls in this tier (dimensionless; tiers sum to 1)."""
    min_model: str | None = None
    """Smallest LLM model (catalogue name) allowed to serve this tier when right-sizing is on;
    null: the smallest model in the fleet."""
    headroom: float = Field(default=0.8, gt=0, le=1)
    """Target utilisation ρ of capacity serving this tier (dimensionless); lower leaves more
    headroom and so lower queueing delay."""


def _default_tiers() -> dict[str, TierSpec]:
    return {
        "HIGH": TierSpec(deadline_s=1.0, share=0.4, min_model=None, headroom=0.6),
        "MEDIUM": TierSpec(deadline_s=5.0, share=0.4, min_model=None, headroom=0.8),
        "LOW": TierSpec(deadline_s=30.0, share=0.2, min_model=None, headroom=0.9),
    }


class SessionSpec(_Model):
    """Shape of agentic sessions (chains of sequential calls)."""

    calls_mean: float = Field(default=12.0, ge=1)
    """Mean number of calls per session (geometric distribution, ≥ 1)."""
    think_time_s: float = Field(default=2.0, ge=0)
    """Mean tool/think time between a call's completion and the next call (s, exponential)."""
    tool_result_tokens_mean: float = Field(default=300.0, ge=0)
    """Mean tokens a tool result adds to the context between calls (exponential)."""
    max_context_tokens: int = Field(default=32768, ge=256)
    """Context is truncated to this many tokens (the serving models' window)."""


class WorkloadSpec(_Model):
    """Where requests come from and how they are shaped into agentic sessions."""

    trace: Literal["azure_code", "azure_conv", "mooncake", "generic_csv", "synthetic"] = "azure_code"
    """Per-request token statistics source; ``synthetic`` draws lognormal tokens (tests only)."""
    trace_path: str | None = None
    """Path to the trace file; null: the bundled copy of the chosen trace."""
    rate_shape: Literal["trace", "servegen", "constant"] = "servegen"
    """How session starts are spread over time: the trace's own arrivals, a ServeGen daily
    shape, or a constant rate."""
    rate_shape_path: str | None = None
    """Path to the ServeGen per-model rate CSV; null: the bundled copy."""
    rate_shape_model: str = "m-large"
    """ServeGen model group whose total rate gives the shape."""
    rate_shape_offset_s: float = Field(default=0.0, ge=0)
    """Offset into the rate shape at which the run starts (s)."""
    sessions_per_s: float = Field(default=1.0, gt=0)
    """Mean session start rate over the run (sessions/s); the shape scales around this mean."""
    session: SessionSpec = SessionSpec()
    tiers: dict[str, TierSpec] = Field(default_factory=_default_tiers)
    """Tier definitions keyed HIGH, MEDIUM, LOW."""
    origins: dict[str, float] | None = None
    """Share of sessions starting in each region (sums to 1); null: equal shares."""
    timeout_factor: float = Field(default=10.0, ge=1)
    """A call still without its first token this many deadlines after arrival is dropped
    (the client gives up) (dimensionless)."""
    token_estimate_error: float = Field(default=0.2, ge=0, le=5)
    """Relative error (σ of a lognormal factor) of the output-token estimate the controller sees."""

    @field_validator("tiers")
    @classmethod
    def _tiers_complete(cls, v: dict[str, TierSpec]) -> dict[str, TierSpec]:
        if set(v) != set(TIER_NAMES):
            raise ValueError(f"must define exactly the tiers {', '.join(TIER_NAMES)}; got {', '.join(sorted(v)) or 'none'}")
        total = sum(t.share for t in v.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"tier shares must sum to 1, they sum to {total:g}")
        return v


class FleetSpec(_Model):
    """The serving fleet: which catalogue entries may be used, and limits."""

    catalogue: str | None = None
    """Path to a serving catalogue YAML; null: the bundled ``models/catalogue.yaml``."""
    regions: list[str] = Field(default_factory=lambda: ["us-east-1", "us-west-1", "us-west-2"], min_length=1)
    """AWS regions served from (catalogue names); also the request origins."""
    gpus: list[str] = Field(default_factory=lambda: ["A100", "H100"], min_length=1)
    """GPU replica types (catalogue names)."""
    models: list[str] = Field(default_factory=lambda: ["llama-3.1-8b", "llama-3.1-70b"], min_length=1)
    """LLM models (catalogue names)."""
    purchase: list[Literal["on_demand", "spot"]] = Field(default_factory=lambda: ["on_demand", "spot"], min_length=1)
    """Purchase options allowed."""
    quota_gpus: int = Field(default=64, ge=0)
    """On-demand GPU quota per (region, GPU type) (GPUs)."""
    spot_quota_gpus: int | None = Field(default=None, ge=0)
    """Spot GPU capacity per (region, GPU type) (GPUs); null: the same as ``quota_gpus``.
    Spot capacity for large GPU instances is scarce, so scenarios usually set it lower."""
    max_scale_per_step: int = Field(default=8, ge=1)
    """Most replicas a pool may start or stop in one control step."""
    initial_replicas: int = Field(default=1, ge=0)
    """Ready replicas of each on-demand pool of the largest model at t = 0 (warm start of the run)."""
    pue: float = Field(default=1.2, ge=1.0, le=3.0)
    """Power usage effectiveness of the data centres (dimensionless)."""
    kv_ttl_s: float = Field(default=300.0, ge=0)
    """How long a replica keeps a finished session's KV cache (s)."""
    preemption_notice_s: float = Field(default=120.0, ge=0)
    """Warning a spot replica gets before it is reclaimed (s)."""
    spot_hazard_scale: float = Field(default=1.0, ge=0, le=10000)
    """Multiplier on the catalogue's spot preemption hazard (dimensionless; for stress tests)."""


class SignalSpec(_Model):
    """Carbon signals and their forecasts."""

    carbon_pack: str | None = None
    """Directory or file of carbon signals; null: the bundled data pack."""
    marginal_source: dict[str, str] | None = None
    """Per region: which marginal series to use (e.g. ``estimated``, ``watttime``); null: pack default."""
    start: str = "2022-06-15T00:00:00Z"
    """Calendar time (UTC, ISO 8601) the run's t = 0 is aligned to in the signals."""
    wrap_year: bool = False
    """Read a calendar window outside a series' data from the same hour and weekday a whole number
    of 52-week blocks away (explicit opt-in; recorded in the provenance). Lets a 2023 real
    marginal series run beside 2022 signals of the other regions."""
    forecast: Literal["persistence", "seasonal", "oracle", "noisy_oracle"] = "persistence"
    """Carbon forecast the controller uses over its horizon."""
    forecast_noise: float = Field(default=0.1, ge=0, le=5)
    """Relative error (σ) of the ``noisy_oracle`` forecast."""
    arrival_forecast: Literal["persistence", "seasonal", "oracle", "noisy_oracle"] = "persistence"
    """Arrival-rate forecast the controller uses over its horizon."""
    max_gap_s: float = Field(default=7200.0, gt=0)
    """Longest gap in a signal that may be filled by interpolation (s); longer gaps are errors."""

    @field_validator("start", mode="before")
    @classmethod
    def _from_yaml_datetime(cls, v):
        """An unquoted YAML timestamp arrives as a datetime: keep it as ISO text."""
        import datetime as _dt

        if isinstance(v, _dt.datetime):
            if v.tzinfo is None:
                v = v.replace(tzinfo=_dt.timezone.utc)
            return v.isoformat().replace("+00:00", "Z")
        return v

    @field_validator("start")
    @classmethod
    def _iso_utc(cls, v: str) -> str:
        import datetime as _dt

        try:
            t = _dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be an ISO 8601 time such as 2022-06-15T12:00:00Z") from None
        if t.tzinfo is None or t.utcoffset() != _dt.timedelta(0):
            raise ValueError("must be in UTC (end with Z or +00:00)")
        return v


class WeightSpec(_Model):
    """Objective weights (unitless: every term is normalised by a reference value)."""

    latency: float = 1.0
    """Weight of expected queueing/latency (normalised by the tier deadline)."""
    cost: float = 1.0
    """Weight of cloud cost (normalised by the cost of serving the demand on-demand)."""
    carbon: float = 1.0
    """Weight of marginal carbon (normalised likewise)."""
    slo: float = 20.0
    """Weight of SLO shortfall (work not served within its deadline)."""
    stability: float = 0.05
    """Weight of changes in replicas and routing between steps."""

    @field_validator("latency", "cost", "carbon", "slo", "stability")
    @classmethod
    def _finite(cls, v: float) -> float:
        return _finite_non_negative(v)


class HorizonBlock(_Model):
    """A run of equal horizon blocks."""

    count: int = Field(ge=1)
    """Number of blocks."""
    length_s: float = Field(gt=0)
    """Length of each block (s)."""


class SolverSpec(_Model):
    """HiGHS settings for the control step."""

    time_limit_s: float = Field(default=1.0, gt=0)
    """Wall-clock deadline of one solve (s); past it the fallback chain takes over."""
    mip_rel_gap: float = Field(default=0.02, ge=0, le=1)
    """Relative MIP gap at which a solve stops (dimensionless)."""
    threads: int = Field(default=1, ge=1)
    """Solver threads (one per worker keeps sweeps deterministic)."""
    method: Literal["lp_round", "mip"] = "lp_round"
    """``lp_round``: LP relaxation, round replicas up, re-solve routing (fast, gap reported);
    ``mip``: branch and bound to ``mip_rel_gap`` warm-started from the rounded LP."""


class ControllerSpec(_Model):
    """The CEDAR controller."""

    weights: WeightSpec = WeightSpec()
    horizon: list[HorizonBlock] = Field(
        default_factory=lambda: [HorizonBlock(count=6, length_s=10.0), HorizonBlock(count=4, length_s=60.0), HorizonBlock(count=2, length_s=300.0)],
        min_length=1,
    )
    """Multi-resolution receding horizon: fine blocks first, coarser later."""
    max_spot_share_high: float = Field(default=0.5, ge=0, le=1)
    """Largest share of HIGH work served on spot replicas (dimensionless)."""
    carbon_aware: bool = True
    """Route and size with marginal carbon in the objective (off: ablation ``cedar_no_carbon``)."""
    slack_tracking: bool = True
    """Use virtual-queue slack and deferral (off: ablation ``cedar_no_slack``)."""
    right_sizing: bool = True
    """Let tiers use smaller models (off: ablation ``cedar_no_rightsizing``)."""
    solver: SolverSpec = SolverSpec()

    @property
    def horizon_s(self) -> float:
        return sum(b.count * b.length_s for b in self.horizon)


class AutoscalerSpec(_Model):
    """The utilisation-target autoscaler shared by the baselines."""

    target_utilisation: float = Field(default=0.6, gt=0, le=1)
    """Replicas are sized so forecast load is this fraction of capacity (dimensionless)."""
    scale_down_delay_s: float = Field(default=120.0, ge=0)
    """Load must stay low this long before replicas are stopped (s)."""
    gpu: str = "H100"
    """GPU type the baselines run on (the fastest in the catalogue by default)."""


class Scenario(_Model):
    """A complete, reproducible experiment description."""

    name: str = "unnamed"
    """Short name used in reports."""
    description: str = ""
    """What this scenario is for."""
    seed: int = Field(default=0, ge=0)
    """Seed of every random draw in the run."""
    duration_s: float = Field(default=3600.0, gt=0)
    """Simulated time (s)."""
    step_s: float = Field(default=10.0, gt=0)
    """Control period (s)."""
    drain_s: float = Field(default=300.0, ge=0)
    """Extra simulated time after the last arrival to let in-flight requests finish (s)."""
    workload: WorkloadSpec = WorkloadSpec()
    fleet: FleetSpec = FleetSpec()
    signals: SignalSpec = SignalSpec()
    controller: ControllerSpec = ControllerSpec()
    autoscaler: AutoscalerSpec = AutoscalerSpec()

    @model_validator(mode="after")
    def _step_divides(self) -> "Scenario":
        if self.step_s > self.duration_s:
            raise ValueError(f"step_s ({self.step_s:g}) is longer than duration_s ({self.duration_s:g})")
        return self
