"""``offload``: KKT splits vs CVXPY and SLSQP, search screening, referee checks, SCIP optimum vs heuristics, FLOPs, input."""
from __future__ import annotations

import json

import cvxpy as cp
import numpy as np
import pytest
from scipy.optimize import minimize

from conftest import INSTANCES
from edgeopt import io, registry
from edgeopt.heuristics import offload as H
from edgeopt.problems import offload as P
from edgeopt.run import run_one

PAPER = INSTANCES / "offload" / "paper-n15-m3-s0.json"


@pytest.mark.parametrize("seed", range(5))
def test_closed_form_split_equals_cvxpy(seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 500.0, size=int(rng.integers(2, 12)))
    total = float(rng.uniform(50, 900))
    v = cp.Variable(len(a), pos=True)
    prob = cp.Problem(cp.Minimize(cp.sum(cp.multiply(a, cp.inv_pos(v)))), [cp.sum(v) <= total])
    prob.solve()
    closed = P.kkt_split(a, total)
    assert closed == pytest.approx(v.value, rel=1e-3)  # the interior-point solve is accurate to ~1e-4
    assert np.sum(a / closed) == pytest.approx(prob.value, rel=1e-6)
    assert np.sum(a / closed) == pytest.approx(np.sqrt(a).sum() ** 2 / total, rel=1e-12)


def _edge_radio(preset, size, seed, energy_per_j=None):
    """One edge's radio problem of a generated instance: the users the generator puts first, edge 0."""
    d = P.generate(preset, size=size, seed=seed, edges=2, energy_per_j=energy_per_j).data
    e, w = d.edges[0], d.weights
    return d.snr_per_w_mhz[:, 0], d.video_mbit, e.bandwidth_mhz, e.power_w, d.p_max_w, w.delay_per_s, w.energy_per_j


def _radio_cost(b, p, gamma, size, w2, w3):
    return np.sum((w2 + w3 * p) * size / P.rate_mbps(b, p, gamma))


def _slsqp(gamma, size, B, P_, pmax, w2, w3):
    """Reference: SciPy's SLSQP from the equal split (what ts-mito used before the Newton-KKT solver)."""
    k = len(size)
    z0 = np.r_[np.full(k, 1.0 / k), np.full(k, min(P_ / k, pmax) / pmax)]
    scale = _radio_cost(B * z0[:k], pmax * z0[k:], gamma, size, w2, w3)
    res = minimize(lambda z: _radio_cost(B * z[:k], pmax * z[k:], gamma, size, w2, w3) / scale, z0, method="SLSQP",
                   bounds=[(1e-6, 1.0)] * (2 * k), options={"maxiter": 500, "ftol": 1e-14},
                   constraints=[{"type": "ineq", "fun": lambda z: 1.0 - z[:k].sum()},
                                {"type": "ineq", "fun": lambda z: P_ / pmax - z[k:].sum()}])
    return _radio_cost(B * res.x[:k], pmax * res.x[k:], gamma, size, w2, w3)


@pytest.mark.parametrize("preset,size,seed,energy", [
    ("small", 3, 0, None),     # few users: every one at p_max, power budget slack
    ("paper", 12, 1, None),    # budget binds, some users capped
    ("paper", 30, 2, None),    # budget binds, nobody capped
    ("paper", 12, 3, 1.0),     # heavy energy weight: p S / r nonconvex, budget slack
])
def test_radio_newton_matches_slsqp(preset, size, seed, energy):
    """The Newton-KKT radio allocation reaches the optimum a generic solver (SLSQP) finds, feasibly."""
    args = _edge_radio(preset, size, seed, energy)
    gamma, size_, B, P_, pmax, w2, w3 = args
    cost, b, p, lam, mu = H.radio_kkt(*args)
    assert cost == pytest.approx(_radio_cost(b, p, gamma, size_, w2, w3), rel=1e-12)  # its cost is the referee's
    assert b.sum() <= B * (1 + 1e-12) and p.sum() <= P_ * (1 + 1e-12) and np.all(p <= pmax) and np.all(p > 0)
    assert cost == pytest.approx(_slsqp(*args), rel=1e-7)


