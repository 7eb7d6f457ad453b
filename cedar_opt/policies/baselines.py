"""Baselines, tuned as their users would run them (see docs/baselines.md).

All three share the utilisation-target autoscaler and the same fleet (on-demand, fastest GPU,
largest model, in every region); they differ only in how each request is dispatched — which is a
per-request mechanism of the simulator that the ``Action`` selects:

* ``performance_only``: each request to the replica with the lowest expected TTFT (network round
  trip + queue + uncached prefill): latency first, cost and carbon ignored.
* ``round_robin``: requests cycled over all live replicas, regardless of region and tier.
* ``least_connections``: each request to the replica with the fewest in-flight requests.
"""

from __future__ import annotations

import numpy as np

from cedar_opt.interface import Action, Observation, PolicyContext
from cedar_opt.policies.autoscaler import UtilisationAutoscaler


class AutoscaledDispatchPolicy:
    """The autoscaled H100 on-demand fleet with one per-request dispatch rule."""

    dispatch: str = "min_ttft"

    def __init__(self, name: str, dispatch: str):
        self.name = name
        self.dispatch = dispatch
        self.scaler: UtilisationAutoscaler | None = None

    def reset(self, context: PolicyContext) -> None:
        self.ctx = context
        self.scaler = UtilisationAutoscaler(context)
        nt, no, npool = len(context.tiers), len(context.regions), len(context.pools)
        routing = np.zeros((nt, no, npool))
        for o in range(no):
            routing[:, o, self.scaler.pool_of_region[self.scaler.home[o]]] = 1.0
        self.routing = routing
        self.floor = np.full(nt, context.default_model_rank, dtype=np.int64)

    def act(self, observation: Observation) -> Action:
        assert self.scaler is not None, "reset() first"
        return Action(
            replicas=self.scaler.desired(observation),
            routing=self.routing,
            dispatch=self.dispatch,  # type: ignore[arg-type]
            release_tok_s=np.full(len(self.ctx.tiers), np.inf),
            model_rank_floor=self.floor,
        )


def performance_only() -> AutoscaledDispatchPolicy:
    return AutoscaledDispatchPolicy("performance_only", "min_ttft")


def round_robin() -> AutoscaledDispatchPolicy:
    return AutoscaledDispatchPolicy("round_robin", "round_robin")


def least_connections() -> AutoscaledDispatchPolicy:
    return AutoscaledDispatchPolicy("least_connections", "least_connections")
