"""Trace loaders on the bundled real files and on hand-made broken files."""

from pathlib import Path

import numpy as np
import pytest

from cedar_opt.data.traces import load_trace
from cedar_opt.errors import CedarInputError
from cedar_opt.paths import shared_data_dir

FIX = Path(__file__).parent / "fixtures" / "data"


@pytest.mark.parametrize("kind,rows", [("azure_code", 8819), ("azure_conv", 19366), ("mooncake", 3993)])
def test_bundled_traces_real_rows(kind, rows):
    d = load_trace(kind)
    assert len(d) == rows
    assert d["arrival_s"].iloc[0] == 0.0
    assert (np.diff(d["arrival_s"]) >= 0).all()
    assert d["prompt_tokens"].dtype == np.int64 and (d["prompt_tokens"] >= 0).all()
    assert (d["output_tokens"] >= 1).all()
    assert d.attrs["repairs"] == {"dropped_rows": 0, "sorted_rows": 0}


def test_azure_first_rows_exact():
    d = load_trace("azure_code")
    # file: 18:17:03.9799600,4808,10 then 18:17:04.0319600,3180,8
    assert d.loc[0, ["prompt_tokens", "output_tokens"]].tolist() == [4808, 10]
    assert d.loc[1, ["prompt_tokens", "output_tokens"]].tolist() == [3180, 8]
    assert d.loc[1, "arrival_s"] == pytest.approx(0.052, abs=1e-9)
    assert d.attrs["start"].startswith("2023-11-16T18:17:03.97996")


def test_mooncake_prefix_hashes_and_ms():
    d = load_trace("mooncake")
    assert d.loc[0, "prefix_hashes"][:3] == [0, 1, 2]
    assert len(d.loc[0, "prefix_hashes"]) == 79  # input 40160 tokens → ceil(40160/512) = 79 blocks
    assert d["arrival_s"].iloc[-1] == pytest.approx(1022.025)


def test_bundled_equals_shared_raw():
    shared = shared_data_dir()
    if shared is None:
        pytest.skip("no ../shared/data")
    a = load_trace("azure_conv")
    b = load_trace("azure_conv", shared / "llm_traces" / "AzureLLMInferenceTrace_conv_2023.csv")
    assert a.equals(b)


@pytest.mark.parametrize(
    "kind,name,row,text",
    [
        ("azure_code", "azure_nonmonotone.csv", 3, "backwards"),
        ("azure_code", "azure_nan_tokens.csv", 2, "prompt_tokens missing"),
        ("azure_code", "azure_bad_time.csv", 2, "arrival time missing"),
        ("azure_code", "azure_zero_output.csv", 1, "output_tokens must be ≥ 1"),
        ("mooncake", "mooncake_nonmonotone.jsonl", 3, "backwards"),
        ("mooncake", "mooncake_bad_json.jsonl", 2, "not valid JSON"),
        ("mooncake", "mooncake_negative_time.jsonl", 1, "negative arrival"),
        ("generic_csv", "generic_bad_tier.csv", 2, "tier must be"),
        ("generic_csv", "generic_negative_time.csv", 2, "negative arrival"),
        ("generic_csv", "generic_nan_time.csv", 2, "arrival time missing"),
    ],
)
def test_broken_files_name_file_and_row(kind, name, row, text):
    with pytest.raises(CedarInputError) as e:
        load_trace(kind, FIX / name)
    assert e.value.source.endswith(name)
    assert e.value.where == f"row {row}"
    assert text in e.value.message


def test_unknown_column_and_kind_and_missing_file():
    with pytest.raises(CedarInputError, match="unknown column"):
        load_trace("generic_csv", FIX / "generic_unknown_column.csv")
    with pytest.raises(CedarInputError, match="unknown trace kind"):
        load_trace("burstgpt")
    with pytest.raises(CedarInputError, match="not found"):
        load_trace("azure_code", FIX / "nope.csv")
    with pytest.raises(CedarInputError, match="no bundled copy"):
        load_trace("generic_csv")


def test_generic_csv_all_columns():
    d = load_trace("generic_csv", FIX / "generic_ok.csv")
    assert d["arrival_s"].tolist() == [0.0, 2.5, 3.0]
    assert d["tier"].tolist() == ["HIGH", "LOW", "MEDIUM"]
    assert d["session_id"].tolist() == ["s1", "s1", "s2"]
    assert d["prefix_hashes"].tolist() == [[1, 2, 3], [1, 2], []]


def test_counted_repairs():
    d = load_trace("azure_code", FIX / "azure_nonmonotone.csv", sort=True)
    assert d["prompt_tokens"].tolist() == [300, 100, 200]
    assert d["arrival_s"].tolist() == [0.0, 1.0, 2.5]
    assert d.attrs["repairs"]["sorted_rows"] == 1
    d = load_trace("azure_code", FIX / "azure_nan_tokens.csv", drop_bad_rows=True)
    assert d["prompt_tokens"].tolist() == [100, 300] and d.attrs["repairs"]["dropped_rows"] == 1


def test_generic_roundtrip_property(tmp_path):
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.tuples(st.floats(0, 1e6), st.integers(0, 10**6), st.integers(1, 10**5)), min_size=1, max_size=30))
    def run(rows):
        rows = sorted(rows)
        p = tmp_path / "t.csv"
        p.write_text("arrival_s,prompt_tokens,output_tokens\n" + "".join(f"{a!r},{b},{c}\n" for a, b, c in rows))
        d = load_trace("generic_csv", p)
        assert d["prompt_tokens"].tolist() == [r[1] for r in rows]
        assert d["output_tokens"].tolist() == [r[2] for r in rows]
        np.testing.assert_allclose(d["arrival_s"], np.array([r[0] for r in rows]) - rows[0][0])

    run()
