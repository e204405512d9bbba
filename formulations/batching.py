"""Exact MILP for ``batching``: a generalized assignment of requests to batch slots, HiGHS by default.

Every GPU g has K slots k (K = the requests that can use g), run in slot order. ``x[i,g,k]`` puts request i
in slot k of g; ``z[g,k,n,q]`` gives the slot size n and level q (the size and level bins; at most one per
slot, and slot k is used only if slot k-1 is). Within a bin the batch latency is linear in the longest prompt
and output, so each bin has its own ``P[g,k,n,q] <= p_max z`` and ``O[g,k,n,q] <= o_max z`` (zero unless the
bin is chosen) with ``sum_nq P >= p_i x[i,g,k]`` and ``sum_nq O >= o_i x[i,g,k]``, and the slot lasts
``T = sum_nq (prefill_ms[g][q][n-1] P + decode_ms[g][q][n-1] O) / 1000``: piecewise linear over the bins,
exact, without big-M. Memory per bin: ``P + O <= z (M_g - W_q) / (n kv_mb / 1000)``. Start ``S >= S + T of
the previous slot`` and ``S >= a_i x``; ``S + T <= due_i`` for every member (big-M ``max due - due_i``).
Size: ``sum_i x = sum n z``; accuracy: ``x <= sum of z over the levels i accepts``. A start later than the
referee's (earliest) start is allowed but never helps, so the optimum equals the referee's value of the same
batches. Busy-time cuts from the knapsack bound tighten the LP (about half the solve time on ``small``).

Pairs that cannot be served whatever the batch are left out: request i is not a candidate for g when it
misses its deadline by itself at the fastest level it accepts (latency grows with size and lengths).
"""
from __future__ import annotations

import numpy as np
import pyomo.environ as pe

from edgeopt.problems.batching import Batch, Instance, Solution, gap_bound, schedule
from edgeopt.registry import method
from edgeopt.result import Outcome
from edgeopt.solvers import exact_method


