"""Methods run in worker processes, so that the command line stays in charge of them.

A solver deep in C code cannot be interrupted from Python: the process that waits for it can. A ``Pool``
keeps worker processes; each Task (one method on one instance) runs in one of them and the parent only
waits on pipes, so that

* **the limit counts the method, not the plumbing**: workers are spawned and warmed before they get a task
  (edgeopt, NumPy and pydantic imported; the solver libraries too while they wait for their first task), and
  a task's clock starts when its worker reports ``started``: the instance is unpickled (or generated from
  its recipe), the method's modules are imported, and the method is being called. A fresh worker that
  replaces a killed one starts no clock before it runs a task;
* **a method that overruns its limit still answers**: ``limit × 1.1 + STOP_AFTER_S`` after its start it is
  asked to stop (``edgeopt.anytime``: the solvers' own interrupts), and returns what it has; if it has not
  returned ``STOP_GRACE_S`` later, its worker is killed and the row is ``time_limit`` with the last
  incumbent it reported (judged by the referee here, never by the method's claim) and its last bound;
* SIGINT / SIGTERM stop the run within a second: workers are killed, nothing is recorded for the
  interrupted tasks, and the caller sees ``edgeopt.errors.Interrupted`` (exit 130 / 143 on the command line);
* a parent killed with SIGKILL takes its workers with it (the kernel's parent-death signal on Linux).

Workers are spawned (fresh interpreters): a fork after HiGHS's threads ran in this process can deadlock,
and a fork server's children would outlive a killed parent (they hold the pipe the server watches for its
parent's death). Messages, parent to worker: ``("task", id, Task)``, ``("stop", id)``, ``("withdraw", id)``;
worker to parent: ``("ready",)``, ``("started", id, t)``, ``("progress", id, Progress)``, ``("done", id,
Result)``, ``("withdrawn", id)``.
"""
from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any, Callable

from edgeopt import anytime, registry
from edgeopt.errors import InputError, catch_signals
from edgeopt.result import Outcome, Result
from edgeopt.run import run_one

STOP_AFTER_S = 0.2  # past limit × 1.1: the method is asked to stop
STOP_GRACE_S = 0.7  # then: killed if it has not returned (by limit × 1.1 + 0.9 s: within the rule's + 1 s)
# what exact and bound methods import as they run (a few tenths of a second in all on a quiet machine): a worker
# imports them while it waits for its first task, so that a method finds them there when it can
WARM = ("pyomo.environ", "pyomo.contrib.solver.solvers.highs", "pyomo.contrib.solver.solvers.scip.scip_persistent",
        "highspy", "pyscipopt", "ortools.sat.python.cp_model", "scipy.optimize")


@dataclass
class Task:
    """One method on one instance; ``instance`` may be a recipe (``build()``, ``problem``, ``name``) that
    the worker turns into the instance, so that a sweep sends only small descriptions."""

    instance: Any
    method: str
    seed: int = 0
    time_limit: float | None = None
    options: dict | None = None

    def stop_after(self) -> float | None:
        """Seconds after its start at which the task is asked to stop (None: never)."""
        return None if self.time_limit is None else self.time_limit * 1.1 + STOP_AFTER_S


@dataclass
class Event:
    """What a Pool reports about a task: ``started`` (its clock runs), ``progress`` (its method reported a new
    incumbent or bound: ``progress``), ``done`` (its ``result``; exactly one per task not cancelled)."""

    kind: str
    task: int
    result: Result | None = None
    progress: anytime.Progress | None = None


def run_task(task: Task, started: Callable[[], None] | None = None) -> Result:
    """What a worker (or a Dask task) does with a Task; whatever goes wrong comes back as an error row.

    ``started()`` is called once the instance is built and the method found, just before it runs.
    """
    start = time.perf_counter()
    try:
        instance = task.instance.build() if hasattr(task.instance, "build") else task.instance
        registry.problem(instance.problem).method(task.method)  # imports its modules: not the method's time
        if started is not None:
            started()
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


def _failed(task: Task, status: str, message: str, wall_s: float) -> Result:
    m = registry.problem(task.instance.problem).method(task.method)
    return Result(problem=m.problem, instance=task.instance.name, method=m.name, kind=m.kind, status=status,
                  objective=None, feasible=False, violations=[], bound=None, gap=None, wall_s=round(wall_s, 6),
                  seed=task.seed, solution=None, message=message)


