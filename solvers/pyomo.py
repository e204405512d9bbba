"""Solve a Pyomo model with a named solver and report what was proven.

HiGHS (``highspy``) is the default MILP solver and SCIP (``pyscipopt``) the default MINLP solver; both
go through Pyomo's solver interface that reports the incumbent and the best bound. Any other name is
handed to Pyomo's classic ``SolverFactory`` (cbc, glpk, cplex, gurobi ...).
"""
from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeopt import anytime, limits
from edgeopt.limits import MipGap, Threads
from edgeopt.model import InputError
from edgeopt.registry import NotApplicable, Unavailable
from edgeopt.result import Outcome

# solver name -> (name in pyomo.contrib.solver's factory, what to install); persistent interfaces where Pyomo
# has them: the model is translated before the solve (its time counts) and the hooks reach the solver's model
_MODERN = {
    "highs": ("highs", "pip install highspy"),
    "scip": ("scip_persistent", "pip install pyscipopt"),
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
# Tests set this to make solvers run past their time limits, so that the parent's backstop has to stop them
IGNORE_LIMITS = "EDGEOPT_TEST_SOLVERS_IGNORE_LIMITS"


def solver_limit(seconds: float | None) -> float | None:
    """The time limit handed to a solver: ``seconds``, or none at all when the tests force the backstop."""
    return None if os.environ.get(IGNORE_LIMITS) else seconds


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
    on_solution: Callable[[], Any] | None = None,
) -> SolveReport:
    """Solve ``model`` and load the incumbent into it (when there is one).

    ``time_limit`` covers the whole call: for a persistent solver (HiGHS, SCIP) the translation of the
    Pyomo model is timed first and the solver gets what is left. ``solver_options`` go to the solver
    after edgeopt's own (which keep its console log off). ``warm``: the variables' current values are
    a MIP start (HiGHS: the whole point; SCIP and others: the discrete variables, the solver completes it).

    Anytime (HiGHS and SCIP; see ``edgeopt.anytime``): the solver's bound is reported as it improves, each
    new incumbent is loaded into the model's variables and ``on_solution()`` makes what is reported of it
    (the problem's Solution), and a stop request interrupts the solve, which then reports ``time_limit``.
    """
    gap_target = DEFAULT_GAP if mip_gap is None else mip_gap
    start = time.perf_counter()
    if solver in _MODERN:
        report = _solve_modern(model, solver, time_limit, gap_target, threads, start, solver_options or {}, warm,
                               on_solution)
    else:
        report = _solve_classic(model, solver, time_limit, gap_target, warm)
    report.wall_s = time.perf_counter() - start
    return report


def _solve_modern(model, solver, time_limit, gap_target, threads, start, options, warm, on_solution) -> SolveReport:
    from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition as TC

    opt = _modern(solver)
    kw = {"rel_gap": gap_target, "load_solutions": False, "raise_exception_on_nonoptimal_result": False,
          "solver_options": {**_QUIET.get(solver, {}), **options}}
    if threads is not None:
        kw["threads"] = int(threads)
    if solver == "highs":
        _highs_threads(0 if threads is None else int(threads))
    persistent, hook = hasattr(opt, "set_instance"), None
    if persistent:  # translate now: its time counts against the limit, and the hooks need the solver's model
        opt.set_instance(model)
        if warm and solver == "highs":
            _highs_start(opt)
        if solver in _HOOKS:
            hook = _HOOKS[solver](opt, on_solution)
    if warm and not (persistent and solver == "highs"):
        kw["warmstart_discrete_vars"] = True
    if time_limit is not None:
        # re-checking the model for changes before the run costs about a tenth of the translation
        left = float(time_limit) - (time.perf_counter() - start) * (1.1 if persistent else 1.0)
        if left <= 0 or anytime.stop_requested():
            return SolveReport("time_limit", None, None, None, 0.0, solver, False)
        kw["time_limit"] = solver_limit(left)
    res = opt.solve(model, **kw)
    if hook is not None:
        hook.check()
    has = res.solution_status in (SolutionStatus.feasible, SolutionStatus.optimal)
    if has:
        res.solution_loader.load_vars()
    tc = res.termination_condition
    if tc == TC.convergenceCriteriaSatisfied:
        status = "optimal"
    elif tc in (TC.provenInfeasible, TC.locallyInfeasible, TC.infeasibleOrUnbounded):
        status = "infeasible"
    elif tc in (TC.maxTimeLimit, TC.interrupted) or anytime.stop_requested():  # stopped on request: the limit's backstop
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


