"""MAPPO (Yu et al. 2022) and IPPO (de Witt et al. 2020): actors sharing one policy network, generalised advantage
estimation and PPO's clipped ratio; MAPPO's value function reads the global state, IPPO's each agent's own.

Every ``rollout`` episodes: GAE (lambda ``gae``) with the value function, then ``epochs`` passes of
``L = -min(rho A, clip(rho, 1 - c, 1 + c) A) - ent H + vf (V - R)^2`` over every alive agent's decisions, where
rho is the ratio of the new to the old probability of the agent's action. MAPPO: the team reward (the agents'
rewards summed) and V(S) of every agent's encoded observation; the seed of TS-MITO (000 §3) trains its stage one
so ("全局 critic 统一训练", GAE, PPO-clip). IPPO (``independent``): each agent its own reward and V(o_i), one value
network shared by the agents. The seeds give the learning rate and the discount (seed 002's Table 2, shared with
UCB-COMA; seed 000 gives none, so the same); the rest (rollout 8 episodes, 4 epochs, clip 0.2, GAE lambda 0.95,
entropy 0.01, value 0.5, value MLP 2 x 128) are PPO's usual values. As Yu et al. recommend, the value network
learns normalised returns (running mean and deviation of every return seen): the dagsched seed's reward pays
theta = 2 for every valid placement, so returns are about 47 per episode while the actions move them by a few
hundredths, and an unnormalised value function takes most of the 700 episodes to reach that scale.
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
from edgeopt.learn.common import (Coefficient, Fraction, Positive, Rate, Width, masked_sample, optimizer, rows, to_jax,
                                  to_numpy)
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
    independent: bool = False  # IPPO: each agent's own reward and value V(o_i)


def value_init(rng, layout, agents: int, h: Hyper) -> dict:
    net = nets.family(layout)
    enc = net.encoded_size(layout, h.embed)
    return {"enc": net.encoder_init(rng, layout, h.hidden, h.embed),
            "v": nets.mlp_init(rng, [(1 if h.independent else agents) * enc, h.critic_hidden, h.critic_hidden, 1])}


def value(p, obs, alive, *, net, independent: bool):
    """V(S) from every agent's encoded observation, (B,); IPPO: V(o_i) for each agent, (B, agents)."""
    b, n = alive.shape
    enc = net.encode(p["enc"], rows(obs, 2), jnp).reshape(b, n, -1) * alive[..., None]
    if independent:
        return nets.mlp(p["v"], enc, jnp)[..., 0]
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
    FAMILY: str | None = None  # the actor family (edgeopt.learn.nets), else the layout's
    KEYS: tuple[str, ...] = ()  # what a step keeps beside the layout's observations (a subclass's own inputs)
    extra_loss = None  # a subclass's term added to the actor's loss: extra(actor params, observations, batch)

    def __init__(self, layout, agents: int, hyper: Hyper, seed: int, episodes: int):
        self.layout, self.n, self.h = layout, agents, hyper
        self.net, self.keys = nets.family(layout, self.FAMILY), tuple(layout.shapes()) + self.KEYS
        rng = np.random.default_rng(seed)
        self.actor = self.net.init(rng, layout, hyper.hidden, hyper.embed)
        self.critic = value_init(rng, layout, agents, hyper)
        self.opt = optimizer(hyper.lr, hyper.clip)
        self.opt_state = self.opt.init(to_jax({"actor": self.actor, "critic": self.critic}))
        self.rng = rng
        self.steps: list[dict] = []
        self.episodes_in = 0
        self.ret_stats = np.array([0.0, 0.0, 0.0])  # count, mean, sum of squared deviations (Welford)
        self._update = jax.jit(partial(_update, opt=self.opt, h=hyper, net=self.net, keys=self.keys,
                                       extra=self.extra_loss))
        self._value = jax.jit(partial(value, net=self.net, independent=hyper.independent))

    def act(self, obs: dict, episode: int) -> np.ndarray:
        logp = self.net.table(self.actor, obs, np)
        acts = masked_sample(self.rng, logp, obs["alive"])
        self._logp = np.where(obs["alive"], np.take_along_axis(logp, np.maximum(acts, 0)[:, None], 1)[:, 0], 0.0)
        return acts

    def record(self, obs, actions, rewards, nxt, done) -> None:
        self.steps.append({**{k: obs[k] for k in self.keys}, "alive": obs["alive"], "actions": actions.astype(np.int32),
                           "logp": self._logp.astype(np.float32),
                           "reward": rewards.astype(np.float32) if self.h.independent else np.float32(rewards.sum()),
                           "done": np.float32(done)})

    def end_episode(self, episode: int) -> None:
        self.episodes_in += 1
        if self.episodes_in < self.h.rollout:
            return
        batch = {k: np.stack([s[k] for s in self.steps]) for k in self.steps[0]}
        mean, std = self._norm()
        v = mean + std * np.asarray(self._value(to_jax(self.critic), {k: jnp.asarray(batch[k]) for k in self.keys},
                                                jnp.asarray(batch["alive"], jnp.float32)))
        adv = np.zeros(v.shape)
        begin = 0
        for end in np.flatnonzero(batch["done"]) + 1:  # each episode's trajectory (each agent's, for IPPO)
            vals = np.concatenate([v[begin:end], np.zeros((1,) + v.shape[1:])])
            for col in ([...] if v.ndim == 1 else [(slice(None), i) for i in range(v.shape[1])]):
                r = batch["reward"][begin:end]
                adv[begin:end][col] = gae(r[col], vals[col], batch["done"][begin:end], self.h.discount, self.h.gae)
            begin = end
        returns = adv + v
        for x in (returns[batch["alive"]] if self.h.independent else returns):
            n, m, m2 = self.ret_stats
            n += 1
            d = x - m
            m += d / n
            self.ret_stats = np.array([n, m, m2 + d * (x - m)])
        mean, std = self._norm()
        batch["adv"], batch["ret"] = adv.astype(np.float32), ((returns - mean) / std).astype(np.float32)
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


