"""Growth exponents of the near-linear paper heuristics (issue 26): CPU time against size over a 10x range.

    OPENBLAS_NUM_THREADS=1 python benchmarks/growth.py [name ...]
    PYTHONPATH=/tmp/before OPENBLAS_NUM_THREADS=1 python benchmarks/growth.py ...    # the same on an older tree

One untimed warm-up run at the smallest size, then one run per size, seed 0, generation not timed; the exponent
is the least-squares slope of log(CPU s) against log(size) (1 = linear). Prints one Markdown row per method.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from edgeopt import generate, solve

# name: (problem, preset, method, method options, what size counts, sizes)
CASES = {
    "cs-ucb": ("dagsched", "layered", "cs-ucb", {"episodes": 5}, "jobs of 10 sub-tasks", (25, 50, 100, 250)),
    "lpt-ls": ("placement", "edge", "lpt-ls", {}, "models (devices: half as many)", (10, 20, 40, 100)),
    "dp-latency": ("partition", "llama2-7b", "dp-latency", {}, "devices", (10, 32, 100, 320, 1000)),
    "enumerate": ("stepsplit", "seed003", "enumerate", {}, "steps per stage n (n² points per paradigm)",
                  (10, 20, 50, 100)),
}


def main(names: list[str]) -> None:
    print("| method | size counts | sizes | CPU s | exponent |")
    print("|---|---|---|---|---:|")
    for name in names or list(CASES):
        pid, preset, method, options, unit, sizes = CASES[name]
        solve(generate(pid, preset, size=sizes[0], seed=0), method, **options)  # warm-up: imports, caches
        cpu = []
        for size in sizes:
            inst = generate(pid, preset, size=size, seed=0)
            t = time.process_time()
            r = solve(inst, method, **options)
            cpu.append(time.process_time() - t)
            print(f"<!-- {name} size {size}: {cpu[-1]:.3f} CPU s, {r.status}, objective {r.objective} -->", flush=True)
        slope = np.polyfit(np.log(sizes), np.log(np.maximum(cpu, 1e-4)), 1)[0]
        print(f"| {method} | {unit} | {', '.join(map(str, sizes))} | {', '.join(f'{c:.2f}' for c in cpu)} "
              f"| {slope:.2f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
