"""Every registered method of every problem, through the referee, on shipped small and random instances.

A problem joins this test by shipping ``instances/<id>/small/*.json`` and defining
``small_instance(seed)`` in ``edgeopt/problems/<id>.py``.
"""
from __future__ import annotations

import math

import pytest

from conftest import shipped
from edgeopt import io, registry
from edgeopt.run import run_one

SEEDS = (0, 1, 2)


def _cases():
    for pid, prob in registry.problems().items():
        for path in shipped(pid, "small"):
            yield pytest.param(pid, str(path), id=f"{pid}-{path.name}")
        for seed in SEEDS:
            yield pytest.param(pid, seed, id=f"{pid}-random{seed}")


def _instance(pid, source):
    if isinstance(source, int):
        return registry.problem(pid).module.small_instance(source)
    return io.load(source)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)


@pytest.mark.parametrize("pid,source", list(_cases()))
def test_every_method_passes_the_referee(pid, source):
    inst = _instance(pid, source)
    prob = registry.problem(pid)
    methods = prob.select(None, inst)  # every kind, bounds included
    assert methods, "no method applies"
    results = {m.name: run_one(inst, m.name, seed=0, time_limit=60) for m in methods}
    for name, r in results.items():
        assert r.status != "error", f"{name}: {r.message}"
        if r.kind == "bound":  # a proof, not a plan: checked against every solution below
            assert r.status == "bound" and r.solution is None and r.bound is not None, f"{name}: {r.status}"
            continue
        assert r.solution is not None, f"{name} returned no solution ({r.status})"
        # the solution round-trips through the solution-file format and the referee agrees with itself
        again = prob.evaluate(inst, io.parse_solution(inst, io.solution_doc(r)))
        assert again.feasible == r.feasible and again.objective == pytest.approx(r.objective)
        if r.claimed is not None and r.feasible:
            assert _close(r.claimed, r.objective), f"{name} claims {r.claimed}, referee says {r.objective}"
    exact = [r for r in results.values() if r.kind == "exact"]
    for e in exact:
        assert e.status == "optimal" and e.feasible, f"{e.method}: {e.status} {e.violations}"
        assert e.bound is not None
        for r in results.values():
            if r.feasible:
                if prob.sense == "min":
                    assert e.objective <= r.objective + 1e-6 * max(1, abs(r.objective)), r.method
                else:
                    assert e.objective >= r.objective - 1e-6 * max(1, abs(r.objective)), r.method
    for b in (r for r in results.values() if r.kind == "bound"):
        for r in results.values():  # a bound never crosses a feasible solution, so never the optimum either
            if r.feasible:
                slack = 1e-6 * max(1, abs(r.objective))
                assert (b.bound <= r.objective + slack if prob.sense == "min" else b.bound >= r.objective - slack), \
                    f"{b.method} bound {b.bound} crosses {r.method}'s {r.objective}"
