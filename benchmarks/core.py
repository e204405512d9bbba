"""What every command pays before and after a method: start-up, loading, validation and writing.

    OPENBLAS_NUM_THREADS=1 python benchmarks/core.py       # prints Markdown tables (about 2 minutes)

Each comparison is taken in one run, side by side, as a median of 5 (the machine is shared): edgeopt's
load (parse + validation, gzip included) against Python's ``json`` module parsing the same file, the two
interleaved (61 times each for the 1.8 MB dagsched file, whose 15 ms loads the load average swings most).
"""
from __future__ import annotations

import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgeopt import generate, io, problem

EDGEOPT = [sys.executable, "-c", "from edgeopt.cli import main; main()"]


def median_s(fn, reps: int = 5) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def startup(tmp: Path) -> None:
    small = tmp / "small.json"
    io.save(problem("partition").module.small_instance(0), small)
    print("### start-up (a fresh process each time, median of 5)\n")
    print("| command | s | target |")
    print("|---|---|---|")
    for args, target in ((["--help"], 0.3), (["validate", str(small)], 0.8)):
        t = median_s(lambda: subprocess.run(EDGEOPT + args, capture_output=True, check=True))
        print(f"| `edgeopt {' '.join(a if a != str(small) else 'small.json' for a in args)}` | {t:.3f} | < {target} |")
    print()


def loading(tmp: Path) -> None:
    print("### loading: edgeopt.load (parse + validation) vs json parsing alone, same file, interleaved, median\n")
    print("| file | MB on disk | json s | edgeopt.load s | ratio |")
    print("|---|---|---|---|---|")
    cases = [("qllms hetero, 100,000 tasks (.json.gz)", "qllms.json.gz", lambda: generate("qllms", "hetero", size=100_000)),
             ("dagsched paper, 1,000 jobs (.json)", "dagsched.json", lambda: generate("dagsched", "paper", size=1000))]
    for label, name, make in cases:
        path = tmp / name
        io.save(make(), path)

        def parse_json():
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as fh:
                json.load(fh)

        reps = 5 if name.endswith(".gz") else 61  # a 15 ms load: many, interleaved, so both see the same load
        times = [(median_s(parse_json, 1), median_s(lambda: io.load(path), 1)) for _ in range(reps)]
        tj, te = (statistics.median(t) for t in zip(*times))
        print(f"| {label} | {path.stat().st_size / 1e6:.1f} | {tj:.3f} | {te:.3f} | {te / tj:.2f} |")
    print()


def writing(tmp: Path) -> None:
    inst = io.load(tmp / "qllms.json.gz")
    result = problem("qllms").method("edf").run(inst)
    print("### writing a 100,000-task result (median of 5)\n")
    print("| what | MB | s | target |")
    print("|---|---|---|---|")
    doc = io.solution_doc(result)
    t = median_s(lambda: io.write_json(doc, tmp / "sol.json"))
    print(f"| solution file (`solve -o`) | {(tmp / 'sol.json').stat().st_size / 1e6:.1f} | {t:.3f} | < 1 |")
    row = result.to_dict()
    t = median_s(lambda: io.dumps(row))
    print(f"| `--json` result | {len(io.dumps(row)) / 1e6:.1f} | {t:.3f} | < 1 |")
    print()


def building() -> None:
    """Instance building in code against what a scheduler then spends scheduling it."""
    inst = generate("dagsched", "paper", size=1000)
    doc = io.instance_doc(inst)
    build = median_s(lambda: io.parse_instance(doc))
    sched = statistics.median(problem("dagsched").method("list").run(inst).wall_s for _ in range(5))
    print("### dagsched, 1,000 jobs: building the Instance from Python dicts vs scheduling it with `list`\n")
    print("| build s | list s | ratio build / list |")
    print("|---|---|---|")
    print(f"| {build:.3f} | {sched:.3f} | {build / sched:.2f} |\n")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        startup(Path(d))
        loading(Path(d))
        writing(Path(d))
    building()
