"""vcache: the referee on a hand-computed interval, the baselines' rules, the MILP against brute force, the LP
bound's side, bad input, and a core path that never imports the vector index."""
from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import INSTANCES, ROOT, shipped

from edgeopt import io
from edgeopt.heuristics import vcache as H
from edgeopt.problems import vcache as P
from edgeopt.run import run_one


def _hand(lat_weight: float = 0.5) -> P.Instance:
    """Two edges (1 and 2 searches), three requests (two from edge 0's user, one from edge 1's), cloud 200 tokens.

    Satisfaction ramp 0.5 -> 0.9. Route values sat - 0.5 latency: r0 (0.45, 0.9, cloud 0), r1 (-0.05, -0.1,
    cloud -1), r2 (0.9, 0.2, cloud 0.5).
    """
    data = {"sat_weight": 1.0, "lat_weight": lat_weight, "satisfaction": {"low": 0.5, "high": 0.9},
            "cloud_tokens": 200, "edges": [{"name": "a", "search_per_interval": 1}, {"name": "b", "search_per_interval": 2}],
            "users": {"edge": [0, 1]},
            "requests": {"user": [0, 0, 1], "tokens": [100, 200, 50], "cloud_s": [2.0, 4.0, 1.0]},
            "sim": [[0.7, 0.9], [0.4, 0.5], [0.9, 0.6]], "cache_s": [[0.1, 0.2], [0.1, 0.2], [0.2, 0.1]]}
    return P.Instance(name="hand", data=P.Data.model_validate(data))


def _routes(*r) -> P.Solution:
    return P.Solution(route=np.array(r))


# --- the referee -------------------------------------------------------------------------------------
def test_referee_scores_each_route_by_hand():
    """[b, cloud, a]: r0 from b (sat 1, 0.2 s), r1 cloud (1, 4 s), r2 from a (ramp(0.9) = 1, 0.2 s):
    (0.9 - 1 + 0.9) / 3; both cache answers are neighbour hits; the cloud's 200 tokens are exactly full."""
    ev = P.evaluate(_hand(), _routes(1, -1, 0))
    assert ev.feasible and ev.objective == pytest.approx(0.8 / 3)
    d = ev.details
    assert d["satisfaction"] == pytest.approx(1.0) and d["latency_s"] == pytest.approx(4.4 / 3)
    assert (d["local"], d["neighbour"], d["cloud"], d["cloud_tokens"], d["searches"]) == (0, 2, 1, 200, [1, 1])


def test_referee_ramps_satisfaction_between_low_and_high():
    """Local answers at similarity 0.7 (ramp 0.5), 0.5 (0, r1 from b) and 0.6 (0.25): mean (0.5 + 0 + 0.25) / 3."""
    ev = P.evaluate(_hand(), _routes(0, 1, 1))
    assert ev.feasible and ev.details["satisfaction"] == pytest.approx(0.25)
    assert ev.details["local"] == 2 and ev.details["neighbour"] == 1


def test_referee_flags_every_capacity():
    """Edge a serves two answers with one search; the cloud gets 300 tokens of its 200."""
    ev = P.evaluate(_hand(), _routes(0, 0, -1))
    assert not ev.feasible and ev.violations == ["edge 0 (a) serves 2 cache answers > its 1 searches per interval"]
    ev = P.evaluate(_hand(), _routes(-1, -1, 1))
    assert not ev.feasible and ev.violations == ["the cloud gets 300 tokens > its 200 per interval"]
    assert ev.objective == pytest.approx((0 - 1 + 0.2) / 3)  # still the value of the routes, flagged


@pytest.mark.parametrize("route,where", [
    ([0, 1], "solution.route must have one entry per request (3)"),
    ([0, 2, 1], "solution.route[1] must be an edge index 0..1 or -1 (cloud)"),
])
def test_a_malformed_solution_names_the_field(route, where):
    with pytest.raises(P.InputError) as exc:
        P.evaluate(_hand(), _routes(*route))
    assert str(exc.value).startswith(where)


