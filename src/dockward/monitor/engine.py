"""The compiled rule engine: rules indexed by source and event type, matched per event."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockward.monitor.compile import (
    CompileError,
    Compiler,
    Predicate,
    _Source,
    bucket_function,
    event_types,
    field_accessor,
    generate,
)
from dockward.monitor.condition import (
    And,
    Check,
    ConditionError,
    FieldRef,
    Node,
    Not,
    Or,
    parse_condition,
)
from dockward.monitor.fields import PRODUCED_TYPES, SOURCES, UNSUPPORTED, Event
from dockward.monitor.loader import ExceptionDef, Priority, RuleBook, RuleDef, load_files

_OUTPUT_FIELD = re.compile(r"%([A-Za-z_]\w*(?:\.\w+)*(?:\[[^\]]*\])?)")
_FIELD_NAME = re.compile(r"^([A-Za-z_][\w.]*)(?:\[(.*)\])?$")
NA = "<NA>"


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    priority: Priority
    source: str
    tags: tuple[str, ...]
    desc: str
    test: Predicate
    render: Callable[[Event], tuple[str, dict[str, Any]]]
    evt_types: frozenset[str] | None
    origin: str
    expr: str | bool = False


@dataclass(frozen=True, slots=True)
class Match:
    rule: CompiledRule
    output: str
    fields: dict[str, Any]


def format_value(value: Any) -> str:
    if value is None:
        return NA
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(format_value(v) for v in value)
    return str(value)


def _field_ref(name: str) -> FieldRef:
    m = _FIELD_NAME.match(name.strip())
    if not m:
        raise CompileError(f"{name!r} is not a field name")
    return FieldRef(m.group(1), m.group(2))


def exception_node(ex: ExceptionDef) -> Node | None:
    """Falco's exception semantics as an AST: `not ((f1 = v1 and f2 = v2) or ...)`."""
    if not ex.values:
        return None
    if isinstance(ex.fields, str):
        items = tuple(str(v) for v in ex.values)
        comp = ex.comps if isinstance(ex.comps, str) else "in"
        return Check(_field_ref(ex.fields), comp, values=items)
    comps = ex.comps if isinstance(ex.comps, tuple) else ()
    alternatives: Node | None = None
    for tup in ex.values:
        conj: Node | None = None
        for fname, comp, value in zip(ex.fields, comps, tup, strict=True):
            ref = _field_ref(fname)
            if isinstance(value, list):
                op = comp if comp in ("in", "pmatch", "intersects") else "in"
                chk = Check(ref, op, values=tuple(str(v) for v in value))
            else:
                chk = Check(ref, "=" if comp == "==" else comp, value=str(value))
            conj = chk if conj is None else And(conj, chk)
        if conj is not None:
            alternatives = conj if alternatives is None else Or(alternatives, conj)
    return alternatives


def _rule_node(rule: RuleDef) -> Node:
    node = parse_condition(rule.condition)
    for ex in rule.exceptions:
        alt = exception_node(ex)
        if alt is not None:
            node = And(node, Not(alt))
    return node


def _renderer(
    template: str, source: str, warnings: list[str], rule: RuleDef
) -> Callable[[Event], tuple[str, dict[str, Any]]]:
    parts: list[str | tuple[str, Callable[[Event], Any]]] = []
    pos = 0
    # Falco's %container.info is shorthand for the container's id and name.
    template = template.replace(
        "%container.info", "container_id=%container.id container_name=%container.name"
    )
    for m in _OUTPUT_FIELD.finditer(template):
        parts.append(template[pos : m.start()])
        name = m.group(1)
        ref = _field_ref(name)
        try:
            get, _, _ = field_accessor(ref, source)
        except CompileError as exc:
            if ref.name in UNSUPPORTED or "not provided" in str(exc):
                warnings.append(f"{rule.origin}: rule {rule.name}: output {exc}; rendered as {NA}")
                get = _none
            else:
                raise CompileError(f"output: {exc}") from exc
        parts.append((name, get))
        pos = m.end()
    parts.append(template[pos:])
    fixed = tuple(parts)

    def render(ev: Event) -> tuple[str, dict[str, Any]]:
        out: list[str] = []
        values: dict[str, Any] = {}
        for part in fixed:
            if isinstance(part, str):
                out.append(part)
            else:
                v = part[1](ev)
                values[part[0]] = v
                out.append(format_value(v))
        return "".join(out), values

    return render


def _none(ev: Event) -> Any:
    return None


