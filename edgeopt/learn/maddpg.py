"""MADDPG (Lowe et al. 2017), the seed's baseline, with discrete actions through the Gumbel-softmax.

Actors (one network shared by the agents) output the masked logits of the (sub-task, server) pairs; the
centralised critic Q(S, A) reads every agent's encoded observation and every agent's action (one-hot, or the
actor's relaxed sample while the actor learns). Off-policy from a replay pool, target networks moved by Polyak
averaging. Exploration: actions sampled from the Gumbel-softmax (the categorical itself). The seed gives the
learning rate and the discount (Table 2) and describes target networks; the rest (batch 64, an update every
4 joint steps, tau 0.01, temperature 1, straight-through hard samples, critic 2 x 128) are choices. With
Algorithm 1's cadence (every 32 steps: about 130 updates in 700 episodes) the Polyak-averaged targets hardly
move from their initial values and the actor follows an untrained critic.
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
from edgeopt.learn.common import (Fraction, Positive, Rate, Replay, Width, masked_sample, onehot, optimizer, rows,
                                  split, step_item, to_jax, to_numpy)
from edgeopt.limits import Count


@dataclass
class Hyper:
    lr: Rate = 1e-3  # Table 2
    discount: Fraction = 0.95  # Table 2
    update_every: Count = 4
    batch: Count = 64
    replay: Count = 10_000
    tau: Fraction = 0.01
    temperature: Positive = 1.0
    hidden: Width = 64
    embed: Width = 16
    critic_hidden: Width = 128
    clip: Positive = 10.0


def critic_init(rng, layout, agents: int, h: Hyper) -> dict:
    enc = nets.encoded_size(layout, h.embed)
    return {"gcn": nets.gcn_init(rng, layout.node_features, h.hidden, h.embed),
            "q": nets.mlp_init(rng, [agents * (enc + layout.actions), h.critic_hidden, h.critic_hidden, 1])}


def critic_q(p, obs, action_vectors, alive):
    """Q(S, A): (B,) from stacked observations and (B, agents, A) action vectors."""
    b, n = alive.shape
    enc = nets.encode(p["gcn"], rows(obs, 2), jnp).reshape(b, n, -1) * alive[..., None]
    x = jnp.concatenate([enc, action_vectors * alive[..., None]], axis=-1).reshape(b, -1)
    return nets.mlp(p["q"], x, jnp)[:, 0]


def gumbel_softmax(key, logp, temperature: float):
    """A hard one-hot sample with the relaxed sample's gradient (straight-through)."""
    g = -jnp.log(-jnp.log(jax.random.uniform(key, logp.shape, minval=1e-10, maxval=1.0)))
    soft = jax.nn.softmax((logp + g) / temperature, axis=-1)
    hard = jax.nn.one_hot(jnp.argmax(soft, -1), logp.shape[-1])
    return soft + jax.lax.stop_gradient(hard - soft)


