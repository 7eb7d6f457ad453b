"""Carbon readers, resampling rule, load_signals and the rate shape."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cedar_opt.config import Scenario
from cedar_opt.data import carbon
from cedar_opt.data.carbon import (
    load_signals,
    read_generic_signal_csv,
    read_pjm_marginal,
    read_watttime_moer,
    regularise,
    resample_to,
)
from cedar_opt.data.rates import load_rate_shape, rate_multiplier
from cedar_opt.errors import CedarInputError
from cedar_opt.paths import shared_data_dir

FIX = Path(__file__).parent / "fixtures" / "data"


def _hourly(values, start="2022-06-15T00:00Z", step="1h"):
    s = pd.Series(np.asarray(values, float), index=pd.date_range(start, periods=len(values), freq=step))
    s.attrs = {"source": "test", "step_s": pd.Timedelta(step).total_seconds(), "repairs": {}}
    return s


# --- readers ---


def test_watttime_lb_per_mwh_converted():
    s = read_watttime_moer(FIX / "watttime_lb.csv")
    assert s.tolist() == pytest.approx([453.592, 498.9512])
    assert s.attrs["step_s"] == 300


def test_pjm_newest_first_is_native_and_negative_kept():
    s = read_pjm_marginal(FIX / "pjm_desc.csv")
    assert s.index[0] == pd.Timestamp("2022-06-15T00:00Z")
    assert s.tolist() == pytest.approx([2000 * 0.453592, 1000 * 0.453592, -100 * 0.453592])


@pytest.mark.parametrize(
    "fn,name,where,text",
    [
        (read_pjm_marginal, "pjm_mixed_order.csv", "row 3", "out of order"),
        (read_generic_signal_csv, "signal_nan.csv", "row 3", "missing or not a number"),
        (read_generic_signal_csv, "signal_nonmonotone.csv", "row 3", "out of order"),
        (read_generic_signal_csv, "signal_negative_average.csv", "row 2", "must be ≥ 0"),
        (read_generic_signal_csv, "signal_unknown_unit.csv", "header", "unknown"),
    ],
)
def test_broken_signal_files(fn, name, where, text):
    with pytest.raises(CedarInputError) as e:
        fn(FIX / name)
    assert e.value.source.endswith(name) and e.value.where == where and text in e.value.message


def test_unknown_unit_argument():
    with pytest.raises(CedarInputError, match="unknown unit"):
        read_watttime_moer(FIX / "watttime_lb.csv", unit="lb/kWh")


def test_nan_gap_repair_is_counted():
    d = read_generic_signal_csv(FIX / "signal_nan.csv", nan="gap")
    assert len(d) == 2 and d.attrs["repairs"]["dropped_nan_rows"] == 1


def test_real_files_when_present():
    shared = shared_data_dir()
    if shared is None:
        pytest.skip("no ../shared/data")
    pjm = read_pjm_marginal(shared / "carbon/pjm_rto_marginal_emissions_hourly_2023H1.csv")
    assert len(pjm) == 4036 and pjm.index.is_monotonic_increasing
    assert pjm.mean() == pytest.approx(1146 * 0.453592, rel=0.01)  # README: mean 1,146 lb/MWh
    em = carbon.read_electricitymaps_hourly(shared / "carbon/electricitymaps_hourly_2021-2024_PJM_CISO_NYIS_ERCO_DE_GB.csv.gz", zone="US-MIDA-PJM")
    assert em["2022"].mean() == pytest.approx(355, abs=1)  # README table
    with pytest.raises(CedarInputError, match="several zones"):
        carbon.read_electricitymaps_hourly(shared / "carbon/electricitymaps_hourly_2021-2024_PJM_CISO_NYIS_ERCO_DE_GB.csv.gz")
    fm = carbon.read_eia930(shared / "carbon/eia930_genmix_avgci_hourly_2022_PJM_BPAT_CISO_NYIS_ERCO.csv.gz", "BPAT")
    assert len(fm) == 8760
    with pytest.raises(CedarInputError, match="row"):
        carbon.read_eia930(shared / "carbon/eia930_genmix_avgci_hourly_2022_PJM_BPAT_CISO_NYIS_ERCO.csv.gz", "PJM")  # 23 NaN rows


# --- resampling rule ---


def test_upsample_linear_between_midpoints_exact():
    s = _hourly([100.0, 220.0])
    r = resample_to(s, "5min")
    # hour midpoints at :30 and 1:30; 5-min midpoints at 2.5, 7.5, ... min
    assert len(r) == 24
    assert r.iloc[0] == 100.0 and r.iloc[5] == 100.0  # before the first midpoint: held (27.5 min)
    assert r.iloc[6] == pytest.approx(100 + 120 * (2.5 / 60))  # 32.5 min
    assert r.iloc[12] == pytest.approx(100 + 120 * (32.5 / 60))
    assert r.iloc[-1] == 220.0


def test_downsample_is_time_weighted_mean():
    s = _hourly(np.arange(24.0), step="5min")
    r = resample_to(s, "1h")
    assert r.tolist() == [pytest.approx(5.5), pytest.approx(17.5)]  # means of 0..11 and 12..23
    # a 5-min grid offset by half a sample: half-weights at both ends
    part = carbon.sample_grid(s, s.index[0] + pd.Timedelta(minutes=2.5), 1, 600.0, "mean")
    assert part[0] == pytest.approx((0 * 2.5 + 1 * 5 + 2 * 2.5) / 10)


def test_hold_rule_and_unknown_rule():
    s = _hourly([1.0, 2.0])
    assert carbon.sample_grid(s, s.index[0], 24, 300, "hold").tolist() == [1.0] * 12 + [2.0] * 12
    with pytest.raises(CedarInputError, match="unknown resampling rule"):
        carbon.sample_grid(s, s.index[0], 2, 300, "cubic")


def test_gap_fill_counted_and_long_gap_error():
    s = _hourly([0.0, 10.0, 30.0]).drop(pd.Timestamp("2022-06-15T01:00Z"))
    r = regularise(s, max_gap_s=7200)
    assert r.tolist() == [0.0, 15.0, 30.0] and r.attrs["repairs"]["filled_samples"] == 1
    with pytest.raises(CedarInputError, match="longer than max_gap_s"):
        regularise(s, max_gap_s=1800)  # one missing hour is a 1 h gap


def test_hourly_mean_roughly_preserved_property():
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=50, deadline=None)
    @given(st.lists(st.floats(0, 1000), min_size=2, max_size=48))
    def run(vals):
        r = resample_to(_hourly(vals), "5min")
        assert len(r) == 12 * len(vals)
        assert r.min() >= min(vals) - 1e-9 and r.max() <= max(vals) + 1e-9  # no overshoot
        assert r.mean() == pytest.approx(np.mean(vals), abs=(max(vals) - min(vals)) / len(vals) + 1e-9)

    run()


# --- load_signals ---


def test_load_signals_default_day_fast_and_consistent():
    import time

    sc = Scenario(duration_s=86400.0)
    t = time.perf_counter()
    s = load_signals(sc)
    assert time.perf_counter() - t < 2.0  # well under a second on a warm machine; generous here
    span = 86400 + sc.drain_s + sc.controller.horizon_s
    assert s.marginal_g_per_kwh.shape == (int(np.ceil(span / 300)) + 1, 3)
    assert s.start == pd.Timestamp("2022-06-15T00:00Z") and s.resolution_s == 300
    assert np.isfinite(s.marginal_g_per_kwh).all() and (s.average_g_per_kwh >= 0).all()
    # the 5-min grid reproduces the bundled hourly mean for the day (within interpolation error)
    table = pd.read_csv(carbon.data_pack_dir() / "carbon/signals_hourly_2022_PJM_CISO_BPAT.csv.gz", parse_dates=["time_utc"])
    day = table[(table.grid == "PJM") & (table.time_utc >= "2022-06-15") & (table.time_utc < "2022-06-16")]
    assert s.average_g_per_kwh[:288, 0].mean() == pytest.approx(day.average_g_per_kwh.mean(), rel=0.01)


def test_outside_data_is_clear_error_and_wrap_is_opt_in():
    sc = Scenario.model_validate({"signals": {"start": "2024-02-01T00:00:00Z"}})
    with pytest.raises(CedarInputError) as e:
        load_signals(sc)
    assert "us-east-1" in e.value.message and "2022-01-01" in e.value.message and e.value.where == "signals.start"
    s = load_signals(sc, wrap_year=True)
    assert "wrapped by 2×364 d" in s.provenance["us-east-1"]
    # same weekday and hour: 2024-02-01 minus 728 days = 2022-02-03
    ref = load_signals(Scenario.model_validate({"signals": {"start": "2022-02-03T00:00:00Z"}}))
    np.testing.assert_array_equal(s.marginal_g_per_kwh, ref.marginal_g_per_kwh)


def test_marginal_source_choices(tmp_path):
    sc = Scenario.model_validate({"signals": {"start": "2023-06-10T00:00:00Z", "marginal_source": {"us-west-1": "watttime"}}})
    s = load_signals(sc, wrap_year=True)
    assert "watttime" in s.provenance["us-west-1"]
    with pytest.raises(CedarInputError, match="unknown marginal source"):
        load_signals(Scenario.model_validate({"signals": {"marginal_source": {"us-east-1": "magic"}}}))
    s = load_signals(Scenario.model_validate({"signals": {"marginal_source": {"us-east-1": "average"}}}))
    np.testing.assert_array_equal(s.marginal_g_per_kwh[:, 0], s.average_g_per_kwh[:, 0])
    # a user file by path, generic reader
    p = tmp_path / "m.csv"
    times = pd.date_range("2022-06-14T22:00Z", periods=30, freq="1h")
    p.write_text("time,marginal_lb_per_mwh\n" + "".join(f"{t.isoformat()},1000\n" for t in times))
    s = load_signals(Scenario.model_validate({"signals": {"marginal_source": {"us-west-2": f"generic:{p}"}}}))
    assert s.marginal_g_per_kwh[:, 2] == pytest.approx(453.592)


def test_generic_pack_file(tmp_path):
    p = tmp_path / "pack.csv"
    rows = []
    for r, (m, a) in {"us-east-1": (500, 300), "us-west-1": (400, 200), "us-west-2": (300, 50)}.items():
        for t in pd.date_range("2022-06-15T00:00Z", periods=4, freq="1h"):
            rows.append(f"{t.isoformat()},{r},{m},{a}\n")
    p.write_text("time,region,marginal_g_per_kwh,average_g_per_kwh\n" + "".join(rows))
    sc = Scenario.model_validate({"duration_s": 3600, "signals": {"carbon_pack": str(p)}})
    s = load_signals(sc)
    np.testing.assert_allclose(s.marginal_g_per_kwh[0], [500, 400, 300])
    np.testing.assert_allclose(s.average_g_per_kwh[-1], [300, 200, 50])
    short = Scenario.model_validate({"duration_s": 4 * 3600, "signals": {"carbon_pack": str(p)}})
    with pytest.raises(CedarInputError, match="run needs"):
        load_signals(short)


# --- rate shape ---


def test_rate_shape_bundled_and_multiplier_exact():
    start, rate = load_rate_shape()
    assert len(start) == 2016 and start[1] - start[0] == 600 and rate[0] == pytest.approx(212.78)
    shape = (np.array([0.0, 600.0, 1200.0]), np.array([1.0, 3.0, 2.0]))
    # window [300, 1500): 300 s at 1, 600 s at 3, 300 s at 2 → mean 2.25
    m = rate_multiplier(np.array([0.0, 400.0, 1000.0]), shape, offset_s=300, duration_s=1200)
    np.testing.assert_allclose(m, [1 / 2.25, 3 / 2.25, 2 / 2.25])
    # wraps after 1800 s
    assert rate_multiplier(1800.0 - 300 + 10, shape, 300, 1200) == pytest.approx(1 / 2.25)
    with pytest.raises(CedarInputError, match="available"):
        load_rate_shape(model="gpt-99")
