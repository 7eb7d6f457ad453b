"""Arrival-rate forecasts per horizon block, tier and origin (requests/s).

The controller calls :meth:`ArrivalForecaster.observe` once per control step with the arrivals of
the step that just ended (counts over ``step_s``), then :meth:`ArrivalForecaster.forecast`.

* ``persistence``: the mean rate of the last ``window_steps`` observed steps (default 3, i.e. 30 s
  at the paper's 10 s step: one step of Poisson counts is too noisy to size replicas on).
* ``seasonal``: the observed rate over the same window one week (else one day) earlier, if that
  history was observed; else persistence.
* ``oracle``: ``truth(t0, t1)`` (expected arrivals per second, [tier, origin]) over each block; no
  ``truth`` → persistence.
* ``noisy_oracle``: the oracle times a mean-one lognormal error (seeded by ``(seed, t_s)``).

Before anything has been observed, rates are the ``prior`` (an operator's planning figure, e.g.
the workload's mean rate; zero if none is given), so a controller does not tear down a warm fleet
in the first seconds of a run. The observation at t = 0 closes no step and is ignored.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

import numpy as np

from cedar_opt.forecast._common import SEASONS_S, check_blocks, check_kind, lognormal_factor


class ArrivalForecaster:
    """See the module docstring."""

    def __init__(
        self,
        kind: str,
        step_s: float,
        n_tiers: int,
        n_origins: int,
        noise: float = 0.1,
        seed: int = 0,
        truth: Callable[[float, float], np.ndarray] | None = None,
        *,
        window_steps: int = 3,
        prior: np.ndarray | None = None,
    ):
        self.kind = check_kind(kind, "arrival_forecast")
        if not (step_s > 0):
            raise ValueError(f"step_s must be > 0, got {step_s}")
        if window_steps < 1:
            raise ValueError("window_steps must be ≥ 1")
        self.step_s = float(step_s)
        self.shape = (int(n_tiers), int(n_origins))
        self.noise = float(noise)
        self.seed = int(seed)
        self.truth = truth
        self.window_steps = int(window_steps)
        self.prior = np.zeros(self.shape) if prior is None else np.broadcast_to(np.asarray(prior, float), self.shape).copy()
        if np.any(~np.isfinite(self.prior)) or np.any(self.prior < 0):
            raise ValueError("prior rates must be finite and ≥ 0")
        self._recent: deque[np.ndarray] = deque(maxlen=self.window_steps)
        self._recent_tok: deque[np.ndarray] = deque(maxlen=self.window_steps)
        # Seasonal history: observed rates keyed by step index (t_s // step_s), kept one week.
        self._history: dict[int, np.ndarray] = {}
        self._keep_steps = int(np.ceil(max(SEASONS_S) / self.step_s)) + 2

    # -- observing -------------------------------------------------------------------------
    def observe(self, t_s: float, requests, tokens=None) -> None:
        """Arrivals counted over the step ending at ``t_s`` (requests and token work, [tier, origin])."""
        r = np.asarray(requests, dtype=float)
        if r.shape != self.shape:
            raise ValueError(f"requests must be {self.shape} [tier, origin], got {r.shape}")
        if np.any(~np.isfinite(r)) or np.any(r < 0):
            raise ValueError("arrival counts must be finite and ≥ 0")
        if t_s <= 0:
            return  # no step has ended yet
        rate = r / self.step_s
        self._recent.append(rate)
        if tokens is not None:
            self._recent_tok.append(np.asarray(tokens, dtype=float) / self.step_s)
        k = int(np.floor((t_s - 1e-9) / self.step_s))  # the step that just ended
        self._history[k] = rate
        if len(self._history) > self._keep_steps:
            for old in [i for i in self._history if i < k - self._keep_steps]:
                del self._history[old]

    def current_rate(self) -> np.ndarray:
        """Mean observed rate over the recent window, requests/s [tier, origin]."""
        if not self._recent:
            return self.prior.copy()
        return np.mean(np.stack(self._recent), axis=0)

    def tokens_per_request(self) -> np.ndarray | None:
        """Observed token work per request per tier over the recent window (None if unknown)."""
        if not self._recent_tok:
            return None
        req = np.sum(np.stack(self._recent), axis=(0, 2))
        tok = np.sum(np.stack(self._recent_tok), axis=(0, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(req > 0, tok / np.maximum(req, 1e-12), np.nan)
        return out

    # -- forecasting -----------------------------------------------------------------------
    def _seasonal(self, t_s: float, s: float, tau: float) -> np.ndarray | None:
        for period in SEASONS_S:
            s0, s1 = s - period, s - period + tau
            if s0 < 0 or s1 > t_s + 1e-9:
                continue
            k0 = int(np.floor(s0 / self.step_s))
            k1 = max(k0 + 1, int(np.ceil(s1 / self.step_s)))
            got = [self._history[k] for k in range(k0, k1) if k in self._history]
            if len(got) >= max(1, (k1 - k0) // 2):
                return np.mean(np.stack(got), axis=0)
        return None

    def forecast(self, t_s: float, starts_s, lengths_s) -> np.ndarray:
        """[block, tier, origin] mean arrival rate per block (requests/s)."""
        starts, lengths = check_blocks(t_s, starts_s, lengths_s)
        now = self.current_rate()
        out = np.empty((starts.size,) + self.shape)
        for b, (s, tau) in enumerate(zip(starts, lengths)):
            val = None
            if self.kind == "seasonal":
                val = self._seasonal(t_s, s, tau)
            elif self.kind in ("oracle", "noisy_oracle") and self.truth is not None:
                val = np.asarray(self.truth(float(s), float(s + tau)), dtype=float)
                if val.shape != self.shape:
                    raise ValueError(f"truth(t0, t1) must return {self.shape} [tier, origin], got {val.shape}")
            out[b] = now if val is None else val
        if self.kind == "noisy_oracle" and self.truth is not None:
            out *= lognormal_factor(self.seed, t_s, self.noise, out.shape)
        return np.maximum(out, 0.0)


def make_arrival_forecaster(
    kind: str,
    step_s: float,
    n_tiers: int,
    n_origins: int,
    noise: float = 0.1,
    seed: int = 0,
    truth: Callable[[float, float], np.ndarray] | None = None,
    **kw,
) -> ArrivalForecaster:
    """An arrival forecaster of ``kind``; see :mod:`cedar_opt.forecast.arrivals`."""
    return ArrivalForecaster(kind, step_s, n_tiers, n_origins, noise=noise, seed=seed, truth=truth, **kw)
