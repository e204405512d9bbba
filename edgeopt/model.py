"""Typed building blocks every problem's Instance and Solution are made of.

Instances are pydantic v2 models whose array fields hold NumPy arrays after validation. Every
check names the field path and the rule (``data.devices[2].mem_gb must be > 0``) so that a bad
file never reaches a method.
"""
from __future__ import annotations

from functools import partial
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, WithJsonSchema


class InputError(Exception):
    """Bad input: ``path`` names the offending field, ``rule`` what it must satisfy (exit code 2)."""

    def __init__(self, path: str, rule: str):
        self.path, self.rule = path, rule
        super().__init__(f"{path}{'' if rule.startswith('[') else ' '}{rule}")


def _index(idx: tuple) -> str:
    return "".join(f"[{int(i)}]" for i in idx)


def _to_array(value: Any, *, ndim: int, dtype: type, nullable: bool) -> np.ndarray:
    if isinstance(value, np.ndarray):
        arr = value
    else:
        if nullable and dtype is float:
            value = _nulls_to_nan(value, ndim)
        try:
            arr = np.array(value, dtype=object)
        except ValueError:
            raise ValueError(f"must be a rectangular {ndim}-d array") from None
    if arr.ndim != ndim:
        if arr.dtype == object and any(isinstance(x, (list, tuple)) for x in arr.flat):
            raise ValueError(f"must be a rectangular {ndim}-d array (rows of equal length)")
        raise ValueError(f"must be a {ndim}-d array (nested lists), got {arr.ndim}-d")
    if arr.dtype == object:
        for idx, x in np.ndenumerate(arr):
            ok = isinstance(x, (int, float, np.number)) and not isinstance(x, bool)
            if dtype is bool:
                ok = isinstance(x, (bool, np.bool_))
            elif dtype is int:
                ok = ok and float(x) == int(x)
            if not ok:
                kind = {bool: "true/false", int: "an integer", float: "a number"}[dtype]
                null = " or null" if nullable else ""
                raise ValueError(f"{_index(idx)} must be {kind}{null}, got {x!r}")
    arr = arr.astype(dtype)
    if dtype is float:
        bad = np.isinf(arr) if nullable else ~np.isfinite(arr)
        if bad.any():
            idx = tuple(np.argwhere(bad)[0])
            raise ValueError(f"{_index(idx)} must be finite{' (use null for missing)' if nullable else ''}")
    return arr


def _nulls_to_nan(value: Any, depth: int) -> Any:
    if depth == 0:
        return float("nan") if value is None else value
    if not isinstance(value, (list, tuple)):
        return value
    return [_nulls_to_nan(v, depth - 1) for v in value]


def _to_list(arr: np.ndarray) -> list:
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        return np.where(np.isnan(arr), None, arr.astype(object)).tolist()
    return arr.tolist()


def Array(dtype: type = float, ndim: int = 1, nullable: bool = False) -> Any:
    """An array field: nested JSON lists in the file, a NumPy array in memory.

    ``nullable`` float arrays read ``null`` as NaN (for "not available" entries) and write it back.
    """
    item = {bool: {"type": "boolean"}, int: {"type": "integer"}, float: {"type": "number"}}[dtype]
    if nullable:
        item = {"anyOf": [item, {"type": "null"}]}
    schema: dict = item
    for _ in range(ndim):
        schema = {"type": "array", "items": schema}
    return Annotated[
        np.ndarray,
        BeforeValidator(partial(_to_array, ndim=ndim, dtype=dtype, nullable=nullable)),
        PlainSerializer(_to_list),
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
    format_version: int = 1
    name: str = "unnamed"
    meta: dict[str, Any] = {}
    data: Model


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
