"""The ``cedar`` command: validate, run, compare, sweep.

Every command takes an optional scenario path (default: the bundled ``scenarios/paper.yaml``) and
any number of ``--set a.b.c=value`` overrides. Bad input of any kind ends with exit code 2 and one
message naming the file, field or line — never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from cedar_opt.errors import CedarInputError, CedarRunError

app = typer.Typer(
    name="cedar",
    help="Model, run and stress-test CEDAR: carbon-, cost- and latency-aware control of agentic LLM serving.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Wide enough for the comparison table when the output is a file or a pipe.
out_console = Console() if sys.stdout.isatty() else Console(width=200)
err_console = Console(stderr=True)

ScenarioArg = Annotated[
    Optional[Path],
    typer.Argument(help="Scenario YAML (default: the bundled scenarios/paper.yaml).", show_default=False),
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a field: --set controller.weights.carbon=2 (repeatable).", show_default=False),
]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress display (off when not a TTY).")]


def _load(scenario: Path | None, overrides: list[str] | None):
    from cedar_opt.config import load_scenario

    return load_scenario(scenario, overrides or [])


@app.command()
def validate(scenario: ScenarioArg = None, set_: SetOpt = None) -> None:
    """Check a scenario (schema, catalogue references, data coverage) and print a summary."""
    from cedar_opt.experiments.summary import scenario_summary

    s = _load(scenario, set_)
    for renderable in scenario_summary(s):
        out_console.print(renderable)
    out_console.print("[green]valid[/]")


@app.command()
def policies() -> None:
    """List the policies `run` and `compare` know."""
    from cedar_opt.policies.registry import available_policies, describe_policy

    t = Table("policy", "what it is", box=None)
    for name in available_policies():
        t.add_row(name, describe_policy(name))
    out_console.print(t)


@app.command()
def run(
    scenario: ScenarioArg = None,
    policy: Annotated[str, typer.Option("--policy", "-p", help="Policy name (see `cedar policies`).")] = "cedar",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output directory (default: runs/<scenario>-<policy>).")] = None,
    set_: SetOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Replay a scenario with one policy and write its results to --out."""
    from cedar_opt.experiments.compare import compare_to_dir

    s = _load(scenario, set_)
    out = out or Path("runs") / f"{s.name}-{policy}"
    summary = compare_to_dir(s, [policy], out, progress=progress and sys.stderr.isatty(), jobs=1, console=err_console)
    _print_table(summary)
    out_console.print(f"results in {out}")


@app.command()
def compare(
    scenario: ScenarioArg = None,
    policies_: Annotated[
        Optional[str],
        typer.Option("--policies", help="Comma-separated policies (default: all registered)."),
    ] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output directory (default: runs/<scenario>-compare).")] = None,
    set_: SetOpt = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Parallel policy runs (0: one per core).", min=0)] = 0,
    progress: ProgressOpt = True,
) -> None:
    """Replay a scenario with several policies side by side; write summary, per-tier table, NetCDF and report."""
    import os

    from cedar_opt.experiments.compare import compare_to_dir
    from cedar_opt.policies.registry import available_policies, check_policy_names

    s = _load(scenario, set_)
    names = [p.strip() for p in policies_.split(",") if p.strip()] if policies_ else list(available_policies())
    check_policy_names(names)
    out = out or Path("runs") / f"{s.name}-compare"
    summary = compare_to_dir(
        s, names, out, progress=progress and sys.stderr.isatty(), jobs=jobs or (os.cpu_count() or 1), console=err_console
    )
    _print_table(summary)
    out_console.print(f"results in {out} (report: {out / 'report.md'})")


def _print_table(summary) -> None:
    from cedar_opt.experiments.report import summary_table

    out_console.print(summary_table(summary))


def _register_optional_commands() -> None:
    try:
        from cedar_opt.experiments.sweep_cli import sweep
    except ImportError:
        return
    app.command(name="sweep")(sweep)


_register_optional_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; maps bad input to exit 2 with one message."""
    try:
        app(args=argv, standalone_mode=True)
    except CedarInputError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    except CedarRunError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        return code
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
