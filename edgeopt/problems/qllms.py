"""``qllms`` — quantization-aware assignment of LLM tasks to edge GPU types under partial profiling (QLLMS).

Each task runs at the edge on a server type j at a quantization level q, or in the cloud. The instance
holds the ground truth (latency, perplexity, memory) and what a scheduler has measured of it (the
observation masks). Methods see the truth only through ``Data.observed()``; the referee and the exact
oracle read it directly. See ``specs/qllms.md``; the figures of the presets are sourced in
``instances/qllms/README.md``.

Three choices of the problem's definition are data fields, the seed's reading first (issue 13):

* ``objective``: ``delta-cost`` is the seed's ``min Σ δ_ijq · c_j`` (a task placed on server type j costs
  its price c_j, $/GPU-hour; a cloud task costs ``cloud_price``); ``gpu-seconds`` charges the GPU time used,
  ``c_j / 3600 · lat`` (and ``tasks[i].cloud`` in the cloud). An explicit ``cost`` table replaces the edge
  cost of either.
* ``memory``: ``aggregate`` — the tasks sharing a server type hold their memory at once, ``Σ need ≤ G_j ·
  mem_j`` (and each fits one GPU); ``per-task`` — each task fits one GPU, nothing more.
* ``slo``: ``ttft-tpot`` — time to first token (``data.ttft``, the prefill) ``≤ slo_ttft`` and time per output
  token ``(lat − ttft) / out_tokens ≤ slo_tpot``; ``latency`` — the whole latency ``lat ≤ slo_lat``. A file
  without ``data.ttft`` defaults to ``latency``.

Both readings keep the GPU-seconds capacity ``G_j · H`` (the seed names no time budget; the spec's stays).
"""
from __future__ import annotations

from functools import cached_property
from typing import Literal, NamedTuple, Optional

import numpy as np
from pydantic import Field, model_validator

from edgeopt import model
from edgeopt.model import Array, InputError, Model, check, check_shape, records
from edgeopt.result import Evaluation

SENSE = "min"
# Axis labels with units for the experiment figures (``edgeopt experiment plot``), by column.
LABELS = {"objective": "cost ($/h)", "observe": "observed share of the profile", "preset": "GPU mix",
          "details.tcr": "edge task-completion rate", "details.tokens_per_dollar": "tokens per $ of GPU time",
          "details.ttft_mean_s": "mean TTFT at the edge (s)", "details.ttft_p95_s": "p95 TTFT at the edge (s)",
          "details.tpot_mean_s": "mean TPOT at the edge (s)", "details.tpot_p95_s": "p95 TPOT at the edge (s)",
          "details.ttft_slo_met": "edge tasks within the TTFT SLO (share)",
          "details.tpot_slo_met": "edge tasks within the TPOT SLO (share)"}

PRESETS = {
    "qllms": "the QLLMS testbed: A100-80GB, A6000, RTX 4090, RTX 3090 (2 GPUs each, 0.2-0.85 $/h), "
             "Llama-2-7B/13B and Mistral-7B at fp16/int8/int4/int3 (options observe, load, gpus)",
    "rtx3090": "the paper's RTX 3090-only scenario: one server type of 2 RTX 3090s",
    "hetero": "8 GPU types at Lambda Cloud on-demand prices (A10 ... H100), same models and levels",
}
OBJECTIVES = ("delta-cost", "gpu-seconds")
MEMORY = ("aggregate", "per-task")
SLOS = ("ttft-tpot", "latency")
_TOL = 1e-9  # relative slack on capacity sums (float cumsums in different orders)
MAX_INDEX = 10_000_000  # tasks (the paper: 100,000), server types, levels


class Task(Model):
    name: str
    model: str = Field(description="model family, e.g. Llama-2-7B")
    in_tokens: int = Field(ge=0, le=1_000_000_000, description="prompt tokens (0 <= x <= 1e9)")
    out_tokens: int = Field(ge=0, le=1_000_000_000, description="response tokens (0 <= x <= 1e9)")
    slo_lat: float = Field(gt=0, le=1e9, description="latency SLO L_i, s (0 < x <= 1e9); data.slo = latency")
    slo_ttft: float = Field(1.0, gt=0, le=1e9, description="time-to-first-token SLO, s (0 < x <= 1e9; the seed's "
                                                          "1 s); data.slo = ttft-tpot")
    slo_tpot: float = Field(0.05, gt=0, le=1e9, description="time-per-output-token SLO, s (0 < x <= 1e9; the seed's "
                                                           "50 ms); data.slo = ttft-tpot")
    slo_ppl: float = Field(gt=0, le=1e9, description="perplexity SLO P_i (0 < x <= 1e9)")
    cloud: Optional[float] = Field(default=None, ge=0, le=1e9, description="cloud fallback cost, $ "
                                                                           "(0 <= x <= 1e9); null = edge only")


class Server(Model):
    name: str
    gpus: int = Field(ge=1, le=1_000_000_000, description="G_j, GPUs of this type (1 <= x <= 1e9)")
    mem_gb: float = Field(gt=0, le=1e6, description="memory per GPU, GB (0 < x <= 1e6)")
    price: float = Field(ge=0, le=1e6, description="c_j, $ per GPU-hour (0 <= x <= 1e6)")


