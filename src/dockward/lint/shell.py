"""A small POSIX-shell tokenizer for RUN bodies: words with offsets, commands, pipelines.

Not an interpreter: no expansion is performed. Quotes are removed, `$(...)`, backticks and
`<(...)` are kept in the word and also parsed as nested scripts, so a `curl` inside
`sh -c "$(curl ...)"` is found. `shlex` is not used because it loses offsets and does not know
`&&`, `||`, `|`, `;`, redirections or substitutions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dockward.errors import DockwardError

MAX_NESTING = 8
_PLAIN = re.compile(r"[^\s;&|()<>'\"\\$`]+")
RESERVED = frozenset(
    {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "esac"}
)
# Commands that run their arguments as another command.
WRAPPERS = frozenset(
    {
        "sudo",
        "env",
        "nice",
        "nohup",
        "time",
        "command",
        "exec",
        "stdbuf",
        "eatmydata",
        "timeout",
        "doas",
        "chronic",
        "xargs",
    }
)
_SUDO_VALUE_OPTS = frozenset({"-u", "-g", "-C", "-h", "-p", "-r", "-t", "-U", "-D"})


@dataclass(frozen=True, slots=True)
class Word:
    text: str  # quotes removed, nothing expanded
    start: int  # offset of the first character in the parsed source
    end: int  # offset after the last character
    raw: str
    subs: tuple[Script, ...] = ()  # command/process substitutions inside the word

    @property
    def quoted(self) -> bool:
        return any(c in self.raw for c in "'\"\\")


@dataclass(frozen=True, slots=True)
class Command:
    """One simple command. `pipe_in`/`pipe_out`: connected to its neighbours by `|`."""

    words: tuple[Word, ...]
    pipe_in: bool = False
    pipe_out: bool = False
    pipeline: int = 0  # index of the pipeline within the script
    redirects: tuple[tuple[str, Word], ...] = ()
    depth: int = 0  # 0: top level; >0: inside a substitution or `sh -c`
    assignments: tuple[Word, ...] = field(init=False, default=())
    _unwrapped: tuple[Word, ...] = field(init=False, default=(), repr=False, compare=False)
    program: str = field(init=False, default="", compare=False)  # unwrapped argv[0] basename

    def __post_init__(self) -> None:
        # Computed once: every rule asks for them, and the command is immutable.
        n = 0
        while n < len(self.words) and _is_assignment(self.words[n]):
            n += 1
        object.__setattr__(self, "assignments", self.words[:n])
        object.__setattr__(self, "_unwrapped", self._unwrap(self.words[n:]))
        first = self._unwrapped[0].text if self._unwrapped else ""
        object.__setattr__(self, "program", first.rsplit("/", 1)[-1])

    @property
    def argv(self) -> tuple[Word, ...]:
        """The words after leading `VAR=value` assignments."""
        return self.words[len(self.assignments) :]

    @property
    def name(self) -> str:
        argv = self.argv
        return argv[0].text.rsplit("/", 1)[-1] if argv else ""

    def unwrapped(self) -> tuple[Word, ...]:
        """argv with sudo/env/nice/... wrappers and their options removed."""
        return self._unwrapped

    @staticmethod
    def _unwrap(words: tuple[Word, ...]) -> tuple[Word, ...]:
        argv = list(words)
        for _ in range(6):
            if not argv or argv[0].text.rsplit("/", 1)[-1] not in WRAPPERS:
                break
            wrapper = argv.pop(0).text.rsplit("/", 1)[-1]
            while argv and (
                argv[0].text.startswith("-")
                or (wrapper == "env" and _is_assignment(argv[0]))
                or (wrapper == "timeout" and argv[0].text[:1].isdigit())
            ):
                opt = argv.pop(0).text
                if wrapper in ("sudo", "doas") and opt in _SUDO_VALUE_OPTS and argv:
                    argv.pop(0)
        return tuple(argv)

    @property
    def args(self) -> tuple[Word, ...]:
        return self.unwrapped()[1:]


@dataclass(frozen=True, slots=True)
class Script:
    source: str
    commands: tuple[Command, ...] = ()
    base: int = 0
    nested: tuple[Command, ...] = field(default_factory=tuple)

    def all_commands(self) -> tuple[Command, ...]:
        """Top-level commands, then every command found in substitutions and `sh -c` bodies."""
        return self.commands + self.nested


def _is_assignment(w: Word) -> bool:
    name, eq, _ = w.raw.partition("=")
    return bool(eq) and name.replace("_", "a").isalnum() and not name[:1].isdigit()


class ShellSyntaxError(DockwardError, ValueError):
    pass


class _Tokenizer:
    def __init__(self, src: str, base: int, depth: int) -> None:
        self.src = src
        self.base = base
        self.depth = depth
        self.i = 0
        self.commands: list[Command] = []
        self.nested: list[Command] = []
        self.words: list[Word] = []
        self.redirects: list[tuple[str, Word]] = []
        self.pending_redirect = ""
        self.pipe_in = False
        self.pipeline = 0
        self.heredocs: list[tuple[str, bool]] = []

    def run(self) -> Script:
        src, n = self.src, len(self.src)
        while self.i < n:
            c = src[self.i]
            if c in " \t\r":
                self.i += 1
            elif c == "\n":
                self.i += 1
                self.end_command("\n")
                self.skip_heredoc_bodies()
            elif c == "#":
                j = src.find("\n", self.i)
                self.i = n if j < 0 else j
            elif c == "\\" and src.startswith("\\\n", self.i):
                self.i += 2
            elif src.startswith(("&&", "||", ";;"), self.i):
                self.end_command(src[self.i : self.i + 2])
                self.i += 2
            elif src.startswith("|&", self.i) or (c == "|"):
                self.i += 2 if src.startswith("|&", self.i) else 1
                self.end_command("|")
            elif c in ";&()":
                if c == "&" and src.startswith("&>", self.i):
                    self.redirect_op()
                    continue
                self.end_command(c)
                self.i += 1
            elif c in "<>" and not src.startswith(("<(", ">("), self.i):
                self.redirect_op()
            else:
                self.read_word()
        self.end_command("")
        return Script(self.src, tuple(self.commands), self.base, tuple(self.nested))

    def redirect_op(self) -> None:
        src = self.src
        j = self.i
        while j < len(src) and src[j] in "<>&|-":
            j += 1
            if src[self.i : j] in ("<<<", ">>", "<<-", "&>>", ">&", "<&", ">|", "<>"):
                break
        self.pending_redirect = src[self.i : j]
        self.i = j

    def skip_heredoc_bodies(self) -> None:
        for delim, strip_tabs in self.heredocs:
            while self.i < len(self.src):
                j = self.src.find("\n", self.i)
                line = self.src[self.i : (len(self.src) if j < 0 else j)]
                self.i = len(self.src) if j < 0 else j + 1
                if (line.lstrip("\t") if strip_tabs else line) == delim:
                    break
        self.heredocs = []

    def end_command(self, op: str) -> None:
        words = self.words
        while words and words[0].raw in RESERVED:
            words = words[1:]
        if words and words[0].raw in ("for", "case", "select", "function"):
            words = []
        if words or self.redirects:
            pipe_out = op == "|"
            self.commands.append(
                Command(
                    tuple(words),
                    self.pipe_in,
                    pipe_out,
                    self.pipeline,
                    tuple(self.redirects),
                    self.depth,
                )
            )
            self.pipe_in = pipe_out
            if not pipe_out and op not in ("(", ")"):
                self.pipeline += 1
        elif op == "|":
            self.pipe_in = True  # `(subshell) | cmd`
        elif op not in ("(", ")"):
            self.pipe_in = False
        self.words, self.redirects = [], []

    def read_word(self) -> None:
        src, n = self.src, len(self.src)
        start = self.i
        out: list[str] = []
        subs: list[Script] = []
        while self.i < n:
            c = src[self.i]
            if c in " \t\r\n;&|()<>" and not (
                c in "<>" and src.startswith("(", self.i + 1) and not out
            ):
                break
            plain = _PLAIN.match(src, self.i)
            if plain:
                out.append(plain.group(0))
                self.i = plain.end()
                continue
            if c == "\\":
                if self.i + 1 < n and src[self.i + 1] != "\n":
                    out.append(src[self.i + 1])
                self.i += 2
            elif c == "'":
                j = src.find("'", self.i + 1)
                if j < 0:
                    raise ShellSyntaxError(
                        f"unterminated single quote at offset {self.base + self.i}"
                    )
                out.append(src[self.i + 1 : j])
                self.i = j + 1
            elif c == '"':
                self.i += 1
                while True:
                    if self.i >= n:
                        raise ShellSyntaxError(
                            f"unterminated double quote at offset {self.base + start}"
                        )
                    d = src[self.i]
                    if d == '"':
                        self.i += 1
                        break
                    if d == "\\" and self.i + 1 < n and src[self.i + 1] in '"\\$`\n':
                        out.append(src[self.i + 1])
                        self.i += 2
                    elif (d == "$" and src.startswith("$(", self.i)) or d == "`":
                        out.append(self.substitution(subs))
                    else:
                        out.append(d)
                        self.i += 1
            elif (
                (c == "$" and src.startswith(("$(", "${"), self.i))
                or c == "`"
                or (c in "<>" and src.startswith("(", self.i + 1))
            ):
                out.append(self.substitution(subs))
            else:
                out.append(c)
                self.i += 1
        raw = src[start : self.i]
        word = Word("".join(out), self.base + start, self.base + self.i, raw, tuple(subs))
        if self.pending_redirect:
            if self.pending_redirect in ("<<", "<<-"):
                self.heredocs.append((word.text, self.pending_redirect == "<<-"))
            self.redirects.append((self.pending_redirect, word))
            self.pending_redirect = ""
        elif raw.isdigit() and self.i < n and src[self.i] in "<>":
            pass  # a file descriptor number in front of a redirection
        else:
            self.words.append(word)

    def substitution(self, subs: list[Script]) -> str:
        """Consume `$(...)`, `${...}`, `` `...` ``, `<(...)`, `>(...)`; parse the commands in it."""
        src, n = self.src, len(self.src)
        start = self.i
        if src.startswith("${", self.i):
            j = src.find("}", self.i)
            self.i = n if j < 0 else j + 1
            return src[start : self.i]
        if src[self.i] == "`":
            j = src.find("`", self.i + 1)
            if j < 0:
                raise ShellSyntaxError(f"unterminated backquote at offset {self.base + start}")
            body_start, body_end = self.i + 1, j
            self.i = j + 1
        else:
            body_start = self.i + 2
            level, j, quote = 1, body_start, ""
            while j < n and level:
                ch = src[j]
                if quote:
                    if ch == quote:
                        quote = ""
                    elif ch == "\\" and quote == '"':
                        j += 1
                elif ch in "'\"":
                    quote = ch
                elif ch == "\\":
                    j += 1
                elif ch == "(":
                    level += 1
                elif ch == ")":
                    level -= 1
                j += 1
            if level:
                raise ShellSyntaxError(f"unterminated substitution at offset {self.base + start}")
            body_end = j - 1
            self.i = j
        if self.depth < MAX_NESTING:
            inner = parse_shell(src[body_start:body_end], self.base + body_start, self.depth + 1)
            subs.append(inner)
            self.nested.extend(inner.all_commands())
        return src[start : self.i]


SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "busybox"})


def parse_shell(src: str, base: int = 0, depth: int = 0) -> Script:
    """Tokenize a shell script. Offsets in the result are `base` + offset in `src`.
    Raises ShellSyntaxError on unterminated quotes or substitutions."""
    script = _Tokenizer(src, base, depth).run()
    extra: list[Command] = []
    if depth < MAX_NESTING:
        for cmd in script.all_commands():
            body = shell_c_body(cmd)
            if body is not None:
                word = body
                offset = word.start + (1 if word.raw[:1] in "'\"" else 0)
                try:
                    inner = parse_shell(word.text, offset, cmd.depth + 1)
                except ShellSyntaxError:
                    continue
                extra.extend(inner.all_commands())
    if extra:
        return Script(script.source, script.commands, script.base, script.nested + tuple(extra))
    return script


def shell_c_body(cmd: Command) -> Word | None:
    """The script word of `sh -c '...'` / `bash -ec "..."` / `su -c '...'`, if any."""
    argv = cmd.unwrapped()
    if not argv:
        return None
    prog = argv[0].text.rsplit("/", 1)[-1]
    if prog not in SHELLS and prog != "su":
        return None
    for i, w in enumerate(argv[1:], start=1):
        if w.text.startswith("-") and not w.text.startswith("--") and "c" in w.text:
            return argv[i + 1] if i + 1 < len(argv) else None
    return None
