"""``compare``: several policies on one scenario, in parallel processes, results in memory or on disk."""

from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pandas as pd
from rich.console import Console

from cedar_opt.config.schema import Scenario
from cedar_opt.errors import CedarRunError
from cedar_opt.experiments.runner import Inputs, RunResult, build_inputs, run_with_inputs
from cedar_opt.metrics import BY_TIER_COLUMNS, SUMMARY_COLUMNS
from cedar_opt.policies.registry import check_policy_names

_WORKER_INPUTS: dict[str, Inputs] = {}


def _limit_threads() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def _worker_run(scenario_json: dict, policy: str) -> RunResult:
    """Process-pool entry: build (once per process) the inputs, then run one policy."""
    _limit_threads()
    s = Scenario.model_validate(scenario_json)
    key = s.model_dump_json()
    if key not in _WORKER_INPUTS:
        _WORKER_INPUTS.clear()
        _WORKER_INPUTS[key] = build_inputs(s)
    return run_with_inputs(_WORKER_INPUTS[key], policy)


def compare(
    scenario: Scenario,
    policies: list[str],
    *,
    jobs: int = 1,
    on_done=None,
    progress=None,
) -> list[RunResult]:
    """Run ``policies`` on ``scenario``; results in the order given.

    ``jobs > 1`` runs policies in that many processes (each builds the inputs once).
    ``on_done(result)`` is called as each policy finishes; ``progress(policy, fraction)`` reports
    within-run progress when ``jobs == 1``.
    """
    check_policy_names(list(policies))
    results: dict[str, RunResult] = {}
    if jobs <= 1 or len(policies) == 1:
        inputs = build_inputs(scenario)
        for p in policies:
            cb = (lambda f, p=p: progress(p, f)) if progress else None
            results[p] = run_with_inputs(inputs, p, cb)
            if on_done:
                on_done(results[p])
    else:
        # Validate inputs in this process first so bad data fails fast with one clear message.
        from cedar_opt.config.checks import run_checks

        run_checks(scenario)
        doc = scenario.model_dump(mode="json")
        with ProcessPoolExecutor(max_workers=min(jobs, len(policies))) as ex:
            futs = {ex.submit(_worker_run, doc, p): p for p in policies}
            pending = set(futs)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    try:
                        r = f.result()
                    except BrokenProcessPool:
                        raise CedarRunError(
                            f"the process running policy {futs[f]!r} was killed (most often: out of memory; "
                            f"a replay needs about 3 KB per call). Try --jobs 1 or a shorter duration_s."
                        ) from None
                    results[futs[f]] = r
                    if on_done:
                        on_done(r)
    return [results[p] for p in policies]


def summary_frame(results: list[RunResult]) -> pd.DataFrame:
    return pd.DataFrame([r.summary for r in results], columns=SUMMARY_COLUMNS)


def by_tier_frame(results: list[RunResult]) -> pd.DataFrame:
    return pd.concat([r.by_tier for r in results], ignore_index=True)[BY_TIER_COLUMNS]


def compare_to_dir(
    scenario: Scenario,
    policies: list[str],
    out: Path,
    *,
    progress: bool = False,
    jobs: int = 1,
    console: Console | None = None,
) -> pd.DataFrame:
    """Run a comparison and write ``summary.csv``, ``by_tier.csv``, ``<policy>.nc``,
    ``requests_<policy>.parquet``, ``report.md`` and ``provenance.json`` into ``out``."""
    from cedar_opt.experiments.io import atomic_write, atomic_write_json, atomic_write_text, prepare_out_dir
    from cedar_opt.experiments.provenance import provenance
    from cedar_opt.experiments.report import render_report

    check_policy_names(list(policies))
    out = prepare_out_dir(Path(out))
    t0 = time.perf_counter()

    def write_policy(r: RunResult) -> None:
        ds = r.steps.copy()
        ds.attrs.update({"policy": r.policy, "scenario": scenario.name, "wall_s": round(r.wall_s, 3)})
        atomic_write(out / f"{r.policy}.nc", lambda p: ds.to_netcdf(p, engine="h5netcdf"))
        atomic_write(out / f"requests_{r.policy}.parquet", lambda p: r.requests.to_parquet(p, index=False))

    bar = None
    if progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True)
        task = bar.add_task(f"{scenario.name}: {len(policies)} policies", total=len(policies))
        bar.start()

    def on_done(r: RunResult) -> None:
        write_policy(r)
        if bar is not None:
            bar.advance(task)
            bar.console.print(f"  {r.policy} done in {r.wall_s:.1f} s")

    try:
        results = compare(scenario, list(policies), jobs=jobs, on_done=on_done)
    finally:
        if bar is not None:
            bar.stop()
    summary = summary_frame(results)
    tiers = by_tier_frame(results)
    wall = time.perf_counter() - t0
    atomic_write(out / "summary.csv", lambda p: summary.to_csv(p, index=False))
    atomic_write(out / "by_tier.csv", lambda p: tiers.to_csv(p, index=False))
    prov = provenance(
        scenario,
        {
            "policies": list(policies),
            "jobs": jobs,
            "wall_s": round(wall, 2),
            "policy_wall_s": {r.policy: round(r.wall_s, 2) for r in results},
        },
    )
    atomic_write_json(out / "provenance.json", prov)
    atomic_write_text(out / "report.md", render_report(scenario, summary, tiers, prov))
    return summary
