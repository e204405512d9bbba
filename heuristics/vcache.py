"""The seed's baselines for ``vcache`` (VELO): Greedy-θ, Greedy-LLM, Random, and the nearest server.

The seed names Greedy-0.1/0.3/0.5, Greedy-LLM and Random among VELO's baselines and no rule beyond their
names; "the nearest server" is its evaluation's offloading mode. What is filled in here, ours:

* **Greedy-θ** answers a request from its home edge's cache when the similarity of the nearest entry there
  is at least θ, else sends it to the cloud (each edge server looks only into its own vector database, as
  the paper's agents do; ``scope="any"`` looks at the most similar cache of all edges instead).
* **Greedy-LLM** sends every request to the cloud LLM.
* **Random** picks a route uniformly among the caches and the cloud.
* **nearest-server** sends each request to the route with the lowest latency, whatever the similarity
  (the home edge's cache).
* **Capacity overflow** (ours; the seed is silent): requests are taken in their order; one whose wanted
  route is full goes to the cloud if its tokens still fit there, else to the cache with room whose nearest
  entry is the most similar (ties: the faster). Random instead draws again among the routes with room, and
  nearest-server takes the next-nearest route with room. Every file gives the edges at least one search
  per request, so some cache always has room and every baseline's decision is feasible.
"""
from __future__ import annotations

import numpy as np

from edgeopt.model import InputError
from edgeopt.problems.vcache import CLOUD, Data, Instance, Solution
from edgeopt.registry import method


def first_with_room(d: Data, prefs: np.ndarray) -> np.ndarray:
    """Routes taken in request order: each request gets the first route of its row of ``prefs`` (route
    columns 0..E-1 the caches, E the cloud) that still has room; every row lists every route."""
    R, E = d.shape
    tokens = d.requests.tokens
    room = d.search.copy()
    cloud_left = int(d.cloud_tokens)
    route = np.empty(R, dtype=np.int64)
    for i in range(R):
        for r in prefs[i]:
            if r == E:
                if tokens[i] <= cloud_left:
                    cloud_left -= int(tokens[i])
                    route[i] = CLOUD
                    break
            elif room[r] > 0:
                room[r] -= 1
                route[i] = r
                break
    return route


def _by_similarity(d: Data) -> np.ndarray:
    """(R, E) each request's caches, most similar nearest entry first (ties: the faster)."""
    return np.lexsort((d.cache_s, -d.sim), axis=1)


def _overflow(d: Data, first: np.ndarray) -> np.ndarray:
    """(R, E + 2) preferences: the wanted route ``first``, then the cloud, then the caches by similarity."""
    E = d.shape[1]
    return np.column_stack([first, np.full(len(first), E), _by_similarity(d)])


def greedy(instance: Instance, theta: float, scope: str = "local") -> Solution:
    """Greedy-θ: the cache (home edge's, or with ``scope="any"`` the most similar) when its similarity is at
    least ``theta``, else the cloud; overflow as the module says."""
    d = instance.data
    R, E = d.shape
    if scope not in ("local", "any"):
        raise InputError("scope", f"must be local or any, got {scope!r}")
    cache = d.home if scope == "local" else _by_similarity(d)[:, 0]
    first = np.where(d.sim[np.arange(R), cache] >= theta, cache, E)
    return Solution(route=first_with_room(d, _overflow(d, first)))


def _greedy_method(theta: float):
    @method("vcache", f"greedy-{theta:g}", "baseline")
    def run(instance: Instance, *, seed: int = 0, time_limit: float | None = None, scope: str = "local") -> Solution:
        return greedy(instance, theta, scope)

    run.__doc__ = f"Greedy-{theta:g}: the home edge's cache when its nearest entry is at least {theta:g} similar, else the cloud."
    return run


greedy_01, greedy_03, greedy_05 = (_greedy_method(theta) for theta in (0.1, 0.3, 0.5))


@method("vcache", "greedy-llm", "baseline")
def greedy_llm(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Solution:
    """Greedy-LLM: every request to the cloud LLM while its tokens fit, the rest to the most similar cache with room."""
    d = instance.data
    return Solution(route=first_with_room(d, _overflow(d, np.full(d.shape[0], d.shape[1]))))


@method("vcache", "random", "baseline")
def random_route(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Solution:
    """Random: a uniformly random route (a cache or the cloud), drawn again among the routes with room."""
    d = instance.data
    R, E = d.shape
    rng = np.random.default_rng(seed)
    return Solution(route=first_with_room(d, rng.permuted(np.tile(np.arange(E + 1), (R, 1)), axis=1)))


@method("vcache", "nearest-server", "baseline")
def nearest_server(instance: Instance, *, seed: int = 0, time_limit: float | None = None) -> Solution:
    """The nearest server: the route of lowest latency (the home edge's cache), the next-nearest when it is full."""
    d = instance.data
    latency = np.column_stack([d.cache_s, d.requests.cloud_s])
    return Solution(route=first_with_room(d, np.argsort(latency, axis=1, kind="stable")))
