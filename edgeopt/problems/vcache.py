"""``vcache`` — vector-cache-assisted LLM request routing at the edge, one interval (VELO, seed 001 ②).

Yao, Tang, Yang, Jia, "Enhancing LLM QoS Through Cloud-Edge Collaboration: A Diffusion-Based Multi-Agent
Reinforcement Learning Approach" (VELO). Edge servers keep a vector database of earlier LLM answers; a
request is answered from a cache (its own edge's or a neighbour's, fast, only as good as the nearest cached
answer) or by the cloud LLM (slow, the best answer, and a scarce resource). The seed gives the framework and
the baselines, not the model; what is filled in here, ours, is said so.

Sets: edges e = 0..E-1, each with a vector cache; users u, each attached to one edge (``users.edge``);
requests i = 0..R-1 of one interval, each from a user, so with a home edge h_i = users.edge[user_i].
Routes: r = e (answer from edge e's cache; e = h_i is a local hit, any other edge a neighbour hit, over
the edge network) or r = -1 (the cloud LLM).

Parameters (per request i, stored in the file so that neither the referee nor the exact model needs an
index; the generator computes them, ``instances/vcache/README.md`` gives the figures):

* ``sim[i][e]`` in [-1, 1]: cosine similarity of i's embedding to the nearest entry of edge e's cache
  (from a nearest-neighbour search when the instance was built; every cache holds at least one entry);
* ``cache_s[i][e]`` s: latency of answering i from edge e's cache (access, embedding, local search, and
  for e != h_i the edge-network round trip and e's search); ``cloud_s[i]`` s: latency of the cloud route
  (access, embedding, local search, WAN round trip, time to first token, decode);
* ``tokens[i]``: prompt + response tokens i costs the cloud;
* capacities per interval: ``edges[e].search_per_interval`` cache answers edge e can serve (searches and
  returns), ``cloud_tokens`` tokens the cloud LLM accepts (a tokens-per-minute rate limit).

Satisfaction (ours: the seed names user satisfaction, not its model): a cloud answer satisfies fully, 1;
a cache answer at similarity s satisfies ``ramp(s) = clip((s - low) / (high - low), 0, 1)`` with
``satisfaction.low``/``high`` (0.6 and 0.95 in the presets): below ``low`` the nearest cached answer is
to another question, above ``high`` it is as good as the LLM's.

Decision (``Solution.route``): one route per request. Constraints: every request is answered exactly
once (a route each), edge e serves at most ``search_per_interval`` cache answers, the cloud's requests
total at most ``cloud_tokens``. Every instance is feasible: the file must give the edges at least R
searches in all, and every cache can answer every request (all similarities are defined).

Objective (max): the mean over requests of ``sat_weight * satisfaction_i - lat_weight * latency_i`` —
the seed's two QoS measures, weighted; ``sat_weight`` (1) and ``lat_weight`` (0.1 per s) are options of
the generator and the simulation. Metrics (``details``): mean satisfaction and latency, p95 latency,
local / neighbour / cloud answers, cloud tokens, searches per edge, over-capacity counts.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from pydantic import Field, model_validator

from edgeopt import model
from edgeopt.model import Array, InputError, Model, check, check_shape
from edgeopt.result import Evaluation

SENSE = "max"
# Axis labels with units for the experiment figures (``edgeopt experiment plot``), by column.
LABELS = {"objective": "objective (satisfaction - weighted latency)", "cloud_share": "cloud capacity (share of the requests' tokens)",
          "details.satisfaction": "mean satisfaction", "details.latency_s": "mean latency (s)"}

PRESETS = {
    "velo": "the seed's testbed: 3 edge servers on one LAN, 5 users each, 16 topics of 40 questions, caches of "
            "100 entries, a cloud LLM 60 ms away (options requests per interval = size, cache, cloud_share, ...)",
    "metro": "10 edge servers on a 20 km metro network, 40 topics, caches of 300 entries, 200 requests",
    "small": "2-3 edges, 4-6 requests, caches of 8 entries: brute force and the MILP agree on it",
}
CLOUD = -1
MAX_INDEX = 10_000_000
_TOL = 1e-9


class Requests(Model):
    """One entry per request of the interval (column arrays)."""

    user: Array(int, ge=0, le=MAX_INDEX) = Field(description="the user who sent it (index into users.edge)")
    tokens: Array(int, ge=1, le=10_000_000) = Field(description="prompt + response tokens it costs the cloud "
                                                                "(1 <= x <= 1e7)")
    cloud_s: Array(float, ge=0, le=1e6) = Field(description="latency of the cloud route, s (0 <= x <= 1e6)")


class Users(Model):
    edge: Array(int, ge=0, le=MAX_INDEX) = Field(description="the edge each user is attached to")


class Edge(Model):
    name: str
    search_per_interval: int = Field(ge=0, le=MAX_INDEX, description="cache answers the edge serves per "
                                                                     "interval (0 <= x <= 1e7)")


class Satisfaction(Model):
    low: float = Field(ge=-1, le=1, description="similarity at and below which a cached answer satisfies 0")
    high: float = Field(ge=-1, le=1, description="similarity at and above which it satisfies 1")

    @model_validator(mode="after")
    def _ordered(self):
        check(self.low < self.high, "data.satisfaction.high", "must be > satisfaction.low")
        return self


class Data(Model):
    sat_weight: float = Field(1.0, ge=0, le=1e6, description="weight of the mean satisfaction (0 <= x <= 1e6)")
    lat_weight: float = Field(0.1, ge=0, le=1e6, description="weight of the mean latency, per s (0 <= x <= 1e6)")
    satisfaction: Satisfaction
    cloud_tokens: int = Field(ge=0, le=10**12, description="tokens the cloud LLM accepts in the interval")
    edges: list[Edge] = Field(min_length=1, max_length=10_000)
    users: Users
    requests: Requests
    sim: Array(float, 2, ge=-1, le=1) = Field(description="sim[i][e], similarity of request i to the nearest "
                                                          "entry of edge e's cache (-1 <= x <= 1)")
    cache_s: Array(float, 2, ge=0, le=1e6) = Field(description="cache_s[i][e], latency of answering request i "
                                                               "from edge e's cache, s (0 <= x <= 1e6)")

    @model_validator(mode="after")
    def _consistent(self):
        r = self.requests
        R, E, U = len(r.user), len(self.edges), len(self.users.edge)
        check(R >= 1, "data.requests.user", "must list at least one request")
        check(R <= MAX_INDEX, "data.requests.user", f"must list at most {MAX_INDEX} requests")
        check(U >= 1, "data.users.edge", "must list at least one user")
        for name in ("tokens", "cloud_s"):
            n = len(getattr(r, name))
            check(n == R, f"data.requests.{name}", f"must have one entry per request ({R}, as user), got {n}")
        check(r.user < U, "data.requests.user", f"must be user indices 0..{U - 1}")
        check(self.users.edge < E, "data.users.edge", f"must be edge indices 0..{E - 1}")
        check_shape(self.sim, (R, E), "data.sim", "(requests, edges)")
        check_shape(self.cache_s, (R, E), "data.cache_s", "(requests, edges)")
        names = [e.name for e in self.edges]
        check(len(set(names)) == len(names), "data.edges", "must have distinct names")
        check(sum(e.search_per_interval for e in self.edges) >= R, "data.edges",
              f"must offer at least one search per request in all (sum of search_per_interval >= {R}), "
              "so that every request can be answered")
        return self

    @property
    def shape(self) -> tuple[int, int]:
        """(requests, edges)."""
        return self.sim.shape

    @cached_property
    def home(self) -> np.ndarray:
        """(R,) each request's home edge."""
        return self.users.edge[self.requests.user]

    @cached_property
    def search(self) -> np.ndarray:
        """(E,) cache answers each edge serves per interval."""
        return np.array([e.search_per_interval for e in self.edges], dtype=np.int64)

    @cached_property
    def cache_sat(self) -> np.ndarray:
        """(R, E) satisfaction of a cache answer: the similarity ramp."""
        s = self.satisfaction
        return np.clip((self.sim - s.low) / (s.high - s.low), 0.0, 1.0)

    @cached_property
    def value(self) -> np.ndarray:
        """(R, E + 1) what each route adds to R times the objective; column E is the cloud."""
        cache = self.sat_weight * self.cache_sat - self.lat_weight * self.cache_s
        cloud = self.sat_weight - self.lat_weight * self.requests.cloud_s
        return np.column_stack([cache, cloud])


