"""Exact MILP for ``qllms`` on the ground truth: the oracle partial-information methods are measured against.

``x[i, j, q]`` runs task i on server type j at level q, only for the truly admissible triples (the true
AQS: fits in memory, latency and perplexity SLOs met) that no cheaper-and-faster level dominates; ``y[i]`` sends it to the cloud (only where it
has a cloud price). One row per task, one GPU-seconds row per server type. A generalized assignment
problem with an outside option; OR-Library GAP files are instances of it.
"""
from __future__ import annotations

import numpy as np
import pyomo.environ as pe

from edgeopt.problems.qllms import Instance, Solution
from edgeopt.registry import method
from edgeopt.solvers import exact_method


def _candidates(instance: Instance) -> np.ndarray:
    """(M, N, Q) the truly admissible triples that no other level on the same server dominates.

    Level q' dominates q at (i, j) when it costs no more and takes no more GPU-seconds (strictly less in
    one, or equal in both with q' < q): swapping q for q' keeps every solution feasible and no dearer,
    so dropping dominated levels keeps the optimum. With costs proportional to latency, one level per
    (i, j) survives.
    """
    d = instance.data
    with np.errstate(invalid="ignore"):
        ok = (d.fits & (d.lat <= d.slo_lat[:, None, None])
              & (d.ppl <= d.slo_ppl[:, None])[:, None, :] & ~np.isnan(d.lat))
    cost = np.where(ok, d.edge_cost(d.lat), np.inf)
    lat = np.where(ok, d.lat, np.inf)
    keep = ok.copy()
    Q = ok.shape[2]
    for q in range(Q):
        for p in range(Q):
            if p == q:
                continue
            le = ok[:, :, p] & (cost[:, :, p] <= cost[:, :, q]) & (lat[:, :, p] <= lat[:, :, q])
            strict = (cost[:, :, p] < cost[:, :, q]) | (lat[:, :, p] < lat[:, :, q]) | (p < q)
            keep[:, :, q] &= ~(le & strict)
    return keep


def build_model(instance: Instance) -> pe.ConcreteModel:
    """Exact MILP on the truth (HiGHS by default): admissible (task, server, level) binaries, cloud, capacity."""
    d = instance.data
    M, N, Q = d.shape
    ok = [tuple(int(v) for v in t) for t in np.argwhere(_candidates(instance))]
    cost = d.edge_cost(d.lat)
    clouds = [i for i in range(M) if not np.isnan(d.cloud[i])]
    by_task: dict[int, list] = {i: [] for i in range(M)}
    by_server: dict[int, list] = {j: [] for j in range(N)}
    for t in ok:
        by_task[t[0]].append(t)
        by_server[t[1]].append(t)

    m = pe.ConcreteModel(name=f"qllms_{instance.name}")
    m.x = pe.Var(ok, domain=pe.Binary)
    m.y = pe.Var(clouds, domain=pe.Binary)
    m.none = pe.Var(bounds=(0, 0))  # keeps the row of a task without any option a (violated) constraint
    m.assign = pe.Constraint(range(M), rule=lambda m, i: sum(m.x[t] for t in by_task[i])
                             + (m.y[i] if i in m.y else 0) + m.none == 1)
    m.capacity = pe.Constraint(
        [j for j in range(N) if by_server[j]],
        rule=lambda m, j: sum(float(d.lat[t]) * m.x[t] for t in by_server[j]) <= float(d.cap[j]))
    m.obj = pe.Objective(expr=sum(float(cost[t]) * m.x[t] for t in ok) + sum(float(d.cloud[i]) * m.y[i] for i in clouds),
                         sense=pe.minimize)
    return m


def read_solution(m: pe.ConcreteModel, instance: Instance) -> Solution:
    M = instance.data.shape[0]
    server, quant = np.full(M, -1), np.full(M, -1)
    for (i, j, q), var in m.x.items():
        if pe.value(var) > 0.5:
            server[i], quant[i] = j, q
    return Solution(server=server, quant=quant)


milp = method("qllms", "milp", "exact")(exact_method(build_model, read_solution))
