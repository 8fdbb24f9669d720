"""Falco rule files -> definitions: lists, macros and rules, with append/override and exceptions.

Load order is file order then item order, as in Falco. A malformed file (YAML or condition
syntax, a bad key combination) is an error naming file and line; an unknown field or source only
disables the rule that uses it, with a warning naming both.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from dockward.errors import ConfigError
from dockward.monitor.condition import ConditionError, parse_condition

MAX_RULES_FILE = 16 * 1024 * 1024


class Priority(enum.IntEnum):
    """Falco priorities; the value is the syslog severity (lower is worse)."""

    EMERGENCY = 0
    ALERT = 1
    CRITICAL = 2
    ERROR = 3
    WARNING = 4
    NOTICE = 5
    INFORMATIONAL = 6
    DEBUG = 7

    @classmethod
    def parse(cls, text: str) -> Priority:
        key = str(text).strip().upper()
        key = {"INFO": "INFORMATIONAL", "WARN": "WARNING", "CRIT": "CRITICAL"}.get(key, key)
        try:
            return cls[key]
        except KeyError as exc:
            names = ", ".join(p.name.lower() for p in cls)
            raise ValueError(f"unknown priority {text!r} (expected one of {names})") from exc

    @property
    def label(self) -> str:
        return "Informational" if self is Priority.INFORMATIONAL else self.name.capitalize()


@dataclass(frozen=True, slots=True)
class Origin:
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class ExceptionDef:
    name: str
    fields: tuple[str, ...] | str
    comps: tuple[str, ...] | str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class RuleDef:
    name: str
    condition: str
    output: str
    priority: Priority
    desc: str = ""
    source: str = "syscall"
    tags: tuple[str, ...] = ()
    enabled: bool = True
    exceptions: tuple[ExceptionDef, ...] = ()
    skip_if_unknown_filter: bool = False
    origin: Origin = field(default_factory=lambda: Origin("", 0))


def group_lists() -> dict[str, tuple[str, ...]]:
    """The built-in lists: for each group of container rules (`dockward.rules.groups`), the
    Falco list `<group>_rules` (dashes as underscores) of its rules of medium severity or worse.
    An alert (CRITICAL) for a low finding would be noise: host cgroupns (DW-C033, low) is every
    container's default on cgroup v1 hosts. A rules file may redefine or append to them."""
    from dockward.model.finding import Severity
    from dockward.rules.container import rules as container_rules
    from dockward.rules.groups import GROUPS, falco_list_name, members

    rules = [e.rule for e in container_rules if e.rule.severity >= Severity.MEDIUM]
    return {falco_list_name(g): members(rules, g) for g in GROUPS}


@dataclass
class RuleBook:
    """Everything loaded from the rule files, in load order, before compilation."""

    lists: dict[str, tuple[str, ...]] = field(default_factory=group_lists)
    macros: dict[str, str] = field(default_factory=dict)
    macro_origin: dict[str, Origin] = field(default_factory=dict)
    rules: dict[str, RuleDef] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


RULE_KEYS = frozenset(
    {
        "rule",
        "desc",
        "condition",
        "output",
        "priority",
        "source",
        "tags",
        "enabled",
        "exceptions",
        "append",
        "override",
        "capture",
        "capture_duration",
        "warn_evttypes",
        "skip-if-unknown-filter",
    }
)
RULE_APPENDABLE = frozenset({"condition", "output", "desc", "tags", "exceptions"})
RULE_REPLACEABLE = frozenset(
    {
        "condition",
        "output",
        "desc",
        "priority",
        "capture",
        "capture_duration",
        "tags",
        "exceptions",
        "enabled",
        "warn_evttypes",
        "skip-if-unknown-filter",
    }
)
LINE = "__line__"


class _LineLoader(yaml.SafeLoader):
    """Records the line of every mapping so errors can name it."""


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping[LINE] = node.start_mark.line + 1
    return mapping


def _plain(loader: _LineLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)
# YAML 1.1 reads a bare `=` as the "value" tag; Falco files write `comps: [=, in]`.
_LineLoader.add_constructor("tag:yaml.org,2002:value", _plain)


class RulesError(ConfigError):
    """A malformed rules file; the message starts with file:line."""