def _update(params, opt_state, batch, *, opt, h: Hyper, net, keys, extra=None):
    obs = {k: batch[k] for k in keys}
    alive = batch["alive"].astype(jnp.float32)
    acts = jnp.maximum(batch["actions"], 0)
    adv = batch["adv"]
    b, n = alive.shape
    if h.independent:  # each agent's own advantage, normalised over the agents' decisions
        count = jnp.maximum(alive.sum(), 1.0)
        mean = (adv * alive).sum() / count
        adv = (adv - mean) / (jnp.sqrt((((adv - mean) * alive) ** 2).sum() / count) + 1e-8)
    else:
        adv = ((adv - adv.mean()) / (adv.std() + 1e-8))[:, None]

    def loss(p):
        lp, ent = net.log_prob_entropy(p["actor"], rows(obs, 2), acts.reshape(-1), jnp)
        lp, ent = lp.reshape(b, n), ent.reshape(b, n)
        ratio = jnp.exp(lp - batch["logp"])
        pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - h.clip_ratio, 1 + h.clip_ratio) * adv)
        actor = ((pg - h.entropy * ent) * alive).sum() / jnp.maximum(alive.sum(), 1.0)
        v = value(p["critic"], obs, alive, net=net, independent=h.independent)
        if extra is not None:
            actor = actor + extra(p["actor"], obs, batch)
        if h.independent:
            return actor + h.value_coef * (((v - batch["ret"]) ** 2) * alive).sum() / jnp.maximum(alive.sum(), 1.0)
        return actor + h.value_coef * ((v - batch["ret"]) ** 2).mean()

    lv, g = jax.value_and_grad(loss)(params)
    upd, opt_state = opt.update(g, opt_state, params)
    return optax.apply_updates(params, upd), opt_state, lv
