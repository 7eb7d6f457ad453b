"""Request-level simulator: replicas, continuous batching, KV affinity, cold start, spot preemption."""

from cedar_opt.sim.context import make_context
from cedar_opt.sim.engine import Simulator
from cedar_opt.sim.result import SimResult

__all__ = ["Simulator", "SimResult", "make_context"]
