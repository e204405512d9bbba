"""edgeopt: exact models, paper heuristics and baselines for edge, cloud and satellite offloading.

    from edgeopt import load, solve
    inst = load("instances/partition/llama2-7b-d5-latency.json")
    print(solve(inst, "milp").objective)

Importing edgeopt checks for no solver and prints nothing; it logs through the ``edgeopt`` logger.
The names below load on first use, so that ``edgeopt --help`` does not wait for NumPy or pydantic.
"""
from __future__ import annotations

import importlib

from edgeopt.errors import InputError

_LAZY = {"solve": "edgeopt.compare", "load": "edgeopt.io", "load_solution": "edgeopt.io", "save": "edgeopt.io",
         "problem": "edgeopt.registry", "problems": "edgeopt.registry", "simulate": "edgeopt.simulation"}


_SUBMODULES = {"compare", "errors", "io", "model", "registry", "report", "result", "run", "simulation", "workers"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"edgeopt.{name}")
    raise AttributeError(f"module 'edgeopt' has no attribute {name!r}")


def generate(problem_id: str, preset: str | None = None, size: int | None = None, seed: int = 0, **options):
    """An instance of ``problem_id`` from its generator (see ``problem(id).presets``)."""
    from edgeopt.registry import problem

    return problem(problem_id).generate(preset=preset, size=size, seed=seed, **options)


def evaluate(instance, solution):
    """The referee's Evaluation of ``solution`` (a Solution, or a dict in the solution-file layout)."""
    from edgeopt.io import parse_solution
    from edgeopt.registry import problem

    if isinstance(solution, dict):
        solution = parse_solution(instance, solution)
    return problem(instance.problem).evaluate(instance, solution)


__all__ = ["InputError", "evaluate", "generate", "load", "load_solution", "problem", "problems",
           "save", "solve"]
__version__ = "0.1.0"
