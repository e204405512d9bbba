"""The service's request and response bodies, made of edgeopt's own models.

An instance in a request is an instance file's JSON, validated by ``edgeopt.io.parse_instance`` and documented
by the problems' Instance models (the schema ``edgeopt schema`` prints); an experiment is an experiment file's
keys, validated by ``edgeopt.experiment.Experiment``; a row is the ``solve --json`` object
(``edgeopt.compare.solve_row``). Every fault is an InputError whose path starts at the request body's root
(``instance.data.devices[2].mem_gb``) and whose rule is the command line's, word for word.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Callable, Literal, Union

from pydantic import (BaseModel, ConfigDict, Discriminator, Field, PlainValidator, PrivateAttr, RootModel, Tag,
                      ValidationError, ValidationInfo, model_validator)

from edgeopt import experiment, io, limits, registry
from edgeopt.compare import check_options
from edgeopt.errors import InputError, shown
from edgeopt.model import validation_error
from edgeopt.result import STATUSES
from edgeopt.workers import Task

DEFAULT_TIME_LIMIT_S = 60.0  # as on the command line; a service whose --max-time-limit is lower uses that


def _within(prefix: str, parse: Callable[[Any], Any], value: Any) -> Any:
    """``parse(value)``, its InputError's path put under ``prefix`` (the field of the request it came in)."""
    try:
        return parse(value)
    except InputError as exc:
        path = (prefix if exc.path == "(top level)" else f"{prefix}{exc.path}" if exc.path.startswith("[") else
                f"{prefix}.{exc.path}")
        raise InputError(path, exc.rule) from None


def _instance_types() -> Any:
    """Every problem's Instance model, told apart by its ``problem`` key: what an instance field documents."""
    members = [Annotated[p.instance_type, Tag(pid)] for pid, p in registry.problems().items()]
    return Annotated[Union[tuple(members)], Discriminator(lambda doc: doc.get("problem") if isinstance(doc, dict)
                                                          else getattr(doc, "problem", None))]


InstanceTypes = _instance_types()
Instance = Annotated[Any, PlainValidator(lambda v: _within("instance", io.parse_instance, v),
                                         json_schema_input_type=InstanceTypes)]


def _instances(value: Any) -> list:
    if not isinstance(value, list) or not value:
        raise InputError("instances", "must be a list of at least one instance")
    out, names = [], {}
    for k, doc in enumerate(value):
        inst = _within(f"instances[{k}]", io.parse_instance, doc)
        if inst.name in names:
            raise InputError(f"instances[{k}].name", f"repeats {shown(inst.name)} of instances[{names[inst.name]}]; "
                                                     "names must be unique")
        names[inst.name] = k
        out.append(inst)
    return out


