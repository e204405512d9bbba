"""Generic solver back ends: they know models, not problems."""
from edgeopt.solvers.pyomo import (
    AUTO,
    FORMATS,
    NO_START,
    SolveReport,
    Start,
    available_solvers,
    check_model_size,
    check_solver,
    choose_start,
    exact_method,
    lp_relaxation,
    no_worse,
    prove_bound,
    proven_start,
    round_bound,
    round_to_step,
    solve_model,
    write_model,
)

__all__ = ["AUTO", "FORMATS", "NO_START", "SolveReport", "Start", "available_solvers", "check_model_size", "check_solver",
           "choose_start", "exact_method", "lp_relaxation", "no_worse", "prove_bound", "proven_start",
           "round_bound", "round_to_step",
           "solve_model", "write_model"]
