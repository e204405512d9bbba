"""VDN (Sunehag et al. 2018) and QMIX (Rashid et al. 2018), the TS-MITO seed's value-based baselines: each agent's
action values Q_i(o_i, a) from one network shared by the agents, combined into the team's Q_tot and trained on the
team reward by Q-learning from a replay pool.

VDN: ``Q_tot = sum_i Q_i(o_i, a_i)``. QMIX: ``Q_tot = w2(S) . elu(W1(S) q + b1(S)) + V(S)`` over the alive
agents' values q, the weights made by hypernetworks of the global state S (every agent's encoded observation)
and kept non-negative (absolute values), so Q_tot is monotone in every Q_i and each agent's greedy action is the
team's. The network is the problem's actor family read as values (``q_table``; offload: ``Q_m + Q_o + Q_c``, one
head per part of the action). While training, epsilon-greedy over the open actions, epsilon falling linearly
from ``eps_start`` to ``eps_end`` over the first ``eps_fraction`` of the episodes; double-Q targets
``r + discount Q_tot'(S', argmax_a Q(S', a))`` from a target network copied every ``target_every`` updates.
The seed names these baselines and gives no hyper-parameters; ours are the PyMARL defaults scaled to 700
episodes (lr 5e-4, batch 32 joint steps, replay 5,000, target every 50 updates, mixer 32, epsilon 1 -> 0.05 over
half the episodes), the discount of the other learners.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from edgeopt.learn import nets
from edgeopt.learn.coma import _leaves, _restore
from edgeopt.learn.common import (Fraction, Positive, Rate, Replay, Width, optimizer, rows, split, step_item, to_jax,
                                  to_numpy)
from edgeopt.limits import Count

SCORES = "q"  # the policy file's actor holds action values: the greedy action is the policy


@dataclass
class Hyper:
    lr: Rate = 5e-4
    discount: Fraction = 0.95
    batch: Count = 32
    replay: Count = 5_000
    update_every: Count = 1  # joint steps between updates
    target_every: Count = 50  # updates between copies of the target networks
    eps_start: Fraction = 1.0
    eps_end: Fraction = 0.05
    eps_fraction: Fraction = 0.5
    hidden: Width = 64
    embed: Width = 16
    mixer_hidden: Width = 32
    clip: Positive = 10.0
    mixer: Literal["vdn", "qmix"] = "vdn"


def mixer_init(rng, layout, agents: int, h: Hyper) -> dict:
    """QMIX's hypernetworks of the global state (VDN has none)."""
    if h.mixer == "vdn":
        return {}
    net = nets.family(layout)
    state = agents * net.encoded_size(layout, h.embed)
    return {"enc": net.encoder_init(rng, layout, h.hidden, h.embed),
            "w1": nets.dense(rng, state, agents * h.mixer_hidden), "b1": nets.dense(rng, state, h.mixer_hidden),
            "w2": nets.dense(rng, state, h.mixer_hidden), "v": nets.mlp_init(rng, [state, h.mixer_hidden, 1])}


def mix(p: dict, q, obs, alive, *, net, h: Hyper):
    """Q_tot (B,) of the alive agents' values q (B, agents)."""
    q = q * alive
    if h.mixer == "vdn":
        return q.sum(-1)
    b, n = alive.shape
    s = (net.encode(p["enc"], rows(obs, 2), jnp).reshape(b, n, -1) * alive[..., None]).reshape(b, -1)
    w1 = jnp.abs(nets._lin(p["w1"], s, jnp)).reshape(b, n, -1)
    hidden = jax.nn.elu(jnp.einsum("bn,bnm->bm", q, w1) + nets._lin(p["b1"], s, jnp))
    return (hidden * jnp.abs(nets._lin(p["w2"], s, jnp))).sum(-1) + nets.mlp(p["v"], s, jnp)[:, 0]


