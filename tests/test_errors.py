"""Every error type dockward defines is a DockwardError, and causes are chained, not dropped."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import dockward
from dockward.errors import DockwardError
from tests.conftest import run_cli

SRC = Path(dockward.__file__).resolve().parent


def _modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages([str(SRC)], "dockward.")]
    return [n for n in names if not n.endswith("__main__")]


def test_every_error_type_derives_from_dockward_error() -> None:
    errors: list[type[BaseException]] = []
    for name in _modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, BaseException):
                errors.append(cls)
    assert len(errors) >= 15, "the walk finds the package's error types"
    foreign = [f"{c.__module__}.{c.__qualname__}" for c in errors if _is_error(c)]
    assert not foreign


def _is_error(cls: type[BaseException]) -> bool:
    """An error type a caller may see. Control-flow signals are not: private ones (_Gone) and
    direct Exception subclasses not named as errors (the proxy's Close ends a connection)."""
    if issubclass(cls, DockwardError) or cls.__name__.startswith("_"):
        return False
    named = cls.__name__.endswith(("Error", "Failed", "Failure", "Refused"))
    return named or cls.__bases__ != (Exception,)


def test_no_cause_is_dropped_with_from_none() -> None:
    dropped = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Raise)
                and isinstance(node.cause, ast.Constant)
                and node.cause.value is None
            ):
                dropped.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not dropped


def test_debug_shows_the_chained_cause_and_the_error_stays_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("admission:\n  deny: [x\n")
    args = ("policy", "check", "--policy", str(bad), "--run", "docker run busybox")
    plain = run_cli(*args)
    assert plain.code == 2
    assert plain.err.count("\n") == 1 and plain.err.startswith("dockward: error: ")
    debug = run_cli("--debug", *args)
    assert debug.code == 2
    assert "yaml.parser.ParserError" in debug.err
    assert "The above exception was the direct cause of the following exception" in debug.err