def _stopped(task: Task, first: anytime.Progress | None, last: anytime.Progress | None, wall_s: float,
             message: str) -> Result:
    """The row of a task whose worker was killed: ``time_limit``, the better by the referee of the first and
    the last incumbent its method reported (an exact method's first is its start), and its last bound."""
    instance = task.instance.build() if hasattr(task.instance, "build") else task.instance
    prob = registry.problem(instance.problem)
    found = []
    for p in (first, last):
        if p is not None and p.solution is not None:
            ev = prob.evaluate(instance, p.solution)
            if ev.feasible and ev.objective is not None:
                found.append((ev.objective if prob.sense == "min" else -ev.objective, p))
    best = min(found, key=lambda f: f[0])[1] if found else None
    bound = None if last is None else last.bound
    out = Outcome(best.solution if best else None, claimed=best.claimed if best else None, status="time_limit",
                  bound=bound)
    result = prob.method(task.method).judge(instance, out, wall_s, task.seed, message)
    if result.objective is not None and bound is not None:
        result.gap = abs(result.objective - bound) / max(abs(result.objective), 1e-10)
    return result


# --- the parent's side ----------------------------------------------------------------------------

class _Worker:
    """A worker process seen from the parent: the tasks handed to it (the first runs, or runs next)."""

    def __init__(self, ctx):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, os.getpid()), daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.queue: list[int] = []
        self.started: float | None = None  # the first task's start (its worker's clock; CLOCK_MONOTONIC)
        self.stop_at: float | None = None  # when the first task is asked to stop (its limit's backstop)
        self.kill_at: float | None = None  # when it is killed, having been asked
        self.why: str = ""  # why it was asked
        self.withdrawing: int | None = None
        self.first: anytime.Progress | None = None  # the first task's first report with a solution ...
        self.last: anytime.Progress | None = None  # ... and its last report

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()


