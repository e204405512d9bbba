"""Anytime results: a running method's best incumbent and bound so far, and a request to stop.

An exact or bound method calls ``report(solution=..., claimed=..., bound=...)`` whenever its incumbent or
its bound improves, and stops early (with what it has) once ``stop_requested()``. Solver callbacks do both
(``edgeopt.solvers``: HiGHS, SCIP, CP-SAT); iterative bounds do it per iteration. In a worker process
(``edgeopt.workers``) the reports are forwarded to the parent, throttled, so that a run the backstop has
to kill still answers with its last incumbent (which the parent's referee checks) and its last bound; in
this process they are kept (``last()``), and any thread may ``request_stop()`` the running method.

Process-wide and import-light (standard library only): a method needs no argument to take part.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

THROTTLE_S = 0.2  # a worker forwards at most one report per this interval: the last one wins


@dataclass(frozen=True)
class Progress:
    """The last reported incumbent and bound of a running method (either may still be None)."""

    solution: Any = None  # the problem's Solution; never a model (it travels between processes)
    claimed: float | None = None  # the method's own value of ``solution`` (the referee has the last word)
    bound: float | None = None  # a proven bound on the optimum
    at: float = 0.0  # seconds since the method began
    tag: Any = None  # what the worker runs (its task id), None in this process


_lock = threading.Lock()
_stop = threading.Event()
_last: Progress | None = None
_depth = 0  # nested scopes: only the outermost one clears
_tag: Any = None
_sense: str | None = None  # "min" | "max": a bound only replaces a looser one
_began = 0.0
_muted = 0
_on_stop: list[Callable[[], None]] = []
_forwarder: _Forwarder | None = None


def report(solution: Any = None, *, claimed: float | None = None, bound: float | None = None) -> None:
    """Record an improvement: a new incumbent (with its ``claimed`` value), a better ``bound``, or both.

    What is not given keeps its last value, and so does a bound looser than the last (the problem's sense
    says which is looser). Outside a method's scope, or inside ``muted()``, it is dropped.
    """
    global _last
    with _lock:
        if not _depth or _muted:
            return
        old = _last or Progress(tag=_tag)
        if bound is None or (old.bound is not None and (bound < old.bound if _sense == "min" else
                                                        bound > old.bound if _sense == "max" else False)):
            bound = old.bound
        _last = replace(old, solution=old.solution if solution is None else solution,
                        claimed=old.claimed if solution is None else claimed, bound=bound,
                        at=time.monotonic() - _began)
    if _forwarder is not None:
        _forwarder.wake()


def last() -> Progress | None:
    """The running method's latest report, or None (cleared when its run ends)."""
    return _last


def stop_requested() -> bool:
    """Whether the running method has been asked to stop and return what it has."""
    return _stop.is_set()


def request_stop(tag: Any = None) -> None:
    """Ask the running method to stop (``tag``: only if it is the one running; ignored otherwise)."""
    with _lock:
        if not _depth or (tag is not None and tag != _tag):
            return
        _stop.set()
        hooks = list(_on_stop)
    for hook in hooks:
        hook()


@contextmanager
def on_stop(hook: Callable[[], None]) -> Iterator[None]:
    """Call ``hook`` (from whichever thread asks) if a stop is requested while the block runs: the way to
    interrupt a solver that is not waiting in a callback of ours (CP-SAT's ``stop_search``)."""
    with _lock:
        _on_stop.append(hook)
    try:
        if _stop.is_set():
            hook()
        yield
    finally:
        with _lock:
            _on_stop.remove(hook)


@contextmanager
def muted() -> Iterator[None]:
    """Drop the reports made inside: nested solves of other instances (re-solves, start candidates)."""
    global _muted
    with _lock:
        _muted += 1
    try:
        yield
    finally:
        with _lock:
            _muted -= 1


@contextmanager
def scope(tag: Any = None, sense: str | None = None) -> Iterator[None]:
    """One method's run: reports start empty; at the end the reports and any stop request are cleared.

    Nested scopes (``Method.run`` inside a worker's task) belong to the outermost one; the first that knows
    the problem's ``sense`` ("min" or "max") sets it.
    """
    global _depth, _last, _tag, _sense, _began
    with _lock:
        _depth += 1
        if _depth == 1:
            _last, _tag, _sense, _began = None, tag, None, time.monotonic()
            _stop.clear()
        _sense = _sense or sense
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if not _depth:
                _last, _tag, _sense = None, None, None
                _stop.clear()


def forward(sink: Callable[[Progress], None], interval: float = THROTTLE_S) -> None:
    """Send reports to ``sink`` from a thread of their own, at most one per ``interval`` (the last wins), so
    that a solver callback never waits on a pipe. For a worker process: installed once, never removed."""
    global _forwarder
    _forwarder = _Forwarder(sink, interval)


class _Forwarder:
    def __init__(self, sink: Callable[[Progress], None], interval: float):
        self.sink, self.interval = sink, interval
        self.wanted, self.sent = False, -float("inf")
        self.cond = threading.Condition()
        threading.Thread(target=self._loop, name="edgeopt-anytime", daemon=True).start()

    def wake(self) -> None:
        with self.cond:
            self.wanted = True
            self.cond.notify()

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.wanted:
                    self.cond.wait()
                wait = self.sent + self.interval - time.monotonic()
                if wait > 0:
                    self.cond.wait(wait)
                    continue
                self.wanted, self.sent = False, time.monotonic()
            progress = _last
            if progress is not None:
                self.sink(progress)
