"""Speed of list scheduling, reach of the exact methods (milp, cpsat), every method's gap to the optimum (dagsched).

    python benchmarks/dagsched.py            # prints Markdown tables (about 20 minutes on 2 cores)
    python benchmarks/dagsched.py gaps       # only the gap tables (about 5 minutes)

Times are wall seconds of the whole method call (model building included); list is best of 3. The exact
methods run on one thread with the list schedule as their start.
"""
from __future__ import annotations

import statistics
import sys
import time

from edgeopt import generate, io, solve

METHODS = {"list": ("list", {}), "cs-ucb": ("cs-ucb", {}), "cs-ucb-location": ("cs-ucb", {"learn": "location"}),
           "random": ("random", {}), "all-cloud": ("all-cloud", {}), "greedy-edge": ("greedy-edge", {})}
EXACT = ["milp", "cpsat"]


def list_speed() -> None:
    print("### list scheduling at scale\n")
    print("| instance | sub-tasks | list s (best of 3) | referee s | objective | on cloud |")
    print("|---|---|---|---|---|---|")
    for jobs, tasks in [(100, 10), (1000, 10)]:
        inst = generate("dagsched", "layered", size=jobs, seed=0, tasks=tasks)
        runs = [solve(inst, "list") for _ in range(3)]
        best = min(runs, key=lambda r: r.wall_s)
        t0 = time.perf_counter()
        from edgeopt import evaluate

        evaluate(inst, io.parse_solution(inst, {"solution": best.solution}))
        ref = time.perf_counter() - t0
        print(f"| {inst.name} | {inst.data.graph.T} | {best.wall_s:.3f} | {ref:.3f} | {best.objective:.3f} | "
              f"{best.details['on_cloud']} |")
    print()


def reach(title: str, make, sizes, target: int | None = None, limit: float = 60.0, two_threads: bool = False) -> None:
    """Each exact method on growing sizes until the first it does not prove within ``limit`` s (one
    thread, the list schedule as its start), then at ``target`` regardless: the gap it certifies there.
    ``two_threads``: cpsat at ``target`` once more with 2 workers (the second one searches by LNS)."""
    print(f"### exact methods: proven optimal within {limit:.0f} s on one thread? {title}\n")
    print("| instance | sub-tasks | method | status | wall s | objective | bound | gap | list objective |")
    print("|---|---|---|---|---|---|---|---|---|")
    best = {}

    def row(size, name, threads):
        inst = make(size)
        lst = solve(inst, "list")
        r = solve(inst, name, time_limit=limit, threads=threads, start=io.parse_solution(inst, {"solution": lst.solution}))
        bound = "" if r.bound is None else f"{r.bound:.4f}"
        obj = "" if r.objective is None else f"{r.objective:.4f}"
        gap = "" if r.gap is None else f"{100 * r.gap:.3f} %"
        label = name if threads == 1 else f"{name} ({threads} threads)"
        print(f"| {inst.name} | {inst.data.graph.T} | {label} | {r.status} | {r.wall_s:.2f} | {obj} | {bound} | {gap} | "
              f"{lst.objective:.4f} |", flush=True)
        if r.status == "optimal" and threads == 1:
            best[name] = f"{inst.data.graph.T} sub-tasks ({r.wall_s:.1f} s)"
        return r.status == "optimal"

    for name in EXACT:
        todo = list(sizes)
        while todo:
            size = todo.pop(0)
            if not row(size, name, 1):
                todo = [target] if target is not None and target > size else []
    if two_threads:
        row(target, "cpsat", 2)
    print()
    print("Largest proven: " + "; ".join(f"{n} {best.get(n, 'none')}" for n in EXACT) + "\n")


def layered(jobs: int, cloud_hz: float | None = None):
    inst = generate("dagsched", "layered", size=jobs, seed=0, tasks=6)
    if cloud_hz is None:
        return inst
    doc = io.instance_doc(inst)
    doc["data"]["cloud"]["f_hz"] = cloud_hz
    doc["name"] += "-cloud2.5GHz"
    return io.load(doc)


