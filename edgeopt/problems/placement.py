"""``placement`` — multi-LLM placement and cascade routing on edge GPUs (Multi-LLM survey, seed 004).

Sets and parameters (units in brackets):
- devices i (``data.devices``): memory ``mem_gb`` [GB], compute ``compute`` [TFLOP/s];
- models j (``data.models``, an LLM family at a quantization level): memory ``mem_gb`` [GB] (weights,
  KV-cache reserve, runtime), compute ``compute`` [TFLOP/s] it reserves where it is placed;
- request types r (``data.types``): ``count`` requests in the planning window;
- ``time_s[r][j][i]`` [s]: device i's busy time to serve one request of type r with model j;
- ``error[r][j]`` [probability]: model j answers a request of type r wrongly; null = j cannot serve r;
- cascades c (``data.cascades``), each serving ALL requests of one type ``type``: levels k = 1..K, each a
  set of models that all run on a request reaching the level. A request reaching level k lands in bin b
  with probability ``prob[b]`` and is then answered correctly with probability ``correct[b]``. For a
  one-model level the bins are confidence bins (low to high); for an N-model level (the agreement
  variant) bin b means "b of the N models agree". Levels are independent: the bin at level k does not
  depend on the bins seen before (a stated simplification of the per-level histograms);
- ``lam`` [s per expected wrong answer]: λ, the price of an error in the objective.

Decisions (``Solution``):
- ``device[j]``: the device of model j — the binary x_ij = [device[j] = i]; every model is placed exactly
  once (the seed's sum_i x_ij = 1);
- ``share[r][j]``: the fraction of type r's requests routed to model j (types without a cascade; rows of
  cascade types are all 0);
- ``thresholds[c][k]``, k < K: the request leaves level k when its bin is >= the threshold, else it
  escalates (0 = always exit, len(prob) = always escalate); the last level always answers. A confidence
  threshold is a bin edge; an agreement threshold is m of "at least m of N agree".

Constraints: sum_j x_ij mem_j <= mem_i and sum_j x_ij compute_j <= compute_i for every device; every
non-cascade type's shares are >= 0, only on models that can serve it, and sum to 1.

Objective (min): max_i L_i + λ · E[wrong answers], where the device latency L_i = the expected busy time
of device i for the window's load: sum_r count_r sum_j share_rj time_s[r][j][i] over the models on i,
plus, for every cascade, count · P(reach level k) · time_s[type][j][i] for each level-k model j on i,
with P(reach 1) = 1 and P(reach k+1) = P(reach k) · P(bin_k < threshold_k). E[wrong answers] =
sum_r count_r sum_j share_rj error_rj + sum_c count · (1 - sum_k P(reach k) sum_{b >= thr_k} prob_kb correct_kb).
With λ = 0 and no cascades this is the seed's min-max placement. Thresholds and placement are ONE
decision: a cascade's loads depend on its thresholds and its devices, and the MILP chooses both.

Metrics (``details``): per-device load and memory, max load, expected wrong answers and error rate,
the mean request latency (expected busy time per request), per-cascade reach probabilities.
Figures of the presets: ``instances/placement/README.md``.
"""
from __future__ import annotations

import itertools
from functools import cached_property
from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from edgeopt import model
from edgeopt.model import Array, InputError, Model, check, check_shape
from edgeopt.result import Evaluation

SENSE = "min"
# Axis labels with units for the experiment figures (``edgeopt experiment plot``), by column.
LABELS = {"objective": "max device latency + λ · wrong answers (s)", "lam": "λ (s per expected wrong answer)",
          "details.error_rate": "expected error rate"}

PRESETS = {
    "edge": "Llama-2-7B/13B, Mistral-7B, Qwen2-0.5B/7B at fp16/int8/int4 on A10, RTX6000, A6000, V100, A40; "
            "chat/summarize/code/QA request types, a 3-level confidence cascade and a 3-model agreement level",
    "small": "2-4 devices, 3-5 models, one 2-level cascade with 4 bins: the MILP solves it in well under a second",
    "random": "random devices, models, times, errors and cascades (size = models)",
}
_SUM_TOL = 1e-6  # distributions and share rows sum to 1 within this
_CAP_TOL = 1e-9  # relative slack on memory and compute sums
MAX_INDEX = 1_000_000
MAX_THETAS = 100_000  # threshold combinations per cascade the exact model may enumerate


