"""batching: the referee on hand-computed batches, the MILP against brute force, OT-GAH's bound and gaps, bad input."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from conftest import INSTANCES, shipped

from edgeopt import io, registry
from edgeopt.heuristics import batching as H
from edgeopt.problems import batching as P
from edgeopt.run import run_one

SMALL = INSTANCES / "batching" / "small"


def _tiny(objective: str = "requests", mem_gb: float = 10.0) -> P.Instance:
    """One GPU, fp16 / int4, batches up to 2; three requests with round figures."""
    data = {
        "objective": objective, "kv_mb": 1.0,
        "requests": {"arrival_s": [0, 1, 0], "in_tokens": [10, 30, 10], "out_tokens": [20, 10, 10],
                     "deadline_s": [5, 10, 1], "ppl_max": [6.5, 5.5, 5.5]},
        "gpus": [{"name": "gpu", "mem_gb": mem_gb}],
        "quants": [{"name": "fp16", "weights_gb": 4, "ppl": 5}, {"name": "int4", "weights_gb": 1, "ppl": 6}],
        "prefill_ms": [[[10, 20], [5, 10]]], "decode_ms": [[[100, 120], [50, 60]]],
    }
    return P.Instance(name=f"tiny-{objective}", data=P.Data.model_validate(data))


def _sol(*batches) -> P.Solution:
    return P.Solution(batches=[P.Batch(gpu=g, quant=q, requests=r) for g, q, r in batches])


# --- the referee -------------------------------------------------------------------------------------
def test_referee_times_a_batch_from_its_longest_members():
    """Batch {0, 1} at fp16: T = (20 ms * 30 + 120 ms * 20) / 1000 = 3 s, from r1's arrival at 1 s: ends at 4 s."""
    inst = _tiny()
    ev = P.evaluate(inst, _sol((0, 0, [0, 1])))
    assert ev.feasible and ev.objective == 2
    assert ev.details["makespan_s"] == pytest.approx(4.0) and ev.details["busy_s"] == pytest.approx([3.0])
    assert ev.details["throughput_rps"] == pytest.approx(0.5) and ev.details["rejected"] == 1
    tokens = P.evaluate(_tiny("tokens"), _sol((0, 0, [0, 1])))
    assert tokens.objective == 30 and tokens.details["tokens_per_s"] == pytest.approx(7.5)


def test_referee_runs_a_gpus_batches_in_list_order():
    """r2 alone at fp16 first: (10 * 10 + 100 * 10) / 1000 = 1.1 s > its 1 s budget; the pair then starts at 1.1 s."""
    inst = _tiny()
    ev = P.evaluate(inst, _sol((0, 0, [2]), (0, 0, [0, 1])))
    assert not ev.feasible and ev.objective == 2 and ev.details["late"] == 1
    assert any("request 2 ends at 1.1 s > its deadline 1 s" in v for v in ev.violations)
    assert ev.details["makespan_s"] == pytest.approx(1.1 + 3.0)


def test_referee_flags_accuracy_and_memory():
    """int4 (ppl 6) is too coarse for r1 (5.5); 4 GB of fp16 weights + 2 x 50 tokens x 1 MB do not fit in 4 GB."""
    ev = P.evaluate(_tiny(), _sol((0, 1, [0, 1])))
    assert not ev.feasible and ev.objective == 1 and ev.details["inaccurate"] == 1
    assert any("perplexity 6 > its ceiling 5.5" in v for v in ev.violations)
    small = P.evaluate(_tiny(mem_gb=4.0), _sol((0, 0, [0, 1])))
    assert not small.feasible and small.objective == 0 and small.details["out_of_memory"] == 2
    assert any("needs 4.1 GB > 4 GB" in v for v in small.violations)


@pytest.mark.parametrize("batches,where", [
    (((0, 0, [0]), (0, 1, [0])), "solution.batches[1].requests[0] must not repeat"),
    (((0, 0, [1, 1]),), "solution.batches[0].requests[0] must not repeat"),
    (((1, 0, [0]),), "solution.batches[0].gpu must be a GPU index"),
    (((0, 2, [0]),), "solution.batches[0].quant must be a level index"),
    (((0, 0, [0, 1, 2]),), "solution.batches[0].requests must hold 1..2 requests"),
    (((0, 0, [3]),), "solution.batches[0].requests[0] must be request indices"),
])
def test_a_malformed_solution_names_the_field(batches, where):
    with pytest.raises(P.InputError) as exc:
        P.evaluate(_tiny(), _sol(*batches))
    assert str(exc.value).startswith(where)


