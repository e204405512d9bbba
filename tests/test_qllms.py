"""qllms: GAP optima, stable matching against the ``matching`` library, SVT, the referee's charging, bad input."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from matching.games import HospitalResident

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

from conftest import INSTANCES, shipped
from edgeopt import io
from edgeopt.compare import run_one
from edgeopt.heuristics import qllms as H
from edgeopt.problems import qllms as P

DATA = Path(__file__).parent / "data" / "qllms"
GAP = INSTANCES / "qllms" / "gap"


def _optima() -> list:
    rows = list(csv.DictReader((GAP / "optima.csv").read_text().splitlines()))
    return [pytest.param(r["file"], float(r["optimum_min"]), id=r["instance"],
                         marks=[pytest.mark.slow] if int(r["agents"]) > 5 else []) for r in rows]


# --- exact: OR-Library GAP --------------------------------------------------------------------------
def test_optima_table_covers_every_shipped_gap_file():
    files = {r["file"] for r in csv.DictReader(open(GAP / "optima.csv"))}
    assert files == {p.name for p in shipped("qllms", "gap")} and len(files) == 60


@pytest.mark.parametrize("file,optimum", _optima())
def test_milp_reproduces_gap_optimum(file, optimum):
    r = run_one(io.load(GAP / file), "milp", time_limit=60)
    assert r.status == "optimal" and r.feasible
    assert r.objective == pytest.approx(optimum, abs=1e-6)


def test_gap_importer_through_the_cli(cli, tmp_path):
    out = tmp_path / "c0515_1.json"
    code, _, err = cli("import", "gap", DATA / "c0515_1.txt", "-o", out)
    assert code == 0, err
    mine, ship = io.load(out), io.load(GAP / "c0515_1.json.gz")
    assert mine.data.model_dump(mode="json") == ship.data.model_dump(mode="json")
    d = mine.data
    assert d.shape == (15, 5, 1) and d.cost[0, 0, 0] == 17 and d.lat[0, 0, 0] == 8 and d.cap[0] == 36


def test_gap_importer_rejects_a_truncated_file(cli, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text((DATA / "c0515_1.txt").read_text().rsplit(maxsplit=1)[0])
    code, _, err = cli("import", "gap", bad, "-o", tmp_path / "out.json")
    assert code == 2 and "2 + 2*m*n + m" in err and not (tmp_path / "out.json").exists()


# --- stable matching --------------------------------------------------------------------------------
def _engine(resident_prefs: dict, hospital_prefs: dict, capacities: dict) -> dict:
    """Run ``deferred_acceptance`` on an HR instance given as the matching library's dictionaries."""
    res, hos = list(resident_prefs), list(hospital_prefs)
    ri, hi = {r: k for k, r in enumerate(res)}, {h: k for k, h in enumerate(hos)}
    M, N = len(res), len(hos)
    prefs = np.full((M, N), -1)
    for r, lst in resident_prefs.items():
        ok = [hi[h] for h in lst if r in hospital_prefs[h]]
        prefs[ri[r], :len(ok)] = ok
    rank = np.tile(np.arange(M)[:, None] + M, (1, N))  # unranked residents last (never proposed anyway)
    for h, lst in hospital_prefs.items():
        for k, r in enumerate(lst):
            rank[ri[r], hi[h]] = k
    cap = np.array([capacities[h] for h in hos], dtype=float)
    match = H.deferred_acceptance(prefs, rank, np.ones((M, N)), cap)
    return {h: sorted(res[i] for i in np.nonzero(match == hi[h])[0]) for h in hos}


def _library(resident_prefs, hospital_prefs, capacities) -> dict:
    game = HospitalResident.create_from_dictionaries(resident_prefs, hospital_prefs, capacities, clean=True)
    return {h.name: sorted(r.name for r in rs) for h, rs in game.solve(optimal="resident").items()}


def _examples():
    doc = json.loads((DATA / "matching_lib_examples.json").read_text())
    return [pytest.param(x, id=x["id"]) for x in doc["instances"]]


@pytest.mark.parametrize("ex", _examples())
def test_matching_library_examples_reproduce(ex):
    if ex["type"] == "SM":
        caps = {r: 1 for r in ex["reviewer_prefs"]}
        got = _engine(ex["suitor_prefs"], ex["reviewer_prefs"], caps)
        assert {s: h for h, ss in got.items() for s in ss} == ex["expected"]["suitor_optimal"]
    else:
        got = _engine(ex["resident_prefs"], ex["hospital_prefs"], ex["capacities"])
        want = {h: sorted(rs) for h, rs in ex["expected"]["resident_optimal"].items()}
        assert {h: rs for h, rs in got.items() if rs or h in want} == want


