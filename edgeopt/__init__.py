"""edgeopt: exact models, paper heuristics and baselines for edge, cloud and satellite offloading.

    from edgeopt import load, solve
    inst = load("instances/partition/llama2-7b-d5-latency.json")
    print(solve(inst, "milp").objective)

Importing edgeopt checks for no solver and prints nothing; it logs through the ``edgeopt`` logger.
"""
from edgeopt.compare import solve
from edgeopt.io import load, load_solution, save
from edgeopt.model import InputError
from edgeopt.registry import problem, problems


def generate(problem_id: str, preset: str | None = None, size: int | None = None, seed: int = 0, **options):
    """An instance of ``problem_id`` from its generator (see ``problem(id).presets``)."""
    return problem(problem_id).generate(preset=preset, size=size, seed=seed, **options)


def evaluate(instance, solution):
    """The referee's Evaluation of ``solution`` (a Solution, or a dict in the solution-file layout)."""
    from edgeopt.io import parse_solution

    if isinstance(solution, dict):
        solution = parse_solution(instance, solution)
    return problem(instance.problem).evaluate(instance, solution)


__all__ = ["InputError", "evaluate", "generate", "load", "load_solution", "problem", "problems",
           "save", "solve"]
__version__ = "0.1.0"
