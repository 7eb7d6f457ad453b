"""Helpers shared by the carbon and arrival forecasters."""

from __future__ import annotations

import numpy as np

from cedar_opt.errors import CedarInputError

KINDS: tuple[str, ...] = ("persistence", "seasonal", "oracle", "noisy_oracle")
DAY_S = 86_400.0
WEEK_S = 7 * DAY_S
SEASONS_S: tuple[float, ...] = (WEEK_S, DAY_S)
"""Seasonal periods tried in order: the longest one with history wins."""


def check_kind(kind: str, what: str) -> str:
    if kind not in KINDS:
        raise CedarInputError(f"unknown {what} forecast kind {kind!r}; choose one of {', '.join(KINDS)}", where=f"signals.{what}")
    return kind


def check_blocks(t_s: float, starts_s, lengths_s) -> tuple[np.ndarray, np.ndarray]:
    starts = np.asarray(starts_s, dtype=float).reshape(-1)
    lengths = np.asarray(lengths_s, dtype=float).reshape(-1)
    if starts.shape != lengths.shape:
        raise ValueError(f"starts_s {starts.shape} and lengths_s {lengths.shape} differ in shape")
    if np.any(~np.isfinite(starts)) or np.any(~np.isfinite(lengths)) or np.any(lengths <= 0):
        raise ValueError("block starts must be finite and lengths finite and > 0")
    return starts, lengths


def lognormal_factor(seed: int, t_s: float, sigma: float, shape: tuple[int, ...]) -> np.ndarray:
    """Mean-one lognormal errors, reproducible per (seed, t_s)."""
    if sigma <= 0:
        return np.ones(shape)
    rng = np.random.default_rng([int(seed), int(round(t_s * 1000.0)) & 0xFFFFFFFFFFFF])
    return np.exp(sigma * rng.standard_normal(shape) - 0.5 * sigma * sigma)
