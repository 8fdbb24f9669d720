"""Condition ASTs -> Python closures, once per rule load (never interpreted per event)."""

from __future__ import annotations

import base64
import binascii
import fnmatch
import ipaddress
import posixpath
import re
from collections.abc import Callable, Mapping
from typing import Any

from dockward.errors import DockwardError
from dockward.monitor.condition import (
    And,
    Check,
    ConditionError,
    FieldRef,
    MacroRef,
    Node,
    Not,
    Or,
    parse_condition,
)
from dockward.monitor.fields import (
    BOOL,
    IP,
    LIST,
    NET,
    NUMBER,
    PRODUCED_TYPES,
    STRING,
    Event,
    FieldError,
    resolve,
)

Predicate = Callable[[Event], bool]


class CompileError(DockwardError, ValueError):
    """A rule that cannot be compiled (unknown field, macro, operator for the type...)."""


def _transform(name: str) -> Callable[[Any], Any]:
    match name:
        case "tolower":
            return lambda v: v.lower() if isinstance(v, str) else v
        case "toupper":
            return lambda v: v.upper() if isinstance(v, str) else v
        case "basename":
            return lambda v: v.rpartition("/")[2] if isinstance(v, str) else v
        case "len":
            return lambda v: len(v) if isinstance(v, str | list | tuple) else v
        case "b64":
            return _b64
        case _:
            raise CompileError(f"unknown transformer {name}")


