"""``batching`` — dynamic batching with quantization of LLM requests on edge GPUs (OT-GAH, seed 001).

Requests arrive over time at an edge server of G GPUs that all run one LLM. The decision is a list of
batches: each batch is a set of requests, the GPU it runs on and the quantization level it runs at; the
batches of one GPU run one after another in the order listed. Maximize throughput: the requests served
(``objective: requests``), or their output tokens (``objective: tokens``).

Sets: requests i (arrival ``a_i`` s, prompt ``p_i`` and output ``o_i`` tokens, latency budget ``D_i`` s,
perplexity ceiling ``ppl_max_i``); GPUs g (memory ``M_g`` GB); quantization levels q (resident weights
``W_q`` GB, perplexity ``ppl_q``); batch sizes n = 1..B (the profiled sizes).

Parameters: ``prefill_ms[g][q][n-1]`` = ms per padded prompt position of a batch of n on g at q,
``decode_ms[g][q][n-1]`` = ms per decode step of that batch, both nondecreasing in n; ``kv_mb`` = KV-cache
MB per token of one sequence.

A batch b of n requests on GPU g at level q, with longest prompt ``P_b = max p_i`` and longest output
``O_b = max o_i`` over its members (static batching pads every member to them):

* latency ``T_b = (prefill_ms[g][q][n-1] P_b + decode_ms[g][q][n-1] O_b) / 1000`` s;
* start ``S_b = max(end of the previous batch on g, max a_i of its members)`` (0 for the first), end
  ``E_b = S_b + T_b``; every member's response is returned at ``E_b``;
* memory: ``W_q + n (P_b + O_b) kv_mb / 1000 <= M_g`` GB (weights of its level plus its padded KV cache;
  one batch is resident on a GPU at a time, switching levels between batches costs nothing);
* deadline: ``E_b <= a_i + D_i`` for every member; accuracy: ``ppl_q <= ppl_max_i`` for every member.

A request in no batch is not served (rejected). The referee counts a request as served when it is in a
batch that fits in memory and it meets its deadline and accuracy; every breach is a violation (the
solution is then infeasible, and its objective still counts only the served requests). Metrics: served
requests and output tokens, ``throughput_rps`` and ``tokens_per_s`` over the makespan (the last served
request's completion), mean batch size, late / inaccurate / out-of-memory counts, busy time per GPU.
The figures of the presets are sourced in ``instances/batching/README.md``.
"""
from __future__ import annotations

from functools import cached_property
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from edgeopt import model
from edgeopt.model import Array, InputError, Model, check, check_shape
from edgeopt.result import Evaluation

SENSE = "max"
# Axis labels with units for the experiment figures (``edgeopt experiment plot``), by column.
LABELS = {"objective": "served requests", "load": "load (arrivals over one-at-a-time fp16 service)"}

PRESETS = {
    "tx2": "the seed's testbed: Jetson TX2-class GPUs (1.33 TFLOPS fp16, 32 GB) running Llama-2-7B at "
           "fp16/int8/int4/int3, latency from a roofline calibrated on vidur's A100 profile "
           "(options gpus, load, max_batch, objective)",
    "small": "for the exact model: 1-2 TX2s, 2-3 levels, batches up to 4, tight deadlines and perplexity ceilings",
    "random": "random monotone profiles, memories and requests around the tx2 figures",
}
MAX_INDEX = 10_000_000
MAX_BATCH = 1024  # profiled batch sizes
_TOL = 1e-9


class Requests(Model):
    """One entry per request (column arrays, so that large files stay compact)."""

    arrival_s: Array(float, ge=0, le=1e6) = Field(description="a_i, arrival time, s (0 <= x <= 1e6)")
    in_tokens: Array(int, ge=1, le=1_000_000) = Field(description="p_i, prompt tokens (1 <= x <= 1e6)")
    out_tokens: Array(int, ge=1, le=1_000_000) = Field(description="o_i, output tokens (1 <= x <= 1e6)")
    deadline_s: Array(float, gt=0, le=1e6) = Field(description="D_i, latency budget from arrival to the "
                                                               "response, s (0 < x <= 1e6)")
    ppl_max: Array(float, gt=0, le=1e6) = Field(description="accuracy need: the highest perplexity the request "
                                                            "accepts (0 < x <= 1e6)")


