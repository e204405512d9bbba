"""Fuzzing the file readers: bad input is one line and exit 2, and whatever validates is safe to solve.

Every case starts from a problem's ``small_instance(seed)`` document (or a solution document a
heuristic wrote for it), mutates it, writes the bytes itself (so that NaN and 1e400 literals,
duplicate keys, broken UTF-8 and broken gzip reach the parser) and runs ``edgeopt validate``
in-process; an exception escaping the CLI fails the case. A file that validates is then solved by
every heuristic and baseline of its problem. Numbers set to the ends of their schema ranges check
that the ranges keep the arithmetic finite. Cases are seeded by their id: ``-k`` reruns one alone.
"""
from __future__ import annotations

import copy
import gzip
import importlib
import json
import math
import random
import signal

import numpy as np
import pytest

import edgeopt
from edgeopt import io, registry

PROBLEMS = sorted(registry.problems())
N_INSTANCE, N_SOLUTION = 160, 40  # cases per problem
CASE_TIMEOUT_S = 20  # validate plus every heuristic and baseline of one case
MARK = "@@fuzz@@"
TOP_KEYS = ("problem", "format_version", "name", "meta", "data", "solution", "(top level)")
LITERALS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "-1", "0", '"x"', "null", "[1, 2]", '{"a": 1}',
            "1e308", "-1e308", "123456789012345678901234567890", "-123456789012345678901234567890", "true", "0.5"]
WRONG_TYPES = ['["partition"]', "{}", "1.0", "true", "null", '"1"', "2", "-1", "1e400"]
DEEP = "[" * 1000 + "]" * 1000


class CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException so that no method's ``except Exception`` swallows it."""


def _alarm(signum, frame):
    raise CaseTimeout


# --- mutations --------------------------------------------------------------------------------------

def _descend(rng: random.Random, root, want) -> tuple | None:
    """Walk a random path from ``root`` down to a leaf: (path, node) of a node on it where ``want(node)``."""
    path, node, trail = (), root, []
    while True:
        trail.append((path, node))
        if not isinstance(node, (dict, list)) or not node:
            break
        key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        path, node = path + (key,), node[key]
    hits = [(p, n) for p, n in trail if want(n)]
    return rng.choice(hits) if hits else None


def _set(doc, path: tuple, value) -> None:
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _is_leaf(n) -> bool:
    return not isinstance(n, (dict, list)) or not n


def _is_number(n) -> bool:
    return isinstance(n, (int, float)) and not isinstance(n, bool)


def _schema_at(schema: dict, path: tuple) -> dict | None:
    """The JSON Schema node describing the value at ``path`` (None where the schema does not say)."""
    def resolve(node):
        while node is not None and ("$ref" in node or "anyOf" in node):
            node = (schema["$defs"][node["$ref"].rsplit("/", 1)[1]] if "$ref" in node
                    else next((s for s in node["anyOf"] if s.get("type") != "null"), None))
        return node

    node = resolve(schema)
    for key in path:
        if isinstance(key, str):
            node = node.get("properties", {}).get(key)
        elif "prefixItems" in node:
            node = node["prefixItems"][key] if key < len(node["prefixItems"]) else None
        else:
            node = node.get("items")
        node = resolve(node)
        if node is None:
            return None
    return node


def _edges(node: dict) -> list[str]:
    """Literals at and just beyond the range of a schema number: the values a range must make safe."""
    out = []
    integer = node.get("type") == "integer"
    for key, inside, outside in (("minimum", 0, -1), ("maximum", 0, 1),
                                 ("exclusiveMinimum", 1, 0), ("exclusiveMaximum", -1, 0)):
        if key in node:
            v = node[key]
            for step in (inside, outside):
                if integer:
                    out.append(str(int(v) + step))
                else:
                    out.append(repr(float(v) if step == 0 else float(np.nextafter(float(v), step * math.inf))))
    return out


def _text(doc, rng: random.Random, literal: str | None = None) -> str:
    """The document as JSON text with the marker replaced by ``literal`` (raw, not quoted)."""
    text = json.dumps(doc, indent=rng.choice([None, 1]))
    return text if literal is None else text.replace(json.dumps(MARK), literal)


