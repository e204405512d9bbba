"""Simulation: a system's state over intervals, with any registered method as the per-interval policy.

    edgeopt simulate cdgs --preset starlink-550 --intervals 100 -m cgsc-cstp -o runs/susco
    run = edgeopt.simulate("qllms", "daa", intervals=50, seed=1)

The loop in ``simulate`` is the whole contract. At each interval the problem's ``Simulation`` (a class in
``edgeopt/systems/<id>.py``) turns its state into an Instance, the method decides through the registry
(``Method.run``: the referee judges the decision), and the Simulation carries the decision out and advances
its state, returning that interval's metrics by family. A problem simulates when it has a system module
with a ``Simulation``; a method is a policy when it is registered. The systems are interval-based (60 s
auctions, scheduling rounds), so the loop is time-stepped and each step is vectorized over satellites, dishes
and tasks.

A ``Simulation`` has ``instance(t)`` (None: nothing arrives in interval t), ``fallback(instance)`` (the
decision applied when the method returns none), ``advance(t, instance, solution)`` -> {family: {metric:
value}}, optionally ``reference_instance(instance)`` (what the reference method solves, e.g. with full
information), ``REFERENCE`` (its default reference method; ``reference_method(instance)`` may pick one per
interval, e.g. the exact method on small intervals and a bound on the others) and the static ``largest(**parameters)`` (the
generator arguments of the largest instance an interval can hold: checked against the memory cap before the
system is built), and ``PLOTS``, ``CDF``,
``SUMMARY`` (what the figures and the summary show). Randomness is drawn from ``numpy.random.default_rng([seed, t, ...])``, never
from the policy's choices, so every method meets the same arrivals and failures and a seed repeats a run.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np

from edgeopt import io, limits, registry
from edgeopt.errors import TooLarge
from edgeopt.model import InputError, shown, validation_error

RESULTS = "simulation.parquet"
MAX_INTERVALS = 100_000


@dataclass
class Run:
    """One simulated run: one row per interval and metric family, and the summary over the run."""

    problem: str
    preset: str | None
    method: str
    seed: int
    intervals: int
    rows: list[dict]
    summary: dict[str, float | None]
    path: Path | None = None

    def column(self, family: str, metric: str) -> list:
        """A metric's values over the intervals, in order (None where an interval has no value)."""
        return [r.get(metric) for r in self.rows if r["family"] == family]


def _system_class(prob: registry.Problem):
    if prob.system is None:
        have = [p for p, q in registry.problems().items() if q.system is not None]
        raise InputError("problem", f"{prob.id!r} has no simulation (simulated: {', '.join(have)})")
    return prob.system.Simulation


def _parameters(cls) -> list[str]:
    return [n for n in inspect.signature(cls).parameters if n not in ("preset", "seed")]


def _build(cls, prob: registry.Problem, preset: str | None, seed: int, params: dict):
    """The Simulation, its parameters checked first (exit 2 on a bad one): against the annotations of its
    constructor, by the rule of method options (``Method.check_options``), and, with ``largest``, its busiest
    interval's instance against the memory cap (``instance_bytes``), before anything is built."""
    from pydantic import ConfigDict, ValidationError, validate_call

    if preset is not None and preset not in prob.presets:
        raise InputError("--preset", f"must be one of {', '.join(prob.presets)} for {prob.id}, got {shown(preset)}")

    @functools.wraps(cls.__init__)  # the constructor's signature and annotations, without running it
    def echo(self, **args) -> dict:
        return args

    try:
        args = validate_call(echo, config=ConfigDict(strict=True, allow_inf_nan=False))(
            None, seed=seed, **({"preset": preset} if preset is not None else {}), **params)
    except ValidationError as exc:
        err = validation_error(exc, given=True)
        name = err.path.split(".")[0].split("[")[0]
        raise InputError("--seed" if name == "seed" else f"--option {name}", err.rule) from None
    if hasattr(cls, "largest"):
        try:
            limits.check_memory(prob.module.instance_bytes(**cls.largest(**args)), f"an interval's {prob.id} instance")
        except TooLarge as exc:
            raise InputError("--option values", f"are too large: {exc}") from None
    return cls(**args)


