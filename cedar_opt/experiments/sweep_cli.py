"""``cedar sweep``: run a grid of scenario overrides × policies × seeds, resumably, on any executor."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from cedar_opt.errors import CedarInputError


def _import_point_fn(text: str):
    mod, _, attr = text.partition(":")
    if not mod or not attr:
        raise CedarInputError("expected MODULE:FUNCTION", source="--point-fn", where=text)
    try:
        fn = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as e:
        raise CedarInputError(f"cannot import it: {e}", source="--point-fn", where=text) from None
    if not callable(fn):
        raise CedarInputError("is not callable", source="--point-fn", where=text)
    return fn


def _source(base: str, grid: list[str] | None, zip_: list[str] | None) -> str:
    opts = "/".join(o for o, given in (("--grid", grid), ("--zip", zip_)) if given)
    if base == "--grid":
        return opts or "--grid"
    return f"{base} + {opts}" if opts else base


def sweep(
    scenario: Annotated[
        Optional[Path],
        typer.Argument(
            help="Scenario YAML, or a sweep YAML (scenarios/sweeps/*.yaml) holding scenario, set, grid, zip, "
            "policies and seeds (default: the bundled scenarios/paper.yaml).",
            show_default=False,
        ),
    ] = None,
    grid: Annotated[
        Optional[list[str]],
        typer.Option("--grid", "-g", help="A sweep axis: FIELD.PATH=V1,V2,... or FIELD=[V1, [A, B]] (repeatable; Cartesian product).", show_default=False),
    ] = None,
    zip_: Annotated[
        Optional[list[str]],
        typer.Option("--zip", "-z", help="FIELD.PATH=V1,V2,...; every --zip field is varied together, position by position, as one axis `zip`.", show_default=False),
    ] = None,
    seeds: Annotated[Optional[int], typer.Option("--seeds", help="Seeds per point: the scenario's seed, seed+1, ... (default 1).", min=1, show_default=False)] = None,
    policies_: Annotated[Optional[str], typer.Option("--policies", help="Comma-separated policies (default: cedar).", show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output directory (default: runs/<name>-sweep). Re-running into it resumes.")] = None,
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="Override a field of the base scenario before the grid: --set duration_s=600 (repeatable).", show_default=False),
    ] = None,
    executor: Annotated[
        str,
        typer.Option("--executor", "-x", help="serial | local (processes on this machine) | dask (a LocalCluster) | tcp://HOST:PORT (an existing Dask scheduler)."),
    ] = "local",
    workers: Annotated[int, typer.Option("--workers", "-j", help="Worker processes for local and dask (default: number of cores).", min=0)] = 0,
    fmt: Annotated[str, typer.Option("--format", help="Results file: netcdf (sweep.nc) or zarr (sweep.zarr).")] = "netcdf",
    rerun: Annotated[bool, typer.Option("--rerun", help="Run every point again, even those already finished in --out.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and list the points; run nothing.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show points done, failed and ETA (off when not a TTY).")] = True,
    point_fn: Annotated[Optional[str], typer.Option("--point-fn", hidden=True, help="MODULE:FUNCTION(scenario, policy) -> summary, instead of a replay.")] = None,
) -> None:
    """Sweep scenario fields × policies × seeds; write sweep.nc, sweep.csv and one record per point to --out."""
    from rich.console import Console
    from rich.table import Table

    from cedar_opt.experiments import sweep as sw

    out_console, err_console = Console(), Console(stderr=True)
    if scenario is not None and scenario.suffix in (".yaml", ".yml") and scenario.exists() and sw.is_sweep_file(scenario):
        spec = sw.load_sweep_file(scenario)
    else:
        spec = sw.SweepSpec(scenario=scenario, source="--grid")
    extra_axes = sw.axes_from_options(grid or [], zip_ or [])
    spec = sw.SweepSpec(
        scenario=spec.scenario,
        overrides=spec.overrides + tuple(set_ or ()),
        axes=spec.axes + extra_axes,
        policies=tuple(p.strip() for p in policies_.split(",") if p.strip()) if policies_ is not None else spec.policies,
        seeds=seeds if seeds is not None else spec.seeds,
        name=spec.name,
        description=spec.description,
        source=_source(spec.source, grid, zip_),
    )
    fn = _import_point_fn(point_fn) if point_fn else sw.run_point
    plan = sw.plan_sweep(spec, check_policies=point_fn is None)
    name = spec.name or plan.base.name
    out = out or Path("runs") / f"{name}-sweep"
    dims = ", ".join(f"{d}={n}" for d, n in zip(plan.dims, plan.shape))
    err_console.print(f"sweep {name}: {len(plan.points)} points ({dims}) → {out}")
    if dry_run:
        t = Table("point_id", "policy", "seed", "overrides", box=None)
        for p in plan.points:
            t.add_row(p.point_id, p.policy, str(p.seed), " ".join(p.overrides))
        out_console.print(t)
        return
    res = sw.run_sweep(
        plan,
        out,
        executor=executor,
        workers=workers or None,
        point_fn=fn,
        progress=progress and sys.stderr.isatty(),
        console=err_console,
        rerun=rerun,
        fmt=fmt,
    )
    out_console.print(
        f"{res.ok} ok, {res.failed} failed ({res.ran} run now, {res.skipped} already done) on {res.executor} "
        f"in {res.wall_s:.1f} s; results in {out}"
    )
    if res.failed:
        failed = res.dataset["error"].values[res.dataset["status"].values == "failed"]
        err_console.print(f"[red]{res.failed} point(s) failed[/]; first error: {failed.flat[0]}")
        err_console.print("see the error column of sweep.csv; re-run the same command to retry only those")
        raise typer.Exit(code=1)
