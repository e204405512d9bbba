"""Exact MINLP for ``offload``, solved to global optimality by SCIP (spatial branch and bound).

Per user n and edge k: ``x[n,k]`` binary (edge choice), integers ``o[n]``, ``c[n]`` with
``c <= o``; ``w[n,k] = (o - c) x[n,k]`` (edge steps on edge k) is linearised exactly
(McCormick with a binary). Resources are disaggregated per edge — ``v[n,k]``, ``b[n,k]``,
``p[n,k] <= cap * x[n,k]`` — so the per-edge sums are linear and a user's share is the sum over k.
The nonlinear terms are kept in forms SCIP handles globally:

* quality ``u[n] <= A[n,k] (1 - exp(-zeta_k o[n])) + A_max (1 - x[n,k])`` (concave, exact at x = 1);
* compute delays as bilinear covers ``t1 * v_cs >= c F_cs / phi`` and
  ``t2 * sum_k v[n,k] >= sum_k w[n,k] F_k / phi`` (division-free; 0 edge SMs are allowed when q = 0);
* the rate ``r <= b log2(1 + sum_k gamma[n,k] p[n,k] / b)`` with ``b = sum_k b[n,k]`` (only the
  chosen edge's power is nonzero), download time ``t3 * r >= S``, transmit energy ``e3 >= p t3``.

Every variable is bounded, which spatial branching needs. The bounds come from the data: with
``LB`` the referee's value of a feasible point (equal split) and ``U_max = w1 sum_n max_k A[n,k]``,
any optimum has ``sum (w2 T + w3 E) <= U_max - LB =: Delta``, so every delay part is at most
``Delta / w2``; that gives positive lower bounds on the cloud SMs, the rate, the bandwidth (root
of ``b log2(1 + gamma_max p_max / b) = r_min``) and the power (``r <= gamma p / ln 2``). These
inequalities only cut solutions worse than the feasible point, so the optimum is kept.
On the tiny cases of ``tests/test_offload.py`` SCIP ends with status optimal and bound equal to the
objective, and its optimum is at least every heuristic's (checked against the referee).
"""
from __future__ import annotations

import numpy as np
import pyomo.environ as pe

from edgeopt.problems.offload import Instance, Solution, equal_split, evaluate, kkt_split
from edgeopt.registry import method
from edgeopt.solvers import exact_method

LN2 = float(np.log(2.0))


def _bandwidth_floor(rate: float, gamma: float, pmax: float, B: float) -> float:
    """Smallest b with b log2(1 + gamma pmax / b) >= rate (the left side increases in b), by bisection."""
    lo, hi = 0.0, B
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid * np.log2(1 + gamma * pmax / mid) >= rate:
            hi = mid
        else:
            lo = mid
    return lo


def _lower_value(instance: Instance) -> float:
    """Referee value of a few equal-split points (best SNR edge; fewest and most steps)."""
    d = instance.data
    s = d.steps
    m = np.argmax(d.snr_per_w_mhz, axis=1)
    vals = []
    for o in (max(s.o_min, s.c_min), s.o_max):
        sol = equal_split(instance, m, np.full(d.n_users, o), np.full(d.n_users, s.c_min))
        vals.append(evaluate(instance, sol).objective)
    return max(v for v in vals if v is not None)