def test_issue_159_equals_the_library():
    doc = json.loads((DATA / "issue_159.json").read_text())
    res = {r: [h for h in lst] for r, lst in doc["residents"].items()}
    hos = {h: [r for r in lst] for h, lst in doc["hospitals"].items()}
    # the library's clean=True drops one-sided entries; do the same before either side runs
    res = {r: [h for h in lst if str(h) in hos and int(r) in hos[str(h)]] for r, lst in res.items()}
    res = {r: [str(h) for h in lst] for r, lst in res.items()}
    hos = {h: [str(r) for r in lst if str(r) in res and h in res[str(r)]] for h, lst in hos.items()}
    caps = {h: 1 for h in hos}
    mine, lib = _engine(res, hos, caps), _library(res, hos, caps)  # the library omits empty players
    assert {h: rs for h, rs in mine.items() if rs} == {h: rs for h, rs in lib.items() if rs}
    assert sum(map(len, mine.values())) > 30


@pytest.mark.parametrize("seed", range(5))
def test_engine_equals_hospital_resident_on_random_instances(seed):
    rng = np.random.default_rng(seed)
    M, N = 60, 7
    res = {f"r{i}": [f"h{j}" for j in rng.permutation(N)[: rng.integers(1, N + 1)]] for i in range(M)}
    hos = {f"h{j}": [r for r in rng.permutation(list(res)) if f"h{j}" in res[r]] for j in range(N)}
    caps = {h: int(rng.integers(1, 8)) for h in hos}
    assert _engine(res, hos, caps) == _library(res, hos, caps)


def _unit_instance(seed: int) -> P.Instance:
    """Unit task sizes (lat = 1), integer quotas (gpus, H = 1), random costs and some inadmissible pairs."""
    rng = np.random.default_rng(seed)
    M, N, Q = 40, 5, 2
    ppl = rng.uniform(1, 3, size=(M, Q))
    return P.Instance(name=f"unit{seed}", data=P.Data(
        horizon_s=1.0,
        tasks=[P.Task(name=f"t{i}", model="m", in_tokens=1, out_tokens=1, slo_lat=float(rng.uniform(1, 9)),
                      slo_ppl=2.0, cloud=100.0) for i in range(M)],
        servers=[P.Server(name=f"s{j}", gpus=int(rng.integers(1, 8)), mem_gb=10.0, price=1.0) for j in range(N)],
        quants=[P.Quant(name="fp16", bits=16), P.Quant(name="int4", bits=4)],
        lat=np.ones((M, N, Q)), ppl=ppl, need=np.ones((M, Q)),
        cost=np.round(rng.uniform(1, 10, size=(M, N, Q)), 1)))


def _hr_from_data(inst: P.Instance):
    """The HR game the spec defines, built here from the data (not from the heuristic's own tables)."""
    d = inst.data
    M, N, Q = d.shape
    adm = (d.lat <= d.slo_lat[:, None, None]) & (d.ppl <= d.slo_ppl[:, None])[:, None, :] & d.fits
    best = np.where(adm, d.cost, np.inf).min(axis=2)
    res = {f"t{i}": [f"s{j}" for j in sorted(range(N), key=lambda j: (best[i, j], j)) if np.isfinite(best[i, j])]
           for i in range(M)}
    order = sorted(range(M), key=lambda i: (1.0 / d.slo_lat[i], i))  # est_lat / L_i with est_lat = 1
    hos = {f"s{j}": [f"t{i}" for i in order if f"s{j}" in res[f"t{i}"]] for j in range(N)}
    return res, hos, {f"s{j}": d.servers[j].gpus for j in range(N)}


@pytest.mark.parametrize("seed", range(4))
def test_daa_equals_resident_optimal_matching_with_unit_sizes(seed):
    inst = _unit_instance(seed)
    sol = H.daa(inst).solution
    got = {f"s{j}": sorted(f"t{i}" for i in np.nonzero(sol.server == j)[0]) for j in range(inst.data.shape[1])}
    assert got == _library(*_hr_from_data(inst))
    assert H.blocking_pairs(inst, sol) == []
    assert P.evaluate(inst, sol).feasible


