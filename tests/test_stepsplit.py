"""``stepsplit``: MGF bound vs simulation, Pollaczek–Khinchine vs simulation, instability, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import INSTANCES
from edgeopt import io
from edgeopt.problems import stepsplit as S

PRESETS = [INSTANCES / "stepsplit" / "seed003-l30.json", INSTANCES / "stepsplit" / "seed003-fading-l30.json"]
PK_TOL = 0.02  # relative; 200k requests at load ~0.25-0.45 give a standard error well under 1 %


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
@pytest.mark.parametrize("mode", S.MODES)
def test_bound_covers_simulation_and_pk_matches(path, mode):
    d = io.load(path).data
    svc = S.Service(d, mode, 10, 4)
    sojourn = S.simulate(d, svc, n=200_000, seed=7)
    assert sojourn.mean() == pytest.approx(S.pk_mean_sojourn(d, svc), rel=PK_TOL)
    for t0 in np.linspace(0.5, 4, 8) * S.pk_mean_sojourn(d, svc):
        bound, theta = S.violation_bound(d, svc, t0)
        assert theta > 0
        assert bound >= (sojourn > t0).mean(), (t0, bound)


def test_fading_makes_service_random():
    d = io.load(PRESETS[1]).data
    svc = S.Service(d, "edge", 10, 4)
    mean, var = svc.moments()
    draws = svc.sample(400_000, np.random.default_rng(1))
    assert var > 0
    assert draws.mean() == pytest.approx(mean, rel=2e-3)
    assert draws.var() == pytest.approx(var, rel=0.05)
    assert svc.mgf(0.5) == pytest.approx(np.exp(0.5 * draws).mean(), rel=5e-3)


def test_unstable_load_is_reported_not_computed():
    inst = io.load(PRESETS[0])
    inst.data.arrival_rate = 5.0
    svc = S.Service(inst.data, "split", 20, 10)
    with pytest.raises(S.Unstable, match=r"load lambda\*E\[T_serv\] = .* >= 1"):
        S.pk_mean_sojourn(inst.data, svc)
    with pytest.raises(S.Unstable):
        S.violation_bound(inst.data, svc)
    ev = S.evaluate(inst, S.Solution(mode="split", prior_steps=20, dec_steps=10))
    assert ev.objective is None and not ev.feasible and ev.details["status"] == "unstable"


def test_bound_is_monotone_in_steps():
    """The frontier search of ``min-bound`` relies on it: more steps never lower the bound."""
    d = io.load(PRESETS[1]).data
    vals = [S.violation_bound(d, S.Service(d, "split", 8, k))[0] for k in range(1, 8)]
    assert all(b >= a - 1e-12 for a, b in zip(vals, vals[1:]))


def test_quality_floor_is_enforced():
    inst = io.load(PRESETS[0])
    ev = S.evaluate(inst, S.Solution(mode="split", prior_steps=1, dec_steps=1))
    assert not ev.feasible and any("quality" in v for v in ev.violations)


@pytest.mark.parametrize("edit,field,rule", [
    (lambda d: d["downlink"].update(bandwidth_mhz=-1.0), "data.downlink.bandwidth_mhz", "greater than 0"),
    (lambda d: d.update(prior_steps=[9, 3]), "data.prior_steps[0]", "must be <= data.prior_steps[1]"),
])
def test_bad_input_exits_2(cli, tmp_path, edit, field, rule):
    doc = json.loads(PRESETS[0].read_text())
    edit(doc["data"])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    code, out, err = cli("validate", path)
    assert code == 2 and field in err and rule in err, err
    assert "Traceback" not in out + err
