"""Arrival-rate shapes from ServeGen (Alibaba Bailian): 10-minute per-model total request rates.

A rate shape stretches real per-request token statistics over a day or a week while keeping the
daily and weekly cycle. The shape is a step function: window ``i`` holds its mean rate over
``[start_i, start_i + w)`` (``w`` = 600 s). Run time ``t`` reads the shape at
``offset_s + t``; past the end of the shape it wraps around (ServeGen's language models cover
exactly 14 days, so wrapping keeps the weekly phase).

:func:`rate_multiplier` returns the shape **normalised to mean 1 over the run window**
``[offset_s, offset_s + duration_s)`` (exact time-weighted mean of the step function, partial
windows included), so a scenario's ``sessions_per_s`` is the run's mean rate and the shape only
says how it is spread over time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cedar_opt.data._io import existing_file, first_true, read_csv, require_columns, row_error
from cedar_opt.errors import CedarInputError
from cedar_opt.paths import data_pack_dir

BUNDLED_RATES = "rates/servegen_model_total_rate_10min.csv.gz"


def load_rate_shape(path: str | Path | None = None, model: str = "m-large") -> tuple[np.ndarray, np.ndarray]:
    """(window_start_s, total_rate_rps) of one ServeGen model group, windows in time order.

    ``path`` None reads the bundled copy. The CSV needs columns ``model``, ``window_start_s`` and
    ``total_rate_rps``; windows must be equally spaced and strictly increasing, rates finite and
    ≥ 0 and not all zero.
    """
    p = existing_file(path if path is not None else data_pack_dir() / BUNDLED_RATES, "rate shape")
    d = read_csv(p)
    require_columns(d.columns, ["model", "window_start_s", "total_rate_rps"], p)
    d = d.reset_index().rename(columns={"index": "_row"})
    sel = d[d["model"].astype(str) == model]
    if sel.empty:
        models = sorted(d["model"].astype(str).unique())
        raise CedarInputError(f"model {model!r} not in the rate shape; available: {', '.join(models)}", source=str(p), where="workload.rate_shape_model")
    start = np.asarray(pd_numeric(sel["window_start_s"]), float)
    rate = np.asarray(pd_numeric(sel["total_rate_rps"]), float)
    rows = sel["_row"].to_numpy()
    for arr, col in ((start, "window_start_s"), (rate, "total_rate_rps")):
        bad = first_true(~np.isfinite(arr))
        if bad is not None:
            raise row_error(p, int(rows[bad]), f"{col} missing or not a number")
    bad = first_true(rate < 0)
    if bad is not None:
        raise row_error(p, int(rows[bad]), f"total_rate_rps must be ≥ 0, got {rate[bad]:g}")
    if len(start) < 2:
        raise CedarInputError(f"model {model!r} has fewer than 2 windows", source=str(p))
    step = np.diff(start)
    bad = first_true(step <= 0)
    if bad is not None:
        raise row_error(p, int(rows[bad + 1]), "window_start_s must be strictly increasing")
    bad = first_true(np.abs(step - step[0]) > 1e-6 * step[0])
    if bad is not None:
        raise row_error(p, int(rows[bad + 1]), f"windows must be equally spaced ({step[0]:g} s), found a {step[bad]:g} s step")
    if rate.sum() <= 0:
        raise CedarInputError(f"model {model!r} has zero rate in every window", source=str(p))
    return start, rate


def pd_numeric(s):
    import pandas as pd

    return pd.to_numeric(s, errors="coerce")


def _cumulative(shape: tuple[np.ndarray, np.ndarray]):
    start, rate = (np.asarray(a, float) for a in shape)
    w = float(start[1] - start[0])
    period = w * len(rate)
    cum = np.concatenate([[0.0], np.cumsum(rate * w)])

    def integral(tau: np.ndarray) -> np.ndarray:
        """∫_0^tau r (requests), tau measured from the shape's first window, wrapping."""
        k, rem = np.divmod(tau, period)
        i = np.minimum((rem // w).astype(int), len(rate) - 1)
        return k * cum[-1] + cum[i] + rate[i] * (rem - i * w)

    return start, rate, w, period, integral


def rate_at(t_s, shape: tuple[np.ndarray, np.ndarray], offset_s: float = 0.0) -> np.ndarray:
    """The shape's raw rate (requests/s) at run time ``t_s`` (wrapping past the end)."""
    start, rate, w, period, _ = _cumulative(shape)
    tau = np.mod(np.asarray(t_s, float) + offset_s, period)
    return rate[np.minimum((tau // w).astype(int), len(rate) - 1)]


def rate_multiplier(t_s, shape: tuple[np.ndarray, np.ndarray], offset_s: float, duration_s: float) -> np.ndarray:
    """Shape at run time ``t_s`` divided by its time-mean over ``[offset_s, offset_s + duration_s)``.

    ``t_s`` is run time (s, scalar or array); the result has its shape. Mean 1 over the run
    window by construction. Raises CedarInputError when the shape is zero over the whole window.
    """
    if duration_s <= 0:
        raise CedarInputError(f"duration must be > 0, got {duration_s:g}", where="duration_s")
    _, _, _, _, integral = _cumulative(shape)
    mean = float(integral(np.float64(offset_s + duration_s)) - integral(np.float64(offset_s))) / duration_s
    if mean <= 0:
        raise CedarInputError(
            f"the rate shape is zero over the whole run window [{offset_s:g}, {offset_s + duration_s:g}) s", where="workload.rate_shape_offset_s"
        )
    return rate_at(t_s, shape, offset_s) / mean
