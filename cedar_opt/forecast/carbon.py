"""Marginal-carbon forecasts per horizon block and region (g CO2/kWh), read from a SignalSet.

Run time 0 is the first sample of the :class:`~cedar_opt.data.signalset.SignalSet`, so "history"
for the seasonal forecast is the part of the signal before ``t_s``: a seasonal forecast of
block [s, s+τ) uses [s − P, s − P + τ) only when ``s − P + τ ≤ t_s`` (it was observed by then)
and ``s − P ≥ 0``; otherwise it falls back to persistence for that block.
"""

from __future__ import annotations

import numpy as np

from cedar_opt.forecast._common import SEASONS_S, check_blocks, check_kind, lognormal_factor


class CarbonForecaster:
    """Block-mean marginal (and average) intensity forecasts; see :mod:`cedar_opt.forecast`."""

    def __init__(self, kind: str, signals, noise: float = 0.1, seed: int = 0):
        self.kind = check_kind(kind, "forecast")
        if signals is None:
            raise ValueError("a carbon forecaster needs a SignalSet")
        if noise < 0 or not np.isfinite(noise):
            raise ValueError(f"noise must be a finite σ ≥ 0, got {noise}")
        self.signals = signals
        self.noise = float(noise)
        self.seed = int(seed)

    def forecast(self, t_s: float, starts_s, lengths_s, which: str = "marginal") -> np.ndarray:
        """[block, region] forecast block means of ``which`` ("marginal" or "average"), g/kWh."""
        starts, lengths = check_blocks(t_s, starts_s, lengths_s)
        sig = self.signals
        n_r = len(sig.regions)
        now = sig.marginal_at(t_s) if which == "marginal" else sig.average_at(t_s)
        out = np.empty((starts.size, n_r))
        for b, (s, tau) in enumerate(zip(starts, lengths)):
            if self.kind == "persistence":
                out[b] = now
            elif self.kind == "seasonal":
                out[b] = now
                for period in SEASONS_S:
                    s0 = s - period
                    if s0 >= 0 and s0 + tau <= t_s + 1e-9:
                        out[b] = sig.window_mean(which, s0, s0 + tau)
                        break
            else:  # oracle, noisy_oracle
                out[b] = sig.window_mean(which, s, s + tau)
        if self.kind == "noisy_oracle":
            out *= lognormal_factor(self.seed, t_s, self.noise, out.shape)
        return out


def make_carbon_forecaster(kind: str, signals, noise: float = 0.1, seed: int = 0) -> CarbonForecaster:
    """A carbon forecaster of ``kind`` over ``signals`` (a SignalSet)."""
    return CarbonForecaster(kind, signals, noise=noise, seed=seed)
