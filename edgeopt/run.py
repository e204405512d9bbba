"""One method on one instance, judged by the referee: the row that solve, compare, workers and adversary are made of.

It lives apart from ``compare`` so that ``compare`` (which hands rows to ``workers``) and ``workers`` (which run
rows) both import it without importing each other.
"""
from __future__ import annotations

from edgeopt import registry
from edgeopt.result import Result


def run_one(instance, method_name: str, *, seed: int = 0, time_limit: float | None = None, **options) -> Result:
    """One method on one instance, given the options it takes (solver options reach exact methods only)."""
    m = registry.problem(instance.problem).method(method_name)
    mine = {k: v for k, v in options.items() if v is not None and m.takes(k)}
    return m.run(instance, seed=seed, time_limit=time_limit, **mine)
