"""The ``edgeopt`` command. Exit codes: 0 success, 1 infeasible or no solution, 2 bad input or usage, 3 the Dask
scheduler could not be reached or was lost (finished rows kept), 130 / 143 SIGINT / SIGTERM."""
from __future__ import annotations

import json
import logging
import sys
from functools import cache
from typing import List, Optional

import orjson
import typer

from edgeopt.errors import RULE_CHARS, ClusterLost, InputError, Interrupted, catch_signals, cut, shown

# NumPy, pydantic, Pyomo and rich load inside the commands that need them: `edgeopt --help` stays fast.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Exact models, paper heuristics and baselines for edge/cloud/satellite offloading problems.")


@cache
def out():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


@cache
def err():
    from rich.console import Console

    return Console(stderr=True)


MethodOpt = typer.Option(None, "-m", "--method", help="method name, or exact|heuristic|baseline|bound|learned|all (repeatable)")
SolverOpt = typer.Option(None, "--solver", help="solver for exact methods: highs, scip, gurobi, cbc, ... ")
TimeOpt = typer.Option(60.0, "--time-limit", help="seconds per method call, model building included; "
                                                   "a run cut short is reported as time_limit")
GapOpt = typer.Option(None, "--mip-gap", help="relative optimality gap at which exact solvers stop (default 1e-6)")
ThreadsOpt = typer.Option(None, "--threads", help="solver threads")
SeedOpt = typer.Option(0, "--seed", help="seed for randomized methods")
JsonOpt = typer.Option(False, "--json", help="print JSON instead of a table")
MethodOptionOpt = typer.Option([], "--option", help="method option KEY=VALUE, given to the methods that take it (repeatable)")


def _method_options(solver, mip_gap, threads, pairs: list[str]) -> dict:
    return {"solver": solver, "mip_gap": mip_gap, "threads": threads, **_parse_options(pairs)}


GENERATOR_FLAGS = ("preset", "size", "seed")  # what `generate` and `adversary` set with flags, not --option


def _keywords(fn) -> tuple[str, ...]:
    """The named parameters of ``fn``: an --option of one of these names would collide with them."""
    import inspect

    return tuple(n for n, p in inspect.signature(fn).parameters.items() if p.kind is not p.VAR_KEYWORD)


def _parse_options(pairs: list[str], flags: tuple[str, ...] = ()) -> dict:
    """``--option KEY=VALUE`` pairs as a dict; a KEY that one of the command's ``flags`` sets is refused."""
    opts = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise InputError("--option", f"must be KEY=VALUE, got {shown(pair)}")
        key, value = pair.split("=", 1)
        if key in flags:
            raise InputError(f"--option {key}", f"is set with --{key.replace('_', '-')}, not as an option")
        try:  # JSON values (numbers, true, lists); orjson refuses NaN, Infinity and 1e400, which stay text
            opts[key] = orjson.loads(value)
        except orjson.JSONDecodeError:
            opts[key] = value
    return opts


@app.command("list")
def list_cmd(as_json: bool = JsonOpt,
             refresh: bool = typer.Option(False, "--refresh", help="rebuild the cached list (see README)")):
    """Problems, their methods and presets, importers, and the solvers found on this machine."""
    from edgeopt.catalog import catalog

    doc = catalog(refresh=refresh)
    if as_json:
        print(json.dumps(doc, indent=1))
        return
    from rich.table import Table

    for pid, p in doc["problems"].items():
        t = Table(title=f"{pid} ({p['sense']}imize) — presets: {', '.join(p['presets'])}", title_justify="left")
        t.add_column("method")
        t.add_column("kind")
        t.add_column("what it is")
        for name, m in p["methods"].items():
            t.add_row(name, m["kind"], m["summary"])
        out().print(t)
    if doc["importers"]:
        out().print("importers: " + ", ".join(f"{n} -> {i['problem']}" for n, i in doc["importers"].items()))
    out().print("solvers: " + ", ".join(f"{n} ({'found' if ok else 'not installed'})" for n, ok in doc["solvers"].items()))


