"""The experiment runner's own cost: overhead per task, and what a second worker buys.

    python benchmarks/experiments.py        # prints Markdown (about 3 minutes on 2 cores)

Overhead: 1,000 trivial tasks (the `edge-solo` baseline on a 3-device partition instance, microseconds of
work each), wall time of the whole run divided by the task count, worker start-up included; and the cost of
one more task, start-up excluded: (wall of 1,000 tasks - wall of 200) / 800; and, for Dask, the same for
a cluster running ``int`` instead of a task (what Dask itself costs). Speed-up:
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
seeds = {seeds}
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


def bare_dask(tasks: int) -> float:
    """Dask's own floor: wall s for ``tasks`` calls of ``int`` on a local cluster like the runner's (2 worker
    processes, one thread each), submitted and collected the way the runner does, cluster start-up included."""
    import logging

    from dask.distributed import Client, LocalCluster, as_completed

    t0 = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        for fut in as_completed([client.submit(int, k, pure=False) for k in range(tasks)]):
            fut.result()
    return time.perf_counter() - t0


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
    print("| executor | workers | tasks | wall s | ms per task | wall s, 200 tasks | ms per further task |")
    print("|---|---|---|---|---|---|---|")
    for executor, jobs in (("local", 1), ("local", 2), ("dask", 2)):
        wall, n = timed_run(TRIVIAL.format(seeds=1000), executor, jobs)
        few, m = timed_run(TRIVIAL.format(seeds=200), executor, jobs)
        print(f"| {executor} | {jobs} | {n} | {wall:.1f} | {1000 * wall / n:.1f} | {few:.1f} "
              f"| {1000 * (wall - few) / (n - m):.1f} |")
    wall, few = bare_dask(1000), bare_dask(200)
    print(f"| Dask alone (`int` per task) | 2 | 1000 | {wall:.1f} | {wall:.1f} | {few:.1f} | {1000 * (wall - few) / 800:.1f} |")
    print("\n### a sweep of 200 exact solves (100 milp + 100 dp-latency rows), 1 vs 2 local workers\n")
    print("| workers | tasks | wall s | speed-up |")
    print("|---|---|---|---|")
    one, n = timed_run(EXACT, "local", 1)
    two, _ = timed_run(EXACT, "local", 2)
    print(f"| 1 | {n} | {one:.1f} | 1.00 |")
    print(f"| 2 | {n} | {two:.1f} | {one / two:.2f} |")
