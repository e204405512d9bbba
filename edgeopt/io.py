"""Read and write instance and solution files (``.json`` or ``.json.gz``), and their JSON Schema.

Every way a file can be wrong ends in an InputError naming the field path and the rule; writes go
through a temporary file so that a failed command leaves nothing half-written.
"""
from __future__ import annotations

import gc
import gzip
import json
import math
import os
import tempfile
import zlib
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from pydantic import ValidationError

from edgeopt import limits, registry
from edgeopt.model import InputError, shown, validation_error
from edgeopt.result import Result

FORMAT_VERSION = 1


class _NonFinite(float):
    """A NaN/Infinity literal as the lenient parser saw it, kept only to name where it stood."""

    def __new__(cls, text: str):
        obj = super().__new__(cls, "nan")
        obj.text = text
        return obj


def _first_non_finite(doc: Any, path: str = "") -> tuple[str, str] | None:
    """(path, what) of the first NaN/Infinity literal or overflowing number in a parsed document."""
    if isinstance(doc, float) and not math.isfinite(doc):
        return path or "(top level)", doc.text if isinstance(doc, _NonFinite) else ""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        found = _first_non_finite(value, f"{path}[{key}]" if isinstance(key, int) else
                                  (f"{path}.{key}" if path else str(key)))
        if found:
            return found
    return None


def parse_json(raw: bytes, where: str) -> Any:
    """Parse JSON bytes with orjson; every way they can be wrong is an InputError naming the place.

    JSON has no NaN or Infinity, and a number like 1e400 does not fit a double: both are rejected
    with the path of the field they stand in (found by a second, lenient parse).
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        fast_error = str(exc)
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_NonFinite)
    except UnicodeDecodeError as exc:
        raise InputError(where, f"is not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise InputError(where, f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InputError(where, "nests lists or objects too deep to parse") from None
    try:
        found = _first_non_finite(doc)
    except RecursionError:
        raise InputError(where, "nests lists or objects too deep to parse") from None
    if found:
        path, literal = found
        if literal:
            raise InputError(path, f"must be a finite number, got {literal} (JSON has no NaN or Infinity; "
                                   "use null where a value may be missing)")
        raise InputError(path, "must be finite, got a number beyond the range of a double")
    if "recursion" in fast_error:
        raise InputError(where, "nests lists or objects too deep to parse")
    raise InputError(where, f"is not valid JSON: {fast_error}")


def read_input(path: str | os.PathLike, what: str) -> bytes:
    """The bytes of an input file (a ``.gz`` inflated), refused beyond the input cap (``edgeopt.limits``).

    A ``.gz`` is inflated as a stream and stopped one byte past the cap, so a small file that inflates to
    gigabytes costs no more memory than the cap: exit 2, one line naming the file, the cap and its knob.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), f"does not exist (expected {what})")
    cap = limits.input_cap()
    try:
        limits.check_input(path.stat().st_size, str(path))
        with open(path, "rb") as fh:
            raw = fh.read(cap + 1)
    except OSError as exc:
        raise InputError(str(path), f"cannot be read: {exc.strerror or exc}") from None
    limits.check_input(len(raw), str(path))
    if path.name.endswith(".gz"):
        raw = gunzip(raw, cap, str(path))
        limits.check_input(len(raw), str(path), inflated=True)
    return raw


