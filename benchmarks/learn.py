"""Learned methods (dagsched): environment overhead, training time, final gap to the optimum, inference speed.

    python benchmarks/learn.py            # everything (about 10 minutes on 2 busy cores)
    python benchmarks/learn.py env        # decisions per second: environment vs the Dispatcher alone
    python benchmarks/learn.py train      # 700 episodes of each algorithm on `paper`, pinned to one core
    python benchmarks/learn.py gap        # shipped policies, list and cs-ucb on 50 held-out instances vs cpsat
    python benchmarks/learn.py inference  # per-decision time of the shipped policies with NumPy

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


def training(episodes: int = 700) -> None:
    """Each algorithm trained from scratch in a fresh process pinned to core 0 (XLA on one thread)."""
    print(f"### training, {episodes} episodes on `paper` (5 jobs), one core ({load()} at the start)\n")
    print("| algorithm | wall s | CPU s | mean objective, last 50 episodes |")
    print("|---|---|---|---|")
    env = {**os.environ, "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
           "OMP_NUM_THREADS": "1"}
    for a in ALGORITHMS:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, f"{a}.npz")
            code = ("import resource, time; from edgeopt.learn.train import train; t = time.perf_counter(); "
                    f"rows = train('dagsched', {a!r}, preset='paper', size=5, episodes={episodes}, seed=0, out={out!r}); "
                    "import numpy as np; u = resource.getrusage(resource.RUSAGE_SELF); "
                    "print(time.perf_counter() - t, u.ru_utime + u.ru_stime, np.mean([r['objective'] for r in rows[-50:]]))")
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
    from edgeopt.learn import dagsched as learned

    print(f"### inference with NumPy ({load()})\n")
    print("| policy | instance | decisions | ms per decision (median of runs) | ms per joint step |")
    print("|---|---|---|---|---|")
    for a in ALGORITHMS:
        for size in (5, 50):
            inst = generate("paper", size, seed=0)
            pol = learned.load(learned.shipped(a, inst))
            times = []
            for _ in range(reps if size == 5 else 3):
                t0 = time.perf_counter()
                learned.run(inst, pol)
                times.append(time.perf_counter() - t0)
            T = inst.data.graph.T
            steps = max(inst.data.jobs.sizes)
            med = statistics.median(times)
            print(f"| {a} | paper, {size} jobs | {T} | {1e3 * med / T:.3f} | {1e3 * med / steps:.2f} |", flush=True)
    print()


if __name__ == "__main__":
    parts = {"env": env_overhead, "train": training, "gap": gaps, "inference": inference}
    for name in sys.argv[1:] or list(parts):
        parts[name]()
