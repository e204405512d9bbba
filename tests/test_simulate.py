"""Simulation: nothing lost or served twice, state carried over exactly, exact re-solves as references, strict
parameters, a seed repeats a run."""
from __future__ import annotations

from itertools import chain

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import edgeopt
from edgeopt import registry
from edgeopt.problems import cdgs, dagsched, qllms
from edgeopt.simulation import load_rows, simulate

# small systems: 30 Telesat satellites as sources with 6 bids each; 8 QLLMS task families
CDGS = {"preset": "telesat", "size": 30, "bids": 6}
QLLMS = {"families": 8}


def _family(run, family: str) -> list[dict]:
    return [r for r in run.rows if r["family"] == family]


def test_qllms_every_task_ends_once_edge_or_cloud_with_its_reason():
    """Conservation: each arrival is done at the edge or in the cloud for exactly one stated reason."""
    run = simulate("qllms", "daa", intervals=6, seed=3, reference=None, **QLLMS)
    for r in _family(run, "service"):
        assert r["arrivals"] == sum(r[k] for k in qllms.OUTCOMES)
        assert r["tcr"] == pytest.approx(r["edge"] / r["arrivals"])


def test_cdgs_traffic_is_delivered_or_on_isl_never_both():
    """Conservation: every Mb of every task goes through a dish or its ISL path, failed shares fall back."""
    run = simulate("cdgs", "cgsc-cstp", intervals=4, seed=1, **CDGS)
    for r in _family(run, "auction"):
        assert r["offloaded_mb"] + r["isl_mb"] == pytest.approx(r["traffic_mb"])
        assert r["fallback_mb"] <= r["isl_mb"] + 1e-9


def test_cdgs_a_decision_listing_a_group_twice_is_carried_out_once():
    """Nothing twice: a repeated group (same task, same dishes) delivers the task's traffic at most once."""
    sim = cdgs.Simulation(seed=0, **CDGS)
    inst = sim.instance(0)
    groups = registry.problem("cdgs").method("cgsc-cstp").run(inst).solution["groups"]
    doubled = cdgs.Solution.model_validate({"groups": groups + groups})
    m = sim.advance(0, inst, doubled)["auction"]
    assert m["offloaded_mb"] + m["isl_mb"] == pytest.approx(m["traffic_mb"])
    assert m["served"] == len(groups)
    assert sim.wins.sum() == sum(len(g["bids"]) for g in groups)  # a dish's second win in the interval is refused


def _path_transmissions(paths, src, dst) -> np.ndarray:
    """Per satellite, how many of the paths src -> dst it transmits on: walked hop by hop (in-plane first)."""
    p, s, planes, per = paths["grid"]
    count = np.zeros(planes * per)
    for a, b in zip(src, dst):
        pa, sa, pb, sb = p[a], s[a], p[b], s[b]
        ds = (sb - sa) % per
        ds = ds - per if ds > per // 2 else ds
        dp = (pb - pa) % planes
        dp = dp - planes if dp > planes // 2 else dp
        cells = [(pa, (sa + np.sign(ds) * k) % per) for k in range(abs(ds) + 1)]
        cells += [((pa + np.sign(dp) * k) % planes, sb) for k in range(1, abs(dp) + 1)]
        for pc, sc in cells:
            count[pc * per + sc] += 1
    return count


def test_cdgs_battery_charge_carries_over_exactly():
    """State: the next charge is the last one plus sunlight, minus the bus and the relayed traffic's energy."""
    sim = cdgs.Simulation(seed=2, **CDGS)
    soc0 = sim.soc.copy()
    inst = sim.instance(0)
    paths = sim.paths
    sim.advance(0, inst, sim.fallback(inst))  # every task on its ISL path
    hops = _path_transmissions(paths, paths["source"], paths["dest_sat"])
    traffic = np.zeros_like(hops)
    for src, dst, v in zip(paths["source"], paths["dest_sat"], inst.data.tasks.traffic_mb):
        traffic += v * _path_transmissions(paths, [src], [dst])
    sunlit = ~paths["eclipse"]
    net = (cdgs._SIM_SOLAR_W * sunlit - cdgs._SIM_BUS_W) * 60.0 - cdgs._SIM_TX_J_PER_MB * traffic
    expected = np.clip(soc0 + net / (cdgs._SIM_BATTERY_WH * 3600.0), 0, 1)
    assert_allclose(sim.soc, expected, rtol=0, atol=1e-12)
    assert hops.sum() == sum(len(_path_transmissions(paths, [a], [b]).nonzero()[0])
                             for a, b in zip(paths["source"], paths["dest_sat"]))
    assert_allclose(sim.life, cdgs.cycle_damage(1 - soc0, 1 - expected))


