"""TS-MITO's two-stage decomposition and the paper's baselines for ``offload``.

Stage two (server side), for fixed discrete choices (edge m, steps o, cloud steps c):

* SM splits in closed form. The cloud's and each edge's share of the objective is
  ``w2 * sum_n a_n / v_n`` with ``a_n`` = the user's work in SM-seconds (``c_n F_cs / phi`` on the
  cloud, ``q_n F_m / phi`` on edge m), to minimize subject to ``sum_n v_n <= V``, ``v_n > 0``. The
  objective is convex and decreasing in every ``v_n``, so the constraint is tight; the KKT condition
  ``a_n / v_n**2 = mu`` gives ``v_n = sqrt(a_n / mu)`` and the constraint fixes ``mu``:
  ``v_n = V sqrt(a_n) / sum_k sqrt(a_k)``, with minimum ``(sum_n sqrt(a_n))**2 / V`` (users with
  ``a_n = 0`` get nothing).
* Bandwidth and power of each edge by SciPy's SLSQP (the subproblem is nonconvex because of the
  transmit-energy term ``p S / r``): minimize ``sum_n (w2 + w3 p_n) S_n / r_n(b_n, p_n)`` subject to
  ``sum b <= B_m``, ``sum p <= P_m``, ``0 < p_n <= p_max``, from the equal split, with analytic
  gradients; results are cached per (edge, set of users).

Stage one (user side): the paper trains a multi-agent PPO policy to choose (m, o, c). Here a
deterministic search stands in for it: a greedy start (each user on the edge that is best for it
alone at an equal share, steps at mid-range), then coordinate moves per user — best edge, best o,
best c, each scored by the full stage-two value — repeated until a pass improves nothing.
The baselines reuse the search with other stage-two splits (``equal``, ``proportional``) or with
the cloud steps pinned (``cloud-heavy``: c = o, ``edge-heavy``: c = c_min).
"""
from __future__ import annotations

import time

import numpy as np
from scipy.optimize import minimize

from edgeopt.problems.offload import Instance, Solution, kkt_split, quality, rate_mbps
from edgeopt.registry import method
from edgeopt.result import Outcome

LN2 = np.log(2.0)


def _split(work: np.ndarray, total: float, kind: str) -> np.ndarray:
    """SM shares of users with ``work`` (SM-seconds) on one server."""
    if kind == "kkt":
        return kkt_split(work, total)
    used = work > 0
    if kind == "equal":
        return np.where(used, total / max(used.sum(), 1), 0.0)
    return total * work / work.sum() if work.sum() > 0 else np.zeros_like(work)  # proportional


def _radio_cost(b, p, gamma, size, w2, w3):
    r = rate_mbps(b, p, gamma)
    return float(np.sum((w2 + w3 * p) * size / r))


def radio_slsqp(gamma: np.ndarray, size: np.ndarray, B: float, P: float, pmax: float, w2: float, w3: float):
    """SLSQP on one edge's bandwidth b (MHz) and power p (W): min sum (w2 + w3 p) S / r(b, p)."""
    k = len(size)
    b0, p0 = np.full(k, B / k), np.full(k, min(P / k, pmax))
    scale = _radio_cost(b0, p0, gamma, size, w2, w3)

    def fg(z):
        b, p = z[:k] * B, z[k:] * pmax
        x = gamma * p / b
        r = b * np.log2(1 + x)
        rb = np.log2(1 + x) - x / (1 + x) / LN2
        rp = gamma / (1 + x) / LN2
        num = (w2 + w3 * p) * size
        f = np.sum(num / r)
        gb = -num * rb / r**2
        gp = w3 * size / r - num * rp / r**2
        return f / scale, np.concatenate([gb * B, gp * pmax]) / scale

    cons = [{"type": "ineq", "fun": lambda z: 1.0 - z[:k].sum(), "jac": lambda z: np.r_[-np.ones(k), np.zeros(k)]},
            {"type": "ineq", "fun": lambda z: P / pmax - z[k:].sum(), "jac": lambda z: np.r_[np.zeros(k), -np.ones(k)]}]
    res = minimize(fg, np.r_[b0 / B, p0 / pmax], jac=True, method="SLSQP", constraints=cons,
                   bounds=[(1e-6, 1.0)] * (2 * k), options={"maxiter": 200, "ftol": 1e-12})
    b = np.clip(res.x[:k], 1e-6, 1.0) * B
    p = np.clip(res.x[k:], 1e-6, 1.0) * pmax
    b *= min(1.0, B / b.sum())  # SLSQP may end a hair outside the constraints
    p *= min(1.0, P / p.sum())
    cost = _radio_cost(b, p, gamma, size, w2, w3)
    if cost <= scale:
        return cost, b, p
    return scale, b0, p0


