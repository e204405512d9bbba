"""Typed building blocks every problem's Instance and Solution are made of.

Instances are pydantic v2 models whose array fields hold NumPy arrays after validation. Every
check names the field path and the rule (``data.devices[2].mem_gb must be > 0``) so that a bad
file never reaches a method.
"""
from __future__ import annotations

import functools
from functools import partial
from itertools import chain, repeat
from operator import contains, itemgetter
from collections.abc import Sequence
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

import numpy as np
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationError, WithJsonSchema,
                      field_validator, model_validator)

from edgeopt.errors import InputError, shown  # noqa: F401  (shown: the one way a message shows a value)

INT_LIMIT = 2**53  # integers beyond this are not exact in a double (JSON numbers, NumPy casts)
META_DEPTH = 32  # free-form ``meta`` may nest this deep; deeper could not be written back


def _index(idx: tuple) -> str:
    return "".join(f"[{int(i)}]" for i in idx)


_KIND = {bool: "true/false", int: "an integer", float: "a number"}
_JSON_LEAVES = {str, int, float, bool, type(None)}
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
    model_config = ConfigDict(json_schema_extra=lambda schema, cls: _problem_key(schema, cls.problem))
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
        while level:  # every level is lists and dicts; a level of lists only (a matrix) is chained at C speed
            values = list(chain.from_iterable(level if set(map(type, level)) <= {list} else
                                              (x.values() if isinstance(x, dict) else x for x in level)))
            kinds = set(map(type, values))
            level = ([] if kinds <= _JSON_LEAVES else values if kinds <= {list, dict}
                     else [v for v in values if isinstance(v, (list, dict))])
            depth += 1
            if depth > META_DEPTH and level:
                raise ValueError(f"must not nest lists or objects more than {META_DEPTH} levels deep")
        return meta


def _problem_key(schema: dict, problem_id: str) -> None:
    """An instance file's schema names its problem first (``problem``: the one constant, required): the schema of
    ``edgeopt schema`` and of the service's request bodies, where it tells the problems apart."""
    schema["properties"] = {"problem": {"const": problem_id}, **schema.get("properties", {})}
    schema["required"] = ["problem", "data", *[r for r in schema.get("required", []) if r != "data"]]


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_error(exc: ValidationError, prefix: str = "", given: bool = False) -> InputError:
    """The first pydantic error as an InputError with a dotted field path; ``given``: with the value given
    (for a typed argument or option, where it is one value the user typed, never a file's array)."""
    return pydantic_error(exc.errors()[0], prefix, given)


def pydantic_error(err: dict, prefix: str = "", given: bool = False) -> InputError:
    """One of pydantic's error records (``ValidationError.errors()``) as an InputError (``validation_error``)."""
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
    if given and err["type"] not in ("missing", "extra_forbidden", "unexpected_keyword_argument"):
        msg = f"{msg}, got {shown(err['input'])}"
    return InputError(path, msg)


# --- column stores: many small records checked column by column ------------------------------------

class NotPlain(Exception):
    """Values that are not plain JSON-shaped data inside every range: pydantic checks them one by one instead."""


def plain_floats(values: list, lo: float, hi: float) -> np.ndarray:
    """A column of JSON numbers, each in [lo, hi], as floats (else NotPlain)."""
    if not set(map(type, values)) <= {int, float}:
        raise NotPlain
    try:
        arr = np.array(values, dtype=float)
    except OverflowError:
        raise NotPlain from None
    if not (np.isfinite(arr).all() and (arr >= lo).all() and (arr <= hi).all()):
        raise NotPlain
    return arr


def plain_columns(rows: list, required: tuple, optional: dict) -> dict[str, list]:
    """Per key, its values in ``rows``, which must be dicts with the ``required`` keys and no others."""
    n = len(rows)
    if not set(map(type, rows)) <= {dict}:
        raise NotPlain
    try:
        out = {k: list(map(itemgetter(k), rows)) for k in required}
    except KeyError:
        raise NotPlain from None
    if sum(map(len, rows)) == n * (len(required) + len(optional)):  # the common case: every row has every key
        try:
            return out | {k: list(map(itemgetter(k), rows)) for k in optional}
        except KeyError:
            pass  # some row lacks an optional key and has a key that is not a field: refused below
    present = 0
    for k, default in optional.items():
        has = sum(map(contains, rows, repeat(k, n)))
        out[k] = list(map(itemgetter(k), rows)) if has == n else list(map(dict.get, rows, repeat(k, n), repeat(default, n)))
        present += has
    if sum(map(len, rows)) != n * len(required) + present:
        raise NotPlain  # a key that is not a field
    return out


def plain_indices(values: list, hi: int) -> np.ndarray:
    """A column of JSON integers in [0, hi] (else NotPlain)."""
    if not set(map(type, values)) <= {int}:
        raise NotPlain
    try:
        arr = np.array(values, dtype=np.int64)
    except OverflowError:
        raise NotPlain from None
    if len(arr) and not 0 <= arr.min() <= arr.max() <= hi:  # NumPy's min and max: 10x Python's
        raise NotPlain
    return arr


def _in_range(arr: np.ndarray, bounds: tuple) -> bool:
    ge, gt, le, lt = bounds
    return bool((ge is None or (arr >= ge).all()) and (gt is None or (arr > gt).all())
                and (le is None or (arr <= le).all()) and (lt is None or (arr < lt).all()))


