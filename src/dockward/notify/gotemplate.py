"""The subset of Go's text/template that Watchtower notification templates use.

Supported: `{{.Field.Chain}}` (dict keys, attributes, zero-argument methods), `{{.Method "arg"}}`,
`{{if}}`/`{{else if}}`/`{{else}}`/`{{end}}`, `{{range}}` (with `{{else}}`), `{{with}}`, trim markers
`{{-`/`-}}`, comments, parenthesised pipelines, `|` pipes, string/number/bool literals and the
functions len, or, and, not, eq, ne, lt, le, gt, ge, print, printf (%s %d %v %q), println, index.
Variables (`$x := ...`), `define`/`template`/`block` are refused with a one-line error. There is no
Go template library for Python; this is the small interpreter the common template shapes need.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dockward.errors import UsageError

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(
    r"""\s*(?:
    (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<field>(?:\.[A-Za-z_]\w*)+|\.)
  | (?P<var>\$[A-Za-z_]\w*|\$)
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<punct>[()|])
  | (?P<assign>:?=)
  )""",
    re.X,
)


class TemplateError(UsageError):
    """A template that cannot be parsed or rendered."""


@dataclass(slots=True)
class _Text:
    text: str


@dataclass(slots=True)
class _Expr:
    tokens: list[tuple[str, str]]


@dataclass(slots=True)
class _Block:
    kind: str  # if, range, with
    expr: _Expr
    body: list[Any] = field(default_factory=list)
    orelse: list[Any] = field(default_factory=list)


def _tokenize(src: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    src = src.strip()
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None or m.end() == pos:
            raise TemplateError(f"template: cannot parse {src[pos : pos + 30]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(src) and src[pos].isspace():
            pos += 1
    return out


def _parse(src: str) -> list[Any]:
    pieces: list[Any] = []
    pos = 0
    for m in _ACTION.finditer(src):
        text = src[pos : m.start()]
        if m.group(1):
            text = text.rstrip()
        pieces.append(_Text(text))
        pieces.append(m.group(2).strip())
        pos = m.end()
        if m.group(3):
            while pos < len(src) and src[pos].isspace():
                pos += 1
    pieces.append(_Text(src[pos:]))
    # Trim markers on the *next* action strip the text before it: handled above by rstrip;
    # `-}}` strips the text after it: handled by advancing pos.
    root: list[Any] = []
    stack: list[tuple[_Block, list[Any]]] = []
    current = root
    for piece in pieces:
        if isinstance(piece, _Text):
            if piece.text:
                current.append(piece)
            continue
        action: str = piece
        if action.startswith("/*"):
            continue
        word = action.split(None, 1)[0] if action else ""
        rest = action[len(word) :].strip()
        if word in ("if", "range", "with"):
            block = _Block(word, _Expr(_tokenize(rest)))
            current.append(block)
            stack.append((block, current))
            current = block.body
        elif word == "else":
            if not stack:
                raise TemplateError("template: {{else}} outside if/range/with")
            block = stack[-1][0]
            if rest.startswith(("if ", "with ")):
                inner_kind, inner = rest.split(None, 1)
                nested = _Block(inner_kind, _Expr(_tokenize(inner)))
                block.orelse.append(nested)
                # `else if` ends with the same {{end}}: chain it on the stack.
                stack[-1] = (nested, stack[-1][1])
                current = nested.body
            else:
                current = block.orelse
        elif word == "end":
            if not stack:
                raise TemplateError("template: {{end}} without if/range/with")
            _, current = stack.pop()
        elif word in ("define", "template", "block", "break", "continue") or ":=" in action:
            raise TemplateError(f"template: {{{{{word}}}}} is not supported")
        else:
            current.append(_Expr(_tokenize(action)))
    if stack:
        raise TemplateError(f"template: {{{{{stack[-1][0].kind}}}}} without {{{{end}}}}")
    return root


def _truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0
    if isinstance(value, (str, bytes, Sequence, Mapping)):
        return len(value) > 0
    return True


def _go_str(value: Any) -> str:
    if value is None:
        return "<no value>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_go_str(v) for v in value) + "]"
    return str(value)


def _printf(fmt: str, *args: Any) -> str:
    values = iter(args)

    def one(m: re.Match[str]) -> str:
        verb = m.group(0)
        if verb == "%%":
            return "%"
        v = next(values, None)
        if verb.endswith("q"):
            return '"' + _go_str(v).replace('"', '\\"') + '"'
        if verb.endswith("d"):
            return str(int(v or 0))
        return _go_str(v)

    return re.sub(r"%%|%[-+ 0#]*\d*(?:\.\d+)?[sdvq]", one, fmt)


def _cmp(op: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    def f(a: Any, *bs: Any) -> bool:
        return any(op(a, b) for b in bs) if op is _eq else op(a, bs[0])

    return f


def _eq(a: Any, b: Any) -> bool:
    return bool(a == b)


FUNCS: dict[str, Callable[..., Any]] = {
    "len": lambda v: len(v) if v is not None else 0,
    "not": lambda v: not _truthy(v),
    "print": lambda *a: "".join(_go_str(v) for v in a),
    "println": lambda *a: " ".join(_go_str(v) for v in a) + "\n",
    "printf": _printf,
    "index": lambda v, *keys: _index(v, keys),
    "eq": _cmp(_eq),
    "ne": _cmp(lambda a, b: a != b),
    "lt": _cmp(lambda a, b: a < b),
    "le": _cmp(lambda a, b: a <= b),
    "gt": _cmp(lambda a, b: a > b),
    "ge": _cmp(lambda a, b: a >= b),
}


def _index(value: Any, keys: Sequence[Any]) -> Any:
    for k in keys:
        try:
            value = value[k]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _field(value: Any, name: str, args: Sequence[Any]) -> Any:
    if isinstance(value, Mapping):
        got = value.get(name)
    elif value is None:
        raise TemplateError(f"template: nil has no field {name}")
    else:
        got = getattr(value, name, None)
        if got is None and not hasattr(value, name):
            raise TemplateError(f"template: can't evaluate field {name} in {type(value).__name__}")
    if callable(got):
        return got(*args)
    if args:
        raise TemplateError(f"template: {name} is not a method")
    return got


class Template:
    """A parsed template; `render(data)` returns the text."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._tree = _parse(source)

    def render(self, data: Any) -> str:
        out: list[str] = []
        self._run(self._tree, data, data, out)
        return "".join(out)

    def _run(self, nodes: list[Any], dot: Any, root: Any, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Expr):
                out.append(_go_str(self._pipeline(node.tokens, dot, root)))
            else:
                value = self._pipeline(node.expr.tokens, dot, root)
                if node.kind == "if":
                    self._run(node.body if _truthy(value) else node.orelse, dot, root, out)
                elif node.kind == "with":
                    if _truthy(value):
                        self._run(node.body, value, root, out)
                    else:
                        self._run(node.orelse, dot, root, out)
                else:
                    items = list(value.values()) if isinstance(value, Mapping) else value
                    if _truthy(items):
                        for item in items:
                            self._run(node.body, item, root, out)
                    else:
                        self._run(node.orelse, dot, root, out)

    def _pipeline(self, tokens: list[tuple[str, str]], dot: Any, root: Any) -> Any:
        commands: list[list[tuple[str, str]]] = [[]]
        depth = 0
        for tok in tokens:
            if tok == ("punct", "|") and depth == 0:
                commands.append([])
                continue
            if tok == ("punct", "("):
                depth += 1
            elif tok == ("punct", ")"):
                depth -= 1
            commands[-1].append(tok)
        value: Any = _NOTHING
        for cmd in commands:
            if not cmd:
                raise TemplateError("template: empty command in pipeline")
            value = self._command(cmd, dot, root, value)
        return value

    def _operands(self, tokens: list[tuple[str, str]], dot: Any, root: Any) -> list[Any]:
        out: list[Any] = []
        i = 0
        while i < len(tokens):
            kind, text = tokens[i]
            if kind == "punct" and text == "(":
                depth, j = 1, i + 1
                while j < len(tokens) and depth:
                    if tokens[j] == ("punct", "("):
                        depth += 1
                    elif tokens[j] == ("punct", ")"):
                        depth -= 1
                    j += 1
                if depth:
                    raise TemplateError("template: unbalanced parentheses")
                out.append(self._pipeline(tokens[i + 1 : j - 1], dot, root))
                i = j
                continue
            out.append(self._atom(kind, text, dot, root))
            i += 1
        return out

    def _atom(self, kind: str, text: str, dot: Any, root: Any) -> Any:
        match kind:
            case "str":
                try:
                    return str(json.loads(text))
                except ValueError as exc:
                    raise TemplateError(f"template: bad string {text[:30]}") from exc
            case "raw":
                return text[1:-1]
            case "num":
                return float(text) if "." in text else int(text)
            case "field":
                return self._chain(dot, text, ())
            case "var":
                if text == "$":
                    return root
                raise TemplateError(f"template: variable {text} is not supported")
            case "ident":
                if text in ("true", "false"):
                    return text == "true"
                if text == "nil":
                    return None
                raise TemplateError(f'template: function "{text}" not defined')
        raise TemplateError(f"template: unexpected {text!r}")

    def _chain(self, value: Any, path: str, args: Sequence[Any]) -> Any:
        if path == ".":
            return value
        names = path.split(".")[1:]
        for n, name in enumerate(names):
            value = _field(value, name, args if n == len(names) - 1 else ())
        return value

    def _command(self, cmd: list[tuple[str, str]], dot: Any, root: Any, piped: Any) -> Any:
        head_kind, head = cmd[0]
        extra = [] if piped is _NOTHING else [piped]
        if head_kind == "ident" and head in ("and", "or"):
            values = self._operands(cmd[1:], dot, root) + extra
            result: Any = values[0] if values else None
            for v in values:
                result = v
                if _truthy(v) != (head == "and"):
                    return v
            return result
        if head_kind == "ident" and head in FUNCS:
            return FUNCS[head](*self._operands(cmd[1:], dot, root), *extra)
        if head_kind == "field" and (len(cmd) > 1 or extra):
            args = self._operands(cmd[1:], dot, root) + extra
            return self._chain(dot, head, args)
        values = self._operands(cmd, dot, root)
        if len(values) != 1 or extra:
            raise TemplateError(f"template: can't give arguments to {head!r}")
        return values[0]


