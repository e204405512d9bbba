"""The ways a run ends early, which the command line turns into exit codes (kept import-light)."""
from __future__ import annotations

import signal
import threading
from typing import Callable


class InputError(Exception):
    """Bad input: ``path`` names the offending field, ``rule`` what it must satisfy (exit code 2)."""

    def __init__(self, path: str, rule: str):
        self.path, self.rule = path, rule
        super().__init__(f"{path}{'' if rule.startswith('[') else ' '}{rule}")


class ClusterLost(Exception):
    """The Dask scheduler could not be reached, or went away mid-run (exit code 3): the finished rows are kept
    and the same command resumes the run."""

    def __init__(self, address: str, message: str):
        self.address = address
        super().__init__(message)


class Interrupted(BaseException):
    """The run was stopped by SIGINT or SIGTERM; the command line exits with 128 + ``signum``."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


def raise_interrupted(signum, frame) -> None:
    """Signal handler: SIGINT and SIGTERM both unwind the stack, so ``finally`` blocks clean up."""
    raise Interrupted(signum)


def catch_signals() -> Callable[[], None]:
    """Make SIGINT and SIGTERM raise Interrupted (main thread only); returns what restores the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {s: signal.signal(s, raise_interrupted) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)

    return restore
