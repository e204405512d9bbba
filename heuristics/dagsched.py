"""List scheduling (HEFT-style), CS-UCB and the paper's baselines for ``dagsched``.

Every method builds its schedule with a ``Dispatcher``: a partial schedule that starts from the
instance's fixed sub-tasks (``data.fixed``) and places one ready sub-task at a time on a server,
appending to an edge queue or (``insert=True``) using its earliest idle gap that fits. Its times are
the referee's timing rules applied as the schedule grows.

Learned policies plug in the same way: a policy is ``policy(dispatcher, rng) -> (sub-task, server)``
choosing among ``dispatcher.ready`` and ``dispatcher.options(t)``; ``register_policy(name)`` turns it
into a method (see ``greedy_edge`` and ``random_policy`` below, which are registered that way), from
any module, at any time: ``@register_policy("my-policy")`` in your own code adds it to the registry.
"""
from __future__ import annotations

import math
import time
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable
from typing import Literal, get_args

import numpy as np

from edgeopt.limits import Count
from edgeopt.model import InputError
from edgeopt.problems.dagsched import Instance, Solution
from edgeopt.registry import NotApplicable, method
from edgeopt.result import Outcome


class Dispatcher:
    """A partial schedule grown one sub-task at a time; fixed sub-tasks are placed at construction."""

    def __init__(self, instance: Instance):
        d = instance.data
        g = self.g = d.graph
        self.gamma, self.t_max = d.gamma, d.t_max_s
        self.start = np.full(g.T, np.nan)
        self.finish = np.full(g.T, np.nan)
        self.where: dict[int, int] = {}
        I = len(d.jobs)
        self.first = np.full(I, math.inf)  # min start per job
        self.last = np.full(I, -math.inf)  # max finish per job
        self.tail = np.zeros(g.N)  # when each edge's queue frees
        self.gaps: list[list[tuple[float, float]]] = [[] for _ in range(g.N)]  # idle (start, end), sorted
        self.queue: list[list[tuple[float, float, int, int]]] = [[] for _ in range(g.N)]  # (start, finish, seq, t)
        self._seq = 0
        self._left = [len(p) for p in g.preds]
        self.arrive = np.zeros((g.T, g.S))  # when the data of t's placed predecessors is on each server
        self.ready: set[int] = {t for t in range(g.T) if not g.preds[t]}
        self.is_ready = np.zeros(g.T, dtype=bool)  # the same set as a mask: the ready sub-tasks in index order at C speed
        self.is_ready[list(self.ready)] = True
        self.depth = np.zeros(g.T, dtype=int)  # longest chain of predecessors
        for t in g.order:
            self.depth[t] = max((self.depth[k] + 1 for k, _ in g.preds[t]), default=0)
        if d.fixed is not None:
            where = {g.index(i, j): n for n, q in enumerate(d.fixed.prefix) for i, j in q}
            where.update({g.index(i, j): g.cloud for i, j in d.fixed.cloud})
            queues = [[g.index(i, j) for i, j in q] for q in d.fixed.prefix]
            st, en, _ = g.times(where, queues)
            for n, q in enumerate(queues):  # a fixed prefix leaves no usable gap before its end
                for t in q:
                    self._commit(t, n, st[t], en[t])
                self.tail[n] = en[q[-1]] if q else 0.0
            for i, j in d.fixed.cloud:
                t = g.index(i, j)
                self._commit(t, g.cloud, st[t], en[t])

    def options(self, t: int) -> list[int]:
        """Servers whose LLM supports sub-task t's modality."""
        return [s for s in range(self.g.S) if self.g.ok[t, s]]

    def arrival(self, t: int, s: int) -> float:
        """When the data of all of t's predecessors is on server s."""
        g = self.g
        return max((self.finish[k] + bits * g.inv[self.where[k], s] for k, bits in g.preds[t]), default=0.0)

    def slot(self, t: int, s: int, insert: bool = False) -> tuple[float, float]:
        """(start, finish) t would get on server s: after the queue tail, or in the earliest fitting gap."""
        r, p = self.arrival(t, s), self.g.dur[t, s]
        if s == self.g.cloud:
            return r, r + p
        if insert:
            gaps = self.gaps[s]
            k = bisect_left(gaps, r + p, key=lambda x: x[1])
            for a, b in gaps[k:]:
                st = max(r, a)
                if st + p <= b:
                    return st, st + p
        st = max(r, self.tail[s])
        return st, st + p

    def latency_if(self, t: int, st: float, en: float, s: int) -> float:
        """t's job latency so far (max finish - min start, plus the return once the sink is placed)."""
        i = self.g.job[t]
        lat = max(self.last[i], en) - min(self.first[i], st)
        return lat + (self.g.ret[t, s] if t == self.g.sink[i] else 0.0)

    def latency(self, i: int) -> float:
        sink = self.g.sink[i]
        if sink not in self.where:
            return self.last[i] - self.first[i] if self.first[i] < math.inf else 0.0
        return self.last[i] - self.first[i] + self.g.ret[sink, self.where[sink]]

    def place(self, t: int, s: int, insert: bool = False) -> tuple[float, float]:
        if t not in self.ready:
            raise ValueError(f"sub-task {list(self.g.name(t))} is not ready (placed, or a predecessor is not)")
        if not self.g.ok[t, s]:
            raise ValueError(f"server {s} does not support sub-task {list(self.g.name(t))}")
        st, en = self.slot(t, s, insert)
        if s != self.g.cloud:
            if st >= self.tail[s]:
                if st > self.tail[s]:
                    self.gaps[s].append((self.tail[s], st))
                self.tail[s] = en
            else:  # inside a gap: split it
                gaps = self.gaps[s]
                k = bisect_right(gaps, st, key=lambda x: x[0]) - 1
                a, b = gaps.pop(k)
                for piece in ((a, st), (en, b)):
                    if piece[1] > piece[0]:
                        insort(gaps, piece)
        self._commit(t, s, st, en)
        return st, en

    def _commit(self, t: int, s: int, st: float, en: float) -> None:
        i = self.g.job[t]
        self.where[t] = s
        self.start[t], self.finish[t] = st, en
        self.first[i], self.last[i] = min(self.first[i], st), max(self.last[i], en)
        if s != self.g.cloud:
            self.queue[s].append((st, en, self._seq, t))
            self._seq += 1
        self.ready.discard(t)
        self.is_ready[t] = False
        g = self.g
        for w in g.succs[t]:
            for k, bits in g.preds[w]:
                if k == t:
                    np.maximum(self.arrive[w], en + bits * g.inv[s], out=self.arrive[w])
            self._left[w] -= 1
            if self._left[w] == 0 and w not in self.where:
                self.ready.add(w)
                self.is_ready[w] = True

    def objective(self) -> float:
        g = self.g
        cost = sum(g.cost[t, s] for t, s in self.where.items())
        return self.gamma * sum(self.latency(i) for i in range(len(g.sink))) + (1 - self.gamma) * cost

    def feasible(self) -> bool:
        return self.t_max is None or all(self.latency(i) <= self.t_max * (1 + 1e-9) for i in range(len(self.g.sink)))

    def solution(self) -> Solution:
        g = self.g
        order = [[list(g.name(t)) for *_, t in sorted(q)] for q in self.queue]
        cloud = [list(g.name(t)) for t in sorted(self.where) if self.where[t] == g.cloud]
        return Solution(order=order, cloud=cloud)


