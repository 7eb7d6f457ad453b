"""Check the marginal estimator against the real marginal series and print the figures.

    python scripts/validate_marginal_estimator.py [--shared ../shared/data] [--markdown]

Fits both estimator methods on EIA-930 2022 fuel mix and compares their season × local-hour
tables with: PJM-RTO ISO marginal CO2 2023-H1 (hourly), WattTime CAISO_NORTH MOER 2023-06/07
(5 min → hourly means), WattTime PACW MOER 2022 (hourly; estimator fitted on BPAT, the physical BA
of us-west-2 — PACW is a different BA, see docs). Two naive references are scored the same way:
the grid's average intensity used as marginal (season × hour table of the 2022 direct average),
and a constant gas-fired rate (the grid's gas factor). ``--markdown`` prints tables for
docs/marginal_estimator.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cedar_opt.data.carbon import read_eia930, read_pjm_marginal, read_watttime_moer, resample_to  # noqa: E402
from cedar_opt.data.marginal import GRID_TZ, average_intensity, compare, emission_factors, fit_marginal, groups  # noqa: E402

EIA = "carbon/eia930_genmix_avgci_hourly_2022_PJM_BPAT_CISO_NYIS_ERCO.csv.gz"


def real_series(shared: Path) -> dict[str, tuple[str, pd.Series]]:
    pjm = read_pjm_marginal(shared / "carbon/pjm_rto_marginal_emissions_hourly_2023H1.csv")
    ca = resample_to(read_watttime_moer(shared / "carbon/watttime_moer_CAISO_NORTH_5min_2023-06-08_2023-07-08.csv", unit="g/kWh"), "1h")
    pacw = read_watttime_moer(shared / "carbon/em_watttime_hourly_2022_caslb_us-west-2.csv.gz", unit="lb/MWh")
    return {
        "PJM": ("PJM-RTO ISO marginal CO2, 2023-01..06", pjm),
        "CISO": ("WattTime MOER CAISO_NORTH, 2023-06-08..07-08", ca),
        "BPAT": ("WattTime MOER PACW, 2022 (BPAT fit)", pacw),
    }


def table_predict(values: pd.Series, tz: str, times: pd.DatetimeIndex) -> pd.Series:
    """Season × local-hour mean of ``values`` (a 2022 hourly series) at ``times``."""
    g = groups(values.index, tz)
    tab = pd.Series(values.to_numpy()).groupby(g).mean().reindex(range(96)).to_numpy()
    return pd.Series(tab[groups(times, tz)], index=times)


def evaluate(shared: Path) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    rows, shapes = [], {}
    for ba, (label, real) in real_series(shared).items():
        fm = read_eia930(shared / EIA, ba, nan="gap")
        f = emission_factors(ba)
        preds = {m: fit_marginal(fm, ba, method=m).predict(real.index) for m in ("fossil_mix", "regression")}
        preds["ref: average as marginal"] = table_predict(average_intensity(fm, f), GRID_TZ[ba], real.index)
        preds["ref: constant gas rate"] = pd.Series(f["NG"], index=real.index)
        shape = pd.DataFrame({"real": real.groupby(real.index.hour).mean()})
        for name, est in preds.items():
            rows.append({"grid": ba, "real series": label, "estimate": name, **compare(est, real)})
            shape[name] = est.groupby(est.index.hour).mean()
        shapes[ba] = shape
    return pd.DataFrame(rows), shapes


def md(df: pd.DataFrame, fmt: str = "{:.2f}") -> str:
    """A pipe table (no extra dependency)."""
    cells = [[c if isinstance(c, str) else (str(c) if isinstance(c, (int, np.integer)) else fmt.format(c)) for c in row] for row in df.itertuples(index=False)]
    head = "| " + " | ".join(map(str, df.columns)) + " |\n|" + "---|" * len(df.columns)
    return head + "\n" + "\n".join("| " + " | ".join(r) + " |" for r in cells)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args(argv)
    if not a.shared.is_dir():
        print(f"raw data folder not found: {a.shared}", file=sys.stderr)
        return 2
    res, shapes = evaluate(a.shared)
    cols = ["grid", "estimate", "hours", "mean_real", "mean_est", "mae", "rmse", "bias", "corr", "shape_corr", "shape_mae"]
    if a.markdown:
        r = res[cols].copy()
        r["hours"] = r["hours"].astype(int)
        print(md(r))
        for ba, s in shapes.items():
            print(f"\n**{ba}: mean by hour of day (UTC), g/kWh**\n")
            t = s.T.reset_index().rename(columns={"index": "series"})
            t.columns = [str(c) for c in t.columns]
            print(md(t, "{:.0f}"))
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(res[cols].round(2).to_string(index=False))
            for ba, s in shapes.items():
                print(f"\n{ba}: mean by hour of day (UTC)\n{s.round(0).to_string()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
