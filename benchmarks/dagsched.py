"""Speed of list scheduling, reach of the MILP, and every method's gap to the MILP optimum (dagsched).

    python benchmarks/dagsched.py            # prints Markdown tables (a few minutes on 2 cores)

Times are wall seconds of the whole method call (model building included); list is best of 3.
"""
from __future__ import annotations

import statistics
import time

from edgeopt import generate, io, solve

METHODS = ["list", "cs-ucb", "random", "all-cloud", "greedy-edge"]


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


def milp_reach(title: str, make, sizes, limit: float = 60.0) -> None:
    print(f"### milp: proven optimal within {limit:.0f} s? {title}\n")
    print("| instance | sub-tasks | status | wall s | objective | bound | list objective | list gap |")
    print("|---|---|---|---|---|---|---|---|")
    for size in sizes:
        inst = make(size)
        r = solve(inst, "milp", time_limit=limit)
        lst = solve(inst, "list")
        gap = (lst.objective - r.objective) / r.objective if r.feasible else float("nan")
        bound = "" if r.bound is None else f"{r.bound:.4f}"
        obj = "" if r.objective is None else f"{r.objective:.4f}"
        print(f"| {inst.name} | {inst.data.graph.T} | {r.status} | {r.wall_s:.2f} | {obj} | {bound} | "
              f"{lst.objective:.4f} | {100 * gap:.2f} % |")
        if r.status != "optimal":
            break
    print()


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
    wall = {m: [] for m in METHODS + ["milp"]}
    proven = 0
    for seed in range(n):
        inst = make(seed)
        opt = solve(inst, "milp", time_limit=60)
        wall["milp"].append(opt.wall_s)
        if opt.status != "optimal":
            continue
        proven += 1
        for m in METHODS:
            r = solve(inst, m, seed=seed)
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


def slow_cloud(seed: int):
    doc = io.instance_doc(paper(seed))
    doc["data"]["cloud"]["f_hz"] = 2.5e9
    return io.load(doc)


if __name__ == "__main__":
    start = time.perf_counter()
    list_speed()
    milp_reach("paper parameters, 3 edges + cloud, layered DAGs of 6 sub-tasks", layered,
               (3, 4, 6, 8, 12, 16, 24, 32, 48, 64))
    milp_reach("the same with the cloud slowed to 2.5 GHz", lambda j: layered(j, 2.5e9), (3, 4, 5, 6, 8, 10, 12, 16))
    milp_reach("the HEFT example (pure makespan, 3 processors; HEFT = 80)",
               lambda _: io.load("instances/dagsched/heft-topcuoglu.json"), (1,))
    gaps("50 paper-family instances, 3 random-family jobs, W = 6 MHz, T_max = 3 s", paper)
    gaps("the same 50 with the cloud slowed to 2.5 GHz (edges worth using)", slow_cloud)
    print(f"total {time.perf_counter() - start:.0f} s")
