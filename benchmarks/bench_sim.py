"""Simulator throughput: simulated requests per second of wall time with a trivial policy.

    python benchmarks/bench_sim.py                 # paper.yaml and day.yaml, synthetic tokens
    python benchmarks/bench_sim.py --profile       # plus a cProfile of the paper run
    python benchmarks/bench_sim.py --real          # the scenarios' own trace and rate shape

Prints figures; asserts nothing. The trivial policy keeps a fixed number of replicas in every
on-demand pool and routes each (tier, origin) uniformly over the pools of its own region.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time

import numpy as np

from cedar_opt import load_scenario
from cedar_opt.data.signalset import SignalSet
from cedar_opt.fleet.catalogue import load_catalogue
from cedar_opt.interface import Action
from cedar_opt.sim import Simulator
from cedar_opt.workload import build_workload


class FixedPolicy:
    """Fixed on-demand replicas per pool; uniform routing over the origin's own-region pools."""

    name = "fixed"

    def __init__(self, replicas_per_pool: int = 4) -> None:
        self.n = replicas_per_pool

    def reset(self, ctx) -> None:
        P = len(ctx.pools)
        self.rep = np.array([self.n if p.purchase == "on_demand" else 0 for p in ctx.pools])
        rt = np.zeros((len(ctx.tiers), len(ctx.regions), P))
        for o, reg in enumerate(ctx.regions):
            m = np.array([p.region == reg and p.purchase == "on_demand" for p in ctx.pools], float)
            if m.sum() == 0:
                m = np.array([p.purchase == "on_demand" for p in ctx.pools], float)
            rt[:, o, :] = m / m.sum()
        self.rt = rt

    def act(self, obs) -> Action:
        return Action(replicas=self.rep, routing=self.rt)


def run_one(path: str, real: bool, profile: bool, replicas: int) -> None:
    over = [] if real else ["workload.trace=synthetic", "workload.rate_shape=constant"]
    sc = load_scenario(path, over)
    cat = load_catalogue(sc.fleet.catalogue)
    t0 = time.perf_counter()
    wl = build_workload(sc, catalogue=cat)
    t_wl = time.perf_counter() - t0
    sig = SignalSet.constant(tuple(sc.fleet.regions), [400.0] * len(sc.fleet.regions), [300.0] * len(sc.fleet.regions),
                             sc.duration_s + sc.drain_s + 600)
    sim = Simulator(sc, cat, sig, wl)
    prof = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    res = sim.run(FixedPolicy(replicas))
    if prof:
        prof.disable()
    wall = time.perf_counter() - t0
    c = res.counts()
    rq = res.requests
    done = rq[rq.status == "completed"]
    rel = (done.batch_admit - done.batch_mean).abs() / done.batch_mean
    # decode-time error of freezing the batch at admission: slope·|b_admit − b_mean| / itl(b_mean)
    pi = done.pool_index.to_numpy()
    slope = np.array([cat.profile(p.model, p.gpu).itl_s_per_seq for p in sim.context.pools])[pi]
    itl1 = sim.context.static.itl_s[pi]
    dec_err = slope * (done.batch_admit - done.batch_mean).abs() / (itl1 + slope * (done.batch_mean - 1).clip(lower=0))
    print(f"{sc.name}: {c['requests']:,} requests ({c['completed']:,} completed, {c['dropped']:,} dropped, "
          f"{c['in_flight']:,} in flight) over {sc.duration_s:.0f}+{sc.drain_s:.0f} s simulated")
    print(f"  workload build {t_wl:.2f} s; simulate {wall:.2f} s wall (engine {res.wall_s:.2f} s) -> "
          f"{c['requests'] / wall:,.0f} requests/s of wall time")
    print(f"  TTFT p50/p95 {done.ttft_s.median():.3f}/{done.ttft_s.quantile(.95):.3f} s; "
          f"kv recompute {100 * rq.recomputed_tokens.sum() / max(rq.prefill_tokens.sum(), 1):.1f} %; "
          f"frozen-batch approximation: |b_admit - b_mean|/b_mean median {rel.median():.3f}, p95 {rel.quantile(.95):.3f}; "
          f"decode-time error median {dec_err.median():.4f}, p95 {dec_err.quantile(.95):.4f}, p99 {dec_err.quantile(.99):.4f}")
    if prof:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(18)
        print(s.getvalue())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", default=["scenarios/paper.yaml", "scenarios/day.yaml"])
    ap.add_argument("--real", action="store_true", help="use the scenario's own trace and rate shape")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--replicas", type=int, default=4, help="replicas per on-demand pool")
    a = ap.parse_args(argv)
    for i, path in enumerate(a.scenarios):
        run_one(path, a.real, a.profile and i == 0, a.replicas)


if __name__ == "__main__":
    sys.exit(main())
