"""Learned methods of ``dagsched`` (kind ``learned``): UCB-COMA, COMA, MAPPO and MADDPG policies, run with NumPy.

Each method loads a policy file — by default the shipped one (``edgeopt/policies/dagsched/<method>-<preset>.npz``)
trained with the instance's gamma, else the ``paper`` one; ``policy=PATH`` for another — and lets every job's
agent place its sub-tasks through the decision process (``edgeopt.systems``), greedily: each agent takes its
most probable (sub-task, server) pair, so a run is deterministic. ``sample=true`` samples from the policy
instead (seeded). ``episodes=N`` trains a fresh policy first (needs the ``learn`` extra: JAX) on the
instance's own generator family (its ``meta`` preset, size and options; training seeds never meet evaluation
seeds), seeded by ``train_seed`` (default: the run's seed): an experiment row that trains, then is evaluated.
"""
from __future__ import annotations

import dataclasses
import functools
import tempfile
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import AfterValidator

from edgeopt.learn import ALGORITHMS, nets
from edgeopt.limits import Count, Seed
from edgeopt.learn import policy as policy_file
from edgeopt.model import InputError
from edgeopt.problems.dagsched import Instance
from edgeopt.registry import NotApplicable, method
from edgeopt.result import Outcome
from edgeopt.systems.dagsched import DecisionProcess, Reward

SHIPPED = Path(__file__).resolve().parents[1] / "policies" / "dagsched"


@functools.lru_cache(maxsize=64)
def _load(path: str, mtime: float) -> policy_file.Policy:
    return policy_file.load(path, "dagsched")


def load(path: str | Path) -> policy_file.Policy:
    p = Path(path)
    return _load(str(p), p.stat().st_mtime if p.is_file() else 0.0)


def _policy_file(path: str) -> str:
    """A policy option checked with the other options, before anything runs (whether it fits the instance is the
    run's to say)."""
    try:
        load(path)
    except InputError as exc:
        raise ValueError(f"must be a dagsched policy file: {exc}") from None
    return path


PolicyFile = Annotated[str, AfterValidator(_policy_file)]


def shipped(algorithm: str, instance: Instance) -> Path:
    """The shipped policy of ``algorithm`` trained with the instance's gamma, else the paper preset's."""
    candidates = sorted(SHIPPED.glob(f"{algorithm}-*.npz"))
    for p in candidates:
        if load(p).header.get("trained_on", {}).get("gamma") == instance.data.gamma:
            return p
    paper = SHIPPED / f"{algorithm}-paper.npz"
    if not paper.is_file():
        raise InputError("policy", f"no shipped {algorithm} policy: train one (edgeopt train dagsched -m {algorithm}) "
                                   "and pass --option policy=PATH")
    return paper


def run(instance: Instance, pol: policy_file.Policy, seed: int = 0, sample: bool = False) -> Outcome:
    """Every job's agent places its sub-tasks as the policy's actor chooses; the referee gets the schedule."""
    reason = pol.layout.misfit(instance)
    if reason:
        raise NotApplicable(reason)
    process = DecisionProcess(pol.layout, len(instance.data.jobs), "objective")
    process.reset(instance)
    actor, rng = pol.actor, np.random.default_rng(seed)
    while not process.done:
        obs = process.observe_all()
        logp = nets.actor_logp(actor, obs, np)
        if sample:
            logp = logp + rng.gumbel(size=logp.shape)
        process.step({i: int(np.argmax(logp[i])) for i in process.live})
    return Outcome(process.solution(), claimed=float(process.disp.objective()),
                   extra={"algorithm": pol.header["algorithm"], "policy_preset": pol.header.get("preset"),
                          "policy_episodes": pol.header.get("episodes")})


def _register(algorithm: str) -> None:
    def learned(instance: Instance, *, seed: int = 0, time_limit: float | None = None, policy: PolicyFile | None = None,
                sample: bool = False, episodes: Count | None = None, train_seed: Seed | None = None,
                reward: Reward = "paper") -> Outcome:
        if episodes is not None:
            return _train_then_run(algorithm, instance, int(episodes), seed if train_seed is None else int(train_seed),
                                   reward, seed, sample)
        path = Path(policy) if policy is not None else shipped(algorithm, instance)
        pol = load(path)
        reason = pol.layout.misfit(instance)
        if reason and policy is not None:  # the user's file: their input does not fit (exit 2)
            raise InputError(f"{path}: header.layout", f"does not fit the instance: {reason}")
        return run(instance, pol, seed, bool(sample))

    learned.__doc__ = {
        "ucb-coma": "Liao et al.'s UCB-COMA: COMA trained with UCB action selection (a shipped policy, NumPy).",
        "coma": "COMA (counterfactual multi-agent policy gradients), the seed's baseline (a shipped policy).",
        "mappo": "MAPPO (centralised value, GAE, clipped ratio), the seed's baseline (a shipped policy).",
        "maddpg": "MADDPG with Gumbel-softmax actions, the seed's baseline (a shipped policy).",
    }[algorithm] + "\n\n" + (__doc__ or "")
    learned.__name__ = algorithm.replace("-", "_")
    method("dagsched", algorithm, "learned", applies=functools.partial(_misfit, algorithm))(learned)


def _misfit(algorithm: str, instance: Instance) -> str | None:
    """Servers, cloud or modalities no shipped policy knows (STG graphs: identical processors, no cloud). A job
    larger than the policy's is reported by the run itself (``policy=PATH`` may name a larger layout)."""
    try:
        layout = load(shipped(algorithm, instance)).layout
    except InputError as exc:
        return str(exc)
    return dataclasses.replace(layout, tasks=max(instance.data.jobs.sizes)).misfit(instance)


def _train_then_run(algorithm: str, instance: Instance, episodes: int, train_seed: int, reward: str, seed: int,
                    sample: bool) -> Outcome:
    """An experiment's training row: a policy trained on the instance's generator family, then run on it."""
    from edgeopt.learn.train import train

    meta = instance.meta or {}
    if meta.get("generator") != "edgeopt.problems.dagsched.generate":
        raise InputError("episodes", "trains on the instance's generator family: the instance must come from "
                                     "the dagsched generator (meta.generator)")
    options = dict(meta.get("options") or {})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{algorithm}.npz"
        rows = train("dagsched", algorithm, preset=meta.get("preset"), size=meta.get("size"),
                     options={**options, "reward": reward}, episodes=episodes, seed=train_seed, out=out)
        result = run(instance, policy_file.load(out, "dagsched"), seed, sample)
    result.extra.update({"train_episodes": episodes, "train_seed": train_seed, "train_wall_s": rows[-1]["wall_s"],
                         "train_reward_last50": float(np.mean([r["reward"] for r in rows[-50:]]))})
    return result


for _name in ALGORITHMS:
    _register(_name)