def mutate(doc: dict, rng: random.Random, schema: dict, focus: tuple = ()) -> tuple[str, str, bytes, str]:
    """One random mutation of ``doc``, mostly under ``focus``: (kind, description, file bytes, file suffix)."""
    doc = copy.deepcopy(doc)
    root = () if rng.random() < 0.3 else focus
    base = doc
    for key in root:
        base = base[key]

    def pick(want):
        found = _descend(rng, base, want)
        return (root + found[0], found[1]) if found else None

    kind = rng.choice(["delete", "leaf", "leaf", "leaf", "length", "deep", "top", "duplicate", "utf8", "gzip",
                       "edge", "edge"])
    if kind == "delete":
        path, node = pick(lambda n: isinstance(n, dict) and n)
        key = rng.choice(list(node))
        del node[key]
        return kind, f"delete {path + (key,)}", _text(doc, rng).encode(), ".json"
    if kind in ("leaf", "deep"):
        path, _ = pick(_is_leaf if kind == "deep" or rng.random() < 0.8 else lambda n: True)
        path = path or ("data",)
        literal = DEEP if kind == "deep" else rng.choice(LITERALS)
        _set(doc, path, MARK)
        return kind, f"{path} = {literal[:40]}", _text(doc, rng, literal).encode(), ".json"
    if kind == "edge":  # one to three numbers at or just beyond the ends of their ranges
        edits = []
        for _ in range(rng.randint(1, 3)):
            found = pick(_is_number)
            node = found and _schema_at(schema, found[0])
            if node and _edges(node):
                edits.append((found[0], rng.choice(_edges(node))))
                _set(doc, found[0], f"{MARK}{len(edits)}")
        text = _text(doc, rng)
        for k, (_, literal) in enumerate(edits, 1):
            text = text.replace(json.dumps(f"{MARK}{k}"), literal)
        return kind, "range edges " + ", ".join(f"{p} = {v}" for p, v in edits), text.encode(), ".json"
    if kind == "length":
        found = pick(lambda n: isinstance(n, list) and n)
        if found is None:
            return kind, "no list to change", _text(doc, rng).encode(), ".json"
        path, node = found
        k = rng.randrange(len(node))
        if rng.random() < 0.5:
            node.pop(k)
            return kind, f"pop {path}[{k}]", _text(doc, rng).encode(), ".json"
        node.insert(k, copy.deepcopy(node[k]))
        return kind, f"duplicate {path}[{k}]", _text(doc, rng).encode(), ".json"
    if kind == "top":
        key = rng.choice(["problem", "format_version"])
        literal = rng.choice(WRONG_TYPES)
        doc[key] = MARK
        return kind, f"{key} = {literal}", _text(doc, rng, literal).encode(), ".json"
    if kind == "duplicate":
        path, node = pick(lambda n: isinstance(n, dict) and n)
        key = rng.choice(list(node))
        first = json.dumps(node[key])
        node[key] = MARK
        literal = rng.choice(LITERALS)
        return kind, f"duplicate key {path + (key,)}: then {literal}", \
            _text(doc, rng, f"{first}, {json.dumps(key)}: {literal}").encode(), ".json"
    if kind == "utf8":
        raw = _text(doc, rng).encode()
        k = rng.randrange(len(raw))
        bad = rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"])
        return kind, f"bytes {bad!r} at {k}", raw[:k] + bad + raw[k:], ".json"
    raw = gzip.compress(_text(doc, rng).encode(), mtime=0)
    how = rng.choice(["intact", "truncated", "corrupted", "empty"])
    if how == "truncated":
        raw = raw[:rng.randrange(len(raw))]
    elif how == "corrupted":
        k = rng.randrange(10, len(raw))
        raw = raw[:k] + bytes([raw[k] ^ 0xFF]) + raw[k + 1:]
    elif how == "empty":
        raw = b""
    return kind, f"gzip {how}", raw, ".json.gz"


# --- running the CLI --------------------------------------------------------------------------------

def check_error(code: int, err: str, roots: tuple[str, ...]) -> None:
    """Exit 2 means one line ``error: <file or field path> <rule>``."""
    assert "Traceback" not in err, err
    if code != 2:
        return
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert lines[0][len("error: "):].startswith(roots), err


def solve_all(problem_id: str, inst) -> list[str]:
    """Every heuristic and baseline on a validated instance: what went wrong, if anything."""
    bad = []
    for name, m in registry.problem(problem_id).methods.items():
        if m.kind == "exact":
            continue
        r = edgeopt.solve(inst, name, time_limit=5)
        if r.status == "error" and not (r.message or "").startswith("NotApplicable"):
            bad.append(f"{name}: {r.message}")
        elif r.objective is not None and not math.isfinite(r.objective):
            bad.append(f"{name}: objective {r.objective}")
        elif _has_nan(r.details):
            bad.append(f"{name}: NaN in the referee's details {r.details}")
    return bad


def _has_nan(x) -> bool:
    if isinstance(x, dict):
        return any(map(_has_nan, x.values()))
    if isinstance(x, (list, tuple, np.ndarray)):
        return any(map(_has_nan, x))
    return isinstance(x, (float, np.floating)) and math.isnan(x)


def _cases(kind: str, n: int) -> list:
    return [pytest.param(pid, i, id=f"{pid}-{kind}{i}") for pid in PROBLEMS for i in range(n)]


def _small(problem_id: str, i: int):
    return importlib.import_module(f"edgeopt.problems.{problem_id}").small_instance(i % 3)


@pytest.fixture
def alarm():
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_TIMEOUT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("problem_id,i", _cases("instance", N_INSTANCE))
def test_mutated_instance_is_exit_2_or_safe_to_solve(problem_id, i, tmp_path, alarm, cli):
    """Bad input is one line naming the place; an instance that validates never breaks a method."""
    rng = random.Random(f"{problem_id}-instance-{i}")
    _, what, raw, suffix = mutate(io.instance_doc(_small(problem_id, i)), rng, io.schema(problem_id), ("data",))
    path = tmp_path / f"case{suffix}"
    path.write_bytes(raw)
    code, _, err = cli("validate", path)
    assert code in (0, 2), f"{what}: exit {code}: {err}"
    check_error(code, err, (str(path),))
    if code == 0:
        bad = solve_all(problem_id, io.load(path))
        assert not bad, f"{what}: {bad}"


