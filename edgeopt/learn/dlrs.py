"""DLRS (Yao et al., VELO, seed 001 ②): a diffusion policy trained by MAPPO with expert demonstrations.

The actor is ``nets.Diffusion``: each edge agent's route logits are denoised in 10 steps (the seed's count)
conditioned on its request's route rows (similarity, latency, capacities left, ...). It is trained by the
framework's MAPPO (``edgeopt.learn.mappo``: centralised value, GAE, clipped ratio; the gradient runs through the
whole chain) plus a behaviour-cloning term from expert demonstrations — the seed's remedy for sparse data and
early exploration: minus the log-probability of the per-interval optimum's route (the exact MILP, which edgeopt has
and the paper approximated), over the decisions where that route is still open, weighted by ``bc``. While training
the chain is stochastic (``x_K`` and each step's noise drawn, scaled by ``noise``: the seed's "noise strength"; kept
with the step so that PPO's ratios read the same chain); a policy file runs it without noise.

Hyper-parameters from the seed: learning rate 3e-4 (its policy network's; one optimizer here, so the value network
shares it — the seed gives it 1e-3) and discount 0.99. Ours: 2 episodes per update and 10 epochs (an episode is
10 intervals of 10 routing steps of 3 agents, so an update reads 600 decisions; MAPPO's 8 and 4 gave too few
gradient steps in a few hundred episodes); the rest are MAPPO's.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from edgeopt.learn import mappo, nets
from edgeopt.learn.common import Coefficient, Fraction, Rate, rows
from edgeopt.limits import Count

FAMILY = "diffusion"


@dataclass
class Hyper(mappo.Hyper):
    lr: Rate = 3e-4  # the seed's policy learning rate
    discount: Fraction = 0.99  # the seed
    rollout: Count = 2  # episodes per update (an episode holds 10 intervals of 10 routing steps)
    epochs: Count = 10
    noise: Coefficient = 1.0  # the chain's noise while training (0: the deterministic chain)
    bc: Coefficient = 1.0  # weight of the expert demonstrations' term


class Learner(mappo.Learner):
    FAMILY = FAMILY
    KEYS = ("noise",)

    def demonstrate(self, expert: np.ndarray) -> None:
        """The optimum's action of every agent at this step (-1: none), from the decision process's ``expert``."""
        self._expert = np.asarray(expert, dtype=np.int32)

    def act(self, obs: dict, episode: int) -> np.ndarray:
        shape = (self.n, nets.DENOISE_STEPS + 1, self.layout.routes)
        self._noise = (self.h.noise * self.rng.standard_normal(shape)).astype(np.float32)
        return super().act({**obs, "noise": self._noise}, episode)

    def record(self, obs, actions, rewards, nxt, done) -> None:
        super().record({**obs, "noise": self._noise}, actions, rewards, nxt, done)
        self.steps[-1]["expert"] = self._expert

    def extra_loss(self, actor: dict, obs: dict, batch: dict):
        """Behaviour cloning: -bc * mean log w(expert's action) over the alive agents' demonstrated decisions."""
        expert = batch["expert"]
        shown = ((expert >= 0) & (batch["alive"] > 0)).astype(jnp.float32).reshape(-1)
        lp, _ = self.net.log_prob_entropy(actor, rows(obs, 2), jnp.maximum(expert, 0).reshape(-1), jnp)
        return -self.h.bc * (lp * shown).sum() / jnp.maximum(shown.sum(), 1.0)
