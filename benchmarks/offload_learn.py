"""TS-MITO over time (offload): 100 slots of the paper scale with ``ts-mito-mappo``, its decision time per slot, and
training time of each algorithm.

    python benchmarks/offload_learn.py slots   # 100 slots: wall and CPU; per slot the actors, stage two, the referee
    python benchmarks/offload_learn.py train   # 700 episodes of mappo, ippo, vdn, qmix, each pinned to core 0

Prints Markdown tables; quote the load average printed with them.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ALGORITHMS = ["mappo", "ippo", "vdn", "qmix"]


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def slots(n: int = 100) -> None:
    """The whole simulation (``edgeopt simulate offload -m ts-mito-mappo``, no reference) for wall and CPU time; then
    the same slots again, timing the parts of each decision: the actors (observations, the 15 users' forward pass
    with NumPy, the greedy actions), stage two (closed-form SM splits, Newton-KKT radio) and the referee."""
    from edgeopt.heuristics.offload import stage_two
    from edgeopt.learn import methods, nets
    from edgeopt.problems.offload import evaluate
    from edgeopt.simulation import simulate
    from edgeopt.systems.offload import DecisionProcess, Simulation

    print(f"### {n} slots of the paper preset (15 users, 3 edges, 1 cloud), ts-mito-mappo, seed 0 ({load()})\n")
    simulate("offload", "ts-mito-mappo", intervals=2, seed=0, reference=None)  # warm caches and imports
    w0, c0 = time.perf_counter(), time.process_time()
    run = simulate("offload", "ts-mito-mappo", intervals=n, seed=0, reference=None)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    decided = sum(1 for s in run.column("decision", "status") if s != "idle")
    print(f"whole run: {wall:.2f} s wall, {cpu:.2f} s CPU for {n} slots ({decided} decided), "
          f"{1e3 * wall / n:.1f} ms per slot\n")
    pol = methods.load(methods.SHIPPED / "offload" / "mappo-paper.npz", "offload")
    net, lay = nets.family(pol.layout), pol.layout
    sim, parts = Simulation(seed=0), {"actors": [], "stage two": [], "referee": []}
    cpu_parts = {k: [] for k in parts}
    for t in range(n):
        inst = sim.instance(t)
        if inst is None:
            sim.advance(t, None, None)
            continue
        t0, u0 = time.perf_counter(), time.thread_time()
        proc = DecisionProcess.for_instance(lay, inst)
        proc.reset(inst)
        acts = np.argmax(net.table(pol.actor, proc.observe_all(), np), -1)
        m, o, c = np.array([lay.choice(int(a)) for a in acts]).T
        t1, u1 = time.perf_counter(), time.thread_time()
        sol = stage_two(inst, m, o, c)
        t2, u2 = time.perf_counter(), time.thread_time()
        evaluate(inst, sol)
        t3, u3 = time.perf_counter(), time.thread_time()
        for k, v, u in zip(parts, (t1 - t0, t2 - t1, t3 - t2), (u1 - u0, u2 - u1, u3 - u2)):
            parts[k].append(1e3 * v)
            cpu_parts[k].append(1e3 * u)
        sim.advance(t, inst, sol)
    print("| part of a slot's decision | wall ms: median | 95th percentile | max | CPU ms (this thread): median | "
          "95th percentile |")
    print("|---|---|---|---|---|---|")
    for k, v in parts.items():
        u = cpu_parts[k]
        print(f"| {k} | {statistics.median(v):.2f} | {np.percentile(v, 95):.2f} | {max(v):.2f} | "
              f"{statistics.median(u):.2f} | {np.percentile(u, 95):.2f} |")
    print(f"\n({load()} at the end)\n")


def training(episodes: int = 700) -> None:
    """Each algorithm trained from scratch in a fresh process pinned to core 0 (XLA on one thread)."""
    print(f"### training, {episodes} episodes of 10 slots on `paper` (15 users), one core ({load()} at the start)\n")
    print("| algorithm | wall s | CPU s | mean reward, last 50 episodes |")
    print("|---|---|---|---|")
    for a in ALGORITHMS:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, f"{a}.npz")
            code = ("import resource, time; from edgeopt.learn.train import train; t = time.perf_counter(); "
                    f"rows = train('offload', {a!r}, preset='paper', episodes={episodes}, seed=0, out={out!r}); "
                    "import numpy as np; u = resource.getrusage(resource.RUSAGE_SELF); "
                    "print(time.perf_counter() - t, u.ru_utime + u.ru_stime, np.mean([r['reward'] for r in rows[-50:]]))")
            res = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True)
            wall, cpu, reward = (float(x) for x in res.stdout.split())
            print(f"| {a} | {wall:.1f} | {cpu:.1f} | {reward:.1f} |", flush=True)
    print(f"\n({load()} at the end)\n")


if __name__ == "__main__":
    parts = {"slots": slots, "train": training}
    for name in sys.argv[1:] or list(parts):
        parts[name]()
