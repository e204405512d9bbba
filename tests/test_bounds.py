"""Bound methods: proofs, never solutions — below every optimum (min) or above it (max), never across an
incumbent, and the reference of ``compare``'s gaps when no exact method proves the optimum."""
from __future__ import annotations

import csv
import json

import pyomo.environ as pe
import pytest

from conftest import INSTANCES, shipped
from edgeopt import io, registry
from edgeopt.compare import add_gaps, compare
from edgeopt.experiment import Plot, series
from edgeopt.report import gap_table
from edgeopt.formulations import qllms as qllms_formulation
from edgeopt.run import run_one
from edgeopt.solvers import solve_model

SEEDS = range(6)
GAP = INSTANCES / "qllms" / "gap"


def _with_bounds() -> list[str]:
    return [pid for pid, p in registry.problems().items() if p.select(["bound"])]


def _below(prob, bound: float, value: float) -> bool:
    """``bound`` does not cross ``value`` (relative slack 1e-6, the referee's own tolerance scale)."""
    slack = 1e-6 * max(1.0, abs(value))
    return bound <= value + slack if prob.sense == "min" else bound >= value - slack


def _small_cases():
    for pid in _with_bounds():
        for path in shipped(pid, "small"):
            yield pytest.param(pid, str(path), id=f"{pid}-{path.name}")
        for seed in SEEDS:
            yield pytest.param(pid, seed, id=f"{pid}-random{seed}")


def test_the_papers_problems_have_a_bound_method():
    """stepsplit is left out: its exact method enumerates the whole (tiny) decision space, its own proof."""
    assert {"qllms", "cdgs", "dagsched", "offload", "partition"} <= set(_with_bounds())


@pytest.mark.parametrize("pid,source", list(_small_cases()))
def test_bound_never_crosses_the_proven_optimum(pid, source):
    """The defining property of a bound, against the exact method's proven optimum."""
    prob = registry.problem(pid)
    inst = prob.module.small_instance(source) if isinstance(source, int) else io.load(source)
    (exact,) = [run_one(inst, m.name, time_limit=60) for m in prob.select(["exact"], inst)][:1]
    assert exact.status == "optimal" and exact.feasible
    for m in prob.select(["bound"], inst):
        b = run_one(inst, m.name, time_limit=60)
        assert b.status == "bound" and b.solution is None and b.objective is None, (m.name, b.status, b.message)
        assert _below(prob, b.bound, exact.objective), f"{m.name} {b.bound} vs optimum {exact.objective}"


def _gap_optima() -> list:
    rows = list(csv.DictReader((GAP / "optima.csv").read_text().splitlines()))
    return [pytest.param(r["file"], float(r["optimum_min"]), id=r["instance"],
                         marks=[pytest.mark.slow] if int(r["agents"]) > 5 else []) for r in rows]


@pytest.mark.parametrize("start", ["lp duals", "kelley"])
@pytest.mark.parametrize("file,optimum", _gap_optima())
def test_qllms_bound_below_every_gap_optimum_and_at_least_the_lp_bound(file, optimum, start, monkeypatch):
    """The 60 OR-Library optima: the Lagrangian bound is at most each one, and at least the MILP's LP relaxation
    (one HiGHS call): a Lagrangian that ends looser than the LP has not converged (issue 26). Both ways there:
    from the LP relaxation's duals, and by Kelley's planes alone (what larger instances use)."""
    if start == "kelley":
        monkeypatch.setattr(qllms_formulation, "LP_DUALS_UP_TO", 0)
    inst = io.load(GAP / file)
    b = run_one(inst, "lagrange")
    assert b.details.get("start") == (start if start == "lp duals" else None)
    model = qllms_formulation.build_model(inst)
    pe.TransformationFactory("core.relax_integer_vars").apply_to(model)
    lp = solve_model(model)
    assert b.status == "bound" and lp.status == "optimal"
    assert b.bound <= optimum + 1e-6 * optimum
    assert b.bound >= lp.objective - 1e-6 * abs(lp.objective)


LARGER = [("qllms", "qllms-m200-obs100-s0.json.gz"), ("qllms", "hetero-m1000-obs30-s0.json.gz"),
          ("cdgs", "small-t20-b10-s0.json"), ("dagsched", "paper-j10-random-w6-tmax3-s1.json"),
          ("dagsched", "heft-topcuoglu.json"), ("offload", "paper-n15-m3-s0.json"),
          ("partition", "llama2-7b-d5-latency.json"), ("partition", "llama2-7b-d5-throughput.json")]


