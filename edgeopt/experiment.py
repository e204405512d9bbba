"""Experiments: a sweep over generator options, sizes, seeds and methods, as one file and one table.

An experiment file (TOML) is a typed record, validated like an instance file (key path, rule, exit 2):

    name = "qllms-observed"
    problem = "qllms"
    preset = "qllms"
    sizes = [20]
    seeds = 3                       # or a list of seeds
    methods = ["milp", "daa", {name = "random"}, {name = "daa", label = "daa-nnm", options = {completer = "nnm"}}]
    time_limit = 30
    reference = "auto"              # gaps to the optimum, else the best bound, else the best found; or "best"
    [grid]                          # cartesian axes: generator options
    observe = [1.0, 0.5, 0.2]
    [zip]                           # axes that move together (equal lengths)
    [[plots]]
    x = "observe"
    y = "objective"

``run`` is a loop over ``compare``'s per-row work (``edgeopt.run.run_one``: one method on one instance,
judged by the referee): each (grid point, seed) becomes an instance *recipe*, built where the method runs, so
that only small task descriptions travel to worker processes or to a Dask cluster. Rows go to
``results.parquet`` in the run directory: a Parquet dataset (a directory), one new part per batch of finished
rows, so a long run never rewrites what it has already written; a re-run skips the rows already there. Gaps
(``gap_to_best``, ``gap_ref``) are computed when the rows are loaded, over all parts.
"""
from __future__ import annotations

import inspect
import itertools
import json
import math
import platform
import re
import statistics
import subprocess
import textwrap
import time
from dataclasses import dataclass
from importlib import metadata
from io import BytesIO
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edgeopt import io, limits, registry
from edgeopt.compare import add_gaps
from edgeopt.errors import ClusterLost
from edgeopt.model import InputError, shown, validation_error
from edgeopt.result import Result
from edgeopt.workers import Task, checked_input, run_task

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

RESULTS = "results.parquet"  # a directory of Parquet parts (older runs: one file, read and resumed alike)
BATCH_S = 2.0  # finished rows are written as a new part at most this often (the first at once, and at the end)


