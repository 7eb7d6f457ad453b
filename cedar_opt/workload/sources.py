"""Where a workload's numbers come from: token statistics and the session-start rate shape.

* Token statistics: (prompt, output) pairs drawn with replacement from a real trace
  (``cedar_opt.data.traces.load_trace``), or lognormal draws for ``trace: synthetic``.
* Rate shape: a piecewise-constant function of run time, normalised to mean 1 over the run, from
  the ServeGen per-model rate (``cedar_opt.data.rates.load_rate_shape``), the trace's own arrivals
  (60 s bins), or a constant.

Loaders of other engineers are imported lazily, so ``synthetic`` + ``constant`` needs no file and
no data module at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cedar_opt.config.schema import WorkloadSpec
from cedar_opt.errors import CedarInputError

SYNTHETIC_PROMPT_MEDIAN = 1500.0
"""Median first-call prompt of the synthetic source (tokens); the Azure 2023 code trace's median
context is ~1.9k tokens, its conversation trace's ~1.0k."""
SYNTHETIC_PROMPT_SIGMA = 0.8
SYNTHETIC_OUTPUT_MEDIAN = 120.0
"""Median output of the synthetic source (tokens)."""
SYNTHETIC_OUTPUT_SIGMA = 0.9
TRACE_SHAPE_BIN_S = 60.0
"""Bin width used to turn a trace's own arrivals into a rate shape (s)."""


@dataclass(frozen=True)
class TokenSource:
    """Empirical (prompt, output) pairs; draws are rows with replacement (keeps their correlation)."""

    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    name: str

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        idx = rng.integers(0, len(self.prompt_tokens), size=n)
        return self.prompt_tokens[idx], self.output_tokens[idx]


@dataclass(frozen=True)
class RateShape:
    """Piecewise-constant multiplier of the session start rate over run time [0, duration).

    ``edges_s`` has one more entry than ``shape``; ``shape`` has time-mean 1 over the run.
    """

    edges_s: np.ndarray
    shape: np.ndarray
    name: str

    def at(self, t_s: float | np.ndarray) -> np.ndarray:
        i = np.clip(np.searchsorted(self.edges_s, t_s, side="right") - 1, 0, len(self.shape) - 1)
        return self.shape[i]


def _synthetic_tokens(rng: np.random.Generator, n: int = 20000) -> TokenSource:
    p = np.maximum(1, np.round(rng.lognormal(np.log(SYNTHETIC_PROMPT_MEDIAN), SYNTHETIC_PROMPT_SIGMA, n))).astype(np.int64)
    o = np.maximum(1, np.round(rng.lognormal(np.log(SYNTHETIC_OUTPUT_MEDIAN), SYNTHETIC_OUTPUT_SIGMA, n))).astype(np.int64)
    return TokenSource(p, o, "synthetic")


def _load_trace_frame(spec: WorkloadSpec):
    try:
        from cedar_opt.data.traces import load_trace  # written by the data engineer
    except ImportError as e:  # pragma: no cover - only while the loader is missing
        raise CedarInputError(f"trace loader unavailable ({e}); use workload.trace=synthetic", where="workload.trace") from None
    return load_trace(spec.trace, spec.trace_path)


def token_source(spec: WorkloadSpec, rng: np.random.Generator, frame=None) -> TokenSource:
    """Token pairs for ``spec.trace`` (``frame``: an already loaded trace DataFrame)."""
    if spec.trace == "synthetic":
        return _synthetic_tokens(rng)
    df = frame if frame is not None else _load_trace_frame(spec)
    src = spec.trace_path or f"bundled {spec.trace} trace"
    for col in ("prompt_tokens", "output_tokens"):
        if col not in df.columns:
            raise CedarInputError(f"trace has no column {col!r}", source=src)
    p = df["prompt_tokens"].to_numpy(dtype=np.float64)
    o = df["output_tokens"].to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(p) & np.isfinite(o) & (p >= 0) & (o >= 0))
    if bad.any():
        raise CedarInputError("token counts must be finite and ≥ 0", source=src, where=f"row {int(np.argmax(bad))}")
    if len(p) == 0:
        raise CedarInputError("trace has no requests", source=src)
    return TokenSource(np.maximum(p, 1).astype(np.int64), np.maximum(o, 1).astype(np.int64), spec.trace)


