"""The one task-graph builder of the STG, GXL and DOT importers: a task graph -> a ``dagsched`` instance.

A graph becomes one job on identical 1 Hz processors joined by 1 bit/s links, with no cloud and gamma = 1, so
that node weights are execution times, edge weights transfer times and the objective is the makespan
(``on_processors``). GXL and DOT hand in named nodes and weighted edges (``graph_instance``); STG, which has
its own dummy entry and exit and no communication costs, hands in the job.
"""
from __future__ import annotations

import math
from pathlib import Path

from edgeopt import limits
from edgeopt.model import InputError
from edgeopt.problems.dagsched import Data, Instance, topological


def on_processors(p: Path, job: dict, processors: int, fmt: str, meta: dict) -> Instance:
    """One job on ``processors`` identical 1 Hz processors joined by 1 bit/s links, no cloud, gamma = 1 (the
    objective is the makespan); a bad value names its place in the file ``p``."""
    from pydantic import ValidationError

    from edgeopt.model import validation_error

    P = int(processors)
    data = {"gamma": 1.0, "t_max_s": None, "edge_bps": 1.0,
            "servers": [{"name": f"p{k}", "modalities": ["any"], "f_hz": 1.0, "price": 0.0} for k in range(P)],
            "rates": {"ul_bps": [[1.0] * P], "dl_bps": [[1.0] * P]}, "jobs": [job]}
    try:
        d = Data.model_validate(data)
    except ValidationError as exc:
        err = validation_error(exc, "data")
        raise InputError(f"{p}: {err.path}", err.rule) from None
    return Instance(name=f"{fmt}-{p.stem}-p{P}", meta=meta, data=d)


def graph_instance(p: Path, graph: str, nodes: dict[str, float], edges: dict[tuple[str, str], float],
                   processors: int, fmt: str) -> Instance:
    """A weighted task graph -> one job on ``processors`` identical processors, no cloud, gamma = 1.

    Node weights are execution times (cycles on 1 Hz processors); edge weights are communication times
    (bits over 1 bit/s links), paid only between different processors, as in the STG import. Several
    sinks get a zero-work ``exit`` sub-task fed by zero-size edges: the model needs one sink per job. It
    needs no single entry (latency counts from the first start), so sources are kept as they are.
    """
    if not 1 <= int(processors) <= limits.PROCESSORS_MAX:
        raise InputError("--processors", f"must be 1..{limits.PROCESSORS_MAX}, got {processors}")
    if not nodes:
        raise InputError(str(p), "holds no nodes (expected a task graph)")
    index = {v: k for k, v in enumerate(nodes)}
    pairs = [(index[a], index[b]) for a, b in edges]
    order = topological(len(nodes), pairs)
    if len(order) < len(nodes):
        done = set(order)
        left = [v for v, k in index.items() if k not in done]
        raise InputError(f"{p}: edges", f"must form an acyclic graph; nodes {left[:10]} lie on or behind a cycle")
    tasks = [{"name": v, "modality": "any", "cycles": w, "in_bits": 0.0, "out_bits": 0.0} for v, w in nodes.items()]
    edge_docs = [{"src": a, "dst": b, "bits": w} for (a, b), w in zip(pairs, edges.values())]
    sinks = sorted(set(range(len(nodes))) - {a for a, _ in pairs})
    if len(sinks) > 1:
        tasks.append({"name": "exit", "modality": "any", "cycles": 0.0, "in_bits": 0.0, "out_bits": 0.0})
        edge_docs += [{"src": s, "dst": len(nodes), "bits": 0.0} for s in sinks]
    meta = {"importer": fmt, "source": p.name, "graph": graph, "processors": int(processors), "tasks": len(nodes),
            "exit_task": len(sinks) > 1}
    return on_processors(p, {"name": graph or p.stem, "tasks": tasks, "edges": edge_docs}, processors, fmt, meta)


def parse_weight(text: str | None, where: str) -> float:
    """A node or edge Weight: a finite number >= 0 (InputError naming ``where``)."""
    try:
        w = float((text or "").strip())
    except ValueError:
        raise InputError(where, f"must be a number >= 0, got {(text or '').strip()!r}") from None
    if not math.isfinite(w) or w < 0:
        raise InputError(where, f"must be a finite number >= 0, got {w:g}")
    return w


def read_text(path: str, what: str) -> tuple[Path, str]:
    """The file's path and its UTF-8 text (InputError naming the file if it is missing or not text)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), f"does not exist (expected {what})")
    try:
        return p, p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(str(p), f"is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InputError(str(p), f"cannot be read: {exc.strerror or exc}") from None
