"""Compose `${VAR}` interpolation and `.env` files, as the Compose Specification defines them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from dockward.errors import InputError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*(?:=\s*(.*?))?\s*$")
MAX_DEPTH = 10


class MissingVariable(InputError):
    """`${VAR:?message}` with VAR unset (or empty)."""


def interpolate(
    text: str,
    env: Mapping[str, str],
    on_missing: Callable[[str], None] | None = None,
    depth: int = 0,
) -> str:
    """Expand `$VAR`, `${VAR}`, `${VAR:-d}`, `${VAR-d}`, `${VAR:?e}`, `${VAR?e}`, `${VAR:+a}`,
    `${VAR+a}`; `$$` is a literal `$`. Defaults may hold further `${...}`."""
    if "$" not in text:
        return text
    if depth > MAX_DEPTH:
        raise InputError("interpolation nested too deeply")
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "$":
            j = text.find("$", i)
            j = n if j < 0 else j
            out.append(text[i:j])
            i = j
            continue
        if i + 1 < n and text[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if i + 1 < n and text[i + 1] == "{":
            end = _closing_brace(text, i + 2)
            if end < 0:
                raise InputError(f"unterminated ${{ in {text!r}")
            out.append(_expand(text[i + 2 : end], env, on_missing, depth))
            i = end + 1
            continue
        m = _NAME.match(text, i + 1)
        if m:
            name = m.group(0)
            if name not in env and on_missing:
                on_missing(name)
            out.append(env.get(name, ""))
            i = m.end()
            continue
        out.append("$")
        i += 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    level = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            level += 1
            i += 2
            continue
        if text[i] == "}":
            level -= 1
            if level == 0:
                return i
        i += 1
    return -1


def _expand(
    body: str, env: Mapping[str, str], on_missing: Callable[[str], None] | None, depth: int
) -> str:
    m = _NAME.match(body)
    if not m:
        raise InputError(f"invalid interpolation ${{{body}}}")
    name, rest = m.group(0), body[m.end() :]
    value = env.get(name)
    if not rest:
        if value is None and on_missing:
            on_missing(name)
        return value or ""
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op) :]
            unset = value is None or (op.startswith(":") and value == "")
            if op.endswith("-"):
                return interpolate(arg, env, on_missing, depth + 1) if unset else (value or "")
            if op.endswith("+"):
                return "" if unset else interpolate(arg, env, on_missing, depth + 1)
            if unset:
                msg = interpolate(arg, env, None, depth + 1) or "is not set"
                raise MissingVariable(f"required variable {name}: {msg}")
            return value or ""
    raise InputError(f"invalid interpolation ${{{body}}}")


def interpolate_tree(
    value: Any, env: Mapping[str, str], on_missing: Callable[[str], None] | None = None
) -> Any:
    """Interpolate every string value (not keys) of a YAML tree; returns a new tree."""
    if isinstance(value, str):
        return interpolate(value, env, on_missing)
    if isinstance(value, dict):
        return {k: interpolate_tree(v, env, on_missing) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate_tree(v, env, on_missing) for v in value]
    return value


def parse_env_file(text: str) -> dict[str, str]:
    """`.env` / `env_file` syntax: KEY=VALUE, `export` allowed, quotes stripped, # comments."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _ENV_LINE.match(line)
        if not m:
            continue
        key, value = m.group(1), m.group(2)
        if value is None:
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
            if raw.strip().split("=", 1)[1].strip().startswith('"'):
                value = value.replace("\\n", "\n").replace('\\"', '"')
        else:
            value = re.sub(r"\s+#.*$", "", value)
        out[key] = value
    return out
