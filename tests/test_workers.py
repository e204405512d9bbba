"""The command line stays in charge: interrupts, kills and time limits (real processes, real signals)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeopt import generate, io

EDGEOPT = [sys.executable, "-c", "from edgeopt.cli import main; main()"]


@pytest.fixture(scope="module")
def slow_file(tmp_path_factory) -> Path:
    """A dagsched instance whose MILP runs for minutes: something to interrupt."""
    path = tmp_path_factory.mktemp("slow") / "d30.json"
    io.save(generate("dagsched", size=30, seed=1), path)
    return path


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def _gone(pids: list[int], within: float) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        alive = [p for p in pids if Path(f"/proc/{p}").exists()
                 and "Z" not in Path(f"/proc/{p}/stat").read_text().split()[2]]
        if not alive:
            return True
        time.sleep(0.1)
    return False


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(EDGEOPT + [str(a) for a in args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_workers(proc: subprocess.Popen, count: int) -> list[int]:
    """Worker pids once ``count`` workers are up and a few seconds into solving."""
    end = time.monotonic() + 60
    while time.monotonic() < end:
        kids = [k for k in _children(proc.pid) if "spawn_main" in Path(f"/proc/{k}/cmdline").read_text()]
        if len(kids) >= count:
            time.sleep(4)  # imports done, the solver running
            return kids
        time.sleep(0.2)
    raise AssertionError("workers did not start")


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_solve_within_2s_and_writes_nothing(slow_file, tmp_path, sig, code):
    """A user's Ctrl-C must end a long exact solve at once, not when the solver returns."""
    out = tmp_path / "out.json"
    proc = _start(["solve", slow_file, "-m", "milp", "--time-limit", "300", "-o", out], tmp_path)
    workers = _wait_for_workers(proc, 1)
    sent = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=10)
    assert time.monotonic() - sent < 2.0
    assert proc.returncode == code
    assert "Traceback" not in proc.stderr.read()
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))
    assert _gone(workers, 2.0)


@pytest.mark.slow
def test_interrupted_compare_records_no_row_and_resumes(slow_file, tmp_path):
    """Finished rows stay, the interrupted one is not recorded, and a re-run completes the table once."""
    csv_path = tmp_path / "rows.csv"
    proc = _start(["compare", slow_file, "-m", "list", "-m", "milp", "--jobs", "2", "--time-limit", "300",
                   "-o", csv_path], tmp_path)
    workers = _wait_for_workers(proc, 2)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)
    assert proc.returncode == 130 and _gone(workers, 2.0)
    import csv

    rows = list(csv.DictReader(csv_path.open()))
    assert [r["method"] for r in rows] == ["list"]
    again = subprocess.run(EDGEOPT + ["compare", str(slow_file), "-m", "list", "-m", "milp", "--time-limit", "2",
                                      "-o", str(csv_path)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    rows = list(csv.DictReader(csv_path.open()))
    assert sorted(r["method"] for r in rows) == ["list", "milp"]


@pytest.mark.slow
def test_killed_parent_takes_its_workers_along(slow_file, tmp_path):
    """SIGKILL leaves no orphan solving for ever on a shared machine."""
    proc = _start(["compare", slow_file, "-m", "milp", "-m", "list", "--jobs", "2", "--time-limit", "300"], tmp_path)
    workers = _wait_for_workers(proc, 2)
    proc.kill()
    proc.wait(timeout=10)
    assert _gone(workers, 5.0)


@pytest.mark.slow
def test_time_limit_covers_model_building(tmp_path):
    """wall_s stays within limit + 10 % + 1 s even when building and translating the model take longer."""
    big = tmp_path / "d100.json"
    io.save(generate("dagsched", size=100, seed=1), big)
    for limit in (2.0, 8.0):
        done = subprocess.run(EDGEOPT + ["solve", str(big), "-m", "milp", "--time-limit", str(limit), "--json"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
        row = json.loads(done.stdout)
        assert row["status"] == "time_limit", row
        assert row["wall_s"] <= limit * 1.1 + 1.0, row


@pytest.mark.slow
def test_verbose_solver_log_cannot_deadlock(tmp_path):
    """Pyomo drains a solver's console through a Python thread; SCIP holds the GIL while it solves, so a
    log past the 64 KB pipe buffer used to hang the run for ever. A node line per node for 15 s is far
    past 64 KB: the solve must still end at its limit."""
    code = (
        "from edgeopt import generate\n"
        "from edgeopt.formulations.offload import build_model\n"
        "from edgeopt.solvers import solve_model\n"
        "m = build_model(generate('offload', size=3, seed=3))\n"
        "r = solve_model(m, 'scip', time_limit=15, solver_options={'display/freq': 1})\n"
        "print(r.status, round(r.wall_s, 1))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    status, wall = done.stdout.split()
    assert status in ("optimal", "time_limit") and float(wall) <= 15 * 1.1 + 1
