"""Learned methods: multi-agent RL algorithms (JAX + optax, the ``learn`` extra) and the policies they train.

    edgeopt train dagsched -m ucb-coma --preset paper --episodes 700 --seed 0 -o ucb-coma-paper.npz
    edgeopt solve p5.json -m ucb-coma                           # the shipped policy, NumPy only

Training steps a problem's decision process (``edgeopt.systems``; the environments of ``edgeopt.envs`` are
views of the same process) and writes a policy file (``policy``). Inference needs NumPy only: the networks
(``nets``) are written once against an array module. ``edgeopt.learn.<problem>`` registers a problem's
learned methods (kind ``learned``) and imports no JAX; the algorithms (``coma``, ``mappo``, ``maddpg``) and
the driver (``train``) do.
"""
from __future__ import annotations

# algorithm name -> (module, hyper-parameter overrides); one module may hold two variants (COMA, UCB-COMA)
ALGORITHMS = {
    "ucb-coma": ("edgeopt.learn.coma", {"ucb": True}),
    "coma": ("edgeopt.learn.coma", {}),
    "mappo": ("edgeopt.learn.mappo", {}),
    "maddpg": ("edgeopt.learn.maddpg", {}),
}