class Instance(model.Instance):
    problem = "vcache"
    data: Data


class Solution(Model):
    route: Array(int, ge=-1, le=MAX_INDEX) = Field(description="per request: the edge whose cache answers it, "
                                                               "or -1 for the cloud LLM")


def evaluate(instance: Instance, solution: Solution) -> Evaluation:
    """The referee: satisfaction and latency of every request on its route, capacities, the weighted mean."""
    d = instance.data
    R, E = d.shape
    route = solution.route
    check(len(route) == R, "solution.route", f"must have one entry per request ({R}), got {len(route)}")
    check(route < E, "solution.route", f"must be an edge index 0..{E - 1} or -1 (cloud)")
    idx = np.arange(R)
    cloud = route == CLOUD
    edge = np.where(cloud, 0, route)
    sat = np.where(cloud, 1.0, d.cache_sat[idx, edge])
    lat = np.where(cloud, d.requests.cloud_s, d.cache_s[idx, edge])
    served = np.bincount(route[~cloud], minlength=E)
    tokens = int(d.requests.tokens[cloud].sum())
    violations = [f"edge {e} ({d.edges[e].name}) serves {int(served[e])} cache answers > its "
                  f"{int(d.search[e])} searches per interval" for e in np.flatnonzero(served > d.search)]
    if tokens > d.cloud_tokens:
        violations.append(f"the cloud gets {tokens} tokens > its {d.cloud_tokens} per interval")
    local = int(np.sum(~cloud & (route == d.home)))
    details = {
        "satisfaction": float(sat.mean()),
        "latency_s": float(lat.mean()),
        "latency_p95_s": float(np.quantile(lat, 0.95)),
        "local": local,
        "neighbour": int(np.sum(~cloud)) - local,
        "cloud": int(cloud.sum()),
        "cloud_tokens": tokens,
        "searches": served.tolist(),
        "over_capacity": len(violations),
    }
    objective = float(np.mean(d.sat_weight * sat - d.lat_weight * lat))
    return Evaluation(objective=objective, feasible=not violations, violations=violations, details=details)


