"""The notebooks run (on a shortened replay)."""

import os
import runpy
from pathlib import Path

import pytest

from cedar_opt.paths import repo_root

NOTEBOOKS = sorted((repo_root() / "notebooks").glob("*.py"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, monkeypatch, capsys):
    monkeypatch.setenv("CEDAR_QUICKSTART_SECONDS", "60")
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert "cost_usd" in out and "carbon_weight" in out
