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

``DecisionProcess`` (what ``edgeopt.envs.make("vcache")`` and the learned methods ``mappo`` and ``dlrs`` run): one
agent per edge server, routing the requests that reach it (VELO's agents). In an interval each edge's requests are
taken in arrival order; at each step every edge with a request left routes its next one — its own cache, a
neighbour's cache or the cloud, one ``Discrete(edges + 2)`` whose last action is "idle" (the only one open to an
edge with no request left). The mask opens the caches with searches left and the cloud while the request's tokens
fit. The agents' choices of a step are applied in arrival order; one whose route a request before it just filled,
or outside the mask, goes the way the baselines overflow (the cloud if its tokens fit, else the most similar cache
with room), so every request is answered once and within the capacities (the interval's searches cover its
requests). Each agent is paid its request's term of the referee's objective, ``(sat_weight * satisfaction -
lat_weight * latency) / R`` of the route taken, so an interval's rewards sum to its objective (the seed defines no
reward of its own). When every request of the interval is routed the referee judges the routes and the Simulation
carries them out (the caches learn the cloud's answers). An episode is ``intervals`` intervals of one simulated run;
a single instance is a one-interval episode (how the learned methods solve files). ``expert()`` gives the
per-interval optimum's routes (``milp``, solved once per interval) as demonstrations for DLRS.

Observation per agent (``routes``: one row per route, the edges' caches then the cloud, so one network serves any
number of edges): for its current request and every route, the satisfaction and the similarity of the route's
answer (the cloud's 1), the route's latency (s), its value ``sat_weight * satisfaction - lat_weight * latency``,
home cache or not, cloud or not, the route's capacity left (searches left over the edge's searches; tokens left
over the cloud's), open or not, the request's tokens over the mean request's (on the cloud row), the share of the
interval's requests not yet routed, and the tokens left over what the requests not yet routed would cost on
average (at most ``PRESSURE_MAX``). An agent with no request left sees zeros.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated

import numpy as np
from pydantic import Field

from edgeopt.heuristics.vcache import greedy_llm
from edgeopt.limits import Count
from edgeopt.model import InputError
from edgeopt.problems.vcache import (CLOUD, DIM, MEAN_TOKENS, Instance, Solution, World, build_data, capacities,
                                     draw_requests, evaluate, make_world)

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


def optimum_method(instance: Instance) -> str:
    """What environments put in ``info`` for a judged interval, and DLRS's expert: the per-interval MILP."""
    return "milp"


# --- the decision process ---------------------------------------------------------------------------

LAYOUT_VERSION = 1
ALGORITHMS = ("mappo", "dlrs")  # what ``edgeopt train vcache`` trains
FEATURES = 12  # per route (module docstring)
PRESSURE_MAX = 10.0


@dataclass(frozen=True)
class Layout:
    """Edges of the environment the policy was trained in; the network reads one row per route, so a policy
    runs on any number of edges (``misfit`` checks the version only)."""

    edges: int
    version: int = LAYOUT_VERSION
    network = "routes"  # the actor's family (edgeopt.learn.nets): a score per route from its row and the others'
    feature_low = -1e9  # similarities and values go below 0

    features = FEATURES

    @property
    def routes(self) -> int:
        return self.edges + 1

    @property
    def actions(self) -> int:
        return self.edges + 2  # caches 0..E-1, the cloud E, idle E + 1

    @property
    def idle(self) -> int:
        return self.actions - 1

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {"routes": (self.routes, FEATURES), "action_mask": (self.actions,)}

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict) -> "Layout":
        return cls(int(doc["edges"]), int(doc["version"]))

    @classmethod
    def of(cls, instance: Instance) -> "Layout":
        return cls(instance.data.shape[1])

    def misfit(self, instance: Instance) -> str | None:
        """None: the route rows fit any number of edges."""
        return None


class DecisionProcess:
    """The edges routing one interval's requests (or an episode of intervals); ``reset`` starts an episode on an
    instance (one interval) or on a Simulation (``intervals`` intervals of its run)."""

    sequential = False  # the edges of a step decide together (no Gymnasium view)
    reward = "objective"  # each request's term of the referee's objective

    def __init__(self, layout: Layout, agents: int, intervals: int = 10):
        self.layout, self.n_agents, self.intervals = layout, int(agents), int(intervals)
        self.instance: Instance | None = None
        self.system: Simulation | None = None

    @classmethod
    def for_instance(cls, layout: Layout, instance: Instance) -> "DecisionProcess":
        """The process a policy solves ``instance`` with: an agent per edge of the instance."""
        return cls(Layout.of(instance), instance.data.shape[1], 1)

    # --- episode ------------------------------------------------------------------------------------

    def reset(self, source: Instance | Simulation) -> None:
        self.system = source if isinstance(source, Simulation) else None
        self.t = self.decided = self.refused = 0
        self.done, self.truncated = False, False
        self.judged: list[tuple[Instance, dict]] = []  # the intervals judged by the last step: (instance, outcome)
        self.totals = dict.fromkeys(("objective", "satisfaction", "latency_s"), 0.0)
        self._solution = None
        if self.system is None:
            if source.data.shape[1] != self.n_agents:
                raise InputError("instance", f"has {source.data.shape[1]} edges, the process {self.n_agents} agents")
            self._enter(source)
        else:
            if self.system.world.edges != self.n_agents:
                raise InputError("edges", f"the simulation has {self.system.world.edges} edges, the process "
                                          f"{self.n_agents} agents")
            self._enter(self.system.instance(self.t))

    def _enter(self, instance: Instance) -> None:
        d = instance.data
        R, E = d.shape
        self.instance, self.d = instance, d
        self.queue = [np.flatnonzero(d.home == e).tolist() for e in range(E)]  # each edge's requests, in order
        self.next = [0] * E
        self.route = np.full(R, -2, dtype=np.int64)  # -2: not routed yet
        self.room = d.search.copy()
        self.tokens_left = int(d.cloud_tokens)
        self.sat = np.column_stack([d.cache_sat, np.ones(R)])
        self.lat = np.column_stack([d.cache_s, d.requests.cloud_s])
        self.sim = np.column_stack([d.sim, np.ones(R)])
        self._expert = None
        self._observe()

    def current(self, e: int) -> int | None:
        """The request edge e routes next (None: it has none left)."""
        return self.queue[e][self.next[e]] if self.next[e] < len(self.queue[e]) else None

    def _open(self, i: int) -> np.ndarray:
        """(E + 1,) the routes with room for request i."""
        return np.r_[self.room > 0, int(self.d.requests.tokens[i]) <= self.tokens_left]

    def _observe(self) -> None:
        d, E, F = self.d, self.layout.edges, FEATURES
        R = d.shape[0]
        routes = np.zeros((self.n_agents, E + 1, F), dtype=np.float32)
        mask = np.zeros((self.n_agents, E + 2), dtype=np.int8)
        alive = np.zeros(self.n_agents, dtype=bool)
        pending = int(np.sum(self.route == -2))
        pressure = min(self.tokens_left / max(pending * MEAN_TOKENS, 1e-9), PRESSURE_MAX)
        room = np.r_[self.room / np.maximum(d.search, 1), self.tokens_left / max(d.cloud_tokens, 1)]
        for e in range(self.n_agents):
            i = self.current(e)
            if i is None:
                mask[e, -1] = 1
                continue
            alive[e] = True
            ok = self._open(i)
            mask[e, :-1] = ok
            f = routes[e]
            f[:, 0], f[:, 1], f[:, 2] = self.sat[i], self.sim[i], self.lat[i]
            f[:, 3] = d.sat_weight * self.sat[i] - d.lat_weight * self.lat[i]
            f[e, 4] = 1.0
            f[E, 5] = 1.0
            f[:, 6], f[:, 7] = room, ok
            f[E, 8] = d.requests.tokens[i] / MEAN_TOKENS
            f[:, 9], f[:, 10], f[:, 11] = pending / R, pressure, 1.0
        self._obs = {"routes": routes, "action_mask": mask, "alive": alive}

    @property
    def live(self) -> list[int]:
        """Every agent until the episode ends (an edge with no request left takes the idle action)."""
        return [] if self.instance is None or self.done else list(range(self.n_agents))

    def observe(self, i: int) -> dict[str, np.ndarray]:
        return {k: v[i] for k, v in self._obs.items() if k != "alive"}

    def observe_all(self) -> dict[str, np.ndarray]:
        """Every agent's observation stacked on a leading agent axis, with ``alive`` (a request to route)."""
        return self._obs

    def expert(self) -> np.ndarray:
        """(agents,) the per-interval optimum's route of each agent's current request where that route is still
        open (-1 otherwise, and for agents with no request): DLRS's demonstrations."""
        if self._expert is None:
            from edgeopt import registry

            r = registry.problem("vcache").method(optimum_method(self.instance)).run(self.instance, time_limit=60.0)
            route = np.asarray(r.solution["route"]) if r.solution is not None else np.full(self.d.shape[0], -2)
            self._expert = np.where(route == CLOUD, self.layout.edges, route)
        out = np.full(self.n_agents, -1, dtype=np.int64)
        for e in range(self.n_agents):
            i = self.current(e)
            if i is not None and 0 <= self._expert[i] <= self.layout.edges and self._open(i)[self._expert[i]]:
                out[e] = self._expert[i]
        return out

    # --- acting -------------------------------------------------------------------------------------

    def _overflow(self, i: int) -> int:
        """The cloud if request i's tokens fit, else the most similar cache with room (ties: the faster)."""
        ok = self._open(i)
        if ok[-1]:
            return self.layout.edges
        caches = np.lexsort((self.lat[i, :-1], -self.sim[i, :-1]))
        return int(next(e for e in caches if ok[e]))

    def step(self, actions: dict[int, int]) -> dict[int, float]:
        """Route each agent's current request (in arrival order); each agent's reward, its request's term of the
        objective (0 for the idle). When the interval is routed it is judged, the next one entered, or the
        episode ends."""
        d, E = self.d, self.layout.edges
        R = d.shape[0]
        rewards = {i: 0.0 for i in self.live}
        turns = sorted((self.current(e), e) for e in range(self.n_agents) if self.current(e) is not None)
        for i, e in turns:
            a = int(actions.get(e, -1))
            if not (0 <= a <= E and self._open(i)[a]):
                a = self._overflow(i)
            if a == E:
                self.tokens_left -= int(d.requests.tokens[i])
                self.route[i] = CLOUD
            else:
                self.room[a] -= 1
                self.route[i] = a
            rewards[e] = float(d.sat_weight * self.sat[i, a] - d.lat_weight * self.lat[i, a]) / R
            self.next[e] += 1
        self.judged = []
        if np.all(self.route != -2):
            self._judge()
        if not self.done:
            self._observe()
        return rewards

    def _judge(self) -> None:
        sol = Solution(route=self.route.copy())
        ev = evaluate(self.instance, sol)
        out = {"objective": ev.objective, "feasible": ev.feasible, "satisfaction": ev.details["satisfaction"],
               "latency_s": ev.details["latency_s"], "cloud": ev.details["cloud"], "instance": self.instance.name}
        self._solution = sol
        self.judged = [(self.instance, out)]
        for k in self.totals:
            self.totals[k] += out[k]
        self.decided += 1
        if self.system is not None:
            self.refused += self.system.advance(self.t, self.instance, sol)["service"]["refused"]
            out["interval"] = self.t
            self.t += 1
        if self.system is None or self.decided >= self.intervals:
            self.done = True
            out["episode"] = self.outcome()
        else:
            self._enter(self.system.instance(self.t))

    # --- the end ------------------------------------------------------------------------------------

    def solution(self) -> Solution:
        """The last interval's routes (the whole answer on a one-interval episode)."""
        return self._solution

    def claimed(self) -> None:
        """No claim of its own: the interval's numbers are the referee's."""
        return None

    def outcome(self) -> dict:
        """The episode's totals over its intervals: the referee's objective, satisfaction and latency summed."""
        return {**self.totals, "intervals": self.decided, "refused": self.refused, "truncated": False,
                "instance": self.instance.name, "feasible": self.refused == 0}


def make_process(preset: str | None = None, size: int | None = None, intervals: Count = 10, **options):
    """(decision process, draw): ``draw(seed)`` is a fresh Simulation (``preset``, ``size`` requests per edge and
    interval, the simulation's ``options``), an episode of ``intervals`` intervals; an agent per edge."""
    from edgeopt import registry
    from edgeopt.simulation import _build

    registry.check_values(make_process, {"intervals": intervals}, registry.option_flag)
    prob = registry.problem("vcache")
    preset = preset or "velo"
    if "rate" in options and size is not None:
        raise InputError("--option rate", "is set by --size (requests per edge and interval)")
    params = {**options, **({"rate": size} if size is not None else {})}
    if preset == "small" and "edges" not in params:
        raise InputError("--option edges", "must be given with the small preset (its worlds have 2 or 3 edges by "
                                           "seed; an episode's agents are the edges)")
    probe = _build(Simulation, prob, preset, 0, params)  # bad parameters: exit 2 here
    edges = probe.world.edges
    process = DecisionProcess(Layout(edges), edges, intervals)

    def draw(seed: int) -> Simulation:
        return Simulation(preset=preset, seed=seed, **params)

    return process, draw
