"""Exact MILP for ``qllms`` on the ground truth: the oracle partial-information methods are measured against.

``x[i, j, q]`` runs task i on server type j at level q, only for the truly admissible triples (the true
AQS: fits one GPU, the SLOs of ``data.slo`` met) that no cheaper, faster (and, with aggregate memory,
smaller) level dominates; ``y[i]`` sends it to the cloud (only where it has a cloud price). One row per
task; per server type one GPU-seconds row and, with ``memory = aggregate``, one memory (knapsack) row.
The objective is ``data.objective``'s (the seed's Σ δ c_j, or GPU-seconds cost). A generalized assignment
problem with an outside option; OR-Library GAP files are instances of it.
"""
from __future__ import annotations

import itertools
import time

import numpy as np
import pyomo.environ as pe

from edgeopt import anytime
from edgeopt.limits import Count
from edgeopt.problems.qllms import Instance, Solution
from edgeopt.registry import method
from edgeopt.result import Outcome
from edgeopt.solvers import exact_method


def _candidates(instance: Instance) -> np.ndarray:
    """(M, N, Q) the truly admissible triples that no other level on the same server dominates.

    Level q' dominates q at (i, j) when it costs no more and takes no more of any resource (GPU-seconds,
    and GB with aggregate memory), strictly less in one, or equal in all with q' < q: swapping q for q'
    keeps every solution feasible and no dearer, so dropping dominated levels keeps the optimum. With
    costs proportional to latency and per-task memory, one level per (i, j) survives.
    """
    d = instance.data
    ok = d.admissible(d.lat, d.ttft, d.ppl)
    key = np.concatenate([d.edge_cost(d.lat)[..., None], d.usage(d.lat)], axis=-1)
    key = np.where(ok[..., None], key, np.inf)
    keep = ok.copy()
    Q = ok.shape[2]
    for q in range(Q):
        for p in range(Q):
            if p == q:
                continue
            le = ok[:, :, p] & (key[:, :, p] <= key[:, :, q]).all(axis=-1)
            strict = (key[:, :, p] < key[:, :, q]).any(axis=-1) | (p < q)
            keep[:, :, q] &= ~(le & strict)
    return keep