class Quant(Model):
    name: str
    bits: float = Field(gt=0, le=64, description="bits per weight (0 < x <= 64)")


class Observed(NamedTuple):
    """What a scheduler has measured: NaN = not measured, +inf = measured and not runnable."""

    lat: np.ndarray  # (M, N, Q) s
    ppl: np.ndarray  # (M, Q)
    ttft: np.ndarray | None  # (M, N, Q) s, measured with lat; None when the instance has no TTFT figures


class Data(Model):
    horizon_s: float = Field(gt=0, le=1e9, description="H: server type j offers gpus_j * H GPU-seconds "
                                                      "(0 < H <= 1e9 s)")
    tasks: records(Task) = Field(description="the tasks (at least one), held as columns")
    servers: list[Server] = Field(min_length=1)
    quants: list[Quant] = Field(min_length=1)
    lat: Array(float, 3, nullable=True, ge=1e-6, le=1e9) = Field(
        description="TRUE latency lat[i][j][q], s (0 <= x <= 1e9); null = not runnable")
    ppl: Array(float, 2, nullable=True, gt=0, le=1e9) = Field(
        description="TRUE perplexity ppl[i][q] (0 < x <= 1e9); null = not runnable")
    need: Array(float, 2, nullable=True, ge=0, le=1e6) = Field(
        description="memory need[i][q], GB (known; 0 <= x <= 1e6); null = not runnable")
    cost: Optional[Array(float, 3, nullable=True, ge=0, le=1e9)] = Field(
        default=None, description="explicit edge cost table, $ (0 <= x <= 1e9); default price_j/3600 * lat")
    seen_lat: Optional[Array(bool, 3)] = Field(default=None, description="latency observed? default all")
    seen_ppl: Optional[Array(bool, 2)] = Field(default=None, description="perplexity observed? default all")
    ttft: Array(float, 3, nullable=True, ge=1e-6, le=1e9) | None = Field(
        default=None, description="TRUE time to first token (the prefill) ttft[i][j][q], s (1e-6 <= x <= 1e9), <= lat, "
                                  "null where lat is; observed with lat (seen_lat)")
    objective: Literal["delta-cost", "gpu-seconds"] = Field(
        "delta-cost", description="delta-cost: the seed's sum of c_j over placed tasks (cloud: cloud_price); "
                                  "gpu-seconds: c_j / 3600 * lat (cloud: tasks[i].cloud)")
    memory: Literal["aggregate", "per-task"] = Field(
        "aggregate", description="aggregate: the tasks on a server type hold at most gpus_j * mem_gb_j together; "
                                 "per-task: each task fits one GPU")
    slo: Literal["ttft-tpot", "latency"] = Field(
        "ttft-tpot", description="ttft-tpot: ttft <= slo_ttft and (lat - ttft) / out_tokens <= slo_tpot; latency: "
                                 "lat <= slo_lat. Default latency for a file without data.ttft")
    cloud_price: float = Field(1.79, ge=0, le=1e6, description="c of the cloud, $ per GPU-hour: a cloud task's cost "
                                                              "under delta-cost (0 <= x <= 1e6; an on-demand A100-80GB)")

    @model_validator(mode="before")
    @classmethod
    def _slo_default(cls, data):
        """A file without TTFT figures can only be read with the whole-latency SLO."""
        if isinstance(data, dict) and "slo" not in data and data.get("ttft") is None:
            data = {**data, "slo": "latency"}
        return data

    @model_validator(mode="after")
    def _consistent(self):
        M, N, Q = self.shape
        check_shape(self.lat, (M, N, Q), "data.lat", "(tasks, servers, quants)")
        check_shape(self.ppl, (M, Q), "data.ppl", "(tasks, quants)")
        if self.need.ndim == 2 and self.need.shape[0] == M and self.need.shape[1] < Q:
            q = self.need.shape[1]
            raise InputError("data.need", f"has no memory figure for quants[{q}] ({self.quants[q].name}): "
                                          f"every quantization level needs one column")
        check_shape(self.need, (M, Q), "data.need", "(tasks, quants)")
        names = [q.name for q in self.quants]
        check(len(set(names)) == len(names), "data.quants", "must have distinct names")
        has_lat = ~np.isnan(self.lat).all(axis=1)  # (M, Q): some server has a latency figure
        check(~has_lat | ~np.isnan(self.need), "data.need",
              "must not be null where data.lat has figures (a quantization level with no memory figure)")
        check(~has_lat | ~np.isnan(self.ppl), "data.ppl", "must not be null where data.lat has figures")
        if self.cost is not None:
            check_shape(self.cost, (M, N, Q), "data.cost", "(tasks, servers, quants)")
            check(np.isnan(self.lat) | ~np.isnan(self.cost), "data.cost", "must not be null where data.lat is given")
        if self.seen_lat is not None:
            check_shape(self.seen_lat, (M, N, Q), "data.seen_lat", "(tasks, servers, quants)")
        if self.seen_ppl is not None:
            check_shape(self.seen_ppl, (M, Q), "data.seen_ppl", "(tasks, quants)")
        if self.ttft is not None:
            check_shape(self.ttft, (M, N, Q), "data.ttft", "(tasks, servers, quants)")
            check(np.isnan(self.ttft) == np.isnan(self.lat), "data.ttft", "must be null exactly where data.lat is null")
            check(np.isnan(self.lat) | (self.ttft <= self.lat), "data.ttft", "must be <= data.lat (the prefill is part "
                                                                               "of the latency)")
        check(self.slo != "ttft-tpot" or self.ttft is not None, "data.ttft",
              "must be given when data.slo is ttft-tpot (or set data.slo to latency)")
        return self

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.tasks), len(self.servers), len(self.quants)

    @cached_property
    def full_information(self) -> bool:
        return all(m is None or bool(m.all()) for m in (self.seen_lat, self.seen_ppl))

    def observed(self) -> Observed:
        """THE accessor methods use: the truth where measured, NaN where not, +inf where measured not runnable."""
        seen_lat = np.ones(self.lat.shape, bool) if self.seen_lat is None else self.seen_lat
        seen_ppl = np.ones(self.ppl.shape, bool) if self.seen_ppl is None else self.seen_ppl
        lat = np.where(seen_lat, np.where(np.isnan(self.lat), np.inf, self.lat), np.nan)
        ppl = np.where(seen_ppl, np.where(np.isnan(self.ppl), np.inf, self.ppl), np.nan)
        ttft = None if self.ttft is None else np.where(seen_lat, np.where(np.isnan(self.ttft), np.inf, self.ttft), np.nan)
        return Observed(lat, ppl, ttft)

    # known quantities (not ground truth): SLOs, memory, prices, capacities
    @cached_property
    def slo_lat(self) -> np.ndarray:
        return self.tasks.column("slo_lat")

    @cached_property
    def slo_ppl(self) -> np.ndarray:
        return self.tasks.column("slo_ppl")

    @cached_property
    def cloud(self) -> np.ndarray:
        """(M,) cloud cost under ``objective``, NaN where the task must stay at the edge."""
        return self.cloud_cost(self.objective)

    def cloud_cost(self, objective: str) -> np.ndarray:
        """(M,) a cloud task's cost under ``objective``: ``cloud_price`` (delta-cost) or ``tasks[i].cloud``."""
        cloud = self.tasks.column("cloud")
        return np.where(np.isnan(cloud), np.nan, self.cloud_price) if objective == "delta-cost" else cloud

    @cached_property
    def mem(self) -> np.ndarray:
        return np.array([s.mem_gb for s in self.servers])

    @cached_property
    def gpus(self) -> np.ndarray:
        return np.array([s.gpus for s in self.servers], dtype=float)

    @cached_property
    def cap(self) -> np.ndarray:
        """(N,) GPU-seconds per server type: gpus_j * H."""
        return self.gpus * self.horizon_s

    @cached_property
    def memory_gb(self) -> np.ndarray:
        """(N,) GB per server type, all its GPUs together: gpus_j * mem_j."""
        return self.gpus * self.mem

    @cached_property
    def capacity(self) -> np.ndarray:
        """(N, R) what a server type offers: GPU-seconds, and with aggregate memory its GPUs' GB."""
        if self.memory == "per-task":
            return self.cap[:, None]
        return np.stack([self.cap, self.memory_gb], axis=1)

    def usage(self, lat: np.ndarray, quant: np.ndarray | None = None) -> np.ndarray:
        """(M, N, Q, R) what task i at (j, q) takes of ``capacity``: its (true or estimated) GPU-seconds, and its GB.

        With ``quant`` (M, N), ``lat`` is (M, N) at those levels and the result (M, N, R): a scheduler that has
        chosen its levels need not build the whole table (at 100,000 tasks that is 51 MB).
        """
        if self.memory == "per-task":
            return lat[..., None]
        need = self.need[:, None, :] if quant is None else self.need[np.arange(len(lat))[:, None], quant]
        return np.stack([lat, np.broadcast_to(need, lat.shape)], axis=-1)

    def tpot(self, lat: np.ndarray, ttft: np.ndarray) -> np.ndarray:
        """(M, N, Q) time per output token: the decode time (lat - ttft) over max(out_tokens, 1)."""
        out = np.maximum(self.tasks.column("out_tokens"), 1)
        return (lat - ttft) / out[:, None, None]

    def admissible(self, lat: np.ndarray, ttft: np.ndarray | None, ppl: np.ndarray) -> np.ndarray:
        """(M, N, Q) the AQS of a (true or estimated) profile: runnable, fits one GPU, meets the SLOs of ``slo``."""
        with np.errstate(invalid="ignore"):
            if self.slo == "latency":
                ok = lat <= self.slo_lat[:, None, None]
            else:
                ok = ((ttft <= self.tasks.column("slo_ttft")[:, None, None])
                      & (self.tpot(lat, ttft) <= self.tasks.column("slo_tpot")[:, None, None]))
            return self.fits & ok & (ppl <= self.slo_ppl[:, None])[:, None, :] & ~np.isnan(lat)

    @cached_property
    def bits(self) -> np.ndarray:
        return np.array([q.bits for q in self.quants])

    @cached_property
    def fits(self) -> np.ndarray:
        """(M, N, Q) the model fits in one GPU: need[i][q] <= mem_j (memory is known, not estimated)."""
        with np.errstate(invalid="ignore"):
            return self.need[:, None, :] <= self.mem[None, :, None]

    def edge_cost(self, lat: np.ndarray, objective: str | None = None) -> np.ndarray:
        """(M, N, Q) edge cost under ``objective`` (default the instance's) for a latency table (true or
        estimated): the cost table, else price_j (delta-cost) or price_j / 3600 * lat (gpu-seconds)."""
        if self.cost is not None:
            return self.cost
        price = np.array([s.price for s in self.servers])[None, :, None]
        if (objective or self.objective) == "delta-cost":
            return np.where(np.isnan(lat), np.nan, price)
        return price / 3600.0 * lat


