"""The command line stays in charge: interrupts, kills and time limits (real processes, real signals).

No test here waits a fixed time for work to reach a stage: each waits for the work's own marker (a worker's
``started`` line, a finished row, a reported bound), so that a busy machine only makes them slower.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import INSTANCES, shipped
from edgeopt import anytime, generate, io, registry
from edgeopt.solvers.pyomo import IGNORE_LIMITS
from edgeopt.workers import Pool, Task

EDGEOPT = [sys.executable, "-c", "from edgeopt.cli import main; main()"]


@pytest.fixture(scope="module")
def slow_file(tmp_path_factory) -> Path:
    """A dagsched instance whose MILP runs for minutes: something to interrupt."""
    path = tmp_path_factory.mktemp("slow") / "d30.json"
    io.save(generate("dagsched", size=30, seed=1), path)
    return path


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def _workers(pid: int) -> list[int]:
    return [k for k in _children(pid) if "spawn_main" in Path(f"/proc/{k}/cmdline").read_text()]


def _gone(pids: list[int], within: float) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        alive = [p for p in pids if Path(f"/proc/{p}").exists()
                 and "Z" not in Path(f"/proc/{p}/stat").read_text().split()[2]]
        if not alive:
            return True
        time.sleep(0.1)
    return False


class Run:
    """``edgeopt ARGS`` in a subprocess, its stderr read line by line as it comes (the markers waited for)."""

    def __init__(self, args: list, cwd: Path, env: dict | None = None):
        self.proc = subprocess.Popen(EDGEOPT + [str(a) for a in args], cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stderr), daemon=True)
        self._reader.start()

    def wait_for(self, text: str, timeout: float = 180) -> None:
        end = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None and time.monotonic() < end, f"no {text!r} in {self.lines}"
            time.sleep(0.05)

    def stderr(self) -> str:
        self._reader.join(timeout=10)
        return "".join(self.lines)


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_solve_within_2s_and_writes_nothing(slow_file, tmp_path, sig, code):
    """A user's Ctrl-C must end a long exact solve at once, not when the solver returns."""
    out = tmp_path / "out.json"
    run = Run(["solve", slow_file, "-m", "milp", "--time-limit", "300", "-o", out], tmp_path)
    run.wait_for("running milp")  # its worker has begun the method
    workers = _workers(run.proc.pid)
    sent = time.monotonic()
    run.proc.send_signal(sig)
    run.proc.wait(timeout=10)
    assert time.monotonic() - sent < 2.0
    assert run.proc.returncode == code
    assert "Traceback" not in run.stderr()
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))
    assert workers and _gone(workers, 2.0)


