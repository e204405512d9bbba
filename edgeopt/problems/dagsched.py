"""``dagsched`` — DAG sub-task offloading to modality-specific edge LLMs and a cloud LLM.

Jobs are DAGs of sub-tasks (decompose -> modular sub-tasks -> aggregate); every sub-task goes to an
edge server whose LLM supports its modality (one queue per edge) or to the unqueued multimodal cloud.
Minimize ``sum_i gamma*T_i + (1-gamma)*Cost_i`` subject to modality, precedence/queue order and
``T_i <= T_max``. See ``specs/dagsched.md``; figures of the presets are sourced in
``instances/dagsched/README.md``. Also here: the Kasahara STG importer (``edgeopt import stg``).

Servers are numbered ``0..N-1`` (edge servers, in ``data.servers`` order) and ``N`` (the cloud, if any);
sub-tasks are named ``[job, sub-task]`` by their indices.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from edgeopt import model
from edgeopt.model import Array, InputError, Model, check, check_shape
from edgeopt.registry import importer
from edgeopt.result import Evaluation

SENSE = "min"
PRESETS = {
    "paper": "the paper's five job families (section 5.1, Table 2): 3 modality edges + 10 GHz cloud, W=6 MHz, "
             "T_max=3 s (options bandwidth_mhz, t_max, gamma, mix=cycle|random)",
    "layered": "random layered DAGs of `tasks` sub-tasks per job (default 10) with the paper's servers and sizes",
    "heft": "the classic HEFT example (Topcuoglu et al. 2002): 10 tasks, 3 processors, HEFT makespan 80",
}
GIGA = 1e9
MAX_INDEX = 10_000_000  # jobs and sub-tasks per job
MIN_BPS, MAX_BPS = 1e-3, 1e15  # every link rate, given or from the radio model, bit/s
Index = Annotated[int, Field(ge=0, le=MAX_INDEX)]
SubTask = tuple[Index, Index]


class Task(Model):
    name: str = ""
    modality: str = Field(min_length=1, description="data modality; must be in the running server's modalities")
    cycles: float = Field(ge=0, le=1e18, description="C_ij, CPU cycles (0 <= x <= 1e18)")
    in_bits: float = Field(ge=0, le=1e15, description="D_ij, input uploaded from the job's device to the server, "
                                                      "bits (0 <= x <= 1e15)")
    out_bits: float = Field(ge=0, le=1e15, description="R_ij, output (sent to successors; the sink's returns to the "
                                                       "device), bits (0 <= x <= 1e15)")
    exec_s: Array(float, 1, ge=0, le=1e9) | None = Field(
        None, description="execution time per server (edges, then cloud), s (0 <= x <= 1e9); replaces cycles / f_hz")


class Edge(Model):
    src: Index = Field(description="predecessor sub-task index in the job (0 <= x <= 1e7)")
    dst: Index = Field(description="successor sub-task index in the job (0 <= x <= 1e7)")
    bits: float | None = Field(None, ge=0, le=1e15, description="data sent along this edge, bits (0 <= x <= 1e15; "
                                                               "default: src's out_bits)")


class Job(Model):
    name: str = ""
    tasks: list[Task] = Field(min_length=1)
    edges: list[Edge] = []


class Server(Model):
    name: str
    modalities: list[str] = Field(min_length=1)
    f_hz: float = Field(ge=1e-3, le=1e15, description="compute speed, cycles per second (1e-3 <= x <= 1e15)")
    price: float = Field(ge=0, le=1e6, description="lambda_n, $ per 1e9 cycles (0 <= x <= 1e6)")


class Cloud(Model):
    name: str = "cloud"
    f_hz: float = Field(ge=1e-3, le=1e15, description="cycles per second (1e-3 <= x <= 1e15)")
    price: float = Field(ge=0, le=1e6, description="$ per 1e9 cycles (0 <= x <= 1e6)")
    ul_bps: float = Field(ge=MIN_BPS, le=MAX_BPS, description="device -> cloud rate r_ul_c, bit/s (1e-3 <= x <= 1e15)")
    dl_bps: float = Field(ge=MIN_BPS, le=MAX_BPS, description="cloud -> device rate r_dl_c, bit/s (1e-3 <= x <= 1e15)")
    edge_bps: float = Field(ge=MIN_BPS, le=MAX_BPS, description="edge <-> cloud rate r_ec, bit/s (1e-3 <= x <= 1e15)")


class Radio(Model):
    """Shannon rates r = W log2(1 + P G / sigma^2) between each job's device and each edge server."""

    bandwidth_hz: float = Field(gt=0, le=1e12, description="W, Hz (0 < x <= 1e12)")
    device_power_w: float = Field(gt=0, le=1e6, description="P_d, W (0 < x <= 1e6)")
    server_power_w: Array(float, 1, gt=0, le=1e6) = Field(description="P_e per edge server, W (0 < x <= 1e6)")
    noise_dbm: float = Field(ge=-200, le=100, description="sigma^2 in dBm (-200 <= x <= 100)")
    gain: Array(float, 2, gt=0, le=1) = Field(description="channel power gain G, (jobs, edge servers) (0 < G <= 1)")

    def rates(self) -> tuple[np.ndarray, np.ndarray]:
        """(uplink, downlink) Shannon rates in bit/s, (jobs, edge servers)."""
        noise = _dbm_to_w(self.noise_dbm)
        return (self.bandwidth_hz * np.log2(1 + self.device_power_w * self.gain / noise),
                self.bandwidth_hz * np.log2(1 + self.server_power_w[None, :] * self.gain / noise))