# --- the world: topic clusters of synthetic embeddings, users on edges, the network ----------------------
# Figures and their sources: instances/vcache/README.md. No embedding model can be downloaded here, so the
# embeddings are synthetic: unit vectors in `dim` dimensions, where random directions are nearly orthogonal.
DIM = 64
_ZIPF = 1.1  # popularity of a topic's questions: Zipf exponent (LLM query logs repeat popular questions)
_MEAN_PROMPT, _MEAN_RESPONSE = 69.5, 214.5  # LMSYS-Chat-1M mean prompt / response tokens
_ACCESS_MS, _EMBED_MS, _SEARCH_MS = 10.0, 15.0, 2.0  # user-edge round trip, embedding, vector search: assumed
_TTFT_S, _TPOT_S = 0.5, 0.025  # cloud LLM time to first token, time per output token: assumed
MEAN_TOKENS = _MEAN_PROMPT + _MEAN_RESPONSE


@dataclass
class World:
    """What stays fixed while requests come and go: questions by topic, users, the network."""

    questions: np.ndarray  # (T, Q, dim) unit vectors: question q of topic t
    popularity: np.ndarray  # (Q,) probability of a topic's q-th question
    user_edge: np.ndarray  # (U,) the edge each user is attached to
    user_topics: np.ndarray  # (U, T) each user's topic distribution
    edge_rtt_ms: np.ndarray  # (E, E) round trip between edges (0 on the diagonal)
    cloud_rtt_ms: np.ndarray  # (E,) round trip from each edge to the cloud
    names: list[str]

    @property
    def edges(self) -> int:
        return len(self.names)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def make_world(preset: str, rng: np.random.Generator, edges: int | None = None) -> World:
    """A preset's world: topic centres, questions that share a fraction rho_t of their topic's direction
    (so same-topic questions have similarity about rho_t, rho_t ~ U(0.1, 0.5)), users with Dirichlet(0.3)
    topic tastes, and the edge network."""
    E = {"velo": 3, "metro": 10, "small": int(rng.integers(2, 4))}[preset] if edges is None else int(edges)
    if not 1 <= E <= 1000:
        raise InputError("edges", f"must be in 1..1000, got {E}")
    T, Q, per_edge = {"velo": (16, 40, 5), "metro": (40, 40, 5), "small": (4, 10, 2)}[preset]
    rho = rng.uniform(0.1, 0.5, size=T)
    centre = _unit(rng.standard_normal((T, DIM)))
    own = _unit(rng.standard_normal((T, Q, DIM)))
    questions = _unit(np.sqrt(rho)[:, None, None] * centre[:, None, :] + np.sqrt(1 - rho)[:, None, None] * own)
    popularity = 1.0 / np.arange(1, Q + 1) ** _ZIPF
    user_edge = np.repeat(np.arange(E), per_edge)
    tastes = rng.dirichlet(np.full(T, 0.3), size=len(user_edge))
    if preset == "metro":  # edges on a 20 km square: 2 ms + 0.1 ms per km each way (fibre and switching)
        xy = rng.uniform(0, 20, size=(E, 2))
        km = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
        rtt = np.where(np.eye(E, dtype=bool), 0.0, 2.0 + 2 * 0.1 * km)
        cloud = rng.uniform(40.0, 80.0, size=E)
    else:  # one LAN (the seed's three desktops): 5 ms between edges, 60 ms to the cloud (assumed)
        rtt = np.where(np.eye(E, dtype=bool), 0.0, 5.0)
        cloud = np.full(E, 60.0)
    return World(questions, popularity / popularity.sum(), user_edge, tastes, rtt, cloud,
                 [f"edge-{e}" for e in range(E)])