# --- baselines ------------------------------------------------------------------------------------------
def test_greedy_threshold_sends_below_theta_to_the_cloud_and_overflows_by_rule():
    """Greedy-0.5: r0 (0.7 at home a) -> a; r1 (0.4) -> cloud; r2 (0.6 at home b) -> b.
    Greedy-0.1: r1 passes 0.1 but a is full, so the cloud (its 200 tokens fit). With scope "any" each request
    looks at its most similar cache: r0 -> b (0.9), r1 -> b (0.5), r2 -> a (0.9)."""
    inst = _hand()
    np.testing.assert_array_equal(H.greedy_05(inst).solution.route, [0, -1, 1])
    np.testing.assert_array_equal(H.greedy_01(inst).solution.route, [0, -1, 1])
    np.testing.assert_array_equal(H.greedy(inst, 0.5, scope="any").route, [1, 1, 0])  # r1: b at 0.5 passes


def test_greedy_llm_and_nearest_server_overflow_by_rule():
    """Greedy-LLM: r0 cloud (100 left), r1's 200 tokens do not fit -> its most similar cache b, r2 cloud.
    Nearest server: r0 -> a, r1 -> a is full -> b (next nearest), r2 -> b."""
    inst = _hand()
    np.testing.assert_array_equal(H.greedy_llm(inst).solution.route, [-1, 1, -1])
    np.testing.assert_array_equal(H.nearest_server(inst).solution.route, [0, 1, 1])


