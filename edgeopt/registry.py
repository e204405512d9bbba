"""Problem id -> Problem, method name -> Method, importer name -> Importer.

A problem is three files with the same name: ``edgeopt/problems/<id>.py`` (types, referee,
generator; a package ``problems/<id>/`` where one file would be too long), ``formulations/<id>.py``
(exact model) and ``heuristics/<id>.py`` (paper heuristic and baselines), and optionally
``edgeopt/learn/<id>.py`` (learned methods: trained policies, NumPy only). These register their methods with
the ``method`` decorator. A problem may also have a system over time (``edgeopt/systems/<id>.py``); readers of
outside formats are the modules of ``edgeopt/importers/``. The registry finds all of them by module name on
first use, so adding one touches no file here.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import logging
import pkgutil
import re
import time
import typing
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

from edgeopt import anytime, limits
from edgeopt.errors import NotApplicable, TooLarge, cut
from edgeopt.model import InputError, shown
from edgeopt.result import Outcome, Result

log = logging.getLogger("edgeopt")

# A bound method returns Outcome(None, status="bound", bound=...): a proven bound on the optimum, no solution.
# A learned method runs a trained policy file (``edgeopt train``) with NumPy.
KINDS = ("exact", "heuristic", "baseline", "bound", "learned")
RESERVED = ("seed", "time_limit")  # keywords every method takes from the run itself, never as a method option


class Unavailable(InputError):
    """A solver a method needs is not installed: a row with status ``unavailable`` and the install hint.

    Raised for a solver the user named (``--solver``) it stays an input error (exit 2).
    """


_ROLE = re.compile(r":[a-z]+:`([^`]*)`")  # :math:`x`, :func:`f` -> x, f
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`\"'])")


def plain(doc: str | None) -> str:
    """A docstring without reST inline markup: ``code`` and `text` and :role:`x` become their text."""
    text = _ROLE.sub(r"\1", doc or "")
    return text.replace("``", "").replace("`", "")


def summary(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph, on one line, without markup."""
    first = " ".join(plain(doc).split("\n\n")[0].split())
    return _SENTENCE_END.split(first, maxsplit=1)[0]


@dataclass(frozen=True)
class Method:
    problem: str
    name: str
    kind: str
    fn: Callable
    applies: Callable[[Any], str | None] | None = None  # returns the reason it does not apply

    @property
    def doc(self) -> str:
        """The docstring's first sentence, markup removed: one line for the ``edgeopt list`` table."""
        return summary(inspect.getdoc(self.fn))

    @property
    def description(self) -> str:
        """The whole docstring, markup removed (``edgeopt list --json``)."""
        return plain(inspect.getdoc(self.fn))

    def takes(self, option: str) -> bool:
        """Whether the method accepts keyword ``option``."""
        params = inspect.signature(self.fn).parameters
        return option in params or any(p.kind is p.VAR_KEYWORD for p in params.values())

    def check_options(self, options: dict, where: Callable[[str], str] | None = None) -> dict:
        """``options`` checked against the annotations of the method's keywords, before anything runs.

        One rule for every option, as for generator options: values are checked strictly (pydantic strict
        mode), so an option typed as a number refuses true/false, a true/false option refuses 1 and "yes", and
        an integer option refuses 2.5; a ``Literal`` lists the allowed values and ``Field`` bounds a range.
        ``seed`` and ``time_limit`` come from the run, never as options. Raises InputError at ``where(key)``
        (default: the command-line flag, ``option_flag``); returns the checked values.
        """
        where = where or option_flag
        for key in options:
            if key in RESERVED:
                raise InputError(where(key), "is set by the run (--seed and --time-limit; an experiment's seeds and "
                                             "time_limit), not as a method option")
            if not self.takes(key):
                raise InputError(where(key), f"is not an option of method {self.name!r}")
        return check_values(inspect.unwrap(self.fn), options, where)

    def not_applicable(self, instance, options: dict | None = None) -> str | None:
        """Why the method does not apply to ``instance`` (None: it does). An ``applies`` that takes keywords also
        sees the run's options (a learned method's ``policy=PATH`` stands in for its shipped policy)."""
        if not self.applies:
            return None
        if any(p.kind is p.VAR_KEYWORD for p in inspect.signature(self.applies).parameters.values()):
            return self.applies(instance, **(options or {}))
        return self.applies(instance)

    def __call__(self, instance, **options) -> Outcome:
        """The plain method: ``edgeopt.problem(id).method(name)(instance, seed=0)`` -> Outcome, no referee."""
        return self.fn(instance, **options)

    def run(self, instance, *, seed: int = 0, time_limit: float | None = None, **options) -> Result:
        """Run on ``instance`` and have the referee evaluate what comes back."""
        options = self.check_options(options)
        start = time.perf_counter()
        message = None
        with anytime.scope(sense=problem(self.problem).sense):  # what it reports as it improves (edgeopt.anytime)
            try:
                reason = self.not_applicable(instance, options)
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
                out, message = Outcome(None, status="error"), cut(f"{type(exc).__name__}: {exc}", 2000)
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


