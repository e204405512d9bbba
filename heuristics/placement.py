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
        load, wrong = self.cascade_load(device, theta)
        load += np.bincount(device, weights=(d.count[r, None] * share[r] * t).sum(axis=0), minlength=D)
        wrong += float(np.sum(d.count[r, None] * share[r] * np.nan_to_num(d.error[r])))
        mem = np.bincount(device, weights=d.model_mem, minlength=D)
        comp = np.bincount(device, weights=d.model_compute, minlength=D)
        over = float(np.sum(np.maximum(mem - d.device_mem, 0) / d.device_mem)
                     + np.sum(np.maximum(comp - d.device_compute, 0) / d.device_compute))
        return over, float(load.max()) + d.lam * wrong, load

    def work(self, share: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """(M, D) the busy time each model would bring to each device under this routing and thresholds."""
        d = self.d
        r = self.rows
        w = np.einsum("rj,rjd->jd", d.count[r, None] * share[r], d.time_s[r])
        for c, cas in enumerate(d.cascades):
            reach = self.tables[c][1][theta[c]]
            for k, m in self.levels[c]:
                w[m] += d.count[cas.type] * reach[k] * d.time_s[cas.type, m]
        return w

    def solution(self, device: np.ndarray, share: np.ndarray, theta: np.ndarray) -> Solution:
        return Solution(device=device, share=share, thresholds=[[int(v) for v in self.tables[c][0][theta[c]]]
                                                                for c in range(len(self.d.cascades))])

    def split(self, device: np.ndarray, share: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """The best shares for a fixed placement and thresholds: an LP (min T + λ · wrong, T >= every load).

        Returns ``share`` unchanged when the LP finds nothing better.
        """
        from scipy.optimize import linprog

        d = self.d
        D = len(d.devices)
        pairs = np.argwhere(self.can & d.routed[:, None])  # (P, 2) routed (type, model) pairs
        if not len(pairs):
            return share
        r, j = pairs[:, 0], pairs[:, 1]
        base, _ = self.cascade_load(device, theta)
        work = d.count[r] * d.time_s[r, j, device[j]]
        P = len(pairs)
        a_ub = np.zeros((D, P + 1))
        a_ub[device[j], np.arange(P)] = work
        a_ub[:, P] = -1.0
        rows = self.rows
        a_eq = (r[None, :] == rows[:, None]).astype(float)
        a_eq = np.hstack([a_eq, np.zeros((len(rows), 1))])
        cost = np.r_[d.lam * d.count[r] * d.error[r, j], 1.0]
        lp = linprog(cost, A_ub=a_ub, b_ub=-base, A_eq=a_eq, b_eq=np.ones(len(rows)),
                     bounds=[(0, 1)] * P + [(0, None)], method="highs")
        if lp.status != 0:
            return share
        out = np.zeros(share.shape)
        out[r, j] = np.clip(lp.x[:P], 0.0, 1.0)
        out[rows] /= out[rows].sum(axis=1, keepdims=True)
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


def _improve(st: _State, device, share, theta, deadline: float, resplit: bool = False):
    """First-improvement local search: relocate, swap, send a type whole to another model, and threshold
    search (every threshold vector of one cascade); until no move helps. ``resplit``: a relocation or
    swap is scored with its shares re-split by the LP, and only those touching the busiest device are tried."""
    d = st.d
    _, M, D = d.shape
    best = st.score(device, share, theta)[:2]
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        hot = int(np.argmax(st.score(device, share, theta)[2]))
        candidates = [("move", j, i) for j in range(M) for i in range(D) if i != device[j]
                      and not (resplit and hot not in (i, device[j]))]
        candidates += [("swap", j, k) for j in range(M) for k in range(j + 1, M) if device[j] != device[k]
                       and not (resplit and hot not in (device[j], device[k]))]
        candidates += [("route", r, j) for r in st.rows for j in np.nonzero(st.can[r])[0] if share[r, j] < 1]
        candidates += [("theta", c, t) for c in range(len(d.cascades)) for t in range(len(st.tables[c][0]))
                       if t != theta[c]]
        for kind, a, b in candidates:
            dv, sh, th = device, share, theta
            if kind == "move":
                dv = device.copy()
                dv[a] = b
            elif kind == "swap":
                dv = device.copy()
                dv[a], dv[b] = device[b], device[a]
            elif kind == "route":
                sh = share.copy()
                sh[a] = 0.0
                sh[a, b] = 1.0
            else:
                th = theta.copy()
                th[a] = b
            if resplit and kind in ("move", "swap"):
                sh = st.split(dv, share, th)
            s = st.score(dv, sh, th)[:2]
            if s[0] < best[0] - 1e-12 or (s[0] <= best[0] + 1e-12 and s[1] < best[1] - 1e-9 * max(1.0, abs(best[1]))):
                device, share, theta, best = dv, sh, th, s
                improved = True
            if time.perf_counter() >= deadline:
                break
    return device, share, theta


@method("placement", "lpt-ls", "heuristic")
def lpt_ls(instance: Instance, *, seed: int = 0, time_limit: float | None = None, rounds: Count = 5) -> Solution:
    """LPT placement, local search with threshold search, and LP routing shares, alternated.

    LPT is tried in two orders (by work, by memory: the second packs tight memory better); the better
    start by (overflow, objective) is improved by local search over whole moves, then each type's
    shares are split by an LP for the placement and thresholds found, and the local search runs again
    from there, up to ``rounds`` times or until neither step helps. ``time_limit`` stops the search.
    """
    st = _State(instance.data)
    deadline = time.perf_counter() + (time_limit if time_limit is not None else 60.0)
    share, theta = _initial(st)
    work = st.work(share, theta)
    starts = [_lpt(st, work, np.argsort(-work.mean(axis=1), kind="stable")),
              _lpt(st, work, np.argsort(-instance.data.model_mem, kind="stable"))]
    device = min(starts, key=lambda dv: st.score(dv, share, theta)[:2])
    best = None
    for k in range(rounds):
        device, share, theta = _improve(st, device, share, theta, deadline, resplit=k > 0)
        share = st.split(device, share, theta)
        score = st.score(device, share, theta)[:2]
        if best is not None and score >= best or time.perf_counter() >= deadline:
            break
        best = score
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
