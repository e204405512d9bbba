"""The networks, each written once against an array module ``xp``: ``jax.numpy`` while training (jit, grad),
``numpy`` at inference, so a shipped policy runs without JAX and there is no second copy of a network.

Parameters are plain nested dicts of arrays, made here with NumPy. Every function takes a batch: observation
arrays with one leading axis (samples, or samples x agents flattened).

The seed's agent network (Liao et al. §4.1.1): a two-layer GCN (64 hidden) over the job's DAG, global mean
pooling and one linear map to the 16-dimensional task vector ``Task_i``; the policy reads
``s_i = (P_i, S, Task_i)``. The policy is factored as the action: a distribution over the job's sub-tasks and,
given the sub-task, one over the servers, so ``log w(a_i) = log w(sub_j) + log w(loc_k | sub_j)``.
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


def actor_logp(p: dict, obs: dict, xp):
    """(B, tasks * servers) log-probabilities of the flat actions ``j * servers + k``; LOGP_MIN where masked."""
    x = encode(p["gcn"], obs, xp)
    h = xp.maximum(mlp(p["body"], x, xp), 0.0)
    b, J = x.shape[0], p["sub"]["w"].shape[1]
    S = p["loc"]["w"].shape[1] // J
    mask = obs["action_mask"].reshape(b, J, S) > 0
    sub = _masked_log_softmax(_lin(p["sub"], h, xp), mask.any(-1), xp)
    loc = _masked_log_softmax(_lin(p["loc"], h, xp).reshape(b, J, S), mask, xp)
    return xp.where(mask, sub[..., None] + loc, LOGP_MIN).reshape(b, J * S)


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
