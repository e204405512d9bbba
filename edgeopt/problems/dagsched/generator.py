"""The ``dagsched`` generator: the paper's job families and servers, random layered DAGs, the HEFT example."""
from __future__ import annotations

import math

import numpy as np

from edgeopt.model import InputError
from edgeopt.problems.dagsched.data import Data, Instance

# Axis labels with units for the experiment figures (``edgeopt experiment plot``), by column.
LABELS = {"objective": "weighted sum of latency and cost", "bandwidth_mhz": "W (MHz)", "t_max": "T_max (s)",
          "details.on_cloud": "sub-tasks on the cloud"}

PRESETS = {
    "paper": "the paper's five job families (section 5.1, Table 2): 3 modality edges + 10 GHz cloud, W=6 MHz, "
             "T_max=3 s (options bandwidth_mhz, t_max, gamma, mix=cycle|random)",
    "edge-share": "the paper preset with gamma = 0.03, just below the break-even weight at which a median-channel "
                  "edge ties the cloud, so the edges win a share of the sub-tasks (the paper's own gamma range [0, 1])",
    "layered": "random layered DAGs of `tasks` sub-tasks per job (default 10) with the paper's servers and sizes",
    "heft": "the classic HEFT example (Topcuoglu et al. 2002): 10 tasks, 3 processors, HEFT makespan 80",
}

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