def _gap(policy: float | None, reference: float | None, sense: str) -> float | None:
    """How much worse the policy is than the reference, relative to the reference (sense-aware)."""
    if policy is None or reference is None:
        return None
    diff = policy - reference if sense == "min" else reference - policy
    return diff / max(abs(reference), 1e-12)


def simulate(problem: str, method: str, *, preset: str | None = None, intervals: int = 100, seed: int = 0,
             out: str | Path | None = None, reference: str | None = "auto", time_limit: float | None = None,
             on_interval: Callable[[int, dict], None] | None = None, isolate: bool = False, **options: Any) -> Run:
    """Simulate ``problem`` for ``intervals`` intervals with ``method`` as the policy; returns the Run.

    ``options`` are the Simulation's parameters (``edgeopt.problem(id).system.Simulation``) or options of
    the method; ``reference`` is a method run on the same state each interval (``"auto"``: the Simulation's
    ``REFERENCE``, None: none). With ``out`` the table, the parameters and the figures are written there.
    With ``isolate`` the policy and the reference run in a worker process (``edgeopt.workers``), which a
    signal or an overrun time limit can stop whatever the solver is doing; otherwise in this process.
    """
    limits.count(int(intervals) if isinstance(intervals, np.integer) else intervals, "--intervals", 1, MAX_INTERVALS)
    limits.seed(seed)
    if time_limit is not None:
        limits.time_limit(time_limit)
    prob = registry.problem(problem)
    cls = _system_class(prob)
    policy = prob.method(method)
    names = _parameters(cls)
    params = {k: v for k, v in options.items() if k in names}
    method_opts = {k: v for k, v in options.items() if k not in names}
    for key in method_opts:
        if not policy.takes(key):
            raise InputError(f"--option {key}", f"is neither a parameter of the {problem} simulation "
                                                f"({', '.join(names)}) nor an option of method {method!r}")
    method_opts = policy.check_options(method_opts)
    auto = reference == "auto"
    if auto:
        reference = getattr(cls, "REFERENCE", None)
    ref = prob.method(reference) if reference else None
    system = _build(cls, prob, preset, seed, params)
    rows: list[dict] = []
    with contextlib.ExitStack() as stack:
        decide = _decider(stack if isolate else None)
        for t in range(intervals):
            instance = system.instance(t)
            families: dict[str, dict] = {}
            if instance is None:
                families["decision"] = {"status": "idle"}
                families.update(system.advance(t, None, None))
            else:
                result = decide(policy, instance, seed + t, time_limit, method_opts)
                solution = (prob.solution_type.model_validate(result.solution) if result.solution is not None
                            else system.fallback(instance))
                families["decision"] = {"status": result.status, "objective": result.objective,
                                        "feasible": result.feasible, "violations": len(result.violations),
                                        "wall_s": result.wall_s}
                families.update(system.advance(t, instance, solution))
                if ref is not None:
                    judge = prob.method(system.reference_method(instance)) \
                        if auto and hasattr(system, "reference_method") else ref
                    r = decide(judge, getattr(system, "reference_instance", lambda i: i)(instance), seed + t,
                               time_limit, {})
                    value = r.objective if r.status == "optimal" else r.bound
                    families["reference"] = {"reference": judge.name, "ref_status": r.status,
                                             "ref_objective": r.objective, "ref_bound": r.bound, "ref_value": value,
                                             "gap": _gap(result.objective, r.objective, prob.sense),
                                             "gap_to_value": _gap(result.objective, value, prob.sense)}
            rows += [{"problem": problem, "method": method, "seed": seed, "interval": t, "family": f, **m}
                     for f, m in families.items()]
            if on_interval:
                on_interval(t, families)
    run = Run(problem, getattr(system, "preset", preset), method, seed, intervals, rows, summary(rows, cls))
    if out is not None:
        run.path = write(run, out, {"params": params, "method_options": method_opts, "reference": reference,
                                    "time_limit": time_limit})
    return run


