"""Point functions for the sweep tests, importable by spawned and Dask worker processes.

No tests here; kept free of heavy imports so worker processes start fast. Every function is a
deterministic stand-in for ``run_policy(...).summary`` whose values the tests recompute by hand.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path


def expected(carbon: float, rate: float, seed: int, policy: str) -> dict:
    """The summary :func:`synthetic` returns, computed from the inputs alone (for assertions)."""
    return {
        "requests": int(round(1000 * rate)) + seed,
        "cost_usd": 1.5 + 0.25 * carbon + len(policy),
        "carbon_marginal_kg": 10.0 / (1.0 + carbon) + seed,
        "note": policy.upper(),
    }


def synthetic(scenario, policy: str) -> dict:
    w = scenario.controller.weights
    out = expected(w.carbon, scenario.workload.sessions_per_s, scenario.seed, policy)
    out["solve_p95_ms"] = random.random()  # a wall-clock metric: differs run to run, ignored when comparing
    out["threads"] = scenario.controller.solver.threads
    return out


def failing_on_carbon_2(scenario, policy: str) -> dict:
    if scenario.controller.weights.carbon == 2:
        raise ValueError(f"no convergence at carbon=2 for {policy}")
    return synthetic(scenario, policy)


def slow(scenario, policy: str) -> dict:
    """Log ``start <seed> <carbon> <rate> <policy> <pid>`` to $CEDAR_TEST_LOG, sleep $CEDAR_TEST_SLEEP s."""
    log = os.environ.get("CEDAR_TEST_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"start {scenario.seed} {scenario.controller.weights.carbon:g} {scenario.workload.sessions_per_s:g} {policy} {os.getpid()}\n")
    time.sleep(float(os.environ.get("CEDAR_TEST_SLEEP", "0.3")))
    return synthetic(scenario, policy)


def dies_once_on_carbon_1(scenario, policy: str) -> dict:
    """Kill the worker process the first time a carbon=1 point runs (marker in $CEDAR_TEST_DIR)."""
    if scenario.controller.weights.carbon == 1:
        marker = Path(os.environ["CEDAR_TEST_DIR"]) / "died"
        if not marker.exists():
            marker.write_text("x")
            os._exit(3)
    return synthetic(scenario, policy)


def always_dies_on_carbon_1(scenario, policy: str) -> dict:
    if scenario.controller.weights.carbon == 1:
        os._exit(3)
    return synthetic(scenario, policy)


def small_spec(**kw):
    """The small sweep several sweep tests share: 3 carbon weights × 2 rates × 2 policies × 2 seeds
    of a 60 s smoke replay."""
    from cedar_opt.experiments import sweep as sw
    from cedar_opt.paths import scenarios_dir

    base = dict(
        scenario=scenarios_dir() / "smoke.yaml",
        overrides=("duration_s=60",),
        axes=sw.axes_from_options(["controller.weights.carbon=0,1,2"], ["workload.sessions_per_s=0.1,0.2"]),
        policies=("cedar", "round_robin"),
        seeds=2,
    )
    base.update(kw)
    return sw.SweepSpec(**base)