@pytest.mark.slow
def test_interrupted_compare_records_no_row_and_resumes(slow_file, tmp_path):
    """Finished rows stay, the interrupted one is not recorded, and a re-run completes the table once."""
    csv_path = tmp_path / "rows.csv"
    run = Run(["compare", slow_file, "-m", "list", "-m", "milp", "--jobs", "2", "--time-limit", "300",
               "-o", csv_path], tmp_path)
    run.wait_for("[1/2]")  # the list row is written; the MILP has minutes to go
    workers = _workers(run.proc.pid)
    run.proc.send_signal(signal.SIGINT)
    run.proc.wait(timeout=10)
    assert run.proc.returncode == 130 and _gone(workers, 2.0)
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["method"] for r in rows] == ["list"]
    again = subprocess.run(EDGEOPT + ["compare", str(slow_file), "-m", "list", "-m", "milp", "--time-limit", "2",
                                      "-o", str(csv_path)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    rows = list(csv.DictReader(csv_path.open()))
    assert sorted(r["method"] for r in rows) == ["list", "milp"]


@pytest.mark.slow
def test_killed_parent_takes_its_workers_along(slow_file, tmp_path):
    """SIGKILL leaves no orphan solving for ever on a shared machine."""
    run = Run(["compare", slow_file, "-m", "milp", "-m", "list", "--jobs", "2", "--time-limit", "300"], tmp_path)
    run.wait_for("[1/2]")  # one worker is idle after the list row, the other solving
    workers = _workers(run.proc.pid)
    run.proc.kill()
    run.proc.wait(timeout=10)
    assert len(workers) == 2 and _gone(workers, 5.0)


@pytest.mark.slow
def test_time_limit_covers_model_building(tmp_path):
    """wall_s stays within limit + 10 % + 1 s even when building and translating the model take longer."""
    big = tmp_path / "d100.json"
    io.save(generate("dagsched", size=100, seed=1), big)
    for limit in (2.0, 8.0):
        done = subprocess.run(EDGEOPT + ["solve", str(big), "-m", "milp", "--time-limit", str(limit), "--json"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
        row = json.loads(done.stdout)
        assert row["status"] == "time_limit", row
        assert row["wall_s"] <= limit * 1.1 + 1.0, row
        assert row["feasible"] and row["objective"] is not None  # the start, reported before the model was built


@pytest.mark.slow
def test_verbose_solver_log_cannot_deadlock(tmp_path):
    """Pyomo drains a solver's console through a Python thread; SCIP holds the GIL while it solves, so a
    log past the 64 KB pipe buffer used to hang the run for ever. A node line per node for 15 s is far
    past 64 KB: the solve must still end at its limit."""
    code = (
        "from edgeopt import generate\n"
        "from edgeopt.formulations.offload import build_model\n"
        "from edgeopt.solvers import solve_model\n"
        "m = build_model(generate('offload', size=3, seed=3))\n"
        "r = solve_model(m, 'scip', time_limit=15, solver_options={'display/freq': 1})\n"
        "print(r.status, round(r.wall_s, 1))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    status, wall = done.stdout.split()
    assert status in ("optimal", "time_limit") and float(wall) <= 15 * 1.1 + 1


# --- a busy machine --------------------------------------------------------------------------------

@contextlib.contextmanager
def busy(processes: int = 6):
    """``processes`` busy loops competing for the cores (as a build or other users would), always stopped."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for p in loops:
            p.kill()
        for p in loops:
            p.wait()


@pytest.mark.slow
def test_under_load_the_limit_counts_the_method_not_the_worker_start(tmp_path):
    """A fresh worker's start-up (seconds of imports on a busy machine) is not the method's time: a 1 ms
    method under a 1 s limit is never killed, and neither is any row of a comparison of quick methods."""
    small = INSTANCES / "cdgs" / "small" / "small-t5-b5-s0.json"
    with busy():
        done = subprocess.run(EDGEOPT + ["solve", str(small), "-m", "service", "--time-limit", "1", "--json"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "feasible"
        files = [str(p) for p in shipped("dagsched", "small")]
        done = subprocess.run(EDGEOPT + ["compare", *files, "-m", "heuristic", "-m", "baseline", "-m", "bound",
                                         "--jobs", "2", "--time-limit", "1", "--json"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert len(rows) >= 3 * len(files) and not [r for r in rows if r["status"] in ("time_limit", "error")]


# --- anytime: a run cut short answers with what it has ---------------------------------------------

SMALL = {"partition": ("random", 4, {"objective": "throughput"}), "cdgs": ("small", 6, {}), "qllms": (None, 8, {}),
         "dagsched": (None, 3, {}), "offload": ("small", 3, {}), "stepsplit": (None, None, {}),
         "placement": (None, 6, {}), "batching": (None, 12, {}), "vcache": ("small", None, {})}
EXACT_AND_BOUND = [(pid, m.name) for pid, p in registry.problems().items() for m in p.methods.values()
                   if m.kind in ("exact", "bound")]


@pytest.mark.parametrize("pid,name", EXACT_AND_BOUND)
def test_a_method_asked_to_stop_at_once_answers_with_what_it_has(pid, name):
    """Stopped before its solver runs, an exact method returns its start (time_limit; optimal only when the start
    meets the bound proved first, a proof that needs no solver) and a bound method the bound of its first iterate
    (never tighter than the whole run's), or nothing."""
    prob = registry.problem(pid)
    preset, size, opts = SMALL[pid]
    inst = prob.generate(preset, size, 0, **opts)
    with anytime.scope():  # the method's run belongs to it, so the stop requested now is the method's
        anytime.request_stop()
        r = prob.method(name).run(inst, time_limit=60)
    if prob.method(name).kind == "exact":
        proven = r.details.get("proof") == "start meets bound" and r.gap is not None and r.gap <= 1e-6
        assert r.status == "time_limit" or (r.status == "optimal" and proven), (r.status, r.message)
        assert r.feasible if r.details.get("start_objective") is not None else r.solution is None
    elif r.status == "bound":
        full = prob.method(name).run(inst, time_limit=60).bound
        assert (r.bound <= full + 1e-9) if prob.sense == "min" else (r.bound >= full - 1e-9)
    else:
        assert r.status == "time_limit" and r.bound is None, (r.status, r.bound)


def _stop_at(*reported: str) -> tuple[threading.Thread, list]:
    """A thread that asks the running method to stop once it has reported a ``bound`` or a ``solution`` (or
    both); the report it saw is kept in the list."""
    seen: list = []

    def watch():
        while (p := anytime.last()) is None or any(getattr(p, r) is None for r in reported):
            time.sleep(0.005)
        seen.append(p)
        anytime.request_stop()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, seen


@pytest.mark.slow
def test_highs_asked_to_stop_mid_solve_returns_what_it_has(monkeypatch, slow_file):
    """HiGHS reports its dual bound from the root on and interrupts on request (its own limit switched off)."""
    from edgeopt.formulations.dagsched import build_model
    from edgeopt.solvers import solve_model

    monkeypatch.setenv(IGNORE_LIMITS, "1")
    model = build_model(io.load(slow_file))
    with anytime.scope(sense="min"):
        watcher, seen = _stop_at("bound")
        rep = solve_model(model, threads=1, time_limit=3600)
    watcher.join(timeout=1)
    assert rep.status == "time_limit" and rep.bound is not None and seen and seen[0].bound <= rep.bound + 1e-9


@pytest.mark.slow
def test_cpsat_reports_solutions_and_bound_and_stops_on_request():
    """A Golomb ruler of 11 marks: CP-SAT finds rulers at once and needs minutes to prove the shortest, so a stop
    requested at its first solution lands mid-search; the solution read in the callback is the one reported."""
    from ortools.sat.python import cp_model

    from edgeopt.solvers.cpsat import solve as cpsat_solve

    n = 11
    model = cp_model.CpModel()
    marks = [model.new_int_var(0, n * n, f"m{i}") for i in range(n)]
    model.add(marks[0] == 0)
    for a, b in zip(marks, marks[1:]):
        model.add(a < b)
    model.add_all_different([marks[j] - marks[i] for i in range(n) for j in range(i + 1, n)])
    model.minimize(marks[-1])
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    with anytime.scope(sense="min"):
        watcher, seen = _stop_at("solution", "bound")
        code = cpsat_solve(solver, model, solution=lambda cb: [cb.value(m) for m in marks])
    watcher.join(timeout=1)
    assert code == cp_model.FEASIBLE and seen
    ruler = seen[0].solution
    assert ruler[0] == 0 and len({b - a for i, a in enumerate(ruler) for b in ruler[i + 1:]}) == n * (n - 1) // 2
    assert seen[0].claimed == ruler[-1] >= solver.objective_value >= solver.best_objective_bound >= seen[0].bound


@pytest.mark.slow
@pytest.mark.parametrize("name,preset,size,options", [("minlp", None, 10, {}),
                                                      ("lagrange", "paper", 40, {"iterations": 100_000})])
def test_scip_and_a_lagrangian_asked_to_stop_mid_run_return_what_they_have(monkeypatch, name, preset, size, options):
    """SCIP (offload's MINLP; its own limit switched off) and the Lagrangian bound stop once they have reported a
    bound: the MINLP returns time_limit with an incumbent no worse than its start and SCIP's bound on its safe
    side; the Lagrangian its best bound, after far fewer iterations than it was given."""
    monkeypatch.setenv(IGNORE_LIMITS, "1")
    prob = registry.problem("offload")
    watcher, _ = _stop_at("bound")
    r = prob.method(name).run(prob.generate(preset, size, 1), time_limit=3600, **options)
    watcher.join(timeout=1)
    assert r.bound is not None and not watcher.is_alive()
    if name == "lagrange":
        assert r.status == "bound" and r.details["iterations"] < options["iterations"]
        return
    assert r.status == "time_limit" and r.feasible and r.gap is not None  # offload maximizes
    assert r.bound >= r.objective - 1e-9 and r.objective >= r.details["start_objective"] - 1e-9


@pytest.mark.slow
@pytest.mark.parametrize("responds", [True, False], ids=["stops", "killed"])
@pytest.mark.parametrize("name", ["milp", "cpsat"])
def test_the_backstop_returns_the_last_incumbent_and_bound(monkeypatch, slow_file, name, responds):
    """A run whose solver ignores its own limit is asked to stop by the parent once it has reported an incumbent
    and a bound; a worker that does not answer within the grace (here: frozen by SIGSTOP; HiGHS itself looks for
    interrupts only between root cut rounds and nodes, which can be seconds apart) is killed, and the row still
    carries the last incumbent it reported (judged by the referee in the parent) and its last bound."""
    monkeypatch.setenv(IGNORE_LIMITS, "1")
    inst = io.load(slow_file)
    with Pool(1) as pool:
        task = pool.submit(Task(inst, name, 0, 3600.0))
        result = None
        while result is None:
            for event in pool.events():
                p = event.progress
                if p and p.solution is not None and p.bound is not None and pool._workers[0].kill_at is None:
                    if not responds:
                        os.kill(pool._workers[0].process.pid, signal.SIGSTOP)
                    pool.stop(task)
                if event.kind == "done":
                    result = event.result
    assert result.status == "time_limit" and result.feasible and result.bound is not None
    assert result.bound <= result.objective + 1e-9 and result.gap is not None
    if not responds:
        assert "did not return: killed" in result.message, result.message
    assert result.objective == pytest.approx(
        registry.problem("dagsched").evaluate(inst, io.parse_solution(inst, result.solution)).objective)


@pytest.mark.slow
def test_the_time_limit_backstop_asks_a_solver_that_ignores_its_limit_to_stop(tmp_path):
    """Past limit × 1.1 + 0.2 s the parent asks (then kills); the row is time_limit with an incumbent. CP-SAT
    proves no 40-job layered instance in minutes, whatever the machine."""
    hard = tmp_path / "layered40.json"
    io.save(generate("dagsched", "layered", size=40, seed=1), hard)
    env = {**os.environ, IGNORE_LIMITS: "1"}
    done = subprocess.run(EDGEOPT + ["solve", str(hard), "-m", "cpsat", "--time-limit", "3", "--json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    row = json.loads(done.stdout)
    assert row["status"] == "time_limit" and row["feasible"] and row["objective"] is not None
    assert row["message"].startswith("past its time limit of 3 s, asked to stop"), row["message"]


# --- simulate ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_sigterm_to_simulate_at_20_random_moments_exits_143_and_writes_nothing(tmp_path):
    """Whatever the policy or the MILP reference is doing (a solver swallowed the signal in-process), SIGTERM
    ends `simulate` with 143 within a second or two, and its run directory is not written."""
    rng = np.random.default_rng(20)
    for k, delay in enumerate(rng.uniform(0.0, 4.0, size=20)):
        out = tmp_path / f"run{k}"
        run = Run(["simulate", "qllms", "--intervals", "300", "-m", "daa", "--option", "families=10", "-o", out],
                  tmp_path)
        run.wait_for("[1/300]")  # the first interval is done: the run is under way
        time.sleep(delay)
        sent = time.monotonic()
        run.proc.send_signal(signal.SIGTERM)
        run.proc.wait(timeout=30)
        assert run.proc.returncode == 143, (k, delay, run.stderr())
        assert time.monotonic() - sent < 2.0, (k, delay)
        assert "Traceback" not in run.stderr() and not out.exists()


# --- the Pool's own rules ------------------------------------------------------------------------

@pytest.mark.slow
def test_pool_reports_every_task_once_and_a_cancelled_one_never(slow_file):
    """Quick tasks queued behind a long one are handed back to an idle worker; a task cancelled while it runs
    has its worker killed and no ``done``; every other task has exactly one ``started`` and one ``done``."""
    quick, long = generate("dagsched", size=3, seed=0), io.load(slow_file)
    with Pool(2) as pool:
        slow = pool.submit(Task(long, "milp", 0, 120.0))  # a quick task stuck behind it would see it done
        dropped = pool.submit(Task(long, "cpsat", 0, 3600.0))
        tasks = [pool.submit(Task(quick, "list", k)) for k in range(12)]
        seen: dict[int, list[str]] = {}
        while len(pool):
            for event in pool.events():
                seen.setdefault(event.task, []).append(event.kind)
                if event.kind == "started" and event.task == dropped:
                    pool.cancel(dropped)
                if all(seen.get(t, [None])[-1] == "done" for t in tasks) and slow in pool._tasks:
                    pool.cancel(slow)  # every quick task went past the long one
    assert all([k for k in seen[t] if k != "progress"] == ["started", "done"] for t in tasks)
    assert "done" not in seen[dropped] and "done" not in seen.get(slow, [])


def test_wake_from_another_thread_ends_a_wait_in_events(slow_file):
    """``Pool.wake`` (how the service's event loop hands work to the thread that owns the Pool) makes a waiting
    ``events()`` return at once, while its task runs on; without it, the wait would last the whole solve."""
    with Pool(1) as pool:
        task = pool.submit(Task(io.load(slow_file), "milp", 0, 600.0))
        while "started" not in [e.kind for e in pool.events()]:
            pass
        worker = pool._workers[0].process.pid
        os.kill(worker, signal.SIGSTOP)  # frozen: once what it sent is read, only the wake-up can end a wait
        try:
            while Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
                time.sleep(0.01)
            while pool.events(timeout=0):
                pass
            threading.Thread(target=pool.wake).start()
            assert pool.events() == []
            assert len(pool) == 1 and pool._workers[0].started is not None
        finally:
            os.kill(worker, signal.SIGCONT)
            pool.cancel(task)
