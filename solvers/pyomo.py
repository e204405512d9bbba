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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeopt import limits
from edgeopt.limits import MipGap, Threads
from edgeopt.model import InputError
from edgeopt.registry import NotApplicable, Unavailable
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
# bytes per variable, per constraint and per nonzero of a Pyomo model and the solver's copy of it (peak RSS of
# build_model + HiGHS's set_instance on dagsched, qllms, partition, cdgs and batching models: 0.7-1.1x this)
MODEL_BYTES = (1024, 1024, 320)


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
    warm: bool = False,
) -> SolveReport:
    """Solve ``model`` and load the incumbent into it (when there is one).

    ``time_limit`` covers the whole call: for a persistent solver (HiGHS) the translation of the
    Pyomo model is timed first and the solver gets what is left. ``solver_options`` go to the solver
    after edgeopt's own (which keep its console log off). ``warm``: the variables' current values are
    a MIP start (HiGHS: the whole point; SCIP and others: the discrete variables, the solver completes it).
    """
    gap_target = DEFAULT_GAP if mip_gap is None else mip_gap
    start = time.perf_counter()
    if solver in _MODERN:
        report = _solve_modern(model, solver, time_limit, gap_target, threads, start, solver_options or {}, warm)
    else:
        report = _solve_classic(model, solver, time_limit, gap_target, warm)
    report.wall_s = time.perf_counter() - start
    return report


def _solve_modern(model, solver, time_limit, gap_target, threads, start, options, warm) -> SolveReport:
    from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition as TC

    opt = _modern(solver)
    kw = {"rel_gap": gap_target, "load_solutions": False, "raise_exception_on_nonoptimal_result": False,
          "solver_options": {**_QUIET.get(solver, {}), **options}}
    if threads is not None:
        kw["threads"] = int(threads)
    if solver == "highs":
        _highs_threads(0 if threads is None else int(threads))
    persistent = hasattr(opt, "set_instance")
    if persistent and (time_limit is not None or warm):  # translate now: its time counts against the limit
        opt.set_instance(model)
        if warm:
            _highs_start(opt)
    elif warm:
        kw["warmstart_discrete_vars"] = True
    if time_limit is not None:
        # re-checking the model for changes before the run costs about a tenth of the translation
        left = float(time_limit) - (time.perf_counter() - start) * (1.1 if persistent else 1.0)
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


_HIGHS_POOL: list[int] = []  # the thread count HiGHS's process-wide scheduler was started with, once it runs


def _highs_threads(threads: int) -> None:
    """Let this run use ``threads``: HiGHS starts one scheduler per process with the first run's thread count
    and refuses (status error, no run) a later run that asks for another, so the scheduler is restarted then."""
    if _HIGHS_POOL and _HIGHS_POOL[0] != threads:
        import highspy

        highspy.Highs.resetGlobalScheduler(True)
    _HIGHS_POOL[:] = [threads]


def _highs_start(opt) -> None:
    """Hand the model's variable values to the translated HiGHS model as its MIP start.

    Columns whose variable has no value are left out: HiGHS then completes the start (it fixes the
    integers given and solves the LP for the rest). A start that is infeasible for the model is discarded
    by HiGHS itself.
    """
    import numpy as np

    cols, vals = [], []
    for v_id, col in opt._pyomo_var_to_solver_var_map.items():
        value = opt._vars[v_id][0].value
        if value is not None:
            cols.append(col)
            vals.append(value)
    opt._solver_model.setSolution(len(cols), np.array(cols, dtype=np.int32), np.array(vals, dtype=np.float64))


def _solve_classic(model, solver, time_limit, gap_target, warm) -> SolveReport:
    from pyomo.opt import SolverFactory, TerminationCondition as TC

    check_solver(solver)
    opt = SolverFactory(solver)
    names = _CLASSIC_OPTIONS.get(solver)
    if names:
        if time_limit is not None:
            opt.options[names[0]] = time_limit
        opt.options[names[1]] = gap_target
    res = opt.solve(model, load_solutions=False, **({"warmstart": True} if warm and opt.warm_start_capable() else {}))
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


def check_model_size(counts: tuple[int, int, int]) -> None:
    """Raise TooLarge when a model of (variables, constraints, nonzeros) would not fit the memory cap."""
    variables, constraints, nonzeros = counts
    limits.check_memory(sum(b * n for b, n in zip(MODEL_BYTES, counts)),
                        f"the model ({variables:,} variables, {constraints:,} constraints, {nonzeros:,} nonzeros "
                        "at most)")


