"""OT-GAH for ``batching`` (tree search over batch decisions, pruned by a generalized-assignment bound), and
the seed's baselines: static batching (fixed size) and no batching.

Seed 001 names OT-GAH ("Optimal Tree-search with Generalized Assignment Heuristics": tree search with online
pruning over the scheduling decisions) and nothing more. What is filled in here, ours:

* **Tree.** A node is a partial schedule: each GPU's free time and the requests still pending. It branches on
  the next batch of the GPU that frees up first: one child per candidate batch (level q, members), or, when
  that GPU has no feasible batch left, it closes the GPU.
* **Candidate batches (the assignment heuristic).** For each level q and each of two orders of the pending
  requests that q serves accurately (earliest deadline first, first come first served), members are added
  greedily, each time the first request in the order that keeps the batch (at its new size) within every
  member's deadline and the GPU's memory; every prefix is a candidate of its size. Of candidates with the same
  members, the one that ends first is kept.
* **Pruning (the generalized-assignment bound).** What the pending requests can still add is at most
  ``gap_bound`` (``edgeopt.problems.batching``): a GAP relaxation where request i costs GPU g at least
  ``min_{q, n} T(g, q, n, p_i, o_i) / n`` of busy time, pooled into one fractional knapsack. A node whose
  value plus this bound cannot beat the incumbent is cut.
* **Search.** Depth-first, children best first by value per second of GPU time (waiting included); the first
  dive is the greedy schedule. It stops after ``nodes`` more expansions or at the time limit. With both untouched
  the search is exhaustive over its candidates, which are not all batches: it is a heuristic, not exact.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from edgeopt.limits import Count
from edgeopt.model import InputError
from edgeopt.problems.batching import Batch, Data, Instance, Solution, gap_bound
from edgeopt.registry import method

_TOL = 1e-9


def candidates(d: Data, g: int, start: float, pending: np.ndarray) -> list[tuple[float, int, np.ndarray]]:
    """Candidate batches for GPU g free at ``start``: (end, level, members), one per distinct member set."""
    Q, B = d.shape[2:]
    r = d.requests
    a, p, o, due = r.arrival_s, r.in_tokens, r.out_tokens, d.due
    best: dict[bytes, tuple[float, int, np.ndarray]] = {}
    for q in range(Q):
        elig = pending & (np.maximum(start, a) + d.alone_s[g, q] <= due + _TOL)
        idx = np.flatnonzero(elig)
        if not len(idx):
            continue
        for key in (due[idx], a[idx]):
            seq = idx[np.argsort(key, kind="stable")]
            members: list[int] = []
            P = O = 0
            s, tight = start, np.inf
            left = np.ones(len(seq), dtype=bool)
            for m in range(1, B + 1):
                P2, O2 = np.maximum(P, p[seq]), np.maximum(O, o[seq])
                S2 = np.maximum(s, a[seq])
                E2 = S2 + d.latency_s(g, q, m, P2, O2)
                ok = left & (E2 <= np.minimum(tight, due[seq]) + _TOL) & d.fits(g, q, m, P2, O2)
                hit = np.flatnonzero(ok)
                if not len(hit):
                    break
                k = hit[0]
                i = int(seq[k])
                members.append(i)
                left[k] = False
                P, O, s, tight = P2[k], O2[k], S2[k], min(tight, due[i])
                batch = np.array(sorted(members))
                sig = batch.tobytes()
                if sig not in best or E2[k] < best[sig][0]:
                    best[sig] = (float(E2[k]), q, batch)
    return list(best.values())


@dataclass
class _Node:
    free: np.ndarray
    is_open: np.ndarray
    pending: np.ndarray
    value: float
    batches: list  # (gpu, level, members) in the order they run


def _children(d: Data, node: _Node) -> list[_Node]:
    """The node's children, best first (value per second of GPU time, waiting included)."""
    g = int(np.argmin(np.where(node.is_open, node.free, np.inf)))
    cands = candidates(d, g, float(node.free[g]), node.pending)
    if not cands:
        is_open = node.is_open.copy()
        is_open[g] = False
        return [_Node(node.free, is_open, node.pending, node.value, node.batches)]
    out = []
    for end, q, members in cands:
        gain = float(d.weight[members].sum())
        rate = gain / max(end - node.free[g], 1e-12)
        free, pending = node.free.copy(), node.pending.copy()
        free[g], pending[members] = end, False
        out.append((rate, -end, _Node(free, node.is_open, pending, node.value + gain,
                                      node.batches + [(g, q, members)])))
    out.sort(key=lambda c: (-c[0], -c[1]))
    return [c[2] for c in out]


