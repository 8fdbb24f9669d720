"""Request targets -> the path dockerd's router sees, or a refusal when that is ambiguous."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote_to_bytes

from dockward.errors import DockwardError

_VERSION = re.compile(r"^/v(\d+\.\d+)(?=/)")
# Encoded characters that would change how the router splits the path.
_AMBIGUOUS_ENCODED = re.compile(r"%(2[fFeE]|5[cC]|00|25)")
_BAD_PCT = re.compile(r"%(?![0-9a-fA-F]{2})")
# absolute-form (RFC 9112 3.2.2), as Go's server takes it: scheme, a plain authority, a path.
_ABSOLUTE = re.compile(r"^(?i:https?)://([A-Za-z0-9.\-_~:\[\]]+)(/[^?#]*(?:\?[^#]*)?)$")


class PathError(DockwardError, ValueError):
    """A request target the proxy refuses to interpret."""


@dataclass(frozen=True, slots=True)
class Target:
    raw: str  # the target in origin-form, as received (forwarded unchanged)
    path: str  # decoded path without the version prefix, e.g. /containers/create
    version: str  # "1.41" or "" when absent
    query: dict[str, list[str]]

    def param(self, name: str) -> str:
        values = self.query.get(name, [])
        return values[-1] if values else ""


_CACHE: dict[str, Target] = {}
_CACHE_SIZE = 4096


def parse_target(raw: str) -> Target:
    """parse_target's answer for a target seen before (health checks and pollers repeat
    theirs); what is refused is never cached, so it is refused again the same way."""
    hit = _CACHE.get(raw)
    if hit is not None:
        return hit
    target = _parse_target(raw)
    if len(raw) > 256:
        return target  # the cache stays small: long targets are parsed each time
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    _CACHE[raw] = target
    return target


def _parse_target(raw: str) -> Target:
    """Decode a request target the way dockerd routes it; refuse every form open to two readings.

    Absolute-form (`http://docker/v1.41/...`, which dockerd's Go server routes by its path) is
    read as its path and query, and forwarded in origin-form. Refused: authority-form and `*`,
    absolute-form with user info, another scheme or no path, dot segments, empty segments
    (`//`), encoded slashes, dots, backslashes, percent signs and NUL, control characters, bad
    escapes.
    """
    if not raw.isascii() or not raw.isprintable():
        raise PathError("request target has a byte outside printable ASCII")
    if not raw.startswith("/"):
        m = _ABSOLUTE.match(raw)
        if m is None:
            raise PathError("request target must be an absolute path or an http:// URL")
        raw = m.group(2)
    raw_path, _, raw_query = raw.partition("?")
    if "#" in raw:
        raise PathError("fragment in request target")
    if _BAD_PCT.search(raw_path):
        raise PathError("malformed percent-encoding in path")
    if _AMBIGUOUS_ENCODED.search(raw_path):
        raise PathError("encoded '/', '.', '\\', '%' or NUL in path")
    try:
        path = unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PathError("path is not UTF-8") from exc
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise PathError("control character in path")
    segments = path.split("/")[1:]
    if any(s in (".", "..") for s in segments):
        raise PathError("dot segment in path")
    if any(s == "" for s in segments[:-1]):
        raise PathError("empty segment ('//') in path")
    version = ""
    m = _VERSION.match(path)
    if m:
        version = m.group(1)
        path = path[m.end() :]
    if len(path) > 1 and path.endswith("/"):
        # gorilla/mux (dockerd's router) treats a trailing slash as a different route
        raise PathError("trailing '/' in path")
    try:
        query = parse_qs(raw_query, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError as exc:
        raise PathError("query is not UTF-8") from exc
    return Target(raw, path, version, query)