def load_files(paths: Iterable[str | Path], book: RuleBook | None = None) -> RuleBook:
    book = book or RuleBook()
    for path in paths:
        p = Path(path)
        try:
            if p.stat().st_size > MAX_RULES_FILE:
                raise RulesError(f"{p}: rules file larger than {MAX_RULES_FILE} bytes")
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise RulesError(f"{p}: cannot read rules file: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise RulesError(f"{p}: rules file is not UTF-8") from exc
        load_text(text, str(p), book)
    return book


def load_text(text: str, path: str, book: RuleBook | None = None) -> RuleBook:
    book = book or RuleBook()
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise RulesError(f"{path}:{line}: invalid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: invalid YAML: {exc}") from exc
    book.files.append(path)
    if doc is None:
        return book
    if not isinstance(doc, list):
        raise RulesError(f"{path}:1: a rules file is a YAML list of list/macro/rule items")
    for item in doc:
        if not isinstance(item, dict):
            raise RulesError(f"{path}: every top-level item must be a mapping, found {item!r}")
        origin = Origin(path, int(item.get(LINE, 0)))
        _load_item(item, origin, book)
    return book


def _err(origin: Origin, message: str) -> RulesError:
    return RulesError(f"{origin}: {message}")


def _override_modes(item: dict[str, Any], origin: Origin) -> dict[str, str]:
    raw = item.get("override")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _err(origin, "override must be a mapping of key: append|replace")
    if item.get("append"):
        raise _err(origin, "append: true cannot be combined with override")
    modes: dict[str, str] = {}
    for key, mode in raw.items():
        if key == LINE:
            continue
        if mode not in ("append", "replace"):
            raise _err(origin, f"override of {key!r} must be append or replace, not {mode!r}")
        if key not in item:
            raise _err(origin, f"override names {key!r} but the item does not set it")
        modes[str(key)] = str(mode)
    return modes


def _load_item(item: dict[str, Any], origin: Origin, book: RuleBook) -> None:
    if "list" in item:
        _load_list(item, origin, book)
    elif "macro" in item:
        _load_macro(item, origin, book)
    elif "rule" in item:
        _load_rule(item, origin, book)
    elif "required_engine_version" in item or "required_plugin_versions" in item:
        return
    else:
        keys = ", ".join(sorted(str(k) for k in item if k != LINE))
        book.warnings.append(f"{origin}: unknown item with keys {keys}; ignored")


def _str_list(value: Any, origin: Origin, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _err(origin, f"{what} must be a list")
    return tuple(str(v) for v in value)


def _load_list(item: dict[str, Any], origin: Origin, book: RuleBook) -> None:
    name = str(item["list"])
    items = _str_list(item.get("items"), origin, f"list {name}: items")
    modes = _override_modes(item, origin)
    if item.get("append") or modes.get("items") == "append":
        if name not in book.lists:
            raise _err(origin, f"list {name}: append to a list that was never defined")
        book.lists[name] = book.lists[name] + items
    else:
        book.lists[name] = items


def _load_macro(item: dict[str, Any], origin: Origin, book: RuleBook) -> None:
    name = str(item["macro"])
    cond = item.get("condition")
    if not isinstance(cond, str):
        raise _err(origin, f"macro {name}: condition must be a string")
    modes = _override_modes(item, origin)
    if item.get("append") or modes.get("condition") == "append":
        if name not in book.macros:
            raise _err(origin, f"macro {name}: append to a macro that was never defined")
        full = f"{book.macros[name]} {cond}"
    else:
        full = cond
    try:
        parse_condition(full)
    except ConditionError as exc:
        raise _err(origin, f"macro {name}: {exc}") from exc
    book.macros[name] = full
    book.macro_origin[name] = origin


def _exceptions(
    raw: Any, origin: Origin, rule: str, appending: bool = False
) -> tuple[ExceptionDef, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _err(origin, f"rule {rule}: exceptions must be a list")
    out: list[ExceptionDef] = []
    for ex in raw:
        if not isinstance(ex, dict) or "name" not in ex:
            raise _err(origin, f"rule {rule}: every exception needs a name")
        name = str(ex["name"])
        fields = ex.get("fields")
        comps = ex.get("comps")
        values = ex.get("values") or []
        if not isinstance(values, list):
            raise _err(origin, f"rule {rule}: exception {name}: values must be a list")
        if fields is None and appending:
            # Appending values to an exception of the base rule: fields come from there.
            out.append(ExceptionDef(name, (), (), tuple(_tuple(v) for v in values)))
            continue
        if isinstance(fields, list):
            fs = tuple(str(f) for f in fields)
            if comps is None:
                cs: tuple[str, ...] | str = ("=",) * len(fs)
            elif isinstance(comps, list) and len(comps) == len(fs):
                cs = tuple(str(c) for c in comps)
            else:
                raise _err(
                    origin, f"rule {rule}: exception {name}: comps and fields differ in length"
                )
            for v in values:
                if not isinstance(v, list) or len(v) != len(fs):
                    raise _err(
                        origin,
                        f"rule {rule}: exception {name}: each value needs {len(fs)} items",
                    )
            out.append(ExceptionDef(name, fs, cs, tuple(tuple(v) for v in values)))
        elif isinstance(fields, str):
            comp = str(comps or "in")
            if comp not in ("in", "pmatch", "intersects"):
                raise _err(
                    origin,
                    f"rule {rule}: exception {name}: a single field needs comps in, pmatch or intersects",
                )
            out.append(ExceptionDef(name, fields, comp, tuple(values)))
        else:
            raise _err(origin, f"rule {rule}: exception {name}: fields must be a string or a list")
    seen: set[str] = set()
    for ex_def in out:
        if ex_def.name in seen:
            raise _err(origin, f"rule {rule}: exception {ex_def.name} defined twice")
        seen.add(ex_def.name)
    return tuple(out)


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _merge_exceptions(
    old: tuple[ExceptionDef, ...], new: tuple[ExceptionDef, ...]
) -> tuple[ExceptionDef, ...]:
    merged = {e.name: e for e in old}
    for e in new:
        if e.name in merged:
            merged[e.name] = replace(merged[e.name], values=merged[e.name].values + e.values)
        else:
            merged[e.name] = e
    return tuple(merged.values())


def _priority(value: Any, origin: Origin, rule: str) -> Priority:
    try:
        return Priority.parse(str(value))
    except ValueError as exc:
        raise _err(origin, f"rule {rule}: {exc}") from exc


def _bool(value: Any, origin: Origin, what: str) -> bool:
    if isinstance(value, bool):
        return value
    raise _err(origin, f"{what} must be true or false")


def _load_rule(item: dict[str, Any], origin: Origin, book: RuleBook) -> None:
    name = str(item["rule"])
    for key in item:
        if key != LINE and key not in RULE_KEYS:
            book.warnings.append(f"{origin}: rule {name}: unknown key {key!r} ignored")
    modes = _override_modes(item, origin)
    existing = book.rules.get(name)
    appending = bool(item.get("append"))
    if appending or modes:
        if existing is None:
            raise _err(origin, f"rule {name}: append/override of a rule that was never defined")
        _change_rule(item, origin, existing, modes, appending, book)
        return
    if existing is not None and set(item) <= {"rule", "enabled", LINE}:
        # A bare `enabled:` item toggles an existing rule (Falco's short form).
        book.rules[name] = replace(existing, enabled=_bool(item["enabled"], origin, "enabled"))
        return
    missing = [k for k in ("condition", "output", "priority") if k not in item]
    if missing:
        raise _err(origin, f"rule {name}: missing {', '.join(missing)}")
    cond = item["condition"]
    if not isinstance(cond, str):
        raise _err(origin, f"rule {name}: condition must be a string")
    _check_syntax(cond, origin, name)
    book.rules[name] = RuleDef(
        name=name,
        condition=cond,
        output=str(item["output"]).strip(),
        priority=_priority(item["priority"], origin, name),
        desc=str(item.get("desc") or "").strip(),
        source=str(item.get("source") or "syscall"),
        tags=_str_list(item.get("tags"), origin, f"rule {name}: tags"),
        enabled=_bool(item.get("enabled", True), origin, f"rule {name}: enabled"),
        exceptions=_exceptions(item.get("exceptions"), origin, name),
        skip_if_unknown_filter=bool(item.get("skip-if-unknown-filter", False)),
        origin=origin,
    )


def _check_syntax(cond: str, origin: Origin, rule: str) -> None:
    try:
        parse_condition(cond)
    except ConditionError as exc:
        raise _err(origin, f"rule {rule}: condition: {exc}") from exc


def _change_rule(
    item: dict[str, Any],
    origin: Origin,
    old: RuleDef,
    modes: dict[str, str],
    appending: bool,
    book: RuleBook,
) -> None:
    if appending:
        book.warnings.append(f"{origin}: rule {old.name}: append: true is deprecated, use override")
        modes = {k: "append" for k in ("condition", "exceptions", "output", "desc") if k in item}
    new = old
    for key, mode in modes.items():
        allowed = RULE_APPENDABLE if mode == "append" else RULE_REPLACEABLE
        if key not in allowed:
            raise _err(origin, f"rule {old.name}: {key} cannot be overridden with {mode}")
        value = item[key]
        match key:
            case "condition":
                if not isinstance(value, str):
                    raise _err(origin, f"rule {old.name}: condition must be a string")
                cond = f"{old.condition} {value}" if mode == "append" else value
                _check_syntax(cond, origin, old.name)
                new = replace(new, condition=cond)
            case "output":
                text = str(value).strip()
                new = replace(new, output=f"{old.output} {text}" if mode == "append" else text)
            case "desc":
                text = str(value).strip()
                new = replace(new, desc=f"{old.desc} {text}" if mode == "append" else text)
            case "tags":
                tags = _str_list(value, origin, f"rule {old.name}: tags")
                new = replace(new, tags=old.tags + tags if mode == "append" else tags)
            case "exceptions":
                exc = _exceptions(value, origin, old.name, appending=mode == "append")
                if mode == "append":
                    known = {e.name for e in old.exceptions}
                    for e in exc:
                        if not e.fields and e.name not in known:
                            raise _err(origin, f"rule {old.name}: exception {e.name} has no fields")
                new = replace(
                    new,
                    exceptions=_merge_exceptions(old.exceptions, exc) if mode == "append" else exc,
                )
            case "priority":
                new = replace(new, priority=_priority(value, origin, old.name))
            case "enabled":
                new = replace(new, enabled=_bool(value, origin, f"rule {old.name}: enabled"))
            case "skip-if-unknown-filter":
                new = replace(new, skip_if_unknown_filter=bool(value))
            case _:
                pass
    book.rules[old.name] = new
