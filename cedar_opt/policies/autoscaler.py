"""The utilisation-target autoscaler the baselines share.

Per region it sizes one pool — on-demand, the configured (fastest) GPU, the largest model — so the
observed demand fills ``target_utilisation`` of its capacity, using the same work model as CEDAR
(:func:`cedar_opt.fleet.service.service_time_s`). Demand is last step's arrivals from the region's
origin plus the current backlog drained over ``BACKLOG_DRAIN_S``; a feedback term
``ceil(ready × observed utilisation / target)`` (utilisation: the larger of batch occupancy and
the busy fraction telemetry reports) covers work the model misses. Scale-up is immediate; scale-down
waits until the lower size has been enough for ``scale_down_delay_s`` (a stabilisation window,
as the Kubernetes HPA does). One replica per region is always kept so every origin has a local
server. Origins whose region has no such pool are sized into the nearest region by RTT.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from cedar_opt.fleet.service import service_time_s
from cedar_opt.interface import Observation, PolicyContext

BACKLOG_DRAIN_S = 30.0
"""A backlog is planned to be worked off within this many seconds (s)."""


class UtilisationAutoscaler:
    def __init__(self, context: PolicyContext):
        cfg = context.config.autoscaler if context.config is not None else None
        self.target = cfg.target_utilisation if cfg else 0.6
        self.delay_s = cfg.scale_down_delay_s if cfg else 120.0
        gpu = cfg.gpu if cfg else "H100"
        self.max_step = context.config.fleet.max_scale_per_step if context.config is not None else 8
        self.ctx = context
        big = context.default_model_rank
        st = context.static
        self.pool_of_region = np.full(len(context.regions), -1)
        for j, p in enumerate(context.pools):
            if p.purchase == "on_demand" and p.gpu == gpu and st.model_rank[j] == big:
                self.pool_of_region[context.regions.index(p.region)] = j
        if (self.pool_of_region < 0).all():  # fall back to any on-demand pool of the largest model
            for j, p in enumerate(context.pools):
                if p.purchase == "on_demand" and st.model_rank[j] == big:
                    r = context.regions.index(p.region)
                    if self.pool_of_region[r] < 0:
                        self.pool_of_region[r] = j
        served = [r for r in range(len(context.regions)) if self.pool_of_region[r] >= 0]
        # origin -> serving region (itself if it has a pool, else nearest by RTT)
        self.home = np.array([o if self.pool_of_region[o] >= 0 else min(served, key=lambda r: context.rtt_s[o, r]) for o in range(len(context.regions))])
        self.used_pools = np.array(sorted({int(self.pool_of_region[r]) for r in served}))
        self.a = service_time_s(st, context.workload_hint, len(context.tiers))
        self.history: deque[tuple[float, np.ndarray]] = deque()

    def desired(self, obs: Observation) -> np.ndarray:
        ctx = self.ctx
        q = obs.queues
        rate = q.arrivals_requests / ctx.step_s + q.backlog_requests / BACKLOG_DRAIN_S  # [tier, origin]
        want = np.zeros(len(ctx.pools))
        for o in range(len(ctx.regions)):
            j = self.pool_of_region[self.home[o]]
            want[j] += float((self.a[:, j] * rate[:, o]).sum())
        n = np.zeros(len(ctx.pools), dtype=np.int64)
        n[self.used_pools] = np.maximum(np.ceil(want[self.used_pools] / self.target - 1e-9).astype(np.int64), 1)
        # Feedback on what the replicas actually carry (batch occupancy, as a KEDA/HPA rule on
        # vLLM's running-requests metric would): covers work the demand model misses (KV misses,
        # long prefills). desired = ceil(ready × utilisation / target).
        ready = obs.replicas_ready
        util = np.asarray(obs.utilisation, dtype=float)
        if obs.work_s is not None:
            # busy fraction from telemetry (prefill engine time + decode slot-time / max_batch per
            # ready replica-second): sees a saturated prefill queue long before batch slots fill
            busy = np.divide(obs.work_s, ready * ctx.step_s, out=np.zeros_like(util), where=ready > 0)
            util = np.maximum(util, busy)
        fb = np.ceil(ready * util / self.target - 1e-9).astype(np.int64)
        n[self.used_pools] = np.maximum(n[self.used_pools], fb[self.used_pools])
        if not self.history:
            # The fleet the run starts with counts as recent history: no scale-down before the
            # stabilisation window has seen that less is enough.
            start = np.zeros(len(ctx.pools), dtype=np.int64)
            start[self.used_pools] = (obs.replicas_ready + obs.replicas_starting)[self.used_pools]
            self.history.append((obs.t_s, start))
        # stabilisation window for scale-down
        self.history.append((obs.t_s, n.copy()))
        while self.history and self.history[0][0] < obs.t_s - self.delay_s:
            self.history.popleft()
        n = np.max(np.stack([h for _, h in self.history]), axis=0)
        current = obs.replicas_ready + obs.replicas_starting
        n = np.clip(n, current - self.max_step, current + self.max_step)
        n = np.minimum(np.maximum(n, 0), ctx.static.max_replicas)
        return n.astype(np.int64)
