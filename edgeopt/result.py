"""The records a solve produces: the referee's Evaluation, a method's Outcome, the reported Result."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# "bound": a bound method proved a bound on the optimum and returns no solution
STATUSES = ("optimal", "feasible", "infeasible", "time_limit", "unavailable", "error", "bound")


@dataclass
class Evaluation:
    """What the referee recomputed from a solution alone.

    ``objective`` is None when the solution has no defined value (e.g. a layer on a device that
    cannot run it); ``details`` holds per-problem figures (per-job latency, TCR, payments ...).
    """

    objective: float | None
    feasible: bool
    violations: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """What a method hands back when it has more to say than its Solution.

    Exact methods fill the solver fields; any method may state ``claimed``, its own objective value,
    which the tests hold against the referee's.
    """

    solution: Any | None
    claimed: float | None = None
    status: str | None = None  # solver status for exact methods, "bound" for bound methods (see STATUSES)
    bound: float | None = None
    gap: float | None = None
    solver: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    """One (instance, method) row: the `solve --json` object and a `compare` row."""

    problem: str
    instance: str
    method: str
    kind: str
    status: str
    objective: float | None
    feasible: bool
    violations: list[str]
    bound: float | None
    gap: float | None
    wall_s: float
    seed: int
    solution: dict | None
    claimed: float | None = None
    solver: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    message: str | None = None

    def to_dict(self) -> dict:
        """The fields as a dict (shallow: a 100,000-entry solution is not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
