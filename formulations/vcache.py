"""Exact MILP for ``vcache``: one interval's routes as an assignment with a cloud knapsack, HiGHS by default.

``x[i,r]`` = 1 when request i takes route r (r = 0..E-1 edge r's cache, r = E the cloud). Every request takes
one route, ``sum_r x[i,r] = 1``; edge e serves at most its searches, ``sum_i x[i,e] <= search_e``; the cloud
takes at most its tokens, ``sum_i tokens_i x[i,E] <= cloud_tokens``. Maximize ``(1/R) sum_{i,r} v[i,r] x[i,r]``
with ``v`` = ``Data.value`` (sat_weight * satisfaction - lat_weight * latency of the route), which is the
referee's objective of the routes the x encode. Without the token weights the constraint matrix would be a
bipartite b-matching (totally unimodular, LP = MILP); the cloud's knapsack row makes the LP fractional.
"""
from __future__ import annotations

import numpy as np
import pyomo.environ as pe

from edgeopt.problems.vcache import CLOUD, Instance, Solution
from edgeopt.registry import method
from edgeopt.solvers import exact_method, lp_relaxation


def build_model(instance: Instance) -> pe.ConcreteModel:
    """Exact MILP (HiGHS by default): a route per request, searches per edge, the cloud's tokens."""
    d = instance.data
    R, E = d.shape
    value, tokens = d.value, d.requests.tokens
    m = pe.ConcreteModel(name=f"vcache_{instance.name}")
    m.I, m.Rt = pe.RangeSet(0, R - 1), pe.RangeSet(0, E)
    m.x = pe.Var(m.I, m.Rt, domain=pe.Binary)
    m.once = pe.Constraint(m.I, rule=lambda m, i: sum(m.x[i, r] for r in m.Rt) == 1)
    m.search = pe.Constraint(range(E), rule=lambda m, e: sum(m.x[i, e] for i in m.I) <= int(d.search[e]))
    m.cloud = pe.Constraint(expr=sum(int(tokens[i]) * m.x[i, E] for i in m.I) <= int(d.cloud_tokens))
    m.obj = pe.Objective(expr=sum(float(value[i, r]) / R * m.x[i, r] for i in m.I for r in m.Rt), sense=pe.maximize)
    return m


def model_size(instance: Instance) -> tuple[int, int, int]:
    """(variables, constraints, nonzeros) of ``build_model``: a binary per (request, route)."""
    R, E = instance.data.shape
    return R * (E + 1), R + E + 1, 2 * R * (E + 1)


def _routes(m: pe.ConcreteModel, instance: Instance) -> np.ndarray:
    R, E = instance.data.shape
    x = np.array([[pe.value(m.x[i, r]) for r in range(E + 1)] for i in range(R)])
    route = x.argmax(axis=1)
    return np.where(route == E, CLOUD, route)


def read_solution(m: pe.ConcreteModel, instance: Instance) -> Solution:
    return Solution(route=_routes(m, instance))


def warm_start(m: pe.ConcreteModel, instance: Instance, solution: Solution) -> None:
    """Set x to ``solution``'s routes (the cloud is column E)."""
    E = instance.data.shape[1]
    column = np.where(solution.route == CLOUD, E, solution.route)
    for (i, r), var in m.x.items():
        var.set_value(int(column[i] == r))


STARTS = ("greedy-0.5", "greedy-0.3", "greedy-0.1", "greedy-llm", "nearest-server")
milp = method("vcache", "milp", "exact")(exact_method(build_model, read_solution, warm_start=warm_start,
                                                      starts=STARTS, model_size=model_size))


lp = method("vcache", "lp", "bound")(lp_relaxation(build_model, """Upper bound: the LP relaxation of the MILP (``build_model`` with 0 <= x <= 1).

    Valid because the routes the referee accepts are the 0/1 points of the MILP with the same objective, and
    the LP's feasible set contains them, so its optimum is at least theirs. Only a proven LP optimum is
    reported. Its vertices are the b-matching's integral routes or points on an edge of that polytope cut by the
    cloud's token row, where the routes along one alternating path are split.
    """, model_size=model_size))
