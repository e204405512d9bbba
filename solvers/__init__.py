"""Generic solver back ends: they know models, not problems."""
from edgeopt.solvers.pyomo import (
    FORMATS,
    SolveReport,
    available_solvers,
    check_solver,
    exact_method,
    solve_model,
    write_model,
)

__all__ = ["FORMATS", "SolveReport", "available_solvers", "check_solver", "exact_method", "solve_model", "write_model"]
