"""One-screen summary of a validated scenario (``cedar validate``)."""

from __future__ import annotations

from rich.table import Table

from cedar_opt.config.checks import run_checks
from cedar_opt.config.loader import scenario_hash
from cedar_opt.config.schema import TIER_NAMES, Scenario
from cedar_opt.fleet.pools import build_pools


def scenario_summary(s: Scenario) -> list:
    cat = run_checks(s)
    pools, static = build_pools(s, cat)
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("scenario", f"{s.name} (hash {scenario_hash(s)})")
    head.add_row("span", f"{s.duration_s:g} s + {s.drain_s:g} s drain, control step {s.step_s:g} s, seed {s.seed}")
    head.add_row("workload", f"{s.workload.trace} tokens, {s.workload.rate_shape} rate shape, {s.workload.sessions_per_s:g} sessions/s, {s.workload.session.calls_mean:g} calls/session")
    head.add_row("fleet", f"{len(pools)} pools over {', '.join(s.fleet.regions)} × {', '.join(s.fleet.gpus)} × {', '.join(s.fleet.purchase)} × {', '.join(s.fleet.models)}")
    w = s.controller.weights
    head.add_row("weights", f"latency {w.latency:g}, cost {w.cost:g}, carbon {w.carbon:g}, slo {w.slo:g}, stability {w.stability:g}")
    head.add_row("horizon", " + ".join(f"{b.count}×{b.length_s:g} s" for b in s.controller.horizon) + f" = {s.controller.horizon_s:g} s; solver {s.controller.solver.method}, gap {s.controller.solver.mip_rel_gap:g}, limit {s.controller.solver.time_limit_s:g} s")
    tiers = Table("tier", "deadline s", "share", "min model", "headroom", box=None, title="tiers", title_justify="left")
    for t in TIER_NAMES:
        ts = s.workload.tiers[t]
        tiers.add_row(t, f"{ts.deadline_s:g}", f"{ts.share:g}", ts.min_model or "(smallest)", f"{ts.headroom:g}")
    out: list = [head, tiers]
    from cedar_opt.data.carbon import load_signals

    sig = load_signals(s)
    data = Table("region", "mean marginal g/kWh", "mean average g/kWh", "signal", box=None, title=f"carbon signals from {sig.start.isoformat()} ({sig.span_s / 3600:.1f} h at {sig.resolution_s:g} s)", title_justify="left")
    for _, r in sig.summary().iterrows():
        src = str(r["source"])
        kind = src.split("marginal source ")[-1].strip("'") if "marginal source" in src else src[:40]
        data.add_row(r["region"], f"{r['mean_marginal_g_per_kwh']:.0f}", f"{r['mean_average_g_per_kwh']:.0f}", f"marginal: {kind}" + (" (year-wrapped)" if "wrap" in src else ""))
    out.append(data)
    return out