class Rates(Model):
    ul_bps: Array(float, 2, ge=MIN_BPS, le=MAX_BPS) = Field(
        description="device -> edge uplink, (jobs, edge servers), bit/s (1e-3 <= x <= 1e15)")
    dl_bps: Array(float, 2, ge=MIN_BPS, le=MAX_BPS) = Field(
        description="edge -> device downlink, (jobs, edge servers), bit/s (1e-3 <= x <= 1e15)")


class Fixed(Model):
    """Sub-tasks already placed: each edge queue must start with its prefix; ``cloud`` must run on the cloud."""

    prefix: list[list[SubTask]] = Field([], description="per edge server, [job, sub-task] in run order "
                                                        "(indices 0 <= x <= 1e7)")
    cloud: list[SubTask] = []


class Data(Model):
    gamma: float = Field(ge=0, le=1, description="weight of latency against cost (0 <= x <= 1)")
    t_max_s: float | None = Field(None, gt=0, le=1e9, description="latency limit per job, s (0 < x <= 1e9; "
                                                                 "null: none)")
    edge_bps: float = Field(ge=MIN_BPS, le=MAX_BPS, description="edge <-> edge rate r_e, bit/s (1e-3 <= x <= 1e15)")
    servers: list[Server] = Field(description="edge servers, each with a queue")
    cloud: Cloud | None = None
    radio: Radio | None = None
    rates: Rates | None = None
    jobs: list[Job] = Field(min_length=1)
    fixed: Fixed | None = None

    @model_validator(mode="after")
    def _consistent(self):
        N, I = len(self.servers), len(self.jobs)
        S = N + (self.cloud is not None)
        check(S > 0, "data.servers", "must list at least one edge server when there is no cloud")
        if N:
            check((self.radio is None) != (self.rates is None), "data.rates",
                  "must be given, or else data.radio, but not both")
            if self.rates is not None:
                for f in ("ul_bps", "dl_bps"):
                    arr = getattr(self.rates, f)
                    check_shape(arr, (I, N), f"data.rates.{f}", "(jobs, edge servers)")
            else:
                r = self.radio
                check_shape(r.gain, (I, N), "data.radio.gain", "(jobs, edge servers)")
                check_shape(r.server_power_w, (N,), "data.radio.server_power_w", "(edge servers,)")
                for rate, way in zip(r.rates(), ("uplink", "downlink")):  # the rates must be in range too
                    check(rate >= MIN_BPS, "data.radio.gain", f"gives an {way} rate below {MIN_BPS:g} bit/s "
                                                              "(the SNR P G / sigma^2 is too low)")
        supported = set().union(*(s.modalities for s in self.servers)) if N else set()
        for i, job in enumerate(self.jobs):
            J = len(job.tasks)
            for j, t in enumerate(job.tasks):
                p = f"data.jobs[{i}].tasks[{j}]"
                if self.cloud is None and t.modality not in supported:
                    raise InputError(f"{p}.modality", f"{t.modality!r} is supported by no server")
                if t.exec_s is not None:
                    check_shape(t.exec_s, (S,), f"{p}.exec_s", "(servers incl. cloud,)")
            seen = set()
            for e, edge in enumerate(job.edges):
                for end in ("src", "dst"):
                    v = getattr(edge, end)
                    check(v < J, f"data.jobs[{i}].edges[{e}].{end}",
                          f"must be a sub-task index 0..{J - 1} of job {i}, got {v}")
                check(edge.src != edge.dst, f"data.jobs[{i}].edges[{e}]", "must join two different sub-tasks (cycle)")
                check((edge.src, edge.dst) not in seen, f"data.jobs[{i}].edges[{e}]",
                      f"repeats the edge {edge.src} -> {edge.dst}")
                seen.add((edge.src, edge.dst))
            order = _topological(J, [(e.src, e.dst) for e in job.edges])
            if len(order) < J:
                left = sorted(set(range(J)) - set(order))
                raise InputError(f"data.jobs[{i}].edges", f"must form an acyclic graph; sub-tasks {left} lie on "
                                                          "or behind a cycle")
            sinks = sorted(set(range(J)) - {e.src for e in job.edges})
            check(len(sinks) == 1, f"data.jobs[{i}]",
                  f"must have exactly one sink (sub-task without successors), got {len(sinks)}: {sinks}")
        if self.fixed is not None:
            self._check_fixed(N)
        return self

    def _check_fixed(self, N: int) -> None:
        fx = self.fixed
        check(len(fx.prefix) in (0, N), "data.fixed.prefix", f"must list one prefix per edge server ({N}) or none")
        check(self.cloud is not None or not fx.cloud, "data.fixed.cloud", "must be empty: the instance has no cloud")
        g = self.graph
        where: dict[int, int] = {}
        entries = [(f"data.fixed.prefix[{n}][{k}]", n, it) for n, q in enumerate(fx.prefix) for k, it in enumerate(q)]
        entries += [(f"data.fixed.cloud[{k}]", N, it) for k, it in enumerate(fx.cloud)]
        for path, n, (i, j) in entries:
            check(0 <= i < len(self.jobs) and 0 <= j < len(self.jobs[i].tasks), path,
                  f"must name an existing sub-task [job, sub-task], got [{i}, {j}]")
            t = g.index(i, j)
            check(t not in where, path, f"fixes sub-task [{i}, {j}] a second time")
            check(g.ok[t, n], path, f"puts sub-task [{i}, {j}] (modality {self.jobs[i].tasks[j].modality!r}) on "
                                    "a server that does not support it")
            where[t] = n
        for path, n, (i, j) in entries:
            for k, _ in g.preds[g.index(i, j)]:
                check(k in where, path, f"sub-task [{i}, {j}] has predecessor [{i}, {g.local[k]}] that is not fixed "
                                        "(fixed sub-tasks must include all their predecessors)")
        queues = [[g.index(i, j) for i, j in q] for q in fx.prefix]
        _, _, stuck = g.times(where, queues)
        if stuck:
            i, j = g.name(stuck[0])
            raise InputError("data.fixed.prefix", f"orders deadlock with the precedence constraints (sub-task "
                                                  f"[{i}, {j}] can never start)")

    @cached_property
    def graph(self) -> "Graph":
        return Graph.build(self)


