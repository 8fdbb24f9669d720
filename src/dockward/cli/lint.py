"""`dockward lint`: Dockerfiles, compose files and `docker run` lines, before anything runs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dockward.cli.common import (
    EXIT_FINDINGS,
    add_output_options,
    emit,
    env_default,
    env_flag,
    env_list,
    fail_threshold,
)
from dockward.config import load_config
from dockward.errors import ConfigError, UsageError
from dockward.lint.engine import LintOptions, discover, lint
from dockward.lint.source import MAX_FILE_BYTES, decode_text
from dockward.model.finding import Status


def register(sub: Any) -> None:
    p = sub.add_parser(
        "lint",
        help="lint Dockerfiles, compose files and docker run lines",
        description="Lint Dockerfiles (DW-B rules) and compose services / docker run lines (the "
        "audit's container rules, DW-C), reporting file:line:column. Directories are searched "
        "for Dockerfile, *.dockerfile, Dockerfile.*, Dockerfile-*, Containerfile*, "
        "*.containerfile (any case), compose.y*ml and docker-compose*.y*ml (with --any-yaml also "
        "YAML files with a top-level `services:`). Suppress with `# dockward ignore=ID` on the line or the line "
        "above, `# dockward ignore-file=ID` for a file, or [lint] ignore in dockward.toml.",
        epilog="Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it (or a file "
        "that could not be parsed), 2 bad usage or input, 3 internal error.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or directories to lint")
    p.add_argument(
        "--stdin",
        action="store_true",
        help="read one document from standard input (see --stdin-kind)",
    )
    p.add_argument(
        "--stdin-kind",
        choices=("dockerfile", "compose", "auto"),
        default="auto",
        help="what stdin holds (default: auto - compose if it has a top-level `services:`)",
    )
    p.add_argument(
        "--run",
        dest="run_lines",
        action="append",
        default=[],
        metavar="LINE",
        help="lint a `docker run ...` command line (repeatable)",
    )
    p.add_argument(
        "--profile",
        action="append",
        default=None,
        help="compose profiles to activate; without it every service is linted "
        "[DOCKWARD_PROFILE, comma-separated]",
    )
    p.add_argument(
        "--merge",
        action="store_true",
        default=env_flag("LINT_MERGE"),
        help="merge all given compose files into one project, like `docker compose -f a -f b` "
        "[DOCKWARD_LINT_MERGE=1]",
    )
    p.add_argument(
        "--any-yaml",
        action="store_true",
        default=env_flag("LINT_ANY_YAML"),
        help="in directories, also lint YAML files with a top-level `services:` key as compose "
        "files [DOCKWARD_LINT_ANY_YAML=1]",
    )
    p.add_argument(
        "--list-files",
        action="store_true",
        default=env_flag("LINT_LIST_FILES"),
        help="print the files that would be linted (PATH<TAB>KIND) and exit "
        "[DOCKWARD_LINT_LIST_FILES=1]",
    )
    p.add_argument(
        "--ignore",
        action="append",
        default=None,
        metavar="ID",
        help="rule id to leave out (repeatable) [DOCKWARD_IGNORE, comma-separated]",
    )
    p.add_argument(
        "--trusted-registry",
        action="append",
        default=None,
        metavar="HOST",
        help="registry base images may come from (enables DW-B004; repeatable) "
        "[DOCKWARD_TRUSTED_REGISTRY, comma-separated]",
    )
    p.add_argument(
        "--show-passed",
        action="store_true",
        default=env_flag("SHOW_PASSED"),
        help="include passed and skipped checks in the report [DOCKWARD_SHOW_PASSED=1]",
    )
    p.add_argument(
        "--max-size",
        type=int,
        default=env_default("MAX_SIZE", str(MAX_FILE_BYTES)),  # argparse applies type=int
        metavar="BYTES",
        help=f"largest file to read (default {MAX_FILE_BYTES}) [DOCKWARD_MAX_SIZE]",
    )
    p.add_argument(
        "--config",
        default=env_default("CONFIG"),
        help="dockward.toml (default: searched upwards) [DOCKWARD_CONFIG]",
    )
    add_output_options(p)
    p.set_defaults(run=run)


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings")
    return tuple(value)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    section = config.raw.get("lint", {}) if isinstance(config.raw, dict) else {}
    if not isinstance(section, dict):
        raise ConfigError(f"{config.path}: [lint] must be a table")
    if args.fail_on == "low" and not env_default("FAIL_ON"):
        args.fail_on = str(section.get("fail_on") or config.fail_on or "low")
    fail_threshold(args.fail_on)
    if not args.paths and not args.stdin and not args.run_lines:
        raise UsageError("nothing to lint: give PATH..., --stdin or --run")
    if args.max_size <= 0:
        raise UsageError("--max-size must be positive")
    if args.list_files:
        for path, kind in discover(args.paths, args.any_yaml):
            sys.stdout.write(f"{path}\t{kind}\n")
        return 0
    profiles = args.profile or env_list("PROFILE") or None
    options = LintOptions(
        profiles=tuple(profiles) if profiles is not None else None,
        trusted_registries=tuple(args.trusted_registry or env_list("TRUSTED_REGISTRY"))
        or _str_list(
            section.get("trusted_registries"), f"{config.path}: [lint] trusted_registries"
        ),
        max_bytes=args.max_size,
        ignore=tuple(i.upper() for i in (args.ignore or env_list("IGNORE")))
        + _str_list(section.get("ignore"), f"{config.path}: [lint] ignore"),
        waivers=config.waivers,
        merge_compose=args.merge,
        any_yaml=args.any_yaml,
        show_passed=args.show_passed,
    )
    stdin = None
    if args.stdin:
        data = sys.stdin.buffer.read(args.max_size + 1)
        if len(data) > args.max_size:
            raise UsageError(f"stdin is over the {args.max_size} byte limit")
        text = decode_text(data, "stdin")
        kind = args.stdin_kind
        if kind == "auto":
            kind = (
                "compose"
                if any(line.startswith("services:") for line in text.splitlines())
                else "dockerfile"
            )
        stdin = (kind, text)
    report = lint(args.paths, options, stdin=stdin, run_lines=args.run_lines)
    code = emit(report, args)
    errors = any(r.status is Status.ERROR for r in report.results)
    if errors and fail_threshold(args.fail_on) is not None:
        return EXIT_FINDINGS
    return code
