"""The simulation loop: exact re-solves as references, strict parameters, a seed repeats a run, any registered
method is a policy. What each system carries over is tested beside it, in tests/systems/."""
from __future__ import annotations

import numpy as np
import pytest

import edgeopt
from conftest import SIM_CDGS, SIM_QLLMS, family_rows, untimed
from edgeopt import registry
from edgeopt.problems import qllms
from edgeopt.simulation import load_rows, simulate

@pytest.mark.parametrize("problem, policy, options", [("qllms", "daa", SIM_QLLMS), ("qllms", "edf", SIM_QLLMS),
                                                     ("cdgs", "cgsc-cstp", SIM_CDGS), ("cdgs", "smtsn", SIM_CDGS)])
def test_exact_resolve_never_worse_than_the_policy_on_the_same_state(problem, policy, options):
    """The per-interval exact re-solve (qllms: with full information) is a bound on every policy's interval."""
    run = simulate(problem, policy, intervals=3, seed=4, reference="milp", **options)
    refs = family_rows(run, "reference")
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


def test_a_seed_repeats_a_run_and_another_seed_does_not():
    """Determinism: the same seed gives the same rows (bar timing); arrivals and failures follow the seed."""
    a = simulate("cdgs", "cgsc-cstp", intervals=3, seed=5, **SIM_CDGS)
    b = simulate("cdgs", "cgsc-cstp", intervals=3, seed=5, **SIM_CDGS)
    c = simulate("cdgs", "cgsc-cstp", intervals=3, seed=6, **SIM_CDGS)
    assert untimed(a) == untimed(b)
    assert untimed(a) != untimed(c)


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
    run = edgeopt.simulate("qllms", own_policy, intervals=2, reference=None, **SIM_QLLMS)
    assert all(r["cloud"] == r["arrivals"] for r in family_rows(run, "service"))