def test_cdgs_dish_record_reaches_the_next_auction():
    """State: wins and failures update after each win; the next instance carries them (CSTP's exploration)."""
    sim = cdgs.Simulation(seed=0, **CDGS)
    inst = sim.instance(0)
    sol = cdgs.Solution.model_validate(registry.problem("cdgs").method("cgsc-cstp").run(inst).solution)
    sim.advance(0, inst, sol)
    won = {int(inst.data.bids.dish[k]) for g in sol.groups for k in g.bids}
    assert set(np.flatnonzero(sim.wins)) == won
    nxt = sim.instance(1).data
    assert_array_equal(nxt.dishes.wins, sim.wins)
    assert nxt.tau == 1
    d = nxt.bids.dish
    expect = (sim.wins[d] - sim.failures[d] + 2 * sim.advertised[d]) / (sim.wins[d] + 2)
    assert_allclose(nxt.bids.reliability, expect, atol=1e-6)


def test_cdgs_battery_life_consumption_grows_exponentially_with_depth():
    """The DoD model: full -> 30 % costs 1/cycles; 15 points deeper doubles the marginal damage; charging is free."""
    assert cdgs.cycle_damage(0.0, 0.3, cycles=1000) == pytest.approx(1e-3)
    step = cdgs.cycle_damage(np.array([0.3, 0.45]), np.array([0.31, 0.46]))
    assert step[1] / step[0] == pytest.approx(2.0, rel=1e-9)
    assert cdgs.cycle_damage(0.5, 0.2) == 0.0


def test_qllms_completions_are_observed_and_nothing_else():
    """State: after an interval the profile holds exactly the old entries plus those of the tasks that ran."""
    sim = qllms.Simulation(seed=1, **QLLMS)
    observed = 0
    for t in range(4):
        inst = sim.instance(t)
        before_lat, before_ppl = sim.seen_lat.copy(), sim.seen_ppl.copy()
        sol = qllms.Solution.model_validate(registry.problem("qllms").method("daa").run(inst).solution)
        fam = sim.family.copy()
        sim.advance(t, inst, sol)
        ran = np.isin(qllms.task_outcome(inst, sol), (qllms.OUTCOMES.index("edge"), qllms.OUTCOMES.index("slo")))
        before_lat[fam[ran], sol.server[ran], sol.quant[ran]] = True
        before_ppl[fam[ran], sol.quant[ran]] = True
        assert_array_equal(sim.seen_lat, before_lat)
        assert_array_equal(sim.seen_ppl, before_ppl)
        observed += ran.sum()
    assert observed > 0
    nxt = sim.instance(4)
    assert_array_equal(nxt.data.seen_lat, sim.seen_lat[sim.family])


@pytest.mark.parametrize("problem, policy, options", [("qllms", "daa", QLLMS), ("qllms", "edf", QLLMS),
                                                     ("cdgs", "cgsc-cstp", CDGS), ("cdgs", "smtsn", CDGS)])
def test_exact_resolve_never_worse_than_the_policy_on_the_same_state(problem, policy, options):
    """The per-interval exact re-solve (qllms: with full information) is a bound on every policy's interval."""
    run = simulate(problem, policy, intervals=3, seed=4, reference="milp", **options)
    refs = _family(run, "reference")
    assert len(refs) == 3
    for r in refs:
        assert r["ref_status"] == "optimal"
        assert r["gap"] >= -1e-6


@pytest.mark.parametrize("problem, method, args, field", [
    ("qllms", "daa", ["--intervals", "0"], "--intervals"),
    ("qllms", "daa", ["--option", "observe=1.5"], "--option observe"),
    ("qllms", "daa", ["--option", "families=-1"], "--option families"),
    ("qllms", "daa", ["--option", "colour=3"], "--option colour"),
    ("qllms", "daa", ["--preset", "nope"], "--preset"),
    ("qllms", "daa", ["--option", "rate=NaN"], "--option rate"),
    ("dagsched", "list", ["--option", "rate=0"], "--option rate"),
    ("dagsched", "list", ["--option", "failure=1.5"], "--option failure"),
    ("dagsched", "list", ["--option", "interval_s=-1"], "--option interval_s"),
    ("dagsched", "list", ["--option", "patience=0"], "--option patience"),
    ("dagsched", "list", ["--option", "rate=inf"], "--option rate"),
    ("dagsched", "list", ["--preset", "heft"], "--preset"),
    ("dagsched", "list", ["--intervals", "-3"], "--intervals"),
])
def test_bad_simulation_parameters_exit_2_with_one_line_and_write_nothing(cli, tmp_path, problem, method, args, field):
    """Bad input: exit 2, one line naming the field and its rule, no run directory."""
    out = tmp_path / "run"
    code, _, err = cli("simulate", problem, "-m", method, "-o", out, *args)
    assert code == 2
    assert err.strip().count("\n") == 0 and err.startswith(f"error: {field} ")
    assert not out.exists()


