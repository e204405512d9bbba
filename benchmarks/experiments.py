"""The experiment runner's own cost: overhead per task, and what a second worker buys.

    python benchmarks/experiments.py        # prints Markdown (about 3 minutes on 2 cores)

Overhead: 1,000 trivial tasks (the `edge-solo` baseline on a 3-device partition instance, microseconds of
work each), wall time of the whole run divided by the task count, worker start-up included. Speed-up:
about 200 exact solves (`milp` on small partition instances) with 2 workers against 1.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from edgeopt import experiment

TRIVIAL = """
name = "overhead"
problem = "partition"
preset = "random"
sizes = [3]
seeds = 1000
methods = ["edge-solo"]
time_limit = 10
[grid]
layers = [6]
"""
EXACT = """
name = "exact"
problem = "partition"
preset = "random"
sizes = [4]
seeds = 100
methods = [{name = "milp", options = {threads = 1}}, "dp-latency"]   # one solver thread per worker
time_limit = 30
[grid]
layers = [24]
"""


def timed_run(text: str, executor: str, jobs: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "exp.toml"
        path.write_text(text)
        exp = experiment.read(path)
        t0 = time.perf_counter()
        run_dir = experiment.run(exp, Path(d) / "run", jobs=jobs, executor=executor)
        wall = time.perf_counter() - t0
        return wall, len(experiment.load_rows(run_dir))


if __name__ == "__main__":
    print("### runner overhead: 1,000 trivial tasks\n")
    print("| executor | workers | tasks | wall s | ms per task |")
    print("|---|---|---|---|---|")
    for executor, jobs in (("local", 1), ("local", 2), ("dask", 2)):
        wall, n = timed_run(TRIVIAL, executor, jobs)
        print(f"| {executor} | {jobs} | {n} | {wall:.1f} | {1000 * wall / n:.1f} |")
    print("\n### a sweep of 200 exact solves (100 milp + 100 dp-latency rows), 1 vs 2 local workers\n")
    print("| workers | tasks | wall s | speed-up |")
    print("|---|---|---|---|")
    one, n = timed_run(EXACT, "local", 1)
    two, _ = timed_run(EXACT, "local", 2)
    print(f"| 1 | {n} | {one:.1f} | 1.00 |")
    print(f"| 2 | {n} | {two:.1f} | {one / two:.2f} |")
