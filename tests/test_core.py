"""The shared core: import hygiene, file round trips, the registry's contract."""
from __future__ import annotations

import gc
import gzip
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import INSTANCES
from edgeopt import InputError, io, registry
from edgeopt.errors import Interrupted, catch_signals
from edgeopt.problems.partition import small_instance


def test_core_path_never_imports_the_extras():
    """fancyimpute (a comparison only), Dask (an executor only), the service's web stack and the learn extra
    (training only: the shipped policies of the learned methods run with NumPy) stay out of every ordinary run."""
    code = ("import sys, edgeopt; from edgeopt.problems.qllms import small_instance; "
            "edgeopt.solve(small_instance(0), 'all'); import edgeopt.experiment, edgeopt.cli; "
            "from edgeopt.problems import dagsched; rs = edgeopt.solve(dagsched.small_instance(0), 'learned'); "
            "assert len(rs) == 4 and all(r.status != 'error' for r in rs); "
            "from edgeopt.problems import offload; rs = edgeopt.solve(offload.generate('paper', seed=1), 'learned'); "
            "assert len(rs) == 4 and all(r.status == 'feasible' for r in rs); "
            "from edgeopt.problems import vcache; rs = edgeopt.solve(vcache.small_instance(0), 'learned'); "
            "assert sorted(r.method for r in rs) == ['dlrs', 'mappo'] and all(r.feasible for r in rs); "
            "print([m for m in ('fancyimpute', 'dask', 'distributed', 'fastapi', 'starlette', 'uvicorn', 'httpx', "
            "'schemathesis', 'edgeopt.serve', 'jax', 'optax', 'pettingzoo', 'gymnasium') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_import_is_silent_and_loads_no_solver():
    code = "import sys, edgeopt; print(sorted(m for m in ('pyomo', 'highspy', 'pyscipopt', 'cvxpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]" and out.stderr == ""


@pytest.mark.parametrize("name", ["inst.json", "inst.json.gz"])
def test_instance_roundtrip(tmp_path, name):
    inst = small_instance(3)
    path = tmp_path / name
    io.save(inst, path)
    if name.endswith(".gz"):
        json.loads(gzip.decompress(path.read_bytes()))
    again = io.load(path)
    assert io.instance_doc(again) == io.instance_doc(inst)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left behind


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        io.write_json({"x": object()}, tmp_path / "out.json")
    assert list(tmp_path.iterdir()) == []


def test_every_problem_meets_the_contract():
    for pid, prob in registry.problems().items():
        assert prob.sense in ("min", "max"), pid
        assert prob.presets and all(isinstance(v, str) and v for v in prob.presets.values()), pid
        assert prob.instance_type.problem == pid
        kinds = {m.kind for m in prob.methods.values()}
        assert "exact" in kinds and "baseline" in kinds, pid
        for m in prob.methods.values():
            assert m.doc, f"{pid}.{m.name} needs a docstring"
            assert m.doc.endswith((".", "!", "?")) and "`" not in m.doc, f"{pid}.{m.name}: {m.doc!r} is not one clean sentence"
            assert m.doc in " ".join(m.description.split()), f"{pid}.{m.name}: the summary is not the description's"
        inst = prob.module.small_instance(0)
        assert io.parse_instance(io.instance_doc(inst)).model_dump(mode="json") == inst.model_dump(mode="json")


def test_unknown_method_and_option_are_input_errors():
    inst = small_instance(0)
    prob = registry.problem("partition")
    with pytest.raises(InputError, match="--method must be one of"):
        prob.method("magic")
    with pytest.raises(InputError, match="--option warp is not an option"):
        prob.method("edge-solo").run(inst, warp=9)


def test_an_option_value_a_method_refuses_in_a_worker_is_exit_2(cli, tmp_path):
    """The method runs in a worker process; its InputError still ends the run with exit 2 and one line."""
    out = tmp_path / "out.csv"
    code, _, err = cli("compare", INSTANCES / "cdgs" / "small-t20-b10-s0.json", "-m", "cgsc-cstp", "--option", "m=0",
                       "-o", out)
    assert code == 2 and "m must be >= 1" in err and "Traceback" not in err and not out.exists()


def test_a_method_registered_later_is_found():
    from edgeopt.registry import method
    from edgeopt.problems.partition import Solution

    registry.problems()  # the registry has loaded

    @method("partition", "all-on-source-again", "baseline")
    def again(instance, *, seed=0, time_limit=None):
        """Test method."""
        return Solution(place=[instance.data.source] * len(instance.data.layers))

    try:
        r = registry.problem("partition").method("all-on-source-again").run(small_instance(0))
        assert r.status in ("feasible", "infeasible") and r.solution is not None
    finally:
        registry.problem("partition").methods.pop("all-on-source-again")


def test_writes_replace_a_planted_symlink_never_follow_it(tmp_path):
    """A link planted at the output path must not redirect edgeopt's write to the file it points at."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    for name in ("out.json", "out.csv"):
        target = tmp_path / name
        target.symlink_to(victim)
        io.write_bytes(b"new", target)
        assert not target.is_symlink() and target.read_bytes() == b"new"
    assert victim.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.json", "victim.txt"]


def test_missing_default_solver_is_a_row_not_a_crash(monkeypatch):
    """`solve -m all` still runs every other method when the exact method's solver is not installed."""
    import edgeopt
    from edgeopt.problems.offload import small_instance as offload_instance
    from edgeopt.solvers import pyomo as backend

    monkeypatch.setitem(backend._MODERN, "scip", ("no-such-solver", "pip install pyscipopt"))
    rows = {r.method: r for r in edgeopt.solve(offload_instance(0), "all", time_limit=10)}
    assert rows["minlp"].status == "unavailable" and "pip install pyscipopt" in rows["minlp"].message
    assert rows["ts-mito"].feasible
    with pytest.raises(InputError, match="not available"):  # named by the user: exit 2
        edgeopt.solve(offload_instance(0), "minlp", solver="scip")


@pytest.mark.parametrize("fmt", ["nl", "gms"])
def test_export_of_the_minlp_uses_a_nonlinear_format(cli, tmp_path, fmt):
    from edgeopt.problems.offload import small_instance as offload_instance

    inst = tmp_path / "o.json"
    io.save(offload_instance(0), inst)
    out = tmp_path / f"m.{fmt}"
    code, _, err = cli("export", inst, "--format", fmt, "-o", out)
    assert code == 0 and out.stat().st_size > 0, err
    code, _, err = cli("export", inst, "--format", "lp", "-o", tmp_path / "m.lp")
    assert code == 2 and "use --format nl" in err and not (tmp_path / "m.lp").exists()


def test_export_of_a_problem_without_a_model_names_the_file(cli, tmp_path):
    from edgeopt.problems.stepsplit import small_instance as step_instance

    inst = tmp_path / "s.json"
    io.save(step_instance(0), inst)
    code, _, err = cli("export", inst, "--format", "lp", "-o", tmp_path / "m.lp")
    assert code == 2 and str(inst) in err and "FILE" not in err


def test_validate_checks_every_solution_of_a_multi_method_file(cli, tmp_path):
    inst = tmp_path / "p.json"
    io.save(small_instance(0), inst)
    sols = tmp_path / "s.json"
    code, _, _ = cli("solve", inst, "-m", "dp-latency", "-m", "cloud-edge-opt", "-o", sols)
    assert code == 0 and len(json.loads(sols.read_text())) == 2
    code, out, _ = cli("validate", inst, sols, "--json")
    verdicts = json.loads(out)
    assert [v["method"] for v in verdicts] == ["dp-latency", "cloud-edge-opt"]
    assert code == (0 if all(v["feasible"] for v in verdicts) else 1)


def test_file_dict_validates_as_written():
    """Instance.model_validate takes a file's own dict, "problem" key included, and rejects another problem's."""
    doc = io.instance_doc(small_instance(0))
    inst = type(small_instance(0)).model_validate(doc)
    assert io.instance_doc(inst) == doc
    from pydantic import ValidationError

    with pytest.raises((InputError, ValidationError)):
        type(small_instance(0)).model_validate({**doc, "problem": "qllms"})


def test_every_method_returns_an_outcome():
    """One return type: whatever a method's body returns, its plain function hands back an Outcome."""
    from edgeopt.result import Outcome

    for pid, prob in registry.problems().items():
        inst = prob.module.small_instance(0)
        for m in prob.methods.values():
            if m.kind != "exact" and not m.not_applicable(inst):
                assert isinstance(m(inst, seed=0), Outcome), f"{pid}.{m.name}"


@pytest.mark.parametrize("problem_id", sorted(registry.problems()))
def test_bad_generator_options_are_exit_2(cli, tmp_path, problem_id):
    """Option values are checked against the generator's signature: wrong types, NaN and unknown names."""
    import inspect

    params = [p for p in inspect.signature(registry.problem(problem_id).module.generate).parameters
              if p not in ("preset", "size", "seed")]
    out = tmp_path / "g.json"
    cases = [["--option", "warp=1"], ["--size", "-1"]]
    cases += [["--option", f"{p}={v}"] for p in params for v in ("NaN", "[[1]]", "{}")]
    for args in cases:
        code, _, err = cli("generate", problem_id, *args, "-o", out)
        if code == 0:  # a generator may take any value of a free-form option (a name, say)
            out.unlink()
            continue
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (args, err)
        assert not out.exists()


def test_records_checked_by_column_equal_records_checked_by_pydantic():
    """qllms tasks: plain dicts take the column path, objects and odd-but-valid values pydantic's; same data."""
    from edgeopt.problems.qllms import Instance, Task, small_instance as qllms_instance

    doc = io.instance_doc(qllms_instance(3))
    doc["data"]["tasks"][1]["cloud"] = None
    plain = io.parse_instance(doc)
    objects = dict(doc, data=dict(doc["data"], tasks=[Task.model_validate(t) for t in doc["data"]["tasks"]]))
    odd = json.loads(json.dumps(doc))
    odd["data"]["tasks"][0]["slo_lat"] = str(odd["data"]["tasks"][0]["slo_lat"])  # pydantic's lax mode: "2.0" -> 2.0
    for other in (Instance.model_validate(objects), io.parse_instance(odd)):
        assert io.instance_doc(other) == io.instance_doc(plain)
        for name in ("slo_lat", "slo_ppl", "cloud", "in_tokens"):
            np.testing.assert_array_equal(other.data.tasks.column(name), plain.data.tasks.column(name))
    tasks = plain.data.tasks
    assert np.isnan(tasks.column("cloud")[1]) and tasks[1].cloud is None
    assert [t.model_dump() for t in tasks] == [Task.model_validate(t).model_dump() for t in doc["data"]["tasks"]]
    assert tasks[-1] is tasks[len(tasks) - 1] and tasks[:2] == [tasks[0], tasks[1]]


def test_records_refuse_a_model_the_column_check_cannot_hold():
    from pydantic import BaseModel

    from edgeopt.model import records

    class Nested(BaseModel):
        values: list[float]

    with pytest.raises(TypeError, match="Nested.values"):
        records(Nested)


def test_the_cached_list_is_the_registry(monkeypatch, tmp_path, cli):
    """``edgeopt list`` answers from a cache (importing every problem takes seconds): what it prints must be what the
    registry says, and the cache is rebuilt when a source file changes."""
    from edgeopt.catalog import catalog

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    built = catalog()
    assert len(list((tmp_path / "edgeopt").glob("list-*.json"))) == 1 and catalog() == built
    for pid, prob in registry.problems().items():
        doc = built["problems"][pid]
        assert doc["sense"] == prob.sense and doc["presets"] == prob.presets
        assert doc["methods"] == {m.name: {"kind": m.kind, "summary": m.doc, "description": m.description}
                                  for m in prob.methods.values()}
    code, out, _ = cli("list", "--json")
    assert code == 0 and json.loads(out) == built


def test_an_interrupt_raised_inside_a_gc_callback_is_not_lost():
    """A signal that lands in a garbage-collector callback (JAX has one) raises Interrupted where Python can only
    ignore it; it must be raised again in the code that runs next (a Ctrl-C during training was sometimes lost)."""
    def callback(phase, info):
        if phase == "start":
            raise Interrupted(signal.SIGINT)  # as the handler does when the signal arrives in the callback

    restore = catch_signals()
    gc.callbacks.append(callback)
    try:
        with pytest.raises(Interrupted):
            gc.collect()
            for _ in range(1000):  # the signal is tripped again 20 ms later, and raised in one of these
                time.sleep(0.01)
    finally:
        gc.callbacks.remove(callback)
        restore()
