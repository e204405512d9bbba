"""``partition`` — LLM layer partitioning over heterogeneous devices (EdgeShard).

Choose the device of every layer of one model so that one request runs with least latency, or a
pipeline of micro-batches with the shortest cycle time. See ``specs/partition.md``; the figures of
the presets are sourced in ``instances/partition/README.md``.
"""
from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from edgeopt import model
from edgeopt.model import Array, InputError, Model, check, check_shape
from edgeopt.result import Evaluation

SENSE = "min"
PRESETS = {
    "llama2-7b": "EdgeShard testbed profile of Llama-2-7B (34 layers): Orin NX, AGX Orin, RTX 3090 cloud",
    "llama2-13b": "Llama-2-13B (42 layers), per-block time and memory scaled by parameter count",
    "llama2-70b": "Llama-2-70B (82 layers), scaled by parameter count, int8 weights (bytes_per_param=1)",
    "random": "random heterogeneous edge and cloud devices around the EdgeShard figures (option layers=L)",
}


MAX_DEVICES = 10_000


class Layer(Model):
    name: str
    mem_gb: float = Field(ge=0, le=1e6, description="weights plus the KV cache reserved for the request, GB "
                                                    "(0 <= x <= 1e6)")
    act_mb: float = Field(ge=0, le=1e9, description="size of this layer's output sent to the next layer, Mb "
                                                    "(0 <= x <= 1e9)")


class Device(Model):
    name: str
    kind: Literal["edge", "cloud"]
    mem_gb: float = Field(gt=0, le=1e6, description="memory available for layers, GB (0 < x <= 1e6)")


class Data(Model):
    objective: Literal["latency", "throughput"]
    source: int = Field(ge=0, lt=MAX_DEVICES, description="device that holds the input, runs layer 0 and gets "
                                                          f"the output (a device index, 0 <= x < {MAX_DEVICES})")
    out_mb: float = Field(ge=0, le=1e9, description="size of the final output returned to the source, Mb "
                                                    "(0 <= x <= 1e9)")
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
        return self

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
        finite = np.isfinite(self.t)
        zeros = np.zeros((1, len(self.devices)))
        time = np.vstack([zeros, np.cumsum(np.where(finite, self.t, 0.0), axis=0)])
        unrunnable = np.vstack([zeros, np.cumsum(~finite, axis=0)])
        return time, unrunnable, np.concatenate([[0.0], np.cumsum(self.mem)])

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
        return 0.0 if a == b else size_mb / d.bw_mbps[a][b] * 1000.0 + d.lat_ms[a][b]

    violations = []
    if place[0] != d.source:
        violations.append(f"layer 0 must run on the source device {d.source}, got device {place[0]}")
    undefined = [layer for layer in range(L) if np.isnan(d.time_ms[layer][place[layer]])]
    for layer in undefined:
        violations.append(f"layer {layer} cannot run on device {place[layer]} (time_ms is null)")
    used = [0.0] * D
    for layer, dev in enumerate(place):
        used[dev] += d.layers[layer].mem_gb
    for dev in range(D):
        if used[dev] > d.devices[dev].mem_gb + 1e-9:
            violations.append(
                f"device {dev} ({d.devices[dev].name}) holds {used[dev]:.3f} GB > mem_gb {d.devices[dev].mem_gb:g}"
            )
    stages = _stages(place)
    details: dict = {"memory_gb": used, "stages": [list(s) for s in stages]}
    if d.objective == "throughput":
        seen: dict[int, tuple[int, int]] = {}
        for dev, first, last in stages:
            if dev in seen:
                violations.append(
                    f"device {dev} hosts two stages (layers {seen[dev][0]}-{seen[dev][1]} and {first}-{last}); "
                    "throughput needs one contiguous shard per device"
                )
            seen[dev] = (first, last)

    objective = None
    if not undefined:
        compute = sum(d.time_ms[layer][place[layer]] for layer in range(L))
        hops = [comm(place[layer], place[layer + 1], d.layers[layer].act_mb) for layer in range(L - 1)]
        back = comm(place[-1], d.source, d.out_mb)
        if d.objective == "latency":
            objective = compute + sum(hops) + back
            details.update(compute_ms=compute, transfer_ms=sum(hops) + back)
        else:
            stage_ms = [sum(d.time_ms[layer][dev] for layer in range(a, b + 1)) for dev, a, b in stages]
            boundary_ms = [hops[b] for _, _, b in stages[:-1]]
            objective = max(stage_ms + boundary_ms + [back])
            details.update(stage_ms=stage_ms, boundary_ms=boundary_ms, return_ms=back,
                           throughput_rps=1000.0 / objective if objective > 0 else None)
    return Evaluation(objective=objective, feasible=not violations, violations=violations, details=details)


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
# Llama-2 shapes: (hidden, decoder blocks, parameters per decoder block) from the public configs.
_MODELS = {
    "llama2-7b": (4096, 32, 202_383_360),
    "llama2-13b": (5120, 40, 317_204_480),
    "llama2-70b": (8192, 80, 855_654_400),
}
_BLOCK_GB_7B, _EMBED_GB_7B = 0.754, 0.488  # fp32, EdgeShard's measured setting
_VOCAB, _TOKENS = 32000, 4  # activation = 4 tokens x hidden x 4 bytes; output = 4 x vocab x 4 bytes
_LINK_MBPS, _SLOW_LINK_MBPS, _LINK_LAT_MS = 950.0, 10.0, 2.1


