"""Run methods over instances, measure each against the proven optimum (or best bound), tabulate, plot."""
from __future__ import annotations

import csv
import io as _io
import json
from pathlib import Path
from typing import Callable, Iterable

from edgeopt import io, limits, registry
from edgeopt.model import InputError, Instance
from edgeopt.result import Result
from edgeopt.run import run_one

FIELDS = ["problem", "instance", "method", "kind", "status", "objective", "feasible", "violations", "bound",
          "gap", "wall_s", "seed", "solution", "gap_to_best", "gap_ref", "file", "message"]


def check_options(methods: list[registry.Method], options: dict,
                  where: Callable[[str], str] = registry.option_flag) -> None:
    """Every given option must be taken by at least one of the methods that will run, with a value that each
    of them accepts (``Method.check_options``): checked before anything runs. ``where(key)`` names the option
    in an error (default: its command-line flag)."""
    for key, value in options.items():
        if value is None:
            continue
        takers = [m for m in methods if m.takes(key)]
        if not takers:
            names = ", ".join(m.name for m in methods)
            raise InputError(where(key), f"is not an option of any selected method ({names})")
        for m in takers:
            m.check_options({key: value}, where)


def check_run(seed: int, time_limit: float | None, jobs: int = 1) -> None:
    """The ranges of a run's settings (``edgeopt.limits``): seed, time limit, worker processes."""
    limits.seed(seed)
    if time_limit is not None:
        limits.time_limit(time_limit)
    limits.jobs(jobs)


def solve(source, method: str | list[str] | None = None, *, seed: int = 0, time_limit: float | None = None,
          **options) -> Result | list[Result]:
    """Solve an instance (file path, dict or Instance) with one method (-> Result) or several (-> list).

    ``method`` may be a method name, a kind (``exact``, ``heuristic``, ``baseline``, ``bound``), ``all`` or a list.
    """
    instance = source if isinstance(source, Instance) else io.load(source)
    prob = registry.problem(instance.problem)
    if isinstance(method, str) and method in prob.methods:
        return run_one(instance, method, seed=seed, time_limit=time_limit, **options)
    names = [method] if isinstance(method, str) else method
    return [run_one(instance, m.name, seed=seed, time_limit=time_limit, **options)
            for m in prob.select(names, instance)]


def solve_row(result: Result) -> dict:
    """The ``solve --json`` object of one result (the service's row too)."""
    return {k: v for k, v in result.to_dict().items() if k in FIELDS or k == "details"}


def _row(result: Result, file: str) -> dict:
    row = {k: v for k, v in result.to_dict().items() if k in FIELDS}
    row.update(file=file, gap_to_best=None, gap_ref=None)
    return row


