"""dagsched: referee vs hand-computed schedules, HEFT, MILP vs brute force, fixed sub-tasks, CLI."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import INSTANCES, shipped
from edgeopt import InputError, evaluate, io, solve
from edgeopt.formulations.dagsched import greedy_start
from edgeopt.heuristics.dagsched import Dispatcher, run_policy
from edgeopt.importers.stg import import_stg
from edgeopt.problems.dagsched import Instance, Solution, generate, small_instance

DATA = Path(__file__).parent / "data" / "dagsched"
HEURISTICS = ["list", "cs-ucb", "random", "all-cloud", "greedy-edge"]


def make(jobs, *, gamma=0.5, t_max=None, cloud=True, fixed=None):
    """Two edges (text @1 GHz, text+image @2 GHz), a 4 GHz cloud; rates in bit/s given directly.

    ``jobs``: list of (tasks, edges) with tasks as (modality, Gcycles, in_bits, out_bits).
    """
    I = len(jobs)
    data = {
        "gamma": gamma, "t_max_s": t_max, "edge_bps": 1e6,
        "servers": [{"name": "e0", "modalities": ["text"], "f_hz": 1e9, "price": 0.01},
                    {"name": "e1", "modalities": ["text", "image"], "f_hz": 2e9, "price": 0.02}],
        "rates": {"ul_bps": [[1e6, 2e6]] * I, "dl_bps": [[4e6, 4e6]] * I},
        "jobs": [{"name": f"j{i}",
                  "tasks": [{"modality": m, "cycles": c * 1e9, "in_bits": a, "out_bits": b} for m, c, a, b in tasks],
                  "edges": [e if isinstance(e, dict) else {"src": e[0], "dst": e[1]} for e in edges]}
                 for i, (tasks, edges) in enumerate(jobs)],
    }
    if cloud:
        data["cloud"] = {"f_hz": 4e9, "price": 0.05, "ul_bps": 1e6, "dl_bps": 2e6, "edge_bps": 0.5e6}
    if fixed is not None:
        data["fixed"] = fixed
    return Instance.model_validate({"name": "hand", "data": data})


CHAIN = ([("text", 1, 1e5, 2e5), ("image", 2, 2e5, 1e5), ("text", 1, 0, 4e5)], [(0, 1), (1, 2)])


# --- the referee against hand-computed schedules ---------------------------------------------------

def test_referee_chain_by_hand():
    # A on e0: 0.1 upload + 1 s -> 1.1; B on e1: 1.1 + 0.2 transfer, 0.1 + 1 s -> 2.4;
    # C on the cloud: 2.4 + 1e5/0.5e6 = 2.6, + 0.25 s -> 2.85; return 4e5 / 2e6 = 0.2 -> T = 3.05
    inst = make([CHAIN])
    ev = evaluate(inst, Solution(order=[[(0, 0)], [(0, 1)]], cloud=[(0, 2)]))
    assert ev.feasible
    assert np.allclose(ev.details["start_finish"][0], [[0, 1.1], [1.3, 2.4], [2.6, 2.85]])
    assert ev.details["T_s"] == pytest.approx([3.05]) and ev.details["cost"] == pytest.approx([0.1])
    assert ev.objective == pytest.approx(0.5 * 3.05 + 0.5 * 0.1)
    late = make([CHAIN], t_max=3.0)
    ev = evaluate(late, Solution(order=[[(0, 0)], [(0, 1)]], cloud=[(0, 2)]))
    assert not ev.feasible and ev.violations == ["job 0: latency T = 3.05 s exceeds T_max = 3 s"]
    sized = make([(CHAIN[0], [{"src": 0, "dst": 1, "bits": 4e5}, (1, 2)])])  # per-edge size: 0.4 s instead of 0.2
    ev = evaluate(sized, Solution(order=[[(0, 0)], [(0, 1)]], cloud=[(0, 2)]))
    assert ev.details["T_s"] == pytest.approx([3.25])


def fork_join_instance(**kw):
    fork = ([("text", 1, 0, 1e5)] * 4, [(0, 1), (0, 2), (1, 3), (2, 3)])
    single = ([("text", 0.5, 0, 2e5)], [])
    return make([fork, single], **kw)


def test_referee_fork_join_with_a_shared_queue_by_hand():
    # e0 runs F [0,1], then job 1's K [1,1.5], then G1 [1.5,2.5]; G2 on e1: 1 + 0.1 -> [1.1,1.6];
    # J on the cloud waits for G1: 2.5 + 0.2 = 2.7 (G2's data arrives 1.8), runs 0.25 -> 2.95, returns 0.05
    inst = fork_join_instance()
    sol = Solution(order=[[(0, 0), (1, 0), (0, 1)], [(0, 2)]], cloud=[(0, 3)])
    ev = evaluate(inst, sol)
    assert ev.feasible
    assert np.allclose(ev.details["start_finish"][0], [[0, 1], [1.5, 2.5], [1.1, 1.6], [2.7, 2.95]])
    assert np.allclose(ev.details["start_finish"][1], [[1, 1.5]])
    assert ev.details["T_s"] == pytest.approx([3.0, 0.55])  # job 1 counts from its own start (1.0)
    assert ev.details["cost"] == pytest.approx([0.09, 0.005])
    assert ev.objective == pytest.approx(0.5 * 3.55 + 0.5 * 0.095)


def test_referee_reports_every_violation_with_job_and_subtask():
    inst = fork_join_instance(t_max=1.0)
    ev = evaluate(inst, Solution(order=[[(0, 1), (0, 0), (1, 0)], [(0, 2)]], cloud=[(0, 3)]))
    assert not ev.feasible and ev.objective is None
    assert ev.violations == ["job 0 sub-task 1: queued on edge server 0 (e0) before its predecessor sub-task 0"]
    # a cycle through two queues: e0 runs job 0's 2nd sub-task before job 1's 1st, e1 the reverse
    two = make([([("text", 1, 0, 0)] * 2, [(0, 1)]), ([("text", 1, 0, 0)] * 2, [(0, 1)])])
    ev = evaluate(two, Solution(order=[[(0, 1), (1, 0)], [(1, 1), (0, 0)]], cloud=[]))
    assert not ev.feasible and "form a cycle" in ev.violations[0] and "[0, 1]" in ev.violations[0]
    img = make([CHAIN], t_max=1.0)
    ev = evaluate(img, Solution(order=[[(0, 0), (0, 1), (0, 2)], []], cloud=[]))
    assert "job 0 sub-task 1: modality 'image' is not supported by server 0 (e0)" in ev.violations
    assert any(v.startswith("job 0: latency T =") for v in ev.violations) and ev.objective is not None


@pytest.mark.parametrize("order,cloud,message", [
    ([[(0, 0)]], [(0, 1), (0, 2)], r"solution.order must list one queue per edge server \(2\)"),
    ([[(0, 0), (0, 0)], [(0, 1)]], [(0, 2)], r"solution.order\[0\]\[1\] places sub-task \[0, 0\] a second time"),
    ([[(0, 0)], [(0, 7)]], [(0, 2)], r"solution.order\[1\]\[0\] must name an existing sub-task"),
    ([[(0, 0)], [(0, 1)]], [], r"solution must place every sub-task; \[0, 2\]"),
])
def test_referee_rejects_malformed_solution(order, cloud, message):
    with pytest.raises(InputError, match=message):
        evaluate(make([CHAIN]), Solution(order=order, cloud=cloud))
    with pytest.raises(InputError, match=r"solution.cloud must be empty: the instance has no cloud"):
        evaluate(make([CHAIN], cloud=False), Solution(order=[[(0, 0)], [(0, 1)]], cloud=[(0, 2)]))


def test_radio_rates_follow_shannon():
    inst = generate("paper", size=2, seed=3)
    d, g = inst.data, inst.data.graph
    noise = 10 ** (-43 / 10) / 1000
    ul = 6e6 * np.log2(1 + 0.3 * d.radio.gain[1, 1] / noise)
    dl = 6e6 * np.log2(1 + 0.8 * d.radio.gain[1, 1] / noise)
    t = g.index(1, 1)  # an image sub-task of the image-analysis job, on the image edge (f = 2.3 GHz)
    task = d.jobs[1].tasks[1]
    assert g.dur[t, 1] == pytest.approx(task.in_bits / ul + task.cycles / 2.3e9)
    assert g.dur[t, 3] == pytest.approx(task.in_bits / 3e6 + task.cycles / 10e9)
    assert g.ret[t, 1] == pytest.approx(task.out_bits / dl)
    assert task.cycles == pytest.approx(1900 * task.in_bits) and 0.1e6 <= task.in_bits <= 0.3e6


# --- HEFT ------------------------------------------------------------------------------------------

def heft_expected():
    return json.loads((DATA / "expected_heft_schedule.json").read_text())


def test_referee_on_the_published_heft_schedule():
    inst = io.load(INSTANCES / "dagsched" / "heft-topcuoglu.json")
    sched = heft_expected()["task_schedule"]
    order = [[(0, int(k)) for k, v in sorted(sched.items(), key=lambda kv: kv[1]["start"]) if v["proc"] == p]
             for p in range(3)]
    ev = evaluate(inst, Solution(order=order, cloud=[]))
    assert ev.feasible and ev.objective == pytest.approx(80)
    for k, v in sched.items():
        assert ev.details["start_finish"][0][int(k)] == pytest.approx([v["start"], v["end"]])


def test_list_is_heft_on_the_topcuoglu_example():
    inst = io.load(INSTANCES / "dagsched" / "heft-topcuoglu.json")
    r = solve(inst, "list")
    assert r.feasible and r.objective == pytest.approx(heft_expected()["heft_makespan"])
    sched = heft_expected()["task_schedule"]
    for p, queue in enumerate(r.solution["order"]):
        for i, k in queue:
            assert sched[str(k)]["proc"] == p
            assert r.details["start_finish"][0][k] == pytest.approx([sched[str(k)]["start"], sched[str(k)]["end"]])
    from edgeopt.heuristics.dagsched import upward_ranks

    ranks = upward_ranks(inst.data.graph)
    for k, v in heft_expected()["upward_ranks"].items():
        assert ranks[int(k)] == pytest.approx(v, abs=1e-3)


@pytest.mark.slow
def test_milp_beats_heft_on_the_topcuoglu_example():
    r = solve(io.load(INSTANCES / "dagsched" / "heft-topcuoglu.json"), "milp", time_limit=60)
    assert r.status == "optimal" and r.feasible and r.objective <= 80 and r.objective == pytest.approx(73)


# --- exact vs brute force and vs every method ------------------------------------------------------

def tiny(seed: int) -> Instance:
    """2 jobs, 5 sub-tasks, 2 edges + cloud, random speeds, prices, rates, gamma, sometimes a binding T_max."""
    rng = np.random.default_rng(seed)
    jobs = []
    for shape in (rng.choice(["chain", "pair"]), rng.choice(["fork", "chain3"])):
        J = {"chain": 2, "pair": 2, "fork": 3, "chain3": 3}[shape]
        edges = {"chain": [(0, 1)], "pair": [(0, 1)], "fork": [(0, 2), (1, 2)], "chain3": [(0, 1), (1, 2)]}[shape]
        tasks = [(str(rng.choice(["text", "image"])), float(rng.uniform(0.2, 2)), float(rng.uniform(0, 3e5)),
                  float(rng.uniform(0, 3e5))) for _ in range(J)]
        jobs.append((tasks, edges))
    inst = make(jobs, gamma=float(rng.uniform(0.2, 1.0)))
    doc = io.instance_doc(inst)
    doc["data"]["rates"]["ul_bps"] = rng.uniform(0.5e6, 3e6, size=(2, 2)).tolist()
    doc["data"]["servers"][0]["price"] = float(rng.uniform(0, 0.2))
    doc["data"]["cloud"]["price"] = float(rng.uniform(0, 0.5))
    doc["data"]["cloud"]["f_hz"] = float(rng.uniform(1e9, 4e9))
    if seed % 3 == 0:
        doc["data"]["t_max_s"] = float(rng.uniform(1.0, 2.5))
    return io.load(doc)


def brute_force(inst: Instance):
    """Best referee value over every assignment and every order of every edge queue (None if none is feasible)."""
    g = inst.data.graph
    best = None
    for servers in itertools.product(*[[s for s in range(g.S) if g.ok[t, s]] for t in range(g.T)]):
        queues = [[t for t in range(g.T) if servers[t] == n] for n in range(g.N)]
        cloud = [list(g.name(t)) for t in range(g.T) if servers[t] == g.cloud]
        for orders in itertools.product(*[itertools.permutations(q) for q in queues]):
            ev = evaluate(inst, Solution(order=[[g.name(t) for t in q] for q in orders], cloud=cloud))
            if ev.feasible and (best is None or ev.objective < best):
                best = ev.objective
    return best


@pytest.mark.parametrize("name", ["milp", "cpsat"])
@pytest.mark.parametrize("seed", range(9))
def test_exact_equals_brute_force(seed, name):
    inst = tiny(seed)
    best = brute_force(inst)
    r = solve(inst, name)
    if best is None:
        assert r.status == "infeasible" and r.solution is None
    else:
        assert r.status == "optimal" and r.feasible, r.violations
        assert r.objective == pytest.approx(best, rel=1e-6, abs=1e-9)
        assert r.bound <= best + 1e-12


@pytest.mark.parametrize("preset,seed", [("paper", 11), ("paper", 12), ("layered", 13)])
def test_milp_is_below_every_method(preset, seed):
    inst = generate(preset, size=2, seed=seed, tasks=5, mix="random", t_max=None)
    doc = io.instance_doc(inst)
    doc["data"]["cloud"]["f_hz"] = 3e9  # a slower cloud makes the edges worth using
    inst = io.load(doc)
    milp = solve(inst, "milp")
    assert milp.status == "optimal"
    for name in HEURISTICS:
        r = solve(inst, name)
        assert r.feasible, (name, r.violations)
        assert milp.objective <= r.objective + 1e-9, name
        if r.claimed is not None:
            assert r.claimed == pytest.approx(r.objective, rel=1e-9), name


def test_methods_reproduce_for_a_seed():
    inst = small_instance(5)
    for name in ("cs-ucb", "random"):
        assert solve(inst, name, seed=3).solution == solve(inst, name, seed=3).solution


# --- CP-SAT, starts, and the MILP's initial values ------------------------------------------------

def paper_case(case: str) -> Instance:
    """small_instance seeds, the paper and edge-share presets at 2-3 jobs (T_max 3 s), paper with a 2.5 GHz cloud."""
    kind, seed = case.split("-", 1)[0], case.rsplit("-", 1)[1]
    if kind == "small":
        return small_instance(int(seed))
    if kind == "slow":
        return slow_cloud(int(seed))
    return generate("paper" if kind == "paper" else "edge-share", size=2 + int(seed) % 2, seed=int(seed), mix="random")


CASES = ([f"small-{s}" for s in range(4)] + [f"paper-{s}" for s in range(10, 14)] + [f"slow-{s}" for s in range(3)]
         + [f"edge-share-{s}" for s in range(2)])


@pytest.mark.parametrize("case", CASES)
def test_cpsat_optimum_equals_the_milp_optimum(case):
    """Two independent exact models of the referee's timing must agree, and CP-SAT's bound stay valid."""
    inst = paper_case(case)
    milp, cp = solve(inst, "milp"), solve(inst, "cpsat")
    assert milp.status == cp.status == "optimal" and cp.feasible, cp.violations
    assert cp.objective == pytest.approx(milp.objective, rel=1e-6)
    assert cp.claimed == pytest.approx(cp.objective, rel=1e-6)  # tick rounding: see formulations._scale
    assert cp.bound <= milp.objective and cp.gap < 1e-5


def test_cpsat_finds_the_known_optimum_of_the_heft_example():
    """73 (HEFT's list schedule gives 80), proven in about a second."""
    inst = io.load(INSTANCES / "dagsched" / "heft-topcuoglu.json")
    r = solve(inst, "cpsat", time_limit=60)
    assert r.status == "optimal" and r.feasible and r.objective == pytest.approx(73)
    assert r.claimed == pytest.approx(73, abs=1e-6) and 73 - 1e-6 <= r.bound <= 73


@pytest.mark.parametrize("source", ["fork_join.stg", "layered12.stg"])
def test_cpsat_proves_stg_makespans(source):
    """Zero-work entry and exit sub-tasks (one tick each in CP-SAT) keep the optimum of the MILP."""
    inst = import_stg(DATA / source, processors=2)
    cp, milp = solve(inst, "cpsat"), solve(inst, "milp")
    assert cp.status == "optimal" and cp.objective == pytest.approx(milp.objective)


def test_cpsat_is_deterministic_for_a_seed():
    inst = slow_cloud(1)
    assert solve(inst, "cpsat", seed=3).solution == solve(inst, "cpsat", seed=3).solution


# limits that cut a run short whatever the machine's speed: HiGHS's root only, a second of CP-SAT's deterministic time
CUT_SHORT = {"milp": {"mip_max_nodes": 0}, "cpsat": {"max_deterministic_time": 1.0}}


@pytest.mark.parametrize("name", ["milp", "cpsat"])
def test_time_limited_exact_run_is_no_worse_than_its_start(name):
    """Cut short, an exact method reports time_limit with an incumbent no worse than the list start."""
    inst = generate("layered", size=24, seed=0, tasks=6)
    start = io.parse_solution(inst, solve(inst, "list").solution)
    greedy = evaluate(inst, greedy_start(inst)).objective
    for options, given in (({"solver_options": CUT_SHORT[name]}, None), ({"solver_options": CUT_SHORT[name]}, start),
                           ({"time_limit": 1e-3}, start)):  # 1 ms: over before the model is even built
        r = solve(inst, name, start=given, threads=1, **options)
        assert r.status in ("time_limit", "feasible") and r.feasible
        assert r.objective <= min(greedy, evaluate(inst, start).objective if given else greedy) + 1e-12
        if r.bound is not None:
            assert r.bound <= r.objective


def test_cpsat_certifies_a_small_gap_where_it_cannot_prove():
    """Each job's optimum alone bounds its share: at 144 sub-tasks the gap left is far below 1 %."""
    inst = generate("layered", size=24, seed=0, tasks=6)
    r = solve(inst, "cpsat", solver_options=CUT_SHORT["cpsat"])
    assert r.status == "time_limit" and r.feasible and r.gap < 0.005 and r.bound <= r.objective


@pytest.mark.parametrize("source", ["tiny-1", "tiny-3", "small-0", "small-2", "slow-0"])
def test_milp_initial_values_of_a_schedule_are_feasible_with_the_referees_value(source):
    """warm_start times any schedule as the referee does; the MILP must accept it at the same value."""
    import pyomo.environ as pe

    from edgeopt.formulations.dagsched import build_model, warm_start

    kind, seed = source.split("-")
    inst = tiny(int(seed)) if kind == "tiny" else paper_case(source)
    for name in ("list", "random", "greedy-edge"):
        sol = io.parse_solution(inst, solve(inst, name, seed=1).solution)
        if not evaluate(inst, sol).feasible:  # over T_max
            continue
        m = build_model(inst)
        warm_start(m, inst, sol)
        for c in m.component_data_objects(pe.Constraint, active=True):
            v = pe.value(c.body)
            assert (c.lb is None or v >= pe.value(c.lb) - 1e-9) and (c.ub is None or v <= pe.value(c.ub) + 1e-9), c.name
        assert pe.value(m.obj) == pytest.approx(evaluate(inst, sol).objective, rel=1e-12)


def test_greedy_start_plans_around_fixed_subtasks():
    fixed = {"prefix": [[[0, 0], [0, 1]], [], []], "cloud": [[1, 0]]}
    inst = with_fixed(slow_cloud(2), fixed)
    sol = greedy_start(inst)
    assert evaluate(inst, sol).feasible and sol.order[0][:2] == [(0, 0), (0, 1)] and (1, 0) in sol.cloud


# --- fixed (already placed) sub-tasks --------------------------------------------------------------

def with_fixed(inst: Instance, fixed: dict) -> Instance:
    doc = io.instance_doc(inst)
    doc["data"]["fixed"] = fixed
    return io.load(doc)


def slow_cloud(seed: int) -> Instance:
    doc = io.instance_doc(generate("paper", size=3, seed=seed, t_max=None))
    doc["data"]["cloud"]["f_hz"] = 2.5e9
    return io.load(doc)


def test_methods_plan_around_fixed_subtasks():
    base = slow_cloud(2)
    # job 0 (text analysis, a chain) already queued on the text edge, job 1's decompose on the cloud
    fixed = {"prefix": [[[0, 0], [0, 1], [0, 2], [0, 3]], [], []], "cloud": [[1, 0]]}
    inst = with_fixed(base, fixed)
    free = solve(base, "milp")
    pinned = solve(inst, "milp")
    assert pinned.status == "optimal" and pinned.objective >= free.objective - 1e-9
    cp = solve(inst, "cpsat")
    assert cp.status == "optimal" and cp.objective == pytest.approx(pinned.objective, rel=1e-6)
    for r in [pinned, cp] + [solve(inst, m) for m in HEURISTICS]:
        assert r.feasible, (r.method, r.violations)
        assert r.solution["order"][0][:4] == fixed["prefix"][0], r.method
        assert [1, 0] in r.solution["cloud"], r.method
        assert pinned.objective <= r.objective + 1e-9, r.method
    # the referee holds a solution to the fixed part
    sol = io.parse_solution(base, {"solution": free.solution})
    ev = evaluate(inst, sol)
    if free.solution["order"][0][:4] != fixed["prefix"][0]:
        assert any("fixed prefix" in v for v in ev.violations)


def test_fixed_prefix_keeps_its_order_when_the_planner_prefers_another():
    base = slow_cloud(4)
    # reverse-looking but valid: job 2's decompose before job 0's on the text edge
    fixed = {"prefix": [[[2, 0], [1, 0], [0, 0]], [], []], "cloud": []}
    inst = with_fixed(base, fixed)
    for name in ["milp", "cpsat"] + HEURISTICS:
        r = solve(inst, name)
        assert r.solution["order"][0][:3] == fixed["prefix"][0] and r.feasible, name


def test_dispatcher_exposes_a_policy_interface():
    inst = small_instance(1)

    def first_ready_fastest(disp: Dispatcher, rng):
        t = min(disp.ready)
        return t, min(disp.options(t), key=lambda s: disp.slot(t, s)[1])

    sol = run_policy(inst, first_ready_fastest)
    assert evaluate(inst, sol).feasible
    from edgeopt import problem

    assert problem("dagsched").method("greedy-edge").doc.startswith("Stage by stage")


# --- generator and shipped instances ---------------------------------------------------------------

def test_paper_preset_has_the_table_2_figures():
    inst = generate("paper")
    d = inst.data
    assert [(s.modalities, s.f_hz, s.price) for s in d.servers] == [
        (["text"], 2.0e9, 0.01), (["image"], 2.3e9, 0.01), (["audio"], 2.5e9, 0.01)]
    assert (d.cloud.f_hz, d.cloud.price, d.cloud.ul_bps, d.cloud.dl_bps, d.cloud.edge_bps) == (10e9, 0.03, 3e6, 12e6, 12e6)
    assert d.edge_bps == 22e6 and d.radio.bandwidth_hz == 6e6 and d.radio.noise_dbm == -43 and d.gamma == 0.5
    assert [j.name for j in d.jobs] == ["text-analysis", "image-analysis", "audio-analysis", "visual-qa", "audio-text"]
    assert "InF-LOS" in inst.meta["channel"]["path_loss"] and inst.meta["size"] == 5
    assert all(len(j.tasks) == 10 for j in generate("layered", size=3, tasks=10).data.jobs)


def test_shipped_instances_match_their_generator():
    files = shipped("dagsched") + shipped("dagsched", "small")
    assert len(files) >= 4
    for f in files:
        inst = io.load(f)
        if inst.meta.get("importer") == "stg":
            again = import_stg(DATA / inst.meta["source"], processors=inst.meta["processors"])
        else:
            m = inst.meta
            again = generate(m["preset"], size=m["size"], seed=m["seed"], **m.get("options", {}))
        assert io.instance_doc(again) == io.instance_doc(inst), f.name


# --- bad input ---------------------------------------------------------------------------------------

def _doc():
    return io.instance_doc(generate("paper", size=2, seed=0))


BAD = {
    "cycle": (lambda d: d["data"]["jobs"][0]["edges"].append({"src": 3, "dst": 1}),
              "data.jobs[0].edges must form an acyclic graph"),
    "self loop": (lambda d: d["data"]["jobs"][1]["edges"].append({"src": 2, "dst": 2}),
                  "data.jobs[1].edges[6] must join two different sub-tasks"),
    "unsupported modality": (lambda d: (d["data"].pop("cloud"), d["data"]["jobs"][0]["tasks"][1].update(modality="video")),
                             "data.jobs[0].tasks[1].modality 'video' is supported by no server"),
    "missing sub-task": (lambda d: d["data"]["jobs"][1]["edges"][0].update(dst=9),
                         "data.jobs[1].edges[0].dst must be a sub-task index 0..4 of job 1, got 9"),
    "two sinks": (lambda d: d["data"]["jobs"][0]["edges"].pop(), "data.jobs[0] must have exactly one sink"),
    "rates shape": (lambda d: d["data"]["radio"]["gain"].pop(), "data.radio.gain must have shape (jobs, edge servers)"),
    "both rate sources": (lambda d: d["data"].update(rates={"ul_bps": [[1, 1, 1]] * 2, "dl_bps": [[1, 1, 1]] * 2}),
                          "data.rates must be given, or else data.radio, but not both"),
    "negative cycles": (lambda d: d["data"]["jobs"][0]["tasks"][0].update(cycles=-1),
                        "data.jobs[0].tasks[0].cycles must be greater than or equal to 0"),
    "gamma above 1": (lambda d: d["data"].update(gamma=1.5), "data.gamma must be less than or equal to 1"),
    "exec_s shape": (lambda d: d["data"]["jobs"][0]["tasks"][0].update(exec_s=[1.0, 2.0]),
                     "data.jobs[0].tasks[0].exec_s must have shape (servers incl. cloud,)"),
    "fixed not closed": (lambda d: d["data"].update(fixed={"prefix": [[[0, 1]], [], []]}),
                         "has predecessor [0, 0] that is not fixed"),
    "fixed modality": (lambda d: d["data"].update(fixed={"prefix": [[], [[0, 0]], []]}),
                       "data.fixed.prefix[1][0] puts sub-task [0, 0] (modality 'text') on a server that does not"),
    "fixed twice": (lambda d: d["data"].update(fixed={"prefix": [[[0, 0]], [], []], "cloud": [[0, 0]]}),
                    "data.fixed.cloud[0] fixes sub-task [0, 0] a second time"),
    "repeated edge": (lambda d: d["data"]["jobs"][1]["edges"].append(dict(d["data"]["jobs"][1]["edges"][2])),
                      "data.jobs[1].edges[6] repeats the edge"),
    "backward cycle": (lambda d: d["data"]["jobs"][1]["edges"].append({"src": 4, "dst": 0}),
                       "data.jobs[1].edges must form an acyclic graph"),
    "unknown key": (lambda d: d["data"]["jobs"][0]["tasks"][2].update(cycle=1),
                    "data.jobs[0].tasks[2].cycle is not a known field"),
    "no tasks": (lambda d: d["data"]["jobs"][1].update(tasks=[]), "data.jobs[1].tasks is invalid: List should have at least 1 item"),
    "fractional index": (lambda d: d["data"]["jobs"][0]["edges"][0].update(src=0.5), "data.jobs[0].edges[0].src"),
    "huge bits": (lambda d: d["data"]["jobs"][0]["edges"][0].update(bits=1e300),
                  "data.jobs[0].edges[0].bits must be less than or equal to"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_instance_is_exit_2_with_field_path(cli, tmp_path, case):
    mutate, message = BAD[case]
    doc = _doc()
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    out_file = tmp_path / "out.json"
    code, _, err = cli("solve", path, "-m", "list", "-o", out_file)
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert not out_file.exists()


def test_fixed_deadlock_is_rejected(cli, tmp_path):
    two = make([([("text", 1, 0, 0)] * 2, [(0, 1)]), ([("text", 1, 0, 0)] * 2, [(0, 1)])])
    doc = io.instance_doc(two)
    doc["data"]["fixed"] = {"prefix": [[[0, 0], [0, 1], [1, 0], [1, 1]], []]}
    assert io.load(doc).data.fixed is not None  # a valid fixed plan
    doc["data"]["fixed"] = {"prefix": [[[0, 1], [1, 0]], [[1, 1], [0, 0]]]}
    path = tmp_path / "dead.json"
    path.write_text(json.dumps(doc))
    code, _, err = cli("validate", path)
    assert code == 2 and "deadlock" in err and "Traceback" not in err


def test_cli_generate_solve_validate(cli, tmp_path):
    inst = tmp_path / "p.json"
    code, _, _ = cli("generate", "dagsched", "--size", "2", "--seed", "1", "--option", "bandwidth_mhz=5", "-o", inst)
    assert code == 0 and io.load(inst).data.radio.bandwidth_hz == 5e6
    sol = tmp_path / "sol.json"
    code, out, _ = cli("solve", inst, "-m", "milp", "--json", "-o", sol)
    r = json.loads(out)
    assert code == 0 and r["status"] == "optimal" and r["details"]["T_s"]
    code, out, _ = cli("validate", inst, sol, "--json")
    assert code == 0 and json.loads(out)["objective"] == pytest.approx(r["objective"])
    code, _, err = cli("generate", "dagsched", "--preset", "heft", "--size", "3", "-o", tmp_path / "h.json")
    assert code == 2 and "--size must be 1" in err


def test_exact_methods_report_infeasible_when_no_schedule_meets_t_max():
    inst = make([CHAIN], t_max=0.5)  # the chain needs more than 1 s of compute anywhere
    assert brute_force(inst) is None
    for name in ("milp", "cpsat"):
        r = solve(inst, name)
        assert r.status == "infeasible" and r.solution is None and not r.feasible, name
    assert not solve(inst, "list").feasible


def test_cli_solves_around_fixed_subtasks(cli, tmp_path):
    doc = io.instance_doc(slow_cloud(2))
    doc["data"]["fixed"] = {"prefix": [[[0, 0], [1, 0]], [], []], "cloud": [[2, 0]]}
    path = tmp_path / "fixed.json"
    path.write_text(json.dumps(doc))
    code, out, _ = cli("solve", path, "-m", "list", "-m", "milp", "-m", "cpsat", "--json")
    assert code == 0
    for r in json.loads(out):
        assert r["feasible"] and r["solution"]["order"][0][:2] == [[0, 0], [1, 0]] and [2, 0] in r["solution"]["cloud"]


# --- the column store behind data.jobs -----------------------------------------------------------------

def _reversed(doc: dict) -> dict:
    """The same jobs with every job's sub-tasks numbered backwards, so every edge points to a lower index."""
    for job in doc["data"]["jobs"]:
        J = len(job["tasks"])
        job["tasks"] = job["tasks"][::-1]
        for e in job["edges"]:
            e["src"], e["dst"] = J - 1 - e["src"], J - 1 - e["dst"]
    return doc


def _graphs_equal(a, b) -> None:
    for f in ("N", "S", "cloud", "offset", "preds", "succs", "order", "sink", "entries"):
        assert getattr(a, f) == getattr(b, f), f
    for f in ("job", "local", "dur", "cost", "ret", "ok", "inv"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f


@pytest.mark.parametrize("make_doc", [
    lambda: io.instance_doc(generate("paper", size=6, seed=3)),
    lambda: _reversed(io.instance_doc(generate("layered", size=3, seed=1, tasks=8))),
    lambda: io.instance_doc(io.load(INSTANCES / "dagsched" / "heft-topcuoglu.json")),
    lambda: io.instance_doc(import_stg(DATA / "layered12.stg", processors=2)),
])
def test_columns_and_job_objects_give_the_same_instance(make_doc):
    """Plain dicts take the column path, Job objects and odd-but-valid values the pydantic path: same result."""
    from edgeopt.problems.dagsched import Job

    doc = make_doc()
    plain = io.parse_instance(doc)
    objects = dict(doc, data=dict(doc["data"], jobs=[Job.model_validate(j) for j in doc["data"]["jobs"]]))
    odd = json.loads(json.dumps(doc))
    odd["data"]["jobs"][0]["tasks"][0]["cycles"] = str(odd["data"]["jobs"][0]["tasks"][0]["cycles"])  # lax: "5" -> 5.0
    for other in (io.parse_instance(objects), io.parse_instance(odd)):
        _graphs_equal(plain.data.graph, other.data.graph)
        assert io.instance_doc(other) == io.instance_doc(plain)
    made = Instance.model_validate(doc).data.jobs  # Job objects made on demand equal pydantic's own
    assert [j.model_dump(mode="json") for j in made] == [Job.model_validate(j).model_dump(mode="json")
                                                          for j in doc["data"]["jobs"]]
    assert made[-1] is made[len(made) - 1] and made[:2] == [made[k] for k in range(min(2, len(made)))]


def test_backward_numbering_schedules_like_forward():
    """Sub-task numbers are names: numbering a job backwards changes no method's objective."""
    doc = io.instance_doc(generate("layered", size=2, seed=4, tasks=6))
    forward, backward = io.parse_instance(doc), io.parse_instance(_reversed(json.loads(json.dumps(doc))))
    for name in ("list", "milp"):
        assert solve(backward, name).objective == pytest.approx(solve(forward, name).objective, rel=1e-9), name


def test_cs_ucb_starts_no_episode_after_its_time_limit():
    inst = generate("paper", size=60, seed=2)
    for learn in ("joint", "location"):  # a first joint episode tries arms in random order: T_max may break
        r = solve(inst, "cs-ucb", time_limit=0.05, episodes=10_000, learn=learn)
        assert r.status == "time_limit" and r.objective is not None and 1 <= r.details["episodes"] < 10_000
        assert r.feasible or learn == "joint"
    full = solve(inst, "cs-ucb", episodes=3)
    assert full.status != "time_limit" and full.details["episodes"] == 3


# --- the seed's joint decision: scheduling order and location (issue 13) ---------------------------

def one_edge_two_jobs() -> Instance:
    """One text edge at 1 GHz, no cloud, gamma = 1: job A is a1 (1 s) -> a2 (2 s), job B is b1 (3 s) alone."""
    task = {"modality": "text", "in_bits": 0.0, "out_bits": 0.0}
    return Instance.model_validate({"name": "order", "data": {
        "gamma": 1.0, "t_max_s": None, "edge_bps": 1e6,
        "servers": [{"name": "e0", "modalities": ["text"], "f_hz": 1e9, "price": 0.01}],
        "rates": {"ul_bps": [[1e6]] * 2, "dl_bps": [[1e6]] * 2},
        "jobs": [{"name": "A", "tasks": [{**task, "cycles": 1e9}, {**task, "cycles": 2e9, "out_bits": 5e5}],
                  "edges": [{"src": 0, "dst": 1}]},
                 {"name": "B", "tasks": [{**task, "cycles": 3e9}]}]}})


def test_queue_order_changes_the_objective_by_hand():
    """The seed's ST = max(WT, EN of the sub-task before it in the queue) and T_i = max EN - min ST + R/r_dl.

    a1 b1 a2: a1 0-1, b1 1-4, a2 4-6; T_A = 6 - 0 + 0.5e6/1e6 = 6.5, T_B = 4 - 1 = 3 -> 9.5.
    a1 a2 b1: a1 0-1, a2 1-3, b1 3-6; T_A = 3 + 0.5 = 3.5, T_B = 3 -> 6.5 (b1 a1 a2 too: 3.5 + 3).
    CS-UCB learning the order (default) finds 6.5; learning the location only, it keeps the stage-by-stage
    dispatch a1 b1 a2 and gets 9.5.
    """
    inst = one_edge_two_jobs()
    interleaved = evaluate(inst, Solution(order=[[(0, 0), (1, 0), (0, 1)]]))
    assert interleaved.details["start_finish"] == [[[0, 1], [4, 6]], [[1, 4]]]
    assert interleaved.details["T_s"] == pytest.approx([6.5, 3.0]) and interleaved.objective == pytest.approx(9.5)
    for order in ([(0, 0), (0, 1), (1, 0)], [(1, 0), (0, 0), (0, 1)]):
        assert evaluate(inst, Solution(order=[order])).objective == pytest.approx(6.5)
    assert solve(inst, "cs-ucb").objective == pytest.approx(6.5)
    assert solve(inst, "cs-ucb", learn="location").objective == pytest.approx(9.5)
    assert solve(inst, "milp").objective == pytest.approx(6.5)


def test_cs_ucb_choice_is_the_first_fitting_arm_of_the_sorted_order():
    """The masked argmin/argmax pick equals the definition: sort every arm (untried first by random key, then
    index descending, stable), keep those that fit, take the first (the first of all when none fits)."""
    from edgeopt.heuristics.dagsched import _ucb_choice

    rng = np.random.default_rng(0)
    for _ in range(2000):
        m = int(rng.integers(1, 12))
        untried = rng.random(m) < rng.random()
        fit = rng.random(m) < rng.choice([0.0, 0.3, 1.0])
        key = rng.integers(0, 3, m) / 3  # ties on purpose: the first position must win
        index = rng.integers(-2, 3, m).astype(float)
        order = np.lexsort((np.where(untried, key, -index), ~untried))
        fitting = order[fit[order]]
        assert _ucb_choice(untried, fit, key, index) == (fitting[0] if len(fitting) else order[0])


def test_cs_ucb_rejects_an_unknown_learn_option():
    with pytest.raises(InputError, match="learn"):
        solve(small_instance(0), "cs-ucb", learn="order")


def test_the_paper_cloud_beats_every_edge_per_subtask():
    """The reason for the edge-share preset: with Table 2's figures every sub-task runs (upload + compute)
    faster on the cloud than on any edge that supports it, whatever the channel (even W = 1 GHz)."""
    for W in (5.0, 6.0, 1000.0):
        g = generate("paper", size=20, seed=1, mix="random", bandwidth_mhz=W).data.graph
        edge = np.where(g.ok[:, :g.N], g.dur[:, :g.N], np.inf)
        assert (g.dur[:, g.cloud] < edge.min(1)).all()


@pytest.mark.parametrize("seed", range(3))
def test_edge_share_preset_puts_subtasks_on_edges_at_the_optimum(seed):
    paper, edge = (generate(p, size=3, seed=seed) for p in ("paper", "edge-share"))
    assert (paper.data.gamma, edge.data.gamma) == (0.5, 0.03) and edge.name.startswith("edge-share-j3-w6-tmax3-s")
    on_edges = []
    for inst in (paper, edge):
        r = solve(inst, "milp")
        assert r.status == "optimal" and r.feasible
        assert solve(inst, "paths").bound <= r.objective + 1e-9
        on_edges.append(inst.data.graph.T - r.details["on_cloud"])
    assert on_edges[0] == 0 and on_edges[1] >= 5  # of 13 sub-tasks