@dataclass
class Engine:
    """Compiled rules; `match(event)` returns the rules an event fires."""

    rules: list[CompiledRule] = field(default_factory=list)
    disabled: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    match_all: bool = True
    _index: dict[str, tuple[dict[str, tuple[CompiledRule, ...]], tuple[CompiledRule, ...]]] = field(
        default_factory=dict
    )
    _buckets: dict[tuple[str, str | None], Callable[[Event], list[int]]] = field(
        default_factory=dict
    )
    names: _Source = field(default_factory=_Source)

    def build_index(self) -> None:
        by_source: dict[str, list[CompiledRule]] = {}
        for r in self.rules:
            by_source.setdefault(r.source, []).append(r)
        self._index = {}
        self._buckets = {}
        for source, rules in by_source.items():
            types: set[str] = set()
            for r in rules:
                types |= r.evt_types or set()
            table = {
                t: tuple(r for r in rules if r.evt_types is None or t in r.evt_types) for t in types
            }
            default = tuple(r for r in rules if r.evt_types is None)
            self._index[source] = (table, default)
            for t, bucket in [*table.items(), (None, default)]:
                self._buckets[(source, t)] = bucket_function(
                    [r.expr for r in bucket], self.names, not self.match_all
                )

    def candidates(self, ev: Event) -> tuple[CompiledRule, ...]:
        entry = self._index.get(ev.get("evt.source", "syscall"))
        if entry is None:
            return ()
        table, default = entry
        return table.get(ev.get("evt.type"), default)  # type: ignore[arg-type]

    def match(self, ev: Event) -> list[Match]:
        source = ev.get("evt.source", "syscall")
        entry = self._index.get(source)
        if entry is None:
            return []
        table, default = entry
        etype = ev.get("evt.type")
        rules = table.get(etype)  # type: ignore[arg-type]
        key = (source, etype if rules is not None else None)
        if rules is None:
            rules = default
        if not rules:
            return []
        try:
            hits = self._buckets[key](ev)
        except (TypeError, ValueError, AttributeError, KeyError):
            return self._match_one_by_one(ev, rules)
        out: list[Match] = []
        for i in hits:
            rule = rules[i]
            text, values = rule.render(ev)
            out.append(Match(rule, text, values))
        return out

    def _match_one_by_one(self, ev: Event, rules: tuple[CompiledRule, ...]) -> list[Match]:
        out: list[Match] = []
        for rule in rules:
            try:
                fired = rule.test(ev)
            except (TypeError, ValueError, AttributeError):
                # A value of an unexpected type from a source never crashes the monitor.
                fired = False
            if fired:
                text, values = rule.render(ev)
                out.append(Match(rule, text, values))
                if not self.match_all:
                    break
        return out


def compile_book(
    book: RuleBook, min_priority: Priority = Priority.DEBUG, match_all: bool = True
) -> Engine:
    engine = Engine(warnings=list(book.warnings), match_all=match_all)
    compiler = Compiler(book.lists, book.macros)
    for rule in book.rules.values():
        if not rule.enabled:
            continue
        if rule.priority > min_priority:
            continue
        reason = ""
        if rule.source not in SOURCES:
            reason = f"unknown source {rule.source}"
        else:
            try:
                node = _rule_node(rule)
                types = event_types(node, compiler)
                produced = PRODUCED_TYPES.get(rule.source)
                if types is not None and produced is not None and not types & produced:
                    kinds = ", ".join(sorted(types))
                    raise CompileError(f"evt.type {kinds} is not produced by dockward's sources")
                test, expr = generate(compiler, node, rule.source, types, engine.names)
                render = _renderer(rule.output, rule.source, engine.warnings, rule)
            except (CompileError, ConditionError) as exc:
                reason = str(exc)
        if reason:
            engine.disabled[rule.name] = reason
            engine.warnings.append(f"{rule.origin}: rule {rule.name!r} disabled: {reason}")
            continue
        engine.rules.append(
            CompiledRule(
                rule.name,
                rule.priority,
                rule.source,
                rule.tags,
                rule.desc,
                test,
                render,
                types,
                str(rule.origin),
                expr,
            )
        )
    engine.build_index()
    return engine


def load_engine(
    paths: Iterable[str | Path], min_priority: Priority = Priority.DEBUG, match_all: bool = True
) -> Engine:
    return compile_book(load_files(paths), min_priority, match_all)


def default_rules_path() -> Path:
    return Path(__file__).with_name("default_rules.yaml")
