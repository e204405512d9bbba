"""TS-MITO's two-stage decomposition and the paper's baselines for ``offload``.

Stage two (server side), for fixed discrete choices (edge m, steps o, cloud steps c):

* SM splits in closed form. The cloud's and each edge's share of the objective is
  ``w2 * sum_n a_n / v_n`` with ``a_n`` = the user's work in SM-seconds (``c_n F_cs / phi`` on the
  cloud, ``q_n F_m / phi`` on edge m), to minimize subject to ``sum_n v_n <= V``, ``v_n > 0``. The
  objective is convex and decreasing in every ``v_n``, so the constraint is tight; the KKT condition
  ``a_n / v_n**2 = mu`` gives ``v_n = sqrt(a_n / mu)`` and the constraint fixes ``mu``:
  ``v_n = V sqrt(a_n) / sum_k sqrt(a_k)``, with minimum ``(sum_n sqrt(a_n))**2 / V`` (users with
  ``a_n = 0`` get nothing).
* Bandwidth and power of each edge by Newton's method on the KKT conditions (``radio_kkt``):
  minimize ``sum_n (w2 + w3 p_n) S_n / r_n(b_n, p_n)`` subject to ``sum b <= B_m``, ``sum p <= P_m``,
  ``0 < p_n <= p_max``. The first version used SciPy's SLSQP, whose dense quadratic subproblems cost
  O(users^3): at 150 users it spent 97 % of ts-mito's time there (0.6 s per solve for 50 users on an
  edge). The problem has one 2 x 2 block per user and two coupling constraints, so a Newton step is a
  2 x 2 solve per user (vectorized with NumPy) plus one 2 x 2 solve for the prices of bandwidth and
  power. It reaches SLSQP's optimum (tests check that and the KKT conditions) in about 1 ms for 500 users.

Stage one (user side): the paper trains a multi-agent PPO policy to choose (m, o, c). Here a
deterministic search stands in for it: a greedy start (each user on the edge that is best for it
alone at an equal share, steps at mid-range), then coordinate moves per user — the best of its
edge, o and c moves, each scored by the full stage-two value — repeated until a pass improves nothing;
then the same with one more move, o and c together to c = o (the whole generation on the cloud, which
under ``fibre="crossing"`` sends the video instead of the latent: one-coordinate moves cannot reach it
when c = o needs fewer total steps), from the first phase's local optimum, so it only improves on it.
Its first phase makes the same moves as the first version, which re-evaluated every user for every candidate move
(O(users) each, so O(users^2) per pass) and re-solved two radio problems per edge move. Now a candidate
is scored in O(1): the SM part from per-server sums of ``sqrt(a_n)``, and a move to another edge is only
re-solved when an upper bound on its gain can beat the best move found so far. The bound prices the
radio part with the edges' KKT multipliers (lambda, mu): leaving edge j saves at most
``f_n + lambda_j b_n + mu_j p_n`` and joining edge k costs at least ``min_{b,p} w2 S_n / r + lambda_k b +
mu_k p`` (closed form, ``_join_price``; its argmin warm-starts the re-solve). By Lagrangian duality these
bounds are exact when the radio problem is convex (its per-user cost is, for the presets' weights; checked
numerically), so the search chooses what re-solving every candidate would (a test checks this).
The baselines reuse the search with other stage-two splits (``equal``, ``proportional``) or with
the cloud steps pinned (``cloud-heavy``: c = o, ``edge-heavy``: c = c_min).
"""
from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np
from scipy.special import lambertw

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


def _radio_f(b, p, gamma, K, w2, w3):
    """Per-user radio cost K (w2 + w3 p) / (b ln(1 + gamma p / b)), K = S ln 2 (= (w2 + w3 p) S / r)."""
    return K * (w2 + w3 * p) / (b * np.log1p(gamma * p / b))


