"""`edgeopt serve` under a bounded load on 127.0.0.1: throughput, latency, errors, overhead, memory (issue 24).

    OPENBLAS_NUM_THREADS=1 python benchmarks/serve.py [REQUESTS] [CLIENTS] [JOBS]      # default 2000 32 2

Two workloads of POST /solve, each request one heuristic on one small instance (``small_instance``, seeds 0-9):
``daa`` (qllms's paper heuristic alone: one method, so "the bare method time" is one number) and ``mix`` (the
paper heuristics of eight problems in turn: 80 (instance, method) pairs, from 0.2 ms to 100 ms). Each pair's
bare time is measured first in this process as ``edgeopt.solve(instance, method)`` (the referee included; the
median of 5 calls after a warm-up). Then one service (``edgeopt serve --jobs JOBS``) answers, per workload:

* 200 requests from 1 client and 400 from JOBS clients: no queueing beyond the workers, so latency - bare time
  is the service's overhead per request (HTTP, JSON, validation, the hand-over to a worker process and back);
* REQUESTS requests from CLIENTS concurrent httpx clients (one asyncio process on the same machine):
  throughput, p50 / p99 latency, errors (anything but 200), p99 over the bare time;
* the service's own p99 answer time (its ``edgeopt_request_seconds`` histogram, to a bucket's edge): what the
  clients measure beyond it was spent in the client process or the kernel;
* the service process's CPU time per request (its event loop, the Pool's thread, the store's thread; the
  workers apart);
* the service's RSS (its own process; the workers apart) after a warm-up and after all the load.

Printed as a Markdown table; the load average is read before and after.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

import edgeopt
from edgeopt import io, registry

MIX = [("partition", "dp-latency"), ("cdgs", "cgsc-cstp"), ("qllms", "daa"), ("dagsched", "list"),
       ("offload", "ts-mito"), ("stepsplit", "min-bound"), ("placement", "lpt-ls"), ("batching", "ot-gah")]
WORKLOADS = {"daa": [("qllms", "daa")], "mix": MIX}
SEEDS = range(10)


def pairs(heuristics: list[tuple[str, str]]) -> list[dict]:
    """(instance document, method, bare seconds) for every heuristic and seed."""
    out = []
    for pid, method in heuristics:
        for seed in SEEDS:
            inst = registry.problem(pid).module.small_instance(seed)
            edgeopt.solve(inst, method)  # warm: imports, caches
            times = []
            for _ in range(5):
                began = time.perf_counter()
                edgeopt.solve(inst, method)
                times.append(time.perf_counter() - began)
            out.append({"doc": io.instance_doc(inst), "method": method, "bare_s": statistics.median(times)})
    return out


def rss(pid: int) -> int:
    """Resident set size of a process, bytes (Linux)."""
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def solve_buckets(url: str) -> dict[float, float]:
    """The service's own histogram of POST /solve answer times (``/metrics``): upper edge -> count so far."""
    out = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith('edgeopt_request_seconds_bucket{route="/solve",le="'):
            edge = line.split('le="')[1].split('"')[0]
            out[float("inf") if edge == "+Inf" else float(edge)] = float(line.rsplit(" ", 1)[1])
    return out


def bucket_quantile(before: dict, after: dict, q: float) -> float:
    """The upper edge of the bucket holding the ``q`` quantile of what was observed between two readings."""
    total = after[float("inf")] - before.get(float("inf"), 0)
    return next(edge for edge in sorted(after) if after[edge] - before.get(edge, 0) >= q * total)


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def load(url: str, work: list[dict], requests: int, clients: int) -> dict:
    """``requests`` POST /solve from ``clients`` concurrent clients; each request's pair, latency and status."""
    results: list[tuple[int, float, int]] = []
    queue: asyncio.Queue = asyncio.Queue()
    for k in range(requests):
        queue.put_nowait(k)
    bodies = [json.dumps({"instance": w["doc"], "methods": [w["method"]]}).encode() for w in work]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=600,
                                 headers={"Content-Type": "application/json"}) as client:
        async def one_client():
            while not queue.empty():
                k = queue.get_nowait()
                began = time.perf_counter()
                try:
                    status = (await client.post("/solve", content=bodies[k % len(work)])).status_code
                except httpx.HTTPError:
                    status = 0
                results.append((k % len(work), time.perf_counter() - began, status))

        began = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    latencies = [r[1] for r in results]
    overheads = [r[1] - work[r[0]]["bare_s"] for r in results]
    bare = statistics.median(w["bare_s"] for w in work)
    return {"requests": requests, "clients": clients, "seconds": elapsed, "per_s": requests / elapsed,
            "errors": sum(r[2] != 200 for r in results), "p50_ms": 1e3 * quantile(latencies, 0.5),
            "p99_ms": 1e3 * quantile(latencies, 0.99), "p99_over_bare": quantile(latencies, 0.99) / bare,
            "overhead_p50_ms": 1e3 * quantile(overheads, 0.5), "overhead_p99_ms": 1e3 * quantile(overheads, 0.99)}


