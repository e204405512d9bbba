"""The ways a run ends early, which the command line turns into exit codes or rows (kept import-light)."""
from __future__ import annotations

import _thread
import signal
import sys
import threading
from typing import Any, Callable

PATH_CHARS, RULE_CHARS, VALUE_CHARS = 200, 600, 40  # the most of each an error message shows


def cut(text: str, limit: int) -> str:
    """``text`` on one line and at most ``limit`` characters: a message must not echo a 100 KB value."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else f"{text[:limit - 3]}..."


def shown(value: Any) -> str:
    """A value for an error message: scalars as written (cut short), containers by kind (they may be huge or deep)."""
    if isinstance(value, (dict, list, tuple)):
        return "an object" if isinstance(value, dict) else "a list"
    return cut(repr(value) if not isinstance(value, bool) else str(value).lower(), VALUE_CHARS)


class InputError(Exception):
    """Bad input: ``path`` names the offending field, ``rule`` what it must satisfy (exit code 2).

    Both are cut to one line of bounded length (``cut``), whatever value they echo.
    """

    def __init__(self, path: str, rule: str):
        self.path, self.rule = cut(str(path), PATH_CHARS), cut(str(rule), RULE_CHARS)
        super().__init__(f"{self.path}{'' if self.rule.startswith('[') else ' '}{self.rule}")


class NotApplicable(Exception):
    """A method that does not apply to this instance (reported as status ``error`` with the reason)."""


class TooLarge(NotApplicable):
    """Work refused before it starts: it would not fit the memory cap (``edgeopt.limits``)."""


class ClusterLost(Exception):
    """The Dask scheduler could not be reached, or went away mid-run (exit code 3): the finished rows are kept
    and the same command resumes the run."""

    def __init__(self, address: str, message: str):
        self.address = address
        super().__init__(cut(message, RULE_CHARS))


class Interrupted(BaseException):
    """The run was stopped by SIGINT or SIGTERM; the command line exits with 128 + ``signum``."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


def raise_interrupted(signum, frame) -> None:
    """Signal handler: SIGINT and SIGTERM both unwind the stack, so ``finally`` blocks clean up."""
    raise Interrupted(signum)


def _trip(signum: int) -> None:
    """Deliver ``signum`` to the main thread again, if Interrupted is still what it raises there."""
    if signal.getsignal(signum) is raise_interrupted:
        _thread.interrupt_main(signum)


def catch_signals() -> Callable[[], None]:
    """Make SIGINT and SIGTERM raise Interrupted (main thread only); returns what restores the old handlers.

    Python cannot unwind from some places: a signal that arrives while a garbage-collector callback (JAX
    registers one) or a ``__del__`` runs raises Interrupted there, and Python only reports it as "Exception
    ignored" and goes on, so a Ctrl-C during training was sometimes lost. Such an Interrupted reaches
    ``sys.unraisablehook``; while the handlers are in place the hook trips the signal again 20 ms later from a
    timer thread, and it is raised in the Python code running then (if that is a callback again, the hook trips
    it once more).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {s: signal.signal(s, raise_interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
    old_hook = sys.unraisablehook

    def resend(unraisable) -> None:
        if isinstance(unraisable.exc_value, Interrupted):
            # raised in this hook it would be lost again: trip it once the hook and the collection have returned
            timer = threading.Timer(0.02, _trip, (unraisable.exc_value.signum,))
            timer.daemon = True
            timer.start()
        else:
            old_hook(unraisable)

    sys.unraisablehook = resend

    def restore() -> None:
        sys.unraisablehook = old_hook
        for s, h in old.items():
            signal.signal(s, h)

    return restore
