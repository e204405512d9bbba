"""Learned methods of ``offload`` (kind ``learned``): TS-MITO's learned stage one and the paper's baselines, with
NumPy.

Each method runs a policy file as ``edgeopt.learn.methods`` describes (shipped: ``edgeopt/policies/offload/
<algorithm>-paper.npz``, trained on the paper preset's simulation): every user's agent picks ⟨edge, steps, cloud
steps⟩ through the decision process (``edgeopt.systems.offload``), then stage two — ``split=kkt`` (default: TS-MITO's
closed-form SM splits and Newton-KKT radio), ``equal`` or ``proportional`` — sets the SMs, bandwidth and power.
``ts-mito-mappo`` is the paper's TS-MITO (its MAPPO policy, then stage two); ``ippo``, ``vdn`` and ``qmix`` replace
MAPPO by the paper's baselines. The heuristic ``ts-mito`` (a coordinate search, no training) is another method.

MAPPO's and IPPO's users sample their actions from the policy by default (``sample=true``, seeded by the run's
seed, so a run repeats): the policy they were trained as is stochastic, and its most probable actions coincide
for users who see alike — every user on the same edge with the same steps, which overloads that edge (measured
on the paper preset: README). ``sample=false`` takes the most probable action. VDN and QMIX act greedily on their
values (their trained policy, less the exploration).
"""
from __future__ import annotations

import functools

from edgeopt.learn import methods
from edgeopt.limits import Count, Seed
from edgeopt.model import InputError
from edgeopt.problems.offload import Instance
from edgeopt.registry import method
from edgeopt.result import Outcome
from edgeopt.systems.offload import Split

PolicyFile = methods.policy_option("offload")
METHODS = {  # method -> (the algorithm whose policy it runs, whether it samples by default, what it is)
    "ts-mito-mappo": ("mappo", True, "TS-MITO: MAPPO's stage one (a shipped policy, NumPy), then stage two."),
    "ippo": ("ippo", True, "IPPO's stage one (independent learners, local values; a shipped policy), then stage two."),
    "vdn": ("vdn", False, "VDN's stage one (summed agent values; a shipped policy), then stage two."),
    "qmix": ("qmix", False, "QMIX's stage one (monotone mixing of agent values; a shipped policy), then stage two."),
}


def _misfit(algorithm: str, instance: Instance, policy: str | None = None, **_) -> str | None:
    """Edges or step ranges the shipped policy cannot choose for (the user's policy file: the run says)."""
    if policy is not None:
        return None
    try:
        layout = methods.load(methods.shipped("offload", algorithm, instance), "offload").layout
    except InputError as exc:
        return str(exc)
    return layout.misfit(instance)


def _register(name: str, algorithm: str, sampled: bool, doc: str) -> None:
    def learned(instance: Instance, *, seed: int = 0, time_limit: float | None = None, policy: PolicyFile | None = None,
                sample: bool = sampled, episodes: Count | None = None, train_seed: Seed | None = None,
                split: Split = "kkt") -> Outcome:
        return methods.solve("offload", algorithm, instance, seed=seed, policy=policy, sample=sample,
                             episodes=episodes, train_seed=train_seed, process_options={"split": split})

    learned.__doc__ = doc + "\n\n" + (__doc__ or "")
    learned.__name__ = name.replace("-", "_")
    method("offload", name, "learned", applies=functools.partial(_misfit, algorithm))(learned)


for _name, (_algorithm, _sampled, _doc) in METHODS.items():
    _register(_name, _algorithm, _sampled, _doc)