def _radio_terms(b, p, gamma, K, w2, w3):
    """Per-user cost f = K (w2 + w3 p) / u with u = b ln(1 + gamma p / b) = r ln 2, its gradient and Hessian.

    With x = p / b, l1 = gamma / (1 + gamma x) and c = l1**2 / b: u_b = ln(1 + gamma x) - x l1, u_p = l1,
    u_bb = -x**2 c, u_bp = x c, u_pp = -c.
    """
    x = p / b
    t = gamma * x
    ell = np.log1p(t)
    l1 = gamma / (1.0 + t)
    v = 1.0 / (b * ell)  # 1 / u
    ub = ell - x * l1
    small = t < 1e-3
    if small.any():  # ub by its series where the difference would cancel
        ub = np.where(small, t * t * (0.5 - t * (2 / 3 - 0.75 * t)), ub)
    c = l1 * l1 / b
    f = K * (w2 + w3 * p) * v
    fv, e = f * v, K * w3 * v
    gb = -fv * ub
    gp = e - fv * l1
    hbb = fv * (2 * ub * ub * v + x * x * c)
    hbp = fv * (2 * ub * l1 * v - x * c) - e * v * ub
    hpp = fv * (2 * l1 * l1 * v + c) - 2 * e * v * l1
    return f, gb, gp, hbb, hbp, hpp


def radio_kkt(gamma: np.ndarray, size: np.ndarray, B: float, P: float, pmax: float, w2: float, w3: float,
              b: np.ndarray | None = None, p: np.ndarray | None = None):
    """One edge's bandwidth b (MHz) and power p (W): min sum (w2 + w3 p) S / r(b, p), sum b <= B, sum p <= P, p <= pmax.

    Newton's method on the KKT system from a feasible start (``b``, ``p`` if given, else the equal
    split), with Armijo backtracking on the cost and an active set for the caps ``p = pmax`` and the
    power budget: a user is capped when a step reaches p_max and released as soon as its cap's multiplier
    is negative; the budget constraint is dropped when its price ``mu`` is. Bandwidth
    always binds (the cost decreases in b). Each step solves ``H_n dz_n + (lambda, mu) = -g_n`` per user
    and ``sum_n dz_n = 0`` for the prices. Where a user's 2 x 2 Hessian is not positive definite
    (heavy energy weights make ``p S / r`` nonconvex) its coupling term is dropped so steps still descend.
    Returns ``(cost, b, p, lam, mu)``, lam and mu the prices of bandwidth and power (KKT multipliers).
    """
    K = LN2 * np.asarray(size, float)
    k = len(K)
    if b is None or p is None:
        b, p = np.full(k, B / k), np.full(k, min(P / k, pmax))
    b = b * (B / b.sum())
    p = np.minimum(p, pmax)
    if p.sum() > P:
        p = p * (P / p.sum())
    capped = p >= pmax
    active = p.sum() >= P * (1 - 1e-12)
    lam = mu = 0.0
    for _ in range(200):
        f, gb, gp, hbb, hbp, hpp = _radio_terms(b, p, gamma, K, w2, w3)
        det = hbb * hpp - hbp**2
        bad = det <= 1e-9 * hbb * np.abs(hpp)
        if bad.any():
            hbp = np.where(bad, 0.0, hbp)
            hpp = np.where(bad, np.abs(hpp) + 1e-9 * hbb * (b / p) ** 2, hpp)
            det = hbb * hpp - hbp**2
        free = ~capped
        ibb, ibp, ipp = hpp / det, -hbp / det, hbb / det  # inverse Hessian blocks
        if capped.any():  # a capped user moves only b
            ibb, ibp, ipp = np.where(free, ibb, 1.0 / hbb), np.where(free, ibp, 0.0), np.where(free, ipp, 0.0)
        ab, ap = ibb * gb + ibp * gp, ibp * gb + ipp * gp
        if active and free.any():
            sbb, sbp, spp, rb, rp = ibb.sum(), ibp.sum(), ipp.sum(), ab.sum(), ap.sum()
            d = sbb * spp - sbp**2
            lam, mu = (sbp * rp - spp * rb) / d, (sbp * rb - sbb * rp) / d
        else:
            lam, mu = -ab.sum() / ibb.sum(), 0.0
        db = -(ab + ibb * lam + ibp * mu)
        dp = -(ap + ibp * lam + ipp * mu)
        decrease = -(gb @ db + gp @ dp)
        cost = f.sum()
        release = capped & (gp + mu > 1e-9 * np.abs(gp).max())  # the cap's multiplier -(gp + mu) < 0
        if release.any() or (active and mu < 0):  # a constraint that pushes the wrong way: let it go
            capped &= ~release
            active = active and mu >= 0
            continue
        if decrease <= 1e-16 * cost:  # optimal (prices exact to ~1e-8)
            break
        step, hit = 1.0, None  # longest step that keeps b, p > 0, p <= pmax and sum p <= P
        for z, dz in ((b, db), (p, np.where(free, dp, 0.0))):
            down = dz < 0
            if down.any():
                step = min(step, 0.9 * float(np.min(z[down] / -dz[down])))
        up = free & (dp > 0)
        if up.any():
            room = (pmax - p[up]) / dp[up]
            if room.min() < step:
                step, hit = float(room.min()), np.flatnonzero(up)[np.argmin(room)]
        if not active and dp.sum() > 0 and (P - p.sum()) / dp.sum() < step:
            step, hit = (P - p.sum()) / dp.sum(), "budget"
        a = step
        # Armijo backtracking, except near the optimum where a full Newton step is safe and the cost can't tell
        while decrease > 1e-10 * cost and not (  # (a NaN trial cost counts as no decrease)
                _radio_f(b + a * db, np.minimum(p + a * dp, pmax), gamma, K, w2, w3).sum()
                <= cost - 1e-4 * a * decrease):
            a *= 0.5
            if a < 1e-12:
                return float(cost), b, p, lam, mu
        b, p = b + a * db, np.minimum(p + a * dp, pmax)
        if a == step and hit is not None:
            if hit == "budget":
                active = True
            else:
                p[hit], capped[hit] = pmax, True
    return float(_radio_f(b, p, gamma, K, w2, w3).sum()), b, p, lam, mu


