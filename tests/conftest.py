"""Shared test helpers: the repository root, shipped instances, the CLI run in-process, small simulated systems."""
from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTANCES = ROOT / "instances"


def shipped(problem_id: str, sub: str = "") -> list[Path]:
    """Shipped instance files of a problem (``sub="small"`` for the ones exact methods solve in seconds)."""
    folder = INSTANCES / problem_id / sub
    return sorted(p for p in folder.glob("*.json*") if p.is_file())


@pytest.fixture
def cli(capsys):
    """Run ``edgeopt ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from edgeopt.cli import main

    def run(*args: str):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


# small systems for the simulation tests: 30 Telesat satellites as sources with 6 bids each; 8 QLLMS task families
SIM_CDGS = {"preset": "telesat", "size": 30, "bids": 6}
SIM_QLLMS = {"families": 8}


def untimed(run) -> list[dict]:
    """A simulation run's rows without their timing, the one column two runs of the same seed may differ in."""
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in run.rows]


def family_rows(run, family: str) -> list[dict]:
    """A simulated run's rows of one metric family, interval by interval."""
    return [r for r in run.rows if r["family"] == family]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_dask(workers: int = 2):
    """A real `dask scheduler` and ``workers`` `dask worker` processes on 127.0.0.1 at a free port:
    (address, the scheduler's process); everything is shut down afterwards."""
    pytest.importorskip("distributed")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    procs = [subprocess.Popen(dask + ["--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        worker = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "1", "--nthreads", "1",
                  "--no-dashboard", "--host", "127.0.0.1"]
        procs += [subprocess.Popen(worker, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                  for _ in range(workers)]
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address, procs[0]
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs[::-1]:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
