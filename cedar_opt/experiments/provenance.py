"""Provenance of a result: resolved config and its hash, versions, seed, git revision."""

from __future__ import annotations

import datetime as dt
import importlib.metadata as md
import platform
import subprocess
import sys

from cedar_opt.config.loader import scenario_hash
from cedar_opt.config.schema import Scenario
from cedar_opt.paths import repo_root

PACKAGES = ("cedar-opt", "pyomo", "highspy",  # highspy's version is HiGHS's
            "numpy", "pandas", "xarray", "pydantic", "dask", "distributed")


def package_versions() -> dict[str, str]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = "not installed"
    return out


def git_revision() -> str:
    root = repo_root()
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return "unknown (not a git checkout)"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=5)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"


def provenance(scenario: Scenario, extra: dict | None = None) -> dict:
    return {
        "scenario_name": scenario.name,
        "scenario_hash": scenario_hash(scenario),
        "seed": scenario.seed,
        "resolved_scenario": scenario.model_dump(mode="json"),
        "versions": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "git_revision": git_revision(),
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        **(extra or {}),
    }