class _Record(BaseModel):
    """Checked by the rule of every option (strict: true/false is no number, 2.5 no integer, 1 no true/false)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _plain(name: str | None) -> str | None:
    """A name that becomes a file or directory name: letters, digits, '.', '_', '-', never a path."""
    if name is not None and not PLAIN_NAME.fullmatch(name):
        raise ValueError(f"must be a plain name (1-100 letters, digits, '.', '_' or '-', starting with a letter or "
                         f"digit; no '/'), got {shown(name)}")
    return name


PlainName = Annotated[str, AfterValidator(_plain)]
Scalar = (str, int, float, bool)  # what a grid or zip axis may hold: one generator option value each


class MethodSpec(_Record):
    name: str = Field(min_length=1, description="method name as `edgeopt list` shows it")
    label: str | None = Field(None, description="name in the table and plots (default: the method name)")
    options: dict[str, Any] = Field(default_factory=dict, description="method options, e.g. {completer = 'nnm'}")

    @property
    def key(self) -> str:
        return self.label or self.name


class Plot(_Record):
    x: str = Field(description="column on the x axis: a grid or zip axis, size or seed")
    y: str = Field("gap_to_best", description="column to aggregate: objective, gap_to_best, wall_s, details.<key>")
    group: str = Field("method", description="one series per value of this column")
    where: dict[str, Any] = Field(default_factory=dict, description="only rows with these column values")
    kind: Literal["line", "bar"] = "line"
    agg: Literal["mean", "median"] = "mean"
    ci: float = Field(0.95, gt=0, lt=1, description="confidence level of the band (Student t over the seeds)")
    minus: str | None = Field(None, description="a method: draw each row's y minus that method's y on the same "
                                                "instance (the paired difference per seed) and its interval")
    xlabel: str | None = Field(None, description="x axis label (default: the problem's label of the column)")
    ylabel: str | None = Field(None, description="y axis label (default: the problem's label of the column)")
    logx: bool = False
    logy: bool = False
    name: PlainName | None = Field(None, description="file name (default: <y>-vs-<x>)")
    title: str | None = None


class Experiment(_Record):
    name: PlainName = Field(description="the run directory's name under runs/")
    problem: str
    preset: str | None = None
    sizes: list[Annotated[int, Field(ge=0, le=10_000_000)]] = Field(
        default_factory=lambda: [0], min_length=1, description="instance sizes (0: the preset's default)")
    seeds: int | list[int] = Field(3, description="a count (0 .. n-1) or a list of seeds, each 0 <= s < 2^63")
    grid: dict[str, list[Any]] = Field(default_factory=dict,
                                       description="cartesian axes over generator options (and preset)")
    zip: dict[str, list[Any]] = Field(default_factory=dict, description="generator options that move together")
    methods: list[str | MethodSpec] = Field(min_length=1)
    time_limit: float = Field(60.0, gt=0, le=limits.TIME_LIMIT_MAX_S)
    reference: Literal["auto", "best"] = "auto"
    plots: list[Plot] = Field(default_factory=list)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        if isinstance(v, int) and not 1 <= v <= 10_000:
            raise ValueError("must be a count from 1 to 10000, or a list of seeds")
        if isinstance(v, list) and not v:
            raise ValueError("must not be empty")
        for i, s in enumerate(v if isinstance(v, list) else []):
            limits.seed(s, f"seeds[{i}]")
        return v

    @field_validator("grid", "zip")
    @classmethod
    def _axes(cls, axes: dict, info):
        for key, values in axes.items():
            if not values:
                raise InputError(f"{info.field_name}.{key}", "must have at least one value")
            for i, v in enumerate(values):
                if not isinstance(v, Scalar):
                    raise InputError(f"{info.field_name}.{key}[{i}]", "must be one value (text, a number or true/false), "
                                                                      f"got {shown(v)}")
        return axes

    @model_validator(mode="after")
    def _known(self):
        prob = registry.problem(self.problem)
        presets = [("preset", self.preset)] if self.preset is not None else []
        for section in ("grid", "zip"):  # the preset may also be an axis (e.g. constellations, GPU mixes)
            presets += [(f"{section}.preset[{k}]", v) for k, v in enumerate(getattr(self, section).get("preset", []))]
        for where, name in presets:
            if name not in prob.presets:
                raise InputError(where, f"must be one of {', '.join(prob.presets)} for {self.problem}, got {shown(name)}")
        if self.preset is not None and len(presets) > 1:
            raise InputError("preset", "is also an axis: give it in one place")
        lengths = {len(v) for v in self.zip.values()}
        if len(lengths) > 1:
            raise InputError("zip", "axes must all have the same length")
        shared = set(self.grid) & set(self.zip)
        if shared:
            raise InputError(f"zip.{sorted(shared)[0]}", "is already a grid axis")
        params = inspect.signature(prob.module.generate).parameters
        for section in ("grid", "zip"):
            for key in getattr(self, section):
                if key == "preset":
                    continue
                if key not in params or key in ("size", "seed"):
                    raise InputError(f"{section}.{key}", f"is not an option of the {self.problem} generator")
        specs = self.method_specs()
        keys = [s.key for s in specs]
        for k, spec in enumerate(specs):
            if keys.count(spec.key) > 1:
                raise InputError(f"methods[{k}]", f"repeats {shown(spec.key)}: give it a distinct label")
            if spec.name not in prob.methods:
                raise InputError(f"methods[{k}]", f"must be a method of {self.problem} ({', '.join(prob.methods)}), "
                                                  f"got {shown(spec.name)}")
            prob.method(spec.name).check_options(spec.options, where=lambda key, k=k: f"methods[{k}].options.{key}")
        for k, p in enumerate(self.plots):
            if p.minus is not None and (p.group != "method" or p.minus not in keys):
                raise InputError(f"plots[{k}].minus", f"must be one of the methods ({', '.join(keys)}) with group = "
                                                      f"\"method\", got {shown(p.minus)}")
        rows = (math.prod(map(len, self.grid.values())) * (len(next(iter(self.zip.values()))) if self.zip else 1)
                * len(self.sizes) * len(self.seed_list()) * len(specs))
        if rows > limits.EXPERIMENT_ROWS_MAX:
            raise InputError("grid x zip x sizes x seeds x methods", f"make {rows:,} rows, more than the "
                                                                     f"{limits.EXPERIMENT_ROWS_MAX:,} an experiment may have")
        return self

    def method_specs(self) -> list[MethodSpec]:
        return [MethodSpec(name=m) if isinstance(m, str) else m for m in self.methods]

    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    def points(self) -> list[dict]:
        """Every generator setting of the sweep: grid axes crossed, zip axes side by side, times each size."""
        grid = [dict(zip(self.grid, values)) for values in itertools.product(*self.grid.values())]
        zipped = [dict(zip(self.zip, values)) for values in zip(*self.zip.values())] or [{}]
        return [{**g, **z, "size": size} for size in self.sizes for g in grid for z in zipped]


@dataclass(frozen=True)
class Recipe:
    """How to generate one instance: small enough to send anywhere, built where the method runs."""

    problem: str
    preset: str | None
    size: int
    seed: int
    options: tuple[tuple[str, Any], ...]
    name: str

    def build(self):
        inst = registry.problem(self.problem).generate(self.preset, self.size or None, self.seed, **dict(self.options))
        return inst.model_copy(update={"name": self.name})


def read(path: str | Path) -> Experiment:
    """An experiment file (TOML) -> a validated Experiment; every fault is an InputError naming the key."""
    path = Path(path)
    try:
        doc = tomllib.loads(io.read_input(path, "an experiment file, .toml").decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"is not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(path), f"is not valid TOML: {exc}") from None
    try:
        return Experiment.model_validate(doc)
    except ValidationError as exc:
        raise _in(path, validation_error(exc)) from None
    except InputError as exc:
        raise _in(path, exc) from None


def _in(path: Path, exc: InputError) -> InputError:
    return InputError(f"{path}: {exc.path}", exc.rule)


@dataclass
class Row:
    """One (grid point, seed, method) task: what to build, what to run, and the columns it fills."""

    point: int
    seed: int
    method: MethodSpec
    recipe: Recipe
    params: dict


def tasks(exp: Experiment) -> list[Row]:
    out = []
    for p, point in enumerate(exp.points()):
        options = tuple(sorted((k, v) for k, v in point.items() if k not in ("size", "preset")))
        for seed in exp.seed_list():
            recipe = Recipe(exp.problem, point.get("preset", exp.preset), point["size"], seed, options, f"p{p}-s{seed}")
            out += [Row(p, seed, spec, recipe, point) for spec in exp.method_specs()]
    return out


def check_generator(exp: Experiment) -> None:
    """Build every generator setting once, at the smallest size, so that a bad option value is an input
    error before anything runs (not an error row per task); and check it at the largest size against the
    memory cap (``Problem.arguments``), without building it."""
    prob = registry.problem(exp.problem)
    seen = set()
    for t in tasks(exp):
        if (t.recipe.preset, t.recipe.options) in seen:
            continue
        seen.add((t.recipe.preset, t.recipe.options))
        try:
            prob.arguments(t.recipe.preset, max(exp.sizes) or None, t.seed, **dict(t.recipe.options))
        except InputError as exc:
            if exc.path.startswith("--size"):  # the largest size over the memory cap
                raise InputError(f"sizes {max(exp.sizes)}", exc.rule) from None
        small = Recipe(exp.problem, t.recipe.preset, min(exp.sizes), t.seed, t.recipe.options, t.recipe.name)
        try:
            small.build()
        except (InputError, ValueError, TypeError) as exc:
            where = ", ".join(f"{k}={shown(v)}" for k, v in t.recipe.options) or "the preset's defaults"
            raise InputError("grid", f"the {exp.problem} generator rejects {where}: {exc}") from None


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in ("edgeopt", "numpy", "scipy", "pyomo", "highspy", "pyscipopt", "ortools", "cvxpy", "pyarrow",
                 "matplotlib", "dask", "distributed", "jax", "optax", "usearch"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _commit() -> dict:
    """The git commit of the edgeopt source that ran (when it is a git checkout) and whether files under
    version control had local changes, so that a figure can be traced to the code that made it."""
    src = Path(__file__).resolve().parent.parent

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(src), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode:
            return {}
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):  # no git on this machine
        return {}
    return {"git_commit": head.stdout.strip(), "git_dirty": dirty}


def _flat(row: Row, exp: Experiment, result: Result) -> dict:
    out = {"experiment": exp.name, "problem": exp.problem, "preset": row.recipe.preset, "point": row.point,
           **row.params, "seed": row.seed, "method": row.method.key, "method_name": row.method.name,
           "kind": result.kind, "instance": result.instance, "status": result.status, "objective": result.objective,
           "feasible": result.feasible, "bound": result.bound, "gap": result.gap, "wall_s": result.wall_s,
           "message": result.message}
    for key, value in (result.details or {}).items():
        out[f"details.{key}"] = value
    return out


# Column types that do not depend on the values a part happens to hold (an all-null objective stays a float).
_TYPED = {**dict.fromkeys(("objective", "bound", "gap", "wall_s"), "float64"),
          **dict.fromkeys(("point", "seed", "size"), "int64"), "feasible": "bool_",
          **dict.fromkeys(("experiment", "problem", "preset", "method", "method_name", "kind", "instance", "status",
                           "message"), "string")}


def _axis_type(values: list) -> str:
    """The Parquet type of a grid or zip axis, from the values the experiment file gives it."""
    if all(isinstance(v, bool) for v in values):
        return "bool_"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int64"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "float64"
    return "string"


def _table(rows: list[dict], exp: Experiment):
    """A pyarrow Table with typed columns: the fixed columns and the experiment's axes by their declaration,
    ``details.*`` by their values (numbers as float, nothing but nulls as float), anything nested as JSON text."""
    import pyarrow as pa

    axes = {k: _axis_type(v) for k, v in {**exp.grid, **exp.zip}.items()}
    declared = {**axes, **_TYPED}  # an axis named like a result column (partition's `objective`) holds the result
    columns = list(dict.fromkeys(k for r in rows for k in r))
    data = {}
    for col in columns:
        values = [r.get(col) for r in rows]
        present = [v for v in values if v is not None]
        kind = declared.get(col)
        if kind is None:
            kind = ("bool_" if present and all(isinstance(v, bool) for v in present) else
                    "float64" if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present) else
                    "string" if all(isinstance(v, str) for v in present) else "json")
        if kind == "json":
            data[col] = pa.array([None if v is None else io.dumps(v, indent=False).decode() for v in values],
                                 pa.string())
        else:
            data[col] = pa.array(values, getattr(pa, kind)())
    return pa.table(data)


def _write_part(rows: list[dict], folder: Path, exp: Experiment) -> None:
    """``rows`` as the next part of the dataset in ``folder`` (written atomically; earlier parts stay as they are)."""
    import pyarrow.parquet as pq

    number = len(list(folder.glob("part-*.parquet"))) if folder.is_dir() else 0
    buf = BytesIO()
    pq.write_table(_table(rows, exp), buf)
    io.write_bytes(buf.getvalue(), folder / f"part-{number:05d}.parquet")


def _read_parts(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    files = sorted(path.glob("part-*.parquet")) if path.is_dir() else [path]
    rows = []
    for f in files:  # part by part: a details column may be typed differently in two parts
        try:
            rows += pq.read_table(f).to_pylist()
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise InputError(str(f), f"cannot be read as a results table ({type(exc).__name__}: {exc})") from None
    columns = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in ("gap_to_best", "gap_ref")]
    return [{k: r.get(k) for k in columns} for r in rows]  # every row has every part's columns, as one table had


def load_rows(run_dir: str | Path) -> list[dict]:
    """The rows of a run directory's table, as dicts, with their gaps (empty when there is none yet)."""
    path = Path(run_dir) / RESULTS
    if not path.exists():
        return []
    rows = _read_parts(path)
    exp_path = Path(run_dir) / "experiment.json"
    reference = json.loads(exp_path.read_text(encoding="utf-8")).get("reference", "auto") if exp_path.is_file() else "auto"
    add_gaps(rows, reference)  # by instance: here a (grid point, seed), named p<point>-s<seed>
    return rows


