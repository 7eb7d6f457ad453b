"""Every policy by name. ``run``, ``compare`` and ``sweep`` construct policies only through here."""

from __future__ import annotations

from typing import Callable

from cedar_opt.errors import CedarInputError
from cedar_opt.interface import Policy


def _cedar(name: str, **switches) -> Callable[[], Policy]:
    def make() -> Policy:
        from cedar_opt.control import CedarPolicy

        return CedarPolicy(name, **switches)

    return make


def _baseline(fn_name: str) -> Callable[[], Policy]:
    def make() -> Policy:
        from cedar_opt.policies import baselines

        return getattr(baselines, fn_name)()

    return make


_REGISTRY: dict[str, tuple[Callable[[], Policy], str]] = {
    "cedar": (_cedar("cedar"), "the full CEDAR controller (receding-horizon MIP over queues, cost, marginal carbon)"),
    "performance_only": (_baseline("performance_only"), "latency first: on-demand H100, largest model, lowest expected TTFT, utilisation autoscaler"),
    "round_robin": (_baseline("round_robin"), "requests cycled over live replicas regardless of region and tier; same autoscaler"),
    "least_connections": (_baseline("least_connections"), "each request to the replica with the fewest in-flight requests; same autoscaler"),
    "cedar_no_carbon": (_cedar("cedar_no_carbon", carbon_aware=False), "ablation: CEDAR with carbon weight 0"),
    "cedar_no_slack": (_cedar("cedar_no_slack", slack_tracking=False), "ablation: CEDAR without queue-level slack tracking or deferral"),
    "cedar_no_rightsizing": (_cedar("cedar_no_rightsizing", right_sizing=False), "ablation: CEDAR with every call on the largest model"),
}


def register_policy(name: str, factory: Callable[[], Policy], description: str = "") -> None:
    """Add a user policy (a zero-argument factory returning a Policy)."""
    _REGISTRY[name] = (factory, description)


def available_policies() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def describe_policy(name: str) -> str:
    return _REGISTRY[name][1]


def check_policy_names(names: list[str]) -> None:
    if not names:
        raise CedarInputError("no policy given", source="--policies")
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise CedarInputError(
            f"unknown policy {', '.join(repr(u) for u in unknown)}; known: {', '.join(_REGISTRY)}", source="--policies"
        )
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise CedarInputError(f"policy listed twice: {', '.join(sorted(dup))}", source="--policies")


def make_policy(name: str) -> Policy:
    check_policy_names([name])
    return _REGISTRY[name][0]()
