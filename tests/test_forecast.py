"""Forecasters: exact small cases per kind, seeding, shapes and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cedar_opt.data.signalset import SignalSet
from cedar_opt.errors import CedarInputError
from cedar_opt.forecast import make_arrival_forecaster, make_carbon_forecaster
from cedar_opt.forecast._common import DAY_S


def ramp_signals(days: float = 2.0, res: float = 300.0) -> SignalSet:
    """Two regions: region 0 marginal = t/300 (sample index), region 1 constant 400."""
    n = int(days * DAY_S / res)
    idx = np.arange(n, dtype=float)
    marg = np.stack([idx, np.full(n, 400.0)], axis=1)
    return SignalSet(("a", "b"), pd.Timestamp("2022-01-01", tz="UTC"), res, marg, marg * 0.5)


def test_carbon_persistence_holds_current_value():
    f = make_carbon_forecaster("persistence", ramp_signals())
    out = f.forecast(3000.0, [3000.0, 3600.0], [600.0, 3600.0])
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out, [[10.0, 400.0], [10.0, 400.0]])


def test_carbon_oracle_is_block_mean():
    f = make_carbon_forecaster("oracle", ramp_signals())
    # block [3000, 3600): samples 10 and 11 (each 300 s) → mean 10.5
    out = f.forecast(3000.0, [3000.0], [600.0])
    np.testing.assert_allclose(out[0], [10.5, 400.0])
    # partial sample weighting: [3150, 3450) = half of sample 10 and half of sample 11
    np.testing.assert_allclose(f.forecast(0.0, [3150.0], [300.0])[0, 0], 10.5)


def test_carbon_seasonal_uses_yesterday_only_when_observed():
    sig = ramp_signals()
    f = make_carbon_forecaster("seasonal", sig)
    t = DAY_S + 3000.0
    out = f.forecast(t, [t], [600.0])
    np.testing.assert_allclose(out[0], [10.5, 400.0])  # same window one day earlier: samples 10, 11
    # before a day of history: persistence
    early = f.forecast(3000.0, [3000.0], [600.0])
    np.testing.assert_allclose(early[0], [10.0, 400.0])


def test_carbon_noisy_oracle_seeded_and_mean_one():
    sig = SignalSet.constant(("a", "b"), [300.0, 500.0], [200.0, 300.0], span_s=DAY_S)
    f1 = make_carbon_forecaster("noisy_oracle", sig, noise=0.3, seed=7)
    f2 = make_carbon_forecaster("noisy_oracle", sig, noise=0.3, seed=7)
    f3 = make_carbon_forecaster("noisy_oracle", sig, noise=0.3, seed=8)
    starts = np.arange(2000) * 10.0
    a = f1.forecast(0.0, starts, np.full(2000, 10.0))
    np.testing.assert_array_equal(a, f2.forecast(0.0, starts, np.full(2000, 10.0)))
    assert not np.allclose(a, f3.forecast(0.0, starts, np.full(2000, 10.0)))
    assert np.all(a > 0)
    ratio = a / np.array([300.0, 500.0])
    assert abs(ratio.mean() - 1.0) < 0.03  # mean-one error
    assert 0.25 < np.log(ratio).std() < 0.35
    # zero noise is the oracle
    f0 = make_carbon_forecaster("noisy_oracle", sig, noise=0.0)
    np.testing.assert_allclose(f0.forecast(0.0, [0.0], [10.0]), [[300.0, 500.0]])


def test_unknown_kind_is_input_error():
    with pytest.raises(CedarInputError, match="unknown"):
        make_carbon_forecaster("magic", ramp_signals())
    with pytest.raises(CedarInputError, match="unknown"):
        make_arrival_forecaster("magic", 10.0, 3, 3)


def test_arrival_persistence_window_mean():
    f = make_arrival_forecaster("persistence", 10.0, 2, 1)
    np.testing.assert_array_equal(f.forecast(0.0, [0.0], [10.0]), np.zeros((1, 2, 1)))
    for i, c in enumerate([10, 20, 30, 40]):
        f.observe(10.0 * (i + 1), np.array([[c], [0]]), np.array([[c * 100], [0]]))
    out = f.forecast(40.0, [40.0, 100.0], [10.0, 60.0])
    # window of 3 steps: counts 20, 30, 40 over 10 s → 3 req/s
    np.testing.assert_allclose(out[:, 0, 0], [3.0, 3.0])
    np.testing.assert_allclose(out[:, 1, 0], [0.0, 0.0])
    np.testing.assert_allclose(f.tokens_per_request()[0], 100.0)


def test_arrival_oracle_and_fallback_without_truth():
    truth = lambda t0, t1: np.array([[t0, t1], [1.0, 2.0]])  # noqa: E731
    f = make_arrival_forecaster("oracle", 10.0, 2, 2, truth=truth)
    out = f.forecast(0.0, [0.0, 10.0], [10.0, 50.0])
    np.testing.assert_allclose(out[1], [[10.0, 60.0], [1.0, 2.0]])
    g = make_arrival_forecaster("oracle", 10.0, 2, 2)
    g.observe(10.0, np.full((2, 2), 50.0))
    np.testing.assert_allclose(g.forecast(10.0, [10.0], [10.0]), np.full((1, 2, 2), 5.0))


def test_arrival_seasonal_uses_yesterday():
    f = make_arrival_forecaster("seasonal", 10.0, 1, 1, window_steps=1)
    # one day + 1 minute of observations: rate = 1 req/s in the first minute, then 0.1
    n = int((DAY_S + 60) / 10)
    for i in range(n):
        t_end = 10.0 * (i + 1)
        f.observe(t_end, np.array([[10.0 if t_end <= 60 else 1.0]]))
    t = 10.0 * n
    out = f.forecast(t, [DAY_S, DAY_S + 60.0], [60.0, 60.0])
    np.testing.assert_allclose(out[:, 0, 0], [1.0, 0.1])
    # a block whose yesterday was not observed yet falls back to persistence (0.1 req/s)
    later = f.forecast(t, [t + 1000.0], [60.0])
    np.testing.assert_allclose(later[0, 0, 0], 0.1)


def test_arrival_noisy_oracle_reproducible():
    truth = lambda t0, t1: np.ones((3, 3))  # noqa: E731
    a = make_arrival_forecaster("noisy_oracle", 10.0, 3, 3, noise=0.2, seed=1, truth=truth)
    b = make_arrival_forecaster("noisy_oracle", 10.0, 3, 3, noise=0.2, seed=1, truth=truth)
    x = a.forecast(50.0, [50.0, 60.0], [10.0, 10.0])
    np.testing.assert_array_equal(x, b.forecast(50.0, [50.0, 60.0], [10.0, 10.0]))
    np.testing.assert_array_equal(x, a.forecast(50.0, [50.0, 60.0], [10.0, 10.0]))  # same t, same draw
    assert not np.allclose(x, 1.0)


def test_arrival_bad_observation_shape():
    f = make_arrival_forecaster("persistence", 10.0, 3, 3)
    with pytest.raises(ValueError, match="tier, origin"):
        f.observe(10.0, np.zeros((2, 3)))
    with pytest.raises(ValueError):
        f.observe(10.0, np.full((3, 3), -1.0))