@dataclass(frozen=True)
class _Column:
    """How one field of a flat record is checked as a column: its type, whether null is allowed, its range."""

    kind: type  # str, int or float
    nullable: bool
    bounds: tuple  # (ge, gt, le, lt), None where absent
    default: Any  # NotPlain: required

    @classmethod
    def of(cls, info) -> _Column | None:
        """The column check of a pydantic field, or None when it has a rule the column check does not know."""
        ann, nullable = info.annotation, False
        if get_origin(ann) in (Union, UnionType) and type(None) in get_args(ann) and len(get_args(ann)) == 2:
            ann, nullable = next(a for a in get_args(ann) if a is not type(None)), True
        if ann not in (str, int, float) or (nullable and ann is not float):
            return None
        bounds = {"ge": None, "gt": None, "le": None, "lt": None}
        for rule in info.metadata:
            name = type(rule).__name__.lower()
            if name not in bounds or ann is str:
                return None
            bounds[name] = getattr(rule, name)
        default = NotPlain if info.is_required() else info.default
        return cls(ann, nullable, tuple(bounds.values()), default)

    def convert(self, values: list) -> Any:
        """The column as a list (str) or an array (NaN for null); NotPlain unless every value is plainly valid."""
        if self.kind is str:
            if not set(map(type, values)) <= {str}:
                raise NotPlain
            return values
        given = np.ones(len(values), dtype=bool)
        if self.nullable and values.count(None):
            given = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
            values = [v for v in values if v is not None]
        if not set(map(type, values)) <= ({int} if self.kind is int else {int, float}):
            raise NotPlain
        try:
            arr = np.array(values, dtype=np.int64 if self.kind is int else float)
        except OverflowError:
            raise NotPlain from None
        if not ((self.kind is int or np.isfinite(arr).all()) and _in_range(arr, self.bounds)):
            raise NotPlain
        if given.all():
            return arr
        out = np.full(len(given), np.nan)
        out[given] = arr
        return out


class ColumnStore(Sequence):
    """A long list of small records (``list[model]`` in the file) kept as columns.

    Validating 100,000 small records as pydantic models takes longer than parsing the file they come
    from; plain JSON-shaped records are checked column by column instead (a subclass's ``__init__``,
    which raises NotPlain for anything else), and code reads the columns. A record object is made
    (``_make``) only when code asks for one. Anything the column check does not accept as plainly valid
    goes through pydantic record by record, which names the first bad field exactly as before.
    """

    model: ClassVar[type[BaseModel]]
    _made: list  # per record: its object, once made

    def _make(self, i: int) -> BaseModel:
        raise NotImplementedError

    def dump(self) -> list[dict]:
        """The records as the file's dicts (the serialization of the field)."""
        return [r.model_dump(mode="json") for r in self]

    @classmethod
    def _validate(cls, value: Any, objects) -> ColumnStore:
        if isinstance(value, cls):
            return value
        try:
            return cls(value)
        except NotPlain:
            made = objects(value)  # pydantic: raises with the first bad field's path and rule
            store = cls([r.model_dump(mode="json") for r in made])
            store._made = made
            return store

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler) -> Any:
        from pydantic_core import core_schema

        objects = core_schema.list_schema(handler.generate_schema(cls.model), min_length=1)
        return core_schema.no_info_wrap_validator_function(
            cls._validate, objects, serialization=core_schema.plain_serializer_function_ser_schema(cls.dump))

    def __len__(self) -> int:
        return len(self._made)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        i = range(len(self))[i]
        if self._made[i] is None:
            self._made[i] = self._make(i)
        return self._made[i]


class Records(ColumnStore):
    """A list of flat records, one column per field (``records(Model)`` makes the type); ``column(name)``."""

    spec: ClassVar[dict[str, _Column]]

    def __init__(self, rows: list):
        if type(rows) is not list or not rows:
            raise NotPlain
        required = tuple(k for k, c in self.spec.items() if c.default is NotPlain)
        optional = {k: c.default for k, c in self.spec.items() if c.default is not NotPlain}
        cols = plain_columns(rows, required, optional)
        self._cols = {k: c.convert(cols[k]) for k, c in self.spec.items()}
        self._made = [None] * len(rows)

    def __reduce__(self):
        """Pickled (to worker processes) by its record model: the class is made by ``records``, not a module."""
        return _restore, (self.model, self.__dict__)

    def column(self, name: str) -> Any:
        """One field of every record: an array (NaN for null) or, for text, a list."""
        return self._cols[name]

    def _values(self, name: str) -> list:
        col = self._cols[name]
        if isinstance(col, list):
            return col
        out = col.tolist()
        return [None if v != v else v for v in out] if self.spec[name].nullable else out

    def dump(self) -> list[dict]:
        names = list(self._cols)
        return [dict(zip(names, vals)) for vals in zip(*(self._values(k) for k in names))]

    def _make(self, i: int) -> BaseModel:
        return self.model.model_construct(**{k: self._value(k, i) for k in self._cols})

    def _value(self, name: str, i: int) -> Any:
        v = self._cols[name][i]
        if isinstance(v, str):
            return v
        v = v.item()
        return None if v != v else v


def _restore(model_type: type[BaseModel], state: dict) -> Records:
    out = Records.__new__(records(model_type))
    out.__dict__.update(state)
    return out


@functools.cache
def records(model_type: type[BaseModel]) -> type[Records]:
    """The field type of a list of ``model_type`` records held as columns (see ``Records``)."""
    spec = {k: _Column.of(f) for k, f in model_type.model_fields.items()}
    unknown = [k for k, c in spec.items() if c is None]
    if unknown:
        raise TypeError(f"{model_type.__name__}.{unknown[0]}: records hold text, integers and (optional) numbers "
                        "with range rules only")
    return type(f"{model_type.__name__}Records", (Records,),
                {"model": model_type, "spec": spec, "__module__": model_type.__module__})


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
