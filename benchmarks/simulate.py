"""SusCO over time: 100 auction intervals on Starlink-550, the speed of the loop and who wins over time.

    python benchmarks/simulate.py            # Markdown tables and figures in runs/bench-simulate (about 3 minutes)

One core (OMP_NUM_THREADS=1). The speed target: 100 intervals with cgsc-cstp in under 30 s, every part of
an interval included (building the instance from the state, the auction, the referee, the state update).
Then every cdgs method on the same 100 intervals (same orbits, arrivals and dish failures: the randomness
never depends on the policy), beside the paper's claims (SusCO vs the next best: -26.75 % battery
lifetime consumption, -26.07 % energy, -32.77 % end-to-end delay).
"""
from __future__ import annotations

import cProfile
import os
import pstats
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import edgeopt  # noqa: E402
from edgeopt.simulation import plot  # noqa: E402

INTERVALS = 100
METHODS = ["cgsc-cstp", "service", "smtsn", "falcon", "no-offload"]
OUT = "runs/bench-simulate"


def speed() -> None:
    edgeopt.simulate("cdgs", "cgsc-cstp", preset="telesat", intervals=1, size=10, bids=5)  # imports, caches
    start, cpu = time.perf_counter(), time.process_time()
    edgeopt.simulate("cdgs", "cgsc-cstp", preset="starlink-550", intervals=INTERVALS, seed=0)
    plain_wall, plain_cpu = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    cpu = time.process_time()
    profile = cProfile.Profile()
    profile.enable()
    edgeopt.simulate("cdgs", "cgsc-cstp", preset="starlink-550", intervals=INTERVALS, seed=0)
    profile.disable()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"### {INTERVALS} intervals of Starlink-550 (1584 tasks, 30 bids each) with cgsc-cstp\n")
    print(f"CPU {plain_cpu:.1f} s, wall {plain_wall:.1f} s on the shared machine ({1000 * plain_cpu / INTERVALS:.0f} ms "
          f"CPU per interval); profiled: CPU {cpu:.1f} s, wall {wall:.1f} s. Parts (profiled, cumulative wall):\n")
    stats = pstats.Stats(profile)
    parts = {"build the instance (geometry, bids)": "_constellation", "validate the instance": "model_validate",
             "the auction (cgsc-cstp)": "cgsc_cstp", "the referee": "evaluate", "advance the state": "advance"}
    total = {name: 0.0 for name in parts}
    for (file, line, fn), (_, _, _, cum, _) in stats.stats.items():
        for name, target in parts.items():
            if fn == target and ("cdgs" in file or target == "model_validate"):
                total[name] += cum
    print("| part | s over the run | ms per interval |\n|---|---|---|")
    for name, s in sorted(total.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {s:.2f} | {1000 * s / INTERVALS:.0f} |")
    print()


def comparison() -> None:
    runs = []
    for m in METHODS:
        start = time.perf_counter()
        runs.append(edgeopt.simulate("cdgs", m, preset="starlink-550", intervals=INTERVALS, seed=0,
                                     out=f"{OUT}/{m}"))
        print(f"<!-- {m}: {time.perf_counter() - start:.1f} s -->")
    plot(runs, f"{OUT}/figures")
    print(f"\n### Over {INTERVALS} intervals (seed 0; every method meets the same orbits, traffic and failures)\n")
    cols = ["utility", "energy_j", "lifetime_consumed", "mean_delay_ms", "payment"]
    print("| method | " + " | ".join(cols) + " | winning bids' cost | budget violations | failed-dish Mb | "
          "offloaded Mb |")
    print("|---|" + "---|" * (len(cols) + 4))
    for r in runs:
        fb = sum(r.column("auction", "fallback_mb"))
        off = sum(r.column("auction", "offloaded_mb"))
        cost = sum(r.column("auction", "winning_cost"))
        bad = sum(r.column("decision", "violations"))
        cells = ["-" if r.summary[c] is None else f"{r.summary[c]:.6g}" for c in cols]
        print(f"| {r.method} | " + " | ".join(cells) + f" | {cost:.0f} | {bad} | {fb:.0f} | {off:.0f} |")
    susco = runs[0].summary
    for title, rivals in (("the best budget-respecting baseline (service, smtsn)", ("service", "smtsn")),
                          ("falcon (ignores budgets)", ("falcon",))):
        print(f"\nSusCO vs {title} (negative: SusCO lower, as the paper claims):\n")
        for c, claim in (("lifetime_consumed", -26.75), ("energy_j", -26.07), ("mean_delay_ms", -32.77)):
            best = min(r.summary[c] for r in runs if r.method in rivals)
            print(f"- {c}: {100 * (susco[c] - best) / best:+.2f} % (paper {claim:+.2f} %)")


if __name__ == "__main__":
    speed()
    comparison()
