"""EdgeShard's dynamic programs and the paper's baselines for ``partition``.

``dp-throughput`` is exhaustive over its model and so registered as exact; ``dp-latency`` is not.
"""
from __future__ import annotations

import time

import numpy as np

from edgeopt import anytime, limits
from edgeopt.problems.partition import OBJECTIVES, PIPELINED, Instance, Solution
from edgeopt.registry import NotApplicable, method
from edgeopt.result import Outcome

SEQUENTIAL = tuple(o for o in OBJECTIVES if o not in PIPELINED)


def _only(pipelined: bool):
    names = " or ".join(repr(o) for o in (PIPELINED if pipelined else SEQUENTIAL))

    def applies(instance: Instance) -> str | None:
        if instance.data.pipelined != pipelined:
            return f"applies to objective {names} instances only"
        return None

    return applies


@method("partition", "dp-latency", "heuristic", applies=_only(pipelined=False))
def dp_latency(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """EdgeShard's latency DP, O(L·D²): D(l,d) = min_k D(l-1,k) + t[l][d] + comm(k,d), on the objective's
    coefficients (per generated token for ms-per-token).

    Each cell carries the memory its best path uses on every device and only extends to devices with
    room (the paper's rule). That makes it a heuristic when memory binds: the best path to a cell may
    have filled a device that a slightly slower path would have left free. When no path fits, the
    memory-blind DP path is returned and the referee reports it infeasible.
    """
    d = instance.data
    L = len(d.layers)
    t, hop, back, mem = d.cost
    cap = d.cap
    place = _dp_path(t, mem, cap, hop, back, d.source, memory=True)
    if place is None:
        place = _dp_path(t, mem, cap, hop, back, d.source, memory=False)
        return Outcome(Solution(place=place) if place is not None else _solo(instance))
    cost = t[np.arange(L), place].sum() + sum(hop[l, place[l], place[l + 1]] for l in range(L - 1)) + back[place[-1]]
    return Outcome(Solution(place=place), claimed=float(cost))


def _dp_path(t, mem, cap, hop, back, source, memory: bool) -> list[int] | None:
    L, D = t.shape
    cost = np.full(D, np.inf)
    cost[source] = t[0, source]
    used = np.zeros((D, D))  # used[k] = memory per device along the best path ending at k
    used[source, source] = mem[0]
    if memory and mem[0] > cap[source]:
        return None
    parent = np.zeros((L, D), dtype=np.int64)
    for l in range(1, L):
        cand = cost[:, None] + hop[l - 1] + t[l][None, :]  # (from k, to d)
        if memory:
            cand = np.where(used + mem[l] <= cap[None, :] + 1e-9, cand, np.inf)
        best = np.argmin(cand, axis=0)
        cost = cand[best, np.arange(D)]
        used = used[best].copy()
        used[np.arange(D), np.arange(D)] += mem[l]
        parent[l] = best
    total = cost + back
    if not np.isfinite(total).any():
        return None
    k = int(np.argmin(total))
    place = [k]
    for l in range(L - 1, 0, -1):
        k = int(parent[l, k])
        place.append(k)
    return place[::-1]


@method("partition", "dp-throughput", "exact", applies=_only(pipelined=True))
def dp_throughput(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """EdgeShard's pipeline DP over (layers done, used devices, last device): exact, so a proven optimum.

    Extends a state by one contiguous shard on an unused device that has room for it, keeping the
    smallest bottleneck. It enumerates every placement the throughput model allows (one shard per
    device, memory checked per shard), and the bottleneck of a prefix is monotone in its parts, so the
    optimum it returns is proven: registered as ``exact`` with bound = its value. O(L²·2^D·D²) in
    principle; the shard loops are NumPy-vectorized over the device subsets, so D = 10 takes seconds.
    Its tables hold (L+1)·2^D·D states of 16 bytes: a table over the memory cap (``edgeopt.limits``; 4 GiB:
    18 devices at 80 layers) is refused before it is allocated.
    No placement is complete before the last layer: cut short (time limit, stop request), it returns none.
    """
    d = instance.data
    L, D = len(d.layers), len(d.devices)
    limits.check_memory(16.0 * (L + 1) * 2**D * D + 24.0 * 2**D * D,
                        f"its state table of (L+1)·2^D·D = {L + 1}·2^{D}·{D} states")
    _, hop, back, _ = d.cost
    tc, nc, mc = d.prefix
    cap = d.cap

    def stage(i: int, js: np.ndarray, e: int) -> np.ndarray:
        """Time of shard layers i..j-1 on device e for every j in js; inf where it cannot be placed."""
        s = tc[js, e] - tc[i, e]
        bad = (nc[js, e] - nc[i, e] > 0) | (mc[js] - mc[i] > cap[e] + 1e-9)
        return np.where(bad, np.inf, s)

    n_sets = 1 << D
    value = np.full((L + 1, n_sets, D), np.inf)
    from_i = np.zeros((L + 1, n_sets, D), dtype=np.int32)
    from_d = np.full((L + 1, n_sets, D), -1, dtype=np.int32)
    src = d.source
    js = np.arange(1, L + 1)
    value[js, 1 << src, src] = stage(0, js, src)
    sets = np.arange(n_sets)
    began = time.perf_counter()
    for i in range(1, L):
        if anytime.stop_requested() or (time_limit is not None and time.perf_counter() - began > time_limit):
            return Outcome(None, status="time_limit", solver="dp")
        vi = value[i]
        if not np.isfinite(vi).any():
            continue
        js = np.arange(i + 1, L + 1)
        for e in range(D):
            free = sets[(sets >> e) & 1 == 0]
            w = np.maximum(vi[free], hop[i - 1, :, e][None, :])  # (sets, last device)
            best_d = np.argmin(w, axis=1)
            wmin = w[np.arange(len(free)), best_d]
            keep = np.isfinite(wmin)
            if not keep.any():
                continue
            free, best_d, wmin = free[keep], best_d[keep], wmin[keep]
            st = stage(i, js, e)
            ok = np.isfinite(st)
            if not ok.any():
                continue
            jj = js[ok]
            cand = np.maximum(wmin[None, :], st[ok][:, None])  # (j, sets)
            target = free | (1 << e)
            cur = value[jj[:, None], target[None, :], e]
            better = cand < cur
            if better.any():
                jb, sb = np.nonzero(better)
                value[jj[jb], target[sb], e] = cand[jb, sb]
                from_i[jj[jb], target[sb], e] = i
                from_d[jj[jb], target[sb], e] = best_d[sb]
    total = np.maximum(value[L], back[None, :])
    if not np.isfinite(total).any():
        return Outcome(None, status="infeasible")
    s, k = np.unravel_index(int(np.argmin(total)), total.shape)
    best = float(total[s, k])
    place = [0] * L
    j = L
    while j > 0:
        i = int(from_i[j, s, k])
        place[i:j] = [int(k)] * (j - i)
        s, k, j = s & ~(1 << int(k)), int(from_d[j, s, k]), i
    return Outcome(Solution(place=place), claimed=best, status="optimal", bound=best, gap=0.0, solver="dp")


def _solo(instance: Instance) -> Solution:
    return Solution(place=[instance.data.source] * len(instance.data.layers))


@method("partition", "edge-solo", "baseline")
def edge_solo(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Solution:
    """All layers on the source device (out of memory is reported, not hidden)."""
    return _solo(instance)


def _fastest_cloud(instance: Instance) -> int:
    d = instance.data
    clouds = [k for k, dev in enumerate(d.devices) if dev.kind == "cloud" and k != d.source]
    if not clouds:
        raise NotApplicable("needs a cloud device other than the source")
    return min(clouds, key=lambda k: d.t[1:, k].sum())


def _split(instance: Instance, k: int, cloud: int) -> Solution:
    L = len(instance.data.layers)
    return Solution(place=[instance.data.source] * k + [cloud] * (L - k))


@method("partition", "cloud-edge-even", "baseline")
def cloud_edge_even(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Solution:
    """First half of the layers on the source, the rest on the fastest cloud device."""
    cloud = _fastest_cloud(instance)
    L = len(instance.data.layers)
    return _split(instance, max(1, L // 2), cloud)


@method("partition", "cloud-edge-opt", "baseline")
def cloud_edge_opt(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Solution:
    """Best single split point between the source and the fastest cloud device (all splits tried).

    Splits that fit in memory are preferred; when none fits, the best split is returned and the
    referee reports it out of memory.
    """
    d = instance.data
    cloud = _fastest_cloud(instance)
    L, src = len(d.layers), d.source
    t, hop, back, mem = d.cost
    ks = np.arange(1, L + 1)  # layers < k on the source
    ts, tcl = np.concatenate([[0.0], np.cumsum(t[:, src])]), np.concatenate([[0.0], np.cumsum(t[:, cloud])])
    edge_ms, cloud_ms = ts[ks], tcl[L] - tcl[ks]
    hop = np.where(ks < L, hop[ks - 1, src, cloud], 0.0)
    back = np.where(ks < L, back[cloud], 0.0)
    if d.pipelined:
        obj = np.maximum.reduce([edge_ms, np.where(ks < L, cloud_ms, 0.0), hop, back])
    else:
        obj = edge_ms + cloud_ms + hop + back
    mc = np.concatenate([[0.0], np.cumsum(mem)])
    fits = (mc[ks] <= d.cap[src] + 1e-9) & (mc[L] - mc[ks] <= d.cap[cloud] + 1e-9)
    obj = np.where(np.isnan(obj), np.inf, obj)
    pick = np.where(fits & np.isfinite(obj), obj, np.inf)
    k = int(ks[np.argmin(pick if np.isfinite(pick).any() else obj)])
    return _split(instance, k, cloud)
