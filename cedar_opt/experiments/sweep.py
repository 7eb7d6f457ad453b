"""Scenario sweeps: a grid of overrides × policies × seeds, run on any executor, resumable.

A sweep is described by a :class:`SweepSpec` — a base scenario, ``--set`` overrides applied to it,
and *axes*. An axis varies one field (``--grid a.b=1,2,3``) or several fields together
(``--zip``: position *i* of every field forms one point). Points are the Cartesian product of the
axes × policies × seeds. Each point is a list of ``--set``-style overrides, so any point can be
replayed alone with ``cedar run --set ...``.

:func:`plan_sweep` validates everything before anything runs (every point's scenario is loaded,
so a bad grid key or value is an input error, exit 2). :func:`run_sweep` runs the points that are
not finished yet in ``out``, writes one ``points/<point_id>.json`` per point as it finishes (atomic:
temp file + rename), then assembles ``sweep.nc`` (xarray, one dimension per axis + ``policy`` +
``seed``), ``sweep.csv`` (one row per point) and ``sweep.yaml`` (the resolved spec + provenance).
Re-running the same sweep into the same ``out`` skips finished points and re-runs missing and failed
ones. A point whose function raises is recorded with its error; the others carry on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml

from cedar_opt.config.loader import load_scenario, scenario_hash
from cedar_opt.config.schema import Scenario
from cedar_opt.errors import CedarInputError

PointFn = Callable[[Scenario, str], Mapping[str, Any]]
"""What runs one point: ``(scenario, policy) -> summary`` (metric name → number or string)."""

SUMMARY_COLUMNS: tuple[str, ...] = (
    "requests", "completed", "dropped", "in_flight_end", "ttft_p50_s", "ttft_p95_s", "ttft_p99_s", "e2e_p95_s",
    "slo_violation_pct", "cost_usd", "carbon_marginal_kg", "carbon_average_kg", "energy_kwh", "gpu_hours",
    "oscillation", "scale_events", "kv_recompute_pct", "solve_p50_ms", "solve_p95_ms", "solve_max_ms", "fallback_steps",
)  # fmt: skip
"""The summary metrics of DESIGN.md §7, in their contract order."""

TIMING_COLUMNS: tuple[str, ...] = ("solve_p50_ms", "solve_p95_ms", "solve_max_ms")
"""Metrics that measure wall-clock time and so differ between otherwise identical runs."""

FORCED_OVERRIDES: tuple[str, ...] = ("controller.solver.threads=1",)
"""Applied after ``--set`` and before the grid: one solver thread per worker, so results do not
depend on the executor and workers do not oversubscribe cores. A grid axis may still vary it."""

PROVENANCE_VARS: tuple[str, ...] = ("point_id", "scenario_hash", "overrides", "worker", "wall_s", "finished_utc", "attempt")
"""Per-point provenance variables of the results Dataset (besides ``status`` and ``error``)."""


# ----------------------------------------------------------------------------- spec


def format_value(v: Any) -> str:
    """A value as the YAML text an override carries (``1``, ``0.5``, ``'1'``, ``[A100, H100]``)."""
    text = yaml.safe_dump(v, default_flow_style=True, width=1 << 30, allow_unicode=True)
    if text.endswith("\n...\n"):
        text = text[: -len("\n...\n")]
    return text.strip()


@dataclass(frozen=True)
class Axis:
    """One dimension of a sweep: one field, or several fields varied together (zipped).

    ``values[i]`` holds position ``i``: one value per key.
    """

    name: str
    keys: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]

    @property
    def size(self) -> int:
        return len(self.values)

    @property
    def zipped(self) -> bool:
        return len(self.keys) > 1 or self.name != self.keys[0]

    def overrides(self, i: int) -> tuple[str, ...]:
        return tuple(f"{k}={format_value(v)}" for k, v in zip(self.keys, self.values[i]))

    def label(self, i: int) -> str:
        return ", ".join(self.overrides(i))

    @classmethod
    def single(cls, key: str, values: Sequence[Any]) -> "Axis":
        return cls(key, (key,), tuple((v,) for v in values))

    @classmethod
    def zip(cls, name: str, columns: Mapping[str, Sequence[Any]], source: str = "--zip") -> "Axis":
        keys = tuple(columns)
        lengths = {k: len(v) for k, v in columns.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k} has {n}" for k, n in lengths.items())
            raise CedarInputError(f"zipped fields must have the same number of values ({shown})", source=source, where=name)
        return cls(name, keys, tuple(zip(*(columns[k] for k in keys))))


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep. ``seeds``: a count N (seeds base, base+1, …, base+N−1 where base is the
    scenario's seed) or an explicit tuple of seeds."""

    scenario: Path | None = None
    overrides: tuple[str, ...] = ()
    axes: tuple[Axis, ...] = ()
    policies: tuple[str, ...] = ("cedar",)
    seeds: int | tuple[int, ...] = 1
    name: str | None = None
    description: str = ""
    source: str = "--grid"
    """Where the axes came from (a sweep file or ``--grid``), for error messages."""

    def to_dict(self) -> dict[str, Any]:
        grid = {a.name: [v[0] for v in a.values] for a in self.axes if not a.zipped}
        zipped = {a.name: {k: [v[j] for v in a.values] for j, k in enumerate(a.keys)} for a in self.axes if a.zipped}
        return {
            "name": self.name,
            "description": self.description,
            "scenario": str(self.scenario) if self.scenario else None,
            "set": list(self.overrides),
            "grid": grid,
            "zip": zipped,
            "axis_order": [a.name for a in self.axes],
            "policies": list(self.policies),
            "seeds": self.seeds if isinstance(self.seeds, int) else list(self.seeds),
        }


