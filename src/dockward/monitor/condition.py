"""Falco condition syntax -> an AST. Compilation into closures is in `compile.py`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockward.errors import DockwardError

BINARY_OPS = frozenset(
    {
        "=",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "contains",
        "icontains",
        "bcontains",
        "startswith",
        "bstartswith",
        "endswith",
        "glob",
        "iglob",
        "regex",
    }
)
LIST_OPS = frozenset({"in", "intersects", "pmatch"})
UNARY_OPS = frozenset({"exists"})
TRANSFORMERS = frozenset({"tolower", "toupper", "basename", "b64", "len"})
LIST_MODIFIERS = frozenset({"oneof", "anyof", "allof"})

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op><=|>=|==|!=|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[^\s(),=<>!"']+(?:\[[^\]]*\])?)
  | (?P<bad>.)
    """,
    re.VERBOSE,
)


class ConditionError(DockwardError, ValueError):
    """A condition that does not parse; the message names the position."""


@dataclass(frozen=True, slots=True)
class Tok:
    kind: str  # str, op, punct, word
    text: str
    pos: int


@dataclass(frozen=True, slots=True)
class FieldRef:
    name: str
    arg: str | None = None
    transformers: tuple[str, ...] = ()  # outermost first


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class MacroRef:
    name: str


@dataclass(frozen=True, slots=True)
class Check:
    field: FieldRef
    op: str
    value: str | FieldRef | None = None  # None for `exists`
    values: tuple[str, ...] = ()  # for list operators (list names not yet expanded)
    modifier: str = ""  # oneof / anyof / allof


Node = And | Or | Not | MacroRef | Check


def tokenize(text: str) -> list[Tok]:
    out: list[Tok] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "bad"
        if kind == "ws":
            continue
        if kind == "bad":
            raise ConditionError(f"unexpected character {m.group()!r} at offset {m.start()}")
        value = m.group()
        if kind == "str":
            value = _unquote(value)
        out.append(Tok(kind, value, m.start()))
    return out


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


_FIELD = re.compile(r"^([A-Za-z_][\w.]*)(?:\[(.*)\])?$", re.S)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0

    def peek(self, ahead: int = 0) -> Tok | None:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> Tok:
        tok = self.peek()
        if tok is None:
            raise ConditionError("unexpected end of condition")
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.text != text or tok.kind == "str":
            raise ConditionError(f"expected {text!r} at offset {tok.pos}, found {tok.text!r}")

    def is_word(self, text: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok is not None and tok.kind == "word" and tok.text == text

    def parse(self) -> Node:
        if not self.toks:
            raise ConditionError("empty condition")
        node = self.parse_or()
        tok = self.peek()
        if tok is not None:
            raise ConditionError(f"unexpected {tok.text!r} at offset {tok.pos}")
        return node

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.is_word("or"):
            self.i += 1
            node = Or(node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_not()
        while self.is_word("and"):
            self.i += 1
            node = And(node, self.parse_not())
        return node

    def parse_not(self) -> Node:
        if self.is_word("not"):
            self.i += 1
            return Not(self.parse_not())
        return self.parse_primary()

    def parse_primary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise ConditionError("unexpected end of condition")
        if tok.kind == "punct" and tok.text == "(":
            self.i += 1
            node = self.parse_or()
            self.expect(")")
            return node
        if tok.kind != "word":
            raise ConditionError(
                f"expected a field or macro at offset {tok.pos}, found {tok.text!r}"
            )
        if tok.text in TRANSFORMERS and self._next_is("("):
            return self.parse_check(self.parse_field())
        if tok.text in ("and", "or"):
            raise ConditionError(f"unexpected {tok.text!r} at offset {tok.pos}")
        nxt = self.peek(1)
        if nxt is not None and (
            nxt.kind == "op" or (nxt.kind == "word" and _is_operator(nxt.text))
        ):
            return self.parse_check(self.parse_field())
        self.i += 1
        if not re.fullmatch(r"[A-Za-z_][\w.-]*", tok.text):
            raise ConditionError(f"{tok.text!r} at offset {tok.pos} is not a field or macro name")
        return MacroRef(tok.text)

    def _next_is(self, text: str) -> bool:
        nxt = self.peek(1)
        return nxt is not None and nxt.kind == "punct" and nxt.text == text

    def parse_field(self) -> FieldRef:
        tok = self.take()
        if tok.kind == "word" and tok.text in TRANSFORMERS and self.peek() is not None:
            nxt = self.peek()
            if nxt is not None and nxt.kind == "punct" and nxt.text == "(":
                self.i += 1
                inner = self.parse_field()
                self.expect(")")
                return FieldRef(inner.name, inner.arg, (tok.text, *inner.transformers))
        if tok.kind != "word":
            raise ConditionError(f"expected a field at offset {tok.pos}, found {tok.text!r}")
        m = _FIELD.match(tok.text)
        if not m:
            raise ConditionError(f"{tok.text!r} at offset {tok.pos} is not a field name")
        return FieldRef(m.group(1), m.group(2))

    def parse_check(self, field: FieldRef) -> Check:
        tok = self.take()
        op = tok.text
        if op == "exists":
            return Check(field, "exists")
        if op in LIST_OPS:
            return Check(field, op, values=self.parse_list())
        if op not in BINARY_OPS:
            raise ConditionError(f"unknown operator {op!r} at offset {tok.pos}")
        if self.peek() is not None and self.peek().text in LIST_MODIFIERS:  # type: ignore[union-attr]
            modifier = self.take().text
            return Check(field, op, values=self.parse_list(), modifier=modifier)
        return Check(field, "=" if op == "==" else op, value=self.parse_value())

    def parse_value(self) -> str | FieldRef:
        tok = self.take()
        if tok.kind == "word" and tok.text == "val" and self._at("("):
            self.i += 1
            ref = self.parse_field()
            self.expect(")")
            return ref
        if tok.kind == "word" and tok.text in TRANSFORMERS and self._at("("):
            self.i -= 1
            return self.parse_field()
        if tok.kind in ("str", "word") or (tok.kind == "op" and tok.text in ("<", ">")):
            # `evt.dir=<` is Falco's way of saying "exit event".
            return tok.text
        raise ConditionError(f"expected a value at offset {tok.pos}, found {tok.text!r}")

    def _at(self, text: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "punct" and tok.text == text

    def parse_list(self) -> tuple[str, ...]:
        self.expect("(")
        items: list[str] = []
        if self._at(")"):
            self.i += 1
            return ()
        while True:
            tok = self.take()
            if tok.kind not in ("str", "word"):
                raise ConditionError(
                    f"expected a list item at offset {tok.pos}, found {tok.text!r}"
                )
            items.append(tok.text)
            sep = self.take()
            if sep.text == ")" and sep.kind == "punct":
                return tuple(items)
            if sep.text != "," or sep.kind != "punct":
                raise ConditionError(f"expected ',' or ')' at offset {sep.pos}, found {sep.text!r}")


def _is_operator(text: str) -> bool:
    return text in BINARY_OPS or text in LIST_OPS or text in UNARY_OPS


def parse_condition(text: str) -> Node:
    return _Parser(text).parse()