class Instance(model.Instance):
    problem = "qllms"
    data: Data


class Solution(Model):
    server: Array(int, 1, ge=-1, le=MAX_INDEX) = Field(description="server type of every task, -1 = cloud "
                                                                  "(-1 <= x <= 1e7)")
    quant: Array(int, 1, ge=-1, le=MAX_INDEX) = Field(description="quantization level of every task, -1 for cloud "
                                                                 "tasks (-1 <= x <= 1e7)")
    order: Optional[Array(int, 1, ge=0, le=MAX_INDEX)] = Field(
        default=None, description="the order tasks are listed (a permutation, 0 <= x <= 1e7); a server that overflows "
                                  "sends the tasks beyond capacity in this order to the cloud. Default: index order")


def _check_solution(d: Data, s: Solution) -> np.ndarray:
    M, N, Q = d.shape
    for name, arr in (("server", s.server), ("quant", s.quant)):
        if arr.shape != (M,):
            raise InputError(f"solution.{name}", f"must list one entry per task ({M}), got {arr.shape[0]}")
    check((s.server >= -1) & (s.server < N), "solution.server", f"must be a server index 0..{N - 1} or -1 (cloud)")
    edge = s.server >= 0
    check(~edge | ((s.quant >= 0) & (s.quant < Q)), "solution.quant", f"must be a level 0..{Q - 1} for edge tasks")
    check(edge | (s.quant == -1), "solution.quant", "must be -1 for cloud tasks")
    if s.order is None:
        return np.arange(M)
    if s.order.shape != (M,) or not np.array_equal(np.sort(s.order), np.arange(M)):
        raise InputError("solution.order", f"must be a permutation of the task indices 0..{M - 1}")
    return s.order


