"""Learned methods of ``vcache`` (kind ``learned``): VELO's DLRS and its MAPPO baseline, run with NumPy.

Each method runs a policy file as ``edgeopt.learn.methods`` describes (shipped: ``edgeopt/policies/vcache/
<algorithm>-velo.npz``, trained on the velo preset's simulation): every edge's agent routes its requests through the
decision process (``edgeopt.systems.vcache``), taking its most probable route; a route another request just filled
overflows as the baselines do, so every answer is within the capacities. The network reads one row per route, so a
policy runs on any number of edges (how well beyond the three it was trained on is not measured).
"""
from __future__ import annotations

import functools

from edgeopt.learn import methods
from edgeopt.limits import Count, Seed
from edgeopt.model import InputError
from edgeopt.problems.vcache import Instance
from edgeopt.registry import method
from edgeopt.result import Outcome

PolicyFile = methods.policy_option("vcache")
METHODS = {
    "dlrs": "DLRS: a diffusion policy (10 denoising steps) trained by MAPPO with the per-interval optimum's "
            "demonstrations (a shipped policy, NumPy).",
    "mappo": "MAPPO (centralised value, GAE, clipped ratio), VELO's baseline (a shipped policy, NumPy).",
}


def _any(header: dict, instance: Instance) -> bool:
    return True


def _misfit(algorithm: str, instance: Instance, policy: str | None = None, **_) -> str | None:
    """No shipped policy (the user's policy file: the run says)."""
    if policy is not None:
        return None
    try:
        methods.shipped("vcache", algorithm, instance, _any)
    except InputError as exc:
        return str(exc)
    return None


def _register(algorithm: str, doc: str) -> None:
    def learned(instance: Instance, *, seed: int = 0, time_limit: float | None = None, policy: PolicyFile | None = None,
                sample: bool = False, episodes: Count | None = None, train_seed: Seed | None = None) -> Outcome:
        return methods.solve("vcache", algorithm, instance, seed=seed, policy=policy, sample=sample,
                             episodes=episodes, train_seed=train_seed, match=_any)

    learned.__doc__ = doc + "\n\n" + (__doc__ or "")
    learned.__name__ = algorithm
    method("vcache", algorithm, "learned", applies=functools.partial(_misfit, algorithm))(learned)


for _name, _doc in METHODS.items():
    _register(_name, _doc)
