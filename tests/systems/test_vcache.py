"""The vcache system over time: every request answered once, caches within capacity and in step with their index,
cloud answers cached at home with LRU eviction, the index against an exact scan, and a seed that repeats a run."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import family_rows, untimed
from edgeopt import registry
from edgeopt.problems import vcache
from edgeopt.simulation import simulate
from edgeopt.systems import vcache as system

# a busy little system: 3 edges, 6 requests each per interval, caches of 12 that start with 4 entries
SIM_VCACHE = {"rate": 6, "cache_size": 12, "warm": 4}


def _step(sim, t: int, policy: str):
    inst = sim.instance(t)
    sol = vcache.Solution.model_validate(registry.problem("vcache").method(policy).run(inst, seed=t).solution)
    return inst, sol, sim.advance(t, inst, sol)


@pytest.mark.parametrize("policy", ["greedy-llm", "greedy-0.5", "random"])
def test_every_request_is_answered_once_and_caches_stay_within_capacity(policy):
    """Conservation and capacity: local + neighbour + cloud = arrivals every interval; each cloud answer enters
    exactly one cache; no cache holds more than cache_size, and each index holds exactly its cache's entries."""
    sim = system.Simulation(seed=1, **SIM_VCACHE)
    held = sim.caches.sizes.sum()
    evicted = 0
    for t in range(8):
        _, sol, m = _step(sim, t, policy)
        s, c = m["service"], m["cache"]
        assert s["arrivals"] == 18 == s["local"] + s["neighbour"] + s["cloud"]
        assert s["cloud"] == int(np.sum(sol.route == vcache.CLOUD)) == c["inserted"]
        held += c["inserted"] - c["evicted"]
        evicted += c["evicted"]
        assert c["entries"] == held == sim.caches.sizes.sum()
        assert np.all(sim.caches.sizes <= 12)
        assert [len(ix) for ix in sim.caches.indexes] == sim.caches.sizes.tolist()
    assert evicted > 0 or policy == "greedy-0.5"  # the caches filled up and evicted


def test_cloud_answers_enter_the_home_cache_and_evict_the_least_recently_used():
    """State, against an independent LRU model: cache answers refresh the entries they used, then each cloud
    answer (in request order, keys in that order) enters its home edge's cache, a full cache first dropping its
    least recently used entry (the older key among equals)."""
    sim = system.Simulation(seed=2, rate=6, cache_size=6, warm=6)  # full from the start: every insert evicts
    for t in range(3):
        before = [{int(k): int(u) for k, u in zip(sim.caches.key[e], sim.caches.used[e]) if k >= 0} for e in range(3)]
        first_key, evicted = sim.caches.next_key, sim.caches.evicted
        inst, sol, _ = _step(sim, t, "greedy-0.5")
        cloud = np.flatnonzero(sol.route == vcache.CLOUD)
        assert len(cloud) and sim.caches.evicted - evicted == len(cloud)
        for e in range(3):
            lru = dict(before[e])
            for i in np.flatnonzero(sol.route == e):
                lru[int(sim.hit[i, e])] = t
            for key, i in enumerate(cloud, start=first_key):
                if inst.data.home[i] == e:
                    if len(lru) == 6:
                        del lru[min(lru, key=lambda k: (lru[k], k))]
                    lru[key] = t
            held = {int(k): int(u) for k, u in zip(sim.caches.key[e], sim.caches.used[e]) if k >= 0}
            assert held == lru


def test_the_index_finds_the_exact_nearest_entry_on_clustered_embeddings():
    """The usearch HNSW index against an exact NumPy scan of the same entries: the similarities it returns are
    true similarities of entries it holds, and on these caches it finds the exact nearest entry (measured: all)."""
    sim = system.Simulation(seed=3, rate=20, cache_size=200, warm=200)
    inst = sim.instance(0)
    emb = sim.req["emb"].astype(np.float64)
    for e in range(3):
        vectors = np.stack([sim.caches.indexes[e].get(int(k)) for k in sim.caches.key[e]]).astype(np.float64)
        exact = (emb @ vectors.T).max(axis=1)
        got = inst.data.sim[:, e]
        assert np.all(got <= exact + 1e-5)
        assert np.mean(np.isclose(got, exact, atol=1e-5)) >= 0.95


def test_a_seed_repeats_a_vcache_run_and_another_seed_does_not():
    """Determinism: the index, the arrivals and the evictions follow the seed alone."""
    a, b, c = (simulate("vcache", "greedy-0.3", intervals=4, seed=s, reference="milp", **SIM_VCACHE) for s in (5, 5, 6))
    assert untimed(a) == untimed(b)
    assert untimed(a) != untimed(c)


def test_the_per_interval_optimum_is_never_worse_than_the_policy():
    """The reference (milp on the same state) is the optimum each interval: every policy's gap is >= 0, and the
    optimum as the policy has gap 0."""
    for policy in ("greedy-0.5", "milp"):
        run = simulate("vcache", policy, intervals=3, seed=4, **SIM_VCACHE)
        gaps = [r["gap"] for r in family_rows(run, "reference")]
        assert len(gaps) == 3 and all(g >= -1e-9 for g in gaps)
        assert policy != "milp" or max(gaps) <= 1e-9


def test_a_decision_over_capacity_is_refused_and_the_fallback_runs():
    sim = system.Simulation(seed=0, **SIM_VCACHE)
    inst = sim.instance(0)
    everything_local = vcache.Solution(route=np.zeros(18, dtype=int))  # edge 0 has 8 searches
    m = sim.advance(0, inst, everything_local)
    assert m["service"]["refused"] == 1 and m["service"]["arrivals"] == 18
    assert m["service"]["cloud"] == int(np.sum(sim.fallback(inst).route == vcache.CLOUD))


def test_warm_above_the_cache_size_exits_2(cli, tmp_path):
    code, _, err = cli("simulate", "vcache", "-m", "greedy-0.5", "--option", "warm=50", "--option", "cache_size=10",
                       "-o", tmp_path / "run")
    assert code == 2 and err.startswith("error: --option warm ") and not (tmp_path / "run").exists()


def test_without_the_extra_simulate_names_the_install(cli, tmp_path, monkeypatch):
    """A plain install (no usearch): one line naming the extra, exit 2, nothing written."""
    import sys

    monkeypatch.setitem(sys.modules, "usearch", None)
    monkeypatch.setitem(sys.modules, "usearch.index", None)
    code, _, err = cli("simulate", "vcache", "-m", "greedy-0.5", "--intervals", "2", "-o", tmp_path / "run")
    assert code == 2 and err.count("\n") == 1 and 'pip install "edgeopt[vcache]"' in err
    assert not (tmp_path / "run").exists()
