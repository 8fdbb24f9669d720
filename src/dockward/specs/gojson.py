"""JSON read the way dockerd's Go `encoding/json` reads it, minus its ambiguities.

Go matches struct fields case-insensitively (with Unicode simple folding: `ſ` is `s`) and lets a
later duplicate win, so `{"Privileged":false,"privileged":true}` is privileged to the daemon.
We refuse duplicates (exact or case-folded) instead of picking one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dockward.errors import DockwardError


class BodyError(DockwardError, ValueError):
    """A request body the policy cannot judge with certainty (always a refusal)."""


def _fold(key: str) -> str:
    return key.casefold()


class GoObject(dict[str, Any]):
    """A JSON object whose struct fields are looked up as Go looks them up."""

    def field(self, name: str) -> Any:
        want = _fold(name)
        hits = [k for k in self if _fold(k) == want]
        if len(hits) > 1:
            raise BodyError(f"field {name!r} given more than once ({', '.join(hits)})")
        return self[hits[0]] if hits else None


def _pairs(pairs: list[tuple[str, Any]]) -> GoObject:
    obj = GoObject()
    for key, value in pairs:
        if key in obj:
            raise BodyError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _no_constant(name: str) -> Any:
    raise BodyError(f"invalid JSON constant {name}")


def loads(data: bytes) -> Any:
    """Strict UTF-8 JSON; NaN/Infinity refused (Go refuses them too)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError("body is not valid UTF-8") from exc
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise BodyError(f"body is not valid JSON: {exc.msg} at {exc.pos}") from exc
    except RecursionError as exc:
        raise BodyError("body nests too deeply") from exc


def obj(value: Any, where: str) -> GoObject:
    """A sub-object; null/absent is empty, anything else but an object is refused."""
    if value is None:
        return GoObject()
    if isinstance(value, GoObject):
        return value
    if isinstance(value, Mapping):
        return GoObject(value)
    raise BodyError(f"{where} must be an object")


def arr(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise BodyError(f"{where} must be an array")


def text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise BodyError(f"{where} must be a string")


def boolean(value: Any, where: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise BodyError(f"{where} must be a boolean")


def integer(value: Any, where: str) -> int:
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise BodyError(f"{where} must be an integer")


def strings(value: Any, where: str) -> list[str]:
    """A Go []string, or a strslice (a single string is a one-element list)."""
    if isinstance(value, str):
        return [value]
    return [text(v, where) for v in arr(value, where)]


def is_zero(value: Any) -> bool:
    return value in (None, False, 0, "", [], {})
