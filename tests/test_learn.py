"""Learned methods and the RL environments: the standard API checkers, the reward that the referee pays, the
optimum in ``info``, a training run that must learn, policy files that are checked, and a core path without JAX.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from edgeopt import registry
from edgeopt.problems.dagsched import evaluate, generate, small_instance

pytest.importorskip("jax")
pytest.importorskip("pettingzoo")

import edgeopt.envs as envs  # noqa: E402
from edgeopt.learn import dagsched as learned  # noqa: E402
from edgeopt.learn import nets, policy  # noqa: E402
from edgeopt.systems.dagsched import Layout  # noqa: E402


def _random_episode(env, seed: int | None, obs=None):
    """Random masked actions until the episode ends (from ``obs`` when given, else after a reset)."""
    if obs is None:
        obs, _ = env.reset(seed=seed)
    total, info = 0.0, {}
    while env.agents:
        acts = {a: env.action_space(a).sample(mask=obs[a]["action_mask"]) for a in env.agents}
        obs, rew, _, _, infos = env.step(acts)
        total += sum(rew.values())
        info = next(iter(infos.values()))
    return total, info


@pytest.mark.parametrize("reward", ["paper", "objective"])
def test_parallel_env_passes_the_pettingzoo_api_test(reward):
    from pettingzoo.test import parallel_api_test, parallel_seed_test

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PettingZoo reports most contract breaches as warnings
        parallel_api_test(envs.make("dagsched", size=5, seed=0, reward=reward), num_cycles=100)
        parallel_seed_test(lambda: envs.make("dagsched", size=3, seed=1, reward=reward))
    env = envs.make("dagsched", size=5, seed=0, reward=reward)
    env.reset(seed=0)
    assert env.state_space.contains(env.state())  # the global state for centralised critics


@pytest.mark.parametrize("reward", ["paper", "objective"])
def test_single_agent_env_passes_gymnasium_check_env(reward):
    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(envs.make("dagsched", size=3, seed=2, single_agent=True, reward=reward), skip_render_check=True)


@pytest.mark.parametrize("preset,size", [("paper", 5), ("edge-share", 4), ("layered", 3)])
def test_objective_reward_sums_to_minus_the_referee(preset, size):
    """The undiscounted sum of the objective reward is minus the referee's objective of the schedule built."""
    env = envs.make("dagsched", preset=preset, size=size, seed=7, reward="objective")
    for seed in range(5):
        total, info = _random_episode(env, seed)
        sol = env.episodes.process.solution()
        assert abs(total + evaluate(env.episodes.process.instance, sol).objective) <= 1e-9
        assert info["objective"] == pytest.approx(-total, abs=1e-9)


def test_paper_reward_is_the_seeds_sum_of_terms():
    """With masks every action is valid: q theta - eta3 - gamma (TR + T_com) - (1 - gamma) Cost per placement."""
    env = envs.make("dagsched", size=3, seed=3, reward="paper")
    total, _ = _random_episode(env, 0)
    proc = env.episodes.process
    g, d = proc.g, proc.instance.data
    want = sum(2.0 - max(0.0, proc.disp.finish[t] - d.t_max_s) - d.gamma * g.dur[t, s] - (1 - d.gamma) * g.cost[t, s]
               for t, s in proc.disp.where.items())
    assert total == pytest.approx(want, abs=1e-9)


def test_invalid_action_is_penalised_and_changes_nothing():
    env = envs.make("dagsched", size=2, seed=0, reward="paper")
    obs, _ = env.reset(seed=0)
    agent = env.agents[0]
    bad = int(np.flatnonzero(obs[agent]["action_mask"] == 0)[0])
    placed = len(env.episodes.process.disp.where)
    _, rew, *_ = env.step({agent: bad})
    assert rew[agent] <= -1.0 and len(env.episodes.process.disp.where) == placed


@pytest.mark.slow
def test_optimum_in_info_equals_cpsat():
    env = envs.make("dagsched", size=2, seed=5, optimum=True, optimum_time_limit=30)
    _, info = _random_episode(env, 1)
    inst = env.episodes.process.instance
    r = registry.problem("dagsched").method("cpsat").run(inst, time_limit=30)
    assert r.status == "optimal" and info["optimum_status"] == "optimal"
    assert info["optimum"] == pytest.approx(r.objective, rel=1e-9)
    assert info["gap"] == pytest.approx((info["objective"] - r.objective) / r.objective)
    assert envs.optimum(inst, "cpsat", 30) == envs.optimum(inst, "cpsat", 30)  # cached: same answer, no re-solve


