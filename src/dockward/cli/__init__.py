"""`dockward`: one command, one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from dockward import __version__
from dockward.cli.common import EXIT_INTERNAL, EXIT_USAGE, env_flag, fail_threshold
from dockward.errors import DockwardError

# One module per subcommand, named as the command; each provides `register(subparsers)` and
# `run(args) -> int`. Only the chosen command's module is imported: some pull in docker-py,
# cryptography or an HTTP stack, and `dockward lint FILE` must start in well under 150 ms.
SUBCOMMANDS: tuple[str, ...] = (
    "audit",
    "lint",
    "scan",
    "sbom",
    "db",
    "profile",
    "harden",
    "daemon",
    "proxy",
    "policy",
    "sign",
    "monitor",
    "update",
    "rules",
    "report",
    "health",
    "exporter",
)


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"dockward.cli.{name}")


def _chosen(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in SUBCOMMANDS else None
    return None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dockward",
        description="Make a Docker host secure and keep it so.",
        epilog="Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it, "
        "2 usage/config/connection error, 3 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"dockward {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        default=env_flag("DEBUG"),
        help="show tracebacks [DOCKWARD_DEBUG=1]",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    chosen = _chosen(argv)
    for name in (chosen,) if chosen else SUBCOMMANDS:
        _module(name).register(sub)
    return parser


def _watchtower(argv: list[str]) -> list[str] | int:
    """Watchtower's flags/variables with no dockward subcommand: run `update` as its drop-in."""
    if _chosen(argv) is not None:
        return argv
    if not any(k.startswith("WATCHTOWER_") for k in os.environ) and not any(
        a.startswith("-") and a not in ("--help", "-h", "--version", "--debug") for a in argv
    ):
        return argv
    from dockward.update.watchtower import translate, wants_watchtower

    if not wants_watchtower(argv, os.environ, SUBCOMMANDS):
        return argv
    try:
        tr = translate(argv, os.environ)
    except DockwardError as exc:
        sys.stderr.write(f"dockward: error: {exc}\n")
        return EXIT_USAGE
    if tr.health_check:
        return 0
    for warning in tr.warnings:
        sys.stderr.write(f"dockward: warning: {warning}\n")
    return tr.argv


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    translated = _watchtower(argv)
    if isinstance(translated, int):
        return translated
    argv = translated
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        if getattr(args, "fail_on", None) is not None:
            fail_threshold(args.fail_on)  # a bad threshold is a usage error before any work
        code: int = args.run(args)
        return code
    except DockwardError as exc:
        if args.debug:
            traceback.print_exc()
        sys.stderr.write(f"dockward: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("dockward: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        sys.stderr.write(
            f"dockward: internal error: {type(exc).__name__}: {exc} (run with --debug for details)\n"
        )
        return EXIT_INTERNAL
