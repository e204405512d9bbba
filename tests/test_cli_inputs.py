"""Hostile arguments to every verb: exit 2, one ``error:`` line, no traceback, nothing written (issue 20).

Each case is an argument list the command line once answered with a traceback, a run over bad settings, or a
file written where it should not be. Cases that could allocate without limit (huge sizes, a gzip bomb, a
2^D dynamic program, a model over the memory cap) run in a child process whose address space is capped
(``RLIMIT_AS``, the kernel's ``prlimit --as``): a regression is a failed test, never a machine out of memory.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest

from conftest import INSTANCES, ROOT
from edgeopt import registry

PROBLEMS = sorted(registry.problems())
BIG = str(2**70)
AS_CAP = 3 * 2**30  # address space of a child process: far below what any of the refused work would take
SMALL = {"partition": INSTANCES / "partition" / "llama2-7b-d5-latency.json",
         "qllms": INSTANCES / "qllms" / "small" / "qllms-m12-obs100-s7.json", "cdgs": INSTANCES / "cdgs" / "small-t20-b10-s0.json"}


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    """A clean working directory (default outputs such as ``runs/`` land there); returns it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _one_line_exit_2(code: int, err: str) -> None:
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert len(lines[0]) < 1000, "an error line must not echo a long value"


# --- in process: arguments whose check needs no memory --------------------------------------------------

def _exp(body: str) -> str:
    return 'name = "x"\nproblem = "qllms"\nsizes = [6]\nseeds = 1\n' + body