@app.command()
def generate(problem: str = typer.Argument(..., help="problem id"),
             preset: Optional[str] = typer.Option(None, "--preset", help="generator preset (default: the first)"),
             size: Optional[int] = typer.Option(None, "--size", help="count of the main entity"),
             seed: int = typer.Option(0, "--seed"),
             option: List[str] = typer.Option([], "--option", help="generator option KEY=VALUE (repeatable)"),
             output: str = typer.Option(..., "-o", "--output", help="instance file to write (.json or .json.gz)")):
    """Generate an instance with the paper's parameters."""
    from edgeopt import io, registry

    opts = _parse_options(option, GENERATOR_FLAGS)
    prob = registry.problem(problem)
    inst = prob.generate(preset=preset, size=size, seed=seed, **opts)
    io.save(inst, output)
    err().print(f"wrote {output} ({inst.name})")


@app.command()
def validate(file: str = typer.Argument(..., help="instance file"),
             solution: Optional[str] = typer.Argument(None, help="solution file to check against the instance"),
             as_json: bool = JsonOpt):
    """Check an instance file and, with a solution file (one solution or a `solve -o` array), each solution."""
    from edgeopt import io, registry

    inst = io.load(file)
    if solution is None:
        if as_json:
            print(json.dumps({"problem": inst.problem, "instance": inst.name, "valid": True}))
        else:
            out().print(f"{file}: valid {inst.problem} instance {inst.name!r}")
        return
    verdicts = []
    for method, sol in io.load_solutions(inst, solution):
        ev = registry.problem(inst.problem).evaluate(inst, sol)
        verdicts.append({"problem": inst.problem, "instance": inst.name, "method": method, "objective": ev.objective,
                         "feasible": ev.feasible, "violations": ev.violations, "details": ev.details})
    if as_json:
        _print_json(verdicts[0] if len(verdicts) == 1 else verdicts)
    else:
        for v in verdicts:
            who = f"{v['method']}: " if v["method"] else ""
            out().print(f"{who}objective {v['objective']}  feasible {v['feasible']}")
            for x in v["violations"]:
                out().print(f"  violation: {x}")
            for k, x in v["details"].items():
                out().print(f"  {k}: {x}")
    raise typer.Exit(0 if all(v["feasible"] for v in verdicts) else 1)


@app.command()
def solve(file: str = typer.Argument(..., help="instance file"), method: Optional[List[str]] = MethodOpt,
          solver: Optional[str] = SolverOpt, time_limit: float = TimeOpt, mip_gap: Optional[float] = GapOpt,
          threads: Optional[int] = ThreadsOpt, seed: int = SeedOpt, option: List[str] = MethodOptionOpt,
          output: Optional[str] = typer.Option(None, "-o", "--output", help="write the solution file(s) here"),
          as_json: bool = JsonOpt):
    """Solve an instance with one or more methods; every objective is the referee's."""
    from edgeopt import compare as cmp
    from edgeopt import io, registry
    from edgeopt.workers import Task, run_tasks

    cmp.check_run(seed, time_limit)
    inst = io.load(file)
    prob = registry.problem(inst.problem)
    chosen = prob.select(method, inst)
    opts = _method_options(solver, mip_gap, threads, option)
    cmp.check_options(chosen, opts)
    if opts.get("solver"):  # a solver the user names must exist: exit 2 before anything runs
        from edgeopt.solvers import check_solver

        check_solver(opts["solver"])
    results = [None] * len(chosen)

    def done(k, result):
        results[k] = result

    def started(k):
        if not as_json:
            err().print(f"[dim]running {chosen[k].name} ...[/dim]")

    run_tasks([Task(inst, m.name, seed, time_limit, opts) for m in chosen], done, on_start=started)
    if output:
        docs = [io.solution_doc(r) for r in results]
        io.write_json(docs[0] if len(docs) == 1 else docs, output)
    if as_json:
        dicts = [cmp.solve_row(r) for r in results]
        _print_json(dicts[0] if len(dicts) == 1 else dicts)
    else:
        from rich.table import Table

        t = Table(title=f"{inst.name} ({prob.id}, {prob.sense}imize)")
        for col in ("method", "kind", "status", "objective", "feasible", "bound", "gap", "wall_s"):
            t.add_column(col, justify="right" if col in ("objective", "bound", "gap", "wall_s") else "left")
        for r in results:
            t.add_row(r.method, r.kind, r.status, _num(r.objective), "" if r.status == "bound" else str(r.feasible),
                      _num(r.bound),
                      "" if r.gap is None else f"{r.gap:.2e}", f"{r.wall_s:.3f}")
        out().print(t)
        for r in results:
            for v in r.violations[:5]:
                out().print(f"  {r.method}: {v}")
            if r.message:
                out().print(f"  {r.method}: {r.message}")
    # 1: no method found a feasible solution or proved a bound
    raise typer.Exit(0 if any(r.feasible or r.status == "bound" for r in results) else 1)