class _Nothing:
    pass


_NOTHING = _Nothing()


_GO_LAYOUT = [
    ("2006", "%Y"),
    ("Z07:00", "%:z"),
    ("-0700", "%z"),
    ("-07:00", "%:z"),
    ("MST", "%Z"),
    ("January", "%B"),
    ("Monday", "%A"),
    ("Jan", "%b"),
    ("Mon", "%a"),
    (".000000", ".%f"),
    (".000", ".%f3"),
    ("01", "%m"),
    ("02", "%d"),
    ("15", "%H"),
    ("03", "%I"),
    ("04", "%M"),
    ("05", "%S"),
    ("06", "%y"),
    ("PM", "%p"),
    ("_2", "%e"),
]


def go_time_format(moment: Any, layout: str) -> str:
    """Go's reference-time layout ("2006-01-02 15:04:05") applied to a datetime."""
    out: list[str] = []
    i = 0
    while i < len(layout):
        for go, py in _GO_LAYOUT:
            if layout.startswith(go, i):
                if py == ".%f3":
                    out.append(f".{moment.microsecond // 1000:03d}")
                elif py == "%:z":
                    z = moment.strftime("%z")
                    out.append(
                        "Z" if go.startswith("Z") and z in ("+0000", "") else z[:3] + ":" + z[3:]
                    )
                else:
                    out.append(moment.strftime(py))
                i += len(go)
                break
        else:
            out.append(layout[i])
            i += 1
    return "".join(out)
