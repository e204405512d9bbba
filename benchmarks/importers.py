"""DOT task graphs: edgeopt's importer (tokenizer, checks, instance) against pydot's parser alone, side by side.

    python benchmarks/importers.py           # Markdown table (about a minute; needs `pip install pydot`)

The question of issue 21: read DOT with pydot instead of edgeopt's own tokenizer? pydot is timed on parsing
only (``graph_from_dot_data``), edgeopt on the whole import (``import_dot``: read, tokenize, check, build the
dagsched instance), so the ratio favours pydot. Graphs: the test file fork_join.dot (5 tasks) and random
layered DAGs in the layout of Sinnen's generator (every task fed by up to two earlier ones), one seed.
"""
from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

import pydot

from edgeopt.importers.dot import import_dot

FORK_JOIN = Path(__file__).parents[1] / "tests" / "data" / "dagsched" / "fork_join.dot"


def layered_dot(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    lines = [f'digraph "random_n{n}" {{'] + [f"\t{k}\t [Weight={rng.randint(1, 50)}];" for k in range(n)]
    for k in range(1, n):
        lines += [f"\t{j} -> {k}\t [Weight={rng.randint(1, 50)}];" for j in rng.sample(range(k), min(k, 2))]
    return "\n".join(lines + ["}"]) + "\n"


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    cases = [("fork_join.dot (5 tasks)", FORK_JOIN, 20)]
    for n in (100, 500, 2000):
        path = folder / f"random_n{n}.dot"
        path.write_text(layered_dot(n))
        cases.append((f"random layered, {n} tasks", path, 5 if n < 2000 else 3))
    print("| graph | KB | edgeopt import_dot ms | pydot parse ms | pydot / edgeopt |")
    print("|---|---|---|---|---|")
    for label, path, repeat in cases:
        text = path.read_text()
        ours = timed(lambda: import_dot(path, processors=4), repeat)
        theirs = timed(lambda: pydot.graph_from_dot_data(text), repeat)
        print(f"| {label} | {len(text) / 1e3:.1f} | {ours * 1e3:.2f} | {theirs * 1e3:.1f} | {theirs / ours:.0f} |")


if __name__ == "__main__":
    main()
