"""Exact MILP for ``qllms`` on the ground truth: the oracle partial-information methods are measured against.

``x[i, j, q]`` runs task i on server type j at level q, only for the truly admissible triples (the true
AQS: fits in memory, latency and perplexity SLOs met) that no cheaper-and-faster level dominates; ``y[i]`` sends it to the cloud (only where it
has a cloud price). One row per task, one GPU-seconds row per server type. A generalized assignment
problem with an outside option; OR-Library GAP files are instances of it.
"""
from __future__ import annotations

import time

import numpy as np
import pyomo.environ as pe

from edgeopt.problems.qllms import Instance, Solution
from edgeopt.registry import method
from edgeopt.result import Outcome
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


def warm_start(m: pe.ConcreteModel, instance: Instance, solution: Solution) -> None:
    """Set ``x``, ``y`` to ``solution`` as the referee runs it (a MIP start no dearer than its true cost).

    Edge tasks are taken in the solution's order until their server's GPU-seconds run out, the rest go to
    the cloud; a triple the model leaves out becomes a kept level on the same server that costs no more
    and takes no longer (one exists for every admissible triple), and a task without one goes to the cloud.
    """
    d = instance.data
    M, N, _ = d.shape
    cost = d.edge_cost(d.lat)
    kept: dict[tuple[int, int], list[int]] = {}
    for i, j, q in m.x:
        kept.setdefault((i, j), []).append(q)
    for v in [*m.x.values(), *m.y.values(), m.none]:
        v.set_value(0)
    load = np.zeros(N)
    for i in (range(M) if solution.order is None else solution.order):
        i, j, q = int(i), int(solution.server[i]), int(solution.quant[i])
        if j < 0 or np.isnan(d.lat[i, j, q]):
            levels = []
        else:
            load[j] += d.lat[i, j, q]
            levels = [p for p in kept.get((i, j), []) if d.lat[i, j, p] <= d.lat[i, j, q] and cost[i, j, p] <= cost[i, j, q]]
        if levels and load[j] <= d.cap[j]:
            m.x[i, j, min(levels, key=lambda p: (cost[i, j, p], d.lat[i, j, p]))].set_value(1)
        elif i in m.y:
            m.y[i].set_value(1)


STARTS = ("daa", "edf", "mef")  # the paper heuristic and two cheap baselines (melange solves an ILP itself)
milp = method("qllms", "milp", "exact")(exact_method(build_model, read_solution, warm_start=warm_start, starts=STARTS))


@method("qllms", "lagrange", "bound")
def lagrange(instance: Instance, *, seed: int = 0, time_limit: float | None = None, iterations: int = 300) -> Outcome:
    """Lower bound: Lagrangian relaxation of the capacity rows, multipliers by Kelley's cutting planes.

    Why it is valid: for multipliers ``mu >= 0`` (per GPU-second of server type j),
    ``L(mu) = sum_i min(cloud_i, min_jq cost_ijq + mu_j lat_ijq) - sum_j mu_j cap_j`` is at most the cost
    of every assignment that meets the capacities (the added terms ``mu_j (load_j - cap_j)`` are <= 0),
    and so at most the MILP optimum, which is the least true cost any solution can be charged (a task
    charged for a failed SLO or an overflow pays at least its cloud price). Every iterate is such a
    bound; the best is reported. The relaxed problem has the integrality property, so the best ``mu``
    gives the LP-relaxation bound, at O(M N Q) per iterate instead of an LP with M rows. ``mu`` maximizes
    the cutting-plane model of the concave ``L`` in a box that grows when ``mu`` reaches its side.
    """
    from scipy.optimize import linprog

    start = time.perf_counter()
    d = instance.data
    M, N, Q = d.shape
    ok = _candidates(instance)
    cost = np.where(ok, d.edge_cost(d.lat), np.inf).reshape(M, N * Q)
    lat = np.where(ok, d.lat, 0.0).reshape(M, N * Q)
    server = np.repeat(np.arange(N), Q)
    cloud = np.where(np.isnan(d.cloud), np.inf, d.cloud)
    if not np.all(np.isfinite(np.minimum(cost.min(axis=1), cloud))):
        return Outcome(None, status="infeasible", solver="lagrange",
                       extra={"reason": "a task has no admissible edge option and no cloud price"})

    def dual(mu: np.ndarray) -> tuple[float, np.ndarray]:
        red = cost + mu[server] * lat
        pick = red.argmin(axis=1)
        best = red[np.arange(M), pick]
        edge = best < cloud
        load = np.bincount(server[pick[edge]], weights=lat[np.flatnonzero(edge), pick[edge]], minlength=N)
        return float(np.minimum(best, cloud).sum() - mu @ d.cap), load - d.cap

    with np.errstate(invalid="ignore", divide="ignore"):  # a box side: the dearest swap per GPU-second
        spread = np.nanmax(np.where(np.isfinite(cost), cost, np.nan), axis=1, initial=0.0)
        spread = np.maximum(spread, np.where(np.isfinite(cloud), cloud, 0.0))
        per_s = np.where(lat > 0, (spread[:, None] - np.where(np.isfinite(cost), cost, np.inf)) / lat, 0.0)
    box = np.maximum(np.array([per_s[:, server == j].max(initial=0.0) for j in range(N)]), 1e-12)
    mu, cuts, values = np.zeros(N), [], []
    best, best_mu, it = -np.inf, mu, 0
    for it in range(1, iterations + 1):
        value, grad = dual(mu)
        if value > best:
            best, best_mu = value, mu
        cuts.append(np.r_[-grad, 1.0])  # concave L: z <= L(mu_t) + g_t.(mu - mu_t) for every mu
        values.append(value - grad @ mu)
        if time_limit is not None and time.perf_counter() - start > time_limit:
            break
        lp = linprog(np.r_[np.zeros(N), -1.0], A_ub=np.array(cuts), b_ub=np.array(values),
                     bounds=[(0, b) for b in box] + [(None, None)], method="highs")
        mu, model = lp.x[:N], -lp.fun
        if model - best <= 1e-9 * max(1.0, abs(best)):
            hit = mu >= box * (1 - 1e-9)
            if not hit.any():
                break
            box[hit] *= 4  # the maximum may lie outside the box: widen it, the cuts stay valid
    return Outcome(None, status="bound", bound=best, solver="lagrange",
                   extra={"iterations": it, "multipliers": best_mu.tolist()})
