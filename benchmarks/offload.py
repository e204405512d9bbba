"""Benchmarks of issue 6: ts-mito at paper scale, gap to minlp on N = 3-5 users x 2 edges, minlp proof for N = 4.

Run: python benchmarks/offload.py   (prints Markdown tables; takes a few minutes, SCIP on one thread)
     python benchmarks/offload.py --tradeoff   (only the gap table on the ``tradeoff`` preset)
"""
from __future__ import annotations

import sys
import time

from edgeopt.compare import run_one
from edgeopt.problems import offload as P
from edgeopt.problems import stepsplit as S

METHODS = ["ts-mito", "equal", "proportional", "cloud-heavy", "edge-heavy"]


def gap_table(preset: str, sizes, seeds) -> None:
    """Gap to minlp (SCIP global, 120 s, 1 thread) of every heuristic/baseline; interior = minlp users with
    o < o_max or c_min < c < o."""
    print(f"\n### gap to minlp on the {preset} preset (SCIP global, 120 s limit), 2 edges\n")
    print("| instance | minlp status | minlp objective | bound | minlp s | interior users | "
          + " | ".join(f"{m} gap %" for m in METHODS) + " |\n|---|---|---|---|---|---|" + "---|" * len(METHODS))
    for n in sizes:
        for seed in seeds:
            inst = P.generate(preset, size=n, seed=seed, edges=2)
            s = inst.data.steps
            e = run_one(inst, "minlp", time_limit=120, threads=1)
            o, c = (e.solution[k] for k in ("steps", "cloud_steps"))
            interior = sum(oi < s.o_max or s.c_min < ci < oi for oi, ci in zip(o, c))
            gaps = []
            for m in METHODS:
                r = run_one(inst, m)
                gaps.append("n/a" if r.objective is None else f"{100 * (e.objective - r.objective) / abs(e.objective):.4f}")
            print(f"| {inst.name} | {e.status} | {e.objective:.6f} | {e.bound:.6f} | {e.wall_s:.1f} | {interior}/{n} | "
                  + " | ".join(gaps) + " |", flush=True)


def main() -> None:
    print("### ts-mito at paper scale (15 users x 3 edges)\n")
    print("| instance | method | objective | wall s |\n|---|---|---|---|")
    for seed in (0, 1):
        inst = P.generate("paper", seed=seed)
        for m in METHODS:
            r = run_one(inst, m)
            print(f"| {inst.name} | {m} | {r.objective:.4f} | {r.wall_s:.2f} |")
    print("\n### gap to minlp (SCIP global, 120 s limit), 2 edges\n")
    print("| instance | minlp status | minlp objective | bound | minlp s | " + " | ".join(f"{m} gap %" for m in METHODS)
          + " |\n|---|---|---|---|---|" + "---|" * len(METHODS))
    for n in (3, 4, 5):
        for seed in (0, 1):
            inst = P.generate("small", size=n, seed=seed, edges=2)
            e = run_one(inst, "minlp", time_limit=120, threads=1)
            gaps = []
            for m in METHODS:
                r = run_one(inst, m)
                gaps.append("n/a" if r.objective is None else f"{100 * (e.objective - r.objective) / abs(e.objective):.4f}")
            print(f"| {inst.name} | {e.status} | {e.objective:.6f} | {e.bound:.6f} | {e.wall_s:.1f} | " + " | ".join(gaps) + " |")
    print("\n### stepsplit: methods on the seed 003 presets (objective = MGF bound on Pr(T > T0))\n")
    print("| instance | method | status | bound on Pr(T > T0) | choice | wall s |\n|---|---|---|---|---|---|")
    for preset in ("seed003", "seed003-fading"):
        inst = S.generate(preset)
        for m in ("enumerate", "min-bound", "edge-only", "device-only"):
            r = run_one(inst, m)
            sol = r.solution
            print(f"| {inst.name} | {m} | {r.status} | {r.objective:.3g} | {sol['mode']} "
                  f"({sol['prior_steps']}, {sol['dec_steps']}) | {r.wall_s:.3f} |")


if __name__ == "__main__":
    start = time.perf_counter()
    if "--tradeoff" in sys.argv:
        gap_table("tradeoff", (3, 4), (0, 1, 2))
    else:
        main()
        gap_table("tradeoff", (3, 4), (0, 1, 2))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
