"""Online calibration of the work model from telemetry.

The plan prices a call of tier k on pool j at a[k, j] replica-seconds (mean uncached prefill +
decode at full batch). Real calls can cost more — a session whose cached context was evicted or
lives elsewhere re-prefills all of it — and a plan that under-counts work under-provisions, which
causes more misses: a vicious circle. Each step compares, per model, the work the replicas
actually did (``Observation.work_s``: prefill engine time + decode slot-time / max_batch) with the
work the model assigns to the calls dispatched (Σ_k a[k, j]·dispatched[k, j]) and keeps an EWMA of
the ratio, clipped to [1, ``HI``]: telemetry only ever *raises* the planned work (the model stays
the planning floor, so low-load steps, where decode runs at small batches, cannot talk the plan
into thinner headroom). The controller multiplies tier k's demand by the factor of the model it
plans k on (its floor), which is the same as multiplying a[k, ·].
"""

from __future__ import annotations

import numpy as np

from cedar_opt.control.data import Static
from cedar_opt.interface import Observation

ALPHA = 0.2
"""EWMA weight of the newest step."""
HI = 4.0
"""Largest correction."""
MIN_PLANNED_S = 5.0
"""Steps whose dispatched work on a model is below this many replica-seconds are not informative."""


class WorkCalibration:
    def __init__(self, static: Static):
        self.st = static
        self.rank = None
        self.factor: dict[int, float] = {}

    def bind_ranks(self, model_rank: np.ndarray) -> None:
        self.rank = np.asarray(model_rank, dtype=int)
        self.factor = {int(m): 1.0 for m in np.unique(self.rank)}

    def observe(self, obs: Observation) -> None:
        if obs.work_s is None or obs.dispatched is None or self.rank is None:
            return
        work = np.asarray(obs.work_s, dtype=float)
        disp = np.asarray(obs.dispatched, dtype=float)
        if disp.shape != self.st.a.shape or work.shape != (self.st.J,):
            return
        planned = (self.st.a * disp).sum(axis=0)  # [j] replica-seconds
        for m in self.factor:
            sel = self.rank == m
            p, w = float(planned[sel].sum()), float(work[sel].sum())
            if p < MIN_PLANNED_S:
                continue
            ratio = min(max(w / p, 1.0), HI)
            self.factor[m] = (1.0 - ALPHA) * self.factor[m] + ALPHA * ratio

    def tier_factors(self) -> np.ndarray:
        """[tier] demand multiplier: the factor of the model rank the tier is planned on."""
        return np.array([self.factor.get(int(f), 1.0) for f in self.st.floor])