def build_model(instance: Instance) -> pe.ConcreteModel:
    """Exact MILP (HiGHS by default): requests to batch slots, size x level bins, linear latency per bin."""
    d = instance.data
    R, G, Q, B = d.shape
    r = d.requests
    a, p, o, due, w = r.arrival_s, r.in_tokens.astype(float), r.out_tokens.astype(float), d.due, d.weight
    p_max, o_max, h_max = float(p.max()), float(o.max()), float(due.max())
    can = a + d.alone_s.min(axis=1) <= due + 1e-9 * np.maximum(1.0, due)  # (G, R): i makes it on g by itself
    K = can.sum(axis=1)
    share = d.share_s
    slots = [(g, k) for g in range(G) for k in range(int(K[g]))]
    pairs = [(i, g, k) for g, k in slots for i in np.flatnonzero(can[g]).tolist()]
    room = {}  # (g, q, n) -> padded tokens P + O the bin holds
    for g in range(G):
        for q in range(Q):
            for n in range(1, B + 1):
                free_gb = d.mem[g] - d.weights_gb[q]
                cap = np.inf if d.kv_mb == 0 else free_gb / (n * d.kv_mb / 1000.0)
                if free_gb >= 0 and cap >= 2:
                    room[g, q, n] = cap
    bins = [(g, k, n, q) for g, k in slots for q in range(Q) for n in range(1, B + 1) if (g, q, n) in room]

    m = pe.ConcreteModel(name=f"batching_{instance.name}")
    m.x = pe.Var(pairs, domain=pe.Binary)
    m.z = pe.Var(bins, domain=pe.Binary)
    m.P = pe.Var(bins, bounds=(0, p_max))  # the longest prompt, in the slot's chosen bin only
    m.O = pe.Var(bins, bounds=(0, o_max))
    m.S = pe.Var(slots, bounds=(0, h_max))
    by_slot = {s: [] for s in slots}
    by_req = {i: [] for i in range(R)}
    for t in pairs:
        by_slot[t[1:]].append(t[0])
        by_req[t[0]].append(t[1:])
    bins_of = {s: [] for s in slots}
    for b in bins:
        bins_of[b[:2]].append(b[2:])

    def used(s):
        return sum(m.z[s + nq] for nq in bins_of[s])

    def latency(g, k):
        return sum((d.prefill_ms[g, q, n - 1] * m.P[g, k, n, q] + d.decode_ms[g, q, n - 1] * m.O[g, k, n, q]) / 1000.0
                   for n, q in bins_of[g, k])

    m.once = pe.Constraint(range(R), rule=lambda m, i: sum(m.x[i, g, k] for g, k in by_req[i]) <= 1
                           if by_req[i] else pe.Constraint.Skip)
    m.one_bin = pe.Constraint(slots, rule=lambda m, g, k: used((g, k)) <= 1)
    m.in_order = pe.Constraint(slots, rule=lambda m, g, k: used((g, k)) <= used((g, k - 1)) if k else pe.Constraint.Skip)
    m.size = pe.Constraint(slots, rule=lambda m, g, k: sum(m.x[i, g, k] for i in by_slot[g, k])
                           == sum(n * m.z[g, k, n, q] for n, q in bins_of[g, k]))
    m.accurate = pe.Constraint(pairs, rule=lambda m, i, g, k: m.x[i, g, k] <= sum(
        m.z[g, k, n, q] for n, q in bins_of[g, k] if d.accurate[i, q]))
    m.longest_in = pe.Constraint(pairs, rule=lambda m, i, g, k: sum(m.P[g, k, n, q] for n, q in bins_of[g, k])
                                 >= p[i] * m.x[i, g, k])
    m.longest_out = pe.Constraint(pairs, rule=lambda m, i, g, k: sum(m.O[g, k, n, q] for n, q in bins_of[g, k])
                                  >= o[i] * m.x[i, g, k])
    m.in_bin = pe.Constraint(bins, rule=lambda m, g, k, n, q: m.P[g, k, n, q] <= p_max * m.z[g, k, n, q])
    m.out_bin = pe.Constraint(bins, rule=lambda m, g, k, n, q: m.O[g, k, n, q] <= o_max * m.z[g, k, n, q])
    m.memory = pe.Constraint(bins, rule=lambda m, g, k, n, q: m.P[g, k, n, q] + m.O[g, k, n, q]
                             <= room[g, q, n] * m.z[g, k, n, q] if room[g, q, n] < p_max + o_max
                             else pe.Constraint.Skip)
    m.after = pe.Constraint(slots, rule=lambda m, g, k: m.S[g, k] >= m.S[g, k - 1] + latency(g, k - 1)
                            if k else pe.Constraint.Skip)
    m.arrived = pe.Constraint(pairs, rule=lambda m, i, g, k: m.S[g, k] >= a[i] * m.x[i, g, k])
    m.horizon = pe.Constraint(slots, rule=lambda m, g, k: m.S[g, k] + latency(g, k) <= h_max)
    m.deadline = pe.Constraint(pairs, rule=lambda m, i, g, k: m.S[g, k] + latency(g, k)
                               <= due[i] + (h_max - due[i]) * (1 - m.x[i, g, k]))
    # busy-time cuts (valid, they tighten the LP): every batch lasts at least the sum of its members' shares
    # (each member's latency alone at the batch's size and level, over the size), so the requests due by
    # due_j that g serves need that much of g between their first arrival and due_j
    m.edf = pe.Constraint([(g, j) for g in range(G) for j in np.flatnonzero(can[g]).tolist()], rule=lambda m, g, j:
                          sum(float(share[g, i]) * m.x[i, g, k] for i in np.flatnonzero(can[g] & (due <= due[j]))
                              for k in range(int(K[g]))) <= due[j] - a[can[g] & (due <= due[j])].min())
    m.obj = pe.Objective(expr=sum(float(w[i]) * m.x[i, g, k] for i, g, k in pairs) if pairs else 0.0,
                         sense=pe.maximize)
    return m


