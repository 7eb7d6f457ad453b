"""Marginal-intensity estimator for grids without a published marginal series.

Method (after Siler-Evans, Azevedo & Morgan, *Environ. Sci. Technol.* 46 (2012) 4742): from hourly
net generation by fuel ``G_f,t`` (EIA-930, MWh), hourly direct emissions are
``E_t = Σ_f EF_f · G_f,t`` (kg, with ``EF_f`` in g/kWh = kg/MWh) and total generation is
``G_t = Σ_f G_f,t``. For consecutive hours the changes are regressed,

    ΔE_t = α_g + β_g · ΔG_t,     g = (season(t), local hour of day(t)),

and the marginal emission rate of group ``g`` is ``β_g`` (kg/MWh = g/kWh). Seasons are DJF, MAM,
JJA, SON; hours are local prevailing time of the grid. Each group's slope is pooled toward its
season's slope (a ridge penalty ``λ (β_g − β_season)²`` with ``λ = pooling · mean_g Sxx_g``) to
tame groups with few large load changes, then clipped to ``[0, max_f EF_f]`` (a marginal unit
cannot emit more than the dirtiest fuel, nor less than zero on average).

Because the groups are calendar features only, a fitted model predicts any timestamp — in the
fitted year or another — which is how it is checked against real marginal series from other
years (``scripts/validate_marginal_estimator.py``, figures in ``docs/marginal_estimator.md``).

The emission factors are direct (combustion) factors, matching what marginal series (WattTime
MOER, PJM marginal rates) measure; lifecycle factors would add upstream emissions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cedar_opt.errors import CedarInputError

DIRECT_EF_G_PER_KWH: dict[str, dict[str, float]] = {
    "PJM": {"COL": 970.47, "NG": 398.30, "OIL": 751.52},
    "BPAT": {"COL": 1134.90, "NG": 394.42, "OIL": 751.52},
    "CISO": {"COL": 514.47, "NG": 403.84, "OIL": 910.22},
}
"""Direct (stack) emission factors by EIA-930 fuel, g CO2/kWh: eGRID 2020 values as carried by the
Electricity Maps zone configurations (US-MIDA-PJM, US-NW-BPAT, US-CAL-CISO). BPAT has no oil
generation; PJM's oil factor stands in. All other fuels (wind, solar, hydro, nuclear, other —
mostly biomass/geothermal/storage, which eGRID counts as zero direct) are 0."""

DEFAULT_EF = {"COL": 970.47, "NG": 398.30, "OIL": 751.52}

GRID_TZ = {"PJM": "America/New_York", "CISO": "America/Los_Angeles", "BPAT": "America/Los_Angeles", "NYIS": "America/New_York", "ERCO": "America/Chicago"}
"""Local prevailing time zone of each grid (hour-of-day groups are local)."""

SEASONS = ("DJF", "MAM", "JJA", "SON")
_SEASON_OF_MONTH = np.array([0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0])  # Jan..Dec


def emission_factors(ba: str) -> dict[str, float]:
    return dict(DIRECT_EF_G_PER_KWH.get(ba, DEFAULT_EF))


def direct_emissions_kg(fuelmix: pd.DataFrame, factors: dict[str, float]) -> np.ndarray:
    """Σ_f EF_f · G_f per hour (kg); fuels absent from ``factors`` count zero."""
    e = np.zeros(len(fuelmix))
    for f, ef in factors.items():
        if f in fuelmix.columns:
            e += ef * np.clip(fuelmix[f].to_numpy(float), 0, None)
    return e


def total_generation_mwh(fuelmix: pd.DataFrame) -> np.ndarray:
    from cedar_opt.data.carbon import EIA930_FUELS

    return fuelmix[[f for f in EIA930_FUELS if f in fuelmix.columns]].clip(lower=0).sum(axis=1).to_numpy(float)


def average_intensity(fuelmix: pd.DataFrame, factors: dict[str, float]) -> pd.Series:
    """Production-based direct average intensity Σ EF_f G_f / Σ G_f (g/kWh), per hour."""
    g = total_generation_mwh(fuelmix)
    if (g <= 0).any():
        i = int(np.flatnonzero(g <= 0)[0])
        raise CedarInputError(f"total generation is {g[i]:g} MWh at {fuelmix.index[i]}", source=fuelmix.attrs.get("source"))
    return pd.Series(direct_emissions_kg(fuelmix, factors) / g, index=fuelmix.index, name="average_g_per_kwh")


def groups(times: pd.DatetimeIndex, tz: str) -> np.ndarray:
    """Group id season·24 + local hour for each UTC time."""
    loc = times.tz_convert(tz)
    return _SEASON_OF_MONTH[loc.month.to_numpy() - 1] * 24 + loc.hour.to_numpy()


@dataclass(frozen=True)
class MarginalModel:
    """A fitted estimator: one marginal rate per (season, local hour)."""

    ba: str
    tz: str
    beta_g_per_kwh: np.ndarray
    """[4 seasons, 24 hours] marginal rate, g/kWh."""
    n_obs: np.ndarray
    """[4, 24] hour-to-hour changes used per group."""
    season_beta_g_per_kwh: np.ndarray
    """[4] pooled season slopes (before group pooling), g/kWh."""
    factors: dict[str, float] = field(default_factory=dict)

    def predict(self, times: pd.DatetimeIndex) -> pd.Series:
        """Marginal g/kWh at each UTC time (the rate of its season and local hour)."""
        t = pd.DatetimeIndex(times)
        t = t.tz_localize("UTC") if t.tz is None else t
        return pd.Series(self.beta_g_per_kwh.ravel()[groups(t, self.tz)], index=t, name="marginal_g_per_kwh")

    def table(self) -> pd.DataFrame:
        """The fitted rates as a season × hour table (g/kWh)."""
        return pd.DataFrame(self.beta_g_per_kwh, index=list(SEASONS), columns=range(24))


METHODS = ("fossil_mix", "regression")


def fossil_mix_rate(fuelmix: pd.DataFrame, factors: dict[str, float]) -> pd.Series:
    """Per hour, the output-weighted direct factor of the fuels with a factor (the fossil
    units running that hour), g/kWh; NaN in hours with no fossil output."""
    num = direct_emissions_kg(fuelmix, factors)
    den = np.zeros(len(fuelmix))
    for f in factors:
        if f in fuelmix.columns:
            den += np.clip(fuelmix[f].to_numpy(float), 0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, num / den, np.nan)
    return pd.Series(r, index=fuelmix.index, name="marginal_g_per_kwh")


def fit_marginal(
    fuelmix: pd.DataFrame, ba: str, factors: dict[str, float] | None = None, *, method: str = "fossil_mix", pooling: float = 1.0, tz: str | None = None
) -> MarginalModel:
    """Fit a season × local-hour marginal-rate table on an hourly fuel mix (see the module doc).

    ``fuelmix``: EIA-930 frame from :func:`cedar_opt.data.carbon.read_eia930` (UTC hourly index,
    gaps allowed). ``method``: ``fossil_mix`` (group means of :func:`fossil_mix_rate`) or
    ``regression`` (ΔE/ΔG slopes; only changes between consecutive hours are used). ``pooling``
    ≥ 0 (regression only) scales the pull of each group slope toward its season slope.
    """
    if pooling < 0:
        raise CedarInputError(f"pooling must be ≥ 0, got {pooling:g}")
    if method not in METHODS:
        raise CedarInputError(f"unknown estimator method {method!r}; expected one of {', '.join(METHODS)}")
    factors = factors or emission_factors(ba)
    tz = tz or GRID_TZ.get(ba, "UTC")
    idx = pd.DatetimeIndex(fuelmix.index)
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    if method == "fossil_mix":
        return _fit_fossil_mix(fuelmix, idx, ba, factors, tz)
    e = direct_emissions_kg(fuelmix, factors)
    g = total_generation_mwh(fuelmix)
    t = idx.as_unit("ns").asi8 // 10**9
    consecutive = np.diff(t) == 3600
    if consecutive.sum() < 24 * 4 * 3:
        raise CedarInputError(f"too few consecutive hours to fit ({int(consecutive.sum())})", source=fuelmix.attrs.get("source"))
    de, dg = np.diff(e)[consecutive], np.diff(g)[consecutive]
    grp = groups(idx[1:][consecutive], tz)
    season = grp // 24
    beta = np.zeros(96)
    n_obs = np.bincount(grp, minlength=96)
    sb = np.zeros(4)
    sxx = np.zeros(96)
    sxy = np.zeros(96)
    for k in range(96):
        m = grp == k
        if m.sum() >= 2:
            x, y = dg[m] - dg[m].mean(), de[m] - de[m].mean()
            sxx[k], sxy[k] = (x * x).sum(), (x * y).sum()
    overall = sxy.sum() / sxx.sum() if sxx.sum() > 0 else 0.0
    for s in range(4):
        ks = np.arange(s * 24, s * 24 + 24)
        sb[s] = sxy[ks].sum() / sxx[ks].sum() if sxx[ks].sum() > 0 else overall  # no data that season
    lam = pooling * sxx[sxx > 0].mean()
    for k in range(96):
        beta[k] = (sxy[k] + lam * sb[k // 24]) / (sxx[k] + lam) if (sxx[k] + lam) > 0 else sb[k // 24]
    hi = max(factors.values()) if factors else 0.0
    beta = np.clip(beta, 0.0, hi)
    return MarginalModel(ba=ba, tz=tz, beta_g_per_kwh=beta.reshape(4, 24), n_obs=n_obs.reshape(4, 24), season_beta_g_per_kwh=np.clip(sb, 0, hi), factors=factors)


def _fit_fossil_mix(fuelmix: pd.DataFrame, idx: pd.DatetimeIndex, ba: str, factors: dict[str, float], tz: str) -> MarginalModel:
    r = fossil_mix_rate(fuelmix, factors).to_numpy()
    ok = np.isfinite(r)
    if ok.sum() < 24 * 4 * 3:
        raise CedarInputError(f"too few hours with fossil output to fit ({int(ok.sum())})", source=fuelmix.attrs.get("source"))
    grp = groups(idx[ok], tz)
    n = np.bincount(grp, minlength=96)
    tot = np.bincount(grp, weights=r[ok], minlength=96)
    overall = tot.sum() / n.sum()
    season = np.array([tot[s * 24 : s * 24 + 24].sum() / n[s * 24 : s * 24 + 24].sum() if n[s * 24 : s * 24 + 24].sum() else overall for s in range(4)])
    beta = np.where(n > 0, tot / np.maximum(n, 1), season[np.arange(96) // 24])
    return MarginalModel(ba=ba, tz=tz, beta_g_per_kwh=beta.reshape(4, 24), n_obs=n.reshape(4, 24), season_beta_g_per_kwh=season, factors=factors)


def estimate_marginal(
    fuelmix: pd.DataFrame,
    ba: str,
    times: pd.DatetimeIndex | None = None,
    *,
    method: str = "fossil_mix",
    factors: dict[str, float] | None = None,
    pooling: float = 1.0,
) -> pd.Series:
    """Marginal intensity, g CO2/kWh, of grid ``ba`` from its EIA-930 hourly fuel mix.

    With ``times`` given: the fitted season × hour table at those times (any year). Without:
    one value per fuel-mix hour — for ``fossil_mix`` the hour's own fossil-weighted rate (the
    table fills hours without fossil output), for ``regression`` the table.
    """
    model = fit_marginal(fuelmix, ba, factors, method=method, pooling=pooling)
    if times is not None:
        return model.predict(times)
    table = model.predict(fuelmix.index)
    if method == "fossil_mix":
        own = fossil_mix_rate(fuelmix, model.factors)
        table = own.where(np.isfinite(own), table).rename("marginal_g_per_kwh")
    return table


def compare(estimated: pd.Series, real: pd.Series) -> dict[str, float]:
    """Error figures of ``estimated`` against ``real`` on their common hours (g/kWh): MAE, RMSE,
    bias (mean est − real), Pearson correlation, means, and the correlation and MAE of the mean
    daily shape (24 hour-of-day means, UTC)."""
    common = estimated.index.intersection(real.index)
    if len(common) < 24:
        raise CedarInputError(f"only {len(common)} common hours between the estimate and the real series")
    e, r = estimated.loc[common].to_numpy(float), real.loc[common].to_numpy(float)
    d = e - r
    hours = common.hour.to_numpy()
    pe = np.array([e[hours == h].mean() for h in range(24)])
    pr = np.array([r[hours == h].mean() for h in range(24)])
    corr = float(np.corrcoef(e, r)[0, 1]) if e.std() > 0 and r.std() > 0 else float("nan")
    pcorr = float(np.corrcoef(pe, pr)[0, 1]) if pe.std() > 0 and pr.std() > 0 else float("nan")
    return {
        "hours": float(len(common)),
        "mean_real": float(r.mean()),
        "mean_est": float(e.mean()),
        "mae": float(np.abs(d).mean()),
        "rmse": float(np.sqrt((d * d).mean())),
        "bias": float(d.mean()),
        "corr": corr,
        "shape_corr": pcorr,
        "shape_mae": float(np.abs(pe - pr).mean()),
    }
