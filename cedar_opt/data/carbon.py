"""Carbon-intensity signals: file readers, resampling, and :func:`load_signals` for a scenario.

Readers return a ``pandas.Series`` (or DataFrame) indexed by the UTC start of each interval, values
in **g CO2/kWh**. ``series.attrs`` holds ``source`` (file), ``step_s`` (native interval) and
``repairs`` (counted fixes the caller asked for). The checks every reader applies:

* an unparseable time, a missing or non-finite value, an unknown unit, a negative average
  intensity or MOER → CedarInputError naming the file and ``row N``;
* timestamps must be strictly monotone (PJM exports are newest-first: a strictly *decreasing*
  file is the native layout and is read as such; any other disorder or a duplicate is an error);
* ``nan="gap"`` (opt-in) drops rows with missing values instead, counted in ``repairs``; the rows
  then count as gaps, filled only when shorter than ``max_gap_s`` (see :func:`regularise`).

Resampling rule (:func:`resample_to`, used by :func:`load_signals`): each sample stands for the
mean over its interval ``[t, t + step)``. Going to a **finer** grid (hourly → 5 min), values are
placed at interval midpoints and interpolated linearly between midpoints (held flat before the
first and after the last midpoint). Going to a **coarser** grid (5 min → hourly), each target
interval is the time-weighted mean of the source intervals it contains. Equal steps on the same
grid are copied. Linear-between-midpoints keeps each hour's mean to within the curvature of the
neighbouring hours while avoiding a 12-sample staircase whose hourly jumps a controller would
read as real 5-minute changes; the staircase is available as ``rule="hold"``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cedar_opt.data._io import existing_file, first_true, read_csv, require_columns, row_error
from cedar_opt.data.signalset import SignalSet
from cedar_opt.errors import CedarInputError
from cedar_opt.paths import data_pack_dir

LB_PER_MWH_TO_G_PER_KWH = 0.453592
UNITS: dict[str, float] = {"g/kWh": 1.0, "kg/MWh": 1.0, "lb/MWh": LB_PER_MWH_TO_G_PER_KWH, "t/MWh": 1000.0, "g/MWh": 1e-3}
"""Factor taking each accepted unit to g CO2/kWh (1 lb/MWh = 0.453592 g/kWh)."""

EIA930_FUELS = ("WND", "SUN", "WAT", "OIL", "NG", "COL", "NUC", "OTH")
RESOLUTION_S = 300.0


def unit_factor(unit: str, source: str | None = None) -> float:
    if unit not in UNITS:
        raise CedarInputError(f"unknown unit {unit!r}; expected one of {', '.join(UNITS)}", source=source, where="unit")
    return UNITS[unit]


# --- time and value checks -------------------------------------------------------------------


def _parse_utc(col: pd.Series, p: Path, header_lines: int = 1, fmt: str | None = "ISO8601") -> pd.DatetimeIndex:
    s = col.astype(str).str.strip()
    t = pd.to_datetime(s, format=fmt, errors="coerce", utc=True)
    bad = first_true(t.isna().to_numpy())
    if bad is not None:
        raise row_error(p, bad, f"unparseable time {col.iloc[bad]!r}", header_lines=header_lines)
    return pd.DatetimeIndex(t)


def _values(col: pd.Series, p: Path, name: str, *, nonneg: bool, factor: float = 1.0, nan: str = "error") -> tuple[np.ndarray, np.ndarray]:
    """(values in g/kWh, keep-mask). NaN rows raise unless ``nan="gap"``."""
    if nan not in ("error", "gap"):
        raise CedarInputError(f"nan must be 'error' or 'gap', got {nan!r}")
    v = pd.to_numeric(col, errors="coerce").to_numpy(float) * factor
    finite = np.isfinite(v)
    if nan == "error":
        bad = first_true(~finite)
        if bad is not None:
            raise row_error(p, bad, f"{name} missing or not a number (got {col.iloc[bad]!r})")
    if nonneg:
        bad = first_true(finite & (v < 0))
        if bad is not None:
            raise row_error(p, bad, f"{name} must be ≥ 0, got {v[bad]:g}")
    return v, finite


def _ordered(t: pd.DatetimeIndex, p: Path, *, allow_descending: bool = False) -> np.ndarray:
    """Positions that put ``t`` in increasing order; errors on disorder and duplicates."""
    n = len(t)
    if n == 0:
        raise CedarInputError("no rows", source=str(p))
    ns = t.as_unit("ns").asi8
    d = np.diff(ns)
    if n == 1 or (d > 0).all():
        return np.arange(n)
    if allow_descending and (d < 0).all():
        return np.arange(n)[::-1]
    dup = first_true(d == 0)
    if dup is not None:
        raise row_error(p, dup + 1, f"duplicate time {t[dup + 1]}")
    inc = (d > 0).sum() >= (d < 0).sum()
    bad = first_true(d < 0 if inc else d > 0)
    raise row_error(p, bad + 1, f"time out of order ({t[bad + 1]} after {t[bad]}); timestamps must be monotone")


def _step_s(t: pd.DatetimeIndex) -> float:
    if len(t) < 2:
        return 3600.0
    return float(np.median(np.diff(t.as_unit("ns").asi8)) / 1e9)


def _series(t: pd.DatetimeIndex, v: np.ndarray, keep: np.ndarray, order: np.ndarray, p: Path, name: str, step_s: float | None = None) -> pd.Series:
    t, v, keep = t[order], v[order], keep[order]
    s = pd.Series(v[keep], index=t[keep], name=name, dtype=float)
    s.index.name = "time_utc"
    s.attrs = {"source": str(p), "step_s": step_s or _step_s(t), "repairs": {"dropped_nan_rows": int((~keep).sum())}}
    return s


# --- readers ---------------------------------------------------------------------------------


def read_electricitymaps_hourly(path: str | Path, zone: str | None = None, kind: str = "direct", *, nan: str = "error") -> pd.Series:
    """Electricity Maps hourly export (``Datetime (UTC)``, ``Zone Id``, ``Carbon Intensity
    gCO₂eq/kWh (direct|LCA)``): average intensity of one zone, g/kWh."""
    p = existing_file(path, "Electricity Maps")
    if kind not in ("direct", "LCA"):
        raise CedarInputError(f"kind must be 'direct' or 'LCA', got {kind!r}", source=str(p))
    col = f"Carbon Intensity gCO₂eq/kWh ({kind})"
    d = read_csv(p, dtype=str, keep_default_na=False)
    require_columns(d.columns, ["Datetime (UTC)", col], p)
    d = _select_one(d, "Zone Id", "zone", zone, p)
    return _read_simple(d, p, "Datetime (UTC)", col, nonneg=True, nan=nan, name="average_g_per_kwh")


def _select_one(d: pd.DataFrame, column: str, what: str, value: str | None, p: Path) -> pd.DataFrame:
    """Rows of ``d`` for one ``what`` (zone, region) named by ``value`` in ``column``; a file with
    several and no name, or without the named one, is an error naming the file."""
    if column not in d.columns:
        return d
    found = list(dict.fromkeys(d[column]))
    if value is None and len(found) > 1:
        raise CedarInputError(f"file holds several {what}s ({', '.join(found)}); name one", source=str(p), where=what)
    if value is None:
        return d
    if value not in found:
        raise CedarInputError(f"{what} {value!r} not in file; found {', '.join(found)}", source=str(p), where=what)
    return d[d[column] == value]


def _read_simple(d: pd.DataFrame, p: Path, tcol: str, vcol: str, *, nonneg: bool, nan: str, name: str, factor: float = 1.0, allow_descending: bool = False) -> pd.Series:
    rows = d.index.to_numpy()  # positions in the file (d may be a subset)
    try:
        t = _parse_utc(d[tcol], p)
        v, keep = _values(d[vcol], p, vcol, nonneg=nonneg, factor=factor, nan=nan)
        order = _ordered(t, p, allow_descending=allow_descending)
    except CedarInputError as e:
        raise _remap_row(e, rows, p) from None
    return _series(t, v, keep, order, p, name)


def _remap_row(e: CedarInputError, rows: np.ndarray, p: Path) -> CedarInputError:
    """Re-express 'row N' of a filtered subset as the row of the whole file."""
    if e.where and e.where.startswith("row ") and len(rows) and not np.array_equal(rows, np.arange(len(rows))):
        pos = int(e.where.split()[1]) - 1
        msg = e.message.rsplit(" (file line", 1)[0]
        return row_error(p, int(rows[pos]), msg)
    return e


def read_watttime_moer(path: str | Path, unit: str = "lb/MWh", column: str | None = None, *, nan: str = "error") -> pd.Series:
    """WattTime MOER (marginal operating emissions rate), converted to g/kWh.

    Recognises the WattTime API export (``point_time``, ``value``), the CASLB hourly table
    (``datetime``, ``marginal_carbon_avg``) and Vessim's example (``oootime``, one value column;
    it is already g/kWh, so pass ``unit="g/kWh"``). ``column`` picks the value column explicitly.
    """
    p = existing_file(path, "WattTime MOER")
    f = unit_factor(unit, str(p))
    d = read_csv(p, dtype=str, keep_default_na=False)
    for tcol, vcol in (("point_time", "value"), ("datetime", "marginal_carbon_avg"), ("oootime", None), ("time", None)):
        if tcol in d.columns:
            break
    else:
        raise CedarInputError(f"no time column (point_time, datetime or oootime); found {', '.join(d.columns)}", source=str(p), where="header")
    vcol = column or vcol or next((c for c in d.columns if c != tcol), None)
    require_columns(d.columns, [vcol or "value"], p)
    return _read_simple(d, p, tcol, vcol, nonneg=True, nan=nan, name="marginal_g_per_kwh", factor=f)


def read_pjm_marginal(path: str | Path, *, nan: str = "error") -> pd.Series:
    """PJM Data Miner ``fivemin_marginal_emissions``/hourly export: ``datetime_beginning_utc``,
    ``marginal_co2_rate`` (lb/MWh) → g/kWh. Newest-first files are the native order. Negative
    rates are real (LMP-based marginal units can be net-negative) and are kept."""
    p = existing_file(path, "PJM marginal emissions")
    d = read_csv(p, dtype=str, keep_default_na=False)
    require_columns(d.columns, ["datetime_beginning_utc", "marginal_co2_rate"], p)
    if "pnode_name" in d.columns and d["pnode_name"].nunique() > 1:
        raise CedarInputError(f"file holds several pnodes ({', '.join(d['pnode_name'].unique()[:5])}); give one", source=str(p))
    rows = d.index.to_numpy()
    try:
        t = _parse_utc(d["datetime_beginning_utc"], p, fmt="%m/%d/%Y %I:%M:%S %p")
        v, keep = _values(d["marginal_co2_rate"], p, "marginal_co2_rate", nonneg=False, factor=LB_PER_MWH_TO_G_PER_KWH, nan=nan)
        order = _ordered(t, p, allow_descending=True)
    except CedarInputError as e:
        raise _remap_row(e, rows, p) from None
    return _series(t, v, keep, order, p, "marginal_g_per_kwh", step_s=3600.0)


def read_eia930(path: str | Path, ba: str, *, nan: str = "error") -> pd.DataFrame:
    """EIA-930 hourly net generation by fuel (MWh in the hour) of one balancing authority.

    Layout: ``ba``, ``timestamp`` (UTC hour), fuel columns ``WND SUN WAT OIL NG COL NUC OTH``
    and optionally ``avg_CI`` (g/kWh). Missing fuel values raise unless ``nan="gap"`` (the hour
    is then dropped, counted in ``attrs["repairs"]``). Negative net generation (plant auxiliary
    load) is kept: it is what EIA-930 reports.
    """
    p = existing_file(path, "EIA-930")
    d = read_csv(p, dtype=str, keep_default_na=False)
    require_columns(d.columns, ["timestamp", *EIA930_FUELS], p)
    if "ba" in d.columns:
        bas = list(dict.fromkeys(d["ba"]))
        if ba not in bas:
            raise CedarInputError(f"balancing authority {ba!r} not in file; found {', '.join(bas)}", source=str(p), where="ba")
        d = d[d["ba"] == ba]
    rows = d.index.to_numpy()
    try:
        t = _parse_utc(d["timestamp"], p)
        keep = np.ones(len(d), bool)
        cols = {}
        for f in [*EIA930_FUELS, *(["avg_CI"] if "avg_CI" in d.columns else [])]:
            v, k = _values(d[f].reset_index(drop=True), p, f, nonneg=(f == "avg_CI"), nan=nan)
            cols[f] = v
            keep &= k
        order = _ordered(t, p)
    except CedarInputError as e:
        raise _remap_row(e, rows, p) from None
    return _time_frame(cols, t, order, keep, p, step_s=3600.0, ba=ba)


def _time_frame(cols: dict, t, order: np.ndarray, keep: np.ndarray, p: Path, **attrs) -> pd.DataFrame:
    """Columns on the parsed UTC times, in time order, without the rows whose values were NaN
    (their count is recorded as a repair)."""
    out = pd.DataFrame(cols, index=t).iloc[order]
    out = out[keep[order]]
    out.index.name = "time_utc"
    out.attrs = {"source": str(p), **attrs, "repairs": {"dropped_nan_rows": int((~keep).sum())}}
    return out


GENERIC_SIGNAL_COLUMNS = ("time", "region", "marginal", "average")


def read_generic_signal_csv(path: str | Path, region: str | None = None, *, nan: str = "error") -> pd.DataFrame:
    """Generic signal CSV: ``time`` (ISO 8601, UTC when no offset), optional ``region`` (AWS
    region or grid name), and one or both of ``marginal_<unit>`` / ``average_<unit>`` with
    ``<unit>`` one of ``g_per_kwh``, ``kg_per_mwh``, ``lb_per_mwh``, ``t_per_mwh``. Returns
    columns ``marginal_g_per_kwh`` and/or ``average_g_per_kwh``. Marginal values may be negative;
    average values may not."""
    p = existing_file(path, "carbon signal")
    d = read_csv(p, dtype=str, keep_default_na=False)
    require_columns(d.columns, ["time"], p)
    value_cols: dict[str, tuple[str, float]] = {}
    for c in d.columns:
        if c in ("time", "region"):
            continue
        kind, _, unit = c.partition("_")
        if kind not in ("marginal", "average"):
            raise CedarInputError(f"unknown column {c!r}; expected time, region, marginal_<unit>, average_<unit>", source=str(p), where="header")
        u = unit.replace("_per_", "/").replace("kwh", "kWh").replace("mwh", "MWh")
        if u not in UNITS:
            raise CedarInputError(f"column {c!r}: unknown unit {unit!r}; expected g_per_kwh, kg_per_mwh, lb_per_mwh or t_per_mwh", source=str(p), where="header")
        if kind in {k for k, _ in ((v[0], 0) for v in value_cols.values())}:
            raise CedarInputError(f"two {kind} columns", source=str(p), where="header")
        value_cols[c] = (kind, UNITS[u])
    if not value_cols:
        raise CedarInputError("no marginal_<unit> or average_<unit> column", source=str(p), where="header")
    d = _select_one(d, "region", "region", region, p)
    rows = d.index.to_numpy()
    try:
        t = _parse_utc(d["time"], p)
        keep = np.ones(len(d), bool)
        cols = {}
        for c, (kind, f) in value_cols.items():
            v, k = _values(d[c].reset_index(drop=True), p, c, nonneg=(kind == "average"), factor=f, nan=nan)
            cols[f"{kind}_g_per_kwh"] = v
            keep &= k
        order = _ordered(t, p)
    except CedarInputError as e:
        raise _remap_row(e, rows, p) from None
    return _time_frame(cols, t, order, keep, p, step_s=_step_s(t[order]))


# --- regular grids, gaps, resampling ---------------------------------------------------------


def regularise(series: pd.Series, max_gap_s: float, step_s: float | None = None, *, window: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> pd.Series:
    """Put ``series`` on its own regular grid, filling gaps up to ``max_gap_s`` linearly.

    A gap is the time missing between consecutive samples: their spacing minus one step (a missing
    hour in hourly data is a 1 h gap; gap-free data has none, whatever ``max_gap_s``). Longer gaps raise CedarInputError naming the file and where the gap
    is; with ``window`` only gaps touching the window count (the rest of the file may have holes).
    The number of filled samples is added to ``attrs["repairs"]["filled_samples"]``.
    """
    src = series.attrs.get("source", "signal")
    step = float(step_s or series.attrs.get("step_s") or _step_s(series.index))
    t = series.index.as_unit("ns").asi8 / 1e9
    v = series.to_numpy(float)
    if len(t) == 0:
        raise CedarInputError("no samples", source=src)
    gaps = np.diff(t) - step
    big = gaps > max_gap_s + 1e-6
    if window is not None and big.any():
        w0, w1 = window[0].value / 1e9, window[1].value / 1e9
        big &= (t[1:] > w0) & (t[:-1] < w1)
    i = first_true(big)
    if i is not None:
        raise CedarInputError(
            f"gap of {gaps[i] / 3600:.3g} h between {series.index[i]} and {series.index[i + 1]} is longer than "
            f"max_gap_s = {max_gap_s:g} s (signals.max_gap_s)",
            source=src,
            where=f"time {series.index[i + 1]}",
        )
    grid = np.arange(t[0], t[-1] + step / 2, step)
    if len(grid) == len(t) and np.allclose(grid, t):
        out = series.copy()
        filled = 0
    else:
        vals = np.interp(grid, t, v)
        new = ~np.isin(np.round(grid), np.round(t))
        if window is not None:
            new &= (grid >= window[0].value / 1e9) & (grid < window[1].value / 1e9)
        filled = int(new.sum())
        out = pd.Series(vals, index=pd.to_datetime(grid, unit="s", utc=True), name=series.name)
        out.index.name = series.index.name
    out.attrs = {**series.attrs, "step_s": step, "repairs": {**series.attrs.get("repairs", {}), "filled_samples": filled}}
    return out


def sample_grid(series: pd.Series, start: pd.Timestamp, n: int, step_s: float = RESOLUTION_S, rule: str = "auto") -> np.ndarray:
    """Values of a regular ``series`` on the grid ``start + i·step_s`` (i < n), by the module rule.

    The series must cover ``[start, start + n·step_s)``; that is the caller's check.
    """
    src_step = float(series.attrs.get("step_s") or _step_s(series.index))
    t = series.index.as_unit("ns").asi8 / 1e9
    v = series.to_numpy(float)
    t0 = start.value / 1e9
    edges = t0 + step_s * np.arange(n + 1)
    if rule == "hold":
        idx = np.clip(np.searchsorted(t, edges[:-1], side="right") - 1, 0, len(t) - 1)
        return v[idx]
    if rule not in ("auto", "linear", "mean"):
        raise CedarInputError(f"unknown resampling rule {rule!r}; expected auto, linear, mean or hold")
    if rule == "linear" or (rule == "auto" and src_step > step_s * (1 + 1e-9)):
        return np.interp(edges[:-1] + step_s / 2, t + src_step / 2, v)
    # coarser target (or equal): exact time-weighted mean of the step function over each interval
    cum = np.concatenate([[0.0], np.cumsum(v * src_step)])
    ends = np.concatenate([t, [t[-1] + src_step]])

    def integral(x: np.ndarray) -> np.ndarray:
        i = np.clip(np.searchsorted(ends, x, side="right") - 1, 0, len(v) - 1)
        return cum[i] + v[i] * np.clip(x - ends[i], 0, src_step)

    return np.diff(integral(edges)) / step_s


def resample_to(series: pd.Series, freq: str = "5min", rule: str = "auto", max_gap_s: float = 7200.0) -> pd.Series:
    """``series`` on a regular ``freq`` grid aligned to the epoch (e.g. :00, :05, …), by the
    module's documented rule, after filling gaps up to ``max_gap_s``."""
    step = pd.Timedelta(freq).total_seconds()
    reg = regularise(series, max_gap_s)
    src_step = reg.attrs["step_s"]
    t0 = reg.index[0].floor(freq) if src_step <= step else reg.index[0].ceil(freq)
    end = reg.index[-1] + pd.Timedelta(seconds=src_step)
    n = int(np.floor((end - t0).total_seconds() / step + 1e-9))
    vals = sample_grid(reg, t0, n, step, rule)
    out = pd.Series(vals, index=pd.date_range(t0, periods=n, freq=freq), name=series.name)
    out.index.name = "time_utc"
    out.attrs = {**reg.attrs, "step_s": step, "resampled_from_s": src_step, "rule": rule}
    return out


