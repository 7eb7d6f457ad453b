"""Baselines and ablations behind the Policy protocol, with a registry."""

from cedar_opt.policies.registry import available_policies, make_policy, register_policy

__all__ = ["available_policies", "make_policy", "register_policy"]
