"""Read and write instance and solution files (``.json`` or ``.json.gz``), and their JSON Schema.

Every way a file can be wrong ends in an InputError naming the field path and the rule; writes go
through a temporary file so that a failed command leaves nothing half-written.
"""
from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgeopt import registry
from edgeopt.model import InputError
from edgeopt.result import Result

FORMAT_VERSION = 1


def _read_json(path: str | os.PathLike, what: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), f"does not exist (expected {what})")
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                return json.load(fh)
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise InputError(str(path), f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputError(str(path), f"cannot be read: {exc}") from None


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` as JSON (gzipped for ``.gz``) atomically: a temp file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a written file gets the usual permissions
        with os.fdopen(fd, "wb") as fh:
            text = json.dumps(obj, indent=1, allow_nan=False).encode("utf-8")
            fh.write(gzip.compress(text, mtime=0) if path.name.endswith(".gz") else text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_error(exc: ValidationError, prefix: str = "") -> InputError:
    """The first pydantic error as an InputError with a dotted field path."""
    err = exc.errors()[0]
    path = _loc(tuple(err["loc"]))
    path = f"{prefix}.{path}" if prefix and path else (prefix or path or "(top level)")
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        msg = "is required"
    elif err["type"] == "extra_forbidden":
        msg = "is not a known field"
    elif err["type"] == "literal_error":
        msg = msg.replace("Input should be", "must be")
    elif not msg.startswith("["):
        msg = msg.replace("Input should be", "must be")
    return InputError(path, msg)


def parse_instance(doc: Any, problem_id: str | None = None):
    """A dict in the instance-file layout -> the problem's validated Instance."""
    if not isinstance(doc, dict):
        raise InputError("(top level)", "must be a JSON object with keys problem, format_version, name, meta, data")
    if "problem" not in doc:
        raise InputError("problem", "is required (one of " + ", ".join(registry.problems()) + ")")
    prob = registry.problem(doc["problem"])
    if problem_id is not None and prob.id != problem_id:
        raise InputError("problem", f"must be {problem_id!r}, got {doc['problem']!r}")
    if doc.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        raise InputError("format_version", f"must be {FORMAT_VERSION}, got {doc['format_version']!r}")
    body = {k: v for k, v in doc.items() if k != "problem"}
    try:
        return prob.instance_type.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from None


def load(source: str | os.PathLike | dict):
    """Load an instance from a file path (``.json``/``.json.gz``) or an already-parsed dict."""
    if isinstance(source, dict):
        return parse_instance(source)
    try:
        return parse_instance(_read_json(source, "an instance file"))
    except InputError as exc:
        if str(source) in exc.path:
            raise
        raise InputError(f"{source}: {exc.path}", exc.rule) from None


def instance_doc(instance) -> dict:
    return {"problem": instance.problem, **instance.model_dump(mode="json")}


def save(instance, path: str | os.PathLike) -> None:
    write_json(instance_doc(instance), path)


def parse_solution(instance, doc: Any):
    """The ``solution`` part of a solution file (or a bare decision dict) -> the problem's Solution."""
    prob = registry.problem(instance.problem)
    if isinstance(doc, dict) and "solution" in doc:
        if doc.get("problem", instance.problem) != instance.problem:
            raise InputError("problem", f"must be {instance.problem!r} to match the instance, got {doc['problem']!r}")
        doc = doc["solution"]
    try:
        return prob.solution_type.model_validate(doc)
    except ValidationError as exc:
        raise validation_error(exc, "solution") from None


def load_solution(instance, path: str | os.PathLike):
    return parse_solution(instance, _read_json(path, "a solution file"))


def solution_doc(result: Result) -> dict:
    """The solution-file layout of DESIGN.md for one method's result."""
    return {
        "problem": result.problem,
        "instance": result.instance,
        "method": result.method,
        "solution": result.solution,
        "evaluation": {
            "objective": result.objective,
            "feasible": result.feasible,
            "violations": result.violations,
            "details": result.details,
        },
        "solver": {
            "status": result.status,
            "bound": result.bound,
            "gap": result.gap,
            "wall_s": result.wall_s,
            "name": result.solver,
        },
    }


def schema(problem_id: str) -> dict:
    """JSON Schema of an instance file of ``problem_id``."""
    prob = registry.problem(problem_id)
    s = prob.instance_type.model_json_schema()
    s["properties"] = {"problem": {"const": problem_id}, **s.get("properties", {})}
    s["required"] = ["problem", "data", *[r for r in s.get("required", []) if r != "data"]]
    s["title"] = f"edgeopt {problem_id} instance"
    return s