def test_a_short_training_run_beats_random_on_held_out_instances(tmp_path):
    """Fixed seeds and episode counts: if learning is broken, the policy is no better than Random."""
    from edgeopt.learn.train import train

    out = tmp_path / "u.npz"
    train("dagsched", "ucb-coma", preset="paper", size=3, episodes=150, seed=0, out=out)
    pol = policy.load(out, "dagsched")
    held_out = [generate("paper", 3, seed=s) for s in range(20)]
    rand = registry.problem("dagsched").method("random")
    learned_obj = np.mean([evaluate(i, learned.run(i, pol).solution).objective for i in held_out])
    random_obj = np.mean([evaluate(i, rand(i, seed=s).solution).objective for s, i in enumerate(held_out)])
    assert learned_obj < 0.8 * random_obj, (learned_obj, random_obj)


@pytest.mark.parametrize("algorithm", ["ucb-coma", "coma", "mappo", "maddpg"])
def test_shipped_policies_run_deterministically_through_the_referee(algorithm):
    inst = small_instance(4)
    m = registry.problem("dagsched").method(algorithm)
    assert m.kind == "learned"
    a, b = m.run(inst, seed=0), m.run(inst, seed=1)
    assert a.status == "feasible" or a.status == "infeasible"
    assert a.solution == b.solution and a.objective == b.objective  # greedy: the seed does not matter
    c, d = m.run(inst, seed=3, sample=True), m.run(inst, seed=3, sample=True)
    assert c.solution == d.solution


def instance_with_big_jobs(tmp_path):
    """A paper instance whose second job (image analysis) has 5 sub-tasks."""
    from edgeopt import io

    path = tmp_path / "big.json"
    io.save(generate("paper", 2, seed=0), path)
    return path


def _one_error(err: str) -> bool:
    return "Traceback" not in err and sum(line.startswith("error:") for line in err.splitlines()) == 1


def test_policy_files_for_another_problem_or_layout_exit_2(cli, tmp_path):
    src = policy.load(learned.SHIPPED / "ucb-coma-paper.npz", "dagsched")
    inst = tmp_path / "p.json"
    assert cli("generate", "dagsched", "--size", "2", "-o", inst)[0] == 0
    cases = {"other-problem": {**src.header, "problem": "offload"},
             "other-layout": {**src.header, "layout": {**src.header["layout"], "version": 99}},
             "other-kind": {**src.header, "kind": "checkpoint"}}
    for name, header in cases.items():
        path = tmp_path / f"{name}.npz"
        header = {k: v for k, v in header.items() if k not in ("format", "format_version")}
        policy.save(path, header, {"actor": src.actor})
        code, out, err = cli("solve", inst, "-m", "ucb-coma", "--option", f"policy={path}")
        assert code == 2 and _one_error(err) and "header" in err, (name, err)
    wrong_shape = tmp_path / "shape.npz"
    policy.save(wrong_shape, {k: v for k, v in src.header.items() if k not in ("format", "format_version")},
                {"actor": {**src.actor, "sub": {"w": np.zeros((3, 3), np.float32), "b": np.zeros(3, np.float32)}}})
    code, _, err = cli("solve", inst, "-m", "ucb-coma", "--option", f"policy={wrong_shape}")
    assert code == 2 and "actor/sub/w" in err
    small = Layout(4, 4, src.layout.modalities)  # a layout whose jobs are smaller than the instance's
    misfit = tmp_path / "misfit.npz"
    policy.save(misfit, {k: v for k, v in src.header.items() if k not in ("format", "format_version")}
                | {"layout": small.to_json()},
                {"actor": nets.actor_init(np.random.default_rng(0), small, 64, 16)})
    code, _, err = cli("solve", instance_with_big_jobs(tmp_path), "-m", "ucb-coma", "--option", f"policy={misfit}")
    assert code == 2 and _one_error(err) and "does not fit" in err, err
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    code, _, err = cli("solve", inst, "-m", "ucb-coma", "--option", f"policy={tmp_path / 'junk.npz'}")
    assert code == 2 and _one_error(err)