def parse_axis_text(text: str, source: str = "--grid") -> tuple[str, list[Any]]:
    """``key=v1,v2,v3`` or ``key=[v1, [a, b], v3]`` → (key, values). Values are read as YAML."""
    if "=" not in text:
        raise CedarInputError("expected FIELD.PATH=VALUE1,VALUE2,...", source=source, where=text)
    key, _, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not key or any(not p for p in key.split(".")):
        raise CedarInputError("empty field name in the path", source=source, where=text)
    if not raw:
        raise CedarInputError("no values given", source=source, where=text)
    try:
        if raw.startswith("["):
            values = yaml.safe_load(raw)
            if not isinstance(values, list):
                raise CedarInputError("a bracketed value list must be a YAML list", source=source, where=text)
        else:
            values = [yaml.safe_load(p) if p.strip() else "" for p in raw.split(",")]
    except yaml.YAMLError as e:
        raise CedarInputError(f"values are not valid YAML ({getattr(e, 'problem', None) or e}); values holding commas go in a list: FIELD=['a,b', c]", source=source, where=text) from None
    if not values:
        raise CedarInputError("no values given", source=source, where=text)
    return key, values


def axes_from_options(grid: Iterable[str] = (), zip_: Iterable[str] = ()) -> tuple[Axis, ...]:
    """Axes of ``--grid`` options (one axis each) and ``--zip`` options (one zipped axis ``zip``)."""
    axes = [Axis.single(*parse_axis_text(g, "--grid")) for g in grid]
    zcols: dict[str, list[Any]] = {}
    for z in zip_:
        k, vals = parse_axis_text(z, "--zip")
        if k in zcols:
            raise CedarInputError("field given twice", source="--zip", where=k)
        zcols[k] = vals
    if zcols:
        axes.append(Axis.zip("zip", zcols))
    return tuple(axes)


_SWEEP_KEYS = {"name", "description", "scenario", "set", "grid", "zip", "policies", "seeds"}


