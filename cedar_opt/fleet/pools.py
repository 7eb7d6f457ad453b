"""Pools of a scenario's fleet: (region, GPU, purchase, model) with per-replica figures.

One function turns a scenario and a catalogue into the pool list and the aligned arrays of
:class:`cedar_opt.interface.PoolStatic`, so the simulator and every policy see the same numbers.
A pool exists only where the catalogue has a profile for (model, GPU) and an offer for
(region, GPU) at that purchase option.
"""

from __future__ import annotations

import numpy as np

from cedar_opt.config.schema import Scenario
from cedar_opt.fleet.catalogue import Catalogue
from cedar_opt.interface import Pool, PoolStatic


def build_pools(scenario: Scenario, catalogue: Catalogue) -> tuple[tuple[Pool, ...], PoolStatic]:
    f = scenario.fleet
    pools: list[Pool] = []
    rows: list[dict[str, float]] = []
    groups: dict[tuple[str, str, str], int] = {}
    for region in f.regions:
        for gpu in f.gpus:
            offer = catalogue.offer(region, gpu)
            if offer is None:
                continue
            g = catalogue.gpus[gpu]
            for purchase in f.purchase:
                inst_price = offer.on_demand_usd_per_h if purchase == "on_demand" else offer.spot_usd_per_h
                if inst_price is None:
                    continue
                for model in f.models:
                    prof = catalogue.profile(model, gpu)
                    if prof is None:
                        continue
                    gkey = (region, gpu, purchase)
                    quota = f.quota_gpus if purchase == "on_demand" or f.spot_quota_gpus is None else f.spot_quota_gpus
                    groups.setdefault(gkey, len(groups))
                    pools.append(Pool(region=region, gpu=gpu, purchase=purchase, model=model))
                    share = prof.gpus_per_replica / g.gpus_per_instance
                    rows.append(
                        dict(
                            price_usd_per_h=inst_price * share,
                            capacity_tok_s=prof.decode_tok_s,
                            prefill_tok_s=prof.prefill_tok_s,
                            itl_s=prof.itl_s_batch1,
                            max_batch=prof.max_batch,
                            idle_power_w=prof.idle_power_w,
                            busy_power_w=prof.busy_power_w,
                            cold_start_s=prof.cold_start_s,
                            spot_hazard_per_h=catalogue.spot_hazard_per_h(region, gpu) if purchase == "spot" else 0.0,
                            model_rank=catalogue.model_rank(model),
                            quota_gpus=quota,
                            quota_group=groups[gkey],
                            gpus_per_replica=prof.gpus_per_replica,
                            max_replicas=quota // prof.gpus_per_replica,
                            power_exponent=prof.power_batch_exponent,
                        )
                    )
    if not pools:
        static = PoolStatic(**{k: np.zeros(0) for k in PoolStatic.__dataclass_fields__})
        return (), static
    cols = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    for k in ("max_batch", "model_rank", "quota_gpus", "quota_group", "gpus_per_replica", "max_replicas"):
        cols[k] = cols[k].astype(np.int64)
    return tuple(pools), PoolStatic(**cols)
