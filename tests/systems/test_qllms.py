"""The qllms system over time: every task ends once, the profile fills in with exactly what ran."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from conftest import SIM_QLLMS, family_rows
from edgeopt import registry
from edgeopt.problems import qllms
from edgeopt.simulation import simulate
from edgeopt.systems import qllms as system


def test_qllms_every_task_ends_once_edge_or_cloud_with_its_reason():
    """Conservation: each arrival is done at the edge or in the cloud for exactly one stated reason."""
    run = simulate("qllms", "daa", intervals=6, seed=3, reference=None, **SIM_QLLMS)
    for r in family_rows(run, "service"):
        assert r["arrivals"] == sum(r[k] for k in qllms.OUTCOMES)
        assert r["tcr"] == pytest.approx(r["edge"] / r["arrivals"])


def test_qllms_completions_are_observed_and_nothing_else():
    """State: after an interval the profile holds exactly the old entries plus those of the tasks that ran."""
    sim = system.Simulation(seed=1, **SIM_QLLMS)
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
