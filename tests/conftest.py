"""Shared test settings: hypothesis profiles and small helpers."""

import os

from hypothesis import HealthCheck, settings

# "ci" (default): derandomised, no deadline, enough examples for the properties' bar.
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
# "deep": for longer local runs (HYPOTHESIS_PROFILE=deep).
settings.register_profile("deep", derandomize=False, deadline=None, max_examples=2000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