class Pool:
    """Worker processes that run Tasks, each under its time limit's backstop (see the module docstring).

    ``submit`` a Task (its id back), then call ``events()`` in a loop: it hands tasks to workers, enforces the
    limits and returns what happened since (``Event``). ``stop(id)`` asks a task to return what it has (killed
    if it does not, like an overrun); ``cancel(id)`` drops it at once, killing its worker as Ctrl-C does (no
    ``done`` follows). A worker that is killed or dies is replaced when there is work for it.
    """

    def __init__(self, jobs: int = 1):
        self._ctx = multiprocessing.get_context("spawn")
        self.jobs = max(1, jobs)
        self._wake_r, self._wake_w = os.pipe()  # ``wake``: a byte here ends a wait in ``events``
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._workers = [_Worker(self._ctx) for _ in range(self.jobs)]
        self._tasks: dict[int, Task] = {}  # submitted and not yet done
        self._waiting: deque[int] = deque()  # submitted, not yet handed to a worker
        self._stop_at_start: set[int] = set()
        self._events: list[Event] = []
        self._next = 0

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        """Tasks submitted and not yet done or cancelled."""
        return len(self._tasks)

    def submit(self, task: Task) -> int:
        self._next += 1
        self._tasks[self._next] = task
        self._waiting.append(self._next)
        return self._next

    def stop(self, task_id: int) -> None:
        """Ask a task to stop and return what it has (at its start, if it has not started yet)."""
        w = self._holder(task_id)
        if w is not None and w.queue[0] == task_id and w.started is not None:
            if w.kill_at is None:  # not asked already
                self._ask_to_stop(w, time.monotonic(), "asked to stop")
        elif task_id in self._tasks:
            self._stop_at_start.add(task_id)

    def cancel(self, task_id: int) -> None:
        """Drop a task: no ``done`` event follows; if a worker holds it, that worker is killed."""
        if task_id not in self._tasks:
            return
        del self._tasks[task_id]
        self._stop_at_start.discard(task_id)
        if task_id in self._waiting:
            self._waiting.remove(task_id)
        w = self._holder(task_id)
        if w is not None:
            w.queue.remove(task_id)
            self._retire(w)

    def wake(self) -> None:
        """End a wait in ``events`` now, from any thread (the one thread that owns the Pool calls everything
        else): a caller that takes new work from elsewhere wakes the owner to submit or cancel it."""
        with contextlib.suppress(BlockingIOError):  # a full pipe holds enough wake-ups already
            os.write(self._wake_w, b"\0")

    def events(self, timeout: float | None = None) -> list[Event]:
        """What happened since the last call, waiting up to ``timeout`` seconds (None: until something does, or
        until ``wake``)."""
        end = None if timeout is None else time.monotonic() + timeout
        if end is None and not self._tasks:
            return []  # nothing would ever happen
        while True:
            self._dispatch()
            now = time.monotonic()
            self._enforce(now)
            if self._events or (end is not None and now >= end):
                out, self._events = self._events, []
                return out
            alarms = [t for w in self._workers for t in (w.stop_at, w.kill_at) if t is not None]
            if end is not None:
                alarms.append(end)
            pause = max(0.0, min(alarms) - now) if alarms else None
            live = self._workers
            ready = wait([w.conn for w in live] + [w.process.sentinel for w in live] + [self._wake_r], timeout=pause)
            for w in list(live):
                if w.conn in ready:
                    self._receive(w)
                elif w.process.sentinel in ready:
                    self._died(w)
            if self._wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wake_r, 4096):
                        pass
                out, self._events = self._events, []
                return out

    def run(self, task: Task) -> Result:
        """Submit ``task`` and wait for its Result: for a caller that runs one task at a time."""
        if self._tasks:
            raise RuntimeError("Pool.run needs an idle pool")
        task_id = self.submit(task)
        while True:
            for event in self.events():
                if event.kind == "done" and event.task == task_id:
                    return event.result

    def close(self) -> None:
        for w in self._workers:
            w.stop()
        self._workers = []
        if self._wake_r >= 0:
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1

    # internals

    def _holder(self, task_id: int) -> _Worker | None:
        return next((w for w in self._workers if task_id in w.queue), None)

    def _give(self, w: _Worker) -> None:
        task_id = self._waiting.popleft()
        w.queue.append(task_id)
        w.conn.send(("task", task_id, self._tasks[task_id]))

    def _dispatch(self) -> None:
        while len(self._workers) < min(self.jobs, len(self._waiting) + len(self._workers)):
            self._workers.append(_Worker(self._ctx))
        ready = [w for w in self._workers if w.ready]
        for w in ready:  # every idle worker gets a task ...
            if not w.queue and self._waiting:
                self._give(w)
        for w in ready:  # ... and, while tasks remain, a busy one its next (no pipe round trip between tasks)
            if len(w.queue) == 1 and self._waiting:
                self._give(w)
        idle = [w for w in ready if not w.queue]
        for w in self._workers:  # at the end, a task queued behind a running one goes back to an idle worker
            if idle and len(w.queue) > 1 and w.withdrawing is None:
                w.withdrawing = w.queue[-1]
                w.conn.send(("withdraw", w.withdrawing))
                idle.pop()

    def _receive(self, w: _Worker) -> None:
        try:
            while w.conn.poll():
                self._handle(w, *w.conn.recv())
        except (EOFError, OSError):
            self._died(w)

    def _handle(self, w: _Worker, kind: str, task_id: int | None = None, payload: Any = None) -> None:
        if kind == "ready":
            w.ready = True
        elif task_id not in self._tasks or task_id not in w.queue:
            return  # a cancelled task's, or a report that crossed its own ``done``
        elif kind == "started":
            w.started, w.first, w.last = payload, None, None
            if w.withdrawing == task_id:
                w.withdrawing = None
            limit = self._tasks[task_id].stop_after()
            w.stop_at = None if limit is None else payload + limit
            if task_id in self._stop_at_start:
                self._ask_to_stop(w, payload, "asked to stop")
            self._events.append(Event("started", task_id))
        elif kind == "progress":
            w.first = w.first or (payload if payload.solution is not None else None)
            w.last = payload
            self._events.append(Event("progress", task_id, progress=payload))
        elif kind == "done":
            w.queue.remove(task_id)
            if w.kill_at is not None and payload.message is None:
                payload.message = f"{w.why}; returned what it had {time.monotonic() - w.started:.1f} s after its start"
            w.started = w.stop_at = w.kill_at = None
            self._finish(task_id, payload)
        elif kind == "withdrawn":
            w.queue.remove(task_id)
            w.withdrawing = None
            self._waiting.appendleft(task_id)

    def _finish(self, task_id: int, result: Result) -> None:
        del self._tasks[task_id]
        self._stop_at_start.discard(task_id)
        self._events.append(Event("done", task_id, result=result))

    def _ask_to_stop(self, w: _Worker, now: float, why: str) -> None:
        w.conn.send(("stop", w.queue[0]))
        w.stop_at, w.kill_at, w.why = None, now + STOP_GRACE_S, why

    def _enforce(self, now: float) -> None:
        for w in list(self._workers):
            if w.stop_at is not None and now >= w.stop_at:
                limit = self._tasks[w.queue[0]].time_limit
                self._ask_to_stop(w, now, f"past its time limit of {limit:g} s, asked to stop")
            elif w.kill_at is not None and now >= w.kill_at:
                task_id = w.queue.pop(0)
                wall = now - w.started
                result = _stopped(self._tasks[task_id], w.first, w.last, wall,
                                  f"{w.why}; did not return: killed {wall:.1f} s after its start; "
                                  "its last reported incumbent and bound are kept")
                self._retire(w)
                self._finish(task_id, result)

    def _died(self, w: _Worker) -> None:
        if not w.ready:
            w.stop()
            raise RuntimeError(f"a worker process could not start (exit code {w.process.exitcode})")
        if w.queue:  # the task it was on; the one queued behind it goes back
            task_id = w.queue.pop(0)
            wall = 0.0 if w.started is None else time.monotonic() - w.started
            self._finish(task_id, _failed(self._tasks[task_id], "error",
                                          f"worker process died (exit code {w.process.exitcode})", wall))
        self._retire(w)

    def _retire(self, w: _Worker) -> None:
        """Kill ``w`` and put the tasks it still held back in line (a fresh worker comes when needed)."""
        w.stop()
        self._workers.remove(w)
        self._waiting.extendleft(reversed(w.queue))


