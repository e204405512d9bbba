"""What every learned method does (kind ``learned``), whatever its problem: find and check its policy file, let the
problem's agents act through the decision process (``edgeopt/systems/<problem>.py``) with NumPy, or train a
fresh policy first (an experiment's training row). ``edgeopt.learn.<problem>`` registers its methods with these.

A method loads a policy file — by default a shipped one (``edgeopt/policies/<problem>/<algorithm>-<preset>.npz``,
chosen by the problem's ``match``, else the ``paper`` one; ``policy=PATH`` for another) — and every agent takes
its greedy action (the most probable; for value-based policies, VDN and QMIX, the largest value), so a run is
deterministic. ``sample=true`` samples instead (seeded by the run's seed, so a run repeats; values are read as
logits; offload's MAPPO and IPPO sample by default, ``edgeopt.learn.offload``). ``episodes=N`` trains a
fresh policy first (needs the ``learn`` extra: JAX) on the instance's own generator family (its ``meta`` preset,
size and options; training seeds never meet evaluation seeds), seeded by ``train_seed`` (default: the run's
seed), then runs it.
"""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Annotated, Callable

import numpy as np
from pydantic import AfterValidator

from edgeopt import registry
from edgeopt.learn import policy as policy_file
from edgeopt.model import InputError
from edgeopt.registry import NotApplicable
from edgeopt.result import Outcome

SHIPPED = Path(__file__).resolve().parents[1] / "policies"


@functools.lru_cache(maxsize=64)
def _load(path: str, mtime: float, problem: str) -> policy_file.Policy:
    return policy_file.load(path, problem)


def load(path: str | Path, problem: str) -> policy_file.Policy:
    """A policy file, checked and cached (by path and modification time)."""
    p = Path(path)
    return _load(str(p), p.stat().st_mtime if p.is_file() else 0.0, problem)


def policy_option(problem: str):
    """The annotation of a method's ``policy`` option: a path checked with the other options, before anything runs
    (whether the policy fits the instance is the run's to say)."""

    def check(path: str) -> str:
        try:
            load(path, problem)
        except InputError as exc:
            raise ValueError(f"must be a {problem} policy file: {exc}") from None
        return path

    return Annotated[str, AfterValidator(check)]


def shipped(problem: str, algorithm: str, instance, match: Callable[[dict, object], bool] | None = None) -> Path:
    """The shipped policy of ``algorithm`` whose header ``match``es the instance, else the paper preset's."""
    if match is not None:
        for p in sorted((SHIPPED / problem).glob(f"{algorithm}-*.npz")):
            if match(load(p, problem).header, instance):
                return p
    paper = SHIPPED / problem / f"{algorithm}-paper.npz"
    if not paper.is_file():
        raise InputError("policy", f"no shipped {algorithm} policy: train one (edgeopt train {problem} -m {algorithm}) "
                                   "and pass --option policy=PATH")
    return paper


def run(instance, pol: policy_file.Policy, seed: int = 0, sample: bool = False, **process_options) -> Outcome:
    """Every agent acts as the policy chooses until the decision is complete; the referee gets it."""
    reason = pol.layout.misfit(instance)
    if reason:
        raise NotApplicable(reason)
    system = registry.decisions(pol.header["problem"])
    process = system.DecisionProcess.for_instance(pol.layout, instance, **process_options)
    process.reset(instance)
    net, actor, rng = pol.net, pol.actor, np.random.default_rng(seed)
    scores = net.q_table if pol.scores == "q" else net.table
    while not process.done:
        table = scores(actor, process.observe_all(), np)
        if sample:
            table = table + rng.gumbel(size=table.shape)
        process.step({i: int(np.argmax(table[i])) for i in process.live})
    return Outcome(process.solution(), claimed=process.claimed(),
                   extra={"algorithm": pol.header["algorithm"], "policy_preset": pol.header.get("preset"),
                          "policy_episodes": pol.header.get("episodes")})


def solve(problem: str, algorithm: str, instance, *, seed: int, policy: str | None, sample: bool,
          episodes: int | None, train_seed: int | None, train_options: dict | None = None,
          process_options: dict | None = None, match=None) -> Outcome:
    """The body of a learned method: the user's policy file, a shipped one, or one trained here (``episodes``)."""
    process_options = process_options or {}
    if episodes is not None:
        return train_then_run(problem, algorithm, instance, int(episodes), seed if train_seed is None else train_seed,
                              seed, sample, train_options or {}, process_options)
    path = Path(policy) if policy is not None else shipped(problem, algorithm, instance, match)
    pol = load(path, problem)
    reason = pol.layout.misfit(instance)
    if reason and policy is not None:  # the user's file: their input does not fit (exit 2)
        raise InputError(f"{path}: header.layout", f"does not fit the instance: {reason}")
    return run(instance, pol, seed, bool(sample), **process_options)


def train_then_run(problem: str, algorithm: str, instance, episodes: int, train_seed: int, seed: int, sample: bool,
                   train_options: dict, process_options: dict) -> Outcome:
    """An experiment's training row: a policy trained on the instance's generator family, then run on it."""
    from edgeopt.learn.train import train

    meta = instance.meta or {}
    if meta.get("generator") != f"edgeopt.problems.{problem}.generate":
        raise InputError("episodes", f"trains on the instance's generator family: the instance must come from "
                                     f"the {problem} generator (meta.generator)")
    options = dict(meta.get("options") or {})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{algorithm}.npz"
        rows = train(problem, algorithm, preset=meta.get("preset"), size=meta.get("size"),
                     options={**options, **train_options}, episodes=episodes, seed=train_seed, out=out)
        result = run(instance, policy_file.load(out, problem), seed, sample, **process_options)
    result.extra.update({"train_episodes": episodes, "train_seed": train_seed, "train_wall_s": rows[-1]["wall_s"],
                         "train_reward_last50": float(np.mean([r["reward"] for r in rows[-50:]]))})
    return result
