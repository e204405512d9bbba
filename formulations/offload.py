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
  chosen edge's power is nonzero), download time ``t3 * r >= S``, transmit energy ``e3 >= p t3``;
* the fibre: the latent's time on the chosen edge, plus, under ``fibre="crossing"``, the finished
  video's extra time when all steps ran on the cloud: binary ``z[n]`` = [o = c] (``o - c <= q_max (1 - z)``,
  ``o - c >= 1 - z``) and ``y[n,k] = x[n,k] z[n]`` linearised exactly (both binary).

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

import time

from typing import Annotated

import numpy as np
import pyomo.environ as pe
from pydantic import Field

from edgeopt import anytime
from edgeopt.problems.offload import (
    TOL,
    Instance,
    Solution,
    equal_split,
    evaluate,
    kkt_split,
)
from edgeopt import limits
from edgeopt.limits import Count
from edgeopt.registry import method
from edgeopt.result import Outcome
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

    latent = [[float(d.fibre_s(n, k, False)) for k in K] for n in U]
    video = [[float(d.fibre_s(n, k, True)) - latent[n][k] for k in K] for n in U]  # the video's extra time
    crossing = bool(np.any(video))
    if crossing:  # fibre="crossing": z[n] = 1 iff every step of n runs on the cloud, y[n, k] = x[n, k] z[n]
        mdl.z = pe.Var(U, domain=pe.Binary)
        mdl.y = pe.Var(U, K, bounds=(0, 1))
        mdl.z_on = pe.Constraint(U, rule=lambda m, n: m.o[n] - m.c[n] <= q_max * (1 - m.z[n]))
        mdl.z_off = pe.Constraint(U, rule=lambda m, n: m.o[n] - m.c[n] >= 1 - m.z[n])
        mdl.y_x = pe.Constraint(U, K, rule=lambda m, n, k: m.y[n, k] <= m.x[n, k])
        mdl.y_z = pe.Constraint(U, K, rule=lambda m, n, k: m.y[n, k] <= m.z[n])
        mdl.y_lo = pe.Constraint(U, K, rule=lambda m, n, k: m.y[n, k] >= m.x[n, k] + m.z[n] - 1)

    def fibre(n):
        return sum(latent[n][k] * mdl.x[n, k] + (video[n][k] * mdl.y[n, k] if crossing else 0) for k in K)

    mdl.obj = pe.Objective(sense=pe.maximize, expr=sum(
        w.utility * mdl.u[n]
        - w.delay_per_s * (mdl.t3[n] + fibre(n))
        - w.energy_per_j * (d.cloud.j_per_tflop * F_cs * mdl.c[n]
                            + sum(float(d.edge_kappa[k] * F[k]) * mdl.w[n, k] for k in K) + mdl.e3[n])
        for n in U) - w.delay_per_s * (mdl.s_cs**2 / d.cloud.sms + sum(mdl.s_e[k]**2 / float(V[k]) for k in K)))
    return mdl


def model_size(instance: Instance) -> tuple[int, int, int]:
    """(variables, constraints, nonzeros) of ``build_model``, bounded from the user and edge counts."""
    N, M = instance.data.n_users, len(instance.data.edges)
    return N * (8 + 6 * M) + M + 1, N * (10 + 10 * M) + 3 * M + 1, 40 * N * M + 20 * N


def read_solution(mdl: pe.ConcreteModel, instance: Instance) -> Solution:
    d = instance.data
    U, K = range(d.n_users), range(len(d.edges))
    edge = [int(np.argmax([pe.value(mdl.x[n, k]) for k in K])) for n in U]
    o = np.array([round(pe.value(mdl.o[n])) for n in U])
    c = np.array([round(pe.value(mdl.c[n])) for n in U])
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


