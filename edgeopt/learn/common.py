"""Pieces the JAX learners share: batches of stacked observations, replay, optax chains, parameter pytrees.

Training only (needs the ``learn`` extra); inference uses ``nets`` with NumPy.
"""
from __future__ import annotations

from typing import Annotated

import jax
import jax.numpy as jnp
import numpy as np
import optax
from pydantic import Field

OBS_KEYS = ("progress", "servers", "nodes", "adjacency", "action_mask")

# Annotations of the hyper-parameters (``--option KEY=VALUE`` of ``edgeopt train``), checked by the rule of every
# option (``registry.check_values``: strict types, these ranges).
Rate = Annotated[float, Field(gt=0, le=1)]  # learning rates
Fraction = Annotated[float, Field(ge=0, le=1)]  # discounts, GAE lambda, Polyak tau, exploration factors
Coefficient = Annotated[float, Field(ge=0, le=1e6)]  # loss coefficients
Positive = Annotated[float, Field(gt=0, le=1e6)]  # gradient-norm clips, temperatures, PPO's clip ratio
Width = Annotated[int, Field(ge=1, le=4096)]  # hidden units, embedding sizes


def to_jax(tree):
    return jax.tree.map(jnp.asarray, tree)


def to_numpy(tree):
    return jax.tree.map(np.asarray, tree)


def optimizer(lr: float, clip: float) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(clip), optax.adam(lr))


def rows(obs: dict, lead: int):
    """Observations with ``lead`` leading axes (e.g. samples x agents) flattened into one batch axis."""
    return {k: obs[k].reshape((-1,) + obs[k].shape[lead:]) for k in OBS_KEYS}


def onehot(actions, n: int):
    """(..., agents) actions (-1: none) -> (..., agents, n) one-hot, zeros for -1."""
    return jax.nn.one_hot(actions, n) * (actions >= 0)[..., None]


class Replay:
    """A ring buffer of joint steps: stacked observations, actions, alive flags, team reward, next step, done."""

    def __init__(self, capacity: int):
        self.capacity, self.size, self.pos = int(capacity), 0, 0
        self.data: dict[str, np.ndarray] | None = None

    def add(self, item: dict[str, np.ndarray]) -> int:
        if self.data is None:
            self.data = {k: np.zeros((self.capacity,) + np.shape(v), dtype=np.asarray(v).dtype) for k, v in item.items()}
        for k, v in item.items():
            self.data[k][self.pos] = v
        at = self.pos
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        return at

    def sample(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        idx = rng.integers(self.size, size=n)
        return {k: v[idx] for k, v in self.data.items()}

    def state(self) -> dict:
        return {"data": self.data or {}, "meta": np.array([self.size, self.pos], dtype=np.int64)}

    def load(self, tree: dict) -> None:
        self.data = {k: np.asarray(v) for k, v in tree.get("data", {}).items()} or None
        self.size, self.pos = (int(x) for x in tree["meta"])


def step_item(obs: dict, actions: np.ndarray, reward: float, nxt: dict, done: bool) -> dict[str, np.ndarray]:
    """One joint step as replay arrays (next actions filled in when the next step is chosen)."""
    item = {f"obs/{k}": obs[k] for k in OBS_KEYS}
    item.update({f"next/{k}": nxt[k] for k in OBS_KEYS})
    item.update({"actions": actions.astype(np.int32), "alive": obs["alive"], "next_alive": nxt["alive"],
                 "next_actions": np.full_like(actions, -1, dtype=np.int32), "reward": np.float32(reward),
                 "done": np.float32(done)})
    return item


def split(batch: dict, prefix: str) -> dict:
    return {k[len(prefix) + 1:]: v for k, v in batch.items() if k.startswith(prefix + "/")}


def masked_sample(rng: np.random.Generator, logp: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """One action per alive row from its log-probabilities (Gumbel-max), -1 for the others."""
    g = rng.gumbel(size=logp.shape)
    return np.where(alive, np.argmax(logp + g, axis=-1), -1)
