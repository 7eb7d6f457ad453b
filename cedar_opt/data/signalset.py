"""The carbon signals a run sees: per region, marginal and average intensity on a regular grid.

Loaders in :mod:`cedar_opt.data` build a :class:`SignalSet`; the simulator reads the current
values for accounting and observations; forecasters read it to look ahead. Time is run time:
seconds since the scenario's calendar ``start``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SignalSet:
    """Regular-grid carbon signals aligned to run time.

    ``marginal_g_per_kwh`` and ``average_g_per_kwh`` are [time, region] arrays sampled every
    ``resolution_s`` seconds starting at run time 0 (the scenario's calendar ``start``). Values
    between samples are held (a sample covers [t, t + resolution_s)).
    """

    regions: tuple[str, ...]
    start: pd.Timestamp
    resolution_s: float
    marginal_g_per_kwh: np.ndarray
    average_g_per_kwh: np.ndarray
    provenance: dict[str, str] = field(default_factory=dict)
    """Per region: where its marginal and average series come from (file, kind, processing)."""

    def __post_init__(self) -> None:
        n = len(self.regions)
        for name in ("marginal_g_per_kwh", "average_g_per_kwh"):
            a = getattr(self, name)
            if a.ndim != 2 or a.shape[1] != n:
                raise ValueError(f"{name} must be [time, {n} regions], got {a.shape}")
        if self.marginal_g_per_kwh.shape != self.average_g_per_kwh.shape:
            raise ValueError("marginal and average series must have the same shape")

    @property
    def span_s(self) -> float:
        """Run time covered (s)."""
        return self.marginal_g_per_kwh.shape[0] * self.resolution_s

    def index(self, t_s: float) -> int:
        i = int(t_s // self.resolution_s)
        return min(max(i, 0), self.marginal_g_per_kwh.shape[0] - 1)

    def marginal_at(self, t_s: float) -> np.ndarray:
        """Per region, marginal intensity at run time ``t_s`` (g CO2/kWh)."""
        return self.marginal_g_per_kwh[self.index(t_s)]

    def average_at(self, t_s: float) -> np.ndarray:
        """Per region, average intensity at run time ``t_s`` (g CO2/kWh)."""
        return self.average_g_per_kwh[self.index(t_s)]

    def window_mean(self, which: str, t0_s: float, t1_s: float) -> np.ndarray:
        """Per region, the time-mean of ``which`` ("marginal" or "average") over [t0, t1)."""
        a = self.marginal_g_per_kwh if which == "marginal" else self.average_g_per_kwh
        if t1_s <= t0_s:
            return a[self.index(t0_s)].copy()
        edges = np.arange(self.index(t0_s), self.index(max(t1_s - 1e-9, t0_s)) + 1)
        lo = np.maximum(edges * self.resolution_s, t0_s)
        hi = np.minimum((edges + 1) * self.resolution_s, t1_s)
        w = np.clip(hi - lo, 0, None)
        return (a[edges] * w[:, None]).sum(0) / w.sum()

    def covers(self, t_end_s: float) -> bool:
        return self.span_s >= t_end_s

    def summary(self) -> pd.DataFrame:
        """Per region: span and mean marginal / average intensity (for ``cedar validate``)."""
        return pd.DataFrame(
            {
                "region": list(self.regions),
                "mean_marginal_g_per_kwh": self.marginal_g_per_kwh.mean(0),
                "mean_average_g_per_kwh": self.average_g_per_kwh.mean(0),
                "source": [self.provenance.get(r, "") for r in self.regions],
            }
        )

    @classmethod
    def constant(cls, regions: tuple[str, ...], marginal: list[float], average: list[float], span_s: float, resolution_s: float = 300.0) -> "SignalSet":
        """Flat signals (tests, hand-computed cases)."""
        n = int(np.ceil(span_s / resolution_s)) + 1
        return cls(
            regions=tuple(regions),
            start=pd.Timestamp("2022-01-01T00:00:00Z"),
            resolution_s=resolution_s,
            marginal_g_per_kwh=np.tile(np.asarray(marginal, float), (n, 1)),
            average_g_per_kwh=np.tile(np.asarray(average, float), (n, 1)),
            provenance={r: "constant" for r in regions},
        )