def gunzip(raw: bytes, cap: int, where: str) -> bytes:
    """``raw`` inflated as a stream and stopped one byte past ``cap``: more than ``cap`` bytes back means it
    inflates beyond the cap (a 4 MB gzip bomb costs no more memory than the cap). A broken stream is an
    InputError naming ``where``."""
    try:
        with gzip.GzipFile(fileobj=BytesIO(raw)) as fh:
            return fh.read(cap + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(where, f"is not a readable gzip file ({exc})") from None


def _read_json(path: str | os.PathLike, what: str) -> Any:
    return parse_json(read_input(path, what), str(path))


@contextmanager
def _gc_paused():
    """Python's cyclic garbage collector paused while a file becomes objects: parsing and checking create
    tens of thousands of containers and no cycles, so the collections the allocations trigger find nothing
    (a 100,000-task qllms file: 0.90 -> 0.64 of ``json.load``'s time). It runs again afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):  # non-contiguous or object arrays; orjson writes contiguous ones itself
        return np.ascontiguousarray(obj) if obj.dtype != object else obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def dumps(obj: Any, indent: bool = True) -> bytes:
    """JSON bytes for ``obj``; NumPy arrays and scalars written directly, NaN entries as null."""
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(obj, default=_default, option=option)


def write_bytes(data: bytes, path: str | os.PathLike) -> None:
    """Write ``data`` atomically: a uniquely named temporary file in the target folder, renamed into place.

    ``os.replace`` swaps the directory entry, so a symlink planted at the target is replaced, never followed.
    A path that cannot be written (a directory, no permission, a full disk) is an InputError naming it.
    """
    path = Path(path)
    try:
        _write_bytes(data, path)
    except OSError as exc:
        raise InputError(str(path), f"cannot be written: {exc.strerror or exc}") from None


def _write_bytes(data: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a written file gets the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` as JSON (gzipped for ``.gz``) atomically."""
    path = Path(path)
    text = dumps(obj, indent=not path.name.endswith(".gz"))
    write_bytes(gzip.compress(text, compresslevel=6, mtime=0) if path.name.endswith(".gz") else text, path)


def parse_instance(doc: Any, problem_id: str | None = None):
    """A dict in the instance-file layout -> the problem's validated Instance."""
    if not isinstance(doc, dict):
        raise InputError("(top level)", "must be a JSON object with keys problem, format_version, name, meta, data")
    if "problem" not in doc:
        raise InputError("problem", "is required (one of " + ", ".join(registry.problems()) + ")")
    if not isinstance(doc["problem"], str):
        raise InputError("problem", f"must be a string, one of {', '.join(registry.problems())}")
    prob = registry.problem(doc["problem"])
    if problem_id is not None and prob.id != problem_id:
        raise InputError("problem", f"must be {problem_id!r}, got {shown(doc['problem'])}")
    version = doc.get("format_version", FORMAT_VERSION)
    if type(version) is not int or version != FORMAT_VERSION:
        raise InputError("format_version", f"must be the integer {FORMAT_VERSION}, got {shown(version)}")
    try:
        return prob.instance_type.model_validate(doc)
    except ValidationError as exc:
        raise validation_error(exc) from None
    except RecursionError:
        raise InputError("data", "nests lists or objects too deep") from None


def load(source: str | os.PathLike | dict):
    """Load an instance from a file path (``.json``/``.json.gz``) or an already-parsed dict."""
    if isinstance(source, dict):
        return parse_instance(source)
    try:
        with _gc_paused():
            return parse_instance(_read_json(source, "an instance file"))
    except InputError as exc:
        if str(source) in exc.path:
            raise
        raise InputError(f"{source}: {exc.path}", exc.rule) from None


def instance_doc(instance) -> dict:
    """The instance-file layout as plain JSON types (lists, null for NaN)."""
    return {"problem": instance.problem, **instance.model_dump(mode="json")}


def save(instance, path: str | os.PathLike) -> None:
    """Write an instance file; arrays go to orjson as NumPy arrays (NaN -> null), not as Python lists."""
    write_json({"problem": instance.problem, **instance.model_dump()}, path)


def parse_solution(instance, doc: Any):
    """The ``solution`` part of a solution file (or a bare decision dict) -> the problem's Solution."""
    prob = registry.problem(instance.problem)
    if isinstance(doc, dict) and "solution" in doc:
        if doc.get("problem", instance.problem) != instance.problem:
            raise InputError("problem", f"must be {instance.problem!r} to match the instance, got {shown(doc['problem'])}")
        doc = doc["solution"]
    try:
        return prob.solution_type.model_validate(doc)
    except ValidationError as exc:
        raise validation_error(exc, "solution") from None
    except RecursionError:
        raise InputError("solution", "nests lists or objects too deep") from None


def load_solution(instance, path: str | os.PathLike):
    return parse_solution(instance, _read_json(path, "a solution file"))


def load_solutions(instance, path: str | os.PathLike) -> list[tuple[str | None, Any]]:
    """(method, Solution) of every solution in a file: one solution, or the array `solve -o` writes."""
    doc = _read_json(path, "a solution file")
    if not isinstance(doc, list):
        return [(doc.get("method") if isinstance(doc, dict) else None, parse_solution(instance, doc))]
    if not doc:
        raise InputError(f"{path}", "is an empty array (expected solutions)")
    out = []
    for k, item in enumerate(doc):
        try:
            out.append((item.get("method") if isinstance(item, dict) else None, parse_solution(instance, item)))
        except InputError as exc:
            raise InputError(f"[{k}].{exc.path}", exc.rule) from None
    return out


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
    s = registry.problem(problem_id).instance_type.model_json_schema()  # the ``problem`` key first (model.Instance)
    s["title"] = f"edgeopt {problem_id} instance"
    return s
