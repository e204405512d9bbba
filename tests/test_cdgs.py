"""cdgs: referee vs hand values and brute force, CSTP's mechanism properties, the vectorized greedy,
committed dishes, VCG, generator presets, and bad input through the CLI."""
from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import INSTANCES
from edgeopt import io
from edgeopt.heuristics.cdgs import EXPLORATIONS, PAYMENTS, cgsc, cgsc_cstp, cstp, exploration_bonus, greedy
from edgeopt.model import InputError
from edgeopt.problems import cdgs
from edgeopt.problems.cdgs import Data, Group, Instance, Solution, evaluate
from edgeopt.run import run_one


def _instance(data: dict, name: str = "t") -> Instance:
    return Instance(name=name, data=Data.model_validate(data))


def _two_bids() -> dict:
    return {
        "weights": {"energy": 0.3, "delay": 0.4, "lifetime": 0.3},
        "tasks": {"source": [0], "traffic_mb": [300.0], "base_ms": [100.0], "limit_ms": [110.0], "budget": [1.0]},
        "bids": {"task": [0, 0], "dish": [0, 1], "traffic_mb": [200.0, 200.0], "bandwidth_mbps": [100.0, 100.0],
                 "delay_ms": [80.0, 90.0], "cost": [0.3, 0.4], "reliability": [1.0, 0.5],
                 "energy": [0.5, 1.0], "lifetime": [0.5, 0.0]},
        "dishes": {"wins": [0, 0]},
    }


@pytest.mark.parametrize("utility,want", [
    # the seed's weights w_E, w_D, w_L = 0.3, 0.4, 0.3 (the defaults): bid 0 gains 0.3*0.5 + 0.3*0.5 = 0.3 per
    # share, bid 1 0.3*1.0 + 0.3*0.0 = 0.3; delay 0.4*(1 - 90/100) = 0.04: 0.3*200/300 + 0.3*100/300 + 0.04
    ("unweighted", 0.2 + 0.1 + 0.04),
    # r_k weights each share: bid 0 1.0*0.3 = 0.3, bid 1 0.5*0.3 = 0.15: 0.2 + 0.15*100/300 + 0.04
    ("reliability-weighted", 0.2 + 0.05 + 0.04),
])
def test_referee_matches_hand_computed_utility(utility, want):
    data = _two_bids()
    del data["weights"]  # the seed's weights are the default
    inst = _instance({**data, "utility": utility})
    sol = Solution(groups=[Group(task=0, bids=[0, 1], shares=[200.0, 100.0], payments=[0.35, 0.45])])
    ev = evaluate(inst, sol)
    assert ev.feasible, ev.violations
    assert ev.objective == pytest.approx(want)
    assert ev.details["total_payment"] == pytest.approx(0.8)
    # IR is judged on the data carried: bid 0 carries all 200 Mb (0.3 $), bid 1 half its 200 Mb (0.4 / 2 $)
    assert ev.details["carried_cost"] == pytest.approx(0.3 + 0.2)
    assert ev.details["overpayment"] == pytest.approx(0.8 - 0.5)


@pytest.mark.parametrize("case,fragment", [
    (dict(bids=[0, 1], shares=[200.0, 50.0]), "must cover its traffic"),
    (dict(bids=[0, 1], shares=[250.0, 50.0]), "> its traffic"),
    (dict(bids=[0, 1], shares=[200.0, 100.0], payments=[0.2, 0.45]), "individual rationality"),
    (dict(bids=[0, 1], shares=[200.0, 100.0], payments=[0.6, 0.45]), "budget feasibility"),
    (dict(bids=[0, 0], shares=[150.0, 150.0]), "lists a bid twice"),
])
def test_referee_reports_violations(case, fragment):
    ev = evaluate(_instance(_two_bids()), Solution(groups=[Group(task=0, **case)]))
    assert not ev.feasible
    assert any(fragment in v for v in ev.violations), ev.violations