@pytest.mark.parametrize("problem_id,i", _cases("solution", N_SOLUTION))
def test_mutated_solution_is_judged_or_exit_2(problem_id, i, tmp_path, alarm, cli):
    """A solution file is input too: the referee judges it (exit 0/1) or it is rejected in one line."""
    rng = random.Random(f"{problem_id}-solution-{i}")
    inst = _small(problem_id, i)
    prob = registry.problem(problem_id)
    method = next(m for m in prob.methods.values() if m.kind in ("heuristic", "baseline") and not m.not_applicable(inst))
    doc = io.solution_doc(edgeopt.solve(inst, method.name))
    schema = prob.solution_type.model_json_schema()
    schema = {"$defs": schema.pop("$defs", {}), "properties": {"solution": schema}}
    _, what, raw, suffix = mutate(doc, rng, schema, ("solution",))
    inst_path, path = tmp_path / "inst.json", tmp_path / f"sol{suffix}"
    io.save(inst, inst_path)
    path.write_bytes(raw)
    code, _, err = cli("validate", inst_path, path)
    assert code in (0, 1, 2), f"{what}: exit {code}: {err}"
    check_error(code, err, (str(path), *TOP_KEYS, *doc))


REPORTED = {  # issue 9: each of these validated, then broke a method
    "stepsplit-prior_steps-1e400": ("stepsplit", ("data", "prior_steps", 1), "1e400"),
    "stepsplit-noise_dbm--1": ("stepsplit", ("data", "downlink", "noise_dbm"), "-1"),
    "stepsplit-noise_dbm-1e308": ("stepsplit", ("data", "downlink", "noise_dbm"), "1e308"),
    "stepsplit-quality.base--1": ("stepsplit", ("data", "quality", "base"), "-1"),
    "offload-tflops_per_step-1e308": ("offload", ("data", "edges", 0, "tflops_per_step"), "1e308"),
}


@pytest.mark.parametrize("case", REPORTED)
def test_reported_crashes_are_rejected_or_solved(case, tmp_path, alarm, cli):
    """The files of the issue: rejected in one line, or solved by every method without error or NaN."""
    problem_id, where, literal = REPORTED[case]
    doc = io.instance_doc(_small(problem_id, 0))
    _set(doc, where, MARK)
    path = tmp_path / "case.json"
    path.write_text(json.dumps(doc).replace(json.dumps(MARK), literal))
    code, _, err = cli("validate", path)
    check_error(code, err, (str(path),))
    if code == 0:
        assert not solve_all(problem_id, io.load(path))


@pytest.mark.parametrize("problem_id", PROBLEMS)
def test_every_number_in_the_schemas_has_a_range(problem_id):
    """A new field without a range fails here: every number of an instance or solution file is bounded."""
    missing = []

    def walk(node, where):
        if isinstance(node, dict):
            if node.get("type") in ("number", "integer") and not (
                    {"minimum", "exclusiveMinimum"} & node.keys() and {"maximum", "exclusiveMaximum"} & node.keys()):
                missing.append(where)
            for k, v in node.items():
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for k, v in enumerate(node):
                walk(v, f"{where}/{k}")

    walk(io.schema(problem_id), "instance")
    walk(registry.problem(problem_id).solution_type.model_json_schema(), "solution")
    assert not missing, missing


GARBAGE = {"random bytes": bytes(random.Random(0).randrange(256) for _ in range(3000)), "empty": b"",
           "non-UTF-8": b"3 4\n\xff\xfe 1 2\n", "numbers too large": b"1 2\n1e400 5\n3 4\n7\n",
           "truncated": b"2 3\n1 2 3\n4 5"}


@pytest.mark.parametrize("kind", sorted(registry.importers()))
@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_importer_on_garbage_is_exit_2(cli, tmp_path, kind, case):
    """An imported benchmark file is input too: one line naming it, never a traceback, nothing written."""
    path, out = tmp_path / "in.txt", tmp_path / "out.json"
    path.write_bytes(GARBAGE[case])
    code, _, err = cli("import", kind, path, "-o", out, *(["--processors", "2"] if kind == "stg" else []))
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and not out.exists(), err


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_compare_resume_file_on_garbage_is_exit_2(cli, tmp_path, case):
    """The CSV `compare -o` resumes from is read back: a broken one is an input error, left as it was."""
    inst, out = tmp_path / "p.json", tmp_path / "rows.csv"
    io.save(importlib.import_module("edgeopt.problems.partition").small_instance(0), inst)
    out.write_bytes(b"problem,instance,method\n" + GARBAGE[case])
    code, _, err = cli("compare", inst, "-m", "dp-latency", "-o", out)
    assert code in (0, 2) and "Traceback" not in err
    if code == 2:
        assert out.read_bytes() == b"problem,instance,method\n" + GARBAGE[case]
