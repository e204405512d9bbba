"""Speed and quality of the partition methods at EdgeShard scale.

    python benchmarks/partition.py            # prints Markdown tables (about 2 minutes on 2 cores)

Times are wall seconds of the whole method call (model building included), best of ``REPEAT`` for the
DPs, one run for the MILP.
"""
from __future__ import annotations

import time

from edgeopt import generate, solve

REPEAT = 5


def best_of(instance, method: str, repeat: int = REPEAT):
    best = None
    for _ in range(repeat):
        r = solve(instance, method)
        if best is None or r.wall_s < best.wall_s:
            best = r
    return best


def latency_table() -> None:
    print("### dp-latency vs milp (latency objective)\n")
    print("| instance | L | D | dp-latency ms | milp s | milp status | speed ratio milp/dp | dp objective | milp objective | dp gap |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for preset, size in [("llama2-7b", 5), ("llama2-7b", 8), ("llama2-70b", 5), ("llama2-70b", 8), ("llama2-70b", 12)]:
        inst = generate("partition", preset, size=size, objective="latency")
        dp = best_of(inst, "dp-latency")
        milp = solve(inst, "milp", time_limit=60)
        gap = (dp.objective - milp.objective) / milp.objective if dp.feasible and milp.feasible else float("nan")
        print(f"| {inst.name} | {len(inst.data.layers)} | {size} | {1000 * dp.wall_s:.2f} | {milp.wall_s:.2f} | "
              f"{milp.status} | {milp.wall_s / dp.wall_s:,.0f}x | {dp.objective:.3f} | {milp.objective:.3f} | "
              f"{100 * gap:.2f} % |")
    print()


def throughput_table() -> None:
    print("### dp-throughput (exact) vs milp (throughput objective, milp limited to 60 s)\n")
    print("| instance | L | D | dp-throughput s | dp cycle ms | milp s | milp status | milp objective | milp bound |")
    print("|---|---|---|---|---|---|---|---|---|")
    for preset, size in [("llama2-7b", 5), ("llama2-7b", 8), ("llama2-7b", 10), ("llama2-70b", 8), ("llama2-70b", 10)]:
        inst = generate("partition", preset, size=size, objective="throughput")
        dp = best_of(inst, "dp-throughput", repeat=1)
        milp = solve(inst, "milp", time_limit=60)
        print(f"| {inst.name} | {len(inst.data.layers)} | {size} | {dp.wall_s:.3f} | {dp.objective:.3f} | "
              f"{milp.wall_s:.1f} | {milp.status} | {milp.objective:.3f} | {milp.bound:.3f} |")
    print()


if __name__ == "__main__":
    start = time.perf_counter()
    latency_table()
    throughput_table()
    print(f"total {time.perf_counter() - start:.0f} s")
