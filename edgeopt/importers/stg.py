"""Kasahara Standard Task Graph (STG) files -> ``dagsched`` instances (``edgeopt import stg``)."""
from __future__ import annotations

from pathlib import Path

from edgeopt.importers.taskgraph import on_processors
from edgeopt import limits
from edgeopt.model import InputError
from edgeopt.problems.dagsched import Instance
from edgeopt.registry import importer


@importer("stg", "dagsched")
def import_stg(path: str, processors: int = 4) -> Instance:
    """Kasahara STG task graph -> one job on ``processors`` identical processors, no cloud, gamma = 1.

    Format: first line n (real tasks); then n + 2 lines ``id cost npred pred...`` for tasks 0..n+1,
    where 0 and n+1 are the zero-cost dummy entry and exit. Both are kept as zero-work sub-tasks; the
    exit is the job's single sink. Costs are execution times (cycles on 1 Hz processors); there are
    no communication costs, so the objective is the makespan. Lines starting with ``#`` are skipped.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), "does not exist (expected an STG file)")
    if not 1 <= int(processors) <= limits.PROCESSORS_MAX:
        raise InputError("--processors", f"must be 1..{limits.PROCESSORS_MAX}, got {processors}")
    lines = [(k + 1, ln.split()) for k, ln in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines())]
    lines = [(k, toks) for k, toks in lines if toks and not toks[0].startswith("#")]
    try:
        if not lines:
            raise ValueError("is empty")
        n = int(lines[0][1][0])
        if n < 0:
            raise ValueError("task count must be >= 0")
        if len(lines) < n + 3:
            raise ValueError(f"declares {n} tasks but has {len(lines) - 1} task lines (need n + 2 = {n + 2})")
    except ValueError as exc:
        raise InputError(f"{p}: line {lines[0][0] if lines else 1}", f"must start with the task count n ({exc})") from None
    tasks, edges = [], []
    for expect, (lineno, toks) in enumerate(lines[1:n + 3]):
        where = f"{p}: line {lineno}"
        try:
            vals = [int(x) for x in toks]
        except ValueError:
            raise InputError(where, "must be integers: id cost npred pred...") from None
        if len(vals) < 3 or len(vals) != 3 + vals[2]:
            raise InputError(where, "must be `id cost npred pred1 ... pred_npred`")
        tid, cost, _, *preds = vals
        if tid != expect:
            raise InputError(where, f"task id must be {expect} (tasks numbered 0..{n + 1} in order), got {tid}")
        if cost < 0:
            raise InputError(where, f"cost must be >= 0, got {cost}")
        if tid in (0, n + 1) and cost != 0:
            raise InputError(where, f"dummy {'entry' if tid == 0 else 'exit'} task must have cost 0, got {cost}")
        for q in preds:
            if not 0 <= q <= n + 1:
                raise InputError(where, f"predecessor {q} is not a task 0..{n + 1}")
            edges.append({"src": q, "dst": tid})
        tasks.append({"name": "entry" if tid == 0 else "exit" if tid == n + 1 else f"t{tid}", "modality": "any",
                      "cycles": float(cost), "in_bits": 0.0, "out_bits": 0.0})
    meta = {"importer": "stg", "source": p.name, "processors": int(processors), "tasks": n}
    return on_processors(p, {"name": p.stem, "tasks": tasks, "edges": edges}, processors, "stg", meta)