# --- exact: brute force ------------------------------------------------------------------------------
def _ordered_partitions(items: list):
    """Every sequence of disjoint non-empty blocks covering ``items``."""
    if not items:
        yield []
        return
    for k in range(1, len(items) + 1):
        for first in itertools.combinations(items, k):
            rest = [i for i in items if i not in first]
            for tail in _ordered_partitions(rest):
                yield [list(first)] + tail


def _brute_force(inst: P.Instance) -> float:
    """Best referee value over every GPU choice, batch split, batch order and level (tiny instances only)."""
    R, G, Q, B = inst.data.shape
    best = 0.0
    for where in itertools.product(range(-1, G), repeat=R):
        per_gpu = [[i for i in range(R) if where[i] == g] for g in range(G)]
        for parts in itertools.product(*(list(_ordered_partitions(x)) for x in per_gpu)):
            blocks = [(g, b) for g, part in enumerate(parts) for b in part]
            if any(len(b) > B for _, b in blocks):
                continue
            for levels in itertools.product(range(Q), repeat=len(blocks)):
                ev = P.evaluate(inst, _sol(*((g, q, b) for (g, b), q in zip(blocks, levels))))
                if ev.feasible:
                    best = max(best, ev.objective)
    return best


@pytest.mark.parametrize("seed", [0, 2, pytest.param(1, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow)])
def test_milp_equals_brute_force_on_four_requests(seed):
    """The MILP's proven optimum is the referee's best over every schedule (independent exact check)."""
    inst = P.generate("small", size=4, seed=seed, gpus=1 + seed % 2, objective=("requests", "tokens")[seed % 2])
    r = run_one(inst, "milp", time_limit=60)
    assert r.status == "optimal" and r.feasible
    assert r.objective == pytest.approx(_brute_force(inst))
    assert r.bound == pytest.approx(r.objective, rel=1e-6)


def test_tiny_optimum_by_hand():
    """r2 cannot make 1 s at any level (alone at int4 0.55 s is fine, but ppl 6 > 5.5): the best is {0, 1}."""
    r = run_one(_tiny(), "milp")
    assert r.status == "optimal" and r.objective == 2


# --- OT-GAH ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_gap_bound_never_falls_below_the_optimum(seed):
    """OT-GAH prunes with this bound: were it below the optimum, it would cut the optimum away."""
    inst = P.small_instance(seed)
    b = run_one(inst, "knapsack")
    assert b.status == "bound" and run_one(inst, "milp", time_limit=60).objective <= b.bound + 1e-9


def test_gap_bound_by_hand():
    """Tiny: r2 cannot finish in time; r0 and r1 cost at least 1.3 / 2 = 0.65 s (int4, pair) and 1.8 / 2 = 0.9 s
    (fp16, pair) of busy time, and the GPU has until the last due date, 11 s: both fit, bound 2."""
    d = _tiny().data
    np.testing.assert_allclose(d.share_s[0, :2], [(10 * 10 + 60 * 20) / 2000, (20 * 30 + 120 * 10) / 2000])
    assert run_one(_tiny(), "knapsack").bound == pytest.approx(2.0)


def test_ot_gah_gaps_on_the_shipped_small_instances():
    """Measured: optimal on two of the three, one request short (5 of 6) on s4; the baselines far below."""
    got = {}
    for path in shipped("batching", "small"):
        inst = io.load(path)
        opt = run_one(inst, "milp", time_limit=60)
        assert opt.status == "optimal"
        got[path.stem] = {m: run_one(inst, m).objective / opt.objective for m in ("ot-gah", "static", "no-batching")}
    assert got["small-r6-g2-b4-l3-s3"]["ot-gah"] == 1.0
    assert got["small-r7-g1-b4-l3-s1-tokens"]["ot-gah"] == 1.0
    assert got["small-r7-g2-b4-l3-s4"]["ot-gah"] == pytest.approx(5 / 6)
    assert all(g["static"] < g["ot-gah"] and g["no-batching"] < g["ot-gah"] for g in got.values())


def test_ot_gah_backtracking_only_adds_to_the_greedy_dive():
    """nodes=0 is the greedy schedule (first dive, complete and feasible); backtracking can only improve it."""
    inst = io.load(INSTANCES / "batching" / "tx2-r200-g3-b8-l10-s0.json.gz")
    greedy, searched = (P.evaluate(inst, H.ot_gah(inst, nodes=n).solution) for n in (0, 100))
    assert greedy.feasible and searched.feasible
    assert 0 < greedy.objective < searched.objective  # measured: 193 and 196 of 200