def _join_price(gamma: np.ndarray, size: float, lam: np.ndarray, mu: np.ndarray, w2: float):
    """``min_{b, p > 0} w2 S / r(b, p) + lam b + mu p`` and its argmin (b, p), per edge: a user's cost of joining.

    It is a lower bound on the user's true Lagrangian cost (energy and the p_max cap left out). For a fixed
    spectral density x = p / b the best b is ``sqrt(w2 K / (ln(1 + gamma x) (lam + mu x)))`` (K = S ln 2),
    which leaves ``2 sqrt(w2 K (lam + mu x) / ln(1 + gamma x))``; its minimum over x solves
    ``(1 + t) ln(1 + t) - t = gamma lam / mu`` (t = gamma x), i.e. ``ln(1 + t) = 1 + W((gamma lam / mu - 1) / e)``
    with W the Lambert W function. Without both prices the bound is 0 and there is no argmin (NaN).
    """
    value, b, p = np.zeros(len(gamma)), np.full(len(gamma), np.nan), np.full(len(gamma), np.nan)
    ok = (lam > 0) & (mu > 0)
    if ok.any():
        g, la, m, K = gamma[ok], lam[ok], mu[ok], w2 * LN2 * size
        ell = np.maximum(1.0 + lambertw((g * la / m - 1.0) / np.e).real, 1e-300)
        x = np.expm1(ell) / g
        value[ok] = 2 * np.sqrt(K * (la + m * x) / ell)
        b[ok] = np.sqrt(K / (ell * (la + m * x)))
        p[ok] = x * b[ok]
    return value, b, p


class _Radio(NamedTuple):
    """One edge's radio allocation: its users, their cost, bandwidth and power, and the prices lambda, mu."""

    users: np.ndarray
    cost: float
    b: np.ndarray
    p: np.ndarray
    lam: float
    mu: float


