"""Latency percentiles, SLO, cost, carbon, energy, oscillation, KV recompute (DESIGN.md §7)."""

from cedar_opt.metrics.core import BY_TIER_COLUMNS, SUMMARY_COLUMNS, by_tier, oscillation, relative_change, summarise

__all__ = ["BY_TIER_COLUMNS", "SUMMARY_COLUMNS", "by_tier", "oscillation", "relative_change", "summarise"]
