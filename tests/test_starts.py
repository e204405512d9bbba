"""Exact methods start from the best heuristic: the solver takes the start, never returns worse, survives bad ones."""
from __future__ import annotations

from pathlib import Path

import pyomo.environ as pe
import pytest

from edgeopt import generate, io, problem, solve
from edgeopt.importers.stg import import_stg
from edgeopt.formulations import batching, cdgs, dagsched, offload, partition, qllms
from edgeopt.solvers import NO_START, choose_start, exact_method, solve_model

# (formulation module, problem, preset, size, generator options): instances HiGHS does not solve in presolve
HIGHS_CASES = {
    "qllms": (qllms, "qllms", "qllms", 60, {}),
    "cdgs": (cdgs, "cdgs", "small", 20, {"bids": 10}),
    "dagsched": (dagsched, "dagsched", "layered", 3, {}),
    "partition": (partition, "partition", "llama2-7b", 6, {}),
}
EXACT = [("qllms", "milp"), ("cdgs", "milp"), ("dagsched", "milp"), ("dagsched", "cpsat"), ("partition", "milp"),
         ("offload", "minlp")]
STARTS = {"qllms": qllms.STARTS, "cdgs": cdgs.STARTS, "dagsched": dagsched.STARTS, "partition": partition.STARTS,
          "offload": offload.STARTS}
SMALL = {"qllms": ("qllms", 200, {}), "cdgs": ("small", 60, {"bids": 10}), "dagsched": ("layered", 8, {}),
         "partition": ("llama2-7b", 8, {"objective": "throughput"}), "offload": ("paper", 6, {})}


def _better_or_equal(sense: str, a: float, b: float) -> bool:
    return a <= b + 1e-9 * abs(b) if sense == "min" else a >= b - 1e-9 * abs(b)


@pytest.mark.parametrize("case", list(HIGHS_CASES))
def test_highs_takes_the_start_as_its_incumbent(case):
    """Stopped before it searches, HiGHS holds the start (at the model's value of it) and nothing without it."""
    module, pid, preset, size, opts = HIGHS_CASES[case]
    inst = generate(pid, preset, size=size, seed=0, **opts)
    start = choose_start(inst, "auto", module.STARTS)
    assert start.solution is not None
    reports = {}
    for warm in (False, True):
        m = module.build_model(inst)
        module.warm_start(m, inst, start.solution)
        value = pe.value(m.obj)
        reports[warm] = solve_model(m, threads=1, warm=warm, solver_options={"time_limit": 0.0})
    assert not reports[False].has_solution
    assert reports[True].has_solution and reports[True].objective == pytest.approx(value, rel=1e-9)
    # the model's value of the start is the referee's, or better where the referee charges more (qllms)
    assert _better_or_equal(problem(pid).sense, value, start.evaluation.objective)


@pytest.mark.parametrize("pid,name", EXACT)
def test_time_limited_exact_run_is_no_worse_than_its_start(pid, name):
    """Cut short, every exact method reports its start (the best heuristic) or something better, and says which."""
    preset, size, opts = SMALL[pid]
    inst = generate(pid, preset, size=size, seed=0, **opts)
    r = solve(inst, name, time_limit=1.0, threads=1)
    assert r.feasible and r.details["start"] is not None
    assert _better_or_equal(problem(pid).sense, r.objective, r.details["start_objective"])
    prob = problem(pid)
    heuristics = [solve(inst, m) for m in STARTS[pid] if isinstance(m, str) and not prob.method(m).not_applicable(inst)]
    best = (min if prob.sense == "min" else max)(h.objective for h in heuristics if h.feasible)
    assert _better_or_equal(prob.sense, r.details["start_objective"], best)


def test_forced_no_start_runs_without_one():
    inst = generate("qllms", "qllms", size=20, seed=0)
    r = solve(inst, "milp", start=NO_START)
    assert r.status == "optimal" and r.details["start"] is None and "start_returned" not in r.details


def test_start_infeasible_for_the_referee_is_ignored_with_a_note():
    """Everything on one server overflows it: not a start, and the method still proves its optimum."""
    inst = generate("qllms", "qllms", size=30, seed=0)
    M = inst.data.shape[0]
    bad = {"server": [0] * M, "quant": [0] * M}
    r = solve(inst, "milp", start=bad)
    assert r.status == "optimal" and r.details["start"] == "given"
    assert r.details["start_objective"] is None and "ignored: infeasible" in r.details["start_note"]
    assert r.objective == pytest.approx(solve(inst, "milp").objective, rel=1e-9)


def test_start_the_model_rejects_does_not_break_the_solve():
    """Values that break the model's rows are discarded by HiGHS; values the model cannot hold are a note."""
    inst = generate("cdgs", "small", size=12, seed=0, bids=10)
    optimum = solve(inst, "milp").objective

    def everything_chosen(m, instance, solution):
        for v in m.x.values():
            v.set_value(1)

    def unknown_bid(m, instance, solution):
        raise KeyError(10**6)

    for warm, note in ((everything_chosen, None), (unknown_bid, "not a MIP start")):
        run = exact_method(cdgs.build_model, cdgs.read_solution, warm_start=warm, starts=cdgs.STARTS,
                           model_size=cdgs.model_size)
        out = run(inst, threads=1)
        assert out.status == "optimal" and out.claimed == pytest.approx(optimum, rel=1e-9)
        assert (note is None and "start_note" not in out.extra) or note in out.extra["start_note"]