class _Stage2:
    """The stage-two value of the current (m, o, c) under one split rule, kept up to date move by move.

    Server ``s`` is the cloud (0) or edge ``s - 1``; for each it keeps the sums of sqrt(a), a and
    [a > 0] over its users' works a, which give its SM delay in closed form for every split rule. Each
    edge keeps its users and their radio allocation with the prices (lambda, mu).
    """

    def __init__(self, instance: Instance, split: str, m, o, c):
        d = instance.data
        self.d, self.split, self.w = d, split, d.weights
        self.N, self.M = d.n_users, len(d.edges)
        self.gamma = d.snr_per_w_mhz
        self.f_cs = d.cloud.tflops_per_step / d.tflops_per_sm  # SM-seconds of one step
        self.f_e = d.edge_flops / d.tflops_per_sm
        self.j_cs = d.cloud.j_per_tflop * d.cloud.tflops_per_step  # joules of one step
        self.j_e = d.edge_kappa * d.edge_flops
        self.sms = np.r_[d.cloud.sms, [e.sms for e in d.edges]]
        self.m, self.o, self.c = m.copy(), o.copy(), c.copy()
        self._sums()
        self.sep = self.separable(np.arange(self.N), m, o, c)
        self.edge = [self.solve(k, np.flatnonzero(m == k)) for k in range(self.M)]
        self.pos = np.zeros(self.N, dtype=int)  # index of each user in its edge's arrays
        for r in self.edge:
            self.pos[r.users] = np.arange(len(r.users))

    def _sums(self) -> None:
        self.a_cs, self.a_e = self.c * self.f_cs, (self.o - self.c) * self.f_e[self.m]
        srv, a = np.r_[np.zeros(self.N, dtype=int), self.m + 1], np.r_[self.a_cs, self.a_e]
        self.root, self.tot, self.cnt = (np.bincount(srv, weights=f, minlength=self.M + 1)
                                         for f in (np.sqrt(a), a, (a > 0).astype(float)))

    def _change(self, s, out, into):
        """Change of the SM delay sum_n a_n / v_n of server(s) s when work ``out`` leaves and ``into`` joins."""
        if self.split == "kkt":  # (sum sqrt a)^2 / V
            step = np.sqrt(into) - np.sqrt(out)
            return (2 * self.root[s] + step) * step / self.sms[s]
        cnt, tot = self.cnt[s], self.tot[s]  # equal and proportional splits: count * sum(a) / V
        return ((cnt - (out > 0) + (into > 0)) * (tot - out + into) - cnt * tot) / self.sms[s]

    def separable(self, n, m, o, c):
        """Quality, fibre and energy terms of user(s) n for choices (m, o, c)."""
        w, d = self.w, self.d
        return (w.utility * quality(d.alignment[n, m], d.zeta[m], o) - w.delay_per_s * d.fibre_s(n, m, o == c)
                - w.energy_per_j * (c * self.j_cs + (o - c) * self.j_e[m]))

    def gains(self, n: int, m, o, c) -> np.ndarray:
        """Exact gain of each candidate (m, o, c) of user n, radio excluded."""
        j = self.m[n]
        a_cs, a_e = c * self.f_cs, (o - c) * self.f_e[m]
        moved = m != j
        delay = (self._change(0, self.a_cs[n], a_cs) + self._change(j + 1, self.a_e[n], np.where(moved, 0.0, a_e))
                 + np.where(moved, self._change(m + 1, 0.0, a_e), 0.0))
        return self.separable(n, m, o, c) - self.sep[n] - self.w.delay_per_s * delay

    def solve(self, k: int, users: np.ndarray, b0=None, p0=None) -> _Radio:
        """Edge k's radio problem for ``users`` (warm start b0, p0)."""
        d, e, w = self.d, self.d.edges[k], self.w
        if len(users) == 0:
            return _Radio(users, 0.0, np.zeros(0), np.zeros(0), 0.0, 0.0)
        g, size = self.gamma[users, k], d.video_mbit[users]
        if self.split == "kkt":
            return _Radio(users, *radio_kkt(g, size, e.bandwidth_mhz, e.power_w, d.p_max_w, w.delay_per_s,
                                            w.energy_per_j, b0, p0))
        share = np.full(len(users), 1.0 / len(users)) if self.split == "equal" else size / size.sum()
        b, p = e.bandwidth_mhz * share, np.minimum(e.power_w * share, d.p_max_w)
        return _Radio(users, _radio_cost(b, p, g, size, w.delay_per_s, w.energy_per_j), b, p, 0.0, 0.0)

    def without(self, n: int) -> _Radio:
        """User n's edge re-solved without n (warm start: the others' allocation, n's power shared out)."""
        j, r = self.m[n], self.edge[self.m[n]]
        keep = r.users != n
        budget = self.d.edges[j].power_w
        scale = budget / (budget - r.p[self.pos[n]]) if len(r.users) > 1 else 1.0
        return self.solve(j, r.users[keep], r.b[keep], r.p[keep] * scale)

    def with_user(self, n: int, k: int) -> _Radio:
        """Edge k re-solved with user n added (warm start: n at its best (b, p) for k's prices, else an equal share,
        and the others scaled to make room)."""
        r, e = self.edge[k], self.d.edges[k]
        share = 1.0 / (len(r.users) + 1)
        _, (bn,), (pn,) = _join_price(self.gamma[n, [k]], float(self.d.video_mbit[n]), np.array([r.lam]),
                                      np.array([r.mu]), self.w.delay_per_s)
        bn = min(bn, e.bandwidth_mhz / 2) if bn > 0 else e.bandwidth_mhz * share
        pn = min(pn, e.power_w / 2, self.d.p_max_w) if pn > 0 else min(e.power_w * share, self.d.p_max_w)
        return self.solve(k, np.r_[r.users, n], np.r_[r.b * (1 - bn / e.bandwidth_mhz), bn],
                          np.r_[r.p * (1 - pn / e.power_w), pn])

    def leave_bound(self, n: int) -> float:
        """Upper bound on the radio cost saved when user n leaves its edge (see the module docstring)."""
        if self.split != "kkt":
            return np.inf  # equal / proportional radio is cheap: edge moves are always evaluated exactly
        j, r, w = self.m[n], self.edge[self.m[n]], self.w
        bn, pn = float(r.b[self.pos[n]]), float(r.p[self.pos[n]])
        cost = _radio_f(bn, pn, self.gamma[n, j], LN2 * self.d.video_mbit[n], w.delay_per_s, w.energy_per_j)
        return float(cost) + r.lam * bn + r.mu * pn

    def join_floors(self, n: int, ks: np.ndarray) -> np.ndarray:
        """Lower bounds on the radio cost added when user n joins each edge in ``ks``."""
        if self.split != "kkt":
            return np.zeros(len(ks))
        lam, mu = np.array([self.edge[k].lam for k in ks]), np.array([self.edge[k].mu for k in ks])
        return _join_price(self.gamma[n, ks], float(self.d.video_mbit[n]), lam, mu, self.w.delay_per_s)[0]

    def move(self, n: int, m: int, o: int, c: int, radio: dict) -> None:
        """Apply user n's move; ``radio`` holds the re-solved edges when n changes edge."""
        j, a_cs, a_e = self.m[n], c * self.f_cs, (o - c) * self.f_e[m]
        for s, a, sign in ((0, self.a_cs[n], -1), (j + 1, self.a_e[n], -1), (0, a_cs, 1), (m + 1, a_e, 1)):
            self.root[s] += sign * math.sqrt(a)
            self.tot[s] += sign * a
            self.cnt[s] += sign * (a > 0)
        self.m[n], self.o[n], self.c[n], self.a_cs[n], self.a_e[n] = m, o, c, a_cs, a_e
        self.sep[n] = self.separable(n, m, o, c)
        for k, r in radio.items():
            self.edge[k] = r
            self.pos[r.users] = np.arange(len(r.users))

    def value(self) -> float:
        """The full stage-two objective of the current choices, recomputed from scratch."""
        self._sums()
        m, o, c = self.m, self.o, self.c
        delay = (self.root**2 if self.split == "kkt" else self.cnt * self.tot) / self.sms
        radio = sum(_radio_cost(r.b, r.p, self.gamma[r.users, k], self.d.video_mbit[r.users], self.w.delay_per_s,
                                self.w.energy_per_j) for k, r in enumerate(self.edge) if len(r.users))
        return float(self.separable(np.arange(self.N), m, o, c).sum() - self.w.delay_per_s * delay.sum() - radio)

    def solution(self) -> Solution:
        d, m = self.d, self.m
        vcs = _split(self.c * self.f_cs, d.cloud.sms, self.split)
        v, b, p = np.zeros(self.N), np.zeros(self.N), np.zeros(self.N)
        for k, e in enumerate(d.edges):
            on = m == k
            if on.any():
                v[on] = _split((self.o[on] - self.c[on]) * self.f_e[k], e.sms, self.split)
            b[self.edge[k].users], p[self.edge[k].users] = self.edge[k].b, self.edge[k].p
        return Solution(edge=m.tolist(), steps=self.o.tolist(), cloud_steps=self.c.tolist(), cloud_sms=vcs.tolist(),
                        edge_sms=v.tolist(), bandwidth_mhz=b.tolist(), power_w=p.tolist())