@method("batching", "ot-gah", "heuristic")
def ot_gah(instance: Instance, *, seed: int = 0, time_limit: float | None = None, nodes: Count = 500) -> Solution:
    """OT-GAH: depth-first tree search over the next batch of the earliest-free GPU, GAP-relaxation pruning.

    The first dive (the greedy schedule) always completes; ``nodes`` then bounds the expansions of the
    backtracking (default 500, 0 = the greedy schedule). Deterministic unless the time limit cuts it first.
    """
    began = time.perf_counter()
    d = instance.data
    R, G = d.shape[:2]
    root = _Node(np.zeros(G), np.isfinite(d.alone_s).any(axis=(1, 2)), np.ones(R, dtype=bool), 0.0, [])
    best, stack = root, [root]
    expanded, dived = 0, False
    while stack and (not dived or expanded < nodes):
        if time_limit is not None and time.perf_counter() - began > time_limit:
            break
        node = stack.pop()
        if node.value > best.value + _TOL:
            best = node  # every node is a valid schedule (the requests still pending rejected)
        if (not node.is_open.any() or not node.pending.any()
                or node.value + gap_bound(d, node.free, node.is_open, node.pending) <= best.value + _TOL):
            dived = True  # a leaf, or nothing left to gain below: the first dive is over
            continue
        expanded += dived
        stack.extend(reversed(_children(d, node)))
    return Solution(batches=[Batch(gpu=g, quant=q, requests=members) for g, q, members in best.batches])


def _in_order(d: Data, size: int, quant: int) -> Solution:
    """Consecutive arrivals in batches of ``size`` at one level, each on the GPU free first; members that
    would break memory (the longest first) or their deadline are dropped until the batch is feasible."""
    G, Q = d.shape[1:3]
    r = d.requests
    if not 0 <= quant < Q:
        raise InputError("quant", f"must be a level index 0..{Q - 1}, got {quant}")
    q = quant
    keep = d.accurate[:, q]
    order = np.argsort(r.arrival_s, kind="stable")
    order = order[keep[order]]
    free = np.zeros(G)
    batches = []
    for k in range(0, len(order), size):
        members = order[k:k + size]
        g = int(np.argmin(free))
        while len(members):
            P, O, n = r.in_tokens[members].max(), r.out_tokens[members].max(), len(members)
            if not d.fits(g, q, n, P, O):
                members = np.delete(members, np.argmax(r.in_tokens[members] + r.out_tokens[members]))
                continue
            end = max(free[g], r.arrival_s[members].max()) + d.latency_s(g, q, n, P, O)
            late = d.due[members] < end - _TOL * max(1.0, end)
            if not late.any():
                batches.append(Batch(gpu=g, quant=q, requests=np.sort(members)))
                free[g] = end
                break
            members = members[~late]
    return Solution(batches=batches)


def _size(d: Data, size: int | None) -> int:
    B = d.shape[3]
    return max(1, min(B, 4 if size is None else int(size)))


@method("batching", "static", "baseline")
def static(instance: Instance, *, seed: int = 0, time_limit: float | None = None, size: int | None = None,
           quant: int = 0) -> Solution:
    """Static batching: fixed-size batches of consecutive arrivals at one level (default 4, level 0 = fp16)."""
    return _in_order(instance.data, _size(instance.data, size), int(quant))


@method("batching", "no-batching", "baseline")
def no_batching(instance: Instance, *, seed: int = 0, time_limit: float | None = None, quant: int = 0) -> Solution:
    """No batching: one request at a time in arrival order at one level (default level 0 = fp16)."""
    return _in_order(instance.data, 1, int(quant))
