"""vcache benchmarks: the exact MILP on one interval of the large preset, the vector index against a NumPy scan,
simulated intervals' wall time, and every method over time against the per-interval optimum (the figure) — the
learned ones (dlrs, mappo) by their shipped policies (``edgeopt/policies/vcache/``).

    OPENBLAS_NUM_THREADS=1 python benchmarks/vcache.py [--quick] [section ...]

Sections: exact, index, simulate, policies, over-time (default: all, in that order). Markdown on stdout; over-time also
writes experiments/figures/vcache-over-time.png. One thread everywhere (usearch searches with threads=1, NumPy
with one BLAS thread), so the index and the scan compare core for core; the load average is printed with
every table, since the machine is shared.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import edgeopt  # noqa: E402
from edgeopt.problems import vcache as P  # noqa: E402
from edgeopt.run import run_one  # noqa: E402

QUICK = "--quick" in sys.argv
ROOT = Path(__file__).resolve().parents[1]
METHODS = ["milp", "dlrs", "mappo", "greedy-0.5", "greedy-0.3", "greedy-0.1", "greedy-llm", "nearest-server", "random"]
BASELINES = METHODS[2:]  # what DLRS is compared with (the paper's that edgeopt has)


def load() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg()) + " (1 / 5 / 15 min)"


def bench_exact(sizes=(200, 1000, 2000, 5000), time_limit: float = 60.0) -> None:
    """The MILP on one interval of the metro preset (10 edges): size, time, proven or not; the LP bound beside it."""
    from edgeopt.formulations.vcache import build_model

    print(f"\n### milp on one interval of the metro preset (10 edges, seed 0, time limit {time_limit:g} s; {load()})\n")
    print("| requests | binaries | rows | milp status | milp s | objective | bound | gap | lp s | lp above optimum | "
          "greedy-0.5 gap |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for R in sizes:
        inst = P.generate("metro", size=R, seed=0)
        m = build_model(inst)
        n_var, n_row = m.nvariables(), m.nconstraints()
        e = run_one(inst, "milp", time_limit=time_limit)
        b = run_one(inst, "lp", time_limit=time_limit)
        g = run_one(inst, "greedy-0.5")
        print(f"| {R} | {n_var} | {n_row} | {e.status} | {e.wall_s:.2f} | {e.objective:.5f} | {e.bound:.5f} | "
              f"{e.gap:.1e} | {b.wall_s:.2f} | {(b.bound - e.objective) / abs(e.objective):.2e} | "
              f"{(e.objective - g.objective) / abs(e.objective):.1%} |")
    print(f"\n({load()} at the end)")


def _clustered(n: int, q: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Cache entries and queries as the simulation makes them: paraphrases of the velo world's questions."""
    world = P.make_world("metro", rng)
    entries = P.draw_requests(world, rng, np.zeros(n, dtype=int))["emb"]
    queries = P.draw_requests(world, rng, np.zeros(q, dtype=int))["emb"]
    return entries, queries


