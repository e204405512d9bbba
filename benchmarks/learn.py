"""Learned methods: environment overhead, training time, final gap to the optimum, inference speed (dagsched);
TS-MITO over time (offload): 100 slots with ``ts-mito-mappo`` and the training time of its algorithms.

    python benchmarks/learn.py            # every dagsched part (about 10 minutes on 2 busy cores)
    python benchmarks/learn.py env        # decisions per second: environment vs the Dispatcher alone
    python benchmarks/learn.py train      # 700 episodes of each algorithm on `paper`, pinned to one core
    python benchmarks/learn.py gap        # shipped policies, list and cs-ucb on 50 held-out instances vs cpsat
    python benchmarks/learn.py inference  # per-decision time of the shipped policies with NumPy
    python benchmarks/learn.py offload-slots  # 100 slots: wall and CPU; per slot the actors, stage two, the referee
    python benchmarks/learn.py offload-train  # 700 episodes of mappo, ippo, vdn, qmix on `paper`, one core

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

from edgeopt import registry
from edgeopt.problems.dagsched import generate

ALGORITHMS = ["ucb-coma", "coma", "mappo", "maddpg"]
OFFLOAD_ALGORITHMS = ["mappo", "ippo", "vdn", "qmix"]


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def env_overhead(episodes: int = 300) -> None:
    """A random policy placing every sub-task: through the PettingZoo env (observations, masks, rewards, the
    referee's evaluation at each episode's end) against ``run_policy`` on the Dispatcher alone (placements only).
    The env's random policy draws one masked action per agent from the step's observations (a uniform key per
    action, the largest valid one), as cheap as the Dispatcher's ``random`` policy."""
    import edgeopt.envs as envs
    from edgeopt.heuristics.dagsched import random_policy, run_policy

    print(f"### environment overhead ({load()})\n")
    print("| instance family | decisions | Dispatcher alone, µs/decision | PettingZoo env, µs/decision | ratio | "
          "of which the referee at the episode's end, µs/decision |")
    print("|---|---|---|---|---|---|")
    for preset, size in (("paper", 5), ("layered", 20)):
        insts = [generate(preset, size, seed=s) for s in range(episodes)]
        decisions = sum(i.data.graph.T for i in insts)  # builds each instance's graph before any timing
        env = envs.make("dagsched", preset=preset, size=size, seed=0, **({"tasks": 10} if preset == "layered" else {}))
        rng = np.random.default_rng(0)
        from edgeopt.problems.dagsched import evaluate

        def dispatcher():
            for k, inst in enumerate(insts):
                run_policy(inst, random_policy, seed=k)

        def with_referee():
            for k, inst in enumerate(insts):
                evaluate(inst, run_policy(inst, random_policy, seed=k))

        def environment():
            draws = iter(insts)
            env.episodes.draw = lambda seed: next(draws)  # the same instances, so only the environment differs
            for _ in range(episodes):
                obs, _ = env.reset()
                while env.agents:
                    obs, *_ = env.step({a: int(np.argmax(obs[a]["action_mask"] * rng.random(len(obs[a]["action_mask"]))))
                                        for a in env.agents})

        def best(fn) -> float:  # best of 3: the machine is shared
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            return min(times) / decisions

        alone, through, referee = best(dispatcher), best(environment), best(with_referee)
        referee -= alone
        print(f"| {preset}, {size} jobs | {decisions} | {alone * 1e6:.1f} | {through * 1e6:.1f} | "
              f"{through / alone:.2f}× | {referee * 1e6:.1f} |", flush=True)
    print()