def _most_tasks(use: np.ndarray, ok: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Per server type, the most tasks it can hold: k tasks take at least the k smallest usages of each resource.

    ``use`` (M, N, Q, R), ``ok`` (M, N, Q) the admissible options, ``cap`` (N, R). Valid for every feasible
    assignment, and it cuts the LP's fractional packing of many small tasks (with costs that do not depend on the
    latency, the seed's delta-cost, HiGHS otherwise spends minutes closing gaps of a few cents on 30 tasks).
    """
    least = np.where(ok[..., None], use, np.inf).min(axis=2)  # (M, N, R): each task's smallest usage on j
    most = np.zeros(cap.shape[0], dtype=int)
    for j in range(cap.shape[0]):
        sizes = least[np.isfinite(least[:, j, 0]), j]
        if len(sizes):
            sizes = np.sort(sizes, axis=0).cumsum(axis=0)
            most[j] = min(np.searchsorted(sizes[:, r], cap[j, r] * (1 + 1e-9), side="right") for r in range(cap.shape[1]))
    return most


def build_model(instance: Instance) -> pe.ConcreteModel:
    """Exact MILP on the truth (HiGHS by default): admissible (task, server, level) binaries, cloud, capacity."""
    d = instance.data
    M, N, Q = d.shape
    admissible = _candidates(instance)
    ok = [tuple(int(v) for v in t) for t in np.argwhere(admissible)]
    cost = d.edge_cost(d.lat)
    use, cap = d.usage(d.lat), d.capacity
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
    m.capacity = pe.Constraint(  # (j, 0): GPU-seconds; (j, 1): GB held, with aggregate memory
        [(j, r) for j in range(N) if by_server[j] for r in range(cap.shape[1])],
        rule=lambda m, j, r: sum(float(use[t][r]) * m.x[t] for t in by_server[j]) <= float(cap[j, r]))
    most = _most_tasks(use, admissible, cap)
    m.count = pe.Constraint([j for j in range(N) if most[j] < len({t[0] for t in by_server[j]})],
                            rule=lambda m, j: sum(m.x[t] for t in by_server[j]) <= most[j])
    m.obj = pe.Objective(expr=sum(float(cost[t]) * m.x[t] for t in ok) + sum(float(d.cloud[i]) * m.y[i] for i in clouds),
                         sense=pe.minimize)
    return m


def model_size(instance: Instance) -> tuple[int, int, int]:
    """(variables, constraints, nonzeros) of ``build_model``, bounded from the task, server and level counts."""
    M, N, Q = instance.data.shape
    return M * N * Q + M + 1, M + 3 * N, 4 * M * N * Q + 2 * M


def read_solution(m: pe.ConcreteModel, instance: Instance) -> Solution:
    M = instance.data.shape[0]
    server, quant = np.full(M, -1), np.full(M, -1)
    for (i, j, q), var in m.x.items():
        if pe.value(var) > 0.5:
            server[i], quant[i] = j, q
    return Solution(server=server, quant=quant)


def warm_start(m: pe.ConcreteModel, instance: Instance, solution: Solution) -> None:
    """Set ``x``, ``y`` to ``solution`` as the referee runs it (a MIP start no dearer than its true cost).

    Edge tasks are taken in the solution's order until their server's GPU-seconds (or, with aggregate
    memory, its GB) run out, the rest go to the cloud; a triple the model leaves out becomes a kept level on
    the same server that costs no more and takes no more of any resource (one exists for every admissible
    triple), and a task without one goes to the cloud, as does a task whose edge cost is at least its cloud
    price (the seed's delta-cost on a GPU dearer than the cloud). A start holding such a triple made HiGHS
    1.16 return its LP bound as "optimal" (34.37 for the optimum 36.73 of ``generate("hetero", size=30,
    seed=0)``), and the method fell back to the start.
    """
    d = instance.data
    M = d.shape[0]
    cost = d.edge_cost(d.lat)
    use, cap = d.usage(d.lat), d.capacity
    kept: dict[tuple[int, int], list[int]] = {}
    for i, j, q in m.x:
        kept.setdefault((i, j), []).append(q)
    for v in [*m.x.values(), *m.y.values(), m.none]:
        v.set_value(0)
    load = np.zeros(cap.shape)
    for i in (range(M) if solution.order is None else solution.order):
        i, j, q = int(i), int(solution.server[i]), int(solution.quant[i])
        if j < 0 or np.isnan(d.lat[i, j, q]):
            levels = []
        else:
            load[j] += use[i, j, q]
            levels = [p for p in kept.get((i, j), []) if (use[i, j, p] <= use[i, j, q]).all() and cost[i, j, p] <= cost[i, j, q]
                      and not cost[i, j, p] >= d.cloud[i]]
        if levels and (load[j] <= cap[j]).all():
            m.x[i, j, min(levels, key=lambda p: (cost[i, j, p], d.lat[i, j, p]))].set_value(1)
        elif i in m.y:
            m.y[i].set_value(1)


STARTS = ("daa", "edf", "mef")  # the paper heuristic and two cheap baselines (melange solves an ILP itself)
BOUNDS = ("lagrange",)  # proved first (its LP bound in a fraction of a second at 2,000 tasks): a run cut short keeps it
milp = method("qllms", "milp", "exact")(exact_method(build_model, read_solution, warm_start=warm_start, starts=STARTS,
                                                     model_size=model_size, bounds=BOUNDS))


CONVERGED = 1e-7  # lagrange stops when Kelley's model proves its best bound within this (relative) of the LP bound
LP_DUALS_UP_TO = 1_000_000  # lagrange starts from the LP relaxation's duals when it has at most this many nonzeros


def _lp_duals(cost: np.ndarray, use: np.ndarray, cap: np.ndarray, cloud: np.ndarray, server: np.ndarray,
              time_limit: float | None) -> tuple[np.ndarray, float] | None:
    """The LP relaxation of the relaxed rows, solved once by HiGHS: its capacity duals (N * R, server-major) and
    its optimum, or None when it did not solve in time.

    Why: the Lagrangian dual's maximum is this LP's optimum (the relaxed problem has the integrality property)
    and the LP's duals maximize it; Kelley's cutting planes need thousands of iterates to get there when the
    multipliers are many (40 agents x 400 jobs of a GAP: 1,519 iterates, 75 s, against 1 s for the LP). The
    bound itself is still L(duals), evaluated by ``lagrange``: valid whatever the LP solver's accuracy.
    """
    from scipy.optimize import linprog
    from scipy.sparse import coo_array, csr_array

    M, K, R = use.shape
    N = cap.shape[0]
    task, option = np.nonzero(np.isfinite(cost))
    clouds = np.flatnonzero(np.isfinite(cloud))
    n_opt = len(task)
    c = np.r_[cost[task, option], cloud[clouds]]
    A_eq = coo_array((np.ones(n_opt + len(clouds)), (np.r_[task, clouds], np.arange(n_opt + len(clouds)))),
                     shape=(M, n_opt + len(clouds)))
    u = use[task, option]  # (n_opt, R)
    rows = (server[option][:, None] * R + np.arange(R)).ravel()
    cols = np.repeat(np.arange(n_opt), R)
    A_ub = coo_array((u.ravel(), (rows, cols)), shape=(N * R, n_opt + len(clouds)))
    options = {} if time_limit is None else {"time_limit": max(time_limit, 1e-3)}
    lp = linprog(c, A_ub=csr_array(A_ub), b_ub=cap.ravel(), A_eq=csr_array(A_eq), b_eq=np.ones(M), bounds=(0, None),
                 method="highs-ipm", options=options)  # interior point + crossover: 0.4 s where dual simplex took 7
                                                       # (60 agents x 900 jobs), the same duals
    if lp.status != 0:
        return None
    return np.maximum(-lp.ineqlin.marginals, 0.0), float(lp.fun)


@method("qllms", "lagrange", "bound")
def lagrange(instance: Instance, *, seed: int = 0, time_limit: float | None = None,
             iterations: Count | None = None) -> Outcome:
    """Lower bound: Lagrangian relaxation of the capacity and count rows, multipliers by Kelley's cutting planes.

    Why it is valid: for multipliers ``mu >= 0`` (per unit of resource r of server type j: GPU-seconds,
    and GB with aggregate memory),
    ``L(mu) = sum_i min(cloud_i, min_jq cost_ijq + sum_r mu_jr use_ijqr) - sum_jr mu_jr cap_jr`` is at most
    the cost of every assignment that meets the capacities (the added terms ``mu_jr (load_jr - cap_jr)`` are <= 0),
    and so at most the MILP optimum, which is the least true cost any solution can be charged (a task
    charged for a failed SLO or an overflow pays at least its cloud price). Every iterate is such a
    bound; the best is reported. The relaxed problem has the integrality property, so the best ``mu``
    gives the LP-relaxation bound, at O(M N Q) per iterate instead of an LP with M rows. ``mu`` maximizes
    the cutting-plane model of the concave ``L`` in a box that grows when ``mu`` (or the best one) reaches its side.
    The MILP's count rows (``_most_tasks``: at most k tasks on server type j) are priced too, as one more
    resource every option uses once, so the dual optimum is the whole LP relaxation's bound.

    Convergence, not a fixed count: the model's maximum is an upper bound on ``max L`` within the box, so once it
    is within ``CONVERGED`` (relative) of the best value and neither maximizer is on the box's side, the best value
    is the LP bound to that precision and the method stops. ``iterations`` caps the iterates (default: none; the
    time limit and a stop request end it too, with the best bound so far).

    Up to ``LP_DUALS_UP_TO`` nonzeros (a GAP of 80 agents x 1,600 jobs has 256,000) the LP relaxation is solved
    once first and ``L`` evaluated at its duals: that is the maximum (``details.start = "lp duals"``, one iterate),
    where Kelley's planes took thousands of iterates with many multipliers. Beyond it, or if that LP does not
    solve in time, Kelley's planes as above (100,000 tasks on 8 server types: about 50 iterates).
    """
    from scipy.optimize import linprog

    start = time.perf_counter()
    d = instance.data
    M, N, Q = d.shape
    ok = _candidates(instance)
    cost = np.where(ok, d.edge_cost(d.lat), np.inf).reshape(M, N * Q)
    use = np.where(ok[..., None], d.usage(d.lat), 0.0)
    cap = d.capacity
    use = np.concatenate([use, ok[..., None].astype(float)], axis=-1)  # the count rows: one unit per task
    cap = np.concatenate([cap, _most_tasks(use[..., :-1], ok, cap)[:, None].astype(float)], axis=1)
    R = cap.shape[1]
    use = use.reshape(M, N * Q, R)
    server = np.repeat(np.arange(N), Q)
    cloud = np.where(np.isnan(d.cloud), np.inf, d.cloud)
    if not np.all(np.isfinite(np.minimum(cost.min(axis=1), cloud))):
        return Outcome(None, status="infeasible", solver="lagrange",
                       extra={"reason": "a task has no admissible edge option and no cloud price"})

    def dual(mu: np.ndarray) -> tuple[float, np.ndarray]:  # mu: (N * R,), server-major
        red = cost + np.einsum("mkr,kr->mk", use, mu.reshape(N, R)[server])
        pick = red.argmin(axis=1)
        best = red[np.arange(M), pick]
        edge = np.flatnonzero(best < cloud)
        load = np.zeros((N, R))
        np.add.at(load, server[pick[edge]], use[edge, pick[edge]])
        return float(np.minimum(best, cloud).sum() - mu @ cap.ravel()), (load - cap).ravel()

    with np.errstate(invalid="ignore", divide="ignore"):  # a box side: the dearest swap per unit of resource
        spread = np.nanmax(np.where(np.isfinite(cost), cost, np.nan), axis=1, initial=0.0)
        spread = np.maximum(spread, np.where(np.isfinite(cloud), cloud, 0.0))
        gain = (spread[:, None] - np.where(np.isfinite(cost), cost, np.inf))[..., None]
        per_unit = np.where(use > 0, gain / use, 0.0)
    box = np.maximum(np.array([per_unit[:, server == j].max(axis=(0, 1), initial=0.0) for j in range(N)]).ravel(), 1e-12)
    mu, cuts, values = np.zeros(N * R), [], []
    best, best_mu, it = -np.inf, mu, 0
    if np.isfinite(cost).sum() * (R + 1) <= LP_DUALS_UP_TO:
        found = _lp_duals(cost, use, cap, cloud, server, time_limit)
        if found is not None:
            value, _ = dual(found[0])
            if value >= found[1] - CONVERGED * max(1.0, abs(found[1])):  # the LP's optimum reached: converged
                return Outcome(None, status="bound", bound=value, solver="lagrange",
                               extra={"iterations": 1, "start": "lp duals", "multipliers": found[0].tolist()})
            mu = found[0]  # not quite there (the LP's tolerances): Kelley goes on from them
    for it in itertools.count(1) if iterations is None else range(1, iterations + 1):
        value, grad = dual(mu)
        if value > best:
            best, best_mu = value, mu
            anytime.report(bound=best)
        cuts.append(np.r_[-grad, 1.0])  # concave L: z <= L(mu_t) + g_t.(mu - mu_t) for every mu
        values.append(value - grad @ mu)
        if (time_limit is not None and time.perf_counter() - start > time_limit) or anytime.stop_requested():
            break
        lp = linprog(np.r_[np.zeros(N * R), -1.0], A_ub=np.array(cuts), b_ub=np.array(values),
                     bounds=[(0, b) for b in box] + [(None, None)], method="highs")
        mu, model = lp.x[:N * R], -lp.fun
        if model - best <= CONVERGED * max(1.0, abs(best)):
            hit = (mu >= box * (1 - 1e-9)) | (best_mu >= box * (1 - 1e-9))
            if not hit.any():
                break
            box[hit] *= 4  # the maximum may lie outside the box: widen it, the cuts stay valid
    return Outcome(None, status="bound", bound=best, solver="lagrange",
                   extra={"iterations": it, "multipliers": best_mu.tolist()})
