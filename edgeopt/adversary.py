"""Search over valid instances for a heuristic's worst gap to the proven optimum (``edgeopt adversary``).

The first quarter of the budget samples generator instances; then simulated annealing from the worst
one proposes a fresh generator instance (a new seed, the generator's float options scaled), a
perturbation of the current instance's data or, for ``dagsched``, a toggled DAG edge, each move
chosen by how often it has improved so far. The data perturbation is generic: it scales entries of
the float fields the instance model declares (``Array(float, ...)`` arrays and bounded ``float``
fields), clipped into their declared ranges, and leaves integers (counts, indices, cross-references)
alone, so structure is kept. Every candidate is validated by the Instance model like a file before it
is scored, so the search never produces an invalid instance. A candidate is scored only when the
reference exact method proves its optimum; the gap is ``compare``'s (relative to the optimum, in the
problem's sense). A relative gap grows without limit as the optimum nears 0, so a search left alone
drives the optimum there (free edges, a zero-delay plan) instead of finding a hard instance: a candidate
whose optimum is below ``floor`` times the magnitude of the first proven optimum (the generator's own
instance) is counted as degenerate and not scored.
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import math
import signal
import threading
import time
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from pydantic import BaseModel, BeforeValidator

from edgeopt import io, limits, registry
from edgeopt.compare import add_gaps
from edgeopt.errors import InputError, Interrupted, shown
from edgeopt.run import run_one

SIGMA = 0.4  # log-scale of one multiplicative data move
EXPLORE = 0.25  # fraction of the budget spent sampling generator instances before the annealing starts
PROPOSALS = 50  # invalid proposals tolerated in a row before a fresh generator instance is forced


@dataclass(frozen=True)
class Leaf:
    """A float field of the instance data: its path in the file's ``data`` and its declared range."""

    path: tuple
    lo: float | None
    hi: float | None
    lo_open: bool
    hi_open: bool


@dataclass
class Candidate:
    """One scored instance: the reference's proven optimum and the heuristic's referee objective."""

    instance: Any
    gap: float
    optimum: float
    objective: float
    evaluation: int
    elapsed_s: float


@dataclass
class Search:
    """What a search found; ``best`` is None when no candidate got a proven optimum within the limit."""

    problem: str
    heuristic: str
    reference: str
    settings: dict
    best: Candidate | None = None
    evaluations: int = 0  # candidates run (heuristic and reference)
    unproven: int = 0  # reference not optimal within its limit: skipped, not scored
    heuristic_failed: int = 0  # proven optimum exists but the heuristic returned no feasible solution
    invalid: int = 0  # proposals the Instance model rejected (never run)
    degenerate: int = 0  # optimum below the floor: relative gap meaningless, not scored
    scale: float | None = None  # magnitude of the first proven optimum; the floor is a fraction of it
    history: list[tuple[float, int, float]] = field(default_factory=list)  # (elapsed, evaluations, gap)

    def worst_instance(self):
        """The worst instance found, with the search recorded in its ``meta``."""
        b = self.best
        meta = {"adversary": {"heuristic": self.heuristic, "gap": b.gap, "optimum": b.optimum,
                              "heuristic_objective": b.objective, "reference": self.reference,
                              "found_at_evaluation": b.evaluation, "evaluations": self.evaluations,
                              "below_floor": self.degenerate, "floor_scale": self.scale,
                              "search": self.settings},
                "derived_from": b.instance.meta}
        return b.instance.model_copy(update={"name": f"adv-{self.heuristic}-{b.instance.name}", "meta": meta})


# --- the instance model's float fields --------------------------------------------------------------

def _array_spec(metadata, annotation) -> dict | None:
    """The keywords of an ``Array(...)`` field (dtype, ndim, bounds): in its metadata, or inside ``X | None``."""
    for meta in metadata:
        if isinstance(meta, BeforeValidator) and isinstance(meta.func, partial) and "bounds" in meta.func.keywords:
            return meta.func.keywords
    for arg in typing.get_args(annotation):
        spec = _array_spec(getattr(arg, "__metadata__", ()), None) if arg is not type(None) else None
        if spec:
            return spec
    return None


def _is_float(annotation) -> bool:
    """``float`` or ``float | None``."""
    return annotation is float or (typing.get_origin(annotation) in (typing.Union, types.UnionType)
                                   and float in typing.get_args(annotation))