def training(episodes: int = 700, problem: str = "dagsched") -> None:
    """Each algorithm trained from scratch in a fresh process pinned to core 0 (XLA on one thread)."""
    what, size, algorithms, metric = {"dagsched": ("5 jobs", 5, ALGORITHMS, "objective"),
                                      "offload": ("15 users, 10 slots an episode", None, OFFLOAD_ALGORITHMS, "reward")}[problem]
    print(f"### training {problem}, {episodes} episodes on `paper` ({what}), one core ({load()} at the start)\n")
    print(f"| algorithm | wall s | CPU s | mean {metric}, last 50 episodes |")
    print("|---|---|---|---|")
    env = {**os.environ, "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
           "OMP_NUM_THREADS": "1"}
    for a in algorithms:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, f"{a}.npz")
            code = ("import resource, time; from edgeopt.learn.train import train; t = time.perf_counter(); "
                    f"rows = train({problem!r}, {a!r}, preset='paper', size={size}, episodes={episodes}, seed=0, "
                    f"out={out!r}); import numpy as np; u = resource.getrusage(resource.RUSAGE_SELF); "
                    f"print(time.perf_counter() - t, u.ru_utime + u.ru_stime, np.mean([r[{metric!r}] for r in rows[-50:]]))")
            res = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True,
                                 env=env, check=True)
            wall, cpu, obj = (float(x) for x in res.stdout.split())
            print(f"| {a} | {wall:.1f} | {cpu:.1f} | {obj:.4f} |", flush=True)
    print(f"\n({load()} at the end)\n")


def gaps(n: int = 50) -> None:
    """The shipped policies beside list, cs-ucb and random on held-out instances (seeds 0..n-1), gap to cpsat."""
    prob = registry.problem("dagsched")
    for preset in ("paper", "edge-share"):
        print(f"### gap to the optimum, {n} held-out `{preset}` instances of 5 jobs ({load()})\n")
        insts = [generate(preset, 5, seed=s) for s in range(n)]
        best = [prob.method("cpsat").run(i, time_limit=60) for i in insts]
        proven = sum(r.status == "optimal" for r in best)
        print(f"cpsat proved {proven} of {n} optima (60 s each).\n")
        print("| method | mean objective | mean gap | median gap | max gap | lowest of the methods on (ties count) |")
        print("|---|---|---|---|---|---|")
        table = {}
        for m in ALGORITHMS + ["list", "cs-ucb", "random"]:
            table[m] = [prob.method(m).run(i, seed=s).objective for s, i in enumerate(insts)]
        from edgeopt.learn.train import train

        with tempfile.TemporaryDirectory() as tmp:  # the same algorithm trained on the referee's objective
            out = os.path.join(tmp, "u.npz")
            train("dagsched", "ucb-coma", preset=preset, size=5, episodes=700, seed=0, out=out,
                  options={"reward": "objective"})
            table["ucb-coma, reward=objective"] = [prob.method("ucb-coma").run(i, policy=out).objective for i in insts]
        for m, objs in table.items():
            g = [(o - b.objective) / b.objective for o, b in zip(objs, best) if b.status == "optimal"]
            wins = sum(o <= min(t[k] for t in table.values()) + 1e-12 for k, o in enumerate(objs))
            print(f"| {m} | {statistics.fmean(objs):.4f} | {100 * statistics.fmean(g):.2f} % | "
                  f"{100 * statistics.median(g):.2f} % | {100 * max(g):.2f} % | {wins} |", flush=True)
        print(f"| optimum (cpsat) | {statistics.fmean(r.objective for r in best):.4f} | | | | |\n")


def inference(reps: int = 20) -> None:
    """Per-decision time of each shipped policy with NumPy (observation, forward pass, step), paper 5 and 50 jobs."""
    from edgeopt.learn import methods

    print(f"### inference with NumPy ({load()})\n")
    print("| policy | instance | decisions | ms per decision (median of runs) | ms per joint step |")
    print("|---|---|---|---|---|")
    for a in ALGORITHMS:
        for size in (5, 50):
            inst = generate("paper", size, seed=0)
            pol = methods.load(methods.shipped("dagsched", a, inst), "dagsched")
            times = []
            for _ in range(reps if size == 5 else 3):
                t0 = time.perf_counter()
                methods.run(inst, pol)
                times.append(time.perf_counter() - t0)
            T = inst.data.graph.T
            steps = max(inst.data.jobs.sizes)
            med = statistics.median(times)
            print(f"| {a} | paper, {size} jobs | {T} | {1e3 * med / T:.3f} | {1e3 * med / steps:.2f} |", flush=True)
    print()


def offload_slots(n: int = 100) -> None:
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


if __name__ == "__main__":
    parts = {"env": env_overhead, "train": training, "gap": gaps, "inference": inference}
    offload = {"offload-slots": offload_slots, "offload-train": lambda: training(problem="offload")}
    for name in sys.argv[1:] or list(parts):
        {**parts, **offload}[name]()