def _print_json(obj) -> None:
    from edgeopt.io import dumps

    print(dumps(obj).decode())


def _num(x) -> str:
    return "" if x is None else f"{x:.6g}"


@app.command()
def compare(files: List[str] = typer.Argument(..., help="instance files"), method: Optional[List[str]] = MethodOpt,
            jobs: int = typer.Option(1, "--jobs", help="parallel worker processes"),
            output: Optional[str] = typer.Option(None, "-o", "--output",
                                                 help="results CSV; an existing one is resumed"),
            plot: Optional[str] = typer.Option(None, "--plot", help="write a gap bar chart (PNG/SVG/PDF)"),
            solver: Optional[str] = SolverOpt, time_limit: float = TimeOpt, mip_gap: Optional[float] = GapOpt,
            threads: Optional[int] = ThreadsOpt, seed: int = SeedOpt, option: List[str] = MethodOptionOpt,
            as_json: bool = JsonOpt):
    """Run methods over instances and print each one's gap to the proven optimum (or best bound)."""
    from pathlib import Path

    from edgeopt import compare as cmp
    from edgeopt import report

    if plot and Path(plot).suffix.lower() not in report.PLOT_SUFFIXES:  # checked before anything runs
        raise InputError("--plot", f"must end in {', '.join(report.PLOT_SUFFIXES[1:])} (or none: PNG), got {shown(plot)}")
    with report.RunProgress(console=err(), enabled=not as_json) as progress:
        rows = cmp.compare(files, method, jobs=jobs, seed=seed, time_limit=time_limit, out=output, isolate=True,
                           on_plan=progress.planned, on_start=progress.started, on_row=progress.finished,
                           **_method_options(solver, mip_gap, threads, option))
    if plot:
        report.plot_gaps(rows, plot)
    if as_json:
        _print_json([{k: r[k] for k in cmp.FIELDS} for r in rows])
    else:
        out().print(report.gap_table(rows, width=out().width))
        if output:
            err().print(f"wrote {output}")


@app.command()
def export(file: str = typer.Argument(..., help="instance file"),
           fmt: str = typer.Option(..., "--format", help="lp or mps (linear models), nl or gms (any model)"),
           output: str = typer.Option(..., "-o", "--output", help="model file to write")):
    """Write the exact model of an instance as LP, MPS, NL or GAMS, for other solvers."""
    from edgeopt import io, registry
    from edgeopt.errors import TooLarge
    from edgeopt.solvers import FORMATS, check_model_size, write_model

    if fmt not in FORMATS:
        raise InputError("--format", f"must be one of {', '.join(FORMATS)}, got {shown(fmt)}")
    inst = io.load(file)
    form = registry.problem(inst.problem).formulation()
    if form is None or not hasattr(form, "build_model"):
        raise InputError(file, f"is a {inst.problem} instance, and {inst.problem} has no Pyomo model to export")
    try:
        check_model_size(form.model_size(inst))
    except TooLarge as exc:
        raise InputError(file, f"cannot be exported: {exc}") from None
    write_model(form.build_model(inst), output, fmt)
    err().print(f"wrote {output}")


