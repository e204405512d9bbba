"""The shared core: import hygiene, file round trips, the registry's contract."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from edgeopt import InputError, io, registry
from edgeopt.problems.partition import small_instance


def test_core_path_never_imports_fancyimpute():
    code = ("import sys, edgeopt; from edgeopt.problems.qllms import small_instance; "
            "edgeopt.solve(small_instance(0), 'all'); print('fancyimpute' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


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
    with pytest.raises(ValueError):
        io.write_json({"x": float("nan")}, tmp_path / "out.json")
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
        inst = prob.module.small_instance(0)
        assert io.parse_instance(io.instance_doc(inst)).model_dump(mode="json") == inst.model_dump(mode="json")


def test_unknown_method_and_option_are_input_errors():
    inst = small_instance(0)
    prob = registry.problem("partition")
    with pytest.raises(InputError, match="--method must be one of"):
        prob.method("magic")
    with pytest.raises(InputError, match="--warp is not an option"):
        prob.method("edge-solo").run(inst, warp=9)


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