def _decider(stack: contextlib.ExitStack | None) -> Callable:
    """``decide(method, instance, seed, time_limit, options)`` -> Result: in this process, or in a worker
    process that ``stack`` closes."""
    if stack is None:
        return lambda m, instance, seed, time_limit, opts: m.run(instance, seed=seed, time_limit=time_limit, **opts)
    from edgeopt.workers import Pool, Task, checked_input

    pool = stack.enter_context(Pool(1))
    return lambda m, instance, seed, time_limit, opts: checked_input(
        pool.run(Task(instance, m.name, seed, time_limit, opts)))


def summary(rows: list[dict], cls) -> dict[str, float | None]:
    """The Simulation's SUMMARY over the run: sum, mean or last value of a metric over the intervals."""
    out = {}
    for name, (family, metric, how) in getattr(cls, "SUMMARY", {}).items():
        values = [r[metric] for r in rows if r["family"] == family and r.get(metric) is not None]
        out[name] = (None if not values else float(np.sum(values)) if how == "sum" else
                     float(np.mean(values)) if how == "mean" else float(values[-1]))
    return out


def table(rows: list[dict]):
    """The rows as a pyarrow Table (families' metrics side by side; a family's absent metrics are null)."""
    import pyarrow as pa

    columns = list(dict.fromkeys(k for r in rows for k in r))
    return pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])


def load_rows(run_dir: str | Path) -> list[dict]:
    """The rows of a simulation's table, as dicts."""
    import pyarrow.parquet as pq

    path = Path(run_dir) / RESULTS
    if not path.is_file():
        raise InputError(str(run_dir), f"is not a simulation run directory (no {RESULTS})")
    return pq.read_table(path).to_pylist()


def write(run: Run, out: str | Path, settings: dict) -> Path:
    """The table, the run's parameters and summary (simulation.json) and its figures, each written atomically."""
    import pyarrow.parquet as pq

    from edgeopt.experiment import _versions

    out = Path(out)
    buf = BytesIO()
    pq.write_table(table(run.rows), buf)
    io.write_bytes(buf.getvalue(), out / RESULTS)
    doc = {"problem": run.problem, "preset": run.preset, "method": run.method, "seed": run.seed,
           "intervals": run.intervals, **settings, "summary": run.summary, "versions": _versions()}
    io.write_bytes(io.dumps(doc), out / "simulation.json")
    plot([run], out / "figures")
    return out


def _save(fig, path: Path) -> None:
    for suffix in ("png", "pdf"):
        buf = BytesIO()
        fig.savefig(buf, format=suffix, dpi=150)
        io.write_bytes(buf.getvalue(), path.with_suffix(f".{suffix}"))


def plot(runs: list[Run], folder: str | Path) -> list[Path]:
    """Time series of the Simulation's PLOTS and the CDF of its CDF metric, one line per run (PNG and PDF)."""
    from matplotlib.figure import Figure

    folder = Path(folder)
    cls = _system_class(registry.problem(runs[0].problem))
    label = (lambda r: r.method) if len({r.method for r in runs}) == len(runs) else (lambda r: f"{r.method} s{r.seed}")
    panels = [p for p in cls.PLOTS if any(r.column(p[0], p[1]) for r in runs)]
    fig = Figure(figsize=(11, 2.6 * ((len(panels) + 1) // 2)), layout="constrained")
    axes = fig.subplots((len(panels) + 1) // 2, 2, squeeze=False).ravel()
    for ax, (family, metric, title) in zip(axes, panels):
        for r in runs:
            y = [np.nan if v is None else v for v in r.column(family, metric)]
            ax.plot(range(len(y)), y, label=label(r), linewidth=1.2)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("interval")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    axes[0].legend(fontsize="small")
    fig.suptitle(f"{runs[0].problem} ({runs[0].preset}) over time")
    written = [folder / "timeseries.png"]
    _save(fig, written[0])
    family, metric, title = cls.CDF
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for r in runs:
        values = [v for v in r.column(family, metric) if v is not None]
        flat = np.sort(np.concatenate([np.atleast_1d(v) for v in values])) if values else np.zeros(0)
        ax.step(flat, np.arange(1, len(flat) + 1) / max(len(flat), 1), where="post", label=label(r))
    ax.set_xlabel(title)
    ax.set_ylabel("CDF over the run")
    ax.legend(fontsize="small")
    written.append(folder / "cdf.png")
    _save(fig, written[1])
    return written
