"""Sweeps of real replays (run_policy on the smoke scenario, one simulated minute): every executor
gives the same results, and the summary metrics land in the Dataset under their DESIGN §7 names."""

from __future__ import annotations

import numpy as np
import pytest

from cedar_opt.experiments import sweep as sw
from cedar_opt.paths import scenarios_dir

SMOKE = scenarios_dir() / "smoke.yaml"


@pytest.fixture(scope="module")
def plan():
    spec = sw.SweepSpec(
        scenario=SMOKE,
        overrides=("duration_s=60", "drain_s=30"),
        axes=sw.axes_from_options(["workload.sessions_per_s=0.2,0.4"]),
        policies=("cedar", "round_robin"),
        seeds=1,
    )
    return sw.plan_sweep(spec)


@pytest.fixture(scope="module")
def serial(plan, tmp_path_factory):
    return sw.run_sweep(plan, tmp_path_factory.mktemp("serial"), executor="serial")


def test_real_sweep_has_every_summary_metric(serial, plan):
    ds = serial.dataset
    assert (serial.ok, serial.failed) == (4, 0), ds["error"].values
    assert set(sw.SUMMARY_COLUMNS) <= set(ds.data_vars)
    # conservation holds at every point
    np.testing.assert_array_equal(ds["requests"], ds["completed"] + ds["dropped"] + ds["in_flight_end"])
    # more load, more requests, for every policy
    assert (ds["requests"].isel({"workload.sessions_per_s": 1}) > ds["requests"].isel({"workload.sessions_per_s": 0})).all()
    # a point re-run alone through the runner gives the same summary
    from cedar_opt.experiments.runner import run_policy

    p = plan.points[-1]
    alone = run_policy(plan.scenario_for(p), p.policy).summary
    got = ds.sel(policy=p.policy).isel({"workload.sessions_per_s": p.index[0], "seed": 0})
    for k in sw.SUMMARY_COLUMNS:
        if k not in sw.TIMING_COLUMNS:
            np.testing.assert_equal(got[k].item(), float(alone[k]), err_msg=k)


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_real_sweep_is_identical_on_every_executor(serial, plan, tmp_path, executor):
    res = sw.run_sweep(plan, tmp_path, executor=executor, workers=2)
    assert (res.ok, res.failed) == (4, 0)
    assert sw.equal_results(serial.dataset, res.dataset)