def add_gaps(rows: list[dict], reference: str = "auto") -> None:
    """Fill ``gap_to_best``: relative gap to the proven optimum, else the tightest proven bound (of exact
    and bound methods), else the best found (``reference="best"``: always the best found).

    ``gap_ref`` says which of the three the gap is measured against. A bound row's ``gap_to_best`` is how
    far its bound lies from that reference (0 for the tightest bound when it is the reference).
    """
    by_instance: dict[str, list[dict]] = {}
    for r in rows:
        by_instance.setdefault(r["instance"], []).append(r)
    for group in by_instance.values():
        sense = registry.problem(group[0]["problem"]).sense
        better = min if sense == "min" else max
        feasible = [r["objective"] for r in group if r["feasible"] and r["objective"] is not None]
        proofs = [r for r in group if r["kind"] in ("exact", "bound")] if reference == "auto" else []
        optimal = [r["objective"] for r in proofs if r["status"] == "optimal" and r["feasible"]]
        bounds = [r["bound"] for r in proofs if r["bound"] is not None]
        if optimal:
            ref, how = better(optimal), "optimum"
        elif bounds:  # the tightest bound: largest lower bound (min) or smallest upper bound (max)
            ref, how = (max if sense == "min" else min)(bounds), "bound"
        elif feasible:
            ref, how = better(feasible), "best found"
        else:
            continue
        for r in group:
            is_bound = r["status"] == "bound"
            value = r["bound"] if is_bound else r["objective"] if r["feasible"] else None
            if value is not None:  # > 0: a solution worse than the reference, a bound on its safe side
                diff = value - ref if (sense == "min") != is_bound else ref - value
                r["gap_to_best"] = diff / max(abs(ref), 1e-9)
                r["gap_ref"] = how


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        text = io.read_input(path, "a compare results file (.csv)").decode("utf-8")
        rows = list(csv.DictReader(_io.StringIO(text, newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(str(path), f"cannot be read as an edgeopt compare file ({exc})") from None
    missing = [f for f in FIELDS if rows and f not in rows[0]]
    if missing:
        raise InputError(str(path), f"is not an edgeopt compare file (missing columns {', '.join(missing)})")
    out = []
    for line, r in enumerate(rows, start=2):
        try:
            for key in ("objective", "bound", "gap", "wall_s", "gap_to_best"):
                r[key] = float(r[key]) if r[key] not in ("", None) else None
            r["seed"] = int(r["seed"])
            r["feasible"] = r["feasible"] == "True"
            r["violations"] = json.loads(r["violations"]) if r["violations"] else []
            r["solution"] = json.loads(r["solution"]) if r["solution"] else None
        except (ValueError, TypeError) as exc:
            raise InputError(f"{path} line {line}", f"is not a row edgeopt wrote ({exc})") from None
        r["message"] = r["message"] or None
        out.append(r)
    return out


def _write_csv(rows: list[dict], path: Path) -> None:
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=FIELDS)
    w.writeheader()
    for r in rows:
        w.writerow({k: json.dumps(r[k]) if k in ("violations", "solution") else ("" if r[k] is None else r[k])
                    for k in FIELDS})
    io.write_bytes(buf.getvalue().encode("utf-8"), path)


def compare(files: Iterable[str], methods: list[str] | None = None, *, jobs: int = 1, seed: int = 0,
            time_limit: float | None = None, out: str | None = None, isolate: bool = False,
            on_plan: Callable[[int], None] | None = None, on_start: Callable[[str], None] | None = None,
            on_row: Callable[[dict], None] | None = None, **options) -> list[dict]:
    """Run ``methods`` on every instance file; one row per (instance, method), gaps filled in.

    With ``out`` an existing CSV is read first and the (instance, method) pairs it holds are skipped;
    the file is rewritten (atomically) after every finished row, so an interrupted run resumes. With
    ``jobs > 1`` or ``isolate`` the methods run in worker processes (``edgeopt.workers``), which a
    signal or an overrun time limit can stop; otherwise in this process.
    """
    files = [str(f) for f in files]
    if not files:
        raise InputError("FILES", "needs at least one instance file")
    check_run(seed, time_limit, jobs)
    instances = {f: io.load(f) for f in files}  # validate every file before running anything
    names: dict[str, str] = {}
    for f, inst in instances.items():
        if inst.name in names:
            raise InputError(f, f"has the same instance name {inst.name!r} as {names[inst.name]}; names must be unique")
        names[inst.name] = f
    out_path = Path(out) if out else None
    rows = _read_csv(out_path) if out_path else []
    done = {(r["instance"], r["method"]) for r in rows}
    selected = {f: registry.problem(inst.problem).select(methods, inst) for f, inst in instances.items()}
    check_options([m for ms in selected.values() for m in ms], options)
    tasks = [(f, m.name) for f, ms in selected.items() for m in ms if (instances[f].name, m.name) not in done]
    if on_plan:
        on_plan(len(tasks))
    new: list[dict | None] = [None] * len(tasks)

    def finish(k: int, result: Result) -> None:
        new[k] = row = _row(result, tasks[k][0])
        if out_path:
            done_rows = rows + [r for r in new if r is not None]
            add_gaps(done_rows)
            _write_csv(done_rows, out_path)
        if on_row:
            on_row(row)

    def start(k: int) -> None:
        if on_start:
            on_start(f"{instances[tasks[k][0]].name} · {tasks[k][1]}")

    if jobs > 1 or isolate:
        from edgeopt.workers import Task, run_tasks

        work = [Task(instances[f], name, seed, time_limit, options) for f, name in tasks]
        run_tasks(work, finish, jobs=jobs, on_start=start)
    else:
        for k, (f, name) in enumerate(tasks):
            start(k)
            finish(k, run_one(instances[f], name, seed=seed, time_limit=time_limit, **options))
    rows += [r for r in new if r is not None]
    add_gaps(rows)
    if out_path:
        _write_csv(rows, out_path)
    return rows