def test_cdgs_simulation_needs_orbits(cli, tmp_path):
    code, _, err = cli("simulate", "cdgs", "-m", "cgsc-cstp", "--preset", "small", "-o", tmp_path / "r")
    assert code == 2 and "--preset must be a constellation" in err


def test_a_seed_repeats_a_run_and_another_seed_does_not():
    """Determinism: the same seed gives the same rows (bar timing); arrivals and failures follow the seed."""
    def strip(run):
        return [{k: v for k, v in r.items() if k != "wall_s"} for r in run.rows]

    a = simulate("cdgs", "cgsc-cstp", intervals=3, seed=5, **CDGS)
    b = simulate("cdgs", "cgsc-cstp", intervals=3, seed=5, **CDGS)
    c = simulate("cdgs", "cgsc-cstp", intervals=3, seed=6, **CDGS)
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)


@pytest.mark.slow  # matplotlib's first import and two PDFs: about 8 s on a shared machine
def test_cli_writes_a_table_pandas_reads_and_figures(cli, tmp_path):
    """Output: one row per interval and metric family, in Parquet, with PNG and PDF figures."""
    out = tmp_path / "run"
    code, stdout, _ = cli("simulate", "qllms", "-m", "daa", "--intervals", "3", "--option", "families=6", "-o", out)
    assert code == 0 and "cost" in stdout
    rows = load_rows(out)
    assert {(r["interval"], r["family"]) for r in rows} == {(t, f) for t in range(3)
                                                            for f in ("decision", "service", "observation", "reference")}
    import pandas as pd

    frame = pd.read_parquet(out / "simulation.parquet")
    assert len(frame) == len(rows) and frame.query("family == 'service'")["arrivals"].sum() > 0
    for name in ("timeseries", "cdf"):
        for suffix in ("png", "pdf"):
            assert (out / "figures" / f"{name}.{suffix}").stat().st_size > 0


@pytest.fixture
def own_policy():
    """A user's policy, registered for the test and removed after it."""
    @registry.method("qllms", "test-all-cloud", "baseline")
    def all_cloud(instance, *, seed=0, time_limit=None):
        M = instance.data.shape[0]
        return qllms.Solution(server=np.full(M, -1), quant=np.full(M, -1))

    yield "test-all-cloud"
    del registry._METHODS["qllms"]["test-all-cloud"]


def test_a_registered_function_is_a_policy(own_policy):
    """The policy contract: one @method registration, no simulation code."""
    run = edgeopt.simulate("qllms", own_policy, intervals=2, reference=None, **QLLMS)
    assert all(r["cloud"] == r["arrivals"] for r in _family(run, "service"))


# --- dagsched ---------------------------------------------------------------------------------------
# a busy little system: 4 paper-family jobs per 0.25 s interval, edges failing often, short patience
DAG_BUSY = {"rate": 4.0, "interval_s": 0.25, "failure": 0.3, "patience": 3}
DAG_TINY = {"rate": 1.5, "interval_s": 0.25}  # 1-3 jobs in an interval: the exact methods prove them


def _dag_step(sim, t: int, policy: str) -> dict:
    """One interval of the simulation loop by hand: instance, decision, advance (the service family)."""
    inst = sim.instance(t)
    sol = None if inst is None else dagsched.Solution.model_validate(
        registry.problem("dagsched").method(policy).run(inst, seed=t).solution)
    return sim.advance(t, inst, sol)["service"]


def test_dagsched_every_job_ends_once_served_or_dropped_with_its_reason():
    """Conservation: each arrival is served, carried, or dropped for one stated reason, and ends only once."""
    sim = dagsched.Simulation(seed=1, **DAG_BUSY)
    carried_in, counts = 0, dict.fromkeys(("served", "carried", *dagsched.DROP_REASONS), 0)
    for t in range(12):
        m = _dag_step(sim, t, "greedy-edge")
        assert carried_in + m["arrivals"] == m["jobs"] == m["served"] + m["carried"] + m["dropped"]
        assert m["dropped"] == sum(m[r] for r in dagsched.DROP_REASONS)
        carried_in = m["carried"]
        for k in counts:
            counts[k] += m[k]
    assert all(counts.values())  # every path was taken: served, carried, dropped for each reason
    ended = [o for o, _ in sim.ended.values()]
    assert len(ended) == counts["served"] + counts["edge-failure"] + counts["timeout"]  # nothing ended twice
    assert {o: ended.count(o) for o in set(ended)} == {k: counts[k] for k in ("served", *dagsched.DROP_REASONS)}
    assert set(sim.ended).isdisjoint(sim.carried) and set(sim.ended) | set(sim.carried) == set(sim.jobs)


