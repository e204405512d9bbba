"""SusCO's CGSC + CSTP auction and the paper's baselines for ``cdgs``.

Everything is vectorized over tasks: candidate groups are rows of arrays (members padded with -1),
and the greedy winner selection runs in rounds, each accepting every candidate that outranks all
candidates it conflicts with (same task or a shared dish). That accepts exactly what a one-by-one
greedy scan in rank order would, in a few array passes instead of a Python loop per group.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from edgeopt.model import InputError
from edgeopt.problems.cdgs import Group, Instance, Solution
from edgeopt.registry import method
from edgeopt.result import Outcome


@dataclass
class Candidates:
    """Candidate groups of every task: ``members`` (G, n) bid indices padded with -1, sorted by task."""

    task: np.ndarray
    members: np.ndarray
    shares: np.ndarray  # (G, n) Mb, 0 on padding
    cost: np.ndarray
    utility: np.ndarray


def _pad(blocks: list[np.ndarray], width: int) -> np.ndarray:
    return np.vstack([np.pad(b, ((0, 0), (0, width - b.shape[1])), constant_values=-1) for b in blocks])


def _score_groups(instance: Instance, task: np.ndarray, members: np.ndarray) -> Candidates:
    """Cost, fractional-knapsack shares and utility of groups (rows of ``members``)."""
    d = instance.data
    valid = members >= 0
    m = np.where(valid, members, 0)
    gain = np.where(valid, d.gain[m], -np.inf)
    order = np.argsort(-gain, axis=1, kind="stable")  # fill the best gain per Mb first
    m, valid = np.take_along_axis(m, order, 1), np.take_along_axis(valid, order, 1)
    members = np.where(valid, m, -1)
    cap = np.where(valid, d.cap[m], 0.0)
    V = d.tasks.traffic_mb[task]
    before = np.cumsum(cap, axis=1) - cap
    shares = np.clip(V[:, None] - before, 0.0, cap)
    covered = cap.sum(axis=1) >= V * (1 - 1e-12)
    worst = np.where(valid, d.bids.delay_ms[m], 0.0).max(axis=1)
    g = np.where(valid, d.gain[m], 0.0)
    utility = (g * shares).sum(axis=1) / V + d.weights.delay * (1.0 - worst / d.tasks.base_ms[task])
    cost = np.where(valid, d.bids.cost[m], 0.0).sum(axis=1)
    utility = np.where(covered, utility, -np.inf)
    return Candidates(task, members, shares, cost, utility)


def cgsc(instance: Instance, *, n_max: int | None = None, m: int = 10) -> Candidates:
    """CGSC: candidate groups per task, layer by layer, merging pairs of the M cheapest groups.

    Bids over the task's delay limit or budget, and bids of committed dishes, are dropped first.
    Layer 1 is the single bids; layer n merges pairs of the ``m`` cheapest layer-(n-1) groups (within
    budget) whose union has n bids from n distinct dishes. Kept: groups that cover the task's traffic
    within its budget and have positive utility (a group of no use is never bought).
    """
    d = instance.data
    b, tk = d.bids, d.tasks
    n_max = d.n_max if n_max is None else int(n_max)
    if not 1 <= n_max <= d.n_max:
        raise InputError("n_max", f"must be 1..{d.n_max} (the instance's largest group size)")
    if int(m) < 1:
        raise InputError("m", "must be >= 1")
    ok = (b.delay_ms <= tk.limit_ms[b.task]) & (b.cost <= tk.budget[b.task]) & d.available
    idx = np.flatnonzero(ok)
    idx = idx[np.lexsort((idx, b.cost[idx], b.task[idx]))]
    layers = [idx[:, None]]
    layer_task = b.task[idx]
    T = len(tk.source)
    for n in range(2, n_max + 1):
        # the m cheapest groups of the previous layer, as a (T, m) table of row numbers (-1 = none)
        start = np.searchsorted(layer_task, np.arange(T))
        rank = np.arange(len(layer_task)) - start[layer_task]
        keep = rank < m
        table = np.full((T, m), -1)
        table[layer_task[keep], rank[keep]] = np.flatnonzero(keep)
        i, j = np.triu_indices(m, 1)
        a, c = table[:, i].ravel(), table[:, j].ravel()
        both = (a >= 0) & (c >= 0)
        a, c = a[both], c[both]
        prev = layers[-1]
        union = np.sort(np.hstack([prev[a], prev[c]]), axis=1)
        first = np.hstack([np.ones((len(union), 1), bool), union[:, 1:] != union[:, :-1]])
        good = first.sum(axis=1) == n
        union, first = union[good], first[good]
        groups = union[first].reshape(-1, n)
        dishes = np.sort(b.dish[groups], axis=1)
        good = (dishes[:, 1:] != dishes[:, :-1]).all(axis=1)
        groups = groups[good]
        if n > 2:  # two different pairs of (n-1)-groups can make the same n-group
            groups = np.unique(groups, axis=0).reshape(-1, n)
        gtask, gcost = b.task[groups[:, 0]], b.cost[groups].sum(axis=1)
        good = gcost <= tk.budget[gtask]
        groups, gtask, gcost = groups[good], gtask[good], gcost[good]
        order = np.lexsort((gcost, gtask))
        layers.append(groups[order])
        layer_task = gtask[order]
    members = _pad(layers, n_max)
    task = b.task[members[:, 0]]
    cand = _score_groups(instance, task, members)
    keep = np.isfinite(cand.utility) & (cand.utility > 0)
    order = np.flatnonzero(keep)[np.argsort(task[keep], kind="stable")]
    return Candidates(task[order], cand.members[order], cand.shares[order], cand.cost[order], cand.utility[order])


def greedy(task: np.ndarray, dish: np.ndarray, n_tasks: int, n_dishes: int) -> np.ndarray:
    """Rows accepted by a greedy scan in row order (row 0 first): a row is taken unless its task is
    already served or one of its dishes (``dish``, (G, n) padded with -1) already won.

    Runs in rounds: every live row that is the first live row of its task and of each of its dishes
    is exactly a row the scan takes; take them all, drop the rows they block, repeat.
    """
    G = len(task)
    alive = np.ones(G, dtype=bool)
    chosen = []
    served = np.zeros(n_tasks, dtype=bool)
    used = np.zeros(n_dishes + 1, dtype=bool)  # last slot absorbs the -1 padding
    dish = np.where(dish >= 0, dish, n_dishes)
    while alive.any():
        rows = np.flatnonzero(alive)
        t_first = np.full(n_tasks, G)
        np.minimum.at(t_first, task[rows], rows)
        d_first = np.full(n_dishes + 1, G)
        np.minimum.at(d_first, dish[rows].ravel(), np.repeat(rows, dish.shape[1]))
        d_first[n_dishes] = G
        dm = dish[rows]
        win = (t_first[task[rows]] == rows) & ((d_first[dm] == rows[:, None]) | (dm == n_dishes)).all(axis=1)
        won = rows[win]
        chosen.append(won)
        served[task[won]] = True
        used[dish[won].ravel()] = True
        used[n_dishes] = False
        alive[rows] = ~served[task[rows]] & ~used[dm].any(axis=1)
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=int)


Payment = Literal["received", "bid"]  # what a winning dish is paid for: the data it carried, or its whole bid
Exploration = Literal["inverse", "ucb"]  # the seed's eps / (1 + n), or UCB's eps sqrt(2 ln(tau + 1) / (1 + n))
PAYMENTS, EXPLORATIONS = get_args(Payment), get_args(Exploration)


def exploration_bonus(instance: Instance, members: np.ndarray, eps: float, exploration: str = "inverse"):
    """CSTP's exploration term per group (rows of ``members``), from its dishes' mean past wins ``n``.

    ``inverse``: the seed's term, inversely proportional to the selection count, ``eps / (1 + n)``.
    ``ucb``: the UCB1 form used before issue 13, ``eps sqrt(2 ln(tau + 1) / (1 + n))`` (0 at tau = 0).
    """
    d = instance.data
    valid = members >= 0
    wins = np.where(valid, d.dishes.wins[d.bids.dish[np.maximum(members, 0)]], 0).sum(axis=1) / valid.sum(axis=1)
    if exploration == "inverse":
        return eps / (1.0 + wins)
    return eps * np.sqrt(2.0 * np.log(d.tau + 1.0) / (1.0 + wins))


def cstp(instance: Instance, cand: Candidates, *, eps: float = 0.01, mu: float = 0.1, exploration: str = "inverse"):
    """CSTP: greedy winners by U/C plus the exploration bonus, and each winner's critical value.

    Returns (winning rows of ``cand``, critical value of each winning group in $ of its asking cost
    ``C``). The critical value is the largest ``C`` at which the group still wins the cross-task
    greedy, everything else fixed: it must outrank its first competitor, the first lower-ranked
    group that would be accepted if it were gone (one blocked by it alone, through its task or a
    dish), capped by the budget. A winner with no such competitor is paid ``(1 + mu) C``, capped.
    Ties in the score go to the earlier candidate (cheaper within a task's layer).
    """
    d = instance.data
    if eps < 0 or mu < 0:
        raise InputError("eps" if eps < 0 else "mu", "must be >= 0")
    G = len(cand.task)
    if G == 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    T, D = len(d.tasks.source), len(d.dishes.wins)
    dish = np.where(cand.members >= 0, d.bids.dish[np.maximum(cand.members, 0)], -1)
    bonus = exploration_bonus(instance, cand.members, eps, exploration)
    score = cand.utility / cand.cost + bonus
    rank = np.argsort(-score, kind="stable")
    won = rank[greedy(cand.task[rank], dish[rank], T, D)]
    pos = np.empty(G, dtype=int)
    pos[rank] = np.arange(G)
    # scan position of the winner that blocks each row through its task and through each dish (G: none)
    task_win = np.full(T, G)
    task_win[cand.task[won]] = pos[won]
    dish_win = np.full(D + 1, G)  # last slot absorbs the -1 padding
    dish_win[dish[won]] = pos[won][:, None]
    dish_win[D] = G
    blocker = np.column_stack([task_win[cand.task], dish_win[dish]])
    above = blocker < pos[:, None]
    # a row blocked by one winner alone is accepted if that winner drops out; the first such is its competitor
    first = np.where(above, blocker, G).min(axis=1)
    sole = above.any(axis=1) & np.where(above, blocker == first[:, None], True).all(axis=1)
    rival = np.full(G, G)  # per winner position: scan position of its first competitor
    np.minimum.at(rival, first[sole], pos[sole])
    q = rival[pos[won]]
    C, U, beta = cand.cost[won], cand.utility[won], d.tasks.budget[cand.task[won]]
    margin = score[rank[np.minimum(q, G - 1)]] - bonus[won]
    with np.errstate(divide="ignore"):
        limit = np.where(margin > 0, U / margin, np.inf)  # margin <= 0: its bonus alone outranks the competitor
    critical = np.minimum(beta, np.maximum(C, limit))  # max: a tie at the competitor's score, or rounding
    return won, np.where(q < G, critical, np.minimum(beta, (1.0 + mu) * C))


def _solution(instance: Instance, cand: Candidates, rows: np.ndarray, pay: np.ndarray | None,
              payment: str = "received") -> Solution:
    """Groups of ``rows``; a paid group's critical value ``pay`` is split over its members by cost share.

    ``received``: each member gets its cost share of ``pay`` scaled by the part of its bid it carried,
    ``p_k = pay / C * c_k f_k / Delta_k`` (the seed: paid for the data received). ``bid``: the whole
    cost share, ``p_k = pay * c_k / C``, whatever the share carried.
    """
    d = instance.data
    groups = []
    for i, r in enumerate(rows):
        keep = cand.members[r] >= 0
        mem, shares = cand.members[r][keep], cand.shares[r][keep]
        pk = None
        if pay is not None:
            c = d.bids.cost[mem]
            pk = pay[i] * c / c.sum()
            if payment == "received":
                pk = pk * shares / d.bids.traffic_mb[mem]
            pk = pk.tolist()
        groups.append(Group(task=int(cand.task[r]), bids=mem.tolist(), shares=shares.tolist(), payments=pk))
    return Solution(groups=groups)


@method("cdgs", "cgsc-cstp", "heuristic")
def cgsc_cstp(instance: Instance, *, seed: int = 0, time_limit: float | None = None, n_max: int | None = None,
              m: int = 10, eps: float = 0.01, mu: float = 0.1, payment: Payment = "received",
              exploration: Exploration = "inverse") -> Outcome:
    """SusCO: CGSC candidate groups, then CSTP greedy winners and critical-value payments.

    Options: ``n_max`` (default the instance's, 2), ``m`` = 10 cheapest groups merged per layer,
    ``eps`` exploration weight, ``exploration``: ``inverse`` (the seed's ``eps / (1 + n)``) or ``ucb``,
    ``mu`` markup paid to a winner no other group competes with,
    ``payment``: ``received`` (each dish paid for the data it carried) or ``bid`` (its whole bid).
    Payments cover the cost of what each dish carried and stay within budget by construction.
    """
    for name, value, allowed in (("payment", payment, PAYMENTS), ("exploration", exploration, EXPLORATIONS)):
        if value not in allowed:
            raise InputError(name, f"must be one of {', '.join(allowed)}")
    cand = cgsc(instance, n_max=n_max, m=m)
    won, pay = cstp(instance, cand, eps=eps, mu=mu, exploration=exploration)
    return Outcome(_solution(instance, cand, won, pay, payment), claimed=float(cand.utility[won].sum()))


def _singles(instance: Instance, key: np.ndarray, ok: np.ndarray) -> Outcome:
    """Single-bid allocation: per task the best-``key`` (smallest) usable bid, dishes won at most once."""
    d = instance.data
    b = d.bids
    ok = ok & (d.cap >= d.tasks.traffic_mb[b.task] * (1 - 1e-12)) & d.available
    idx = np.flatnonzero(ok)
    idx = idx[np.lexsort((idx, key[idx]))]
    rows = greedy(b.task[idx], b.dish[idx][:, None], len(d.tasks.source), len(d.dishes.wins))
    cand = _score_groups(instance, b.task[idx[rows]], idx[rows][:, None])
    return Outcome(_solution(instance, cand, np.arange(len(rows)), None), claimed=float(cand.utility.sum()))


@method("cdgs", "service", "baseline")
def service(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """SERvICE: delay and bandwidth only — the least-delay single bid that covers the traffic.

    Respects delay limit and budget; no groups, no payments.
    """
    d = instance.data
    b = d.bids
    ok = (b.delay_ms <= d.tasks.limit_ms[b.task]) & (b.cost <= d.tasks.budget[b.task])
    return _singles(instance, b.delay_ms, ok)


@method("cdgs", "smtsn", "baseline")
def smtsn(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """SMTSN: lifetime and delay, no groups — the single bid maximizing w_L l_k + w_D (1 - xi_k / base_t)."""
    d = instance.data
    b, w = d.bids, d.weights
    ok = (b.delay_ms <= d.tasks.limit_ms[b.task]) & (b.cost <= d.tasks.budget[b.task])
    key = w.lifetime * b.lifetime + w.delay * (1.0 - b.delay_ms / d.tasks.base_ms[b.task])
    return _singles(instance, -key, ok)


@method("cdgs", "falcon", "baseline")
def falcon(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """FALCON: the least-delay single path within the delay limit, ignoring budget and lifetime.

    Budget overruns are left for the referee to report.
    """
    d = instance.data
    b = d.bids
    return _singles(instance, b.delay_ms, b.delay_ms <= d.tasks.limit_ms[b.task])


@method("cdgs", "no-offload", "baseline")
def no_offload(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """Every task stays on its ISL path (utility 0)."""
    return Outcome(Solution(groups=[]), claimed=0.0)
