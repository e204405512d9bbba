"""The ``vcache`` system over time (``edgeopt simulate vcache``): edge caches that fill with cloud answers.

The per-interval state and the routing step are plain NumPy functions of plain arrays, so that a decision
process over them (observations per edge agent, one route per request) sits on top without a second model:

* ``EdgeCaches`` — each edge's vector cache: a usearch HNSW index (inner product on unit vectors) and, per
  slot, the entry's key, the question it answers and the interval it was last used in;
* ``EdgeCaches.nearest(emb)`` — (similarity, key) of every request's nearest entry in every cache;
* ``EdgeCaches.serve(t, ...)`` — carry out one interval's routes: a cache answer refreshes the entry it used, a
  cloud answer enters the home edge's cache, evicting the least recently used entry of a full cache.

usearch is the ``vcache`` extra (``pip install "edgeopt[vcache]"``); only this module imports it, and only
when a Simulation is built. Why usearch and not faiss-cpu or hnswlib: README, vcache.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from edgeopt.heuristics.vcache import greedy_llm
from edgeopt.model import InputError
from edgeopt.problems.vcache import (CLOUD, DIM, Instance, Solution, World, build_data, capacities, draw_requests,
                                     evaluate, make_world)

CONNECTIVITY, EXPANSION_ADD, EXPANSION_SEARCH = 16, 64, 64  # HNSW graph degree and beam widths (usearch's names)


def _index():
    try:
        from usearch.index import Index
    except ModuleNotFoundError:
        raise InputError("problem", "vcache's simulation needs the usearch vector index: "
                                    "pip install \"edgeopt[vcache]\"") from None
    return Index(ndim=DIM, metric="ip", dtype="f32", connectivity=CONNECTIVITY, expansion_add=EXPANSION_ADD,
                 expansion_search=EXPANSION_SEARCH)


class EdgeCaches:
    """One vector cache per edge, ``capacity`` entries each, least-recently-used eviction.

    Per edge e and slot k (NumPy arrays, (E, capacity)): ``key`` (-1 = empty), ``question`` (the global id of
    the question the cached answer is for), ``used`` (the last interval the entry was inserted or answered
    in; ties are broken by ``key``, the older entry first). Keys are unique over the run, so a key names one
    entry for ever and the index never sees a key twice.
    """

    def __init__(self, edges: int, capacity: int):
        self.capacity = capacity
        self.indexes = [_index() for _ in range(edges)]
        self.key = np.full((edges, capacity), -1, dtype=np.int64)
        self.question = np.full((edges, capacity), -1, dtype=np.int64)
        self.used = np.full((edges, capacity), -1, dtype=np.int64)
        self.next_key = 0
        self.inserted = self.evicted = 0  # over the run

    @property
    def sizes(self) -> np.ndarray:
        """(E,) entries held by each cache."""
        return (self.key >= 0).sum(axis=1)

    def nearest(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sim, key), each (R, E): similarity of every embedding to its nearest entry in each cache (the
        index's answer: approximate, as in a deployed system), and that entry's key."""
        R, E = len(emb), len(self.indexes)
        sim, key = np.full((R, E), -1.0), np.full((R, E), -1, dtype=np.int64)
        for e, index in enumerate(self.indexes):
            if len(index):
                found = index.search(emb, 1, threads=1)
                key[:, e] = found.keys[:, 0]
                sim[:, e] = np.clip(1.0 - found.distances[:, 0], -1.0, 1.0)
        return sim, key

    def _slot(self, e: int, key: int) -> int:
        return int(np.flatnonzero(self.key[e] == key)[0])

    def insert(self, t: int, e: int, emb: np.ndarray, question: int) -> None:
        """Cache one answer at edge e; a full cache first evicts its least recently used entry."""
        free = np.flatnonzero(self.key[e] < 0)
        if len(free):
            k = int(free[0])
        else:
            k = int(np.lexsort((self.key[e], self.used[e]))[0])
            self.indexes[e].remove(int(self.key[e, k]))
            self.evicted += 1
        self.indexes[e].add(self.next_key, emb.astype(np.float32), threads=1)
        self.key[e, k], self.question[e, k], self.used[e, k] = self.next_key, question, t
        self.next_key += 1
        self.inserted += 1

    def serve(self, t: int, route: np.ndarray, home: np.ndarray, hit: np.ndarray, emb: np.ndarray,
              question: np.ndarray) -> None:
        """Carry out one interval's routes: cache answers refresh their entry, then cloud answers enter their
        home edge's cache, in request order."""
        for i in np.flatnonzero(route != CLOUD):
            e = int(route[i])
            self.used[e, self._slot(e, int(hit[i, e]))] = t
        for i in np.flatnonzero(route == CLOUD):
            self.insert(t, int(home[i]), emb[i], int(question[i]))


