"""Agentic workload: session structure, tier shares, context growth, determinism, rate shapes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cedar_opt.config.schema import Scenario
from cedar_opt.fleet.catalogue import load_catalogue
from cedar_opt.paths import data_pack_dir
from cedar_opt.workload import build_workload, tier_probabilities
from cedar_opt.workload.sources import TokenSource, _window_shape

CAT = load_catalogue()


def scenario(**wl) -> Scenario:
    base = {"trace": "synthetic", "rate_shape": "constant", "sessions_per_s": 2.0}
    base.update(wl)
    return Scenario.model_validate({"duration_s": 1800, "seed": 3, "workload": base})


def test_same_seed_same_workload_and_different_seed_differs():
    s = scenario()
    a, b = build_workload(s, catalogue=CAT), build_workload(s, catalogue=CAT)
    for f in ("session_start_s", "session_origin", "call_offset", "tier", "prompt_tokens", "output_tokens", "est_output_tokens", "think_s"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    c = build_workload(s, seed=4, catalogue=CAT)
    assert not np.array_equal(a.session_start_s[:10], c.session_start_s[:10])


def test_session_counts_and_calls_per_session_match_the_configuration():
    s = scenario(sessions_per_s=5.0, session={"calls_mean": 12.0})
    w = build_workload(s, catalogue=CAT)
    # Poisson(5 × 1800 = 9000): 5 σ ≈ 475
    assert abs(w.n_sessions - 9000) < 475
    n = np.diff(w.call_offset)
    assert n.min() >= 1
    assert abs(n.mean() - 12.0) < 5 * np.sqrt(12 * 11 / w.n_sessions)
    assert np.all(np.diff(w.session_start_s) >= 0) and w.session_start_s.max() < 1800


def test_tier_probabilities_keep_configured_shares_in_expectation():
    shares = np.array([0.4, 0.4, 0.2])
    first_high, p = tier_probabilities(shares, 12.0)
    assert first_high
    # (1 + 11 p_H) / 12 = 0.4 → p_H = 3.8/11; MEDIUM: 11 p_M / 12 = 0.4
    np.testing.assert_allclose(p, [3.8 / 11, 4.8 / 11, 2.4 / 11])
    # HIGH share too small to force the first call: plain i.i.d.
    first_high, p = tier_probabilities(np.array([0.05, 0.5, 0.45]), 12.0)
    assert not first_high
    np.testing.assert_allclose(p, [0.05, 0.5, 0.45])


def test_realised_tier_shares_and_first_call_high():
    w = build_workload(scenario(sessions_per_s=10.0), catalogue=CAT)
    share = np.bincount(w.tier, minlength=3) / w.n_calls
    np.testing.assert_allclose(share, [0.4, 0.4, 0.2], atol=0.01)
    assert np.all(w.tier[w.call_offset[:-1]] == 0)
    assert np.all(w.think_s[w.call_offset[:-1]] == 0)
    assert np.all(np.delete(w.think_s, w.call_offset[:-1]) >= 0)


def test_context_grows_by_previous_output_plus_tool_result_until_truncated():
    s = scenario(session={"calls_mean": 20.0, "max_context_tokens": 8000, "tool_result_tokens_mean": 300.0})
    w = build_workload(s, catalogue=CAT)
    sess, idx = w.call_session, w.call_index
    later = np.flatnonzero(idx > 0)
    prev = later - 1
    assert np.all(sess[prev] == sess[later])
    grow = w.prompt_tokens[later] - w.prompt_tokens[prev]
    full = w.prompt_tokens[later] < 8000
    # untruncated: growth ≥ previous output (tool result ≥ 0); never shrinks
    assert np.all(grow[full] >= w.output_tokens[prev][full])
    assert np.all(grow >= 0)
    assert w.prompt_tokens.max() == 8000
    tool = grow[full] - w.output_tokens[prev][full]
    assert abs(tool.mean() - 300.0) < 15.0


def test_estimate_error_zero_means_exact_estimates_and_positive_error_is_median_unbiased():
    w0 = build_workload(scenario(token_estimate_error=0.0), catalogue=CAT)
    np.testing.assert_array_equal(w0.est_output_tokens, w0.output_tokens)
    w1 = build_workload(scenario(token_estimate_error=0.5), catalogue=CAT)
    ratio = w1.est_output_tokens / w1.output_tokens
    big = w1.output_tokens > 50  # rounding does not dominate
    assert abs(np.median(np.log(ratio[big]))) < 0.02
    assert abs(np.std(np.log(ratio[big])) - 0.5) < 0.03


def test_min_model_rank_follows_tier_min_model():
    tiers = {"HIGH": {"deadline_s": 1, "share": 0.4, "min_model": "llama-3.1-70b"},
             "MEDIUM": {"deadline_s": 5, "share": 0.4}, "LOW": {"deadline_s": 30, "share": 0.2}}
    w = build_workload(scenario(tiers=tiers), catalogue=CAT)
    big, small = CAT.model_rank("llama-3.1-70b"), CAT.model_rank("llama-3.1-8b")
    assert np.all(w.min_model_rank[w.tier == 0] == big)
    assert np.all(w.min_model_rank[w.tier > 0] == small)


def test_token_pairs_come_from_the_source_rows():
    src = TokenSource(np.array([100, 2000]), np.array([7, 50]), "two-rows")
    w = build_workload(scenario(session={"tool_result_tokens_mean": 0.0}), catalogue=CAT, tokens=src)
    first = w.call_offset[:-1]
    assert set(zip(w.prompt_tokens[first].tolist(), w.output_tokens[first].tolist())) <= {(100, 7), (2000, 50)}
    assert set(np.unique(w.output_tokens).tolist()) <= {7, 50}


def test_window_shape_is_normalised_and_wraps():
    starts = np.array([0.0, 600.0, 1200.0])
    rates = np.array([1.0, 3.0, 2.0])
    sh = _window_shape(starts, rates, offset_s=300.0, duration_s=1800.0, name="t", src="t")
    # run covers 300..1800 of the series (w 0: 300 s, w 1: 600 s, w 2: 600 s) then wraps 0..300 (w 0)
    np.testing.assert_allclose(sh.edges_s, [0, 300, 900, 1500, 1800])
    raw = np.array([1.0, 3.0, 2.0, 1.0])
    np.testing.assert_allclose(sh.shape, raw * 1800 / (300 + 1800 + 1200 + 300))
    assert abs((sh.shape * np.diff(sh.edges_s)).sum() / 1800 - 1.0) < 1e-12


@settings(max_examples=25)
@given(seed=st.integers(0, 2**31), calls_mean=st.floats(1.0, 30.0), rate=st.floats(0.05, 3.0))
def test_workload_invariants_hold_for_any_seed(seed, calls_mean, rate):
    s = scenario(sessions_per_s=rate, session={"calls_mean": calls_mean, "max_context_tokens": 4096})
    w = build_workload(s, seed=seed, catalogue=CAT)
    assert w.call_offset[0] == 0 and w.call_offset[-1] == w.n_calls
    assert np.all(np.diff(w.call_offset) >= 1)
    assert np.all((w.prompt_tokens >= 1) & (w.prompt_tokens <= 4096))
    assert np.all(w.output_tokens >= 1) and np.all(w.est_output_tokens >= 1)
    assert np.all((w.tier >= 0) & (w.tier <= 2))


@pytest.mark.skipif(not (data_pack_dir() / "rates").is_dir(), reason="bundled data pack absent")
def test_real_trace_and_servegen_shape_build():
    s = Scenario.model_validate({"duration_s": 3600, "workload": {"trace": "azure_code", "rate_shape": "servegen", "sessions_per_s": 0.5}})
    w = build_workload(s, catalogue=CAT)
    assert w.source == "azure_code"
    assert abs((w.shape.shape * np.diff(w.shape.edges_s)).sum() / 3600 - 1) < 1e-9
    assert w.n_sessions > 0 and w.prompt_tokens.min() >= 1
