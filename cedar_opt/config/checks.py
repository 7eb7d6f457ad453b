"""Semantic checks of a scenario: small named functions run before anything is simulated.

Each returns a list of problems ``(field path, message)``; :func:`run_checks` raises one
:class:`CedarInputError` listing them all.
"""

from __future__ import annotations

from cedar_opt.config.schema import TIER_NAMES, Scenario
from cedar_opt.errors import CedarInputError
from cedar_opt.fleet.catalogue import Catalogue, load_catalogue

Problem = tuple[str, str]


def check_deadline_order(s: Scenario) -> list[Problem]:
    d = [s.workload.tiers[t].deadline_s for t in TIER_NAMES]
    if not (d[0] < d[1] < d[2]):
        return [("workload.tiers", f"deadlines must be ordered HIGH < MEDIUM < LOW, got {d[0]:g} s, {d[1]:g} s, {d[2]:g} s")]
    return []


def check_catalogue_references(s: Scenario, cat: Catalogue) -> list[Problem]:
    out: list[Problem] = []
    for i, r in enumerate(s.fleet.regions):
        if r not in cat.regions:
            out.append((f"fleet.regions[{i}]", f"unknown region {r!r}; the catalogue has {', '.join(sorted(cat.regions))}"))
    for i, g in enumerate(s.fleet.gpus):
        if g not in cat.gpus:
            out.append((f"fleet.gpus[{i}]", f"unknown GPU {g!r}; the catalogue has {', '.join(sorted(cat.gpus))}"))
    for i, m in enumerate(s.fleet.models):
        if m not in cat.models:
            out.append((f"fleet.models[{i}]", f"unknown model {m!r}; the catalogue has {', '.join(sorted(cat.models))}"))
    for t, spec in s.workload.tiers.items():
        if spec.min_model is not None and spec.min_model not in s.fleet.models:
            out.append((f"workload.tiers.{t}.min_model", f"{spec.min_model!r} is not among fleet.models"))
    if s.autoscaler.gpu not in s.fleet.gpus:
        out.append(("autoscaler.gpu", f"{s.autoscaler.gpu!r} is not among fleet.gpus"))
    if s.workload.origins is not None:
        for r in s.workload.origins:
            if r not in s.fleet.regions:
                out.append((f"workload.origins.{r}", "origin region is not among fleet.regions"))
        tot = sum(s.workload.origins.values())
        if any(v < 0 for v in s.workload.origins.values()) or abs(tot - 1) > 1e-6:
            out.append(("workload.origins", f"shares must be ≥ 0 and sum to 1, they sum to {tot:g}"))
    if len(set(s.fleet.regions)) != len(s.fleet.regions):
        out.append(("fleet.regions", "a region is listed twice"))
    return out


def check_fleet_nonempty(s: Scenario, cat: Catalogue) -> list[Problem]:
    from cedar_opt.fleet.pools import build_pools

    pools, _ = build_pools(s, cat)
    if not pools:
        return [("fleet", "no (region, GPU, purchase, model) combination is offered by the catalogue")]
    big = max(s.fleet.models, key=lambda m: cat.models[m].params_b)
    if not any(p.model == big and p.purchase == "on_demand" for p in pools) and "on_demand" in s.fleet.purchase:
        return [("fleet", f"the largest model {big!r} has no on-demand pool")]
    return []


def check_horizon_covers_cold_start(s: Scenario, cat: Catalogue) -> list[Problem]:
    longest = max(
        (p.cold_start_s for p in cat.profiles if p.model in s.fleet.models and p.gpu in s.fleet.gpus),
        default=0.0,
    )
    if s.controller.horizon_s < longest:
        return [("controller.horizon", f"covers {s.controller.horizon_s:g} s, shorter than the longest cold start ({longest:g} s)")]
    if s.controller.horizon[0].length_s != s.step_s:
        return [("controller.horizon[0].length_s", f"the first block must equal step_s ({s.step_s:g} s), got {s.controller.horizon[0].length_s:g}")]
    return []


def run_checks(s: Scenario, source: str | None = None, catalogue: Catalogue | None = None) -> Catalogue:
    """Run every check; raise one error listing every problem. Returns the catalogue used."""
    cat = catalogue or load_catalogue(s.fleet.catalogue)
    problems = check_deadline_order(s) + check_catalogue_references(s, cat)
    if not problems:
        problems += check_fleet_nonempty(s, cat) + check_horizon_covers_cold_start(s, cat)
    if problems:
        if len(problems) == 1:
            raise CedarInputError(problems[0][1], source=source, where=problems[0][0])
        msg = "\n  " + "\n  ".join(f"{w}: {m}" for w, m in problems)
        raise CedarInputError(msg, source=source)
    return cat