def build_model(instance: Instance) -> pe.ConcreteModel:
    """Exact MINLP (SCIP global): edge choice, steps, cloud steps, SMs, bandwidth and power."""
    d = instance.data
    s, w = d.steps, d.weights
    N, M = d.n_users, len(d.edges)
    U, K = range(N), range(M)
    A, gamma, zeta = d.alignment, d.snr_per_w_mhz, d.zeta
    F_cs, F = d.cloud.tflops_per_step, d.edge_flops
    phi, pmax = d.tflops_per_sm, d.p_max_w
    B = np.array([e.bandwidth_mhz for e in d.edges])
    P = np.array([e.power_w for e in d.edges])
    V = np.array([e.sms for e in d.edges])
    o_lo, c_hi = max(s.o_min, s.c_min), min(s.c_max, s.o_max)
    q_max = s.o_max - s.c_min

    delta = w.utility * A.max(axis=1).sum() - _lower_value(instance)
    t_max = max(delta, 1e-9) / w.delay_per_s
    r_lo = d.video_mbit / t_max
    g_max = gamma.max(axis=1)
    r_hi = np.array([max(B[k] * np.log2(1 + gamma[n, k] * pmax / B[k]) for k in K) for n in U])
    b_lo = np.array([_bandwidth_floor(r_lo[n], g_max[n], pmax, B.max()) for n in U])
    p_lo = r_lo * LN2 / g_max

    mdl = pe.ConcreteModel(name=f"offload_{instance.name}")
    mdl.x = pe.Var(U, K, domain=pe.Binary)
    mdl.o = pe.Var(U, domain=pe.Integers, bounds=(o_lo, s.o_max))
    mdl.c = pe.Var(U, domain=pe.Integers, bounds=(s.c_min, c_hi))
    mdl.w = pe.Var(U, K, domain=pe.Integers, bounds=(0, q_max))
    mdl.u = pe.Var(U, bounds=lambda m, n: (0, float(A[n].max())))
    mdl.s_cs = pe.Var(bounds=(0, N * np.sqrt(F_cs / phi * c_hi)))
    mdl.s_e = pe.Var(K, bounds=lambda m, k: (0, N * np.sqrt(F[k] / phi * q_max)))
    mdl.b = pe.Var(U, K, bounds=lambda m, n, k: (0, float(B[k])))
    mdl.p = pe.Var(U, K, bounds=lambda m, n, k: (0, float(min(P[k], pmax))))
    mdl.r = pe.Var(U, bounds=lambda m, n: (float(min(r_lo[n], r_hi[n])), float(r_hi[n])))
    mdl.t3 = pe.Var(U, bounds=(0, t_max))
    mdl.e3 = pe.Var(U, bounds=(0, pmax * t_max))

    mdl.one = pe.Constraint(U, rule=lambda m, n: sum(m.x[n, k] for k in K) == 1)
    mdl.order = pe.Constraint(U, rule=lambda m, n: m.c[n] <= m.o[n])
    mdl.w_on = pe.Constraint(U, K, rule=lambda m, n, k: m.w[n, k] <= q_max * m.x[n, k])
    mdl.w_up = pe.Constraint(U, K, rule=lambda m, n, k: m.w[n, k] <= m.o[n] - m.c[n])
    mdl.w_lo = pe.Constraint(U, K, rule=lambda m, n, k: m.w[n, k] >= m.o[n] - m.c[n] - q_max * (1 - m.x[n, k]))
    mdl.quality = pe.Constraint(U, K, rule=lambda m, n, k: m.u[n] <= float(A[n, k]) * (
        1 - pe.exp(-float(zeta[k]) * m.o[n])) + float(A[n].max()) * (1 - m.x[n, k]))
    mdl.b_on = pe.Constraint(U, K, rule=lambda m, n, k: m.b[n, k] <= float(B[k]) * m.x[n, k])
    mdl.p_on = pe.Constraint(U, K, rule=lambda m, n, k: m.p[n, k] <= float(min(P[k], pmax)) * m.x[n, k])
    mdl.cloud_root = pe.Constraint(expr=mdl.s_cs >= sum(pe.sqrt(F_cs / phi * mdl.c[n]) for n in U))
    mdl.edge_root = pe.Constraint(K, rule=lambda m, k: m.s_e[k] >= sum(pe.sqrt(float(F[k]) / phi * m.w[n, k]) for n in U))
    mdl.edge_bw = pe.Constraint(K, rule=lambda m, k: sum(m.b[n, k] for n in U) <= float(B[k]))
    mdl.edge_pw = pe.Constraint(K, rule=lambda m, k: sum(m.p[n, k] for n in U) <= float(P[k]))
    mdl.b_floor = pe.Constraint(U, rule=lambda m, n: sum(m.b[n, k] for k in K) >= float(b_lo[n]))
    mdl.p_floor = pe.Constraint(U, rule=lambda m, n: sum(m.p[n, k] for k in K) >= float(p_lo[n]))

    def rate(m, n):
        b = sum(m.b[n, k] for k in K)
        return m.r[n] <= b * pe.log(1 + sum(float(gamma[n, k]) * m.p[n, k] for k in K) / b) / LN2

    mdl.rate = pe.Constraint(U, rule=rate)
    mdl.t_dl = pe.Constraint(U, rule=lambda m, n: m.t3[n] * m.r[n] >= float(d.video_mbit[n]))
    mdl.e_tx = pe.Constraint(U, rule=lambda m, n: m.e3[n] >= sum(m.p[n, k] for k in K) * m.t3[n])

    fibre = d.fibre_s
    mdl.obj = pe.Objective(sense=pe.maximize, expr=sum(
        w.utility * mdl.u[n]
        - w.delay_per_s * (mdl.t3[n] + sum(float(fibre[k]) * mdl.x[n, k] for k in K))
        - w.energy_per_j * (d.cloud.j_per_tflop * F_cs * mdl.c[n]
                            + sum(float(d.edge_kappa[k] * F[k]) * mdl.w[n, k] for k in K) + mdl.e3[n])
        for n in U) - w.delay_per_s * (mdl.s_cs**2 / d.cloud.sms + sum(mdl.s_e[k]**2 / float(V[k]) for k in K)))
    return mdl


def read_solution(mdl: pe.ConcreteModel, instance: Instance) -> Solution:
    d = instance.data
    U, K = range(d.n_users), range(len(d.edges))
    edge = [int(np.argmax([pe.value(mdl.x[n, k]) for k in K])) for n in U]
    o = np.array([int(round(pe.value(mdl.o[n]))) for n in U])
    c = np.array([int(round(pe.value(mdl.c[n]))) for n in U])
    m = np.array(edge)
    v = np.zeros(d.n_users)
    for k, e in enumerate(d.edges):  # the SM splits the model optimised in closed form
        v[m == k] = kkt_split((o - c)[m == k] * e.tflops_per_step, e.sms)
    return Solution(
        edge=edge, steps=o.tolist(), cloud_steps=c.tolist(),
        cloud_sms=kkt_split(c * d.cloud.tflops_per_step, d.cloud.sms).tolist(), edge_sms=v.tolist(),
        bandwidth_mhz=[float(pe.value(mdl.b[n, edge[n]])) for n in U],
        power_w=[float(pe.value(mdl.p[n, edge[n]])) for n in U],
    )


minlp = method("offload", "minlp", "exact")(exact_method(build_model, read_solution, default_solver="scip"))
