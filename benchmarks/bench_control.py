"""Control-step latency of CEDAR: paper size and 10×, compiled arrays vs rebuilding Pyomo.

Run: ``python benchmarks/bench_control.py [--steps 100] [--big-steps 20]``. Prints, per size and
method: columns / rows / integer columns, step time (update + solve + extract, i.e. the whole
``act``: forecast, parameters, HiGHS, action, feasibility check) median / p95 / max, HiGHS's own
time, and the optimality gap of every applied action (median / max) and fallbacks.

Sizes: *paper* = 3 regions × 2 GPUs × 2 purchase × 2 models (24 pools; the bundled catalogue
plus a us-west-1 A100 offer) × 3 tiers × 12 horizon blocks (6 × 10 s, 4 × 60 s, 2 × 300 s);
*10×* = 6 regions × 2 GPUs × 2 purchase × 5 models (120 pools, synthetic figures), same tiers and
blocks: ≈ 10× the columns. Workload: Poisson arrivals around a slowly varying mean, replicas
ordered become ready after their cold start (a toy fleet, not the simulator). One thread.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from cedar_opt.config.schema import Scenario
from cedar_opt.control import CedarPolicy
from cedar_opt.control.compile import compile_model
from cedar_opt.control.model import build_model
from cedar_opt.control.solve import HighsBackend
from cedar_opt.control.synthetic import context_from_scenario, full_paper_catalogue, make_observation, synthetic_context


class ToyFleet:
    """Replica targets become ready after the pool's cold start; cuts apply at once."""

    def __init__(self, ctx, ready):
        self.ctx = ctx
        self.ready = np.asarray(ready, float)
        self.starting: list[list[float]] = [[] for _ in ctx.pools]

    def apply(self, target, t_s):
        for j in range(len(self.ctx.pools)):
            self.starting[j] = [r for r in self.starting[j] if r > t_s or not self._ready(j)]
            cur = self.ready[j] + len(self.starting[j])
            if target[j] > cur:
                self.starting[j] += [t_s + self.ctx.static.cold_start_s[j]] * int(target[j] - cur)
            elif target[j] < cur:
                cut = int(cur - target[j])
                drop = min(cut, len(self.starting[j]))
                self.starting[j] = self.starting[j][: len(self.starting[j]) - drop]
                self.ready[j] -= cut - drop

    def _ready(self, j):
        return True

    def tick(self, t_s):
        for j in range(len(self.ctx.pools)):
            done = [r for r in self.starting[j] if r <= t_s]
            self.ready[j] += len(done)
            self.starting[j] = [r for r in self.starting[j] if r > t_s]

    def observation(self, step, t_s, arrivals, prev):
        J = len(self.ctx.pools)
        width = max(1, max(len(s) for s in self.starting))
        ready_in = np.full((J, width), np.inf)
        for j, s in enumerate(self.starting):
            ready_in[j, : len(s)] = np.asarray(s) - t_s
        starting = np.array([len(s) for s in self.starting], float)
        return make_observation(self.ctx, step=step, t_s=t_s, arrivals=arrivals, ready=self.ready.copy(), starting=starting,
                                ready_in_s=ready_in, previous_action=prev)


def run_policy(ctx, steps, base_rate, seed=0):
    pol = CedarPolicy()
    t = time.perf_counter()
    pol.reset(ctx)
    reset_s = time.perf_counter() - t
    rng = np.random.default_rng(seed)
    big = np.array([1.0 if (p.purchase == "on_demand" and ctx.static.model_rank[j] == ctx.static.model_rank.max()) else 0.0
                    for j, p in enumerate(ctx.pools)])
    fleet = ToyFleet(ctx, 2 * big)
    prev = None
    rows = []
    K, O = len(ctx.tiers), len(ctx.regions)
    shape = np.array([0.4, 0.4, 0.2])[:, None] * np.ones((K, O)) / O
    for s in range(steps):
        t_s = 10.0 * (s + 1)
        fleet.tick(t_s)
        mean = base_rate * (1 + 0.3 * np.sin(2 * np.pi * t_s / 1800.0)) * shape * 10.0
        obs = fleet.observation(s, t_s, rng.poisson(mean), prev)
        a = pol.act(obs)
        fleet.apply(a.replicas, t_s)
        prev = a
        rows.append(a.info)
    return pol, reset_s, rows


def rebuild_times(pol, ctx, steps, base_rate, seed=0):
    """Rebuild the Pyomo model, compile, set up HiGHS and solve (lp_round) every step."""
    rng = np.random.default_rng(seed)
    out = []
    K, O = len(ctx.tiers), len(ctx.regions)
    shape = np.array([0.4, 0.4, 0.2])[:, None] * np.ones((K, O)) / O
    ready = np.ones(len(ctx.pools))
    for s in range(steps):
        t_s = 10.0 * (s + 1)
        obs = make_observation(ctx, step=s, t_s=t_s, arrivals=rng.poisson(base_rate * shape * 10.0), ready=ready)
        t = time.perf_counter()
        data = pol.step_data(obs)
        m = build_model(pol.static, data)
        c = compile_model(m, pol.static)
        HighsBackend(c).solve(c.evaluate(data.theta()), "lp_round", 10.0)
        out.append((time.perf_counter() - t) * 1000)
    return np.array(out)


