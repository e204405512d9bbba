"""Typed building blocks every problem's Instance and Solution are made of.

Instances are pydantic v2 models whose array fields hold NumPy arrays after validation. Every
check names the field path and the rule (``data.devices[2].mem_gb must be > 0``) so that a bad
file never reaches a method.
"""
from __future__ import annotations

from functools import partial
from itertools import chain
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationError, WithJsonSchema,
                      field_validator, model_validator)

from edgeopt.errors import InputError

INT_LIMIT = 2**53  # integers beyond this are not exact in a double (JSON numbers, NumPy casts)
META_DEPTH = 32  # free-form ``meta`` may nest this deep; deeper could not be written back


def _index(idx: tuple) -> str:
    return "".join(f"[{int(i)}]" for i in idx)


_KIND = {bool: "true/false", int: "an integer", float: "a number"}
_LEAF_TYPES = {bool: {bool}, int: {int, float}, float: {int, float}}


def _leaf_types(value: Any, ndim: int) -> set | None:
    """The set of leaf types of nested lists ``ndim`` deep, or None when the nesting is not lists."""
    if type(value) is not list:
        return None
    level = value
    for _ in range(ndim - 1):
        if set(map(type, level)) - {list}:
            return None
        level = list(chain.from_iterable(level))
    return set(map(type, level))


def _first_list(value: Any, ndim: int, prefix: tuple = ()) -> tuple | None:
    """Index of the first entry ``ndim`` deep that is itself a list (the nesting goes too deep)."""
    for i, x in enumerate(value):
        if ndim == 1 and isinstance(x, (list, tuple)):
            return prefix + (i,)
        if ndim > 1 and isinstance(x, (list, tuple)):
            found = _first_list(x, ndim - 1, prefix + (i,))
            if found:
                return found
    return None


def _to_array(value: Any, *, ndim: int, dtype: type, nullable: bool, bounds: tuple) -> np.ndarray:
    """Nested lists (or an array) -> a NumPy array of ``dtype``, checked in whole-array operations.

    The fast path converts in one NumPy call once the leaf types are known to be right; anything
    unusual goes to the element-wise path, which names the first bad index.
    """
    if isinstance(value, np.ndarray):
        arr = value
        ok_kind = {bool: "b", int: "iu", float: "iuf"}[dtype]
        if arr.dtype.kind not in ok_kind:
            arr = _to_array_slow(arr.tolist(), ndim=ndim, dtype=dtype, nullable=nullable)
    else:
        allowed = _LEAF_TYPES[dtype] | ({type(None)} if nullable and dtype is float else set())
        types = _leaf_types(value, ndim)
        arr = None
        if types is not None and types <= allowed:
            try:
                arr = np.array(value, dtype=bool if dtype is bool else float)
            except (ValueError, TypeError, OverflowError):
                arr = None
        if arr is None or arr.ndim != ndim:
            arr = _to_array_slow(value, ndim=ndim, dtype=dtype, nullable=nullable)
    if arr.ndim != ndim:
        raise ValueError(f"must be a {ndim}-d array (nested lists), got {arr.ndim}-d")
    if dtype is bool:
        return arr.astype(bool)
    arr = arr.astype(float)
    bad = np.isinf(arr) if nullable and dtype is float else ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{_index(tuple(np.argwhere(bad)[0]))} must be finite"
                         f"{' (use null for missing)' if nullable and dtype is float else ''}")
    if dtype is int:
        for bad, rule in ((arr != np.round(arr), "must be an integer"),
                          (np.abs(arr) > INT_LIMIT, "must be an integer of magnitude at most 2^53")):
            if bad.any():
                idx = tuple(np.argwhere(bad)[0])
                raise ValueError(f"{_index(idx)} {rule}, got {float(arr[idx]):g}")
    for op, limit in zip(("ge", "gt", "le", "lt"), bounds):
        if limit is None:
            continue
        ok = {"ge": arr >= limit, "gt": arr > limit, "le": arr <= limit, "lt": arr < limit}[op]
        bad = ~ok & ~np.isnan(arr)
        if bad.any():
            sign = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}[op]
            raise ValueError(f"{_index(tuple(np.argwhere(bad)[0]))} must be {sign} {limit:g}")
    return arr.astype(int) if dtype is int else arr


def _to_array_slow(value: Any, *, ndim: int, dtype: type, nullable: bool) -> np.ndarray:
    """Element by element, for the first bad entry's index and a precise rule."""
    try:
        arr = np.array(value, dtype=object)
    except (ValueError, RecursionError):
        raise ValueError(f"must be a rectangular {ndim}-d array") from None
    if arr.ndim != ndim:
        deep = _first_list(value, ndim) if arr.ndim > ndim else None
        if deep:
            null = " or null" if nullable and dtype is float else ""
            raise ValueError(f"{_index(deep)} must be {_KIND[dtype]}{null}, got a list")
        if any(isinstance(x, (list, tuple)) for x in arr.flat):
            raise ValueError(f"must be a rectangular {ndim}-d array (rows of equal length)")
        raise ValueError(f"must be a {ndim}-d array (nested lists), got {arr.ndim}-d")
    out = np.empty(arr.shape, dtype=bool if dtype is bool else float)
    for idx, x in np.ndenumerate(arr):
        if dtype is bool:
            ok = isinstance(x, (bool, np.bool_))
        else:
            ok = isinstance(x, (int, float, np.number)) and not isinstance(x, (bool, np.bool_))
            ok = ok or (x is None and nullable and dtype is float)
            if ok and dtype is int and isinstance(x, (float, np.floating)):
                ok = bool(np.isfinite(x)) and float(x) == round(float(x))
        if not ok:
            null = " or null" if nullable and dtype is float else ""
            raise ValueError(f"{_index(idx)} must be {_KIND[dtype]}{null}, got {x!r}")
        if dtype is bool:
            out[idx] = bool(x)
        else:
            try:
                out[idx] = np.nan if x is None else float(x)
            except OverflowError:
                raise ValueError(f"{_index(idx)} must be finite, got an integer too large for a double") from None
    return out