class _Hook:
    """What a solver's callbacks share: new incumbents loaded into the model (``load(values)``), made into
    the problem's Solution (``on_solution()``) and reported at most one per ``anytime.THROTTLE_S`` (building a
    Solution can cost more than the solver takes to find the next; ``flush()`` from a frequent callback sends
    the one held back), the bound reported as it moves, and any exception raised in a callback (a bug, or a
    signal's Interrupted) kept to be raised after the solve instead of vanishing into the solver's C code."""

    def __init__(self, load: Callable[[Any], None], on_solution: Callable[[], Any] | None):
        self.load, self.on_solution = load, on_solution
        self.pending, self.built, self.bound, self.raised = None, -math.inf, None, None

    def found(self, values, objective: float) -> None:
        if self.on_solution is not None:
            self.pending = (values, float(objective))
            self.flush()

    def flush(self) -> None:
        if self.pending is None or time.monotonic() - self.built < anytime.THROTTLE_S:
            return
        (values, objective), self.pending, self.built = self.pending, None, time.monotonic()
        self.load(values)
        anytime.report(self.on_solution(), claimed=objective)

    def proved(self, bound: float) -> None:
        if math.isfinite(bound) and abs(bound) < 1e20 and bound != self.bound:  # 1e20: SCIP's infinity
            self.bound = float(bound)
            anytime.report(bound=self.bound)

    def stop(self) -> bool:
        return self.raised is not None or anytime.stop_requested()

    def guard(self, fn: Callable) -> Callable:
        def call(*args) -> None:
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 (kept, and raised once the solver has returned)
                self.raised = self.raised or exc
        return call

    def check(self) -> None:
        if self.raised is not None:
            raise self.raised


def _stopped_on_request(record: logging.LogRecord) -> bool:
    """Pyomo's warning that HiGHS ended interrupted (which only a stop request does) is not for the user."""
    return "kInterrupt" not in record.getMessage()


def _highs_hooks(opt, on_solution) -> _Hook:
    """HiGHS callbacks on Pyomo's persistent model: improving MIP solutions (in the original columns) and the
    dual bound are reported; the interrupt callbacks (MIP, simplex, IPM) stop the solve on request."""
    import numpy as np
    from highspy import cb

    logging.getLogger("pyomo.contrib.solver.solvers.highs").addFilter(_stopped_on_request)
    h = opt._solver_model
    pairs = [(opt._vars[v_id][0], col) for v_id, col in opt._pyomo_var_to_solver_var_map.items()]

    def load(values) -> None:
        for var, col in pairs:
            var.set_value(float(values[col]), skip_validation=True)

    hook = _Hook(load, on_solution)

    def improving(e) -> None:
        hook.found(np.array(e.data_out.mip_solution), e.data_out.objective_function_value)

    def interrupt(e) -> None:
        if e.callback_type == cb.HighsCallbackType.kCallbackMipInterrupt:
            hook.proved(e.data_out.mip_dual_bound)
            hook.flush()
        if hook.stop():
            e.interrupt()

    h.cbMipImprovingSolution.subscribe(hook.guard(improving))
    for event in (h.cbMipInterrupt, h.cbSimplexInterrupt, h.cbIpmInterrupt):
        event.subscribe(hook.guard(interrupt))
    return hook


def _scip_hooks(opt, on_solution) -> _Hook:
    """A SCIP event handler on Pyomo's persistent model: each best solution found and the dual bound (at
    every solved node) are reported; a stop request interrupts the solve."""
    from pyscipopt import SCIP_EVENTTYPE, Eventhdlr

    pairs = list(opt._pyomo_var_to_solver_var_map.items())  # Pyomo variable -> SCIP variable
    events = (SCIP_EVENTTYPE.BESTSOLFOUND, SCIP_EVENTTYPE.NODESOLVED)

    def load(values) -> None:
        for (var, _), value in zip(pairs, values):
            var.set_value(value, skip_validation=True)

    hook = _Hook(load, on_solution)

    def event(scip, kind) -> None:
        if kind == SCIP_EVENTTYPE.BESTSOLFOUND:
            sol = scip.getBestSol()
            hook.found([scip.getSolVal(sol, v) for _, v in pairs], scip.getSolObjVal(sol))
        hook.proved(scip.getDualbound())
        hook.flush()
        if hook.stop():
            scip.interruptSolve()

    guarded = hook.guard(event)

    class Handler(Eventhdlr):
        def eventinit(self):
            for kind in events:
                self.model.catchEvent(kind, self)

        def eventexit(self):
            for kind in events:
                self.model.dropEvent(kind, self)

        def eventexec(self, e):
            guarded(self.model, e.getType())

    opt._solver_model.includeEventhdlr(Handler(), "edgeopt-anytime", "reports incumbents and bounds, stops on request")
    return hook