def test_random_is_seeded_and_always_feasible():
    inst = io.load(INSTANCES / "vcache" / "velo-r60-e3-c100-s1-cloud0.15.json")
    a, b, c = (H.random_route(inst, seed=s).solution.route for s in (0, 0, 1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert all(P.evaluate(inst, H.random_route(inst, seed=s).solution).feasible for s in range(20))


# --- exact --------------------------------------------------------------------------------------------
def _brute_force(inst: P.Instance) -> float:
    """The referee's best over every route of every request (tiny instances only)."""
    R, E = inst.data.shape
    best = -np.inf
    for route in itertools.product(range(-1, E), repeat=R):
        ev = P.evaluate(inst, P.Solution(route=np.array(route)))
        if ev.feasible:
            best = max(best, ev.objective)
    return best


def test_milp_finds_the_hand_optimum():
    """r0 -> b (0.9), r2 -> a (0.9), r1 -> b (-0.1; a is taken, the cloud costs -1): 1.7 / 3."""
    r = run_one(_hand(), "milp")
    assert r.status == "optimal" and r.objective == pytest.approx(1.7 / 3)
    assert r.solution["route"] == [1, 1, 0]


@pytest.mark.parametrize("seed", range(6))
def test_milp_equals_brute_force_and_the_lp_bound_is_never_below_it(seed):
    """The MILP's proven optimum is the referee's best over every route (an independent exact check), and the
    LP relaxation, an upper bound, never falls below it."""
    inst = P.generate("small", seed=seed, cloud_share=(0.1, 0.3, 0.6)[seed % 3])
    r = run_one(inst, "milp", time_limit=60)
    best = _brute_force(inst)
    assert r.status == "optimal" and r.feasible and r.objective == pytest.approx(best, abs=1e-9)
    b = run_one(inst, "lp")
    assert b.status == "bound" and b.bound >= best - 1e-9


def test_lp_bound_is_strictly_above_the_optimum_where_the_knapsack_splits_a_request():
    """The cloud's token row makes the LP fractional: on small seed 1 the bound lies 3.1 % above the optimum
    (measured), so the bound is a relaxation and not the MILP again."""
    inst = io.load(INSTANCES / "vcache" / "small" / "small-s1.json")
    opt, bound = run_one(inst, "milp").objective, run_one(inst, "lp").bound
    assert bound > opt * 1.01


def test_exact_beats_every_baseline_on_the_shipped_instances():
    for path in shipped("vcache"):
        inst = io.load(path)
        opt = run_one(inst, "milp", time_limit=60)
        assert opt.status == "optimal"
        for m in ("greedy-0.1", "greedy-0.3", "greedy-0.5", "greedy-llm", "random", "nearest-server"):
            r = run_one(inst, m)
            assert r.feasible and r.objective <= opt.objective + 1e-9, (path.name, m)


# --- generator ----------------------------------------------------------------------------------------
def test_generator_presets_and_options():
    inst = P.generate("metro", size=50, seed=2, cache=40, cloud_share=0.5, lat_weight=0.2)
    d = inst.data
    assert d.shape == (50, 10) and d.lat_weight == 0.2 and d.search.sum() >= 50
    assert d.cloud_tokens == round(0.5 * 50 * P.MEAN_TOKENS)
    assert inst.meta["options"]["cache"] == 40 and inst.meta["nearest_neighbour"] == "exact (NumPy)"
    assert np.all(d.cache_s[np.arange(50), d.home] < d.cache_s.max(axis=1) + 1e-12)  # home is the nearest cache
    for bad, field in (({"search_share": 0.5}, "search_share"), ({"cache": 0}, "cache"), ({"edges": 0}, "edges")):
        with pytest.raises(P.InputError, match=field):
            P.generate("velo", size=5, **bad)


def test_generator_similarities_are_exact_nearest_neighbours():
    """A paraphrase of a cached question is about as similar as the generator says (sqrt((1-eta)(1-eta')) >= 0.75)
    and the generator's similarity is the true maximum (recomputed from the same draws)."""
    rng = np.random.default_rng(0)
    world = P.make_world("velo", rng)
    hist = P.draw_requests(world, rng, np.zeros(50, dtype=int))
    req = P.draw_requests(world, rng, np.zeros(20, dtype=int))
    sim = P.nearest_similarity(req["emb"], hist["emb"])
    np.testing.assert_allclose(sim, [max(float(q @ h) for h in hist["emb"]) for q in req["emb"]], atol=1e-5)
    same = [(t, q) in set(zip(hist["topic"], hist["question"])) for t, q in zip(req["topic"], req["question"])]
    assert any(same) and np.all(sim[same] > 0.7)


def test_core_path_never_imports_the_vector_index():
    """The problem, referee, generator, MILP and baselines run after a plain install (usearch is the extra)."""
    code = ("import sys, edgeopt; from edgeopt.problems.vcache import generate; "
            "edgeopt.solve(generate('velo', seed=0), 'all'); edgeopt.solve(generate('small', seed=1), 'bound'); "
            "print('usearch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


# --- bad input through the CLI -----------------------------------------------------------------------
@pytest.fixture
def good_doc():
    return io.instance_doc(P.small_instance(0))


@pytest.mark.parametrize("edit,message", [
    (lambda d: d["sim"][1].__setitem__(0, 1.5), "data.sim[1][0] must be <= 1"),
    (lambda d: d["sim"].pop(), "data.sim must have shape (requests, edges)"),
    (lambda d: d["cache_s"][0].__setitem__(2, -0.1), "data.cache_s[0][2] must be >= 0"),
    (lambda d: d["requests"]["tokens"].pop(), "data.requests.tokens must have one entry per request"),
    (lambda d: d["requests"]["user"].__setitem__(0, 99), "data.requests.user[0] must be user indices 0..5"),
    (lambda d: d["users"]["edge"].__setitem__(1, 7), "data.users.edge[1] must be edge indices 0..2"),
    (lambda d: d["edges"][0].__setitem__("search_per_interval", 0) or d["edges"][1].__setitem__("search_per_interval", 0),
     "data.edges must offer at least one search per request in all"),
    (lambda d: d["satisfaction"].__setitem__("low", 0.99), "data.satisfaction.high must be > satisfaction.low"),
    (lambda d: d.__setitem__("cloud_tokens", -1), "data.cloud_tokens must be greater than or equal to 0"),
])
def test_bad_instance_exits_2_naming_the_field(cli, tmp_path, good_doc, edit, message):
    edit(good_doc["data"])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(good_doc))
    code, _, err = cli("solve", path, "-m", "greedy-0.5")
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err
    assert message in err
    assert not (tmp_path / "out.json").exists()


def test_bad_method_option_names_it():
    with pytest.raises(P.InputError, match="scope must be local or any"):
        run_one(_hand(), "greedy-0.3", scope="all")


def test_solution_file_with_a_route_out_of_range_exits_2(cli, tmp_path):
    path = INSTANCES / "vcache" / "small" / "small-s0.json"
    doc = io.solution_doc(run_one(io.load(path), "greedy-0.5"))
    doc["solution"]["route"][2] = 3
    sol = tmp_path / "sol.json"
    sol.write_text(json.dumps(doc))
    code, _, err = cli("validate", path, sol)
    assert code == 2 and "solution.route[2] must be an edge index 0..2 or -1 (cloud)" in err