@app.command("import")
def import_cmd(kind: str = typer.Argument(..., help="file format (gap, stg, gxl, dot; `edgeopt list` shows all)"),
               file: str = typer.Argument(..., help="file to convert"),
               processors: Optional[int] = typer.Option(None, "--processors", help="identical processors (stg, gxl, dot)"),
               output: str = typer.Option(..., "-o", "--output", help="instance file to write")):
    """Convert a classic benchmark file (OR-Library GAP, Kasahara STG, GXL/DOT task graph) into an instance file."""
    from edgeopt import io, registry

    imps = registry.importers()
    if kind not in imps:
        raise InputError("KIND", f"must be one of {', '.join(imps) or '(none installed)'}, got {shown(kind)}")
    opts = {"processors": processors} if processors is not None else {}
    import inspect

    if opts and "processors" not in inspect.signature(imps[kind].fn).parameters:
        raise InputError("--processors", f"is not an option of the {kind} importer")
    inst = imps[kind](file, **opts)
    io.save(inst, output)
    err().print(f"wrote {output} ({inst.name})")


@app.command()
def adversary(problem: str = typer.Argument(..., help="problem id"),
              method: str = typer.Option(..., "-m", "--method", help="the heuristic (or baseline) to attack"),
              preset: Optional[str] = typer.Option(None, "--preset", help="generator preset (default: the first)"),
              size: Optional[int] = typer.Option(None, "--size", help="count of the main entity; keep it small "
                                                                      "enough for the exact method"),
              budget: float = typer.Option(60.0, "--budget", help="seconds of search (wall time, every run included)"),
              evaluations: Optional[int] = typer.Option(None, "--evaluations", help="stop after this many candidates"),
              seed: int = typer.Option(0, "--seed", help="seed of the search and the first generator instance"),
              reference: Optional[str] = typer.Option(None, "--reference",
                                                      help="exact method proving each optimum (default: the first)"),
              time_limit: float = typer.Option(10.0, "--time-limit", help="seconds per method call; a candidate "
                                                                            "not proven optimal within it is skipped"),
              floor: float = typer.Option(0.1, "--floor", help="skip candidates whose optimum is below this "
                                                                "fraction of the first proven optimum's magnitude"),
              option: List[str] = typer.Option([], "--option", help="generator option KEY=VALUE (repeatable)"),
              output: str = typer.Option(..., "-o", "--output", help="worst instance file to write")):
    """Search for the instance where a heuristic is furthest from the proven optimum, and write it."""
    from edgeopt import adversary as adv

    def improved(elapsed: float, evals: int, gap: float) -> None:
        out().print(f"{elapsed:8.1f} s  {evals:6d} evaluations  gap {gap:.4%}")

    found = adv.search(problem, method, size=size, preset=preset, budget=budget, evaluations=evaluations, seed=seed,
                       reference=reference, time_limit=time_limit, floor=floor, generator=_parse_options(option, GENERATOR_FLAGS),
                       on_improve=improved)
    counts = (f"{found.evaluations} evaluations, {found.unproven} not proven optimal (skipped), "
              f"{found.heuristic_failed} with no feasible {method} solution, {found.degenerate} below the floor "
              f"(skipped), {found.invalid} invalid proposals")
    if found.best is None:
        err().print(f"no candidate was proven optimal by {found.reference}: {counts}; nothing written")
        raise typer.Exit(1)
    adv.write(found, output)
    b = found.best
    out().print(f"worst gap {b.gap:.4%}: {method} {b.objective:.6g} vs optimum {b.optimum:.6g} ({found.reference}); "
                f"{counts}")
    err().print(f"wrote {output}")


