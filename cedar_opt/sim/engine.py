"""The request-level discrete-event simulator (see ``docs/simulator.md`` for the model).

One heap of events ``(time, seq, kind, arg)``; ``seq`` makes ties deterministic. Per-call and
per-session state lives in flat Python lists (faster than numpy scalars in a Python loop).
The simulator never imports a policy: it calls ``policy.reset`` / ``policy.act`` through the
:class:`cedar_opt.interface.Policy` protocol.

Call states: NEW (not arrived) → HELD (deferred in its tier's release queue) → PENDING (released,
waiting for a pool with a ready replica) → FIFO (in a replica's local queue) → BATCH (holds a
batch slot: prefilling or decoding) → DONE | DROPPED. A spot reclaim sends BATCH calls back to
PENDING (front); a drain sends FIFO calls back to PENDING (front). HELD, PENDING and FIFO calls
are in the virtual queue (:mod:`cedar_opt.queues`).
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from bisect import bisect_right
from collections import deque
from typing import Callable

import numpy as np

from cedar_opt.config.schema import Scenario
from cedar_opt.fleet.catalogue import Catalogue
from cedar_opt.interface import Action, Observation
from cedar_opt.queues import VirtualQueues
from cedar_opt.sim.accounting import StepRecorder
from cedar_opt.sim.actions import validate_action
from cedar_opt.sim.context import make_context, signal_columns
from cedar_opt.sim.replica import DRAINING, READY, STARTING, STOPPED, Replica
from cedar_opt.sim.result import SimResult, build_requests
from cedar_opt.workload.sessions import Workload, rng_for

NEW, HELD, PENDING, FIFO, BATCH, DONE, DROPPED = range(7)
EV_FINISH, EV_ARRIVAL, EV_TIMEOUT, EV_READY, EV_NOTICE, EV_RECLAIM, EV_RELEASE = range(7)
ATT_BITS = 10
ATT_MASK = (1 << ATT_BITS) - 1
INF = math.inf
_RNG_ROUTING, _RNG_SPOT = 101, 102
UNIFORM_BLOCK = 1 << 16


class Simulator:
    """Replay ``workload`` on the fleet of ``scenario`` under a policy: ``Simulator(...).run(policy)``."""

    def __init__(self, scenario: Scenario, catalogue: Catalogue, signals, workload: Workload) -> None:
        self.scenario = scenario
        self.catalogue = catalogue
        self.signals = signals
        self.workload = workload
        self.context = make_context(scenario, catalogue, signals, workload)
        self.sig_cols = signal_columns(scenario, signals) if signals is not None else None

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        sc, ctx, wl = self.scenario, self.context, self.workload
        st = ctx.static
        self.T, self.O, self.P = len(ctx.tiers), len(ctx.regions), len(ctx.pools)
        self.step_s = float(sc.step_s)
        self.n_steps = int(math.ceil((sc.duration_s + sc.drain_s) / self.step_s - 1e-9))
        self.t_end = self.n_steps * self.step_s
        self.region_of_pool = [ctx.regions.index(p.region) for p in ctx.pools]
        self.rank = st.model_rank.tolist()
        self.gpr = st.gpus_per_replica.tolist()
        self.group = st.quota_group.tolist()
        self.quota = st.quota_gpus.tolist()
        self.group_used = [0] * (max(self.group) + 1 if self.group else 0)
        self.slope = []
        for p in ctx.pools:
            prof = self.catalogue.profile(p.model, p.gpu)
            self.slope.append(prof.itl_s_per_seq)
        self.hazard_per_s = (st.spot_hazard_per_h * sc.fleet.spot_hazard_scale / 3600.0).tolist()
        self.rtt = ctx.rtt_s.tolist()
        self.deadline = ctx.deadline_s.tolist()
        self.ttl = float(sc.fleet.kv_ttl_s)
        self.notice_s = float(sc.fleet.preemption_notice_s)
        tf = sc.workload.timeout_factor
        # per-call arrays as lists
        self.c_tier = wl.tier.tolist()
        self.c_prompt = wl.prompt_tokens.tolist()
        self.c_out = wl.output_tokens.tolist()
        self.c_est = (wl.prompt_tokens + wl.est_output_tokens).astype(float).tolist()
        self.c_rank = wl.min_model_rank.tolist()
        self.c_think = wl.think_s.tolist()
        sess = wl.call_session
        self.c_sess = sess.tolist()
        self.c_origin = wl.session_origin[sess].tolist() if wl.n_calls else []
        self.s_end = wl.call_offset[1:].tolist()
        C, S = wl.n_calls, wl.n_sessions
        self.c_timeout = (np.asarray(ctx.deadline_s)[wl.tier] * tf).tolist() if C else []
        self.state = [NEW] * C
        self.arrival = [INF] * C
        self.c_pool = [-1] * C
        self.c_rep: list = [None] * C
        self.dispatch_s = [INF] * C
        self.admit_s = [INF] * C
        self.ft = [-1.0] * C
        self.fin = [INF] * C
        self.drop_s = [INF] * C
        self.prefill = [0] * C
        self.recomp = [0] * C
        self.att = [0] * C
        self.tpushed = [False] * C
        self.b_admit = [0] * C
        self.seq0 = [0.0] * C
        self.b_mean = [INF] * C
        # KV copies are tracked per (session, model rank): key s * M + rank. A session whose calls
        # alternate between a small and a large model (right-sizing) keeps a cached prefix on each.
        self.M = M = int(max(self.rank, default=0)) + 1
        self.kv_rep: list = [None] * (S * M)
        self.kv_tok = [0] * (S * M)
        self.kv_exp = [-INF] * (S * M)
        self.done_ctx = [0] * S
        # fleet
        self.replicas: list[Replica] = []
        self.pool_alive: list[list[Replica]] = [[] for _ in range(self.P)]
        self.pool_ready: list[list[Replica]] = [[] for _ in range(self.P)]
        self.ready_version = 0
        self._elig_cache: dict[int, tuple[int, list]] = {}
        self.rr = 0
        self.rng_route = rng_for(sc.seed, _RNG_ROUTING)
        self.rng_spot = rng_for(sc.seed, _RNG_SPOT)
        self._u = self.rng_route.random(UNIFORM_BLOCK).tolist()
        self._ui = 0
        # queues and release
        self.vq = VirtualQueues(self.T, self.O, self.deadline)
        self.held = [deque() for _ in range(self.T)]
        self.pending: deque[int] = deque()
        self.rate = [INF] * self.T
        self.bucket = [0.0] * self.T
        self.bucket_t = [0.0] * self.T
        self.rel_pending = [INF] * self.T
        self.urgent = 2.0
        self.rule = "weighted"
        self.tier_floor = [0] * self.T
        self.routing = np.zeros((self.T, self.O, self.P))
        self._route_cache: dict = {}
        self._aff_cache: dict = {}
        self.dispatch_fallbacks = 0
        # events
        self.heap: list = []
        self.seq = itertools.count()
        first = wl.call_offset[:-1][np.diff(wl.call_offset) > 0]
        self.heap = [(float(wl.session_start_s[s]), next(self.seq), EV_ARRIVAL, int(first_c))
                     for s, first_c in zip(np.flatnonzero(np.diff(wl.call_offset) > 0), first)]
        heapq.heapify(self.heap)
        self.now = 0.0
        self.rec = StepRecorder(self)

    def _uniform(self) -> float:
        i = self._ui
        if i >= UNIFORM_BLOCK:
            self._u = self.rng_route.random(UNIFORM_BLOCK).tolist()
            i = 0
        self._ui = i + 1
        return self._u[i]

    def _push(self, t: float, kind: int, arg: int) -> None:
        heapq.heappush(self.heap, (t, next(self.seq), kind, arg))

    # ------------------------------------------------------------------ run
    def run(self, policy, progress: Callable[[float], None] | None = None) -> SimResult:
        """Simulate the whole run under ``policy``; returns the request log and step data."""
        wall0 = time.perf_counter()
        self._setup()
        sc = self.scenario
        name = getattr(policy, "name", type(policy).__name__)
        # initial fleet: ready replicas of the largest model in every on-demand pool
        big = self.context.default_model_rank
        for p, pool in enumerate(self.context.pools):
            if pool.purchase == "on_demand" and self.rank[p] == big:
                for _ in range(sc.fleet.initial_replicas):
                    r = self._start(p, 0.0)
                    if r is not None:
                        self._make_ready(r, 0.0)
        self.rec.flush(0.0)
        policy.reset(self.context)
        infos: list[dict] = []
        prev_action: Action | None = None
        n_steps = self.n_steps
        for k in range(n_steps):
            t = k * self.step_s
            self._advance(t)
            self.rec.close_step(k, t)
            obs = self._observe(k, t, prev_action)
            action = policy.act(obs)
            a = validate_action(action, name, self.T, self.O, self.P)
            infos.append(dict(action.info) if action.info else {})
            self._apply(a, t, k)
            self.rec.record_state(k)
            prev_action = action
            if progress is not None:
                progress(min(1.0, (k + 1) / n_steps))
        self._advance(self.t_end)
        self.rec.close_step(n_steps, self.t_end)
        wall = time.perf_counter() - wall0
        requests = build_requests(self)
        steps = self.rec.dataset()
        return SimResult(requests=requests, steps=steps, actions_info=infos, context=self.context,
                         wall_s=wall, stats=self._stats(requests, wall))

    def _stats(self, requests, wall: float) -> dict:
        in_batch = sum(r.active for r in self.replicas if r.state != STOPPED)
        return {
            "wall_s": wall,
            "requests": int(len(requests)),
            "requests_per_wall_s": len(requests) / wall if wall > 0 else float("inf"),
            "queued_end": len(self.vq),
            "in_batch_end": in_batch,
            "dispatch_fallbacks": self.dispatch_fallbacks,
            "replicas_created": len(self.replicas),
        }

    # ------------------------------------------------------------------ event loop
    def _advance(self, t_lim: float) -> None:
        """Process every event with time < ``t_lim`` (an event exactly at a step boundary belongs to
        the step that starts there: it is processed after that step's action)."""
        h = self.heap
        pop = heapq.heappop
        finish, arrive = self._on_finish, self._on_arrival
        while h and h[0][0] < t_lim:
            t, _, kind, x = pop(h)
            self.now = t
            if kind == EV_FINISH:
                finish(x, t)
            elif kind == EV_ARRIVAL:
                arrive(x, t)
            elif kind == EV_TIMEOUT:
                self._on_timeout(x, t)
            elif kind == EV_READY:
                r = self.replicas[x]
                if r.state == STARTING:
                    self._make_ready(r, t)
                    self._retry_pending(t)
            elif kind == EV_NOTICE:
                self._on_notice(self.replicas[x], t)
            elif kind == EV_RECLAIM:
                self._on_reclaim(self.replicas[x], t)
            elif kind == EV_RELEASE:
                self.rel_pending[x] = INF
                self._try_release(x, t)
        self.now = t_lim

    # ------------------------------------------------------------------ calls
    def _on_arrival(self, c: int, t: float) -> None:
        self.arrival[c] = t
        k = self.c_tier[c]
        o = self.c_origin[c]
        tok = self.c_est[c]
        self.vq.arrive(k, o, tok)
        self.vq.enter(c, k, o, tok, t)
        if self.rate[k] == INF and not self.held[k]:
            if not self._dispatch(c, t, False):
                self.state[c] = PENDING
                self.pending.append(c)
        else:
            self.state[c] = HELD
            self.held[k].append(c)
            self._try_release(k, t)
        if self.state[c] != BATCH or self.ft[c] > t + self.c_timeout[c]:
            self.tpushed[c] = True
            self._push(t + self.c_timeout[c], EV_TIMEOUT, c)

    def _release(self, c: int, t: float) -> None:
        if not self._dispatch(c, t, False):
            self.state[c] = PENDING
            self.pending.append(c)

    def _try_release(self, k: int, t: float) -> None:
        q = self.held[k]
        state = self.state
        rate = self.rate[k]
        if rate == INF:
            while q:
                c = q.popleft()
                if state[c] == HELD:
                    self._release(c, t)
            return
        cap = rate * self.step_s
        b = min(cap, self.bucket[k] + rate * (t - self.bucket_t[k]))
        self.bucket_t[k] = t
        lim = self.deadline[k] - self.urgent
        while q:
            c = q[0]
            if state[c] != HELD:
                q.popleft()
                continue
            urgent = self.arrival[c] + lim <= t
            if b > 0.0 or urgent:
                q.popleft()
                if not urgent:
                    b -= self.c_est[c]
                self._release(c, t)
            else:
                break
        self.bucket[k] = b
        if q:
            c = q[0]
            t_next = self.arrival[c] + lim
            if rate > 0:
                t_next = min(t_next, t + (-b) / rate + 1e-9)
            t_next = max(t_next, t + 1e-9)
            if t_next < self.rel_pending[k]:
                self.rel_pending[k] = t_next
                self._push(t_next, EV_RELEASE, k)

    def _dispatch(self, c: int, t: float, retry: bool) -> bool:
        """Choose a replica for released call ``c`` and place it there; False: no ready replica."""
        k = self.c_tier[c]
        floor = self.c_rank[c]
        tf = self.tier_floor[k]
        if tf > floor:
            floor = tf
        rule = self.rule
        r = None
        if rule == "weighted":
            o = self.c_origin[c]
            route = self._route(k, o, floor, retry)
            sticky = self._sticky(c, self._affinity(k, o, floor, route, retry), t) if route is not None else None
            if sticky is not None:
                r = sticky
            elif route is not None:
                cum, pools = route
                i = bisect_right(cum, self._uniform() * cum[-1])
                p = pools[i if i < len(pools) else -1]
                rl = self.pool_ready[p]
                if not rl:
                    return False
                key = self.c_sess[c] * self.M + self.rank[p]
                kr = self.kv_rep[key]
                if kr is not None and kr.pool == p and kr.state == READY and kr.active < kr.max_batch and self.kv_exp[key] >= t:
                    r = kr
                else:
                    best = None
                    bl = 1 << 60
                    for x in rl:
                        ld = x.active + x.n_fifo
                        if ld < bl:
                            best, bl = x, ld
                    r = best
            else:
                self.dispatch_fallbacks += 1
                r = self._least_loaded(floor)
        elif rule == "round_robin":
            el = self._eligible(floor)
            if el:
                r = el[self.rr % len(el)]
                self.rr += 1
        elif rule == "least_connections":
            r = self._least_loaded(floor)
        else:
            r = self._min_ttft(c, floor, t)
        if r is None:
            return False
        self._place(c, r, t)
        return True

    def _affinity(self, k: int, o: int, floor: int, route, retry: bool) -> list[int]:
        """Pools where a session's cached context may take a (tier k, origin o) call: the row's
        own pools, and pools the policy routes *other* tiers of the same origin to that run a
        model the row uses (a KV-aware router honours the policy's choice of pools and models for
        the origin, and keeps a session where its context is)."""
        key = (k, o, floor)
        if not retry:
            v = self._aff_cache.get(key)
            if v is not None:
                return v
        pools = list(route[1])
        ranks = {self.rank[p] for p in pools}
        rows = self.routing[:, o, :]
        for p in range(self.P):
            if p not in pools and self.rank[p] in ranks and self.rank[p] >= floor and float(rows[:, p].max()) > 0.0:
                pools.append(p)
        if not retry:
            self._aff_cache[key] = pools
        return pools

    def _sticky(self, c: int, pools, t: float) -> Replica | None:
        """Session stickiness: a live, unexpired KV copy of the session on a ready replica with a
        free slot, in one of ``pools`` (see :meth:`_affinity`), takes the call without a draw; the
        copy with the most cached tokens wins."""
        s = self.c_sess[c]
        M = self.M
        best = None
        for p in pools:
            key = s * M + self.rank[p]
            kr = self.kv_rep[key]
            if kr is not None and kr.pool == p and kr.state == READY and kr.active < kr.max_batch and self.kv_exp[key] >= t:
                if best is None or self.kv_tok[key] > best[1]:
                    best = (kr, self.kv_tok[key])
        return best[0] if best is not None else None

    def _route(self, k: int, o: int, floor: int, retry: bool):
        key = (k, o, floor)
        if not retry:
            v = self._route_cache.get(key, False)
            if v is not False:
                return v
        row = self.routing[k, o]
        cum: list[float] = []
        pools: list[int] = []
        acc = 0.0
        for p in range(self.P):
            w = row[p]
            if w > 0.0 and self.rank[p] >= floor and (not retry or self.pool_ready[p]):
                acc += float(w)
                cum.append(acc)
                pools.append(p)
        v = (cum, pools) if pools else None
        if not retry:
            self._route_cache[key] = v
        return v

    def _eligible(self, floor: int) -> list[Replica]:
        v = self._elig_cache.get(floor)
        if v is not None and v[0] == self.ready_version:
            return v[1]
        el = [r for p in range(self.P) if self.rank[p] >= floor for r in self.pool_ready[p]]
        el.sort(key=lambda r: r.rid)
        self._elig_cache[floor] = (self.ready_version, el)
        return el

    def _least_loaded(self, floor: int) -> Replica | None:
        best = None
        bl = 1 << 60
        for x in self._eligible(floor):
            ld = x.active + x.n_fifo
            if ld < bl:
                best, bl = x, ld
        return best

    def _min_ttft(self, c: int, floor: int, t: float) -> Replica | None:
        """Expected TTFT = RTT + prefill backlog + slot wait + uncached prefill."""
        best = None
        bt = INF
        o = self.c_origin[c]
        s = self.c_sess[c]
        prompt = self.c_prompt[c]
        M = self.M
        rank = self.rank
        for x in self._eligible(floor):
            key = s * M + rank[x.pool]
            cached = self.kv_tok[key] if (self.kv_rep[key] is x and self.kv_exp[key] >= t) else 0
            unc = prompt - min(cached, prompt)
            wait = x.prefill_free_s - t if x.prefill_free_s > t else 0.0
            if x.active >= x.max_batch:
                # a slot frees about every (itl at full batch × mean output) / max_batch seconds
                wait += (x.n_fifo + 1) * (x.itl1 + x.itl_slope * (x.max_batch - 1)) * 200.0 / x.max_batch
            e = self.rtt[o][x.region] + wait + unc / x.prefill_tok_s
            if e < bt:
                best, bt = x, e
        return best

    def _place(self, c: int, r: Replica, t: float) -> None:
        self.dispatch_s[c] = t
        self.c_pool[c] = r.pool
        self.rec.dispatched[(self.c_tier[c] * self.O + self.c_origin[c]) * self.P + r.pool] += 1
        if r.active < r.max_batch and not r.n_fifo:
            self._admit(c, r, t)
        else:
            r.fifo.append(c)
            r.n_fifo += 1
            self.state[c] = FIFO
            self.c_rep[c] = r

    def _admit(self, c: int, r: Replica, t: float) -> None:
        s = self.c_sess[c]
        prompt = self.c_prompt[c]
        cached = 0
        key = s * self.M + self.rank[r.pool]
        if self.kv_rep[key] is r and self.kv_exp[key] >= t:
            cached = self.kv_tok[key]
            if cached > prompt:
                cached = prompt
        unc = prompt - cached
        done = self.done_ctx[s]
        rec = (done if done < prompt else prompt) - cached
        if rec > 0:
            self.recomp[c] += rec
        if prompt > done:
            self.done_ctx[s] = prompt
        self.prefill[c] += unc
        # accounting before the batch changes
        p = r.pool
        rec = self.rec
        rec.touch(p, t)
        rec.n_active[p] += 1
        tab = rec.pw_table[p]
        rec.pw_units[p] += tab[r.active + 1] - tab[r.active]
        r.seq_int += r.active * (t - r.last_t)
        r.last_t = t
        r.active += 1
        b = r.active
        start = r.prefill_free_s if r.prefill_free_s > t else t
        pend = start + unc / r.prefill_tok_s
        rec.prefill_sec[p] += unc / r.prefill_tok_s
        r.prefill_free_s = pend
        fin = pend + (self.c_out[c] - 1) * (r.itl1 + r.itl_slope * (b - 1))
        if self.ft[c] < 0:
            self.ft[c] = pend + self.rtt[self.c_origin[c]][r.region]
        self.state[c] = BATCH
        self.c_rep[c] = r
        self.admit_s[c] = t
        self.b_admit[c] = b
        self.seq0[c] = r.seq_int
        r.batch.add(c)
        self.vq.leave(c)
        a = self.att[c]
        heapq.heappush(self.heap, (fin, next(self.seq), EV_FINISH, (c << ATT_BITS) | (a & ATT_MASK)))

    def _unbatch(self, c: int, r: Replica, t: float) -> None:
        """Take ``c`` out of ``r``'s batch (finish, drop or reclaim)."""
        p = r.pool
        rec = self.rec
        rec.touch(p, t)
        rec.n_active[p] -= 1
        tab = rec.pw_table[p]
        rec.pw_units[p] += tab[r.active - 1] - tab[r.active]
        r.seq_int += r.active * (t - r.last_t)
        r.last_t = t
        r.active -= 1
        r.batch.discard(c)

    def _next_from_fifo(self, r: Replica, t: float) -> None:
        state = self.state
        while r.n_fifo and r.active < r.max_batch and r.state != STOPPED:
            c = r.fifo.popleft()
            if state[c] == FIFO and self.c_rep[c] is r:
                r.n_fifo -= 1
                self._admit(c, r, t)

    def _on_finish(self, x: int, t: float) -> None:
        c = x >> ATT_BITS
        if (self.att[c] & ATT_MASK) != (x & ATT_MASK) or self.state[c] != BATCH:
            return
        r = self.c_rep[c]
        self._unbatch(c, r, t)
        dur = t - self.admit_s[c]
        self.b_mean[c] = (r.seq_int - self.seq0[c]) / dur if dur > 0 else float(self.b_admit[c])
        self.state[c] = DONE
        rtt = self.rtt[self.c_origin[c]][r.region]
        self.fin[c] = t + rtt
        s = self.c_sess[c]
        ctx = self.c_prompt[c] + self.c_out[c]
        key = s * self.M + self.rank[r.pool]
        self.kv_rep[key] = r
        self.kv_tok[key] = ctx
        self.kv_exp[key] = t + self.ttl
        if ctx > self.done_ctx[s]:
            self.done_ctx[s] = ctx
        self.rec.served[self.c_tier[c] * self.P + r.pool] += ctx
        nc = c + 1
        if nc < self.s_end[s]:
            heapq.heappush(self.heap, (t + rtt + self.c_think[nc], next(self.seq), EV_ARRIVAL, nc))
        if r.n_fifo:
            self._next_from_fifo(r, t)
        elif r.state == DRAINING and r.active == 0:
            self._stop(r, t)

    def _on_timeout(self, c: int, t: float) -> None:
        st = self.state[c]
        if st == DONE or st == DROPPED or st == NEW:
            return
        if 0 <= self.ft[c] <= t + 1e-12:
            return
        r = self.c_rep[c]
        if st == BATCH:
            self._unbatch(c, r, t)
            self.att[c] += 1
            self._next_from_fifo(r, t)
            if r.state == DRAINING and r.active == 0 and not r.n_fifo:
                self._stop(r, t)
            self.ft[c] = -1.0
        else:
            if st == FIFO:
                r.n_fifo -= 1
            self.vq.leave(c)
        self.state[c] = DROPPED
        self.drop_s[c] = t
        s = self.c_sess[c]
        nc = c + 1
        if nc < self.s_end[s]:
            self._push(t + self.c_think[nc], EV_ARRIVAL, nc)

    def _requeue(self, c: int, t: float) -> None:
        """Back to the front of the dispatch queue with the original arrival (reclaim, drain)."""
        self.state[c] = PENDING
        self.pending.appendleft(c)
        self.vq.enter(c, self.c_tier[c], self.c_origin[c], self.c_est[c], self.arrival[c])
        if not self.tpushed[c]:
            self.tpushed[c] = True
            self._push(max(t, self.arrival[c] + self.c_timeout[c]), EV_TIMEOUT, c)

    def _retry_pending(self, t: float) -> None:
        q = self.pending
        if not q:
            return
        keep: deque[int] = deque()
        state = self.state
        while q:
            c = q.popleft()
            if state[c] != PENDING:
                continue
            if not self._dispatch(c, t, True):
                keep.append(c)
        self.pending = keep

    # ------------------------------------------------------------------ replicas
    def _start(self, p: int, t: float) -> Replica | None:
        st = self.context.static
        g = self.group[p]
        if self.group_used[g] + self.gpr[p] > self.quota[p]:
            return None
        cold = float(st.cold_start_s[p])
        r = Replica(len(self.replicas), p, self.region_of_pool[p], float(st.prefill_tok_s[p]), float(st.itl_s[p]),
                    self.slope[p], int(st.max_batch[p]), self.gpr[p], t + cold, t)
        self.replicas.append(r)
        self.rec.touch(p, t)
        self.rec.n_alive[p] += 1
        self.pool_alive[p].append(r)
        self.group_used[g] += self.gpr[p]
        self._push(t + cold, EV_READY, r.rid)
        hz = self.hazard_per_s[p]
        if hz > 0:
            tn = t + float(self.rng_spot.exponential(1.0 / hz))
            if tn < self.t_end:
                self._push(tn, EV_NOTICE, r.rid)
        return r

    def _make_ready(self, r: Replica, t: float) -> None:
        self.rec.touch(r.pool, t)
        self.rec.n_ready[r.pool] += 1
        r.state = READY
        r.prefill_free_s = max(r.prefill_free_s, t)
        r.last_t = t
        self.pool_ready[r.pool].append(r)
        self.ready_version += 1

    def _unready(self, r: Replica, t: float) -> None:
        if r.state == READY:
            self.rec.touch(r.pool, t)
            self.rec.n_ready[r.pool] -= 1
            self.pool_ready[r.pool].remove(r)
            self.ready_version += 1

    def _stop(self, r: Replica, t: float) -> None:
        if r.state == STOPPED:
            return
        self._unready(r, t)
        p = r.pool
        self.rec.touch(p, t)
        self.rec.n_alive[p] -= 1
        r.state = STOPPED
        self.pool_alive[p].remove(r)
        self.group_used[self.group[p]] -= r.gpus

    def _drain(self, r: Replica, t: float) -> None:
        """No new calls; local FIFO back to the dispatch queue; stop once the batch is empty."""
        if r.state == STARTING:
            self._stop(r, t)
            return
        self._unready(r, t)
        r.state = DRAINING
        moved = [c for c in r.fifo if self.state[c] == FIFO and self.c_rep[c] is r]
        r.fifo.clear()
        r.n_fifo = 0
        for c in reversed(moved):
            self.vq.leave(c)
            self._requeue(c, t)
        if r.active == 0:
            self._stop(r, t)
        if moved:
            self._retry_pending(t)

    def _on_notice(self, r: Replica, t: float) -> None:
        if r.state == STOPPED:
            return
        r.notice = True
        self.rec.preempt[r.pool] += 1
        self._drain(r, t)
        if r.state != STOPPED:
            self._push(t + self.notice_s, EV_RECLAIM, r.rid)

    def _on_reclaim(self, r: Replica, t: float) -> None:
        if r.state == STOPPED:
            return
        lost = sorted(r.batch, key=lambda c: (self.arrival[c], c))
        for c in lost:
            self._unbatch(c, r, t)
            self.att[c] += 1
            if self.ft[c] > t:
                self.ft[c] = -1.0
        self._stop(r, t)
        for c in reversed(lost):
            self._requeue(c, t)
        self._retry_pending(t)

    def _scale(self, p: int, target: int, t: float) -> tuple[int, int, int]:
        """Move pool ``p`` towards ``target`` serving replicas; returns (starts, stops, revived)."""
        alive = self.pool_alive[p]
        current = [r for r in alive if r.state in (STARTING, READY)]
        n = len(current)
        step_max = self.scenario.fleet.max_scale_per_step
        starts = stops = revived = 0
        if target > n:
            want = min(target - n, step_max)
            for r in list(alive):
                if want == 0:
                    break
                if r.state == DRAINING and not r.notice:
                    self._make_ready(r, t)
                    want -= 1
                    revived += 1
            while want > 0 and self._start(p, t) is not None:
                want -= 1
                starts += 1
        elif target < n:
            k = min(n - target, step_max)
            order = sorted(current, key=lambda r: (r.state != STARTING, -r.ready_at_s if r.state == STARTING else 0.0,
                                                   r.active + r.n_fifo, -r.rid))
            for r in order[:k]:
                if r.state == STARTING or (r.active == 0 and r.n_fifo == 0):
                    self._stop(r, t)
                else:
                    self._drain(r, t)
                stops += 1
        return starts, stops, revived

    # ------------------------------------------------------------------ control step
    def _apply(self, a: dict, t: float, k: int) -> None:
        for tier in range(self.T):
            new = float(a["release_tok_s"][tier])
            old = self.rate[tier]
            if old != INF:
                self.bucket[tier] = min(old * self.step_s, self.bucket[tier] + old * (t - self.bucket_t[tier]))
            else:
                self.bucket[tier] = new * self.step_s if new != INF else 0.0
            self.bucket_t[tier] = t
            self.rate[tier] = new
            if new != INF:
                self.bucket[tier] = min(self.bucket[tier], new * self.step_s)
        self.urgent = a["urgent_slack_s"]
        self.rule = a["dispatch"]
        self.tier_floor = [0] * self.T if a["model_rank_floor"] is None else a["model_rank_floor"].tolist()
        self.routing = a["routing"]
        self._route_cache = {}
        self._aff_cache = {}
        target = a["replicas"].tolist()
        for p in range(self.P):
            s0, s1, rv = self._scale(p, target[p], t)
            self.rec.starts[p] += s0
            self.rec.stops[p] += s1
            self.rec.revived[p] += rv
            self.rec.target[p] = target[p]
            self.rec.clipped[p] = target[p] - sum(1 for r in self.pool_alive[p] if r.state in (STARTING, READY))
        for tier in range(self.T):
            self.rel_pending[tier] = INF
            self._try_release(tier, t)
        self._retry_pending(t)

    def _observe(self, k: int, t: float, prev: Action | None) -> Observation:
        P = self.P
        ready = np.zeros(P)
        starting = np.zeros(P)
        draining = np.zeros(P)
        notices = np.zeros(P)
        in_flight = np.zeros(P)
        waits: list[list[float]] = [[] for _ in range(P)]
        for p in range(P):
            for r in self.pool_alive[p]:
                if r.state == READY:
                    ready[p] += 1
                elif r.state == STARTING:
                    starting[p] += 1
                    waits[p].append(max(0.0, r.ready_at_s - t))
                else:
                    draining[p] += 1
                    notices[p] += r.notice
                in_flight[p] += r.active + r.n_fifo
        width = max(1, max(len(w) for w in waits))
        ready_in = np.full((P, width), np.inf)
        for p, w in enumerate(waits):
            if w:
                ready_in[p, : len(w)] = sorted(w)
        util, served = self.rec.last_utilisation(), self.rec.last_served_tok_s()
        mg, av = self.rec.intensity(t)
        return Observation(
            step=k, t_s=t, queues=self.vq.snapshot(t, self.step_s), replicas_ready=ready,
            replicas_starting=starting, replicas_draining=draining, ready_in_s=ready_in, in_flight=in_flight,
            utilisation=util, served_tokens_s=served, marginal_g_per_kwh=mg, average_g_per_kwh=av,
            price_usd_per_h=self.context.static.price_usd_per_h.copy(), preemption_notices=notices,
            previous_action=prev, work_s=self.rec.last_work_s(), dispatched=self.rec.last_dispatched(),
        )
