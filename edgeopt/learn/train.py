"""The training driver: episodes of a problem's decision process, a learner, checkpoints, the learning curve.

``train`` is the whole loop (Algorithm 1's outer loop for every algorithm): draw an instance (generator seeds
from 1,000,000 up, so training never sees an evaluation instance of seeds 0..999,999), let the learner act
on every live agent until the schedule is complete, record each joint step, and write one row per episode
(team reward, the referee's objective, on request the gap to the cached optimum). A checkpoint (every
network, optimizer state, replay, counters, random state and the curve so far) is written atomically every
``checkpoint_every`` episodes and at the end; ``resume`` continues from it.

A seed repeats a training run bit for bit, on any machine: ``one_thread`` starts JAX's CPU backend with one
compute thread before the learner's first array (XLA splits its reductions by the size of its thread pool, so
two threads and one sum in different orders, and the learners amplify the last bits).
"""
from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
import time
from dataclasses import asdict, fields, replace
from io import BytesIO
from pathlib import Path
from typing import Callable

import numpy as np

from edgeopt import io, limits, registry
from edgeopt.errors import TooLarge
from edgeopt.learn import ALGORITHMS, policy
from edgeopt.model import InputError

TRAIN_SEED_BASE = 1_000_000
MAX_EPISODES = 10_000_000
log = logging.getLogger("edgeopt")
_one_thread = False  # JAX's backend was started by one_thread


def one_thread() -> None:
    """Start JAX's CPU backend with a one-thread compute pool, so that training is deterministic for a seed.

    XLA sizes that pool by the CPUs the starting thread may run on (the JAX maintainers' way to limit it is the
    affinity mask, jax-ml/jax#1539; with jax 0.10 the ``XLA_FLAGS`` thread options change nothing, measured), so
    the calling thread is pinned to one CPU while the backend starts, then every thread of the process gets its
    CPUs back. A backend already started
    elsewhere in the process keeps its pool: then a seed repeats a run only under the same thread settings
    (logged). Without affinity masks (not Linux) nothing changes.
    """
    import jax
    from jax._src import xla_bridge

    global _one_thread
    if xla_bridge.backends_are_initialized():
        if not _one_thread:
            log.warning("JAX started before edgeopt.learn.train: training repeats for a seed only under the same "
                        "thread settings")
        return
    _one_thread = True
    if not hasattr(os, "sched_setaffinity"):
        return
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        jax.devices("cpu")
    finally:
        for tid in os.listdir("/proc/self/task"):
            try:
                os.sched_setaffinity(int(tid), cpus)
            except OSError:  # a thread that ended meanwhile
                pass


def checkpoint_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name.removesuffix(".npz") + ".ckpt.npz")


def curve_paths(out: str | Path) -> tuple[Path, Path]:
    out = Path(out)
    stem = out.name.removesuffix(".npz")
    return out.with_name(stem + ".curve.parquet"), out.with_name(stem + ".curve.png")


def train_seed(seed: int, episode: int) -> int:
    """The generator seed of a training episode: >= 1,000,000, so disjoint from evaluation seeds."""
    state = np.random.SeedSequence([int(seed), int(episode), 22]).generate_state(1)[0]
    return TRAIN_SEED_BASE + int(state) % (2**31 - TRAIN_SEED_BASE)