class Quant(Model):
    name: str
    weights_gb: float = Field(ge=0, le=1e6, description="W_q, resident model memory at this level, GB "
                                                        "(0 <= x <= 1e6)")
    ppl: float = Field(gt=0, le=1e6, description="ppl_q, perplexity at this level (0 < x <= 1e6)")


class Gpu(Model):
    name: str
    mem_gb: float = Field(gt=0, le=1e6, description="M_g, memory, GB (0 < x <= 1e6)")


class Data(Model):
    objective: Literal["requests", "tokens"] = Field(
        "requests", description="maximize served requests, or their output tokens")
    kv_mb: float = Field(ge=0, le=1e3, description="KV-cache MB per token of one sequence (0 <= x <= 1e3)")
    requests: Requests
    gpus: list[Gpu] = Field(min_length=1, max_length=10_000)
    quants: list[Quant] = Field(min_length=1, max_length=100)
    prefill_ms: Array(float, 3, ge=1e-9, le=1e6) = Field(
        description="prefill_ms[g][q][n-1], ms per padded prompt position of a batch of n (1e-9 <= x <= 1e6)")
    decode_ms: Array(float, 3, ge=1e-9, le=1e6) = Field(
        description="decode_ms[g][q][n-1], ms per decode step of a batch of n (1e-9 <= x <= 1e6)")

    @model_validator(mode="after")
    def _consistent(self):
        r = self.requests
        R = len(r.arrival_s)
        check(R >= 1, "data.requests.arrival_s", "must list at least one request")
        check(R <= MAX_INDEX, "data.requests.arrival_s", f"must list at most {MAX_INDEX} requests")
        for name in ("in_tokens", "out_tokens", "deadline_s", "ppl_max"):
            n = len(getattr(r, name))
            check(n == R, f"data.requests.{name}", f"must have one entry per request ({R}, as arrival_s), got {n}")
        G, Q = len(self.gpus), len(self.quants)
        B = self.prefill_ms.shape[2] if self.prefill_ms.ndim == 3 else 0
        check(1 <= B <= MAX_BATCH, "data.prefill_ms", f"must profile batch sizes 1..B with 1 <= B <= {MAX_BATCH}")
        check_shape(self.prefill_ms, (G, Q, B), "data.prefill_ms", "(gpus, quants, batch sizes)")
        check_shape(self.decode_ms, (G, Q, B), "data.decode_ms", "(gpus, quants, batch sizes)")
        for name in ("prefill_ms", "decode_ms"):
            arr = getattr(self, name)
            ok = np.ones(arr.shape, bool)
            ok[:, :, 1:] = arr[:, :, 1:] >= arr[:, :, :-1]
            check(ok, f"data.{name}", "must be nondecreasing in the batch size (a larger batch is never faster)")
        names = [q.name for q in self.quants]
        check(len(set(names)) == len(names), "data.quants", "must have distinct names")
        return self

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(requests, gpus, quants, largest batch size)."""
        return len(self.requests.arrival_s), len(self.gpus), len(self.quants), self.prefill_ms.shape[2]

    @cached_property
    def due(self) -> np.ndarray:
        """(R,) absolute deadline a_i + D_i, s."""
        return self.requests.arrival_s + self.requests.deadline_s

    @cached_property
    def weight(self) -> np.ndarray:
        """(R,) what serving a request is worth: 1, or its output tokens."""
        r = self.requests
        return np.ones(len(r.arrival_s)) if self.objective == "requests" else r.out_tokens.astype(float)

    @cached_property
    def mem(self) -> np.ndarray:
        return np.array([g.mem_gb for g in self.gpus])

    @cached_property
    def weights_gb(self) -> np.ndarray:
        return np.array([q.weights_gb for q in self.quants])

    @cached_property
    def ppl(self) -> np.ndarray:
        return np.array([q.ppl for q in self.quants])

    @cached_property
    def accurate(self) -> np.ndarray:
        """(R, Q) level q meets request i's accuracy need."""
        return self.ppl[None, :] <= self.requests.ppl_max[:, None]

    def latency_s(self, g, q, n, longest_in, longest_out):
        """Batch latency T, s (broadcasts over arrays of indices and lengths)."""
        return (self.prefill_ms[g, q, n - 1] * longest_in + self.decode_ms[g, q, n - 1] * longest_out) / 1000.0

    def fits(self, g, q, n, longest_in, longest_out):
        """The batch's weights and padded KV cache fit in the GPU's memory."""
        need = self.weights_gb[q] + n * (longest_in + longest_out) * self.kv_mb / 1000.0
        return need <= self.mem[g] * (1 + _TOL) + _TOL


    @cached_property
    def alone_s(self) -> np.ndarray:
        """(G, Q, R) latency of each request in a batch by itself, inf where the level or memory rules it out."""
        G, Q = self.shape[1:3]
        r = self.requests
        g, q = np.arange(G)[:, None, None], np.arange(Q)[None, :, None]
        ok = self.accurate.T[None] & self.fits(g, q, 1, r.in_tokens, r.out_tokens)
        return np.where(ok, self.latency_s(g, q, 1, r.in_tokens, r.out_tokens), np.inf)

    @cached_property
    def share_s(self) -> np.ndarray:
        """(G, R) least busy time request i costs GPU g in any batch: min over q, n of T(g, q, n, p_i, o_i) / n.

        A batch of n lasts at least as long as each member would at that size by itself (latency grows with
        the longest lengths), so its length is at least the sum of its members' shares.
        """
        G, Q, B = self.shape[1:]
        r = self.requests
        g, q = np.arange(G)[:, None, None, None], np.arange(Q)[None, :, None, None]
        n = np.arange(1, B + 1)[None, None, :, None]
        ok = self.accurate.T[:, None, :][None] & self.fits(g, q, n, r.in_tokens, r.out_tokens)
        return np.where(ok, self.latency_s(g, q, n, r.in_tokens, r.out_tokens) / n, np.inf).min(axis=(1, 2))


