"""The largest size each exact method proves optimal within 60 s on one thread, and its gap at issue 12's targets.

    OPENBLAS_NUM_THREADS=1 python benchmarks/proven.py [problem ...]    # Markdown table (about 1 hour)
    PYTHONPATH=/tmp/before OPENBLAS_NUM_THREADS=1 python benchmarks/proven.py    # the same on an older tree
                                                   # (git archive COMMIT | tar -x -C /tmp/before)

One seed (0) per size; a size counts as proven when the method's status is ``optimal`` (wall time, model
building included, within the limit). Sizes double from the first one until a run is not proven (or the cap),
then bisection between the last proven and the first unproven size down to about 10 %. Each method runs with
its defaults (on this tree: started from its best heuristic); no probe runs twice.
"""
from __future__ import annotations

import os
import sys
import time

from edgeopt import generate, solve

LIMIT = 60.0
# (problem, method, preset and generator options, first size, cap, target size or None, what a size counts,
#  how many of them one unit of --size is)
CASES = [
    ("qllms", "milp", ("qllms", {}), 50, 4096, 1000, "tasks", 1),
    ("cdgs", "milp", ("small", {"bids": 10}), 20, 1600, 300, "tasks", 1),
    ("dagsched", "milp", ("layered", {}), 1, 64, 200, "sub-tasks", 10),
    ("dagsched", "cpsat", ("layered", {}), 1, 64, 200, "sub-tasks", 10),
    ("offload", "minlp", ("paper", {}), 1, 64, None, "users", 1),
    ("partition", "milp", ("llama2-7b", {}), 2, 64, None, "devices", 1),
]


def probe(problem: str, method: str, preset: tuple[str, dict], size: int):
    inst = generate(problem, preset[0], size=size, seed=0, **preset[1])
    r = solve(inst, method, time_limit=LIMIT, threads=1)
    gap = "" if r.gap is None else f"{100 * r.gap:.3f} %"
    print(f"<!-- {problem} {method} size {size}: {r.status} {r.wall_s:.1f} s gap {gap} -->", flush=True)
    return r


def largest_proven(problem: str, method: str, preset: tuple[str, dict], first: int, cap: int):
    """(largest proven size or None, its result, first unproven size or None) by doubling then bisection."""
    done = {}

    def proven(size):
        if size not in done:
            done[size] = probe(problem, method, preset, size)
        return done[size].status == "optimal"

    lo, hi, size = None, None, first
    while size <= cap:
        if not proven(size):
            hi = size
            break
        lo, size = size, size * 2
    if lo is not None and hi is not None:
        while hi - lo > max(1, lo // 10):
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if proven(mid) else (lo, mid)
    return lo, done.get(lo), hi


def main(problems: list[str]) -> None:
    began = time.perf_counter()
    rows = []
    for problem, method, preset, first, cap, target, unit, per in CASES:
        if problems and problem not in problems:
            continue
        lo, res, hi = largest_proven(problem, method, preset, first, cap)
        at = probe(problem, method, preset, target // per) if target is not None and (lo or 0) * per < target else None
        rows.append((problem, method, preset, unit, per, lo, res, hi, target, at))
    print(f"\n### largest size proven optimal within {LIMIT:.0f} s, one thread, seed 0\n")
    print("| problem | method | instances | largest proven | its wall s | first not proven | target | at the target |")
    print("|---|---|---|---|---|---|---|---|")
    for problem, method, preset, unit, per, lo, res, hi, target, at in rows:
        largest = "none" if lo is None else f"{lo * per} {unit}"
        wall = "" if res is None else f"{res.wall_s:.1f}"
        first_no = "" if hi is None else f"{hi * per}"
        if target is None:
            tgt, there = "", ""
        elif at is None:
            tgt, there = f"{target}", "proven"
        else:
            gap = "no bound" if at.gap is None else f"gap {100 * at.gap:.2f} %"
            tgt, there = f"{target}", f"{at.status}, {gap}"
        opts = "".join(f", {k} {v}" for k, v in preset[1].items())
        print(f"| {problem} | {method} | {preset[0]}{opts} | {largest} | {wall} | {first_no} | {tgt} | {there} |")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())  # wall-time limits: a busy machine proves less
    print(f"\ntotal {time.perf_counter() - began:.0f} s; load average at the end {load} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main(sys.argv[1:])