_HOOKS = {"highs": _highs_hooks, "scip": _scip_hooks}


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
                 warm_start: Callable | None = None, starts: tuple = (), model_size: Callable,
                 bounds: tuple = (), objective_step: Callable | None = None, bound_row: bool = False) -> Callable:
    """Turn ``build_model(instance)`` and ``read_solution(model, instance)`` into an exact method.

    ``warm_start(model, instance, solution)`` sets the model's variables to a solution (the inverse of
    ``read_solution``); ``starts`` are the problem's methods (names, or functions Instance -> Solution)
    whose best solution by the referee is the method's start by default (see ``choose_start``); ``bounds``
    are fast bound methods of the problem whose tightest bound is proved first (``prove_bound``). The result
    is never worse than the start, and its bound never looser than theirs (``no_worse``). ``model_size(instance)``
    bounds the model's (variables, constraints, nonzeros) from the instance's dimensions, cheaply: a model over
    the memory cap is refused before anything is built (``check_model_size``). ``solver_options`` go to the
    solver by its own names (e.g. HiGHS's ``mip_max_nodes``: a limit that does not depend on the machine's speed).

    Cheap proofs first: a start that meets the proved bound is returned as ``optimal`` before any model is built
    (``proven_start``). ``objective_step(instance)``: the step every feasible objective is a multiple of (or None),
    by which the solver's bound is rounded (``round_bound``). ``bound_row``: the model's objective is the referee's,
    so the proved bound is added to it as a row (the solver's relaxation starts there, and its search ends as soon
    as an incumbent meets it).
    """

    def run(instance, *, seed: int = 0, time_limit: float | None = None, solver: str = default_solver,
            mip_gap: MipGap | None = None, threads: Threads | None = None, start=AUTO,
            solver_options: dict | None = None) -> Outcome:
        began = time.perf_counter()
        check_model_size(model_size(instance))
        if solver in _MODERN:
            _modern(solver)  # a missing solver is reported before the model is built
        first = choose_start(instance, start, starts, seed=seed)
        if first.solution is not None:  # what a run stopped before the solver finds anything answers with
            anytime.report(first.solution, claimed=float(first.evaluation.objective))
        prove_bound(instance, first, bounds, None if time_limit is None else time_limit - (time.perf_counter() - began))
        step = objective_step(instance) if objective_step else None
        done = proven_start(instance, first, mip_gap)
        if done is not None:
            return done
        model = build_model(instance)
        if bound_row and first.bound is not None:
            add_bound_row(model, registry_sense(instance), first.bound)
        warm = False
        if first.solution is not None and warm_start is not None:
            try:
                warm_start(model, instance, first.solution)
                warm = True
            except (KeyError, IndexError, ValueError) as exc:  # a start the model cannot hold is only a lost hint
                first.note = f"not a MIP start: the model cannot hold it ({type(exc).__name__}: {exc})"
        left = None if time_limit is None else time_limit - (time.perf_counter() - began)
        if (left is not None and left <= 0) or anytime.stop_requested():  # the start and the model used the limit
            return no_worse(instance, Outcome(None, status="time_limit", solver=solver), first)
        rep = solve_model(model, solver=solver, time_limit=left, mip_gap=mip_gap, threads=threads, warm=warm,
                          solver_options=solver_options, on_solution=lambda: read_solution(model, instance))
        sol = read_solution(model, instance) if rep.has_solution else None
        out = Outcome(sol, claimed=rep.objective, status=rep.status, bound=rep.bound, gap=rep.gap, solver=rep.solver)
        return round_bound(instance, no_worse(instance, out, first), step, mip_gap)

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
    bound: float | None = None  # proved by a fast bound method before the solver runs (``prove_bound``) ...
    bound_from: str | None = None  # ... this one

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
        with anytime.muted():  # a candidate's own reports are not the exact method's
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


def prove_bound(instance, first: Start, names: tuple, time_limit: float | None) -> None:
    """Give ``first`` the tightest bound of the problem's bound methods ``names`` (each within ``time_limit``),
    and report it at once: a run cut short before its solver proves anything still answers with it."""
    from edgeopt import registry

    prob = registry.problem(instance.problem)
    with anytime.muted():  # a bound method's own reports: the one that counts is reported below
        for name in names:
            m = prob.method(name)
            out = m(instance, time_limit=time_limit) if m.not_applicable(instance) is None else None
            if out is not None and out.status == "bound" and _tighter(prob.sense, out.bound, first.bound):
                first.bound, first.bound_from = out.bound, name
    if first.bound is not None:
        anytime.report(bound=first.bound)