def warm_start(mdl: pe.ConcreteModel, instance: Instance, solution: Solution) -> None:
    """Set the discrete variables (edge choice, steps, edge steps) and the radio split to ``solution``.

    The solver completes the rest (SCIP takes the discrete part as a partial solution and solves for it).
    """
    d = instance.data
    for n in range(d.n_users):
        o, c, e = solution.steps[n], solution.cloud_steps[n], solution.edge[n]
        mdl.o[n].set_value(o)
        mdl.c[n].set_value(c)
        if hasattr(mdl, "z"):
            mdl.z[n].set_value(float(o == c))
        for k in range(len(d.edges)):
            mdl.x[n, k].set_value(float(k == e))
            if hasattr(mdl, "y"):
                mdl.y[n, k].set_value(float(k == e and o == c))
            mdl.w[n, k].set_value(o - c if k == e else 0)
            mdl.b[n, k].set_value(solution.bandwidth_mhz[n] if k == e else 0.0)
            mdl.p[n, k].set_value(solution.power_w[n] if k == e else 0.0)


STARTS = ("ts-mito", "equal", "proportional")  # the paper heuristic and two cheap baselines
minlp = method("offload", "minlp", "exact")(exact_method(build_model, read_solution, default_solver="scip",
                                                         warm_start=warm_start, starts=STARTS, model_size=model_size))


def _share_cost(a: np.ndarray, mu: float, cap: float) -> np.ndarray:
    """min over 0 < v <= cap of a / v + mu v (a >= 0): the Lagrangian price of a compute share."""
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.minimum(np.sqrt(a / mu), cap) if mu > 0 else np.full_like(a, cap)
        return np.where(a > 0, a / v + mu * v, 0.0)