def test_train_rejects_bad_options_and_writes_nothing(cli, tmp_path):
    out = tmp_path / "p.npz"
    for args in (["--option", "nope=1"], ["--option", "lr=-1"], ["--option", "reward=shaped"], ["--episodes", "0"],
                 ["--preset", "heft"]):
        code, _, err = cli("train", "dagsched", "-m", "coma", *args, "-o", out)
        assert code == 2 and err.strip().count("\n") == 0, (args, err)
    code, _, err = cli("train", "dagsched", "-m", "sarsa", "-o", out)
    assert code == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_train_stops_on_ctrl_c_keeps_the_checkpoint_and_resumes(tmp_path):
    out = tmp_path / "m.npz"
    ckpt = tmp_path / "m.ckpt.npz"
    cmd = [sys.executable, "-c", "from edgeopt.cli import main; main()", "train", "dagsched", "-m", "mappo", "--size", "2",
           "--episodes", "100000", "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ckpt.exists() and time.monotonic() < deadline:  # the first checkpoint is the "started" marker
            time.sleep(0.2)
        assert ckpt.exists()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert ckpt.exists() and not out.exists()
    done = policy.load(ckpt, "dagsched", kind="checkpoint").header["episode"]
    assert done >= 50
    code = subprocess.run([*cmd[:-4], "--episodes", str(done + 10), "--resume", "-o", str(out)],
                          capture_output=True, text=True).returncode
    assert code == 0
    assert policy.load(out, "dagsched").header["episodes"] == done + 10


def test_an_experiment_row_can_train_then_evaluate(tmp_path):
    """A training row: the learned method's options carry the training settings; each seed trains its own policy."""
    from edgeopt import experiment

    doc = ('name = "train-rows"\nproblem = "dagsched"\npreset = "paper"\nsizes = [2]\nseeds = 2\ntime_limit = 300\n'
           'methods = ["list", {name = "coma", label = "coma-trained", options = {episodes = 8}}]\n')
    (tmp_path / "e.toml").write_text(doc)
    rows = experiment.load_rows(experiment.run(tmp_path / "e.toml", tmp_path / "run"))
    trained = [r for r in rows if r["method"] == "coma-trained"]
    assert len(trained) == 2 and all(r["status"] in ("feasible", "infeasible") for r in trained)
    assert sorted(r["details.train_seed"] for r in trained) == [0, 1]
    assert all(r["details.train_episodes"] == 8 for r in trained)


def test_simulation_episodes_carry_each_schedule_out():
    """Episodes from the simulation: one interval each, its schedule carried out when the episode ends."""
    from pettingzoo.test import parallel_api_test

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # jobs that never arrive are possible agents that never terminate:
        warnings.filterwarnings("ignore", "No agents present but not all possible_agents")  # by design
        parallel_api_test(envs.make("dagsched", source="simulation", seed=1), num_cycles=100)
    env = envs.make("dagsched", source="simulation", seed=0, failure=0.2, reward="objective")
    seen = []
    obs, _ = env.reset(seed=3)
    for _ in range(4):
        total, info = _random_episode(env, None, obs)
        seen.append(info["interval"])
        assert info["served"] + info["dropped"] + info["carried"] == len(env.episodes.process.instance.data.jobs)
        assert -total <= info["objective"] + 1e-9  # the carried jobs' fixed share is not paid as reward
        obs, _ = env.reset()
    assert seen == sorted(seen) and len(set(seen)) == 4


TRAIN_AND_HASH = """
import hashlib, sys
import numpy as np
from edgeopt.learn import policy
from edgeopt.learn.train import train
for alg, episodes in (("mappo", 24), ("maddpg", 12)):
    out = f"{sys.argv[1]}/{alg}.npz"
    train("dagsched", alg, preset="paper", size=3, episodes=episodes, seed=5, out=out)
    arrays = policy.load(out, "dagsched").arrays
    print(alg, hashlib.sha1(b"".join(arrays[k].tobytes() for k in sorted(arrays))).hexdigest())
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs two CPUs to compare thread settings")
def test_training_repeats_bit_for_bit_whatever_the_cpus(tmp_path):
    """A seed gives the same parameters on one CPU and on two (XLA would split its sums by its thread count)."""
    cpus = sorted(os.sched_getaffinity(0))[:2]
    hashes = []
    for k, allowed in enumerate(({cpus[0]}, set(cpus))):
        folder = tmp_path / str(k)
        folder.mkdir()
        out = subprocess.run([sys.executable, "-c", TRAIN_AND_HASH, str(folder)], capture_output=True, text=True,
                             check=True, preexec_fn=lambda a=allowed: os.sched_setaffinity(0, a))
        hashes.append(out.stdout.split())
    assert hashes[0] == hashes[1] and len(hashes[0]) == 4