def pyomo_persistent_times(pol, ctx, steps, base_rate, seed=0):
    """Pyomo's persistent HiGHS (appsi): update the mutable Params in place, re-solve the LP relaxation."""
    import pyomo.environ as pyo

    from cedar_opt.control.model import update_model

    rng = np.random.default_rng(seed)
    K, O = len(ctx.tiers), len(ctx.regions)
    shape = np.array([0.4, 0.4, 0.2])[:, None] * np.ones((K, O)) / O
    ready = np.ones(len(ctx.pools))
    obs = make_observation(ctx, t_s=10.0, arrivals=rng.poisson(base_rate * shape * 10.0), ready=ready)
    m = build_model(pol.static, pol.step_data(obs))
    pyo.TransformationFactory("core.relax_integer_vars").apply_to(m)
    solver = pyo.SolverFactory("appsi_highs")
    solver.config.load_solution = True
    solver.solve(m)
    out = []
    for s in range(steps):
        t_s = 10.0 * (s + 2)
        obs = make_observation(ctx, step=s, t_s=t_s, arrivals=rng.poisson(base_rate * shape * 10.0), ready=ready)
        t = time.perf_counter()
        update_model(m, pol.step_data(obs))
        solver.solve(m)
        _ = [m.n[j, 0].value for j in m.J]
        out.append((time.perf_counter() - t) * 1000)
    return np.array(out)


def stats(a):
    a = np.asarray(a, float)
    return np.median(a), np.percentile(a, 95), a.max()


def report(label, pol, reset_s, rows):
    c = pol.compiled
    ms = [r["solve_ms"] for r in rows]
    hm = [r["highs_ms"] for r in rows]
    gaps = np.array([r["gap"] for r in rows], float)
    fb = sum(r["fallback"] is not None for r in rows)
    med, p95, mx = stats(ms)
    g = gaps[np.isfinite(gaps)]
    print(f"{label:<26} {c.n_cols:>6} {c.n_rows:>6} {int(c.integer.sum()):>5} | step ms {med:7.1f} {p95:7.1f} {mx:7.1f} | "
          f"HiGHS ms {np.median(hm):7.1f} {np.percentile(hm, 95):7.1f} | gap % {100 * np.median(g):5.2f} {100 * g.max():5.2f} "
          f"| fallbacks {fb}/{len(rows)} | build+compile {reset_s:.2f} s")
    reasons = sorted({str(r["fallback"])[:160] for r in rows if r["fallback"] is not None})
    for why in reasons:
        print(f"    fallback: {why}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--big-steps", type=int, default=20)
    ap.add_argument("--rate", type=float, default=60.0, help="paper-size mean requests/s (10×: ×5)")
    args = ap.parse_args()
    paper = context_from_scenario(Scenario(), full_paper_catalogue())
    mip_sc = Scenario(controller={"solver": {"method": "mip", "time_limit_s": 5.0}})
    paper_mip = context_from_scenario(mip_sc, full_paper_catalogue())
    big = synthetic_context(n_regions=6, n_gpus=2, n_models=5)
    big_mip = synthetic_context(n_regions=6, n_gpus=2, n_models=5, scenario=mip_sc)
    print("size/method                  cols   rows  ints |   median     p95     max |  median     p95 |  median   max")
    for label, ctx, steps, rate in [("paper lp_round", paper, args.steps, args.rate), ("paper mip", paper_mip, args.steps, args.rate),
                                    ("10x lp_round", big, args.big_steps, 5 * args.rate), ("10x mip", big_mip, args.big_steps, 5 * args.rate)]:
        pol, reset_s, rows = run_policy(ctx, steps, rate)
        report(label, pol, reset_s, rows)
        if label.endswith("lp_round"):
            n = max(5, steps // 10)
            med, p95, mx = stats(rebuild_times(pol, ctx, n, rate))
            print(f"{label.split()[0] + ' rebuild Pyomo/step':<26} {'':>19} | step ms {med:7.1f} {p95:7.1f} {mx:7.1f} | ({n} steps)")
            med, p95, mx = stats(pyomo_persistent_times(pol, ctx, n, rate))
            print(f"{label.split()[0] + ' Pyomo persistent LP':<26} {'':>19} | step ms {med:7.1f} {p95:7.1f} {mx:7.1f} | "
                  f"(update Params + appsi_highs LP relaxation only, {n} steps)")


if __name__ == "__main__":
    main()
