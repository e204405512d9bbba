"""Exact and bound methods at paper scale under a short limit: what comes back, and when (issue 20).

    OPENBLAS_NUM_THREADS=1 python benchmarks/anytime.py [LIMIT ...]              # this tree (default 5 and 20 s)
    BEFORE=/work/main OPENBLAS_NUM_THREADS=1 python benchmarks/anytime.py     # also an older tree, side by side
    BUSY=6 BEFORE=/work/main OPENBLAS_NUM_THREADS=1 python benchmarks/anytime.py 5   # beside 6 busy loops

Each paper-size instance of the issue (``generate`` with seed 1) is written once; every exact and bound method
that applies runs as a user runs it, ``edgeopt solve FILE -m METHOD --time-limit LIMIT --json`` in a fresh
process (worker start-up included in the process's wall, not in the limit on this tree), under ``prlimit
--as`` so that a method that allocates without bound fails instead of taking the machine. Printed: status,
whether an incumbent (a feasible objective) and a bound came back (with both, the gap between them instead of
"yes"), the row's ``wall_s`` and the process's wall, both against the limit, and the load average when each
tree's runs started.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgeopt import io, registry

ROOT = Path(__file__).resolve().parents[1]
CASES = [("partition", "llama2-70b", 40), ("cdgs", "starlink-550", 300), ("qllms", None, 2000),
         ("dagsched", "layered", 40), ("offload", "paper", 40), ("stepsplit", "seed003", 200),
         ("placement", "random", 200), ("batching", "tx2", 600)]
MEMORY = 8 << 30  # bytes of address space per run


def run(tree: Path, path: Path, method: str, limit: float) -> dict:
    cmd = ["prlimit", f"--as={MEMORY}", sys.executable, "-c", "from edgeopt.cli import main; main()", "solve",
           str(path), "-m", method, "--time-limit", str(limit), "--json"]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    began = time.perf_counter()
    # run beside the file, not in a tree: ``python -c`` puts the working directory first on sys.path
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=path.parent, timeout=limit * 3 + 600)
    wall = time.perf_counter() - began
    try:
        row = json.loads(done.stdout)
    except json.JSONDecodeError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        row = {"status": f"exit {done.returncode}", "feasible": False, "bound": None, "wall_s": None, "message": last}
    return {**row, "process_s": wall}


def main(limits: list[float]) -> None:
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(int(os.environ.get("BUSY", 0)))]
    try:
        measure(limits)
    finally:
        for p in busy:
            p.kill()
            p.wait()


def measure(limits: list[float]) -> None:
    trees = [("after", ROOT)] + ([("before", Path(os.environ["BEFORE"]))] if os.environ.get("BEFORE") else [])
    folder = Path(tempfile.mkdtemp(prefix="edgeopt-anytime-"))
    files = []
    for pid, preset, size in CASES:
        prob = registry.problem(pid)
        inst = prob.generate(preset, size, 1)
        path = folder / f"{inst.name}.json"
        io.save(inst, path)
        files.append((pid, path, [m.name for m in prob.select(["exact", "bound"], inst)]))
    for limit in limits:
        results = {}
        for label, tree in trees:
            load = os.getloadavg()[0]
            for pid, path, methods in files:
                for m in methods:
                    results[label, pid, m] = r = run(tree, path, m, limit)
                    print(f"<!-- {label} {limit:g} s {pid} {m}: {r['status']} wall_s {r['wall_s']} "
                          f"process {r['process_s']:.1f} {r.get('message') or ''} -->", flush=True)
            results[label] = load
        print(f"\n### --time-limit {limit:g} s (load average at the start: "
              + ", ".join(f"{label} {results[label]:.1f}" for label, _ in trees) + ")\n")
        cols = " | ".join(f"{label}: status · incumbent · bound (gap) · wall_s / process s" for label, _ in trees)
        print(f"| problem | method | {cols} |")
        print("|---|---|" + "---|" * len(trees))
        for pid, _, methods in files:
            for m in methods:
                cells = []
                for label, _ in trees:
                    r = results[label, pid, m]
                    has = "yes" if r.get("feasible") and r.get("objective") is not None else "—"
                    bound = "—" if r.get("bound") is None else "yes" if r.get("gap") is None else f"{r['gap']:.1%}"
                    wall = "—" if r["wall_s"] is None else f"{r['wall_s']:.1f}"
                    cells.append(f"{r['status']} · {has} · {bound} · {wall} / {r['process_s']:.1f}")
                print(f"| {pid} | {m} | " + " | ".join(cells) + " |")
        for label, _ in trees:
            rows = [results[label, pid, m] for pid, _, methods in files for m in methods]
            empty = sum(r["status"] == "time_limit" and not r.get("feasible") and r.get("bound") is None for r in rows)
            over = sum(r["wall_s"] is not None and r["wall_s"] > limit * 1.1 + 1 for r in rows)
            print(f"\n{label}: {len(rows)} runs, {empty} time_limit rows with neither incumbent nor bound, "
                  f"{over} with wall_s over limit × 1.1 + 1 s")


if __name__ == "__main__":
    main([float(a) for a in sys.argv[1:]] or [5.0, 20.0])