def draw_requests(world: World, rng: np.random.Generator, home: np.ndarray) -> dict[str, np.ndarray]:
    """Requests arriving at the edges ``home``: a user of that edge, a topic by the user's taste, a question
    by popularity, and its embedding: a paraphrase, cos(embedding, question) = sqrt(1 - eta), eta ~ U(0.02, 0.25)."""
    R = len(home)
    T, Q, _ = world.questions.shape
    user = np.empty(R, dtype=np.int64)
    for e in np.unique(home):
        mine = np.flatnonzero(world.user_edge == e)
        user[home == e] = rng.choice(mine, size=int(np.sum(home == e)))
    topic = (rng.random(R)[:, None] > np.cumsum(world.user_topics[user], axis=1)).sum(axis=1).clip(0, T - 1)
    question = rng.choice(Q, size=R, p=world.popularity)
    eta = rng.uniform(0.02, 0.25, size=R)[:, None]
    noise = _unit(rng.standard_normal((R, DIM)))
    noise = _unit(noise - np.sum(noise * world.questions[topic, question], axis=1, keepdims=True)
                  * world.questions[topic, question])  # orthogonal to the question: an exact angle
    emb = np.sqrt(1 - eta) * world.questions[topic, question] + np.sqrt(eta) * noise
    prompt = np.clip(np.round(rng.lognormal(np.log(_MEAN_PROMPT) - 0.5, 1.0, size=R)), 4, 1024)
    response = np.clip(np.round(rng.lognormal(np.log(_MEAN_RESPONSE) - 0.5, 1.0, size=R)), 4, 512)
    return {"user": user, "home": np.asarray(home), "topic": topic, "question": question,
            "emb": emb.astype(np.float32), "prompt": prompt.astype(np.int64), "response": response.astype(np.int64)}


def latencies(world: World, home: np.ndarray, response: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cache_s (R, E), cloud_s (R,)): every route starts with the user-edge round trip, the embedding and the
    home edge's search (the decision needs the similarities); a neighbour adds its round trip and its search;
    the cloud adds the WAN round trip, the time to first token and the decode of the response."""
    base = (_ACCESS_MS + _EMBED_MS + _SEARCH_MS) / 1000.0
    hop = world.edge_rtt_ms[home] + np.where(np.arange(world.edges)[None, :] == home[:, None], 0.0, _SEARCH_MS)
    cloud = base + world.cloud_rtt_ms[home] / 1000.0 + _TTFT_S + _TPOT_S * response
    return base + hop / 1000.0, cloud


def nearest_similarity(queries: np.ndarray, entries: np.ndarray) -> np.ndarray:
    """Exact nearest-neighbour similarity of each query among ``entries`` (unit vectors): the truth an ANN
    index approximates; the generator uses it so that a plain install writes the same files."""
    return (queries.astype(np.float64) @ entries.astype(np.float64).T).max(axis=1)


def build_data(world: World, req: dict, sim: np.ndarray, *, search: np.ndarray, cloud_tokens: int,
               sat_weight: float, lat_weight: float, low: float = 0.6, high: float = 0.95) -> Data:
    """The interval's Data from the world, the requests and their similarities to each cache."""
    cache_s, cloud_s = latencies(world, req["home"], req["response"])
    users = Users(edge=world.user_edge)
    return Data(sat_weight=sat_weight, lat_weight=lat_weight, satisfaction=Satisfaction(low=low, high=high),
                cloud_tokens=int(cloud_tokens),
                edges=[Edge(name=n, search_per_interval=int(s)) for n, s in zip(world.names, search)], users=users,
                requests=Requests(user=req["user"], tokens=req["prompt"] + req["response"], cloud_s=np.round(cloud_s, 6)),
                sim=np.round(np.clip(sim, -1.0, 1.0), 6), cache_s=np.round(cache_s, 6))


