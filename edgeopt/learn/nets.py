"""The networks, each written once against an array module ``xp``: ``jax.numpy`` while training (jit, grad),
``numpy`` at inference, so a shipped policy runs without JAX and there is no second copy of a network.

Parameters are plain nested dicts of arrays, made here with NumPy. Every function takes a batch: observation
arrays with one leading axis (samples, or samples x agents flattened).

Two families of actor, chosen by the problem's observation layout (``family``), with one interface for every
algorithm: ``init``, ``encoder_init``/``encode``/``encoded_size`` (what the centralised critics read),
``table`` (the log-probability of every flat action, ``LOGP_MIN`` where masked), ``log_prob_entropy`` (of the
actions taken, for the policy-gradient losses), ``q_table`` (the same heads read as action values, for VDN and
QMIX) and ``q_value`` (the values of the actions taken, without the whole table).

``Graph`` (dagsched) is the seed's agent network (Liao et al. §4.1.1): a two-layer GCN (64 hidden) over the job's
DAG, global mean pooling and one linear map to the 16-dimensional task vector ``Task_i``; the policy reads
``s_i = (P_i, S, Task_i)``. The policy is factored as the action: a distribution over the job's sub-tasks and,
given the sub-task, one over the servers, so ``log w(a_i) = log w(sub_j) + log w(loc_k | sub_j)``.

``Factored`` (offload) reads the agent's feature vector through an MLP and has one head per part of the action
⟨edge m, steps o, cloud steps c⟩: ``log w(a) = log w(m) + log w(o | m) + log w(c | m, o)``, each softmax over the
options the mask leaves given the parts before it (the heads' logits do not depend on the earlier parts: action
branching). Its action values are the heads' sum, ``Q(m, o, c) = Q_m + Q_o + Q_c``.

``Routes`` (vcache) scores each route of the agent's request from the route's row of features and the best of all
rows (an MLP shared by the routes, max pooling), so one network serves any number of edges; the last action, idle,
scores 0. ``Diffusion`` (vcache's DLRS, the policy file's ``network.family``) makes the route logits by denoising:
the same route rows condition a noise-prediction MLP (per route, shared, with a learned embedding of the step),
and the logits are the end of a ``DENOISE_STEPS``-step DDPM reverse chain (VP schedule, as Diffusion-QL's) from
``x_K``; the noise of the chain (``x_K`` and each step's) is ``obs["noise"]`` when given (training draws it and
keeps it, so PPO's ratios read the same chain), else 0: the chain's mean from the prior's mean, deterministic.
"""
from __future__ import annotations

import numpy as np

LOGP_MIN = -1e9  # log-probability of a masked action


def dense(rng: np.random.Generator, n_in: int, n_out: int, scale: float = 1.0) -> dict:
    """Glorot-uniform weights, zero bias."""
    lim = scale * np.sqrt(6.0 / (n_in + n_out))
    return {"w": rng.uniform(-lim, lim, (n_in, n_out)).astype(np.float32), "b": np.zeros(n_out, np.float32)}


def mlp_init(rng: np.random.Generator, sizes: list[int], last_scale: float = 1.0) -> dict:
    return {f"l{k}": dense(rng, a, b, last_scale if k == len(sizes) - 2 else 1.0)
            for k, (a, b) in enumerate(zip(sizes, sizes[1:]))}


def _lin(p: dict, x, xp):
    return x @ p["w"] + p["b"]


def mlp(p: dict, x, xp):
    """ReLU between layers, none after the last."""
    n = len(p)
    for k in range(n):
        x = _lin(p[f"l{k}"], x, xp)
        if k < n - 1:
            x = xp.maximum(x, 0.0)
    return x


def gcn_init(rng: np.random.Generator, node_features: int, hidden: int, embed: int) -> dict:
    return {"g1": dense(rng, node_features, hidden), "g2": dense(rng, hidden, hidden), "out": dense(rng, hidden, embed)}


def gcn(p: dict, nodes, adjacency, xp):
    """(B, J, F) node features, (B, J, J) arcs -> (B, embed): two GCN layers on the symmetric normalised
    adjacency with self-loops (Kipf & Welling), mean over the job's sub-tasks, one linear map."""
    present = nodes[..., 0]  # 1 for a real sub-task, 0 for padding
    a = adjacency + xp.swapaxes(adjacency, -1, -2)
    eye = xp.eye(adjacency.shape[-1], dtype=adjacency.dtype)
    a = xp.minimum(a, 1.0) + eye * present[..., None]
    deg = a.sum(-1)
    inv = xp.where(deg > 0, 1.0 / xp.sqrt(xp.maximum(deg, 1e-12)), 0.0)
    a = a * inv[..., :, None] * inv[..., None, :]
    h = xp.maximum(a @ _lin(p["g1"], nodes, xp), 0.0) * present[..., None]
    h = xp.maximum(a @ _lin(p["g2"], h, xp), 0.0) * present[..., None]
    pooled = h.sum(-2) / xp.maximum(present.sum(-1, keepdims=True), 1.0)
    return _lin(p["out"], pooled, xp)