def plan(problem: str, algorithm: str, preset: str | None, size: int | None, options: dict, episodes: int = 1,
         seed: int = 0):
    """Check everything before anything runs or is written: (process, draw, hyper, generator options).

    ``options`` are split by name: the algorithm's hyper-parameters (its ``Hyper``), the decision process's
    own (``make_process``'s keywords: reward, source, ...), and the generator's (or the simulation's); each is
    checked by its owner's annotations, as every option is."""
    limits.count(episodes, "--episodes", 1, MAX_EPISODES)
    limits.seed(seed)
    if algorithm not in ALGORITHMS:
        raise InputError("--method", f"must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    module_name, overrides = ALGORITHMS[algorithm]
    module = importlib.import_module(module_name)
    system = registry.decisions(problem)
    hyper_names = {f.name for f in fields(module.Hyper)}
    process_names = {n for n, p in inspect.signature(system.make_process).parameters.items()
                     if p.kind is p.KEYWORD_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD and n not in ("preset", "size"))}
    hyper = {k: v for k, v in options.items() if k in hyper_names}
    process_opts = {k: v for k, v in options.items() if k in process_names}
    gen_opts = {k: v for k, v in options.items() if k not in hyper_names and k not in process_names}
    h = replace(module.Hyper(**overrides), **registry.check_values(module.Hyper, hyper, registry.option_flag))
    try:
        process, draw = system.make_process(preset, size, **process_opts, **gen_opts)
    except InputError as exc:
        if "not an option" not in exc.rule and "not a known field" not in exc.rule:
            raise
        source = "simulation" if process_opts.get("source") == "simulation" else "generator"
        raise InputError(exc.path, f"is not a hyper-parameter of {algorithm} ({', '.join(sorted(hyper_names))}), an "
                                   f"option of the decision process ({', '.join(sorted(process_names))}) or of the "
                                   f"episodes' {source}") from None
    if process.n_agents > limits.AGENTS_MAX:
        raise InputError("--size", f"gives {process.n_agents} agents: training takes at most {limits.AGENTS_MAX}")
    if hasattr(h, "replay"):  # the replay pool holds every step's observations and the next ones
        step = 2 * process.n_agents * sum(int(np.prod(s)) * 4 for s in process.layout.shapes().values())
        try:
            limits.check_memory(h.replay * step, f"a replay pool of {h.replay} joint steps")
        except TooLarge as exc:
            raise InputError("--option replay", f"is too large: {exc}") from None
    return process, draw, h, gen_opts


