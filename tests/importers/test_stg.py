"""Kasahara STG task graphs -> dagsched instances: dummies kept, lower bounds respected, bad files exit 2."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeopt import io, solve
from edgeopt.importers.stg import import_stg
from edgeopt.problems.dagsched import Instance

DATA = Path(__file__).parents[1] / "data" / "dagsched"


def critical_path_and_work(inst: Instance):
    job = inst.data.jobs[0]
    cost = [t.cycles for t in job.tasks]
    preds = {j: [e.src for e in job.edges if e.dst == j] for j in range(len(cost))}
    longest: dict[int, float] = {}

    def path(j):
        if j not in longest:
            longest[j] = cost[j] + max((path(k) for k in preds[j]), default=0.0)
        return longest[j]

    return max(path(j) for j in range(len(cost))), sum(cost)


def random_stg(rng, n: int) -> str:
    lines = [str(n), "0 0 0"]
    has_succ = set()
    for v in range(1, n + 1):
        preds = sorted({int(x) for x in rng.choice(range(0, v), size=int(rng.integers(1, min(3, v) + 1)))})
        has_succ |= set(preds)
        lines.append(f"{v} {int(rng.integers(1, 20))} {len(preds)} {' '.join(map(str, preds))}")
    exits = [v for v in range(1, n + 1) if v not in has_succ]
    lines.append(f"{n + 1} 0 {len(exits)} {' '.join(map(str, exits))}")
    return "\n".join(lines) + "\n"


def test_stg_import_keeps_the_dummies_and_the_graph():
    inst = import_stg(DATA / "fork_join.stg", processors=2)
    job = inst.data.jobs[0]
    assert len(job.tasks) == 7 and job.tasks[0].name == "entry" and job.tasks[6].name == "exit"
    assert [t.cycles for t in job.tasks] == [0, 3, 4, 2, 5, 1, 0]
    assert inst.data.graph.sink == [6] and inst.data.gamma == 1 and inst.data.cloud is None
    assert len(inst.data.servers) == 2
    assert critical_path_and_work(inst) == (9, 15)
    r = solve(inst, "milp")  # t1, then t2..t4 on two processors (4+2 | 5), then t5: 3 + 6 + 1 = 10
    assert r.status == "optimal" and r.objective == pytest.approx(10)


@pytest.mark.parametrize("source", ["fork_join.stg", "two_chains.stg", "layered12.stg"] + [f"random{k}" for k in range(6)])
@pytest.mark.parametrize("P", [1, 2, 3])
def test_stg_makespan_respects_the_lower_bounds(source, P, tmp_path):
    if source.startswith("random"):
        path = tmp_path / f"{source}.stg"
        path.write_text(random_stg(np.random.default_rng(int(source[6:])), int(8 + 4 * int(source[6:]))))
    else:
        path = DATA / source
    inst = import_stg(path, processors=P)
    cp, work = critical_path_and_work(inst)
    for name in ("list", "cs-ucb", "random", "greedy-edge"):
        r = solve(inst, name)
        assert r.feasible, (name, r.violations)
        assert r.objective >= max(cp, work / P) - 1e-9, name
        if P == 1:
            assert r.objective == pytest.approx(work), name  # one processor, no gaps worth leaving
    from edgeopt import problem

    assert "all-cloud" not in [m.name for m in problem("dagsched").select(["all"], inst)]  # no cloud


@pytest.mark.parametrize("text,message", [
    ("", "must start with the task count"),
    ("2\n0 0 0\n1 5 1 0\n", "declares 2 tasks but has 2 task lines"),
    ("1\n0 0 0\n1 x 1 0\n2 0 1 1\n", "must be integers"),
    ("1\n0 0 0\n1 5 2 0\n2 0 1 1\n", "must be `id cost npred"),
    ("1\n0 0 0\n3 5 1 0\n2 0 1 1\n", "task id must be 1"),
    ("1\n0 0 0\n1 5 1 7\n2 0 1 1\n", "predecessor 7 is not a task"),
    ("2\n0 0 0\n1 5 1 0\n2 4 1 0\n3 0 1 1\n", "must have exactly one sink"),
    ("1\n0 0 1 1\n1 5 1 0\n2 0 1 1\n", "must form an acyclic graph"),
])
def test_bad_stg_file_is_exit_2(cli, tmp_path, text, message):
    path = tmp_path / "bad.stg"
    path.write_text(text)
    out = tmp_path / "out.json"
    code, _, err = cli("import", "stg", path, "--processors", "2", "-o", out)
    assert code == 2 and message in err and "Traceback" not in err and not out.exists()


def test_cli_import_stg_and_solve(cli, tmp_path):
    out = tmp_path / "fj.json"
    code, _, _ = cli("import", "stg", DATA / "layered12.stg", "--processors", "3", "-o", out)
    assert code == 0 and io.load(out).meta["processors"] == 3
    code, text, _ = cli("solve", out, "-m", "list", "--json")
    assert code == 0 and json.loads(text)["feasible"]
