"""Per-request trace loaders: Azure LLM inference 2023, Mooncake JSONL, and a generic CSV.

Every loader returns the same frame (see :func:`load_trace`). Bad rows raise
:class:`~cedar_opt.errors.CedarInputError` naming the file and ``row N`` (1-based data row; the
message adds the file line). Two repairs exist, each off by default, each counted in
``df.attrs["repairs"]`` so a caller can report it:

* ``drop_bad_rows=True`` drops rows with a missing/unparseable time or token count, negative
  tokens, zero output tokens or non-integer tokens;
* ``sort=True`` stable-sorts rows whose arrival time goes backwards.

Generic CSV format (one header line, UTF-8, optionally gzipped), columns:

==================  ========  =================================================================
column              required  meaning
==================  ========  =================================================================
``arrival_s``       one of    arrival time, seconds (any origin; shifted so the first is 0), ≥ 0
``timestamp``       one of    arrival time, ISO 8601 (UTC assumed when no offset is given)
``prompt_tokens``   yes       prompt (input) tokens, integer ≥ 0
``output_tokens``   yes       generated tokens, integer ≥ 1
``session_id``      no        any string; calls of one session share it
``tier``            no        ``HIGH``, ``MEDIUM`` or ``LOW``
``prefix_hashes``   no        ``;``- or space-separated integers: 512-token prefix block hashes
==================  ========  =================================================================

Any other column is an error (a typo would otherwise be silently ignored).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cedar_opt.data._io import existing_file, first_true, read_csv, read_text, require_columns, row_error
from cedar_opt.errors import CedarInputError
from cedar_opt.paths import data_pack_dir

BUNDLED: dict[str, str] = {
    "azure_code": "traces/AzureLLMInferenceTrace_code_2023.csv.gz",
    "azure_conv": "traces/AzureLLMInferenceTrace_conv_2023.csv.gz",
    "mooncake": "traces/mooncake_fast25_synthetic_trace.jsonl.gz",
}
"""Bundled copy of each trace kind, relative to ``data/`` (``generic_csv`` has none)."""

KINDS = ("azure_code", "azure_conv", "mooncake", "generic_csv")
TIERS = ("HIGH", "MEDIUM", "LOW")
GENERIC_COLUMNS = ("arrival_s", "timestamp", "prompt_tokens", "output_tokens", "session_id", "tier", "prefix_hashes")
MOONCAKE_BLOCK_TOKENS = 512


def load_trace(kind: str, path: str | Path | None = None, *, sort: bool = False, drop_bad_rows: bool = False) -> pd.DataFrame:
    """Load a per-request trace.

    Returns columns ``arrival_s`` (float64 s from the first request, non-decreasing),
    ``prompt_tokens`` (int64 ≥ 0), ``output_tokens`` (int64 ≥ 1) and, when the source has them,
    ``session_id`` (str), ``tier`` (str) and ``prefix_hashes`` (list of int). ``attrs`` holds
    ``kind``, ``source`` (file), ``start`` (calendar time of the first request, when the source
    has calendar times) and ``repairs`` (counts of dropped and re-ordered rows).
    """
    if kind not in KINDS:
        raise CedarInputError(f"unknown trace kind {kind!r}; expected one of {', '.join(KINDS)}", where="workload.trace")
    if path is None:
        if kind not in BUNDLED:
            raise CedarInputError("the generic_csv trace has no bundled copy; give its path", where="workload.trace_path")
        path = data_pack_dir() / BUNDLED[kind]
    p = existing_file(path, "trace")
    if kind in ("azure_code", "azure_conv"):
        raw, header = _read_azure(p), 1
    elif kind == "mooncake":
        raw, header = _read_mooncake(p), 0
    else:
        raw, header = _read_generic(p), 1
    df = _finish(raw, p, sort=sort, drop_bad_rows=drop_bad_rows, header_lines=header)
    df.attrs["kind"] = kind
    return df


# --- source formats --------------------------------------------------------------------------


def _read_azure(p: Path) -> pd.DataFrame:
    d = read_csv(p, dtype=str, keep_default_na=False)
    require_columns(d.columns, ["TIMESTAMP", "ContextTokens", "GeneratedTokens"], p)
    t = _parse_times(d["TIMESTAMP"])
    return pd.DataFrame({"_time": t, "prompt_tokens": d["ContextTokens"], "output_tokens": d["GeneratedTokens"]})


def _read_mooncake(p: Path) -> pd.DataFrame:
    ts, inp, out, hashes = [], [], [], []
    lines = read_text(p).splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            raise row_error(p, i, "empty line", header_lines=0)
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise row_error(p, i, f"not valid JSON: {e.msg}", header_lines=0) from None
        if not isinstance(rec, dict):
            raise row_error(p, i, "expected a JSON object", header_lines=0)
        missing = [k for k in ("timestamp", "input_length", "output_length") if k not in rec]
        if missing:
            raise row_error(p, i, f"missing key(s) {', '.join(missing)}", header_lines=0)
        h = rec.get("hash_ids", [])
        if not isinstance(h, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in h):
            raise row_error(p, i, "hash_ids must be a list of integers", header_lines=0)
        ts.append(rec["timestamp"])
        inp.append(rec["input_length"])
        out.append(rec["output_length"])
        hashes.append(h)
    if not lines:
        raise CedarInputError("file is empty", source=str(p))
    d = pd.DataFrame({"_ms": pd.Series(ts, dtype=object), "prompt_tokens": inp, "output_tokens": out})
    d["arrival"] = _to_float(d["_ms"]) / 1000.0
    d["prefix_hashes"] = hashes
    return d.drop(columns="_ms")


def _read_generic(p: Path) -> pd.DataFrame:
    d = read_csv(p, dtype=str, keep_default_na=False)
    unknown = [c for c in d.columns if c not in GENERIC_COLUMNS]
    if unknown:
        raise CedarInputError(
            f"unknown column(s) {', '.join(map(str, unknown))}; allowed: {', '.join(GENERIC_COLUMNS)}", source=str(p), where="header"
        )
    has_s, has_t = "arrival_s" in d.columns, "timestamp" in d.columns
    if has_s == has_t:
        raise CedarInputError("give exactly one of the columns arrival_s or timestamp", source=str(p), where="header")
    require_columns(d.columns, ["prompt_tokens", "output_tokens"], p)
    out = pd.DataFrame({"prompt_tokens": d["prompt_tokens"], "output_tokens": d["output_tokens"]})
    if has_s:
        out["arrival"] = _to_float(d["arrival_s"])
    else:
        out["_time"] = _parse_times(d["timestamp"])
    if "session_id" in d.columns:
        out["session_id"] = d["session_id"].astype(str)
    if "tier" in d.columns:
        tier = d["tier"].str.strip().str.upper()
        bad = first_true(~tier.isin(TIERS).to_numpy())
        if bad is not None:
            raise row_error(p, bad, f"tier must be one of {', '.join(TIERS)}, got {d['tier'].iloc[bad]!r}")
        out["tier"] = tier
    if "prefix_hashes" in d.columns:
        hashes = []
        for i, s in enumerate(d["prefix_hashes"]):
            parts = s.replace(";", " ").split()
            try:
                hashes.append([int(x) for x in parts])
            except ValueError:
                raise row_error(p, i, f"prefix_hashes must be ';'-separated integers, got {s!r}") from None
        out["prefix_hashes"] = hashes
    return out


# --- shared checks and repairs ---------------------------------------------------------------


def _parse_times(s: pd.Series) -> pd.Series:
    t = pd.to_datetime(s.str.strip(), format="ISO8601", errors="coerce", utc=True)
    return t


def _to_float(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce").astype(float)


def _row_problems(d: pd.DataFrame, check_negative: bool) -> tuple[np.ndarray, list[tuple[np.ndarray, str]]]:
    """Boolean 'bad' mask and the (mask, reason) pairs behind it, in reporting order."""
    checks: list[tuple[np.ndarray, str]] = []
    arr = d["arrival"].to_numpy(float)
    checks.append((~np.isfinite(arr), "arrival time missing, unparseable or not finite"))
    if check_negative:
        checks.append((arr < 0, "negative arrival time"))
    for col, lo in (("prompt_tokens", 0), ("output_tokens", 1)):
        v = d[col].to_numpy(float)
        checks.append((~np.isfinite(v), f"{col} missing or not a number"))
        with np.errstate(invalid="ignore"):
            checks.append((np.isfinite(v) & (v != np.round(v)), f"{col} is not an integer"))
            checks.append((v < lo, f"{col} must be ≥ {lo}"))
    bad = np.zeros(len(d), bool)
    for m, _ in checks:
        bad |= m
    return bad, checks


def _finish(raw: pd.DataFrame, p: Path, *, sort: bool, drop_bad_rows: bool, header_lines: int) -> pd.DataFrame:
    d = raw.copy()
    start = None
    calendar = "_time" in d.columns
    if calendar:
        # calendar times become seconds from the first valid row; a negative value here means the
        # row is earlier than the first one, which the time-order check reports
        t = d.pop("_time")
        valid = t.dropna()
        start = valid.iloc[0] if len(valid) else pd.Timestamp("1970-01-01", tz="UTC")
        d["arrival"] = (t - start).dt.total_seconds().astype(float)
    for col in ("prompt_tokens", "output_tokens"):
        d[col] = _to_float(d[col].astype(object).map(lambda x: x.strip() if isinstance(x, str) else x))
    if len(d) == 0:
        raise CedarInputError("trace has no rows", source=str(p))
    bad, checks = _row_problems(d, check_negative=not calendar)
    dropped = 0
    if bad.any():
        if not drop_bad_rows:
            pos = first_true(bad)
            reason = next(r for m, r in checks if m[pos])
            raise row_error(p, pos, reason, header_lines=header_lines)
        dropped = int(bad.sum())
        d = d.loc[~bad].reset_index(drop=True)
        if len(d) == 0:
            raise CedarInputError(f"no valid rows left after dropping {dropped} bad rows", source=str(p))
    arr = d["arrival"].to_numpy(float)
    back = np.flatnonzero(np.diff(arr) < 0)
    reordered = 0
    if back.size:
        if not sort:
            pos = int(back[0]) + 1
            raise CedarInputError(
                f"arrival time goes backwards ({arr[pos]:.6g} s after {arr[pos - 1]:.6g} s from the first row); "
                "traces must be in time order (load with sort=True to sort, counted)",
                source=str(p),
                where=f"row {pos + 1}",
            )
        reordered = int(back.size)
        d = d.iloc[np.argsort(arr, kind="stable")].reset_index(drop=True)
        arr = d["arrival"].to_numpy(float)
    out = pd.DataFrame(
        {
            "arrival_s": arr - arr[0],
            "prompt_tokens": d["prompt_tokens"].to_numpy().astype(np.int64),
            "output_tokens": d["output_tokens"].to_numpy().astype(np.int64),
        }
    )
    for col in ("session_id", "tier", "prefix_hashes"):
        if col in d.columns:
            out[col] = d[col].to_list()
    if calendar:
        start = start + pd.Timedelta(seconds=float(arr[0]))
    out.attrs.update(source=str(p), start=start.isoformat() if calendar else None, repairs={"dropped_rows": dropped, "sorted_rows": reordered})
    return out


def prefix_block_tokens(kind: str) -> int | None:
    """Tokens per prefix-hash block for sources that carry hashes (Mooncake: 512)."""
    return MOONCAKE_BLOCK_TOKENS if kind in ("mooncake", "generic_csv") else None
