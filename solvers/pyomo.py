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
from edgeopt.registry import Unavailable
from edgeopt.result import Outcome

# solver name -> (name in pyomo.contrib.solver's factory, what to install)
_MODERN = {
    "highs": ("highs", "pip install highspy"),
    "scip": ("scip_direct", "pip install pyscipopt"),
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
# The solvers' console logs stay off: Pyomo drains them through a pipe read by a Python thread, and a
# solver call that holds the GIL (SCIP) blocks for ever once its log fills the pipe (Pyomo #3084, #3908).
_QUIET = {"highs": {"output_flag": False}, "scip": {"display/verblevel": 0}, "gurobi": {"OutputFlag": 0}}
FORMATS = ("lp", "mps", "nl", "gms")  # LP and MPS hold linear models; NL (AMPL) and GAMS nonlinear ones too


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
    import pyomo.environ  # noqa: F401  (registers the solver plugins)
    from pyomo.contrib.solver.common.factory import SolverFactory

    pyomo_name, install = _MODERN[name]
    opt = SolverFactory(pyomo_name)
    if opt is None or not opt.available():
        raise Unavailable("--solver", f"{name!r} is not available on this machine: {install}")
    return opt


def check_solver(name: str) -> None:
    """Raise Unavailable (an InputError) unless solver ``name`` can run here."""
    if name in _MODERN:
        _modern(name)
        return
    from pyomo.opt import SolverFactory

    opt = SolverFactory(name)
    if opt is None or not opt.available(exception_flag=False):
        raise Unavailable("--solver", f"{name!r} is not available on this machine: install it so that Pyomo can find it")


def available_solvers() -> dict[str, bool]:
    """Which of the solvers edgeopt knows by name can run here (checked on demand, not at import)."""
    out = {}
    for name in _MODERN:
        try:
            _modern(name)
            out[name] = True
        except Unavailable:
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
    solver_options: dict | None = None,
) -> SolveReport:
    """Solve ``model`` and load the incumbent into it (when there is one).

    ``time_limit`` covers the whole call: for a persistent solver (HiGHS) the translation of the
    Pyomo model is timed first and the solver gets what is left. ``solver_options`` go to the solver
    after edgeopt's own (which keep its console log off).
    """
    gap_target = DEFAULT_GAP if mip_gap is None else mip_gap
    start = time.perf_counter()
    if solver in _MODERN:
        report = _solve_modern(model, solver, time_limit, gap_target, threads, start, solver_options or {})
    else:
        report = _solve_classic(model, solver, time_limit, gap_target)
    report.wall_s = time.perf_counter() - start
    return report


def _solve_modern(model, solver, time_limit, gap_target, threads, start, options) -> SolveReport:
    from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition as TC

    opt = _modern(solver)
    kw = {"rel_gap": gap_target, "load_solutions": False, "raise_exception_on_nonoptimal_result": False,
          "solver_options": {**_QUIET.get(solver, {}), **options}}
    if threads is not None:
        kw["threads"] = int(threads)
    if time_limit is not None:
        if hasattr(opt, "set_instance"):  # persistent: translate now, so its time counts against the limit
            opt.set_instance(model)
            translate = time.perf_counter() - start
            # re-checking the model for changes before the run costs about a tenth of the translation
            left = float(time_limit) - translate * 1.1
        else:
            left = float(time_limit) - (time.perf_counter() - start)
        if left <= 0:
            return SolveReport("time_limit", None, None, None, 0.0, solver, False)
        kw["time_limit"] = left
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

    check_solver(solver)
    opt = SolverFactory(solver)
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
        start = time.perf_counter()
        if solver in _MODERN:
            _modern(solver)  # a missing solver is reported before the model is built
        model = build_model(instance)
        left = None if time_limit is None else time_limit - (time.perf_counter() - start)
        if left is not None and left <= 0:
            return Outcome(None, status="time_limit", solver=solver)  # building used the whole limit
        rep = solve_model(model, solver=solver, time_limit=left, mip_gap=mip_gap, threads=threads)
        sol = read_solution(model, instance) if rep.has_solution else None
        return Outcome(sol, claimed=rep.objective, status=rep.status, bound=rep.bound, gap=rep.gap,
                       solver=rep.solver)

    run.__doc__ = build_model.__doc__
    return run


def is_linear(model) -> bool:
    """Whether every active objective and constraint of ``model`` is linear (LP/MPS can hold it)."""
    from pyomo.environ import Constraint, Objective

    parts = [o.expr for o in model.component_data_objects(Objective, active=True)]
    parts += [c.body for c in model.component_data_objects(Constraint, active=True)]
    return all(getattr(e, "polynomial_degree", lambda: 0)() in (0, 1) for e in parts)


def write_model(model, path: str | os.PathLike, fmt: str) -> None:
    """Write ``model`` as LP, MPS, NL or GAMS, atomically, with readable variable names."""
    if fmt not in FORMATS:
        raise InputError("--format", f"must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt in ("lp", "mps") and not is_linear(model):
        raise InputError("--format", f"{fmt} holds linear models only and this one is nonlinear: use --format nl or gms")
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