def test_referee_checks_delay_budget_size_dish_and_committed():
    data = _two_bids()
    data["tasks"]["limit_ms"] = [85.0]
    data["tasks"]["budget"] = [0.5]
    data["n_max"] = 1
    data["committed"] = [1]
    ev = evaluate(_instance(data), Solution(groups=[Group(task=0, bids=[0, 1], shares=[200.0, 100.0])]))
    text = " | ".join(ev.violations)
    for fragment in ("> limit", "> budget", "> n_max", "committed elsewhere"):
        assert fragment in text
    data = _two_bids()
    data["bids"]["dish"] = [0, 0]
    ev = evaluate(_instance(data), Solution(groups=[Group(task=0, bids=[0, 1], shares=[200.0, 100.0])]))
    assert any("wins twice" in v for v in ev.violations)


def test_referee_rejects_malformed_solution():
    inst = _instance(_two_bids())
    with pytest.raises(InputError, match=r"solution.groups\[0\].bids\[1\]"):
        evaluate(inst, Solution(groups=[Group(task=0, bids=[0, 7], shares=[1.0, 2.0])]))
    with pytest.raises(InputError, match=r"solution.groups\[0\].shares"):
        evaluate(inst, Solution(groups=[Group(task=0, bids=[0, 1], shares=[300.0])]))


def _knapsack(inst: Instance, ks: tuple) -> list[float]:
    """Best shares of a fixed group: fill members in descending (r)(w_E e + w_L l) up to their caps."""
    d = inst.data
    w, b = d.weights, d.bids
    left = float(d.tasks.traffic_mb[b.task[ks[0]]])
    r = b.reliability if d.utility == "reliability-weighted" else np.ones(len(b.task))
    gain = {k: r[k] * (w.energy * b.energy[k] + w.lifetime * b.lifetime[k]) for k in ks}
    shares = {}
    for k in sorted(ks, key=lambda k: -gain[k]):
        shares[k] = min(left, float(b.traffic_mb[k]), float(b.bandwidth_mbps[k] * d.interval_s))
        left -= shares[k]
    return [shares[k] for k in ks]


def _brute_force(inst: Instance) -> float:
    """Best referee objective over every choice of group (or none) per task."""
    d = inst.data
    T = len(d.tasks.source)
    options = []
    for t in range(T):
        ks = [int(k) for k in np.flatnonzero(d.bids.task == t)]
        opts = [None] + [c for n in range(1, d.n_max + 1) for c in itertools.combinations(ks, n)]
        options.append(opts)
    best = 0.0
    for choice in itertools.product(*options):
        groups = [Group(task=t, bids=list(c), shares=_knapsack(inst, c)) for t, c in enumerate(choice) if c]
        ev = evaluate(inst, Solution(groups=groups))
        if ev.feasible:
            best = max(best, ev.objective)
    return best


@pytest.mark.parametrize("utility", ["unweighted", "reliability-weighted"])
@pytest.mark.parametrize("seed", range(4))
def test_brute_force_equals_milp_and_bounds_every_method(seed, utility):
    inst = cdgs.generate("small", size=3, seed=seed, bids=4, utility=utility)
    best = _brute_force(inst)
    assert run_one(inst, "lagrange").bound >= best - 1e-9
    r = run_one(inst, "milp")
    assert r.status == "optimal" and r.feasible
    assert r.objective == pytest.approx(best, rel=1e-6, abs=1e-9)
    for name in ("cgsc-cstp", "service", "smtsn", "no-offload"):
        other = run_one(inst, name)
        assert other.feasible, (name, other.violations)
        assert other.objective <= best + 1e-9


@given(task=st.lists(st.integers(0, 4), min_size=1, max_size=40), data=st.data())
@settings(max_examples=60, deadline=None)
def test_greedy_equals_sequential_scan(task, data):
    G = len(task)
    dish = np.array(data.draw(st.lists(st.lists(st.integers(-1, 6), min_size=2, max_size=2), min_size=G, max_size=G)))
    got = greedy(np.array(task), dish, 5, 7)
    served, used, want = set(), set(), []
    for r in range(G):
        ds = {x for x in dish[r] if x >= 0}
        if task[r] not in served and not ds & used:
            want.append(r)
            served.add(task[r])
            used |= ds
    assert got.tolist() == want