@app.command()
def simulate(problem: str = typer.Argument(..., help="problem id (cdgs, qllms, dagsched, offload, vcache)"),
             method: str = typer.Option(..., "-m", "--method", help="the policy: any method of the problem"),
             preset: Optional[str] = typer.Option(None, "--preset", help="preset of the system (default: the "
                                                                         "simulation's)"),
             intervals: int = typer.Option(100, "--intervals", help="intervals to simulate"),
             seed: int = typer.Option(0, "--seed", help="seed of arrivals, failures and the method"),
             reference: str = typer.Option("auto", "--reference", help="method run on the same state each interval "
                                                                       "(auto: the simulation's, none: no reference)"),
             time_limit: Optional[float] = typer.Option(None, "--time-limit", help="seconds per method call"),
             option: List[str] = typer.Option([], "--option", help="simulation parameter or method option "
                                                                   "KEY=VALUE (repeatable)"),
             output: Optional[str] = typer.Option(None, "-o", "--output", help="run directory (default "
                                                                               "runs/simulate-<id>-<method>-s<seed>)")):
    """Simulate a system over intervals with a method as the per-interval policy; table and figures to DIR."""
    from edgeopt import report
    from edgeopt.simulation import RESULTS
    from edgeopt.simulation import simulate as run_simulation

    out_dir = output or f"runs/simulate-{problem}-{method}-s{seed}"
    with report.RunProgress(total=intervals, console=err()) as progress:
        def step(t: int, families: dict) -> None:
            decision = families["decision"]  # an idle interval (nothing arrived) has no decision to judge
            progress.finished({"instance": f"interval {t}", "method": method, "status": decision["status"],
                               "feasible": decision.get("feasible", True), "objective": decision.get("objective"),
                               "wall_s": decision.get("wall_s", 0.0)})

        run = run_simulation(problem, method, preset=preset, intervals=intervals, seed=seed, out=out_dir,
                             reference=None if reference == "none" else reference, time_limit=time_limit,
                             on_interval=step, isolate=True, **_parse_options(option, _keywords(run_simulation)))
    from rich.table import Table

    t = Table(title=f"{problem} ({run.preset}), {method}, {intervals} intervals, seed {seed}", title_justify="left")
    t.add_column("over the run")
    t.add_column("value", justify="right")
    for key, value in run.summary.items():
        t.add_row(key, _num(value))
    out().print(t)
    err().print(f"wrote {run.path / RESULTS} and figures in {run.path / 'figures'}")


@app.command()
def train(problem: str = typer.Argument(..., help="problem id (dagsched)"),
          method: str = typer.Option(..., "-m", "--method", help="algorithm (dagsched: ucb-coma, coma, mappo, maddpg; offload: mappo, ippo, vdn, qmix; vcache: dlrs, mappo)"),
          preset: Optional[str] = typer.Option(None, "--preset", help="generator preset of the training episodes"),
          size: Optional[int] = typer.Option(None, "--size", help="count of the main entity (dagsched: jobs = agents; offload: users = agents; vcache: requests per edge and interval)"),
          option: List[str] = typer.Option([], "--option", help="generator or simulation option, decision-process "
                                                                "option (dagsched: reward, source; offload: split, slots; vcache: intervals) or "
                                                                "hyper-parameter of the algorithm, KEY=VALUE"),
          episodes: int = typer.Option(700, "--episodes", help="training episodes (each a fresh instance or simulated run)"),
          seed: int = typer.Option(0, "--seed", help="seed of the networks, exploration and training instances"),
          gap: bool = typer.Option(False, "--gap", help="prove each episode's optimum (cached) and show the mean gap"),
          resume: bool = typer.Option(False, "--resume", help="continue from the checkpoint beside POLICY"),
          output: str = typer.Option(..., "-o", "--output", help="policy file to write (.npz)")):
    """Train a learned method; the policy file, its learning curve (Parquet + PNG) and checkpoints go beside -o."""
    try:
        from edgeopt.learn.train import checkpoint_path, plan, train as run_training
    except ImportError as exc:
        raise InputError("train", f"needs the learn extra (pip install 'edgeopt[learn]'): {exc}") from None
    import numpy as np
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    opts = _parse_options(option, ("seed", "episodes", "preset", "size"))
    if not output.endswith(".npz"):
        raise InputError("-o", f"must name a .npz policy file, got {shown(output)}")
    plan(problem, method, preset, size, opts, episodes, seed)  # bad options: exit 2 before the progress bar or any file
    command = " ".join(["edgeopt", "train", problem, "-m", method]
                       + (["--preset", preset] if preset else []) + (["--size", str(size)] if size else [])
                       + [f"--option {o}" for o in option] + ["--episodes", str(episodes), "--seed", str(seed)]
                       + (["--gap"] if gap else []) + ["-o", output])
    recent: list[dict] = []
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[stats]}"), console=err())
    task = progress.add_task(f"{method}", total=episodes, stats="")

    def episode_done(row: dict) -> None:
        if not recent:  # the bar appears with the first episode, after every check passed
            progress.start()
        recent.append(row)
        last = recent[-50:]
        stats = (f"reward {np.mean([r['reward'] for r in last]):.4g}  "
                 f"objective {np.mean([r['objective'] for r in last]):.4g}")
        gaps = [r["gap"] for r in last if r.get("gap") is not None]
        if gaps:
            stats += f"  gap {np.mean(gaps):.2%}"
        progress.update(task, completed=row["episode"], stats=stats + " (last 50)")

    try:
        run_training(problem, method, preset=preset, size=size, options=opts, episodes=episodes, seed=seed,
                     out=output, resume=resume, gap=gap, command=command, on_episode=episode_done)
    except Interrupted:
        if recent:
            progress.stop()
        if checkpoint_path(output).exists():
            err().print(f"last checkpoint kept: {checkpoint_path(output)} (continue with --resume)")
        raise
    finally:
        if recent:
            progress.stop()
    err().print(f"wrote {output} and its learning curve beside it")