def encode(p_gcn: dict, obs: dict, xp):
    """The seed's s_i = (P_i, S, Task_i) as one vector per row: (B, J + S * F_s + embed)."""
    b = obs["progress"].shape[0]
    return xp.concatenate([obs["progress"], obs["servers"].reshape(b, -1),
                           gcn(p_gcn, obs["nodes"], obs["adjacency"], xp)], axis=-1)


def encoded_size(layout, embed: int) -> int:
    return layout.tasks + layout.servers * layout.server_features + embed


def actor_init(rng: np.random.Generator, layout, hidden: int = 64, embed: int = 16) -> dict:
    J, S = layout.tasks, layout.servers
    return {"gcn": gcn_init(rng, layout.node_features, hidden, embed),
            "body": mlp_init(rng, [encoded_size(layout, embed), hidden, hidden]),
            "sub": dense(rng, hidden, J, 0.01), "loc": dense(rng, hidden, J * S, 0.01)}


def _masked_log_softmax(x, mask, xp):
    z = xp.where(mask, x, LOGP_MIN)
    top = z.max(-1, keepdims=True)
    return z - top - xp.log(xp.exp(z - top).sum(-1, keepdims=True))


def _graph_heads(p: dict, obs: dict, xp):
    """The sub-task head's logits (B, tasks), the server head's (B, tasks, servers) and the mask (B, tasks, servers)."""
    x = encode(p["gcn"], obs, xp)
    h = xp.maximum(mlp(p["body"], x, xp), 0.0)
    b, J = x.shape[0], p["sub"]["w"].shape[1]
    S = p["loc"]["w"].shape[1] // J
    return _lin(p["sub"], h, xp), _lin(p["loc"], h, xp).reshape(b, J, S), obs["action_mask"].reshape(b, J, S) > 0


def actor_logp(p: dict, obs: dict, xp):
    """(B, tasks * servers) log-probabilities of the flat actions ``j * servers + k``; LOGP_MIN where masked."""
    sub, loc, mask = _graph_heads(p, obs, xp)
    sub = _masked_log_softmax(sub, mask.any(-1), xp)
    loc = _masked_log_softmax(loc, mask, xp)
    return xp.where(mask, sub[..., None] + loc, LOGP_MIN).reshape(mask.shape[0], -1)


def flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """Nested dict of arrays -> {"a/b/w": array} (the layout of policy files)."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = np.asarray(v)
    return out


def unflatten(flat: dict[str, np.ndarray]) -> dict:
    out: dict = {}
    for key, v in flat.items():
        node = out
        *path, last = key.split("/")
        for k in path:
            node = node.setdefault(k, {})
        node[last] = v
    return out


def _q_pairs(p: dict, obs: dict, xp):
    """The actor's heads read as values: Q(sub, loc) = sub + loc, LOGP_MIN where masked: (B, tasks * servers)."""
    sub, loc, mask = _graph_heads(p, obs, xp)
    return xp.where(mask, sub[..., None] + loc, LOGP_MIN).reshape(mask.shape[0], -1)


class Graph:
    """The dagsched actor (module docstring)."""

    @staticmethod
    def init(rng, layout, hidden: int, embed: int) -> dict:
        return actor_init(rng, layout, hidden, embed)

    @staticmethod
    def encoder_init(rng, layout, hidden: int, embed: int) -> dict:
        return gcn_init(rng, layout.node_features, hidden, embed)

    @staticmethod
    def encode(p: dict, obs: dict, xp):
        return encode(p, obs, xp)

    @staticmethod
    def encoded_size(layout, embed: int) -> int:
        return encoded_size(layout, embed)

    @staticmethod
    def table(p: dict, obs: dict, xp):
        return actor_logp(p, obs, xp)

    @staticmethod
    def log_prob_entropy(p: dict, obs: dict, actions, xp):
        """log w(a) of the actions taken and the policy's entropy, from the whole table (24 actions)."""
        return taken_and_entropy(actor_logp(p, obs, xp), actions, xp)

    @staticmethod
    def q_table(p: dict, obs: dict, xp):
        return _q_pairs(p, obs, xp)

    @staticmethod
    def q_value(p: dict, obs: dict, actions, xp):
        return xp.take_along_axis(_q_pairs(p, obs, xp), actions[:, None], -1)[:, 0]


