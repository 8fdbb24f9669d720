"""What every subcommand shares: output flags, env twins, rendering, exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from dockward.errors import DockwardError, UsageError
from dockward.model.finding import Severity

if TYPE_CHECKING:
    from dockward.model.finding import Report

# The built-in formats; capabilities may register more (checked when rendering).
FORMAT_NAMES = ("table", "json", "sarif", "junit", "html", "docker-bench")

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def env_default(name: str, default: Any = None) -> Any:
    return os.environ.get(f"DOCKWARD_{name}", default)


def env_list(name: str) -> list[str]:
    raw = os.environ.get(f"DOCKWARD_{name}", "")
    return [x.strip() for x in raw.split(",") if x.strip()]


def env_flag(name: str) -> bool:
    return str(env_default(name, "")).strip().lower() in ("1", "true", "yes", "on")


class _FromEnv(str):
    """A default read from the environment: a bad one names its variable, not only the flag."""

    var: str = ""


def _converter(convert: Any) -> Any:
    def parse(text: str) -> Any:
        try:
            return convert(text)
        except (TypeError, ValueError) as exc:
            if isinstance(text, _FromEnv):
                raise argparse.ArgumentTypeError(
                    f"{text.var}={text!r} is not a valid value"
                ) from exc
            raise

    parse.__name__ = getattr(convert, "__name__", "value")  # argparse names it in its message
    return parse


def interval_seconds(text: str) -> float | None:
    """An --interval value. In its DOCKWARD_*_INTERVAL twin, 0 means "no interval" (run once),
    the twin's documented default; on the command line 0 stays a value the schedule refuses."""
    value = float(text)
    return None if value == 0 and isinstance(text, _FromEnv) else value


def env_option(
    parser: Any, *flags: str, env: str, help: str, default: Any = None, **kwargs: Any
) -> argparse.Action:
    """An option with its DOCKWARD_<env> twin. The variable, when set, is the default and is
    converted by `type` at parse time like a command-line value (a bad one is a usage error, not
    a traceback while the parser is built); a store_true flag is on for 1/true/yes/on. The help
    names the variable unless it already does."""
    var = f"DOCKWARD_{env}"
    if kwargs.get("action") == "store_true":
        default = env_flag(env)
        var += "=1"
    elif env_default(env) is not None:
        default = env_default(env)
        if "type" in kwargs:
            default = _FromEnv(default)
            default.var = f"DOCKWARD_{env}"
    if "type" in kwargs:
        kwargs["type"] = _converter(kwargs["type"])
    if f"DOCKWARD_{env}" not in help:
        help = f"{help.rstrip()} [{var}]"
    action: argparse.Action = parser.add_argument(*flags, default=default, help=help, **kwargs)
    return action


def add_output_options(p: argparse.ArgumentParser, default_fail_on: str = "low") -> None:
    g = p.add_argument_group("output")
    g.add_argument(
        "--format",
        "-f",
        default=env_default("FORMAT"),
        metavar="FORMAT",
        help=f"output format: {', '.join(FORMAT_NAMES)} (default: table on a terminal, json "
        "otherwise) [DOCKWARD_FORMAT]",
    )
    g.add_argument(
        "-o",
        "--output",
        default=env_default("OUTPUT"),
        help="write to FILE (atomically) [DOCKWARD_OUTPUT]",
    )
    g.add_argument(
        "--fail-on",
        default=env_default("FAIL_ON", default_fail_on),
        help="exit 1 when a failing finding has this severity or worse: critical, high, medium, "
        f"low, info or never (default: {default_fail_on}) [DOCKWARD_FAIL_ON]",
    )


def fail_threshold(text: str) -> Severity | None:
    if text.strip().lower() in ("never", "none", "off"):
        return None
    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise UsageError(f"--fail-on: {exc}") from exc


def default_format(output: str | None) -> str:
    if output:
        ext = output.rsplit(".", 1)[-1].lower()
        return {
            "html": "html",
            "htm": "html",
            "json": "json",
            "sarif": "sarif",
            "xml": "junit",
        }.get(ext, "json")
    return "table" if sys.stdout.isatty() else "json"


def emit(report: Report, args: argparse.Namespace) -> int:
    """Render, write, and turn the report into an exit code."""
    from dockward.report import render

    threshold = fail_threshold(args.fail_on)
    fmt = args.format or default_format(args.output)
    try:
        text = render(report, fmt)
    except ValueError as exc:
        raise UsageError(f"--format: {exc}") from exc
    write_output(text, args.output)
    if threshold is not None and report.fails_at(threshold):
        return EXIT_FINDINGS
    return EXIT_OK


def write_output(text: str, output: str | None) -> None:
    from dockward.util.fs import atomic_write

    if output and output != "-":
        try:
            atomic_write(output, text)
        except OSError as exc:
            raise DockwardError(f"cannot write {output}: {exc.strerror}") from exc
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def progress_printer(enabled: bool) -> Any:
    """A rich progress bar on stderr when `enabled` (a terminal), else None."""
    from dockward.cli.progress import progress_bar

    return progress_bar(enabled)
