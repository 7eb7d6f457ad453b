"""The `cedar` command end to end: validate, run, compare, and bad input → exit 2, one message."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr

from cedar_opt.cli import main
from cedar_opt.metrics import BY_TIER_COLUMNS, SUMMARY_COLUMNS
from cedar_opt.paths import scenarios_dir

SMOKE = str(scenarios_dir() / "smoke.yaml")
SHORT = ["--set", "duration_s=60", "--set", "drain_s=60"]


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_lists_commands(capsys):
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    for cmd in ("validate", "run", "compare", "policies"):
        assert cmd in out


def test_validate_default_scenario(capsys):
    code, out, err = _run(capsys, "validate")
    assert code == 0, err
    assert "paper" in out and "valid" in out and "us-east-1" in out


def test_validate_reports_signals(capsys):
    code, out, _ = _run(capsys, "validate", SMOKE)
    assert code == 0
    assert "mean marginal" in out and "us-west-2" in out


def test_validate_broken_file(tmp_path, capsys):
    p = tmp_path / "broken.yaml"
    p.write_text("seed: -1\ncontroller:\n  weights: {carbon: oops}\n")
    code, out, err = _run(capsys, "validate", str(p))
    assert code == 2
    assert "broken.yaml" in err and "seed" in err and "controller.weights.carbon" in err
    assert "Traceback" not in err + out


def test_validate_missing_file(capsys):
    code, _, err = _run(capsys, "validate", "no/such/file.yaml")
    assert code == 2 and "no such scenario file" in err


def test_unknown_policy(tmp_path, capsys):
    code, _, err = _run(capsys, "run", SMOKE, "--policy", "fastest_possible", "--out", str(tmp_path / "o"))
    assert code == 2 and "unknown policy 'fastest_possible'" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
    code, _, err = _run(capsys, "compare", SMOKE, "--policies", "cedar,nope", "--out", str(tmp_path / "o"))
    assert code == 2 and "'nope'" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere; covered by the file-in-the-way case")
def test_unwritable_out_dir_permissions(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    code, _, err = _run(capsys, "run", SMOKE, "--policy", "round_robin", "--out", str(ro / "x"), *SHORT)
    assert code == 2 and "--out" in err


def test_unwritable_out_dir(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("I am a file")
    code, _, err = _run(capsys, "run", SMOKE, "--policy", "round_robin", "--out", str(blocker), *SHORT)
    assert code == 2 and "not a directory" in err and "Traceback" not in err
    code, _, err = _run(capsys, "run", SMOKE, "--policy", "round_robin", "--out", str(blocker / "sub"), *SHORT)
    assert code == 2 and "--out" in err
    assert blocker.read_text() == "I am a file"


def test_run_writes_everything(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = _run(capsys, "run", SMOKE, "--policy", "performance_only", "--out", str(out), "--no-progress", *SHORT)
    assert code == 0, err
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == SUMMARY_COLUMNS and list(summary.policy) == ["performance_only"]
    row = summary.iloc[0]
    assert row.requests == row.completed + row.dropped + row.in_flight_end
    assert list(pd.read_csv(out / "by_tier.csv").columns) == BY_TIER_COLUMNS
    ds = xr.open_dataset(out / "performance_only.nc", engine="h5netcdf")
    assert {"step", "pool"} <= set(ds.dims) and "cost_usd" in ds
    assert float(ds["cost_usd"].sum()) == pytest.approx(row.cost_usd)
    ds.close()
    req = pd.read_parquet(out / "requests_performance_only.parquet")
    assert len(req) == row.requests
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["seed"] == 7 and len(prov["scenario_hash"]) == 16 and prov["resolved_scenario"]["duration_s"] == 60
    assert "performance_only" in (out / "report.md").read_text()
    assert not list(out.glob(".*.tmp")), "no temporary files left behind"


def test_compare_two_policies_parallel_equals_serial(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    pols = "performance_only,round_robin"
    assert _run(capsys, "compare", SMOKE, "--policies", pols, "--out", str(a), "--jobs", "2", "--no-progress", *SHORT)[0] == 0
    assert _run(capsys, "compare", SMOKE, "--policies", pols, "--out", str(b), "--jobs", "1", "--no-progress", *SHORT)[0] == 0
    sa, sb = pd.read_csv(a / "summary.csv"), pd.read_csv(b / "summary.csv")
    pd.testing.assert_frame_equal(sa, sb)
    report = (a / "report.md").read_text()
    assert "Relative change vs `performance_only`" in report and "Relative change vs `round_robin`" in report


def test_report_relative_change_matches_csv(tmp_path, capsys):
    out = tmp_path / "c"
    assert _run(capsys, "compare", SMOKE, "--policies", "performance_only,least_connections", "--out", str(out), "--no-progress", *SHORT)[0] == 0
    s = pd.read_csv(out / "summary.csv").set_index("policy")
    rel = (s.loc["least_connections", "cost_usd"] - s.loc["performance_only", "cost_usd"]) / s.loc["performance_only", "cost_usd"] * 100
    report = (out / "report.md").read_text()
    section = report.split("Relative change vs `performance_only`")[1].split("##")[0]
    line = next(l for l in section.splitlines() if l.startswith("| least_connections"))
    cols = [c.strip() for c in section.splitlines()[2].strip("|").split("|")]
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert float(cells[cols.index("cost_usd")]) == pytest.approx(rel, abs=0.06)


def test_set_override_reaches_the_run(tmp_path, capsys):
    out = tmp_path / "s"
    assert _run(capsys, "run", SMOKE, "--policy", "round_robin", "--out", str(out), "--set", "seed=3", *SHORT)[0] == 0
    assert json.loads((out / "provenance.json").read_text())["seed"] == 3