@st.composite
def instances(draw):
    T = draw(st.integers(1, 6))
    D = draw(st.integers(1, 5))  # few dishes: tasks contend for them
    per = [draw(st.integers(1, 6)) for _ in range(T)]
    K = sum(per)
    num = lambda lo, hi: st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    floats = lambda lo, hi: draw(st.lists(num(lo, hi), min_size=K, max_size=K))
    base = draw(st.lists(num(50, 200), min_size=T, max_size=T))
    data = {
        "n_max": draw(st.integers(1, 3)),
        "tau": draw(st.integers(0, 50)),
        "utility": draw(st.sampled_from(["unweighted", "reliability-weighted"])),
        "tasks": {"source": list(range(T)), "traffic_mb": draw(st.lists(num(10, 400), min_size=T, max_size=T)),
                  "base_ms": base, "limit_ms": [1.1 * x for x in base],
                  "budget": draw(st.lists(num(0, 2), min_size=T, max_size=T))},
        "bids": {"task": [t for t in range(T) for _ in range(per[t])],
                 "dish": draw(st.lists(st.integers(0, D - 1), min_size=K, max_size=K)),
                 "traffic_mb": floats(1, 400), "bandwidth_mbps": floats(0.1, 100), "delay_ms": floats(10, 250),
                 "cost": floats(0.01, 1.5), "reliability": floats(0.01, 1), "energy": floats(0, 1),
                 "lifetime": floats(0, 1)},
        "dishes": {"wins": draw(st.lists(st.integers(0, 20), min_size=D, max_size=D))},
        "committed": draw(st.lists(st.integers(0, D - 1), max_size=2, unique=True)),
    }
    return _instance(data)