def _bounds(ge, gt, le, lt) -> tuple:
    return (gt if gt is not None else ge, lt if lt is not None else le, gt is not None, lt is not None)


def float_leaves(model: BaseModel, path: tuple = ()) -> list[Leaf]:
    """Every float entry group of ``model`` (an instance's ``data``) with its declared range.

    Arrays of float dtype and float fields are leaves; nested models and lists of models are walked;
    None values, integers, booleans and strings are not leaves. Lists of models may be any Sequence
    (``dagsched``'s ``data.jobs`` is validated by columns and makes its Job models on access).
    """
    leaves = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None:
            continue
        spec = _array_spec(info.metadata, info.annotation)
        if spec is not None:
            if spec["dtype"] is float:
                leaves.append(Leaf(path + (name,), *_bounds(*spec["bounds"])))
        elif isinstance(value, BaseModel):
            leaves += float_leaves(value, path + (name,))
        elif isinstance(value, Sequence) and not isinstance(value, str) and value and isinstance(value[0], BaseModel):
            for k, item in enumerate(value):
                leaves += float_leaves(item, path + (name, k))
        elif _is_float(info.annotation) and isinstance(value, (int, float)) and not isinstance(value, bool):
            lim = {k: getattr(m, k) for m in info.metadata for k in ("ge", "gt", "le", "lt") if hasattr(m, k)}
            leaves.append(Leaf(path + (name,), *_bounds(lim.get("ge"), lim.get("gt"), lim.get("le"), lim.get("lt"))))
    return leaves


def _get(doc, path: tuple):
    for key in path:
        doc = doc[key]
    return doc


def _set(doc, path: tuple, value) -> None:
    _get(doc, path[:-1])[path[-1]] = value


def perturb(doc: dict, leaves: list[Leaf], rng: np.random.Generator, sigma: float = SIGMA) -> None:
    """Scale some entries of one to three float leaves of ``doc["data"]`` by exp(N(0, sigma)), in range.

    Zeros stay zero and signs are kept (a zero is usually structural: a device's link to itself);
    missing entries (null) stay missing.
    """
    for k in rng.choice(len(leaves), size=min(len(leaves), int(rng.integers(1, 4))), replace=False):
        leaf = leaves[k]
        raw = _get(doc["data"], leaf.path)
        arr = np.array(raw, dtype=float)  # null -> NaN
        mask = rng.random(arr.shape) < rng.uniform(0.05, 0.6)
        if arr.ndim and not mask.any():
            mask.flat[int(rng.integers(arr.size))] = True
        new = np.where(mask, arr * np.exp(sigma * rng.standard_normal(arr.shape)), arr)
        if leaf.lo is not None:
            new = np.maximum(new, np.nextafter(leaf.lo, np.inf) if leaf.lo_open else leaf.lo)
        if leaf.hi is not None:
            new = np.minimum(new, np.nextafter(leaf.hi, -np.inf) if leaf.hi_open else leaf.hi)
        new = np.where(np.isnan(arr), np.nan, new)
        _set(doc["data"], leaf.path, float(new) if new.ndim == 0 else
             np.where(np.isnan(new), None, new.astype(object)).tolist())


def _toggle_dag_edge(doc: dict, rng: np.random.Generator) -> None:
    """dagsched: add or remove an edge u -> v with u before v in job order's topological numbering.

    Sub-task indices of generated jobs are topological (every edge goes from a lower to a higher
    index), so an added edge can never close a cycle; one that makes a second sink is rejected by the
    model like any other invalid candidate.
    """
    job = doc["data"]["jobs"][int(rng.integers(len(doc["data"]["jobs"])))]
    J = len(job["tasks"])
    if J < 3:
        return
    u, v = sorted(int(x) for x in rng.choice(J, size=2, replace=False))
    edges = [e for e in job["edges"] if (e["src"], e["dst"]) != (u, v)]
    if len(edges) == len(job["edges"]):
        edges.append({"src": u, "dst": v})
    job["edges"] = edges


STRUCTURE: dict[str, Callable[[dict, np.random.Generator], None]] = {"dagsched": _toggle_dag_edge}


# --- the search ----------------------------------------------------------------------------------

