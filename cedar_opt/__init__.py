"""cedar_opt: model, run and stress-test CEDAR, a carbon-, cost- and latency-aware controller
for agentic LLM serving."""

from cedar_opt.config import Scenario, load_scenario

__version__ = "0.1.0"

__all__ = ["Scenario", "load_scenario", "__version__"]
