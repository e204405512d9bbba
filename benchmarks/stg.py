"""Task graphs on P identical processors: how many `cpsat` proves optimal, and how fast (issue 26).

    OPENBLAS_NUM_THREADS=1 python benchmarks/stg.py [DIR_OR_FILES ...] [--limit 5] [--processors 2,4,8,16]
    PYTHONPATH=/tmp/before OPENBLAS_NUM_THREADS=1 python benchmarks/stg.py ...    # the same on an older tree
                                                   # (git archive COMMIT | tar -x -C /tmp/before)

Default graphs: the Kasahara STG files shipped in tests/data/dagsched/stg (a sample of the public set; the set
itself is not in the repository); GXL and DOT files (communication costs: Sinnen's format) are read by suffix.
Each (graph, P) runs `paths`, `list` and `cpsat` (or --method; one thread, the time limit per run, model building
included) one after the other in this process. Prints one comment line per run and a Markdown
summary: proven optimal, proven within the limit by the start meeting the bound alone, time quantiles.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from edgeopt import solve
from edgeopt.importers.dot import import_dot
from edgeopt.importers.gxl import import_gxl
from edgeopt.importers.stg import import_stg

DEFAULT = Path(__file__).parents[1] / "tests" / "data" / "dagsched" / "stg"
IMPORTERS = {".stg": import_stg, ".gxl": import_gxl, ".dot": import_dot}


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="*", default=[str(DEFAULT)])
    ap.add_argument("--limit", type=float, default=5.0)
    ap.add_argument("--method", default="cpsat")
    ap.add_argument("--processors", default="2,4,8,16")
    args = ap.parse_args(argv)
    files = sorted(f for p in map(Path, args.paths) for f in (p.iterdir() if p.is_dir() else [p])
                   if f.suffix in IMPORTERS)
    rows = []
    for f in files:
        for P in map(int, args.processors.split(",")):
            inst = IMPORTERS[f.suffix](f, processors=P)
            bound = solve(inst, "paths").bound
            listed = solve(inst, "list").objective
            t = time.perf_counter()
            r = solve(inst, args.method, time_limit=args.limit, threads=1)
            wall = time.perf_counter() - t
            how = r.details.get("proof") or r.details.get("model") or "solver"
            print(f"<!-- {f.stem} P={P}: paths {bound:g} list {listed:g} {args.method} {r.status} {r.objective} "
                  f"bound {r.bound} {wall:.2f} s ({how}) -->", flush=True)
            rows.append((r.status == "optimal" and wall <= args.limit, bound == listed, wall, r.status))
    n = len(rows)
    walls = sorted(w for *_, w, _ in rows)
    print(f"\n| runs | proven optimal within {args.limit:g} s | start meets the bound | median s | max s |")
    print("|---|---|---|---|---|")
    print(f"| {n} | {sum(p for p, *_ in rows)} | {sum(m for _, m, *_ in rows)} | {statistics.median(walls):.2f} "
          f"| {walls[-1]:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
