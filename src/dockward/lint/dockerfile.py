"""Dockerfile parser following BuildKit's (moby/buildkit frontend/dockerfile/parser).

Parser directives (`syntax`, `escape`, `check`) at the top, line continuations with the escape
character, comment and blank lines inside continuations dropped, heredocs (`<<EOF`, `<<-EOF`,
quoted delimiters) for RUN/COPY/ADD, JSON (exec) and shell forms, `--flags`, ONBUILD, multi-stage
builds with `ARG` before `FROM` substituted into `FROM`. Every instruction keeps a map from its
logical text back to file lines and columns, so findings point at the exact word.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from dockward.errors import InputError
from dockward.lint.shell import SHELLS, Script, ShellSyntaxError, Word, parse_shell
from dockward.model.finding import Location

INSTRUCTIONS = frozenset(
    {
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)
JSON_FORM = frozenset({"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"})
HEREDOC_FORM = frozenset({"RUN", "COPY", "ADD"})
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_VAR = re.compile(
    r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)
MAX_INSTRUCTIONS = 20_000


@dataclass(frozen=True, slots=True)
class SourceMap:
    """Offsets of a logical text -> (line, column) in the file (both 1-based)."""

    starts: tuple[int, ...]
    lines: tuple[int, ...]
    columns: tuple[int, ...]

    def position(self, offset: int) -> tuple[int, int]:
        i = max(0, bisect.bisect_right(self.starts, offset) - 1)
        return self.lines[i], self.columns[i] + (offset - self.starts[i])


@dataclass(frozen=True, slots=True)
class Heredoc:
    delimiter: str
    body: str
    line: int  # first line of the body
    end_line: int  # line of the closing delimiter
    strip_tabs: bool
    quoted: bool
    smap: SourceMap


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str  # upper case
    args: str  # the text after the keyword and its --flags (continuations joined)
    line: int
    column: int
    end_line: int
    end_column: int
    stage: int  # index of the stage; -1 before the first FROM
    flags: tuple[tuple[str, str], ...] = ()
    json_args: tuple[str, ...] | None = None
    heredocs: tuple[Heredoc, ...] = ()
    smap: SourceMap | None = None  # offsets within `args`
    onbuild: Instruction | None = None
    comments_before: tuple[tuple[int, str], ...] = ()  # comment lines directly above
    scripts: tuple[tuple[Script, SourceMap | None], ...] | None = None  # parsed RUN bodies

    def flag(self, name: str) -> str | None:
        for key, value in self.flags:
            if key == name:
                return value
        return None

    def location(self, path: str) -> Location:
        return Location(path, self.line, self.column, self.end_line, self.end_column)

    def location_of(
        self, path: str, start: int, end: int, smap: SourceMap | None = None
    ) -> Location:
        """The file location of offsets [start, end) of `args` (or of a heredoc via `smap`)."""
        m = smap or self.smap
        if m is None:
            return self.location(path)
        line, col = m.position(start)
        eline, ecol = m.position(max(start, end - 1))
        return Location(path, line, col, eline, ecol + 1)

    def word_location(self, path: str, word: Word, smap: SourceMap | None = None) -> Location:
        return self.location_of(path, word.start, word.end, smap)

    def shell_scripts(self) -> list[tuple[Script, SourceMap | None]]:
        """The shell scripts this RUN executes: the shell form body and heredoc bodies, or the
        `-c` argument of an exec form that calls a shell. Unparseable bodies are skipped."""
        if self.scripts is not None:
            return list(self.scripts)
        return parse_scripts(self.keyword, self.args, self.json_args, self.heredocs, self.smap)


def parse_scripts(
    keyword: str,
    args: str,
    json_args: tuple[str, ...] | None,
    heredocs: tuple[Heredoc, ...],
    smap: SourceMap | None,
) -> list[tuple[Script, SourceMap | None]]:
    """The shell scripts a RUN executes (see `Instruction.shell_scripts`)."""
    out: list[tuple[Script, SourceMap | None]] = []
    if keyword != "RUN":
        return out
    try:
        if json_args is not None:
            argv = list(json_args)
            if len(argv) >= 3 and argv[0].rsplit("/", 1)[-1] in ("sh", "bash") and "-c" in argv[1]:
                out.append((parse_shell(argv[2]), None))
            elif argv:
                out.append((parse_shell(" ".join(_quote(a) for a in argv)), None))
        elif not heredocs or not args.lstrip().startswith("<<"):
            out.append((parse_shell(args), smap))
    except ShellSyntaxError:
        pass
    # A heredoc is a shell script when RUN starts with it or feeds it to a shell.
    shell_fed = args.lstrip().startswith("<<") or any(
        cmd.program in SHELLS for script, _ in out for cmd in script.commands[:1]
    )
    for doc in heredocs:
        # `RUN <<EOF` with a `#!/usr/bin/env python` body is run by that interpreter.
        interpreter = doc.body.split("\n", 1)[0] if doc.body.startswith("#!") else ""
        if interpreter and not any(sh in interpreter.split("/")[-1].split() for sh in SHELLS):
            continue
        if shell_fed:
            with contextlib.suppress(ShellSyntaxError):
                out.append((parse_shell(doc.body), doc.smap))
    return out


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


@dataclass(frozen=True, slots=True)
class Stage:
    index: int
    base: str  # as written
    base_resolved: str  # with ARG substitution
    name: str
    platform: str
    instructions: tuple[Instruction, ...]
    from_instruction: Instruction


@dataclass(frozen=True, slots=True)
class Dockerfile:
    path: str
    instructions: tuple[Instruction, ...]
    stages: tuple[Stage, ...]
    directives: Mapping[str, str] = field(default_factory=dict)
    escape: str = "\\"
    global_args: Mapping[str, str] = field(default_factory=dict)
    comments: tuple[tuple[int, str], ...] = ()  # every comment line (line, text)
    trusted_registries: tuple[str, ...] = ()
    cache: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def final_stage(self) -> Stage | None:
        return self.stages[-1] if self.stages else None

    def stage_names(self) -> set[str]:
        return {s.name.lower() for s in self.stages if s.name}


def expand_vars(text: str, env: Mapping[str, str]) -> str:
    """Dockerfile variable substitution: `$V`, `${V}`, `${V:-d}`, `${V-d}`, `${V:+a}`, `${V+a}`."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        value = env.get(name)
        if not op:
            return value if value is not None else ""
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return arg if unset else (value or "")
        return "" if unset else arg

    return _VAR.sub(sub, text)