class Simulation:
    """VELO over time: each interval ``rate`` requests reach every edge; caches fill with cloud answers.

    The world (topics, questions, users, network) is the preset generator's for the seed. At the start each
    cache holds ``warm`` earlier requests of its users (the paper's vector databases start from its training
    dialogues); it holds at most ``cache_size``. Each interval's requests are drawn as the generator draws them
    (a user of the edge, a topic by the user's taste, a question by popularity, a paraphrase), and the index
    gives each one's nearest entry in every cache: these similarities are the interval's instance. A cache
    answer refreshes the entry it used; a cloud answer enters the home edge's cache, a full cache evicting its
    least recently used entry — so what a policy sends to the cloud today decides what the caches can answer
    tomorrow. Capacities per interval are the generator's (``search_share``, ``cloud_share`` of the interval's
    requests). A decision the referee finds infeasible (over a capacity) is refused and the fallback runs:
    every request to the cloud while its tokens fit, the rest to the most similar cache with room.
    """

    PLOTS = (("decision", "objective", "objective (referee)"), ("service", "satisfaction", "mean satisfaction"),
             ("service", "latency_s", "mean latency, s"), ("service", "cloud", "cloud answers"),
             ("cache", "coverage", "requests whose own question is cached"), ("reference", "gap", "gap to the optimum"))
    CDF = ("latency", "values", "request latency, s")
    SUMMARY = {"objective": ("decision", "objective", "mean"), "satisfaction": ("service", "satisfaction", "mean"),
               "latency_s": ("service", "latency_s", "mean"), "cloud": ("service", "cloud", "sum"),
               "coverage_last": ("cache", "coverage", "last"), "optimum": ("reference", "ref_objective", "mean"),
               "mean_gap": ("reference", "gap", "mean"), "refused": ("service", "refused", "sum")}
    REFERENCE = "milp"  # the per-interval optimum on the same state

    def __init__(self, preset: str = "velo", seed: int = 0, rate: Annotated[int, Field(ge=1, le=10_000)] = 10,
                 cache_size: Annotated[int, Field(ge=1, le=100_000)] = 100,
                 warm: Annotated[int, Field(ge=1, le=100_000)] = 20, edges: Annotated[int, Field(ge=1, le=1000)] | None = None,
                 cloud_share: Annotated[float, Field(ge=0, le=100)] = 0.3,
                 search_share: Annotated[float, Field(ge=1, le=100)] = 1.25,
                 sat_weight: Annotated[float, Field(ge=0, le=1e6)] = 1.0,
                 lat_weight: Annotated[float, Field(ge=0, le=1e6)] = 0.1):
        if warm > cache_size:
            raise InputError("--option warm", f"must be at most cache_size ({cache_size}), got {warm}")
        self.preset, self.seed, self.rate = preset, seed, rate
        self.world: World = make_world(preset, np.random.default_rng(seed), edges)
        E = self.world.edges
        self.search, self.cloud_tokens = capacities(rate * E, E, search_share, cloud_share)
        self.weights = {"sat_weight": sat_weight, "lat_weight": lat_weight}
        self.caches = EdgeCaches(E, cache_size)
        history = draw_requests(self.world, np.random.default_rng([seed, 1 << 20]), np.repeat(np.arange(E), warm))
        for e, emb, q in zip(history["home"], history["emb"], self._question(history)):
            self.caches.insert(-1, int(e), emb, int(q))
        self.req: dict = {}
        self.hit = np.zeros((0, E), dtype=np.int64)

    @staticmethod
    def largest(preset: str, rate: int, cache_size: int, edges: int | None, **_) -> dict:
        """Generator arguments of an interval's instance (for ``instance_bytes``): ``rate`` requests per edge (at
        most 10 edges without ``edges``: the presets'), the caches full."""
        return {"preset": preset, "size": rate * (edges or 10), "edges": edges, "cache": cache_size}

    def _question(self, req: dict) -> np.ndarray:
        """Global question ids (topic x questions per topic + question)."""
        return req["topic"] * self.world.questions.shape[1] + req["question"]

    def instance(self, t: int) -> Instance:
        E = self.world.edges
        rng = np.random.default_rng([self.seed, t])  # the edges' arrivals interleave in the interval
        self.req = draw_requests(self.world, rng, rng.permutation(np.repeat(np.arange(E), self.rate)))
        sim, self.hit = self.caches.nearest(self.req["emb"])
        data = build_data(self.world, self.req, sim, search=self.search, cloud_tokens=self.cloud_tokens, **self.weights)
        meta = {"simulation": "edgeopt.systems.vcache.Simulation", "preset": self.preset, "seed": self.seed,
                "interval": t, "cache_entries": self.caches.sizes.tolist()}
        return Instance(name=f"{self.preset}-sim-s{self.seed}-i{t}", meta=meta, data=data)

    def fallback(self, instance: Instance) -> Solution:
        """Every request to the cloud while its tokens fit, the rest to the most similar cache with room."""
        return greedy_llm(instance).solution

    def advance(self, t: int, instance: Instance, solution: Solution) -> dict[str, dict]:
        """Serve the interval's requests on their routes and update the caches."""
        ev = evaluate(instance, solution)
        refused = not ev.feasible
        if refused:
            solution = self.fallback(instance)
            ev = evaluate(instance, solution)
        route, req, E = solution.route, self.req, self.world.edges
        question = self._question(req)
        own = np.zeros_like(self.hit, dtype=bool)  # the nearest entry of cache e answers the request's own question
        for e in range(E):
            held = dict(zip(self.caches.key[e].tolist(), self.caches.question[e].tolist()))
            own[:, e] = [held.get(int(k), -1) == q for k, q in zip(self.hit[:, e], question)]
        answered = route != CLOUD
        same = own[np.flatnonzero(answered), route[answered]]
        evicted, inserted = self.caches.evicted, self.caches.inserted
        self.caches.serve(t, route, req["home"], self.hit, req["emb"], question)
        lat = np.where(answered, instance.data.cache_s[np.arange(len(route)), np.where(answered, route, 0)],
                       instance.data.requests.cloud_s)
        d = ev.details
        return {
            "service": {"arrivals": len(route), "local": d["local"], "neighbour": d["neighbour"], "cloud": d["cloud"],
                        "satisfaction": d["satisfaction"], "latency_s": d["latency_s"],
                        "cloud_tokens": d["cloud_tokens"], "refused": int(refused),
                        "same_question": float(same.mean()) if len(same) else None},
            "cache": {"entries": int(self.caches.sizes.sum()), "inserted": self.caches.inserted - inserted,
                      "evicted": self.caches.evicted - evicted,
                      "coverage": float(own.any(axis=1).mean()),
                      "coverage_local": float(own[np.arange(len(route)), req["home"]].mean())},
            "latency": {"values": lat.tolist()},
        }
