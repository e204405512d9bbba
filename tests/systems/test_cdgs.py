"""The cdgs system over time: traffic delivered once, batteries and dish records carried over exactly."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from conftest import SIM_CDGS, family_rows
from edgeopt import registry
from edgeopt.problems import cdgs
from edgeopt.problems.cdgs import Solution, evaluate
from edgeopt.simulation import simulate
from edgeopt.systems import cdgs as system


def test_cdgs_traffic_is_delivered_or_on_isl_never_both():
    """Conservation: every Mb of every task goes through a dish or its ISL path, failed shares fall back."""
    run = simulate("cdgs", "cgsc-cstp", intervals=4, seed=1, **SIM_CDGS)
    for r in family_rows(run, "auction"):
        assert r["offloaded_mb"] + r["isl_mb"] == pytest.approx(r["traffic_mb"])
        assert r["fallback_mb"] <= r["isl_mb"] + 1e-9


def test_cdgs_a_decision_listing_a_group_twice_is_carried_out_once():
    """Nothing twice: a repeated group (same task, same dishes) delivers the task's traffic at most once."""
    sim = system.Simulation(seed=0, **SIM_CDGS)
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
    sim = system.Simulation(seed=2, **SIM_CDGS)
    soc0 = sim.soc.copy()
    inst = sim.instance(0)
    paths = sim.paths
    sim.advance(0, inst, sim.fallback(inst))  # every task on its ISL path
    hops = _path_transmissions(paths, paths["source"], paths["dest_sat"])
    traffic = np.zeros_like(hops)
    for src, dst, v in zip(paths["source"], paths["dest_sat"], inst.data.tasks.traffic_mb):
        traffic += v * _path_transmissions(paths, [src], [dst])
    sunlit = ~paths["eclipse"]
    net = (system._SIM_SOLAR_W * sunlit - system._SIM_BUS_W) * 60.0 - cdgs._SIM_TX_J_PER_MB * traffic
    expected = np.clip(soc0 + net / (cdgs._SIM_BATTERY_WH * 3600.0), 0, 1)
    assert_allclose(sim.soc, expected, rtol=0, atol=1e-12)
    assert hops.sum() == sum(len(_path_transmissions(paths, [a], [b]).nonzero()[0])
                             for a, b in zip(paths["source"], paths["dest_sat"]))
    assert_allclose(sim.life, cdgs.cycle_damage(1 - soc0, 1 - expected))


def test_cdgs_dish_record_reaches_the_next_auction():
    """State: wins and failures update after each win; the next instance carries them (CSTP's exploration)."""
    sim = system.Simulation(seed=0, **SIM_CDGS)
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


def test_cdgs_simulation_needs_orbits(cli, tmp_path):
    code, _, err = cli("simulate", "cdgs", "-m", "cgsc-cstp", "--preset", "small", "-o", tmp_path / "r")
    assert code == 2 and "--preset must be a constellation" in err


def test_energy_matches_the_simulated_transmissions():
    """The generator's ISL energy per Mb is what the simulation spends moving the traffic on that path."""
    sim = system.Simulation(preset="telesat", seed=0, size=40, bids=4)
    inst = sim.instance(0)
    moved = sim.advance(0, inst, Solution())["energy"]["comm_j"]
    assert evaluate(inst, Solution()).details["energy_j"] == pytest.approx(moved, rel=1e-5)