def run_tasks(tasks: list[Task], on_done: Callable[[int, Result], None], *, jobs: int = 1,
              on_start: Callable[[int], None] | None = None) -> None:
    """Run ``tasks`` in ``jobs`` worker processes; ``on_start(index)`` as each one's clock starts,
    ``on_done(index, result)`` as each one finishes.

    Raises :class:`edgeopt.errors.Interrupted` on SIGINT/SIGTERM after killing every worker.
    """
    if not tasks:
        return
    restore = catch_signals()
    try:
        with Pool(min(jobs, len(tasks))) as pool:
            index = {pool.submit(task): k for k, task in enumerate(tasks)}
            while pool:
                for event in pool.events():
                    if event.kind == "started" and on_start:
                        on_start(index[event.task])
                    elif event.kind == "done":
                        on_done(index[event.task], checked_input(event.result))
    finally:
        restore()


# --- the worker's side ----------------------------------------------------------------------------

_CLOSED = object()


class _Inbox:
    """A worker's end of the pipe. A thread reads it, so that a stop request reaches the method the main
    thread is running; tasks wait here in order until the main thread takes them."""

    def __init__(self, conn):
        self.conn = conn
        self.sending = threading.Lock()  # the main thread, the reader and the anytime forwarder all send
        self.cond = threading.Condition()
        self.tasks: deque[tuple[int, Task]] = deque()
        self.closed = False
        threading.Thread(target=self._read, name="edgeopt-inbox", daemon=True).start()

    def send(self, message: tuple) -> None:
        with self.sending:
            self.conn.send(message)

    def take(self, block: bool):
        """The next (id, Task); None if there is none and ``block`` is false; _CLOSED once the parent is gone."""
        with self.cond:
            while block and not self.tasks and not self.closed:
                self.cond.wait()
            if self.tasks:
                return self.tasks.popleft()
            return _CLOSED if self.closed else None

    def _read(self) -> None:
        while True:
            try:
                kind, *args = self.conn.recv()
            except (EOFError, OSError):
                with self.cond:
                    self.closed = True
                    self.cond.notify()
                return
            if kind == "task":
                with self.cond:
                    self.tasks.append((args[0], args[1]))
                    self.cond.notify()
            elif kind == "stop":
                anytime.request_stop(tag=args[0])
            elif kind == "withdraw":
                with self.cond:
                    kept = [t for t in self.tasks if t[0] != args[0]]
                    found = len(kept) < len(self.tasks)
                    self.tasks = deque(kept)
                if found:
                    self.send(("withdrawn", args[0]))


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; elsewhere a no-op)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _warm(modules: deque[str]) -> None:
    """Import the next of ``modules``: a solver that is not installed is the method's to report."""
    try:
        importlib.import_module(modules.popleft())
    except Exception:  # noqa: BLE001 (ImportError, or a broken solver library: the method will say which)
        pass


def _serve(conn, parent: int) -> None:
    """Worker loop: report ready, then run tasks until the pipe closes, warming up while idle. Ctrl-C
    reaches a terminal's whole process group; the parent decides what it means, so workers ignore SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Locks made here (Pyomo makes one at import) are then unlinked at once, not left for the parent's
    # resource tracker to warn about when a busy worker is killed; workers start no processes.
    multiprocessing.set_start_method("fork", force=True)
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the kernel was asked to watch it
        return
    inbox = _Inbox(conn)
    inbox.send(("ready",))
    anytime.forward(lambda p: inbox.send(("progress", p.tag, p)))
    warm = deque(WARM)  # only until the first task: warming between tasks would hold the next one up
    while True:
        item = inbox.take(block=not warm)
        if item is _CLOSED:
            return
        if item is None:
            _warm(warm)
            continue
        task_id, task = item
        warm.clear()
        with anytime.scope(tag=task_id):
            result = run_task(task, started=lambda: inbox.send(("started", task_id, time.monotonic())))
        inbox.send(("done", task_id, result))