def train(problem: str, algorithm: str, *, preset: str | None = None, size: int | None = None,
          options: dict | None = None, episodes: int = 700, seed: int = 0, out: str | Path,
          resume: bool = False, gap: bool = False, checkpoint_every: int = 50, command: str = "",
          on_episode: Callable[[dict], None] | None = None) -> list[dict]:
    """Train ``algorithm`` for ``episodes`` episodes; write the policy, its curve (Parquet + PNG) and checkpoints."""
    options = dict(options or {})
    out = Path(out)
    if out.suffix != ".npz":
        raise InputError("-o", f"must name a .npz policy file, got {str(out)!r}")
    process, draw, h, gen_opts = plan(problem, algorithm, preset, size, options, episodes, seed)
    one_thread()
    module = importlib.import_module(ALGORITHMS[algorithm][0])
    learner = module.Learner(process.layout, process.n_agents, h, seed, int(episodes))
    from edgeopt import __version__

    header = {"problem": problem, "algorithm": algorithm, "layout": process.layout.to_json(),
              "network": {"hidden": h.hidden, "embed": h.embed}, "preset": preset or "paper", "size": size,
              "options": gen_opts, "reward": process.reward, "seed": int(seed), "hyper": asdict(h),
              "command": command, "edgeopt": __version__, "trained_on": _trained_on(draw, gen_opts)}
    ckpt = checkpoint_path(out)
    rows: list[dict] = []
    start = 0
    if resume:
        state = policy.load(ckpt, problem, kind="checkpoint")
        mine = {k: header[k] for k in ("algorithm", "preset", "size", "options", "reward", "seed", "hyper")}
        theirs = {k: state.header.get(k) for k in mine}
        canon = lambda x: json.dumps(x, sort_keys=True)  # noqa: E731
        if canon(mine) != canon(theirs):
            diff = next(k for k in mine if canon(mine[k]) != canon(theirs[k]))
            raise InputError(f"{ckpt}: {diff}", f"must match the run being resumed: {theirs[diff]!r} != {mine[diff]!r}")
        learner.load(state.tree("learner"))
        learner.rng.bit_generator.state = state.header["rng"]
        rows, start = state.header["curve"], int(state.header["episode"])
    elif ckpt.exists():
        raise InputError(str(ckpt), "exists: pass --resume to continue that run, or remove it")
    optimum = None
    if gap:
        from edgeopt.envs import optimum as opt_of

        method = registry.decisions(problem).OPTIMUM
        optimum = lambda inst: opt_of(inst, method, 60.0)  # noqa: E731
    began = time.perf_counter() - (rows[-1]["wall_s"] if rows else 0.0)

    def save_checkpoint(episode: int) -> None:
        policy.save(ckpt, {**header, "kind": "checkpoint", "episode": episode, "curve": rows,
                           "rng": learner.rng.bit_generator.state}, {"learner": learner.state()})

    simulated = hasattr(draw, "finish")  # episodes are the intervals of one simulated run
    for ep in range(start, int(episodes)):
        instance = draw(train_seed(seed, ep), ep == start) if simulated else draw(train_seed(seed, ep))
        process.reset(instance)
        obs = process.observe_all()
        total, steps = 0.0, 0
        while not process.done:
            actions = learner.act(obs, ep)
            rewards = process.step({i: int(actions[i]) for i in process.live})
            r = np.zeros(process.n_agents)
            for i, v in rewards.items():
                r[i] = v
            nxt = process.observe_all()
            learner.record(obs, actions, r, nxt, process.done)
            obs, total, steps = nxt, total + float(r.sum()), steps + 1
        learner.end_episode(ep)
        res = process.outcome()
        if simulated:
            draw.finish(instance, process.solution())
        row = {"episode": ep + 1, "reward": total, "objective": res["objective"], "feasible": res["feasible"],
               "steps": steps, "instance_seed": int(instance.meta.get("seed", -1)),
               "wall_s": round(time.perf_counter() - began, 3)}
        if optimum is not None:
            o = optimum(instance)
            row["optimum"] = o["optimum"]
            row["gap"] = None if o["optimum"] is None else (res["objective"] - o["optimum"]) / max(abs(o["optimum"]), 1e-12)
        rows.append(row)
        if on_episode:
            on_episode(row)
        if (ep + 1) % checkpoint_every == 0 or ep + 1 == int(episodes):
            save_checkpoint(ep + 1)
    recent = rows[-min(50, len(rows)):]
    final = {"episodes": len(rows), "mean_reward_last50": float(np.mean([r["reward"] for r in recent])),
             "mean_objective_last50": float(np.mean([r["objective"] for r in recent])),
             "train_wall_s": rows[-1]["wall_s"]}
    policy.save(out, {**header, "kind": "policy", "episodes": len(rows), "final": final}, {"actor": learner.actor})
    write_curve(rows, out, f"{algorithm} on {problem} ({header['preset']}), seed {seed}")
    return rows


def _trained_on(draw, gen_opts: dict) -> dict:
    """The generator options of the training instances as the generator resolved them (e.g. the preset's gamma)."""
    if hasattr(draw, "finish"):
        return {**gen_opts, "source": "simulation"}
    return dict(draw(0).meta.get("options") or {})


def write_curve(rows: list[dict], out: Path, title: str) -> None:
    """The learning curve beside the policy: Parquet table and a PNG (EMA over the raw episodes, shaded)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from matplotlib.figure import Figure

    table_path, png_path = curve_paths(out)
    buf = BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    io.write_bytes(buf.getvalue(), table_path)
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    x = [r["episode"] for r in rows]
    y = np.array([r["reward"] for r in rows])
    ax.plot(x, y, color="C0", alpha=0.25, linewidth=0.8)
    ax.plot(x, ema(y), color="C0", label="reward (EMA 0.95)")
    ax.set_xlabel("episode")
    ax.set_ylabel("team reward per episode")
    ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="small")
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    io.write_bytes(buf.getvalue(), png_path)


def ema(y: np.ndarray, alpha: float = 0.95) -> np.ndarray:
    out = np.empty(len(y))
    acc = y[0] if len(y) else 0.0
    for k, v in enumerate(y):
        acc = alpha * acc + (1 - alpha) * v
        out[k] = acc
    return out