@pytest.mark.slow
@pytest.mark.parametrize("pid,name", LARGER, ids=[n for _, n in LARGER])
def test_bound_never_crosses_an_incumbent(pid, name):
    """Beyond the exact methods' reach the bound is checked against every heuristic's and baseline's solution."""
    prob = registry.problem(pid)
    inst = io.load(INSTANCES / pid / name)
    bounds = [run_one(inst, m.name, time_limit=60) for m in prob.select(["bound"], inst)]
    found = [run_one(inst, m.name, time_limit=60) for m in prob.select(["heuristic", "baseline"], inst)]
    assert any(r.feasible for r in found)
    for b in bounds:
        assert b.status == "bound"
        for r in found:
            if r.feasible:
                assert _below(prob, b.bound, r.objective), f"{b.method} {b.bound} crosses {r.method} {r.objective}"


def _row(method, kind, status, objective=None, bound=None, feasible=None):
    return {"problem": "qllms", "instance": "i", "method": method, "kind": kind, "status": status,
            "objective": objective, "bound": bound, "feasible": objective is not None if feasible is None else feasible,
            "gap_to_best": None, "gap_ref": None}


def test_gaps_use_the_tightest_bound_when_nothing_is_proven_optimal():
    """A time-limited exact run's bound and a bound method's bound: the larger lower bound is the reference."""
    rows = [_row("milp", "exact", "time_limit", objective=12.0, bound=8.0), _row("lagrange", "bound", "bound", bound=9.0),
            _row("daa", "heuristic", "feasible", objective=10.0)]
    add_gaps(rows)
    assert [r["gap_ref"] for r in rows] == ["bound"] * 3
    assert rows[2]["gap_to_best"] == pytest.approx(1 / 9)
    assert rows[1]["gap_to_best"] == pytest.approx(0.0) and rows[0]["gap_to_best"] == pytest.approx(3 / 9)


def test_an_optimum_outranks_any_bound():
    rows = [_row("milp", "exact", "optimal", objective=10.0, bound=10.0), _row("lagrange", "bound", "bound", bound=9.0),
            _row("daa", "heuristic", "feasible", objective=11.0)]
    add_gaps(rows)
    assert {r["gap_ref"] for r in rows} == {"optimum"}
    assert rows[1]["gap_to_best"] == pytest.approx(0.1)  # how far the bound lies below the optimum
    assert rows[2]["gap_to_best"] == pytest.approx(0.1)


def test_compare_certifies_heuristic_gaps_with_a_bound(tmp_path):
    """No exact method in the run: the heuristics' gaps are to the bound, and the CSV says so."""
    src = INSTANCES / "dagsched" / "paper-j5-w6-tmax3-s0.json"
    out = tmp_path / "rows.csv"
    rows = compare([src], ["bound", "list"], out=str(out))
    by = {r["method"]: r for r in rows}
    assert by["paths"]["status"] == "bound" and by["paths"]["objective"] is None
    assert by["list"]["gap_ref"] == "bound" and by["list"]["gap_to_best"] >= 0
    again = {r["method"]: r for r in csv.DictReader(out.open())}
    assert again["list"]["gap_ref"] == "bound" and again["paths"]["status"] == "bound"
    table = _render(gap_table(rows, width=100))
    assert "(0.00)" in table and "gap to the best bound" in table


def _render(group) -> str:
    from rich.console import Console

    console = Console(width=100, record=True)
    console.print(group)
    return console.export_text()


def test_cli_solve_reports_a_bound_without_a_solution(cli):
    code, out, _ = cli("solve", INSTANCES / "qllms" / "small" / next(p.name for p in shipped("qllms", "small")),
                       "-m", "bound", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["kind"] == "bound" and doc["status"] == "bound"
    assert doc["solution"] is None and doc["objective"] is None and doc["bound"] is not None


def test_experiment_plots_a_bound_as_a_series():
    """In an objective plot the bound stands for its method's objective."""
    rows = [{"method": "lagrange", "size": 10, "status": "bound", "feasible": False, "objective": None, "bound": 4.0},
            {"method": "daa", "size": 10, "status": "feasible", "feasible": True, "objective": 5.0, "bound": None}]
    got = series(rows, Plot(x="size", y="objective"))
    assert got["lagrange"][0][1] == 4.0 and got["daa"][0][1] == 5.0
