"""``partition`` — LLM layer partitioning over heterogeneous devices (EdgeShard).

Choose the device of every layer of one model. Four objectives (``data.objective``):

* ``ms-per-token`` (default; the seed's "最低延迟 75.88ms", read as the paper's milliseconds per token):
  one sequence is generated autoregressively, layers run one after another. A prefill pass over the
  ``prompt_tokens`` yields the first token, then ``output_tokens - 1`` decode steps each feed one token
  and read the KV cache. Minimize the whole generation's time divided by ``output_tokens``.
* ``tokens-per-s`` (the seed's "最高吞吐量 52.45 tokens/s"): the same generation pipelined over
  micro-batches, one contiguous shard per device; minimize the busiest stage's or link's time per
  generated token (tokens/s = 1000 / that).
* ``latency`` and ``throughput``: one pass of the profile (no generation), as before issue 13.

The generation readings take the profile (``time_ms``, ``act_mb``, ``out_mb``: one pass of
``profile_tokens`` tokens) and model a pass of n new tokens over a cache of c tokens on layer l as
``time_ms * (max(1, n / profile_tokens) + c * kv_gb_per_token / mem_gb)``: compute grows with the
tokens past the profiled pass (below it a pass is memory-bound and reads the weights anyway) and a
decode step also reads its cache. A boundary sends ``act_mb * n / profile_tokens``, and every step
returns one token's output, ``out_mb / profile_tokens``, to the source, which embeds the next token.
The KV cache of the final sequence (``prompt_tokens + output_tokens`` tokens) is pre-allocated, so it
counts against memory. See ``specs/partition.md`` and the README; the figures of the presets are
sourced in ``instances/partition/README.md``.
"""
from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal, NamedTuple

import numpy as np
from pydantic import Field, model_validator

from edgeopt import model
from edgeopt.model import Array, InputError, Model, check, check_shape
from edgeopt.result import Evaluation

SENSE = "min"
# Axis labels with units for the experiment figures (``edgeopt experiment plot``), by column.
LABELS = {"objective": "objective (ms per token, or tokens/s by data.objective)",
          "bandwidth_mbps": "source-cloud bandwidth (Mbit/s)", "details.tokens_per_s": "throughput (tokens/s)"}

PRESETS = {
    "llama2-7b": "EdgeShard testbed profile of Llama-2-7B (34 layers): Orin NX, AGX Orin, RTX 3090 cloud",
    "llama2-13b": "Llama-2-13B (42 layers), per-block time and memory scaled by parameter count",
    "llama2-70b": "Llama-2-70B (82 layers), scaled by parameter count, int8 weights (bytes_per_param=1)",
    "paper": "the llama2-7b testbed with an AGX Orin as the source, so that Edge-Solo fits 7B as in the paper",
    "random": "random heterogeneous edge and cloud devices around the EdgeShard figures (option layers=L)",
}


MAX_DEVICES = 10_000


class Layer(Model):
    name: str
    mem_gb: float = Field(ge=0, le=1e6, description="weights (plus, for latency/throughput, the KV cache reserved "
                                                    "for the pass), GB (0 <= x <= 1e6)")
    act_mb: float = Field(ge=0, le=1e9, description="size of this layer's output sent to the next layer in one "
                                                    "profiled pass, Mb (0 <= x <= 1e9)")
    kv_gb_per_token: float = Field(0.0, ge=0, le=1e6, description="KV cache of this layer per token of the sequence, "
                                                                  "GB (0 <= x <= 1e6; generation objectives only)")


class Device(Model):
    name: str
    kind: Literal["edge", "cloud"]
    mem_gb: float = Field(gt=0, le=1e6, description="memory available for layers, GB (0 < x <= 1e6)")


OBJECTIVES = ("ms-per-token", "tokens-per-s", "latency", "throughput")
GENERATION = ("ms-per-token", "tokens-per-s")  # the seed's readings: autoregressive generation with a KV cache
PIPELINED = ("tokens-per-s", "throughput")  # one contiguous shard per device, bottleneck objective