# --- the data pack and load_signals ----------------------------------------------------------

PACK_MANIFEST = "carbon/pack.yaml"


@dataclass(frozen=True)
class _Choice:
    """One series picked for a region: how to read it and what to call it in provenance."""

    reader: str
    path: Path
    column: str | None = None
    grid: str | None = None
    unit: str = "g/kWh"

    def label(self) -> str:
        return f"{self.reader}:{self.path.name}" + (f"[{self.grid}/{self.column}]" if self.column else "")


@functools.lru_cache(maxsize=16)
def _pack_table(path: str, mtime: float) -> pd.DataFrame:
    p = Path(path)
    d = read_csv(p)
    require_columns(d.columns, ["time_utc", "grid"], p)
    d["time_utc"] = pd.to_datetime(d["time_utc"], utc=True, format="ISO8601")
    return d


@functools.lru_cache(maxsize=32)
def _read_cached(choice: _Choice, mtime: float) -> pd.Series:
    p = choice.path
    if choice.reader == "pack":
        d = _pack_table(str(p), mtime)
        sub = d[d["grid"] == choice.grid]
        if sub.empty:
            raise CedarInputError(f"grid {choice.grid!r} not in pack table", source=str(p))
        require_columns(sub.columns, [choice.column], p)
        s = pd.Series(sub[choice.column].to_numpy(float), index=pd.DatetimeIndex(sub["time_utc"]), name=choice.column)
        bad = first_true(~np.isfinite(s.to_numpy()))
        if bad is not None:
            raise row_error(p, int(sub.index[bad]), f"{choice.column} missing or not a number")
        s.attrs = {"source": str(p), "step_s": _step_s(s.index), "repairs": {}}
        return s
    if choice.reader == "watttime":
        return read_watttime_moer(p, unit=choice.unit, column=choice.column)
    if choice.reader == "pjm":
        return read_pjm_marginal(p)
    if choice.reader == "electricitymaps":
        return read_electricitymaps_hourly(p, zone=choice.grid, kind=choice.column or "direct")
    if choice.reader == "generic":
        d = read_generic_signal_csv(p, region=choice.grid)
        require_columns(d.columns, [choice.column], p)
        s = d[choice.column]
        s.attrs = d.attrs
        return s
    raise CedarInputError(f"unknown reader {choice.reader!r}", source=str(p))


