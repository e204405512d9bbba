"""The ``dagsched`` referee: every start and finish derived from the placement and the queue orders alone."""
from __future__ import annotations

import numpy as np

from edgeopt.model import InputError
from edgeopt.problems.dagsched.data import Instance, Solution
from edgeopt.result import Evaluation

SENSE = "min"


def _item(n: int | None, k: int, cloud: int | None) -> str:
    """Where item k of queue n (the cloud's list when n is the cloud) is in a solution file."""
    return f"solution.cloud[{k}]" if n == cloud else f"solution.order[{n}][{k}]"


def placement(instance: Instance, solution: Solution) -> tuple[dict[int, int], list[list[int]]]:
    """The solution as (server of every sub-task, edge queues of sub-task indices); InputError if malformed."""
    d, g = instance.data, instance.data.graph
    if len(solution.order) != g.N:
        raise InputError("solution.order", f"must list one queue per edge server ({g.N}), got {len(solution.order)}")
    if solution.cloud and g.cloud is None:
        raise InputError("solution.cloud", "must be empty: the instance has no cloud")
    where: dict[int, int] = {}
    sizes, offset = d.jobs.sizes, g.offset
    for n, q in [*enumerate(solution.order), (g.cloud, solution.cloud)]:
        for k, (i, j) in enumerate(q):
            if not (0 <= i < len(sizes) and 0 <= j < sizes[i]):
                raise InputError(_item(n, k, g.cloud), f"must name an existing sub-task [job, sub-task], got [{i}, {j}]")
            t = offset[i] + j
            if t in where:
                raise InputError(_item(n, k, g.cloud), f"places sub-task [{i}, {j}] a second time")
            where[t] = n
    if len(where) < g.T:
        i, j = g.name(next(t for t in range(g.T) if t not in where))
        raise InputError("solution", f"must place every sub-task; [{i}, {j}] is in no edge queue and not on the cloud")
    return where, [[g.index(i, j) for i, j in q] for q in solution.order]


def evaluate(instance: Instance, solution: Solution) -> Evaluation:
    """The referee: derives every start and finish from the placement and queue orders (spec "Timing")."""
    d, g = instance.data, instance.data.graph
    where, queues = placement(instance, solution)
    names = [s.name for s in d.servers] + ([d.cloud.name] if d.cloud else [])

    def who(t: int) -> str:
        i, j = g.name(t)
        nm = d.jobs.task_names[t]
        return f"job {i} sub-task {j}" + (f" ({nm})" if nm else "")

    violations = []
    w = [where[t] for t in range(g.T)]  # the server of each sub-task, as a list (read one at a time below)
    for t in np.flatnonzero(~g.ok[np.arange(g.T), w]).tolist():
        violations.append(f"{who(t)}: modality {d.jobs.modality[t]!r} is not supported by server "
                          f"{where[t]} ({names[where[t]]})")
    if d.fixed is not None:
        for n, pre in enumerate(d.fixed.prefix):
            got = [g.name(t) for t in queues[n][:len(pre)]]
            if got != [tuple(x) for x in pre]:
                violations.append(f"edge server {n} ({names[n]}): queue must start with the fixed prefix "
                                  f"{[list(x) for x in pre]}, got {[list(x) for x in got]}")
        for i, j in d.fixed.cloud:
            if where[g.index(i, j)] != g.cloud:
                violations.append(f"{who(g.index(i, j))}: fixed on the cloud, placed on server {where[g.index(i, j)]}")
    ancestors_done = set()
    for n, q in enumerate(queues):
        pos = {t: k for k, t in enumerate(q)}
        for t in q:  # a sub-task queued before its own predecessor on the same edge
            for k, _ in g.preds[t]:
                if k in pos and pos[k] > pos[t]:
                    violations.append(f"{who(t)}: queued on edge server {n} ({names[n]}) before its predecessor "
                                      f"sub-task {g.local[k]}")
                    ancestors_done.add(t)
    start, finish, stuck = g.times(where, queues)
    if stuck:
        if not ancestors_done:
            violations.append("precedence: the edge queue orders and the job DAGs form a cycle; these sub-tasks can "
                              f"never start: {[list(g.name(t)) for t in stuck]}")
        return Evaluation(objective=None, feasible=False, violations=violations,
                          details={"stuck": [list(g.name(t)) for t in stuck]})
    begin, finish, costs = start.tolist(), finish.tolist(), g.cost[np.arange(g.T), w].tolist()
    T_s, cost = [], []
    for i, size in enumerate(d.jobs.sizes):
        lo, hi, sink = g.offset[i], g.offset[i] + size, g.sink[i]
        lat = max(finish[lo:hi]) - min(begin[lo:hi]) + float(g.ret[sink, w[sink]])
        T_s.append(lat)
        cost.append(float(sum(costs[lo:hi])))
        if d.t_max_s is not None and lat > d.t_max_s * (1 + 1e-9):
            violations.append(f"job {i}: latency T = {lat:.6g} s exceeds T_max = {d.t_max_s:g} s")
    objective = float(sum(d.gamma * a + (1 - d.gamma) * c for a, c in zip(T_s, cost)))
    per_task = [[[begin[t], finish[t]] for t in range(g.offset[i], g.offset[i] + size)]
                for i, size in enumerate(d.jobs.sizes)]
    details = {"T_s": T_s, "cost": cost, "makespan_s": max(finish),
               "on_cloud": w.count(g.cloud), "start_finish": per_task}
    return Evaluation(objective=objective, feasible=not violations, violations=violations, details=details)
