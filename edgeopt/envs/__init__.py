"""Standard RL environments over edgeopt's systems: PettingZoo (the papers' agents) and Gymnasium (one decision
at a time), with the referee's objective — and on request the proven optimum and the gap — in ``info``.

    env = edgeopt.envs.make("dagsched", preset="paper", size=5, seed=0, optimum=True)
    obs, infos = env.reset(seed=0)
    ...  # at the episode's end: infos[agent]["objective"], ["optimum"], ["gap"]

The environments are thin views of a problem's decision process (``edgeopt.systems``: plain NumPy, the same
partial schedule the heuristics build), so the reward pays what the referee computes and a policy trained here
runs in ``edgeopt solve`` without any of these libraries. This package is the only one that imports
pettingzoo and gymnasium (the ``learn`` extra).
"""
from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from edgeopt import io, registry
from edgeopt.model import InputError

try:
    import gymnasium
    from gymnasium import spaces
    from pettingzoo import ParallelEnv
except ImportError:  # pragma: no cover - the message is the point
    raise ImportError("edgeopt.envs needs the learn extra: pip install 'edgeopt[learn]'") from None

OPTIMA_CACHED = 4096
FEATURE_MAX = 1e9  # every feature is >= 0 (times, sizes, rates, flags)


_OPTIMA: dict[tuple, dict] = {}


def optimum(instance, method: str, time_limit: float = 60.0) -> dict:
    """The exact method's answer for ``instance``, computed once per instance (by content) and cached."""
    key = (instance_key(instance), method, float(time_limit))
    if key not in _OPTIMA:
        if len(_OPTIMA) >= OPTIMA_CACHED:
            _OPTIMA.pop(next(iter(_OPTIMA)))
        r = registry.problem(instance.problem).method(method).run(instance, seed=0, time_limit=time_limit)
        _OPTIMA[key] = {"optimum": r.objective if r.status == "optimal" else None, "optimum_status": r.status,
                        "best_found": r.objective, "bound": r.bound, "optimum_method": method}
    return dict(_OPTIMA[key])


def _gaps(problem: str, out: dict) -> dict:
    """The episode's objective against the optimum (proven) or, when not proven, the bound."""
    sense = registry.problem(problem).sense
    obj = out.get("objective")

    def rel(ref):
        if obj is None or ref is None:
            return None
        return ((obj - ref) if sense == "min" else (ref - obj)) / max(abs(ref), 1e-12)

    return {"gap": rel(out.get("optimum")), "gap_to_bound": rel(out.get("bound"))}


def _space(shapes: dict[str, tuple[int, ...]]) -> spaces.Dict:
    return spaces.Dict({k: spaces.Box(0, 1, s, dtype=np.int8) if k == "action_mask" else
                        spaces.Box(0.0, FEATURE_MAX, s, dtype=np.float32) for k, s in shapes.items()})


