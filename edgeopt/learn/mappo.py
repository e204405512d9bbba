"""MAPPO (Yu et al. 2022), the seed's baseline: actors sharing one policy network, a centralised value function
of the global state, generalised advantage estimation and PPO's clipped ratio.

Every ``rollout`` episodes: GAE over the team reward with V(S) (lambda ``gae``), then ``epochs`` passes of
``L = -min(rho A, clip(rho, 1 - c, 1 + c) A) - ent H + vf (V - R)^2`` over every alive agent's decisions, where
rho is the ratio of the new to the old probability of the agent's action. The seed gives the learning rate
and the discount (Table 2, shared with UCB-COMA); the rest (rollout 8 episodes, 4 epochs, clip 0.2, GAE
lambda 0.95, entropy 0.01, value 0.5, value MLP 2 x 128) are PPO's usual values. As Yu et al. recommend, the
value network learns normalised returns (running mean and deviation of every return seen): the seed's reward
pays theta = 2 for every valid placement, so returns are about 47 per episode while the actions move them
by a few hundredths, and an unnormalised value function takes most of the 700 episodes to reach that scale.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from edgeopt.learn import nets
from edgeopt.learn.coma import _leaves, _restore
from edgeopt.learn.common import (OBS_KEYS, Coefficient, Fraction, Positive, Rate, Width, masked_sample, optimizer,
                                  rows, to_jax, to_numpy)
from edgeopt.limits import Count


@dataclass
class Hyper:
    lr: Rate = 1e-3  # Table 2
    discount: Fraction = 0.95  # Table 2
    gae: Fraction = 0.95
    clip_ratio: Positive = 0.2
    epochs: Count = 4
    rollout: Count = 8  # episodes per update
    entropy: Coefficient = 0.01
    value_coef: Coefficient = 0.5
    hidden: Width = 64
    embed: Width = 16
    critic_hidden: Width = 128
    clip: Positive = 10.0


def value_init(rng, layout, agents: int, h: Hyper) -> dict:
    enc = nets.encoded_size(layout, h.embed)
    return {"gcn": nets.gcn_init(rng, layout.node_features, h.hidden, h.embed),
            "v": nets.mlp_init(rng, [agents * enc, h.critic_hidden, h.critic_hidden, 1])}


def value(p, obs, alive):
    """V(S) from every agent's encoded observation: (B,)."""
    b, n = alive.shape
    enc = nets.encode(p["gcn"], rows(obs, 2), jnp).reshape(b, n, -1) * alive[..., None]
    return nets.mlp(p["v"], enc.reshape(b, -1), jnp)[:, 0]


def gae(rewards: np.ndarray, values: np.ndarray, dones: np.ndarray, discount: float, lam: float) -> np.ndarray:
    """Advantages of one trajectory (values has one more entry: the bootstrap, 0 at the end)."""
    adv = np.zeros(len(rewards))
    acc = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        delta = rewards[t] + discount * values[t + 1] * (1 - dones[t]) - values[t]
        acc = delta + discount * lam * (1 - dones[t]) * acc
        adv[t] = acc
    return adv