@method("offload", "lagrange", "bound")
def lagrange(instance: Instance, *, seed: int = 0, time_limit: float | None = None, iterations: Count = 60,
             grid: Annotated[int, Field(ge=1, le=1000)] = 96) -> Outcome:
    """Upper bound: Lagrangian relaxation of the shared SMs, bandwidth and power; users then decide alone.

    Why it is valid: with prices ``mu >= 0`` on the cloud SMs and on each edge's SMs, bandwidth and power,
    ``D(mu) = sum_n max over (edge, o, c) of [w1 U - w2 T - w3 E - mu . (user n's shares)] + mu . capacities``
    is at least the value of every allocation within the capacities (the added ``mu (cap - used)`` are
    >= 0), so at least the optimum; capacities carry the referee's tolerance. Per user, (edge, o, c) are
    enumerated; the SM share of a compute stage costs ``min_v a / v + mu v`` in closed form; the radio
    part ``min over b, p of (w2 + w3 p) S / r(b, p) + mu_b b + mu_p p`` is bounded below cell by cell on a
    geometric grid (``r`` grows in both b and p, so each cell is charged its largest rate and smallest
    b and p). Every iterate is such a bound; prices follow a projected subgradient, the best is reported.
    """
    start = time.perf_counter()
    d = instance.data
    s, w = d.steps, d.weights
    N, M = d.n_users, len(d.edges)
    slack = 1 + TOL
    B = np.array([e.bandwidth_mhz for e in d.edges]) * slack
    P = np.minimum(np.array([e.power_w for e in d.edges]), d.p_max_w) * slack
    P_edge = np.array([e.power_w for e in d.edges]) * slack
    V = np.array([e.sms for e in d.edges]) * slack
    V_cs = d.cloud.sms * slack
    o = np.arange(s.o_min, s.o_max + 1)
    c = np.arange(s.c_min, s.c_max + 1)
    limits.check_memory(32.0 * N * M * (len(o) * len(c) + grid * grid),  # about four arrays of each at once
                        "its (users, edges, steps, cloud steps) and (users, edges, grid, grid) tables")
    oc = (c[None, :] <= o[:, None])  # (O, C) admissible pairs
    q = np.maximum(o[:, None] - c[None, :], 0)
    if not oc.any():
        return Outcome(None, status="infeasible", solver="lagrange", extra={"reason": "no steps meet c <= o"})
    # fixed per (n, m, o, c): quality, fibre delay (the finished video crosses when q = 0), compute energy
    fibre = d.fibre_s(np.arange(N)[:, None, None, None], np.arange(M)[None, :, None, None], (q == 0)[None, None])
    base = (w.utility * d.alignment[:, :, None, None] * (1 - np.exp(-d.zeta[None, :, None, None] * o[None, None, :, None]))
            - w.delay_per_s * fibre
            - w.energy_per_j * (d.cloud.j_per_tflop * d.cloud.tflops_per_step * c[None, None, None, :]
                                + (d.edge_kappa * d.edge_flops)[None, :, None, None] * q[None, None]))
    base = np.where(oc[None, None], base, -np.inf)
    a_cs = w.delay_per_s * c * d.cloud.tflops_per_step / d.tflops_per_sm  # (C,)
    a_e = w.delay_per_s * d.edge_flops[:, None, None] * q[None] / d.tflops_per_sm  # (M, O, C)
    frac = np.r_[0.0, np.geomspace(1e-5, 1.0, grid)]  # cell edges, as fractions of the caps
    lo, hi = frac[:-1], frac[1:]
    gamma = d.snr_per_w_mhz  # (N, M)
    b_hi, p_hi = B[:, None, None] * hi[None, :, None], P[:, None, None] * hi[None, None, :]
    rate = b_hi * np.log2(1 + gamma[:, :, None, None] * p_hi / b_hi)  # (N, M, grid, grid): the cell's largest
    tx = (w.delay_per_s + w.energy_per_j * P[:, None, None] * lo[None, None, :]) * d.video_mbit[:, None, None, None] / rate

    def dual(mu: np.ndarray) -> tuple[float, np.ndarray]:
        mu_cs, mu_v, mu_b, mu_p = mu[0], mu[1:1 + M], mu[1 + M:1 + 2 * M], mu[1 + 2 * M:]
        radio = tx + (mu_b * B)[:, None, None] * lo[:, None] + (mu_p * P)[:, None, None] * lo[None, :]
        cell = radio.reshape(N, M, -1).argmin(axis=2)
        radio_min = np.take_along_axis(radio.reshape(N, M, -1), cell[:, :, None], 2)[:, :, 0]
        edge_cost = np.stack([_share_cost(a_e[m], mu_v[m], V[m]) for m in range(M)])  # (M, O, C)
        value = base - _share_cost(a_cs, mu_cs, V_cs)[None, None, None, :] - edge_cost[None] - radio_min[:, :, None, None]
        flat = value.reshape(N, -1)
        pick = flat.argmax(axis=1)
        m, ko, kc = np.unravel_index(pick, value.shape[1:])
        total = float(flat[np.arange(N), pick].sum() + mu_cs * V_cs + mu_v @ V + mu_b @ B + mu_p @ P_edge)
        # the shares the maximizers take: the subgradient is capacity minus their sum
        v_cs = np.minimum(np.sqrt(a_cs[kc] / mu_cs), V_cs) if mu_cs > 0 else np.full(N, V_cs)
        v_e = np.array([min(np.sqrt(a_e[m[n], ko[n], kc[n]] / mu_v[m[n]]), V[m[n]]) if mu_v[m[n]] > 0 else V[m[n]]
                        for n in range(N)])
        v_e[a_e[m, ko, kc] == 0] = 0.0
        ib, ip = np.unravel_index(cell[np.arange(N), m], (grid, grid))
        b_used, p_used = B[m] * hi[ib], P[m] * hi[ip]
        used = np.r_[v_cs.sum(), np.bincount(m, v_e, M), np.bincount(m, b_used, M), np.bincount(m, p_used, M)]
        return total, np.r_[V_cs, V, B, P_edge] - used

    caps = np.r_[V_cs, V, B, P_edge]
    mu = np.zeros(1 + 3 * M)
    best, step, stall, it = np.inf, 0.2, 0, 0
    for it in range(1, iterations + 1):
        value, grad = dual(mu)
        if value < best:
            best, stall = value, 0
            anytime.report(bound=best)
        else:
            stall += 1
            if stall >= 5:
                step, stall = step / 2, 0
        if (time_limit is not None and time.perf_counter() - start > time_limit) or anytime.stop_requested():
            break
        # each price moves so that price x capacity changes by a fraction ``step`` of the bound, along the
        # subgradient measured per unit of capacity; the fraction halves when the bound stops improving
        direction = grad / caps
        norm = float(np.linalg.norm(direction))
        if norm == 0:
            break
        mu = np.maximum(0.0, mu - step * abs(best) * direction / norm / caps)
    return Outcome(None, status="bound", bound=best, solver="lagrange", extra={"iterations": it})