def bench_index(sizes=(100, 1_000, 10_000, 100_000), queries: int = 1000) -> None:
    """usearch (HNSW, the simulation's settings) against an exact NumPy scan: queries per second, recall@1."""
    from edgeopt.systems.vcache import _index

    print(f"\n### nearest entry of {queries} queries (one batch, one thread): usearch HNSW vs NumPy scan ({load()})\n")
    print("| cache entries | build s (usearch add) | usearch queries/s | NumPy scan queries/s | usearch / scan | "
          "recall@1 |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        entries, qs = _clustered(n, queries, np.random.default_rng(n))
        index = _index()
        t = time.perf_counter()
        index.add(np.arange(n), entries, threads=1)
        build = time.perf_counter() - t
        rates, found = {}, {}
        for name, fn in (("usearch", lambda: index.search(qs, 1, threads=1).keys[:, 0]),
                         ("numpy", lambda: (qs @ entries.T).argmax(axis=1))):
            fn()  # warm
            reps, t = 0, time.perf_counter()
            while reps < 3 or time.perf_counter() - t < 1.0:
                found[name] = fn()
                reps += 1
            rates[name] = reps * queries / (time.perf_counter() - t)
        exact = (qs @ entries.T).max(axis=1)
        recall = np.mean(np.isclose((qs * entries[found["usearch"]]).sum(axis=1), exact, atol=1e-5))
        print(f"| {n:,} | {build:.2f} | {rates['usearch']:,.0f} | {rates['numpy']:,.0f} | "
              f"{rates['usearch'] / rates['numpy']:.2f} | {recall:.3f} |")
    print(f"\n({load()} at the end)")


def bench_simulate(intervals: int = 100) -> None:
    """Wall time of simulated intervals: the loop, the index and the referee, with and without the optimum."""
    print(f"\n### {intervals} simulated intervals, seed 0 ({load()})\n")
    print("| preset | requests per interval | policy | reference | wall s | ms per interval |")
    print("|---|---:|---|---|---:|---:|")
    edgeopt.simulate("vcache", "greedy-0.5", intervals=1, reference=None)  # imports
    for preset, rate, policy, ref in (("velo", 10, "greedy-0.5", None), ("velo", 10, "greedy-0.5", "milp"),
                                      ("metro", 20, "greedy-0.5", None), ("metro", 20, "milp", "milp")):
        t = time.perf_counter()
        edgeopt.simulate("vcache", policy, preset=preset, intervals=intervals, seed=0, reference=ref, rate=rate,
                         cache_size=300 if preset == "metro" else 100)
        wall = time.perf_counter() - t
        E = 10 if preset == "metro" else 3
        print(f"| {preset} | {rate * E} | {policy} | {ref or 'none'} | {wall:.1f} | {1000 * wall / intervals:.0f} |")
    print(f"\n({load()} at the end)")


def bench_policies() -> None:
    """The shipped learned policies as their headers record them: the command, its training time and last episodes."""
    from edgeopt.learn import methods

    print(f"\n### shipped vcache policies (from their headers; {load()} now)\n")
    print("| policy | command | episodes | training wall s | mean objective per episode, last 50 (10 intervals) |")
    print("|---|---|---:|---:|---:|")
    for path in sorted((methods.SHIPPED / "vcache").glob("*.npz")):
        h = methods.load(path, "vcache").header
        print(f"| {path.name} | `{h['command']}` | {h['episodes']} | {h['final']['train_wall_s']:.0f} | "
              f"{h['final']['mean_objective_last50']:.3f} |")


def _smooth(y, k: int = 5) -> np.ndarray:
    y = np.array([np.nan if v is None else v for v in y], dtype=float)
    return np.convolve(y, np.ones(k) / k, mode="valid")


def bench_over_time(intervals: int = 100, seeds=(0, 1, 2)) -> None:
    """Every method as the policy for ``intervals`` velo intervals (the default system), the per-interval optimum
    (milp) on each policy's own state as the reference; means over the seeds, and the figure of seed 0."""
    print(f"\n### every method over {intervals} velo intervals (3 edges x 10 requests, caches of 100 starting at 20, "
          f"cloud for about 30 %), seeds {list(seeds)}; reference: milp on the policy's own state ({load()})\n")
    print("| policy | objective | satisfaction | latency s | cloud answers per interval | same-question cache answers | "
          "gap to the per-interval optimum | milp's satisfaction over it | milp's latency over it | "
          "dlrs's satisfaction over it | dlrs's latency over it |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    runs, rows = {}, {}
    for m in METHODS:
        per = []
        for s in seeds:
            run = edgeopt.simulate("vcache", m, intervals=intervals, seed=s)
            if s == seeds[0]:
                runs[m] = run
            same = [v for v in run.column("service", "same_question") if v is not None]
            per.append((run.summary["objective"], run.summary["satisfaction"], run.summary["latency_s"],
                        run.summary["cloud"] / intervals, float(np.mean(same)), run.summary["mean_gap"]))
        rows[m] = np.mean(per, axis=0)
    for m, (obj, sat, lat, cloud, same, gap) in rows.items():
        print(f"| {m} | {obj:.4f} | {sat:.4f} | {lat:.3f} | {cloud:.1f} | {same:.2f} | {gap:.1%} | "
              f"{rows['milp'][1] / sat - 1:+.1%} | {rows['milp'][2] / lat - 1:+.1%} | "
              f"{rows['dlrs'][1] / sat - 1:+.1%} | {rows['dlrs'][2] / lat - 1:+.1%} |")
    sat, lat = (np.mean([rows[m][k] for m in BASELINES]) for k in (1, 2))
    print(f"\nThe baselines' mean ({', '.join(BASELINES)}): satisfaction {sat:.4f}, latency {lat:.3f} s; dlrs over it: "
          f"{rows['dlrs'][1] / sat - 1:+.1%} satisfaction, {rows['dlrs'][2] / lat - 1:+.1%} latency; the mean of dlrs's "
          f"ratios to each: {np.mean([rows['dlrs'][1] / rows[m][1] - 1 for m in BASELINES]):+.1%}, "
          f"{np.mean([rows['dlrs'][2] / rows[m][2] - 1 for m in BASELINES]):+.1%}")
    print(f"\n({load()} at the end)")
    _figure(runs, ROOT / "experiments" / "figures" / "vcache-over-time.png")


def _figure(runs: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.0), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = (("service", "satisfaction", "mean satisfaction"), ("service", "latency_s", "mean latency, s"),
              ("reference", "gap", "gap to the per-interval optimum"))
    for ax, (family, metric, title) in zip(axes, panels):
        for m, run in runs.items():
            y = _smooth(run.column(family, metric))
            style = {"color": "k" if m == "milp" else f"C{METHODS.index(m) - 1}",
                     "linewidth": 2.2 if m in ("milp", "dlrs") else 1.1}
            ax.plot(np.arange(len(y)) + 2, y, label="milp (per-interval optimum)" if m == "milp" else m, **style)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("interval (5-interval moving mean)")
    axes[2].yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=len(runs), fontsize="small")
    fig.suptitle("vcache (VELO) over time: velo preset, seed 0; caches fill with cloud answers")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    chosen = [a for a in sys.argv[1:] if not a.startswith("--")] or ["exact", "index", "simulate", "policies",
                                                                     "over-time"]
    sections = {
        "exact": lambda: bench_exact(sizes=(200,) if QUICK else (200, 1000, 2000, 5000)),
        "index": lambda: bench_index(sizes=(100, 1000) if QUICK else (100, 1_000, 10_000, 100_000)),
        "simulate": lambda: bench_simulate(intervals=10 if QUICK else 100),
        "policies": bench_policies,
        "over-time": lambda: bench_over_time(intervals=10 if QUICK else 100, seeds=(0,) if QUICK else (0, 1, 2)),
    }
    for name in chosen:
        sections[name]()
