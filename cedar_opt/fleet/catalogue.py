"""The serving catalogue: LLM models × GPU replica profiles, prices, spot hazard, network.

The catalogue is data (``models/catalogue.yaml``); this module is its schema and loader. Every
number in the YAML carries a ``source`` that cites where it comes from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cedar_opt.errors import CedarInputError, format_validation_error
from cedar_opt.paths import repo_root


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False)


class LLMModel(_Model):
    params_b: float = Field(gt=0)
    """Parameters (billions)."""
    source: str
    """Public source of the model's figures."""


class GPUType(_Model):
    instance_type: str
    """AWS instance type that carries this GPU."""
    gpus_per_instance: int = Field(ge=1)
    memory_gb: float = Field(gt=0)
    """Memory per GPU (GB)."""
    tdp_w: float = Field(gt=0)
    """Thermal design power per GPU (W)."""
    source: str


class ReplicaProfile(_Model):
    """How one replica of ``model`` on ``gpus_per_replica`` GPUs of type ``gpu`` serves."""

    model: str
    gpu: str
    gpus_per_replica: int = Field(ge=1)
    prefill_tok_s: float = Field(gt=0)
    """Prefill throughput (prompt tokens/s) of one replica."""
    itl_s_batch1: float = Field(gt=0)
    """Per-output-token latency at batch size 1 (s)."""
    itl_s_per_seq: float = Field(ge=0)
    """Increase of the per-token latency per additional sequence in the batch (s)."""
    max_batch: int = Field(ge=1)
    """Concurrent sequences per replica."""
    idle_power_w: float = Field(ge=0)
    """Power of the replica's GPUs when idle (W, all GPUs of the replica)."""
    busy_power_w: float = Field(gt=0)
    """Power of the replica's GPUs at full batch (W, all GPUs of the replica)."""
    power_batch_exponent: float = Field(default=1.0, gt=0, le=1)
    """γ in P(b) = idle + (busy − idle)·(b / max_batch)^γ: how fast power rises with the batch
    (1 = linear; measured LLM serving is strongly concave, γ ≈ 0.1–0.15) (dimensionless)."""
    cold_start_s: float = Field(ge=0)
    """Time from ordering a replica to serving (instance boot + weights load) (s)."""
    source: str

    @model_validator(mode="after")
    def _power_order(self) -> "ReplicaProfile":
        if self.busy_power_w < self.idle_power_w:
            raise ValueError("busy_power_w must be ≥ idle_power_w")
        return self

    def power_w(self, batch: float) -> float:
        """Power of the replica's GPUs with ``batch`` sequences running (W)."""
        u = min(max(batch / self.max_batch, 0.0), 1.0)
        return self.idle_power_w + (self.busy_power_w - self.idle_power_w) * u**self.power_batch_exponent

    def itl_s(self, batch: float) -> float:
        """Per-output-token latency at ``batch`` concurrent sequences (s)."""
        return self.itl_s_batch1 + self.itl_s_per_seq * max(batch - 1.0, 0.0)

    @property
    def decode_tok_s(self) -> float:
        """Decode throughput at full batch (output tokens/s)."""
        return self.max_batch / self.itl_s(self.max_batch)


class Offer(_Model):
    """Price of an instance type in one region."""

    region: str
    gpu: str
    on_demand_usd_per_h: float = Field(gt=0)
    """On-demand price of one whole instance (USD/h)."""
    spot_usd_per_h: float | None = Field(default=None, gt=0)
    """Spot price of one whole instance (USD/h); null: no spot offer."""
    spot_interruption_bucket: int | None = Field(default=None, ge=0, le=4)
    """AWS Spot Advisor interruption-frequency bucket (0: <5 %/month … 4: >20 %/month)."""
    source: str


class Region(_Model):
    grid: str
    """Grid zone whose carbon signal applies (balancing authority)."""
    rtt_ms: dict[str, float]
    """Round-trip time to each region (ms), itself included."""
    source: str


class Catalogue(_Model):
    """The whole catalogue."""

    version: str
    models: dict[str, LLMModel]
    gpus: dict[str, GPUType]
    profiles: list[ReplicaProfile]
    offers: list[Offer]
    regions: dict[str, Region]
    spot_bucket_monthly_rate: dict[int, float]
    """Interruptions per month assumed for each Spot Advisor bucket (bucket mid-points)."""
    spot_bucket_source: str

    @model_validator(mode="after")
    def _references(self) -> "Catalogue":
        for p in self.profiles:
            if p.model not in self.models:
                raise ValueError(f"profile {p.model}/{p.gpu}: unknown model {p.model!r}")
            if p.gpu not in self.gpus:
                raise ValueError(f"profile {p.model}/{p.gpu}: unknown gpu {p.gpu!r}")
        for o in self.offers:
            if o.region not in self.regions:
                raise ValueError(f"offer {o.region}/{o.gpu}: unknown region {o.region!r}")
            if o.gpu not in self.gpus:
                raise ValueError(f"offer {o.region}/{o.gpu}: unknown gpu {o.gpu!r}")
        for name, r in self.regions.items():
            missing = set(self.regions) - set(r.rtt_ms)
            if missing:
                raise ValueError(f"region {name}: rtt_ms lacks {', '.join(sorted(missing))}")
        return self

    def model_rank(self, model: str) -> int:
        """Size rank of ``model`` among all catalogue models (0 = smallest)."""
        order = sorted(self.models, key=lambda m: self.models[m].params_b)
        return order.index(model)

    def profile(self, model: str, gpu: str) -> ReplicaProfile | None:
        for p in self.profiles:
            if p.model == model and p.gpu == gpu:
                return p
        return None

    def offer(self, region: str, gpu: str) -> Offer | None:
        for o in self.offers:
            if o.region == region and o.gpu == gpu:
                return o
        return None

    def spot_hazard_per_h(self, region: str, gpu: str) -> float:
        """Preemption hazard of a spot instance (per hour) from its Spot Advisor bucket."""
        o = self.offer(region, gpu)
        if o is None or o.spot_interruption_bucket is None:
            return 0.0
        return self.spot_bucket_monthly_rate[o.spot_interruption_bucket] / (30.0 * 24.0)


def default_catalogue_path() -> Path:
    return repo_root() / "models" / "catalogue.yaml"


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read and validate a catalogue YAML; errors name the file and the field."""
    p = Path(path) if path is not None else default_catalogue_path()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise CedarInputError(f"cannot read catalogue: {e.strerror or e}", source=str(p)) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CedarInputError(f"not valid YAML: {e}", source=str(p)) from None
    try:
        return Catalogue.model_validate(doc)
    except ValidationError as e:
        raise CedarInputError(format_validation_error(e), source=str(p)) from None


Purchase = Literal["on_demand", "spot"]