Instances = Annotated[list, PlainValidator(_instances, json_schema_input_type=list[InstanceTypes])]
TimeLimit = Annotated[float, Field(gt=0, le=limits.TIME_LIMIT_MAX_S)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def parse(cls, doc: Any, context: dict):
        """A request body's JSON -> the request; every fault an InputError (``context``: the service's limits)."""
        try:
            return cls.model_validate(doc, context=context)
        except ValidationError as exc:
            raise validation_error(exc) from None

    @staticmethod
    def _time_limit(value: Any, info: ValidationInfo) -> float:
        """The command line's range, then the service's ``--max-time-limit``: refused above it, never cut."""
        most = (info.context or {}).get("max_time_limit", limits.TIME_LIMIT_MAX_S)
        if value is None:
            return min(DEFAULT_TIME_LIMIT_S, most)
        seconds = limits.time_limit(value, "time_limit")
        if seconds > most:
            raise InputError("time_limit", f"must be at most {most:g} s on this service (its --max-time-limit), "
                                           f"got {shown(value)}")
        return seconds


class _Methods(_Request):
    """What runs on the instances: method names or kinds, the run's seed, time limit and method options."""

    methods: list[str] | None = Field(None, description="method names, or exact, heuristic, baseline, bound, all "
                                                        "(default: all and bound, as `edgeopt solve`)")
    time_limit: Annotated[float, PlainValidator(_Request._time_limit, json_schema_input_type=TimeLimit | None)] = Field(
        None, validate_default=True,
        description="seconds per method call (default 60, or the service's --max-time-limit if lower)")
    seed: Annotated[int, PlainValidator(lambda v: limits.seed(v, "seed"),
                                        json_schema_input_type=Annotated[int, Field(ge=0, le=limits.SEED_MAX)])] = 0
    options: dict[str, Any] = Field(default_factory=dict, description="method options, e.g. {\"mip_gap\": 0.01, "
                                                                      "\"solver\": \"highs\"}")
    _work: list[tuple[Task, dict]] = PrivateAttr(default_factory=list)

    def work(self) -> list[tuple[Task, dict]]:
        """(Task, the row's extra fields) per method run, in the order of the rows."""
        return self._work

    def _tasks(self, instance) -> list[tuple[Task, dict]]:
        """The methods that run on ``instance`` (``Problem.select``) as Tasks, every name and option checked."""
        prob = registry.problem(instance.problem)
        for k, name in enumerate(self.methods or []):
            if name not in (*registry.KINDS, "all") and name not in prob.methods:
                raise InputError(f"methods[{k}]", f"must be a method of {prob.id} ({', '.join(prob.methods)}) or "
                                                  f"a kind (exact, heuristic, baseline, bound, all), got {shown(name)}")
        chosen = prob.select(self.methods, instance)
        if not chosen:
            raise InputError("methods", f"select no method that applies to {shown(instance.name)}")
        check_options(chosen, self.options, where=lambda key: f"options.{key}")
        if self.options.get("solver") is not None:  # a solver named must exist, as --solver
            from edgeopt.solvers import check_solver

            try:
                check_solver(self.options["solver"])
            except InputError as exc:
                raise InputError("options.solver", exc.rule) from None
        return [(Task(instance, m.name, self.seed, self.time_limit, self.options), {}) for m in chosen]


class SolveRequest(_Methods):
    """``POST /solve`` and a solve job: methods on one instance, as `edgeopt solve`."""

    instance: Instance

    @model_validator(mode="after")
    def _checked(self):
        self._work = self._tasks(self.instance)
        return self


class SolveJob(SolveRequest):
    kind: Literal["solve"]


class CompareJob(_Methods):
    """Methods on several instances, as `edgeopt compare`: rows with gaps to the proven optimum or best bound."""

    kind: Literal["compare"]
    instances: Instances

    @model_validator(mode="after")
    def _checked(self):
        self._work = [t for inst in self.instances for t in self._tasks(inst)]
        return self


def _experiment(value: Any, info: ValidationInfo) -> experiment.Experiment:
    """An experiment file's keys as JSON; an omitted time limit is the service's default (see _Request)."""
    if not isinstance(value, dict):
        raise InputError("experiment", "must be an object: an experiment file's keys")
    if "time_limit" not in value:
        value = {**value, "time_limit": _Request._time_limit(None, info)}

    def parse(doc):
        try:
            exp = experiment.Experiment.model_validate(doc)
        except ValidationError as exc:
            raise validation_error(exc) from None
        _Request._time_limit(exp.time_limit, info)
        experiment.check_generator(exp)
        return exp

    return _within("experiment", parse, value)


class ExperimentJob(_Request):
    """An experiment file's sweep, given inline (its keys as JSON; ``plots`` are not drawn by the service)."""

    kind: Literal["experiment"]
    experiment: Annotated[experiment.Experiment, PlainValidator(_experiment,
                                                                json_schema_input_type=experiment.Experiment)]

    def work(self) -> list[tuple[Task, dict]]:
        exp = self.experiment
        return [(Task(t.recipe, t.method.name, t.seed, exp.time_limit, t.method.options),
                 {"label": t.method.key, "params": {"preset": t.recipe.preset, **t.params}})
                for t in experiment.tasks(exp)]


JOB_KINDS = {"solve": SolveJob, "compare": CompareJob, "experiment": ExperimentJob}


class JobRequest(RootModel[Annotated[Union[SolveJob, CompareJob, ExperimentJob], Field(discriminator="kind")]]):
    """``POST /jobs``: ``kind`` says which; validated by that kind's model (so paths name no union member)."""

    @classmethod
    def parse(cls, doc: Any, context: dict) -> SolveJob | CompareJob | ExperimentJob:
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if not isinstance(kind, str) or kind not in JOB_KINDS:
            raise InputError("kind", f"must be 'solve', 'compare' or 'experiment', got {shown(kind)}")
        return JOB_KINDS[kind].parse(doc, context)


def _solutions(value: Any) -> Any:
    if value is None or isinstance(value, dict) or (isinstance(value, list) and all(isinstance(v, dict)
                                                                                       for v in value)):
        return value
    raise InputError("solution", "must be a solution (an object) or a list of them")


class ValidateRequest(_Request):
    """``POST /validate``: an instance and, optionally, solutions to judge (one, or the array `solve -o` writes)."""

    instance: Instance
    solution: Annotated[Any, PlainValidator(_solutions, json_schema_input_type=dict[str, Any] | list[dict[str, Any]]
                                            | None)] = Field(
        None, description="a solution file, {\"solution\": {...}}, the bare decision, or a list of them")

    _solutions: list[tuple[str | None, Any]] = PrivateAttr(default_factory=list)

    def solutions(self) -> list[tuple[str | None, Any]]:
        """(method named in it, Solution) of every solution given."""
        return self._solutions

    @model_validator(mode="after")
    def _checked(self):
        if self.solution is None:
            return self
        if isinstance(self.solution, list) and not self.solution:
            raise InputError("solution", "is an empty list (expected solutions)")
        items = self.solution if isinstance(self.solution, list) else [self.solution]
        for k, doc in enumerate(items):
            where = f"solution[{k}]" if isinstance(self.solution, list) else "solution"
            sol = _within(where, lambda d: io.parse_solution(self.instance, d), doc)
            self._solutions.append((doc.get("method") if isinstance(doc.get("method"), str) else None, sol))
        return self


# --- responses ------------------------------------------------------------------------------------

class Row(BaseModel):
    """One method on one instance, judged by the referee: the object `edgeopt solve --json` prints."""

    problem: str
    instance: str
    method: str
    kind: Literal[registry.KINDS]
    status: Literal[STATUSES]
    objective: float | None = Field(description="the referee's")
    feasible: bool = Field(description="the referee's")
    violations: list[str]
    bound: float | None = Field(description="a proven bound on the optimum (exact and bound methods)")
    gap: float | None
    wall_s: float = Field(description="the method's whole call, model building included")
    seed: int
    solution: dict[str, Any] | None = Field(description="the problem's decision, as in a solution file")
    details: dict[str, Any] = Field(description="the referee's metrics and the method's notes")
    message: str | None


class JobRow(Row):
    """A job's row: a compare or experiment job's rows also carry the gap to the best, as `edgeopt compare`."""

    gap_to_best: float | None = Field(None, description="to the proven optimum, else the tightest bound, else the "
                                                        "best found (gap_ref says which); null in a solve job")
    gap_ref: Literal["optimum", "bound", "best found"] | None = None
    label: str | None = Field(None, description="an experiment's method label")
    params: dict[str, Any] | None = Field(None, description="an experiment's grid point: preset, size, options")


class Progress(BaseModel):
    done: int = Field(description="rows finished")
    total: int = Field(description="rows the job makes")


class Running(BaseModel):
    """A method running for the job now, with the last bound it proved (exact and bound methods report it)."""

    instance: str
    method: str
    started: datetime
    bound: float | None = None


JobStatus = Literal["queued", "running", "done", "cancelled", "interrupted", "failed"]


class JobState(BaseModel):
    """A job: its state, progress and the rows finished so far (``offset``: the first row shown)."""

    id: str
    kind: Literal["solve", "compare", "experiment"]
    status: JobStatus = Field(description="queued, running, done; cancelled (DELETE), interrupted (the service "
                                          "stopped before it finished; its finished rows are kept), failed")
    progress: Progress
    created: datetime
    started: datetime | None
    finished: datetime | None
    message: str | None
    running: list[Running]
    offset: int
    rows: list[JobRow]


class MethodInfo(BaseModel):
    kind: Literal[registry.KINDS]
    summary: str  # the docstring's first sentence, markup removed
    description: str  # the whole docstring, markup removed


class ProblemInfo(BaseModel):
    sense: Literal["min", "max"]
    presets: dict[str, str]
    methods: dict[str, MethodInfo]


class ImporterInfo(BaseModel):
    problem: str
    summary: str
    description: str


class Listing(BaseModel):
    """What `edgeopt list --json` prints."""

    problems: dict[str, ProblemInfo]
    importers: dict[str, ImporterInfo]
    solvers: dict[str, bool]


class Verdict(BaseModel):
    """The referee's verdict on one solution (`edgeopt validate FILE SOLUTION --json`)."""

    method: str | None
    objective: float | None
    feasible: bool
    violations: list[str]
    details: dict[str, Any]


class Validated(BaseModel):
    problem: str
    instance: str
    valid: Literal[True] = Field(description="the instance passed every check (else the answer is 422)")
    verdicts: list[Verdict]


class Health(BaseModel):
    status: Literal["ok"]
    workers: int = Field(description="worker processes (or Dask workers' slots are the cluster's)")
    executor: Literal["local", "dask"]
    in_flight: int = Field(description="synchronous solves and jobs held now (running or waiting)")
    queue: int = Field(description="the most held at once (--queue)")


class Message(BaseModel):
    detail: str


class Fault(BaseModel):
    """One fault of the input: ``path`` and ``msg`` are what the command line prints (``error: PATH RULE``)."""

    loc: list[str | int]
    msg: str
    type: str
    path: str


class Invalid(BaseModel):
    detail: list[Fault]