def is_sweep_file(path: Path) -> bool:
    """True when the YAML file is a sweep description (it has ``grid``, ``zip`` or ``scenario``)."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(doc, dict) and bool({"grid", "zip", "scenario"} & set(doc))


def load_sweep_file(path: str | Path) -> SweepSpec:
    """Read a sweep YAML (see ``docs/sweeps.md``); ``scenario`` is relative to the file."""
    p = Path(path)
    src = str(p)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CedarInputError("no such sweep file", source=src) from None
    except (OSError, UnicodeDecodeError) as e:
        raise CedarInputError(f"cannot read sweep file: {e}", source=src) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
        raise CedarInputError(f"not valid YAML: {getattr(e, 'problem', None) or e}", source=src, where=where) from None
    if not isinstance(doc, dict):
        raise CedarInputError("a sweep file must be a mapping of fields", source=src)
    unknown = sorted(set(map(str, doc)) - _SWEEP_KEYS)
    if unknown:
        raise CedarInputError(f"unknown field; a sweep file has {', '.join(sorted(_SWEEP_KEYS))}", source=src, where=unknown[0])

    def need(cond: bool, where: str, msg: str) -> None:
        if not cond:
            raise CedarInputError(msg, source=src, where=where)

    scen = doc.get("scenario")
    need(scen is None or isinstance(scen, str), "scenario", "must be a path to a scenario file")
    scen_path = None
    if scen:
        scen_path = Path(scen) if Path(scen).is_absolute() else (p.parent / scen)
        need(scen_path.exists(), "scenario", f"names a file that does not exist: {scen}")
    sets = doc.get("set") or []
    need(isinstance(sets, list) and all(isinstance(s, str) for s in sets), "set", "must be a list of FIELD.PATH=VALUE strings")
    axes: list[Axis] = []
    grid = doc.get("grid") or {}
    need(isinstance(grid, dict), "grid", "must map field paths to lists of values")
    for k, vals in grid.items():
        need(isinstance(k, str) and bool(k), f"grid.{k}", "field paths must be strings")
        need(isinstance(vals, list) and len(vals) > 0, f"grid.{k}", "must be a non-empty list of values")
        axes.append(Axis.single(k, vals))
    zips = doc.get("zip") or {}
    need(isinstance(zips, dict), "zip", "must map a group name to {field path: list of values}")
    for name, cols in zips.items():
        need(isinstance(cols, dict) and len(cols) > 0, f"zip.{name}", "must map field paths to lists of values")
        for k, vals in cols.items():
            need(isinstance(vals, list) and len(vals) > 0, f"zip.{name}.{k}", "must be a non-empty list of values")
        axes.append(Axis.zip(str(name), cols, source=src))
    pols = doc.get("policies")
    if isinstance(pols, str):
        pols = [x.strip() for x in pols.split(",") if x.strip()]
    need(pols is None or (isinstance(pols, list) and all(isinstance(x, str) for x in pols)), "policies", "must be a list of policy names")
    seeds = doc.get("seeds", 1)
    if isinstance(seeds, list):
        need(all(isinstance(s, int) and not isinstance(s, bool) for s in seeds), "seeds", "must be a count or a list of integer seeds")
        seeds = tuple(seeds)
    else:
        need(isinstance(seeds, int) and not isinstance(seeds, bool), "seeds", "must be a count or a list of integer seeds")
    name = doc.get("name") or p.stem
    return SweepSpec(
        scenario=scen_path,
        overrides=tuple(sets),
        axes=tuple(axes),
        policies=tuple(pols) if pols else ("cedar",),
        seeds=seeds,
        name=str(name),
        description=str(doc.get("description") or ""),
        source=src,
    )


# ----------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class SweepPoint:
    """One run: a position on every axis, a policy and a seed."""

    point_id: str
    index: tuple[int, ...]
    overrides: tuple[str, ...]
    policy: str
    seed: int


@dataclass
class SweepPlan:
    """A validated sweep: the base scenario, every point, and every point's scenario."""

    spec: SweepSpec
    base: Scenario
    base_hash: str
    base_overrides: tuple[str, ...]
    seeds: tuple[int, ...]
    points: list[SweepPoint]
    scenarios: dict[tuple[tuple[int, ...], int], Scenario] = field(repr=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.spec.axes) + (len(self.spec.policies), len(self.seeds))

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.spec.axes) + ("policy", "seed")

    def scenario_for(self, p: SweepPoint) -> Scenario:
        return self.scenarios[(p.index, p.seed)]