class _Episodes:
    """Shared by both views: draws each episode's instance, runs the decision process, fills the final info."""

    def __init__(self, problem: str, seed: int, optimum: bool, optimum_time_limit: float, **settings):
        self.problem, self.base_seed = problem, int(seed)
        module = registry.decisions(problem)
        self.process, self.draw = module.make_process(**settings)
        self.optimum_method = module.OPTIMUM if optimum else None
        self.optimum_time_limit = optimum_time_limit
        self.rng = np.random.default_rng(self.base_seed)
        self.episode = 0

    def reset(self, seed: int | None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        draw_seed = int(self.rng.integers(2**31))
        instance = self.draw(draw_seed, seed is not None) if hasattr(self.draw, "finish") else self.draw(draw_seed)
        self.process.reset(instance)
        self.episode += 1

    def final_info(self) -> dict:
        out = self.process.outcome()
        if hasattr(self.draw, "finish"):  # a simulated interval: carry the schedule out, report what happened
            out.update(self.draw.finish(self.process.instance, self.process.solution()))
        if self.optimum_method is not None:
            out.update(optimum(self.process.instance, self.optimum_method, self.optimum_time_limit))
            out.update(_gaps(self.problem, out))
        return out


class ParallelDecisions(ParallelEnv):
    """PettingZoo Parallel view: every live agent acts each step (the seed's joint action ``A = (a_1..a_I)``)."""

    metadata = {"name": "edgeopt", "render_modes": [], "is_parallelizable": True}

    def __init__(self, episodes: _Episodes):
        self.episodes = episodes
        proc = episodes.process
        self.possible_agents = [f"agent_{i}" for i in range(proc.n_agents)]
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self.agents: list[str] = []
        self._obs_space = _space(proc.layout.shapes())
        self._act_space = spaces.Discrete(proc.layout.actions)
        flat = sum(int(np.prod(s)) for k, s in proc.layout.shapes().items() if k != "action_mask")
        self.state_space = spaces.Box(0.0, FEATURE_MAX, (proc.n_agents * flat,), dtype=np.float32)
        self.metadata = {**self.metadata, "name": f"edgeopt-{episodes.problem}"}

    def observation_space(self, agent: str):
        return self._obs_space

    def action_space(self, agent: str):
        return self._act_space

    def _obs(self) -> dict[str, dict]:
        proc = self.episodes.process
        return {a: proc.observe(self._index[a]) for a in self.agents}

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.episodes.reset(seed)
        if seed is not None:
            self._act_space.seed(seed)
        self.agents = [self.possible_agents[i] for i in self.episodes.process.live]
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        proc = self.episodes.process
        index = self._index
        rewards = proc.step({index[a]: int(x) for a, x in actions.items() if a in index})
        acting = list(self.agents)
        live = set(proc.live)
        truncated = proc.truncated
        terminations = {a: index[a] not in live and not truncated for a in acting}
        truncations = {a: truncated for a in acting}
        self.agents = [a for a in acting if index[a] in live and not truncated]
        final = self.episodes.final_info() if not self.agents else None
        infos = {a: (dict(final) if final is not None else {}) for a in acting}
        obs = {a: proc.observe(index[a]) for a in acting}
        return obs, {a: float(rewards.get(index[a], 0.0)) for a in acting}, terminations, truncations, infos

    def state(self) -> np.ndarray:
        all_obs = self.episodes.process.observe_all()
        return np.concatenate([all_obs[k].reshape(len(self.possible_agents), -1).astype(np.float32)
                               for k in self.episodes.process.layout.shapes() if k != "action_mask"], axis=1).ravel()

    def render(self):
        return None

    def close(self):
        pass


class SingleDecision(gymnasium.Env):
    """Gymnasium view: one placement per step, of any job's ready sub-task (action ``agent * A + a``); the
    observation stacks every agent's, and the reward is the acting agent's."""

    metadata = {"render_modes": []}

    def __init__(self, episodes: _Episodes):
        self.episodes = episodes
        proc = episodes.process
        n, lay = proc.n_agents, proc.layout
        shapes = {k: (n,) + s for k, s in lay.shapes().items() if k != "action_mask"}
        self.observation_space = _space({**shapes, "action_mask": (n * lay.actions,)})
        self.action_space = spaces.Discrete(n * lay.actions)

    def _obs(self) -> dict[str, np.ndarray]:
        all_obs = {k: v for k, v in self.episodes.process.observe_all().items() if k != "alive"}
        all_obs["action_mask"] = all_obs["action_mask"].ravel()
        return all_obs

    def action_masks(self) -> np.ndarray:
        """For MaskablePPO and the like."""
        return self._obs()["action_mask"].astype(bool)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.episodes.reset(seed)
        return self._obs(), {}

    def step(self, action):
        proc = self.episodes.process
        agent, a = divmod(int(action), proc.layout.actions)
        rewards = proc.step({agent: a})
        done = proc.done
        info = self.episodes.final_info() if done else {}
        return self._obs(), float(sum(rewards.values())), done and not proc.truncated, proc.truncated, info


def make(problem: str, preset: str | None = None, size: int | None = None, seed: int = 0, *,
         single_agent: bool = False, reward: str = "paper", optimum: bool = False,
         optimum_time_limit: float = 60.0, **options):
    """A PettingZoo ParallelEnv of ``problem``'s agents, or (``single_agent=True``) a Gymnasium Env.

    ``preset``, ``size`` and ``options`` are the generator's (every episode a fresh instance drawn with a seed
    from ``seed``), plus the decision process's own (``source="simulation"`` and the simulation's parameters
    draw the episodes from ``edgeopt simulate``'s intervals). ``reward``: ``paper`` (the seed's shaped reward)
    or ``objective`` (minus the referee's objective, paid as it accrues). ``optimum=True`` adds the problem's
    exact optimum (or its best bound and status when not proven within ``optimum_time_limit``) and the gap to
    ``info`` at each episode's end, computed once per instance.
    """
    if not math.isfinite(optimum_time_limit) or optimum_time_limit <= 0:
        raise InputError("optimum_time_limit", f"must be > 0 s, got {optimum_time_limit!r}")
    episodes = _Episodes(problem, seed, optimum, optimum_time_limit, preset=preset, size=size, reward=reward,
                         **options)
    return SingleDecision(episodes) if single_agent else ParallelDecisions(episodes)


def instance_key(instance) -> str:
    """A content hash of an instance (how the optimum cache knows it)."""
    return hashlib.sha1(io.dumps(io.instance_doc(instance), indent=False)).hexdigest()
