"""Methods run in worker processes, so that the command line stays in charge of them.

A solver deep in C code cannot be interrupted from Python: the process that waits for it can. Each
(instance, method) task runs in a worker; the parent only waits on pipes, so that

* SIGINT / SIGTERM stop the run within a second: workers are killed, nothing is recorded for the
  interrupted tasks, and the caller sees ``edgeopt.errors.Interrupted`` (exit 130 / 143 on the
  command line);
* a method that overruns its time limit (by 10 % + 0.8 s) is killed and reported as
  ``time_limit`` (a backstop: exact methods already stop themselves within their limit);
* a parent killed with SIGKILL takes its workers with it (the kernel's parent-death signal on Linux).

Workers are spawned (fresh interpreters, about a second of imports each, reused task after task): a
fork after HiGHS's threads ran in this process can deadlock, and a fork server's children would
outlive a killed parent (they hold the pipe the server watches for its parent's death).
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any, Callable

from edgeopt import registry
from edgeopt.run import run_one
from edgeopt.errors import InputError, catch_signals
from edgeopt.result import Result

KILL_GRACE_S = 0.8  # on top of 10 % of the limit; 0.2 s short of the rule (limit + 10 % + 1 s) for the kill itself


@dataclass
class Task:
    """One method on one instance; ``instance`` may be a recipe (``build()``, ``problem``, ``name``) that
    the worker turns into the instance, so that a sweep sends only small descriptions."""

    instance: Any
    method: str
    seed: int = 0
    time_limit: float | None = None
    options: dict | None = None

    def hard_limit(self) -> float | None:
        return None if self.time_limit is None else self.time_limit * 1.1 + KILL_GRACE_S


def run_task(task: Task) -> Result:
    """What a worker (or a Dask task) does with a Task; whatever goes wrong comes back as an error row."""
    start = time.perf_counter()
    try:
        instance = task.instance.build() if hasattr(task.instance, "build") else task.instance
        return run_one(instance, task.method, seed=task.seed, time_limit=task.time_limit, **(task.options or {}))
    except InputError as exc:  # e.g. an option value the method refuses: the run stops with exit 2 (checked_input)
        failed = _failed(task, "error", str(exc), time.perf_counter() - start)
        failed.details["input_error"] = [exc.path, exc.rule]
        return failed
    except Exception as exc:
        return _failed(task, "error", f"{type(exc).__name__}: {exc}", time.perf_counter() - start)


def checked_input(result: Result) -> Result:
    """``result``, unless the worker found the user's input bad: then that InputError, raised here."""
    if "input_error" in result.details:
        raise InputError(*result.details["input_error"])
    return result


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; elsewhere a no-op)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _serve(conn, parent: int) -> None:
    """Worker loop: run tasks until the pipe closes. Ctrl-C reaches a terminal's whole process group;
    the parent decides what it means, so workers ignore SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Locks made here (Pyomo makes one at import) are then unlinked at once, not left for the parent's
    # resource tracker to warn about when a busy worker is killed; workers start no processes.
    multiprocessing.set_start_method("fork", force=True)
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the kernel was asked to watch it
        return
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        conn.send(run_task(task))


class _Worker:
    def __init__(self, ctx):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, os.getpid()), daemon=True)
        self.process.start()
        child.close()
        self.task: Task | None = None
        self.index = -1
        self.deadline: float | None = None

    def give(self, index: int, task: Task) -> None:
        self.task, self.index = task, index
        limit = task.hard_limit()
        self.deadline = None if limit is None else time.monotonic() + limit
        self.conn.send(task)

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()


def _failed(task: Task, status: str, message: str, wall_s: float) -> Result:
    m = registry.problem(task.instance.problem).method(task.method)
    return Result(problem=m.problem, instance=task.instance.name, method=m.name, kind=m.kind, status=status,
                  objective=None, feasible=False, violations=[], bound=None, gap=None, wall_s=round(wall_s, 6),
                  seed=task.seed, solution=None, message=message)


def run_tasks(tasks: list[Task], on_done: Callable[[int, Result], None], *, jobs: int = 1,
              on_start: Callable[[int], None] | None = None) -> None:
    """Run ``tasks`` in ``jobs`` worker processes; ``on_done(index, result)`` as each one finishes.

    Raises :class:`edgeopt.errors.Interrupted` on SIGINT/SIGTERM after killing every worker.
    """
    if not tasks:
        return
    ctx = multiprocessing.get_context("spawn")
    workers = [_Worker(ctx) for _ in range(max(1, min(jobs, len(tasks))))]
    todo = list(enumerate(tasks))[::-1]
    started: dict[int, float] = {}
    restore = catch_signals()
    try:
        while todo or any(w.task for w in workers):
            for w in workers:
                if w.task is None and todo:
                    k, task = todo.pop()
                    if on_start:
                        on_start(k)
                    started[k] = time.monotonic()
                    w.give(k, task)
            busy = [w for w in workers if w.task]
            deadlines = [w.deadline for w in busy if w.deadline is not None]
            timeout = 0.5 if not deadlines else max(0.0, min(0.5, min(deadlines) - time.monotonic()))
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=timeout)
            for i, w in enumerate(workers):
                if not w.task:
                    continue
                k, task, wall = w.index, w.task, time.monotonic() - started[w.index]
                if w.conn in ready:
                    try:
                        result = w.conn.recv()
                    except EOFError:
                        result = None
                    if result is not None:
                        w.task = None
                        on_done(k, checked_input(result))
                        continue
                if w.conn in ready or w.process.sentinel in ready:  # died without an answer
                    code = w.process.exitcode
                    result = _failed(task, "error", f"worker process died (exit code {code})", wall)
                elif w.deadline is not None and time.monotonic() >= w.deadline:
                    result = _failed(task, "time_limit", f"killed {task.hard_limit():.1f} s after its start: "
                                                         "the method did not stop at its time limit", wall)
                else:
                    continue
                w.stop()
                w.task = None
                if todo:
                    workers[i] = _Worker(ctx)
                on_done(k, result)
    finally:
        for w in workers:
            w.stop()
        restore()
