"""Shared test helpers: the repository root, shipped instances, the CLI run in-process, small simulated systems."""
from __future__ import annotations

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


def family_rows(run, family: str) -> list[dict]:
    """A simulated run's rows of one metric family, interval by interval."""
    return [r for r in run.rows if r["family"] == family]