@dataclass(slots=True)
class _Line:
    number: int
    text: str


def _split_flags(rest: str, offset: int) -> tuple[list[tuple[str, str]], int]:
    flags: list[tuple[str, str]] = []
    i = offset
    while True:
        while i < len(rest) and rest[i] in " \t":
            i += 1
        if not rest.startswith("--", i):
            return flags, i
        j = i
        quote = ""
        while j < len(rest) and (quote or rest[j] not in " \t"):
            if rest[j] in "'\"":
                quote = "" if quote == rest[j] else (quote or rest[j])
            j += 1
        name, _, value = rest[i + 2 : j].partition("=")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        flags.append((name.lower(), value))
        i = j


def _parse_json(text: str) -> tuple[str, ...] | None:
    stripped = text.strip()
    if not stripped.startswith("["):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


class DockerfileParser:
    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.lines = text.split("\n")
        self.escape = "\\"
        self.directives: dict[str, str] = {}
        self.comments: list[tuple[int, str]] = []

    def error(self, line: int, message: str) -> InputError:
        return InputError(f"{self.path}:{line}: {message}")

    def parse(self) -> Dockerfile:
        idx = self._directives()
        cont = re.compile(re.escape(self.escape) + r"[ \t]*$")
        instructions: list[Instruction] = []
        pending_comments: list[tuple[int, str]] = []
        stage = -1
        n = len(self.lines)
        while idx < n:
            raw = self.lines[idx].rstrip("\r")
            stripped = raw.strip()
            if not stripped:
                pending_comments = []
                idx += 1
                continue
            if stripped.startswith("#"):
                self.comments.append((idx + 1, stripped))
                pending_comments.append((idx + 1, stripped))
                idx += 1
                continue
            first = idx
            segments: list[_Line] = []
            text = raw
            while True:
                m = cont.search(text)
                if not m:
                    segments.append(_Line(idx + 1, text))
                    idx += 1
                    break
                segments.append(_Line(idx + 1, text[: m.start()]))
                idx += 1
                # Comment and blank lines inside a continuation are dropped, as BuildKit does.
                while idx < n:
                    nxt = self.lines[idx].rstrip("\r")
                    if nxt.strip().startswith("#"):
                        self.comments.append((idx + 1, nxt.strip()))
                        idx += 1
                    elif not nxt.strip():
                        idx += 1
                    else:
                        break
                if idx >= n:
                    break
                text = self.lines[idx].rstrip("\r")
            instr, idx = self._instruction(segments, stage, idx, tuple(pending_comments))
            pending_comments = []
            if instr.keyword == "FROM":
                stage += 1
                instr = _restage(instr, stage)
            instructions.append(instr)
            if len(instructions) > MAX_INSTRUCTIONS:
                raise self.error(first + 1, f"more than {MAX_INSTRUCTIONS} instructions")
        return self._assemble(instructions)

    def _directives(self) -> int:
        idx = 0
        for idx, raw in enumerate(self.lines):
            m = _DIRECTIVE.match(raw.strip())
            if not m:
                return idx
            key, value = m.group(1).lower(), m.group(2)
            if key not in ("syntax", "escape", "check"):
                return idx
            if key in self.directives:
                raise self.error(idx + 1, f"only one {key} parser directive can be used")
            self.directives[key] = value
            if key == "escape":
                if value not in ("\\", "`"):
                    raise self.error(idx + 1, f"invalid escape token {value!r}: must be ` or \\")
                self.escape = value
            self.comments.append((idx + 1, raw.strip()))
        return len(self.lines)

    def _instruction(
        self,
        segments: list[_Line],
        stage: int,
        idx: int,
        comments: tuple[tuple[int, str], ...],
    ) -> tuple[Instruction, int]:
        logical = "".join(s.text for s in segments)
        starts, lines, cols = [], [], []
        pos = 0
        for s in segments:
            starts.append(pos)
            lines.append(s.number)
            cols.append(1)
            pos += len(s.text)
        lead = len(logical) - len(logical.lstrip())
        m = re.match(r"(\S+)", logical[lead:])
        keyword_raw = m.group(1) if m else ""
        keyword = keyword_raw.upper()
        line0 = segments[0].number
        if keyword not in INSTRUCTIONS:
            raise self.error(line0, f"unknown instruction: {keyword_raw}")
        after_kw = lead + len(keyword_raw)
        onbuild: Instruction | None = None
        flags, args_at = _split_flags(logical, after_kw)
        args = logical[args_at:].rstrip()
        smap = SourceMap(
            tuple(x - args_at for x in starts),
            tuple(lines),
            tuple(cols),
        )
        if keyword == "ONBUILD":
            inner_text = logical[args_at:]
            if not inner_text.strip():
                raise self.error(line0, "ONBUILD needs an instruction")
            inner_segments = [_Line(line0, " " * args_at + inner_text)]
            onbuild, _ = self._instruction(inner_segments, stage, idx, ())
            if onbuild.keyword in ("ONBUILD", "FROM", "MAINTAINER"):
                raise self.error(line0, f"{onbuild.keyword} isn't allowed as an ONBUILD trigger")
        json_args = _parse_json(args) if keyword in JSON_FORM else None
        heredocs: list[Heredoc] = []
        if keyword in HEREDOC_FORM and json_args is None and "<<" in args:
            heredocs, idx = self._heredocs(args, idx, line0)
        last = segments[-1]
        end_line, end_col = last.number, len(last.text) + 1
        if heredocs:
            end_line, end_col = heredocs[-1].end_line, len(heredocs[-1].delimiter) + 1
        if keyword in ("RUN", "CMD", "ENTRYPOINT") and not args and not heredocs:
            raise self.error(line0, f"{keyword} needs arguments")
        scripts = (
            tuple(parse_scripts(keyword, args, json_args, tuple(heredocs), smap))
            if keyword == "RUN"
            else None
        )
        ins = Instruction(
            keyword=keyword,
            args=args,
            line=line0,
            column=segments[0].text.index(keyword_raw) + 1 if keyword_raw else 1,
            end_line=end_line,
            end_column=max(end_col, 1),
            stage=stage,
            flags=tuple(flags),
            json_args=json_args,
            heredocs=tuple(heredocs),
            smap=smap,
            onbuild=onbuild,
            comments_before=comments,
            scripts=scripts,  # parsed once here; every RUN rule reads them
        )
        return ins, idx

    def _heredocs(self, args: str, idx: int, line0: int) -> tuple[list[Heredoc], int]:
        try:
            words = parse_shell(args).all_commands()
        except ShellSyntaxError:
            words = ()
        markers: list[tuple[str, bool, bool]] = []
        for cmd in words:
            for op, word in cmd.redirects:
                if op in ("<<", "<<-"):
                    raw = word.raw
                    markers.append((word.text, op == "<<-", raw[:1] in "'\""))
        out: list[Heredoc] = []
        for delim, strip_tabs, quoted in markers:
            body_lines: list[str] = []
            start = idx
            while True:
                if idx >= len(self.lines):
                    raise self.error(line0, f"unterminated heredoc <<{delim} (no closing {delim})")
                line = self.lines[idx].rstrip("\r")
                idx += 1
                check = line.lstrip("\t") if strip_tabs else line
                if check == delim:
                    break
                body_lines.append(check)
            starts, lines, cols = [], [], []
            pos = 0
            for i, text in enumerate(body_lines):
                starts.append(pos)
                lines.append(start + 1 + i)
                raw_line = self.lines[start + i].rstrip("\r")
                cols.append(len(raw_line) - len(text) + 1)
                pos += len(text) + 1
            body = "\n".join(body_lines) + ("\n" if body_lines else "")
            out.append(
                Heredoc(
                    delim,
                    body,
                    start + 1,
                    idx,
                    strip_tabs,
                    quoted,
                    SourceMap(
                        tuple(starts) or (0,), tuple(lines) or (start + 1,), tuple(cols) or (1,)
                    ),
                )
            )
        return out, idx

    def _assemble(self, instructions: list[Instruction]) -> Dockerfile:
        global_args: dict[str, str] = {}
        stages: list[Stage] = []
        current: list[Instruction] = []
        head: Instruction | None = None
        for ins in instructions:
            if ins.keyword == "FROM":
                if head is not None:
                    stages.append(self._stage(head, current, global_args, len(stages)))
                head, current = ins, []
            elif head is None:
                if ins.keyword != "ARG":
                    raise self.error(
                        ins.line, f"{ins.keyword} before the first FROM (only ARG may)"
                    )
                for name, value in parse_arg(ins.args):
                    global_args[name] = value if value is not None else global_args.get(name, "")
            else:
                current.append(ins)
        if head is not None:
            stages.append(self._stage(head, current, global_args, len(stages)))
        elif instructions:
            raise self.error(instructions[0].line, "no FROM instruction")
        return Dockerfile(
            self.path,
            tuple(instructions),
            tuple(stages),
            dict(self.directives),
            self.escape,
            dict(global_args),
            tuple(self.comments),
        )

    def _stage(
        self, head: Instruction, body: list[Instruction], global_args: Mapping[str, str], index: int
    ) -> Stage:
        words = head.args.split()
        if not words:
            raise self.error(head.line, "FROM needs an image")
        name = ""
        if len(words) >= 3 and words[1].lower() == "as":
            name = words[2]
        elif len(words) != 1:
            raise self.error(head.line, "FROM takes an image and optionally `AS name`")
        return Stage(
            index,
            words[0],
            expand_vars(words[0], global_args),
            name,
            head.flag("platform") or "",
            tuple(body),
            head,
        )