class _Stage2:
    """Stage-two value of discrete choices (m, o, c) under one split rule, with per-edge radio caching."""

    def __init__(self, instance: Instance, split: str):
        d = instance.data
        self.d, self.split = d, split
        self.N, self.M = d.n_users, len(d.edges)
        self.gamma = d.snr_per_w_mhz
        self.cache: dict = {}

    def radio(self, k: int, users: tuple) -> tuple[float, np.ndarray, np.ndarray]:
        key = (k, users)
        if key not in self.cache:
            d, e, w = self.d, self.d.edges[k], self.d.weights
            idx = np.array(users, dtype=int)
            g, size = self.gamma[idx, k], d.video_mbit[idx]
            if self.split == "kkt":
                self.cache[key] = radio_slsqp(g, size, e.bandwidth_mhz, e.power_w, d.p_max_w, w.delay_per_s,
                                              w.energy_per_j)
            else:
                share = np.full(len(idx), 1.0 / len(idx)) if self.split == "equal" else size / size.sum()
                b = e.bandwidth_mhz * share
                p = np.minimum(e.power_w * share, d.p_max_w)
                self.cache[key] = (_radio_cost(b, p, g, size, w.delay_per_s, w.energy_per_j), b, p)
        return self.cache[key]

    def members(self, m: np.ndarray) -> list[tuple]:
        return [tuple(np.flatnonzero(m == k)) for k in range(self.M)]

    def compute(self, m, o, c) -> tuple[float, np.ndarray, np.ndarray]:
        """(objective without the radio part, cloud SMs, edge SMs)."""
        d, w = self.d, self.d.weights
        q = o - c
        a_cs = c * d.cloud.tflops_per_step / d.tflops_per_sm
        a_e = q * d.edge_flops[m] / d.tflops_per_sm
        vcs = _split(a_cs, d.cloud.sms, self.split)
        v = np.zeros(self.N)
        for k, e in enumerate(d.edges):
            on = m == k
            if on.any():
                v[on] = _split(a_e[on], e.sms, self.split)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.sum(a_cs / vcs) + np.sum(np.where(a_e > 0, a_e / v, 0.0)) + d.fibre_s[m].sum()
        energy = np.sum(d.cloud.j_per_tflop * a_cs * d.tflops_per_sm + d.edge_kappa[m] * a_e * d.tflops_per_sm)
        u = quality(d.alignment[np.arange(self.N), m], d.zeta[m], o).sum()
        return w.utility * u - w.delay_per_s * t - w.energy_per_j * energy, vcs, v

    def value(self, m, o, c) -> float:
        radio = sum(self.radio(k, us)[0] for k, us in enumerate(self.members(m)) if us)
        return self.compute(m, o, c)[0] - radio

    def solution(self, m, o, c) -> Solution:
        _, vcs, v = self.compute(m, o, c)
        b, p = np.zeros(self.N), np.zeros(self.N)
        for k, us in enumerate(self.members(m)):
            if us:
                _, b[list(us)], p[list(us)] = self.radio(k, us)
        return Solution(edge=m.tolist(), steps=o.tolist(), cloud_steps=c.tolist(), cloud_sms=vcs.tolist(),
                        edge_sms=v.tolist(), bandwidth_mhz=b.tolist(), power_w=p.tolist())