@pytest.mark.parametrize("preset,size,seed", [("small", 3, 0), ("paper", 12, 1), ("paper", 30, 2)])
def test_radio_newton_satisfies_the_kkt_conditions(preset, size, seed):
    """Bandwidth and power are priced by lambda and mu: -df/db = lambda, -df/dp = mu unless capped (then >= mu)."""
    gamma, size_, B, P_, pmax, w2, w3 = args = _edge_radio(preset, size, seed)
    _, b, p, lam, mu = H.radio_kkt(*args)

    def f(bb, pp):
        return (w2 + w3 * pp) * size_ / P.rate_mbps(bb, pp, gamma)

    hb, hp = 1e-6 * b, 1e-6 * p  # central differences of the referee's per-user cost
    dfdb = (f(b + hb, p) - f(b - hb, p)) / (2 * hb)
    dfdp = (f(b, p + hp) - f(b, p - hp)) / (2 * hp)
    capped = p >= pmax * (1 - 1e-12)
    assert b.sum() == pytest.approx(B, rel=1e-12) and lam > 0
    np.testing.assert_allclose(-dfdb, lam, rtol=1e-6)
    np.testing.assert_allclose(-dfdp[~capped], mu, rtol=1e-6)
    assert np.all(-dfdp[capped] >= mu * (1 - 1e-6))
    assert mu >= 0 and mu * (P_ - p.sum()) == pytest.approx(0.0, abs=1e-9 * mu * P_)


def test_join_price_is_the_lagrangian_minimum():
    """The Lambert-W price of adding a user is min_{b,p} w2 S / r + lam b + mu p, attained at the (b, p) it returns."""
    rng = np.random.default_rng(0)
    for _ in range(5):
        g, size = 10 ** rng.uniform(1, 7), rng.uniform(200, 750)
        lam, mu = 10 ** rng.uniform(-4, -2), 10 ** rng.uniform(-3, 0)
        price, b, p = (float(a[0]) for a in H._join_price(np.array([g]), size, np.array([lam]), np.array([mu]), 0.01))

        def lagrangian(z):
            b, p = np.exp(z)
            return 0.01 * size / P.rate_mbps(b, p, g) + lam * b + mu * p

        best = min(minimize(lagrangian, z0, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14}).fun
                   for z0 in ([0.0, -2.0], [-4.0, -6.0], [3.0, 0.0]))
        assert price <= best * (1 + 1e-12)
        assert price == pytest.approx(best, rel=1e-6)
        assert lagrangian(np.log([b, p])) == pytest.approx(price, rel=1e-12)


def test_screened_search_chooses_what_full_search_chooses(monkeypatch):
    """Skipping edge moves whose radio bound cannot win must not change ts-mito's answer."""
    inst = P.generate("paper", size=40, seed=1)
    screened = H.ts_mito(inst).solution
    monkeypatch.setattr(H._Stage2, "leave_bound", lambda self, n: np.inf)  # every edge move re-solved
    assert H.ts_mito(inst).solution == screened


def test_ts_mito_is_deterministic_and_returns_its_start_at_a_zero_time_limit():
    """Same answer twice; a time limit that hits at once still yields a feasible, truthfully claimed answer."""
    inst = io.load(PAPER)
    first, again = run_one(inst, "ts-mito"), run_one(inst, "ts-mito")
    assert first.solution == again.solution
    cut = run_one(inst, "ts-mito", time_limit=0.0)
    assert cut.feasible and cut.claimed == pytest.approx(cut.objective, rel=1e-9)
    assert cut.objective <= first.objective