def registry_sense(instance) -> str:
    """"min" or "max": the sense of ``instance``'s problem."""
    from edgeopt import registry

    return registry.problem(instance.problem).sense


def proven_start(instance, first: Start, mip_gap: float | None = None) -> Outcome | None:
    """The start as ``optimal`` when it meets the bound ``prove_bound`` gave it (relative gap within ``mip_gap``,
    default ``DEFAULT_GAP``, the solvers' own rule for optimal), else None: no model needs building or solving."""
    if first.solution is None or first.bound is None:
        return None
    value = float(first.evaluation.objective)
    gap = _gap(value, first.bound)  # a bound past the start by more than the gap target is refused here too
    if gap is None or gap > (DEFAULT_GAP if mip_gap is None else mip_gap):
        return None
    return Outcome(first.solution, claimed=value, status="optimal", bound=first.bound, gap=gap, solver=first.bound_from,
                   extra={**first.extra(True), "bound_from": first.bound_from, "proof": "start meets bound"})


def add_bound_row(model, sense: str, bound: float) -> None:
    """Add ``objective >= bound`` ("min"; ``<=`` for "max") to a Pyomo model whose objective is the problem's, less
    a relative 1e-9 so that floating point never cuts off a solution the bound allows."""
    import pyomo.environ as pe

    (obj,) = model.component_data_objects(pe.Objective, active=True)
    slack = 1e-9 * max(1.0, abs(bound))
    model.proved_bound = pe.Constraint(expr=obj.expr >= bound - slack if sense == "min" else obj.expr <= bound + slack)


def round_to_step(bound: float, step: float | None, sense: str) -> float:
    """A bound raised ("min"; lowered for "max") to the next multiple of ``step`` (None: unchanged), when every
    feasible objective is such a multiple. A relative 1e-9 absorbs floating point: a sum of whole numbers that came
    out 1e-13 above one is not rounded up past it."""
    if step is None:
        return bound
    scaled = bound / step
    tol = 1e-9 * max(1.0, abs(scaled))
    return step * (math.ceil(scaled - tol) if sense == "min" else math.floor(scaled + tol))


def round_bound(instance, out: Outcome, step: float | None, mip_gap: float | None = None) -> Outcome:
    """``out`` with its bound rounded to the next multiple of ``step`` toward the optimum (every feasible objective
    is such a multiple), its gap recomputed, and ``optimal`` if the rounded bound meets the incumbent."""
    if step is None or out.bound is None or out.status not in ("optimal", "feasible", "time_limit"):
        return out
    rounded = round_to_step(out.bound, step, registry_sense(instance))
    if rounded == out.bound:
        return out
    out.bound, out.extra["bound_rounded_from"] = rounded, out.bound
    if out.claimed is not None:
        out.gap = _gap(out.claimed, rounded)
        if out.gap is not None and out.gap <= (DEFAULT_GAP if mip_gap is None else mip_gap) and out.solution is not None:
            out.status = "optimal"
    return out


def _tighter(sense: str, bound: float | None, than: float | None) -> bool:
    """Whether ``bound`` is a tighter bound on the optimum than ``than`` (lower bounds for "min")."""
    return bound is not None and (than is None or (bound > than if sense == "min" else bound < than))


def no_worse(instance, out: Outcome, first: Start) -> Outcome:
    """``out``, with the start instead of an incumbent that is missing, infeasible or worse (by the referee),
    and the start's bound (``prove_bound``) instead of a looser or missing one.

    A time-limited exact run is never worse than its start; the status stays the solver's (a worse
    incumbent leaves a proof intact), except that an optimum the referee finds infeasible is not one.
    """
    from edgeopt import registry

    if out.status not in ("optimal", "feasible", "time_limit"):
        out.extra.update(first.extra(False))
        return out
    prob = registry.problem(instance.problem)
    if _tighter(prob.sense, first.bound, out.bound):
        out.bound, out.extra["bound_from"] = first.bound, first.bound_from
        out.gap = None if out.claimed is None else abs(out.claimed - out.bound) / max(abs(out.claimed), 1e-10)
    if first.solution is None:
        out.extra.update(first.extra(False))
        return out
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