def _to_list(arr: np.ndarray) -> list:
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        return np.where(np.isnan(arr), None, arr.astype(object)).tolist()
    return arr.tolist()


def Array(dtype: type = float, ndim: int = 1, nullable: bool = False, *, ge: float | None = None,
          gt: float | None = None, le: float | None = None, lt: float | None = None) -> Any:
    """An array field: nested JSON lists in the file, a NumPy array in memory.

    ``nullable`` float arrays read ``null`` as NaN (for "not available" entries) and write it back.
    ``ge``/``gt``/``le``/``lt`` bound every entry (and appear in the JSON Schema).
    """
    item: dict = {bool: {"type": "boolean"}, int: {"type": "integer"}, float: {"type": "number"}}[dtype]
    item = dict(item)
    for key, limit in (("minimum", ge), ("exclusiveMinimum", gt), ("maximum", le), ("exclusiveMaximum", lt)):
        if limit is not None:
            item[key] = limit
    if dtype is int:
        item.setdefault("minimum", -INT_LIMIT)
        item.setdefault("maximum", INT_LIMIT)
    if nullable:
        item = {"anyOf": [item, {"type": "null"}]}
    schema: dict = item
    for _ in range(ndim):
        schema = {"type": "array", "items": schema}
    return Annotated[
        np.ndarray,
        BeforeValidator(partial(_to_array, ndim=ndim, dtype=dtype, nullable=nullable, bounds=(ge, gt, le, lt))),
        PlainSerializer(_to_list, when_used="json"),
        WithJsonSchema(schema),
    ]


class Model(BaseModel):
    """Base for instance data and solutions: NumPy fields allowed, unknown fields rejected."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", validate_default=True, allow_inf_nan=False)


class Instance(Model):
    """One instance file: ``{"problem", "format_version", "name", "meta", "data"}``.

    Each problem subclasses it with its own ``data`` type and sets ``problem``.
    """

    problem: ClassVar[str]
    format_version: int = Field(1, ge=1, le=1, strict=True, description="the file format's version: 1")
    name: str = "unnamed"
    meta: dict[str, Any] = {}
    data: Model

    @model_validator(mode="before")
    @classmethod
    def _file_layout(cls, doc: Any) -> Any:
        """Accept the file's own dict as written: its ``problem`` key must name this problem."""
        if isinstance(doc, dict) and "problem" in doc:
            if doc["problem"] != cls.problem:
                raise InputError("problem", f"must be {cls.problem!r} for this Instance type, got {shown(doc['problem'])}")
            doc = {k: v for k, v in doc.items() if k != "problem"}
        return doc

    @field_validator("meta")
    @classmethod
    def _meta_depth(cls, meta: dict) -> dict:
        level, depth = [meta], 1
        while level:
            level = [v for x in level for v in (x.values() if isinstance(x, dict) else x)
                     if isinstance(v, (list, dict))]
            depth += 1
            if depth > META_DEPTH and level:
                raise ValueError(f"must not nest lists or objects more than {META_DEPTH} levels deep")
        return meta


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
    elif err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        msg = "is not a known field"
    elif err["type"] == "literal_error":
        msg = msg.replace("Input should be", "must be")
    elif err["type"] == "int_parsing_size":
        msg = "must be an integer of a sensible size"
    elif not msg.startswith("["):
        msg = msg.replace("Input should be", "must be")
    if not msg.startswith(("must", "[", "is ")):
        msg = f"is invalid: {msg}"
    return InputError(path, msg)


def shown(value: Any) -> str:
    """A value for an error message: scalars as written, containers by kind (they may be huge or deep)."""
    if isinstance(value, (dict, list, tuple)):
        return f"{'an object' if isinstance(value, dict) else 'a list'}"
    text = repr(value) if not isinstance(value, bool) else str(value).lower()
    return text if len(text) <= 40 else text[:37] + "..."


def check(ok: Any, path: str, rule: str) -> None:
    """Raise InputError at the first entry of ``ok`` (bool or bool array) that is False.

    Array paths get the offending index appended: ``check(t >= 0, "data.time_ms", "must be >= 0")``
    reports ``data.time_ms[3][1] must be >= 0``.
    """
    ok = np.asarray(ok)
    if ok.ndim == 0:
        if not bool(ok):
            raise InputError(path, rule)
        return
    bad = np.argwhere(~ok.astype(bool))
    if len(bad):
        raise InputError(path + _index(tuple(bad[0])), rule)


def check_shape(arr: np.ndarray, shape: tuple, path: str, what: str) -> None:
    """Raise InputError unless ``arr.shape == shape``; ``what`` explains the expected shape."""
    if arr.shape != tuple(shape):
        raise InputError(path, f"must have shape {what} = {tuple(shape)}, got {arr.shape}")
