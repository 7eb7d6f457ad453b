"""`cedar sweep` on the command line: exit codes, fail-fast validation, sweep files, resume after Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cedar_opt.cli import main
from cedar_opt.experiments import sweep as sw
from cedar_opt.paths import repo_root, scenarios_dir

SMOKE = scenarios_dir() / "smoke.yaml"
TESTS = Path(__file__).resolve().parent
FAKE = ["--point-fn", "test_sweep_fns:synthetic", "--no-progress"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--grid", "controller.weights.carbn=1,2"], "carbn: unknown field"),
        (["--grid", "controller.weights.carbon=1,-1"], "controller.weights.carbon=-1"),
        (["--grid", "duration_s"], "FIELD.PATH=VALUE"),
        (["--zip", "duration_s=1,2", "--zip", "seed=1"], "same number of values"),
        (["--grid", "seed=1,2"], "--seeds"),
        (["--executor", "mpi"], "unknown executor"),
        (["--format", "hdf4", "--grid", "duration_s=60"], "unknown format"),
    ],
)
def test_bad_input_exits_2_before_any_point_runs(tmp_path, capsys, monkeypatch, extra, message):
    log = tmp_path / "starts.log"
    monkeypatch.setenv("CEDAR_TEST_LOG", str(log))
    out = tmp_path / "out"
    rc = main(["sweep", str(SMOKE), "--point-fn", "test_sweep_fns:slow", "--no-progress", "--executor", "serial", *extra, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err
    assert not log.exists()  # no point ran
    assert not (out / "points").exists() or not any((out / "points").iterdir())


def test_unknown_policy_exits_2(tmp_path, capsys):
    rc = main(["sweep", str(SMOKE), "--grid", "duration_s=60", "--policies", "cedar,fastest", "--out", str(tmp_path)])
    assert rc == 2 and "fastest" in capsys.readouterr().err


def test_dry_run_lists_points_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["sweep", str(SMOKE), "--grid", "controller.weights.carbon=0,1", "--seeds", "3", "--policies", "cedar,round_robin", "--dry-run", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0 and "12 points" in cap.err and not out.exists()
    plan = sw.plan_sweep(sw.SweepSpec(scenario=SMOKE, axes=sw.axes_from_options(["controller.weights.carbon=0,1"]), policies=("cedar", "round_robin"), seeds=3))
    assert all(p.point_id in cap.out for p in plan.points)


def test_sweep_file_with_command_line_additions(tmp_path, capsys):
    f = tmp_path / "s.yaml"
    f.write_text(f"scenario: {SMOKE}\nset: [duration_s=60]\ngrid:\n  controller.weights.carbon: [0, 1]\npolicies: [a, b]\nseeds: 1\n")
    out = tmp_path / "out"
    rc = main(["sweep", str(f), "--grid", "controller.weights.cost=1,2,3", "--seeds", "2", "--set", "drain_s=0", "--executor", "serial", *FAKE, "--out", str(out)])
    assert rc == 0
    ds = sw.load_sweep(out)
    assert dict(ds.sizes) == {"controller.weights.carbon": 2, "controller.weights.cost": 3, "policy": 2, "seed": 2}
    assert (ds["status"] == "ok").all()
    assert ds.attrs["base_overrides"] == "duration_s=60 drain_s=0 controller.solver.threads=1"
    assert {"sweep.nc", "sweep.csv", "sweep.yaml", "points"} <= {p.name for p in out.iterdir()}


def test_failed_points_exit_1_and_rerun_retries_only_them(tmp_path, capsys):
    args = ["sweep", str(SMOKE), "--grid", "controller.weights.carbon=0,1,2", "--executor", "serial", "--no-progress", "--out", str(tmp_path)]
    assert main([*args, "--point-fn", "test_sweep_fns:failing_on_carbon_2"]) == 1
    cap = capsys.readouterr()
    assert "2 ok, 1 failed" in cap.out and "no convergence at carbon=2" in cap.err
    assert main([*args, "--point-fn", "test_sweep_fns:synthetic"]) == 0
    assert "3 ok, 0 failed (1 run now, 2 already done)" in capsys.readouterr().out


def test_ctrl_c_then_rerun_runs_only_the_missing_points(tmp_path):
    """A real interruption: SIGINT to a `cedar sweep` process group (as Ctrl-C does), then resume."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]), "CEDAR_TEST_SLEEP": "0.25"}
    cmd = [sys.executable, "-m", "cedar_opt.cli", "sweep", str(SMOKE), "--grid", "controller.weights.carbon=0,1,2,3,4,5",
           "--seeds", "2", "--executor", "local", "--workers", "2", "--point-fn", "test_sweep_fns:slow", "--no-progress", "--out", str(out)]  # fmt: skip
    p = subprocess.Popen(cmd, cwd=repo_root(), env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list((out / "points").glob("*.json"))) < 3:
            time.sleep(0.05)
        os.killpg(p.pid, signal.SIGINT)
        p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode != 0
    done = len(list((out / "points").glob("*.json")))
    assert 3 <= done < 12 and not (out / "sweep.nc").exists()
    r = subprocess.run(cmd, cwd=repo_root(), env={**env, "CEDAR_TEST_SLEEP": "0"}, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"12 ok, 0 failed ({12 - done} run now, {done} already done)" in r.stdout