class Served(NamedTuple):
    """What the referee finds for the tasks placed at the edge (``edge``: their indices, in task order)."""

    edge: np.ndarray
    j: np.ndarray
    q: np.ndarray
    lat: np.ndarray  # true latency, NaN = not runnable
    runnable: np.ndarray
    ok_mem: np.ndarray  # fits one GPU
    ok_lat: np.ndarray  # meets the latency SLOs of data.slo
    ok_ppl: np.ndarray
    admissible: np.ndarray
    within: np.ndarray  # within the server's GPU-seconds (and aggregate memory), in the solution's order
    held: np.ndarray  # GB the task holds on its server (0 unless runnable)


def _served(d: Data, solution: Solution) -> Served:
    M = d.shape[0]
    order = _check_solution(d, solution)
    srv, qq = solution.server, solution.quant
    edge = np.nonzero(srv >= 0)[0]
    j, q = srv[edge], qq[edge]
    lat = d.lat[edge, j, q]
    runnable = ~np.isnan(lat)
    with np.errstate(invalid="ignore"):
        ok_mem = d.need[edge, q] <= d.mem[j]
        if d.slo == "latency":
            ok_lat = lat <= d.slo_lat[edge]
        else:
            ttft = d.ttft[edge, j, q]
            tpot = (lat - ttft) / np.maximum(d.tasks.column("out_tokens")[edge], 1)
            ok_lat = (ttft <= d.tasks.column("slo_ttft")[edge]) & (tpot <= d.tasks.column("slo_tpot")[edge])
        ok_ppl = d.ppl[edge, q] <= d.slo_ppl[edge]
    admissible = runnable & ok_mem & ok_lat & ok_ppl
    held = np.where(runnable, d.need[edge, q], 0.0)
    # capacity: per server, true GPU-seconds (and GB held) accumulated in solution order; beyond it -> cloud
    pos = np.empty(M, dtype=np.int64)
    pos[order] = np.arange(M)
    by = np.lexsort((pos[edge], j))
    within = np.empty(len(edge), dtype=bool)
    within[by] = _running(np.where(runnable, lat, 0.0)[by], j[by]) <= d.cap[j[by]] * (1 + _TOL) + _TOL
    if d.memory == "aggregate":
        within[by] &= _running(held[by], j[by]) <= d.memory_gb[j[by]] * (1 + _TOL) + _TOL
    return Served(edge, j, q, lat, runnable, ok_mem, ok_lat, ok_ppl, admissible, within, held)