def exact_method(build_model: Callable, read_solution: Callable, default_solver: str = "highs", *,
                 warm_start: Callable | None = None, starts: tuple = (), model_size: Callable) -> Callable:
    """Turn ``build_model(instance)`` and ``read_solution(model, instance)`` into an exact method.

    ``warm_start(model, instance, solution)`` sets the model's variables to a solution (the inverse of
    ``read_solution``); ``starts`` are the problem's methods (names, or functions Instance -> Solution)
    whose best solution by the referee is the method's start by default (see ``choose_start``). The
    result is never worse than the start (``no_worse``). ``model_size(instance)`` bounds the model's
    (variables, constraints, nonzeros) from the instance's dimensions, cheaply: a model over the memory cap
    is refused before anything is built (``check_model_size``).
    """

    def run(instance, *, seed: int = 0, time_limit: float | None = None, solver: str = default_solver,
            mip_gap: MipGap | None = None, threads: Threads | None = None, start=AUTO) -> Outcome:
        began = time.perf_counter()
        check_model_size(model_size(instance))
        if solver in _MODERN:
            _modern(solver)  # a missing solver is reported before the model is built
        first = choose_start(instance, start, starts, seed=seed)
        model = build_model(instance)
        warm = False
        if first.solution is not None and warm_start is not None:
            try:
                warm_start(model, instance, first.solution)
                warm = True
            except (KeyError, IndexError, ValueError) as exc:  # a start the model cannot hold is only a lost hint
                first.note = f"not a MIP start: the model cannot hold it ({type(exc).__name__}: {exc})"
        left = None if time_limit is None else time_limit - (time.perf_counter() - began)
        if left is not None and left <= 0:  # the start and the model used the whole limit
            return no_worse(instance, Outcome(None, status="time_limit", solver=solver), first)
        rep = solve_model(model, solver=solver, time_limit=left, mip_gap=mip_gap, threads=threads, warm=warm)
        sol = read_solution(model, instance) if rep.has_solution else None
        out = Outcome(sol, claimed=rep.objective, status=rep.status, bound=rep.bound, gap=rep.gap, solver=rep.solver)
        return no_worse(instance, out, first)

    run.__doc__ = build_model.__doc__
    return run



def lp_relaxation(build_model: Callable, doc: str, default_solver: str = "highs", *,
                  model_size: Callable) -> Callable:
    """Turn ``build_model(instance)`` (a MILP) into a bound method: its LP relaxation, integrality dropped.

    Every 0/1 point of the MILP lies in the LP's feasible set, so the LP optimum bounds the MILP's (from below
    for minimization, from above for maximization). Only a proven LP optimum is reported: a simplex iterate cut
    short by the time limit proves nothing. ``doc`` is the method's docstring (why the bound is valid there).
    ``model_size`` as for ``exact_method``: a model over the memory cap is refused before it is built.
    """

    def run(instance, *, seed: int = 0, time_limit: float | None = None, solver: str = default_solver) -> Outcome:
        import pyomo.environ as pe

        start = time.perf_counter()
        check_model_size(model_size(instance))
        model = build_model(instance)
        pe.TransformationFactory("core.relax_integer_vars").apply_to(model)
        left = None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - start))
        rep = solve_model(model, solver=solver, time_limit=left)
        if rep.status != "optimal":
            return Outcome(None, status=rep.status, solver=rep.solver)
        return Outcome(None, status="bound", bound=rep.objective, solver=rep.solver)

    run.__doc__ = doc
    return run

# --- starts ---------------------------------------------------------------------------------------

AUTO = "auto"  # an exact method's default start: the best of its problem's start methods
NO_START = "none"  # the same as None, where None means "not given" (``solve()``, ``--option start=none``)


@dataclass
class Start:
    """The referee-checked start of an exact method (``solution`` None: it has none), and why."""

    source: str | None
    solution: Any = None
    evaluation: Any = None  # the referee's Evaluation of ``solution``
    note: str | None = None

    def extra(self, returned: bool) -> dict:
        """What ``Outcome.extra`` says about the start: its source and value, and whether it was returned."""
        value = None if self.evaluation is None else float(self.evaluation.objective)
        out = {"start": self.source, "start_objective": value}
        if self.solution is not None:
            out["start_returned"] = returned
        if self.note:
            out["start_note"] = self.note
        return out