def _normalise(edges: np.ndarray, values: np.ndarray, name: str, src: str) -> RateShape:
    w = np.diff(edges)
    total = float((values * w).sum())
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise CedarInputError("rate shape values must be finite and ≥ 0", source=src)
    if total <= 0:
        raise CedarInputError("rate shape is zero over the whole run", source=src)
    return RateShape(edges, values * (w.sum() / total), name)


def _window_shape(starts: np.ndarray, rates: np.ndarray, offset_s: float, duration_s: float, name: str, src: str) -> RateShape:
    """Cut [offset, offset + duration) out of a windowed rate series, wrapping around its span."""
    order = np.argsort(starts)
    starts, rates = np.asarray(starts, float)[order], np.asarray(rates, float)[order]
    if len(starts) == 0:
        raise CedarInputError("rate shape has no windows", source=src)
    width = float(np.median(np.diff(starts))) if len(starts) > 1 else max(duration_s, 1.0)
    t0 = float(starts[0])
    span = float(starts[-1] - t0 + width)
    edges = [0.0]
    vals = []
    t = 0.0
    while t < duration_s - 1e-9:
        pos = (offset_s + t) % span
        i = int(np.searchsorted(starts - t0, pos, side="right") - 1)
        i = min(max(i, 0), len(starts) - 1)
        win_end = (starts[i] - t0 + width) if i < len(starts) - 1 else span
        nxt = min(duration_s, t + max(win_end - pos, 1e-6))
        vals.append(rates[i])
        edges.append(nxt)
        t = nxt
    return _normalise(np.asarray(edges), np.asarray(vals), name, src)


def rate_shape(spec: WorkloadSpec, duration_s: float, frame=None) -> RateShape:
    """The session-start rate multiplier over the run (mean 1)."""
    if spec.rate_shape == "constant":
        return RateShape(np.array([0.0, duration_s]), np.array([1.0]), "constant")
    if spec.rate_shape == "servegen":
        try:
            from cedar_opt.data.rates import load_rate_shape  # written by the data engineer
        except ImportError as e:  # pragma: no cover
            raise CedarInputError(f"rate shape loader unavailable ({e}); use workload.rate_shape=constant", where="workload.rate_shape") from None
        starts, rates = load_rate_shape(spec.rate_shape_path, spec.rate_shape_model)
        src = spec.rate_shape_path or "bundled ServeGen rate shape"
        return _window_shape(np.asarray(starts), np.asarray(rates), spec.rate_shape_offset_s, duration_s, f"servegen:{spec.rate_shape_model}", src)
    # "trace": the trace's own arrivals, binned
    if spec.trace == "synthetic":
        raise CedarInputError("rate_shape 'trace' needs a real trace, not 'synthetic'", where="workload.rate_shape")
    df = frame if frame is not None else _load_trace_frame(spec)
    src = spec.trace_path or f"bundled {spec.trace} trace"
    if "arrival_s" not in df.columns:
        raise CedarInputError("trace has no arrival_s column", source=src)
    a = df["arrival_s"].to_numpy(dtype=np.float64)
    a = a[np.isfinite(a)]
    if len(a) == 0:
        raise CedarInputError("trace has no arrival times", source=src)
    a = a - a.min()
    nb = max(1, int(np.ceil((a.max() + 1e-9) / TRACE_SHAPE_BIN_S)))
    counts = np.bincount(np.minimum((a // TRACE_SHAPE_BIN_S).astype(np.int64), nb - 1), minlength=nb)
    starts = np.arange(nb) * TRACE_SHAPE_BIN_S
    return _window_shape(starts, counts.astype(float), spec.rate_shape_offset_s, duration_s, f"trace:{spec.trace}", src)
