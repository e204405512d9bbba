"""Exact MILP for ``dagsched``: assignment, start/finish times, pairwise queue order, exact start rule.

Variables: ``x[t,s]`` sub-task t on server s (modality-feasible pairs only); ``S[t]``, ``E[t]`` its
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
"""
from __future__ import annotations

import pyomo.environ as pe

from edgeopt.problems.dagsched import Instance, Solution
from edgeopt.registry import method
from edgeopt.solvers import exact_method


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
    T, N, cloud = g.T, g.N, g.cloud
    fixed_at: dict[int, int] = {}
    prefix_pos: dict[int, int] = {}
    if d.fixed is not None:
        for n, q in enumerate(d.fixed.prefix):
            for k, (i, j) in enumerate(q):
                fixed_at[g.index(i, j)] = n
                prefix_pos[g.index(i, j)] = k
        fixed_at.update({g.index(i, j): cloud for i, j in d.fixed.cloud})
    srv = {t: ([fixed_at[t]] if t in fixed_at else [s for s in range(g.S) if g.ok[t, s]]) for t in range(T)}
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


milp = method("dagsched", "milp", "exact")(exact_method(build_model, read_solution))
