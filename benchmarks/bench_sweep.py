"""Sweep throughput: points per minute of the smoke scenario on 1 and 2 workers, scaling efficiency.

    python benchmarks/bench_sweep.py [--policies cedar,performance_only] [--seeds 4] [--executors serial,local:1,local:2,dask:2]

Each point is a real replay (``run_policy``) of ``scenarios/smoke.yaml``. Throughput counts the
whole sweep wall time (planning excluded; worker start-up, result files and NetCDF included), so it
is what an analyst sees. Efficiency of N workers = rate(N) / (N × rate(1)) for the same executor
kind. Also prints how long validating a large grid takes (every combination is loaded up front).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from cedar_opt.experiments import sweep as sw
from cedar_opt.paths import scenarios_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policies", default="cedar,performance_only")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--grid", default="controller.weights.carbon=0,1")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="extra --set overrides of the smoke scenario")
    ap.add_argument("--executors", default="serial,local:1,local:2,dask:2")
    args = ap.parse_args()

    spec = sw.SweepSpec(
        scenario=scenarios_dir() / "smoke.yaml",
        overrides=tuple(args.overrides),
        axes=sw.axes_from_options([args.grid]),
        policies=tuple(args.policies.split(",")),
        seeds=args.seeds,
    )
    t = time.perf_counter()
    plan = sw.plan_sweep(spec)
    plan_s = time.perf_counter() - t
    n = len(plan.points)
    print(f"smoke sweep: {n} points ({', '.join(f'{d}={k}' for d, k in zip(plan.dims, plan.shape))}); planned in {plan_s * 1000:.0f} ms; {os.cpu_count()} cores")
    rates: dict[tuple[str, int], float] = {}
    print(f"{'executor':<10} {'workers':>7} {'wall s':>8} {'points/min':>11} {'mean point s':>13} {'efficiency':>10}")
    for item in args.executors.split(","):
        kind, _, w = item.partition(":")
        workers = int(w) if w else 1
        with tempfile.TemporaryDirectory() as d:
            res = sw.run_sweep(plan, Path(d), executor=kind, workers=workers, rerun=True)
        if res.failed:
            print(f"{kind:<10} {workers:>7}  {res.failed} points failed: {res.dataset['error'].values[res.dataset['status'].values == 'failed'][0]}")
            continue
        rate = 60.0 * n / res.wall_s
        rates[(kind, workers)] = rate
        mean_pt = float(res.dataset["wall_s"].mean())
        base = rates.get((kind, 1)) or rates.get(("serial", 1)) if kind != "serial" else None
        eff = f"{rate / (workers * base):.0%}" if base and workers > 1 else ""
        print(f"{kind:<10} {workers:>7} {res.wall_s:>8.1f} {rate:>11.1f} {mean_pt:>13.2f} {eff:>10}")

    big = sw.SweepSpec(
        scenario=scenarios_dir() / "smoke.yaml",
        axes=sw.axes_from_options(["controller.weights.carbon=0,0.5,1,2,4", "controller.weights.cost=0.5,1,2,4", "workload.sessions_per_s=0.1,0.2,0.3,0.4,0.5"]),
        policies=("cedar", "performance_only", "round_robin", "least_connections"),
        seeds=5,
    )
    t = time.perf_counter()
    bp = sw.plan_sweep(big)
    print(f"validating a 100-combination grid ({len(bp.points)} points): {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
