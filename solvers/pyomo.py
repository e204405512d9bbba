"""Solve a Pyomo model with a named solver and report what was proven.

HiGHS (``highspy``) is the default MILP solver and SCIP (``pyscipopt``) the default MINLP solver; both
go through Pyomo's solver interface that reports the incumbent and the best bound. Any other name is
handed to Pyomo's classic ``SolverFactory`` (cbc, glpk, cplex, gurobi ...).
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edgeopt.model import InputError
from edgeopt.result import Outcome

# solver name -> (name in pyomo.contrib.solver's factory, what to install)
_MODERN = {
    "highs": ("highs", "pip install highspy"),
    "scip": ("scip_direct", "pip install 'edgeopt[scip]'  (pyscipopt)"),
    "gurobi": ("gurobi_direct", "pip install gurobipy  (and a Gurobi licence)"),
}
# classic solvers: option names for (time limit s, relative gap)
_CLASSIC_OPTIONS = {
    "cbc": ("sec", "ratioGap"),
    "glpk": ("tmlim", "mipgap"),
    "cplex": ("timelimit", "mipgap"),
    "xpress": ("maxtime", "miprelstop"),
}
DEFAULT_GAP = 1e-6


@dataclass
class SolveReport:
    status: str  # optimal | feasible | infeasible | time_limit | error
    objective: float | None
    bound: float | None
    gap: float | None
    wall_s: float
    solver: str
    has_solution: bool


def _gap(objective: float | None, bound: float | None) -> float | None:
    if objective is None or bound is None or not math.isfinite(bound):
        return None
    return abs(objective - bound) / max(abs(objective), 1e-10)


def _modern(name: str):
    from pyomo.contrib.solver.common.factory import SolverFactory

    pyomo_name, install = _MODERN[name]
    opt = SolverFactory(pyomo_name)
    if not opt.available():
        raise InputError("--solver", f"{name!r} is not available on this machine: {install}")
    return opt


def available_solvers() -> dict[str, bool]:
    """Which of the solvers edgeopt knows by name can run here (checked on demand, not at import)."""
    out = {}
    for name in _MODERN:
        try:
            _modern(name)
            out[name] = True
        except InputError:
            out[name] = False
    from pyomo.opt import SolverFactory

    for name in _CLASSIC_OPTIONS:
        out[name] = bool(SolverFactory(name).available(exception_flag=False))
    return out


def solve_model(
    model,
    solver: str = "highs",
    time_limit: float | None = None,
    mip_gap: float | None = None,
    threads: int | None = None,
) -> SolveReport:
    """Solve ``model`` and load the incumbent into it (when there is one)."""
    gap_target = DEFAULT_GAP if mip_gap is None else mip_gap
    start = time.perf_counter()
    if solver in _MODERN:
        report = _solve_modern(model, solver, time_limit, gap_target, threads)
    else:
        report = _solve_classic(model, solver, time_limit, gap_target)
    report.wall_s = time.perf_counter() - start
    return report


def _solve_modern(model, solver, time_limit, gap_target, threads) -> SolveReport:
    from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition as TC

    opt = _modern(solver)
    kw = {"rel_gap": gap_target, "load_solutions": False, "raise_exception_on_nonoptimal_result": False}
    if time_limit is not None:
        kw["time_limit"] = float(time_limit)
    if threads is not None:
        kw["threads"] = int(threads)
    res = opt.solve(model, **kw)
    has = res.solution_status in (SolutionStatus.feasible, SolutionStatus.optimal)
    if has:
        res.solution_loader.load_vars()
    tc = res.termination_condition
    if tc == TC.convergenceCriteriaSatisfied:
        status = "optimal"
    elif tc in (TC.provenInfeasible, TC.locallyInfeasible, TC.infeasibleOrUnbounded):
        status = "infeasible"
    elif tc == TC.maxTimeLimit:
        status = "time_limit"
    elif has:
        status = "feasible"
    else:
        status = "error"
    obj = res.incumbent_objective if has else None
    bound = res.objective_bound
    bound = float(bound) if bound is not None and math.isfinite(bound) else None
    return SolveReport(status, obj, bound, _gap(obj, bound) if has else None, 0.0, solver, has)


def _solve_classic(model, solver, time_limit, gap_target) -> SolveReport:
    from pyomo.opt import SolverFactory, TerminationCondition as TC

    opt = SolverFactory(solver)
    if opt is None or not opt.available(exception_flag=False):
        raise InputError("--solver", f"{solver!r} is not available on this machine: install it so that Pyomo can find it")
    names = _CLASSIC_OPTIONS.get(solver)
    if names:
        if time_limit is not None:
            opt.options[names[0]] = time_limit
        opt.options[names[1]] = gap_target
    res = opt.solve(model, load_solutions=False)
    tc = res.solver.termination_condition
    has = len(res.solution) > 0
    if has:
        model.solutions.load_from(res)
    status = {TC.optimal: "optimal", TC.infeasible: "infeasible", TC.maxTimeLimit: "time_limit"}.get(
        tc, "feasible" if has else "error"
    )
    obj = None
    if has:
        from pyomo.environ import Objective, value

        obj = value(next(model.component_data_objects(Objective, active=True)))
    bound = obj if status == "optimal" else None
    return SolveReport(status, obj, bound, _gap(obj, bound), 0.0, solver, has)


def exact_method(build_model: Callable, read_solution: Callable, default_solver: str = "highs") -> Callable:
    """Turn ``build_model(instance)`` and ``read_solution(model, instance)`` into an exact method."""

    def run(instance, *, seed: int = 0, time_limit: float | None = None, solver: str = default_solver,
            mip_gap: float | None = None, threads: int | None = None) -> Outcome:
        model = build_model(instance)
        rep = solve_model(model, solver=solver, time_limit=time_limit, mip_gap=mip_gap, threads=threads)
        sol = read_solution(model, instance) if rep.has_solution else None
        return Outcome(sol, claimed=rep.objective, status=rep.status, bound=rep.bound, gap=rep.gap,
                       solver=rep.solver)

    run.__doc__ = build_model.__doc__
    return run


def write_model(model, path: str | os.PathLike, fmt: str) -> None:
    """Write ``model`` as LP or MPS, atomically, with readable variable names."""
    if fmt not in ("lp", "mps"):
        raise InputError("--format", f"must be lp or mps, got {fmt!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="edgeopt-export-", suffix=f".{fmt}")
    os.close(fd)
    try:
        model.write(tmp, io_options={"symbolic_solver_labels": True})  # format from the .lp/.mps suffix
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