@contextlib.contextmanager
def _signals_seen():
    """Record SIGINT/SIGTERM before the installed handler runs, so the search stops after the candidate.

    The command line's handler raises Interrupted, but a solver wrapper that catches every exception
    (Pyomo's HiGHS interface turns one raised mid-solve into an ``error`` status) would swallow it and
    the search would go on; the record survives that.
    """
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def wrap(old):
        def handler(signum, frame):
            seen.append(signum)
            if callable(old):
                old(signum, frame)
            elif old == signal.SIG_DFL:
                raise Interrupted(signum)
        return handler

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s, h in old.items():
        if h != signal.SIG_IGN:
            signal.signal(s, wrap(h))
    try:
        yield seen
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _float_options(prob: registry.Problem) -> list[str]:
    """Generator options declared as float (with a float default): the generator parameters to scale."""
    params = inspect.signature(prob.module.generate).parameters
    return [n for n, p in params.items() if n not in ("size", "seed") and isinstance(p.default, float)
            and not isinstance(p.default, bool)]


def score(instance, heuristic: str, reference: str, *, seed: int = 0, time_limit: float | None = None,
          options: dict | None = None) -> tuple[str, float | None, float | None, float | None]:
    """(verdict, gap, optimum, heuristic objective) of one instance; verdict ``scored`` | ``unproven`` | ``failed``.

    The gap is ``compare.add_gaps``'s relative gap to the reference's proven optimum.
    """
    ref = run_one(instance, reference, time_limit=time_limit, **(options or {}))
    if ref.status != "optimal" or not ref.feasible:
        return "unproven", None, None, None
    heur = run_one(instance, heuristic, seed=seed, time_limit=time_limit, **(options or {}))
    if not heur.feasible:
        return "failed", None, ref.objective, None
    rows = [r.to_dict() for r in (ref, heur)]
    add_gaps(rows)
    return "scored", rows[1]["gap_to_best"], ref.objective, heur.objective


def default_reference(problem_id: str, instance) -> str:
    """The problem's first registered exact method that applies to ``instance``."""
    exact = registry.problem(problem_id).select(["exact"], instance)
    if not exact:
        raise InputError("--reference", f"{problem_id} has no exact method that applies to this instance")
    return exact[0].name


