"""Placement heuristic with threshold search, and the baselines, for ``placement``.

``lpt-ls`` routes each type whole, places models longest-work-first (LPT) onto the device where the
load stays least, then improves by local search over model moves and swaps, re-routing a type, and
threshold search (for one cascade at a time, every threshold vector with everything else fixed),
alternated with an LP that splits each type's requests over models for the placement found.
The baselines are what a deployment does without optimizing: the largest model for everything,
round-robin placement, one model per device.
"""
from __future__ import annotations

import time

import numpy as np

from edgeopt.limits import Count
from edgeopt.problems.placement import Data, Instance, Solution
from edgeopt.registry import method


class _State:
    """A whole-type routing, a placement and a threshold choice, scored the way the referee scores them."""

    def __init__(self, d: Data):
        self.d = d
        self.tables = [d.cascade_options(c) for c in range(len(d.cascades))]
        self.rows = np.nonzero(d.routed)[0]
        self.can = ~np.isnan(d.error)
        # cascade work: (type, model, weight index) per level model; weight = count * reach[k]
        self.levels = [[(k, j) for k, lev in enumerate(cas.levels) for j in lev.models] for cas in d.cascades]
        self.pairs = np.argwhere(self.can & d.routed[:, None])  # (P, 2) routed (type, model) pairs of the LP
        self.pair_cost = d.lam * d.count[self.pairs[:, 0]] * d.error[self.pairs[:, 0], self.pairs[:, 1]]
        self.solved: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}  # the last few LPs by placement and thresholds

    def cascade_load(self, device: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, float]:
        """(D,) the cascades' busy time per device and their expected wrong answers."""
        d = self.d
        load, wrong = np.zeros(len(d.devices)), 0.0
        for c, cas in enumerate(d.cascades):
            _, reach, bad = self.tables[c]
            n = d.count[cas.type]
            for k, m in self.levels[c]:
                load[device[m]] += n * reach[theta[c], k] * d.time_s[cas.type, m, device[m]]
            wrong += n * bad[theta[c]]
        return load, wrong

    def score(self, device: np.ndarray, share: np.ndarray, theta: np.ndarray) -> tuple[float, float, np.ndarray]:
        """(overflow, objective, loads): overflow = relative memory and compute excess, 0 when feasible."""
        d = self.d
        D = len(d.devices)
        r = self.rows
        t = d.time_s[r][:, np.arange(len(device)), device]  # (routed types, M) on each model's device
        load = self.cascade_load(device, theta)[0]
        load += np.bincount(device, weights=(d.count[r, None] * share[r] * t).sum(axis=0), minlength=D)
        wrong = self.wrong(share, theta)
        mem = np.bincount(device, weights=d.model_mem, minlength=D)
        comp = np.bincount(device, weights=d.model_compute, minlength=D)
        over = float(np.sum(np.maximum(mem - d.device_mem, 0) / d.device_mem)
                     + np.sum(np.maximum(comp - d.device_compute, 0) / d.device_compute))
        return over, float(load.max()) + d.lam * wrong, load

    def served(self, share: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """(R, M) the requests of each type each model serves: count x share for a routed type, count x reach
        of its level for a cascade's model."""
        d = self.d
        out = d.count[:, None] * share * d.routed[:, None]
        for c, cas in enumerate(d.cascades):
            reach = self.tables[c][1][theta[c]]
            for k, m in self.levels[c]:
                out[cas.type, m] += d.count[cas.type] * reach[k]
        return out

    def work(self, share: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """(M, D) the busy time each model would bring to each device under this routing and thresholds."""
        return np.einsum("rj,rjd->jd", self.served(share, theta), self.d.time_s)

    def solution(self, device: np.ndarray, share: np.ndarray, theta: np.ndarray) -> Solution:
        return Solution(device=device, share=share, thresholds=[[int(v) for v in self.tables[c][0][theta[c]]]
                                                                for c in range(len(self.d.cascades))])

    def wrong(self, share: np.ndarray, theta: np.ndarray) -> float:
        """Expected wrong answers of the routed types and the cascades (the placement does not change it)."""
        d = self.d
        r = self.rows
        out = float(np.sum(d.count[r, None] * share[r] * np.nan_to_num(d.error[r])))
        return out + sum(d.count[cas.type] * self.tables[c][2][theta[c]] for c, cas in enumerate(d.cascades))

    def lp(self, device: np.ndarray, theta: np.ndarray):
        """The LP that splits each type's shares for a fixed placement and thresholds (min T + λ · wrong,
        T >= every load), or None when it fails: ``(shares, device duals y)``. Any y >= 0 with sum(y) <= 1
        gives the lower bound of ``_dual_bound``; the LP's own duals give its optimum."""
        from scipy.optimize import linprog
        from scipy.sparse import csr_array

        key = device.tobytes() + theta.tobytes()
        if key in self.solved:  # the local search asks again for the point it just moved to
            return self.solved[key]
        d = self.d
        D, R = len(d.devices), len(self.rows)
        r, j = self.pairs[:, 0], self.pairs[:, 1]
        P = len(r)
        base, _ = self.cascade_load(device, theta)
        # sparse rows: each pair's work on its model's device, and -T on every device; one share sum per type
        a_ub = csr_array((np.r_[d.count[r] * d.time_s[r, j, device[j]], -np.ones(D)],
                          (np.r_[device[j], np.arange(D)], np.r_[np.arange(P), np.full(D, P)])), shape=(D, P + 1))
        a_eq = csr_array((np.ones(P), (np.searchsorted(self.rows, r), np.arange(P))), shape=(R, P + 1))
        lp = linprog(np.r_[self.pair_cost, 1.0], A_ub=a_ub, b_ub=-base, A_eq=a_eq, b_eq=np.ones(R),
                     bounds=[(0, 1)] * P + [(0, None)], method="highs")
        if lp.status != 0:
            return None
        out = np.zeros((len(d.types), len(d.models)))
        out[r, j] = np.clip(lp.x[:P], 0.0, 1.0)
        out[self.rows] /= out[self.rows].sum(axis=1, keepdims=True)
        y = np.maximum(-lp.ineqlin.marginals, 0.0)
        self.solved = dict(list(self.solved.items())[-3:]) | {key: (out, y / max(1.0, float(y.sum())))}
        return self.solved[key]

    def split(self, device: np.ndarray, share: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """The best shares for a fixed placement and thresholds (the LP); ``share`` when it finds nothing better."""
        if not len(self.pairs) or (lp := self.lp(device, theta)) is None:
            return share
        out = lp[0]
        return out if self.score(device, out, theta)[:2] < self.score(device, share, theta)[:2] else share


def _lpt(st: _State, work: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Models in ``order`` each to the device with room where its load ends least (else most free memory)."""
    d = st.d
    M, D = work.shape
    device = np.zeros(M, dtype=np.int64)
    load, mem, comp = np.zeros(D), np.zeros(D), np.zeros(D)
    for j in order:
        room = (mem + d.model_mem[j] <= d.device_mem) & (comp + d.model_compute[j] <= d.device_compute)
        i = int(np.argmin(np.where(room, load + work[j], np.inf))) if room.any() else int(np.argmax(d.device_mem - mem))
        device[j] = i
        load[i] += work[j, i]
        mem[i] += d.model_mem[j]
        comp[i] += d.model_compute[j]
    return device


def _initial(st: _State) -> tuple[np.ndarray, np.ndarray]:
    """Whole-type shares and thresholds before placement: least (mean busy time / devices + λ · error)."""
    d = st.d
    D = len(d.devices)
    t = d.time_s.mean(axis=2) / D  # a device's share of the work, placement unknown
    cost = np.where(st.can, t + d.lam * np.nan_to_num(d.error), np.inf)
    share = np.zeros(d.error.shape)
    share[st.rows, np.argmin(cost[st.rows], axis=1)] = 1.0
    theta = np.zeros(len(d.cascades), dtype=np.int64)
    for c, cas in enumerate(d.cascades):
        _, reach, bad = st.tables[c]
        per = sum((reach[:, k] * t[cas.type, m] for k, m in st.levels[c]), np.zeros(len(bad)))
        theta[c] = int(np.argmin(per + d.lam * bad))
    return share, theta


def _max_without(top: np.ndarray, vals: np.ndarray, *excluded: np.ndarray) -> np.ndarray:
    """The largest of ``vals`` at positions ``top`` (indices of the largest entries, largest first, at least
    one more than excluded) that is not one of the ``excluded`` positions; elementwise over the broadcast."""
    out = np.full(np.broadcast(*excluded).shape, -np.inf)
    done = np.zeros(out.shape, dtype=bool)
    for t in top:
        ok = ~done & np.logical_and.reduce([t != e for e in excluded])
        out = np.where(ok, vals[t], out)
        done |= ok
    return out


class _Point:
    """One local-search point and what the delta score of a candidate needs: each model's busy time on each
    device (``work``, fixed by the shares and thresholds), device loads, memory and compute, overflow."""

    def __init__(self, st: _State, device, share, theta, work: np.ndarray | None = None):
        d = st.d
        D = len(d.devices)
        self.device, self.share, self.theta = device, share, theta
        self.work = st.work(share, theta) if work is None else work
        M = len(device)
        self.load = np.bincount(device, weights=self.work[np.arange(M), device], minlength=D)
        self.mem = np.bincount(device, weights=d.model_mem, minlength=D)
        self.comp = np.bincount(device, weights=d.model_compute, minlength=D)
        self.excess = self.excess_at(np.arange(D), self.mem, self.comp, d)
        self.wrong = st.wrong(share, theta)
        self.score = st.score(device, share, theta)[:2]
        self.top = np.argsort(-self.load, kind="stable")[:3]

    @staticmethod
    def excess_at(i, mem, comp, d: Data):
        """Relative memory and compute excess of devices ``i`` holding ``mem`` GB and ``comp`` TFLOP/s."""
        return (np.maximum(mem - d.device_mem[i], 0) / d.device_mem[i]
                + np.maximum(comp - d.device_compute[i], 0) / d.device_compute[i])


def _candidates(st: _State, pt: _Point, start: _Point, hot: int | None) -> tuple[np.ndarray, ...]:
    """The candidates of a pass that can improve ``pt``, each with its score computed from its change alone:
    ``(kind, a, b, overflow, objective)``.

    Kinds: 0 move model a to device b, 1 swap models a and b, 2 send type a whole to model b, 3 cascade a to
    threshold vector b. A pass lists every candidate that changes the point ``start`` it began from, and
    each is scored on the current point. With the shares fixed (``hot`` None) relocations and swaps are only
    those that take a model off the busiest device or off a device over its memory or compute: no other one
    lowers the overflow or the busiest load, and the error term does not depend on the placement. With
    ``hot`` (shares re-split by the LP) they are those that touch ``hot``, the busiest device at the start.
    """
    d = st.d
    M, D = len(pt.device), len(d.devices)
    dev, W, load = pt.device, pt.work, pt.load
    first = start.device
    over, lw = pt.score[0], d.lam * pt.wrong
    out = []

    def scored(kind, J, K, a, b, la, lb, dm, dc):
        """Models J (and K) change device between a and b: the new loads la, lb; dm, dc the memory and compute
        moved from a to b. A candidate that changes nothing keeps the current score."""
        obj = np.maximum(_max_without(pt.top, load, a, b), np.maximum(la, lb)) + lw
        ov = (over - pt.excess[a] - pt.excess[b] + _Point.excess_at(a, pt.mem[a] - dm, pt.comp[a] - dc, d)
              + _Point.excess_at(b, pt.mem[b] + dm, pt.comp[b] + dc, d))
        same = a == b
        out.append((np.full(len(J), kind), J, K, np.where(same, over, ov), np.where(same, pt.score[1], obj)))

    if hot is None:
        src = pt.excess > 0
        src[int(pt.top[0])] = True
        J = np.nonzero(src[dev])[0]
        J, I = np.repeat(J, D), np.tile(np.arange(D), len(J))
        keep = (I != first[J]) & (I != dev[J])
        J, I = J[keep], I[keep]
        J2 = np.nonzero(src[dev])[0]
        J2, K = np.repeat(J2, M), np.tile(np.arange(M), len(J2))
        once = ~src[dev[K]] | (J2 < K)  # a pair with both models on source devices comes up twice
        J2, K = np.minimum(J2, K)[once], np.maximum(J2, K)[once]
        keep = (first[J2] != first[K]) & (dev[J2] != dev[K])
    else:
        J = np.nonzero(first == hot)[0]
        J, I = np.repeat(J, D), np.tile(np.arange(D), len(J))
        J, I = J[I != hot], I[I != hot]
        rest = np.nonzero(first != hot)[0]
        J, I = np.r_[J, rest], np.r_[I, np.full(len(rest), hot)]
        J2 = np.nonzero(first == hot)[0]
        J2, K = np.repeat(J2, M), np.tile(np.arange(M), len(J2))
        J2, K = np.minimum(J2, K), np.maximum(J2, K)
        keep = first[J2] != first[K]
    a = dev[J]
    mm, mc = d.model_mem[J], d.model_compute[J]
    scored(0, J, I, a, I, load[a] - W[J, a], load[I] + W[J, I], mm, mc)
    J, K = J2[keep], K[keep]
    a, b = dev[J], dev[K]
    scored(1, J, K, a, b, load[a] - W[J, a] + W[K, a], load[b] - W[K, b] + W[J, b],
           d.model_mem[J] - d.model_mem[K], d.model_compute[J] - d.model_compute[K])
    # whole-type routes: type r's work off every device, then all of it to model j on its device
    rows = st.rows
    own = d.count[rows, None] * d.time_s[rows[:, None], np.arange(M)[None, :], dev[None, :]]  # (routed, M) on own device
    base = load[None, :] - np.stack([np.bincount(dev, weights=pt.share[r] * own[n], minlength=D)
                                     for n, r in enumerate(rows)]).reshape(len(rows), D)
    R_, J = np.nonzero(st.can[rows] & (start.share[rows] < 1))
    top2 = np.argsort(-base, axis=1, kind="stable")[:, :2]
    rest = np.where(top2[R_, 0] != dev[J], base[R_, top2[R_, 0]],
                    base[R_, top2[R_, -1]] if D > 1 else -np.inf)
    err = np.nan_to_num(d.error[rows])
    wrong = pt.wrong - d.count[rows[R_]] * (pt.share[rows[R_]] * err[R_]).sum(axis=1) + d.count[rows[R_]] * err[R_, J]
    obj = np.maximum(rest, base[R_, dev[J]] + own[R_, J]) + d.lam * wrong
    out.append((np.full(len(J), 2), rows[R_], J, np.full(len(J), over), obj))
    # threshold vectors: cascade c's loads and errors under every vector, all else fixed
    for c, cas in enumerate(d.cascades):
        _, reach, bad = st.tables[c]
        n, now = d.count[cas.type], pt.theta[c]
        delta = np.zeros((len(bad), D))
        for k, m in st.levels[c]:
            delta[:, dev[m]] += n * (reach[:, k] - reach[now, k]) * d.time_s[cas.type, m, dev[m]]
        obj = (load[None, :] + delta).max(axis=1) + d.lam * (pt.wrong + n * (bad - bad[now]))
        t = np.nonzero(np.arange(len(bad)) != start.theta[c])[0]
        out.append((np.full(len(t), 3), np.full(len(t), c), t, np.full(len(t), over), obj[t]))
    return tuple(np.concatenate(col) for col in zip(*out))


def _better(s: tuple[float, float], best: tuple[float, float]) -> bool:
    return s[0] < best[0] - 1e-12 or (s[0] <= best[0] + 1e-12 and s[1] < best[1] - 1e-9 * max(1.0, abs(best[1])))


def _apply(pt: _Point, kind: int, a: int, b: int):
    device, share, theta = pt.device, pt.share, pt.theta
    if kind == 0:
        device = device.copy()
        device[a] = b
    elif kind == 1:
        device = device.copy()
        device[a], device[b] = device[b], device[a]
    elif kind == 2:
        share = share.copy()
        share[a] = 0.0
        share[a, b] = 1.0
    else:
        theta = theta.copy()
        theta[a] = b
    return device, share, theta


def _dual_bound(st: _State, pt: _Point, y: np.ndarray, kind: np.ndarray, J: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Lower bounds on the objective after relocation or swap (kind 0/1, J, B) with shares re-split by the LP.

    For device prices y >= 0, sum(y) <= 1, the LP is at least sum_i y_i cascade_load_i + sum_r min_j (λ count_r
    error_rj + y_dev(j) count_r time_s[r][j][dev(j)]) (its Lagrangian, the device rows relaxed).
    """
    d = st.d
    rows, dev = st.rows, pt.device
    M = len(dev)
    casc = st.served(np.zeros_like(pt.share), pt.theta)  # (R, M) the cascades' requests per model

    def busy(j, i):  # the cascades' busy time of models j on devices i
        return np.einsum("rn,rn->n", casc[:, j], d.time_s[:, j, i])

    swap = kind == 1
    a = dev[J]
    b = np.where(swap, dev[B], B)  # the device model J goes to
    K = np.where(swap, B, J)  # the other model that changes device (J itself for a relocation)
    total = (float(y @ st.cascade_load(dev, pt.theta)[0]) - y[a] * busy(J, a) + y[b] * busy(J, b)
             + np.where(swap, y[a] * busy(K, a) - y[b] * busy(K, b), 0.0)
             + d.lam * sum(d.count[cas.type] * st.tables[c][2][pt.theta[c]] for c, cas in enumerate(d.cascades)))
    unit = np.full((len(rows), M), np.inf)  # (routed, M) λ count error; inf where the model cannot serve
    unit[np.searchsorted(rows, st.pairs[:, 0]), st.pairs[:, 1]] = st.pair_cost
    for n, r in enumerate(rows):
        now = unit[n] + y[dev] * d.count[r] * d.time_s[r, np.arange(M), dev]
        best = -_max_without(np.argsort(now, kind="stable")[:3], -now, J, K)
        best = np.minimum(best, unit[n, J] + y[b] * d.count[r] * d.time_s[r, J, b])
        total = total + np.minimum(best, np.where(swap, unit[n, K] + y[a] * d.count[r] * d.time_s[r, K, a], np.inf))
    return total


def _improve(st: _State, device, share, theta, deadline: float, resplit: bool = False):
    """First-improvement local search: relocate, swap, send a type whole to another model, and threshold search
    (every threshold vector of one cascade); until a whole pass finds nothing. A pass scans its candidates in
    a fixed order (relocations, swaps, routes, thresholds), each scored on the current point; only those that
    can improve are scored at all, and by their change alone (``_candidates``).

    ``resplit``: a relocation or swap touching the busiest device is scored with its shares re-split by the
    LP. The LP runs only for one that does not already help with the shares fixed and whose Lagrangian bound
    (``_dual_bound``, at the current LP's device prices) leaves room below the current objective.
    """
    pt = _Point(st, device, share, theta)
    start, last, improved = pt, -1, False  # a pass: its first point, the order key of the last candidate taken
    hot = int(pt.top[0]) if resplit else None
    big = max(*st.d.shape, *(len(t[0]) for t in st.tables)) + 1  # above every index of a candidate
    while time.perf_counter() < deadline:
        kind, a, b, ov, obj = _candidates(st, pt, start, hot)
        cur = pt.score
        tol = 1e-9 * max(1.0, abs(cur[1]))
        lo, hi = np.where(kind == 1, np.minimum(a, b), a), np.where(kind == 1, np.maximum(a, b), b)
        key = (kind * big + lo) * big + hi
        helps = (ov < cur[0] - 1e-12) | ((ov <= cur[0] + 1e-12) & (obj < cur[1] - tol))
        maybe = resplit & (kind < 2) & ~helps & (np.abs(ov - cur[0]) <= 1e-12) & (key > last)
        if maybe.any() and len(st.pairs) and (lp := st.lp(pt.device, pt.theta)) is not None:
            m = np.nonzero(maybe)[0]
            maybe[m] = _dual_bound(st, pt, lp[1], kind[m], a[m], b[m]) < cur[1] - 0.9 * tol
        else:
            maybe[:] = False
        cand = np.nonzero((helps | maybe) & (key > last))[0]
        step = None
        for n in cand[np.argsort(key[cand], kind="stable")]:
            dv, sh, th = _apply(pt, kind[n], a[n], b[n])
            if resplit and kind[n] < 2:
                sh = st.split(dv, pt.share, th)
            if _better(st.score(dv, sh, th)[:2], cur):
                step, last = (dv, sh, th), key[n]
                break
            if time.perf_counter() >= deadline:
                break
        if step is not None:
            dv, sh, th = step
            pt = _Point(st, dv, sh, th, work=pt.work if sh is pt.share and th is pt.theta else None)
            improved = True
        elif improved:  # the pass is over: the next one starts from here
            start, last, improved = pt, -1, False
            hot = int(pt.top[0]) if resplit else None
        else:
            break
    return pt.device, pt.share, pt.theta


def _rounds(st: _State, device, share, theta, deadline: float, rounds: int):
    """Local search, then the LP split of the shares, and local search with re-split shares again, up to
    ``rounds`` times or until neither step helps."""
    best = None
    for k in range(rounds):
        device, share, theta = _improve(st, device, share, theta, deadline, resplit=k > 0)
        share = st.split(device, share, theta)
        score = st.score(device, share, theta)[:2]
        if best is not None and score >= best or time.perf_counter() >= deadline:
            break
        best = score
    return device, share, theta


@method("placement", "lpt-ls", "heuristic")
def lpt_ls(instance: Instance, *, seed: int = 0, time_limit: float | None = None, rounds: Count = 5) -> Solution:
    """LPT placement, local search with threshold search, and LP routing shares, alternated.

    LPT is tried in two orders (by work, by memory: the second packs tight memory better); each start (the
    better by (overflow, objective) first; once when both orders give one placement) is improved by local
    search over whole moves, then each type's shares are split by an LP for the placement and thresholds
    found, and the local search runs again from there, up to ``rounds`` times or until neither step helps;
    the better result is returned. ``time_limit`` stops the search.
    """
    st = _State(instance.data)
    deadline = time.perf_counter() + (time_limit if time_limit is not None else 60.0)
    share, theta = _initial(st)
    work = st.work(share, theta)
    starts = [_lpt(st, work, np.argsort(-work.mean(axis=1), kind="stable")),
              _lpt(st, work, np.argsort(-instance.data.model_mem, kind="stable"))]
    starts = sorted({dv.tobytes(): dv for dv in starts}.values(), key=lambda dv: st.score(dv, share, theta)[:2])
    found = [_rounds(st, dv, share, theta, deadline, rounds) for dv in starts]  # the better start first
    device, share, theta = min(found, key=lambda f: st.score(*f)[:2])
    return st.solution(device, share, theta)


def _middle(d: Data) -> list[list[int]]:
    """Thresholds at the middle bin: confidence at least one half, or a majority of the level agreeing."""
    return [[(len(lev.prob) + 1) // 2 for lev in cas.levels[:-1]] for cas in d.cascades]


def _route_all(d: Data, pick) -> np.ndarray:
    share = np.zeros(d.error.shape)
    for r in np.nonzero(d.routed)[0]:
        share[r, pick(r)] = 1.0
    return share


@method("placement", "largest", "baseline")
def largest(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Solution:
    """Every request to the largest model that can serve it (cascades always escalate); models placed
    largest first on the device with the most free memory."""
    d = instance.data
    free = d.device_mem.copy()
    device = np.zeros(len(d.models), dtype=np.int64)
    for j in np.argsort(-d.model_mem, kind="stable"):
        device[j] = int(np.argmax(free))
        free[device[j]] -= d.model_mem[j]
    size = np.where(~np.isnan(d.error), d.model_mem[None, :], -np.inf)
    return Solution(device=device, share=_route_all(d, lambda r: int(np.argmax(size[r]))),
                    thresholds=[[len(lev.prob) for lev in cas.levels[:-1]] for cas in d.cascades])


@method("placement", "round-robin", "baseline")
def round_robin(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Solution:
    """Model j on the next device in turn that has room (device j mod D when none has); each type split
    evenly over the models that can serve it; cascade thresholds at the middle bin."""
    d = instance.data
    D = len(d.devices)
    free, comp = d.device_mem.copy(), d.device_compute.copy()
    device = np.zeros(len(d.models), dtype=np.int64)
    nxt = 0
    for j in range(len(d.models)):
        tries = [(nxt + k) % D for k in range(D)]
        fit = [i for i in tries if free[i] >= d.model_mem[j] and comp[i] >= d.model_compute[j]]
        device[j] = fit[0] if fit else j % D
        free[device[j]] -= d.model_mem[j]
        comp[device[j]] -= d.model_compute[j]
        nxt = (device[j] + 1) % D
    can = ~np.isnan(d.error)
    share = np.where(can & d.routed[:, None], 1.0, 0.0)
    share[d.routed] /= share[d.routed].sum(axis=1, keepdims=True)
    return Solution(device=device, share=share, thresholds=_middle(d))


def _one_each(instance: Instance) -> str | None:
    d = instance.data
    if len(d.models) > len(d.devices):
        return f"needs a device per model ({len(d.models)} models, {len(d.devices)} devices)"
    return None


@method("placement", "one-per-device", "baseline", applies=_one_each)
def one_per_device(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Solution:
    """Each model alone on a device (largest model on the largest memory); each type to the model that
    serves it fastest on its device; cascade thresholds at the middle bin."""
    d = instance.data
    device = np.zeros(len(d.models), dtype=np.int64)
    device[np.argsort(-d.model_mem, kind="stable")] = np.argsort(-d.device_mem, kind="stable")[:len(d.models)]
    t = d.time_s[:, np.arange(len(d.models)), device]  # (R, M) on each model's own device
    speed = np.where(~np.isnan(d.error), t, np.inf)
    return Solution(device=device, share=_route_all(d, lambda r: int(np.argmin(speed[r]))), thresholds=_middle(d))
