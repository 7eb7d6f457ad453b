"""Sweep core: axis parsing, planning and validation, running, failures, resume, results files."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import test_sweep_fns as fns
from cedar_opt.config.loader import load_scenario, parse_override
from cedar_opt.errors import CedarInputError
from cedar_opt.experiments import sweep as sw
from cedar_opt.experiments.executors import ProcessExecutor, SerialExecutor, make_executor
from cedar_opt.paths import scenarios_dir

SMOKE = scenarios_dir() / "smoke.yaml"


from test_sweep_fns import small_spec  # noqa: E402  (shared with test_sweep_dask.py)


# ----------------------------------------------------------------------------- parsing


def test_parse_axis_text_scalars_and_lists():
    assert sw.parse_axis_text("a.b=1,2.5,x,true") == ("a.b", [1, 2.5, "x", True])
    assert sw.parse_axis_text("fleet.gpus=[[A100], [H100], [A100, H100]]") == ("fleet.gpus", [["A100"], ["H100"], ["A100", "H100"]])
    assert sw.parse_axis_text("k=['a,b', c]") == ("k", ["a,b", "c"])


@pytest.mark.parametrize("text", ["nokey", "=1,2", "a..b=1", "a=", "a=[1, 2", "k='a,b'"])
def test_parse_axis_text_rejects(text):
    with pytest.raises(CedarInputError):
        sw.parse_axis_text(text)


scalars = st.one_of(
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]), max_size=12),
)


@given(st.one_of(scalars, st.lists(scalars, max_size=4)))
def test_format_value_round_trips_through_set_override(v):
    """Whatever a grid value is, the override text a point carries reads back as that value."""
    _, back = parse_override(f"k={sw.format_value(v)}")
    assert back == v or (isinstance(v, float) and math.isnan(v))


def test_zip_needs_equal_lengths():
    with pytest.raises(CedarInputError, match="same number of values"):
        sw.axes_from_options([], ["a=1,2", "b=1,2,3"])
    ax = sw.axes_from_options([], ["a=1,2", "b=x,y"])[0]
    assert ax.name == "zip" and ax.keys == ("a", "b") and ax.values == ((1, "x"), (2, "y"))
    assert ax.overrides(1) == ("a=2", "b=y")


# ----------------------------------------------------------------------------- planning


def test_plan_is_the_product_of_axes_policies_and_seeds():
    plan = sw.plan_sweep(small_spec(), check_policies=False)
    assert plan.dims == ("controller.weights.carbon", "zip", "policy", "seed")
    assert plan.shape == (3, 2, 2, 2)
    assert len(plan.points) == 24 == len({p.point_id for p in plan.points})
    assert plan.seeds == (7, 8)  # smoke extends paper.yaml, seed 7: --seeds 2 → 7, 8
    p = next(p for p in plan.points if p.index == (2, 1) and p.policy == "round_robin" and p.seed == 8)
    assert p.overrides == ("controller.weights.carbon=2", "workload.sessions_per_s=0.2")
    s = plan.scenario_for(p)
    assert (s.controller.weights.carbon, s.workload.sessions_per_s, s.seed, s.duration_s) == (2, 0.2, 8, 60)
    assert s.controller.solver.threads == 1
    # the point's scenario is exactly what `cedar run --set ...` would load
    direct = load_scenario(SMOKE, ["duration_s=60", *sw.FORCED_OVERRIDES, *p.overrides, "seed=8"])
    assert s == direct


def test_point_ids_are_stable_and_depend_on_every_part():
    a = sw.plan_sweep(small_spec(), check_policies=False)
    b = sw.plan_sweep(small_spec(), check_policies=False)
    assert [p.point_id for p in a.points] == [p.point_id for p in b.points]
    c = sw.plan_sweep(small_spec(overrides=("duration_s=61",)), check_policies=False)
    assert not {p.point_id for p in a.points} & {p.point_id for p in c.points}
    ids = {sw.point_id("h", ["a=1"], "cedar", 0), sw.point_id("h", ["a=2"], "cedar", 0), sw.point_id("h", ["a=1"], "rr", 0),
           sw.point_id("h", ["a=1"], "cedar", 1), sw.point_id("g", ["a=1"], "cedar", 0)}  # fmt: skip
    assert len(ids) == 5


def test_explicit_seeds_and_no_axes():
    plan = sw.plan_sweep(small_spec(axes=(), seeds=(3, 11)), check_policies=False)
    assert plan.shape == (2, 2) and plan.seeds == (3, 11)
    assert {plan.scenario_for(p).seed for p in plan.points} == {3, 11}


@pytest.mark.parametrize(
    "grid, match",
    [
        (["controller.weights.carbn=1,2"], "carbn"),  # unknown key
        (["controller.weights.carbon=1,-2"], "controller.weights.carbon=-2"),  # invalid value
        (["duration_s=60,abc"], "duration_s=abc"),
        (["seed=1,2"], "--seeds"),
        (["fleet.gpus=[[A100, H100], [H100, B200]]"], "B200"),  # value valid for the schema, rejected by the catalogue check
        (["controller.weights.carbon=1,1"], "twice"),
    ],
)
def test_invalid_grid_fails_before_anything_runs(grid, match):
    with pytest.raises(CedarInputError, match=match):
        sw.plan_sweep(small_spec(axes=sw.axes_from_options(grid)), check_policies=False)


def test_combinations_are_checked_not_values_alone():
    # fleet.gpus=[A100] is invalid alone (the autoscaler's GPU is H100) but valid with autoscaler.gpu=A100
    ok = sw.axes_from_options([], ["fleet.gpus=[[A100], [H100]]", "autoscaler.gpu=A100,H100"])
    assert len(sw.plan_sweep(small_spec(axes=ok), check_policies=False).points) == 8
    # shares valid per axis; one combination breaks "shares sum to 1" and is named
    axes = sw.axes_from_options(["workload.tiers.HIGH.share=0.4,0.5", "workload.tiers.LOW.share=0.2,0.1"])
    with pytest.raises(CedarInputError, match="HIGH.share=0.4, workload.tiers.LOW.share=0.1: .*sum to 1, they sum to 0.9"):
        sw.plan_sweep(small_spec(axes=axes), check_policies=False)


def test_unknown_policy_and_bad_seeds():
    with pytest.raises(CedarInputError, match="nope"):
        sw.plan_sweep(small_spec(policies=("cedar", "nope")))
    with pytest.raises(CedarInputError):
        sw.plan_sweep(small_spec(seeds=0), check_policies=False)
    with pytest.raises(CedarInputError):
        sw.plan_sweep(small_spec(seeds=(1, 1)), check_policies=False)


def test_same_field_on_two_axes_is_rejected():
    axes = sw.axes_from_options(["controller.weights.carbon=0,1"], ["controller.weights.carbon=2,3"])
    with pytest.raises(CedarInputError, match="two axes"):
        sw.plan_sweep(small_spec(axes=axes), check_policies=False)


# ----------------------------------------------------------------------------- running


def check_synthetic(ds, plan):
    """Every value equals the hand formula of test_sweep_fns.expected."""
    for p in plan.points:
        s = plan.scenario_for(p)
        sel = dict(zip(plan.dims, (*p.index, plan.spec.policies.index(p.policy), plan.seeds.index(p.seed))))
        got = ds.isel(sel)
        exp = fns.expected(s.controller.weights.carbon, s.workload.sessions_per_s, p.seed, p.policy)
        assert str(got["status"].values) == "ok"
        for k, v in exp.items():
            assert got[k].values.item() == v, (p, k)
        assert got["threads"].values.item() == 1
        assert str(got["point_id"].values) == p.point_id


def test_serial_sweep_writes_every_result(tmp_path):
    plan = sw.plan_sweep(small_spec(), check_policies=False)
    res = sw.run_sweep(plan, tmp_path, executor="serial", point_fn=fns.synthetic)
    assert (res.ran, res.skipped, res.ok, res.failed) == (24, 0, 24, 0)
    check_synthetic(res.dataset, plan)
    assert sorted(p.name for p in (tmp_path / "points").iterdir()) == sorted(f"{p.point_id}.json" for p in plan.points)
    on_disk = sw.load_sweep(tmp_path)
    assert sw.equal_results(on_disk, res.dataset, ignore=())
    assert on_disk["workload.sessions_per_s"].values.tolist() == [0.1, 0.2]
    csv = pd.read_csv(tmp_path / "sweep.csv")
    assert len(csv) == 24 and list(csv.columns[:6]) == ["controller.weights.carbon", "zip", "workload.sessions_per_s", "policy", "seed", "status"]
    row = csv[(csv["controller.weights.carbon"] == 1) & (csv["workload.sessions_per_s"] == 0.2) & (csv.policy == "cedar") & (csv.seed == 8)]
    assert row["requests"].item() == 208 and row["note"].item() == "CEDAR"
    meta = __import__("yaml").safe_load((tmp_path / "sweep.yaml").read_text())
    assert meta["status"]["state"] == "finished" and meta["status"]["ok"] == 24
    assert meta["provenance"]["base_scenario_hash"] == plan.base_hash and meta["provenance"]["git_revision"]
    rec = json.loads((tmp_path / "points" / f"{plan.points[5].point_id}.json").read_text())
    assert rec["overrides"] == list(plan.points[5].overrides) and rec["base_hash"] == plan.base_hash
    assert rec["scenario_hash"] == str(res.dataset["scenario_hash"].values.flat[5])


def test_a_failing_point_is_recorded_and_the_rest_finish_then_resume_reruns_only_it(tmp_path):
    plan = sw.plan_sweep(small_spec(), check_policies=False)
    res = sw.run_sweep(plan, tmp_path, executor="serial", point_fn=fns.failing_on_carbon_2)
    assert (res.ok, res.failed) == (16, 8)
    ds = res.dataset
    bad = ds.sel({"controller.weights.carbon": 2})
    assert (bad["status"] == "failed").all() and np.isnan(bad["requests"]).all()
    assert all("ValueError: no convergence at carbon=2" in e for e in bad["error"].values.ravel())
    assert (ds.sel({"controller.weights.carbon": [0, 1]})["status"] == "ok").all()
    seen = []
    res2 = sw.run_sweep(plan, tmp_path, executor="serial", point_fn=fns.synthetic, on_record=seen.append)
    assert (res2.ran, res2.skipped, res2.ok, res2.failed) == (8, 16, 24, 0)
    assert {r["coords"]["controller.weights.carbon"] for r in seen} == {2}
    assert all(r["attempt"] == 2 for r in seen)
    check_synthetic(res2.dataset, plan)


class _Stop(KeyboardInterrupt):
    pass


def test_resume_after_interruption_runs_only_what_is_missing(tmp_path):
    plan = sw.plan_sweep(small_spec(), check_policies=False)
    n = 0

    def interrupt(_rec):
        nonlocal n
        n += 1
        if n == 5:
            raise _Stop

    with pytest.raises(_Stop):
        sw.run_sweep(plan, tmp_path, executor="serial", point_fn=fns.synthetic, on_record=interrupt)
    assert len(list((tmp_path / "points").glob("*.json"))) == 5
    assert not (tmp_path / "sweep.nc").exists()
    (tmp_path / "points" / f"{plan.points[0].point_id}.json").write_text("{truncated")  # a corrupt record is re-run
    done_before = {json.loads(f.read_text())["point_id"] for f in (tmp_path / "points").glob("*.json") if f.read_text().startswith("{\n")}
    seen = []
    res = sw.run_sweep(plan, tmp_path, executor="serial", point_fn=fns.synthetic, on_record=seen.append)
    assert res.ran == 24 - len(done_before) and res.skipped == len(done_before)
    assert not done_before & {r["point_id"] for r in seen}
    check_synthetic(res.dataset, plan)
    full = sw.run_sweep(plan, tmp_path / "fresh", executor="serial", point_fn=fns.synthetic)
    assert sw.equal_results(full.dataset, res.dataset)
    again = sw.run_sweep(plan, tmp_path, executor="serial", point_fn=fns.synthetic)
    assert (again.ran, again.skipped) == (0, 24)
    rerun = sw.run_sweep(plan, tmp_path, executor="serial", point_fn=fns.synthetic, rerun=True)
    assert rerun.ran == 24


def test_extending_a_sweep_reuses_finished_points(tmp_path):
    sw.run_sweep(sw.plan_sweep(small_spec(seeds=1), check_policies=False), tmp_path, executor="serial", point_fn=fns.synthetic)
    res = sw.run_sweep(sw.plan_sweep(small_spec(seeds=2), check_policies=False), tmp_path, executor="serial", point_fn=fns.synthetic)
    assert (res.ran, res.skipped) == (12, 12)


def test_serial_and_local_processes_give_identical_results(tmp_path):
    plan = sw.plan_sweep(small_spec(), check_policies=False)
    serial = sw.run_sweep(plan, tmp_path / "s", executor="serial", point_fn=fns.synthetic)
    local = sw.run_sweep(plan, tmp_path / "p", executor="local", workers=2, point_fn=fns.synthetic)
    assert local.executor.startswith("local (2 workers")
    assert sw.equal_results(serial.dataset, local.dataset)
    assert not sw.equal_results(serial.dataset, local.dataset, ignore=())  # solve_p95_ms is random: the check can fail
    assert len(set(local.dataset["worker"].values.ravel())) >= 1


def test_local_processes_survive_a_dying_worker(tmp_path, monkeypatch):
    monkeypatch.setenv("CEDAR_TEST_DIR", str(tmp_path))
    spec = small_spec(policies=("cedar",), seeds=1)
    plan = sw.plan_sweep(spec, check_policies=False)
    res = sw.run_sweep(plan, tmp_path / "o", executor=ProcessExecutor(2), point_fn=fns.dies_once_on_carbon_1)
    assert (tmp_path / "died").exists()
    assert (res.ok, res.failed) == (6, 0)
    serial = sw.run_sweep(plan, tmp_path / "s", executor="serial", point_fn=fns.synthetic)
    assert sw.equal_results(serial.dataset, res.dataset)


def test_a_point_that_always_kills_its_worker_fails_alone(tmp_path):
    plan = sw.plan_sweep(small_spec(policies=("cedar",), seeds=1), check_policies=False)
    res = sw.run_sweep(plan, tmp_path, executor=ProcessExecutor(2, max_attempts=2), point_fn=fns.always_dies_on_carbon_1)
    st_ = res.dataset["status"]
    assert (st_.sel({"controller.weights.carbon": 1}) == "failed").all()
    assert (st_.sel({"controller.weights.carbon": [0, 2]}) == "ok").all()
    assert "worker process died each time this point ran (2 attempts" in str(res.dataset["error"].sel({"controller.weights.carbon": 1}).values.flat[0])


def test_point_function_must_return_metrics(tmp_path):
    plan = sw.plan_sweep(small_spec(axes=(), policies=("x",), seeds=1), check_policies=False)
    res = sw.run_sweep(plan, tmp_path, executor="serial", point_fn=lambda s, p: [1, 2])
    assert res.failed == 1 and "expected a mapping" in str(res.dataset["error"].values.flat[0])


@pytest.mark.parametrize("spec", ["threads", "tcp://", "tcp://host", "http://h:1", ""])
def test_make_executor_rejects_unknown(spec):
    if spec == "":
        assert isinstance(make_executor(spec), ProcessExecutor)  # empty means the default
        return
    with pytest.raises(CedarInputError):
        make_executor(spec)


def test_make_executor_names():
    assert isinstance(make_executor("serial"), SerialExecutor)
    assert make_executor("local", 3).workers == 3
    assert make_executor("tcp://127.0.0.1:8786").address == "tcp://127.0.0.1:8786"


# ----------------------------------------------------------------------------- sweep files


def test_bundled_sweep_files_plan(tmp_path):
    files = sorted((scenarios_dir() / "sweeps").glob("*.yaml"))
    assert files
    for f in files:
        spec = sw.load_sweep_file(f)
        plan = sw.plan_sweep(spec)
        assert len(plan.points) == math.prod(plan.shape) > 1, f


def test_sweep_file_fields(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(
        f"name: t\nscenario: {SMOKE}\nset: [duration_s=60]\n"
        "grid:\n  controller.weights.carbon: [0, 1]\n"
        "zip:\n  load:\n    workload.sessions_per_s: [0.1, 0.2, 0.3]\n    fleet.quota_gpus: [8, 16, 32]\n"
        "policies: [cedar, round_robin]\nseeds: [1, 4]\n"
    )
    assert sw.is_sweep_file(f) and not sw.is_sweep_file(SMOKE)
    plan = sw.plan_sweep(sw.load_sweep_file(f))
    assert plan.dims == ("controller.weights.carbon", "load", "policy", "seed") and plan.shape == (2, 3, 2, 2)
    assert plan.base.duration_s == 60 and plan.seeds == (1, 4)


@pytest.mark.parametrize(
    "text, where",
    [
        ("scenario: nope.yaml\n", "scenario"),
        ("grid: {a: 1}\n", "grid.a"),
        ("grid: {}\nzip: {g: {a: [1], b: [1, 2]}}\n", "same number"),
        ("grids: {}\n", "grids"),
        ("grid: {duration_s: [1]}\nseeds: x\n", "seeds"),
        ("grid: [\n", "line"),
    ],
)
def test_bad_sweep_files(tmp_path, text, where):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(CedarInputError, match=where):
        sw.load_sweep_file(f)


def test_zarr_output_round_trips(tmp_path):
    pytest.importorskip("zarr")
    plan = sw.plan_sweep(small_spec(seeds=1), check_policies=False)
    res = sw.run_sweep(plan, tmp_path, executor="serial", point_fn=fns.synthetic, fmt="zarr")
    assert (tmp_path / "sweep.zarr").is_dir() and not (tmp_path / "sweep.nc").exists()
    assert sw.equal_results(sw.load_sweep(tmp_path), res.dataset, ignore=())