def option_flag(key: str) -> str:
    """Where a method option comes from on the command line: its own flag, or ``--option KEY``."""
    return {"solver": "--solver", "mip_gap": "--mip-gap", "threads": "--threads"}.get(key, f"--option {key}")


def check_values(owner: Callable, options: dict, where: Callable[[str], str]) -> dict:
    """``options`` checked against the annotations of ``owner``'s keywords (a function, or a dataclass's fields)
    by the rule of method options (strict pydantic; None and keys without an annotation pass as given); raises
    InputError at ``where(key)``, returns the checked values."""
    from pydantic import ValidationError

    from edgeopt.model import validation_error

    adapters = _option_types(owner)
    out = {}
    for key, value in options.items():
        try:
            out[key] = value if value is None or key not in adapters else adapters[key].validate_python(value)
        except ValidationError as exc:
            raise InputError(where(key), validation_error(exc, given=True).rule) from None
    return out


@functools.cache
def _option_types(fn: Callable) -> dict[str, Any]:
    """A strict pydantic TypeAdapter per annotated keyword of ``fn`` (built once per method)."""
    from pydantic import ConfigDict, TypeAdapter

    config = ConfigDict(strict=True, allow_inf_nan=False, arbitrary_types_allowed=True)
    hints = typing.get_type_hints(fn, include_extras=True)
    return {k: TypeAdapter(t, config=config) for k, t in hints.items() if k not in ("return", "instance", *RESERVED)}


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
            for pkg in ("formulations", "heuristics", "learn"):
                _import_if_present(f"edgeopt.{pkg}.{self.id}")
        return _METHODS.setdefault(self.id, {})

    @functools.cached_property
    def system(self) -> ModuleType | None:
        """The problem's system over time (``edgeopt/systems/<id>.py``, with its ``Simulation``), or None."""
        return _import_if_present(f"edgeopt.systems.{self.id}")

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

    def arguments(self, preset: str | None = None, size: int | None = None, seed: int = 0, **options) -> dict:
        """The generator's arguments, checked before anything is generated (InputError naming the flag).

        Values are checked against the generator's annotations by the rule of ``Method.check_options``
        (pydantic, strict), the seed is in 0 <= s < 2^63, and the instance must fit the memory cap: each problem
        module's ``instance_bytes(**arguments)`` estimates what generating and writing it takes.
        """
        preset = preset or next(iter(self.presets))
        if not isinstance(preset, str) or preset not in self.presets:
            raise InputError("--preset", f"must be one of {', '.join(self.presets)} for {self.id}, got {shown(preset)}")
        limits.seed(seed)
        from pydantic import ConfigDict, ValidationError, validate_call

        from edgeopt.model import validation_error

        @functools.wraps(self.module.generate)  # the generator's signature and annotations, without running it
        def echo(**args) -> dict:
            return args

        try:
            args = validate_call(echo, config=ConfigDict(strict=True, allow_inf_nan=False))(
                preset=preset, size=size, seed=seed, **options)
        except ValidationError as exc:
            err = validation_error(exc, given=True)
            name = err.path.split(".")[0].split("[")[0]
            flag = f"--{name}" if name in ("size", "seed", "preset") else f"--option {name}"
            rule = err.rule.replace("is not a known field", f"is not an option of the {self.id} generator")
            raise InputError(flag, rule) from None
        try:
            limits.check_memory(self.module.instance_bytes(**args), f"generating this {self.id} instance")
        except TooLarge as exc:
            where, verb = ("--option values", "are") if size is None else (f"--size {size}", "is")
            raise InputError(where, f"{verb} too large: {exc}") from None
        return args

    def generate(self, preset: str | None = None, size: int | None = None, seed: int = 0, **options):
        """An instance from the problem's generator, its arguments checked first (``arguments``)."""
        from pydantic import ValidationError

        from edgeopt.model import validation_error

        args = self.arguments(preset, size, seed, **options)
        try:
            return self.module.generate(**args)
        except ValidationError as exc:  # an option that makes a field of the generated data leave its range
            raise validation_error(exc, "generated data") from None

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
        """Methods by name; ``exact``, ``heuristic``, ``baseline``, ``bound`` and ``learned`` select by kind, ``all`` every
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
        return summary(inspect.getdoc(self.fn))

    @property
    def description(self) -> str:
        return plain(inspect.getdoc(self.fn))

    def __call__(self, path: str, **options):
        """The file as an Instance; a file over the input cap (``edgeopt.limits``) is refused before it is read."""
        import os

        if os.path.isfile(path):
            limits.check_input(os.path.getsize(path), str(path))
        return self.fn(path, **options)


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


def _import_if_present(name: str) -> ModuleType | None:
    """Module ``name``, or None if there is no such module (a module it imports that is missing still raises)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None


