"""COMA and UCB-COMA (Liao et al. §4.2, Algorithm 1; Foerster et al. 2018), one file: UCB-COMA is COMA with the
UCB action selection of eqs. (2)-(3) while training.

Algorithm 1, line by line (``Learner.act`` / ``record`` / ``_update``):
 1  actors w_phi (one network shared by the agents, see below), Q network and target Q network initialised
 2  N_i, n_i(a_sub, a_loc), step and upt_step set to 0
 3  for eps = 1..E: (the training driver, ``edgeopt.learn.train``)
 4    reset the environment
 6    collect (S, A, R, S'); with UCB-COMA, A from the UCB scores (below), else sampled from w_phi
 7    store it in the replay pool D
 8    if step % 32 == 0:
 9      sample B transitions from D
10      update Q by L_critic = E[(y - Q(S, A))^2], y = r + psi Q'(S', A')
11      update each actor by grad log w(a_i | s_i) A_i(S, A), A_i = Q(S, A) - sum_a' w(a' | s_i) Q(S, (a', A^-i))
12-16   every 10 updates: copy Q into the target Q
18    step += 1

UCB scores (eqs. 2-3), ``g = ln w(a_sub_j | s_i) + ln w(a_loc_k | a_sub_j, s_i) + eps sqrt(2 ln N_i / (n_i(j, k) + 1))``
over the valid (sub-task, server) pairs, the highest taken. The seed writes one score for the sub-task and one
for the server, each with the bonus of the pair; we score the pair once (the sum of the two log-probabilities,
one bonus), because the bonus is the pair's. ``eps`` decays linearly from ``ucb_eps`` to 0 over the episodes.

Choices where the seed gives none: the actors share their parameters (the agents are exchangeable jobs; a
policy then runs for any number of jobs), batch 64, replay of 10,000 joint steps, critic 2 x 128 ReLU, actor
MLP 2 x 64 after the seed's GCN, ``ucb_eps`` 1.0, global-norm clip 10, Adam. The critic is COMA's: it reads
the global state (every agent's encoded observation), the agent's id and the other agents' actions, and
outputs Q for each of the agent's actions, so the counterfactual baseline is one pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from edgeopt.learn import nets
from edgeopt.learn.common import (Coefficient, Fraction, Positive, Rate, Replay, Width, masked_sample, onehot,
                                  optimizer, rows, split, step_item, to_jax, to_numpy)
from edgeopt.limits import Count


@dataclass
class Hyper:
    lr: Rate = 1e-3  # Table 2
    discount: Fraction = 0.95  # psi, Table 2
    update_every: Count = 32  # Algorithm 1, line 8
    target_every: Count = 10  # Algorithm 1, line 12
    batch: Count = 64  # B: not given
    replay: Count = 10_000  # not given
    hidden: Width = 64  # the seed's GCN width; the actor MLP too
    embed: Width = 16  # Task_i
    critic_hidden: Width = 128  # not given
    ucb: bool = False  # UCB-COMA's action selection while training
    ucb_eps: Coefficient = 1.0  # initial exploration factor eps (not given), linearly to 0
    clip: Positive = 10.0


def critic_init(rng, layout, agents: int, h: Hyper) -> dict:
    enc = nets.encoded_size(layout, h.embed)
    return {"gcn": nets.gcn_init(rng, layout.node_features, h.hidden, h.embed),
            "q": nets.mlp_init(rng, [agents * enc + agents + agents * layout.actions, h.critic_hidden,
                                     h.critic_hidden, layout.actions])}


def critic_q(p, obs, actions, alive):
    """Q(S, (., A^-i)) for every agent i: (B, agents, A). ``obs`` stacked (B, agents, ...)."""
    b, n = actions.shape
    enc = nets.encode(p["gcn"], rows(obs, 2), jnp).reshape(b, n, -1) * alive[..., None]
    A = p["q"][f"l{len(p['q']) - 1}"]["w"].shape[1]
    acts = onehot(actions, A) * alive[..., None]  # (B, n, A)
    others = acts[:, None, :, :] * (1.0 - jnp.eye(n))[None, :, :, None]  # agent i sees every action but its own
    x = jnp.concatenate([jnp.broadcast_to(enc.reshape(b, 1, -1), (b, n, enc.shape[1] * enc.shape[2])),
                         jnp.broadcast_to(jnp.eye(n), (b, n, n)), others.reshape(b, n, n * A)], axis=-1)
    return nets.mlp(p["q"], x, jnp)


class Learner:
    def __init__(self, layout, agents: int, hyper: Hyper, seed: int, episodes: int):
        self.layout, self.n, self.h, self.episodes = layout, agents, hyper, episodes
        rng = np.random.default_rng(seed)
        self.actor = nets.actor_init(rng, layout, hyper.hidden, hyper.embed)
        self.critic = critic_init(rng, layout, agents, hyper)
        self.target = self.critic
        self.opt = optimizer(hyper.lr, hyper.clip)
        self.opt_actor, self.opt_critic = self.opt.init(to_jax(self.actor)), self.opt.init(to_jax(self.critic))
        self.replay = Replay(hyper.replay)
        self.counts = np.zeros((agents, layout.actions))  # n_i(a_sub, a_loc)
        self.tries = np.zeros(agents)  # N_i
        self.step = self.upt_step = 0
        self.rng = rng
        self._last: int | None = None  # replay slot of the previous step, waiting for its next actions
        self._update = jax.jit(partial(_update, opt=self.opt, discount=hyper.discount))

    def act(self, obs: dict, episode: int) -> np.ndarray:
        logp = nets.actor_logp(self.actor, obs, np)
        alive = obs["alive"]
        if not self.h.ucb:
            acts = masked_sample(self.rng, logp, alive)
        else:
            eps = self.h.ucb_eps * max(0.0, 1.0 - episode / max(1, self.episodes))
            bonus = eps * np.sqrt(2 * np.log(np.maximum(self.tries, 1.0))[:, None] / (self.counts + 1))
            acts = np.where(alive, np.argmax(np.where(logp > nets.LOGP_MIN, logp + bonus, -np.inf), axis=-1), -1)
            live = np.flatnonzero(alive)
            self.tries[live] += 1
            self.counts[live, acts[live]] += 1
        if self._last is not None:  # A' of the previous transition
            self.replay.data["next_actions"][self._last] = acts
        return acts

    def record(self, obs, actions, rewards, nxt, done) -> None:
        at = self.replay.add(step_item(obs, actions, rewards.sum(), nxt, done))
        self._last = None if done else at
        self.step += 1
        if self.step % self.h.update_every == 0 and self.replay.size >= self.h.batch:
            batch = to_jax(self.replay.sample(self.rng, self.h.batch))
            out = self._update(to_jax(self.actor), to_jax(self.critic), to_jax(self.target), self.opt_actor,
                               self.opt_critic, batch)
            actor, critic, self.opt_actor, self.opt_critic, self.last_loss = out
            self.actor, self.critic = to_numpy(actor), to_numpy(critic)
            self.upt_step += 1
            if self.upt_step == self.h.target_every:
                self.target, self.upt_step = self.critic, 0

    def end_episode(self, episode: int) -> None:
        self._last = None

    def state(self) -> dict:
        return {"actor": self.actor, "critic": self.critic, "target": self.target,
                "opt_actor": _leaves(self.opt_actor), "opt_critic": _leaves(self.opt_critic),
                "replay": self.replay.state(),
                "counters": {"counts": self.counts, "tries": self.tries,
                             "steps": np.array([self.step, self.upt_step], dtype=np.int64)}}

    def load(self, s: dict) -> None:
        self.actor, self.critic, self.target = s["actor"], s["critic"], s["target"]
        self.opt_actor = _restore(self.opt_actor, s["opt_actor"])
        self.opt_critic = _restore(self.opt_critic, s["opt_critic"])
        self.replay.load(s["replay"])
        self.counts, self.tries = s["counters"]["counts"], s["counters"]["tries"]
        self.step, self.upt_step = (int(x) for x in s["counters"]["steps"])


def _leaves(state) -> dict:
    return {f"{k:04d}": np.asarray(x) for k, x in enumerate(jax.tree.leaves(state))}


def _restore(template, leaves: dict):
    return jax.tree.unflatten(jax.tree.structure(template), [jnp.asarray(leaves[k]) for k in sorted(leaves)])


def _update(actor, critic, target, opt_actor, opt_critic, batch, *, opt, discount):
    obs, nxt = split(batch, "obs"), split(batch, "next")
    acts, alive = batch["actions"], batch["alive"].astype(jnp.float32)
    n_alive = batch["next_alive"].astype(jnp.float32)
    # line 10: TD target from the target Q at (S', A'); Q(S, A) read at each alive agent's own action
    q_next = critic_q(target, nxt, batch["next_actions"], n_alive)
    q_next_sa = jnp.take_along_axis(q_next, jnp.maximum(batch["next_actions"], 0)[..., None], -1)[..., 0]
    q_next_sa = (q_next_sa * n_alive).sum(-1) / jnp.maximum(n_alive.sum(-1), 1.0)
    y = batch["reward"] + discount * (1.0 - batch["done"]) * q_next_sa

    def critic_loss(c):
        q = critic_q(c, obs, acts, alive)
        q_sa = jnp.take_along_axis(q, jnp.maximum(acts, 0)[..., None], -1)[..., 0]
        return (((y[:, None] - q_sa) ** 2) * alive).sum() / jnp.maximum(alive.sum(), 1.0)

    lc, g = jax.value_and_grad(critic_loss)(critic)
    upd, opt_critic = opt.update(g, opt_critic, critic)
    critic = optax.apply_updates(critic, upd)
    # line 11: counterfactual advantage A_i = Q(S, A) - sum_a' w(a'|s_i) Q(S, (a', A^-i)), no gradient through Q
    q = jax.lax.stop_gradient(critic_q(critic, obs, acts, alive))
    b, n = acts.shape

    def actor_loss(a):
        logp = nets.actor_logp(a, rows(obs, 2), jnp).reshape(b, n, -1)
        pi = jnp.exp(logp)
        baseline = (pi * q).sum(-1)
        q_sa = jnp.take_along_axis(q, jnp.maximum(acts, 0)[..., None], -1)[..., 0]
        lp_a = jnp.take_along_axis(logp, jnp.maximum(acts, 0)[..., None], -1)[..., 0]
        adv = jax.lax.stop_gradient(q_sa - baseline)
        return -(lp_a * adv * alive).sum() / jnp.maximum(alive.sum(), 1.0)

    la, g = jax.value_and_grad(actor_loss)(actor)
    upd, opt_actor = opt.update(g, opt_actor, actor)
    actor = optax.apply_updates(actor, upd)
    return actor, critic, opt_actor, opt_critic, jnp.stack([lc, la])
