"""Generic solver back ends: they know models, not problems."""
from edgeopt.solvers.pyomo import (
    SolveReport,
    available_solvers,
    exact_method,
    solve_model,
    write_model,
)

__all__ = ["SolveReport", "available_solvers", "exact_method", "solve_model", "write_model"]