def run(exp: Experiment | str | Path, out: str | Path | None = None, *, jobs: int = 1, executor: str = "local",
        scheduler: str | None = None, on_plan: Callable[[int], None] | None = None,
        on_start: Callable[[str], None] | None = None, on_row: Callable[[dict], None] | None = None) -> Path:
    """Run (or resume) an experiment; returns its run directory.

    ``executor``: ``local`` (worker processes, see ``edgeopt.workers``) or ``dask`` (``scheduler`` an address
    like ``tcp://host:8786``, or None to start a local Dask cluster of ``jobs`` workers).
    """
    exp = exp if isinstance(exp, Experiment) else read(exp)
    if executor not in ("local", "dask"):
        raise InputError("--executor", f"must be local or dask, got {shown(executor)}")
    limits.jobs(jobs)
    check_generator(exp)
    run_dir = Path(out) if out else Path("runs") / exp.name
    path = run_dir / RESULTS
    kept = _read_parts(path) if path.exists() else []
    if path.is_file():  # a run of the one-file format: its rows become the first part, swapped in by a rename
        _write_part(kept, run_dir / f".{RESULTS}.parts", exp)
        path.unlink()
        (run_dir / f".{RESULTS}.parts").rename(path)
    done = {(r["point"], r["seed"], r["method"]) for r in kept}
    todo = [t for t in tasks(exp) if (t.point, t.seed, t.method.key) not in done]
    if on_plan:
        on_plan(len(todo))
    run_dir.mkdir(parents=True, exist_ok=True)
    io.write_bytes(io.dumps(exp.model_dump(mode="json")), run_dir / "experiment.json")
    io.write_bytes(io.dumps({"versions": _versions(), **_commit(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                             "executor": executor, "jobs": jobs}), run_dir / "run.json")
    last, pending, finished = [-math.inf], [], [len(kept)]  # the first finished row is written at once

    def flush() -> None:
        if pending:
            _write_part(pending, run_dir / RESULTS, exp)
            pending.clear()
        last[0] = time.monotonic()

    def finish(k: int, result: Result) -> None:
        pending.append(_flat(todo[k], exp, result))
        finished[0] += 1
        if on_row:
            on_row(pending[-1])
        if time.monotonic() - last[0] >= BATCH_S:
            flush()

    def start(k: int) -> None:
        if on_start:
            on_start(f"{todo[k].recipe.name} · {todo[k].method.key}")

    work = [Task(t.recipe, t.method.name, t.seed, exp.time_limit, t.method.options) for t in todo]
    try:
        if executor == "local":
            from edgeopt.workers import run_tasks

            run_tasks(work, finish, jobs=jobs, on_start=start)
        else:
            _run_dask(work, exp.name, finish, start, jobs, scheduler)
    except ClusterLost as exc:
        raise ClusterLost(exc.address, f"{exc}; {finished[0]} finished rows are kept in {run_dir / RESULTS} "
                                       "and the same command resumes the run") from None
    finally:  # finished rows are kept even when the run is interrupted
        flush()
    return run_dir


CHUNK_S, CHUNK_MAX = 0.25, 64  # on Dask, tasks travel in chunks of about this many seconds of work, at most this many


def run_chunk(tasks: list[Task]) -> list[Result]:
    """One Dask task: ``tasks`` run one after another (``run_task``)."""
    return [run_task(task) for task in tasks]


def _run_dask(work: list[Task], name: str, finish, start, jobs: int, scheduler: str | None) -> None:
    """Tasks on a Dask cluster (an address, or a local cluster of ``jobs`` worker processes).

    Dask costs a few ms per task of its own (scheduler, transfers; 4.9 ms measured beside a load of 3), more than
    a fast heuristic's whole run, so tasks travel in chunks: one task each until the first results tell how long
    a task takes, then about ``CHUNK_S`` of work per chunk (an exact solve of seconds still travels alone). Two
    chunks per worker thread are in flight, the next sent as one returns, so the chunks stay small enough to
    balance the workers at the end.

    A scheduler that cannot be reached, or goes away, is ClusterLost (its client's reconnection attempts are
    not logged: that one line says it)."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
        from distributed.client import FutureCancelledError
        from distributed.comm import CommClosedError
    except ImportError:
        raise InputError("--executor", "dask needs the dask extra: pip install 'edgeopt[dask]'") from None
    import contextlib
    import logging

    lost = (FutureCancelledError, CommClosedError, OSError, TimeoutError)
    with contextlib.ExitStack() as stack:
        if scheduler is None:  # a local cluster of worker processes, closed after its client
            scheduler = stack.enter_context(LocalCluster(
                n_workers=max(1, jobs), threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None, silence_logs=logging.CRITICAL))
        address = scheduler if isinstance(scheduler, str) else scheduler.scheduler_address
        quiet = logging.getLogger("distributed.client")
        stack.callback(quiet.setLevel, quiet.level)
        quiet.setLevel(logging.CRITICAL)
        try:
            client = stack.enter_context(Client(scheduler))
        except lost as exc:
            raise ClusterLost(address, f"cannot reach the Dask scheduler at {address} ({exc})") from None
        futures: dict = {}  # in flight: future -> the indices of its tasks
        queue, done, spent = list(range(len(work)))[::-1], as_completed(), [0, 0.0]  # spent: tasks, their wall s

        def submit() -> None:
            size = 1 if not spent[0] else max(1, min(CHUNK_MAX, int(CHUNK_S * spent[0] / max(spent[1], 1e-6))))
            ks = [queue.pop() for _ in range(min(size, len(queue)))]
            fut = client.submit(run_chunk, [work[k] for k in ks], pure=False, key=f"edgeopt-{name}-{ks[0]}-{time.time_ns()}")
            futures[fut] = ks
            done.add(fut)
            for k in ks:
                start(k)

        try:
            for _ in range(min(len(queue), 2 * max(1, sum(client.nthreads().values())))):
                submit()  # two chunks per worker thread: one running, one waiting
            for fut in done:
                try:
                    results = fut.result()
                except lost:
                    raise ClusterLost(address, f"lost the Dask scheduler at {address}") from None
                for k, result in zip(futures.pop(fut), results):
                    finish(k, checked_input(result))
                    spent[0], spent[1] = spent[0] + 1, spent[1] + result.wall_s
                if queue:
                    submit()
        except BaseException:
            with contextlib.suppress(*lost):
                client.cancel(list(futures))
            raise


# --- plots ----------------------------------------------------------------------------------------

_UNITS = {"s": "s", "ms": "ms", "j": "J", "mhz": "MHz", "ghz": "GHz", "gb": "GB", "mb": "MB", "w": "W",
          "usd": "$", "mbps": "Mbit/s", "tokens": "tokens"}
_GAP_COLUMNS = ("gap_to_best", "gap")  # fractions in the table, drawn in % as ``compare`` prints them


def _t(level: float, n: int) -> float:
    """The two-sided Student-t quantile of ``level`` for a mean of ``n`` values (not the normal one: with the 3-5
    seeds of an experiment the normal quantile makes the interval up to 2.2x too narrow)."""
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, n - 1))


def label(column: str, problem: str, rows: list[dict] = ()) -> str:
    """The human label of a column, with its unit: the problem's own (``LABELS`` in its module), else one made
    from the column name (``details.delay_mean_ms`` -> "delay mean (ms)")."""
    own = getattr(registry.problem(problem).module, "LABELS", {})
    if column in own:
        return own[column]
    if column == "gap_to_best":
        refs = {r.get("gap_ref") for r in rows} - {None}
        against = {"optimum": "the optimum", "bound": "the best bound", "best found": "the best found"}
        return "gap to " + (against[refs.pop()] if len(refs) == 1 else "the reference") + " (%)"
    if column in ("gap", "wall_s", "objective", "size", "seed"):
        return {"gap": "own gap to its bound (%)", "wall_s": "wall time (s)"}.get(column, column)
    words = column.removeprefix("details.").split("_")
    unit = _UNITS.get(words[-1]) if len(words) > 1 else None
    return " ".join(words[:-1]) + f" ({unit})" if unit else " ".join(words)


def _reference_label(rows: list[dict]) -> str | None:
    """What a group's rows stand for when they are the reference: "optimum", "bound", or None (not one)."""
    kinds = {r.get("kind") for r in rows}
    if kinds == {"bound"}:
        return "bound"
    if kinds == {"exact"}:
        solved = [r for r in rows if r.get("feasible")]
        proven = sum(r.get("status") == "optimal" for r in solved)
        return "optimum" if solved and proven == len(solved) else f"best found, {proven} of {len(rows)} proven"
    return None


def _y(r: dict, plot: Plot) -> float | None:
    """A row's y: a bound method's bound stands for the objective; gaps in %; None when there is none."""
    is_bound = r.get("status") == "bound"
    y = r.get("bound") if is_bound and plot.y == "objective" else r.get(plot.y)
    if not (r.get("feasible") or is_bound) or not isinstance(y, (int, float)) or not math.isfinite(y):
        return None
    return 100.0 * y if plot.y in _GAP_COLUMNS else float(y)


def series(rows: list[dict], plot: Plot) -> dict[Any, list[tuple[Any, float, float, int]]]:
    """group value -> [(x, aggregate of y, half-width of the Student-t interval, n)] over the feasible rows.

    A bound method's rows are a series too: its bound stands for the objective, and its ``gap_to_best`` is
    how far the bound lies from the reference. With ``plot.minus``, y is the difference to that method's y on
    the same instance (a paired difference per seed), and rows without a partner are left out.
    """
    rows = [r for r in rows if all(r.get(k) == v for k, v in plot.where.items())]
    partner = {}
    if plot.minus is not None:
        partner = {r["instance"]: _y(r, plot) for r in rows if r.get(plot.group) == plot.minus}
    cells: dict[tuple, list[float]] = {}
    for r in rows:
        y = _y(r, plot)
        if plot.minus is not None:
            base = partner.get(r["instance"])
            y = None if y is None or base is None else y - base
        if y is not None:
            cells.setdefault((r.get(plot.group), r.get(plot.x)), []).append(y)
    out: dict[Any, list] = {}
    for (g, x), ys in sorted(cells.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        centre = statistics.fmean(ys) if plot.agg == "mean" else statistics.median(ys)
        half = _t(plot.ci, len(ys)) * statistics.stdev(ys) / math.sqrt(len(ys)) if len(ys) > 1 else 0.0
        out.setdefault(g, []).append((x, centre, half, len(ys)))
    return out


def _missing(rows: list[dict], plot: Plot, drawn) -> list[str]:
    """Notes for the groups that have rows but no point to draw, saying why (no legend entry without data)."""
    notes = []
    shown_rows = [r for r in rows if all(r.get(k) == v for k, v in plot.where.items())]
    for g in dict.fromkeys(r.get(plot.group) for r in shown_rows):
        if g in drawn:
            continue
        statuses = sorted({str(r.get("status")) for r in shown_rows if r.get(plot.group) == g})
        if any(r.get("feasible") for r in shown_rows if r.get(plot.group) == g):
            why = f"no {plot.y} in its rows" + (f" (or no {plot.minus} row beside them)" if plot.minus else "")
        elif set(statuses) <= {"infeasible", "feasible"}:
            why = "infeasible in every run"
        else:
            why = f"no solution in any run ({', '.join(statuses)})"
        notes.append(f"{g}: {why}")
    return notes


def plot(run_dir: str | Path) -> list[Path]:
    """Draw every plot of the run's experiment as PNG and PDF under ``run_dir/figures``; returns the PNGs."""
    run_dir = Path(run_dir)
    exp_path = run_dir / "experiment.json"
    if not exp_path.is_file():
        raise InputError(str(run_dir), "is not an experiment run directory (no experiment.json)")
    exp = Experiment.model_validate(json.loads(exp_path.read_text(encoding="utf-8")))
    rows = load_rows(run_dir)
    if not rows:
        raise InputError(str(run_dir), f"has no rows in {RESULTS} yet")
    written = []
    for k, p in enumerate(exp.plots):
        if p.x not in rows[0] or p.y not in {k for r in rows for k in r}:
            missing = p.x if p.x not in rows[0] else p.y
            raise InputError(f"plots[{k}].{'x' if missing == p.x else 'y'}", f"{shown(missing)} is not a column of "
                                                                             f"{RESULTS}")
        fig = figure(exp, rows, p)
        stem = p.name or f"{p.y}-vs-{p.x}".replace(".", "_")
        for suffix in ("png", "pdf"):
            buf = BytesIO()
            fig.savefig(buf, format=suffix, dpi=150)
            io.write_bytes(buf.getvalue(), run_dir / "figures" / f"{stem}.{suffix}")
        written.append(run_dir / "figures" / f"{stem}.png")
    return written


def _wrap(title: str, width: int = 66) -> str:
    """A title in lines that fit beside the legend, broken after a long lead-in ending in a colon."""
    head, sep, tail = title.partition(": ")
    parts = [head + sep.rstrip(), tail] if sep and len(title) > width and len(head) >= 20 else [title]
    return "\n".join(textwrap.fill(part, width) for part in parts)


def figure(exp: Experiment, rows: list[dict], p: Plot):
    """One plot of ``exp`` over ``rows`` (``load_rows``) as a matplotlib Figure (no pyplot).

    The reference (an exact method's optimum, or a bound) is drawn black and dashed on top of the others, a
    method with nothing to draw is named in a note instead of the legend, and the band is a Student-t interval
    over the seeds."""
    from matplotlib.figure import Figure

    data = series(rows, p)
    fig = Figure(figsize=(8.0, 4.4), layout="constrained")
    ax = fig.add_subplot()
    xs = sorted({x for pts in data.values() for x, *_ in pts}, key=lambda v: (isinstance(v, str), v))
    width = 0.8 / max(1, len(data))
    mine = {g: [r for r in rows if r.get(p.group) == g and all(r.get(k) == v for k, v in p.where.items())]
            for g in data}
    # the reference of a value (not of a run time): the optimum, or a bound, drawn apart from the methods
    refs = ({g: _reference_label(mine[g]) for g in data} if p.group == "method" and p.minus is None
            and p.y != "wall_s" else {})
    order = sorted(data, key=lambda g: refs.get(g) is not None)  # the references last, so on top
    colour = iter(f"C{k}" for k in range(10 * len(data)))
    for g in order:
        pts = data[g]
        x, y, h = [q[0] for q in pts], [q[1] for q in pts], [q[2] for q in pts]
        ref = refs.get(g)
        name = f"{ref} ({g})" if ref in ("optimum", "bound") else f"{g} ({ref})" if ref else str(g)
        style = (dict(color="black", linestyle=":", marker="v", markerfacecolor="none", markersize=7, zorder=9,
                      linewidth=1.6) if ref == "bound" else
                 dict(color="black", linestyle="--", marker="s", markersize=4, zorder=10, linewidth=1.6) if ref else
                 dict(color=next(colour), marker="o", zorder=3))
        if p.kind == "line":
            ax.plot(x, y, label=name, **style)
            if any(h):
                ax.fill_between(x, [a - b for a, b in zip(y, h)], [a + b for a, b in zip(y, h)],
                                color=style["color"], alpha=0.12 if ref else 0.2, linewidth=0,
                                zorder=style["zorder"] - 1)
        else:
            k = list(data).index(g)
            pos = [xs.index(v) + (k - (len(data) - 1) / 2) * width for v in x]
            ax.bar(pos, y, width=width, yerr=h, capsize=2, label=name, color=style["color"],
                   edgecolor=style["color"], hatch="//" if ref else None, fill=not ref, zorder=style["zorder"])
    if p.logx:
        ax.set_xscale("log")
    if p.kind == "bar":
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    elif xs and len(xs) <= 12 and all(isinstance(v, (int, float)) for v in xs):  # ticks at the values swept
        ax.set_xticks(xs, [f"{v:g}" for v in xs])
        ax.minorticks_off()
    if p.logy:
        ax.set_yscale("symlog" if any(q[1] <= 0 for pts in data.values() for q in pts) else "log")
    counts = sorted({q[3] for pts in data.values() for q in pts})
    n = f"n = {counts[0]}" if len(counts) == 1 else f"n = {counts[0]}-{counts[-1]}" if counts else "no data"
    ax.set_xlabel(p.xlabel or label(p.x, exp.problem, rows))
    ylabel = p.ylabel or label(p.y, exp.problem, rows)
    if p.minus is not None:
        ylabel += f" minus {p.minus}'s"
    band = f"{p.agg}, {int(p.ci * 100)} % Student-t interval ({n})" if counts[-1:] != [1] else "one seed each"
    ax.set_ylabel(f"{ylabel}\n{band}")
    where = ", ".join(f"{k} = {v}" for k, v in p.where.items())
    title = _wrap(p.title or f"{exp.name}: {p.y} vs {p.x}") + (f"\n({where})" if where else "")
    ax.set_title(title, fontsize="medium")
    notes = _missing(rows, p, data)
    if data:  # beside the axes, so that it never hides a series
        fig.legend(loc="outside right upper", fontsize="small", title="\n".join(notes) or None,
                   title_fontsize="x-small")
    else:
        ax.text(0.5, 0.5, "\n".join(notes), transform=ax.transAxes, ha="center", va="center", fontsize="small")
    return fig
