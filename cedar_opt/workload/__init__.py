"""Agentic workload: sessions of sequential calls with tiers, deadlines and token estimates."""

from cedar_opt.workload.sessions import Workload, build_workload, rng_for, tier_probabilities
from cedar_opt.workload.sources import RateShape, TokenSource, rate_shape, token_source

__all__ = ["Workload", "build_workload", "rng_for", "tier_probabilities", "RateShape", "TokenSource", "rate_shape", "token_source"]