class Learner:
    def __init__(self, layout, agents: int, hyper: Hyper, seed: int, episodes: int):
        self.layout, self.n, self.h = layout, agents, hyper
        rng = np.random.default_rng(seed)
        self.actor = nets.actor_init(rng, layout, hyper.hidden, hyper.embed)
        self.critic = value_init(rng, layout, agents, hyper)
        self.opt = optimizer(hyper.lr, hyper.clip)
        self.opt_state = self.opt.init(to_jax({"actor": self.actor, "critic": self.critic}))
        self.rng = rng
        self.steps: list[dict] = []
        self.episodes_in = 0
        self.ret_stats = np.array([0.0, 0.0, 0.0])  # count, mean, sum of squared deviations (Welford)
        self._update = jax.jit(partial(_update, opt=self.opt, h=hyper))
        self._value = jax.jit(value)

    def act(self, obs: dict, episode: int) -> np.ndarray:
        logp = nets.actor_logp(self.actor, obs, np)
        acts = masked_sample(self.rng, logp, obs["alive"])
        self._logp = np.where(obs["alive"], np.take_along_axis(logp, np.maximum(acts, 0)[:, None], 1)[:, 0], 0.0)
        return acts

    def record(self, obs, actions, rewards, nxt, done) -> None:
        self.steps.append({**{k: obs[k] for k in OBS_KEYS}, "alive": obs["alive"], "actions": actions.astype(np.int32),
                           "logp": self._logp.astype(np.float32), "reward": np.float32(rewards.sum()),
                           "done": np.float32(done)})

    def end_episode(self, episode: int) -> None:
        self.episodes_in += 1
        if self.episodes_in < self.h.rollout:
            return
        batch = {k: np.stack([s[k] for s in self.steps]) for k in self.steps[0]}
        mean, std = self._norm()
        v = mean + std * np.asarray(self._value(to_jax(self.critic), {k: jnp.asarray(batch[k]) for k in OBS_KEYS},
                                                jnp.asarray(batch["alive"], jnp.float32)))
        adv = np.zeros(len(v))
        begin = 0
        for end in np.flatnonzero(batch["done"]) + 1:  # each episode's trajectory
            vals = np.append(v[begin:end], 0.0)
            adv[begin:end] = gae(batch["reward"][begin:end], vals, batch["done"][begin:end], self.h.discount, self.h.gae)
            begin = end
        for x in adv + v:
            n, m, m2 = self.ret_stats
            n += 1
            d = x - m
            m += d / n
            self.ret_stats = np.array([n, m, m2 + d * (x - m)])
        mean, std = self._norm()
        batch["adv"], batch["ret"] = adv.astype(np.float32), ((adv + v - mean) / std).astype(np.float32)
        params = to_jax({"actor": self.actor, "critic": self.critic})
        jb = to_jax(batch)
        for _ in range(self.h.epochs):
            params, self.opt_state, self.last_loss = self._update(params, self.opt_state, jb)
        params = to_numpy(params)
        self.actor, self.critic = params["actor"], params["critic"]
        self.steps, self.episodes_in = [], 0

    def _norm(self) -> tuple[float, float]:
        n, m, m2 = self.ret_stats
        return (m, float(np.sqrt(m2 / n)) + 1e-6) if n > 1 else (0.0, 1.0)

    def state(self) -> dict:
        return {"actor": self.actor, "critic": self.critic, "opt": _leaves(self.opt_state),
                "counters": {"returns": self.ret_stats}}

    def load(self, s: dict) -> None:
        self.actor, self.critic = s["actor"], s["critic"]
        self.opt_state = _restore(self.opt_state, s["opt"])
        self.ret_stats = np.asarray(s["counters"]["returns"], dtype=float)
        self.steps, self.episodes_in = [], 0  # a resumed run starts a fresh rollout


def _update(params, opt_state, batch, *, opt, h: Hyper):
    obs = {k: batch[k] for k in OBS_KEYS}
    alive = batch["alive"].astype(jnp.float32)
    acts = jnp.maximum(batch["actions"], 0)
    adv = batch["adv"]
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    b, n = alive.shape

    def loss(p):
        logp = nets.actor_logp(p["actor"], rows(obs, 2), jnp).reshape(b, n, -1)
        lp = jnp.take_along_axis(logp, acts[..., None], -1)[..., 0]
        ratio = jnp.exp(lp - batch["logp"])
        a = adv[:, None]
        pg = -jnp.minimum(ratio * a, jnp.clip(ratio, 1 - h.clip_ratio, 1 + h.clip_ratio) * a)
        pi = jnp.exp(logp)
        ent = -(pi * jnp.where(pi > 0, logp, 0.0)).sum(-1)
        actor = ((pg - h.entropy * ent) * alive).sum() / jnp.maximum(alive.sum(), 1.0)
        v = value(p["critic"], obs, alive)
        return actor + h.value_coef * ((v - batch["ret"]) ** 2).mean()

    lv, g = jax.value_and_grad(loss)(params)
    upd, opt_state = opt.update(g, opt_state, params)
    return optax.apply_updates(params, upd), opt_state, lv