def search(problem_id: str, heuristic: str, *, size: int | None = None, preset: str | None = None,
           budget: float = 60.0, evaluations: int | None = None, seed: int = 0, reference: str | None = None,
           time_limit: float = 10.0, starts: int = 3, temperature: float = 0.02, floor: float = 0.1,
           generator: dict | None = None,
           on_improve: Callable[[float, int, float], None] | None = None,
           on_candidate: Callable[[Any], None] | None = None) -> Search:
    """Sampling, then simulated annealing, for the instance of ``preset`` at ``size`` where ``heuristic`` is worst.

    ``budget`` caps the wall time (each method call gets at most what is left, and ``time_limit``);
    ``evaluations`` caps the candidates run. The first ``starts`` candidates are the generator's
    instances for seeds ``seed, seed + 1, ...``, then random seeds until ``EXPLORE`` of the budget is
    spent; the acceptance temperature (in gap units) falls linearly to 0 over the budget.
    ``on_improve(elapsed, evaluations, gap)`` is called on every new best and ``on_candidate(instance)``
    on every candidate run. ``floor`` (0 disables it) sets the smallest optimum scored, as a fraction of
    the first proven optimum's magnitude.
    """
    prob = registry.problem(problem_id)
    method = prob.method(heuristic)
    limits.time_limit(budget, "--budget")
    if evaluations is not None:
        limits.count(evaluations, "--evaluations", 1, 10**9)
    limits.time_limit(time_limit)
    limits.seed(seed)
    if starts < 1:
        raise InputError("starts", f"must be >= 1, got {starts}")
    if not 0 <= floor < 1:
        raise InputError("--floor", f"must be in [0, 1), got {floor:g}")
    preset = preset or next(iter(prob.presets))
    generator = dict(generator or {})
    first = prob.generate(preset=preset, size=size, seed=seed, **generator)  # bad preset/size/options: exit 2 now
    reference = reference or default_reference(problem_id, first)
    ref = prob.method(reference)
    if ref.kind != "exact":
        raise InputError("--reference", f"must be an exact method of {problem_id} "
                                        f"({', '.join(m.name for m in prob.select(['exact']))}), got {reference!r}")
    if method.kind == "bound":
        raise InputError("--method", f"must return a solution; {shown(heuristic)} is a bound method")
    if method.name == ref.name:
        raise InputError("--method", f"must differ from the reference {shown(reference)}")
    settings = {"preset": preset, "size": size, "seed": seed, "budget_s": budget, "evaluations": evaluations,
                "time_limit_s": time_limit, "starts": starts, "temperature": temperature, "floor": floor, "generator": generator}
    out = Search(problem_id, heuristic, reference, settings)
    rng = np.random.default_rng(seed)
    scalable = [n for n in _float_options(prob) if generator.get(n, 1.0) is not None]
    mutate = STRUCTURE.get(problem_id)
    t0 = time.perf_counter()

    def left() -> float:
        return budget - (time.perf_counter() - t0)

    def progress() -> float:
        """The spent fraction of the budget: time, or evaluations when they are capped."""
        return max((time.perf_counter() - t0) / budget, out.evaluations / evaluations if evaluations else 0.0)

    def fresh(k: int):
        """A generator instance: seeds seed..seed+starts-1 first, then random seeds and scaled float options."""
        if k < starts:
            return first if k == 0 else prob.generate(preset=preset, size=size, seed=seed + k, **generator)
        opts = dict(generator)
        for n in scalable:
            if rng.random() < 0.5:
                base = opts.get(n, inspect.signature(prob.module.generate).parameters[n].default)
                opts[n] = float(base * math.exp(SIGMA * rng.standard_normal()))
        return prob.generate(preset=preset, size=size, seed=int(rng.integers(2**31)), **opts)

    moves = ["fresh", "data"] + (["structure"] if mutate is not None else [])
    tries, wins = dict.fromkeys(moves, 0), dict.fromkeys(moves, 0)

    def pick() -> str:
        """A move, with probability by its success so far (Laplace-smoothed): sampling where it pays better."""
        rate = np.array([(wins[m] + 1) / (tries[m] + 2) for m in moves])
        return moves[int(rng.choice(len(moves), p=rate / rate.sum()))]

    def propose(current) -> tuple[Any, str]:
        for _ in range(PROPOSALS):
            move = "fresh" if current is None else pick()
            if move == "fresh":
                try:
                    return fresh(out.evaluations), move
                except InputError:  # a scaled generator option left its range
                    out.invalid += 1
                    continue
            doc = copy.deepcopy(io.instance_doc(current))
            if move == "structure":
                mutate(doc, rng)
            else:
                perturb(doc, float_leaves(current.data), rng)
            try:
                return io.parse_instance(doc, problem_id), move
            except InputError:
                out.invalid += 1
        return fresh(out.evaluations), "fresh"

    current, current_gap = None, -math.inf
    with _signals_seen() as seen:
        while left() > 0 and (evaluations is None or out.evaluations < evaluations):
            exploring = out.evaluations < starts or progress() < EXPLORE
            cand, move = propose(None if exploring else current)
            if on_candidate:
                on_candidate(cand)
            out.evaluations += 1
            limit = min(time_limit, max(left(), 1e-3))
            verdict, gap, optimum, objective = score(cand, heuristic, reference, seed=seed, time_limit=limit)
            if seen:
                raise Interrupted(seen[0])
            if verdict == "unproven":
                out.unproven += 1
                continue
            if out.scale is None:
                out.scale = abs(optimum)
            if abs(optimum) < floor * out.scale:
                out.degenerate += 1
                continue
            if verdict == "failed":
                out.heuristic_failed += 1
                continue
            elapsed = time.perf_counter() - t0
            if out.best is None or gap > out.best.gap:
                out.best = Candidate(cand, gap, optimum, objective, out.evaluations, elapsed)
                out.history.append((elapsed, out.evaluations, gap))
                if on_improve:
                    on_improve(elapsed, out.evaluations, gap)
            temp = temperature * max(0.0, 1.0 - progress())
            if current is not None:
                tries[move] += 1
                wins[move] += gap > current_gap
            if gap >= current_gap or (temp > 0 and rng.random() < math.exp((gap - current_gap) / temp)):
                current, current_gap = cand, gap
    return out


def write(result: Search, path) -> None:
    """Write the worst instance found (atomically, ``io.save``)."""
    io.save(result.worst_instance(), path)
