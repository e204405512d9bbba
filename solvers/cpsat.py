"""CP-SAT runs that take part in ``edgeopt.anytime``: solutions and the bound reported, stop requests honoured."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from edgeopt import anytime


def solve(solver, model, *, solution: Callable[[Any], Any] | None = None,
          value: Callable[[float], float] = float, bound: Callable[[float], float] = float) -> int:
    """``solver.solve(model)`` (a ``cp_model.CpSolver`` and ``CpModel``); returns CP-SAT's status code.

    A stop request (``anytime.request_stop``, from any thread) ends the search. With ``solution`` (the
    problem's Solution read from the solution callback, which answers ``value``/``boolean_value`` like the
    solver) each new solution is reported, at most one per ``anytime.THROTTLE_S`` (reading a large model's
    literals costs more than LNS takes to find the next), with ``value(CP-SAT's objective)`` as its claim,
    and CP-SAT's best bound as ``bound(CP-SAT's bound)``. A solve without ``solution`` reports nothing: a
    sub-model's (a part's) solutions and bounds are not the method's.
    """
    from ortools.sat.python import cp_model

    with anytime.on_stop(solver.stop_search):
        if solution is None:
            return solver.solve(model)

        class Found(cp_model.CpSolverSolutionCallback):
            built = -float("inf")

            def on_solution_callback(self) -> None:
                if time.monotonic() - self.built >= anytime.THROTTLE_S:
                    self.built = time.monotonic()
                    anytime.report(solution(self), claimed=value(self.objective_value))

        solver.best_bound_callback = lambda b: anytime.report(bound=bound(b))
        return solver.solve(model, Found())
