"""The static world of a run, as a policy sees it: :func:`make_context`."""

from __future__ import annotations

import numpy as np

from cedar_opt.config.schema import TIER_NAMES, Scenario
from cedar_opt.errors import CedarInputError
from cedar_opt.fleet.catalogue import Catalogue
from cedar_opt.fleet.pools import build_pools
from cedar_opt.interface import PolicyContext


def rtt_matrix(scenario: Scenario, catalogue: Catalogue) -> np.ndarray:
    """[origin, region] round trip (s) from the catalogue's ``rtt_ms``."""
    regions = scenario.fleet.regions
    out = np.zeros((len(regions), len(regions)))
    for i, o in enumerate(regions):
        if o not in catalogue.regions:
            raise CedarInputError(f"unknown region {o!r}", where=f"fleet.regions[{i}]")
        for j, r in enumerate(regions):
            out[i, j] = catalogue.regions[o].rtt_ms[r] / 1000.0
    return out


def signal_columns(scenario: Scenario, signals) -> np.ndarray:
    """Column of each fleet region in ``signals`` (a :class:`cedar_opt.data.signalset.SignalSet`)."""
    cols = []
    for i, r in enumerate(scenario.fleet.regions):
        if r not in signals.regions:
            raise CedarInputError(f"carbon signals have no series for region {r!r} (they cover {', '.join(signals.regions)})",
                                  where=f"fleet.regions[{i}]")
        cols.append(signals.regions.index(r))
    return np.asarray(cols, np.int64)


def make_context(scenario: Scenario, catalogue: Catalogue, signals, workload) -> PolicyContext:
    """The :class:`PolicyContext` a policy is reset with for this scenario and workload."""
    pools, static = build_pools(scenario, catalogue)
    w = scenario.workload
    ranks = [catalogue.model_rank(m) for m in scenario.fleet.models]
    min_rank = np.array([catalogue.model_rank(w.tiers[t].min_model) if w.tiers[t].min_model else min(ranks) for t in TIER_NAMES], np.int64)
    if signals is not None:
        signal_columns(scenario, signals)
    return PolicyContext(
        tiers=TIER_NAMES,
        regions=tuple(scenario.fleet.regions),
        pools=pools,
        static=static,
        step_s=scenario.step_s,
        duration_s=scenario.duration_s,
        seed=scenario.seed,
        deadline_s=np.array([w.tiers[t].deadline_s for t in TIER_NAMES], float),
        min_model_rank=min_rank,
        default_model_rank=int(max(ranks)),
        rtt_s=rtt_matrix(scenario, catalogue),
        pue=scenario.fleet.pue,
        signals=signals,
        workload_hint=workload.hint() if workload is not None else None,
        config=scenario,
    )