def _running(load: np.ndarray, js: np.ndarray) -> np.ndarray:
    """Running sums of ``load`` within each run of equal ``js`` (tasks sorted by server)."""
    cum = np.cumsum(load)
    start = np.r_[0, np.nonzero(np.diff(js))[0] + 1]
    seg = np.repeat(start, np.diff(np.r_[start, len(js)]))
    return cum - cum[seg] + load[seg]


OUTCOMES = ("edge", "cloud", "not_runnable", "overflow", "slo")  # task_outcome codes, in this order


def task_outcome(instance: Instance, solution: Solution) -> np.ndarray:
    """Per task, how it ended (an index into OUTCOMES): done at the edge, placed in the cloud, or sent to the
    cloud because its pair cannot run, its server overflowed, or it ran and missed an SLO."""
    sv = _served(instance.data, solution)
    out = np.ones(instance.data.shape[0], dtype=np.int64)
    out[sv.edge] = np.select([~sv.runnable, ~sv.within, ~sv.admissible], [2, 3, 4], 0)
    return out


def evaluate(instance: Instance, solution: Solution) -> Evaluation:
    """The referee: true cost with honest charging of wrong estimates, feasibility, TCR, tokens per dollar.

    Both objectives are reported (``delta_cost``, ``gpu_seconds_cost``); ``objective`` is the instance's.
    ``tokens_per_dollar``: the prompt and output tokens of every task (each is served once, at the edge or in
    the cloud) over the dollars paid for GPU time (``gpu_seconds_cost``, failed edge runs included); None
    with an explicit cost table (its unit is not known to be $) or when nothing is paid.
    """
    d = instance.data
    M, N, Q = d.shape
    edge, j, q, lat, runnable, ok_mem, ok_lat, _, admissible, within, held = _served(d, solution)
    ran = within & runnable
    done = ran & admissible
    to_cloud = np.ones(M, dtype=bool)
    to_cloud[edge[done]] = False
    cost = {o: (float(np.sum(d.edge_cost(d.lat, o)[edge, j, q][ran])), float(np.nansum(d.cloud_cost(o)[to_cloud])))
            for o in OBJECTIVES}
    edge_cost, cloud_cost = cost[d.objective]
    stranded = np.nonzero(to_cloud & np.isnan(d.cloud))[0]
    loads = np.bincount(j, weights=np.where(within & runnable, lat, 0.0), minlength=N)
    demand = np.bincount(j, weights=np.where(runnable, lat, 0.0), minlength=N)
    gb = d.memory_gb
    holds = np.bincount(j, weights=np.where(within, held, 0.0), minlength=N)
    wants = np.bincount(j, weights=held, minlength=N)
    dollars = sum(cost["gpu-seconds"])
    tokens = float(np.sum(d.tasks.column("in_tokens")) + np.sum(d.tasks.column("out_tokens")))

    violations: list[str] = []
    if d.full_information:  # with full information a mistake is an infeasibility, not a charge
        names = [qv.name for qv in d.quants]
        for k in np.nonzero(~admissible)[0]:
            i, jj, qk = int(edge[k]), int(j[k]), int(q[k])
            why = ("is not runnable (lat null)" if not runnable[k] else
                   f"needs {d.need[i, qk]:g} GB > {d.mem[jj]:g} GB" if not ok_mem[k] else
                   _slo_miss(d, i, jj, qk) if not ok_lat[k] else
                   f"perplexity {d.ppl[i, qk]:.4g} > SLO {d.slo_ppl[i]:g}")
            violations.append(f"task {i} on server {jj} ({d.servers[jj].name}) at {names[qk]} {why}")
        for jj in np.nonzero(demand > d.cap * (1 + _TOL) + _TOL)[0]:
            over = edge[~within & (j == jj)]
            violations.append(f"server {jj} ({d.servers[jj].name}) needs {demand[jj]:.6g} GPU-s > capacity "
                              f"{d.cap[jj]:.6g}; tasks beyond capacity: {_some(over)}")
        if d.memory == "aggregate":
            for jj in np.nonzero(wants > gb * (1 + _TOL) + _TOL)[0]:
                over = edge[~within & (j == jj)]
                violations.append(f"server {jj} ({d.servers[jj].name}) holds {wants[jj]:.6g} GB > memory "
                                  f"{gb[jj]:.6g} GB ({d.servers[jj].gpus} GPUs); tasks beyond capacity: {_some(over)}")
    if len(stranded):
        violations.append(f"tasks without a cloud option end in the cloud: {_some(stranded)}")
    if len(violations) > 20:
        violations = violations[:20] + [f"... and {len(violations) - 20} more"]
    details = {
        "tcr": float(len(edge[done]) / M),
        "edge_cost": edge_cost,
        "cloud_cost": cloud_cost,
        "edge_tasks": int(len(edge)),
        "failed_slo": int(np.sum(ran & ~admissible)),
        "overflowed": int(np.sum(~within)),
        "not_runnable": int(np.sum(~runnable)),
        "load_s": loads.tolist(),
        "capacity_s": d.cap.tolist(),
        "memory_gb": holds.tolist(),
        "memory_capacity_gb": gb.tolist(),
        "delta_cost": sum(cost["delta-cost"]),
        "gpu_seconds_cost": dollars,
        "tokens_per_dollar": tokens / dollars if d.cost is None and dollars > 0 else None,
        "full_information": d.full_information,
        **_token_times(d, edge[ran], j[ran], q[ran]),
    }
    objective = None if len(stranded) else edge_cost + cloud_cost
    return Evaluation(objective=objective, feasible=not violations, violations=violations, details=details)