def _b64(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None


def field_accessor(ref: FieldRef, source: str) -> tuple[Callable[[Event], Any], str, bool]:
    """(accessor, type, multi-valued) of a field with its transformers applied."""
    try:
        get, kind = resolve(ref.name, ref.arg, source)
    except FieldError as exc:
        raise CompileError(str(exc)) from exc
    multi = kind == LIST and ref.arg is None
    for name in reversed(ref.transformers):
        fn = _transform(name)
        inner = get
        if multi:

            def get(ev: Event, _f: Any = fn, _g: Any = inner) -> Any:
                v = _g(ev)
                return None if v is None else [_f(x) for x in v]

        else:

            def get(ev: Event, _f: Any = fn, _g: Any = inner) -> Any:
                v = _g(ev)
                return None if v is None else _f(v)

        if name == "len":
            kind, multi = NUMBER, False
    if ref.transformers:
        get = _memoized(get, "_t:" + "(".join(ref.transformers) + f"({ref.name}[{ref.arg}]")
    return get, kind, multi


_UNSET = object()


def _memoized(get: Callable[[Event], Any], key: str) -> Callable[[Event], Any]:
    # Several rules often transform the same field (basename(proc.exe)): once per event. The
    # "_" prefix keeps the value out of recordings and alerts.
    def cached(ev: Event) -> Any:
        value = ev.get(key, _UNSET)
        if value is _UNSET:
            value = ev[key] = get(ev)
        return value

    return cached


def _coerce(kind: str, text: str, where: str) -> Any:
    if kind == NUMBER:
        try:
            return int(text, 0) if text.lower().startswith(("0x", "0o")) else int(text)
        except ValueError as exc:
            raise CompileError(f"{where}: {text!r} is not a number") from exc
    if kind == BOOL:
        low = text.lower()
        if low not in ("true", "false"):
            raise CompileError(f"{where}: {text!r} is not true or false")
        return low == "true"
    return text


def _scalar_test(op: str, value: Any, kind: str, where: str) -> Callable[[Any], bool]:
    """A test of one extracted (non-None) value against a constant."""
    string_ops = {
        "contains",
        "icontains",
        "startswith",
        "endswith",
        "glob",
        "iglob",
        "regex",
        "bcontains",
        "bstartswith",
    }
    if op in string_ops and kind not in (STRING, LIST):
        raise CompileError(f"{where}: operator {op} needs a string field")
    if op in ("<", "<=", ">", ">=") and kind != NUMBER:
        raise CompileError(f"{where}: operator {op} needs a numeric field")
    match op:
        case "=":
            return lambda x: x == value
        case "!=":
            return lambda x: x != value
        case "<":
            return lambda x: x < value
        case "<=":
            return lambda x: x <= value
        case ">":
            return lambda x: x > value
        case ">=":
            return lambda x: x >= value
        case "contains":
            return lambda x: value in x
        case "icontains":
            low = value.lower()
            return lambda x: low in x.lower()
        case "startswith":
            return lambda x: x.startswith(value)
        case "endswith":
            return lambda x: x.endswith(value)
        case "glob" | "iglob":
            flags = re.S | (re.I if op == "iglob" else 0)
            matcher = re.compile(fnmatch.translate(value), flags).match
            return lambda x: matcher(x) is not None
        case "regex":
            try:
                search = re.compile(value).search
            except re.error as exc:
                raise CompileError(f"{where}: bad regex {value!r}: {exc}") from exc
            return lambda x: search(x) is not None
        case "bcontains" | "bstartswith":
            try:
                needle = bytes.fromhex(value)
            except ValueError as exc:
                raise CompileError(f"{where}: {value!r} is not hex bytes") from exc
            if op == "bcontains":
                return lambda x: needle in x.encode("utf-8", "surrogateescape")
            return lambda x: x.encode("utf-8", "surrogateescape").startswith(needle)
        case _:
            raise CompileError(f"{where}: unknown operator {op}")


def _pmatch(prefixes: frozenset[str]) -> Callable[[Any], bool]:
    """Path-prefix match: the path itself or anything below one of the prefixes."""
    below = tuple(p.rstrip("/") + "/" for p in prefixes)

    def test(x: Any) -> bool:
        return type(x) is str and (x in prefixes or x.startswith(below))

    return test


def _unquote_item(item: str) -> str:
    # Falco pastes list items into the condition, so '"sh -c x"' in a list means `sh -c x`.
    if len(item) >= 2 and item[0] == item[-1] and item[0] in "\"'":
        return item[1:-1]
    return item


class Compiler:
    """Compiles conditions for one source, with the loaded lists and macros."""

    def __init__(self, lists: Mapping[str, tuple[str, ...]], macros: Mapping[str, str]) -> None:
        self.lists = lists
        self.macros = macros
        self._macro_ast: dict[str, Node] = {}

    def macro(self, name: str) -> Node:
        if name not in self._macro_ast:
            if name not in self.macros:
                raise CompileError(f"unknown macro or field {name}")
            try:
                self._macro_ast[name] = parse_condition(self.macros[name])
            except ConditionError as exc:
                raise CompileError(f"macro {name}: {exc}") from exc
        return self._macro_ast[name]

    def expand(self, items: tuple[str, ...], seen: frozenset[str] = frozenset()) -> list[str]:
        out: list[str] = []
        for item in items:
            if item in self.lists and item not in seen:
                out.extend(_unquote_item(x) for x in self.expand(self.lists[item], seen | {item}))
            else:
                out.append(item)
        return out

    def compile(self, node: Node, source: str, stack: tuple[str, ...] = ()) -> Predicate:
        match node:
            case And(left, right):
                a, b = self.compile(left, source, stack), self.compile(right, source, stack)
                return lambda ev: a(ev) and b(ev)
            case Or(left, right):
                a, b = self.compile(left, source, stack), self.compile(right, source, stack)
                return lambda ev: a(ev) or b(ev)
            case Not(operand):
                a = self.compile(operand, source, stack)
                return lambda ev: not a(ev)
            case MacroRef(name):
                if name in stack:
                    raise CompileError(f"macro {name} refers to itself")
                return self.compile(self.macro(name), source, (*stack, name))
            case Check():
                return self.check(node, source)

    def check(self, chk: Check, source: str) -> Predicate:
        where = _describe(chk)
        get, kind, multi = field_accessor(chk.field, source)
        plain = chk.field.arg is None and not chk.field.transformers
        key = chk.field.name
        if chk.op == "exists":
            if plain:
                return lambda ev: ev.get(key) is not None
            return lambda ev: get(ev) is not None
        if isinstance(chk.value, FieldRef):
            other, _, _ = field_accessor(chk.value, source)
            test2 = _dynamic(chk.op, where)

            def by_field(ev: Event) -> bool:
                a, b = get(ev), other(ev)
                return a is not None and b is not None and test2(a, b)

            return by_field
        if kind in (IP, NET):
            return self._address_check(chk, get, kind, where)
        elem_kind = STRING if kind == LIST else kind
        if chk.op in ("in", "intersects", "pmatch") or chk.modifier:
            values = self.expand(chk.values)
            coerced = [_coerce(elem_kind, v, where) for v in values]
            if chk.op == "pmatch":
                one = _pmatch(frozenset(posixpath.normpath(v) for v in coerced if v))
            elif chk.modifier:
                tests = [_scalar_test(chk.op, v, elem_kind, where) for v in coerced]
                if chk.modifier == "allof":
                    one = lambda x: all(t(x) for t in tests)  # noqa: E731
                else:
                    one = lambda x: any(t(x) for t in tests)  # noqa: E731
            else:
                members = frozenset(coerced)
                if chk.op == "in" and not multi:
                    if plain:
                        return lambda ev: ev.get(key) in members
                    return lambda ev: get(ev) in members
                if multi and chk.op == "in" and key not in _ANCESTOR_FIELDS:
                    return lambda ev: _all_in(get(ev), members)
                # proc.aname/proc.apid compare each ancestor as Falco does: `in` is true when
                # any ancestor is a member (Falco's protected_shell_spawner depends on it).
                one = members.__contains__
            return _wrap(get, one, multi)
        if chk.value is None:
            raise CompileError(f"{where}: missing value")
        value = _coerce(elem_kind, chk.value, where)
        test = _scalar_test(chk.op, value, elem_kind, where)
        if plain and not multi:
            if chk.op == "=":
                return lambda ev: ev.get(key) == value
            if chk.op == "startswith":
                return lambda ev: (x := ev.get(key)) is not None and x.startswith(value)
        return _wrap(get, test, multi)

    def _address_check(
        self, chk: Check, get: Callable[[Event], Any], kind: str, where: str
    ) -> Predicate:
        """`=`, `!=`, `in` on addresses (IP) or networks (NET, CIDR values: an address is equal
        to a network it lies in). True when any end the field covers satisfies it, as Falco's
        fd.ip/fd.net do (`fd.net != 127.0.0.0/8`: some end is outside loopback)."""
        if chk.op not in ("=", "!=", "in") or chk.modifier:
            raise CompileError(f"{where}: operator {chk.op} does not apply to addresses")
        texts = self.expand(chk.values) if chk.op == "in" else [str(chk.value or "")]
        try:
            if kind == NET:
                nets = [ipaddress.ip_network(t.strip('"'), strict=False) for t in texts]
            else:
                nets = [ipaddress.ip_network(ipaddress.ip_address(t.strip('"'))) for t in texts]
        except ValueError as exc:
            raise CompileError(f"{where}: {exc}") from exc
        negate = chk.op == "!="

        def one(text: str) -> bool:
            try:
                addr = ipaddress.ip_address(text)
            except ValueError:
                return False
            return any(addr in n for n in nets) != negate

        return lambda ev: (ends := get(ev)) is not None and any(one(e) for e in ends)


_ANCESTOR_FIELDS = frozenset({"proc.aname", "proc.apid"})


def _all_in(values: Any, members: frozenset[Any]) -> bool:
    return bool(values) and all(v in members for v in values)


def _wrap(get: Callable[[Event], Any], one: Callable[[Any], bool], multi: bool) -> Predicate:
    if multi:
        return lambda ev: (v := get(ev)) is not None and any(one(x) for x in v)
    return lambda ev: (v := get(ev)) is not None and one(v)


def _dynamic(op: str, where: str) -> Callable[[Any, Any], bool]:
    ops: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "contains": lambda a, b: str(b) in str(a),
        "icontains": lambda a, b: str(b).lower() in str(a).lower(),
        "startswith": lambda a, b: str(a).startswith(str(b)),
        "endswith": lambda a, b: str(a).endswith(str(b)),
    }
    if op not in ops:
        raise CompileError(f"{where}: operator {op} cannot compare two fields")
    return ops[op]