Policy = Callable[[Dispatcher, np.random.Generator], tuple[int, int]]


def run_policy(instance: Instance, policy: Policy, seed: int = 0) -> Solution:
    """Place sub-tasks one at a time as ``policy(dispatcher, rng)`` chooses, appending to queues."""
    disp, rng = Dispatcher(instance), np.random.default_rng(seed)
    while disp.ready:
        t, s = policy(disp, rng)
        disp.place(t, s)
    return disp.solution()


def register_policy(name: str, kind: str = "heuristic", applies: Callable | None = None) -> Callable[[Policy], Policy]:
    """Decorator: register ``policy(dispatcher, rng) -> (sub-task, server)`` as method ``name``."""

    def register(policy: Policy) -> Policy:
        def run(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Solution:
            return run_policy(instance, policy, seed)

        run.__doc__ = policy.__doc__
        run.__name__ = policy.__name__
        method("dagsched", name, kind, applies)(run)
        return policy

    return register


def _arrival_key(disp: Dispatcher, t: int) -> tuple:
    """Dispatch order of the non-learning methods: stage by stage, jobs in turn (as requests arrive)."""
    return disp.depth[t], disp.g.job[t], t


# --- list scheduling --------------------------------------------------------------------------------

def upward_ranks(g) -> np.ndarray:
    """HEFT's rank_u: mean duration over feasible servers plus the heaviest path of mean transfers below."""
    ok = g.ok
    mean_dur = np.where(ok, g.dur, 0.0).sum(1) / ok.sum(1)
    mean_ret = np.where(ok, g.ret, 0.0).sum(1) / ok.sum(1)
    rank = np.zeros(g.T)
    sinks = set(g.sink)
    pair_mean: dict[tuple, float] = {}
    for t in reversed(g.order):
        best = mean_ret[t] if t in sinks else 0.0
        for w in g.succs[t]:
            bits = next(b for k, b in g.preds[w] if k == t)
            key = (ok[t].tobytes(), ok[w].tobytes())
            if key not in pair_mean:
                a_s, b_s = np.flatnonzero(ok[t]), np.flatnonzero(ok[w])
                vals = [g.inv[a, b] for a in a_s for b in b_s if a != b]
                pair_mean[key] = float(np.mean(vals)) if vals else 0.0
            best = max(best, bits * pair_mean[key] + rank[w])
        rank[t] = mean_dur[t] + best
    return rank


@method("dagsched", "list", "heuristic")
def list_schedule(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Outcome:
    """HEFT-style list scheduling with insertion; exactly HEFT when gamma = 1 and there is no cloud.

    Sub-tasks in decreasing upward rank (mean durations and transfers; ties in topological order) go
    one by one to the modality-feasible server minimizing gamma * (increase of the job's latency so far)
    + (1 - gamma) * cost, ties to the earliest finish, using the earliest idle gap of an edge queue
    that fits. With gamma = 1 the latency increase is monotone in the finish time, so the choice is
    HEFT's earliest-finish rule.
    """
    disp = Dispatcher(instance)
    g = disp.g
    rank = upward_ranks(g)
    pos = np.empty(g.T, dtype=int)
    pos[np.array(g.order)] = np.arange(g.T)
    gam = disp.gamma
    for t in sorted((t for t in range(g.T) if t not in disp.where), key=lambda t: (-rank[t], pos[t])):
        i = g.job[t]
        old = disp.latency(i)
        best, choice = None, None
        for s in disp.options(t):
            st, en = disp.slot(t, s, insert=True)
            score = (gam * (disp.latency_if(t, st, en, s) - old) + (1 - gam) * g.cost[t, s], en)
            if best is None or score < best:
                best, choice = score, s
        disp.place(t, choice, insert=True)
    return Outcome(disp.solution(), claimed=float(disp.objective()))


# --- CS-UCB -----------------------------------------------------------------------------------------

Learn = Literal["joint", "location"]  # CS-UCB's arms: (sub-task, server) pairs, so the order too; or a server per modality
LEARN = get_args(Learn)


def _ucb_choice(untried: np.ndarray, fit: np.ndarray, key: np.ndarray, index: np.ndarray) -> int:
    """CS-UCB's pick: in the order untried arms first (by their random ``key``), then the tried ones by ``index``
    descending, ties by position, the first arm that ``fit``s (keeps its job within T_max), else the first of all.

    Only that one arm is needed, so a masked argmin or argmax finds it in O(arms), with no sort of every arm per step.
    """
    for group in (untried & fit, ~untried & fit, untried, ~untried):
        if group.any():
            return int(np.argmin(np.where(group, key, np.inf)) if untried[group].all() else
                       np.argmax(np.where(group, index, -np.inf)))
    raise ValueError("no arms")


@method("dagsched", "cs-ucb", "heuristic")
def cs_ucb(instance: Instance, *, seed: int = 0, time_limit: float | None = None, episodes: Count = 50,
           delta: float = 0.5, lam: float = 1.0, learn: Learn = "joint") -> Outcome:
    """PerLLM's constraint-satisfaction UCB (arXiv 2405.14636) in the paper's action space; best of `episodes` runs.

    ``learn=joint`` (default, the paper's action ``a_i = (L_ij, alpha_ij)``: which sub-task to schedule next
    and where): the arms are (sub-task, server) pairs, and every step chooses among all ready sub-tasks
    of all jobs, so the edge queue orders are learned too; ``ln t`` counts the pulls of the sub-task's
    job (its agent). ``learn=location``: the arms are (modality, server) pairs and the sub-tasks are
    dispatched stage by stage, jobs in turn (a fixed order); ``ln t`` counts the modality's pulls.
    Each step the arms whose choice keeps the job within T_max (all arms if none) are candidates,
    untried ones first, else the largest R(a) + delta * sqrt(ln t / L(a)). The reward is -(gamma *
    normalized delay + (1 - gamma) * normalized cost) + lam * normalized slack to T_max. Statistics
    persist across episodes; the best schedule seen (within T_max first) is returned. At ``time_limit``
    the running episode is dropped and no new one starts (status ``time_limit``, ``details.episodes`` says
    how many finished); a first episode still running then is finished in the fixed order, one sub-task's
    arms per step (``learn=joint`` weighs every ready sub-task's arms: about 0.8 s per episode at 1,000 jobs).
    """
    if learn not in LEARN:
        raise InputError("learn", f"must be one of {', '.join(LEARN)}, got {learn!r}")
    began = time.perf_counter()
    rng = np.random.default_rng(seed)
    g = instance.data.graph
    if learn == "joint":
        arm_row, agent = np.arange(g.T), np.asarray(g.job)
    else:
        arm_row = agent = np.unique(instance.data.jobs.modality, return_inverse=True)[1]
    count = np.zeros((arm_row.max() + 1, g.S))
    mean = np.zeros_like(count)
    pulls = np.zeros(agent.max() + 1)
    scale_t = instance.data.t_max_s or float(np.where(g.ok, g.dur, 0).max(1).sum() / len(g.sink))
    sinks = np.asarray(g.sink)
    sink_ret = np.where((np.arange(g.T) == sinks[g.job])[:, None], g.ret, 0.0)  # the return, paid once the sink is placed
    best: tuple | None = None
    for episode in range(int(episodes)):
        if episode and time_limit is not None and time.perf_counter() - began >= time_limit:
            return Outcome(best[1], claimed=float(best[0][1]), status="time_limit",
                           extra={"episodes": episode, "learn": learn})
        disp = Dispatcher(instance)
        while disp.ready:
            late = time_limit is not None and time.perf_counter() - began >= time_limit
            if late and best is not None:  # drop the unfinished episode: the limit bounds the whole call
                return Outcome(best[1], claimed=float(best[0][1]), status="time_limit",
                               extra={"episodes": episode, "learn": learn})
            # past the limit in the first episode, finish it in the fixed order: one sub-task's arms per step
            ts = (np.flatnonzero(disp.is_ready) if learn == "joint" and not late else
                  np.array([min(disp.ready, key=lambda t: _arrival_key(disp, t))]))
            t_of, s_of = np.nonzero(g.ok[ts])
            t_of = ts[t_of]
            a_of = arm_row[t_of]
            n = count[a_of, s_of]
            untried = n == 0
            with np.errstate(divide="ignore", invalid="ignore"):
                index = mean[a_of, s_of] + delta * np.sqrt(np.log(np.maximum(pulls[agent[t_of]], 1)) / n)
            # every arm's slot and job latency at once (Dispatcher.slot and latency_if, vectorized); the cloud
            # (index N) has no queue
            st = np.maximum(disp.arrive[t_of, s_of], np.append(disp.tail, -np.inf)[s_of])
            en = st + g.dur[t_of, s_of]
            job = g.job[t_of]
            lat = np.maximum(disp.last[job], en) - np.minimum(disp.first[job], st) + sink_ret[t_of, s_of]
            fit = np.ones(len(n), dtype=bool) if disp.t_max is None else lat <= disp.t_max
            k = _ucb_choice(untried, fit, rng.random(len(n)), index)
            t, s, en, lat = int(t_of[k]), int(s_of[k]), float(en[k]), float(lat[k])
            ready_at = max((disp.finish[k] for k, _ in g.preds[t]), default=0.0)
            disp.place(t, s)
            cmax = g.cost[t][g.ok[t]].max()
            weighted = disp.gamma * (en - ready_at) / scale_t + (1 - disp.gamma) * (g.cost[t, s] / cmax if cmax else 0)
            slack = max(-1.0, min(1.0, (disp.t_max - lat) / disp.t_max)) if disp.t_max else 0.0
            reward = -weighted + lam * slack
            a = arm_row[t]
            count[a, s] += 1
            mean[a, s] += (reward - mean[a, s]) / count[a, s]
            pulls[agent[t]] += 1
        score = (not disp.feasible(), disp.objective())
        if best is None or score < best[0]:
            best = (score, disp.solution())
    return Outcome(best[1], claimed=float(best[0][1]), extra={"episodes": int(episodes), "learn": learn})


# --- baselines --------------------------------------------------------------------------------------

@register_policy("random", kind="baseline")
def random_policy(disp: Dispatcher, rng: np.random.Generator) -> tuple[int, int]:
    """A random ready sub-task (so a random topological order) on a random modality-feasible server."""
    ready = sorted(disp.ready)
    t = ready[int(rng.integers(len(ready)))]
    opts = disp.options(t)
    return t, opts[int(rng.integers(len(opts)))]


def _has_cloud(instance: Instance) -> str | None:
    return None if instance.data.cloud is not None else "needs a cloud (the instance has none)"


@method("dagsched", "all-cloud", "baseline", applies=_has_cloud)
def all_cloud(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Solution:
    """Every sub-task not fixed elsewhere runs on the cloud LLM."""
    disp = Dispatcher(instance)
    if disp.g.cloud is None:
        raise NotApplicable("needs a cloud (the instance has none)")
    while disp.ready:
        disp.place(min(disp.ready), disp.g.cloud)
    return disp.solution()


@register_policy("greedy-edge", kind="baseline")
def greedy_edge(disp: Dispatcher, rng: np.random.Generator) -> tuple[int, int]:
    """Stage by stage, each sub-task to the modality-feasible edge that frees first; the cloud when none."""
    t = min(disp.ready, key=lambda t: _arrival_key(disp, t))
    edges = [s for s in disp.options(t) if s != disp.g.cloud]
    if not edges:
        return t, disp.g.cloud
    return t, min(edges, key=lambda s: (disp.tail[s], s))