def _restage(ins: Instruction, stage: int) -> Instruction:
    return replace(ins, stage=stage)


def split_words(text: str) -> list[Word]:
    """Dockerfile word splitting for ENV/LABEL/ARG/EXPOSE/USER: quotes removed, offsets kept."""
    try:
        script = parse_shell(text.replace("\n", " "))
    except ShellSyntaxError:
        return []
    out: list[Word] = []
    for cmd in script.commands:
        out.extend(cmd.words)
    return out


def parse_key_values(text: str) -> list[tuple[str, str, Word]]:
    """`ENV a=b c="d e"` or the legacy `ENV key value with spaces`."""
    words = split_words(text)
    if not words:
        return []
    if "=" not in words[0].raw:
        value = text[words[1].start :].strip() if len(words) > 1 else ""
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        return [(words[0].text, value, words[0])]
    out = []
    for w in words:
        key, _, value = w.text.partition("=")
        out.append((key, value, w))
    return out


def parse_arg(text: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for w in split_words(text):
        key, eq, value = w.text.partition("=")
        out.append((key, value if eq else None))
    return out


def parse_dockerfile(text: str, path: str = "Dockerfile") -> Dockerfile:
    """Parse Dockerfile text. Raises InputError (`path:line: message`) on what BuildKit rejects."""
    return DockerfileParser(text, path).parse()
