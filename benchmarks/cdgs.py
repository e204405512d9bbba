"""Speed of SusCO's CGSC + CSTP at constellation scale, and utility gaps of every method to the MILP.

    python benchmarks/cdgs.py            # prints Markdown tables (about 3 minutes on 2 shared cores)

Times are wall milliseconds on one core, best of ``REPEAT``. The paper's anchors (Chou et al.,
INFOCOM 2025): CGSC 5.5 ms and CSTP 69 ms per auction round at Starlink scale, under 100 ms in all
at 3168 satellites.
"""
from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from edgeopt import generate, solve  # noqa: E402
from edgeopt.heuristics.cdgs import cgsc, cgsc_cstp, cstp  # noqa: E402

REPEAT = 5
METHODS = ["cgsc-cstp", "service", "smtsn", "falcon", "no-offload"]


def best_ms(fn, repeat: int = REPEAT) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return 1000 * best


def speed_table() -> None:
    print("### cgsc-cstp on one whole auction interval (every satellite a source, 30 bids each)\n")
    print("| preset | tasks | bids | candidates | CGSC ms (paper 5.5) | CSTP ms (paper 69) | whole method ms "
          "(incl. Solution) | referee utility | served |")
    print("|---|---|---|---|---|---|---|---|---|")
    for preset in ("starlink-550", "starlink-2x", "kuiper", "oneweb", "telesat"):
        inst = generate("cdgs", preset, seed=0)
        cand = cgsc(inst)
        t_cgsc = best_ms(lambda: cgsc(inst))
        t_cstp = best_ms(lambda: cstp(inst, cand))
        t_all = best_ms(lambda: cgsc_cstp(inst))
        r = solve(inst, "cgsc-cstp")
        print(f"| {preset} | {len(inst.data.tasks.source)} | {len(inst.data.bids.task)} | {len(cand.task)} | "
              f"{t_cgsc:.1f} | {t_cstp:.1f} | {t_all:.1f} | {r.objective:.2f} | {r.details['served']} |")
    print()


def gap_table(n: int = 50) -> None:
    print(f"### utility gap to the proven optimum (milp) on {n} small random instances "
          "(preset small, 8 tasks x 6 bids, seeds 0..49)\n")
    gaps: dict[str, list[float]] = {m: [] for m in METHODS}
    infeasible = {m: 0 for m in METHODS}
    milp_s = []
    for seed in range(n):
        inst = generate("cdgs", "small", size=8, seed=seed, bids=6)
        opt = solve(inst, "milp", time_limit=60)
        assert opt.status == "optimal", opt.status
        milp_s.append(opt.wall_s)
        for m in METHODS:
            r = solve(inst, m)
            if not r.feasible:
                infeasible[m] += 1
                continue
            gaps[m].append((opt.objective - r.objective) / opt.objective if opt.objective > 0 else 0.0)
    print("| method | mean gap | worst gap | instances at the optimum | infeasible |")
    print("|---|---|---|---|---|")
    for m in METHODS:
        g = np.array(gaps[m])
        if len(g):
            print(f"| {m} | {100 * g.mean():.2f} % | {100 * g.max():.2f} % | {(g < 1e-9).sum()}/{len(g)} | "
                  f"{infeasible[m]}/{n} |")
        else:
            print(f"| {m} | | | | {infeasible[m]}/{n} |")
    print(f"\nmilp: median {1000 * np.median(milp_s):.0f} ms, max {1000 * max(milp_s):.0f} ms per instance\n")


def milp_table() -> None:
    print("### milp on 20 tasks x 10 bids (target: proven optimal within 60 s), and at Telesat scale\n")
    print("| instance | bids | status | wall s | objective | bound | cgsc-cstp gap to bound |")
    print("|---|---|---|---|---|---|---|")
    cases = [generate("cdgs", "small", size=20, seed=s, bids=10) for s in range(5)]
    cases.append(generate("cdgs", "telesat", seed=0))
    for inst in cases:
        r = solve(inst, "milp", time_limit=60)
        h = solve(inst, "cgsc-cstp")
        gap = (r.bound - h.objective) / r.bound
        print(f"| {inst.name} | {len(inst.data.bids.task)} | {r.status} | {r.wall_s:.2f} | {r.objective:.4f} | "
              f"{r.bound:.4f} | {100 * gap:.2f} % |")
    print()


if __name__ == "__main__":
    start = time.perf_counter()
    speed_table()
    gap_table()
    milp_table()
    print(f"total {time.perf_counter() - start:.0f} s")