def point_id(base_hash: str, overrides: Sequence[str], policy: str, seed: int) -> str:
    """Stable id of a point: hash of (base scenario hash, grid overrides, policy, seed)."""
    blob = json.dumps([base_hash, list(overrides), policy, int(seed)], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _check_axes(spec: SweepSpec) -> None:
    seen: dict[str, str] = {}
    names: set[str] = set()
    for a in spec.axes:
        if "seed" in a.keys:
            raise CedarInputError("sweep seeds with --seeds N (or `seeds:` in a sweep file), not a grid axis", source=spec.source, where="seed")
        if a.name in names or a.name in ("policy", "seed"):
            raise CedarInputError("axis name used twice (or clashes with policy/seed)", source=spec.source, where=a.name)
        names.add(a.name)
        if a.size == 0:
            raise CedarInputError("an axis needs at least one value", source=spec.source, where=a.name)
        for k in a.keys:
            if k in seen:
                raise CedarInputError(f"field is swept by two axes ({seen[k]} and {a.name})", source=spec.source, where=k)
            seen[k] = a.name
        labels = [a.label(i) for i in range(a.size)]
        dup = next((x for x in labels if labels.count(x) > 1), None)
        if dup is not None:
            raise CedarInputError(f"value listed twice: {dup}", source=spec.source, where=a.name)


def _resolve_seeds(spec: SweepSpec, base_seed: int) -> tuple[int, ...]:
    if isinstance(spec.seeds, int):
        if spec.seeds < 1:
            raise CedarInputError("must be at least 1", source="--seeds", where=str(spec.seeds))
        return tuple(base_seed + i for i in range(spec.seeds))
    seeds = tuple(int(s) for s in spec.seeds)
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise CedarInputError("seeds must be distinct integers ≥ 0", source=spec.source, where="seeds")
    return seeds


def plan_sweep(spec: SweepSpec, *, check_policies: bool = True) -> SweepPlan:
    """Validate a sweep and list its points. Raises :class:`CedarInputError` before anything runs.

    Every combination of axis values is loaded and checked (values are not checked alone: a value
    may be valid only together with another axis's value, e.g. ``fleet.gpus`` and
    ``autoscaler.gpu``); the error names the first bad combination and the field.
    """
    _check_axes(spec)
    pols = tuple(spec.policies)
    if not pols:
        raise CedarInputError("no policy given", source="--policies")
    if len(set(pols)) != len(pols):
        raise CedarInputError("a policy is listed twice", source="--policies", where=",".join(pols))
    if check_policies:
        from cedar_opt.policies.registry import check_policy_names

        check_policy_names(list(pols))
    base_ov = tuple(spec.overrides) + FORCED_OVERRIDES
    base = load_scenario(spec.scenario, base_ov)
    base_hash = scenario_hash(base)
    seeds = _resolve_seeds(spec, base.seed)

    def load(extra: tuple[str, ...], what: str) -> Scenario:
        try:
            return load_scenario(spec.scenario, base_ov + extra)
        except CedarInputError as e:
            inner = f"{e.where}: {e.message}" if e.where else e.message
            raise CedarInputError(f"invalid sweep point: {inner}", source=spec.source, where=what) from None

    axes = spec.axes
    scenarios: dict[tuple[tuple[int, ...], int], Scenario] = {}
    points: list[SweepPoint] = []
    for index in itertools.product(*(range(a.size) for a in axes)):
        ov = tuple(o for a, i in zip(axes, index) for o in a.overrides(i))
        s = load(ov, ", ".join(ov) or "base") if ov else base
        for seed in seeds:
            scenarios[(index, seed)] = s.model_copy(update={"seed": seed})
        for pol in pols:
            for seed in seeds:
                points.append(SweepPoint(point_id(base_hash, ov, pol, seed), index, ov, pol, seed))
    return SweepPlan(spec, base, base_hash, base_ov, seeds, points, scenarios)


# ----------------------------------------------------------------------------- run one point


def run_point(scenario: Scenario, policy: str) -> Mapping[str, Any]:
    """The default point function: replay ``scenario`` with ``policy`` and return its summary."""
    from cedar_opt.experiments.runner import run_policy

    return run_policy(scenario, policy).summary


def _clean_summary(summary: Any) -> dict[str, float | int | str]:
    if not isinstance(summary, Mapping):
        raise TypeError(f"the point function returned {type(summary).__name__}, expected a mapping of metrics")
    out: dict[str, float | int | str] = {}
    for k, v in summary.items():
        if k == "policy":
            continue
        if hasattr(v, "item") and not isinstance(v, (str, bytes)):
            v = v.item()
        if isinstance(v, bool):
            v = int(v)
        if not isinstance(v, (int, float, str)):
            raise TypeError(f"metric {k!r} is {type(v).__name__}, expected a number or a string")
        out[str(k)] = v
    return out


def execute_point(point_fn: PointFn, scenario: Scenario | Mapping[str, Any], policy: str, pid: str) -> dict[str, Any]:
    """Run one point on a worker; never raises: an exception becomes a ``failed`` record.

    ``scenario`` travels as its resolved JSON document and is validated again here, so a worker
    whose cedar_opt differs from the client's fails loudly (or fills new defaults) instead of
    running an unpickled object of another schema version.
    """
    from cedar_opt.experiments.executors import limit_threads

    limit_threads()
    t0 = time.perf_counter()
    rec: dict[str, Any] = {"point_id": pid, "worker": f"{socket.gethostname()}:{os.getpid()}"}
    try:
        if not isinstance(scenario, Scenario):
            scenario = Scenario.model_validate(scenario)
        rec["summary"] = _clean_summary(point_fn(scenario, policy))
        rec["status"] = "ok"
        rec["error"] = ""
    except Exception as e:  # a failing point is recorded, the sweep goes on
        rec["summary"] = {}
        rec["status"] = "failed"
        msg = e.message if isinstance(e, CedarInputError) else str(e)
        rec["error"] = f"{type(e).__name__}: {msg}"
        rec["traceback"] = "".join(traceback.format_exception(e)[-12:])
    rec["wall_s"] = time.perf_counter() - t0
    rec["finished_utc"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return rec


# ----------------------------------------------------------------------------- run a sweep


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` did."""

    dataset: Any
    out: Path
    ran: int
    skipped: int
    ok: int
    failed: int
    wall_s: float
    executor: str

    @property
    def total(self) -> int:
        return self.ok + self.failed


def _points_dir(out: Path) -> Path:
    return Path(out) / "points"


def read_point(out: Path, pid: str) -> dict[str, Any] | None:
    """The record of a point in ``out``, or None if absent or unreadable (then it is re-run)."""
    f = _points_dir(out) / f"{pid}.json"
    try:
        rec = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("point_id") != pid or rec.get("status") not in ("ok", "failed"):
        return None
    return rec


def _point_record(plan: SweepPlan, p: SweepPoint, result: dict[str, Any], attempt: int) -> dict[str, Any]:
    coords = {}
    for a, i in zip(plan.spec.axes, p.index):
        for k, v in zip(a.keys, a.values[i]):
            coords[k] = v
    rec = {
        "point_id": p.point_id,
        "status": result.get("status", "failed"),
        "error": result.get("error", ""),
        "policy": p.policy,
        "seed": p.seed,
        "coords": coords,
        "overrides": list(p.overrides),
        "base_overrides": list(plan.base_overrides),
        "base_hash": plan.base_hash,
        "scenario_hash": scenario_hash(plan.scenario_for(p)),
        "worker": result.get("worker", ""),
        "wall_s": result.get("wall_s", float("nan")),
        "finished_utc": result.get("finished_utc", dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")),
        "attempt": attempt,
        "summary": result.get("summary", {}),
    }
    if "traceback" in result:
        rec["traceback"] = result["traceback"]
    return rec


def _write_json(path: Path, obj: Any) -> None:
    from cedar_opt.experiments.io import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=1, default=str) + "\n")


def _provenance(plan: SweepPlan, executor: str) -> dict[str, Any]:
    from cedar_opt.experiments.provenance import git_revision, package_versions

    return {
        "base_scenario": plan.base.name,
        "base_scenario_hash": plan.base_hash,
        "base_overrides": list(plan.base_overrides),
        "resolved_base_scenario": plan.base.model_dump(mode="json"),
        "versions": package_versions(),
        "git_revision": git_revision(),
        "executor": executor,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _write_sweep_yaml(out: Path, plan: SweepPlan, prov: dict[str, Any], status: dict[str, Any]) -> None:
    from cedar_opt.experiments.io import atomic_write_text

    doc = {"sweep": plan.spec.to_dict(), "seeds_resolved": list(plan.seeds), "points": len(plan.points), "status": status, "provenance": prov}
    atomic_write_text(out / "sweep.yaml", yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120))


class _Progress:
    """Points done / failed / ETA on stderr (rich), or nothing."""

    def __init__(self, enabled: bool, total: int, skipped: int, console=None):
        self._p = None
        self.failed = 0
        if not enabled or total == 0:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._p = Progress(
            TextColumn("sweep"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed[/]"),
            TextColumn("({task.fields[skipped]} already done)"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task = self._p.add_task("sweep", total=total, failed=0, skipped=skipped)
        self._p.start()

    def advance(self, failed: bool) -> None:
        self.failed += failed
        if self._p is not None:
            self._p.update(self._task, advance=1, failed=self.failed)

    def close(self) -> None:
        if self._p is not None:
            self._p.stop()


def run_sweep(
    plan: SweepPlan,
    out: str | Path,
    *,
    executor: str | Any = "local",
    workers: int | None = None,
    point_fn: PointFn = run_point,
    progress: bool = False,
    console=None,
    rerun: bool = False,
    fmt: str = "netcdf",
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> SweepOutcome:
    """Run the unfinished points of ``plan`` into ``out`` and assemble the results.

    ``executor``: ``serial`` | ``local`` | ``dask`` | ``tcp://host:port`` or an
    :class:`~cedar_opt.experiments.executors.Executor`. ``rerun``: run every point again.
    ``fmt``: ``netcdf`` (``sweep.nc``) or ``zarr`` (``sweep.zarr``, needs the zarr package).
    ``on_record`` is called (in this process) with each point record as it is written.
    """
    from cedar_opt.experiments.executors import Executor, TaskLost, make_executor
    from cedar_opt.experiments.io import prepare_out_dir

    if fmt not in ("netcdf", "zarr"):
        raise CedarInputError("unknown format; use netcdf or zarr", source="--format", where=fmt)
    if fmt == "zarr":
        try:
            import zarr  # noqa: F401
        except ImportError:
            raise CedarInputError("writing Zarr needs the zarr package (pip install zarr)", source="--format", where=fmt) from None
    out = prepare_out_dir(Path(out))
    _points_dir(out).mkdir(exist_ok=True)
    ex = executor if isinstance(executor, Executor) else make_executor(str(executor), workers)
    t0 = time.perf_counter()
    previous: dict[str, dict[str, Any]] = {}
    todo: list[SweepPoint] = []
    for p in plan.points:
        rec = None if rerun else read_point(out, p.point_id)
        if rec is not None:
            previous[p.point_id] = rec
        if rec is None or rec["status"] != "ok":
            todo.append(p)
    skipped = len(plan.points) - len(todo)
    by_id = {p.point_id: p for p in todo}
    ran = 0
    with ex:
        prov = _provenance(plan, ex.describe())
        _write_sweep_yaml(out, plan, prov, {"state": "running", "to_run": len(todo), "already_done": skipped})
        bar = _Progress(progress, len(plan.points), skipped, console)
        if bar._p is not None:
            bar._p.update(bar._task, completed=skipped)
        try:
            docs: dict[int, dict[str, Any]] = {}
            tasks = []
            for p in todo:
                s = plan.scenario_for(p)
                doc = docs.setdefault(id(s), s.model_dump(mode="json"))
                tasks.append((p.point_id, (point_fn, doc, p.policy, p.point_id)))
            for key, res in ex.map_unordered(execute_point, tasks):
                p = by_id[key]
                if isinstance(res, TaskLost):
                    res = {"status": "failed", "error": f"lost by the executor: {res.error}", "summary": {}}
                attempt = int(previous.get(key, {}).get("attempt", 0)) + 1
                rec = _point_record(plan, p, res, attempt)
                _write_json(_points_dir(out) / f"{key}.json", rec)
                ran += 1
                bar.advance(rec["status"] != "ok")
                if on_record is not None:
                    on_record(rec)
        finally:
            bar.close()
    ds = assemble(plan, out)
    counts = {s: int((ds["status"].values == s).sum()) for s in ("ok", "failed", "missing")}
    write_results(ds, out, fmt)
    _write_sweep_yaml(out, plan, prov, {"state": "finished", "ran": ran, "already_done": skipped, **counts})
    return SweepOutcome(ds, out, ran, skipped, counts["ok"], counts["failed"], time.perf_counter() - t0, ex.describe())


# ----------------------------------------------------------------------------- results


def _coord_values(vals: list[Any]):
    import numpy as np

    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return np.array(vals, dtype=float if any(isinstance(v, float) for v in vals) else np.int64)
    return np.array([v if isinstance(v, str) else format_value(v) for v in vals], dtype=str)


def assemble(plan: SweepPlan, out: str | Path):
    """The results Dataset of a sweep from its point records in ``out`` (missing points: NaN,
    ``status='missing'``). Dimensions: one per axis, then ``policy`` and ``seed``."""
    import numpy as np
    import xarray as xr

    out = Path(out)
    shape = plan.shape
    pol_index = {p: i for i, p in enumerate(plan.spec.policies)}
    seed_index = {s: i for i, s in enumerate(plan.seeds)}
    records: list[tuple[tuple[int, ...], dict[str, Any] | None]] = []
    for p in plan.points:
        records.append((p.index + (pol_index[p.policy], seed_index[p.seed]), read_point(out, p.point_id)))
    metrics: dict[str, str] = {}
    for _, rec in records:
        if rec and rec["status"] == "ok":
            for k, v in rec["summary"].items():
                kind = "str" if isinstance(v, str) else "num"
                metrics[k] = "str" if metrics.get(k) == "str" else kind
    order = [m for m in SUMMARY_COLUMNS if m in metrics] + sorted(m for m in metrics if m not in SUMMARY_COLUMNS)
    arrays: dict[str, np.ndarray] = {m: (np.full(shape, np.nan) if metrics[m] == "num" else np.full(shape, "", dtype=object)) for m in order}
    status = np.full(shape, "missing", dtype=object)
    error = np.full(shape, "", dtype=object)
    prov = {v: np.full(shape, "", dtype=object) for v in PROVENANCE_VARS if v not in ("wall_s", "attempt")}
    wall = np.full(shape, np.nan)
    attempt = np.zeros(shape, dtype=np.int64)
    for (idx, rec), p in zip(records, plan.points):
        prov["point_id"][idx] = p.point_id
        prov["overrides"][idx] = " ".join(p.overrides)
        if rec is None:
            continue
        status[idx] = rec["status"]
        error[idx] = rec.get("error", "") or ""
        prov["scenario_hash"][idx] = rec.get("scenario_hash", "")
        prov["worker"][idx] = rec.get("worker", "")
        prov["finished_utc"][idx] = rec.get("finished_utc", "")
        wall[idx] = float(rec.get("wall_s", np.nan))
        attempt[idx] = int(rec.get("attempt", 1))
        if rec["status"] == "ok":
            for m, v in rec["summary"].items():
                arrays[m][idx] = (float(v) if v is not None else np.nan) if metrics[m] == "num" else str(v)
    dims = plan.dims
    data_vars: dict[str, Any] = {}
    for m in order:
        a = arrays[m]
        data_vars[m] = (dims, a.astype(str) if a.dtype == object else a)
    data_vars["status"] = (dims, status.astype(str))
    data_vars["error"] = (dims, error.astype(str))
    for v in PROVENANCE_VARS:
        if v == "wall_s":
            data_vars[v] = (dims, wall, {"units": "s", "description": "wall time of the point on its worker"})
        elif v == "attempt":
            data_vars[v] = (dims, attempt, {"description": "how many times this point has been run in this directory"})
        else:
            data_vars[v] = (dims, prov[v].astype(str))
    coords: dict[str, Any] = {}
    for a in plan.spec.axes:
        if a.zipped:
            coords[a.name] = np.arange(a.size)
            for j, k in enumerate(a.keys):
                coords[k] = (a.name, _coord_values([v[j] for v in a.values]))
        else:
            coords[a.name] = _coord_values([v[0] for v in a.values])
    coords["policy"] = np.array(plan.spec.policies, dtype=str)
    coords["seed"] = np.array(plan.seeds, dtype=np.int64)
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs.update(
        {
            "title": f"cedar sweep {plan.spec.name or plan.base.name}",
            "sweep_name": plan.spec.name or "",
            "base_scenario": plan.base.name,
            "base_scenario_hash": plan.base_hash,
            "base_overrides": " ".join(plan.base_overrides),
            "axes": json.dumps({a.name: list(a.keys) for a in plan.spec.axes}),
            "sweep_spec": json.dumps(plan.spec.to_dict(), default=str),
        }
    )
    return ds


def write_results(ds, out: Path, fmt: str = "netcdf") -> None:
    """``sweep.nc`` (or ``sweep.zarr``) and ``sweep.csv`` in ``out``, each written atomically."""
    import shutil

    from cedar_opt.experiments.io import atomic_write, atomic_write_text

    out = Path(out)
    if fmt == "zarr":
        tmp = out / ".sweep.zarr.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        ds.to_zarr(tmp, mode="w", zarr_format=2, consolidated=True)  # v2: stable encoding of string variables
        shutil.rmtree(out / "sweep.zarr", ignore_errors=True)
        os.replace(tmp, out / "sweep.zarr")
    else:
        atomic_write(out / "sweep.nc", lambda p: ds.to_netcdf(p, engine="h5netcdf"))
    atomic_write_text(out / "sweep.csv", to_frame(ds).to_csv(index=False))


def to_frame(ds):
    """Long-form table of a sweep Dataset: one row per point; axis fields, policy, seed, status,
    metrics, then provenance columns."""
    df = ds.to_dataframe().reset_index()
    axes = json.loads(ds.attrs.get("axes", "{}"))
    lead: list[str] = []
    for name, keys in axes.items():
        if keys != [name]:
            lead.append(name)
        lead.extend(keys)
    lead += ["policy", "seed", "status"]
    tail = ["error", *PROVENANCE_VARS]
    mid = [c for c in df.columns if c not in lead and c not in tail]
    return df[[c for c in lead + mid + tail if c in df.columns]]


def load_sweep(out: str | Path):
    """Open the results Dataset a sweep wrote into ``out``."""
    import xarray as xr

    out = Path(out)
    if (out / "sweep.zarr").exists():
        return xr.open_zarr(out / "sweep.zarr").load()
    if not (out / "sweep.nc").exists():
        raise CedarInputError("no sweep results here (sweep.nc)", source=str(out))
    return xr.load_dataset(out / "sweep.nc", engine="h5netcdf")


def equal_results(a, b, *, ignore: Iterable[str] = TIMING_COLUMNS) -> bool:
    """True when two sweep Datasets hold the same statuses and metrics (provenance and
    wall-clock timing metrics ignored). NaN equals NaN."""
    skip = set(ignore) | set(PROVENANCE_VARS)
    va = sorted(v for v in a.data_vars if v not in skip)
    vb = sorted(v for v in b.data_vars if v not in skip)
    if va != vb:
        return False
    return a[va].equals(b[vb])