def _llama(preset: str, n_devices: int, objective: str, bytes_per_param: float | None) -> dict:
    hidden, blocks, block_params = _MODELS[preset]
    scale = block_params / _MODELS["llama2-7b"][2]
    head_scale = hidden / 4096
    if bytes_per_param is None:
        bytes_per_param = 1.0 if preset == "llama2-70b" else 4.0
    mem_scale = bytes_per_param / 4.0
    names = [_EDGE_CYCLE[i % 4] for i in range(n_devices - 1)] + ["rtx3090"]
    if n_devices == 1:
        names = ["orin-nx"]
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
    layers += [{"name": f"block{b}", "mem_gb": round(_BLOCK_GB_7B * scale * mem_scale, 4), "act_mb": act}
               for b in range(blocks)]
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
    return {"objective": objective, "source": 0, "out_mb": _TOKENS * _VOCAB * 4 * 8 / 1e6, "layers": layers,
            "devices": devices, "time_ms": times, "bw_mbps": bw.tolist(), "lat_ms": lat.tolist()}


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
    return {"objective": objective, "source": 0, "out_mb": round(float(rng.uniform(1.0, 5.0)), 3),
            "layers": [{"name": f"layer{i}", "mem_gb": float(mem[i]), "act_mb": float(act[i])} for i in range(layers)],
            "devices": devices, "time_ms": times.tolist(), "bw_mbps": bw.tolist(), "lat_ms": lat.tolist()}


def _set_cloud_links(data: dict, mbps: float) -> None:
    """Both directions of every link between the source and a cloud device at ``mbps``."""
    src, bw = data["source"], data["bw_mbps"]
    cloud = [k for k, dev in enumerate(data["devices"]) if dev["kind"] == "cloud" and k != src]
    if not cloud:
        raise InputError("bandwidth_mbps", "needs a cloud device other than the source (this instance has none)")
    for k in cloud:
        bw[src][k] = bw[k][src] = mbps


def generate(preset: str = "llama2-7b", size: int | None = None, seed: int = 0, objective: str = "latency",
             layers: int = 34, bytes_per_param: float | None = None,
             bandwidth_mbps: Annotated[float, Field(ge=1e-6, le=1e9)] | None = None) -> Instance:
    """An instance of ``preset`` with ``size`` devices (default 5, the EdgeShard testbed).

    Options: ``objective`` (latency|throughput); ``layers`` for the random preset; ``bytes_per_param``
    for the Llama presets (default 4 = fp32 as measured, 1 for 70B so that it fits a small testbed);
    ``bandwidth_mbps`` sets the rate of every link between the source and a cloud device (the link the
    cloud-edge baselines depend on; the Llama presets' default is EdgeShard's 10 Mbit/s).
    """
    n = 5 if size is None else int(size)
    if not 1 <= n <= MAX_DEVICES:
        raise InputError("--size", f"must be 1..{MAX_DEVICES} (devices)")
    if objective not in ("latency", "throughput"):
        raise InputError("objective", f"must be latency or throughput, got {objective!r}")
    rng = np.random.default_rng(seed)
    if preset == "random":
        if int(layers) < 1:
            raise InputError("layers", "must be >= 1")
        data = _random(n, objective, int(layers), rng)
    else:
        data = _llama(preset, n, objective, None if bytes_per_param is None else float(bytes_per_param))
    meta = {"generator": "edgeopt.problems.partition.generate", "preset": preset, "size": n, "seed": seed,
            "objective": objective}
    if bandwidth_mbps is not None:
        _set_cloud_links(data, float(bandwidth_mbps))
        meta["bandwidth_mbps"] = float(bandwidth_mbps)
    if preset == "random":
        meta["layers"] = int(layers)
    name = (f"{preset}-d{n}-{objective}" + (f"-l{layers}-s{seed}" if preset == "random" else "")
            + (f"-bw{bandwidth_mbps:g}" if bandwidth_mbps is not None else ""))
    return Instance(name=name, meta=meta, data=Data.model_validate(data))


def small_instance(seed: int, objective: str | None = None) -> Instance:
    """A small random instance (6-10 layers, 3-4 devices) that exact methods solve in well under a second."""
    rng = np.random.default_rng(seed)
    objective = objective or ("latency" if seed % 2 == 0 else "throughput")
    return generate("random", size=int(rng.integers(3, 5)), seed=seed, objective=objective,
                    layers=int(rng.integers(6, 11)))
