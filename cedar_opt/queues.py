"""Virtual queues per [tier, origin]: the work that has arrived and not yet got a batch slot.

A call is *in* the virtual queue of its (tier, origin) from its arrival at the ingress until a
replica admits it to a batch slot (or it is dropped): while held back by deferral, while waiting
for a pool with a ready replica, and while in a replica's local FIFO. A call re-queued by a spot
reclaim re-enters with its original arrival time.

:class:`VirtualQueues` is the incremental bookkeeping the simulator keeps (O(1) per enter/leave,
a lazy min-heap per cell for the oldest waiting call) and turns into a
:class:`cedar_opt.interface.QueueState` at each control step. :func:`backlog_at` recomputes the
backlog from a request log (metrics, tests) without a simulator. Both are pure Python/numpy.

Definitions (per cell [tier k, origin o], at time t):

* ``backlog_requests`` = #calls in the queue; ``backlog_tokens`` = Σ (prompt + estimated output);
* ``oldest_wait_s`` = t − min arrival over the queue (0 when empty);
* ``min_slack_s`` = min over the queue of (arrival + deadline_k − t) (+inf when empty);
* ``arrivals_requests`` / ``arrivals_tokens``: first arrivals since the previous snapshot;
* ``trend_tokens_s`` = (backlog_tokens − backlog_tokens at the previous snapshot) / step.
"""

from __future__ import annotations

import heapq
from typing import Hashable

import numpy as np

from cedar_opt.interface import QueueState


class VirtualQueues:
    """Incremental virtual-queue state for ``n_tiers × n_origins`` cells."""

    __slots__ = ("T", "O", "deadline_s", "count", "tokens", "arr_count", "arr_tokens", "_heaps", "_inq", "_prev_tokens")

    def __init__(self, n_tiers: int, n_origins: int, deadline_s) -> None:
        self.T, self.O = int(n_tiers), int(n_origins)
        n = self.T * self.O
        self.deadline_s = [float(d) for d in deadline_s]
        if len(self.deadline_s) != self.T:
            raise ValueError("deadline_s must have one entry per tier")
        self.count = [0] * n
        self.tokens = [0.0] * n
        self.arr_count = [0] * n
        self.arr_tokens = [0.0] * n
        self._heaps: list[list] = [[] for _ in range(n)]
        self._inq: dict[Hashable, tuple[int, float]] = {}
        self._prev_tokens = np.zeros((self.T, self.O))

    def arrive(self, tier: int, origin: int, tokens: float) -> None:
        """Count a first arrival (not a re-queue) for the arrival statistics."""
        c = tier * self.O + origin
        self.arr_count[c] += 1
        self.arr_tokens[c] += tokens

    def enter(self, key: Hashable, tier: int, origin: int, tokens: float, arrival_s: float) -> None:
        """``key`` joins the queue of (tier, origin); entering twice is an error."""
        if key in self._inq:
            raise KeyError(f"{key!r} is already queued")
        c = tier * self.O + origin
        self._inq[key] = (c, tokens)
        self.count[c] += 1
        self.tokens[c] += tokens
        heapq.heappush(self._heaps[c], (arrival_s, key))

    def leave(self, key: Hashable) -> bool:
        """``key`` leaves its queue; returns False if it was not queued."""
        v = self._inq.pop(key, None)
        if v is None:
            return False
        c, tok = v
        self.count[c] -= 1
        self.tokens[c] -= tok
        if self.count[c] == 0:
            self.tokens[c] = 0.0  # no drift from float sums
            self._heaps[c].clear()
        return True

    def __contains__(self, key: Hashable) -> bool:
        return key in self._inq

    def __len__(self) -> int:
        return len(self._inq)

    def oldest_arrival(self, tier: int, origin: int) -> float:
        """Earliest arrival among the queued calls of the cell (+inf when empty)."""
        c = tier * self.O + origin
        h = self._heaps[c]
        inq = self._inq
        while h:
            a, key = h[0]
            v = inq.get(key)
            if v is not None and v[0] == c:
                return a
            heapq.heappop(h)
        return float("inf")

    def snapshot(self, t_s: float, step_s: float, *, reset_arrivals: bool = True) -> QueueState:
        """The :class:`QueueState` at ``t_s``; resets the arrival counters and the trend base."""
        T, O = self.T, self.O
        req = np.array(self.count, dtype=np.float64).reshape(T, O)
        tok = np.array(self.tokens, dtype=np.float64).reshape(T, O)
        oldest = np.zeros((T, O))
        slack = np.full((T, O), np.inf)
        for k in range(T):
            for o in range(O):
                if self.count[k * O + o]:
                    a = self.oldest_arrival(k, o)
                    oldest[k, o] = t_s - a
                    slack[k, o] = a + self.deadline_s[k] - t_s
        qs = QueueState(
            backlog_requests=req, backlog_tokens=tok, oldest_wait_s=oldest, min_slack_s=slack,
            arrivals_requests=np.array(self.arr_count, dtype=np.float64).reshape(T, O),
            arrivals_tokens=np.array(self.arr_tokens, dtype=np.float64).reshape(T, O),
            trend_tokens_s=(tok - self._prev_tokens) / step_s,
        )
        if reset_arrivals:
            n = T * O
            self.arr_count = [0] * n
            self.arr_tokens = [0.0] * n
            self._prev_tokens = tok
        return qs


def empty_queue_state(n_tiers: int, n_origins: int) -> QueueState:
    z = np.zeros((n_tiers, n_origins))
    return QueueState(z, z.copy(), z.copy(), np.full_like(z, np.inf), z.copy(), z.copy(), z.copy())


def backlog_at(times_s, arrival_s, leave_s, tier, origin, tokens, n_tiers: int, n_origins: int) -> tuple[np.ndarray, np.ndarray]:
    """Backlog [time, tier, origin] (requests, tokens) from a log: call i is queued on
    [arrival_s[i], leave_s[i]) (leave NaN: never left). Matches :class:`VirtualQueues` for runs
    without spot re-queues (a re-queued call has two queued intervals; the log keeps the last)."""
    times = np.asarray(times_s, float)
    a = np.asarray(arrival_s, float)
    lv = np.where(np.isnan(np.asarray(leave_s, float)), np.inf, np.asarray(leave_s, float))
    tier = np.asarray(tier, np.int64)
    origin = np.asarray(origin, np.int64)
    tok = np.asarray(tokens, float)
    req = np.zeros((len(times), n_tiers, n_origins))
    tk = np.zeros_like(req)
    for k in range(n_tiers):
        for o in range(n_origins):
            m = (tier == k) & (origin == o)
            if not m.any():
                continue
            am, lm, tm = a[m], lv[m], tok[m]
            ia, il = np.argsort(am, kind="stable"), np.argsort(lm, kind="stable")
            ca = np.concatenate([[0.0], np.cumsum(tm[ia])])
            cl = np.concatenate([[0.0], np.cumsum(tm[il])])
            na = np.searchsorted(am[ia], times, side="right")  # arrived by t
            nl = np.searchsorted(lm[il], times, side="right")  # left by t (leave ≥ arrival)
            req[:, k, o] = na - nl
            tk[:, k, o] = ca[na] - cl[nl]
    return req, tk
