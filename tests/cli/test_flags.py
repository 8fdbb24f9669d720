"""Every flag of every subcommand reaches code, and every env twin is documented.

A flag parsed and then dropped is a setting the user believes in and the command ignores. The
test walks each subcommand's parser (subparsers included) and proves each option's `dest` is read
by the command: `args.<dest>` or `getattr(args, "<dest>")` in the command's module or in the
`dockward.cli` modules it imports (where shared options are read). The README must name every
`DOCKWARD_*` variable a `--help` text names.
"""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockward.cli import SUBCOMMANDS, build_parser
from tests.conftest import run_cli

CLI = Path(__file__).resolve().parents[2] / "src" / "dockward" / "cli"
README = Path(__file__).resolve().parents[2] / "README.md"
ENV = re.compile(r"\bDOCKWARD_[A-Z0-9_]+\b")
# Set by the parser for the dispatcher, not by a user.
INTERNAL = {"help", "version", "run", "command", "debug"}


def _parsers(
    parser: argparse.ArgumentParser, path: str
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def _command_parser(name: str) -> argparse.ArgumentParser:
    top = build_parser([name])
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = sub.choices[name]
    return parser


def _modules(name: str) -> list[Path]:
    """The command's module and the dockward.cli modules it imports, transitively."""
    todo, seen = [CLI / f"{name}.py"], []
    while todo:
        path = todo.pop()
        if path in seen or not path.exists():
            continue
        seen.append(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dockward.cli"):
                mod = (node.module or "").removeprefix("dockward.cli").lstrip(".")
                if mod:
                    todo.append(CLI / f"{mod.replace('.', '/')}.py")
                todo += [CLI / f"{a.name}.py" for a in node.names]
    return seen


def _reads(paths: list[Path]) -> set[str]:
    """Names read off an argparse namespace called `args` in these modules."""
    out: set[str] = set()
    for path in paths:
        tree = ast.parse(path.read_text())
        dynamic = False
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "args"
            ):
                out.add(node.attr)
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "getattr"
                and len(node.args) >= 2
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id == "args"
            ):
                name = node.args[1]
                if isinstance(name, ast.Constant) and isinstance(name.value, str):
                    out.add(name.value)
                else:
                    dynamic = True
        if dynamic:  # getattr(args, m) over a tuple of names: those names are read too
            out |= {
                n.value
                for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
            }
    return out


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_option_reaches_code(name: str) -> None:
    reads = _reads(_modules(name))
    dropped = sorted(
        f"{path}: {'/'.join(action.option_strings) or action.dest} (dest {action.dest})"
        for path, parser in _parsers(_command_parser(name), name)
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction | argparse._HelpAction)
        and action.dest not in INTERNAL
        and action.dest != argparse.SUPPRESS
        and action.dest not in reads
    )
    assert not dropped, dropped


def test_the_walk_sees_a_dropped_flag() -> None:
    # The test can fail: a flag whose dest no code reads is reported.
    p = argparse.ArgumentParser()
    p.add_argument("--dwcleanup-unread")
    assert "dwcleanup_unread" not in _reads(_modules("audit"))
    assert [a.dest for a in p._actions if a.dest == "dwcleanup_unread"]


def _env_twins() -> dict[str, str]:
    """Every DOCKWARD_* variable a --help text names, with the flag that names it."""
    out: dict[str, str] = {}
    top = build_parser()
    for action in top._actions:
        out.update(dict.fromkeys(ENV.findall(action.help or ""), "dockward"))
    for name in SUBCOMMANDS:
        for path, parser in _parsers(_command_parser(name), name):
            for action in parser._actions:
                flag = f"{path} {'/'.join(action.option_strings) or action.dest}"
                out.update(dict.fromkeys(ENV.findall(action.help or ""), flag))
    return out


def test_every_env_twin_is_in_the_readme() -> None:
    twins = _env_twins()
    assert len(twins) > 100  # the test can fail: it sees the help texts
    documented = set(ENV.findall(README.read_text()))
    missing = sorted(f"{var} ({flag})" for var, flag in twins.items() if var not in documented)
    assert not missing, missing


def test_a_bad_env_twin_is_a_usage_error_of_its_command_only() -> None:
    env = {"DOCKWARD_UPDATE_CYCLES": "many", "DOCKWARD_MONITOR_BURST": "x"}
    res = run_cli("update", "--once", "dwcleanup-none", env=env)
    assert res.code == 2, res.err
    assert res.err.strip().splitlines() == [
        "dockward update: error: argument --cycles: DOCKWARD_UPDATE_CYCLES='many' is not a "
        "valid value"
    ]
    # Every parser is built for the overview: a variable of another command breaks nothing.
    res = run_cli("--help", env=env)
    assert res.code == 0 and "Traceback" not in res.err, res.err


def test_the_command_line_wins_over_the_env_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKWARD_MONITOR_BURST", "x")  # not read: the flag is given
    monkeypatch.setenv("DOCKWARD_MONITOR_DEDUP", "2.5")
    monkeypatch.setenv("DOCKWARD_UPDATE_NO_PULL", "yes")
    args = build_parser(["monitor"]).parse_args(["monitor", "run", "--burst", "5"])
    assert (args.burst, args.dedup) == (5, 2.5)
    assert build_parser(["update"]).parse_args(["update"]).no_pull is True


@pytest.mark.parametrize("command", ["update", "audit", "scan"])
def test_interval_twins(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    var = f"DOCKWARD_{command.upper()}_INTERVAL"
    res = run_cli(command, "--help", env={var: "abc"})
    assert res.code == 0 and "Traceback" not in res.err, res.err
    res = run_cli(command, "--fail-on", "never", env={var: "abc"})
    assert res.code == 2, res.err
    assert res.err.strip().splitlines() == [
        f"dockward {command}: error: argument --interval: {var}='abc' is not a valid value"
    ]

    def interval(*argv: str) -> float | None:
        value: float | None = build_parser([command]).parse_args([command, *argv]).interval
        return value

    monkeypatch.setenv(var, "0")  # the twin's default: run once
    assert interval() is None
    monkeypatch.setenv(var, "300")
    assert interval() == 300.0
    assert interval("--interval", "0") == 0.0  # the schedule refuses it


def _switches() -> list[tuple[str, str, str]]:
    """(command, dest, variable) of every on/off option whose help names a `DOCKWARD_X=1` twin."""
    out = []
    for name in SUBCOMMANDS:
        for path, parser in _parsers(_command_parser(name), name):
            for action in parser._actions:
                if isinstance(action, argparse._StoreTrueAction):
                    for var in re.findall(r"\b(DOCKWARD_[A-Z0-9_]+)=1\b", action.help or ""):
                        out.append((path, action.dest, var))
    return out


def test_every_switch_twin_takes_the_same_words(monkeypatch: pytest.MonkeyPatch) -> None:
    # One rule for every on/off variable: 1/true/yes/on switch it on, anything else leaves it off
    # (lint's, scan's and monitor's once took only `1`).
    switches = _switches()
    assert len(switches) > 20, switches  # the test can fail: it sees the switches
    wrong = []
    for path, dest, var in switches:
        command = path.split()[0]
        for word, on in (("true", True), ("Yes", True), ("on", True), ("1", True), ("0", False)):
            monkeypatch.setenv(var, word)  # read when the parser is built
            default = dict(_parsers(_command_parser(command), command))[path].get_default(dest)
            if bool(default) is not on:
                wrong.append(f"{path} {dest}: {var}={word} gave {default!r}")
        monkeypatch.delenv(var)
    assert not wrong, wrong
