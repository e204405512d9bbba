"""OR-Library generalized assignment (GAP) files -> ``qllms`` instances (``edgeopt import gap``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import ValidationError

from edgeopt.model import InputError, check
from edgeopt.problems.qllms import Data, Instance
from edgeopt.registry import importer


@importer("gap", "qllms")
def import_gap(path: str) -> Instance:
    """OR-Library generalized assignment file -> qllms instance (one level, cost table, no cloud).

    Format: ``m n``, the m x n cost matrix, the m x n resource matrix, the m capacities. Agents become
    server types and jobs tasks. The resource r[a][t] is the latency lat[t][a][0] (GPU-seconds), and
    with H = 1 s and gpus_a = capacity_a the capacity gpus_a * H is the agent's capacity in the
    resource's units. SLOs are set loose (L_t = max_a r[a][t], perplexity 1 <= 1), memory needs are 0.
    The GAP's reading is set explicitly: the cost table, the whole-latency SLO, per-task memory.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), "does not exist (expected an OR-Library GAP file)")
    try:
        nums = [float(x) for x in p.read_text().split()]
    except ValueError:
        raise InputError(str(p), "must contain only numbers (OR-Library GAP format)") from None
    if len(nums) < 2 or nums[0] < 1 or nums[1] < 1 or nums[0] != int(nums[0]) or nums[1] != int(nums[1]):
        raise InputError(str(p), "must start with the agent and job counts m n (positive integers)")
    m, n = int(nums[0]), int(nums[1])
    want = 2 + 2 * m * n + m
    if len(nums) != want:
        raise InputError(str(p), f"must hold 2 + 2*m*n + m = {want} numbers for m={m}, n={n}, got {len(nums)}")
    body = np.array(nums[2:])
    check(np.isfinite(body), f"{p}: numbers", "must be finite (no inf or nan)")
    cost = body[: m * n].reshape(m, n)
    res = body[m * n: 2 * m * n].reshape(m, n)
    capacity = body[2 * m * n:]
    check(capacity == np.round(capacity), f"{p}: capacities", "must be integers (they become gpus with H = 1)")
    check(capacity >= 1, f"{p}: capacities", "must be >= 1")
    check(res > 0, f"{p}: resources", "must be > 0")
    data = {
        "horizon_s": 1.0,
        "tasks": [{"name": f"job{t}", "model": "gap", "in_tokens": 0, "out_tokens": 0,
                   "slo_lat": float(res[:, t].max()), "slo_ppl": 1.0} for t in range(n)],
        "servers": [{"name": f"agent{a}", "gpus": float(capacity[a]), "mem_gb": 1.0, "price": 0.0} for a in range(m)],
        "quants": [{"name": "q0", "bits": 16}],
        "lat": res.T[:, :, None], "ppl": np.ones((n, 1)), "need": np.zeros((n, 1)), "cost": cost.T[:, :, None],
        "objective": "gpu-seconds", "memory": "per-task", "slo": "latency",
    }
    from edgeopt.model import validation_error

    try:
        data = Data.model_validate(data)
    except ValidationError as exc:  # a figure of the file outside the ranges of the fields
        err = validation_error(exc, "data")
        raise InputError(f"{p}: {err.path}", err.rule) from None
    meta = {"source": "OR-Library generalized assignment (Beasley), via rafaelmartinelli/AssignmentProblems.jl",
            "file": p.name, "importer": "gap"}
    return Instance(name=p.name.split(".")[0], meta=meta, data=data)