def test_blocking_pairs_finds_what_a_bad_plan_leaves():
    inst = _unit_instance(0)
    sol = H.daa(inst).solution
    M = inst.data.shape[0]
    assert len(H.blocking_pairs(inst, P.Solution(server=np.full(M, -1), quant=np.full(M, -1)))) > 0
    moved = next(i for i in range(M) if sol.server[i] >= 0)  # send a matched task to the cloud
    server, quant = sol.server.copy(), sol.quant.copy()
    server[moved], quant[moved] = -1, -1
    assert (moved, int(sol.server[moved])) in H.blocking_pairs(inst, P.Solution(server=server, quant=quant))


def test_daa_with_variable_sizes_keeps_every_server_within_its_estimate():
    inst = P.generate("qllms", size=60, seed=5, observe=0.5)
    est = H.estimate(inst)
    sol = H.daa(inst).solution
    pref = H.preferences(inst, est)
    for j in range(inst.data.shape[1]):
        held = np.nonzero(sol.server == j)[0]
        assert pref.size[held, j].sum() <= pref.cap[j] * (1 + 1e-9)
        assert all(est.aqs[i, j, sol.quant[i]] for i in held)


# --- completion --------------------------------------------------------------------------------------
def _low_rank(seed: int, n1: int, n2: int, r: int, p: float):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n1, r)) @ rng.standard_normal((r, n2))
    seen = rng.random(A.shape) < p
    return A, seen, np.where(seen, A, np.nan)


def test_svt_recovers_a_low_rank_matrix_from_30_percent():
    A, seen, obs = _low_rank(0, 100, 80, 3, 0.3)
    X = H.svt(obs)  # defaults: tau = 5 sqrt(n1 n2), delta = 1.2 / p, tol 1e-4, 500 iterations
    err = np.linalg.norm((X - A)[~seen]) / np.linalg.norm(A[~seen])
    assert err < 0.03, err  # stated: relative Frobenius error on the unseen entries below 3 %


@pytest.mark.parametrize("shape,rank,p", [((100, 80), 3, 0.3), ((60, 400), 4, 0.4)], ids=["tall", "wide"])
def test_svt_stops_on_its_own_well_before_its_iteration_cap_on_exact_low_rank_data(shape, rank, p):
    """On noise-free low-rank data SVT ends by its stopping rules, not by running out of iterations."""
    A, seen, obs = _low_rank(0, *shape, rank, p)
    X = H.svt(obs)  # default cap: 500 iterations
    np.testing.assert_array_equal(H.svt(obs, max_iter=250), X)  # same answer under half the cap: it stopped sooner
    err = np.linalg.norm((X - A)[~seen]) / np.linalg.norm(A[~seen])
    assert err < 0.03, err


def test_svt_approaches_nuclear_norm_minimization_as_tau_grows():
    A, seen, obs = _low_rank(1, 20, 15, 2, 0.6)
    N = H.nnm(obs)
    dist = [np.linalg.norm(H.svt(obs, tau=t, tol=1e-7, max_iter=3000) - N) / np.linalg.norm(N) for t in (20.0, 2000.0)]
    assert dist[1] < dist[0] and dist[1] < 0.05, dist


def test_estimate_keeps_measurements_and_completes_the_rest():
    inst = P.generate("qllms", size=80, seed=2, observe=0.5)
    d, est = inst.data, H.estimate(inst)
    obs = d.observed()
    seen = np.isfinite(obs.lat)
    assert np.allclose(est.lat[seen], d.lat[seen]) and np.isfinite(est.lat[d.fits]).all()
    unseen = np.isnan(obs.lat) & d.fits
    rel = np.abs(est.lat[unseen] - d.lat[unseen]) / d.lat[unseen]
    assert np.median(rel) < 0.15, np.median(rel)


def test_fancyimpute_completers_when_installed():
    pytest.importorskip("fancyimpute")
    A, seen, obs = _low_rank(0, 100, 80, 3, 0.5)
    for name in ("softimpute", "iterativesvd"):
        X = H.complete(obs, name)
        assert np.linalg.norm((X - A)[~seen]) / np.linalg.norm(A[~seen]) < 0.5, name


# --- the referee -------------------------------------------------------------------------------------
def _tiny(full: bool) -> P.Instance:
    """3 tasks, one server of 10 GPU-seconds, one level; task 1's true latency breaks its SLO."""
    return P.Instance(name="tiny", data=P.Data(
        horizon_s=10.0,
        tasks=[P.Task(name=f"t{i}", model="m", in_tokens=1, out_tokens=1, slo_lat=5.0, slo_ppl=10.0, cloud=1.0)
               for i in range(3)],
        servers=[P.Server(name="gpu", gpus=1, mem_gb=10.0, price=3600.0)],  # $1 per GPU-second
        quants=[P.Quant(name="fp16", bits=16)],
        lat=[[[4.0]], [[6.0]], [[3.0]]], ppl=[[5.0], [5.0], [5.0]], need=[[1.0], [1.0], [1.0]],
        seen_lat=None if full else [[[True]], [[False]], [[True]]]))