def _describe(chk: Check) -> str:
    name = chk.field.name + (f"[{chk.field.arg}]" if chk.field.arg is not None else "")
    return f"{name} {chk.op}"


def event_types(
    node: Node, compiler: Compiler, stack: tuple[str, ...] = ()
) -> frozenset[str] | None:
    """The evt.type values a condition can match (None: any), to index rules by event type."""
    match node:
        case And(left, right):
            a = event_types(left, compiler, stack)
            b = event_types(right, compiler, stack)
            if a is None:
                return b
            return a if b is None else a & b
        case Or(left, right):
            a = event_types(left, compiler, stack)
            b = event_types(right, compiler, stack)
            return None if a is None or b is None else a | b
        case Not():
            return None
        case MacroRef(name):
            if name in stack:
                return None
            return event_types(compiler.macro(name), compiler, (*stack, name))
        case Check(field, op, value, values, modifier):
            if field.name != "evt.type" or field.arg is not None or field.transformers:
                return None
            if op == "=" and isinstance(value, str):
                return frozenset({value})
            if op == "in" and not modifier:
                return frozenset(compiler.expand(values))
            return None


_INLINE_OPS = frozenset({"=", "!=", "in", "exists", "startswith", "endswith", "contains"})


class _Source:
    """Python source for one condition. Every value and field name from the rules file is a
    named constant in the namespace, never text in the source, so a rule cannot inject code."""

    def __init__(self) -> None:
        self.ns: dict[str, Any] = {"_str": str}
        self.n = 0

    def const(self, value: Any) -> str:
        name = f"_c{self.n}"
        self.n += 1
        self.ns[name] = value
        return name

    def var(self) -> str:
        self.n += 1
        return f"_v{self.n}"


