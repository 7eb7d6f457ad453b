"""Run one policy on one scenario: inputs → simulator → metrics. No disk I/O here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import xarray as xr

from cedar_opt.config.schema import Scenario
from cedar_opt.metrics import by_tier, summarise


@dataclass
class Inputs:
    """Everything a run needs besides the policy; built once and shared by the policies of a compare."""

    scenario: Scenario
    catalogue: object
    signals: object
    workload: object


@dataclass
class RunResult:
    policy: str
    summary: dict
    by_tier: pd.DataFrame
    steps: xr.Dataset
    requests: pd.DataFrame
    wall_s: float
    timings: dict = field(default_factory=dict)


def build_inputs(scenario: Scenario) -> Inputs:
    """Catalogue, carbon signals and the agentic workload of a scenario (checks run first)."""
    from cedar_opt.config.checks import run_checks
    from cedar_opt.data.carbon import load_signals
    from cedar_opt.workload import build_workload

    catalogue = run_checks(scenario)
    signals = load_signals(scenario)
    workload = build_workload(scenario, seed=scenario.seed)
    return Inputs(scenario=scenario, catalogue=catalogue, signals=signals, workload=workload)


def run_with_inputs(inputs: Inputs, policy: str, progress: Callable[[float], None] | None = None) -> RunResult:
    from cedar_opt.fleet.pools import build_pools
    from cedar_opt.policies.registry import make_policy
    from cedar_opt.sim import Simulator

    s = inputs.scenario
    t0 = time.perf_counter()
    pol = make_policy(policy)
    sim = Simulator(s, inputs.catalogue, inputs.signals, inputs.workload)
    res = sim.run(pol, progress=progress)
    t1 = time.perf_counter()
    pools, static = build_pools(s, inputs.catalogue)
    regions = list(s.fleet.regions)
    pool_region = np.array([regions.index(p.region) for p in pools])
    end_s = float(s.duration_s + s.drain_s)
    summary = summarise(
        policy,
        res.requests,
        res.steps,
        res.actions_info,
        gpus_per_replica=static.gpus_per_replica,
        pool_region=pool_region,
        regions=regions,
        step_s=s.step_s,
        end_s=end_s,
    )
    bt = by_tier(policy, res.requests, end_s)
    t2 = time.perf_counter()
    return RunResult(
        policy=policy,
        summary=summary,
        by_tier=bt,
        steps=res.steps,
        requests=res.requests,
        wall_s=t2 - t0,
        timings={"simulate_s": t1 - t0, "metrics_s": t2 - t1},
    )


def run_policy(scenario: Scenario, policy: str, progress: Callable[[float], None] | None = None) -> RunResult:
    """Replay ``scenario`` with ``policy`` (a registry name) and compute its metrics."""
    return run_with_inputs(build_inputs(scenario), policy, progress)
