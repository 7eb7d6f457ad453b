"""Per control step and per pool: replica-seconds, energy, cost, carbon, routing, scaling.

Energy of a pool over a step = PUE × (P_idle × replica-seconds + (P_busy − P_idle) ×
∫ Σ_replicas (b_r(t) / max_batch)^γ dt), i.e. per replica the catalogue's power curve
P(b) = idle + (busy − idle)·(b/max_batch)^γ integrated exactly over the batch each replica runs
(γ = 1 is linear in occupancy). Replica-seconds count starting, ready and draining
replicas (they are billed and powered). Cost = replica-seconds × price / 3600. Carbon = energy ×
the intensity of the pool's region at the step's start (signals are 5-minute series; a 10 s step
never straddles two samples unless the grids are misaligned).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from cedar_opt.sim.replica import READY, STARTING


class StepRecorder:
    """Integrates pool counters between events and writes one row per control step."""

    def __init__(self, sim) -> None:
        self.sim = sim
        T, O, P, n = sim.T, sim.O, sim.P, sim.n_steps
        self.T, self.O, self.P, self.n = T, O, P, n
        st = sim.context.static
        self.n_alive = [0] * P
        self.n_ready = [0] * P
        self.n_active = [0] * P
        self.pw_units = [0.0] * P  # Σ over the pool's replicas of (batch/max_batch)^γ
        gamma = st.power_exponent if st.power_exponent is not None else np.ones(P)
        self.pw_table = [[(b / int(st.max_batch[p])) ** float(gamma[p]) for b in range(int(st.max_batch[p]) + 1)] for p in range(P)]
        self.last_t = [0.0] * P
        self._reset()
        self.idle_w = st.idle_power_w.astype(float)
        self.busy_w = st.busy_power_w.astype(float)
        self.max_batch = st.max_batch.astype(float)
        self.price = st.price_usd_per_h.astype(float)
        self.pue = float(sim.context.pue)
        self.region_of_pool = np.asarray(sim.region_of_pool, np.int64)
        f = np.zeros
        self.a = {
            "time_s": np.arange(n) * sim.step_s,
            "replicas_ready": f((n, P)), "replicas_starting": f((n, P)), "replicas_draining": f((n, P)),
            "replicas_target": f((n, P)), "scale_clipped": f((n, P)),
            "replica_seconds": f((n, P)), "ready_seconds": f((n, P)), "seq_seconds": f((n, P)),
            "energy_kwh": f((n, P)), "cost_usd": f((n, P)), "carbon_marginal_kg": f((n, P)), "carbon_average_kg": f((n, P)),
            "utilisation": f((n, P)), "work_seconds": f((n, P)), "dispatched": f((n, T, O, P)), "served_tokens": f((n, T, P)),
            "scale_starts": f((n, P)), "scale_stops": f((n, P)), "scale_revived": f((n, P)), "preemptions": f((n, P)),
            "backlog_requests": f((n, T, O)), "backlog_tokens": f((n, T, O)),
            "marginal_g_per_kwh": f((n, O)), "average_g_per_kwh": f((n, O)),
        }
        self._last_util = np.zeros(P)
        self._last_work = np.zeros(P)
        self._last_disp = np.zeros((T, P))
        self._last_served = np.zeros((T, P))

    def _reset(self) -> None:
        P, T, O = self.P, self.T, self.O
        self.rep_sec = [0.0] * P
        self.ready_sec = [0.0] * P
        self.seq_sec = [0.0] * P
        self.pw_sec = [0.0] * P
        self.prefill_sec = [0.0] * P
        self.dispatched = [0] * (T * O * P)
        self.served = [0] * (T * P)
        self.starts = [0] * P
        self.stops = [0] * P
        self.revived = [0] * P
        self.preempt = [0] * P
        self.target = [0] * P
        self.clipped = [0] * P

    def touch(self, p: int, t: float) -> None:
        """Integrate pool ``p``'s counters up to ``t`` (call before changing them)."""
        dt = t - self.last_t[p]
        if dt > 0.0:
            self.rep_sec[p] += self.n_alive[p] * dt
            self.ready_sec[p] += self.n_ready[p] * dt
            self.seq_sec[p] += self.n_active[p] * dt
            self.pw_sec[p] += self.pw_units[p] * dt
            self.last_t[p] = t

    def flush(self, t: float) -> None:
        for p in range(self.P):
            self.touch(p, t)

    def intensity(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        sim = self.sim
        if sim.signals is None:
            z = np.zeros(self.O)
            return z, z.copy()
        cols = sim.sig_cols
        return sim.signals.marginal_at(t)[cols].astype(float), sim.signals.average_at(t)[cols].astype(float)

    def close_step(self, k: int, t: float) -> None:
        """Finish step ``k − 1`` at time ``t`` and open step ``k`` (state and signals at ``t``)."""
        self.flush(t)
        a = self.a
        if k >= 1:
            j = k - 1
            rs, rd, ss = np.array(self.rep_sec), np.array(self.ready_sec), np.array(self.seq_sec)
            a["replica_seconds"][j] = rs
            a["ready_seconds"][j] = rd
            a["seq_seconds"][j] = ss
            e = self.pue * (self.idle_w * rs + (self.busy_w - self.idle_w) * np.array(self.pw_sec)) / 3.6e6
            a["energy_kwh"][j] = e
            a["cost_usd"][j] = rs * self.price / 3600.0
            a["carbon_marginal_kg"][j] = e * a["marginal_g_per_kwh"][j][self.region_of_pool] / 1000.0
            a["carbon_average_kg"][j] = e * a["average_g_per_kwh"][j][self.region_of_pool] / 1000.0
            util = np.divide(ss, rd * self.max_batch, out=np.zeros(self.P), where=rd > 0)
            a["utilisation"][j] = np.minimum(util, 1.0)
            a["dispatched"][j] = np.array(self.dispatched, float).reshape(self.T, self.O, self.P)
            served = np.array(self.served, float).reshape(self.T, self.P)
            a["served_tokens"][j] = served
            a["scale_starts"][j] = self.starts
            a["scale_stops"][j] = self.stops
            a["scale_revived"][j] = self.revived
            a["preemptions"][j] = self.preempt
            a["replicas_target"][j] = self.target
            a["scale_clipped"][j] = self.clipped
            self._last_util = a["utilisation"][j].copy()
            self._last_work = np.array(self.prefill_sec) + ss / self.max_batch
            a["work_seconds"][j] = self._last_work
            self._last_disp = a["dispatched"][j].sum(axis=1)
            dt = t - a["time_s"][j]
            self._last_served = served / dt if dt > 0 else served * 0.0
        self._reset()
        if k < self.n:
            mg, av = self.intensity(t)
            a["marginal_g_per_kwh"][k] = mg
            a["average_g_per_kwh"][k] = av
            vq = self.sim.vq
            a["backlog_requests"][k] = np.array(vq.count, float).reshape(self.T, self.O)
            a["backlog_tokens"][k] = np.array(vq.tokens, float).reshape(self.T, self.O)

    def record_state(self, k: int) -> None:
        """Replica counts right after step ``k``'s action was applied."""
        a = self.a
        for p in range(self.P):
            for r in self.sim.pool_alive[p]:
                if r.state == READY:
                    a["replicas_ready"][k, p] += 1
                elif r.state == STARTING:
                    a["replicas_starting"][k, p] += 1
                else:
                    a["replicas_draining"][k, p] += 1

    def last_utilisation(self) -> np.ndarray:
        return self._last_util.copy()

    def last_served_tok_s(self) -> np.ndarray:
        return self._last_served.copy()

    def last_work_s(self) -> np.ndarray:
        return self._last_work.copy()

    def last_dispatched(self) -> np.ndarray:
        return self._last_disp.copy()

    def dataset(self) -> xr.Dataset:
        sim = self.sim
        ctx = sim.context
        a = self.a
        dims = {
            "time_s": ("step",), "marginal_g_per_kwh": ("step", "region"), "average_g_per_kwh": ("step", "region"),
            "dispatched": ("step", "tier", "origin", "pool"), "served_tokens": ("step", "tier", "pool"),
            "backlog_requests": ("step", "tier", "origin"), "backlog_tokens": ("step", "tier", "origin"),
        }
        units = {"time_s": "s", "energy_kwh": "kWh", "cost_usd": "USD", "carbon_marginal_kg": "kg CO2",
                 "carbon_average_kg": "kg CO2", "marginal_g_per_kwh": "g CO2/kWh", "average_g_per_kwh": "g CO2/kWh",
                 "replica_seconds": "s", "ready_seconds": "s", "seq_seconds": "s", "work_seconds": "s", "served_tokens": "tokens",
                 "backlog_tokens": "tokens (prompt + estimated output)"}
        data = {}
        for name, v in a.items():
            d = dims.get(name, ("step", "pool"))
            data[name] = xr.Variable(d, v, attrs={"units": units[name]} if name in units else {})
        coords = {
            "step": np.arange(self.n), "tier": list(ctx.tiers), "origin": list(ctx.regions), "region": list(ctx.regions),
            "pool": [p.key for p in ctx.pools],
            "pool_region": ("pool", [p.region for p in ctx.pools]), "pool_gpu": ("pool", [p.gpu for p in ctx.pools]),
            "pool_purchase": ("pool", [p.purchase for p in ctx.pools]), "pool_model": ("pool", [p.model for p in ctx.pools]),
        }
        return xr.Dataset(data, coords=coords, attrs={"step_s": sim.step_s, "duration_s": float(sim.scenario.duration_s),
                                                       "drain_s": float(sim.scenario.drain_s), "pue": self.pue,
                                                       "scenario": sim.scenario.name, "seed": sim.scenario.seed})