def model_size(instance: Instance) -> tuple[int, int, int]:
    """(variables, constraints, nonzeros) of ``build_model``, bounded from the request, GPU, level and batch
    counts: up to R slots per GPU, R candidates per slot, and busy-time cuts of R·R terms per (GPU, request)."""
    R, G, Q, B = instance.data.shape
    slots, bins = G * R, G * R * Q * B
    pairs = slots * R
    return pairs + 3 * bins + slots, R + 5 * slots + 4 * pairs + 3 * bins + G * R, \
        pairs * (6 + 4 * Q * B) + slots * (R + Q * B) + 9 * bins + G * R ** 3


def read_solution(m: pe.ConcreteModel, instance: Instance) -> Solution:
    members: dict = {}
    for (i, g, k), var in m.x.items():
        if pe.value(var) > 0.5:
            members.setdefault((g, k), []).append(i)
    level = {(g, k): q for (g, k, n, q), var in m.z.items() if pe.value(var) > 0.5}
    return Solution(batches=[Batch(gpu=g, quant=level[g, k], requests=np.array(sorted(members[g, k])))
                             for g, k in sorted(members)])


def warm_start(m: pe.ConcreteModel, instance: Instance, solution: Solution) -> None:
    """Set the MILP's variables to ``solution`` (feasible): each GPU's batches fill its slots in order, timed
    as the referee times them. A batch the model cannot hold raises KeyError (the start is then dropped)."""
    d = instance.data
    r = d.requests
    for v in [*m.x.values(), *m.z.values(), *m.P.values(), *m.O.values()]:
        v.set_value(0)
    start, _ = schedule(d, solution.batches)
    slot = np.zeros(len(d.gpus), dtype=int)
    for b, s in zip(solution.batches, start):
        g, k, n, q = b.gpu, int(slot[b.gpu]), len(b.requests), b.quant
        m.z[g, k, n, q].set_value(1)
        m.P[g, k, n, q].set_value(int(r.in_tokens[b.requests].max()))
        m.O[g, k, n, q].set_value(int(r.out_tokens[b.requests].max()))
        for i in b.requests:
            m.x[int(i), g, k].set_value(1)
        m.S[g, k].set_value(float(s))
        slot[g] += 1
    for g, k in m.S:  # unused slots start where the GPU's last batch ends
        if k >= slot[g]:
            m.S[g, k].set_value(pe.value(m.S[g, k - 1] + sum(
                (d.prefill_ms[g, q, n - 1] * m.P[g, k - 1, n, q] + d.decode_ms[g, q, n - 1] * m.O[g, k - 1, n, q])
                / 1000.0 for (gg, kk, n, q) in m.z if (gg, kk) == (g, k - 1))) if k else 0.0)


STARTS = ("ot-gah", "static", "no-batching")
BOUNDS = ("knapsack",)  # proved first (milliseconds): a run cut short before its solver proves anything keeps it
milp = method("batching", "milp", "exact")(exact_method(build_model, read_solution, warm_start=warm_start,
                                                        model_size=model_size, starts=STARTS, bounds=BOUNDS))


@method("batching", "knapsack", "bound")
def gap(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """Upper bound: the generalized-assignment relaxation OT-GAH prunes with, at the root (every GPU free at 0).

    Valid because a batch lasts at least the sum of its members' busy-time shares and every served request
    ends by its deadline (``gap_bound`` in ``edgeopt.problems.batching``); O(G Q B R).
    """
    d = instance.data
    R, G = d.shape[:2]
    value = gap_bound(d, np.zeros(G), np.ones(G, dtype=bool), np.ones(R, dtype=bool))
    return Outcome(None, status="bound", bound=value, solver="knapsack")
