"""The ``dagsched`` instance and solution types, checked at load, and ``Graph``: every sub-task of every job
flattened to an index with its times on every server, built once per instance and shared by referee and methods."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from itertools import chain, repeat
from operator import is_not
from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from edgeopt import model
from edgeopt.model import (Array, ColumnStore, InputError, Model, NotPlain, check, check_shape, plain_columns,
                           plain_floats, plain_indices)

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
        if (set(map(type, per_job)) | set(map(type, edges_per))) != {list} or not set(map(type, self.names)) <= {str}:
            raise NotPlain
        self.sizes = list(map(len, per_job))
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
        self.edge_offset = np.concatenate([[0], np.cumsum(list(map(len, edges_per)))])
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
        pairs = np.sort((base + self.src) * self.T + base + self.dst)
        if (pairs[1:] == pairs[:-1]).any():  # sorted, not np.unique: a quarter of the time
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
        return topological(self.sizes[i], list(zip(self.src[ea:eb].tolist(), self.dst[ea:eb].tolist())))


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
            order = topological(J, [(e.src, e.dst) for e in job.edges])
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


def topological(J: int, edges: list[tuple[int, int]]) -> list[int]:
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
        dur, inv = self.dur.tolist(), self.inv.tolist()  # Python floats: the loop reads one value at a time
        start, finish = [math.nan] * self.T, [math.nan] * self.T
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
                st = max(st, finish[k] + bits * inv[where[k]][n])
            if t in before:
                st = max(st, finish[before[t]])
            start[t], finish[t] = st, st + dur[t][n]
            for w in self.succs[t] + ([after[t]] if t in after else []):
                if w in waits:
                    waits[w] -= 1
                    if waits[w] == 0:
                        ready.append(w)
        start, finish = np.array(start), np.array(finish)
        stuck = sorted(t for t in where if np.isnan(finish[t]))
        return start, finish, stuck


class Instance(model.Instance):
    problem = "dagsched"
    data: Data


class Solution(Model):
    order: list[list[SubTask]] = Field(description="per edge server, its [job, sub-task] in run order "
                                                   "(indices 0 <= x <= 1e7)")
    cloud: list[SubTask] = Field([], description="[job, sub-task] sent to the cloud (indices 0 <= x <= 1e7)")
