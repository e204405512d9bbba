"""Exact MILP for ``cdgs``, and VCG payments by re-solving it without each winning dish.

``x[k]`` picks bid k, ``y[t]`` serves task t, ``f[k]`` is bid k's traffic share and ``D[t]`` the
group delay. Coverage ``sum f = V_t y_t`` with ``f_k <= min(Delta_k, 60 gamma_k) x_k``; at most
``n_max`` bids per task; group cost within budget; a dish wins at most once. The delay term is
exact without a big-M: ``D_t >= xi_k x_k`` and the objective pushes ``D_t`` down to the slowest
chosen member (0 when the task is not served). Bids that can never be chosen (over the delay
limit or the budget, or from a committed dish) get no variables.
"""
from __future__ import annotations

import numpy as np
import pyomo.environ as pe

from edgeopt.problems.cdgs import Group, Instance, Solution
from edgeopt.registry import method
from edgeopt.result import Outcome
from edgeopt.solvers import exact_method


def build_model(instance: Instance) -> pe.ConcreteModel:
    """Exact MILP (HiGHS by default): bid binaries, shares, group-delay variables, dish exclusivity."""
    d = instance.data
    b, tk, w = d.bids, d.tasks, d.weights
    T = len(tk.source)
    usable = (b.delay_ms <= tk.limit_ms[b.task]) & (b.cost <= tk.budget[b.task]) & d.available
    K = [int(k) for k in np.flatnonzero(usable)]
    of_task: dict[int, list[int]] = {t: [] for t in range(T)}
    of_dish: dict[int, list[int]] = {}
    for k in K:
        of_task[int(b.task[k])].append(k)
        of_dish.setdefault(int(b.dish[k]), []).append(k)
    served = [t for t in range(T) if of_task[t]]
    V, cap, gain = tk.traffic_mb, d.cap, d.gain

    m = pe.ConcreteModel(name=f"cdgs_{instance.name}")
    m.x = pe.Var(K, domain=pe.Binary)
    m.f = pe.Var(K, bounds=lambda m, k: (0, float(cap[k])))
    m.y = pe.Var(served, domain=pe.Binary)
    m.D = pe.Var(served, bounds=lambda m, t: (0, float(max(b.delay_ms[k] for k in of_task[t]))))
    m.share_cap = pe.Constraint(K, rule=lambda m, k: m.f[k] <= float(cap[k]) * m.x[k])
    m.cover = pe.Constraint(served, rule=lambda m, t: sum(m.f[k] for k in of_task[t]) == float(V[t]) * m.y[t])
    m.size = pe.Constraint(served, rule=lambda m, t: sum(m.x[k] for k in of_task[t]) <= d.n_max * m.y[t])
    m.budget = pe.Constraint(served, rule=lambda m, t: sum(float(b.cost[k]) * m.x[k] for k in of_task[t])
                             <= float(tk.budget[t]))
    m.delay = pe.Constraint(K, rule=lambda m, k: m.D[int(b.task[k])] >= float(b.delay_ms[k]) * m.x[k])
    m.dish = pe.Constraint(list(of_dish), rule=lambda m, dd: sum(m.x[k] for k in of_dish[dd]) <= 1)
    m.obj = pe.Objective(
        expr=sum(float(gain[k] / V[b.task[k]]) * m.f[k] for k in K)
        + sum(w.delay * (m.y[t] - m.D[t] / float(tk.base_ms[t])) for t in served),
        sense=pe.maximize,
    )
    return m


def read_solution(m: pe.ConcreteModel, instance: Instance) -> Solution:
    b = instance.data.bids
    chosen: dict[int, list[int]] = {}
    for k in m.x:
        if pe.value(m.x[k]) > 0.5:
            chosen.setdefault(int(b.task[k]), []).append(k)
    groups = []
    for t in sorted(chosen):
        ks = chosen[t]
        shares = [max(0.0, float(pe.value(m.f[k]))) for k in ks]
        groups.append(Group(task=t, bids=ks, shares=shares))
    return Solution(groups=groups)


_solve = exact_method(build_model, read_solution)


@method("cdgs", "milp", "exact")
def milp(instance: Instance, *, seed: int = 0, time_limit: float | None = None, solver: str = "highs",
         mip_gap: float | None = None, threads: int | None = None, vcg: bool = False) -> Outcome:
    """Exact MILP (HiGHS by default); with ``vcg=True`` also VCG payments (small instances).

    VCG (Clarke pivot): each winning dish is removed and the MILP re-solved; the bid is paid its
    cost plus its marginal utility ``U* - U*_without``, converted to dollars at its task's budget
    per unit of utility. VCG is individually rational but not budget feasible in general — the
    referee reports where it overpays a budget. Payments are left out unless every re-solve is
    proven optimal.
    """
    out = _solve(instance, time_limit=time_limit, solver=solver, mip_gap=mip_gap, threads=threads)
    if not vcg or out.solution is None:
        return out
    if out.status != "optimal":
        out.extra["vcg"] = f"not computed: the main solve ended {out.status}"
        return out
    d = instance.data
    groups = []
    for g in out.solution.groups:
        pay = []
        for k in g.bids:
            dish = int(d.bids.dish[k])
            data = d.model_dump()
            data["committed"] = sorted(set(data["committed"]) | {dish})
            without = instance.model_copy(update={"data": type(d).model_validate(data)})
            rest = _solve(without, time_limit=time_limit, solver=solver, mip_gap=mip_gap, threads=threads)
            if rest.status != "optimal":
                out.extra["vcg"] = f"not computed: the re-solve without dish {dish} ended {rest.status}"
                return out
            marginal = max(0.0, out.claimed - rest.claimed)
            pay.append(float(d.bids.cost[k] + d.tasks.budget[g.task] * marginal))
        groups.append(g.model_copy(update={"payments": pay}))
    out.solution = Solution(groups=groups)
    return out
