"""A scheduler extender's call to `edgeopt serve`: pending pods and GPU nodes -> a `placement` instance -> bindings.

Each pod serves one model and its own traffic: it needs ``gpu_mem_gb`` of GPU memory and ``tflops`` of compute
where it runs, and its ``requests`` in the planning window each keep its node busy ``seconds_per_request[gpu]``.
As a `placement` instance: nodes are devices, pods are models, and each pod is the one model that can serve
its own request type (no cascades, λ = 0), so the objective is the busiest node's busy time in the window:
the placement that balances the nodes within their memory and compute. The answer maps back to one node per
pod, with the referee's busy time of every node.

    python examples/scheduler_extender.py examples/cluster.json --url http://127.0.0.1:8000 [--token-file F]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import httpx


def to_instance(cluster: dict) -> dict:
    """The cluster as a `placement` instance file's JSON."""
    nodes, pods = cluster["nodes"], cluster["pods"]
    return {
        "problem": "placement",
        "name": cluster.get("name", "cluster"),
        "meta": {"source": "scheduler extender: pods and nodes", "window_s": cluster["window_s"]},
        "data": {
            "lam": 0.0,
            "devices": [{"name": n["name"], "mem_gb": n["gpu_mem_gb"], "compute": n["tflops"]} for n in nodes],
            "models": [{"name": p["name"], "mem_gb": p["gpu_mem_gb"], "compute": p["tflops"]} for p in pods],
            "types": [{"name": p["name"], "count": p["requests"]} for p in pods],
            # time_s[r][j][i]: pod j serving pod r's requests on node i (only j == r serves them)
            "time_s": [[[p["seconds_per_request"][n["gpu"]] if j == r else 0.0 for n in nodes]
                        for j in range(len(pods))] for r, p in enumerate(pods)],
            "error": [[0.0 if j == r else None for j in range(len(pods))] for r in range(len(pods))],
        },
    }


def to_bindings(cluster: dict, row: dict) -> dict:
    """A `solve` row (the referee's verdict on its solution) as one node per pod and every node's busy time."""
    nodes = [n["name"] for n in cluster["nodes"]]
    return {
        "method": row["method"],
        "status": row["status"],
        "feasible": row["feasible"],
        "busiest_node_s": row["objective"],
        "bindings": [{"pod": p["name"], "node": nodes[i]} for p, i in zip(cluster["pods"], row["solution"]["device"])],
        "node_busy_s": dict(zip(nodes, row["details"]["load_s"])),
    }


def place(cluster: dict, url: str, token: str | None = None, time_limit: float = 10) -> dict:
    """Ask the service for the heuristic's and the MILP's placements; keep the best feasible one."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"instance": to_instance(cluster), "methods": ["lpt-ls", "milp"], "time_limit": time_limit}
    answer = httpx.post(f"{url}/solve", json=body, headers=headers, timeout=time_limit * 2 + 30)
    answer.raise_for_status()
    rows = [r for r in answer.json() if r["feasible"]]
    if not rows:
        raise SystemExit("no feasible placement: the pods do not fit the nodes' memory and compute")
    best = min(rows, key=lambda r: r["objective"])
    milp = next(r for r in answer.json() if r["method"] == "milp")
    proven = milp["status"] == "optimal" and milp["objective"] <= best["objective"]
    return {**to_bindings(cluster, best), "optimal": proven, "bound_s": milp["bound"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cluster", help="pods and nodes (JSON)")
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--token-file")
    ap.add_argument("--time-limit", type=float, default=10)
    args = ap.parse_args()
    token = Path(args.token_file).read_text().strip() if args.token_file else None
    print(json.dumps(place(json.loads(Path(args.cluster).read_text()), args.url, token, args.time_limit), indent=1))


if __name__ == "__main__":
    main()
