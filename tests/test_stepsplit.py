"""``stepsplit``: MGF bound vs simulation, Pollaczek–Khinchine vs simulation, instability, bad input."""
from __future__ import annotations

import json
import math

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


def _md1_violation(lam: float, service: float, t0: float) -> float:
    """Pr(T > t0) of an M/D/1 queue: T = W + D, with Erlang's waiting-time distribution
    F_W(x) = (1 - rho) sum_{k <= x/D} (lam (kD - x))^k / k! e^{-lam (kD - x)}."""
    x = t0 - service
    if x < 0:
        return 1.0
    rho = lam * service
    return 1.0 - (1 - rho) * sum((lam * (k * service - x)) ** k / math.factorial(k) * math.exp(-lam * (k * service - x))
                                 for k in range(int(x // service) + 1))


@pytest.mark.parametrize("mode", S.MODES)
@pytest.mark.parametrize("t0", [3.0, 4.0, 5.0])
def test_simulated_violation_frequency_matches_the_md1_formula(mode, t0):
    """Without fading the service time is deterministic (M/D/1), whose delay distribution is known exactly."""
    inst = S.generate("seed003", threshold_s=t0)
    sol = S.Solution(mode=mode, prior_steps=10, dec_steps=4)
    ev = S.evaluate(inst, sol)
    service = S.Service(inst.data, mode, 10, 4).moments()[0]
    exact = _md1_violation(inst.data.arrival_rate, service, t0)
    tol = 4 * math.sqrt(exact * (1 - exact) / (S.SIM_REQUESTS / 10))  # sojourns are correlated: n/10 effective
    assert ev.details["violation_frequency"] == pytest.approx(exact, abs=tol)
    assert ev.details["violation_frequency"] <= ev.objective
    assert S.evaluate(inst, sol).details == ev.details  # a fixed seed: the referee is deterministic


def test_simulated_violation_frequency_is_one_below_the_service_time_and_zero_far_above():
    sol = S.Solution(mode="split", prior_steps=10, dec_steps=4)
    service = S.Service(S.generate("seed003").data, "split", 10, 4).moments()[0]
    assert S.evaluate(S.generate("seed003", threshold_s=0.9 * service), sol).details["violation_frequency"] == 1.0
    assert S.evaluate(S.generate("seed003", threshold_s=100.0), sol).details["violation_frequency"] == 0.0


def test_threshold_option_sets_t0_and_nothing_else():
    base, moved = S.generate("seed003"), S.generate("seed003", threshold_s=2.5)
    assert moved.data.threshold_s == 2.5 and base.data.threshold_s == 5.0
    assert moved.data.model_copy(update={"threshold_s": 5.0}) == base.data
    sol = S.Solution(mode="edge", prior_steps=10, dec_steps=4)
    assert S.evaluate(moved, sol).objective > S.evaluate(base, sol).objective  # a tighter T0 is violated more


@pytest.mark.parametrize("value,rule", [("0", "greater than 0"), ("-1", "greater than 0"), ("nan", "finite number")])
def test_bad_threshold_option_is_exit_2(cli, tmp_path, value, rule):
    out_file = tmp_path / "g.json"
    code, _, err = cli("generate", "stepsplit", "--option", f"threshold_s={value}", "-o", out_file)
    assert code == 2 and "--option threshold_s must be" in err and rule in err, err
    assert err.count("\n") == 1 and not out_file.exists()