def _token_times(d: Data, i: np.ndarray, j: np.ndarray, q: np.ndarray) -> dict:
    """The seed's serving metrics over the tasks run at the edge (task i on server j at quant q): time to first
    token and time per output token (mean, p95) and the share of those tasks within each SLO; None without TTFT
    figures in the file or without edge tasks."""
    keys = ("ttft_mean_s", "ttft_p95_s", "tpot_mean_s", "tpot_p95_s", "ttft_slo_met", "tpot_slo_met")
    if d.ttft is None or not len(i):
        return dict.fromkeys(keys)
    ttft = d.ttft[i, j, q]
    tpot = (d.lat[i, j, q] - ttft) / np.maximum(d.tasks.column("out_tokens")[i], 1)
    met_ttft = np.mean(ttft <= d.tasks.column("slo_ttft")[i])  # the rule of the admissibility check
    met_tpot = np.mean(tpot <= d.tasks.column("slo_tpot")[i])
    values = (np.mean(ttft), np.percentile(ttft, 95), np.mean(tpot), np.percentile(tpot, 95), met_ttft, met_tpot)
    return {k: float(v) for k, v in zip(keys, values)}


def _slo_miss(d: Data, i: int, j: int, q: int) -> str:
    """Which latency SLO of ``data.slo`` task i misses at (j, q), with the figures."""
    if d.slo == "latency":
        return f"latency {d.lat[i, j, q]:.4g} s > SLO {d.slo_lat[i]:g} s"
    ttft, slo = d.ttft[i, j, q], d.tasks[i]
    if ttft > slo.slo_ttft:
        return f"TTFT {ttft:.4g} s > SLO {slo.slo_ttft:g} s"
    return f"TPOT {(d.lat[i, j, q] - ttft) / max(slo.out_tokens, 1):.4g} s > SLO {slo.slo_tpot:g} s"


def _some(idx: np.ndarray, k: int = 10) -> str:
    shown = ", ".join(str(int(i)) for i in idx[:k])
    return shown + (f" ... ({len(idx)} in all)" if len(idx) > k else "")


# --- generator ------------------------------------------------------------------------------------
# Sources of every figure: instances/qllms/README.md.
# Model shapes: layers, params per decoder block, weight GB at fp16/int8/int4/int3 (llm_profiles
# architecture CSV totals; Mistral-7B from its public config), fp16 KV-cache bytes per token.
_MODELS = {
    "Llama-2-7B": dict(layers=32, block=202_383_360, weights=(13.477, 6.738, 3.369, 2.527), kv=524_288),
    "Llama-2-13B": dict(layers=40, block=317_204_480, weights=(26.032, 13.016, 6.508, 4.881), kv=819_200),
    "Mistral-7B": dict(layers=32, block=218_112_000, weights=(14.483, 7.242, 3.621, 2.716), kv=131_072),
}
_BLOCK_7B = 202_383_360
# WikiText-2 perplexity of Llama-2-7B, RTN (cs-giung/transformerx): fp16, int8, int4, int3.
_PPL_7B = (5.834, 5.822, 6.184, 10.55)
_PPL_BASE = {"Llama-2-7B": 1.0, "Llama-2-13B": 0.89, "Mistral-7B": 0.96}  # assumed fp16 ratios to 7B
_QUANTS = (("fp16", 16), ("int8", 8), ("int4", 4), ("int3", 3))
# Kernel factors vs fp16 (assumed, after the paper's measurement: int4 kernels beat int8 in decode).
_DECODE_Q = (1.0, 0.95, 0.55, 0.65)
_PREFILL_Q = (1.0, 1.35, 1.2, 1.3)
# vidur Llama-2-7B per-decoder-layer ms (excl. attention kernel), tensor parallel 1: tokens -> ms.
_VIDUR_TOKENS = (1, 128, 512, 1024, 2048, 4096)
_VIDUR_MS = {
    "A100": (0.2920, 0.3855, 1.0495, 2.1350, 4.2000, 8.2255),
    "A40": (0.7490, 0.9490, 2.2420, 4.3210, 8.1785, 16.6155),
    "H100": (0.1760, 0.2010, 0.3785, 0.6640, 1.2810, 2.6230),
}
# GPU: (memory GB, HBM GB/s, dense fp16 tensor TFLOPS, measured profile or None) — vendor datasheets.
_GPUS = {
    "A100-80GB": (80, 2039, 312.0, "A100"),
    "A100-40GB": (40, 1555, 312.0, None),
    "H100-80GB-PCIe": (80, 2000, 756.0, None),
    "H100-80GB-SXM": (80, 3350, 989.0, "H100"),
    "A40": (48, 696, 149.7, "A40"),
    "A6000": (48, 768, 154.8, None),
    "A10": (24, 600, 125.0, None),
    "RTX6000": (24, 672, 130.5, None),
    "V100": (16, 900, 125.0, None),
    "RTX4090": (24, 1008, 165.2, None),
    "RTX3090": (24, 936, 71.0, None),
}
_EDGE_PRICES = {"A100-80GB": 0.85, "A6000": 0.60, "RTX4090": 0.35, "RTX3090": 0.20}  # $/GPU-h, paper range
_LAMBDA_PRICES = {"A10": 0.75, "RTX6000": 0.50, "A6000": 0.80, "V100": 0.55, "A100-40GB": 1.29,
                  "A100-80GB": 1.79, "H100-80GB-PCIe": 2.49, "H100-80GB-SXM": 3.29}