def _topological(J: int, edges: list[tuple[int, int]]) -> list[int]:
    """Kahn's order, smallest index first; shorter than J when there is a cycle."""
    import heapq

    indeg = [0] * J
    succ: list[list[int]] = [[] for _ in range(J)]
    for a, b in edges:
        succ[a].append(b)
        indeg[b] += 1
    heap = [v for v in range(J) if indeg[v] == 0]
    heapq.heapify(heap)
    out = []
    while heap:
        v = heapq.heappop(heap)
        out.append(v)
        for w in succ[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                heapq.heappush(heap, w)
    return out


def _dbm_to_w(dbm: float) -> float:
    return 10 ** (dbm / 10) / 1000


@dataclass
class Graph:
    """All sub-tasks of all jobs flattened to indices ``t = 0..T-1``, with their times on every server.

    ``dur[t, s]`` is upload plus execution on server s; ``xfer(k, t, a, b)`` the transfer time of edge
    k -> t from server a to b; ``ret[t, s]`` the return of t's output to its device; ``ok[t, s]`` whether
    s supports t's modality. Built once per instance (``data.graph``) and shared by referee and methods.
    """

    N: int  # edge servers
    S: int  # servers incl. cloud
    cloud: int | None  # index of the cloud, or None
    offset: list[int]
    job: np.ndarray
    local: np.ndarray
    preds: list[list[tuple[int, float]]]  # (predecessor t, bits)
    succs: list[list[int]]
    order: list[int]  # a topological order of all sub-tasks (job by job)
    sink: list[int]  # per job
    entries: list[list[int]]  # per job: sub-tasks without predecessors
    dur: np.ndarray  # (T, S)
    cost: np.ndarray  # (T, S) $
    ret: np.ndarray  # (T, S) s, return to the device (used for sinks)
    ok: np.ndarray  # (T, S) bool
    inv: np.ndarray  # (S, S) seconds per bit between servers, 0 on the diagonal

    @classmethod
    def build(cls, d: Data) -> "Graph":
        N = len(d.servers)
        S = N + (d.cloud is not None)
        cloud = N if d.cloud is not None else None
        I = len(d.jobs)
        if N:
            ul, dl = (d.rates.ul_bps, d.rates.dl_bps) if d.rates is not None else d.radio.rates()
        else:
            ul = dl = np.zeros((I, 0))
        f = np.array([s.f_hz for s in d.servers] + ([d.cloud.f_hz] if d.cloud else []))
        price = np.array([s.price for s in d.servers] + ([d.cloud.price] if d.cloud else []))
        up = np.hstack([ul, np.full((I, S - N), d.cloud.ul_bps if d.cloud else 1.0)])  # (I, S)
        down = np.hstack([dl, np.full((I, S - N), d.cloud.dl_bps if d.cloud else 1.0)])
        offset, job, local, preds, succs, order, sink, entries = [], [], [], [], [], [], [], []
        dur, cost, ret, ok = [], [], [], []
        for i, jb in enumerate(d.jobs):
            base = len(job)
            offset.append(base)
            J = len(jb.tasks)
            p: list[list[tuple[int, float]]] = [[] for _ in range(J)]
            s: list[list[int]] = [[] for _ in range(J)]
            for e in jb.edges:
                bits = jb.tasks[e.src].out_bits if e.bits is None else e.bits
                p[e.dst].append((base + e.src, bits))
                s[e.src].append(base + e.dst)
            preds += p
            succs += s
            order += [base + v for v in _topological(J, [(e.src, e.dst) for e in jb.edges])]
            sink.append(base + next(v for v in range(J) if not s[v]))
            entries.append([base + v for v in range(J) if not p[v]])
            for j, t in enumerate(jb.tasks):
                job.append(i)
                local.append(j)
                run = t.exec_s if t.exec_s is not None else t.cycles / f
                dur.append(t.in_bits / up[i] + run)
                cost.append(t.cycles / GIGA * price)
                ret.append(t.out_bits / down[i])
                ok.append([t.modality in sv.modalities for sv in d.servers] + [True] * (S - N))
        inv = np.full((S, S), 1.0 / d.edge_bps)
        if cloud is not None:
            inv[cloud, :] = inv[:, cloud] = 1.0 / d.cloud.edge_bps
        np.fill_diagonal(inv, 0.0)
        return cls(N, S, cloud, offset, np.array(job), np.array(local), preds, succs, order, sink, entries,
                   np.array(dur).reshape(-1, S), np.array(cost).reshape(-1, S), np.array(ret).reshape(-1, S),
                   np.array(ok, dtype=bool).reshape(-1, S), inv)

    @property
    def T(self) -> int:
        return len(self.job)

    def index(self, i: int, j: int) -> int:
        return self.offset[i] + j

    def name(self, t: int) -> tuple[int, int]:
        return int(self.job[t]), int(self.local[t])

    def times(self, where: dict[int, int], queues: list[list[int]]):
        """Start and finish of every placed sub-task under the spec's timing rules.

        ``where[t]`` is t's server, ``queues[n]`` edge n's run order. A sub-task starts when the data of
        all its predecessors has arrived and (on an edge) the one before it in the queue has finished.
        Returns (start, finish, stuck): ``stuck`` lists the sub-tasks that can never start because
        queue order and precedence form a cycle (then their times are NaN).
        """
        start = np.full(self.T, np.nan)
        finish = np.full(self.T, np.nan)
        before: dict[int, int] = {}
        for q in queues:
            for a, b in zip(q, q[1:]):
                before[b] = a
        waits = {t: len(self.preds[t]) + (t in before) for t in where}
        after = {a: b for b, a in before.items()}
        ready = [t for t, w in waits.items() if w == 0]
        while ready:
            t = ready.pop()
            n = where[t]
            st = 0.0
            for k, bits in self.preds[t]:
                st = max(st, finish[k] + bits * self.inv[where[k], n])
            if t in before:
                st = max(st, finish[before[t]])
            start[t], finish[t] = st, st + self.dur[t, n]
            for w in self.succs[t] + ([after[t]] if t in after else []):
                if w in waits:
                    waits[w] -= 1
                    if waits[w] == 0:
                        ready.append(w)
        stuck = sorted(t for t in where if np.isnan(finish[t]))
        return start, finish, stuck


class Instance(model.Instance):
    problem = "dagsched"
    data: Data


class Solution(Model):
    order: list[list[SubTask]] = Field(description="per edge server, its [job, sub-task] in run order "
                                                   "(indices 0 <= x <= 1e7)")
    cloud: list[SubTask] = Field([], description="[job, sub-task] sent to the cloud (indices 0 <= x <= 1e7)")


def placement(instance: Instance, solution: Solution) -> tuple[dict[int, int], list[list[int]]]:
    """The solution as (server of every sub-task, edge queues of sub-task indices); InputError if malformed."""
    d, g = instance.data, instance.data.graph
    if len(solution.order) != g.N:
        raise InputError("solution.order", f"must list one queue per edge server ({g.N}), got {len(solution.order)}")
    if solution.cloud and g.cloud is None:
        raise InputError("solution.cloud", "must be empty: the instance has no cloud")
    where: dict[int, int] = {}
    items = [(f"solution.order[{n}][{k}]", n, it) for n, q in enumerate(solution.order) for k, it in enumerate(q)]
    items += [(f"solution.cloud[{k}]", g.cloud, it) for k, it in enumerate(solution.cloud)]
    for path, n, (i, j) in items:
        if not (0 <= i < len(d.jobs) and 0 <= j < len(d.jobs[i].tasks)):
            raise InputError(path, f"must name an existing sub-task [job, sub-task], got [{i}, {j}]")
        t = g.index(i, j)
        if t in where:
            raise InputError(path, f"places sub-task [{i}, {j}] a second time")
        where[t] = n
    if len(where) < g.T:
        i, j = g.name(next(t for t in range(g.T) if t not in where))
        raise InputError("solution", f"must place every sub-task; [{i}, {j}] is in no edge queue and not on the cloud")
    return where, [[g.index(i, j) for i, j in q] for q in solution.order]


def evaluate(instance: Instance, solution: Solution) -> Evaluation:
    """The referee: derives every start and finish from the placement and queue orders (spec "Timing")."""
    d, g = instance.data, instance.data.graph
    where, queues = placement(instance, solution)
    names = [s.name for s in d.servers] + ([d.cloud.name] if d.cloud else [])

    def who(t: int) -> str:
        i, j = g.name(t)
        nm = d.jobs[i].tasks[j].name
        return f"job {i} sub-task {j}" + (f" ({nm})" if nm else "")

    violations = []
    for t in range(g.T):
        if not g.ok[t, where[t]]:
            i, j = g.name(t)
            violations.append(f"{who(t)}: modality {d.jobs[i].tasks[j].modality!r} is not supported by server "
                              f"{where[t]} ({names[where[t]]})")
    if d.fixed is not None:
        for n, pre in enumerate(d.fixed.prefix):
            got = [g.name(t) for t in queues[n][:len(pre)]]
            if got != [tuple(x) for x in pre]:
                violations.append(f"edge server {n} ({names[n]}): queue must start with the fixed prefix "
                                  f"{[list(x) for x in pre]}, got {[list(x) for x in got]}")
        for i, j in d.fixed.cloud:
            if where[g.index(i, j)] != g.cloud:
                violations.append(f"{who(g.index(i, j))}: fixed on the cloud, placed on server {where[g.index(i, j)]}")
    ancestors_done = set()
    for n, q in enumerate(queues):
        pos = {t: k for k, t in enumerate(q)}
        for t in q:  # a sub-task queued before its own predecessor on the same edge
            for k, _ in g.preds[t]:
                if k in pos and pos[k] > pos[t]:
                    violations.append(f"{who(t)}: queued on edge server {n} ({names[n]}) before its predecessor "
                                      f"sub-task {g.local[k]}")
                    ancestors_done.add(t)
    start, finish, stuck = g.times(where, queues)
    if stuck:
        if not ancestors_done:
            violations.append("precedence: the edge queue orders and the job DAGs form a cycle; these sub-tasks can "
                              f"never start: {[list(g.name(t)) for t in stuck]}")
        return Evaluation(objective=None, feasible=False, violations=violations,
                          details={"stuck": [list(g.name(t)) for t in stuck]})
    T_s, cost = [], []
    for i, jb in enumerate(d.jobs):
        ts = range(g.offset[i], g.offset[i] + len(jb.tasks))
        sink = g.sink[i]
        lat = max(finish[t] for t in ts) - min(start[t] for t in ts) + g.ret[sink, where[sink]]
        T_s.append(float(lat))
        cost.append(float(sum(g.cost[t, where[t]] for t in ts)))
        if d.t_max_s is not None and lat > d.t_max_s * (1 + 1e-9):
            violations.append(f"job {i}: latency T = {lat:.6g} s exceeds T_max = {d.t_max_s:g} s")
    objective = float(sum(d.gamma * a + (1 - d.gamma) * c for a, c in zip(T_s, cost)))
    per_task = [[[float(start[t]), float(finish[t])] for t in range(g.offset[i], g.offset[i] + len(jb.tasks))]
                for i, jb in enumerate(d.jobs)]
    details = {"T_s": T_s, "cost": cost, "makespan_s": float(np.max(finish)),
               "on_cloud": sum(1 for t in range(g.T) if where[t] == g.cloud), "start_finish": per_task}
    return Evaluation(objective=objective, feasible=not violations, violations=violations, details=details)


# --- generator ------------------------------------------------------------------------------------
# The paper's figures (section 5.1, Table 2); sources in instances/dagsched/README.md.
_EDGES = [("text-llm", "text", 2.0e9), ("image-llm", "image", 2.3e9), ("audio-llm", "audio", 2.5e9)]
_CLOUD = {"name": "cloud-llm", "f_hz": 10e9, "price": 0.03, "ul_bps": 3e6, "dl_bps": 12e6, "edge_bps": 12e6}
_EDGE_PRICE, _R_E = 0.01, 22e6
_P_D, _P_E, _NOISE_DBM = 0.3, 0.8, -43.0
_CYCLES_PER_BIT = 1900.0
_IN_BITS = {"text": (1e3, 3e3), "image": (0.1e6, 0.3e6), "audio": (0.2e6, 0.4e6), "multimodal": (0.3e6, 0.6e6)}
_OUT_BITS = {"text": (1e3, 3e3), "image": (2e3, 4e3), "audio": (3e3, 5e3), "multimodal": (2e3, 6e3)}
# Channel gain (not given in the paper): 3GPP TR 38.901 indoor-factory line-of-sight path loss
# PL = 31.84 + 21.50 log10(d / m) + 19.00 log10(fc / GHz) dB at fc = 3.5 GHz, d ~ U[10, 50] m, no shadowing.
_FC_GHZ, _D_RANGE_M = 3.5, (10.0, 50.0)

# The five job families: (name, [(sub-task name, modality)], edges). Stage 1 decomposes the request
# (text), stage 2 runs the modular sub-tasks, stage 3 aggregates the answer (text, the sink).
FAMILIES = {
    "text-analysis": ([("decompose", "text"), ("extract", "text"), ("analyze", "text"), ("aggregate", "text")],
                      [(0, 1), (1, 2), (2, 3)]),
    "image-analysis": ([("decompose", "text"), ("detect", "image"), ("segment", "image"), ("classify", "image"),
                        ("aggregate", "text")], [(0, 1), (0, 2), (0, 3), (1, 4), (2, 4), (3, 4)]),
    "audio-analysis": ([("decompose", "text"), ("transcribe", "audio"), ("events", "audio"), ("aggregate", "text")],
                       [(0, 1), (0, 2), (1, 3), (2, 3)]),
    "visual-qa": ([("decompose", "text"), ("image-features", "image"), ("question", "text"), ("fuse", "multimodal"),
                   ("aggregate", "text")], [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)]),
    "audio-text": ([("decompose", "text"), ("transcribe", "audio"), ("audio-events", "audio"), ("context", "text"),
                    ("fuse", "multimodal"), ("aggregate", "text")],
                   [(0, 1), (0, 2), (0, 3), (1, 4), (2, 4), (3, 4), (4, 5)]),
}
_MODALITIES = ("text", "image", "audio", "multimodal")

