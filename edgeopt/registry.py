"""Problem id -> Problem, method name -> Method, importer name -> Importer.

A problem is three files with the same name: ``edgeopt/problems/<id>.py`` (types, referee,
generator), ``formulations/<id>.py`` (exact model) and ``heuristics/<id>.py`` (paper heuristic and
baselines). The last two register their methods with the ``method`` decorator; the registry finds
every problem module on first use, so adding a problem touches no file here.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import logging
import pkgutil
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

from edgeopt import anytime
from edgeopt.model import InputError
from edgeopt.result import Outcome, Result

log = logging.getLogger("edgeopt")

# A bound method returns Outcome(None, status="bound", bound=...): a proven bound on the optimum, no solution.
KINDS = ("exact", "heuristic", "baseline", "bound")


class NotApplicable(Exception):
    """A method that does not apply to this instance (reported as status ``error`` with the reason)."""


class Unavailable(InputError):
    """A solver a method needs is not installed: a row with status ``unavailable`` and the install hint.

    Raised for a solver the user named (``--solver``) it stays an input error (exit 2).
    """


@dataclass(frozen=True)
class Method:
    problem: str
    name: str
    kind: str
    fn: Callable
    applies: Callable[[Any], str | None] | None = None  # returns the reason it does not apply

    @property
    def doc(self) -> str:
        return (inspect.getdoc(self.fn) or "").split("\n")[0]

    def takes(self, option: str) -> bool:
        """Whether the method accepts keyword ``option``."""
        params = inspect.signature(self.fn).parameters
        return option in params or any(p.kind is p.VAR_KEYWORD for p in params.values())

    def not_applicable(self, instance) -> str | None:
        return self.applies(instance) if self.applies else None

    def __call__(self, instance, **options) -> Outcome:
        """The plain method: ``edgeopt.problem(id).method(name)(instance, seed=0)`` -> Outcome, no referee."""
        return self.fn(instance, **options)

    def run(self, instance, *, seed: int = 0, time_limit: float | None = None, **options) -> Result:
        """Run on ``instance`` and have the referee evaluate what comes back."""
        unknown = [k for k in options if not self.takes(k)]
        if unknown:
            raise InputError(f"--{unknown[0].replace('_', '-')}", f"is not an option of method {self.name!r}")
        start = time.perf_counter()
        message = None
        with anytime.scope(sense=problem(self.problem).sense):  # what it reports as it improves (edgeopt.anytime)
            try:
                reason = self.not_applicable(instance)
                if reason:
                    raise NotApplicable(reason)
                out = self.fn(instance, seed=seed, time_limit=time_limit, **options)
            except Unavailable as exc:
                if "solver" in options:
                    raise
                out, message = Outcome(None, status="unavailable"), f"{exc.rule}"
            except InputError:
                raise
            except Exception as exc:  # a failing method is a row in the table, not a crash of the run
                if not isinstance(exc, NotApplicable):
                    log.exception("method %s failed on %s", self.name, instance.name)
                out, message = Outcome(None, status="error"), f"{type(exc).__name__}: {exc}"
        return self.judge(instance, out, time.perf_counter() - start, seed, message)

    def judge(self, instance, out: Outcome, wall_s: float, seed: int = 0, message: str | None = None) -> Result:
        """The Result of ``out``: the referee's verdict on its solution beside the method's status and bound
        (also what a worker's parent makes of the last report of a run it had to stop)."""
        prob = problem(self.problem)
        if out.solution is not None:
            ev = prob.evaluate(instance, out.solution)
            objective, feasible, violations, details = ev.objective, ev.feasible, ev.violations, ev.details
        else:
            objective, feasible, violations, details = None, False, [], {}
        status = out.status or ("feasible" if feasible else "infeasible")
        if status == "optimal" and not feasible:
            message = message or "solver reported optimal but the referee found violations"
        return Result(
            problem=self.problem,
            instance=instance.name,
            method=self.name,
            kind=self.kind,
            status=status,
            objective=objective,
            feasible=feasible,
            violations=violations,
            bound=out.bound,
            gap=out.gap,
            wall_s=round(wall_s, 6),
            seed=seed,
            solution=out.solution.model_dump(mode="json") if out.solution is not None else None,
            claimed=out.claimed,
            solver=out.solver,
            details={**details, **out.extra},
            message=message,
        )


@dataclass
class Problem:
    """Everything edgeopt knows about one problem id.

    The problem module loads on first use and its methods (formulations, heuristics) on first access
    to ``methods``: validating a file imports neither Pyomo nor the heuristics.
    """

    id: str

    @functools.cached_property
    def module(self) -> ModuleType:
        return importlib.import_module(f"edgeopt.problems.{self.id}")

    @property
    def methods(self) -> dict[str, Method]:
        if self.id not in _METHODS_LOADED:
            _METHODS_LOADED.add(self.id)
            for pkg in ("formulations", "heuristics"):
                try:
                    importlib.import_module(f"edgeopt.{pkg}.{self.id}")
                except ModuleNotFoundError as exc:
                    if exc.name != f"edgeopt.{pkg}.{self.id}":
                        raise
        return _METHODS.setdefault(self.id, {})

    @property
    def instance_type(self):
        return self.module.Instance

    @property
    def solution_type(self):
        return self.module.Solution

    @property
    def sense(self) -> str:
        return self.module.SENSE

    @property
    def presets(self) -> dict[str, str]:
        return self.module.PRESETS

    def evaluate(self, instance, solution):
        return self.module.evaluate(instance, solution)

    def generate(self, preset: str | None = None, size: int | None = None, seed: int = 0, **options):
        preset = preset or next(iter(self.presets))
        if preset not in self.presets:
            raise InputError("--preset", f"must be one of {', '.join(self.presets)} for {self.id}, got {preset!r}")
        from pydantic import ConfigDict, ValidationError, validate_call

        from edgeopt.model import validation_error

        checked = validate_call(self.module.generate, config=ConfigDict(allow_inf_nan=False))
        try:  # option values are checked against the generator's annotations before it runs
            return checked(preset=preset, size=size, seed=seed, **options)
        except ValidationError as exc:
            if exc.title == self.module.generate.__name__:  # an argument of the generator
                err = validation_error(exc)
                name = err.path.split(".")[0].split("[")[0]
                flag = f"--{name}" if name in ("size", "seed", "preset") else f"--option {name}"
                rule = err.rule.replace("is not a known field", f"is not an option of the {self.id} generator")
                raise InputError(flag, rule) from None
            raise validation_error(exc, "generated data") from None  # an option that makes a field leave its range

    def formulation(self) -> ModuleType | None:
        """The problem's formulations module (``build_model`` for export), or None."""
        try:
            return importlib.import_module(f"edgeopt.formulations.{self.id}")
        except ModuleNotFoundError:
            return None

    def method(self, name: str) -> Method:
        if name not in self.methods:
            raise InputError("--method", f"must be one of {', '.join(self.methods)} for {self.id}, got {name!r}")
        return self.methods[name]

    def select(self, names: list[str] | None, instance=None) -> list[Method]:
        """Methods by name; ``exact``, ``heuristic``, ``baseline`` and ``bound`` select by kind, ``all`` every
        method that returns a solution; no names: ``all`` and ``bound`` (so gaps can be certified).

        With an ``instance``, methods selected by kind that do not apply to it are left out (a
        method asked for by name stays, and reports why it does not apply).
        """
        chosen: list[Method] = []
        for name in names or ["all", "bound"]:
            if name in KINDS or name == "all":
                chosen += [m for m in self.methods.values() if (name == m.kind or (name == "all" and m.kind != "bound"))
                           and not (instance is not None and m.not_applicable(instance))]
            else:
                chosen.append(self.method(name))
        return list(dict.fromkeys(chosen))


@dataclass(frozen=True)
class Importer:
    name: str
    problem: str
    fn: Callable  # (path, **options) -> Instance

    @property
    def doc(self) -> str:
        return (inspect.getdoc(self.fn) or "").split("\n")[0]


_METHODS: dict[str, dict[str, Method]] = {}  # problem id -> method name -> Method, filled by @method
_METHODS_LOADED: set[str] = set()
_IMPORTERS: dict[str, Importer] = {}
_PROBLEMS: dict[str, Problem] = {}


def method(problem_id: str, name: str, kind: str, applies: Callable | None = None) -> Callable:
    """Decorator registering ``fn(instance, *, seed, time_limit, **options)`` as a method.

    ``fn`` may return a Solution or an Outcome; the decorated function always returns an Outcome,
    so every method has one return type. ``applies(instance)`` may return a reason why the method
    does not apply to an instance.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")

    def register(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def plain(instance, **options) -> Outcome:
            out = fn(instance, **options)
            return out if isinstance(out, Outcome) else Outcome(out)

        _METHODS.setdefault(problem_id, {})[name] = Method(problem_id, name, kind, plain, applies)
        return plain

    return register


def importer(name: str, problem_id: str) -> Callable:
    """Decorator registering ``fn(path, **options) -> Instance`` for ``edgeopt import <name>``."""

    def register(fn: Callable) -> Callable:
        _IMPORTERS[name] = Importer(name, problem_id, fn)
        return fn

    return register


def _discover() -> None:
    """Problem ids are the modules of ``edgeopt.problems``; nothing is imported until it is used."""
    if _PROBLEMS:
        return
    import edgeopt.problems

    for info in sorted(pkgutil.iter_modules(edgeopt.problems.__path__), key=lambda i: i.name):
        _PROBLEMS[info.name] = Problem(info.name)


def problems() -> dict[str, Problem]:
    _discover()
    return dict(_PROBLEMS)


def problem(problem_id: str) -> Problem:
    _discover()
    if problem_id not in _PROBLEMS:
        raise InputError("problem", f"must be one of {', '.join(_PROBLEMS)}, got {problem_id!r}")
    return _PROBLEMS[problem_id]


def importers() -> dict[str, Importer]:
    """Importers register in their problem's module: every problem module is loaded to find them."""
    for p in problems().values():
        p.module
    return dict(_IMPORTERS)
