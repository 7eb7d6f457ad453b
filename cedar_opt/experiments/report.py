"""The comparison report: the table, relative changes vs the baselines, the paper's targets."""

from __future__ import annotations

import math

import pandas as pd
from rich.table import Table

from cedar_opt.config.schema import Scenario
from cedar_opt.metrics import relative_change

TABLE_COLUMNS = [
    ("requests", "requests", "{:.0f}"),
    ("ttft_p50_s", "TTFT p50 s", "{:.3f}"),
    ("ttft_p95_s", "TTFT p95 s", "{:.3f}"),
    ("slo_violation_pct", "SLO viol %", "{:.2f}"),
    ("cost_usd", "cost $", "{:.2f}"),
    ("carbon_marginal_kg", "CO2 marg kg", "{:.2f}"),
    ("carbon_average_kg", "CO2 avg kg", "{:.2f}"),
    ("energy_kwh", "energy kWh", "{:.1f}"),
    ("oscillation", "oscillation", "{:.3f}"),
    ("kv_recompute_pct", "KV recomp %", "{:.1f}"),
    ("solve_p95_ms", "solve p95 ms", "{:.1f}"),
    ("fallback_steps", "fallbacks", "{:.0f}"),
]
REL_COLUMNS = ["cost_usd", "carbon_marginal_kg", "carbon_average_kg", "energy_kwh", "ttft_p95_s", "slo_violation_pct", "oscillation"]


def _fmt(v, f: str) -> str:
    try:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "–"
        return f.format(v)
    except (TypeError, ValueError):
        return str(v)


def summary_table(summary: pd.DataFrame) -> Table:
    t = Table(title="cedar results", title_justify="left")
    t.add_column("policy")
    for _, label, _ in TABLE_COLUMNS:
        t.add_column(label, justify="right")
    for _, row in summary.iterrows():
        t.add_row(str(row["policy"]), *[_fmt(row[c], f) for c, _, f in TABLE_COLUMNS])
    return t


def _md_table(df: pd.DataFrame, fmt: dict[str, str] | None = None) -> str:
    fmt = fmt or {}
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(_fmt(r[c], fmt.get(c, "{}")) if not isinstance(r[c], str) else r[c] for c in cols) + " |")
    return "\n".join(lines)


def targets(summary: pd.DataFrame) -> list[tuple[str, str, str]]:
    """The paper's targets (issue 6) checked against this summary: (target, measured, verdict)."""
    s = summary.set_index("policy")
    out: list[tuple[str, str, str]] = []

    def rel(a: str, b: str, col: str) -> float:
        return (float(s.loc[a, col]) - float(s.loc[b, col])) / abs(float(s.loc[b, col])) * 100.0 if float(s.loc[b, col]) else float("nan")

    if "cedar" in s.index and "performance_only" in s.index:
        c = rel("cedar", "performance_only", "cost_usd")
        out.append(("cost ≥ 26 % lower than performance_only", f"{c:+.1f} %", "met" if c <= -26 else "not met"))
        c = rel("cedar", "performance_only", "carbon_marginal_kg")
        out.append(("marginal carbon ≥ 27 % lower than performance_only", f"{c:+.1f} %", "met" if c <= -27 else "not met"))
        c = rel("cedar", "performance_only", "ttft_p95_s")
        out.append(("TTFT p95 at most 16 % higher than performance_only", f"{c:+.1f} %", "met" if c <= 16 else "not met"))
        v = float(s.loc["cedar", "slo_violation_pct"])
        out.append(("SLO violations ≤ 4.3 %", f"{v:.2f} %", "met" if v <= 4.3 else "not met"))
    if "cedar" in s.index and "round_robin" in s.index:
        a, b = float(s.loc["cedar", "slo_violation_pct"]), float(s.loc["round_robin", "slo_violation_pct"])
        out.append(("SLO violations at most a fifth of round_robin's", f"{a:.2f} % vs {b:.2f} %", "met" if a <= b / 5 else "not met"))
        c = rel("cedar", "round_robin", "oscillation")
        out.append(("oscillation ≥ 63 % lower than round_robin", f"{c:+.1f} %", "met" if c <= -63 else "not met"))
    for abl, col, what in (
        ("cedar_no_carbon", "carbon_marginal_kg", "marginal carbon"),
        ("cedar_no_slack", "slo_violation_pct", "SLO violations"),
        ("cedar_no_rightsizing", "cost_usd", "cost"),
    ):
        if "cedar" in s.index and abl in s.index:
            a, b = float(s.loc["cedar", col]), float(s.loc[abl, col])
            out.append((f"{abl} worse than cedar on {what}", f"{b:.3g} vs cedar {a:.3g}", "met" if b > a else "not met"))
    return out


def render_report(scenario: Scenario, summary: pd.DataFrame, tiers: pd.DataFrame, prov: dict) -> str:
    parts = [
        f"# cedar compare — scenario `{scenario.name}`",
        "",
        scenario.description.strip(),
        "",
        f"Simulated {scenario.duration_s:g} s (+{scenario.drain_s:g} s drain), control step {scenario.step_s:g} s, seed {scenario.seed}, "
        f"scenario hash `{prov['scenario_hash']}`, git `{prov['git_revision']}`, wall time {prov.get('wall_s', float('nan'))} s.",
        "",
        "## Summary",
        "",
        _md_table(summary[["policy"] + [c for c, _, _ in TABLE_COLUMNS]], {c: f for c, _, f in TABLE_COLUMNS}),
        "",
    ]
    for ref in ("performance_only", "round_robin"):
        rel = relative_change(summary, ref, REL_COLUMNS)
        if rel.empty:
            continue
        parts += [f"## Relative change vs `{ref}` (%)", "", _md_table(rel, {c: "{:+.1f}" for c in REL_COLUMNS}), ""]
    tg = targets(summary)
    if tg:
        parts += ["## The paper's targets", "", "| target | measured | verdict |", "|---|---|---|"]
        parts += [f"| {a} | {b} | {c} |" for a, b, c in tg]
        parts.append("")
    parts += ["## By tier", "", _md_table(tiers, {"ttft_p50_s": "{:.3f}", "ttft_p95_s": "{:.3f}", "ttft_p99_s": "{:.3f}", "slo_violation_pct": "{:.2f}", "requests": "{:.0f}"}), ""]
    parts += ["Metric definitions: DESIGN.md §7 and `cedar_opt/metrics/core.py`. Provenance: `provenance.json`.", ""]
    return "\n".join(parts)
