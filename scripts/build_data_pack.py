"""Rebuild the bundled data pack ``data/`` from the raw public files, reproducibly.

    python scripts/build_data_pack.py --shared ../shared/data [--out data]

Copies (gzipped, byte content unchanged) the redistributable traces and rate shape, derives the
carbon signals for the default grids (PJM, CISO, BPAT) from EIA-930 2022, copies the Vessim
WattTime CAISO_NORTH 5-minute MOER, writes ``carbon/pack.yaml`` and ``PROVENANCE.yaml`` (source
repository, commit, licence, processing and sha256 of every output file).

Not bundled, by licence: the PJM marginal file (source repo has no licence), the CASLB
Electricity Maps + WattTime PACW table (no licence; WattTime terms unchecked), DRAF MEF/XEF
(CC BY-NC). Load them from their own path (``signals.marginal_source: {region: "pjm:/path"}``).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cedar_opt.data.carbon import read_eia930  # noqa: E402
from cedar_opt.data.marginal import average_intensity, emission_factors, estimate_marginal  # noqa: E402

GRIDS = ("PJM", "CISO", "BPAT")
EIA = "carbon/eia930_genmix_avgci_hourly_2022_PJM_BPAT_CISO_NYIS_ERCO.csv.gz"
WT_CAISO = "carbon/watttime_moer_CAISO_NORTH_5min_2023-06-08_2023-07-08.csv"

SOURCES = {
    "traces/AzureLLMInferenceTrace_code_2023.csv.gz": dict(
        raw="llm_traces/AzureLLMInferenceTrace_code_2023.csv",
        source="Azure/AzurePublicDataset data/AzureLLMInferenceTrace_code.csv",
        commit="b469a113cedca53ddc3bdea71a143dc4b7d8700c",
        licence="CC-BY-4.0 (cite Patel et al., Splitwise, ISCA 2024)",
        processing="byte copy, gzip -9 (no timestamp in header)",
    ),
    "traces/AzureLLMInferenceTrace_conv_2023.csv.gz": dict(
        raw="llm_traces/AzureLLMInferenceTrace_conv_2023.csv",
        source="Azure/AzurePublicDataset data/AzureLLMInferenceTrace_conv.csv",
        commit="b469a113cedca53ddc3bdea71a143dc4b7d8700c",
        licence="CC-BY-4.0 (cite Patel et al., Splitwise, ISCA 2024)",
        processing="byte copy, gzip -9",
    ),
    "traces/mooncake_fast25_synthetic_trace.jsonl.gz": dict(
        raw="llm_traces/mooncake_fast25_synthetic_trace.jsonl.gz",
        source="kvcache-ai/Mooncake FAST25-release/traces/synthetic_trace.jsonl",
        commit="3b5a594133958449a1feaf1c9e0fc1b553e34a28",
        licence="Apache-2.0 (cite Qin et al., Mooncake, FAST 2025)",
        processing="byte copy of the gzipped file",
    ),
    "rates/servegen_model_total_rate_10min.csv.gz": dict(
        raw="llm_traces/servegen_model_total_rate_10min.csv",
        source="alibaba/ServeGen data/<category>/<model>/chunk-<client>-trace.csv (322 files), summed over clients per model and 10-min window",
        commit="f891d1189eb32b3868dfc443800c4150548c282a",
        licence="Apache-2.0 (cite Xiang et al., ServeGen, arXiv:2505.09999)",
        processing="byte copy of the per-model total (see ../shared/data/llm_traces/README.md), gzip -9",
    ),
    "carbon/watttime_moer_CAISO_NORTH_5min_2023-06-08_2023-07-08.csv.gz": dict(
        raw=WT_CAISO,
        source="dos-group/vessim datasets/watttime_example.csv; upstream data: WattTime historical MOER, CAISO_NORTH",
        commit="408ed48db0cb21221970627dd1244e6b5edd86d4",
        licence="MIT (Vessim repository); data originates from WattTime",
        processing="byte copy, gzip -9; values already g CO2/kWh",
    ),
}


def _gzip_bytes(raw: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0, filename="") as f:
        f.write(raw)
    return buf.getvalue()


def _write(out: Path, rel: str, content: bytes) -> None:
    p = out / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content)


def build_signals(shared: Path) -> tuple[pd.DataFrame, dict]:
    """Hourly 2022 table: per grid, direct average, estimated marginal (both methods)."""
    frames, repairs = [], {}
    for ba in GRIDS:
        raw = read_eia930(shared / EIA, ba, nan="gap")
        full_index = pd.date_range("2022-01-01", "2022-12-31 23:00", freq="1h", tz="UTC")
        fm = raw.reindex(full_index)
        missing = fm.isna().any(axis=1).to_numpy()
        # fill missing hours with the mean of the same hour the day before and after (keeps the
        # daily cycle across PJM's 23-hour hole on 2022-03-13), then linearly for what remains
        same_hour = pd.concat([fm.shift(24), fm.shift(-24)]).groupby(level=0).mean()
        fm = fm.fillna(same_hour).interpolate(limit_direction="both")
        fm.attrs = {**raw.attrs}
        factors = emission_factors(ba)
        avg = average_intensity(fm, factors)
        mf = estimate_marginal(fm, ba, method="fossil_mix")
        mr = estimate_marginal(raw, ba, fm.index, method="regression")
        lca = fm["avg_CI"]
        repairs[ba] = {"hours_missing_in_raw": int(missing.sum()), "filled_from_same_hour_adjacent_days_or_linear": int(missing.sum())}
        frames.append(
            pd.DataFrame(
                {
                    "time_utc": avg.index.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "grid": ba,
                    "average_g_per_kwh": avg.to_numpy().round(2),
                    "marginal_estimated_g_per_kwh": mf.to_numpy().round(2),
                    "marginal_regression_g_per_kwh": mr.to_numpy().round(2),
                    "average_lifecycle_ipcc_g_per_kwh": lca.to_numpy().round(2),
                }
            )
        )
    return pd.concat(frames, ignore_index=True), repairs


def manifest() -> dict:
    table = "signals_hourly_2022_PJM_CISO_BPAT.csv.gz"
    grids = {}
    for ba in GRIDS:
        sources = {
            "estimated": {"reader": "pack", "file": table, "column": "marginal_estimated_g_per_kwh"},
            "estimated_regression": {"reader": "pack", "file": table, "column": "marginal_regression_g_per_kwh"},
        }
        if ba == "CISO":
            sources["watttime"] = {"reader": "watttime", "file": "watttime_moer_CAISO_NORTH_5min_2023-06-08_2023-07-08.csv.gz", "unit": "g/kWh"}
        grids[ba] = {
            "average": {"reader": "pack", "file": table, "column": "average_g_per_kwh"},
            "average_lifecycle": {"reader": "pack", "file": table, "column": "average_lifecycle_ipcc_g_per_kwh"},
            "marginal": {"default": "estimated", "sources": sources},
        }
    return {
        "description": "Default carbon pack: hourly 2022 EIA-930-derived signals for PJM, CISO, BPAT; real WattTime CAISO_NORTH 5-min MOER (2023-06-08..07-08) as an alternative marginal for CISO. Values g CO2/kWh; times are UTC interval starts.",
        "grids": grids,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data", help="raw public data folder")
    ap.add_argument("--out", type=Path, default=ROOT / "data", help="pack folder to (re)write")
    a = ap.parse_args(argv)
    shared, out = a.shared.resolve(), a.out.resolve()
    if not shared.is_dir():
        print(f"raw data folder not found: {shared}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    prov: dict = {"built_by": "scripts/build_data_pack.py", "files": {}}
    for rel, meta in SOURCES.items():
        raw = (shared / meta["raw"]).read_bytes()
        content = raw if meta["raw"].endswith(".gz") else _gzip_bytes(raw)
        _write(out, rel, content)
        prov["files"][rel] = {k: v for k, v in meta.items() if k != "raw"} | {"raw_file": meta["raw"]}
    table, repairs = build_signals(shared)
    csv = table.to_csv(index=False, float_format="%.2f").encode()
    rel = "carbon/signals_hourly_2022_PJM_CISO_BPAT.csv.gz"
    _write(out, rel, _gzip_bytes(csv))
    prov["files"][rel] = {
        "source": "HewlettPackard/dc-rl data/CarbonIntensity/<BA>_NG_&_avgCI.csv (EIA-930 hourly net generation by fuel, from the EIA bulk file EBA.zip)",
        "commit": "a92b4755aca560e34a98d14028dda629eb968482",
        "licence": "MIT (dc-rl repository); EIA data is US-government public data",
        "raw_file": EIA,
        "processing": (
            "per BA (PJM, CISO, BPAT), 2022: hours with missing values (and absent hours) filled from the mean of the same hour the day before and after, else linearly (counts below); "
            "average_g_per_kwh = production-based direct intensity Σ EF_f·G_f / Σ G_f with eGRID 2020 direct factors (cedar_opt.data.marginal.DIRECT_EF_G_PER_KWH); "
            "marginal_estimated_g_per_kwh = cedar_opt.data.marginal.estimate_marginal(method='fossil_mix') (hour's output-weighted fossil factor); "
            "marginal_regression_g_per_kwh = the season × local-hour ΔE/ΔG regression table (method='regression'); "
            "average_lifecycle_ipcc_g_per_kwh = dc-rl's avg_CI (lifecycle; IPCC AR5 median factors wind 11, solar 41, hydro 24, oil 650, gas 490, coal 820, nuclear 12, other 230, recovered exactly by least squares)"
        ),
        "repairs": repairs,
    }
    (out / "carbon").mkdir(exist_ok=True)
    (out / "carbon" / "pack.yaml").write_text(yaml.safe_dump(manifest(), sort_keys=False, width=120), encoding="utf-8")
    for rel in sorted(prov["files"]) + ["carbon/pack.yaml"]:
        entry = prov["files"].setdefault(rel, {"source": "written by scripts/build_data_pack.py", "licence": "Apache-2.0 (this repository)"})
        entry["sha256"] = hashlib.sha256((out / rel).read_bytes()).hexdigest()
        entry["bytes"] = (out / rel).stat().st_size
    prov["not_bundled"] = {
        "carbon/pjm_rto_marginal_emissions_hourly_2023H1.csv": "pappanna/bitcoin_co2 has no licence; read it from its path: marginal_source 'pjm:<path>'",
        "carbon/em_watttime_hourly_2022_caslb_us-west-2.csv.gz": "umassos/caslb-experiments has no licence and WattTime's terms are unchecked; read it from its path: 'watttime:<path>'",
        "carbon/draf_mef_xef_hourly_2017-2020_*.csv.gz": "CC BY-NC 4.0 (non-commercial)",
        "carbon/electricitymaps_*": "not needed by the default pack (no BPAT zone); ODbL, readable with read_electricitymaps_hourly",
    }
    header = "# Provenance of every file in data/ (written by scripts/build_data_pack.py; do not edit by hand)\n"
    (out / "PROVENANCE.yaml").write_text(header + yaml.safe_dump(prov, sort_keys=False, width=120, allow_unicode=True), encoding="utf-8")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
