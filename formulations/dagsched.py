"""Exact models for ``dagsched``: a MILP (HiGHS) and a CP-SAT model, both started from a referee-checked schedule.

MILP variables: ``x[t,s]`` sub-task t on server s (modality-feasible pairs only); ``S[t]``, ``E[t]`` its
start and finish; ``y[e,a,b]`` the assignment pair of DAG edge e (k on a, t on b; continuous, exact
because its row and column sums are ``x[k,a]`` and ``x[t,b]``), which prices the transfer; ``o[p,q]``
p before q when both share an edge server (only for pairs not ordered by precedence).

The referee starts a sub-task as soon as it may (``ST = max(WT, EN of the one before it)``) and
``T_i`` is measured from the job's first start, so delaying a job's first sub-task would shorten its
``T_i``: the model must not be free to wait. Hence ``S[t]`` equals one of its lower bounds, chosen by
binaries ``u`` (0 for a source, the arrival from a predecessor, or the finish of a sub-task queued
before it on the same edge). Every big-M is ``H``, the sum over sub-tasks of their longest duration
plus every edge's longest transfer: no start or finish of a schedule without voluntary waits exceeds it
(follow the chain of whatever each start waited for back to time 0; it visits each sub-task and edge
at most once).

The CP-SAT model (``cpsat``) forbids waits with circuits instead; see its docstring. Both start, by
default, from the better by the referee of the ``list`` heuristic (found through the registry: formulations
never import the heuristics) and their own ``greedy_start``; ``start=`` gives another start or none
(``solvers.choose_start``), and neither returns anything worse than its start (``solvers.no_worse``).
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import replace

import numpy as np
import pyomo.environ as pe

from edgeopt import anytime
from edgeopt.limits import MipGap, Threads
from edgeopt.problems.dagsched import Instance, Solution, placement
from edgeopt.registry import method
from edgeopt.result import Outcome
from edgeopt.solvers import (AUTO, choose_start, exact_method, no_worse, prove_bound, proven_start, round_bound,
                             round_to_step)
from edgeopt.solvers.cpsat import solve as cpsat_solve
from edgeopt.solvers.pyomo import DEFAULT_GAP, Start, solver_limit


def _fixed(instance: Instance) -> tuple[dict[int, int], list[list[int]]]:
    """``data.fixed`` as (server of every fixed sub-task, the fixed prefix of every edge queue)."""
    d, g = instance.data, instance.data.graph
    if d.fixed is None:
        return {}, [[] for _ in range(g.N)]
    prefixes = [[g.index(i, j) for i, j in q] for q in d.fixed.prefix] or [[] for _ in range(g.N)]
    fixed_at = {t: n for n, q in enumerate(prefixes) for t in q}
    fixed_at.update({g.index(i, j): g.cloud for i, j in d.fixed.cloud})
    return fixed_at, prefixes


def _servers(g, fixed_at: dict[int, int]) -> dict[int, list[int]]:
    """The servers each sub-task may run on: its fixed one, else every modality-feasible one."""
    return {t: ([fixed_at[t]] if t in fixed_at else [s for s in range(g.S) if g.ok[t, s]]) for t in range(g.T)}


def _ancestors(g) -> list[set[int]]:
    anc: list[set[int]] = [set() for _ in range(g.T)]
    for t in g.order:
        for k, _ in g.preds[t]:
            anc[t] |= anc[k] | {k}
    return anc


def build_model(instance: Instance) -> pe.ConcreteModel:
    """Exact MILP (HiGHS by default): assignment x order with big-M from the instance, exact start times."""
    d = instance.data
    g = d.graph
    T, cloud = g.T, g.cloud
    fixed_at, prefixes = _fixed(instance)
    prefix_pos = {t: k for q in prefixes for k, t in enumerate(q)}
    srv = _servers(g, fixed_at)
    X = [(t, s) for t in range(T) for s in srv[t]]
    edges = [(k, t, bits) for t in range(T) for k, bits in g.preds[t]]
    xfer = {(e, a, b): bits * g.inv[a, b] for e, (k, t, bits) in enumerate(edges) for a in srv[k] for b in srv[t]}
    H = float(sum(g.dur[t, srv[t]].max() for t in range(T)) + sum(max(xfer[e, a, b] for a in srv[k] for b in srv[t])
                                                                     for e, (k, t, _) in enumerate(edges)))
    H = max(H, 1e-9)
    anc = _ancestors(g)
    edge_srv = {t: [s for s in srv[t] if s != cloud] for t in range(T)}
    pairs = [(p, q) for p in range(T) for q in range(p + 1, T)
             if p not in anc[q] and q not in anc[p] and set(edge_srv[p]) & set(edge_srv[q])]

    m = pe.ConcreteModel(name=f"dagsched_{instance.name}")
    m.x = pe.Var(X, domain=pe.Binary)
    m.S = pe.Var(range(T), bounds=(0, H))
    m.E = pe.Var(range(T), bounds=(0, H))
    m.assign = pe.Constraint(range(T), rule=lambda m, t: sum(m.x[t, s] for s in srv[t]) == 1)
    m.finish = pe.Constraint(range(T), rule=lambda m, t: m.E[t] == m.S[t] + sum(g.dur[t, s] * m.x[t, s] for s in srv[t]))

    # transfers priced by the assignment pair of each DAG edge
    m.y = pe.Var(list(xfer), bounds=(0, 1))
    E_ = range(len(edges))
    m.y_row = pe.Constraint([(e, a) for e in E_ for a in srv[edges[e][0]]],
                            rule=lambda m, e, a: sum(m.y[e, a, b] for b in srv[edges[e][1]]) == m.x[edges[e][0], a])
    m.y_col = pe.Constraint([(e, b) for e in E_ for b in srv[edges[e][1]]],
                            rule=lambda m, e, b: sum(m.y[e, a, b] for a in srv[edges[e][0]]) == m.x[edges[e][1], b])

    def arrival(e):
        k, t, _ = edges[e]
        return m.E[k] + sum(xfer[e, a, b] * m.y[e, a, b] for a in srv[k] for b in srv[t] if xfer[e, a, b] > 0)

    m.data_ready = pe.Constraint(E_, rule=lambda m, e: m.S[edges[e][1]] >= arrival(e))

    # one queue per edge server: p before q or q before p when they share it
    fixed_pair = {}
    for p, q in pairs:
        if p in prefix_pos and q in prefix_pos and fixed_at[p] == fixed_at[q]:
            fixed_pair[p, q] = 1 if prefix_pos[p] < prefix_pos[q] else 0
        elif p in prefix_pos and q not in fixed_at:
            fixed_pair[p, q] = 1  # a fixed prefix runs before anything added to its server
        elif q in prefix_pos and p not in fixed_at:
            fixed_pair[p, q] = 0
    m.o = pe.Var(pairs, domain=pe.Binary)
    for pq, v in fixed_pair.items():
        m.o[pq].fix(v)
    share = [(p, q, n) for p, q in pairs for n in set(edge_srv[p]) & set(edge_srv[q])]
    m.q_before = pe.Constraint(share, rule=lambda m, p, q, n:
                               m.S[q] >= m.E[p] - H * (3 - m.x[p, n] - m.x[q, n] - m.o[p, q]))
    m.q_after = pe.Constraint(share, rule=lambda m, p, q, n:
                              m.S[p] >= m.E[q] - H * (2 - m.x[p, n] - m.x[q, n] + m.o[p, q]))

    # exact start: S[t] equals one of its lower bounds
    in_edges: dict[int, list[int]] = {t: [] for t in range(T)}
    for e, (_, t, _) in enumerate(edges):
        in_edges[t].append(e)
    partners: dict[int, list[int]] = {t: [] for t in range(T)}
    for p, q in pairs:
        partners[p].append(q)
        partners[q].append(p)
    U = [(t, "src", -1) for t in range(T) if not in_edges[t]]
    U += [(t, "pred", e) for t in range(T) for e in in_edges[t]]
    U += [(t, "queue", p) for t in range(T) if edge_srv[t] for p in partners[t]]
    m.u = pe.Var(U, domain=pe.Binary)
    by_t: dict[int, list] = {t: [] for t in range(T)}
    for k in U:
        by_t[k[0]].append(k)
    m.u_one = pe.Constraint(range(T), rule=lambda m, t: sum(m.u[k] for k in by_t[t]) == 1)

    def tight(m, t, kind, r):
        if kind == "src":
            return m.S[t] <= H * (1 - m.u[t, kind, r])
        if kind == "pred":
            return m.S[t] <= arrival(r) + H * (1 - m.u[t, kind, r])
        return m.S[t] <= m.E[r] + H * (1 - m.u[t, kind, r])

    m.u_tight = pe.Constraint(U, rule=tight)
    Q = [k for k in U if k[1] == "queue"]

    def before(m, t, p):  # u[t, queue, p] only if p runs before t ...
        return m.o[p, t] if p < t else 1 - m.o[t, p]

    m.u_order = pe.Constraint(Q, rule=lambda m, t, kind, p: m.u[t, kind, p] <= before(m, t, p))
    # ... on the same edge server as t
    m.u_same = pe.Constraint([(t, kind, p, n) for t, kind, p in Q for n in edge_srv[t]],
                             rule=lambda m, t, kind, p, n: m.u[t, kind, p] <= 1 - m.x[t, n]
                             + (m.x[p, n] if n in srv[p] else 0))
    m.u_edge = pe.Constraint(Q, rule=lambda m, t, kind, p: m.u[t, kind, p]
                             <= sum(m.x[t, n] for n in set(edge_srv[t]) & set(edge_srv[p])))

    # job latency from the first start (a source) to the sink's finish plus the return
    I = len(d.jobs)
    m.first = pe.Var(range(I), bounds=(0, H))
    m.first_le = pe.Constraint([(i, t) for i in range(I) for t in g.entries[i]],
                               rule=lambda m, i, t: m.first[i] <= m.S[t])
    sink = g.sink

    def latency(m, i):
        return m.E[sink[i]] - m.first[i] + sum(g.ret[sink[i], s] * m.x[sink[i], s] for s in srv[sink[i]])

    m.T = pe.Expression(range(I), rule=latency)
    if d.t_max_s is not None:
        m.t_max = pe.Constraint(range(I), rule=lambda m, i: m.T[i] <= d.t_max_s)
    cost = sum(g.cost[t, s] * m.x[t, s] for t, s in X)
    m.obj = pe.Objective(expr=d.gamma * sum(m.T[i] for i in range(I)) + (1 - d.gamma) * cost, sense=pe.minimize)
    m.dag_info = {"srv": srv, "anc": anc}
    return m


def model_size(instance: Instance) -> tuple[int, int, int]:
    """(variables, constraints, nonzeros) of ``build_model``, bounded from the sub-task, server and DAG edge
    counts: the ordering binaries and rows are per pair of sub-tasks that can share an edge server (counted per
    server from the modality table, so an upper bound)."""
    g = instance.data.graph
    T, S, N = g.T, g.S, g.N
    E = sum(len(p) for p in g.preds)
    on_edge = g.ok[:, :N].sum(axis=0).astype(np.int64)  # sub-tasks each edge server can run
    share = int((on_edge * (on_edge - 1) // 2).sum())
    X, y, pairs = int(g.ok.sum()), E * S * S, min(T * (T - 1) // 2, share)
    U, Q = T + E + 2 * pairs, 2 * pairs
    variables = X + 3 * T + y + pairs + U
    constraints = 3 * T + 2 * E * S + E + 2 * share + U + Q * (N + 2)
    return variables, constraints, 3 * X + 4 * T + 4 * y + E * S * S + 10 * share + 4 * U + 4 * Q * (N + 1)


def read_solution(m: pe.ConcreteModel, instance: Instance) -> Solution:
    """Servers from ``x``; each edge queue ordered by how many of its sub-tasks ``o`` (or precedence) puts first."""
    g = instance.data.graph
    srv, anc = m.dag_info["srv"], m.dag_info["anc"]
    where = {t: max(srv[t], key=lambda s: pe.value(m.x[t, s])) for t in range(g.T)}

    def first(p: int, q: int) -> bool:
        if p in anc[q] or q in anc[p]:
            return p in anc[q]
        return pe.value(m.o[p, q]) > 0.5 if p < q else pe.value(m.o[q, p]) < 0.5

    order: list[list[list[int]]] = [[] for _ in range(g.N)]
    for n in range(g.N):
        on = [t for t in range(g.T) if where[t] == n]
        rank = {t: sum(first(p, t) for p in on if p != t) for t in on}
        order[n] = [list(g.name(t)) for t in sorted(on, key=lambda t: (rank[t], pe.value(m.S[t]), t))]
    cloud = [list(g.name(t)) for t in range(g.T) if where[t] == g.cloud]
    return Solution(order=order, cloud=cloud)


def warm_start(m: pe.ConcreteModel, instance: Instance, solution: Solution) -> None:
    """Set the MILP's variables to ``solution`` timed as the referee times it: a MIP start.

    Each ``u`` picks the lower bound its start equals: the latest data arrival, else the finish of the
    one before it in its queue, else 0 (a source).
    """
    g = instance.data.graph
    where, queues = placement(instance, solution)
    start, finish, _ = g.times(where, queues)
    before = {b: a for q in queues for a, b in itertools.pairwise(q)}
    rank = {t: k for q in queues for k, t in enumerate(q)}
    for (t, s), v in m.x.items():
        v.set_value(float(where[t] == s))
    for t in range(g.T):
        m.S[t].set_value(start[t])
        m.E[t].set_value(finish[t])
    edges = [(k, t) for t in range(g.T) for k, _ in g.preds[t]]
    for (e, a, b), v in m.y.items():
        v.set_value(float(where[edges[e][0]] == a and where[edges[e][1]] == b))
    for (p, q), v in m.o.items():
        if not v.fixed:
            v.set_value(float(where[p] == where[q] and p in rank and rank[p] < rank[q]))
    tight = {}
    for e, (k, t) in enumerate(edges):
        bits = next(b for kk, b in g.preds[t] if kk == k)
        if finish[k] + bits * g.inv[where[k], where[t]] >= start[t]:
            tight.setdefault(t, (t, "pred", e))
    for t in range(g.T):
        if t not in tight:
            tight[t] = (t, "queue", before[t]) if t in before else (t, "src", -1)
    for k, v in m.u.items():
        v.set_value(float(tight[k[0]] == k))
    for i, ents in enumerate(g.entries):
        m.first[i].set_value(min(start[t] for t in ents))


# --- starts ---------------------------------------------------------------------------------------

def greedy_start(instance: Instance) -> Solution:
    """Append-only list schedule, the exact methods' own start: cheap, and never needs the heuristics.

    Sub-tasks job by job in topological order (after the fixed ones); each goes to the server where
    gamma * (its job's latency so far) + (1 - gamma) * cost is least, ties to the earliest finish.
    """
    d, g = instance.data, instance.data.graph
    where, queues = _fixed(instance)
    queues = [list(q) for q in queues]
    start, finish, _ = g.times(where, queues)
    I = len(d.jobs)
    first, last = [math.inf] * I, [-math.inf] * I
    for t in where:
        i = g.job[t]
        first[i], last[i] = min(first[i], start[t]), max(last[i], finish[t])
    tail = [finish[q[-1]] if q else 0.0 for q in queues]
    for t in g.order:
        if t in where:
            continue
        i, best = g.job[t], None
        for s in range(g.S):
            if not g.ok[t, s]:
                continue
            st = max((finish[k] + bits * g.inv[where[k], s] for k, bits in g.preds[t]), default=0.0)
            if s != g.cloud:
                st = max(st, tail[s])
            en = st + g.dur[t, s]
            lat = max(last[i], en) - min(first[i], st) + (g.ret[t, s] if t == g.sink[i] else 0.0)
            score = (d.gamma * lat + (1 - d.gamma) * g.cost[t, s], en, s, st)
            best = score if best is None or score < best else best
        _, en, s, st = best
        where[t], start[t], finish[t] = s, st, en
        first[i], last[i] = min(first[i], st), max(last[i], en)
        if s != g.cloud:
            queues[s].append(t)
            tail[s] = en
    return Solution(order=[[g.name(t) for t in q] for q in queues],
                    cloud=[g.name(t) for t in range(g.T) if where[t] == g.cloud])


def objective_step(instance: Instance) -> float | None:
    """The step every feasible objective is a multiple of, or None: ``gamma`` when every duration, transfer and
    return time is a whole number of seconds and cost does not count (gamma = 1, or all costs 0).

    Then every start and finish is a sum of whole numbers (the referee starts a sub-task at the latest of its
    data arrivals and the finish before it), so each T_i is whole, and a lower bound b proves ``ceil(b)``:
    the integrality rounding of Kasahara's STG graphs (integer costs, identical processors, no transfers).
    """
    d, g = instance.data, instance.data.graph
    if d.gamma <= 0 or (d.gamma < 1 and np.any(g.cost[g.ok] != 0)):
        return None
    sinks = np.asarray(g.sink)
    times = [g.dur[g.ok], g.ret[sinks][g.ok[sinks]]]
    times += [bits * g.inv[np.ix_(np.flatnonzero(g.ok[k]), np.flatnonzero(g.ok[t]))].ravel()
              for t in range(g.T) for k, bits in g.preds[t] if bits]
    whole = all(np.array_equal(v, np.round(v)) for v in times if v.size)
    return float(d.gamma) if whole else None


STARTS = ("list", greedy_start)  # the exact methods' default starts, the better by the referee wins
BOUNDS = ("paths",)  # proved first (milliseconds): a run cut short before its solver proves anything keeps it
milp = method("dagsched", "milp", "exact")(
    exact_method(build_model, read_solution, warm_start=warm_start, starts=STARTS, bounds=BOUNDS,
                 model_size=model_size, objective_step=objective_step, bound_row=True))


# --- CP-SAT ---------------------------------------------------------------------------------------

MAX_TICKS_PER_S = 1e9  # nanoseconds, unless the objective would pass 2**50
PROVE_SHARE = 0.5  # of a time-limited one-thread run's main solve spent on the proof before LNS takes over


@method("dagsched", "cpsat", "exact")
def cpsat(instance: Instance, *, seed: int = 0, time_limit: float | None = None, mip_gap: MipGap | None = None,
          threads: Threads | None = None, start=AUTO, solver_options: dict | None = None) -> Outcome:
    """Exact CP-SAT model (OR-Tools): optional intervals, one circuit per edge queue, exact start times.

    Cheap proofs first: a start that meets the ``paths`` bound (rounded up where the objective is whole,
    ``objective_step``) is returned as optimal before any model is built, and on P|prec|Cmax instances
    (``_identical_processors``: the STG graphs) a cumulative model replaces the circuits (``_cumulative``).

    Each (sub-task, server) option is an optional interval; the edge queues are no-overlap sets and
    also circuits whose arcs name the sub-task run just before each one, so that a start is exactly
    ``max(data arrivals, finish of the one before)`` as the referee computes it (no voluntary waits:
    delaying a job's first sub-task would shorten its T_i). Times relative to each job's first start
    repeat the DAG's precedence, so that CP-SAT propagates a lower bound of every T_i. Each job is
    first solved alone: in any schedule its sub-tasks start no earlier than in its schedule alone
    (same servers, same order) shifted to its first start, so that optimum bounds its share of the
    objective; these cuts are most of the bound on large instances, and the jobs' schedules alone,
    merged by start time, are one more candidate start.

    CP-SAT needs integers: times are ticks of 1/K s (K = 1e9 unless the objective would pass 2**50),
    each duration at least one tick on an edge, costs in units of gamma / K. The claim is CP-SAT's
    objective in seconds and dollars; the referee's value of the same schedule differs from it by at
    most ``delta`` (see ``_scale``, about 1e-7 relative on the presets), which is also subtracted from
    the bound and added to T_max so that the bound stays valid. ``threads`` workers (default 1:
    deterministic for a seed; with a time limit, an unproven main solve's second half runs CP-SAT's LNS, see
    ``PROVE_SHARE``); ``mip_gap`` as the MILP's (default 1e-6); ``solver_options``: CP-SAT parameters for every
    run (e.g. ``max_deterministic_time``: a limit that does not depend on the machine's speed). The start
    (``STARTS`` by default) is the hint, and is returned if CP-SAT ends with nothing better.
    """
    from ortools.sat.python import cp_model

    began = time.perf_counter()
    d, g = instance.data, instance.data.graph
    first = choose_start(instance, start, STARTS, seed=seed)
    if first.solution is not None:
        anytime.report(first.solution, claimed=float(first.evaluation.objective))
    prove_bound(instance, first, BOUNDS, time_limit)
    done = proven_start(instance, first, mip_gap)
    if done is not None:
        return done
    step = objective_step(instance)
    gap = DEFAULT_GAP if mip_gap is None else float(mip_gap)
    if _identical_processors(instance):
        return round_bound(instance, no_worse(instance, _cumulative(instance, first, threads, seed, gap, time_limit,
                                                                    solver_options), first), step, gap)
    fixed_at, prefixes = _fixed(instance)
    srv = _servers(g, fixed_at)
    cp = _CpSat(instance, srv, prefixes)
    bound_of = lambda sv: sv.best_objective_bound * cp.sc["unit"] - cp.sc["delta"]

    def run(model, budget, improve=False, whole=None):
        """One CP-SAT run; ``whole``: the whole instance's (x, arcs_of), whose solutions and bounds are reported
        as they come (see ``edgeopt.anytime``)."""
        solver = cp_model.CpSolver()
        prm = solver.parameters
        prm.num_workers = 1 if threads is None else int(threads)
        prm.random_seed = int(seed) % 2**31  # CP-SAT takes a 32-bit seed
        prm.relative_gap_limit = gap
        if solver_limit(budget) is not None:
            prm.max_time_in_seconds = budget
        prm.interleave_search = prm.use_lns_only = improve
        for key, value in (solver_options or {}).items():
            setattr(prm, key, value)
        if whole is None:
            return solver, cpsat_solve(solver, model)
        x, arcs_of = whole
        return solver, cpsat_solve(solver, model, solution=lambda cb: _read_cpsat(g, cb, x, arcs_of),
                                   value=lambda v: v * cp.sc["unit"], bound=lambda b: b * cp.sc["unit"] - cp.sc["delta"])

    def left():
        return None if time_limit is None else time_limit - (time.perf_counter() - began)

    try:
        model, x, arcs_of, job_obj, _ = cp.model(range(g.T), None if time_limit is None else began + time_limit)
    except TimeoutError:  # building alone took the whole limit
        return no_worse(instance, Outcome(None, status="time_limit", solver="cp-sat"), first)
    if first.bound is not None:  # the proved bound as a row: the search ends as soon as an incumbent meets it
        least = (first.bound - cp.sc["delta"]) / cp.sc["unit"]
        model.add(sum(job_obj.values()) >= math.ceil(least - 1e-9 * max(1.0, abs(least))))
    I = len(d.jobs)
    alone: dict[int, tuple[int, float]] = {}  # sub-task -> (server, start) in its job's schedule alone
    for i in range(I if I > 1 else 0):  # each job alone: a bound on its part (half the time left at most)
        budget = left()
        if (budget is not None and budget <= 0) or anytime.stop_requested():
            break
        m_i, x_i, _, _, S_i = cp.model(range(g.offset[i], g.offset[i] + d.jobs.sizes[i]))
        solver, code = run(m_i, None if budget is None else budget / 2 / (I - i))
        if code == cp_model.INFEASIBLE:
            return Outcome(None, status="infeasible", solver="cp-sat")
        if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            model.add(job_obj[i] >= math.ceil(solver.best_objective_bound - 1e-6))
            alone.update({t: (s, solver.value(S_i[t])) for (t, s), lit in x_i.items() if solver.boolean_value(lit)})
    if len(alone) == g.T:  # the jobs' own best schedules, merged into the queues by start time
        merged = choose_start(instance, _merge(g, prefixes, alone))
        if merged.solution is not None and (first.solution is None
                                            or merged.evaluation.objective < first.evaluation.objective):
            first = replace(first, source="jobs alone, merged", solution=merged.solution, evaluation=merged.evaluation,
                            note=None)
            anytime.report(first.solution, claimed=float(first.evaluation.objective))
    if first.solution is not None:
        _hint(model, x, arcs_of, *placement(instance, first.solution))
    budget = left()
    if (budget is not None and budget <= 0) or anytime.stop_requested():
        return no_worse(instance, Outcome(None, status="time_limit", solver="cp-sat"), first)
    # on one thread CP-SAT runs a single tree search and no large-neighbourhood search (LNS): good at proofs,
    # but on large instances it hardly moves from the start. So a time-limited one-thread run searches for a
    # proof for PROVE_SHARE of its time and, if it has none, runs CP-SAT's LNS neighbourhoods on the thread
    # from the best schedule so far; the better schedule and the better bound are kept
    one_thread = threads is None or int(threads) == 1
    split = budget is not None and one_thread
    runs = [run(model, budget * PROVE_SHARE if split else budget, whole=(x, arcs_of))]
    if split and runs[0][1] in (cp_model.FEASIBLE, cp_model.UNKNOWN) and left() > 0 and not anytime.stop_requested():
        if runs[0][1] == cp_model.FEASIBLE:
            model.clear_hints()
            _hint(model, x, arcs_of, *placement(instance, _read_cpsat(g, runs[0][0], x, arcs_of)))
        runs.append(run(model, left(), improve=True, whole=(x, arcs_of)))
    codes = [code for _, code in runs]
    if cp_model.INFEASIBLE in codes:
        return Outcome(None, status="infeasible", solver="cp-sat")
    if cp_model.MODEL_INVALID in codes:
        raise RuntimeError(f"CP-SAT rejected the model: {model.validate()}")
    bound = max(bound_of(sv) for sv, _ in runs)
    found = [(sv.objective_value, k) for k, (sv, code) in enumerate(runs)
             if code in (cp_model.OPTIMAL, cp_model.FEASIBLE)]
    if not found:
        out = Outcome(None, status="time_limit", bound=bound, solver="cp-sat")
        return round_bound(instance, no_worse(instance, out, first), step, gap)
    solver = runs[min(found)[1]][0]
    claimed = solver.objective_value * cp.sc["unit"]
    out = Outcome(_read_cpsat(g, solver, x, arcs_of), claimed=claimed,
                  status="optimal" if cp_model.OPTIMAL in codes else "time_limit", bound=bound,
                  gap=abs(claimed - bound) / max(abs(claimed), 1e-10), solver="cp-sat",
                  extra={"cpsat_phases": [sv.status_name(code) for sv, code in runs]})
    return round_bound(instance, no_worse(instance, out, first), step, gap)


def _identical_processors(instance: Instance) -> bool:
    """Whether the instance is P|prec|Cmax: one job, no fixed part, every sub-task on the edge servers only, each
    with one duration, return time and cost on all of them, and no transfer costs time. Then N queues are N units
    of one resource (``_cumulative``): the queues' identities and the arcs between them need not be searched."""
    d, g = instance.data, instance.data.graph
    if len(d.jobs) != 1 or d.fixed is not None or g.N < 1 or g.S > g.N and g.ok[:, g.N:].any():
        return False
    edge = slice(0, g.N)
    same = (g.ok[:, edge].all() and (g.dur[:, edge] == g.dur[:, :1]).all() and (g.cost[:, edge] == g.cost[:, :1]).all()
            and (g.ret[:, edge] == g.ret[:, :1]).all())
    moved = any(bits and g.inv[:g.N, :g.N].any() for t in range(g.T) for _, bits in g.preds[t])
    zero_inside = any(g.dur[t, 0] == 0 and g.preds[t] and g.succs[t] for t in range(g.T))
    return bool(same) and not moved and not zero_inside


def _cumulative(instance: Instance, first: Start, threads, seed: int, gap: float, time_limit: float | None,
                solver_options: dict | None) -> Outcome:
    """CP-SAT on P|prec|Cmax (``_identical_processors``): start times, precedence, one cumulative of capacity N.

    Any such schedule becomes queues at least as early by the referee: sorted by start, each sub-task goes to a
    server free at its start (one is, as at most N run at once), and the referee starts everything no later than
    the model (a start is the latest of its predecessors' finishes and the finish before it in its queue, both no
    later by induction). So the model's optimum is the instance's. Zero-duration sub-tasks are sources (start 0)
    or the sink (``_identical_processors`` leaves other instances to the circuits), and ride along on a free server. Ticks: whole seconds where every duration
    is whole, else ``_scale``'s K; a duration rounds by half a tick, a path by T / 2 ticks (subtracted from the bound).
    The start is not a hint: it misses the bound row (else ``proven_start`` had returned it), and CP-SAT measurably
    loses time repairing it (STG rand0004 on 2 processors: 0.3-4.8 s with it, 1.5-2.1 s without, seeds 0-2).
    """
    from ortools.sat.python import cp_model

    began = time.perf_counter()
    d, g = instance.data, instance.data.graph
    whole = np.array_equal(g.dur[:, 0], np.round(g.dur[:, 0]))
    K = 1.0 if whole else _scale(instance, {t: [0] for t in range(g.T)}, [])["K"]
    delta = 0.0 if whole else g.T / 2 / K
    dur = [int(round(g.dur[t, 0] * K)) for t in range(g.T)]
    H = sum(dur)
    m = cp_model.CpModel()
    S = [m.new_int_var(0, H, f"S{t}") for t in range(g.T)]
    m.add_cumulative([m.new_fixed_size_interval_var(S[t], dur[t], f"I{t}") for t in range(g.T)], [1] * g.T, g.N)
    for t in range(g.T):
        for k, _ in g.preds[t]:
            m.add(S[t] >= S[k] + dur[k])
    sink = g.sink[0]
    span = S[sink] + dur[sink]  # every sub-task is an ancestor of the job's one sink
    for t in range(g.T):
        if dur[t] == 0 and not g.preds[t]:
            m.add(S[t] == 0)
    if d.t_max_s is not None:  # T = span + the sink's return <= T_max
        m.add(span <= math.floor(((d.t_max_s - g.ret[sink, 0]) + delta) * K * (1 + 1e-9)))
    m.minimize(span)
    const = d.gamma * g.ret[sink, 0] + (1 - d.gamma) * g.cost[:, 0].sum()
    if first.bound is not None:
        m.add(span >= math.ceil(((first.bound - const) / d.gamma - delta) * K - 1e-9 * max(1.0, first.bound * K))
              if d.gamma > 0 else span >= 0)
    solver = cp_model.CpSolver()
    prm = solver.parameters
    prm.num_workers = 1 if threads is None else int(threads)
    prm.random_seed = int(seed) % 2**31
    prm.relative_gap_limit = gap
    left = None if time_limit is None else time_limit - (time.perf_counter() - began)
    if solver_limit(left) is not None:
        prm.max_time_in_seconds = max(left, 0.0)
    for key, value in (solver_options or {}).items():
        setattr(prm, key, value)
    code = cpsat_solve(solver, m)
    if code == cp_model.INFEASIBLE:
        return Outcome(None, status="infeasible", solver="cp-sat")
    if code == cp_model.MODEL_INVALID:
        raise RuntimeError(f"CP-SAT rejected the model: {m.validate()}")
    bound = d.gamma * (solver.best_objective_bound / K - delta) + const
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Outcome(None, status="time_limit", bound=bound, solver="cp-sat")
    free = [0] * g.N  # each server's last finish, in ticks
    order: list[list[int]] = [[] for _ in range(g.N)]
    for t in sorted(range(g.T), key=lambda t: (solver.value(S[t]), dur[t], t)):
        n = next(n for n in range(g.N) if free[n] <= solver.value(S[t]))
        order[n].append(t)
        free[n] = solver.value(S[t]) + dur[t]
    claimed = d.gamma * solver.objective_value / K + const
    return Outcome(Solution(order=[[g.name(t) for t in q] for q in order], cloud=[]), claimed=claimed,
                   status="optimal" if code == cp_model.OPTIMAL else "time_limit", bound=bound,
                   gap=abs(claimed - bound) / max(abs(claimed), 1e-10), solver="cp-sat",
                   extra={"model": "cumulative (identical processors)"})


def _hint(model, x: dict, arcs_of: list[dict], where: dict[int, int], queues: list[list[int]]) -> None:
    """Hint a schedule: its servers and, per edge queue, the arcs of its order."""
    for ts, lit in x.items():
        model.add_hint(lit, where[ts[0]] == ts[1])
    for n, arcs in enumerate(arcs_of):
        chain = set(zip([-1] + queues[n], queues[n] + [-1])) if queues[n] else {(-1, -1)}
        for ab, lit in arcs.items():
            model.add_hint(lit, ab in chain)


class _CpSat:
    """Builds the CP-SAT model of any set of whole jobs of an instance, on one integer scale."""

    def __init__(self, instance: Instance, srv: dict[int, list[int]], prefixes: list[list[int]]):
        self.srv, self.prefixes = srv, prefixes
        g = self.g = instance.data.graph
        self.anc = _ancestors(g)
        self.edges = [(k, t, bits) for t in range(g.T) for k, bits in g.preds[t]]
        self.sc = _scale(instance, srv, self.edges)
        K = self.sc["K"]
        self.dur = {(t, s): max(round(g.dur[t, s] * K), int(s != g.cloud)) for t in range(g.T) for s in srv[t]}
        self.xfer = [{(a, b): round(bits * g.inv[a, b] * K) for a in srv[k] for b in srv[t]}
                     for k, t, bits in self.edges]

    def model(self, tasks, deadline: float | None = None):
        """(model, x[t, s], per edge server {(a, b): arc literal} with -1 the depot, per job its objective, S[t]).

        Raises TimeoutError once ``deadline`` (``time.perf_counter()``) has passed: the queue arcs grow
        with the square of the sub-tasks a server may run.
        """
        from ortools.sat.python import cp_model

        g, srv, anc, sc, dur = self.g, self.srv, self.anc, self.sc, self.dur
        tasks = list(tasks)
        inside = set(tasks)
        edges = [(e, k, t) for e, (k, t, _) in enumerate(self.edges) if t in inside]
        H = sum(max(dur[t, s] for s in srv[t]) for t in tasks) + sum(max(self.xfer[e].values()) for e, _, _ in edges)
        m = cp_model.CpModel()
        S = {t: m.new_int_var(0, H, f"S{t}") for t in tasks}
        E = {t: m.new_int_var(0, H, f"E{t}") for t in tasks}
        x = {(t, s): m.new_bool_var(f"x{t}_{s}") for t in tasks for s in srv[t]}
        run = {t: sum(dur[t, s] * x[t, s] for s in srv[t]) for t in tasks}
        for t in tasks:
            m.add_exactly_one(x[t, s] for s in srv[t])
            m.add(E[t] == S[t] + run[t])
        # data transfer along each DAG edge, priced by both ends' servers
        delay = {}
        for e, k, t in edges:
            vals = sorted(set(self.xfer[e].values()))
            delay[e] = vals[0] if len(vals) == 1 else m.new_int_var_from_domain(cp_model.Domain.from_values(vals), f"d{e}")
            if len(vals) > 1:
                for (a, b), v in self.xfer[e].items():
                    m.add(delay[e] == v).only_enforce_if(x[k, a], x[t, b])
        # edge queues: no overlap, and a circuit through the depot whose arcs fix the finish just before
        prev = {t: m.new_int_var(0, H, f"P{t}") if any(s != g.cloud for s in srv[t]) else 0 for t in tasks}
        arcs_of = []
        for n in range(g.N):
            on = [t for t in tasks if n in srv[t]]
            m.add_no_overlap([m.new_optional_fixed_size_interval_var(S[t], dur[t, n], x[t, n], f"I{t}_{n}")
                              for t in on])
            pre = [t for t in self.prefixes[n] if t in inside]
            pos = {t: k for k, t in enumerate(pre)}
            arcs = {}
            for a in [-1] + on:
                if deadline is not None and time.perf_counter() > deadline:
                    raise TimeoutError
                arcs.update({(a, b): m.new_bool_var(f"a{n}_{a}_{b}") for b in on + [-1]
                             if a != b and _arc_allowed(a, b, pre, pos, anc)})
            node = {t: j + 1 for j, t in enumerate(on)}
            circuit = [(node.get(a, 0), node.get(b, 0), lit) for (a, b), lit in arcs.items()]
            circuit += [(node[t], node[t], ~x[t, n]) for t in on]
            if not pre:
                arcs[-1, -1] = m.new_bool_var(f"empty{n}")
                circuit.append((0, 0, arcs[-1, -1]))
            m.add_circuit(circuit)
            for (a, b), lit in arcs.items():
                if b != -1:
                    m.add(prev[b] == (E[a] if a != -1 else 0)).only_enforce_if(lit)
            arcs_of.append(arcs)
        # exact start: the latest of the data arrivals and the finish just before (0 on the cloud)
        arrivals: dict[int, list] = {t: [] for t in tasks}
        for e, k, t in edges:
            arrivals[t].append(E[k] + delay[e])
        for t in tasks:
            if g.cloud in srv[t] and len(srv[t]) > 1:
                m.add(prev[t] == 0).only_enforce_if(x[t, g.cloud])
            m.add_max_equality(S[t], arrivals[t] + [prev[t]])
        # T_i runs from the job's first start F_i; times relative to it repeat the DAG's precedence
        # so that CP-SAT propagates a lower bound of every T_i (absolute times alone do not)
        jobs = sorted({int(g.job[t]) for t in tasks})
        F = {i: m.new_int_var(0, H, f"F{i}") for i in jobs}
        rel = {t: m.new_int_var(0, H, f"R{t}") for t in tasks}
        for i in jobs:
            m.add_min_equality(F[i], [S[t] for t in g.entries[i]])
        for t in tasks:
            m.add(rel[t] == S[t] - F[g.job[t]])
        for e, k, t in edges:
            m.add(rel[t] >= rel[k] + run[k] + delay[e])
        job_obj = {}  # the objective, job by job (see _scale)
        for i in jobs:
            sink = g.sink[i]
            lat = rel[sink] + run[sink] + sum(round(g.ret[sink, s] * sc["K"]) * x[sink, s] for s in srv[sink])
            if sc["t_max"] is not None:
                m.add(lat <= sc["t_max"])
            job_obj[i] = sc["lat"] * lat
        for (t, s), lit in x.items():
            job_obj[g.job[t]] += round(sc["cost_k"] * g.cost[t, s]) * lit
        m.minimize(sum(job_obj.values()))
        return m, x, arcs_of, job_obj, S


def _arc_allowed(a: int, b: int, pre: list[int], pos: dict[int, int], anc: list[set[int]]) -> bool:
    """Whether b may run just after a in an edge queue (-1 the depot): a fixed prefix ``pre`` (``pos`` its
    positions) leads the queue in its order, and nothing runs before one of its ancestors."""
    if b in pos:
        return a == (pre[pos[b] - 1] if pos[b] else -1)
    if (a in pos and pos[a] < len(pre) - 1) or (a == -1 and pre):
        return False
    return b == -1 or a == -1 or b not in anc[a]


def _scale(instance: Instance, srv: dict[int, list[int]], edges: list) -> dict:
    """CP-SAT's integers: K ticks per second, the objective as ``lat * sum_i T_i + sum round(cost_k * cost)``
    in units of ``unit`` (gamma / K; 1 / K when gamma = 0), T_max in ticks, and the rounding bound ``delta``.

    That objective is within delta of the referee's value of the same schedule: a duration or transfer
    is off by at most a tick; a start or finish is a sum along the chain of what each start waited for,
    which visits a sub-task or an edge at most once (L terms), so a tick-rounded T_i is off by at most
    2L + 1 ticks; a cost by half a unit.
    """
    d, g = instance.data, instance.data.graph
    w = d.gamma or 1.0
    lat = 1 if d.gamma else 0
    I, L = len(d.jobs), g.T + len(edges)
    horizon = (sum(max(g.dur[t, s] for s in srv[t]) for t in range(g.T))
               + sum(bits * max(g.inv[a, b] for a in srv[k] for b in srv[t]) for k, t, bits in edges))
    ret = max(g.ret[t, s] for t in g.sink for s in srv[t])
    cost = sum(max(g.cost[t, s] for s in srv[t]) for t in range(g.T)) * (1 - d.gamma) / w
    K = min(MAX_TICKS_PER_S, 10.0 ** math.floor(math.log10(2 ** 50 / max(I * (horizon + ret) + cost, 1e-300))))
    delta = w / K * (lat * I * (2 * L + 1) + g.T / 2)
    t_max = None if d.t_max_s is None else math.floor(d.t_max_s * (1 + 1e-9) * K) + 2 * L + 1
    return {"K": K, "unit": w / K, "lat": lat, "cost_k": K * (1 - d.gamma) / w, "delta": delta, "t_max": t_max}


def _merge(g, prefixes: list[list[int]], alone: dict[int, tuple[int, float]]) -> Solution:
    """Every sub-task on its server of ``alone``; each edge queue its fixed prefix, then by start time alone."""
    pos = {t: k for q in prefixes for k, t in enumerate(q)}
    order = [sorted((t for t, (s, _) in alone.items() if s == n),
                    key=lambda t: (0, pos[t], 0) if t in pos else (1, alone[t][1], g.job[t])) for n in range(g.N)]
    return Solution(order=[[g.name(t) for t in q] for q in order],
                    cloud=[g.name(t) for t, (s, _) in alone.items() if s == g.cloud])


def _read_cpsat(g, solver, x: dict, arcs_of: list[dict]) -> Solution:
    """Servers from the presence literals; each edge queue by following its circuit from the depot."""
    order = []
    for arcs in arcs_of:
        nxt = {a: b for (a, b), lit in arcs.items() if solver.boolean_value(lit)}
        queue, t = [], nxt[-1]
        while t != -1:
            queue.append(g.name(t))
            t = nxt[t]
        order.append(queue)
    cloud = [g.name(t) for t in range(g.T) if (t, g.cloud) in x and solver.boolean_value(x[t, g.cloud])]
    return Solution(order=order, cloud=cloud)


@method("dagsched", "paths", "bound")
def paths(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """Lower bound: per job, the better of a critical-path and an edge-load bound, each priced with cost.

    Why it is valid: in any schedule, along any path of job i's DAG each sub-task starts after its
    predecessor's data arrives, so ``T_i >= the path's durations and transfers + R_sink / r_down``; and
    job i's sub-tasks on one edge queue run one at a time within ``[min ST, max EN]``, so ``T_i >= (their
    total duration) + R_sink / r_down >= (duration of all its edge sub-tasks) / N + R_sink / r_down``.
    Cost is a sum over sub-tasks; sub-tasks off the path are given their cheapest server, each sub-task
    of the load bound the server that makes its share smallest (queues of other jobs, T_max and fixed
    placements dropped): a relaxation, so the sum over jobs is at most the optimum. On the path the
    servers are coupled by the transfers: ``F[t, s]``, the path value ending at t on server s, is
    ``w[t, s] + max over predecessors k of min over s' (F[k, s'] + transfer(k -> t, s' -> s))``, which
    by induction is at most the longest path ending at t of any placement that puts t on s (the
    predecessor's true server is one of the s'). One pass over a topological order, O(edges x servers^2).
    Where every objective is a multiple of a step (``objective_step``: whole seconds, no cost) the bound is
    rounded up to the next multiple.
    """
    d, g = instance.data, instance.data.graph
    gamma = d.gamma
    if not g.ok.any(axis=1).all():
        return Outcome(None, status="infeasible", solver="paths",
                       extra={"reason": "a sub-task's modality is supported by no server"})
    sink = np.zeros(g.T, dtype=bool)
    sink[g.sink] = True
    back = np.where(sink[:, None], gamma * g.ret, 0.0)  # the sink's return to the device, on its server

    def cheapest(values: np.ndarray) -> np.ndarray:
        return np.where(g.ok, values, np.inf).min(axis=1)

    off_path = cheapest((1 - gamma) * g.cost + back)
    edge = np.arange(g.S) != g.cloud
    share = np.where(edge, g.dur / max(g.N, 1), 0.0)  # the cloud has no queue: its sub-tasks add no load
    loaded = cheapest(gamma * share + (1 - gamma) * g.cost + back)
    extra = np.where(g.ok, gamma * g.dur + (1 - gamma) * g.cost + back, np.inf) - off_path[:, None]
    value = np.zeros((g.T, g.S))  # F[t, s] above: the path's extra over off_path, ending at t on s
    for t in g.order:
        arrive = [np.min(value[k][:, None] + gamma * bits * g.inv, axis=0) for k, bits in g.preds[t]]
        value[t] = extra[t] + (np.max(arrive, axis=0) if arrive else 0.0)
    longest = value.min(axis=1)  # whatever server t is on
    path_bound = np.bincount(g.job, weights=off_path) + np.maximum.reduceat(longest, g.offset)
    load_bound = np.bincount(g.job, weights=loaded)
    per_job = np.maximum(path_bound, load_bound) if g.N else path_bound
    bound = round_to_step(float(per_job.sum()), objective_step(instance), "min")
    return Outcome(None, status="bound", bound=bound, solver="paths",
                   extra={"load_bound_jobs": int(np.sum(load_bound > path_bound)) if g.N else 0})