# Topcuoglu, Hariri, Wu, IEEE TPDS 13(3) 2002, Fig. 2 (via mackncheesiest/heft, commit 0996e5b, the
# canonicalgraph_*.csv files): execution time of task k on processor p, and edge communication costs.
HEFT_EXEC = [[14, 16, 9], [13, 19, 18], [11, 13, 19], [13, 8, 17], [12, 13, 10], [13, 16, 9], [7, 15, 11],
             [5, 11, 14], [18, 12, 20], [21, 7, 16]]
HEFT_EDGES = [(0, 1, 18), (0, 2, 12), (0, 3, 9), (0, 4, 11), (0, 5, 14), (1, 7, 19), (1, 8, 16), (2, 6, 23),
              (3, 7, 27), (3, 8, 23), (4, 8, 13), (5, 7, 15), (6, 9, 17), (7, 9, 11), (8, 9, 13)]


def _task(name: str, modality: str, rng: np.random.Generator) -> dict:
    d_in = float(round(rng.uniform(*_IN_BITS[modality])))
    return {"name": name, "modality": modality, "cycles": _CYCLES_PER_BIT * d_in, "in_bits": d_in,
            "out_bits": float(round(rng.uniform(*_OUT_BITS[modality])))}


def _family_job(family: str, rng: np.random.Generator) -> dict:
    tasks, edges = FAMILIES[family]
    return {"name": family, "tasks": [_task(n, m, rng) for n, m in tasks],
            "edges": [{"src": a, "dst": b} for a, b in edges]}