_CLOUD_GPU, _CLOUD_PRICE = "A100-80GB", 1.79  # cloud fallback: fp16 on an on-demand A100-80GB
_OVERHEAD_GB = 1.0  # CUDA context and activations
_TTFT_S = 1.0  # paper: TTFT threshold 1 s, TPOT 50 ms, perplexity < 10
_LMSYS_MEAN_IN, _LMSYS_MEAN_OUT = 69.5, 214.5  # LMSYS-Chat-1M mean prompt / response tokens


def _layer_ms(gpu: str, tokens: np.ndarray) -> np.ndarray:
    """Per-decoder-layer ms of Llama-2-7B at fp16 for a batch of ``tokens``: measured, or scaled from A100.

    Decode (1 token) is memory bound: scaled by HBM bandwidth; larger batches are compute bound:
    scaled by tensor TFLOPS.
    """
    mem, bw, tflops, prof = _GPUS[gpu]
    if prof is not None:
        return np.interp(tokens, _VIDUR_TOKENS, _VIDUR_MS[prof])
    ref = np.interp(tokens, _VIDUR_TOKENS, _VIDUR_MS["A100"])
    return np.where(tokens <= 1, ref * _GPUS["A100-80GB"][1] / bw, ref * 312.0 / tflops)


def _truth(models: list[str], tin: np.ndarray, tout: np.ndarray, gpus: list[str], rng) -> tuple:
    """Ground-truth lat (M,N,Q), ppl (M,Q), need (M,Q), ttft (M,N,Q) from the profile figures, with 5 % noise.

    TTFT is the prefill of the prompt; the rest of the latency is ``out_tokens`` decode steps. One noise
    factor per (i, j, q) scales both, so TPOT = (lat - ttft) / out_tokens is the noisy per-token decode time.
    """
    M, N, Q = len(models), len(gpus), len(_QUANTS)
    lat = np.empty((M, N, Q))
    ttft = np.empty((M, N, Q))
    need = np.empty((M, Q))
    ppl = np.empty((M, Q))
    difficulty = rng.lognormal(0.0, 0.08, size=M)  # per-task text difficulty, shared by all levels
    for name, spec in _MODELS.items():
        rows = np.array([m == name for m in models])
        if not rows.any():
            continue
        scale = spec["layers"] * spec["block"] / _BLOCK_7B / 1000.0  # ms per 7B layer -> s per model
        for j, g in enumerate(gpus):
            pre = _layer_ms(g, tin[rows]) * scale
            dec = _layer_ms(g, np.ones(rows.sum())) * scale
            for q in range(Q):
                ttft[rows, j, q] = pre * _PREFILL_Q[q]
                lat[rows, j, q] = ttft[rows, j, q] + tout[rows] * dec * _DECODE_Q[q]
        kv = (tin[rows] + tout[rows]) * spec["kv"] / 1e9
        need[rows] = np.array(spec["weights"])[None, :] + kv[:, None] + _OVERHEAD_GB
        ppl[rows] = np.array(_PPL_7B)[None, :] * _PPL_BASE[name] * difficulty[rows, None]
    noise = rng.lognormal(0.0, 0.05, size=lat.shape)
    lat, ttft = lat * noise, ttft * noise
    mem = np.array([_GPUS[g][0] for g in gpus], dtype=float)
    lat[need[:, None, :] > mem[None, :, None]] = np.nan  # does not fit: not runnable
    ttft[np.isnan(lat)] = np.nan
    return lat, np.round(ppl, 4), np.round(need, 4), ttft