@app.command()
def schema(problem: str = typer.Argument(..., help="problem id")):
    """Print the JSON Schema of an instance file."""
    from edgeopt import io

    print(json.dumps(io.schema(problem), indent=1))


experiment_app = typer.Typer(no_args_is_help=True, help="Sweeps over generator options, sizes, seeds and methods.")
app.add_typer(experiment_app, name="experiment")


@experiment_app.command("run")
def experiment_run(file: str = typer.Argument(..., help="experiment file (.toml)"),
                   output: Optional[str] = typer.Option(None, "-o", "--output",
                                                        help="run directory (default runs/<name>); resumed if it exists"),
                   jobs: int = typer.Option(1, "--jobs", help="worker processes (local) or workers of a local Dask cluster"),
                   executor: str = typer.Option("local", "--executor", help="local or dask"),
                   scheduler: Optional[str] = typer.Option(None, "--scheduler",
                                                           help="address of a running Dask scheduler (tcp://host:8786)")):
    """Run (or resume) an experiment; rows go to DIR/results.parquet."""
    from edgeopt import experiment, report

    exp = experiment.read(file)
    if scheduler and executor != "dask":
        executor = "dask"
    with report.RunProgress(console=err()) as progress:
        run_dir = experiment.run(exp, output, jobs=jobs, executor=executor, scheduler=scheduler,
                                 on_plan=progress.planned, on_start=progress.started, on_row=progress.finished)
    err().print(f"wrote {run_dir / experiment.RESULTS}")