@pytest.mark.slow
def test_every_method_passes_the_referee_at_paper_scale():
    inst = io.load(PAPER)
    prob = registry.problem("offload")
    for m in prob.select(["heuristic", "baseline"], inst):
        r = run_one(inst, m.name)
        assert r.feasible, (m.name, r.violations)
        assert r.claimed == pytest.approx(r.objective, rel=1e-9), m.name
        assert len(r.details["utility"]) == 15 and r.details["delay_total_s"] > 0


def test_minlp_bound_and_optimum_on_a_tiny_case():
    inst = P.generate("small", size=2, seed=5, edges=2)
    results = {m.name: run_one(inst, m.name, time_limit=60) for m in registry.problem("offload").select(["exact", "heuristic", "baseline"], inst)}
    e = results.pop("minlp")
    assert e.status == "optimal" and e.feasible
    assert e.bound >= e.objective - 1e-6 * abs(e.objective)
    for name, r in results.items():
        assert r.feasible, name
        assert e.objective >= r.objective - 1e-6 * abs(r.objective), name


def test_tradeoff_optimum_is_interior():
    # the tradeoff preset exists so that the optimum is not o = o_max, c = c_min for every user
    inst = P.generate("tradeoff", size=2, seed=3, edges=2)
    s = inst.data.steps
    e = run_one(inst, "minlp", time_limit=60)
    assert e.status == "optimal" and e.feasible
    o, c = np.array(e.solution["steps"]), np.array(e.solution["cloud_steps"])
    assert np.any((o < s.o_max) | ((c > s.c_min) & (c < o))), (o, c)
    pinned = run_one(inst, "edge-heavy")  # c = c_min for all: strictly worse here
    assert pinned.objective < e.objective - 1e-6 * abs(e.objective)


def test_referee_reports_every_resource_violation():
    inst = io.load(INSTANCES / "offload" / "small" / "small-n3-m2-s2.json")
    d = inst.data
    good = P.equal_split(inst, [0, 0, 1], [10, 10, 8], [2, 2, 8])
    ev = P.evaluate(inst, good)
    assert ev.feasible, ev.violations
    assert ev.details["delay_edge_s"][2] == 0.0  # q = 0: no edge stage, no edge SMs needed
    bad = good.model_copy(update={
        "cloud_sms": [d.cloud.sms] * 3, "bandwidth_mhz": [15.0, 15.0, 1.0], "power_w": [3.0, 1.0, 1.0],
        "cloud_steps": [2, 11, 8], "steps": [10, 10, 30]})
    text = " | ".join(P.evaluate(inst, bad).violations)
    for needle in ("cloud SMs", "bandwidth_mhz 30 > 20", "power_w 3 > p_max_w 2", "cloud_steps 11 > steps 10",
                   "steps 30 outside", "cloud_steps 11 outside"):
        assert needle in text, needle
    zero = good.model_copy(update={"bandwidth_mhz": [0.0, 10.0, 20.0], "edge_sms": [0.0, 71.0, 0.0]})
    ev = P.evaluate(inst, zero)
    assert ev.objective is None and not ev.feasible
    assert any("bandwidth_mhz 0 must be > 0" in v for v in ev.violations)
    assert any("edge_sms 0 must be > 0" in v for v in ev.violations)


def test_malformed_solution_names_the_field():
    inst = io.load(INSTANCES / "offload" / "small" / "small-n2-m2-s1.json")
    sol = P.equal_split(inst, [0, 1], [10, 10], [1, 1]).model_copy(update={"edge": [0, 5]})
    with pytest.raises(P.InputError, match=r"solution.edge\[1\]"):
        P.evaluate(inst, sol)


def test_step_flops_follow_the_block_formula():
    # one spatial + one temporal block on a 2x3x3 grid, d = 4, no guidance: counted by hand
    tokens, d = 18, 4
    spatial = 24 * tokens * d * d + 4 * tokens * 9 * d
    temporal = 24 * tokens * d * d + 4 * tokens * 2 * d
    assert P.dit_step_tflops(2, 3, 3, 4, 2, cfg=False) * 1e12 == pytest.approx(spatial + temporal)
    inst = io.load(PAPER)
    assert inst.meta["flops"]["cloud_tflops_per_step"] == pytest.approx(inst.data.cloud.tflops_per_step)
    assert inst.data.cloud.tflops_per_step > max(e.tflops_per_step for e in inst.data.edges)


