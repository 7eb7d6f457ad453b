"""Small builders for simulator tests: hand-made workloads, tiny scenarios, trivial policies."""

from __future__ import annotations

import numpy as np

from cedar_opt.config.schema import Scenario
from cedar_opt.data.signalset import SignalSet
from cedar_opt.fleet.catalogue import load_catalogue
from cedar_opt.interface import Action
from cedar_opt.workload import Workload

CAT = load_catalogue()
TIERS = ("HIGH", "MEDIUM", "LOW")


def tiny_scenario(**kw) -> Scenario:
    """One region, H100, Llama 8B, on-demand: a single pool."""
    doc = {"duration_s": 60, "drain_s": 0, "step_s": 10, "seed": 1,
           "workload": {"trace": "synthetic", "rate_shape": "constant"},
           "fleet": {"regions": ["us-east-1"], "gpus": ["H100"], "models": ["llama-3.1-8b"], "purchase": ["on_demand"],
                     "initial_replicas": 1}}
    for k, v in kw.items():
        if isinstance(v, dict) and isinstance(doc.get(k), dict):
            doc[k] = {**doc[k], **v}
        else:
            doc[k] = v
    return Scenario.model_validate(doc)


def hand_workload(scenario: Scenario, sessions: list[tuple[float, int, list[tuple[int, int, int, float]]]],
                  est_factor: float = 1.0, min_rank: int = 0) -> Workload:
    """``sessions``: (start_s, origin, [(tier, prompt, output, think_before), ...])."""
    starts = np.array([s[0] for s in sessions], float)
    order = np.argsort(starts, kind="stable")
    sessions = [sessions[i] for i in order]
    calls = [c for s in sessions for c in s[2]]
    off = np.concatenate([[0], np.cumsum([len(s[2]) for s in sessions])]).astype(np.int64)
    out = np.array([c[2] for c in calls], np.int64)
    return Workload(
        tiers=TIERS, origins=tuple(scenario.fleet.regions),
        deadline_s=np.array([scenario.workload.tiers[t].deadline_s for t in TIERS]),
        session_start_s=np.array([s[0] for s in sessions], float), session_origin=np.array([s[1] for s in sessions], np.int64),
        call_offset=off, tier=np.array([c[0] for c in calls], np.int8), prompt_tokens=np.array([c[1] for c in calls], np.int64),
        output_tokens=out, est_output_tokens=np.maximum(1, np.round(out * est_factor)).astype(np.int64),
        min_model_rank=np.full(len(calls), min_rank, np.int64), think_s=np.array([c[3] for c in calls], float), seed=0,
    )


def flat_signals(scenario: Scenario, marginal: float = 400.0, average: float = 300.0) -> SignalSet:
    n = len(scenario.fleet.regions)
    return SignalSet.constant(tuple(scenario.fleet.regions), [marginal] * n, [average] * n,
                              scenario.duration_s + scenario.drain_s + 600, resolution_s=300.0)


class FixedPolicy:
    """Constant targets and routing (default: ``replicas`` in every pool, uniform routing)."""

    name = "fixed"

    def __init__(self, replicas=1, routing=None, dispatch="weighted", release=None, floor=None, urgent=2.0):
        self.replicas, self.routing_arg, self.dispatch = replicas, routing, dispatch
        self.release, self.floor, self.urgent = release, floor, urgent
        self.resets = 0
        self.observations = []

    def reset(self, ctx) -> None:
        self.resets += 1
        self.ctx = ctx
        P = len(ctx.pools)
        self.rep = np.broadcast_to(np.asarray(self.replicas), (P,)).astype(float).copy()
        if self.routing_arg is None:
            self.rt = np.full((len(ctx.tiers), len(ctx.regions), P), 1.0 / P)
        else:
            self.rt = np.asarray(self.routing_arg, float)

    def act(self, obs) -> Action:
        self.observations.append(obs)
        return Action(replicas=self.rep, routing=self.rt, dispatch=self.dispatch, release_tok_s=self.release,
                      model_rank_floor=self.floor, urgent_slack_s=self.urgent, info={"step": obs.step})


class RandomPolicy(FixedPolicy):
    """Random replica targets each step (exercises starts, stops, drains, revivals)."""

    name = "random"

    def __init__(self, seed=0, max_rep=4, dispatch="weighted", floor=None, release=None):
        super().__init__(dispatch=dispatch, floor=floor, release=release)
        self.rng = np.random.default_rng(seed)
        self.max_rep = max_rep

    def act(self, obs) -> Action:
        P = len(self.ctx.pools)
        rep = self.rng.integers(0, self.max_rep + 1, size=P).astype(float)
        rt = self.rng.random((len(self.ctx.tiers), len(self.ctx.regions), P))
        rt /= rt.sum(-1, keepdims=True)
        return Action(replicas=rep, routing=rt, dispatch=self.dispatch, model_rank_floor=self.floor, release_tok_s=self.release)