@given(inst=instances(), eps=st.floats(0, 5), mu=st.floats(0, 1), m=st.integers(1, 10),
       payment=st.sampled_from(PAYMENTS), exploration=st.sampled_from(EXPLORATIONS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_cstp_mechanism_properties(inst, eps, mu, m, payment, exploration):
    d = inst.data
    out = cgsc_cstp(inst, eps=eps, mu=mu, m=m, payment=payment, exploration=exploration)
    ev = evaluate(inst, out.solution)
    assert ev.feasible, ev.violations  # includes IR, budget feasibility, coverage, delay and dish checks
    dishes = [int(d.bids.dish[k]) for g in out.solution.groups for k in g.bids]
    assert len(dishes) == len(set(dishes)) and not set(dishes) & set(d.committed.tolist())
    for g in out.solution.groups:
        used = np.array(g.shares) / d.bids.traffic_mb[g.bids] if payment == "received" else 1.0
        assert np.all(np.array(g.payments) >= d.bids.cost[g.bids] * used * (1 - 1e-9))
        assert sum(g.payments) <= d.tasks.budget[g.task] * (1 + 1e-9)
        assert max(d.bids.delay_ms[g.bids]) <= d.tasks.limit_ms[g.task]
    assert math.isclose(out.claimed, ev.objective, rel_tol=1e-9, abs_tol=1e-9)


def test_committed_dishes_never_win():
    inst = cdgs.generate("small", size=6, seed=3, bids=5)
    free = run_one(inst, "milp")
    won = sorted({int(inst.data.bids.dish[k]) for g in free.solution["groups"] for k in g["bids"]})
    data = inst.data.model_dump()
    data["committed"] = won[:2]
    blocked = inst.model_copy(update={"data": Data.model_validate(data)})
    for name in ("milp", "cgsc-cstp", "service", "smtsn", "falcon"):
        r = run_one(blocked, name)
        used = {int(inst.data.bids.dish[k]) for g in r.solution["groups"] for k in g["bids"]}
        assert not used & set(won[:2]), name


def test_vcg_payments_are_individually_rational():
    inst = cdgs.generate("small", size=5, seed=0, bids=5)
    r = run_one(inst, "milp", vcg=True)
    plain = run_one(inst, "milp")
    assert r.objective == pytest.approx(plain.objective)
    assert r.details["ir_violations"] == 0
    assert r.details["total_payment"] >= r.details["total_cost"] - 1e-9
    assert all(g["payments"] is not None for g in r.solution["groups"])


def test_cgsc_options_are_checked():
    inst = cdgs.small_instance(0)
    with pytest.raises(InputError, match="n_max"):
        cgsc(inst, n_max=5)
    with pytest.raises(InputError, match="exploration must be one of inverse, ucb"):
        cgsc_cstp(inst, exploration="bandit")
    assert len(cgsc(inst, n_max=1).members[0]) == 1


@pytest.mark.parametrize("preset,tasks", [("telesat", 351), ("oneweb", 588), ("kuiper", 1156),
                                          ("starlink-550", 1584)])
def test_presets_have_one_task_per_satellite(preset, tasks):
    inst = cdgs.generate(preset, seed=0, bids=4)
    assert len(inst.data.tasks.source) == tasks
    assert inst.meta["satellites"] == tasks and inst.meta["preset"] == preset
    assert np.all(np.bincount(inst.data.bids.task) == 4)
    with pytest.raises(InputError, match="--size"):
        cdgs.generate(preset, size=tasks + 1)


def test_paper_scale_interval_is_feasible():
    inst = io.load(INSTANCES / "cdgs" / "starlink-550-t1584-b30-s0.json.gz")
    r = run_one(inst, "cgsc-cstp")
    assert r.feasible and r.details["served"] > 0 and r.details["budget_violations"] == 0
    f = run_one(inst, "falcon")
    assert any("> budget" in v for v in f.violations)  # FALCON ignores budgets; the referee says so


def _bad(tmp_path, edit) -> str:
    doc = io.instance_doc(cdgs.small_instance(0))
    edit(doc["data"])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    return str(path)


@pytest.mark.parametrize("edit,fragment", [
    (lambda d: d["bids"]["task"].__setitem__(0, 99), "data.bids.task[0] must be a task index"),
    (lambda d: d["bids"]["reliability"].__setitem__(1, 1.5), "data.bids.reliability[1] must be in (0, 1]"),
    (lambda d: d["bids"]["reliability"].__setitem__(1, 0.0), "data.bids.reliability[1] must be in (0, 1]"),
    (lambda d: d["tasks"]["traffic_mb"].__setitem__(2, -5.0), "data.tasks.traffic_mb[2] must be > 0"),
    (lambda d: d["bids"]["traffic_mb"].__setitem__(0, -1.0), "data.bids.traffic_mb[0] must be > 0"),
    (lambda d: d.__setitem__("bids", {k: [] for k in d["bids"]}), "data.bids.task must list at least one bid"),
    (lambda d: d["bids"]["cost"].pop(), "data.bids.cost must have shape"),
    (lambda d: d["tasks"]["life_per_mb"].pop(), "data.tasks.life_per_mb must have shape"),
    (lambda d: d.__setitem__("utility", "reliability"), "data.utility"),
])
def test_bad_input_is_a_clear_error(cli, tmp_path, edit, fragment):
    path = _bad(tmp_path, edit)
    code, out, err = cli("validate", path)
    assert code == 2
    assert fragment in err.replace("\n", " ")
    assert "Traceback" not in out + err
    target = tmp_path / "out.json"
    code, _, _ = cli("solve", path, "-m", "cgsc-cstp", "-o", str(target))
    assert code == 2 and not target.exists()


def test_bad_solution_file_through_cli(cli, tmp_path):
    inst_path = INSTANCES / "cdgs" / "small" / "small-t5-b5-s0.json"
    sol = tmp_path / "sol.json"
    sol.write_text(json.dumps({"groups": [{"task": 0, "bids": [999], "shares": [1.0]}]}))
    code, out, err = cli("validate", str(inst_path), str(sol))
    assert code == 2 and "solution.groups[0].bids[0]" in err and "Traceback" not in out + err


def test_cstp_payment_rule_when_the_best_group_is_blocked():
    """Task 1's cheap bid C takes dish 0, blocking task 0's best-ratio bid A; task 0 wins with B.

    Every candidate's utility is 0.3 + 0.4 (1 - 50/100) = 0.5; ratios C 5, A 2.5, B 1, {A,B} 0.71.
    C's first competitor is A (blocked by C alone): C wins up to U / 2.5 = 0.2 $, capped by the budget.
    B has none ({A,B} is blocked by C too), so B is paid (1 + mu) 0.5 = 0.55. Every bid carries 300 of its
    400 Mb, so the received rule pays 3/4 of that.
    """
    data = {
        "tasks": {"source": [0, 1], "traffic_mb": [300.0, 300.0], "base_ms": [100.0, 100.0],
                  "limit_ms": [110.0, 110.0], "budget": [2.0, 0.105]},
        "bids": {"task": [0, 0, 1], "dish": [0, 1, 0], "traffic_mb": [400.0] * 3, "bandwidth_mbps": [100.0] * 3,
                 "delay_ms": [50.0] * 3, "cost": [0.2, 0.5, 0.1], "reliability": [1.0] * 3,
                 "energy": [0.5] * 3, "lifetime": [0.5] * 3},
        "dishes": {"wins": [0, 0]},
    }
    for payment, scale in (("bid", 1.0), ("received", 0.75)):
        out = cgsc_cstp(_instance(data), mu=0.1, payment=payment)
        pay = {g.task: (g.bids, g.payments) for g in out.solution.groups}
        assert pay[0] == ([1], [pytest.approx(0.55 * scale)])
        assert pay[1] == ([2], [pytest.approx(0.105 * scale)])  # min(budget 0.105, 0.2)
    data["tasks"]["budget"][1] = 1.0
    out = cgsc_cstp(_instance(data), mu=0.1, payment="bid")
    assert {g.task: g.payments[0] for g in out.solution.groups}[1] == pytest.approx(0.2)


def test_seed_payments_by_received_data_and_cost_share_hand_computed():
    """The seed's CSTP payments on two tasks, by hand.

    Every covering group has utility 0.3 + 0.4 (1 - 50/100) = 0.5. Task 0 needs both its 200 Mb bids
    (group {0,1}, C = 0.3, ratio 1.67, shares 200 and 100 Mb); task 1 has {2} (ratio 1.0), {3} (0.5)
    and {2,3} (0.33). {0,1} wins and takes dish 0, so {2} loses to it alone: {2} is {0,1}'s competitor
    although it bids for another task, and {0,1} wins up to C = U / 1.0 = 0.5 $ (the same-task rule
    saw no competitor and paid (1 + mu) 0.3 = 0.33). Task 1 wins with {3}, which nothing can outbid
    ({2,3} is blocked by {0,1} too): (1 + mu) 1.0 = 1.1 $.
    """
    data = {
        "tasks": {"source": [0, 1], "traffic_mb": [300.0, 300.0], "base_ms": [100.0, 100.0],
                  "limit_ms": [110.0, 110.0], "budget": [2.0, 2.0]},
        "bids": {"task": [0, 0, 1, 1], "dish": [0, 1, 0, 2], "traffic_mb": [200.0, 200.0, 400.0, 400.0],
                 "bandwidth_mbps": [100.0] * 4, "delay_ms": [50.0] * 4, "cost": [0.1, 0.2, 0.5, 1.0],
                 "reliability": [1.0] * 4, "energy": [0.5] * 4, "lifetime": [0.5] * 4},
        "dishes": {"wins": [0, 0, 0]},
    }
    inst = _instance(data)
    want = {  # bid: split 0.5 by cost share 1/3, 2/3; received: times 200/200 and 100/200 of the bids carried
        "bid": {0: ([0, 1], [0.5 / 3, 0.5 * 2 / 3]), 1: ([3], [1.1])},
        "received": {0: ([0, 1], [0.5 / 3, 0.5 * 2 / 3 * 0.5]), 1: ([3], [1.1 * 300 / 400])},
    }
    for payment, groups in want.items():
        out = cgsc_cstp(inst, mu=0.1, payment=payment)
        got = {g.task: (g.bids, g.payments) for g in out.solution.groups}
        assert got == {t: (bids, pytest.approx(p)) for t, (bids, p) in groups.items()}, payment
        ev = evaluate(inst, out.solution)
        assert ev.feasible and ev.details["ir_violations"] == 0, ev.violations
        assert ev.objective == pytest.approx(1.0)  # the payment rule leaves the allocation alone
    assert evaluate(inst, out.solution).details["carried_cost"] == pytest.approx(0.1 + 0.1 + 0.75)


def _wins(inst: Instance, cand, row: int, cost: float) -> bool:
    """Does candidate ``row`` still win CSTP when its group asks ``cost`` (everything else fixed)?"""
    asked = cand.cost.copy()
    asked[row] = cost
    return row in cstp(inst, dataclasses.replace(cand, cost=asked), eps=0.3)[0]


def _assert_payments_are_critical(inst: Instance):
    """Bisect each winner's asking cost for where it stops winning: that is its payment, capped by the
    budget (a group over budget is no candidate). A winner nobody outbids is paid within its budget."""
    cand = cgsc(inst)
    won, pay = cstp(inst, cand, eps=0.3)
    for row, p in zip(won, pay):
        beta, top = inst.data.tasks.budget[cand.task[row]], 10 * inst.data.tasks.budget.max() + 1.0
        assert _wins(inst, cand, row, cand.cost[row])
        if _wins(inst, cand, row, top):
            assert p <= beta * (1 + 1e-12) and _wins(inst, cand, row, beta)
            continue
        lo, hi = cand.cost[row], top
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if _wins(inst, cand, row, mid) else (lo, mid)
        assert p == pytest.approx(min(lo, beta), rel=1e-7)


@given(inst=instances())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_cstp_payment_is_the_critical_value_across_tasks(inst):
    _assert_payments_are_critical(inst)


@pytest.mark.parametrize("seed", range(8))
def test_cstp_payment_is_the_critical_value_on_generated_instances(seed):
    inst = cdgs.small_instance(seed)  # contended dishes: most winners have a competitor, many in other tasks
    _assert_payments_are_critical(inst.model_copy(update={"data": inst.data.model_copy(update={"tau": 5})}))


@pytest.mark.parametrize("preset", ["small", "telesat"])
def test_budget_scale_multiplies_the_budgets_and_nothing_else(preset):
    base = cdgs.generate(preset, size=20, seed=2, bids=4)
    scaled = cdgs.generate(preset, size=20, seed=2, bids=4, budget_scale=2.5)
    np.testing.assert_allclose(scaled.data.tasks.budget, 2.5 * base.data.tasks.budget, atol=1e-5)
    for part in ("tasks", "bids"):
        for field, value in getattr(base.data, part):
            if field != "budget":
                np.testing.assert_array_equal(getattr(getattr(scaled.data, part), field), value, err_msg=field)
    assert scaled.meta["budget_scale"] == 2.5 and "budget_scale" not in base.meta


def test_a_larger_budget_never_lowers_the_optimum():
    """Budgets only constrain: scaling them up keeps every feasible allocation feasible."""
    values = [run_one(cdgs.generate("small", size=6, seed=1, budget_scale=s), "milp") for s in (0.25, 1.0, 4.0)]
    assert all(r.status == "optimal" for r in values)
    assert values[0].objective <= values[1].objective + 1e-9 <= values[2].objective + 2e-9


@pytest.mark.parametrize("value,rule", [("0", "greater than 0"), ("5000", "less than or equal to 1000"),
                                        ("inf", "valid number, got 'inf'")])
def test_bad_budget_scale_is_exit_2(cli, tmp_path, value, rule):
    out_file = tmp_path / "g.json"
    code, _, err = cli("generate", "cdgs", "--preset", "small", "--option", f"budget_scale={value}", "-o", out_file)
    assert code == 2 and "--option budget_scale must be" in err and rule in err, err
    assert err.count("\n") == 1 and not out_file.exists()


def test_utility_per_cost_is_utility_over_the_winning_bids_cost():
    inst = _instance(_two_bids())
    ev = evaluate(inst, Solution(groups=[Group(task=0, bids=[0, 1], shares=[200.0, 100.0])]))
    assert ev.details["utility_per_cost"] == pytest.approx(ev.objective / ev.details["total_cost"])
    assert evaluate(inst, Solution()).details["utility_per_cost"] is None  # nothing bought, no ratio


def _bidders(wins: list[int], tau: int = 10) -> Instance:
    """One task, bid A from dish 0 (cost 0.5) and bid B from dish 1 (cost 0.45), each able to carry it alone."""
    data = _two_bids()
    data["bids"].update(traffic_mb=[400.0, 400.0], delay_ms=[50.0, 50.0], cost=[0.5, 0.45], reliability=[1.0, 1.0],
                        energy=[0.5, 0.5], lifetime=[0.5, 0.5])
    return _instance({**data, "tau": tau, "dishes": {"wins": wins}})


def test_exploration_term_is_inversely_proportional_to_the_selection_count_hand_computed():
    """The seed's exploration factor falls as 1 / (1 + n) with the group's selection count (UCB's as 1/sqrt)."""
    inst = _bidders([0, 3])
    members = np.array([[0, -1], [1, -1], [0, 1]])  # n = 0, 3 and their mean 1.5 (-1 pads)
    np.testing.assert_allclose(exploration_bonus(inst, members, 0.2), [0.2, 0.2 / 4, 0.2 / 2.5])
    ucb = exploration_bonus(inst, members, 0.2, "ucb")
    np.testing.assert_allclose(ucb, 0.2 * np.sqrt(2 * np.log(11) / np.array([1, 4, 2.5])))
    assert np.all(exploration_bonus(_bidders([0, 3], tau=0), members, 0.2, "ucb") == 0)  # UCB is off at tau 0
    # U = 0.3*0.5 + 0.3*0.5 + 0.4*(1 - 50/100) = 0.5 for both; U/C: A 1.0, B 1.111. With eps = 0.2 the
    # never-selected A scores 1.0 + 0.2 = 1.2 > B's 1.111 + 0.05 = 1.161 and wins; with eps = 0.1 it scores
    # 1.1 < 1.136 and loses (A overtakes B from eps = 0.111 / 0.75 = 0.148 on).
    for eps, winner in ((0.2, 0), (0.1, 1)):
        (group,) = cgsc_cstp(inst, eps=eps).solution.groups
        assert group.bids == [winner], eps


def test_seed_metrics_hand_computed():
    """Energy in J, battery life, end-to-end delay and the share under 120 ms (the seed's CDF), by hand."""
    data = _two_bids()
    data["tasks"] = {"source": [0, 1], "traffic_mb": [300.0, 100.0], "base_ms": [100.0, 150.0],
                     "limit_ms": [110.0, 165.0], "budget": [1.0, 1.0], "energy_j_per_mb": [7.04, 3.52],
                     "life_per_mb": [1e-8, 2e-8]}
    inst = _instance(data)
    ev = evaluate(inst, Solution(groups=[Group(task=0, bids=[0, 1], shares=[200.0, 100.0])]))
    assert ev.feasible, ev.violations
    d = ev.details
    # energy: task 0 spends 7.04 J/Mb on what its shares do not save, 300 - 0.5*200 - 1.0*100 = 100 Mb: 704 J;
    # task 1 stays on its ISL path: 3.52 * 100 = 352 J
    assert d["energy_j"] == pytest.approx(704.0 + 352.0)
    # battery life: task 0 (300 - 0.5*200 - 0.0*100) * 1e-8 = 2e-6; task 1 100 * 2e-8 = 2e-6
    assert d["lifetime_consumed"] == pytest.approx(4e-6)
    # delay: task 0 its slowest member, max(80, 90) = 90 ms; task 1 its ISL path, 150 ms
    assert (d["delay_mean_ms"], d["delay_p50_ms"], d["delay_max_ms"]) == pytest.approx((120.0, 120.0, 150.0))
    assert d["delay_p95_ms"] == pytest.approx(90 + 0.95 * 60)
    assert d["share_under_120ms"] == 0.5  # 90 ms < 120 ms, 150 ms is not
    nothing = evaluate(inst, Solution()).details
    assert nothing["energy_j"] == pytest.approx(7.04 * 300 + 352.0)
    assert nothing["delay_mean_ms"] == pytest.approx(125.0) and nothing["share_under_120ms"] == 0.5  # 100, 150 ms
    assert evaluate(_instance(_two_bids()), Solution()).details["energy_j"] is None  # a file without the ISL figures


def test_cdgs_battery_life_consumption_grows_exponentially_with_depth():
    """The DoD model: full -> 30 % costs 1/cycles; 15 points deeper doubles the marginal damage; charging is free."""
    assert cdgs.cycle_damage(0.0, 0.3, cycles=1000) == pytest.approx(1e-3)
    step = cdgs.cycle_damage(np.array([0.3, 0.45]), np.array([0.31, 0.46]))
    assert step[1] / step[0] == pytest.approx(2.0, rel=1e-9)
    assert cdgs.cycle_damage(0.5, 0.2) == 0.0


def test_old_files_load_with_the_seed_readings():
    """A file from before issue 13 (no utility, no ISL energy or life) loads: unweighted utility, metrics None."""
    doc = io.instance_doc(cdgs.small_instance(0))
    for key in ("energy_j_per_mb", "life_per_mb"):
        del doc["data"]["tasks"][key]
    doc["data"].pop("utility", None)
    inst = io.parse_instance(doc)
    assert inst.data.utility == "unweighted" and inst.data.tasks.energy_j_per_mb is None
    r = run_one(inst, "cgsc-cstp")
    assert r.feasible and r.details["energy_j"] is None and r.details["delay_mean_ms"] > 0


def test_utility_option_changes_only_the_objective():
    base = cdgs.generate("small", size=5, seed=3)
    weighted = cdgs.generate("small", size=5, seed=3, utility="reliability-weighted")
    assert weighted.data.utility == "reliability-weighted" and weighted.meta["utility"] == "reliability-weighted"
    dump = lambda inst: io.instance_doc(inst)["data"]
    assert {**dump(base), "utility": None} == {**dump(weighted), "utility": None}
    b = weighted.data.bids
    np.testing.assert_allclose(weighted.data.gain, b.reliability * base.data.gain)


def test_three_second_intervals_leave_a_5g_dish_short_of_a_task():
    """starlink-550-3s: the seed's 300 s in 100 auctions; a bid carries at most 3 s of its bandwidth."""
    inst = cdgs.generate("starlink-550-3s", size=50, seed=0, bids=10)
    d = inst.data
    assert d.interval_s == 3.0 and inst.meta["preset"] == "starlink-550-3s"
    np.testing.assert_allclose(d.cap, np.minimum(d.bids.traffic_mb, 3.0 * d.bids.bandwidth_mbps))
    slow = d.bids.bandwidth_mbps <= 100.0  # 5G base stations: 100 Mbps nominal
    assert slow.any() and np.all(d.cap[slow] <= 300.0)
    assert cdgs.generate("telesat", size=5, seed=0, interval_s=5).data.interval_s == 5.0