def _layered_job(k: int, n_tasks: int, rng: np.random.Generator) -> dict:
    """decompose (text) -> layers of random-modality sub-tasks, each fed by 1-2 earlier ones -> aggregate (text)."""
    mids = n_tasks - 2
    width = max(1, int(round(math.sqrt(mids)))) if mids else 0
    tasks = [_task("decompose", "text", rng)]
    edges: set[tuple[int, int]] = set()
    layer_of = [0]
    for v in range(1, n_tasks - 1):
        layer = 1 + (v - 1) // width
        tasks.append(_task(f"sub{v}", str(rng.choice(_MODALITIES)), rng))
        layer_of.append(layer)
        earlier = [u for u in range(v) if layer_of[u] == layer - 1]
        for u in rng.choice(earlier, size=min(len(earlier), int(rng.integers(1, 3))), replace=False):
            edges.add((int(u), v))
    if n_tasks > 1:
        tasks.append(_task("aggregate", "text", rng))
        sink = n_tasks - 1
        has_succ = {a for a, _ in edges}
        edges |= {(u, sink) for u in range(sink) if u not in has_succ}
    return {"name": f"layered{k}", "tasks": tasks, "edges": [{"src": a, "dst": b} for a, b in sorted(edges)]}


def _paper_data(jobs: list[dict], bandwidth_mhz: float, t_max: float | None, gamma: float,
                rng: np.random.Generator) -> tuple[dict, dict]:
    I, N = len(jobs), len(_EDGES)
    dist = rng.uniform(*_D_RANGE_M, size=(I, N))
    pl_db = 31.84 + 21.50 * np.log10(dist) + 19.00 * np.log10(_FC_GHZ)
    gain = 10 ** (-pl_db / 10)
    data = {
        "gamma": gamma, "t_max_s": t_max, "edge_bps": _R_E,
        "servers": [{"name": n, "modalities": [m], "f_hz": f, "price": _EDGE_PRICE} for n, m, f in _EDGES],
        "cloud": dict(_CLOUD),
        "radio": {"bandwidth_hz": bandwidth_mhz * 1e6, "device_power_w": _P_D, "server_power_w": [_P_E] * N,
                  "noise_dbm": _NOISE_DBM, "gain": gain.tolist()},
        "jobs": jobs,
    }
    channel = {"path_loss": "3GPP TR 38.901 InF-LOS: PL = 31.84 + 21.50 log10(d/m) + 19.00 log10(fc/GHz) dB, "
                            "no shadowing", "fc_ghz": _FC_GHZ, "distance_m_range": list(_D_RANGE_M),
               "distance_m": np.round(dist, 3).tolist()}
    return data, channel