def _broken(tmp_path, edit):
    doc = json.loads(PAPER.read_text())
    edit(doc["data"])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("edit,field,rule", [
    (lambda d: d["edges"][1].update(bandwidth_mhz=-5.0), "data.edges[1].bandwidth_mhz", "greater than 0"),
    (lambda d: d["steps"].update(c_min=85, c_max=90), "data.steps.c_min", "must be <= o_max"),
    (lambda d: d["alignment"][3].__setitem__(2, 1.2), "data.alignment[3][2]", "must be in [0, 1]"),
    (lambda d: d["gain"].pop(), "data.gain", "must have shape"),
    (lambda d: d.update(fibre="video"), "data.fibre", "'crossing' or 'always-latent'"),
])
def test_bad_input_exits_2(cli, tmp_path, edit, field, rule):
    path = _broken(tmp_path, edit)
    out_file = tmp_path / "out.json"
    code, out, err = cli("solve", path, "-m", "equal", "-o", out_file)
    assert code == 2
    assert field in err and rule in err, err
    assert "Traceback" not in out + err
    assert not out_file.exists()


def _two_users(fibre: str) -> P.Instance:
    """One edge; user 0 splits its steps (o = 4, c = 1), user 1 runs them all on the cloud (o = c = 2)."""
    return P.Instance(name="hand", data=P.Data.model_validate({
        "weights": {"utility": 10.0, "delay_per_s": 1.0, "energy_per_j": 0.1},
        "steps": {"o_min": 1, "o_max": 4, "c_min": 1, "c_max": 2}, "tflops_per_sm": 1.0, "latent_mbit": 500.0,
        "noise_w_per_hz": 1e-20, "p_max_w": 1.0,
        "cloud": {"name": "cs", "model": "full", "tflops_per_step": 10.0, "sms": 30.0, "j_per_tflop": 0.5},
        "edges": [{"name": "es", "model": "light", "tflops_per_step": 5.0, "sms": 15.0, "j_per_tflop": 1.0,
                   "fibre_mbps": 100.0, "bandwidth_mhz": 20.0, "power_w": 2.0, "quality_growth": float(np.log(2))}],
        "video_mbit": [200.0, 300.0], "gain": [[3e-13], [3e-13]], "alignment": [[0.5], [0.5]], "fibre": fibre}))


@pytest.mark.parametrize("fibre,fibre_s,delay,objective", [
    ("crossing", [5.0, 3.0], [17.0, 19.0], -33.0625),
    ("always-latent", [5.0, 5.0], [17.0, 21.0], -35.0625),
])
def test_fibre_carries_what_crosses_by_hand(fibre, fibre_s, delay, objective):
    """Seed 000: the edge receives the latent; a generation finished on the cloud sends its video instead.

    gamma = g / (N0 1e6) = 3e-13 / 1e-14 = 30, so b = 10 MHz, p = 1 W give r = 10 log2(1 + 30 / 10) = 20 Mbit/s.
    User 0 (split): cloud 1 x 10 / 10 SMs = 1 s, fibre latent 500 / 100 = 5 s, edge 3 x 5 / 15 SMs = 1 s,
      download 200 / 20 = 10 s: T = 17 s; E = 0.5 x 10 + 1 x 3 x 5 + 1 W x 10 s = 30 J; U = 0.5 (1 - 2^-4)
      = 0.46875; value 4.6875 - 17 - 3 = -15.3125 under both readings.
    User 1 (all on the cloud): cloud 2 x 10 / 20 SMs = 1 s, no edge stage, download 300 / 20 = 15 s;
      crossing: its video crosses, 300 / 100 = 3 s, T = 19 s; always-latent: the latent, 5 s, T = 21 s;
      E = 0.5 x 2 x 10 + 1 W x 15 s = 25 J; U = 0.5 (1 - 2^-2) = 0.375; value 3.75 - 19 - 2.5 = -17.75
      (crossing) or -19.75 (always-latent). Totals -33.0625 and -35.0625.
    """
    sol = P.Solution(edge=[0, 0], steps=[4, 2], cloud_steps=[1, 2], cloud_sms=[10.0, 20.0], edge_sms=[15.0, 0.0],
                     bandwidth_mhz=[10.0, 10.0], power_w=[1.0, 1.0])
    ev = P.evaluate(_two_users(fibre), sol)
    assert ev.feasible, ev.violations
    assert ev.details["delay_fibre_s"] == pytest.approx(fibre_s, rel=1e-12)
    assert ev.details["delay_s"] == pytest.approx(delay, rel=1e-12)
    assert ev.details["energy_j"] == pytest.approx([30.0, 25.0], rel=1e-12)
    assert ev.objective == pytest.approx(objective, rel=1e-12)