def gaps(title: str, make, n: int = 50) -> None:
    rows = {m: [] for m in METHODS}
    infeasible = {m: 0 for m in METHODS}
    wall = {m: [] for m in [*METHODS, "milp"]}
    proven = 0
    for seed in range(n):
        inst = make(seed)
        opt = solve(inst, "milp", time_limit=60)
        wall["milp"].append(opt.wall_s)
        if opt.status != "optimal":
            continue
        proven += 1
        for m, (name, options) in METHODS.items():
            r = solve(inst, name, seed=seed, **options)
            wall[m].append(r.wall_s)
            if not r.feasible:
                infeasible[m] += 1
                continue
            rows[m].append((r.objective - opt.objective) / opt.objective)
    print(f"### gap to the milp optimum: {title} ({proven}/{n} proven optimal)\n")
    print("| method | mean gap | median gap | max gap | optimal (gap < 1e-6) | infeasible | mean wall s |")
    print("|---|---|---|---|---|---|---|")
    for m in METHODS:
        g = rows[m]
        print(f"| {m} | {100 * statistics.mean(g):.2f} % | {100 * statistics.median(g):.2f} % | {100 * max(g):.2f} % | "
              f"{sum(x < 1e-6 for x in g)}/{len(g)} | {infeasible[m]} | {statistics.mean(wall[m]):.4f} |")
    print(f"| milp | 0 | 0 | 0 | {proven}/{n} | 0 | {statistics.mean(wall['milp']):.4f} |")
    print()


def paper(seed: int):
    return generate("dagsched", "paper", size=3, seed=seed, mix="random")


def edge_share(seed: int):
    return generate("dagsched", "edge-share", size=3, seed=seed, mix="random")


def slow_cloud(seed: int):
    doc = io.instance_doc(paper(seed))
    doc["data"]["cloud"]["f_hz"] = 2.5e9
    return io.load(doc)


if __name__ == "__main__":
    start = time.perf_counter()
    if sys.argv[1:] == ["gaps"]:
        gaps("50 paper-family instances, 3 random-family jobs, W = 6 MHz, T_max = 3 s", paper)
        gaps("the same 50 families and sizes in the edge-share preset (gamma = 0.03)", edge_share)
        gaps("the same 50 with the cloud slowed to 2.5 GHz (edges worth using)", slow_cloud)
        print(f"total {time.perf_counter() - start:.0f} s")
        sys.exit()
    list_speed()
    reach("layered DAGs of 6 sub-tasks, paper servers (3 edges + 10 GHz cloud)", layered,
          (3, 4, 6, 8, 12, 16, 24, 34, 48), target=34, two_threads=True)
    reach("the same with the cloud slowed to 2.5 GHz", lambda j: layered(j, 2.5e9), (3, 4, 5, 6, 8, 10))
    reach("the layered preset as generated (10 sub-tasks per job)",
          lambda j: generate("dagsched", "layered", size=j, seed=0), (2, 4, 6, 8, 10, 14, 20), target=20, two_threads=True)
    reach("the paper preset (the five job families in turn)", lambda j: generate("dagsched", "paper", size=j, seed=0),
          (5, 10, 15, 20, 30, 42), target=42)
    reach("the HEFT example (pure makespan, 3 processors; HEFT = 80)",
          lambda _: io.load("instances/dagsched/heft-topcuoglu.json"), (1,))
    gaps("50 paper-family instances, 3 random-family jobs, W = 6 MHz, T_max = 3 s", paper)
    gaps("the same 50 families and sizes in the edge-share preset (gamma = 0.03)", edge_share)
    gaps("the same 50 with the cloud slowed to 2.5 GHz (edges worth using)", slow_cloud)
    print(f"total {time.perf_counter() - start:.0f} s")