def _heft_data() -> dict:
    P = 3
    return {
        "gamma": 1.0, "t_max_s": None, "edge_bps": 1.0,
        "servers": [{"name": f"P{p + 1}", "modalities": ["any"], "f_hz": 1.0, "price": 0.0} for p in range(P)],
        "rates": {"ul_bps": [[1.0] * P], "dl_bps": [[1.0] * P]},
        "jobs": [{"name": "topcuoglu-fig2",
                  "tasks": [{"name": f"n{k + 1}", "modality": "any", "cycles": 0.0, "in_bits": 0.0, "out_bits": 0.0,
                             "exec_s": [float(x) for x in row]} for k, row in enumerate(HEFT_EXEC)],
                  "edges": [{"src": a, "dst": b, "bits": float(c)} for a, b, c in HEFT_EDGES]}],
    }


def generate(preset: str = "paper", size: int | None = None, seed: int = 0, bandwidth_mhz: float = 6.0,
             t_max: float | None = 3.0, gamma: float = 0.5, mix: str = "cycle", tasks: int = 10) -> Instance:
    """An instance of ``preset`` with ``size`` jobs (default 5: one job of each family).

    Options (paper, layered): ``bandwidth_mhz`` (W; the paper sweeps 5, 5.5, 6), ``t_max`` (s; 2.5, 2.8,
    3.0; null for none), ``gamma``; ``mix`` = cycle (job i is family i mod 5) or random (paper);
    ``tasks`` sub-tasks per job (layered). Sizes are drawn as in section 5.1; the channel gain from the
    path-loss model recorded in ``meta.channel``.
    """
    if preset == "heft":
        if size not in (None, 1):
            raise InputError("--size", "must be 1 for the heft preset (one fixed job)")
        meta = {"generator": "edgeopt.problems.dagsched.generate", "preset": preset, "size": 1, "seed": seed,
                "source": "Topcuoglu, Hariri, Wu, IEEE TPDS 13(3) 2002, Fig. 2; tables from mackncheesiest/heft "
                          "(commit 0996e5b13b5a20f3f3d189a1b0e85c093a543f6b)", "heft_makespan": 80,
                "cpop_makespan": 86}
        return Instance(name="heft-topcuoglu", meta=meta, data=Data.model_validate(_heft_data()))
    n = 5 if size is None else int(size)
    if n < 1:
        raise InputError("--size", "must be >= 1 (jobs)")
    if mix not in ("cycle", "random"):
        raise InputError("mix", f"must be cycle or random, got {mix!r}")
    if int(tasks) < 1:
        raise InputError("tasks", "must be >= 1")
    if bandwidth_mhz <= 0:
        raise InputError("bandwidth_mhz", "must be > 0")
    rng = np.random.default_rng(seed)
    names = list(FAMILIES)
    if preset == "paper":
        fams = [names[i % 5] for i in range(n)] if mix == "cycle" else [str(x) for x in rng.choice(names, size=n)]
        jobs = [_family_job(f, rng) for f in fams]
    else:
        jobs = [_layered_job(k, int(tasks), rng) for k in range(n)]
    data, channel = _paper_data(jobs, float(bandwidth_mhz), t_max, float(gamma), rng)
    opts = {"bandwidth_mhz": bandwidth_mhz, "t_max": t_max, "gamma": gamma, "mix": mix}
    if preset == "layered":
        opts["tasks"] = int(tasks)
    meta = {"generator": "edgeopt.problems.dagsched.generate", "preset": preset, "size": n, "seed": seed,
            "options": opts, "channel": channel}
    name = (f"{preset}-j{n}" + (f"-t{int(tasks)}" if preset == "layered" else "") + ("-random" if mix == "random" else "")
            + f"-w{bandwidth_mhz:g}" + (f"-tmax{t_max:g}" if t_max else "") + (f"-g{gamma:g}" if gamma != 0.5 else "")
            + f"-s{seed}")
    return Instance(name=name, meta=meta, data=Data.model_validate(data))


