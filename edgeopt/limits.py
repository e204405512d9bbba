"""Every cap and range edgeopt holds its input to, in one place (README, "Robustness").

Ranges are fixed: seeds 0 <= s < 2^63, time limits in (0, 86400] s, ``--jobs`` 1..256, ``--threads``
1..1024, ``--mip-gap`` [0, 1], ``--processors`` 1..1024, at most 100,000 rows per experiment; ``edgeopt serve``'s
``--max-body`` (0, 1024] MB, ``--queue`` 1..100,000, ``--port`` 0..65535. Two caps depend on the machine and so
come from the environment:

* ``EDGEOPT_MEMORY_GB`` (default 4): the most one piece of work may ask for — an instance a generator
  makes, an exact model before it is built, a dynamic program's table — estimated before any of it is
  allocated;
* ``EDGEOPT_INPUT_MB`` (default 256): the largest input file, and the most a ``.json.gz`` may inflate to
  (the largest shipped instance is 2.7 MB inflated; a 100,000-task qllms instance is 116 MB).

A range or the input cap broken is an InputError (exit 2); work over the memory cap is TooLarge, which a
method's run reports as an ``error`` row and a generator as an InputError naming ``--size``.
"""
from __future__ import annotations

import math
import os
from typing import Annotated, Any

from pydantic import Field

from edgeopt.errors import InputError, TooLarge, shown

SEED_MAX = 2**63 - 1  # seeds are int64 in every table and file; NumPy's generators take any of them
TIME_LIMIT_MAX_S = 86_400.0  # a day per method call
JOBS_MAX = 256  # worker processes
THREADS_MAX = 1024  # solver threads
PROCESSORS_MAX = 1024  # identical processors of an imported task graph (`import stg|gxl|dot --processors`)
EXPERIMENT_ROWS_MAX = 100_000  # rows of one experiment: grid points x sizes x seeds x methods
BODY_MB_MAX = 1024.0  # `edgeopt serve --max-body`: MB a request body may hold (inflated)
QUEUE_MAX = 100_000  # `edgeopt serve --queue`: solves and jobs held at once
PORT_MAX = 65_535
AGENTS_MAX = 4096  # agents of a decision process that is trained (`edgeopt train`; a policy runs on any number)
MEMORY_GB, INPUT_MB = 4.0, 256.0  # defaults of EDGEOPT_MEMORY_GB and EDGEOPT_INPUT_MB


def _env(name: str, default: float) -> float:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise InputError(name, f"must be a number > 0, got {shown(text)}")
    return value


def memory_cap() -> int:
    """Bytes one instance, model or table may take (``EDGEOPT_MEMORY_GB``, default 4)."""
    return int(_env("EDGEOPT_MEMORY_GB", MEMORY_GB) * 2**30)


def input_cap() -> int:
    """Bytes an input file may hold, inflated (``EDGEOPT_INPUT_MB``, default 256)."""
    return int(_env("EDGEOPT_INPUT_MB", INPUT_MB) * 2**20)


def size_text(nbytes: float) -> str:
    """Bytes in binary units: ``13.6 GiB``; beyond exbibytes in powers of ten."""
    for unit, scale in (("EiB", 2**60), ("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            value = nbytes / scale
            return f"{value:.3g} {unit}" if value < 1000 else f"{nbytes:.2e} bytes"
    return f"{int(nbytes)} bytes"


def check_memory(nbytes: float, what: str) -> None:
    """Raise TooLarge when ``what`` would need more than the memory cap (checked before allocating it)."""
    cap = memory_cap()
    if not nbytes <= cap:
        raise TooLarge(f"{what} needs about {size_text(nbytes)}, more than the memory cap of {size_text(cap)} "
                       "(EDGEOPT_MEMORY_GB raises it)")


def check_input(nbytes: int, where: str, inflated: bool = False) -> None:
    """InputError when an input file (or what a ``.gz`` inflates to) is over the input cap."""
    cap = input_cap()
    if nbytes > cap:
        what = "inflates to more than" if inflated else f"holds {size_text(nbytes)}, more than"
        raise InputError(where, f"{what} the input cap of {size_text(cap)} (EDGEOPT_INPUT_MB raises it)")


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def seed(value: Any, where: str = "--seed") -> int:
    """A seed: an integer 0 <= s < 2^63."""
    if not (_integer(value) and 0 <= value <= SEED_MAX):
        raise InputError(where, f"must be an integer 0 <= seed < 2^63, got {shown(value)}")
    return value


def time_limit(value: Any, where: str = "--time-limit") -> float:
    """A time limit in seconds: a number in (0, 86400]."""
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= TIME_LIMIT_MAX_S):
        raise InputError(where, f"must be a number of seconds in (0, {TIME_LIMIT_MAX_S:g}], got {shown(value)}")
    return float(value)


def count(value: Any, where: str, lo: int, hi: int) -> int:
    """An integer lo..hi (jobs, intervals, evaluations ...)."""
    if not (_integer(value) and lo <= value <= hi):
        raise InputError(where, f"must be an integer {lo}..{hi:,}, got {shown(value)}")
    return value


def jobs(value: Any, where: str = "--jobs") -> int:
    return count(value, where, 1, JOBS_MAX)


def megabytes(value: Any, where: str, most: float) -> int:
    """A size in MB, 0 < x <= ``most``, as bytes."""
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= most):
        raise InputError(where, f"must be a number of MB in (0, {most:g}], got {shown(value)}")
    return int(value * 2**20)


# Annotations of the options every exact method shares: checked like any method option (``Method.check_options``)
MipGap = Annotated[float, Field(ge=0, le=1)]
Threads = Annotated[int, Field(ge=1, le=THREADS_MAX)]
Count = Annotated[int, Field(ge=1, le=1_000_000)]  # iterations, episodes, nodes, rounds of a method
Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]  # a seed given as a method option (e.g. a learned method's train_seed)