def test_dagsched_queue_backlog_carries_over_exactly():
    """State: what is not done heads its edge queue next interval in the same order; a running sub-task keeps
    its remaining time; the next instance fixes all of it where it ran."""
    sim = dagsched.Simulation(seed=2, rate=6.0, interval_s=0.25, failure=0.0, patience=100)
    inst = sim.instance(0)
    sol = dagsched.Solution.model_validate(registry.problem("dagsched").method("greedy-edge").run(inst).solution)
    ev = dagsched.evaluate(inst, sol)
    sim.advance(0, inst, sol)
    d, L = inst.data, 0.25

    def name(data, i, j):
        return data.jobs[i].name.split("-", 2)[1], data.jobs[i].tasks[j].name  # (job id, sub-task name)

    start_finish = ev.details["start_finish"]
    left = [[name(d, i, j) for i, j in q if start_finish[i][j][1] > L] for q in sol.order]
    left_cloud = {name(d, i, j) for i, j in sol.cloud if start_finish[i][j][1] > L}
    running = {name(d, i, j): f - L for i, q in enumerate(start_finish) for j, (s, f) in enumerate(q) if s < L < f}
    assert any(left) and running
    nxt_inst = sim.instance(1)
    nxt = nxt_inst.data
    assert [[name(nxt, i, j) for i, j in q] for q in nxt.fixed.prefix] == left
    assert {name(nxt, i, j) for i, j in nxt.fixed.cloud} == left_cloud
    carried = {name(nxt, i, j): nxt.jobs[i].tasks[j] for i in range(nxt_inst.meta["carried_jobs"])
               for j in range(len(nxt.jobs[i].tasks))}  # the carried jobs come first
    assert set(carried) == set(chain(*left)) | left_cloud  # exactly the sub-tasks not done
    for key, task in carried.items():
        if key in running:
            assert task.in_bits == 0
            assert_allclose(task.exec_s, running[key], rtol=1e-12)
        else:
            assert task.exec_s is None


@pytest.mark.parametrize("policy", ["list", "cs-ucb"])
@pytest.mark.parametrize("exact", ["milp", "cpsat"])
def test_dagsched_exact_resolve_never_worse_than_the_policy_on_the_same_state(policy, exact):
    """The per-interval exact re-solve, on the same carried-over state, bounds the heuristic's interval."""
    run = simulate("dagsched", policy, intervals=4, seed=4, reference=exact, **DAG_TINY)  # no limit: each is proven
    refs = _family(run, "reference")
    assert len(refs) == sum(r["status"] != "idle" for r in _family(run, "decision")) > 0
    assert any(r["carried"] for r in _family(run, "service"))  # some intervals start with a fixed backlog
    for r in refs:
        assert r["ref_status"] == "optimal"
        assert r["gap"] >= -1e-6


def test_dagsched_a_decision_that_moves_the_backlog_is_refused_and_the_backlog_kept():
    """Partial decisions: a policy that ignores the fixed prefix is not carried out; the fallback keeps it."""
    sim = dagsched.Simulation(seed=2, rate=6.0, interval_s=0.25, failure=0.0, patience=100)
    _dag_step(sim, 0, "greedy-edge")
    inst = sim.instance(1)
    assert any(inst.data.fixed.prefix)
    g = inst.data.graph
    everything_to_cloud = dagsched.Solution(order=[[] for _ in range(g.N)], cloud=[list(g.name(t)) for t in range(g.T)])
    m = sim.advance(1, inst, everything_to_cloud)["service"]
    assert m["refused"]
    fb = sim.fallback(inst)
    assert [[tuple(x) for x in q] for q in fb.order] == [[tuple(x) for x in q] for q in inst.data.fixed.prefix]
    assert dagsched.evaluate(inst, fb).feasible




def test_dagsched_a_seed_repeats_a_run_and_every_policy_meets_the_same_arrivals_and_failures():
    """Determinism: rows repeat for a seed; arrivals and edge failures do not depend on the policy."""
    def strip(run):
        return [{k: v for k, v in r.items() if k != "wall_s"} for r in run.rows]

    a = simulate("dagsched", "list", intervals=8, seed=5, **DAG_BUSY)
    b = simulate("dagsched", "list", intervals=8, seed=5, **DAG_BUSY)
    c = simulate("dagsched", "list", intervals=8, seed=6, **DAG_BUSY)
    other = simulate("dagsched", "greedy-edge", intervals=8, seed=5, **DAG_BUSY)
    assert strip(a) == strip(b) and strip(a) != strip(c)
    for key in ("arrivals", "failed_edges"):
        assert a.column("service", key) == other.column("service", key)
