"""Exact MILP for ``partition``: a shortest path through the layer x device graph.

``x[l, d]`` places layer l on device d; ``y[l, d, e]`` is the arc from (l, d) to (l+1, e). Flow
conservation makes ``y`` integral once ``x`` is, so only ``x`` is binary. Latency sums the arc
costs; throughput adds segment starts ``s[l, d]`` (at most one per device, so each device holds one
contiguous shard) and a bottleneck variable ``B`` above every stage, boundary and the return trip.
"""
from __future__ import annotations

import numpy as np
import pyomo.environ as pe

from edgeopt.problems.partition import Instance, Solution
from edgeopt.registry import method
from edgeopt.solvers import exact_method


def build_model(instance: Instance) -> pe.ConcreteModel:
    """Exact MILP (HiGHS by default): layer x device shortest path with memory, or pipeline bottleneck."""
    d = instance.data
    L, D = len(d.layers), len(d.devices)
    t, mem, cap = d.t, d.mem, d.cap
    hop = d.comm(d.act)  # (L, D, D)
    back = d.comm(d.out_mb)[:, d.source]  # (D,)
    ok = [(l, k) for l in range(L) for k in range(D) if np.isfinite(t[l, k]) and (l > 0 or k == d.source)]
    okset = set(ok)
    arcs = [(l, a, b) for l in range(L - 1) for a in range(D) for b in range(D) if (l, a) in okset and (l + 1, b) in okset]

    m = pe.ConcreteModel(name=f"partition_{instance.name}")
    m.x = pe.Var(ok, domain=pe.Binary)
    m.y = pe.Var(arcs, bounds=(0, 1))
    m.one = pe.Constraint(range(L), rule=lambda m, l: sum(m.x[l, k] for k in range(D) if (l, k) in okset) == 1)
    out_arcs: dict = {}
    in_arcs: dict = {}
    for l, a, b in arcs:
        out_arcs.setdefault((l, a), []).append(m.y[l, a, b])
        in_arcs.setdefault((l + 1, b), []).append(m.y[l, a, b])
    m.leave = pe.Constraint([p for p in ok if p[0] < L - 1],
                            rule=lambda m, l, k: sum(out_arcs.get((l, k), [])) == m.x[l, k])
    m.enter = pe.Constraint([p for p in ok if p[0] > 0],
                            rule=lambda m, l, k: sum(in_arcs.get((l, k), [])) == m.x[l, k])
    m.memory = pe.Constraint(range(D), rule=lambda m, k: sum(mem[l] * m.x[l, k] for l in range(L) if (l, k) in okset)
                             <= cap[k])
    if d.objective == "latency":
        m.obj = pe.Objective(
            expr=sum(t[l, k] * m.x[l, k] for l, k in ok)
            + sum(hop[l, a, b] * m.y[l, a, b] for l, a, b in arcs if a != b)
            + sum(back[k] * m.x[L - 1, k] for k in range(D) if (L - 1, k) in okset),
            sense=pe.minimize,
        )
        return m
    m.s = pe.Var(ok, bounds=(0, 1))
    m.start = pe.Constraint(ok, rule=lambda m, l, k: m.s[l, k] >= m.x[l, k] - (m.x[l - 1, k] if (l - 1, k) in okset else 0))
    m.one_shard = pe.Constraint(range(D), rule=lambda m, k: sum(m.s[l, k] for l in range(L) if (l, k) in okset) <= 1)
    m.B = pe.Var(bounds=(0, None))
    m.stage = pe.Constraint(range(D), rule=lambda m, k: m.B >= sum(t[l, k] * m.x[l, k] for l in range(L) if (l, k) in okset))
    m.boundary = pe.Constraint(range(L - 1), rule=lambda m, l: m.B >= sum(hop[l, a, b] * m.y[l, a, b]
                                                                          for a in range(D) for b in range(D)
                                                                          if a != b and (l, a, b) in m.y))
    m.ret = pe.Constraint(rule=m.B >= sum(back[k] * m.x[L - 1, k] for k in range(D) if (L - 1, k) in okset))
    m.obj = pe.Objective(expr=m.B, sense=pe.minimize)
    return m


def read_solution(m: pe.ConcreteModel, instance: Instance) -> Solution:
    L, D = len(instance.data.layers), len(instance.data.devices)
    place = []
    for l in range(L):
        vals = [pe.value(m.x[l, k]) if (l, k) in m.x else -1.0 for k in range(D)]
        place.append(int(np.argmax(vals)))
    return Solution(place=place)


milp = method("partition", "milp", "exact")(exact_method(build_model, read_solution))