def _slow_fibre(fibre: str) -> P.Instance:
    """tradeoff n2 seed 0 on a 50 Mbit/s fibre: the latent takes 11.7 s, user 0's 239 Mbit video 4.8 s."""
    doc = io.instance_doc(P.generate("tradeoff", size=2, seed=0, edges=2, fibre=fibre))
    for e in doc["data"]["edges"]:
        e["fibre_mbps"] = 50.0
    return io.parse_instance(doc)


def test_minlp_bound_and_methods_charge_the_video_of_an_all_cloud_user():
    """Under crossing the proven optimum runs user 0 all on the cloud and is charged its video; the
    Lagrangian bound stays above it, every method is feasible and below it, and always-latent's optimum is lower."""
    inst = _slow_fibre("crossing")
    e = run_one(inst, "minlp", time_limit=60)
    assert e.status == "optimal" and e.feasible and e.bound == pytest.approx(e.objective, rel=1e-6)
    o, c = np.array(e.solution["steps"]), np.array(e.solution["cloud_steps"])
    whole = np.flatnonzero(o == c)
    assert len(whole) > 0
    assert np.array(e.details["delay_fibre_s"])[whole] == pytest.approx(inst.data.video_mbit[whole] / 50.0)
    assert run_one(inst, "lagrange").bound >= e.objective - 1e-6 * abs(e.objective)
    for name in ("ts-mito", "equal", "proportional", "cloud-heavy", "edge-heavy"):
        r = run_one(inst, name)
        assert r.feasible and r.objective <= e.objective + 1e-6 * abs(e.objective), name
    ts = run_one(inst, "ts-mito").solution
    assert any(a == b for a, b in zip(ts["steps"], ts["cloud_steps"]))  # its joint move finds the all-cloud plan
    latent = run_one(_slow_fibre("always-latent"), "minlp", time_limit=60)
    assert latent.status == "optimal" and latent.objective < e.objective - 1.0


def test_fibre_option_and_old_files():
    """A file without ``fibre`` takes the seed's reading; the option writes the other and names the instance."""
    assert "fibre" not in json.loads(PAPER.read_text())["data"] and io.load(PAPER).data.fibre == "crossing"
    inst = P.generate("small", size=2, seed=1, fibre="always-latent")
    assert inst.data.fibre == "always-latent" and inst.name.endswith("-always-latent")
    assert inst.meta["options"]["fibre"] == "always-latent"
    assert P.generate("small", size=2, seed=1).data.fibre == "crossing"


def test_bad_fibre_option_is_exit_2(cli, tmp_path):
    out_file = tmp_path / "out.json"
    code, _, err = cli("generate", "offload", "--option", "fibre=video", "-o", out_file)
    assert code == 2 and "--option fibre must be 'crossing' or 'always-latent'" in err, err
    assert not out_file.exists()
