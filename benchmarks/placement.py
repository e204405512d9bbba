"""lpt-ls against the proven optimum (milp) and the baselines, across sizes of the edge preset.

    python benchmarks/placement.py            # prints Markdown tables (about 5 minutes on 2 cores)
    python benchmarks/placement.py growth     # lpt-ls alone on the sizes of benchmarks/growth.py, seeds 0-4

Gap = objective / milp objective - 1, over the instances milp proves optimal (the `random` preset can
draw instances with no feasible placement: milp proves them infeasible and they are counted, not
scored). Times are wall seconds of the whole method call (milp includes its lpt-ls start).
"""
from __future__ import annotations

import statistics
import sys
import time

from edgeopt import generate, solve

SIZES = (4, 6, 8, 10, 12, 16)
SEEDS = (0, 1, 2)
TIME_LIMIT = 60
OTHERS = ("lpt-ls", "round-robin", "largest")


def gap_table(preset: str, lam: float) -> None:
    print(f"### `{preset}` preset, λ = {lam:g}: gap to milp (mean / max over seeds {list(SEEDS)}), milp limit {TIME_LIMIT} s\n")
    print("| models | devices | milp optimal / infeasible | milp s (mean) | lpt-ls s (mean) | " + " | ".join(f"{m} gap" for m in OTHERS) + " |")
    print("|---|---|---|---|---|" + "---|" * len(OTHERS))
    for size in SIZES:
        gaps = {m: [] for m in OTHERS}
        times = {"milp": [], "lpt-ls": []}
        proven, infeasible, devices = 0, 0, 0
        for seed in SEEDS:
            inst = generate("placement", preset, size=size, seed=seed, lam=lam)
            devices = len(inst.data.devices)
            exact = solve(inst, "milp", time_limit=TIME_LIMIT)
            times["milp"].append(exact.wall_s)
            if exact.status != "optimal":
                infeasible += exact.status == "infeasible"
                continue
            proven += 1
            for m in OTHERS:
                r = solve(inst, m)
                if m in times:
                    times[m].append(r.wall_s)
                gaps[m].append(r.objective / exact.objective - 1 if r.feasible else float("nan"))
        cells = [f"{100 * statistics.mean(g):.2f} / {100 * max(g):.2f} %" for g in gaps.values()]
        print(f"| {size} | {devices} | {proven} / {infeasible} | {statistics.mean(times['milp']):.2f} | "
              f"{statistics.mean(times['lpt-ls']):.3f} | " + " | ".join(cells) + " |")
    print()


def growth_table() -> None:
    """lpt-ls's referee objective and CPU time on benchmarks/growth.py's sizes (edge, λ = 2), seeds 0-4: run it
    on two trees (PYTHONPATH) to compare them instance by instance."""
    solve(generate("placement", "edge", size=10, seed=0), "lpt-ls")  # warm-up: imports
    print("| models | seed | status | objective | CPU s |\n|---|---|---|---|---|")
    for size in (10, 20, 40, 100):
        for seed in range(5):
            inst = generate("placement", "edge", size=size, seed=seed)
            cpu = time.process_time()
            r = solve(inst, "lpt-ls")
            print(f"| {size} | {seed} | {r.status} | {r.objective:.3f} | {time.process_time() - cpu:.2f} |", flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["growth"]:
        growth_table()
        sys.exit()
    start = time.perf_counter()
    gap_table("edge", 2.0)
    gap_table("edge", 0.0)
    gap_table("random", 2.0)
    print(f"total {time.perf_counter() - start:.0f} s")