def small_instance(seed: int) -> Instance:
    """Two random paper-family jobs (4-6 sub-tasks each), 3 edges + cloud: the MILP proves it in about a second."""
    return generate("paper", size=2, seed=seed, mix="random")


# --- Kasahara Standard Task Graph importer ---------------------------------------------------------

@importer("stg", "dagsched")
def import_stg(path: str, processors: int = 4) -> Instance:
    """Kasahara STG task graph -> one job on ``processors`` identical processors, no cloud, gamma = 1.

    Format: first line n (real tasks); then n + 2 lines ``id cost npred pred...`` for tasks 0..n+1,
    where 0 and n+1 are the zero-cost dummy entry and exit. Both are kept as zero-work sub-tasks; the
    exit is the job's single sink. Costs are execution times (cycles on 1 Hz processors); there are
    no communication costs, so the objective is the makespan. Lines starting with ``#`` are skipped.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), "does not exist (expected an STG file)")
    if int(processors) < 1:
        raise InputError("--processors", f"must be >= 1, got {processors}")
    lines = [(k + 1, ln.split()) for k, ln in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines())]
    lines = [(k, toks) for k, toks in lines if toks and not toks[0].startswith("#")]
    try:
        if not lines:
            raise ValueError("is empty")
        n = int(lines[0][1][0])
        if n < 0:
            raise ValueError("task count must be >= 0")
        if len(lines) < n + 3:
            raise ValueError(f"declares {n} tasks but has {len(lines) - 1} task lines (need n + 2 = {n + 2})")
    except ValueError as exc:
        raise InputError(f"{p}: line {lines[0][0] if lines else 1}", f"must start with the task count n ({exc})") from None
    tasks, edges = [], []
    for expect, (lineno, toks) in enumerate(lines[1:n + 3]):
        where = f"{p}: line {lineno}"
        try:
            vals = [int(x) for x in toks]
        except ValueError:
            raise InputError(where, "must be integers: id cost npred pred...") from None
        if len(vals) < 3 or len(vals) != 3 + vals[2]:
            raise InputError(where, "must be `id cost npred pred1 ... pred_npred`")
        tid, cost, _, *preds = vals
        if tid != expect:
            raise InputError(where, f"task id must be {expect} (tasks numbered 0..{n + 1} in order), got {tid}")
        if cost < 0:
            raise InputError(where, f"cost must be >= 0, got {cost}")
        if tid in (0, n + 1) and cost != 0:
            raise InputError(where, f"dummy {'entry' if tid == 0 else 'exit'} task must have cost 0, got {cost}")
        for q in preds:
            if not 0 <= q <= n + 1:
                raise InputError(where, f"predecessor {q} is not a task 0..{n + 1}")
            edges.append({"src": q, "dst": tid})
        tasks.append({"name": "entry" if tid == 0 else "exit" if tid == n + 1 else f"t{tid}", "modality": "any",
                      "cycles": float(cost), "in_bits": 0.0, "out_bits": 0.0})
    P = int(processors)
    data = {"gamma": 1.0, "t_max_s": None, "edge_bps": 1.0,
            "servers": [{"name": f"p{k}", "modalities": ["any"], "f_hz": 1.0, "price": 0.0} for k in range(P)],
            "rates": {"ul_bps": [[1.0] * P], "dl_bps": [[1.0] * P]},
            "jobs": [{"name": p.stem, "tasks": tasks, "edges": edges}]}
    from edgeopt.model import validation_error
    from pydantic import ValidationError

    try:
        d = Data.model_validate(data)
    except ValidationError as exc:
        err = validation_error(exc, "data")
        raise InputError(f"{p}: {err.path}", err.rule) from None
    meta = {"importer": "stg", "source": p.name, "processors": P, "tasks": n}
    return Instance(name=f"stg-{p.stem}-p{P}", meta=meta, data=d)
