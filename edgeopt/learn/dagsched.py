"""Learned methods of ``dagsched`` (kind ``learned``): UCB-COMA, COMA, MAPPO and MADDPG policies, run with NumPy.

Each method runs a policy file as ``edgeopt.learn.methods`` describes; the shipped policy it takes by default is
the one trained with the instance's gamma (``paper`` 0.5, ``edge-share`` 0.03), else the ``paper`` one. Every
job's agent places its sub-tasks through the decision process (``edgeopt.systems.dagsched``), taking its most
probable (sub-task, server) pair. A training row (``episodes=N``) trains with ``reward`` (paper or objective).
"""
from __future__ import annotations

import dataclasses
import functools

from edgeopt.learn import methods
from edgeopt.limits import Count, Seed
from edgeopt.model import InputError
from edgeopt.problems.dagsched import Instance
from edgeopt.registry import method
from edgeopt.result import Outcome
from edgeopt.systems.dagsched import ALGORITHMS, Reward

PolicyFile = methods.policy_option("dagsched")


def _same_gamma(header: dict, instance: Instance) -> bool:
    return header.get("trained_on", {}).get("gamma") == instance.data.gamma


def _register(algorithm: str) -> None:
    def learned(instance: Instance, *, seed: int = 0, time_limit: float | None = None, policy: PolicyFile | None = None,
                sample: bool = False, episodes: Count | None = None, train_seed: Seed | None = None,
                reward: Reward = "paper") -> Outcome:
        return methods.solve("dagsched", algorithm, instance, seed=seed, policy=policy, sample=sample,
                             episodes=episodes, train_seed=train_seed, train_options={"reward": reward},
                             match=_same_gamma)

    learned.__doc__ = {
        "ucb-coma": "Liao et al.'s UCB-COMA: COMA trained with UCB action selection (a shipped policy, NumPy).",
        "coma": "COMA (counterfactual multi-agent policy gradients), the seed's baseline (a shipped policy).",
        "mappo": "MAPPO (centralised value, GAE, clipped ratio), the seed's baseline (a shipped policy).",
        "maddpg": "MADDPG with Gumbel-softmax actions, the seed's baseline (a shipped policy).",
    }[algorithm] + "\n\n" + (__doc__ or "")
    learned.__name__ = algorithm.replace("-", "_")
    method("dagsched", algorithm, "learned", applies=functools.partial(_misfit, algorithm))(learned)


def _misfit(algorithm: str, instance: Instance, policy: str | None = None, **_) -> str | None:
    """Servers, cloud or modalities no shipped policy knows (STG graphs: identical processors, no cloud). A job
    larger than the policy's, and the user's policy file, are the run's to report."""
    if policy is not None:
        return None
    try:
        layout = methods.load(methods.shipped("dagsched", algorithm, instance, _same_gamma), "dagsched").layout
    except InputError as exc:
        return str(exc)
    return dataclasses.replace(layout, tasks=max(instance.data.jobs.sizes)).misfit(instance)


for _name in ALGORITHMS:
    _register(_name)
