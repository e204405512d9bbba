"""Benchmarks of issues 6 and 10: ts-mito at paper scale and its growth to 1,500 users, gap to minlp.

Run: python benchmarks/offload.py   (prints Markdown tables; takes a few minutes, SCIP on one thread)
     python benchmarks/offload.py --scaling [--sizes 15,150,1500]   (only ts-mito's time vs users)
     python benchmarks/offload.py --tradeoff   (only the gap table on the ``tradeoff`` preset)
     python benchmarks/offload.py --gaps   (only the two gap tables, ``small`` and ``tradeoff``)
     add --rev REV to run the heuristics of git revision REV instead (before/after tables)
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

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


def small_gaps() -> None:
    """Gap to minlp (SCIP global, 120 s, 1 thread) on the ``small`` preset, N = 3-5 users x 2 edges."""
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
            print(f"| {inst.name} | {e.status} | {e.objective:.6f} | {e.bound:.6f} | {e.wall_s:.1f} | " + " | ".join(gaps)
                  + " |", flush=True)


def use_revision(rev: str) -> None:
    """Register the methods of ``heuristics/offload.py`` at git revision ``rev`` in place of the working tree's."""
    import edgeopt.heuristics  # noqa: F401  (the parent package must exist before its module is replaced)

    root = Path(__file__).resolve().parents[1]
    code = subprocess.run(["git", "show", f"{rev}:heuristics/offload.py"], cwd=root, check=True, capture_output=True,
                          text=True).stdout
    module = types.ModuleType("edgeopt.heuristics.offload")
    module.__file__ = f"{rev}:heuristics/offload.py"
    sys.modules[module.__name__] = module  # the registry imports it from here
    exec(compile(code, module.__file__, "exec"), module.__dict__)


def scaling(sizes=(15, 150, 1500), seeds=(0, 1, 2), limit: float = 60.0) -> None:
    """ts-mito wall and CPU time on the paper preset (3 edges) at each size, one run per seed, after one untimed
    warm-up run; the growth exponent is the least-squares slope of log(median time) on log(users). CPU time
    (of the whole call, referee included) is what other jobs on a shared machine disturb least."""
    print(f"\n### ts-mito time vs users (paper preset, 3 edges, seeds {list(seeds)}, time limit {limit:g} s)\n")
    print("| users | wall s per seed | median wall s | CPU s per seed | median CPU s | objective per seed | status |\n"
          "|---|---|---|---|---|---|---|")
    run_one(P.generate("paper", size=15, seed=99), "ts-mito")  # warm-up, untimed: first calls pay for imports
    walls, cpus = [], []
    for n in sizes:
        runs, cpu = [], []
        for s in seeds:
            inst = P.generate("paper", size=n, seed=s)
            start = time.process_time()
            runs.append(run_one(inst, "ts-mito", time_limit=limit))
            cpu.append(time.process_time() - start)
        walls.append(statistics.median(r.wall_s for r in runs))
        cpus.append(statistics.median(cpu))
        hit = ["time limit" if r.wall_s >= limit else "converged" for r in runs]
        print(f"| {n:,} | {', '.join(f'{r.wall_s:.2f}' for r in runs)} | {walls[-1]:.2f} | "
              f"{', '.join(f'{c:.2f}' for c in cpu)} | {cpus[-1]:.2f} | "
              f"{', '.join(f'{r.objective:.1f}' for r in runs)} | {', '.join(hit)} |", flush=True)
    if len(sizes) > 1:
        fit = [np.polyfit(np.log(sizes), np.log(t), 1)[0] for t in (walls, cpus)]
        print(f"\ngrowth exponent (least squares, log median time vs log users): wall {fit[0]:.2f}, CPU {fit[1]:.2f}")


def main() -> None:
    print("### ts-mito at paper scale (15 users x 3 edges)\n")
    print("| instance | method | objective | wall s |\n|---|---|---|---|")
    for seed in (0, 1):
        inst = P.generate("paper", seed=seed)
        for m in METHODS:
            r = run_one(inst, m)
            print(f"| {inst.name} | {m} | {r.objective:.4f} | {r.wall_s:.2f} |")
    small_gaps()
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
    if "--rev" in sys.argv:
        use_revision(sys.argv[sys.argv.index("--rev") + 1])
    if "--scaling" in sys.argv:
        sizes = sys.argv[sys.argv.index("--sizes") + 1] if "--sizes" in sys.argv else "15,150,1500"
        scaling(tuple(int(n) for n in sizes.split(",")))
    elif "--gaps" in sys.argv:
        small_gaps()
        gap_table("tradeoff", (3, 4), (0, 1, 2))
    elif "--tradeoff" in sys.argv:
        gap_table("tradeoff", (3, 4), (0, 1, 2))
    else:
        main()
        gap_table("tradeoff", (3, 4), (0, 1, 2))
        scaling()
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