class Factored:
    """The offload actor (module docstring); the last flat action is idle, the only one an inactive agent has."""

    @staticmethod
    def init(rng, layout, hidden: int, embed: int) -> dict:
        M, O, C = layout.parts
        return {"body": mlp_init(rng, [layout.features, hidden, hidden]), "edge": dense(rng, hidden, M, 0.01),
                "steps": dense(rng, hidden, O, 0.01), "cloud": dense(rng, hidden, C, 0.01)}

    @staticmethod
    def encoder_init(rng, layout, hidden: int, embed: int) -> dict:
        return {}

    @staticmethod
    def encode(p: dict, obs: dict, xp):
        return obs["obs"]

    @staticmethod
    def encoded_size(layout, embed: int) -> int:
        return layout.features

    @staticmethod
    def _heads(p: dict, obs: dict, xp):
        h = xp.maximum(mlp(p["body"], obs["obs"], xp), 0.0)
        heads = tuple(_lin(p[k], h, xp) for k in ("edge", "steps", "cloud"))
        b = h.shape[0]
        grid = obs["action_mask"][:, :-1].reshape((b,) + tuple(x.shape[1] for x in heads)) > 0
        return heads, grid, obs["action_mask"][:, -1] > 0

    @staticmethod
    def table(p: dict, obs: dict, xp):
        (lm, lo, lc), grid, idle = Factored._heads(p, obs, xp)
        log_m = _masked_log_softmax(lm, grid.any((2, 3)), xp)
        log_o = _masked_log_softmax(lo[:, None, :], grid.any(3), xp)
        log_c = _masked_log_softmax(lc[:, None, None, :], grid, xp)
        t = xp.where(grid, log_m[:, :, None, None] + log_o[..., None] + log_c, LOGP_MIN).reshape(grid.shape[0], -1)
        return xp.concatenate([t, xp.where(idle, 0.0, LOGP_MIN)[:, None]], axis=-1)

    @staticmethod
    def log_prob_entropy(p: dict, obs: dict, actions, xp):
        """log w(a) of the actions taken (0 for the idle action, certain for an inactive agent) and the entropy of
        the chain at them, H(m) + H(o | m_a) + H(c | m_a, o_a): one sample of the joint entropy's chain rule."""
        (lm, lo, lc), grid, idle = Factored._heads(p, obs, xp)
        b, M, O, C = grid.shape
        still = actions >= M * O * C  # the idle action
        a = xp.where(still, 0, actions)
        m, o, c = a // (O * C), (a // C) % O, a % C
        g_m = xp.take_along_axis(grid, m[:, None, None, None], 1)[:, 0]  # (B, O, C) given m
        g_o = xp.take_along_axis(g_m, o[:, None, None], 1)[:, 0]  # (B, C) given m, o
        lp, ent = 0.0, 0.0
        for logits, ok, k in ((lm, grid.any((2, 3)), m), (lo, g_m.any(-1), o), (lc, g_o, c)):
            logp = _masked_log_softmax(logits, ok, xp)
            pi = xp.where(ok, xp.exp(logp), 0.0)
            lp = lp + xp.take_along_axis(logp, k[:, None], -1)[:, 0]
            ent = ent - (pi * xp.where(ok, logp, 0.0)).sum(-1)
        return xp.where(still, 0.0, lp), xp.where(still, 0.0, ent)

    @staticmethod
    def q_table(p: dict, obs: dict, xp):
        (lm, lo, lc), grid, idle = Factored._heads(p, obs, xp)
        q = lm[:, :, None, None] + lo[:, None, :, None] + lc[:, None, None, :]
        t = xp.where(grid, q, LOGP_MIN).reshape(grid.shape[0], -1)
        return xp.concatenate([t, xp.where(idle, 0.0, LOGP_MIN)[:, None]], axis=-1)

    @staticmethod
    def q_value(p: dict, obs: dict, actions, xp):
        """Q_m + Q_o + Q_c of the actions taken (0 for the idle action) from the heads alone."""
        h = xp.maximum(mlp(p["body"], obs["obs"], xp), 0.0)
        lm, lo, lc = (_lin(p[k], h, xp) for k in ("edge", "steps", "cloud"))
        O, C = lo.shape[1], lc.shape[1]
        still = actions >= lm.shape[1] * O * C
        a = xp.where(still, 0, actions)
        parts = ((lm, a // (O * C)), (lo, (a // C) % O), (lc, a % C))
        q = sum(xp.take_along_axis(x, k[:, None], -1)[:, 0] for x, k in parts)
        return xp.where(still, 0.0, q)


def taken_and_entropy(logp, actions, xp):
    """From a whole (B, actions) table: the log-probabilities of the actions taken and the policy's entropy."""
    lp = xp.take_along_axis(logp, actions[:, None], -1)[:, 0]
    pi = xp.exp(logp)
    return lp, -(pi * xp.where(pi > 0, logp, 0.0)).sum(-1)


class Routes:
    """The vcache actor (module docstring); the last flat action is idle, the only one an agent without a request
    has."""

    @staticmethod
    def init(rng, layout, hidden: int, embed: int) -> dict:
        return {"row": mlp_init(rng, [layout.features, hidden, hidden]),
                "score": mlp_init(rng, [2 * hidden, hidden, 1], 0.01)}

    @staticmethod
    def encoder_init(rng, layout, hidden: int, embed: int) -> dict:
        return {}

    @staticmethod
    def encode(p: dict, obs: dict, xp):
        return obs["routes"].reshape(obs["routes"].shape[0], -1)

    @staticmethod
    def encoded_size(layout, embed: int) -> int:
        return layout.routes * layout.features

    @staticmethod
    def condition(p: dict, obs: dict, xp):
        """(B, routes, 2 hidden): each route's row encoded, beside the maximum over the routes."""
        h = xp.maximum(mlp(p["row"], obs["routes"], xp), 0.0)
        return xp.concatenate([h, xp.broadcast_to(h.max(1, keepdims=True), h.shape)], axis=-1)

    @staticmethod
    def logits(p: dict, obs: dict, xp):
        return mlp(p["score"], Routes.condition(p, obs, xp), xp)[..., 0]

    @classmethod
    def table(cls, p: dict, obs: dict, xp):
        x = cls.logits(p, obs, xp)
        x = xp.concatenate([x, xp.zeros_like(x[:, :1])], axis=-1)  # idle
        mask = obs["action_mask"] > 0
        return xp.where(mask, _masked_log_softmax(x, mask, xp), LOGP_MIN)

    @classmethod
    def log_prob_entropy(cls, p: dict, obs: dict, actions, xp):
        return taken_and_entropy(cls.table(p, obs, xp), actions, xp)


DENOISE_STEPS = 10  # the seed's DLRS: 10 denoising steps
X0_MAX = 10.0  # the denoised route logits are squashed into (-X0_MAX, X0_MAX)


def vp_schedule(k: int) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, alpha_bar) of the discretised VP SDE (beta from 0.1 to 10), Diffusion-QL's schedule for few steps."""
    t = np.arange(1, k + 1)
    alpha = np.exp(-0.1 / k - 0.5 * (10.0 - 0.1) * (2 * t - 1) / k**2)
    return alpha, np.cumprod(alpha)


class Diffusion(Routes):
    """DLRS's actor (module docstring): route logits denoised in DENOISE_STEPS steps, conditioned on the routes."""

    @staticmethod
    def init(rng, layout, hidden: int, embed: int) -> dict:
        return {"row": mlp_init(rng, [layout.features, hidden, hidden]),
                "step": (0.1 * rng.standard_normal((DENOISE_STEPS, embed))).astype(np.float32),
                "eps": mlp_init(rng, [2 * hidden + 1 + embed, hidden, 1], 0.01)}

    @staticmethod
    def logits(p: dict, obs: dict, xp):
        cond = Routes.condition(p, obs, xp)
        b, r, _ = cond.shape
        K = DENOISE_STEPS
        alpha, abar = vp_schedule(K)
        noise = obs.get("noise")  # (B, K + 1, routes): x_K's and each step's
        x = noise[:, K] if noise is not None else xp.zeros((b, r), cond.dtype)
        for k in range(K, 0, -1):
            step = xp.broadcast_to(p["step"][k - 1], (b, r, p["step"].shape[1]))
            eps = mlp(p["eps"], xp.concatenate([cond, x[..., None], step], axis=-1), xp)[..., 0]
            x0 = (x - np.sqrt(1 - abar[k - 1]) * eps) / np.sqrt(abar[k - 1])
            x0 = X0_MAX * xp.tanh(x0 / X0_MAX)
            if k == 1:
                return x0
            prev = abar[k - 2]  # the DDPM posterior q(x_{k-1} | x_k, x_0)
            beta = 1 - alpha[k - 1]
            x = (beta * np.sqrt(prev) * x0 + (1 - prev) * np.sqrt(alpha[k - 1]) * x) / (1 - abar[k - 1])
            if noise is not None:
                x = x + np.sqrt(beta * (1 - prev) / (1 - abar[k - 1])) * noise[:, k - 1]
        return x


def family(layout, name: str | None = None):
    """The actor family ``name`` (a policy header's ``network.family``), else the observation layout's
    ``network``: graph, factored, routes or diffusion."""
    return {"graph": Graph, "factored": Factored, "routes": Routes,
            "diffusion": Diffusion}[name or getattr(layout, "network", "graph")]