class Device(Model):
    name: str
    mem_gb: float = Field(gt=0, le=1e6, description="memory, GB (0 < x <= 1e6)")
    compute: float = Field(gt=0, le=1e9, description="compute capacity, TFLOP/s (0 < x <= 1e9)")


class LLM(Model):
    name: str
    family: str = ""
    quant: str = ""
    mem_gb: float = Field(ge=0, le=1e6, description="memory the model takes where it is placed, GB (0 <= x <= 1e6)")
    compute: float = Field(ge=0, le=1e9, description="compute the model reserves, TFLOP/s (0 <= x <= 1e9)")


class RequestType(Model):
    name: str
    count: float = Field(ge=0, le=1e12, description="requests of this type in the window (0 <= x <= 1e12)")


class Level(Model):
    models: list[Annotated[int, Field(ge=0, le=MAX_INDEX)]] = Field(
        min_length=1, description="models that all run on a request reaching the level (indices 0 <= x <= 1e6)")
    prob: Array(float, 1, ge=0, le=1) = Field(description="probability of each bin (sums to 1)")
    correct: Array(float, 1, ge=0, le=1) = Field(description="probability the answer is right, per bin")


class Cascade(Model):
    name: str
    type: int = Field(ge=0, lt=MAX_INDEX, description="the request type the cascade serves (an index)")
    levels: list[Level] = Field(min_length=1, max_length=16)