def _and(a: str | bool, b: str | bool) -> str | bool:
    if a is False or b is False:
        return False
    if a is True:
        return b
    if b is True:
        return a
    return f"({a} and {b})"


def _or(a: str | bool, b: str | bool) -> str | bool:
    if a is True or b is True:
        return True
    if a is False:
        return b
    if b is False:
        return a
    return f"({a} or {b})"


def _not(a: str | bool) -> str | bool:
    if isinstance(a, bool):
        return not a
    return f"(not {a})"


def generate(
    compiler: Compiler,
    node: Node,
    source: str,
    types: frozenset[str] | None,
    out: _Source | None = None,
) -> tuple[Predicate, str | bool]:
    """One Python function per rule: checks inline as dict lookups, compiled to bytecode once.
    Also returns the expression, so the engine can join the rules of one event type into one
    function (see `bucket_function`).

    A rule indexed by event type only sees events of those types, so its own `evt.type` tests
    that cover them are known true and are folded away.
    """
    out = out or _Source()

    produced = PRODUCED_TYPES.get(source)

    def gen(n: Node, stack: tuple[str, ...]) -> str | bool:
        match n:
            case And(left, right):
                # A part that can only match event types no source produces (Falco's
                # `outbound` for sendto/sendmsg) is false: its other fields are not needed.
                only = event_types(n, compiler, stack)
                if only is not None and produced is not None and not only & produced:
                    return False
                return _and(gen(left, stack), gen(right, stack))
            case Or(left, right):
                return _or(gen(left, stack), gen(right, stack))
            case Not(operand):
                return _not(gen(operand, stack))
            case MacroRef(name):
                if name in stack:
                    raise CompileError(f"macro {name} refers to itself")
                return gen(compiler.macro(name), (*stack, name))
            case Check():
                return check(n)

    def check(chk: Check) -> str | bool:
        plain = chk.field.arg is None and not chk.field.transformers and not chk.modifier
        if plain and types is not None and chk.field.name == "evt.type":
            if chk.op == "=" and isinstance(chk.value, str) and types <= {chk.value}:
                return True
            if chk.op == "in" and types <= set(compiler.expand(chk.values)):
                return True
        pred = compiler.check(chk, source)  # validates field, type and values in every case
        _, kind, multi = field_accessor(chk.field, source)
        if (
            not plain
            or multi
            or kind in (IP, NET)
            or chk.op not in _INLINE_OPS
            or isinstance(chk.value, FieldRef)
        ):
            return f"{out.const(pred)}(ev)"
        key = out.const(chk.field.name)
        if chk.op == "exists":
            return f"(_g({key}) is not None)"
        if chk.op == "in":
            values = [_coerce(kind, v, _describe(chk)) for v in compiler.expand(chk.values)]
            return f"(_g({key}) in {out.const(frozenset(values))})"
        value = out.const(_coerce(kind, str(chk.value), _describe(chk)))
        v = out.var()
        match chk.op:
            case "=":
                return f"(_g({key}) == {value})"
            case "!=":
                return f"(({v} := _g({key})) is not None and {v} != {value})"
            case "startswith":
                return f"(type({v} := _g({key})) is _str and {v}.startswith({value}))"
            case "endswith":
                return f"(type({v} := _g({key})) is _str and {v}.endswith({value}))"
            case _:
                return f"(type({v} := _g({key})) is _str and {value} in {v})"

    expr = gen(node, ())
    if isinstance(expr, bool):
        constant = expr
        return (lambda ev: constant), expr
    text = f"def _rule(ev):\n    _g = ev.get\n    return bool({expr})\n"
    code = compile(text, "<dockward rule>", "exec")
    namespace = dict(out.ns)
    exec(code, namespace)  # noqa: S102 - source built above from constants' names only
    fn: Predicate = namespace["_rule"]
    return fn, expr


def bucket_function(
    exprs: list[str | bool], out: _Source, first_only: bool
) -> Callable[[Event], list[int]]:
    """One function for all rules of one event type: the indexes of the rules that match.

    One call per event instead of one per rule; the rule expressions are the ones `generate`
    built (their constants live in the shared namespace `out`).
    """
    lines = ["def _bucket(ev):", "    _g = ev.get", "    _m = []"]
    for i, expr in enumerate(exprs):
        if expr is False:
            continue
        cond = "True" if expr is True else expr
        lines.append(f"    if {cond}:")
        lines.append(f"        _m.append({i})" if not first_only else f"        return [{i}]")
    lines.append("    return _m")
    namespace = dict(out.ns)
    exec(compile("\n".join(lines) + "\n", "<dockward rules>", "exec"), namespace)  # noqa: S102
    fn: Callable[[Event], list[int]] = namespace["_bucket"]
    return fn