def generate(preset: str = "qllms", size: int | None = None, seed: int = 0, observe: float = 1.0,
             load: float = 1.0, gpus: int = 2, objective: str = "delta-cost", memory: str = "aggregate",
             slo: str = "ttft-tpot") -> Instance:
    """``size`` tasks (default 100) on the preset's server types; ``observe`` = fraction of entries measured.

    Options: ``observe`` in [0.2, 1] (each latency and perplexity entry is measured with this
    probability); ``load`` = total fastest-configuration GPU-seconds / edge capacity (sets the horizon);
    ``gpus`` per server type (the paper: 2); ``objective``, ``memory``, ``slo``: the readings of the
    problem (module docstring), the seed's by default. Every task gets the TTFT SLO 1 s and a TPOT SLO drawn
    in 20-50 ms; its whole-latency SLO is their sum over its output, 1 s + TPOT SLO * out_tokens.
    """
    M = 100 if size is None else int(size)
    if M < 1:
        raise InputError("--size", "must be >= 1 (tasks)")
    if not 0.2 <= float(observe) <= 1.0:
        raise InputError("observe", f"must be in [0.2, 1], got {observe}")
    if not float(load) > 0:
        raise InputError("load", f"must be > 0, got {load}")
    if int(gpus) < 1:
        raise InputError("gpus", f"must be >= 1, got {gpus}")
    for name, value, allowed in (("objective", objective, OBJECTIVES), ("memory", memory, MEMORY), ("slo", slo, SLOS)):
        if value not in allowed:
            raise InputError(name, f"must be one of {', '.join(allowed)}, got {value!r}")
    rng = np.random.default_rng(seed)
    prices = {"qllms": _EDGE_PRICES, "rtx3090": {"RTX3090": _EDGE_PRICES["RTX3090"]}, "hetero": _LAMBDA_PRICES}[preset]
    names = list(prices)
    models = list(rng.choice(list(_MODELS), size=M))
    # LMSYS-Chat-1M-like lengths: lognormal with the dataset's mean prompt / response tokens
    tin = np.clip(np.round(rng.lognormal(np.log(_LMSYS_MEAN_IN) - 0.5, 1.0, size=M)), 4, 2048)
    tout = np.clip(np.round(rng.lognormal(np.log(_LMSYS_MEAN_OUT) - 0.5, 1.0, size=M)), 4, 2048)
    lat, ppl, need, ttft = _truth(models, tin, tout, names, rng)
    tpot_slo = rng.uniform(0.02, 0.05, size=M)  # s per output token, paper's 50 ms at the loose end
    slo_lat = np.round(_TTFT_S + tpot_slo * tout, 3)
    slo_ppl = np.round(rng.uniform(6.0, 11.0, size=M), 3)
    cloud_lat = _truth(models, tin, tout, [_CLOUD_GPU], np.random.default_rng([seed, 2]))[0][:, 0, 0]
    cloud = np.round(_CLOUD_PRICE / 3600.0 * cloud_lat, 8)
    fastest = np.nanmin(lat.reshape(M, -1), axis=1)
    horizon = float(np.round(np.nansum(fastest) / (float(load) * int(gpus) * len(names)), 3))
    obs_rng = np.random.default_rng([seed, 1])
    p = float(observe)
    seen_lat = obs_rng.random(lat.shape) < p if p < 1 else None
    seen_ppl = obs_rng.random(ppl.shape) < p if p < 1 else None
    data = Data(
        horizon_s=max(horizon, 1e-3),
        tasks=[Task(name=f"t{i}", model=str(models[i]), in_tokens=int(tin[i]), out_tokens=int(tout[i]),
                    slo_lat=float(slo_lat[i]), slo_ttft=_TTFT_S, slo_tpot=float(np.round(tpot_slo[i], 4)),
                    slo_ppl=float(slo_ppl[i]), cloud=float(cloud[i])) for i in range(M)],
        servers=[Server(name=g, gpus=int(gpus), mem_gb=float(_GPUS[g][0]), price=prices[g]) for g in names],
        quants=[Quant(name=n, bits=b) for n, b in _QUANTS],
        lat=np.round(lat, 5), ppl=ppl, need=need, seen_lat=seen_lat, seen_ppl=seen_ppl,
        ttft=np.round(ttft, 5), objective=objective, memory=memory, slo=slo, cloud_price=_CLOUD_PRICE,
    )
    meta = {"generator": "edgeopt.problems.qllms.generate", "preset": preset, "size": M, "seed": seed,
            "options": {"observe": p, "load": float(load), "gpus": int(gpus), "objective": objective,
                        "memory": memory, "slo": slo}}
    name = f"{preset}-m{M}-obs{int(round(p * 100))}-s{seed}"
    return Instance(name=name, meta=meta, data=data)


def instance_bytes(preset: str, size: int | None, **_) -> float:
    """About the bytes generating and writing an instance takes: 8 KiB per task, measured peak RSS (5.7 KiB per
    task of the hetero preset at 100,000 tasks) with a margin."""
    return 8192.0 * (100 if size is None else size)

def small_instance(seed: int) -> Instance:
    """8-14 tasks on the QLLMS testbed, some with partial observation; the MILP solves it instantly."""
    rng = np.random.default_rng(seed)
    observe = (1.0, 0.5, 0.3)[seed % 3]
    return generate("qllms", size=int(rng.integers(8, 15)), seed=seed, observe=observe, load=1.5)
