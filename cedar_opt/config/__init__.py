"""Scenario configuration: schema, loading (``extends``, ``--set``) and semantic checks."""

from cedar_opt.config.loader import load_scenario, scenario_hash
from cedar_opt.config.schema import Scenario

__all__ = ["Scenario", "load_scenario", "scenario_hash"]
