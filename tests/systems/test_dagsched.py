"""The dagsched system over time: every job ends once, queue backlogs carried over exactly, refused decisions."""
from __future__ import annotations

from itertools import chain

import pytest
from numpy.testing import assert_allclose

from conftest import family_rows, untimed
from edgeopt import registry
from edgeopt.problems import dagsched
from edgeopt.simulation import simulate
from edgeopt.systems import dagsched as system

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
    sim = system.Simulation(seed=1, **DAG_BUSY)
    carried_in, counts = 0, dict.fromkeys(("served", "carried", *system.DROP_REASONS), 0)
    for t in range(12):
        m = _dag_step(sim, t, "greedy-edge")
        assert carried_in + m["arrivals"] == m["jobs"] == m["served"] + m["carried"] + m["dropped"]
        assert m["dropped"] == sum(m[r] for r in system.DROP_REASONS)
        carried_in = m["carried"]
        for k in counts:
            counts[k] += m[k]
    assert all(counts.values())  # every path was taken: served, carried, dropped for each reason
    ended = [o for o, _ in sim.ended.values()]
    assert len(ended) == counts["served"] + counts["edge-failure"] + counts["timeout"]  # nothing ended twice
    assert {o: ended.count(o) for o in set(ended)} == {k: counts[k] for k in ("served", *system.DROP_REASONS)}
    assert set(sim.ended).isdisjoint(sim.carried) and set(sim.ended) | set(sim.carried) == set(sim.jobs)


def test_dagsched_queue_backlog_carries_over_exactly():
    """State: what is not done heads its edge queue next interval in the same order; a running sub-task keeps
    its remaining time; the next instance fixes all of it where it ran."""
    sim = system.Simulation(seed=2, rate=6.0, interval_s=0.25, failure=0.0, patience=100)
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
    refs = family_rows(run, "reference")
    assert len(refs) == sum(r["status"] != "idle" for r in family_rows(run, "decision")) > 0
    assert any(r["carried"] for r in family_rows(run, "service"))  # some intervals start with a fixed backlog
    for r in refs:
        assert r["ref_status"] == "optimal"
        assert r["gap"] >= -1e-6


def test_dagsched_a_decision_that_moves_the_backlog_is_refused_and_the_backlog_kept():
    """Partial decisions: a policy that ignores the fixed prefix is not carried out; the fallback keeps it."""
    sim = system.Simulation(seed=2, rate=6.0, interval_s=0.25, failure=0.0, patience=100)
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
    a = simulate("dagsched", "list", intervals=8, seed=5, **DAG_BUSY)
    b = simulate("dagsched", "list", intervals=8, seed=5, **DAG_BUSY)
    c = simulate("dagsched", "list", intervals=8, seed=6, **DAG_BUSY)
    other = simulate("dagsched", "greedy-edge", intervals=8, seed=5, **DAG_BUSY)
    assert untimed(a) == untimed(b) and untimed(a) != untimed(c)
    for key in ("arrivals", "failed_edges"):
        assert a.column("service", key) == other.column("service", key)