def stage_two(instance: Instance, edge, steps, cloud_steps, split: str = "kkt") -> Solution:
    """The servers' answer to the users' discrete choices (edge, o, c): SM splits and each edge's bandwidth and
    power by ``split`` (``kkt``: TS-MITO's stage two; ``equal``, ``proportional``: the paper's baselines)."""
    m, o, c = (np.asarray(x, dtype=int) for x in (edge, steps, cloud_steps))
    return _Stage2(instance, split, m, o, c).solution()


def _search(instance: Instance, split: str, pin: str | None, time_limit: float | None) -> Outcome:
    """Greedy start, then per-user best moves on (m, o, c) until no move improves the stage-two value."""
    start = time.perf_counter()
    d = instance.data
    s, N, M = d.steps, d.n_users, len(d.edges)
    o_lo, o_hi = max(s.o_min, s.c_min), min(s.o_max, s.c_max) if pin == "cloud" else s.o_max

    # greedy start: each user on its best edge when alone with an equal share of it
    users_per_edge = max(N / M, 1.0)
    e_b = np.array([e.bandwidth_mhz for e in d.edges]) / users_per_edge
    e_p = np.minimum(np.array([e.power_w for e in d.edges]) / users_per_edge, d.p_max_w)
    alone = (d.weights.utility * d.alignment
             - d.weights.delay_per_s * d.video_mbit[:, None] / rate_mbps(e_b[None, :], e_p[None, :], d.snr_per_w_mhz))
    m = np.argmax(alone, axis=1)
    o = np.full(N, max(o_lo, min(o_hi, (s.o_min + s.o_max) // 2)))
    c = o.copy() if pin == "cloud" else np.full(N, s.c_min)
    st = _Stage2(instance, split, m, o, c)
    total = st.value()
    others = [np.array([k for k in range(M) if k != j], dtype=int) for j in range(M)]
    o_range, c_range = np.arange(o_lo, o_hi + 1), np.arange(s.c_min, s.c_max + 1)
    # phase two adds the joint move to c = o (the whole generation on the cloud, so the video, not the latent,
    # crosses the fibre), starting from phase one's local optimum, so it can only improve on it
    for joint in (False, True) if pin is None else (False,):
        improved = True
        while improved:
            improved = False
            for n in range(N):
                if time_limit is not None and time.perf_counter() - start > time_limit:
                    break
                mn, on, cn = st.m[n], st.o[n], st.c[n]
                # the user's neighbourhood, in the first version's order: other edges, then o, then c
                ks = others[mn]
                ov = o_range[max(0, cn - o_lo) if pin is None else 0:]
                ov = ov[ov != on]
                cv = c_range[:min(s.c_max, on) - s.c_min + 1] if pin is None else c_range[:0]
                cv = cv[cv != cn]
                whole = o_range[(o_range <= s.c_max) & ((o_range != on) | (on != cn))] if joint else o_range[:0]
                ne, neo, noc = len(ks), len(ks) + len(ov), len(ks) + len(ov) + len(cv)
                # candidates [0, ne) change edge, [ne, neo) o, [neo, noc) c, [noc, ...) both
                cm, co, cc = np.full(noc + len(whole), mn), np.full(noc + len(whole), on), np.full(noc + len(whole), cn)
                cm[:ne], co[ne:neo], cc[neo:noc], co[noc:], cc[noc:] = ks, ov, cv, whole, whole
                if pin == "cloud":
                    cc[ne:neo] = ov
                gain = st.gains(n, cm, co, cc)
                tol = 1e-9 * max(1.0, abs(total))
                best = max(tol, gain[ne:].max(initial=-np.inf))
                upper = gain[:ne] + st.leave_bound(n) - st.join_floors(n, ks)
                solved, leave = {}, None
                for i in np.argsort(-upper, kind="stable"):  # edge moves whose bound can still win, best bound first
                    if upper[i] <= best:
                        break
                    if leave is None:
                        leave = st.without(n)
                    join = st.with_user(n, ks[i])
                    gain[i] += (st.edge[mn].cost - leave.cost) - (join.cost - st.edge[ks[i]].cost)
                    solved[i] = {mn: leave, ks[i]: join}
                    best = max(best, gain[i])
                gain[[i for i in range(ne) if i not in solved]] = -np.inf
                i = int(np.argmax(gain))
                if gain[i] > tol:
                    st.move(n, cm[i], co[i], cc[i], solved.get(i, {}))
                    total += gain[i]
                    improved = True
    return Outcome(st.solution(), claimed=st.value())


@method("offload", "ts-mito", "heuristic")
def ts_mito(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """TS-MITO: KKT closed-form SM splits + Newton-KKT radio; a deterministic search replaces the paper's MAPPO.

    Stage one of the paper is a learned multi-agent PPO policy; this toolkit substitutes the
    deterministic coordinate search of the module docstring (same decision, no training). Stage two's
    radio allocation is solved by Newton's method on its KKT conditions instead of SLSQP, which is
    what lets the search reach 1,500 users (module docstring). Deterministic; with ``time_limit`` it
    returns the best choices found so far.
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