def gap_bound(d: Data, free: np.ndarray, is_open: np.ndarray, pending: np.ndarray) -> float:
    """Upper bound on the value the ``pending`` requests can still add when GPU g is free from ``free[g]``.

    A relaxation of a generalized assignment: request i may go to an open GPU g only if it can finish there
    in time by itself; it then costs g at least ``share_s[g, i]`` of busy time, and g has at most
    ``max due - free_g`` of it for those requests. Pooling the GPUs' time into one knapsack and allowing
    fractions gives a fractional knapsack by value per second, which bounds the assignment from above.
    """
    a, due = d.requests.arrival_s, d.due
    fastest = d.alone_s.min(axis=1)  # (G, R)
    can = pending[None, :] & is_open[:, None] & (np.maximum(free[:, None], a[None, :]) + fastest <= due + _TOL)
    if not can.any():
        return 0.0
    horizon = np.where(can, due[None, :], -np.inf).max(axis=1)
    capacity = float(np.sum(np.maximum(horizon - free, 0.0)[can.any(axis=1)]))
    cost = np.where(can, d.share_s, np.inf).min(axis=0)
    items = np.isfinite(cost)
    w, c = d.weight[items], cost[items]
    order = np.argsort(-w / np.maximum(c, 1e-300), kind="stable")
    w, c = w[order], c[order]
    used = np.cumsum(c)
    full = used <= capacity
    k = int(full.sum())
    value = float(w[full].sum())
    if k < len(c):  # the fractional item
        value += float(w[k] * (capacity - (used[k - 1] if k else 0.0)) / c[k])
    return value


class Instance(model.Instance):
    problem = "batching"
    data: Data


class Batch(Model):
    gpu: int = Field(ge=0, le=MAX_INDEX, description="GPU index (0 <= x <= 1e7)")
    quant: int = Field(ge=0, le=MAX_INDEX, description="quantization level index (0 <= x <= 1e7)")
    requests: Array(int, 1, ge=0, le=MAX_INDEX) = Field(description="request indices of the batch (0 <= x <= 1e7)")


class Solution(Model):
    batches: list[Batch] = Field(default_factory=list, description="the batches; on each GPU they run in the "
                                                                   "order listed. A request in none is rejected")