class Learner:
    def __init__(self, layout, agents: int, hyper: Hyper, seed: int, episodes: int):
        self.layout, self.n, self.h, self.episodes = layout, agents, hyper, episodes
        self.net, self.keys = nets.family(layout), tuple(layout.shapes())
        rng = np.random.default_rng(seed)
        self.actor = self.net.init(rng, layout, hyper.hidden, hyper.embed)  # the agents' Q network
        self.mixer = mixer_init(rng, layout, agents, hyper)
        self.target = {"q": self.actor, "mixer": self.mixer}
        self.opt = optimizer(hyper.lr, hyper.clip)
        self.opt_state = self.opt.init(to_jax({"q": self.actor, "mixer": self.mixer}))
        self.replay = Replay(hyper.replay)
        self.rng = rng
        self.step = self.updates = 0
        self._update = jax.jit(partial(_update, opt=self.opt, h=hyper, net=self.net))

    def act(self, obs: dict, episode: int) -> np.ndarray:
        """Epsilon-greedy over each alive agent's open actions; -1 for the others."""
        h = self.h
        frac = min(1.0, episode / max(1.0, h.eps_fraction * self.episodes))
        eps = h.eps_start + (h.eps_end - h.eps_start) * frac
        q = self.net.q_table(self.actor, obs, np)
        greedy = np.argmax(q, axis=-1)
        mask = obs["action_mask"] > 0
        uniform = np.argmax(np.where(mask, self.rng.random(mask.shape), -1.0), axis=-1)
        acts = np.where(self.rng.random(len(greedy)) < eps, uniform, greedy)
        return np.where(obs["alive"], acts, -1)

    def record(self, obs, actions, rewards, nxt, done) -> None:
        self.replay.add(step_item(obs, actions, rewards.sum(), nxt, done, self.keys))
        self.step += 1
        if self.step % self.h.update_every == 0 and self.replay.size >= self.h.batch:
            params, self.opt_state, self.last_loss = self._update(
                to_jax({"q": self.actor, "mixer": self.mixer}), to_jax(self.target), self.opt_state,
                to_jax(self.replay.sample(self.rng, self.h.batch)))
            params = to_numpy(params)
            self.actor, self.mixer = params["q"], params["mixer"]
            self.updates += 1
            if self.updates % self.h.target_every == 0:
                self.target = {"q": self.actor, "mixer": self.mixer}

    def end_episode(self, episode: int) -> None:
        pass

    def state(self) -> dict:
        return {"actor": self.actor, "mixer": self.mixer, "target": self.target, "opt": _leaves(self.opt_state),
                "replay": self.replay.state(), "counters": {"steps": np.array([self.step, self.updates])}}

    def load(self, s: dict) -> None:
        self.actor, self.mixer, self.target = s["actor"], s.get("mixer", {}), s["target"]
        self.target.setdefault("mixer", {})
        self.opt_state = _restore(self.opt_state, s["opt"])
        self.replay.load(s["replay"])
        self.step, self.updates = (int(x) for x in s["counters"]["steps"])


def _update(params, target, opt_state, batch, *, opt, h: Hyper, net):
    obs, nxt = split(batch, "obs"), split(batch, "next")
    alive, n_alive = batch["alive"].astype(jnp.float32), batch["next_alive"].astype(jnp.float32)
    b, n = alive.shape
    acts = jnp.maximum(batch["actions"], 0)
    # double Q: the online network picks the next actions, the target network values them
    best = jnp.argmax(net.q_table(params["q"], rows(nxt, 2), jnp).reshape(b, n, -1), -1)
    q_next = net.q_value(target["q"], rows(nxt, 2), best.reshape(-1), jnp).reshape(b, n)
    y = batch["reward"] + h.discount * (1 - batch["done"]) * mix(target["mixer"], q_next, nxt, n_alive, net=net, h=h)
    y = jax.lax.stop_gradient(y)

    def loss(p):
        q = net.q_value(p["q"], rows(obs, 2), acts.reshape(-1), jnp).reshape(b, n)
        return ((mix(p["mixer"], q, obs, alive, net=net, h=h) - y) ** 2).mean()

    lv, g = jax.value_and_grad(loss)(params)
    upd, opt_state = opt.update(g, opt_state, params)
    return optax.apply_updates(params, upd), opt_state, lv