@pytest.mark.parametrize("path", shipped("batching"), ids=lambda p: p.name)
def test_every_method_is_feasible_on_the_shipped_instances(path):
    """Every heuristic and baseline builds only feasible batches, at paper scale too."""
    inst = io.load(path)
    for m in registry.problem("batching").select(["heuristic", "baseline"], inst):
        r = run_one(inst, m.name, time_limit=30)
        assert r.feasible, (m.name, r.violations[:3])


def test_baselines_batch_as_named():
    inst = io.load(INSTANCES / "batching" / "tx2-r40-g3-b8-l3-s0.json")
    static = H.static(inst, size=3, quant=2).solution
    assert static.batches and all(len(b.requests) <= 3 and b.quant == 2 for b in static.batches)
    alone = H.no_batching(inst).solution
    assert alone.batches and all(len(b.requests) == 1 and b.quant == 0 for b in alone.batches)


# --- generator -----------------------------------------------------------------------------------------
def test_profile_reproduces_the_vidur_points_it_is_calibrated_on():
    """On the A100's figures the roofline gives vidur's measured per-layer times back (scaled to the model)."""
    pre, dec = P.profile(312.0, 2039.0, max_batch=1)
    layers = P._PARAMS_7B / P._LAYER_PARAMS_7B
    assert dec[0, 0] == pytest.approx(0.2920 * layers)
    assert pre[0, 0] * 4096 == pytest.approx(8.2255 * layers)


def test_generator_presets_and_options():
    inst = P.generate("tx2", size=30, seed=2, gpus=2, max_batch=6, objective="tokens")
    assert inst.data.shape == (30, 2, 4, 6) and inst.data.objective == "tokens"
    assert inst.meta["options"] == {"gpus": 2, "load": 3.0, "max_batch": 6, "objective": "tokens"}
    assert np.all(np.diff(inst.data.requests.arrival_s) >= 0)
    for bad, field in (({"load": 0}, "load"), ({"gpus": 0}, "gpus"), ({"objective": "speed"}, "objective")):
        with pytest.raises(P.InputError, match=field):
            P.generate("tx2", size=5, **bad)


# --- bad input through the CLI -----------------------------------------------------------------------
def _bad(cli, tmp_path, doc) -> str:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    code, _, err = cli("solve", path, "-m", "ot-gah")
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err
    return err


@pytest.fixture
def good_doc():
    return io.instance_doc(P.small_instance(0))


def test_profile_that_speeds_up_with_batch_size_exits_2(cli, tmp_path, good_doc):
    good_doc["data"]["decode_ms"][0][1][2] = 1e-3
    assert "data.decode_ms[0][1][2] must be nondecreasing in the batch size" in _bad(cli, tmp_path, good_doc)


def test_request_column_of_the_wrong_length_exits_2(cli, tmp_path, good_doc):
    good_doc["data"]["requests"]["out_tokens"].pop()
    assert "data.requests.out_tokens must have one entry per request" in _bad(cli, tmp_path, good_doc)


def test_profile_of_the_wrong_shape_exits_2(cli, tmp_path, good_doc):
    good_doc["data"]["prefill_ms"] = good_doc["data"]["prefill_ms"][:1] * 3
    assert "data.prefill_ms must have shape (gpus, quants, batch sizes)" in _bad(cli, tmp_path, good_doc)


def test_nonpositive_deadline_exits_2(cli, tmp_path, good_doc):
    good_doc["data"]["requests"]["deadline_s"][1] = 0
    assert "data.requests.deadline_s[1] must be > 0" in _bad(cli, tmp_path, good_doc)


def test_bad_method_option_names_it():
    with pytest.raises(P.InputError, match="quant must be a level index 0..2"):
        run_one(io.load(SMALL / "small-r6-g2-b4-l3-s3.json"), "static", quant=7)


def test_solution_file_repeating_a_request_exits_2(cli, tmp_path):
    inst = io.load(SMALL / "small-r6-g2-b4-l3-s3.json")
    doc = io.solution_doc(run_one(inst, "ot-gah"))
    doc["solution"]["batches"].append(dict(doc["solution"]["batches"][0]))
    sol = tmp_path / "sol.json"
    sol.write_text(json.dumps(doc))
    code, _, err = cli("validate", SMALL / "small-r6-g2-b4-l3-s3.json", sol)
    assert code == 2 and "must not repeat a request" in err