class Learner:
    def __init__(self, layout, agents: int, hyper: Hyper, seed: int, episodes: int):
        self.layout, self.n, self.h = layout, agents, hyper
        rng = np.random.default_rng(seed)
        self.actor = nets.actor_init(rng, layout, hyper.hidden, hyper.embed)
        self.critic = critic_init(rng, layout, agents, hyper)
        self.target_actor, self.target_critic = self.actor, self.critic
        self.opt = optimizer(hyper.lr, hyper.clip)
        self.opt_actor, self.opt_critic = self.opt.init(to_jax(self.actor)), self.opt.init(to_jax(self.critic))
        self.replay = Replay(hyper.replay)
        self.rng, self.key = rng, jax.random.PRNGKey(seed)
        self.step = 0
        self._update = jax.jit(partial(_update, opt=self.opt, h=hyper))

    def act(self, obs: dict, episode: int) -> np.ndarray:
        return masked_sample(self.rng, nets.actor_logp(self.actor, obs, np) / self.h.temperature, obs["alive"])

    def record(self, obs, actions, rewards, nxt, done) -> None:
        self.replay.add(step_item(obs, actions, rewards.sum(), nxt, done))
        self.step += 1
        if self.step % self.h.update_every == 0 and self.replay.size >= self.h.batch:
            self.key, sub = jax.random.split(self.key)
            nets_in = to_jax({"actor": self.actor, "critic": self.critic, "target_actor": self.target_actor,
                              "target_critic": self.target_critic})
            out, self.opt_actor, self.opt_critic = self._update(
                nets_in, self.opt_actor, self.opt_critic, to_jax(self.replay.sample(self.rng, self.h.batch)), sub)
            out = to_numpy(out)
            self.actor, self.critic = out["actor"], out["critic"]
            self.target_actor, self.target_critic = out["target_actor"], out["target_critic"]

    def end_episode(self, episode: int) -> None:
        pass

    def state(self) -> dict:
        return {"actor": self.actor, "critic": self.critic, "target_actor": self.target_actor,
                "target_critic": self.target_critic, "opt_actor": _leaves(self.opt_actor),
                "opt_critic": _leaves(self.opt_critic), "replay": self.replay.state(),
                "counters": {"step": np.array([self.step]), "key": np.asarray(self.key)}}

    def load(self, s: dict) -> None:
        self.actor, self.critic = s["actor"], s["critic"]
        self.target_actor, self.target_critic = s["target_actor"], s["target_critic"]
        self.opt_actor, self.opt_critic = _restore(self.opt_actor, s["opt_actor"]), _restore(self.opt_critic,
                                                                                              s["opt_critic"])
        self.replay.load(s["replay"])
        self.step, self.key = int(s["counters"]["step"][0]), jnp.asarray(s["counters"]["key"])


def _update(p, opt_actor, opt_critic, batch, key, *, opt, h: Hyper):
    obs, nxt = split(batch, "obs"), split(batch, "next")
    alive, n_alive = batch["alive"].astype(jnp.float32), batch["next_alive"].astype(jnp.float32)
    b, n = alive.shape
    A = p["actor"]["loc"]["w"].shape[1]
    k1, k2 = jax.random.split(key)
    # critic: y = r + discount Q'(S', mu'(S')), the target actors' hard samples as the next joint action
    next_logp = nets.actor_logp(p["target_actor"], rows(nxt, 2), jnp).reshape(b, n, A)
    next_a = jax.nn.one_hot(jnp.argmax(next_logp + jax.random.gumbel(k1, next_logp.shape), -1), A) * n_alive[..., None]
    y = batch["reward"] + h.discount * (1 - batch["done"]) * critic_q(p["target_critic"], nxt, next_a, n_alive)
    acts = onehot(batch["actions"], A)

    def critic_loss(c):
        return ((critic_q(c, obs, acts, alive) - jax.lax.stop_gradient(y)) ** 2).mean()

    lc, g = jax.value_and_grad(critic_loss)(p["critic"])
    upd, opt_critic = opt.update(g, opt_critic, p["critic"])
    critic = optax.apply_updates(p["critic"], upd)

    def actor_loss(a):  # agent i's action relaxed, the others' from the replay pool, for each i
        logp = nets.actor_logp(a, rows(obs, 2), jnp).reshape(b, n, A)
        relaxed = gumbel_softmax(k2, logp, h.temperature) * alive[..., None]
        total = 0.0
        for i in range(n):
            q = critic_q(critic, obs, acts.at[:, i].set(relaxed[:, i]), alive)
            total += -(q * alive[:, i]).sum()
        return total / jnp.maximum(alive.sum(), 1.0)

    la, g = jax.value_and_grad(actor_loss)(p["actor"])
    upd, opt_actor = opt.update(g, opt_actor, p["actor"])
    actor = optax.apply_updates(p["actor"], upd)
    soft = lambda t, s: jax.tree.map(lambda x, y: (1 - h.tau) * x + h.tau * y, t, s)  # noqa: E731
    out = {"actor": actor, "critic": critic, "target_actor": soft(p["target_actor"], actor),
           "target_critic": soft(p["target_critic"], critic)}
    return out, opt_actor, opt_critic
