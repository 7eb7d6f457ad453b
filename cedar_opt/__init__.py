"""cedar_opt: model, run and stress-test CEDAR, a carbon-, cost- and latency-aware controller
for agentic LLM serving.

The Python entry points mirror the CLI and touch no disk::

    s = cedar_opt.load_scenario("scenarios/smoke.yaml", ["controller.weights.carbon=2"])
    r = cedar_opt.run(s, "cedar")                 # RunResult: summary dict, by_tier, steps (xarray), requests (pandas)
    rs = cedar_opt.compare(s, ["cedar", "performance_only"])
"""

from __future__ import annotations

from cedar_opt.config import Scenario, load_scenario

__version__ = "0.1.0"


def run(scenario: Scenario, policy: str = "cedar"):
    """Replay ``scenario`` with one registered policy; see :func:`cedar_opt.experiments.runner.run_policy`."""
    from cedar_opt.experiments.runner import run_policy

    return run_policy(scenario, policy)


def compare(scenario: Scenario, policies: list[str], jobs: int = 1):
    """Replay ``scenario`` with several policies; returns their RunResults in order."""
    from cedar_opt.experiments.compare import compare as _compare

    return _compare(scenario, list(policies), jobs=jobs)


__all__ = ["Scenario", "load_scenario", "run", "compare", "__version__"]