@experiment_app.command("plot")
def experiment_plot(run_dir: str = typer.Argument(..., help="run directory of `edgeopt experiment run`")):
    """Draw the experiment's plots (PNG and PDF) into DIR/figures."""
    from edgeopt import experiment

    for path in experiment.plot(run_dir):
        err().print(f"wrote {path} (and .pdf)")


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host", help="address to listen on; beyond loopback only with "
                                                                "--token-file"),
          port: int = typer.Option(8000, "--port", help="port to listen on (0: any free one, printed)"),
          jobs: Optional[int] = typer.Option(None, "--jobs", help="worker processes (default: the CPUs)"),
          scheduler: Optional[str] = typer.Option(None, "--scheduler", help="run the work on the Dask cluster at this "
                                                                            "address (tcp://host:8786)"),
          store: str = typer.Option("edgeopt-serve.sqlite", "--store", help="SQLite file of the jobs and their rows"),
          token_file: Optional[str] = typer.Option(None, "--token-file", help="file holding the bearer token that "
                                                                              "every request must carry"),
          max_body: float = typer.Option(16.0, "--max-body", help="MB a request body may hold (gzip: inflated)"),
          max_time_limit: float = typer.Option(600.0, "--max-time-limit", help="seconds: a larger time_limit is "
                                                                                "refused (422)"),
          queue: int = typer.Option(100, "--queue", help="solves and jobs held at once; one more is answered 429")):
    """Serve the problems, methods and referee over HTTP/JSON (OpenAPI at /docs) until SIGINT or SIGTERM."""
    import os

    from edgeopt import limits

    limits.count(port, "--port", 0, limits.PORT_MAX)
    if scheduler is not None and jobs is not None:
        raise InputError("--jobs", "is the Dask cluster's own with --scheduler (its workers' threads)")
    jobs = limits.jobs(jobs if jobs is not None else min(len(os.sched_getaffinity(0)), limits.JOBS_MAX))
    body = limits.megabytes(max_body, "--max-body", limits.BODY_MB_MAX)
    limits.time_limit(max_time_limit, "--max-time-limit")
    limits.count(queue, "--queue", 1, limits.QUEUE_MAX)
    token = _token(token_file) if token_file is not None else None
    try:
        from edgeopt import serve as service
    except ImportError as exc:
        raise InputError("serve", f"needs the serve extra: pip install 'edgeopt[serve]' ({exc.name} is missing)") from None
    if token is None and not service.is_loopback(host):
        raise InputError("--host", f"{shown(host)} is reachable from other machines: give --token-file (a bearer "
                                   "token every request must carry), or listen on 127.0.0.1")
    settings = service.Settings(host=host, port=port, jobs=jobs, scheduler=scheduler, store=store, token=token,
                                max_body=body, max_time_limit=max_time_limit, queue=queue)
    try:
        service.run(settings)
    except Interrupted as exc:  # the shutdown said what it did; the exit code says why
        raise typer.Exit(128 + exc.signum) from None


def _token(path: str) -> str:
    """The bearer token of --token-file: printable ASCII without spaces, at least 16 characters."""
    import re

    from edgeopt import io

    try:
        text = io.read_input(path, "a file holding the bearer token").decode("utf-8", errors="replace").strip()
    except InputError as exc:
        raise InputError("--token-file", f"{exc.path} {exc.rule}") from None
    if not re.fullmatch(r"[\x21-\x7e]{16,}", text):
        raise InputError("--token-file", f"{path} must hold one token of at least 16 printable ASCII characters and "
                                         "no spaces (e.g. python -c 'import secrets; print(secrets.token_urlsafe())')")
    return text


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input and usage errors print one line and exit 2, never a traceback.

    SIGINT and SIGTERM unwind the run (workers killed, temporary files removed, nothing half-written)
    and exit 130 and 143.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("edgeopt: %(levelname)s: %(message)s"))
    logging.getLogger("edgeopt").addHandler(handler)
    restore = catch_signals()
    try:
        code = app(args=argv, prog_name="edgeopt", standalone_mode=False)  # returns typer.Exit's code
        code = code if isinstance(code, int) else 0
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    except ClusterLost as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 3
    except Interrupted as exc:
        print(f"edgeopt: {exc}; nothing was written for the unfinished work", file=sys.stderr)
        code = 128 + exc.signum
    except RecursionError:
        print("error: the input nests too deep to read", file=sys.stderr)
        code = 2
    except typer.Abort:  # end of input at a prompt
        code = 1
    except Exception as exc:
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):  # not one of click's (vendored or not)
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare `edgeopt` or `edgeopt experiment`: the help
            exc.show()
        else:  # usage: an unknown flag, a missing argument, 'abc' for a number: one line, like bad input
            ctx = getattr(exc, "ctx", None)
            print(f"error: {cut(exc.format_message(), RULE_CHARS)}"
                  + (f" (see {ctx.command_path} --help)" if ctx is not None else ""), file=sys.stderr)
        code = exc.exit_code
    finally:
        restore()
        logging.getLogger("edgeopt").removeHandler(handler)
    sys.exit(code)
