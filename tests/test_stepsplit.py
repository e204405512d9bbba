"""``stepsplit``: both MGF bounds vs their simulations, the seed's tandem formulas by hand, Pollaczek–Khinchine
vs simulation, instability, bad input."""
from __future__ import annotations

import itertools
import json
import math
from collections import deque

import numpy as np
import pytest
from conftest import INSTANCES

from edgeopt import io, registry
from edgeopt.problems import stepsplit as S

PRESETS = [INSTANCES / "stepsplit" / "seed003-l30.json", INSTANCES / "stepsplit" / "seed003-fading-l30.json"]
PK_TOL = 0.02  # relative; 200k requests at load ~0.25-0.45 give a standard error well under 1 %


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
@pytest.mark.parametrize("mode", S.MODES)
def test_single_server_bound_covers_simulation_and_pk_matches(path, mode):
    d = io.load(path).data
    svc = S.Service(d, mode, 10, 4)
    sojourn = S.simulate_single_server(d, svc, n=200_000, seed=7)
    assert sojourn.mean() == pytest.approx(S.pk_mean_sojourn(d, svc), rel=PK_TOL)
    for t0 in np.linspace(0.5, 4, 8) * S.pk_mean_sojourn(d, svc):
        bound, theta = S.single_server_bound(d, svc, t0)
        assert theta > 0
        assert bound >= (sojourn > t0).mean(), (t0, bound)


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
@pytest.mark.parametrize("mode", S.MODES)
def test_tandem_bound_and_inference_stage_bound_cover_the_tandem_simulation(path, mode):
    """The default bound against the slotted tandem it is derived for, over thresholds where it is below 1."""
    d = io.load(path).data
    assert d.bound == "tandem"  # the default: shipped files do not name it
    svc = S.Service(d, mode, 10, 4)
    tandem = S.Tandem(d, svc)
    sojourn, inference = S.simulate_tandem(d, svc, n=200_000, seed=7)
    informative = 0
    for t0 in np.geomspace(0.5, 6, 10) * np.median(sojourn):
        bound, theta = tandem.bound(t0)
        assert theta > 0
        assert bound >= (sojourn > t0).mean(), (t0, bound)
        assert tandem.bound(t0, "inference")[0] >= (inference > t0).mean(), t0
        informative += bound < 0.5
    assert informative >= 2  # the comparisons are not all against the trivial bound 1


@pytest.mark.parametrize("bound", S.BOUNDS)
@pytest.mark.parametrize("seed", range(6))
def test_referee_bound_covers_its_simulated_frequency_on_random_instances(bound, seed):
    """On small random instances (half with fading), each paradigm: objective >= violation_frequency."""
    inst = S.generate("random", size=6, seed=seed, bound=bound)
    for mode in S.MODES:
        ev = S.evaluate(inst, S.Solution(mode=mode, prior_steps=3, dec_steps=3))
        if ev.details["status"] == "stable":
            assert ev.objective >= ev.details["violation_frequency"], (mode, ev.details)


def _tiny(**changes) -> S.Data:
    """T_inf = 2 s (1 TFLOP on each 1 TFLOP/s processor at one step each), 1 s slots, lambda = 0.1/s, T0 = 3 s,
    and a latent of E[R] / 1.5, so the downlink at the mean rate sends N = 1 request per slot."""
    seed = S.generate("seed003").data
    doc = seed.model_dump() | {"arrival_rate": 0.1, "threshold_s": 3.0, "slot_s": 1.0, "edge_tflops": 1.0,
                               "device_tflops": 1.0, "encode_tflop": 0.0, "prior_step_tflop": 1.0, "decode_tflop": 0.0,
                               "dec_step_tflop": 1.0, "latent_mbit": seed.mean_rate_mbps / 1.5}
    return S.Data.model_validate(doc | changes)