class Costs(NamedTuple):
    """An objective's per-layer coefficients, in ms (per generated token for the generation objectives).

    ``time`` (L, D), +inf where a layer cannot run; ``hop`` (L, D, D), layer l's output crossing d -> e;
    ``back`` (D,), the output's return from the last layer's device to the source; ``mem`` (L,) GB.
    """

    time: np.ndarray
    hop: np.ndarray
    back: np.ndarray
    mem: np.ndarray


class Data(Model):
    objective: Literal["ms-per-token", "tokens-per-s", "latency", "throughput"] = Field(
        "ms-per-token", description="ms-per-token (default) and tokens-per-s: autoregressive generation; latency "
                                    "and throughput: one pass of the profile")
    prompt_tokens: int = Field(1, ge=1, le=1_000_000, description="tokens of the prompt (generation objectives; "
                                                                  "1 <= x <= 1e6)")
    output_tokens: int = Field(1, ge=1, le=100_000, description="tokens generated (generation objectives; "
                                                                "1 <= x <= 1e5)")
    profile_tokens: int = Field(1, ge=1, le=1_000_000, description="tokens of the pass that time_ms, act_mb and "
                                                                   "out_mb describe (1 <= x <= 1e6)")
    source: int = Field(ge=0, lt=MAX_DEVICES, description="device that holds the input, runs layer 0 and gets "
                                                          f"the output (a device index, 0 <= x < {MAX_DEVICES})")
    out_mb: float = Field(ge=0, le=1e9, description="size of the final output of one profiled pass, returned to "
                                                    "the source, Mb (0 <= x <= 1e9)")
    layers: list[Layer] = Field(min_length=1)
    devices: list[Device] = Field(min_length=1, max_length=MAX_DEVICES)
    time_ms: Array(float, 2, nullable=True, ge=0, le=1e9) = Field(
        description="time of layer l on device k, ms (0 <= x <= 1e9); null = the layer cannot run there")
    bw_mbps: Array(float, 2, ge=0, le=1e9) = Field(
        description="link rate between devices, Mbit/s (1e-6 <= x <= 1e9 between distinct devices)")
    lat_ms: Array(float, 2, ge=0, le=1e9) = Field(description="link latency between devices, ms (0 <= x <= 1e9)")

    @model_validator(mode="after")
    def _consistent(self):
        L, D = len(self.layers), len(self.devices)
        check(self.source < D, "data.source", f"must be a device index 0..{D - 1}")
        check_shape(self.time_ms, (L, D), "data.time_ms", "(layers, devices)")
        check_shape(self.bw_mbps, (D, D), "data.bw_mbps", "(devices, devices)")
        check_shape(self.lat_ms, (D, D), "data.lat_ms", "(devices, devices)")
        off = ~np.eye(D, dtype=bool)
        check(~off | (self.bw_mbps >= 1e-6), "data.bw_mbps",
              "must be > 0 between distinct devices (at least 1e-06 Mbit/s, 1 bit/s)")
        if np.isnan(self.time_ms[0, self.source]):
            raise InputError(f"data.time_ms[0][{self.source}]", "must not be null: layer 0 runs on the source device")
        for i, layer in enumerate(self.layers):
            check(layer.mem_gb > 0 or layer.kv_gb_per_token == 0, f"data.layers[{i}].kv_gb_per_token",
                  "must be 0 when mem_gb is 0 (a decode step's cache read is timed relative to its weights)")
        return self

    @property
    def generation(self) -> bool:
        return self.objective in GENERATION

    @property
    def pipelined(self) -> bool:
        return self.objective in PIPELINED

    @cached_property
    def t(self) -> np.ndarray:
        """(L, D) layer times in ms, +inf where a layer cannot run."""
        return np.where(np.isnan(self.time_ms), np.inf, self.time_ms)

    @cached_property
    def mem(self) -> np.ndarray:
        return np.array([layer.mem_gb for layer in self.layers])

    @cached_property
    def act(self) -> np.ndarray:
        return np.array([layer.act_mb for layer in self.layers])

    @cached_property
    def cap(self) -> np.ndarray:
        return np.array([d.mem_gb for d in self.devices])

    @cached_property
    def prefix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Prefix sums over layers for shard arithmetic: ``(time, unrunnable, memory)``.

        Shard of layers i..j-1 on device k: time ``time[j, k] - time[i, k]``, runnable iff
        ``unrunnable[j, k] == unrunnable[i, k]``, memory ``memory[j] - memory[i]``.
        """
        t, mem = self.cost.time, self.cost.mem
        finite = np.isfinite(t)
        zeros = np.zeros((1, len(self.devices)))
        time = np.vstack([zeros, np.cumsum(np.where(finite, t, 0.0), axis=0)])
        unrunnable = np.vstack([zeros, np.cumsum(~finite, axis=0)])
        return time, unrunnable, np.concatenate([[0.0], np.cumsum(mem)])

    @cached_property
    def cost(self) -> Costs:
        """The objective's coefficients for the methods (the referee recomputes each step on its own).

        Generation: the prefill pass and the ``N - 1`` decode steps summed per layer and divided by
        ``N = output_tokens``; decode step i reads a cache of ``P + i - 1`` tokens (P = prompt tokens).
        """
        if not self.generation:
            return Costs(self.t, self.comm(self.act), self.comm(self.out_mb)[:, self.source], self.mem)
        P, N, per = self.prompt_tokens, self.output_tokens, 1.0 / self.profile_tokens
        cached = (N - 1) * P + (N - 1) * (N - 2) / 2  # tokens read from the cache over all decode steps
        reads = np.divide(self.kv, self.mem, out=np.zeros(len(self.layers)), where=self.mem > 0)
        time = self.t * ((max(1.0, P * per) + (N - 1) + cached * reads) / N)[:, None]
        hop = (self.comm(self.act * P * per) + (N - 1) * self.comm(self.act * per)) / N
        back = self.comm(self.out_mb * per)[:, self.source]
        return Costs(time, hop, back, self.mem + self.kv * (P + N))

    @cached_property
    def kv(self) -> np.ndarray:
        return np.array([layer.kv_gb_per_token for layer in self.layers])

    def comm(self, size_mb: float | np.ndarray) -> np.ndarray:
        """Transfer times in ms of ``size_mb`` between every pair of devices; 0 on the diagonal.

        A vector of sizes gives a (len, D, D) array.
        """
        size = np.asarray(size_mb, dtype=float)[..., None, None]
        diag = np.eye(len(self.devices), dtype=bool)
        c = size / np.where(diag, 1.0, self.bw_mbps) * 1000.0 + self.lat_ms
        return np.where(diag, 0.0, c)


class Instance(model.Instance):
    problem = "partition"
    data: Data


class Solution(Model):
    place: list[Annotated[int, Field(ge=0, lt=MAX_DEVICES)]] = Field(
        description=f"device index of every layer (0 <= x < {MAX_DEVICES})")


def _stages(place: list[int]) -> list[tuple[int, int, int]]:
    """Maximal runs of consecutive layers on one device: (device, first layer, last layer)."""
    runs: list[tuple[int, int, int]] = []
    for layer, dev in enumerate(place):
        if runs and runs[-1][0] == dev:
            runs[-1] = (dev, runs[-1][1], layer)
        else:
            runs.append((dev, layer, layer))
    return runs


def evaluate(instance: Instance, solution: Solution) -> Evaluation:
    """The referee: feasibility and objective of a placement, recomputed from the spec."""
    d = instance.data
    L, D = len(d.layers), len(d.devices)
    place = list(solution.place)
    if len(place) != L:
        raise InputError("solution.place", f"must list one device per layer ({L}), got {len(place)}")
    for layer, dev in enumerate(place):
        if not 0 <= dev < D:
            raise InputError(f"solution.place[{layer}]", f"must be a device index 0..{D - 1}, got {dev}")

    def comm(a: int, b: int, size_mb: float) -> float:
        return 0.0 if a == b else float(size_mb / d.bw_mbps[a][b] * 1000.0 + d.lat_ms[a][b])

    generation = d.generation
    seq = d.prompt_tokens + d.output_tokens  # the KV cache is pre-allocated for the final sequence
    violations = []
    if place[0] != d.source:
        violations.append(f"layer 0 must run on the source device {d.source}, got device {place[0]}")
    undefined = [layer for layer in range(L) if np.isnan(d.time_ms[layer][place[layer]])]
    for layer in undefined:
        violations.append(f"layer {layer} cannot run on device {place[layer]} (time_ms is null)")
    used = [0.0] * D
    for layer, dev in enumerate(place):
        used[dev] += d.layers[layer].mem_gb + (d.layers[layer].kv_gb_per_token * seq if generation else 0.0)
    for dev in range(D):
        if used[dev] > d.devices[dev].mem_gb + 1e-9:
            violations.append(
                f"device {dev} ({d.devices[dev].name}) holds {used[dev]:.3f} GB > mem_gb {d.devices[dev].mem_gb:g}"
            )
    stages = _stages(place)
    details: dict = {"memory_gb": used, "stages": [list(s) for s in stages]}
    if d.objective in PIPELINED:
        seen: dict[int, tuple[int, int]] = {}
        for dev, first, last in stages:
            if dev in seen:
                violations.append(
                    f"device {dev} hosts two stages (layers {seen[dev][0]}-{seen[dev][1]} and {first}-{last}); "
                    f"{d.objective} needs one contiguous shard per device"
                )
            seen[dev] = (first, last)

    objective = None
    if not undefined:
        # passes[s] = (new tokens, cached tokens) of step s: the prefill, then one decode step per further token
        passes = [(d.prompt_tokens, 0)] + [(1, d.prompt_tokens + i - 1) for i in range(1, d.output_tokens)]
        if not generation:
            passes = [(d.profile_tokens, 0)]  # one profiled pass
        steps = [_step(d, place, new, cached, comm) for new, cached in passes]
        layer_ms = np.sum([s[0] for s in steps], axis=0)  # (L,) over all steps
        hops = np.sum([s[1] for s in steps], axis=0)  # (L - 1,)
        back = sum(s[2] for s in steps)
        n = len(steps)  # generated tokens (1 for a single pass)
        if d.objective in PIPELINED:
            stage_ms = [float(layer_ms[a:b + 1].sum()) / n for _, a, b in stages]
            boundary_ms = [float(hops[b]) / n for _, _, b in stages[:-1]]
            objective = max(stage_ms + boundary_ms + [back / n])
            rate = 1000.0 / objective if objective > 0 else None
            details.update(stage_ms=stage_ms, boundary_ms=boundary_ms, return_ms=back / n,
                           **({"tokens_per_s": rate} if generation else {"throughput_rps": rate}))
        else:
            total = float(layer_ms.sum() + hops.sum()) + back
            objective = total / n
            details.update(compute_ms=float(layer_ms.sum()) / n, transfer_ms=float(hops.sum() + back) / n)
            if generation:
                first = sum(steps[0][0]) + sum(steps[0][1]) + steps[0][2]
                details.update(total_ms=total, ttft_ms=first,
                               tpot_ms=(total - first) / (n - 1) if n > 1 else None,
                               tokens_per_s=1000.0 / objective if objective > 0 else None)
    return Evaluation(objective=objective, feasible=not violations, violations=violations, details=details)


def _step(d: Data, place: list[int], new: int, cached: int, comm) -> tuple[list[float], list[float], float]:
    """One forward step of ``new`` tokens over a cache of ``cached`` tokens: (time per layer, time per
    boundary l -> l+1, the return of one token's output to the source), all in ms."""
    per = 1.0 / d.profile_tokens
    layer_ms = []
    for layer, dev in enumerate(place):
        lay = d.layers[layer]
        reads = cached * lay.kv_gb_per_token / lay.mem_gb if lay.mem_gb > 0 else 0.0
        layer_ms.append(float(d.time_ms[layer][dev]) * (max(1.0, new * per) + reads))
    hop_ms = [comm(place[layer], place[layer + 1], d.layers[layer].act_mb * new * per)
              for layer in range(len(place) - 1)]
    out = d.out_mb * per if d.generation else d.out_mb  # a generation step returns one token's output
    return layer_ms, hop_ms, comm(place[-1], d.source, out)


# --- generator ------------------------------------------------------------------------------------
# Per-layer times (ms) measured by EdgeShard on Llama-2-7B (embedding, 32 decoder blocks, norm+head).
# Source: KasperXMS/EdgeShard-remastered, algorithm/7B_partition_latency.py (see instances README).
_T7B = {
    "orin-nx": [0.476, 5.759, 6.402, 6.133, 6.333, 5.662, 6.071, 6.056, 5.691, 6.029, 5.955, 6.012, 6.09, 6.15,
                5.979, 6.095, 5.981, 5.981, 5.84, 6.074, 6.218, 6.052, 5.625, 5.985, 5.912, 6.145, 6.063, 6.027,
                6.082, 6.067, 6.019, 6.016, 6.093, 0.594 + 4.888],
    "agx-orin": [0.627, 5.498, 5.48, 5.454, 5.402, 5.376, 5.36, 5.439, 5.357, 5.261, 5.207, 5.25, 5.276, 5.27,
                 5.334, 5.242, 5.288, 5.226, 5.22, 5.16, 5.211, 5.206, 5.167, 5.168, 5.158, 5.229, 5.23, 5.164,
                 5.199, 5.272, 5.201, 5.304, 5.255, 0.885 + 3.597],
    "rtx3090": [0.077, 0.766, 0.819, 0.797, 0.804, 0.798, 0.784, 0.801, 0.782, 0.779, 0.832, 0.799, 0.793, 0.788,
                0.79, 0.78, 0.783, 0.761, 0.815, 0.8, 0.797, 0.788, 0.784, 0.779, 0.781, 0.817, 0.818, 0.798,
                0.783, 0.785, 0.783, 0.783, 0.782, 0.201 + 0.447],
}
_MEM_CAP = {"orin-nx": 14.0, "agx-orin": 29.0, "rtx3090": 22.0}  # GB available, EdgeShard testbed
_EDGE_CYCLE = ["orin-nx", "orin-nx", "agx-orin", "agx-orin"]
# Llama-2 shapes: (hidden, decoder blocks, parameters per decoder block, K and V width) from the public
# configs; 70B shares 8 KV heads of 128 (grouped-query attention).
_MODELS = {
    "llama2-7b": (4096, 32, 202_383_360, 4096),
    "llama2-13b": (5120, 40, 317_204_480, 5120),
    "llama2-70b": (8192, 80, 855_654_400, 1024),
}
_BLOCK_GB_7B, _EMBED_GB_7B = 0.754, 0.488  # fp32, EdgeShard's measured setting
_VOCAB, _TOKENS = 32000, 4  # activation = 4 tokens x hidden x 4 bytes; output = 4 x vocab x 4 bytes
_LINK_MBPS, _SLOW_LINK_MBPS, _LINK_LAT_MS = 950.0, 10.0, 2.1


def _llama(preset: str, n_devices: int, objective: str, bytes_per_param: float | None) -> dict:
    cycle = _EDGE_CYCLE[2:] + _EDGE_CYCLE[:2] if preset == "paper" else _EDGE_CYCLE  # paper: AGX Orin first
    preset = "llama2-7b" if preset == "paper" else preset
    hidden, blocks, block_params, kv_width = _MODELS[preset]
    scale = block_params / _MODELS["llama2-7b"][2]
    head_scale = hidden / 4096
    if bytes_per_param is None:
        bytes_per_param = 1.0 if preset == "llama2-70b" else 4.0
    mem_scale = bytes_per_param / 4.0
    names = [cycle[i % 4] for i in range(n_devices - 1)] + ["rtx3090"]
    if n_devices == 1:
        names = [cycle[0]]
    block_t = {k: np.array(v[1:-1]) for k, v in _T7B.items()}
    times = []
    for layer in range(blocks + 2):
        row = []
        for kind in names:
            if layer == 0:
                row.append(_T7B[kind][0] * head_scale)
            elif layer == blocks + 1:
                row.append(_T7B[kind][-1] * head_scale)
            else:  # the 7B profile's block times, cycled, times the parameter ratio
                row.append(block_t[kind][(layer - 1) % 32] * scale)
        times.append([round(x, 4) for x in row])
    act = _TOKENS * hidden * 4 * 8 / 1e6
    layers = [{"name": "embed", "mem_gb": round(_EMBED_GB_7B * head_scale * mem_scale, 4), "act_mb": act}]
    kv = round(2 * kv_width * bytes_per_param / 2**30, 12)  # K and V of one token, weights' precision, GiB
    layers += [{"name": f"block{b}", "mem_gb": round(_BLOCK_GB_7B * scale * mem_scale, 4), "act_mb": act,
                "kv_gb_per_token": kv} for b in range(blocks)]
    layers += [{"name": "norm+head", "mem_gb": round(_EMBED_GB_7B * head_scale * mem_scale, 4), "act_mb": act}]
    devices = []
    for i, kind in enumerate(names):
        devices.append({"name": f"{kind}-{i}", "kind": "cloud" if kind == "rtx3090" else "edge",
                        "mem_gb": _MEM_CAP[kind]})
    D = len(devices)
    bw = np.full((D, D), _LINK_MBPS)
    for i, dev in enumerate(devices):
        if dev["kind"] == "cloud":
            bw[0, i] = bw[i, 0] = _SLOW_LINK_MBPS
    np.fill_diagonal(bw, 0.0)
    lat = np.full((D, D), _LINK_LAT_MS)
    np.fill_diagonal(lat, 0.0)
    return {"objective": objective, "profile_tokens": _TOKENS, "source": 0, "out_mb": _TOKENS * _VOCAB * 4 * 8 / 1e6,
            "layers": layers, "devices": devices, "time_ms": times, "bw_mbps": bw.tolist(), "lat_ms": lat.tolist()}


def _random(n_devices: int, objective: str, layers: int, rng: np.random.Generator) -> dict:
    """Heterogeneous devices: speed factors around the measured Jetsons and 3090, links 100-1000 Mbps."""
    base = np.array(_T7B["orin-nx"][1:-1]).mean()
    devices, speed = [], []
    for i in range(n_devices):
        cloud = i > 0 and rng.random() < 0.3
        factor = rng.uniform(0.10, 0.20) if cloud else rng.uniform(0.8, 1.3)
        mem = float(rng.choice([22.0, 40.0, 80.0])) if cloud else float(rng.choice([8.0, 14.0, 16.0, 29.0, 32.0]))
        devices.append({"name": f"{'cloud' if cloud else 'edge'}-{i}", "kind": "cloud" if cloud else "edge",
                        "mem_gb": mem})
        speed.append(factor)
    layer_t = base * rng.uniform(0.9, 1.1, size=layers)
    times = np.round(np.outer(layer_t, speed) * rng.uniform(0.95, 1.05, size=(layers, n_devices)), 4)
    total_mem = float(sum(d["mem_gb"] for d in devices))
    mem = np.round(rng.uniform(0.5, 1.0, size=layers) * 0.7 * total_mem / layers, 4)
    bw = np.round(rng.uniform(100.0, 1000.0, size=(n_devices, n_devices)), 1)
    bw = np.triu(bw, 1) + np.triu(bw, 1).T
    lat = np.round(rng.uniform(1.0, 5.0, size=(n_devices, n_devices)), 3)
    lat = np.triu(lat, 1) + np.triu(lat, 1).T
    act = np.round(rng.uniform(0.25, 1.0, size=layers), 4)
    out = round(float(rng.uniform(1.0, 5.0)), 3)
    kv = np.round(mem * rng.uniform(1e-5, 1e-4, size=layers), 9)  # 1,000 tokens: 1-10 % of the weights
    return {"objective": objective, "source": 0, "out_mb": out,
            "layers": [{"name": f"layer{i}", "mem_gb": float(mem[i]), "act_mb": float(act[i]),
                        "kv_gb_per_token": float(kv[i])} for i in range(layers)],
            "devices": devices, "time_ms": times.tolist(), "bw_mbps": bw.tolist(), "lat_ms": lat.tolist()}


def _set_cloud_links(data: dict, mbps: float) -> None:
    """Both directions of every link between the source and a cloud device at ``mbps``."""
    src, bw = data["source"], data["bw_mbps"]
    cloud = [k for k, dev in enumerate(data["devices"]) if dev["kind"] == "cloud" and k != src]
    if not cloud:
        raise InputError("bandwidth_mbps", "needs a cloud device other than the source (this instance has none)")
    for k in cloud:
        bw[src][k] = bw[k][src] = mbps


def generate(preset: str = "llama2-7b", size: int | None = None, seed: int = 0, objective: str = "ms-per-token",
             layers: int = 34, bytes_per_param: float | None = None,
             bandwidth_mbps: Annotated[float, Field(ge=1e-6, le=1e9)] | None = None,
             prompt_tokens: Annotated[int, Field(ge=1, le=1_000_000)] = 32,
             output_tokens: Annotated[int, Field(ge=1, le=100_000)] = 128) -> Instance:
    """An instance of ``preset`` with ``size`` devices (default 5, the EdgeShard testbed).

    Options: ``objective`` (ms-per-token|tokens-per-s|latency|throughput); ``layers`` for the random
    preset; ``bytes_per_param`` for the Llama presets (default 4 = fp32 as measured, 1 for 70B so that
    it fits a small testbed; the KV cache is kept in the same precision); ``bandwidth_mbps`` sets the
    rate of every link between the source and a cloud device (the link the cloud-edge baselines depend
    on; the Llama presets' default is EdgeShard's 10 Mbit/s); ``prompt_tokens`` and ``output_tokens``
    (default 32 and 128, our choice: the seed gives no lengths) for the generation objectives.
    """
    n = 5 if size is None else int(size)
    if not 1 <= n <= MAX_DEVICES:
        raise InputError("--size", f"must be 1..{MAX_DEVICES} (devices)")
    if objective not in OBJECTIVES:
        raise InputError("objective", f"must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    rng = np.random.default_rng(seed)
    if preset == "random":
        if int(layers) < 1:
            raise InputError("layers", "must be >= 1")
        data = _random(n, objective, int(layers), rng)
    else:
        data = _llama(preset, n, objective, None if bytes_per_param is None else float(bytes_per_param))
    data.update(prompt_tokens=int(prompt_tokens), output_tokens=int(output_tokens))
    meta = {"generator": "edgeopt.problems.partition.generate", "preset": preset, "size": n, "seed": seed,
            "objective": objective, "prompt_tokens": int(prompt_tokens), "output_tokens": int(output_tokens)}
    if bandwidth_mbps is not None:
        _set_cloud_links(data, float(bandwidth_mbps))
        meta["bandwidth_mbps"] = float(bandwidth_mbps)
    if preset == "random":
        meta["layers"] = int(layers)
    name = (f"{preset}-d{n}-{objective}" + (f"-l{layers}-s{seed}" if preset == "random" else "")
            + (f"-bw{bandwidth_mbps:g}" if bandwidth_mbps is not None else ""))
    return Instance(name=name, meta=meta, data=Data.model_validate(data))


def instance_bytes(preset: str, size: int | None, layers: int = 34, **_) -> float:
    """About the bytes generating and writing an instance takes: 250 bytes per (device, device) link and per
    (layer, device), measured peak RSS (112 MiB at 1,000 devices, 55 MiB at 100 devices x 10,000 layers) with a
    margin; the Llama presets have at most 100 layers."""
    D, L = 5 if size is None else size, layers if preset == "random" else 100
    return 250.0 * D * (D + L)

def small_instance(seed: int, objective: str | None = None) -> Instance:
    """A small random instance (6-10 layers, 3-4 devices) that exact methods solve in well under a second.

    Without ``objective``, seeds cycle through ms-per-token, tokens-per-s, latency, throughput.
    """
    rng = np.random.default_rng(seed)
    objective = objective or OBJECTIVES[seed % 4]
    return generate("random", size=int(rng.integers(3, 5)), seed=seed, objective=objective,
                    layers=int(rng.integers(6, 11)))