def test_referee_charges_wrong_estimates_honestly():
    inst = _tiny(full=False)
    sol = P.Solution(server=[0, 0, 0], quant=[0, 0, 0], order=[1, 0, 2])
    ev = P.evaluate(inst, sol)
    # order 1, 0, 2: task 1 runs (6 s, breaks its SLO: edge 6 + cloud 1), task 0 fits (4 s, total 10),
    # task 2 is beyond capacity (cloud 1)
    assert ev.feasible and ev.objective == pytest.approx(6 + 1 + 4 + 1)
    assert ev.details["tcr"] == pytest.approx(1 / 3)
    assert ev.details["failed_slo"] == 1 and ev.details["overflowed"] == 1
    ev2 = P.evaluate(inst, P.Solution(server=[0, 0, 0], quant=[0, 0, 0]))  # index order: 0, 1 fit; 2 overflows
    assert ev2.objective == pytest.approx(4 + 6 + 1 + 1)


def test_with_full_information_mistakes_are_infeasible():
    inst = _tiny(full=True)
    ev = P.evaluate(inst, P.Solution(server=[0, 0, 0], quant=[0, 0, 0]))
    assert not ev.feasible
    assert any("latency 6 s > SLO 5 s" in v for v in ev.violations)
    assert any("capacity" in v for v in ev.violations)
    ok = P.evaluate(inst, P.Solution(server=[0, -1, 0], quant=[0, -1, 0]))
    assert ok.feasible and ok.objective == pytest.approx(4 + 1 + 3) and ok.details["tcr"] == pytest.approx(2 / 3)


def test_a_malformed_solution_names_the_field():
    inst = _tiny(full=True)
    with pytest.raises(P.InputError, match="solution.quant"):
        P.evaluate(inst, P.Solution(server=[0, -1, 0], quant=[0, 0, 0]))
    with pytest.raises(P.InputError, match="solution.order"):
        P.evaluate(inst, P.Solution(server=[0, -1, 0], quant=[0, -1, 0], order=[0, 0, 1]))


def test_generator_records_its_options_and_rejects_bad_ones():
    inst = P.generate("hetero", size=30, seed=4, observe=0.4)
    assert inst.meta["options"]["observe"] == 0.4 and inst.data.shape == (30, 8, 4)
    assert 0.3 < inst.data.seen_lat.mean() < 0.5
    with pytest.raises(P.InputError, match="observe"):
        P.generate("qllms", size=10, observe=0.1)


# --- bad input through the CLI -----------------------------------------------------------------------
@pytest.fixture
def good_doc():
    return io.instance_doc(P.generate("qllms", size=6, seed=1, observe=0.5))


def _bad(tmp_path, doc, cli):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    out = tmp_path / "out.json"
    code, _, err = cli("solve", path, "-m", "daa", "-o", out)
    assert code == 2 and "Traceback" not in err and not out.exists()
    return err


def test_mask_shape_mismatch_exits_2(cli, tmp_path, good_doc):
    good_doc["data"]["seen_lat"] = [row[:-1] for row in good_doc["data"]["seen_lat"]]
    err = _bad(tmp_path, good_doc, cli)
    assert "data.seen_lat" in err and "must have shape (tasks, servers, quants)" in err


def test_nonpositive_slo_exits_2(cli, tmp_path, good_doc):
    good_doc["data"]["tasks"][2]["slo_lat"] = 0
    err = _bad(tmp_path, good_doc, cli)
    assert "data.tasks[2].slo_lat" in err and "greater than 0" in err


def test_quant_level_without_memory_figure_exits_2(cli, tmp_path, good_doc):
    good_doc["data"]["need"] = [row[:-1] for row in good_doc["data"]["need"]]
    err = _bad(tmp_path, good_doc, cli)
    assert "data.need" in err and "no memory figure for quants[3] (int3)" in err


def test_null_memory_where_latency_is_given_exits_2(cli, tmp_path, good_doc):
    good_doc["data"]["need"][1][0] = None
    err = _bad(tmp_path, good_doc, cli)
    assert "data.need[1][0]" in err and "no memory figure" in err