def choose_start(instance, start, candidates: tuple = (), *, seed: int = 0) -> Start:
    """The start of an exact method on ``instance``.

    ``start`` is a Solution (or its JSON form), the name of one of the problem's methods, ``AUTO`` (the
    best by the referee of ``candidates``: method names or functions Instance -> Solution; a method that
    does not apply is skipped) or None / ``NO_START`` (no start). A start the referee finds infeasible is dropped with a
    note: it cannot be a MIP start, and no result need match it.
    """
    from edgeopt import io, registry

    prob = registry.problem(instance.problem)
    if start is None or start == NO_START:
        return Start(None)
    skipped = []
    if isinstance(start, str):
        names = candidates if start == AUTO else (prob.method(start).name,)
        sols = []
        for c in names:
            if callable(c):
                sols.append((c.__name__, c(instance)))
                continue
            m = prob.method(c)
            if m.not_applicable(instance) is None:
                try:
                    sols.append((m.name, m(instance, seed=seed).solution))
                except NotApplicable as exc:  # found out while running (no cloud to split to, a table over the cap)
                    skipped.append(f"{m.name} skipped: {exc}")
    else:
        sols = [("given", start if isinstance(start, prob.solution_type) else io.parse_solution(instance, start))]
    scored = [(name, sol, prob.evaluate(instance, sol)) for name, sol in sols if sol is not None]
    note = "; ".join(skipped) or None
    if not scored:
        return Start(None, note=note)
    sign = 1 if prob.sense == "min" else -1
    name, sol, ev = min(scored, key=lambda c: (not c[2].feasible,
                                                 sign * c[2].objective if c[2].objective is not None else math.inf))
    if not ev.feasible:
        why = ev.violations[0] if ev.violations else "no defined objective"
        return Start(name, note="; ".join([f"ignored: infeasible by the referee ({why})", *skipped]))
    return Start(name, sol, ev, note=note)


def no_worse(instance, out: Outcome, first: Start) -> Outcome:
    """``out``, with the start instead of an incumbent that is missing, infeasible or worse (by the referee).

    A time-limited exact run is never worse than its start; the status stays the solver's (a worse
    incumbent leaves a proof intact), except that an optimum the referee finds infeasible is not one.
    """
    from edgeopt import registry

    if first.solution is None or out.status not in ("optimal", "feasible", "time_limit"):
        out.extra.update(first.extra(False))
        return out
    prob = registry.problem(instance.problem)
    ev = first.evaluation
    mine = prob.evaluate(instance, out.solution) if out.solution is not None else None
    if mine is not None and mine.feasible and (mine.objective <= ev.objective if prob.sense == "min"
                                               else mine.objective >= ev.objective):
        out.extra.update(first.extra(False))
        return out
    status = "feasible" if out.status == "optimal" and mine is not None and not mine.feasible else out.status
    gap = None if out.bound is None else abs(ev.objective - out.bound) / max(abs(ev.objective), 1e-10)
    return Outcome(first.solution, claimed=ev.objective, status=status, bound=out.bound, gap=gap, solver=out.solver,
                   extra={**out.extra, **first.extra(True)})


def is_linear(model) -> bool:
    """Whether every active objective and constraint of ``model`` is linear (LP/MPS can hold it)."""
    from pyomo.environ import Constraint, Objective

    parts = [o.expr for o in model.component_data_objects(Objective, active=True)]
    parts += [c.body for c in model.component_data_objects(Constraint, active=True)]
    return all(getattr(e, "polynomial_degree", lambda: 0)() in (0, 1) for e in parts)


def write_model(model, path: str | os.PathLike, fmt: str) -> None:
    """Write ``model`` as LP, MPS, NL or GAMS, atomically, with readable variable names.

    The writer works in a temporary directory beside ``path`` (removed whatever happens). NL keeps its names in
    two companion files, which land beside the model under its stem (``OUT.row``, ``OUT.col``: AMPL's ``stub``).
    """
    if fmt not in FORMATS:
        raise InputError("--format", f"must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt in ("lp", "mps") and not is_linear(model):
        raise InputError("--format", f"{fmt} holds linear models only and this one is nonlinear: use --format nl or gms")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    umask = os.umask(0)
    os.umask(umask)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".edgeopt-export-") as tmp:
        stub = Path(tmp) / f"model.{fmt}"
        model.write(str(stub), io_options={"symbolic_solver_labels": True})  # format from the suffix
        for written in Path(tmp).iterdir():
            os.chmod(written, 0o666 & ~umask)
        for side in (".row", ".col"):
            if stub.with_suffix(side).exists():
                os.replace(stub.with_suffix(side), path.with_suffix(side))
        os.replace(stub, path)
