"""The script an interpreter runs, from its argv: `sh /dev/shm/x.sh`, `python3 -u /tmp/a.py`.

A dropped script executes without an exec of a file in /tmp (the interpreter is /bin/sh), so a
rule on `proc.exepath` misses it; `proc.script` names the file the interpreter was asked to run.
Code given inline (`sh -c`, `python -c`, `perl -e`, `node -e`) or read from stdin has no script.
"""

from __future__ import annotations

import posixpath
import re

SHELLS = frozenset({"sh", "ash", "bash", "dash", "ksh", "mksh", "zsh", "tcsh", "csh", "busybox"})
_PYTHON = re.compile(r"python[\d.]*m?")

# Per interpreter: options that take the next word as their value, and options meaning "inline
# code or stdin, no script file". Options with the value attached (-Idir) need no entry.
_TAKES_VALUE: dict[str, frozenset[str]] = {
    "shell": frozenset({"-o", "+o", "-O", "+O", "--rcfile", "--init-file"}),
    "python": frozenset({"-W", "-X", "-Q"}),
    "perl": frozenset({"-I", "-M", "-m"}),
    "ruby": frozenset({"-I", "-r", "-C", "-E"}),
    "node": frozenset({"-r", "--require", "--import", "--loader", "--input-type"}),
    "php": frozenset({"-c", "-d", "-z"}),
    "lua": frozenset({"-l"}),
}
_INLINE: dict[str, frozenset[str]] = {
    "shell": frozenset({"-c", "-s", "-i"}),
    "python": frozenset({"-c", "-m", "-"}),
    "perl": frozenset({"-e", "-E", "-"}),
    "ruby": frozenset({"-e", "-"}),
    "node": frozenset({"-e", "--eval", "-p", "--print", "-"}),
    "php": frozenset({"-r", "-a", "-"}),
    "lua": frozenset({"-e", "-"}),
}


def interpreter_kind(name: str) -> str | None:
    base = posixpath.basename(name)
    if base in SHELLS:
        return "shell"
    if _PYTHON.fullmatch(base) or base == "pypy3":
        return "python"
    if base in ("perl", "ruby", "php", "lua"):
        return base
    if re.fullmatch(r"(php|lua)[\d.]+", base):
        return base.rstrip("0123456789.")
    if base in ("node", "nodejs", "deno", "bun"):
        return "node"
    return None


def script_path(args: tuple[str, ...], name: str | None, cwd: str | None) -> str | None:
    """The absolute path of the script file `args` runs, or None (not an interpreter, inline
    code, stdin). Relative paths are resolved against `cwd` when it is known."""
    if not args:
        return None
    kind = interpreter_kind(args[0]) or (interpreter_kind(name) if name else None)
    if kind is None:
        return None
    rest = list(args[1:])
    if posixpath.basename(args[0]) == "busybox" and rest:
        if interpreter_kind(rest[0]) != "shell":
            return None
        rest = rest[1:]
    takes, inline = _TAKES_VALUE[kind], _INLINE[kind]
    i = 0
    while i < len(rest):
        word = rest[i]
        if word == "--":
            i += 1
            break
        if kind == "php" and word == "-f":
            i += 1
            break
        if word in takes:
            i += 2
            continue
        short_c = kind == "shell" and re.fullmatch(r"-[a-zA-Z]*c[a-zA-Z]*", word) is not None
        if word in inline or short_c:
            return None
        if word.startswith(("-", "+")) and len(word) > 1:
            i += 1
            continue
        break
    if i >= len(rest):
        return None
    script = rest[i]
    if not script.startswith("/"):
        if not cwd:
            return script
        script = posixpath.join(cwd, script)
    return posixpath.normpath(script)