def _check_solution(d: Data, s: Solution) -> None:
    R, G, Q, B = d.shape
    seen = np.zeros(R, dtype=bool)
    for k, b in enumerate(s.batches):
        where = f"solution.batches[{k}]"
        check(b.gpu < G, f"{where}.gpu", f"must be a GPU index 0..{G - 1}")
        check(b.quant < Q, f"{where}.quant", f"must be a level index 0..{Q - 1}")
        check(1 <= len(b.requests) <= B, f"{where}.requests", f"must hold 1..{B} requests (the profiled batch sizes)")
        check(b.requests < R, f"{where}.requests", f"must be request indices 0..{R - 1}")
        again = seen[b.requests] | (np.bincount(b.requests, minlength=R)[b.requests] > 1)
        check(~again, f"{where}.requests", "must not repeat a request (each request is in at most one batch)")
        seen[b.requests] = True


def schedule(d: Data, batches: list[Batch]) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of every batch, s: each GPU runs its batches in list order, a batch waits for its members."""
    free = np.zeros(len(d.gpus))
    start, end = np.empty(len(batches)), np.empty(len(batches))
    r = d.requests
    for k, b in enumerate(batches):
        idx = b.requests
        start[k] = max(free[b.gpu], float(r.arrival_s[idx].max()))
        end[k] = start[k] + d.latency_s(b.gpu, b.quant, len(idx), r.in_tokens[idx].max(), r.out_tokens[idx].max())
        free[b.gpu] = end[k]
    return start, end


def evaluate(instance: Instance, solution: Solution) -> Evaluation:
    """The referee: batch times from the profile, deadlines, memory and accuracy; served requests or tokens."""
    d = instance.data
    R, G = d.shape[:2]
    _check_solution(d, solution)
    r = d.requests
    start, end = schedule(d, solution.batches)
    served = np.zeros(R, dtype=bool)
    done = np.full(R, np.nan)
    busy = np.zeros(G)
    violations: list[str] = []
    late = inaccurate = no_memory = 0
    sizes = []
    for k, b in enumerate(solution.batches):
        idx, n = b.requests, len(b.requests)
        sizes.append(n)
        P, O = int(r.in_tokens[idx].max()), int(r.out_tokens[idx].max())
        busy[b.gpu] += end[k] - start[k]
        fits = bool(d.fits(b.gpu, b.quant, n, P, O))
        on_time = end[k] <= d.due[idx] + _TOL * np.maximum(1.0, d.due[idx])
        accurate = d.accurate[idx, b.quant]
        if not fits:
            no_memory += n
            need = d.weights_gb[b.quant] + n * (P + O) * d.kv_mb / 1000.0
            violations.append(f"batch {k} on GPU {b.gpu} ({d.gpus[b.gpu].name}) at {d.quants[b.quant].name} needs "
                              f"{need:.6g} GB > {d.mem[b.gpu]:g} GB")
        for i in idx[~on_time]:
            violations.append(f"request {int(i)} ends at {end[k]:.6g} s > its deadline {d.due[i]:.6g} s (batch {k})")
        for i in idx[~accurate]:
            violations.append(f"request {int(i)} at {d.quants[b.quant].name}: perplexity {d.ppl[b.quant]:g} > "
                              f"its ceiling {r.ppl_max[i]:g} (batch {k})")
        late += int(np.sum(~on_time))
        inaccurate += int(np.sum(~accurate))
        ok = idx[on_time & accurate & fits]
        served[ok] = True
        done[ok] = end[k]
    if len(violations) > 20:
        violations = violations[:20] + [f"... and {len(violations) - 20} more"]
    n_served = int(served.sum())
    tokens = int(r.out_tokens[served].sum())
    makespan = float(np.max(done[served])) if n_served else 0.0
    details = {
        "served": n_served,
        "served_tokens": tokens,
        "rejected": int(R - sum(sizes)),
        "batches": len(sizes),
        "mean_batch_size": float(np.mean(sizes)) if sizes else 0.0,
        "makespan_s": makespan,
        "throughput_rps": n_served / makespan if makespan > 0 else 0.0,
        "tokens_per_s": tokens / makespan if makespan > 0 else 0.0,
        "late": late,
        "inaccurate": inaccurate,
        "out_of_memory": no_memory,
        "busy_s": busy.tolist(),
    }
    return Evaluation(objective=float(d.weight[served].sum()), feasible=not violations, violations=violations,
                      details=details)


# --- generator ------------------------------------------------------------------------------------
# Sources of every figure: instances/batching/README.md.
# Llama-2-7B (llm_profiles architecture CSV): parameters, bytes per decoder layer at fp16, fp16 KV bytes/token.
_PARAMS_7B = 6_738_415_616
_LAYER_PARAMS_7B = 202_383_360
_KV_BYTES_7B = 524_288  # 2 (K, V) * 32 layers * 4096 hidden * 2 bytes
# levels: name, bits per weight, WikiText-2 perplexity of Llama-2-7B with RTN (cs-giung/transformerx)
_QUANTS = (("fp16", 16, 5.834), ("int8", 8, 5.822), ("int4", 4, 6.184), ("int3", 3, 10.55))
# compute-time factors vs fp16 for dequantizing kernels: assumed (as in the qllms preset)
_COMPUTE_Q = {"fp16": 1.0, "int8": 1.35, "int4": 1.2, "int3": 1.3}
# vidur Llama-2-7B on A100 (TP 1), per decoder layer excl. the attention kernel: 1 token 0.2920 ms, 4096 tokens
# 8.2255 ms; A100-80GB datasheet: 2039 GB/s, 312 dense fp16 TFLOPS. Achieved fractions of the roofline:
_ETA_BW = (2 * _LAYER_PARAMS_7B / 2039e9) / 0.2920e-3  # decode of 1 token: weight bytes / bandwidth
_ETA_TF = (4096 * 2 * _LAYER_PARAMS_7B / 312e12) / 8.2255e-3  # 4096-token prefill: FLOPs / tensor throughput
# the seed's edge GPU: 1.33 TFLOPS and 32 GB (its notes); 59.7 GB/s LPDDR4 (NVIDIA Jetson TX2 datasheet)
_TX2 = {"tflops": 1.33, "mem_gb": 32.0, "bw_gbs": 59.7}
_RUNTIME_GB = 1.0  # CUDA context and activations, assumed
_LMSYS_MEAN_IN, _LMSYS_MEAN_OUT = 69.5, 214.5  # LMSYS-Chat-1M mean prompt / response tokens


def profile(tflops: float, bw_gbs: float, quants=_QUANTS, max_batch: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(prefill_ms, decode_ms), each (Q, B), of Llama-2-7B on a GPU: the roofline at vidur's achieved fractions.

    A decode step of n sequences reads the weights once and does n tokens' FLOPs; prefill does the FLOPs of
    every padded prompt position (compute bound: on a TX2 the crossover is ~20 tokens per batch).
    """
    n = np.arange(1, max_batch + 1, dtype=float)
    flops = 2.0 * _PARAMS_7B
    pre, dec = [], []
    for name, bits, _ in quants:
        compute_ms = flops / (tflops * 1e12 * _ETA_TF) * 1e3 * _COMPUTE_Q[name]
        read_ms = _PARAMS_7B * bits / 8 / (bw_gbs * 1e9 * _ETA_BW) * 1e3
        pre.append(n * compute_ms)
        dec.append(np.maximum(read_ms, n * compute_ms))
    return np.array(pre), np.array(dec)


