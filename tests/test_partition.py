"""partition: referee against an independent enumeration, methods against each other, presets, CLI."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from conftest import INSTANCES, shipped
from edgeopt import InputError, evaluate, io, solve
from edgeopt.problems.partition import Instance, Solution, generate, small_instance


def make(time, mem, cap, *, act=0.5, out=1.0, bw=1000.0, lat=1.0, source=0, objective="latency"):
    time = np.asarray(time, dtype=object)
    L, D = time.shape
    bw_m = np.full((D, D), float(bw))
    lat_m = np.full((D, D), float(lat))
    np.fill_diagonal(bw_m, 0.0)
    np.fill_diagonal(lat_m, 0.0)
    return Instance.model_validate({
        "name": "hand", "data": {
            "objective": objective, "source": source, "out_mb": out,
            "layers": [{"name": f"l{i}", "mem_gb": float(m), "act_mb": act} for i, m in enumerate(mem)],
            "devices": [{"name": f"d{k}", "kind": "edge", "mem_gb": float(c)} for k, c in enumerate(cap)],
            "time_ms": time.tolist(), "bw_mbps": bw_m.tolist(), "lat_ms": lat_m.tolist()}})


def enumerate_by_hand(inst: Instance, place: tuple[int, ...]):
    """A second, loop-by-loop reading of the spec: (feasible, objective) of one placement."""
    d = inst.data
    L, D = len(d.layers), len(d.devices)

    def comm(a, b, x):
        return 0.0 if a == b else x / d.bw_mbps[a, b] * 1000 + d.lat_ms[a, b]

    times = [d.time_ms[l, place[l]] for l in range(L)]
    if any(np.isnan(times)):
        return False, None
    ok = place[0] == d.source
    for k in range(D):
        ok &= sum(d.layers[l].mem_gb for l in range(L) if place[l] == k) <= d.devices[k].mem_gb + 1e-9
    if d.objective == "latency":
        total = sum(times) + sum(comm(place[l], place[l + 1], d.layers[l].act_mb) for l in range(L - 1))
        return ok, total + comm(place[-1], d.source, d.out_mb)
    starts = [l for l in range(L) if l == 0 or place[l] != place[l - 1]]
    ok &= len({place[s] for s in starts}) == len(starts)
    ends = starts[1:] + [L]
    terms = [sum(times[a:b]) for a, b in zip(starts, ends)]
    terms += [comm(place[b - 1], place[b], d.layers[b - 1].act_mb) for b in ends[:-1]]
    terms.append(comm(place[-1], d.source, d.out_mb))
    return ok, max(terms)


def brute_force_optimum(inst: Instance):
    L, D = len(inst.data.layers), len(inst.data.devices)
    best = None
    for place in itertools.product(range(D), repeat=L):
        ok, obj = enumerate_by_hand(inst, place)
        if ok and (best is None or obj < best):
            best = obj
    return best


def tiny(seed: int, objective: str) -> Instance:
    rng = np.random.default_rng(seed)
    L, D = int(rng.integers(3, 7)), int(rng.integers(2, 4))
    time = rng.uniform(1, 10, size=(L, D)).round(3).astype(object)
    time[rng.random((L, D)) < 0.15] = None
    time[0, 0] = 1.0
    mem = rng.uniform(0.5, 2.0, size=L).round(2)
    cap = rng.uniform(0.4, 0.8, size=D) * mem.sum()
    cap[0] = max(cap[0], mem[0])
    return make(time, mem, cap.round(2), act=float(rng.uniform(0.1, 2)), bw=float(rng.uniform(100, 1000)),
                lat=float(rng.uniform(0, 3)), objective=objective)


@pytest.mark.parametrize("objective", ["latency", "throughput"])
@pytest.mark.parametrize("seed", range(12))
def test_referee_matches_enumeration_on_every_placement(seed, objective):
    inst = tiny(seed, objective)
    L, D = len(inst.data.layers), len(inst.data.devices)
    for place in itertools.product(range(D), repeat=L):
        ev = evaluate(inst, Solution(place=list(place)))
        ok, obj = enumerate_by_hand(inst, place)
        assert ev.feasible == ok, (place, ev.violations)
        if obj is None:
            assert ev.objective is None
        else:
            assert ev.objective == pytest.approx(obj)


@pytest.mark.parametrize("objective", ["latency", "throughput"])
@pytest.mark.parametrize("seed", range(12))
def test_exact_methods_equal_brute_force(seed, objective):
    inst = tiny(seed, objective)
    best = brute_force_optimum(inst)
    exact = solve(inst, "exact")
    assert exact, "no exact method ran"
    for r in exact:
        if best is None:
            assert r.status == "infeasible" and r.solution is None
        else:
            assert r.status == "optimal" and r.feasible
            assert r.objective == pytest.approx(best, rel=1e-6)


def test_referee_hand_computed_latency():
    # 3 layers, 2 devices: 0 -> 1 -> 1, act 0.5 Mb at 1000 Mbps + 1 ms = 1.5 ms per hop, out 1 Mb -> 2 ms
    inst = make([[1.0, 9.0], [5.0, 2.0], [5.0, 3.0]], [1, 1, 1], [5, 5])
    ev = evaluate(inst, Solution(place=[0, 1, 1]))
    assert ev.feasible and ev.objective == pytest.approx(1 + 2 + 3 + 1.5 + 2.0)
    assert ev.details["compute_ms"] == pytest.approx(6.0)


def test_referee_hand_computed_throughput_and_stage_rule():
    inst = make([[1.0, 9.0], [5.0, 2.0], [5.0, 3.0]], [1, 1, 1], [5, 5], objective="throughput")
    ev = evaluate(inst, Solution(place=[0, 1, 1]))
    assert ev.feasible and ev.objective == pytest.approx(5.0)  # stage on device 1: 2 + 3
    assert ev.details["throughput_rps"] == pytest.approx(200.0)
    bad = evaluate(inst, Solution(place=[0, 1, 0]))
    assert not bad.feasible and any("two stages" not in v or "device 0" in v for v in bad.violations)


def test_referee_reports_memory_source_and_null_time():
    inst = make([[1.0, None], [1.0, 1.0]], [3, 3], [4, 4])
    ev = evaluate(inst, Solution(place=[1, 0]))
    text = " ".join(ev.violations)
    assert "source" in text and "cannot run" in text and ev.objective is None
    ev = evaluate(inst, Solution(place=[0, 0]))
    assert not ev.feasible and "holds 6.000 GB > mem_gb 4" in ev.violations[0]


def test_referee_rejects_malformed_solution():
    inst = make([[1.0, 1.0], [1.0, 1.0]], [1, 1], [4, 4])
    with pytest.raises(InputError, match=r"solution.place must list one device per layer"):
        evaluate(inst, Solution(place=[0]))
    with pytest.raises(InputError, match=r"solution.place\[1\] must be a device index"):
        evaluate(inst, Solution(place=[0, 5]))


@pytest.mark.parametrize("seed", range(8))
def test_dp_throughput_equals_milp(seed):
    inst = small_instance(2 * seed + 1, objective="throughput")
    milp, dp = solve(inst, "milp"), solve(inst, "dp-throughput")
    assert milp.status == "optimal" and dp.status == "optimal"
    assert dp.objective == pytest.approx(milp.objective, rel=1e-6)


@pytest.mark.parametrize("seed", range(8))
def test_dp_latency_equals_milp_when_memory_does_not_bind(seed):
    inst = small_instance(2 * seed, objective="latency")
    for dev in inst.data.devices:
        dev.mem_gb = 1e6
    inst = Instance.model_validate(inst.model_dump())
    assert solve(inst, "dp-latency").objective == pytest.approx(solve(inst, "milp").objective, rel=1e-9)


def test_dp_latency_gap_when_memory_binds():
    """The paper's rule keeps only the fastest path into each cell; here it fills the source too early.

    Layers 0-3, devices A (source, room for 2 layers), B, C. Layer 2 runs only on C, layer 3 is cheap
    only on A. The fastest way into (2, C) is A, A, C, which leaves no room on A for layer 3; the
    optimum A, B, C, A costs 4 + 3 hops; the DP pays 10 for layer 3 elsewhere.
    """
    inst = make([[1, None, None], [1, 2, None], [None, None, 1], [1, 10, 10]], [1, 1, 1, 1], [2, 5, 5],
                act=0.0, out=0.0, lat=0.0)
    milp, dp = solve(inst, "milp"), solve(inst, "dp-latency")
    assert milp.objective == pytest.approx(5.0) and milp.solution["place"] == [0, 1, 2, 0]
    assert dp.feasible and dp.objective == pytest.approx(13.0)
    assert (dp.objective - milp.objective) / milp.objective == pytest.approx(1.6)


@pytest.mark.parametrize("values,k,expected", [
    ([7, 2, 5, 10, 8], 2, 18), ([1, 2, 3, 4, 5], 2, 9), ([1, 4, 4], 3, 4), (list(range(1, 10)), 3, 17)])
def test_bottleneck_textbook_split_array(values, k, expected):
    """Identical devices and free links: the throughput optimum is the 'split array largest sum'."""
    inst = make([[v] * k for v in values], [1] * len(values), [len(values)] * k, act=0.0, out=0.0, lat=0.0,
                objective="throughput")
    for method in ("dp-throughput", "milp"):
        assert solve(inst, method).objective == pytest.approx(expected), method


def test_baselines_on_the_edgeshard_testbed():
    inst = io.load(INSTANCES / "partition" / "llama2-7b-d5-latency.json")
    solo = solve(inst, "edge-solo")
    assert not solo.feasible and any("mem_gb 14" in v for v in solo.violations)  # 25 GB on a 14 GB Orin NX
    even, opt = solve(inst, "cloud-edge-even"), solve(inst, "cloud-edge-opt")
    assert even.feasible and opt.feasible and opt.objective <= even.objective
    assert solve(inst, "milp").objective < opt.objective
    no_cloud = make([[1.0, 1.0], [1.0, 1.0]], [1, 1], [4, 4])
    r = solve(no_cloud, "cloud-edge-even")
    assert r.status == "error" and "cloud device" in r.message


def test_method_that_does_not_apply_says_so():
    inst = small_instance(0, objective="latency")
    r = solve(inst, "dp-throughput")
    assert r.status == "error" and "throughput" in r.message
    assert "dp-throughput" not in [x.method for x in solve(inst, "all")]


def test_llama_7b_preset_is_the_edgeshard_testbed():
    d = generate("llama2-7b").data
    assert len(d.layers) == 34 and [x.mem_gb for x in d.devices] == [14, 14, 29, 29, 22]
    assert d.time_ms[1, 0] == 5.759 and d.time_ms[1, 2] == 5.498 and d.time_ms[1, 4] == 0.766
    assert d.bw_mbps[0, 4] == 10 and d.bw_mbps[1, 4] == 950 and d.lat_ms[0, 1] == 2.1
    assert d.layers[1].mem_gb == 0.754 and d.layers[0].act_mb == pytest.approx(0.524288)
    assert d.out_mb == pytest.approx(4.096)
    big = generate("llama2-70b", size=12).data
    assert len(big.layers) == 82 and len(big.devices) == 12


def test_shipped_instances_load_and_match_their_generator():
    files = shipped("partition") + shipped("partition", "small") + shipped("partition", "large")
    assert len(files) >= 10
    for f in files:
        inst = io.load(f)
        m = inst.meta
        opts = {k: m[k] for k in ("objective", "layers") if k in m}
        again = generate(m["preset"], size=m["size"], seed=m["seed"], **opts)
        assert io.instance_doc(again) == io.instance_doc(inst), f.name


# --- command line ---------------------------------------------------------------------------------

@pytest.fixture
def small_file(tmp_path):
    path = tmp_path / "small.json"
    io.save(small_instance(0), path)
    return path


def test_cli_list_and_schema(cli):
    code, out, _ = cli("list", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["problems"]["partition"]["methods"]["milp"]["kind"] == "exact"
    assert doc["solvers"]["highs"] is True
    code, out, _ = cli("schema", "partition")
    s = json.loads(out)
    assert code == 0 and "data" in s["properties"] and s["properties"]["problem"]["const"] == "partition"


def test_cli_generate_validate_solve_roundtrip(cli, tmp_path):
    inst = tmp_path / "g.json.gz"
    code, _, err = cli("generate", "partition", "--preset", "random", "--size", "3", "--seed", "4",
                       "--option", "layers=6", "-o", inst)
    assert code == 0 and inst.exists()
    assert cli("validate", inst)[0] == 0
    sol = tmp_path / "sol.json"
    code, out, _ = cli("solve", inst, "-m", "milp", "--json", "-o", sol)
    r = json.loads(out)
    assert code == 0
    for key in ("problem", "instance", "method", "kind", "status", "objective", "feasible", "violations", "bound",
                "gap", "wall_s", "seed", "solution"):
        assert key in r
    assert r["status"] == "optimal" and r["feasible"] and r["bound"] == pytest.approx(r["objective"])
    doc = json.loads(sol.read_text())
    assert doc["evaluation"]["objective"] == pytest.approx(r["objective"]) and doc["solver"]["status"] == "optimal"
    code, out, _ = cli("validate", inst, sol, "--json")
    assert code == 0 and json.loads(out)["objective"] == pytest.approx(r["objective"])


def test_cli_validate_reports_infeasible_solution(cli, small_file, tmp_path):
    inst = io.load(small_file)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"problem": "partition", "solution": {"place": [1] * len(inst.data.layers)}}))
    code, out, _ = cli("validate", small_file, bad)
    assert code == 1 and "layer 0 must run on the source" in out


def test_cli_solve_several_methods(cli, small_file):
    code, out, _ = cli("solve", small_file, "-m", "exact", "-m", "baseline", "--json")
    rows = json.loads(out)
    assert code == 0 and {r["kind"] for r in rows} == {"exact", "baseline"}


def test_cli_compare_resumes_from_its_output(cli, tmp_path):
    files = [str(p) for p in shipped("partition", "small")[:2]]
    out_csv = tmp_path / "res.csv"
    code, _, _ = cli("compare", *files, "-m", "edge-solo", "-o", out_csv)
    first = {(r["instance"], r["method"]): r for r in _csv(out_csv)}
    assert code == 0 and len(first) == 2
    code, out, _ = cli("compare", *files, "-o", out_csv, "--plot", tmp_path / "gaps.png", "--json")
    rows = json.loads(out)
    again = {(r["instance"], r["method"]): r for r in _csv(out_csv)}
    assert code == 0 and len(again) == len(rows) > 2 and (tmp_path / "gaps.png").stat().st_size > 0
    for key, row in first.items():  # the rows of the first run were kept, not recomputed
        assert again[key]["wall_s"] == row["wall_s"]
    milp = [r for r in rows if r["method"] == "milp"]
    assert all(r["gap_to_best"] == 0 and r["gap_ref"] == "optimum" for r in milp)


def _csv(path):
    import csv

    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("fmt,marker", [("lp", "\nmin \nobj:"), ("mps", "ROWS")])
def test_cli_export(cli, small_file, tmp_path, fmt, marker):
    out = tmp_path / f"model.{fmt}"
    code, _, _ = cli("export", small_file, "--format", fmt, "-o", out)
    assert code == 0 and marker in out.read_text()


def test_cli_unknown_solver_names_the_install(cli, small_file):
    code, _, err = cli("solve", small_file, "-m", "milp", "--solver", "gurobi")
    assert code == 2 and "gurobi" in err and "install" in err and "Traceback" not in err


# --- bad input --------------------------------------------------------------------------------------

def _doc():
    return io.instance_doc(small_instance(0))


def _bad(mutate):
    doc = _doc()
    mutate(doc)
    return doc


BAD = {
    "wrong problem": (lambda d: d.update(problem="nope"), "problem must be one of"),
    "missing field": (lambda d: d["data"].pop("lat_ms"), "data.lat_ms is required"),
    "wrong shape": (lambda d: d["data"]["time_ms"].pop(), "data.time_ms must have shape (layers, devices)"),
    "ragged": (lambda d: d["data"]["bw_mbps"][0].pop(), "data.bw_mbps must be a rectangular"),
    "negative memory": (lambda d: d["data"]["devices"][2].update(mem_gb=-1), "data.devices[2].mem_gb must be greater than 0"),
    "negative time": (lambda d: d["data"]["time_ms"][3].__setitem__(1, -2.0), "data.time_ms[3][1] must be >= 0"),
    "source out of range": (lambda d: d["data"].update(source=9), "data.source must be a device index"),
    "zero bandwidth": (lambda d: d["data"]["bw_mbps"][0].__setitem__(1, 0), "data.bw_mbps[0][1] must be > 0"),
    "string time": (lambda d: d["data"]["time_ms"][0].__setitem__(0, "fast"), "data.time_ms[0][0] must be a number"),
    "unknown objective": (lambda d: d["data"].update(objective="energy"), "data.objective must be"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_instance_is_exit_2_with_field_path(cli, tmp_path, case):
    mutate, message = BAD[case]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_bad(mutate)))
    out_file = tmp_path / "out.json"
    code, out, err = cli("solve", path, "-m", "edge-solo", "-o", out_file)
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert not out_file.exists()


def test_nan_value_is_rejected(cli, tmp_path):
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(_bad(lambda d: d["data"].update(out_mb=12345.5))).replace("12345.5", "NaN"))
    code, _, err = cli("validate", path)
    assert code == 2 and "data.out_mb must be a finite number" in err and "Traceback" not in err
    path.write_text(json.dumps(_bad(lambda d: d["data"]["lat_ms"][0].__setitem__(1, 1e400))))
    code, _, err = cli("validate", path)
    assert code == 2 and "data.lat_ms[0][1] must be a finite number, got Infinity" in err
    path.write_text(json.dumps(_bad(lambda d: d["data"]["lat_ms"][0].__setitem__(1, 12345.5))).replace("12345.5", "1e400"))
    code, _, err = cli("validate", path)
    assert code == 2 and "data.lat_ms[0][1] must be finite, got a number beyond the range of a double" in err


@pytest.mark.parametrize("text,message", [("{not json", "is not valid JSON"), ("[1, 2]", "must be a JSON object")])
def test_malformed_json_is_exit_2(cli, tmp_path, text, message):
    path = tmp_path / "broken.json"
    path.write_text(text)
    code, _, err = cli("validate", path)
    assert code == 2 and message in err and "Traceback" not in err


def test_missing_file_is_exit_2(cli, tmp_path):
    out_file = tmp_path / "x.csv"
    code, _, err = cli("compare", tmp_path / "nope.json", "-o", out_file)
    assert code == 2 and "does not exist" in err and not out_file.exists()


def test_bad_generate_option_is_exit_2(cli, tmp_path):
    out_file = tmp_path / "g.json"
    code, _, err = cli("generate", "partition", "--option", "objective=energy", "-o", out_file)
    assert code == 2 and "objective must be latency or throughput" in err and not out_file.exists()
    code, _, err = cli("generate", "partition", "--preset", "llama9", "-o", out_file)
    assert code == 2 and "--preset must be one of" in err and not out_file.exists()


def test_cli_method_options(cli, small_file):
    code, out, _ = cli("solve", small_file, "-m", "milp", "--option", "mip_gap=0.5", "--json")
    assert code == 0 and json.loads(out)["status"] == "optimal"
    code, _, err = cli("solve", small_file, "-m", "edge-solo", "--option", "warp=9")
    assert code == 2 and "--warp is not an option of any selected method (edge-solo)" in err


def test_compare_in_parallel_matches_serial():
    from edgeopt.compare import compare

    files = [str(p) for p in shipped("partition", "small")]
    serial = {(r["instance"], r["method"]): r["objective"] for r in compare(files, ["exact", "heuristic"])}
    parallel = {(r["instance"], r["method"]): r["objective"] for r in compare(files, ["exact", "heuristic"], jobs=2)}
    assert parallel.keys() == serial.keys() and len(serial) >= 2 * len(files)
    for key, value in serial.items():
        assert parallel[key] == pytest.approx(value), key


@pytest.mark.parametrize("preset", ["llama2-7b", "random"])
def test_bandwidth_option_sets_only_the_source_cloud_links(preset):
    """The EdgeShard bandwidth sweep moves the link the cloud-edge baselines use, and nothing else."""
    base = generate(preset, size=5, seed=3).data
    d = generate(preset, size=5, seed=3, bandwidth_mbps=123.0).data
    cloud = [k for k, dev in enumerate(d.devices) if dev.kind == "cloud" and k != d.source]
    assert cloud
    changed = np.zeros_like(d.bw_mbps, dtype=bool)
    changed[d.source, cloud] = changed[cloud, d.source] = True
    np.testing.assert_array_equal(d.bw_mbps[changed], 123.0)
    np.testing.assert_array_equal(d.bw_mbps[~changed], base.bw_mbps[~changed])
    np.testing.assert_array_equal(d.time_ms, base.time_ms)


def test_bandwidth_option_without_a_cloud_device_is_an_error():
    with pytest.raises(InputError, match="bandwidth_mbps needs a cloud device"):
        generate("llama2-7b", size=1, bandwidth_mbps=100.0)


def test_more_source_cloud_bandwidth_speeds_the_cloud_edge_baseline():
    slow, fast = (generate("llama2-7b", bandwidth_mbps=bw) for bw in (10.0, 1000.0))
    assert solve(fast, "cloud-edge-opt").objective < solve(slow, "cloud-edge-opt").objective
    assert solve(fast, "milp").objective <= solve(slow, "milp").objective


@pytest.mark.parametrize("value,rule", [("0", "greater than or equal to 0.000001"), ("nan", "finite number"),
                                        ("fast", "valid number")])
def test_bad_bandwidth_option_is_exit_2(cli, tmp_path, value, rule):
    out_file = tmp_path / "g.json"
    code, _, err = cli("generate", "partition", "--option", f"bandwidth_mbps={value}", "-o", out_file)
    assert code == 2 and "--option bandwidth_mbps must be" in err and rule in err, err
    assert err.count("\n") == 1 and not out_file.exists()