def _search(instance: Instance, split: str, pin: str | None, time_limit: float | None) -> Outcome:
    """Greedy start, then per-user coordinate moves on (m, o, c) until no move improves the stage-two value."""
    start = time.perf_counter()
    d = instance.data
    s, N, M = d.steps, d.n_users, len(d.edges)
    st = _Stage2(instance, split)
    o_lo, o_hi = max(s.o_min, s.c_min), min(s.o_max, s.c_max) if pin == "cloud" else s.o_max

    def pinned(o, c):
        if pin == "cloud":
            return o.copy()
        if pin == "edge":
            return np.full_like(o, s.c_min)
        return np.clip(c, s.c_min, np.minimum(s.c_max, o))

    # greedy start: each user on its best edge when alone with an equal share of it
    users_per_edge = max(N / M, 1.0)
    e_b = np.array([e.bandwidth_mhz for e in d.edges]) / users_per_edge
    e_p = np.minimum(np.array([e.power_w for e in d.edges]) / users_per_edge, d.p_max_w)
    alone = (d.weights.utility * d.alignment
             - d.weights.delay_per_s * d.video_mbit[:, None] / rate_mbps(e_b[None, :], e_p[None, :], st.gamma))
    m = np.argmax(alone, axis=1)
    o = np.full(N, max(o_lo, min(o_hi, (s.o_min + s.o_max) // 2)))
    c = pinned(o, np.full(N, s.c_min))
    best = st.value(m, o, c)
    improved = True
    while improved:
        improved = False
        for n in range(N):
            if time_limit is not None and time.perf_counter() - start > time_limit:
                break
            moves = []
            for k in range(M):
                if k != m[n]:
                    m2 = m.copy()
                    m2[n] = k
                    moves.append((m2, o, c))
            for val in range(max(o_lo, int(c[n])) if pin is None else o_lo, o_hi + 1):
                if val != o[n]:
                    o2 = o.copy()
                    o2[n] = val
                    moves.append((m, o2, pinned(o2, c)))
            if pin is None:
                for val in range(s.c_min, min(s.c_max, int(o[n])) + 1):
                    if val != c[n]:
                        c2 = c.copy()
                        c2[n] = val
                        moves.append((m, o, c2))
            for cand in moves:
                v = st.value(*cand)
                if v > best + 1e-9 * max(1.0, abs(best)):
                    best, (m, o, c), improved = v, cand, True
    return Outcome(st.solution(m, o, c), claimed=best)


@method("offload", "ts-mito", "heuristic")
def ts_mito(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """TS-MITO: KKT closed-form SM splits + SLSQP radio; a deterministic search replaces the paper's MAPPO.

    Stage one of the paper is a learned multi-agent PPO policy; this toolkit substitutes the
    deterministic coordinate search of the module docstring (same decision, no training).
    """
    return _search(instance, "kkt", None, time_limit)


@method("offload", "equal", "baseline")
def equal(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """Equal split of SMs, bandwidth and power among a server's users; same discrete search."""
    return _search(instance, "equal", None, time_limit)


@method("offload", "proportional", "baseline")
def proportional(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """SMs in proportion to each user's work, bandwidth and power to its video size; same discrete search."""
    return _search(instance, "proportional", None, time_limit)


def _cloud_fits(instance: Instance) -> str | None:
    s = instance.data.steps
    if max(s.o_min, s.c_min) > min(s.o_max, s.c_max):
        return f"c = o needs o <= c_max ({s.c_max}) but o_min is {s.o_min}"
    return None


@method("offload", "cloud-heavy", "baseline", applies=_cloud_fits)
def cloud_heavy(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """Every step on the cloud (c = o), TS-MITO's stage two and search over (m, o)."""
    return _search(instance, "kkt", "cloud", time_limit)


@method("offload", "edge-heavy", "baseline")
def edge_heavy(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """Fewest cloud steps (c = c_min), TS-MITO's stage two and search over (m, o)."""
    return _search(instance, "kkt", "edge", time_limit)