def _read(choice: _Choice) -> pd.Series:
    return _read_cached(choice, choice.path.stat().st_mtime)


EXTERNAL_READERS = {
    "pjm": ("pjm", "g/kWh"),
    "watttime": ("watttime", "lb/MWh"),
    "watttime_g_per_kwh": ("watttime", "g/kWh"),
    "generic": ("generic", "g/kWh"),
}
"""``signals.marginal_source`` values of the form ``<reader>:<path>`` read a user-given file."""


def _manifest(pack: Path) -> tuple[dict, Path]:
    mp = pack / PACK_MANIFEST if (pack / PACK_MANIFEST).is_file() else pack / "pack.yaml"
    mp = existing_file(mp, "carbon pack manifest")
    try:
        doc = yaml.safe_load(mp.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise CedarInputError(f"not valid YAML: {e}", source=str(mp)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("grids"), dict):
        raise CedarInputError("expected a mapping with 'grids'", source=str(mp), where="grids")
    return doc, mp.parent


def _choice_from(entry: dict, base: Path, grid: str, where: str, mp: Path) -> _Choice:
    try:
        return _Choice(reader=entry["reader"], path=(base / entry["file"]).resolve(), column=entry.get("column"), grid=entry.get("grid", grid), unit=entry.get("unit", "g/kWh"))
    except (KeyError, TypeError):
        raise CedarInputError("each series needs 'reader' and 'file'", source=str(mp), where=where) from None


def _pick(region: str, grid: str, source: str | None, pack: Path | None) -> tuple[_Choice, _Choice, str]:
    """(average, marginal, marginal source name) for one region."""
    if pack is not None and pack.is_file():
        # a single generic CSV holds both series; rows keyed by AWS region or grid name
        key = region
        regions = set(read_csv(pack, usecols=lambda c: c == "region", dtype=str).get("region", pd.Series(dtype=str)))
        if regions and region not in regions:
            key = grid if grid in regions else None
            if key is None:
                raise CedarInputError(f"neither region {region!r} nor grid {grid!r} in the signal file; found {', '.join(sorted(regions))}", source=str(pack))
        avg = _Choice("generic", pack.resolve(), "average_g_per_kwh", key if regions else None)
        mar = _Choice("generic", pack.resolve(), "marginal_g_per_kwh", key if regions else None)
        if source and ":" in source:
            mar = _external(source, region)
        return avg, mar, source or "file"
    doc, base = _manifest(pack or data_pack_dir())
    mp = base / "pack.yaml"
    g = doc["grids"].get(grid)
    if g is None:
        raise CedarInputError(f"region {region} maps to grid {grid!r}, which the carbon pack lacks; it has {', '.join(doc['grids'])}", source=str(mp), where=f"grids.{grid}")
    avg = _choice_from(g.get("average", {}), base, grid, f"grids.{grid}.average", mp)
    sources = g.get("marginal", {}).get("sources", {})
    name = source or g.get("marginal", {}).get("default")
    if name and ":" in name:
        return avg, _external(name, region), name
    if name == "average":
        return avg, avg, name
    if name not in sources:
        raise CedarInputError(
            f"region {region} ({grid}): unknown marginal source {name!r}; the pack has {', '.join(sources) or 'none'}, "
            f"plus 'average' or '<reader>:<path>' with reader one of {', '.join(EXTERNAL_READERS)}",
            where=f"signals.marginal_source.{region}",
        )
    return avg, _choice_from(sources[name], base, grid, f"grids.{grid}.marginal.sources.{name}", mp), name


def _external(spec: str, region: str) -> _Choice:
    reader, _, path = spec.partition(":")
    if reader not in EXTERNAL_READERS or not path:
        raise CedarInputError(f"marginal source {spec!r}: expected '<reader>:<path>' with reader one of {', '.join(EXTERNAL_READERS)}", where=f"signals.marginal_source.{region}")
    r, unit = EXTERNAL_READERS[reader]
    p = existing_file(path, f"marginal signal for {region}").resolve()
    return _Choice(r, p, "marginal_g_per_kwh" if r == "generic" else None, None, unit)


def _window(series: pd.Series, start: pd.Timestamp, span_s: float, region: str, what: str, wrap_year: bool) -> tuple[pd.Timestamp, str]:
    """The calendar start to read from (shifted by whole 52-week blocks when wrapping)."""
    step = float(series.attrs.get("step_s") or 3600.0)
    first, last_end = series.index[0], series.index[-1] + pd.Timedelta(seconds=step)
    end = start + pd.Timedelta(seconds=span_s)
    if first <= start and end <= last_end:
        return start, ""
    if wrap_year:
        block = pd.Timedelta(days=364)
        k = int(np.floor((start - first) / block))
        for kk in (k, k + 1, k - 1):
            s2 = start - kk * block
            if first <= s2 and s2 + pd.Timedelta(seconds=span_s) <= last_end:
                return s2, f"; wrapped by {kk}×364 d to {s2.isoformat()}"
    raise CedarInputError(
        f"region {region}: the {what} signal covers {first.isoformat()} → {last_end.isoformat()}, but the run needs "
        f"{start.isoformat()} → {end.isoformat()} (signals.start + duration_s + drain_s + controller horizon)"
        + ("" if wrap_year else "; move signals.start into the data or load with wrap_year=True"),
        source=series.attrs.get("source"),
        where="signals.start",
    )


def run_span_s(scenario) -> float:
    """Run time the signals must cover: duration + drain + the controller's look-ahead (s)."""
    return float(scenario.duration_s + scenario.drain_s + scenario.controller.horizon_s)


def load_signals(scenario, *, wrap_year: bool | None = None, resolution_s: float = RESOLUTION_S) -> SignalSet:
    """The scenario's carbon signals: per region, marginal and average g/kWh every 5 minutes.

    Reads ``scenario.fleet.regions`` (grids from the catalogue), ``signals.start`` (calendar time
    of run t = 0), ``signals.carbon_pack`` (None: the bundled pack; a directory with
    ``pack.yaml``; or one generic signal CSV), ``signals.marginal_source`` (per region: a pack
    source name, ``average``, or ``<reader>:<path>``) and ``signals.max_gap_s``. The grid covers
    ``run_span_s(scenario)``. ``wrap_year=True`` (explicit opt-in) reads a window outside the data
    from the same hour and weekday a whole number of 52-week blocks away (season drifts ≤ 1.25
    days per block); it is recorded in the provenance.
    """
    from cedar_opt.fleet.catalogue import load_catalogue

    cat = load_catalogue(scenario.fleet.catalogue)
    if wrap_year is None:
        wrap_year = scenario.signals.wrap_year
    try:
        start = pd.Timestamp(scenario.signals.start)
    except ValueError:
        raise CedarInputError(f"not an ISO 8601 time: {scenario.signals.start!r}", where="signals.start") from None
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    span = run_span_s(scenario)
    n = int(np.ceil(span / resolution_s)) + 1
    pack = Path(scenario.signals.carbon_pack).expanduser() if scenario.signals.carbon_pack else None
    if pack is not None and not pack.exists():
        raise CedarInputError("carbon pack not found", source=str(pack), where="signals.carbon_pack")
    sources = scenario.signals.marginal_source or {}
    unknown = set(sources) - set(scenario.fleet.regions)
    if unknown:
        raise CedarInputError(f"regions not in fleet.regions: {', '.join(sorted(unknown))}", where="signals.marginal_source")
    mar = np.empty((n, len(scenario.fleet.regions)))
    avg = np.empty_like(mar)
    prov: dict[str, str] = {}
    for j, region in enumerate(scenario.fleet.regions):
        if region not in cat.regions:
            raise CedarInputError(f"region {region!r} not in the catalogue", where="fleet.regions")
        grid = cat.regions[region].grid
        ca, cm, name = _pick(region, grid, sources.get(region), pack)
        notes = []
        for out, choice, what in ((avg, ca, "average"), (mar, cm, "marginal")):
            s = _read(choice)
            s0, note = _window(s, start, n * resolution_s, region, what, wrap_year)
            w = (s0 - pd.Timedelta(seconds=2 * s.attrs["step_s"]), s0 + pd.Timedelta(seconds=n * resolution_s + 2 * s.attrs["step_s"]))
            reg = regularise(s, scenario.signals.max_gap_s, window=w)
            out[:, j] = sample_grid(reg, s0, n, resolution_s)
            filled = reg.attrs["repairs"].get("filled_samples", 0)
            notes.append(f"{what}={choice.label()}" + (f" ({filled} gap samples filled)" if filled else "") + note)
        prov[region] = f"{grid}: " + "; ".join(notes) + (f"; marginal source '{name}'" if name else "")
    return SignalSet(regions=tuple(scenario.fleet.regions), start=start, resolution_s=resolution_s, marginal_g_per_kwh=mar, average_g_per_kwh=avg, provenance=prov)