# Kasahara STG rand0000 of the 50-task set (public benchmark; optimum on 4 processors 66), whitespace compacted
RAND0000 = """50
0 0 0
1 9 1 0\n2 4 1 0\n3 3 1 0\n4 6 1 0\n5 4 1 1\n6 3 1 5\n7 3 1 0\n8 8 1 6\n9 9 1 0\n10 2 3 2 6 8\n11 1 1 9
12 10 1 0\n13 10 1 6\n14 3 1 0\n15 1 1 0\n16 9 1 0\n17 4 2 8 10\n18 2 1 6\n19 6 1 13\n20 8 5 10 12 14 16 19
21 1 2 7 15\n22 10 1 13\n23 2 2 1 11\n24 6 1 7\n25 3 1 14\n26 2 2 5 12\n27 8 2 12 13\n28 4 4 6 8 13 14
29 5 1 7\n30 4 4 6 11 15 26\n31 6 1 27\n32 9 1 14\n33 6 1 23\n34 1 3 4 16 22\n35 9 1 0\n36 7 2 20 24
37 1 2 10 18\n38 1 3 21 30 36\n39 7 5 7 27 28 32 37\n40 5 4 2 4 7 14\n41 2 5 6 15 26 35 37\n42 5 2 1 6
43 9 4 10 15 22 30\n44 6 1 0\n45 6 3 24 27 37\n46 5 6 2 7 15 23 25 41\n47 6 5 15 16 20 33 44
48 2 5 23 28 29 40 41\n49 9 4 30 39 46 47\n50 10 3 20 32 46\n51 0 11 3 17 31 34 38 42 43 45 48 49 50
"""


@pytest.mark.slow
def test_milp_on_a_kasahara_graph_is_no_worse_than_list(cli, tmp_path):
    """Issue 12's case: before starts, milp found no schedule in 30 s on 50-task STG graphs that list schedules."""
    (tmp_path / "rand0000.stg").write_text(RAND0000)
    code, _, err = cli("import", "stg", tmp_path / "rand0000.stg", "--processors", "4", "-o", tmp_path / "r.json")
    assert code == 0, err
    inst = io.load(tmp_path / "r.json")
    listed = solve(inst, "list")
    r = solve(inst, "milp", time_limit=30, threads=1)
    assert r.feasible and r.objective <= listed.objective and r.details["start"] in ("list", "greedy_start")
    assert r.bound is None or r.bound <= r.objective + 1e-9


STG = Path(__file__).parent / "data" / "dagsched" / "stg"


@pytest.mark.parametrize("pid", ["batching", "dagsched"])
def test_an_exact_run_whose_start_meets_the_fast_bound_is_optimal_at_once(pid):
    """Issue 26: when the start already meets the bound proved first, no model is built: status optimal, gap 0,
    and the proof is named; the referee agrees with the claim. (Batching's default preset serves every request;
    Kasahara's rand0000 on 4 processors: list 66 = paths rounded up = the published optimum.)"""
    inst = generate("batching", size=40, seed=0) if pid == "batching" else import_stg(STG / "rand0000.stg", processors=4)
    start, (name,) = solve(inst, problem(pid).formulation().STARTS[0]), problem(pid).formulation().BOUNDS
    bound = solve(inst, name).bound
    assert start.objective == pytest.approx(bound, rel=1e-9)  # the case under test
    r = solve(inst, "milp", threads=1)
    assert r.status == "optimal" and r.feasible and r.details["proof"] == "start meets bound"
    assert r.objective == pytest.approx(bound, rel=1e-9) and r.bound == bound and r.gap == 0


def test_highs_runs_with_a_new_thread_count_in_the_same_process():
    """HiGHS keeps one scheduler per process; a later run asking for other threads used to stop with 'error'."""
    inst = generate("qllms", "qllms", size=8, seed=0)
    assert [solve(inst, "milp", threads=t).status for t in (None, 1, 2, None, 1)] == ["optimal"] * 5


@pytest.mark.parametrize("module", [dagsched, qllms, batching], ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_an_exact_run_cut_short_keeps_the_bound_its_fast_bound_method_proved(module):
    """Stopped before HiGHS proves anything (no node searched), the MILP's bound is the fast bound method's,
    proved before the model was built, and the row says which method proved it. (Batching's default presets serve
    every request: start and bound meet and the run closes before any model; its `small` preset does not.)"""
    pid = module.__name__.rsplit(".", 1)[-1]
    inst = generate(pid, "small" if pid == "batching" else None, size={"dagsched": 8, "qllms": 200, "batching": 40}[pid],
                    seed=0)
    (name,) = module.BOUNDS
    r = solve(inst, "milp", threads=1, solver_options={"mip_max_nodes": 0})
    assert r.status in ("feasible", "time_limit") and r.feasible
    assert r.bound == solve(inst, name).bound and r.details["bound_from"] == name
    assert _better_or_equal(problem(pid).sense, r.bound, r.objective)  # a bound on the optimum, on its safe side
