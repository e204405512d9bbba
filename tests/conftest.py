"""Shared test helpers: the repository root, shipped instances, and the CLI run in-process."""
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