QLLMS = str(SMALL["qllms"])
CASES = {
    # seeds, sizes and flags a generator option must not shadow, for every generator
    **{f"generate-{p}-seed-{s}": ["generate", p, "--seed", s, "-o", "out.json"] for p in PROBLEMS
       for s in ("-1", str(2**63), BIG)},
    **{f"generate-{p}-size-negative": ["generate", p, "--size", "-1", "-o", "out.json"] for p in PROBLEMS},
    "generate-option-seed": ["generate", "qllms", "--option", "seed=3", "-o", "out.json"],
    "generate-option-bool-for-int": ["generate", "qllms", "--option", "gpus=true", "-o", "out.json"],
    "generate-option-float-for-int": ["generate", "qllms", "--option", "gpus=2.5", "-o", "out.json"],
    "generate-seed-text": ["generate", "qllms", "--seed", "abc", "-o", "out.json"],
    "generate-unknown-flag": ["generate", "qllms", "--sizes", "3", "-o", "out.json"],
    "generate-long-preset": ["generate", "qllms", "--preset", "x" * 100_000, "-o", "out.json"],
    "generate-to-a-directory": ["generate", "qllms", "-o", "."],
    # time limits, seeds and solver options of solve and compare
    **{f"solve-time-limit-{t}": ["solve", QLLMS, "-m", "daa", "--time-limit", t]
       for t in ("0", "-1", "nan", "inf", "1e300")},
    **{f"solve-seed-{s}": ["solve", QLLMS, "-m", "daa", "--seed", s] for s in ("-1", str(2**63))},
    **{f"solve-threads-{t}": ["solve", QLLMS, "-m", "milp", "--threads", t] for t in ("0", "-1", "100000")},
    **{f"solve-mip-gap-{g}": ["solve", QLLMS, "-m", "milp", "--mip-gap", g] for g in ("-1", "nan", "2")},
    "solve-missing-file": ["solve"],
    "solve-option-time-limit": ["solve", QLLMS, "-m", "daa", "--option", "time_limit=3"],
    "solve-option-seed": ["solve", QLLMS, "-m", "daa", "--option", "seed=3"],
    "solve-option-bad-completer": ["solve", QLLMS, "-m", "daa", "--option", "completer=x"],
    "solve-option-unknown": ["solve", QLLMS, "-m", "daa", "--option", "flag=1"],
    "solve-option-number-for-bool": ["solve", str(SMALL["cdgs"]), "-m", "milp", "--option", "vcg=1"],
    "solve-option-bool-for-int": ["solve", str(SMALL["cdgs"]), "-m", "lagrange", "--option", "iterations=true"],
    "solve-option-zero-count": ["solve", QLLMS, "-m", "lagrange", "--option", "iterations=0"],
    "solve-missing-solver": ["solve", QLLMS, "-m", "milp", "--solver", "nope"],
    **{f"compare-jobs-{j}": ["compare", QLLMS, "-m", "daa", "--jobs", j, "-o", "r.csv"] for j in ("0", "-1", "100000")},
    "compare-time-limit-0": ["compare", QLLMS, "-m", "daa", "--time-limit", "0", "-o", "r.csv"],
    "compare-seed-negative": ["compare", QLLMS, "-m", "daa", "--seed", "-1", "-o", "r.csv"],
    "compare-plot-format": ["compare", QLLMS, "-m", "daa", "--plot", "gaps.txt", "-o", "r.csv"],
    # simulate: seeds, intervals, limits, parameters and method options
    **{f"simulate-seed-{s}": ["simulate", "qllms", "-m", "daa", "--intervals", "1", "--seed", s] for s in ("-1", BIG)},
    **{f"simulate-intervals-{n}": ["simulate", "qllms", "-m", "daa", "--intervals", n] for n in ("0", BIG)},
    **{f"simulate-time-limit-{t}": ["simulate", "qllms", "-m", "daa", "--intervals", "1", "--time-limit", t]
       for t in ("0", "nan")},
    "simulate-bad-completer": ["simulate", "qllms", "-m", "daa", "--intervals", "1", "--option", "completer=x"],
    "simulate-bool-for-number": ["simulate", "qllms", "-m", "daa", "--intervals", "1", "--option", "observe=true"],
    "simulate-option-seed": ["simulate", "qllms", "-m", "daa", "--intervals", "1", "--option", "seed=3"],
    "simulate-option-intervals": ["simulate", "qllms", "-m", "daa", "--option", "intervals=3"],
    # adversary: its budget, limits and the generator's arguments
    **{f"adversary-{flag}-{v}": ["adversary", "partition", "-m", "dp-latency", f"--{flag}", v, "-o", "w.json"]
       for flag, values in (("seed", ("-1", BIG)), ("size", (BIG,)), ("budget", ("0", "nan", "inf")),
                            ("time-limit", ("nan", "0")), ("floor", ("nan",)), ("evaluations", ("0", BIG)))
       for v in values},
    "adversary-option-seed": ["adversary", "partition", "-m", "dp-latency", "--option", "seed=1", "-o", "w.json"],
    # train: seeds, episodes, hyper-parameters, the decision process's options, sizes and pools over the caps
    **{f"train-{name}": ["train", "dagsched", "-m", "mappo", *args, "-o", "p.npz"] for name, args in (
        ("seed-negative", ["--seed", "-1"]), ("seed-big", ["--seed", BIG]), ("episodes-0", ["--episodes", "0"]),
        ("option-seed", ["--option", "seed=3"]), ("option-episodes", ["--option", "episodes=3"]),
        ("lr-nan", ["--option", "lr=nan"]), ("lr-over-1", ["--option", "lr=2"]), ("epochs-float", ["--option", "epochs=2.5"]),
        ("rollout-0", ["--option", "rollout=0"]), ("reward", ["--option", "reward=shaped"]),
        ("source", ["--option", "source=sim"]), ("max-jobs", ["--option", "max_jobs=0"]),
        ("unknown", ["--option", "warp=9"]), ("agents", ["--size", "5000"]), ("output", []))},
    "train-replay-over-the-cap": ["train", "dagsched", "-m", "coma", "--option", "replay=1000000", "-o", "p.npz"],
    **{f"solve-learned-{o}": ["solve", "DAG", "-m", "ucb-coma", "--option", o]
       for o in ("reward=x", "episodes=0", "episodes=2.5", "train_seed=-1", "sample=1", "policy=missing.npz")},
    # export, import
    "export-format": ["export", QLLMS, "--format", "xls", "-o", "m.xls"],
    **{f"import-processors-{n}": ["import", "stg", "g.stg", "--processors", n, "-o", "i.json"] for n in ("0", BIG)},
    # experiment files: grid values, method options, names, seeds, limits, the row count
    **{f"experiment-{k}": ["experiment", "run", "FILE", "-o", "run"] for k in (
        "grid-list", "option-time-limit", "option-seed", "option-value", "option-unknown", "option-bool-for-int",
        "name-path", "plot-name-path", "seed-negative", "seed-2^63", "time-limit-0", "time-limit-bool",
        "rows-over-the-cap")},
    "experiment-jobs-0": ["experiment", "run", "FILE", "-o", "run", "--jobs", "0"],
}
EXPERIMENTS = {
    "grid-list": _exp('methods = ["daa"]\n[grid]\nobserve = [[1.0]]\n'),
    "option-time-limit": _exp('methods = [{name = "daa", options = {time_limit = 30}}]\n'),
    "option-seed": _exp('methods = [{name = "daa", options = {seed = 3}}]\n'),
    "option-value": _exp('methods = [{name = "daa", options = {completer = "x"}}]\n'),
    "option-unknown": _exp('methods = [{name = "daa", options = {warp = 9}}]\n'),
    "option-bool-for-int": _exp('methods = [{name = "lagrange", options = {iterations = true}}]\n'),
    "name-path": _exp('methods = ["daa"]\n').replace('name = "x"', 'name = "../../x"'),
    "plot-name-path": _exp('methods = ["daa"]\n[[plots]]\nx = "seed"\nname = "../../x"\n'),
    "seed-negative": _exp('methods = ["daa"]\n').replace("seeds = 1", "seeds = [-1]"),
    "seed-2^63": _exp('methods = ["daa"]\n').replace("seeds = 1", f"seeds = [{2**63}]"),
    "time-limit-0": _exp('methods = ["daa"]\ntime_limit = 0\n'),
    "time-limit-bool": _exp('methods = ["daa"]\ntime_limit = true\n'),
    "rows-over-the-cap": _exp('methods = ["daa"]\n[grid]\nobserve = [%s]\nload = [%s]\n' % (
        ", ".join(["0.5"] * 1000), ", ".join(["1.0"] * 1000))).replace("seeds = 1", "seeds = 10000"),
    "jobs-0": _exp('methods = ["daa"]\n'),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_argument_is_one_line_exit_2_and_writes_nothing(case, inputs, cli):
    """Every argument a user types has a range or a type: breaking it is one line and exit 2, before any work."""
    args = list(CASES[case])
    if "FILE" in args:
        (inputs / "exp.toml").write_text(EXPERIMENTS[case.removeprefix("experiment-")])
        args[args.index("FILE")] = "exp.toml"
    if "DAG" in args:
        assert cli("generate", "dagsched", "--size", "2", "-o", "dag.json")[0] == 0
        args[args.index("DAG")] = "dag.json"
    if case == "train-output":
        args[-1] = "p.json"
    if "g.stg" in args:
        (inputs / "g.stg").write_text("1\n0 0 0\n1 5 1 0\n2 0 1 1\n")
    before = _files(inputs)
    code, _, err = cli(*args)
    _one_line_exit_2(code, err)
    assert _files(inputs) == before, "nothing may be written"


def test_an_error_line_cuts_a_long_value(cli, inputs):
    """A 100 KB value typed by the user comes back as a few dozen characters, on one line."""
    code, _, err = cli("generate", "qllms", "--preset", "p" * 100_000 + "\nsecond line", "-o", "out.json")
    _one_line_exit_2(code, err)
    assert len(err) < 300 and "..." in err


@pytest.mark.parametrize("knob", ["EDGEOPT_INPUT_MB", "EDGEOPT_MEMORY_GB"])
def test_a_bad_cap_in_the_environment_is_exit_2(cli, inputs, monkeypatch, knob):
    monkeypatch.setenv(knob, "lots")
    code, _, err = cli("validate" if knob == "EDGEOPT_INPUT_MB" else "generate", *(
        [QLLMS] if knob == "EDGEOPT_INPUT_MB" else ["qllms", "--size", "5", "-o", "out.json"]))
    _one_line_exit_2(code, err)
    assert knob in err and not (inputs / "out.json").exists()


@pytest.mark.parametrize("verb", ["validate", "import"])
def test_a_file_over_the_input_cap_is_refused_before_it_is_read(cli, inputs, monkeypatch, verb):
    """The cap is the knob's value: a 2 KB file refused at 1 KB names the file, the cap and the knob."""
    monkeypatch.setenv("EDGEOPT_INPUT_MB", str(1 / 1024))
    big = inputs / ("big.json" if verb == "validate" else "big.stg")
    big.write_text(" " * 2048)
    code, _, err = cli(*(["validate", big] if verb == "validate" else ["import", "stg", big, "-o", "i.json"]))
    _one_line_exit_2(code, err)
    assert str(big) in err and "1 KiB" in err and "EDGEOPT_INPUT_MB" in err and not (inputs / "i.json").exists()


def test_export_nl_leaves_only_the_model_and_its_names(cli, inputs):
    """NL keeps its names in two companion files: they sit beside the model under its stem, nothing else."""
    code, _, _ = cli("export", SMALL["partition"], "--format", "nl", "-o", "model.nl")
    assert code == 0 and _files(inputs) == {"model.nl", "model.row", "model.col"}
    assert "x[" in (inputs / "model.col").read_text()


def test_a_method_option_is_checked_against_its_annotation():
    """The rule of every option: Literal values, Field ranges, strict types; reserved names refused."""
    from edgeopt.model import InputError

    daa = registry.problem("qllms").method("daa")
    assert daa.check_options({"completer": "nnm"}) == {"completer": "nnm"}
    for bad, rule in (({"completer": "x"}, "must be 'svt', 'nnm'"), ({"completer": 1}, "must be 'svt'"),
                      ({"seed": 1}, "is set by the run"), ({"warp": 1}, "is not an option of method 'daa'")):
        with pytest.raises(InputError, match=rule):
            daa.check_options(bad)
    milp = registry.problem("cdgs").method("milp")
    assert milp.check_options({"mip_gap": 0, "threads": 2}) == {"mip_gap": 0.0, "threads": 2}
    for bad in ({"vcg": 1}, {"mip_gap": True}, {"threads": 1.5}, {"mip_gap": 1.5}):
        with pytest.raises(InputError):
            milp.check_options(bad)


def test_stepsplit_downlink_always_in_outage_is_unstable_not_a_stable_row():
    """outage_snr_db far above the mean SNR: no request is ever delivered; the referee says so by name."""
    from edgeopt.problems import stepsplit as S

    inst = S.generate("seed003-fading")
    data = inst.data.model_copy(update={"downlink": inst.data.downlink.model_copy(update={"outage_snr_db": 100.0})})
    inst = inst.model_copy(update={"data": data})
    for mode in ("split", "edge"):
        ev = S.evaluate(inst, S.Solution(mode=mode, prior_steps=12, dec_steps=2))
        assert not ev.feasible and ev.objective is None and ev.details["status"] == "unstable"
        assert "every downlink block is in outage" in ev.violations[0]
    ev = S.evaluate(inst, S.Solution(mode="device", prior_steps=12, dec_steps=2))  # nothing crosses the downlink
    assert ev.feasible and ev.details["status"] == "stable"


# --- in a child process under RLIMIT_AS: work that must be refused before it is allocated ---------------

def _capped(args: list, cwd: Path) -> tuple[int, str, str, int]:
    """``edgeopt ARGS`` in a child whose address space is capped at AS_CAP -> (code, stdout, stderr, its peak RSS
    in bytes, from ``wait4``: the child's own, not every child's so far)."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (AS_CAP, AS_CAP))

    with open(cwd / ".stdout", "w+") as out, open(cwd / ".stderr", "w+") as err:
        proc = subprocess.Popen([sys.executable, "-c", "from edgeopt.cli import main; main()", *map(str, args)],
                                cwd=cwd, stdout=out, stderr=err, preexec_fn=cap,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        timer = threading.Timer(300, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = proc.returncode, out.read(), err.read(), usage.ru_maxrss * 1024
    (cwd / ".stdout").unlink()
    (cwd / ".stderr").unlink()
    return result


def _gzip_bomb(path: Path, inflated: int) -> None:
    """A .json.gz of ``inflated`` bytes: one gzip member per 16 MiB of spaces (gzip files may hold many)."""
    block = zlib.compressobj(9, zlib.DEFLATED, 31)
    member = block.compress(b" " * 2**24) + block.flush()
    head = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as fh:
        fh.write(head.compress(b'{"problem": "partition", "name": "') + head.flush())
        for _ in range(inflated // 2**24):
            fh.write(member)


def test_gzip_bomb_is_stopped_at_the_input_cap(tmp_path):
    """4 GiB inflated from a 4 MB file (issue 20: 4.25 GB RSS and a traceback) is one line, within the cap."""
    bomb = tmp_path / "bomb.json.gz"
    _gzip_bomb(bomb, 4 * 2**30)
    assert bomb.stat().st_size < 8 * 2**20
    code, _, err, peak = _capped(["validate", bomb], tmp_path)
    _one_line_exit_2(code, err)
    assert str(bomb) in err and "inflates to more than the input cap of 256 MiB" in err and "EDGEOPT_INPUT_MB" in err
    assert peak < 2**30, f"peak RSS {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("size", ["100000000", BIG])
def test_generator_refuses_a_size_over_the_memory_cap(tmp_path, problem, size):
    """The size and the cap in one line, before anything is generated (qllms at 1e8 was a traceback, dagsched
    and batching grew without end)."""
    code, _, err, _ = _capped(["generate", problem, "--size", size, "-o", "out.json"], tmp_path)
    _one_line_exit_2(code, err)
    assert "--size" in err and not (tmp_path / "out.json").exists()
    if problem != "stepsplit":  # stepsplit's size is a step count, 1..10000: its instance does not grow
        assert f"--size {size} is too large" in err and "memory cap of 4 GiB" in err


def test_dp_throughput_refuses_a_state_table_over_the_cap(tmp_path, cli):
    """(L+1)·2^D·D states: 20 devices asked 13 GiB and 40 devices 25.9 PiB; now a row saying why, and the cap."""
    inst = tmp_path / "p20.json"
    code, _, _ = cli("generate", "partition", "--preset", "llama2-70b", "--size", "20", "--option",
                     "objective=throughput", "-o", inst)
    assert code == 0
    code, out, err, _ = _capped(["solve", inst, "-m", "dp-throughput", "--json"], tmp_path)
    assert "Traceback" not in err and code == 1, err
    row = json.loads(out)
    assert row["status"] == "error" and row["objective"] is None
    assert "state table" in row["message"] and "memory cap of 4 GiB" in row["message"]


def test_a_model_over_the_memory_cap_is_refused_before_it_is_built(tmp_path, cli):
    """batching at 2,000 requests: the estimate (about 26 billion nonzeros) refuses export and the exact run."""
    inst = tmp_path / "b.json"
    assert cli("generate", "batching", "--size", "2000", "-o", inst)[0] == 0
    code, _, err, _ = _capped(["export", inst, "--format", "lp", "-o", "m.lp"], tmp_path)
    _one_line_exit_2(code, err)
    assert "the model" in err and "memory cap" in err and not (tmp_path / "m.lp").exists()
    code, out, err, _ = _capped(["solve", inst, "-m", "milp", "--time-limit", "60", "--json"], tmp_path)
    assert code == 1 and "Traceback" not in err and "memory cap" in json.loads(out)["message"]


@pytest.mark.parametrize("case", ["experiment-size", "simulate-arrivals"])
def test_sweeps_refuse_instances_over_the_memory_cap_before_running(tmp_path, case):
    """An experiment's largest size and a simulation's largest interval are checked like a generator's size."""
    if case == "experiment-size":
        (tmp_path / "exp.toml").write_text(_exp('methods = ["daa"]\n').replace("sizes = [6]", "sizes = [10000000]"))
        args = ["experiment", "run", "exp.toml", "-o", "run"]
    else:
        args = ["simulate", "dagsched", "--preset", "layered", "-m", "list", "--intervals", "1", "--option",
                "rate=10000", "--option", "tasks=1000", "-o", "sim"]
    code, _, err, _ = _capped(args, tmp_path)
    _one_line_exit_2(code, err)
    assert "memory cap" in err and not (tmp_path / "run").exists() and not (tmp_path / "sim").exists()