def _discover() -> None:
    """Problem ids are the modules and packages of ``edgeopt.problems``; nothing is imported until it is used."""
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


def listing(solvers: dict[str, bool]) -> dict:
    """Problems (sense, presets, methods: kind, one-sentence summary, whole description), importers and ``solvers``
    (``edgeopt.solvers.available_solvers()``, which imports this module): ``edgeopt list --json`` (through the cache
    of ``edgeopt.catalog``) and the service's ``GET /problems``."""
    return {"problems": {pid: {"sense": p.sense, "presets": p.presets,
                               "methods": {m.name: {"kind": m.kind, "summary": m.doc, "description": m.description}
                                           for m in p.methods.values()}}
                         for pid, p in problems().items()},
            "importers": {n: {"problem": i.problem, "summary": i.doc, "description": i.description}
                          for n, i in importers().items()},
            "solvers": solvers}


def decisions(problem_id, where: str = "problem") -> ModuleType:
    """The system module of a problem that is also a decision process (``make_process``, ``Layout``, ``optimum_method``:
    what ``edgeopt.envs``, ``edgeopt train`` and the learned methods run on); InputError at ``where`` otherwise."""
    _discover()
    prob = _PROBLEMS.get(problem_id) if isinstance(problem_id, str) else None
    if prob is None or not hasattr(prob.system, "make_process"):
        have = [p for p, q in _PROBLEMS.items() if hasattr(q.system, "make_process")]
        raise InputError(where, f"must name a problem with a decision process ({', '.join(have)}), got {problem_id!r}")
    return prob.system


def importers() -> dict[str, Importer]:
    """Importers register in the modules of ``edgeopt.importers``: every one is loaded to find them."""
    import edgeopt.importers

    for info in sorted(pkgutil.iter_modules(edgeopt.importers.__path__), key=lambda i: i.name):
        importlib.import_module(f"edgeopt.importers.{info.name}")
    return dict(_IMPORTERS)

