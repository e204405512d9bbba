"""Experiments: one file, one table, the same rows on any executor, resumable, strict about bad files."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, running_dask
from edgeopt import experiment

TINY = """
name = "tiny"
problem = "qllms"
preset = "qllms"
sizes = [6]
seeds = 2
methods = ["milp", "daa", {name = "random", label = "rand"}]
time_limit = 20
[grid]
observe = [1.0, 0.5]
[[plots]]
x = "observe"
y = "gap_to_best"
[[plots]]
x = "observe"
y = "objective"
kind = "bar"
logy = true
"""
TIMING = {"wall_s"}  # the only columns two runs of the same experiment may differ in


def _file(tmp_path: Path, text: str = TINY) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


def _key(rows):
    return sorted(({k: v for k, v in r.items() if k not in TIMING} for r in rows),
                  key=lambda r: (r["point"], r["seed"], r["method"]))


def test_local_run_writes_one_row_per_point_seed_method_and_plots(tmp_path):
    run_dir = experiment.run(_file(tmp_path), tmp_path / "run", jobs=2)
    rows = experiment.load_rows(run_dir)
    assert len(rows) == 2 * 2 * 3
    assert {r["method"] for r in rows} == {"milp", "daa", "rand"}
    assert all(r["feasible"] and r["gap_to_best"] >= -1e-9 for r in rows)
    assert all(r["gap_ref"] == "optimum" for r in rows)  # milp proves every tiny instance
    assert (run_dir / "experiment.json").is_file() and "edgeopt" in (run_dir / "run.json").read_text()
    figures = experiment.plot(run_dir)
    assert [p.name for p in figures] == ["gap_to_best-vs-observe.png", "objective-vs-observe.png"]
    assert all(p.stat().st_size > 0 and p.with_suffix(".pdf").is_file() for p in figures)
    again = experiment.run(_file(tmp_path), run_dir)  # everything done: nothing re-runs
    assert _key(experiment.load_rows(again)) == _key(rows)


@pytest.fixture
def dask_cluster():
    """A real Dask scheduler and two workers on 127.0.0.1 (see ``conftest.running_dask``): its address."""
    with running_dask() as (address, _):
        yield address


@pytest.mark.slow
def test_dask_cluster_gives_the_same_rows_as_local(tmp_path, dask_cluster):
    local = experiment.load_rows(experiment.run(_file(tmp_path), tmp_path / "local", jobs=2))
    remote = experiment.load_rows(experiment.run(_file(tmp_path), tmp_path / "dask", executor="dask",
                                                 scheduler=dask_cluster))
    assert _key(remote) == _key(local)


@pytest.mark.slow
def test_interrupt_and_resume_complete_the_table_once(tmp_path):
    """Ctrl-C keeps the finished rows; the re-run adds exactly the missing ones."""
    text = TINY.replace("sizes = [6]", "sizes = [6, 80]").replace("time_limit = 20", "time_limit = 120")
    path, run_dir = _file(tmp_path, text), tmp_path / "run"
    cmd = [sys.executable, "-c", "from edgeopt.cli import main; main()", "experiment", "run", str(path),
           "-o", str(run_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 300
    while time.monotonic() < end and not (run_dir / experiment.RESULTS).exists():  # some rows are finished
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    assert proc.returncode == 130, proc.stderr.read()
    partial = experiment.load_rows(run_dir)
    total = 2 * 2 * 2 * 3  # sizes x observe x seeds x methods
    assert 0 < len(partial) < total
    path.write_text(text.replace("time_limit = 120", "time_limit = 5"))  # the rest need not prove anything
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = experiment.load_rows(run_dir)
    keys = [(r["point"], r["seed"], r["method"]) for r in rows]
    assert len(keys) == len(set(keys)) == total


@pytest.mark.slow
def test_losing_the_dask_scheduler_is_one_line_exit_3_and_a_resume_completes(tmp_path):
    """The scheduler killed mid-run: one line naming its address, exit 3, the finished rows kept; the same
    command against a live scheduler runs exactly the missing rows."""
    text = TINY.replace("sizes = [6]", "sizes = [6, 80]").replace("time_limit = 20", "time_limit = 120")
    path, run_dir, log = _file(tmp_path, text), tmp_path / "run", tmp_path / "stderr.txt"
    cmd = [sys.executable, "-c", "from edgeopt.cli import main; main()", "experiment", "run", str(path),
           "-o", str(run_dir)]
    with running_dask() as (address, scheduler), log.open("w") as err:
        proc = subprocess.Popen(cmd + ["--scheduler", address], stdout=subprocess.DEVNULL, stderr=err, text=True)
        end = time.monotonic() + 300
        while time.monotonic() < end and "[3/24]" not in log.read_text():  # three rows are finished
            time.sleep(0.1)
        scheduler.kill()
        proc.wait(timeout=120)
    err = log.read_text()
    assert proc.returncode == 3, err
    errors = [line for line in err.splitlines() if not line.startswith("[")]  # the rest: one line per finished row
    assert errors == [errors[0]] and errors[0].startswith(f"error: lost the Dask scheduler at {address};"), err
    kept = experiment.load_rows(run_dir)
    assert 3 <= len(kept) < 24 and f"{len(kept)} finished rows are kept" in errors[0]
    path.write_text(text.replace("time_limit = 120", "time_limit = 5"))  # the rest need not prove anything
    with running_dask() as (address, _):
        done = subprocess.run(cmd + ["--scheduler", address], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = experiment.load_rows(run_dir)
    keys = [(r["point"], r["seed"], r["method"]) for r in rows]
    assert len(keys) == len(set(keys)) == 24


BAD = {
    "unknown problem": ('problem = "qllms"', 'problem = "nope"', "problem must be one of"),
    "unknown method": ('"daa"', '"magic"', "methods[1] must be a method of qllms"),
    "unknown method option": ('label = "rand"}', 'label = "rand", options = {warp = 9}}',
                              "methods[2].options.warp is not an option"),
    "unknown preset": ('preset = "qllms"', 'preset = "nope"', "preset must be one of"),
    "unknown preset axis": ('preset = "qllms"', "", "grid.preset[1] must be one of"),
    "unknown generator option": ("observe = [1.0, 0.5]", "warp = [1, 2]", "grid.warp is not an option"),
    "empty grid axis": ("observe = [1.0, 0.5]", "observe = []", "grid.observe must have at least one value"),
    "wrong type": ("seeds = 2", 'seeds = "two"', "seeds"),
    "bad generator value": ("observe = [1.0, 0.5]", "observe = [1.0, -3.0]", "grid the qllms generator rejects"),
    "not TOML": ("[grid]", "[grid", "is not valid TOML"),
    "unknown key": ('name = "tiny"', 'name = "tiny"\nwarp = 1', "warp is not a known field"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_experiment_file_is_exit_2_with_the_key_and_writes_nothing(cli, tmp_path, case):
    old, new, message = BAD[case]
    assert old in TINY
    text = TINY.replace(old, new, 1)
    if case == "unknown preset axis":
        text = text.replace("[grid]", '[grid]\npreset = ["qllms", "nope"]')
    path = _file(tmp_path, text)
    code, _, err = cli("experiment", "run", path, "-o", tmp_path / "run")
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_experiment_validates(path):
    exp = experiment.read(path)
    assert experiment.tasks(exp) and exp.plots


def test_a_shipped_experiment_runs_at_a_tiny_scale(tmp_path):
    exp = experiment.read(ROOT / "experiments" / "qllms-observed.toml")
    tiny = exp.model_copy(update={"sizes": [6], "seeds": 1, "time_limit": 10.0})
    run_dir = experiment.run(tiny, tmp_path / "run", jobs=2)
    rows = experiment.load_rows(run_dir)
    assert len(rows) == len(experiment.tasks(tiny)) and all(r["status"] != "error" for r in rows)
    assert experiment.plot(run_dir)


def test_preset_is_an_axis_too(tmp_path):
    text = TINY.replace('preset = "qllms"\n', "").replace("[grid]", '[grid]\npreset = ["qllms", "rtx3090"]')
    text = text.replace('methods = ["milp", "daa", {name = "random", label = "rand"}]', 'methods = ["daa"]')
    rows = experiment.load_rows(experiment.run(_file(tmp_path, text), tmp_path / "run"))
    assert sorted({(r["preset"], r["observe"]) for r in rows}) == [
        ("qllms", 0.5), ("qllms", 1.0), ("rtx3090", 0.5), ("rtx3090", 1.0)]


def _exp(text: str) -> experiment.Experiment:
    return experiment.Experiment.model_validate(experiment.tomllib.loads(text))


def _rows(problem="qllms"):
    """Hand-made rows of three seeds at two x values: an exact method proving every optimum, a heuristic 10 %
    above it and a method infeasible in every run (what the figure code draws; the referee is not involved)."""
    rows = []
    for x in (0.5, 1.0):
        for seed in range(3):
            opt = 10.0 + seed + x
            inst = f"p{x}-s{seed}"
            common = {"problem": problem, "instance": inst, "observe": x, "seed": seed, "bound": None}
            rows += [{**common, "method": "milp", "kind": "exact", "status": "optimal", "feasible": True,
                      "objective": opt, "bound": opt},
                     {**common, "method": "daa", "kind": "heuristic", "status": "feasible", "feasible": True,
                      "objective": opt * (1.1 + 0.01 * seed)},
                     {**common, "method": "falcon", "kind": "baseline", "status": "infeasible", "feasible": False,
                      "objective": 1.0}]
    from edgeopt.compare import add_gaps

    add_gaps(rows)
    return rows


def test_figure_draws_the_reference_black_dashed_on_top_and_notes_a_method_without_data():
    exp = _exp(TINY)
    rows = _rows()
    fig = experiment.figure(exp, rows, experiment.Plot(x="observe", y="objective"))
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert set(lines) == {"optimum (milp)", "daa"}  # no legend entry for falcon, which has no point
    ref = lines["optimum (milp)"]
    assert ref.get_color() == "black" and ref.get_linestyle() == "--"
    assert ref.get_zorder() > max(ln.get_zorder() for ln in ax.get_lines() if ln is not ref)
    assert lines["daa"].get_color() != "black"
    assert "falcon: infeasible in every run" in fig.legends[0].get_title().get_text()
    assert ax.get_xlabel() == "observed share of the profile" and "Student-t" in ax.get_ylabel()
    gap = experiment.figure(exp, rows, experiment.Plot(x="observe", y="gap_to_best")).axes[0]
    daa = {ln.get_label(): ln for ln in gap.get_lines()}["daa"]
    assert list(daa.get_ydata()) == pytest.approx([11.0, 11.0])  # percent, as compare prints it
    assert gap.get_ylabel().startswith("gap to the optimum (%)")


def test_intervals_are_student_t_and_minus_draws_the_paired_difference():
    rows = _rows()
    (_, centre, half, n), _ = experiment.series(rows, experiment.Plot(x="observe", y="gap_to_best"))["daa"]
    assert n == 3 and centre == pytest.approx(11.0)
    assert half == pytest.approx(4.302653 * 1.0 / 3 ** 0.5, rel=1e-5)  # t(0.975, 2) x sd 1 % / sqrt(3)
    paired = experiment.series(rows, experiment.Plot(x="observe", y="objective", minus="milp"))
    assert [q[1] for q in paired["milp"]] == [0.0, 0.0]
    diffs = [r["objective"] - 10.5 - r["seed"] for r in rows if r["method"] == "daa" and r["observe"] == 0.5]
    assert paired["daa"][0][1] == pytest.approx(sum(diffs) / 3)


def test_results_are_typed_parquet_parts_and_run_json_names_the_commit(tmp_path):
    import pyarrow.parquet as pq

    text = TINY.replace('methods = ["milp", "daa", {name = "random", label = "rand"}]', 'methods = ["daa"]')
    run_dir = experiment.run(_file(tmp_path, text), tmp_path / "run")
    first = sorted((run_dir / experiment.RESULTS).glob("part-*.parquet"))
    assert first and all(p.is_file() for p in first)
    schema = pq.read_schema(first[0])
    assert str(schema.field("objective").type) == "double" and str(schema.field("seed").type) == "int64"
    assert str(schema.field("observe").type) == "double"
    before = {p: p.read_bytes() for p in first}
    more = text.replace("seeds = 2", "seeds = 3")
    experiment.run(_file(tmp_path, more), run_dir)  # the resume appends a part, rewrites none
    parts = sorted((run_dir / experiment.RESULTS).glob("part-*.parquet"))
    assert len(parts) > len(first) and all(p.read_bytes() == b for p, b in before.items())
    assert len(experiment.load_rows(run_dir)) == 3 * 2
    table = experiment._table([{"objective": None, "bids": 10, "details.x": None}],
                              _exp(TINY.replace("observe = [1.0, 0.5]", "observe = [1.0]")))
    assert str(table.schema.field("objective").type) == "double"  # all null, still a float
    named = _exp(TINY.replace("observe = [1.0, 0.5]", 'observe = [1.0]\nslo = ["latency"]'))
    named.grid["objective"] = ["gpu-seconds"]  # an axis named like a result column: the column holds the result
    assert str(experiment._table([{"objective": 1.5}], named).schema.field("objective").type) == "double"
    run = json.loads((run_dir / "run.json").read_text())
    assert "pyarrow" in run["versions"]
    if (ROOT / ".git").exists():
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert run["git_commit"] == head.stdout.strip() and isinstance(run["git_dirty"], bool)


def test_a_run_in_the_one_file_format_resumes_into_parts(tmp_path):
    import pyarrow.parquet as pq

    text = TINY.replace('methods = ["milp", "daa", {name = "random", label = "rand"}]', 'methods = ["daa"]')
    run_dir = experiment.run(_file(tmp_path, text), tmp_path / "run")
    rows = experiment._read_parts(run_dir / experiment.RESULTS)
    shutil.rmtree(run_dir / experiment.RESULTS)  # as the release before wrote it: one file, two rows done
    pq.write_table(experiment._table(rows[:2], _exp(text)), run_dir / experiment.RESULTS)
    experiment.run(_file(tmp_path, text), run_dir)
    assert (run_dir / experiment.RESULTS).is_dir()
    again = experiment._read_parts(run_dir / experiment.RESULTS)
    assert len(again) == 4 and _key(again[:2]) == _key(rows[:2])