def capacities(R: int, E: int, search_share: float, cloud_share: float) -> tuple[np.ndarray, int]:
    """Per-edge searches (search_share x the fair share R / E, rounded up) and the cloud's tokens
    (cloud_share x the tokens R mean requests cost)."""
    return np.full(E, int(np.ceil(search_share * R / E - _TOL))), int(round(cloud_share * R * MEAN_TOKENS))


def generate(preset: str = "velo", size: int | None = None, seed: int = 0, edges: int | None = None,
             cache: int | None = None, cloud_share: float = 0.3, search_share: float = 1.25,
             sat_weight: float = 1.0, lat_weight: float = 0.1) -> Instance:
    """One interval: ``size`` requests (velo 30, metro 200, small 4-6) over ``edges`` edges whose caches hold
    ``cache`` earlier requests of their users each (velo 100, metro 300, small 8).

    Options: ``cloud_share`` = the cloud's tokens over what ``size`` mean requests cost (0.3: the cloud can take
    about 30 % of the requests); ``search_share`` >= 1 = each edge's searches over its fair share of the
    requests; ``sat_weight``, ``lat_weight`` (per s) weight the objective.
    """
    rng = np.random.default_rng(seed)
    world = make_world(preset, rng, edges)
    E = world.edges
    R = ({"velo": 30, "metro": 200}.get(preset) or int(rng.integers(4, 7))) if size is None else int(size)
    C = {"velo": 100, "metro": 300, "small": 8}[preset] if cache is None else int(cache)
    for ok, name, rule in ((1 <= R <= 100_000, "--size", "must be in 1..100000 (requests)"),
                           (1 <= C <= 100_000, "cache", "must be in 1..100000 entries"),
                           (0 <= cloud_share <= 100, "cloud_share", "must be in [0, 100]"),
                           (1 <= search_share <= 100, "search_share", "must be in [1, 100] (below 1 not every "
                                                                      "request could be answered)"),
                           (0 <= sat_weight <= 1e6, "sat_weight", "must be in [0, 1e6]"),
                           (0 <= lat_weight <= 1e6, "lat_weight", "must be in [0, 1e6]")):
        if not ok:
            raise InputError(name, rule)
    history = draw_requests(world, rng, np.repeat(np.arange(E), C))  # what each cache holds: earlier requests
    req = draw_requests(world, rng, rng.integers(0, E, size=R))
    sim = np.column_stack([nearest_similarity(req["emb"], history["emb"][history["home"] == e]) for e in range(E)])
    search, cloud_tokens = capacities(R, E, search_share, cloud_share)
    data = build_data(world, req, sim, search=search, cloud_tokens=cloud_tokens, sat_weight=sat_weight,
                      lat_weight=lat_weight)
    options = {"edges": E, "cache": C, "cloud_share": cloud_share, "search_share": search_share,
               "sat_weight": sat_weight, "lat_weight": lat_weight}
    meta = {"generator": "edgeopt.problems.vcache.generate", "preset": preset, "size": R, "seed": seed,
            "options": options, "nearest_neighbour": "exact (NumPy)"}
    name = f"{preset}-r{R}-e{E}-c{C}-s{seed}" + ("" if cloud_share == 0.3 else f"-cloud{cloud_share:g}")
    return Instance(name=name, meta=meta, data=data)


def instance_bytes(preset: str, size: int | None, edges: int | None = None, cache: int | None = None, **_) -> float:
    """About the bytes generating and writing an instance takes: 3 KiB per cached entry, 4 KiB per request and
    200 bytes per (request, route), and the (requests, entries) similarity of one edge at a time; measured peak RSS
    (1.5 KiB per entry at 600,000 entries, 2.4 KiB per request at 20,000) with a margin."""
    R = {"velo": 30, "metro": 200}.get(preset, 6) if size is None else size
    E = {"velo": 3, "metro": 10}.get(preset, 3) if edges is None else edges
    C = {"velo": 100, "metro": 300, "small": 8}.get(preset, 8) if cache is None else cache
    return 3072.0 * E * C + R * (4096.0 + 200.0 * (E + 1)) + 16.0 * R * C


def small_instance(seed: int) -> Instance:
    """4-6 requests on 2-3 edges, caches of 8 entries, the cloud for about a third of them."""
    return generate("small", seed=seed)