class Data(Model):
    lam: float = Field(0.0, ge=0, le=1e12, description="λ, s per expected wrong answer (0 <= x <= 1e12)")
    devices: list[Device] = Field(min_length=1, max_length=MAX_INDEX)
    models: list[LLM] = Field(min_length=1, max_length=MAX_INDEX)
    types: list[RequestType] = Field(min_length=1, max_length=MAX_INDEX)
    cascades: list[Cascade] = Field(default_factory=list)
    time_s: Array(float, 3, ge=0, le=1e9) = Field(description="busy time per request, s, (types, models, devices)")
    error: Array(float, 2, nullable=True, ge=0, le=1) = Field(
        description="error probability (types, models) (0 <= x <= 1); null = the model cannot serve the type")

    @model_validator(mode="after")
    def _consistent(self):
        R, M, D = self.shape
        check_shape(self.time_s, (R, M, D), "data.time_s", "(types, models, devices)")
        check_shape(self.error, (R, M), "data.error", "(types, models)")
        seen: dict[int, int] = {}
        for c, cas in enumerate(self.cascades):
            path = f"data.cascades[{c}]"
            check(cas.type < R, f"{path}.type", f"must be a request type index 0..{R - 1}")
            if cas.type in seen:
                raise InputError(f"{path}.type", f"must differ from cascades[{seen[cas.type]}].type: "
                                                 "a request type has at most one cascade")
            seen[cas.type] = c
            used: set[int] = set()
            for k, lev in enumerate(cas.levels):
                lp = f"{path}.levels[{k}]"
                for n, j in enumerate(lev.models):
                    check(0 <= j < M, f"{lp}.models[{n}]", f"must be a model index 0..{M - 1}")
                    check(j not in used, f"{lp}.models[{n}]", "must not appear twice in one cascade")
                    used.add(j)
                check(len(lev.prob) >= 1, f"{lp}.prob", "must list at least one bin")
                check_shape(lev.correct, lev.prob.shape, f"{lp}.correct", "(bins of prob,)")
                check(abs(lev.prob.sum() - 1.0) <= _SUM_TOL, f"{lp}.prob", "must sum to 1")
        for r in range(R):
            if r not in seen and np.isnan(self.error[r]).all():
                raise InputError(f"data.error[{r}]", "must have a model that can serve the type (all null, "
                                                     "and the type has no cascade)")
        return self

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.types), len(self.models), len(self.devices)

    @cached_property
    def count(self) -> np.ndarray:
        return np.array([t.count for t in self.types])

    @cached_property
    def model_mem(self) -> np.ndarray:
        return np.array([m.mem_gb for m in self.models])

    @cached_property
    def model_compute(self) -> np.ndarray:
        return np.array([m.compute for m in self.models])

    @cached_property
    def device_mem(self) -> np.ndarray:
        return np.array([dv.mem_gb for dv in self.devices])

    @cached_property
    def device_compute(self) -> np.ndarray:
        return np.array([dv.compute for dv in self.devices])

    @cached_property
    def routed(self) -> np.ndarray:
        """(R,) the types routed by shares (no cascade)."""
        out = np.ones(len(self.types), dtype=bool)
        out[[c.type for c in self.cascades]] = False
        return out

    def cascade_options(self, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every threshold vector of cascade c with its reach probabilities and expected wrong answers.

        Returns ``(thetas (T, K-1) int, reach (T, K), wrong (T,))`` per request: the finite candidate
        set (each threshold one of 0..bins) that makes a cascade linear in a model — one binary per row.
        """
        levels = self.cascades[c].levels
        K = len(levels)
        thetas = np.array(list(itertools.product(*[range(len(lev.prob) + 1) for lev in levels[:-1]])),
                          dtype=np.int64).reshape(-1, K - 1)
        if len(thetas) > MAX_THETAS:
            raise InputError(f"data.cascades[{c}].levels", f"has {len(thetas)} threshold combinations; "
                                                           f"at most {MAX_THETAS} can be enumerated")
        T = len(thetas)
        reach = np.ones((T, K))
        right = np.zeros(T)
        for k, lev in enumerate(levels):
            tail = np.concatenate([np.cumsum((lev.prob * lev.correct)[::-1])[::-1], [0.0]])  # P(bin >= t, right)
            below = np.concatenate([[0.0], np.cumsum(lev.prob)])  # P(bin < t)
            t = thetas[:, k] if k < K - 1 else np.zeros(T, dtype=np.int64)
            right += reach[:, k] * tail[t]
            if k < K - 1:
                reach[:, k + 1] = reach[:, k] * below[t]
        return thetas, reach, 1.0 - right


class Instance(model.Instance):
    problem = "placement"
    data: Data


class Solution(Model):
    device: Array(int, 1, ge=0, le=MAX_INDEX) = Field(description="device index of every model")
    share: Array(float, 2, ge=0, le=1) = Field(description="fraction of each type's requests per model, "
                                                           "(types, models); rows of cascade types are 0")
    thresholds: list[list[Annotated[int, Field(ge=0, le=MAX_INDEX)]]] = Field(
        default=[], description="per cascade, the bin threshold of every level but the last (0..bins)")


def _check_solution(d: Data, s: Solution) -> None:
    R, M, D = d.shape
    if s.device.shape != (M,):
        raise InputError("solution.device", f"must list one device per model ({M}), got {s.device.shape[0]}")
    check(s.device < D, "solution.device", f"must be a device index 0..{D - 1}")
    if s.share.shape != (R, M):
        raise InputError("solution.share", f"must have shape (types, models) = {(R, M)}, got {s.share.shape}")
    if len(s.thresholds) != len(d.cascades):
        raise InputError("solution.thresholds", f"must list one entry per cascade ({len(d.cascades)}), "
                                                f"got {len(s.thresholds)}")
    for c, (cas, thr) in enumerate(zip(d.cascades, s.thresholds)):
        K = len(cas.levels)
        if len(thr) != K - 1:
            raise InputError(f"solution.thresholds[{c}]", f"must list one threshold per level but the last "
                                                           f"({K - 1}), got {len(thr)}")
        for k, t in enumerate(thr):
            bins = len(cas.levels[k].prob)
            if not 0 <= t <= bins:
                raise InputError(f"solution.thresholds[{c}][{k}]", f"must be a bin threshold 0..{bins}, got {t}")


def evaluate(instance: Instance, solution: Solution) -> Evaluation:
    """The referee: device loads, memory and compute, shares, cascade reach and errors, from the spec."""
    d = instance.data
    R, _, D = d.shape
    _check_solution(d, solution)
    dev, share = solution.device, solution.share
    violations: list[str] = []

    load = np.zeros(D)
    busy = 0.0  # expected busy seconds summed over all requests (for the mean request latency)
    wrong = 0.0
    for r in range(R):
        if not d.routed[r]:
            if share[r].any():
                violations.append(f"type {r} ({d.types[r].name}) is served by a cascade and must have no shares")
            continue
        total = share[r].sum()
        if abs(total - 1.0) > _SUM_TOL:
            violations.append(f"shares of type {r} ({d.types[r].name}) sum to {total:.6g}, not 1")
        for j in np.nonzero(share[r] > 0)[0]:
            if np.isnan(d.error[r, j]):
                violations.append(f"type {r} ({d.types[r].name}) is routed to model {j} ({d.models[j].name}), "
                                  "which cannot serve it")
                continue
            work = d.count[r] * share[r, j] * d.time_s[r, j, dev[j]]
            load[dev[j]] += work
            busy += work
            wrong += d.count[r] * share[r, j] * d.error[r, j]

    cascades = []
    for c, cas in enumerate(d.cascades):
        n = d.count[cas.type]
        reach, right, reaches = 1.0, 0.0, []
        for k, lev in enumerate(cas.levels):
            reaches.append(reach)
            for j in lev.models:
                work = n * reach * d.time_s[cas.type, j, dev[j]]
                load[dev[j]] += work
                busy += work
            thr = solution.thresholds[c][k] if k < len(cas.levels) - 1 else 0
            right += reach * float(np.sum(lev.prob[thr:] * lev.correct[thr:]))
            reach *= float(np.sum(lev.prob[:thr]))
        wrong += n * (1.0 - right)
        cascades.append({"reach": reaches, "error_rate": 1.0 - right})

    mem = np.bincount(dev, weights=d.model_mem, minlength=D)
    comp = np.bincount(dev, weights=d.model_compute, minlength=D)
    for i in range(D):
        name = d.devices[i].name
        if mem[i] > d.device_mem[i] * (1 + _CAP_TOL) + _CAP_TOL:
            violations.append(f"device {i} ({name}) holds {mem[i]:.6g} GB > mem_gb {d.device_mem[i]:g}")
        if comp[i] > d.device_compute[i] * (1 + _CAP_TOL) + _CAP_TOL:
            violations.append(f"device {i} ({name}) reserves {comp[i]:.6g} TFLOP/s > compute {d.device_compute[i]:g}")
    requests = float(d.count.sum())
    details = {
        "max_load_s": float(load.max()),
        "load_s": load.tolist(),
        "mem_gb": mem.tolist(),
        "expected_wrong": wrong,
        "error_rate": wrong / requests if requests else 0.0,
        "mean_request_s": busy / requests if requests else 0.0,
        "cascades": cascades,
    }
    return Evaluation(objective=float(load.max()) + d.lam * wrong, feasible=not violations,
                      violations=violations, details=details)


# --- generator ------------------------------------------------------------------------------------
# Sources of every figure: instances/placement/README.md.
# Model shapes: total parameters, decoder layers, KV heads x head dim (for the fp16 KV cache per token).
_FAMILIES = {
    "Qwen2-0.5B": {"params": 494_032_768, "layers": 24, "kv": 2 * 64},
    "Llama-2-7B": {"params": 6_738_415_616, "layers": 32, "kv": 32 * 128},
    "Mistral-7B": {"params": 7_241_732_096, "layers": 32, "kv": 8 * 128},
    "Qwen2-7B": {"params": 7_615_616_512, "layers": 28, "kv": 4 * 128},
    "Llama-2-13B": {"params": 13_015_864_320, "layers": 40, "kv": 40 * 128},
}
_BITS = {"fp16": 16, "int8": 8, "int4": 4}
# Llama-2-7B WikiText-2 perplexity, RTN (cs-giung/transformerx): the quantization error factor vs fp16.
_PPL_7B = {"fp16": 5.834, "int8": 5.822, "int4": 6.184}
_FAMILY_ERROR = {"Qwen2-0.5B": 2.2, "Llama-2-7B": 1.0, "Mistral-7B": 0.85, "Qwen2-7B": 0.8, "Llama-2-13B": 0.85}
# GPU: (memory GB, HBM GB/s, dense fp16 tensor TFLOPS) — memory from the Lambda catalog, rates from datasheets.
_GPUS = {"A10": (24, 600, 125.0), "RTX6000": (24, 672, 130.5), "A6000": (48, 768, 154.8),
         "V100": (16, 900, 125.0), "A40": (48, 696, 149.7)}
# vidur, Llama-2-7B, one decoder layer, A100 (2039 GB/s, 312 TFLOPS): 0.292 ms for 1 token (decode, reads
# the layer's 404,766,720 fp16 weight bytes) and 8.2255 ms for 4096 tokens (prefill, 2 x 202,383,360 FLOP/token).
_EFF_DECODE = 404_766_720 / 2039e9 / 0.292e-3
_EFF_PREFILL = 2 * 202_383_360 * 4096 / 312e12 / 8.2255e-3
_TYPES = {  # name: (mean prompt tokens, mean response tokens, base error of Llama-2-7B fp16)
    "chat": (69.5, 214.5, 0.20),
    "summarize": (1024.0, 128.0, 0.15),
    "code": (256.0, 384.0, 0.35),
    "qa": (128.0, 32.0, 0.25),
}
_CONTEXT = 4096  # KV-cache reserve per model: one full context
_OVERHEAD_GB = 1.0  # runtime (CUDA context, activations)
_TOKENS_PER_S = 2000.0  # provisioned decode rate of a placed model: compute it reserves = 2 x params x rate
_BINS = 4


def _model_figures(family: str, quant: str) -> tuple[float, float, float, float]:
    """(memory GB, compute TFLOP/s, decode s/token per HBM GB/s, prefill s/token per TFLOPS) of one model."""
    f = _FAMILIES[family]
    weights = f["params"] * _BITS[quant] / 8
    kv = 2 * f["layers"] * f["kv"] * 2 * _CONTEXT
    mem = (weights + kv) / 1e9 + _OVERHEAD_GB
    compute = 2 * f["params"] * _TOKENS_PER_S / 1e12
    return mem, compute, weights / 1e9 / _EFF_DECODE, 2 * f["params"] / 1e12 / _EFF_PREFILL


def _times(models: list[tuple[str, str]], gpus: list[str], tin: np.ndarray, tout: np.ndarray) -> np.ndarray:
    """(R, M, D) busy seconds per request: prefill (compute bound) + decode (memory bound), roofline."""
    bw = np.array([_GPUS[g][1] for g in gpus], dtype=float)
    tf = np.array([_GPUS[g][2] for g in gpus], dtype=float)
    out = np.empty((len(tin), len(models), len(gpus)))
    for j, (fam, q) in enumerate(models):
        _, _, dec, pre = _model_figures(fam, q)
        out[:, j, :] = tin[:, None] * pre / tf[None, :] + tout[:, None] * dec / bw[None, :]
    return out


def _histogram(rng: np.random.Generator, error: float, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """A confidence histogram, more mass on high bins for better models, correctness rising with the bin
    and averaging to 1 - error."""
    mid = (np.arange(bins) + 0.5) / bins
    prob = np.exp(3.0 * (1.0 - 2.0 * error) * mid) * rng.uniform(0.7, 1.3, size=bins)
    prob = np.round(prob / prob.sum(), 6)
    prob[-1] = round(1.0 - prob[:-1].sum(), 6)
    lo, hi = -1.0, 1.0
    for _ in range(60):  # shift the calibration curve until the mean correctness is 1 - error
        s = (lo + hi) / 2
        lo, hi = (s, hi) if prob @ np.clip(mid + s, 0.0, 1.0) < 1 - error else (lo, s)
    return prob, np.round(np.clip(mid + (lo + hi) / 2, 0.0, 1.0), 6)


def _agreement(errors: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Bin b = b of the N models give the same answer (wrong answers assumed to coincide: the worst case).

    The number of right models is Poisson-binomial; the level returns the majority answer, right when
    more models are right than wrong (a tie is right half the time). Bins below N/2 have probability 0.
    """
    N = len(errors)
    right = np.zeros(N + 1)  # right[n] = P(exactly n models right)
    right[0] = 1.0
    for e in errors:
        right[1:] = right[1:] * e + right[:-1] * (1 - e)
        right[0] *= e
    prob, corr = np.zeros(N + 1), np.zeros(N + 1)
    for n in range(N + 1):
        b = max(n, N - n)
        prob[b] += right[n]
        corr[b] += right[n] if 2 * n > N else right[n] / 2 if 2 * n == N else 0.0
    correct = np.divide(corr, prob, out=np.zeros_like(prob), where=prob > 0)
    prob = np.round(prob, 6)
    prob[-1] = round(1.0 - prob[:-1].sum(), 6)
    return prob, np.round(correct, 6)


def _data(gpus: list[str], models: list[tuple[str, str]], types: list[str], counts: np.ndarray,
          cascades: list[tuple[int, list[list[int]]]], lam: float, rng: np.random.Generator,
          noise: float = 0.0) -> dict:
    R, M = len(types), len(models)
    tin = np.array([_TYPES[t][0] for t in types])
    tout = np.array([_TYPES[t][1] for t in types])
    time = _times(models, gpus, tin, tout) * rng.lognormal(0.0, noise, size=(R, M, len(gpus)))
    err = np.empty((R, M))
    for j, (fam, q) in enumerate(models):
        factor = _FAMILY_ERROR[fam] * _PPL_7B[q] / _PPL_7B["fp16"]
        err[:, j] = np.clip([_TYPES[t][2] * factor for t in types], 0.01, 0.95)
    err = np.round(err * rng.lognormal(0.0, noise, size=err.shape), 4).clip(0.005, 0.95)
    can = np.ones((R, M), dtype=bool)
    for j, (fam, _) in enumerate(models):  # the 0.5B model does not write code
        can[[r for r, t in enumerate(types) if t == "code"], j] = fam != "Qwen2-0.5B"
    out_cascades = []
    for c, (r, levels) in enumerate(cascades):
        lv = []
        for ms in levels:
            if len(ms) == 1:
                prob, correct = _histogram(rng, float(err[r, ms[0]]), _BINS)
            else:
                prob, correct = _agreement([float(err[r, j]) for j in ms])
            lv.append({"models": ms, "prob": prob.tolist(), "correct": correct.tolist()})
        out_cascades.append({"name": f"cascade-{types[r]}", "type": r, "levels": lv})
    figs = [_model_figures(f, q) for f, q in models]
    return {
        "lam": lam,
        "devices": [{"name": f"{g}-{i}", "mem_gb": float(_GPUS[g][0]), "compute": _GPUS[g][2]} for i, g in enumerate(gpus)],
        "models": [{"name": f"{f}-{q}", "family": f, "quant": q, "mem_gb": round(figs[j][0], 4),
                    "compute": round(figs[j][1], 4)} for j, (f, q) in enumerate(models)],
        "types": [{"name": t, "count": float(counts[r])} for r, t in enumerate(types)],
        "cascades": out_cascades,
        "time_s": np.round(time, 6).tolist(),
        "error": np.where(can, err, np.nan).tolist(),
    }


_EDGE_MODELS = [("Qwen2-0.5B", "int4"), ("Llama-2-7B", "int4"), ("Mistral-7B", "int8"), ("Llama-2-13B", "int8"),
                ("Qwen2-7B", "int4"), ("Mistral-7B", "int4"), ("Llama-2-7B", "int8"), ("Qwen2-7B", "fp16"),
                ("Llama-2-13B", "int4"), ("Qwen2-0.5B", "fp16"), ("Mistral-7B", "fp16"), ("Llama-2-7B", "fp16")]
_EDGE_GPUS = ["A10", "RTX6000", "A6000", "V100", "A40"]


def generate(preset: str = "edge", size: int | None = None, seed: int = 0, lam: float = 2.0,
             requests: float = 1000.0) -> Instance:
    """``size`` models (default 6) on about half as many devices, four request types, cascades.

    Options: ``lam`` (λ, s per expected wrong answer; 0 = the seed's pure min-max placement) and
    ``requests`` (requests in the window, spread over the types).
    """
    M = {"edge": 6, "small": 4, "random": 6}[preset] if size is None else int(size)
    if not 1 <= M <= 10_000:
        raise InputError("--size", "must be 1..10000 (models)")
    if not float(requests) > 0:
        raise InputError("requests", f"must be > 0, got {requests}")
    rng = np.random.default_rng(seed)
    if preset == "edge":
        models = [_EDGE_MODELS[j % len(_EDGE_MODELS)] for j in range(M)]
        D = max(1, (M + 1) // 2)
        gpus = [_EDGE_GPUS[i % len(_EDGE_GPUS)] for i in range(D)]
        types = list(_TYPES)
        noise = 0.05
    elif preset == "small":
        models = [_EDGE_MODELS[j] for j in rng.permutation(6)[:M]] if M <= 6 else [_EDGE_MODELS[j % 12] for j in range(M)]
        gpus = list(rng.choice(_EDGE_GPUS, size=int(rng.integers(2, 5))))
        types = list(rng.choice(list(_TYPES), size=int(rng.integers(2, 4)), replace=False))
        noise = 0.05
    else:
        models = [_EDGE_MODELS[j] for j in rng.integers(0, len(_EDGE_MODELS), size=M)]
        gpus = list(rng.choice(_EDGE_GPUS, size=max(1, int(rng.integers(M // 3 + 1, M // 2 + 2)))))
        types = list(rng.choice(list(_TYPES), size=int(rng.integers(2, 5)), replace=False))
        noise = 0.3
    counts = np.round(rng.dirichlet(np.full(len(types), 3.0)) * float(requests), 1)
    by_size = sorted(range(M), key=lambda j: _model_figures(*models[j])[0])
    cascades: list[tuple[int, list[list[int]]]] = []
    if M >= 2:  # the first non-code type gets a confidence cascade, smallest model first
        r = next(r for r, t in enumerate(types) if t != "code") if any(t != "code" for t in types) else None
        if r is not None:
            K = 3 if M >= 5 and preset != "small" else 2
            picks = [by_size[0]] + [by_size[round(x)] for x in np.linspace(1, M - 1, K - 1)]
            cascades.append((r, [[j] for j in dict.fromkeys(picks)]))
    if preset == "edge" and M >= 6:  # the agreement variant: three mid-size models vote, else the largest answers
        r = next(r for r, t in enumerate(types) if t != "code" and r != cascades[0][0])
        mid = [j for j in by_size[:-1] if models[j][0] != "Qwen2-0.5B"][:3]
        cascades.append((r, [mid, [by_size[-1]]]))
    data = _data(gpus, models, types, counts, cascades, float(lam), rng, noise)
    meta = {"generator": "edgeopt.problems.placement.generate", "preset": preset, "size": M, "seed": seed,
            "options": {"lam": float(lam), "requests": float(requests)}}
    return Instance(name=f"{preset}-m{M}-d{len(gpus)}-s{seed}", meta=meta, data=Data.model_validate(data))


def instance_bytes(preset: str, size: int | None, **_) -> float:
    """About the bytes generating and writing an instance takes: 250 bytes per (model, device), with about half
    as many devices as models, measured peak RSS (82 MiB at 1,000 models) with a margin."""
    M = 6 if size is None else size
    return 250.0 * M * M + 10_240.0 * M

def small_instance(seed: int) -> Instance:
    """3-5 models on 2-4 devices with one 2-level cascade; the MILP proves it in well under a second."""
    rng = np.random.default_rng(seed)
    return generate("small", size=int(rng.integers(3, 6)), seed=seed)
