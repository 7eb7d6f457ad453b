"""The marginal estimator: exact hand-made cases, and (when present) the real fuel mix."""

import numpy as np
import pandas as pd
import pytest

from cedar_opt.data.marginal import compare, estimate_marginal, fit_marginal, fossil_mix_rate, groups
from cedar_opt.errors import CedarInputError
from cedar_opt.paths import shared_data_dir

FACTORS = {"COL": 1000.0, "NG": 400.0}


def _mix(n=24 * 120, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2022-01-01", periods=n, freq="1h", tz="UTC")
    load = 1000 + 300 * np.sin(np.arange(n) * 2 * np.pi / 24) + rng.normal(0, 50, n)
    return idx, load


def test_regression_recovers_a_known_marginal_rate():
    idx, load = _mix()
    # gas follows load (marginal), coal and nuclear fixed: true marginal = gas factor = 400
    df = pd.DataFrame({"COL": 300.0, "NG": load - 500, "NUC": 500.0, "WND": 0.0, "SUN": 0.0, "WAT": 0.0, "OIL": 0.0, "OTH": 0.0}, index=idx)
    m = fit_marginal(df, "TEST", FACTORS, method="regression", tz="UTC")
    np.testing.assert_allclose(m.beta_g_per_kwh, 400.0, atol=1e-6)


def test_regression_sees_the_hour_of_day_switch():
    idx, load = _mix()
    hour = idx.hour.to_numpy()
    # coal follows load 08–19 UTC, gas otherwise
    coal = np.where((hour >= 8) & (hour < 20), load - 700, 300.0)
    gas = np.where((hour >= 8) & (hour < 20), 400.0, load - 600)
    df = pd.DataFrame({"COL": coal, "NG": gas, "NUC": 300.0, "WND": 0.0, "SUN": 0.0, "WAT": 0.0, "OIL": 0.0, "OTH": 0.0}, index=idx)
    m = fit_marginal(df, "TEST", FACTORS, method="regression", pooling=0.0, tz="UTC")
    t = m.table()
    assert t.loc["DJF", 12] == pytest.approx(1000, abs=1e-6)
    assert t.loc["DJF", 2] == pytest.approx(400, abs=1e-6)


def test_fossil_mix_exact_and_clip_and_errors():
    idx = pd.date_range("2022-01-01", periods=4, freq="1h", tz="UTC")
    df = pd.DataFrame({"COL": [100.0, 0, 0, 50], "NG": [100.0, 100, 0, 150], "WAT": [5.0, 5, 5, 5]}, index=idx)
    r = fossil_mix_rate(df, FACTORS)
    assert r.iloc[0] == pytest.approx(700) and r.iloc[1] == pytest.approx(400) and np.isnan(r.iloc[2])
    assert r.iloc[3] == pytest.approx((50 * 1000 + 150 * 400) / 200)
    with pytest.raises(CedarInputError, match="too few"):
        fit_marginal(df, "TEST", FACTORS)
    with pytest.raises(CedarInputError, match="unknown estimator method"):
        fit_marginal(df, "TEST", FACTORS, method="magic")


def test_groups_use_local_time_and_seasons():
    t = pd.DatetimeIndex(["2022-07-01T12:00Z", "2022-01-01T05:00Z"])
    g = groups(t, "America/New_York")
    assert g.tolist() == [2 * 24 + 8, 0 * 24 + 0]  # EDT: 08 local in JJA; EST: 00 local in DJF


def test_compare_exact():
    idx = pd.date_range("2022-01-01", periods=48, freq="1h", tz="UTC")
    real = pd.Series(np.tile(np.arange(24.0), 2), index=idx)
    c = compare(real + 2.0, real)
    assert c["mae"] == pytest.approx(2.0) and c["bias"] == pytest.approx(2.0) and c["rmse"] == pytest.approx(2.0)
    assert c["corr"] == pytest.approx(1.0) and c["shape_corr"] == pytest.approx(1.0) and c["shape_mae"] == pytest.approx(2.0)


def test_real_fuel_mix_estimates_are_plausible():
    shared = shared_data_dir()
    if shared is None:
        pytest.skip("no ../shared/data")
    from cedar_opt.data.carbon import read_eia930

    fm = read_eia930(shared / "carbon/eia930_genmix_avgci_hourly_2022_PJM_BPAT_CISO_NYIS_ERCO.csv.gz", "PJM", nan="gap")
    assert fm.attrs["repairs"]["dropped_nan_rows"] == 23
    est = estimate_marginal(fm, "PJM")
    # a PJM marginal unit is gas or coal: between the gas and coal direct factors
    assert est.between(398.3 - 1e-6, 970.5).all()
    reg = fit_marginal(fm, "PJM", method="regression")
    assert ((reg.beta_g_per_kwh >= 0) & (reg.beta_g_per_kwh <= 970.5)).all()
