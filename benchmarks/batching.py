"""batching benchmarks: OT-GAH against the seed's baselines (its +45 % claim), against the proven optimum, and its time.

python benchmarks/batching.py [--quick] [section ...]   prints Markdown tables; sections: gain, gap, exact, time
(default: all, in that order). Throughput is served requests: every method faces the same arrival stream, so
the ratio of served requests is the ratio of throughputs over the stream.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from edgeopt.problems import batching as P
from edgeopt.run import run_one

QUICK = "--quick" in sys.argv
BASELINES = [("static", {}), ("static", {"quant": 2}), ("static", {"size": 8, "quant": 2}),
             ("no-batching", {}), ("no-batching", {"quant": 2})]


def _label(name: str, opts: dict) -> str:
    size = opts.get("size", 4 if name == "static" else 1)
    level = ("fp16", "int8", "int4", "int3")[opts.get("quant", 0)]
    return f"{name} {level}" + (f" b{size}" if name == "static" else "")


def bench_gain(sizes=(50, 100, 200), loads=(5.0, 10.0), seeds=(0, 1, 2)) -> None:
    """Served requests of OT-GAH over each baseline on the tx2 preset (3 GPUs, batches up to 8)."""
    print(f"\n### OT-GAH vs the baselines, tx2 preset (3 GPUs), seeds {list(seeds)}: served requests and gain\n")
    labels = [_label(n, o) for n, o in BASELINES]
    print("| requests | load | ot-gah served | ot-gah s | " + " | ".join(f"{lab} served" for lab in labels) + " | "
          + " | ".join(f"gain vs {lab}" for lab in labels) + " |")
    print("|---:|---:|---:|---:|" + "---:|" * (2 * len(labels)))
    every: dict[str, list] = {lab: [] for lab in labels}
    for R in sizes:
        for load in loads:
            ot, wall, base = [], [], {lab: [] for lab in labels}
            for seed in seeds:
                inst = P.generate("tx2", size=R, seed=seed, load=load)
                r = run_one(inst, "ot-gah")
                ot.append(r.objective)
                wall.append(r.wall_s)
                for (name, opts), lab in zip(BASELINES, labels):
                    base[lab].append(run_one(inst, name, **opts).objective)
            gains = {lab: [o / b - 1 if b else np.inf for o, b in zip(ot, base[lab])] for lab in labels}
            for lab in labels:
                every[lab] += gains[lab]
            print(f"| {R} | {load:g} | {np.mean(ot):.1f} | {np.mean(wall):.2f} | "
                  + " | ".join(f"{np.mean(base[lab]):.1f}" for lab in labels) + " | "
                  + " | ".join(f"{np.mean(gains[lab]):+.0%}" for lab in labels) + " |")
    print("\nmean gain over all rows: " + ", ".join(f"{lab} {np.mean(g):+.0%}" for lab, g in every.items()))


def bench_gap(seeds=range(30)) -> None:
    """Gap to the MILP's proven optimum on small instances (5-7 requests, 1-2 GPUs, 2-3 levels)."""
    methods = ["ot-gah", "static", "no-batching"]
    gaps = {m: [] for m in methods}
    statuses, walls, above = [], [], []
    for seed in seeds:
        inst = P.small_instance(seed)
        opt = run_one(inst, "milp", time_limit=60)
        statuses.append(opt.status)
        walls.append(opt.wall_s)
        above.append((run_one(inst, "knapsack").bound - opt.objective) / opt.objective if opt.objective else 0.0)
        for m in methods:
            r = run_one(inst, m)
            gaps[m].append((opt.objective - r.objective) / opt.objective if opt.objective else 0.0)
    print(f"\n### Gap to the proven optimum (milp), small preset, {len(gaps['ot-gah'])} instances "
          f"(small_instance seeds 0-{max(seeds)}; milp: {', '.join(sorted(set(statuses)))}, "
          f"median {np.median(walls):.2f} s, max {max(walls):.2f} s)\n")
    print("| method | mean gap | max gap | optimal on |")
    print("|---|---:|---:|---:|")
    for m in methods:
        g = np.array(gaps[m])
        print(f"| {m} | {g.mean():.1%} | {g.max():.1%} | {int(np.sum(g < 1e-9))}/{len(g)} |")
    a = np.array(above)
    print(f"\nbound `knapsack` above the optimum: mean {a.mean():.1%}, max {a.max():.1%}, tight on {int(np.sum(a < 1e-9))}/{len(a)}")


def bench_exact(sizes=(8, 10, 12, 14), time_limit: float = 60.0) -> None:
    """How far the MILP proves optimality (small preset, 2 GPUs), and OT-GAH against it."""
    print(f"\n### milp reach (small preset, 2 GPUs, seed 0, time limit {time_limit:g} s) and ot-gah against it\n")
    print("| requests | milp status | milp objective | bound | milp s | ot-gah | ot-gah gap to bound |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for R in sizes:
        inst = P.generate("small", size=R, seed=0, gpus=2)
        e = run_one(inst, "milp", time_limit=time_limit)
        h = run_one(inst, "ot-gah")
        ref = e.bound if e.bound is not None else e.objective  # maximizing: the bound is above every value
        print(f"| {R} | {e.status} | {e.objective} | {e.bound:.6g} | {e.wall_s:.1f} | {h.objective} | "
              f"{max(0.0, (ref - h.objective) / ref):.1%} |")


def bench_time(sizes=(100, 200, 400, 800), load: float = 10.0) -> None:
    """OT-GAH wall time against the number of requests (tx2, 3 GPUs; default 500 backtracking nodes)."""
    print(f"\n### ot-gah time vs requests (tx2 preset, 3 GPUs, load {load:g}, seed 0)\n")
    print("| requests | greedy dive s | greedy served | ot-gah s (500 nodes) | ot-gah served |")
    print("|---:|---:|---:|---:|---:|")
    for R in sizes:
        inst = P.generate("tx2", size=R, seed=0, load=load)
        t = time.perf_counter()
        dive = run_one(inst, "ot-gah", nodes=0)
        t_dive = time.perf_counter() - t
        full = run_one(inst, "ot-gah")
        print(f"| {R} | {t_dive:.2f} | {dive.objective:g} | {full.wall_s:.2f} | {full.objective:g} |")


if __name__ == "__main__":
    chosen = [a for a in sys.argv[1:] if not a.startswith("--")] or ["gain", "gap", "exact", "time"]
    sections = {
        "gain": lambda: bench_gain(sizes=(50,) if QUICK else (50, 100, 200), seeds=(0,) if QUICK else (0, 1, 2)),
        "gap": lambda: bench_gap(seeds=range(5) if QUICK else range(30)),
        "exact": lambda: bench_exact(sizes=(8,) if QUICK else (8, 10, 12, 14), time_limit=10 if QUICK else 60),
        "time": lambda: bench_time(sizes=(100,) if QUICK else (100, 200, 400, 800)),
    }
    for name in chosen:
        sections[name]()