def _requests(rng, R: int, rate: float, slack: tuple, ppl: tuple, alone_s) -> dict:
    """Poisson arrivals at ``rate``; LMSYS-like lengths; deadline = slack x the time alone; perplexity ceiling."""
    arrival = np.r_[0.0, np.cumsum(rng.exponential(1.0 / rate, size=R - 1))]
    tin = np.clip(np.round(rng.lognormal(np.log(_LMSYS_MEAN_IN) - 0.5, 1.0, size=R)), 4, 1024).astype(int)
    tout = np.clip(np.round(rng.lognormal(np.log(_LMSYS_MEAN_OUT) - 0.5, 1.0, size=R)), 4, 512).astype(int)
    deadline = rng.uniform(*slack, size=R) * alone_s(tin, tout)
    return {"arrival_s": np.round(arrival, 3), "in_tokens": tin, "out_tokens": tout,
            "deadline_s": np.round(deadline, 3), "ppl_max": np.round(rng.uniform(*ppl, size=R), 3)}


def generate(preset: str = "tx2", size: int | None = None, seed: int = 0, gpus: int | None = None,
             load: float = 3.0, max_batch: int | None = None, objective: str = "requests") -> Instance:
    """``size`` requests (default 40; small: 6) arriving as a Poisson stream.

    Options: ``gpus`` (tx2 default 3, the seed's vehicle; small 1-2 by seed); ``load`` = arrival rate over
    what the GPUs serve one at a time at fp16 (default 3: batching is needed); ``max_batch`` = largest
    profiled batch (tx2 / random 8, small 4); ``objective`` requests|tokens.
    """
    R = (6 if preset == "small" else 40) if size is None else int(size)
    if R < 1:
        raise InputError("--size", "must be >= 1 (requests)")
    if not float(load) > 0:
        raise InputError("load", f"must be > 0, got {load}")
    if objective not in ("requests", "tokens"):
        raise InputError("objective", f"must be requests or tokens, got {objective!r}")
    rng = np.random.default_rng(seed)
    if preset == "small":
        G = int(rng.integers(1, 3)) if gpus is None else int(gpus)
        B = 4 if max_batch is None else int(max_batch)
        levels = [_QUANTS[0], _QUANTS[2]] + ([_QUANTS[3]] if rng.random() < 0.5 else [])
    else:
        G = 3 if gpus is None else int(gpus)
        B = 8 if max_batch is None else int(max_batch)
        levels = list(_QUANTS)
    if not 1 <= G <= 10_000:
        raise InputError("gpus", f"must be in 1..10000, got {G}")
    if not 1 <= B <= MAX_BATCH:
        raise InputError("max_batch", f"must be in 1..{MAX_BATCH}, got {B}")
    pre, dec = profile(_TX2["tflops"], _TX2["bw_gbs"], levels, B)
    pre, dec = np.repeat(pre[None], G, axis=0), np.repeat(dec[None], G, axis=0)
    mem = np.full(G, _TX2["mem_gb"])
    if preset == "random":  # GPUs from 0.5x to 2x the TX2, memories 16-64 GB
        speed = rng.uniform(0.5, 2.0, size=G)
        pre, dec = pre / speed[:, None, None], dec / speed[:, None, None]
        mem = np.round(rng.uniform(16.0, 64.0, size=G), 1)
    weights = [_PARAMS_7B * bits / 8 / 1e9 + _RUNTIME_GB for _, bits, _ in levels]

    def alone_s(tin, tout):  # the request by itself at fp16 on GPU 0
        return (pre[0, 0, 0] * tin + dec[0, 0, 0] * tout) / 1000.0

    mean_alone = float(np.mean(alone_s(_LMSYS_MEAN_IN, _LMSYS_MEAN_OUT)))
    rate = float(load) * G / mean_alone
    slack = {"tx2": (1.5, 4.0), "small": (0.5, 1.5), "random": (1.2, 6.0)}[preset]
    ppl = (5.83, 6.5) if preset == "small" else (6.0, 11.0)
    data = Data(
        objective=objective, kv_mb=_KV_BYTES_7B / 1e6,
        requests=Requests(**_requests(rng, R, rate, slack, ppl, alone_s)),
        gpus=[Gpu(name=f"{'tx2' if preset != 'random' else 'gpu'}-{g}", mem_gb=float(mem[g])) for g in range(G)],
        quants=[Quant(name=name, weights_gb=round(w, 4), ppl=ppl) for (name, _, ppl), w in zip(levels, weights)],
        prefill_ms=np.round(pre, 4), decode_ms=np.round(dec, 4),
    )
    meta = {"generator": "edgeopt.problems.batching.generate", "preset": preset, "size": R, "seed": seed,
            "options": {"gpus": G, "load": float(load), "max_batch": B, "objective": objective}}
    name = f"{preset}-r{R}-g{G}-b{B}-l{float(load):g}-s{seed}" + ("-tokens" if objective == "tokens" else "")
    return Instance(name=name, meta=meta, data=data)


def instance_bytes(preset: str, size: int | None, gpus: int | None = None, max_batch: int | None = None, **_) -> float:
    """About the bytes generating and writing an instance takes: 1 KiB per request and 200 bytes per profiled
    (GPU, level, batch size), measured peak RSS (0.16 KiB per request at 100,000) with a margin."""
    R = (6 if preset == "small" else 40) if size is None else size
    return 1024.0 * R + 200.0 * (gpus or 3) * 4 * (max_batch or 8)

def small_instance(seed: int) -> Instance:
    """5-7 requests on 1-2 GPUs, 2-3 levels, batches up to 4; the MILP proves the optimum in about a second."""
    rng = np.random.default_rng([seed, 7])
    return generate("small", size=int(rng.integers(5, 8)), seed=seed,
                    objective=("requests", "tokens")[seed % 2])