def main(requests: int, clients: int, jobs: int) -> None:
    load_before = os.getloadavg()
    work = {name: pairs(heuristics) for name, heuristics in WORKLOADS.items()}
    folder = Path(tempfile.mkdtemp(prefix="edgeopt-serve-bench-"))
    cmd = [sys.executable, "-c", "from edgeopt.cli import main; main()", "serve", "--port", "0", "--jobs", str(jobs),
           "--store", str(folder / "jobs.sqlite"), "--queue", str(max(100, clients))]
    server = subprocess.Popen(cmd, cwd=folder, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(server.stderr), daemon=True).start()
    runs = []
    try:
        while not any("listening on" in line for line in lines):
            assert server.poll() is None, "".join(lines)
            time.sleep(0.05)
        url = next(line for line in lines if "listening on" in line).split("listening on ")[1].split()[0]
        for pairs_ in work.values():  # warm-up: every pair, every worker warm
            asyncio.run(load(url, pairs_, 2 * len(pairs_), min(clients, 8)))
        rss_before = rss(server.pid)
        for name, pairs_ in work.items():
            for n, c in ((200, 1), (400, jobs), (requests, clients)):
                used, seen = cpu_s(server.pid), solve_buckets(url)
                runs.append({"workload": name, **asyncio.run(load(url, pairs_, n, c))})
                runs[-1]["service_cpu_ms"] = 1e3 * (cpu_s(server.pid) - used) / n
                runs[-1]["service_p99_ms_at_most"] = 1e3 * bucket_quantile(seen, solve_buckets(url), 0.99)
        rss_after = rss(server.pid)
        children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
        workers_rss = [rss(int(pid)) for pid in children if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    bare = {name: [1e3 * w["bare_s"] for w in pairs_] for name, pairs_ in work.items()}
    out = {"bare_ms": {k: {"median": statistics.median(v), "max": max(v)} for k, v in bare.items()}, "jobs": jobs,
           "runs": runs, "rss_before_mb": rss_before / 2**20, "rss_after_mb": rss_after / 2**20,
           "rss_growth": rss_after / rss_before - 1, "workers_rss_mb": [r / 2**20 for r in workers_rss],
           "load_before": load_before, "load_after": os.getloadavg()}
    for name, b in out["bare_ms"].items():
        print(f"bare edgeopt.solve, {name} ({len(work[name])} pairs): median {b['median']:.2f} ms, "
              f"max {b['max']:.1f} ms")
    print("| workload | clients | requests | req/s | p50 ms | p99 ms | errors | p99 / bare median | overhead p50 ms | "
          "overhead p99 ms | service CPU ms / request | p99 in the service, ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['workload']} | {r['clients']} | {r['requests']} | {r['per_s']:.1f} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['errors']} | {r['p99_over_bare']:.1f}x | {r['overhead_p50_ms']:.1f} | "
              f"{r['overhead_p99_ms']:.1f} | {r['service_cpu_ms']:.1f} | ≤ {r['service_p99_ms_at_most']:g} |")
    print(f"service RSS {out['rss_before_mb']:.1f} MB after the warm-up, {out['rss_after_mb']:.1f} MB after "
          f"{sum(r['requests'] for r in runs)} requests ({100 * out['rss_growth']:+.1f} %); workers "
          f"{', '.join(f'{m:.0f}' for m in out['workers_rss_mb'])} MB")
    print("load average before {:.2f} / {:.2f} / {:.2f}, after {:.2f} / {:.2f} / {:.2f} (1 / 5 / 15 min)".format(
        *load_before, *out["load_after"]))


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*(args + [2000, 32, 2][len(args):]))
