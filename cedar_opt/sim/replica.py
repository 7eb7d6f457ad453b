"""One serving replica: continuous batching with serialised prefill and a local FIFO."""

from __future__ import annotations

from collections import deque

STARTING, READY, DRAINING, STOPPED = 0, 1, 2, 3
STATE_NAMES = ("starting", "ready", "draining", "stopped")


class Replica:
    """A model instance of pool ``pool``. Plain slots: the event loop touches these directly.

    ``active`` sequences are in the batch (≤ ``max_batch``); ``fifo`` holds admitted-to-replica
    calls waiting for a slot (``n_fifo`` counts the live ones; the deque may hold stale ids).
    ``prefill_free_s`` is when the replica's prefill engine is next free (prefill is serialised).
    ``seq_int`` is ∫ active dt since creation (for the per-call realised batch size).
    """

    __slots__ = ("rid", "pool", "region", "state", "notice", "active", "fifo", "n_fifo", "batch",
                 "prefill_free_s", "prefill_tok_s", "itl1", "itl_slope", "max_batch", "gpus",
                 "ready_at_s", "seq_int", "last_t")

    def __init__(self, rid: int, pool: int, region: int, prefill_tok_s: float, itl1: float, itl_slope: float,
                 max_batch: int, gpus: int, ready_at_s: float, t_s: float) -> None:
        self.rid = rid
        self.pool = pool
        self.region = region
        self.state = STARTING
        self.notice = False
        self.active = 0
        self.fifo: deque[int] = deque()
        self.n_fifo = 0
        self.batch: set[int] = set()
        self.prefill_free_s = t_s
        self.prefill_tok_s = prefill_tok_s
        self.itl1 = itl1
        self.itl_slope = itl_slope
        self.max_batch = max_batch
        self.gpus = gpus
        self.ready_at_s = ready_at_s
        self.seq_int = 0.0
        self.last_t = t_s

    def __repr__(self) -> str:  # pragma: no cover
        return f"Replica({self.rid}, pool={self.pool}, {STATE_NAMES[self.state]}, active={self.active}, fifo={self.n_fifo})"
