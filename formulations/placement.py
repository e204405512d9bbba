"""Exact MILP for ``placement``: placement, routing and cascade thresholds as one decision.

``x[i, j]`` places model j on device i (each model exactly once). ``u[r, j, i]`` is the share of
type r routed to model j on device i: ``u <= x`` and, per type, the shares sum to 1, so a share only
flows where its model is. Cascade c picks one threshold vector from its finite candidate set
(``z[c, t]``, every combination of bin thresholds; ``Data.cascade_options``), which fixes the reach
probability of every level as a linear expression ``rho[c, k] = sum_t z[c, t] reach[t, k]``; the
reach seen on device i is ``a[c, k, j, i] <= x[i, j]`` with ``sum_i a[c, k, j, i] = rho[c, k]`` — exact,
because every model has exactly one device. The min-max is an epigraph ``T >= load_i``; the objective
is ``T + λ · E[wrong answers]``.
"""
from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pe

from edgeopt.problems.placement import MAX_THETAS, Instance, Solution
from edgeopt.registry import method
from edgeopt.solvers import exact_method


def build_model(instance: Instance) -> pe.ConcreteModel:
    """Exact MILP (HiGHS by default): placement binaries, routed shares, one threshold vector per cascade."""
    d = instance.data
    R, M, D = d.shape
    I, J = range(D), range(M)
    routes = [(r, j) for r in range(R) if d.routed[r] for j in J if not np.isnan(d.error[r, j])]
    options = [d.cascade_options(c) for c in range(len(d.cascades))]
    thetas = [(c, t) for c, (th, _, _) in enumerate(options) for t in range(len(th))]
    reached = [(c, k, j) for c, cas in enumerate(d.cascades) for k, lev in enumerate(cas.levels) if k > 0
               for j in lev.models]

    m = pe.ConcreteModel(name=f"placement_{instance.name}")
    m.x = pe.Var(I, J, domain=pe.Binary)
    m.u = pe.Var([(r, j, i) for r, j in routes for i in I], bounds=(0, 1))
    m.z = pe.Var(thetas, domain=pe.Binary)
    m.a = pe.Var([(c, k, j, i) for c, k, j in reached for i in I], bounds=(0, 1))
    m.T = pe.Var(domain=pe.NonNegativeReals)

    m.once = pe.Constraint(J, rule=lambda m, j: sum(m.x[i, j] for i in I) == 1)
    m.memory = pe.Constraint(I, rule=lambda m, i: sum(d.model_mem[j] * m.x[i, j] for j in J) <= d.device_mem[i])
    m.compute = pe.Constraint(I, rule=lambda m, i: sum(d.model_compute[j] * m.x[i, j] for j in J)
                              <= d.device_compute[i])
    m.placed = pe.Constraint(list(m.u.keys()), rule=lambda m, r, j, i: m.u[r, j, i] <= m.x[i, j])
    m.served = pe.Constraint([r for r in range(R) if d.routed[r]],
                             rule=lambda m, r: sum(m.u[r, j, i] for rr, j in routes if rr == r for i in I) == 1)
    m.pick = pe.Constraint(range(len(options)), rule=lambda m, c: sum(m.z[c, t] for t in range(len(options[c][0]))) == 1)
    m.there = pe.Constraint(list(m.a.keys()), rule=lambda m, c, k, j, i: m.a[c, k, j, i] <= m.x[i, j])
    m.reach = pe.Constraint(reached, rule=lambda m, c, k, j: sum(m.a[c, k, j, i] for i in I)
                            == sum(float(options[c][1][t, k]) * m.z[c, t] for t in range(len(options[c][0]))))

    def load(m, i):
        work = sum(float(d.count[r] * d.time_s[r, j, i]) * m.u[r, j, i] for r, j in routes)
        for c, cas in enumerate(d.cascades):
            n, r = float(d.count[cas.type]), cas.type
            work += sum(n * float(d.time_s[r, j, i]) * m.x[i, j] for j in cas.levels[0].models)
            work += sum(n * float(d.time_s[r, j, i]) * m.a[c, k, j, i] for cc, k, j in reached if cc == c)
        return m.T >= work

    m.epigraph = pe.Constraint(I, rule=load)
    wrong = sum(float(d.count[r] * d.error[r, j]) * m.u[r, j, i] for r, j in routes for i in I)
    wrong += sum(float(d.count[d.cascades[c].type] * options[c][2][t]) * m.z[c, t] for c, t in thetas)
    m.obj = pe.Objective(expr=m.T + d.lam * wrong, sense=pe.minimize)
    m.options = options  # the threshold table read_solution and warm_start index into
    return m


def model_size(instance: Instance) -> tuple[int, int, int]:
    """(variables, constraints, nonzeros) of ``build_model``, bounded from the type, model and device counts and
    the threshold combinations of the cascades (at most ``MAX_THETAS`` each)."""
    d = instance.data
    R, M, D = d.shape
    thetas = sum(min(MAX_THETAS, math.prod(len(lev.prob) + 1 for lev in cas.levels[:-1])) for cas in d.cascades)
    levels = sum(len(cas.levels) for cas in d.cascades)
    routed, reached = R * M * D, levels * M * D
    return D * M + routed + thetas + reached + 1, M + 3 * D + routed + R + len(d.cascades) + 2 * reached, \
        3 * D * M + 4 * routed + thetas * (levels + 1) + 4 * reached + D * M


def read_solution(m: pe.ConcreteModel, instance: Instance) -> Solution:
    d = instance.data
    R, M, D = d.shape
    x = np.array([[pe.value(m.x[i, j]) for j in range(M)] for i in range(D)])
    share = np.zeros((R, M))
    for (r, j, i), var in m.u.items():
        share[r, j] += max(pe.value(var), 0.0)
    rows = d.routed
    share[rows] /= share[rows].sum(axis=1, keepdims=True)  # solver round-off, so rows sum to 1 exactly
    thresholds = []
    for c, (th, _, _) in enumerate(m.options):
        t = int(np.argmax([pe.value(m.z[c, t]) for t in range(len(th))]))
        thresholds.append([int(v) for v in th[t]])
    return Solution(device=x.argmax(axis=0), share=share, thresholds=thresholds)


def warm_start(m: pe.ConcreteModel, instance: Instance, solution: Solution) -> None:
    """Set the placement and threshold binaries (and the shares) to ``solution``."""
    for (i, j), var in m.x.items():
        var.set_value(float(solution.device[j] == i))
    for (r, j, i), var in m.u.items():
        var.set_value(float(solution.share[r, j]) if solution.device[j] == i else 0.0)
    for c, (th, _, _) in enumerate(m.options):
        t = int(np.nonzero((th == np.array(solution.thresholds[c], dtype=np.int64)).all(axis=1))[0][0])
        for tt in range(len(th)):
            m.z[c, tt].set_value(float(tt == t))


milp = method("placement", "milp", "exact")(
    exact_method(build_model, read_solution, warm_start=warm_start, starts=("lpt-ls",), model_size=model_size))
