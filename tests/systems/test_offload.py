"""The offload system over time (TS-MITO's slots): every active user served once per slot or counted as refused,
servers that carry load, a reference per slot that bounds the policy, strict parameters, a seed that repeats a run."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import family_rows, untimed
from edgeopt import registry
from edgeopt.problems import offload
from edgeopt.simulation import simulate
from edgeopt.systems import offload as system

SMALL = {"preset": "small", "rate": 0.7}  # 3 users, 2 edges, prompts in 70 % of the slots per user


def _serve(sim, t: int, method: str = "ts-mito"):
    inst = sim.instance(t)
    sol = None if inst is None else offload.Solution.model_validate(
        registry.problem("offload").method(method).run(inst, seed=t).solution)
    return inst, sim.advance(t, inst, sol)


@pytest.mark.parametrize("method", ["ts-mito", "equal", "cloud-heavy"])
def test_every_active_user_is_served_once_per_slot_and_prompts_are_conserved(method):
    """Each slot serves the oldest prompt of every active user (exactly its row of the instance); every prompt that
    arrived is served, still queued or dropped from a full queue."""
    sim = system.Simulation(seed=1, arrivals="poisson", rate=0.8, queue=2, **{k: v for k, v in SMALL.items()
                                                                                      if k != "rate"})
    arrived = served = dropped = 0
    for t in range(12):
        waiting = [len(q) for q in sim.waiting]
        inst, m = _serve(sim, t, method)
        s = m["service"]
        arrived += s["arrivals"]
        dropped += s["dropped"]
        served += s["served"]
        if inst is None:
            assert s["served"] == s["active"] == 0
            continue
        assert inst.data.n_users == len(sim.active) == s["active"] == s["served"]
        assert s["refused"] in (0, s["active"])
        after = [len(q) for q in sim.waiting]
        for n in range(sim.users):  # an active user's queue lost its oldest prompt, gained what arrived
            assert after[n] <= waiting[n] + 2 and (n in sim.active or after[n] >= waiting[n])
        assert s["queued"] == sum(after)
    assert arrived == served + dropped + sum(map(len, sim.waiting)) and dropped > 0 and served > 0


def test_an_infeasible_decision_is_refused_and_the_fallback_serves_every_user():
    sim = system.Simulation(seed=0, **SMALL)
    inst = sim.instance(0)
    good = sim.fallback(inst)
    assert offload.evaluate(inst, good).feasible
    over = good.model_copy(update={"cloud_sms": [inst.data.cloud.sms] * inst.data.n_users})  # more than the cloud
    assert not offload.evaluate(inst, over).feasible
    m = sim.advance(0, inst, over)
    assert m["service"]["refused"] == m["service"]["served"] == inst.data.n_users
    assert m["quality"]["utility"] == pytest.approx(offload.evaluate(inst, good).details["utility_total"])


def test_servers_carry_load_until_their_requests_end():
    """A request holds its SMs until its steps end: the next slot's instance offers only what is free, and a server
    with less than one SM free takes no work (the cloud: nobody is served; an edge: cloud-only requests)."""
    sim = system.Simulation(seed=2, preset="paper", slot_s=5.0)
    inst = sim.instance(0)
    sol = offload.Solution.model_validate(registry.problem("offload").method("ts-mito").run(inst).solution)
    d = offload.evaluate(inst, sol).details
    sim.advance(0, inst, sol)
    free = sim.free_sms(1)
    cloud_busy = np.array(d["delay_cloud_s"]) > 5.0
    assert free[0] == pytest.approx(inst.data.cloud.sms - np.array(sol.cloud_sms)[cloud_busy].sum())
    assert np.all(free <= sim.sms + 1e-9) and np.all(free >= -1e-9)
    nxt = sim.instance(1)
    if free[0] < system.MIN_FREE:
        assert nxt is None
    else:
        for e, f in zip(nxt.data.edges, free[1:]):
            assert e.sms == (f if f >= system.MIN_FREE else system.MIN_SMS)


def test_the_reference_bounds_every_slot():
    """minlp's proven optimum on slots of at most ``exact_users`` users, lagrange's upper bound on the others: the
    policy's gap to it is never negative."""
    run = simulate("offload", "ts-mito", intervals=4, seed=3, exact_users=2, **SMALL)
    refs = family_rows(run, "reference")
    assert {r["reference"] for r in refs} == {"minlp", "lagrange"} or len(refs) < 4
    for r in refs:
        assert r["gap_to_value"] >= -1e-6
        assert r["reference"] == "lagrange" or r["ref_status"] == "optimal"


def test_a_seed_repeats_an_offload_run_and_another_seed_does_not():
    a, b, c = (simulate("offload", "ts-mito", intervals=3, seed=s, reference=None, **SMALL) for s in (5, 5, 6))
    assert untimed(a) == untimed(b)
    assert untimed(a) != untimed(c)


@pytest.mark.parametrize("args, field", [
    (["--option", "rate=1.5"], "--option rate"),
    (["--option", "rate=-1"], "--option rate"),
    (["--option", "arrivals=burst"], "--option arrivals"),
    (["--option", "slot_s=0"], "--option slot_s"),
    (["--option", "users=0"], "--option users"),
    (["--option", "lvm=huge"], "--option lvm"),
    (["--option", "exact_users=9"], "--option exact_users"),
    (["--preset", "nope"], "--preset"),
])
def test_bad_offload_parameters_exit_2_with_one_line_and_write_nothing(cli, tmp_path, args, field):
    out = tmp_path / "run"
    code, _, err = cli("simulate", "offload", "-m", "ts-mito", "-o", out, *args)
    assert code == 2
    assert err.strip().count("\n") == 0 and err.startswith(f"error: {field} "), err
    assert not out.exists()
