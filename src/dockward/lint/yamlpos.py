"""YAML to plain values plus the line and column of every key, with hostile input bounded.

Built from PyYAML's event stream instead of `yaml.safe_load` because the composer and the
constructor recurse (a deeply nested file overflows the stack) and expand aliases without limit
(a "billion laughs" file exhausts memory). Here nesting depth and the size after alias expansion
are counted while the tree is built, and the build stops with an `InputError` at the limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from dockward.errors import InputError

Path = tuple[str | int, ...]

MAX_DEPTH = 64
MAX_EXPANDED_NODES = 200_000

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_SCALAR_BUILDERS: dict[str, Any] = {
    "tag:yaml.org,2002:null": _CONSTRUCTOR.construct_yaml_null,
    "tag:yaml.org,2002:bool": _CONSTRUCTOR.construct_yaml_bool,
    "tag:yaml.org,2002:int": _CONSTRUCTOR.construct_yaml_int,
    "tag:yaml.org,2002:float": _CONSTRUCTOR.construct_yaml_float,
}


@dataclass(frozen=True, slots=True)
class Pos:
    """1-based line and column of a key (or of a sequence item)."""

    line: int
    column: int
    end_line: int = 0
    end_column: int = 0


@dataclass(slots=True)
class PosDoc:
    """One YAML document: plain values and the position of every mapping key / sequence item."""

    value: Any
    positions: dict[Path, Pos] = field(default_factory=dict)

    def pos(self, path: Path) -> Pos | None:
        return self.positions.get(path)


@dataclass(slots=True)
class _Frame:
    kind: str  # "map" or "seq"
    path: Path
    anchor: str | None
    value: Any
    size: int = 1
    key: Any = None
    key_pos: Pos | None = None
    have_key: bool = False
    explicit: set[str] = field(default_factory=set)
    merges: list[dict[str, Any]] = field(default_factory=list)
    merge_pos: Pos | None = None
    start: Pos | None = None


def _pos(event: Any) -> Pos:
    s, e = event.start_mark, event.end_mark
    return Pos(s.line + 1, s.column + 1, e.line + 1, e.column + 1)


def _scalar(event: Any) -> Any:
    if event.tag in (None, "!"):
        tag = _RESOLVER.resolve(yaml.ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
    else:
        tag = event.tag
    builder = _SCALAR_BUILDERS.get(tag)
    if builder is None:
        return event.value
    try:
        return builder(yaml.ScalarNode(tag, event.value))
    except (ValueError, yaml.YAMLError):
        return event.value


def load_yaml(text: str, name: str = "<yaml>") -> PosDoc:
    """Parse the first document of `text`. Raises InputError with the line on any problem."""
    try:
        return _build(yaml.parse(text, Loader=_Loader), name)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        raise InputError(f"{where}: invalid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{name}: invalid YAML: {exc}") from exc


def _build(events: Any, name: str) -> PosDoc:
    doc = PosDoc(None)
    anchors: dict[str, tuple[Any, int]] = {}
    stack: list[_Frame] = []
    total = 0
    done = False

    def child_path() -> Path:
        top = stack[-1]
        if top.kind == "seq":
            return (*top.path, len(top.value))
        return (*top.path, str(top.key))

    def attach(value: Any, size: int, where: Pos, anchor: str | None) -> None:
        nonlocal total, done
        total += size
        if total > MAX_EXPANDED_NODES:
            raise InputError(
                f"{name}:{where.line}: YAML expands to more than {MAX_EXPANDED_NODES} nodes "
                "(alias bomb?)"
            )
        if anchor:
            anchors[anchor] = (value, size)
        if not stack:
            doc.value = value
            done = True
            return
        top = stack[-1]
        top.size += size
        if top.kind == "seq":
            doc.positions.setdefault((*top.path, len(top.value)), where)
            top.value.append(value)
            return
        if not top.have_key:
            key = "" if value is None else value
            if isinstance(key, dict | list):
                raise InputError(f"{name}:{where.line}: a mapping key must be a scalar")
            top.key, top.key_pos, top.have_key = key, where, True
            return
        key = top.key
        top.have_key = False
        if key == "<<":
            merged = value if isinstance(value, list) else [value]
            for m in merged:
                if not isinstance(m, dict):
                    raise InputError(f"{name}:{where.line}: `<<` needs a mapping or a list of them")
            top.merges.extend(merged)
            top.merge_pos = top.key_pos
            return
        skey = str(key) if not isinstance(key, bool) else str(key).lower()
        if skey in top.explicit:
            raise InputError(
                f"{name}:{top.key_pos.line if top.key_pos else 0}: duplicate key {skey!r}"
            )
        top.explicit.add(skey)
        top.value[skey] = value
        if top.key_pos is not None:
            doc.positions[(*top.path, skey)] = top.key_pos

    for event in events:
        if done:
            break
        if isinstance(event, yaml.ScalarEvent):
            if stack and stack[-1].kind == "map" and not stack[-1].have_key:
                attach(event.value, 1, _pos(event), event.anchor)
            else:
                attach(_scalar(event), 1, _pos(event), event.anchor)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:
                raise InputError(f"{name}:{_pos(event).line}: unknown alias *{event.anchor}")
            value, size = anchors[event.anchor]
            attach(value, size, _pos(event), None)
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise InputError(f"{name}:{_pos(event).line}: YAML nested deeper than {MAX_DEPTH}")
            kind = "map" if isinstance(event, yaml.MappingStartEvent) else "seq"
            if stack and stack[-1].kind == "map" and not stack[-1].have_key:
                raise InputError(f"{name}:{_pos(event).line}: a mapping key must be a scalar")
            path = child_path() if stack else ()
            stack.append(_Frame(kind, path, event.anchor, {} if kind == "map" else [], 0))
            stack[-1].start = _pos(event)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            frame = stack.pop()
            value = frame.value
            if frame.kind == "map" and frame.merges:
                # Explicit keys win; earlier merge sources win over later ones (YAML merge spec).
                for source in frame.merges:
                    for k, v in source.items():
                        if k not in value:
                            value[k] = v
                            if frame.merge_pos is not None:
                                doc.positions.setdefault((*frame.path, k), frame.merge_pos)
            start = frame.start or Pos(1, 1)
            attach(value, frame.size + 1, start, frame.anchor)
    return doc