def test_tandem_formulas_by_hand():
    """Seed 003 eqs. 6-10 at theta = 1 on the tiny case, summed here term by term from the formulas."""
    d = _tiny()
    tandem = S.Tandem(d, S.Service(d, "split", 1, 1))
    rho = 0.1 * (math.e - 1)  # eq. 6: log E e^{theta A} per 1 s slot at lambda = 0.1/s
    assert tandem.log_arrivals(1.0) == pytest.approx(rho, rel=1e-12)
    # eq. 7: the inference server completes floor(v / 2) requests in v slots
    np.testing.assert_allclose(tandem.log_inference(1.0, np.arange(6)), [0, 0, -1, -1, -2, -2])
    assert tandem.log_downlink(1.0) == pytest.approx(-1.0)  # eq. 8: N = 1 every slot

    def g(n):  # eq. 9: sum_{v <= L} e^{-floor(v / 2)} e^{-(L - v)}
        return sum(math.exp(-(v // 2) - (n - v)) for v in range(n + 1))

    assert g(2) == pytest.approx(math.exp(-2) + 2 * math.exp(-1))
    k0 = 3  # T0 = 3 s in 1 s slots
    total = sum(math.exp(rho * tau) * g(tau + k0 - 2) for tau in range(1, 400))  # eq. 10
    inference = sum(math.exp(rho * tau - (tau + k0 - 1) // 2) for tau in range(1, 400))
    downlink = sum(math.exp(rho * tau - (tau + k0 - 1)) for tau in range(1, 400))
    assert math.exp(tandem.log_bound(1.0, k0, "total")) == pytest.approx(total, rel=1e-9)
    assert math.exp(tandem.log_bound(1.0, k0, "inference")) == pytest.approx(inference, rel=1e-9)
    assert math.exp(tandem.log_bound(1.0, k0, "downlink")) == pytest.approx(downlink, rel=1e-12)
    # eq. 12: the referee's theta is no worse than a grid of thetas, and its value is the bound there
    bound, theta = tandem.bound(12.0)
    assert 0 < bound < 0.1 and bound == pytest.approx(math.exp(tandem.log_bound(theta, 12, "total")), rel=1e-12)
    grid = np.linspace(0.05, 0.99, 60) * S._root(lambda th: tandem._room(th, "total"), 1.0)
    assert bound <= min(math.exp(tandem.log_bound(th, 12, "total")) for th in grid) * (1 + 1e-9)


def test_fading_downlink_pmf_by_hand():
    """Eq. 8 with a Rayleigh rate per slot: N >= k exactly when |h|^2 >= (2^{k J / (B Delta)} - 1) / snr."""
    d = _tiny(latent_mbit=10.0, downlink={**_tiny().downlink.model_dump(), "fading": True})  # J / (B Delta) = 1
    svc = S.Service(d, "split", 1, 1)
    snr = d.mean_snr
    pmf = svc.slot_pmf(1.0)
    np.testing.assert_allclose(pmf[:3], [1 - math.exp(-1 / snr), math.exp(-1 / snr) - math.exp(-3 / snr),
                                         math.exp(-3 / snr) - math.exp(-7 / snr)], rtol=1e-12)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
    draws = svc.slot_sample(400_000, 1.0, np.random.default_rng(3))
    np.testing.assert_allclose(np.bincount(draws, minlength=len(pmf))[:4] / len(draws), pmf[:4], atol=3e-3)


def _tandem_slot_by_slot(d: S.Data, svc: S.Service, n: int, seed: int) -> np.ndarray:
    """The slotted tandem the plain way (mean-rate downlink: N fixed), same arrivals as ``simulate_tandem``."""
    rng = np.random.default_rng(seed)
    slot = d.slot_s
    arrive = np.floor(np.cumsum(rng.exponential(1 / d.arrival_rate, size=n)) / slot) * slot
    per_slot = len(svc.slot_pmf(slot)) - 1
    done, free = [], 0.0
    for a in arrive:
        free = max(free, a) + svc.compute
        done.append(free)
    leave, queue, i, u = np.empty(n), deque(), 0, 0
    while i < n or queue:
        if not queue:
            u = max(u, math.ceil(done[i] / slot - 1e-9))
        while i < n and done[i] <= u * slot + 1e-9:
            queue.append(i)
            i += 1
        for _ in range(min(per_slot, len(queue))):
            leave[queue.popleft()] = (u + 1) * slot
        u += 1
    return leave - arrive


@pytest.mark.parametrize("rate", [0.1, 0.002])  # 0.002/s: idle stretches over 1024 slots, which are cut
def test_tandem_simulation_matches_a_slot_by_slot_loop(rate):
    d = _tiny(arrival_rate=rate)
    svc = S.Service(d, "split", 1, 1)
    fast = S.simulate_tandem(d, svc, n=2_500, seed=5, warmup=500)[0]
    np.testing.assert_allclose(fast, _tandem_slot_by_slot(d, svc, 3_000, 5)[500:], atol=1e-9)


def test_fading_makes_service_random():
    d = io.load(PRESETS[1]).data
    svc = S.Service(d, "edge", 10, 4)
    mean, var = svc.moments()
    draws = svc.sample(400_000, np.random.default_rng(1))
    assert var > 0
    assert draws.mean() == pytest.approx(mean, rel=2e-3)
    assert draws.var() == pytest.approx(var, rel=0.05)
    assert svc.mgf(0.5) == pytest.approx(np.exp(0.5 * draws).mean(), rel=5e-3)


@pytest.mark.parametrize("bound,rule", [("single-server", r"load lambda\*E\[T_serv\] = .* >= 1"),
                                        ("tandem", r"inference load lambda\*T_inf = .* >= 1")])
def test_unstable_load_is_reported_not_computed(bound, rule):
    inst = io.load(PRESETS[0])
    inst.data.arrival_rate, inst.data.bound = 5.0, bound
    svc = S.Service(inst.data, "split", 20, 10)
    with pytest.raises(S.Unstable, match=r"load lambda\*E\[T_serv\] = .* >= 1"):
        S.pk_mean_sojourn(inst.data, svc)
    with pytest.raises(S.Unstable, match=rule):
        S.violation_bound(inst.data, svc)
    ev = S.evaluate(inst, S.Solution(mode="split", prior_steps=20, dec_steps=10))
    assert ev.objective is None and not ev.feasible and ev.details["status"] == "unstable"


def test_tandem_downlink_that_cannot_keep_up_is_unstable():
    """Slots too short to carry one image at the mean rate: the edge paradigm's downlink sends nothing."""
    d = _tiny(slot_s=0.1, image_mbit=5.0)
    with pytest.raises(S.Unstable, match=r"the downlink sends E\[N\] = 0 requests per 0.1 s slot"):
        S.Tandem(d, S.Service(d, "edge", 1, 1))


@pytest.mark.parametrize("bound", S.BOUNDS)
def test_bound_is_monotone_in_steps(bound):
    """The frontier search of ``min-bound`` relies on it: more steps never lower the bound."""
    d = io.load(PRESETS[1]).data.model_copy(update={"bound": bound})
    vals = [S.violation_bound(d, S.Service(d, "split", 8, k))[0] for k in range(1, 8)]
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(vals))


def test_quality_floor_is_enforced():
    inst = io.load(PRESETS[0])
    ev = S.evaluate(inst, S.Solution(mode="split", prior_steps=1, dec_steps=1))
    assert not ev.feasible and any("quality" in v for v in ev.violations)


@pytest.mark.parametrize("edit,field,rule", [
    (lambda d: d["downlink"].update(bandwidth_mhz=-1.0), "data.downlink.bandwidth_mhz", "greater than 0"),
    (lambda d: d.update(prior_steps=[9, 3]), "data.prior_steps[0]", "must be <= data.prior_steps[1]"),
    (lambda d: d.update(bound="fast"), "data.bound", "'tandem' or 'single-server'"),
    (lambda d: d.update(slot_s=0), "data.slot_s", "greater than 0"),
    (lambda d: d.update(slot_s=1e-5), "data.slot_s", "must be >= data.threshold_s / 100000 (5e-05)"),
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
    """Without fading the single server's service time is deterministic (M/D/1): its delay distribution is
    known exactly."""
    inst = S.generate("seed003", threshold_s=t0, bound="single-server")
    sol = S.Solution(mode=mode, prior_steps=10, dec_steps=4)
    ev = S.evaluate(inst, sol)
    service = S.Service(inst.data, mode, 10, 4).moments()[0]
    exact = _md1_violation(inst.data.arrival_rate, service, t0)
    tol = 4 * math.sqrt(exact * (1 - exact) / (S.SIM_REQUESTS / 10))  # sojourns are correlated: n/10 effective
    assert ev.details["violation_frequency"] == pytest.approx(exact, abs=tol)
    assert ev.details["violation_frequency"] <= ev.objective
    assert S.evaluate(inst, sol).details == ev.details  # a fixed seed: the referee is deterministic


@pytest.mark.parametrize("bound", S.BOUNDS)
def test_simulated_violation_frequency_is_one_below_the_service_time_and_zero_far_above(bound):
    sol = S.Solution(mode="split", prior_steps=10, dec_steps=4)
    service = S.Service(S.generate("seed003").data, "split", 10, 4).moments()[0]
    below, above = (S.generate("seed003", threshold_s=t0, bound=bound) for t0 in (0.9 * service, 100.0))
    assert S.evaluate(below, sol).details["violation_frequency"] == 1.0
    assert S.evaluate(above, sol).details["violation_frequency"] == 0.0


def test_threshold_option_sets_t0_and_nothing_else():
    base, moved = S.generate("seed003"), S.generate("seed003", threshold_s=2.5)
    assert moved.data.threshold_s == 2.5 and base.data.threshold_s == 5.0
    assert moved.data.model_copy(update={"threshold_s": 5.0}) == base.data
    sol = S.Solution(mode="edge", prior_steps=10, dec_steps=4)
    assert S.evaluate(moved, sol).objective > S.evaluate(base, sol).objective  # a tighter T0 is violated more


@pytest.mark.parametrize("value,rule", [("0", "greater than 0"), ("-1", "greater than 0"), ("nan", "valid number, got 'nan'")])
def test_bad_threshold_option_is_exit_2(cli, tmp_path, value, rule):
    out_file = tmp_path / "g.json"
    code, _, err = cli("generate", "stepsplit", "--option", f"threshold_s={value}", "-o", out_file)
    assert code == 2 and "--option threshold_s must be" in err and rule in err, err
    assert err.count("\n") == 1 and not out_file.exists()


@pytest.mark.parametrize("value", ["fast", "1", "Tandem"])
def test_bad_bound_option_is_exit_2(cli, tmp_path, value):
    out_file = tmp_path / "g.json"
    code, _, err = cli("generate", "stepsplit", "--option", f"bound={value}", "-o", out_file)
    assert code == 2 and "--option bound must be 'tandem' or 'single-server'" in err, err
    assert err.count("\n") == 1 and not out_file.exists()


def _bound_or_inf(d: S.Data, svc: S.Service) -> float:
    try:
        return S.violation_bound(d, svc)[0]
    except S.Unstable:
        return math.inf


def test_methods_optimize_the_selected_bound():
    """``enumerate`` is the minimum of the selected bound over the whole grid (checked point by point here), the
    other methods never beat it, and the two bounds' optima are different decisions on seed003."""
    prob = registry.problem("stepsplit")
    optimum = {}
    for bound in S.BOUNDS:
        inst = S.generate("seed003", size=12, bound=bound)
        d = inst.data
        best = min(_bound_or_inf(d, S.Service(d, mode, lp, ld))
                   for mode in S.MODES for lp in range(1, 13) for ld in range(1, 13)
                   if S.quality(d, lp, ld) >= d.quality.floor - 1e-9)
        exact = prob.method("enumerate").run(inst)
        assert exact.status == "optimal" and exact.gap == 0 and exact.objective == pytest.approx(best, rel=1e-12)
        for name in ("min-bound", "edge-only", "device-only"):
            assert prob.method(name).run(inst).objective >= exact.objective
        optimum[bound] = S.Solution(**exact.solution)
    for bound, other in (("tandem", "single-server"), ("single-server", "tandem")):
        inst = S.generate("seed003", size=12, bound=bound)
        assert S.evaluate(inst, optimum[bound]).objective < S.evaluate(inst, optimum[other]).objective
