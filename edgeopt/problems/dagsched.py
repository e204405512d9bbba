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
from itertools import chain, repeat
from operator import is_not
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from edgeopt import model
from edgeopt import limits
from edgeopt.model import (Array, ColumnStore, InputError, Model, NotPlain, check, check_shape, plain_columns,
                           plain_floats, plain_indices)
from edgeopt.registry import importer
from edgeopt.result import Evaluation

SENSE = "min"
PRESETS = {
    "paper": "the paper's five job families (section 5.1, Table 2): 3 modality edges + 10 GHz cloud, W=6 MHz, "
             "T_max=3 s (options bandwidth_mhz, t_max, gamma, mix=cycle|random)",
    "edge-share": "the paper preset with gamma = 0.03, just below the break-even weight at which a median-channel "
                  "edge ties the cloud, so the edges win a share of the sub-tasks (the paper's own gamma range [0, 1])",
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


class Jobs(ColumnStore):
    """``data.jobs``: every job's sub-tasks and edges as flat columns (a 1,000-job file holds ~10,000 of
    them; see ColumnStore), read by the graph, the referee and the methods; the DAG rules are checked in
    whole-array operations too (``consistent``)."""

    model = Job

    def __init__(self, jobs: list):
        """``jobs``: JSON-shaped dicts, checked (NotPlain unless plainly valid)."""
        if type(jobs) is not list or not jobs:
            raise NotPlain
        job = plain_columns(jobs, ("tasks",), {"name": "", "edges": []})
        per_job, edges_per, self.names = job["tasks"], job["edges"], job["name"]
        if ({type(x) for x in per_job} | {type(x) for x in edges_per}) != {list} or \
                not set(map(type, self.names)) <= {str}:
            raise NotPlain
        self.sizes = [len(x) for x in per_job]
        if min(self.sizes) < 1:
            raise NotPlain
        tasks, edges = list(chain.from_iterable(per_job)), list(chain.from_iterable(edges_per))
        task = plain_columns(tasks, ("modality", "cycles", "in_bits", "out_bits"), {"name": "", "exec_s": None})
        edge = plain_columns(edges, ("src", "dst"), {"bits": None})
        self.modality, self.task_names = task["modality"], task["name"]
        if not (set(map(type, self.modality)) <= {str} and all(self.modality)
                and set(map(type, self.task_names)) <= {str}):
            raise NotPlain
        self.cycles = plain_floats(task["cycles"], 0, 1e18)
        self.in_bits = plain_floats(task["in_bits"], 0, 1e15)
        self.out_bits = plain_floats(task["out_bits"], 0, 1e15)
        self.src, self.dst = plain_indices(edge["src"], MAX_INDEX), plain_indices(edge["dst"], MAX_INDEX)
        exec_s = task["exec_s"]
        self.exec_s: list | None = None  # per sub-task, its execution time per server or None; None: none given
        if not set(map(type, exec_s)) <= {type(None), list}:
            raise NotPlain
        if exec_s.count(None) < len(exec_s):
            given = [x for x in exec_s if x is not None]
            flat = plain_floats(list(chain.from_iterable(given)), 0, 1e9)
            rows = iter(np.split(flat, np.cumsum([len(x) for x in given])[:-1]))
            self.exec_s = [None if x is None else next(rows) for x in exec_s]
        bits = edge["bits"]
        self.bits = np.full(len(edges), np.nan)  # NaN: the source's out_bits
        if bits.count(None) < len(bits):
            given = np.fromiter(map(is_not, bits, repeat(None)), dtype=bool, count=len(bits))
            self.bits[given] = plain_floats([b for b in bits if b is not None], 0, 1e15)
        self.offset = np.concatenate([[0], np.cumsum(self.sizes)])
        self.edge_offset = np.concatenate([[0], np.cumsum([len(x) for x in edges_per])])
        self.task_job = np.repeat(np.arange(len(jobs)), self.sizes)
        self.edge_job = np.repeat(np.arange(len(jobs)), np.diff(self.edge_offset))
        self._made = [None] * len(jobs)

    @property
    def T(self) -> int:
        return len(self.task_job)

    def _make(self, i: int) -> Job:
        a, b = self.offset[i], self.offset[i + 1]
        ea, eb = self.edge_offset[i], self.edge_offset[i + 1]
        tasks = [Task.model_construct(name=self.task_names[t], modality=self.modality[t], cycles=c, in_bits=u,
                                      out_bits=o, exec_s=None if self.exec_s is None else self.exec_s[t])
                 for t, c, u, o in zip(range(a, b), self.cycles[a:b].tolist(), self.in_bits[a:b].tolist(),
                                       self.out_bits[a:b].tolist())]
        edges = [Edge.model_construct(src=s, dst=d, bits=None if math.isnan(w) else w)
                 for s, d, w in zip(self.src[ea:eb].tolist(), self.dst[ea:eb].tolist(), self.bits[ea:eb].tolist())]
        return Job.model_construct(name=self.names[i], tasks=tasks, edges=edges)

    def consistent(self, servers: int, supported: set | None) -> bool:
        """Whether every job is a well-formed DAG on these servers, in whole-column operations.

        ``supported``: the modalities some server runs, or None when the cloud runs every one.
        """
        if supported is not None and not set(self.modality) <= supported:
            return False
        if self.exec_s is not None and any(x is not None and len(x) != servers for x in self.exec_s):
            return False
        size = np.asarray(self.sizes)[self.edge_job]
        if not ((self.src < size).all() and (self.dst < size).all() and (self.src != self.dst).all()):
            return False
        base = self.offset[self.edge_job]
        if np.unique((base + self.src) * self.T + base + self.dst).size < len(self.src):
            return False  # a repeated edge
        if len(self.backward_jobs) and any(len(self.order(i)) < self.sizes[i] for i in self.backward_jobs):
            return False  # a cycle
        has_out = np.zeros(self.T, dtype=bool)
        has_out[base + self.src] = True
        return bool((np.bincount(self.task_job[~has_out], minlength=len(self)) == 1).all())

    @cached_property
    def backward_jobs(self) -> np.ndarray:
        """Jobs with an edge from a higher to a lower sub-task index: only these need a topological sort."""
        return np.unique(self.edge_job[self.src >= self.dst])

    def order(self, i: int) -> list[int]:
        """Job i's sub-tasks in Kahn's order, smallest index first (0..J-1 when every edge points forward)."""
        ea, eb = self.edge_offset[i], self.edge_offset[i + 1]
        return _topological(self.sizes[i], list(zip(self.src[ea:eb].tolist(), self.dst[ea:eb].tolist())))


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

    @cached_property
    def rates(self) -> tuple[np.ndarray, np.ndarray]:
        """(uplink, downlink) Shannon rates in bit/s, (jobs, edge servers); checked by Data, used by Graph."""
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
    jobs: Jobs = Field(description="the jobs, each a DAG of sub-tasks (at least one)")
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
                for rate, way in zip(r.rates, ("uplink", "downlink")):  # the rates must be in range too
                    check(rate >= MIN_BPS, "data.radio.gain", f"gives an {way} rate below {MIN_BPS:g} bit/s "
                                                              "(the SNR P G / sigma^2 is too low)")
        supported = set().union(*(s.modalities for s in self.servers)) if N else set()
        if not self.jobs.consistent(S, None if self.cloud is not None else supported):
            self._explain_jobs(S, supported)
        if self.fixed is not None:
            self._check_fixed(N)
        return self

    def _explain_jobs(self, S: int, supported: set) -> None:
        """Raise the first inconsistency in the jobs, job by job, with its path (the columns found one)."""
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
        raise AssertionError("the column check and the job-by-job check of data.jobs disagree")

    def _check_fixed(self, N: int) -> None:
        fx = self.fixed
        check(len(fx.prefix) in (0, N), "data.fixed.prefix", f"must list one prefix per edge server ({N}) or none")
        check(self.cloud is not None or not fx.cloud, "data.fixed.cloud", "must be empty: the instance has no cloud")
        g = self.graph
        where: dict[int, int] = {}
        entries = [(f"data.fixed.prefix[{n}][{k}]", n, it) for n, q in enumerate(fx.prefix) for k, it in enumerate(q)]
        entries += [(f"data.fixed.cloud[{k}]", N, it) for k, it in enumerate(fx.cloud)]
        for path, n, (i, j) in entries:
            check(0 <= i < len(self.jobs) and 0 <= j < self.jobs.sizes[i], path,
                  f"must name an existing sub-task [job, sub-task], got [{i}, {j}]")
            t = g.index(i, j)
            check(t not in where, path, f"fixes sub-task [{i}, {j}] a second time")
            check(g.ok[t, n], path, f"puts sub-task [{i}, {j}] (modality {self.jobs.modality[t]!r}) on "
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
            ul, dl = (d.rates.ul_bps, d.rates.dl_bps) if d.rates is not None else d.radio.rates
        else:
            ul = dl = np.zeros((I, 0))
        f = np.array([s.f_hz for s in d.servers] + ([d.cloud.f_hz] if d.cloud else []))
        price = np.array([s.price for s in d.servers] + ([d.cloud.price] if d.cloud else []))
        up = np.hstack([ul, np.full((I, S - N), d.cloud.ul_bps if d.cloud else 1.0)])  # (I, S)
        down = np.hstack([dl, np.full((I, S - N), d.cloud.dl_bps if d.cloud else 1.0)])
        jobs, T = d.jobs, d.jobs.T
        job = jobs.task_job
        offset = jobs.offset[:-1].tolist()
        base = jobs.offset[jobs.edge_job]
        src, dst = (base + jobs.src).tolist(), (base + jobs.dst).tolist()
        bits = np.where(np.isnan(jobs.bits), jobs.out_bits[base + jobs.src], jobs.bits).tolist()
        preds: list[list[tuple[int, float]]] = [[] for _ in range(T)]
        succs: list[list[int]] = [[] for _ in range(T)]
        for a, b, w in zip(src, dst, bits):
            preds[b].append((a, w))
            succs[a].append(b)
        order = list(range(T))
        for i in jobs.backward_jobs.tolist():
            order[offset[i]:offset[i] + jobs.sizes[i]] = [offset[i] + v for v in jobs.order(i)]
        sink = [t for t in range(T) if not succs[t]]  # one per job, in job order
        firsts = [t for t in range(T) if not preds[t]]
        entries = [x.tolist() for x in np.split(np.array(firsts, dtype=int), np.searchsorted(firsts, offset[1:]))]
        run = jobs.cycles[:, None] / f
        if jobs.exec_s is not None:
            given = [t for t, x in enumerate(jobs.exec_s) if x is not None]
            run[given] = [jobs.exec_s[t] for t in given]
        modalities = {m: [m in sv.modalities for sv in d.servers] + [True] * (S - N) for m in set(jobs.modality)}
        ok = np.array([modalities[m] for m in jobs.modality], dtype=bool).reshape(-1, S)
        dur = jobs.in_bits[:, None] / up[job] + run
        cost = jobs.cycles[:, None] / GIGA * price
        ret = jobs.out_bits[:, None] / down[job]
        inv = np.full((S, S), 1.0 / d.edge_bps)
        if cloud is not None:
            inv[cloud, :] = inv[:, cloud] = 1.0 / d.cloud.edge_bps
        np.fill_diagonal(inv, 0.0)
        return cls(N, S, cloud, offset, job, np.arange(T) - jobs.offset[job], preds, succs, order, sink, entries,
                   dur, cost, ret, ok, inv)

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
        if not (0 <= i < len(d.jobs) and 0 <= j < d.jobs.sizes[i]):
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
        nm = d.jobs.task_names[t]
        return f"job {i} sub-task {j}" + (f" ({nm})" if nm else "")

    violations = []
    for t in range(g.T):
        if not g.ok[t, where[t]]:
            i, j = g.name(t)
            violations.append(f"{who(t)}: modality {d.jobs.modality[t]!r} is not supported by server "
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
    for i, size in enumerate(d.jobs.sizes):
        ts = range(g.offset[i], g.offset[i] + size)
        sink = g.sink[i]
        lat = max(finish[t] for t in ts) - min(start[t] for t in ts) + g.ret[sink, where[sink]]
        T_s.append(float(lat))
        cost.append(float(sum(g.cost[t, where[t]] for t in ts)))
        if d.t_max_s is not None and lat > d.t_max_s * (1 + 1e-9):
            violations.append(f"job {i}: latency T = {lat:.6g} s exceeds T_max = {d.t_max_s:g} s")
    objective = float(sum(d.gamma * a + (1 - d.gamma) * c for a, c in zip(T_s, cost)))
    per_task = [[[float(start[t]), float(finish[t])] for t in range(g.offset[i], g.offset[i] + size)]
                for i, size in enumerate(d.jobs.sizes)]
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
# gamma of each preset. With the paper's figures the cloud is faster per input bit than every edge for any
# channel (upload 1/3e6 + 1900/10e9 = 0.52 us, edge compute alone 1900/2.5e9 = 0.76 us and more), so at
# gamma = 0.5 an edge wins only off a job's critical path. The edge is cheaper by 1900 * (0.03 - 0.01) / 1e9
# = 3.8e-8 $ per bit; at a median channel (30 m: 1.9 Mbit/s at W = 6 MHz) it is slower by 0.76-0.95 us per bit,
# so it ties the cloud at gamma / (1 - gamma) = 3.8e-8 / 0.8e-6, gamma ~ 0.045. edge-share sits below that.
_GAMMA = {"paper": 0.5, "edge-share": 0.03, "layered": 0.5}

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
             t_max: float | None = 3.0, gamma: float | None = None, mix: str = "cycle", tasks: int = 10) -> Instance:
    """An instance of ``preset`` with ``size`` jobs (default 5: one job of each family).

    Options (paper, edge-share, layered): ``bandwidth_mhz`` (W; the paper sweeps 5, 5.5, 6), ``t_max`` (s;
    2.5, 2.8, 3.0; null for none), ``gamma`` (default 0.5; edge-share 0.03); ``mix`` = cycle (job i is
    family i mod 5) or random (paper, edge-share); ``tasks`` sub-tasks per job (layered). Sizes are drawn
    as in section 5.1; the channel gain from the path-loss model recorded in ``meta.channel``.
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
    gamma = _GAMMA[preset] if gamma is None else gamma
    if preset != "layered":
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
            + f"-w{bandwidth_mhz:g}" + (f"-tmax{t_max:g}" if t_max else "")
            + (f"-g{gamma:g}" if gamma != _GAMMA[preset] else "") + f"-s{seed}")
    return Instance(name=name, meta=meta, data=Data.model_validate(data))


def instance_bytes(preset: str, size: int | None, tasks: int = 10, **_) -> float:
    """About the bytes generating and writing an instance takes: 8 KiB per sub-task, measured peak RSS (3.6 KiB
    per sub-task of 1,000 layered jobs) with a margin; paper families have at most 6 sub-tasks."""
    return 8192.0 * (5 if size is None else size) * (tasks if preset == "layered" else 10 if preset == "heft" else 6)

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
    if not 1 <= int(processors) <= limits.PROCESSORS_MAX:
        raise InputError("--processors", f"must be 1..{limits.PROCESSORS_MAX}, got {processors}")
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
    meta = {"importer": "stg", "source": p.name, "processors": int(processors), "tasks": n}
    return _on_processors(p, {"name": p.stem, "tasks": tasks, "edges": edges}, processors, "stg", meta)


def _on_processors(p: Path, job: dict, processors: int, fmt: str, meta: dict) -> Instance:
    """One job on ``processors`` identical 1 Hz processors joined by 1 bit/s links, no cloud, gamma = 1 (the
    objective is the makespan); a bad value names its place in the file ``p``."""
    from pydantic import ValidationError

    from edgeopt.model import validation_error

    P = int(processors)
    data = {"gamma": 1.0, "t_max_s": None, "edge_bps": 1.0,
            "servers": [{"name": f"p{k}", "modalities": ["any"], "f_hz": 1.0, "price": 0.0} for k in range(P)],
            "rates": {"ul_bps": [[1.0] * P], "dl_bps": [[1.0] * P]}, "jobs": [job]}
    try:
        d = Data.model_validate(data)
    except ValidationError as exc:
        err = validation_error(exc, "data")
        raise InputError(f"{p}: {err.path}", err.rule) from None
    return Instance(name=f"{fmt}-{p.stem}-p{P}", meta=meta, data=d)


# --- task graphs with communication costs: GXL and DOT (as Sinnen's task-graph generator writes them) --

def _weight(text: str | None, where: str) -> float:
    """A node or edge Weight: a finite number >= 0 (InputError naming ``where``)."""
    try:
        w = float((text or "").strip())
    except ValueError:
        raise InputError(where, f"must be a number >= 0, got {(text or '').strip()!r}") from None
    if not math.isfinite(w) or w < 0:
        raise InputError(where, f"must be a finite number >= 0, got {w:g}")
    return w


def _task_graph_instance(p: Path, graph: str, nodes: dict[str, float], edges: dict[tuple[str, str], float],
                         processors: int, fmt: str) -> Instance:
    """A weighted task graph -> one job on ``processors`` identical processors, no cloud, gamma = 1.

    Node weights are execution times (cycles on 1 Hz processors); edge weights are communication times
    (bits over 1 bit/s links), paid only between different processors, as in the STG import. Several
    sinks get a zero-work ``exit`` sub-task fed by zero-size edges: the model needs one sink per job. It
    needs no single entry (latency counts from the first start), so sources are kept as they are.
    """
    if not 1 <= int(processors) <= limits.PROCESSORS_MAX:
        raise InputError("--processors", f"must be 1..{limits.PROCESSORS_MAX}, got {processors}")
    if not nodes:
        raise InputError(str(p), "holds no nodes (expected a task graph)")
    index = {v: k for k, v in enumerate(nodes)}
    pairs = [(index[a], index[b]) for a, b in edges]
    order = _topological(len(nodes), pairs)
    if len(order) < len(nodes):
        done = set(order)
        left = [v for v, k in index.items() if k not in done]
        raise InputError(f"{p}: edges", f"must form an acyclic graph; nodes {left[:10]} lie on or behind a cycle")
    tasks = [{"name": v, "modality": "any", "cycles": w, "in_bits": 0.0, "out_bits": 0.0} for v, w in nodes.items()]
    edge_docs = [{"src": a, "dst": b, "bits": w} for (a, b), w in zip(pairs, edges.values())]
    sinks = sorted(set(range(len(nodes))) - {a for a, _ in pairs})
    if len(sinks) > 1:
        tasks.append({"name": "exit", "modality": "any", "cycles": 0.0, "in_bits": 0.0, "out_bits": 0.0})
        edge_docs += [{"src": s, "dst": len(nodes), "bits": 0.0} for s in sinks]
    meta = {"importer": fmt, "source": p.name, "graph": graph, "processors": int(processors), "tasks": len(nodes),
            "exit_task": len(sinks) > 1}
    return _on_processors(p, {"name": graph or p.stem, "tasks": tasks, "edges": edge_docs}, processors, fmt, meta)


def _read_text(path: str, what: str) -> tuple[Path, str]:
    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), f"does not exist (expected {what})")
    try:
        return p, p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(str(p), f"is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InputError(str(p), f"cannot be read: {exc.strerror or exc}") from None


@importer("gxl", "dagsched")
def import_gxl(path: str, processors: int = 4) -> Instance:
    """GXL task graph with node and edge ``Weight`` attributes -> one job on identical processors.

    Reads the first ``<graph>`` of the ``<gxl>`` document: every ``<node id=...>`` with
    ``<attr name="Weight"><int>w</int></attr>`` (``<float>`` too) as its computation time, every
    ``<edge from=... to=...>`` with its Weight as its communication time; other attributes (CCR, start
    times, processors of a given schedule) are ignored. Parsed with the standard library's XML parser.
    """
    import xml.etree.ElementTree as ET

    p, text = _read_text(path, "a GXL file")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line, col = exc.position
        raise InputError(f"{p}: line {line}", f"is not well-formed XML ({str(exc).split(':')[0]}, column {col})") from None

    def tag(el) -> str:
        return el.tag.rsplit("}", 1)[-1]

    if tag(root) != "gxl":
        raise InputError(str(p), f"must be a GXL document (root element <gxl>), got <{tag(root)}>")
    graph = next((el for el in root if tag(el) == "graph"), None)
    if graph is None:
        raise InputError(str(p), "must hold a <graph> element")
    if graph.get("edgemode", "directed") not in ("directed", "defaultdirected"):
        raise InputError(f"{p}: graph", f"must be directed (edgemode=\"directed\"), got {graph.get('edgemode')!r}")

    def weight(el, where: str) -> float:
        attr = next((a for a in el if tag(a) == "attr" and a.get("name") == "Weight"), None)
        if attr is None or len(attr) != 1 or tag(attr[0]) not in ("int", "float", "double"):
            raise InputError(where, 'must have a Weight attribute: <attr name="Weight"><int>...</int></attr>')
        return _weight(attr[0].text, f"{where} Weight")

    nodes: dict[str, float] = {}
    edges: dict[tuple[str, str], float] = {}
    for k, el in enumerate(e for e in graph if tag(e) == "node"):
        v = el.get("id")
        if v is None:
            raise InputError(f"{p}: node #{k + 1}", "must have an id attribute")
        if v in nodes:
            raise InputError(f"{p}: node {v!r}", "repeats a node id")
        nodes[v] = weight(el, f"{p}: node {v!r}")
    for k, el in enumerate(e for e in graph if tag(e) == "edge"):
        a, b = el.get("from"), el.get("to")
        where = f"{p}: edge {a!r} -> {b!r}" if a is not None and b is not None else f"{p}: edge #{k + 1}"
        if a is None or b is None:
            raise InputError(where, "must have from and to attributes")
        for end in (a, b):
            if end not in nodes:
                raise InputError(where, f"names node {end!r}, which is not a <node> of the graph")
        if a == b:
            raise InputError(where, "must join two different nodes")
        if (a, b) in edges:
            raise InputError(where, "repeats an edge")
        edges[(a, b)] = weight(el, where)
    return _task_graph_instance(p, graph.get("id", ""), nodes, edges, processors, "gxl")


_DOT_TOKEN = r"""
    (?P<space>[ \t\r\f\v]+) | (?P<newline>\n) | (?P<comment>//[^\n]*|/\*.*?\*/|^\#[^\n]*)
  | (?P<arrow>->|--) | (?P<punct>[{}\[\];,=])
  | (?P<quoted>"(?:[^"\\]|\\.)*")
  | (?P<id>[A-Za-z_\x80-\uffff][\w\x80-\uffff]*|-?(?:\.\d+|\d+(?:\.\d*)?)(?:[eE][-+]?\d+)?)
  | (?P<bad>.)"""  # DOT's tokens; numerals also in exponent form (1e5)


def _dot_tokens(text: str, p: Path) -> list[tuple[str, str, int]]:
    """(kind, value, line) of every token; kinds ``id`` (quoted ids unquoted), ``->``, ``--`` and punctuation."""
    import re

    out, line = [], 1
    for m in re.finditer(_DOT_TOKEN, text, re.VERBOSE | re.DOTALL | re.MULTILINE):
        kind, value = m.lastgroup, m.group()
        if kind == "bad":
            raise InputError(f"{p}: line {line}", f"has {value!r}, which is not DOT (the subset: node and edge "
                                                  "statements with [key=value] attributes)")
        if kind in ("arrow", "punct"):
            out.append((value, value, line))
        elif kind == "quoted":
            out.append(("id", re.sub(r'\\(["\\])', r"\1", value[1:-1]).replace("\\\n", ""), line))
        elif kind == "id":
            out.append(("id", value, line))
        line += value.count("\n")
    return out


@importer("dot", "dagsched")
def import_dot(path: str, processors: int = 4) -> Instance:
    """DOT task graph with node and edge ``Weight`` attributes -> one job on identical processors.

    The subset Sinnen's generator writes: ``digraph "name" { a [Weight=2]; a -> b [Weight=5]; }``,
    with edge chains, ``node [...]`` / ``edge [...]`` defaults, ``key=value`` graph attributes and
    comments; other attributes are ignored. Subgraphs and undirected graphs are refused with the line.
    """
    from itertools import pairwise

    p, text = _read_text(path, "a DOT file")
    toks = _dot_tokens(text, p)
    pos = 0

    def peek(k: int = 0) -> tuple[str, str, int]:
        return toks[pos + k] if pos + k < len(toks) else ("end", "", toks[-1][2] if toks else 1)

    def take(kind: str, what: str) -> str:
        nonlocal pos
        got = peek()
        if got[0] != kind:
            raise InputError(f"{p}: line {got[2]}", f"must have {what} here, got {got[1] or 'the end of the file'!r}")
        pos += 1
        return got[1]

    def attrs() -> dict[str, tuple[str, int]]:
        out: dict[str, tuple[str, int]] = {}
        while peek()[0] == "[":
            take("[", "'['")
            while peek()[0] != "]":
                line = peek()[2]
                key = take("id", "an attribute name")
                take("=", f"'=' after attribute {key!r}")
                out[key] = (take("id", f"a value of attribute {key!r}"), line)
                if peek()[0] in (",", ";"):
                    take(peek()[0], "a separator")
            take("]", "']'")
        return out

    if peek()[0] == "id" and peek()[1].lower() == "strict":
        pos += 1
    head = peek()
    if head[0] != "id" or head[1].lower() not in ("digraph", "graph"):
        raise InputError(f"{p}: line {head[2]}", "must start with `digraph NAME {` (a DOT task graph)")
    if head[1].lower() == "graph":
        raise InputError(f"{p}: line {head[2]}", "must be a digraph (task graph edges are directed)")
    pos += 1
    graph = take("id", "the graph's name") if peek()[0] == "id" else ""
    take("{", "'{'")
    defaults: dict[str, dict] = {"node": {}, "edge": {}}
    node_attrs: dict[str, dict] = {}
    first_line: dict[str, int] = {}
    edge_attrs: dict[tuple[str, str], tuple[dict, int]] = {}
    while peek()[0] not in ("}", "end"):
        kind, value, line = peek()
        if kind == ";":
            pos += 1
            continue
        if kind != "id":
            raise InputError(f"{p}: line {line}", f"must have a node or edge statement here, got {value!r} "
                                                  "(subgraphs are not supported)")
        if value.lower() in ("node", "edge", "graph") and peek(1)[0] == "[":
            pos += 1
            given = attrs()
            if value.lower() != "graph":
                defaults[value.lower()].update(given)
            continue
        if value.lower() == "subgraph":
            raise InputError(f"{p}: line {line}", "has a subgraph, which task-graph files do not use")
        pos += 1
        if peek()[0] == "=":  # a graph attribute
            pos += 1
            take("id", f"a value of graph attribute {value!r}")
            continue
        ends = [value]
        while peek()[0] in ("->", "--"):
            if peek()[0] == "--":
                raise InputError(f"{p}: line {peek()[2]}", "has an undirected edge `--`: a digraph needs `->`")
            pos += 1
            ends.append(take("id", "a node after '->'"))
        given = attrs()
        for v in ends:
            node_attrs.setdefault(v, dict(defaults["node"]))
            first_line.setdefault(v, line)
        if len(ends) == 1:
            node_attrs[value].update(given)
        for a, b in pairwise(ends):
            where = f"{p}: line {line}: edge {a!r} -> {b!r}"
            if a == b:
                raise InputError(where, "must join two different nodes")
            if (a, b) in edge_attrs:
                raise InputError(where, f"repeats the edge of line {edge_attrs[(a, b)][1]}")
            edge_attrs[(a, b)] = ({**defaults["edge"], **given}, line)
    take("}", "'}'")
    if peek()[0] != "end":
        raise InputError(f"{p}: line {peek()[2]}", "must end after the graph's closing '}' (one graph per file)")

    def weight(given: dict, what: str, line: int) -> float:
        if "Weight" not in given:
            raise InputError(f"{p}: line {line}: {what}", "must have a Weight attribute ([Weight=...])")
        text, at = given["Weight"]
        return _weight(text, f"{p}: line {at}: {what} Weight")

    nodes = {v: weight(a, f"node {v!r}", first_line[v]) for v, a in node_attrs.items()}
    edges = {e: weight(a, f"edge {e[0]!r} -> {e[1]!r}", line) for e, (a, line) in edge_attrs.items()}
    return _task_graph_instance(p, graph, nodes, edges, processors, "dot")


# --- simulation -------------------------------------------------------------------------------------

DROP_REASONS = ("edge-failure", "timeout")


class Simulation:
    """Liao et al. over time: jobs arrive, edge queues carry their backlog over, edges fail and drop their queues.

    Each interval of ``interval_s`` seconds brings Poisson(``rate``) jobs, drawn as the preset's generator draws
    them (paper: a uniformly chosen family; layered: ``tasks`` sub-tasks), each with its device's channel to the
    edges; they arrive at the interval's start. The instance holds the carried jobs and the new ones; the
    carried sub-tasks are fixed (``data.fixed``) where they were placed, each edge queue's backlog as its
    prefix, so the policy plans the new jobs around them. A sub-task is done when it finishes within the
    interval; one still running at its end goes on (no preemption): it heads its queue in the next interval with
    its remaining time as its execution time and its input uploaded. A job is served when its sink is done; its latency runs from its arrival to its result back at the device. A carried job
    keeps only its sub-tasks not done: they are closed under successors (nothing starts before its
    predecessors finish), so they keep one sink and fixing them fixes all their predecessors in the instance;
    the outputs of done predecessors are taken to be waiting where they are needed.

    Every edge fails in an interval with probability ``failure``, at a uniform moment of it, unknown to the
    policy, and is repaired for the next interval. It drops its queue: every job with a sub-task on that edge
    not finished by the failure is dropped (reason ``edge-failure``) with its other sub-tasks (their slots
    elsewhere are not reclaimed within the interval); a job not served within ``patience`` intervals of its
    arrival is dropped (``timeout``). Cost is counted for each sub-task when it is done (of a dropped job:
    when done before the drop), so a sub-task running across intervals is paid once.
    """

    PLOTS = (("decision", "objective", "weighted sum (referee)"), ("latency", "mean_s", "mean job latency, s"),
             ("service", "cost", "cost of work done, $"), ("service", "served", "jobs served"),
             ("service", "carried", "jobs carried over"), ("service", "dropped", "jobs dropped"))
    CDF = ("latency", "values", "job latency from arrival, s")
    SUMMARY = {"weighted_sum": ("decision", "objective", "sum"), "latency_total_s": ("latency", "total_s", "sum"),
               "interval_mean_latency_s": ("latency", "mean_s", "mean"), "cost": ("service", "cost", "sum"), "served": ("service", "served", "sum"),
               "dropped": ("service", "dropped", "sum"), "carried_at_end": ("service", "carried", "last")}

    def __init__(self, preset: str = "paper", seed: int = 0, rate: Annotated[float, Field(gt=0, le=1e4)] = 5.0,
                 interval_s: Annotated[float, Field(gt=0, le=1e6)] = 0.5,
                 failure: Annotated[float, Field(ge=0, le=1)] = 0.1,
                 patience: Annotated[int, Field(ge=1, le=10_000)] = 6,
                 bandwidth_mhz: Annotated[float, Field(gt=0, le=1e6)] = 6.0,
                 gamma: Annotated[float, Field(ge=0, le=1)] = 0.5,
                 t_max: Annotated[float, Field(gt=0, le=1e9)] | None = None,
                 tasks: Annotated[int, Field(ge=2, le=1000)] = 10):
        if preset not in ("paper", "layered"):
            raise InputError("--preset", f"must be paper or layered to simulate dagsched: {preset!r} is one fixed job")
        self.preset, self.seed, self.rate, self.interval_s = preset, seed, rate, interval_s
        self.failure, self.patience, self.tasks = failure, patience, tasks
        self.options = {"bandwidth_mhz": bandwidth_mhz, "t_max": t_max, "gamma": gamma}
        self.jobs: dict[int, dict] = {}  # id -> {"arrival", "job", "left": not done, "running": {j: s left}, "gain"}
        self.carried: list[int] = []  # ids of the jobs in the system, in arrival order
        self.queues: list[list[tuple[int, int]]] = [[] for _ in _EDGES]  # per edge, (id, sub-task) in run order
        self.on_cloud: list[tuple[int, int]] = []
        self.ended: dict[int, tuple[str, int]] = {}  # id -> (served | a drop reason, interval)
        self.in_instance: list[int] = []

    def largest(self) -> dict:
        """Generator arguments of the largest instance an interval can hold (for ``instance_bytes``): the jobs of
        ``patience`` intervals of arrivals, each interval's at most the mean plus ten standard deviations."""
        return {"preset": self.preset, "size": int(self.patience * (self.rate + 10 * self.rate**0.5 + 10)),
                "tasks": self.tasks}

    def _arrivals(self, t: int) -> list[int]:
        rng = np.random.default_rng([self.seed, t, 0])
        n = int(rng.poisson(self.rate))
        if not n:
            return []
        jobs = ([_family_job(str(f), rng) for f in rng.choice(list(FAMILIES), size=n)] if self.preset == "paper"
                else [_layered_job(k, self.tasks, rng) for k in range(n)])
        gain = _paper_data(jobs, self.options["bandwidth_mhz"], None, 0.5, rng)[0]["radio"]["gain"]
        first = len(self.jobs)
        for k, (job, row) in enumerate(zip(jobs, gain)):
            self.jobs[first + k] = {"arrival": t, "job": job, "left": list(range(len(job["tasks"]))),
                                 "running": {}, "gain": row}
        return list(range(first, first + n))

    def _remaining(self, ident: int) -> dict:
        """The job's sub-tasks not done yet, renumbered in their order, with the edges among them; a running one
        with its input uploaded and its remaining time as its execution time on every server."""
        rec = self.jobs[ident]
        job, new, running = rec["job"], {j: k for k, j in enumerate(rec["left"])}, rec["running"]
        tasks = [{**job["tasks"][j], "in_bits": 0.0, "exec_s": [running[j]] * (len(_EDGES) + 1)} if j in running
                 else job["tasks"][j] for j in rec["left"]]
        edges = [{**e, "src": new[e["src"]], "dst": new[e["dst"]]} for e in job["edges"]
                 if e["src"] in new and e["dst"] in new]
        return {"name": f"a{rec['arrival']}-{ident}-{job['name']}", "tasks": tasks, "edges": edges}

    def instance(self, t: int) -> Instance | None:
        self.in_instance = self.carried + self._arrivals(t)
        if not self.in_instance:
            return None
        o = self.options  # the generator's servers and cloud; each job keeps the channel drawn at its arrival
        data = _paper_data([self._remaining(i) for i in self.in_instance], o["bandwidth_mhz"], o["t_max"], o["gamma"],
                           np.random.default_rng(0))[0]
        data["radio"]["gain"] = [self.jobs[i]["gain"] for i in self.in_instance]
        if self.carried:
            pos = {i: k for k, i in enumerate(self.in_instance)}

            def named(ident: int, j: int) -> list[int]:
                return [pos[ident], self.jobs[ident]["left"].index(j)]

            data["fixed"] = {"prefix": [[named(i, j) for i, j in q] for q in self.queues],
                             "cloud": [named(i, j) for i, j in self.on_cloud]}
        meta = {"simulation": "edgeopt.problems.dagsched.Simulation", "preset": self.preset, "seed": self.seed,
                "interval": t, "carried_jobs": len(self.carried)}
        return Instance(name=f"{self.preset}-sim-s{self.seed}-i{t}", meta=meta, data=Data.model_validate(data))

    def fallback(self, instance: Instance) -> Solution:
        """Without a runnable decision the fixed sub-tasks stay where they are and every other goes to the cloud."""
        d, g = instance.data, instance.data.graph
        prefix = d.fixed.prefix if d.fixed is not None and d.fixed.prefix else [[] for _ in range(g.N)]
        queued = {g.index(i, j) for q in prefix for i, j in q}
        return Solution(order=[list(q) for q in prefix],
                        cloud=[list(g.name(t)) for t in range(g.T) if t not in queued])

    def _runnable(self, instance: Instance, solution: Solution):
        """(server of each sub-task, queues, start and finish times) if the decision can be carried out, else None.

        Carried out means: every sub-task on a server that runs its modality, the fixed sub-tasks where they are
        fixed, no deadlock. A missed T_max is not a reason to refuse a decision (the referee reports it).
        """
        d, g = instance.data, instance.data.graph
        try:
            where, queues = placement(instance, solution)
        except InputError:
            return None
        if not all(g.ok[t, n] for t, n in where.items()):
            return None
        if d.fixed is not None:
            if any(queues[n][:len(pre)] != [g.index(i, j) for i, j in pre] for n, pre in enumerate(d.fixed.prefix)):
                return None
            if any(where[g.index(i, j)] != g.cloud for i, j in d.fixed.cloud):
                return None
        start, finish, stuck = g.times(where, queues)
        return None if stuck else (where, queues, start, finish)

    def advance(self, t: int, instance: Instance | None, solution: Solution | None) -> dict[str, dict]:
        """Run the interval: serve, carry over or drop every job in it, and record why."""
        ids, arrivals = self.in_instance, sum(self.jobs[i]["arrival"] == t for i in self.in_instance)
        service = {"arrivals": int(arrivals), "jobs": len(ids), "served": 0, "carried": 0, "dropped": 0,
                   **dict.fromkeys(DROP_REASONS, 0), "cost": 0.0, "failed_edges": 0, "refused": False,
                   "carried_subtasks": 0}
        latency: list[float] = []
        if instance is not None:
            run = self._runnable(instance, solution)
            if run is None:
                service["refused"] = True  # carried out as the fallback instead
                run = self._runnable(instance, self.fallback(instance))
            where, queues, start, finish = run
            g, L = instance.data.graph, self.interval_s
            rng = np.random.default_rng([self.seed, t, 1])
            down, at = rng.random(g.N) < self.failure, rng.uniform(0, L, g.N)
            service["failed_edges"] = int(down.sum())
            dropped_at = np.full(len(ids), np.inf)  # per job in the instance: when its queue was dropped
            for n in np.flatnonzero(down):
                for s in queues[n]:
                    if finish[s] > at[n]:
                        dropped_at[g.job[s]] = min(dropped_at[g.job[s]], at[n])
            done = finish <= np.minimum(L, dropped_at[g.job])
            service["cost"] = float(g.cost[np.flatnonzero(done), [where[s] for s in np.flatnonzero(done)]].sum())

            def original(s: int) -> tuple[int, int]:  # (job id, its sub-task) of the instance's sub-task s
                ident = ids[g.job[s]]
                return ident, self.jobs[ident]["left"][g.local[s]]

            carried = []
            for k, ident in enumerate(ids):
                rec, sink = self.jobs[ident], g.sink[k]
                if np.isfinite(dropped_at[k]):
                    self._end(ident, "edge-failure", t, service)
                elif done[sink]:
                    latency.append(float((t - rec["arrival"]) * L + finish[sink] + g.ret[sink, where[sink]]))
                    self._end(ident, "served", t, service)
                elif t - rec["arrival"] + 1 >= self.patience:
                    self._end(ident, "timeout", t, service)
                else:
                    carried.append(ident)
            keep = set(carried)
            self.queues = [[original(s) for s in q if not done[s] and ids[g.job[s]] in keep] for q in queues]
            self.on_cloud = [original(s) for s in range(g.T)
                             if where[s] == g.cloud and not done[s] and ids[g.job[s]] in keep]
            for k, ident in enumerate(ids):
                if ident in keep:
                    span = [s for s in range(g.offset[k], g.offset[k] + instance.data.jobs.sizes[k]) if not done[s]]
                    self.jobs[ident]["running"] = {original(s)[1]: float(finish[s] - L) for s in span if start[s] < L}
                    self.jobs[ident]["left"] = [original(s)[1] for s in span]
            self.carried = carried
            service["carried"] = len(carried)
            service["carried_subtasks"] = sum(len(self.jobs[i]["left"]) for i in carried)
        return {"service": service,
                "latency": {"values": latency, "total_s": float(sum(latency)),
                            "mean_s": float(np.mean(latency)) if latency else None,
                            "max_s": max(latency) if latency else None}}

    def _end(self, ident: int, outcome: str, t: int, service: dict) -> None:
        """A job leaves the system, once: served or dropped for a reason."""
        self.ended[ident] = (outcome, t)
        service[outcome] += 1
        if outcome != "served":
            service["dropped"] += 1
