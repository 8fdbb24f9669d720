"""Lint files, stdin and `docker run` lines into one Report. Pure apart from reading inputs."""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from dockward import __version__
from dockward.config import Waiver
from dockward.errors import InputError
from dockward.lint import suppress
from dockward.lint.dockerfile import Dockerfile, parse_dockerfile
from dockward.lint.source import MAX_FILE_BYTES, read_text
from dockward.model.finding import Location, Report, ReportExtra, Result, Rule, Severity, Status
from dockward.rules.registry import RuleEntry, run_check

if TYPE_CHECKING:
    from dockward.lint.compose import ComposeService

INPUT_RULE = Rule(
    id="DW-L001",
    title="Input can be read and parsed",
    severity=Severity.HIGH,
    kind="lint",
    remediation="Fix the file so BuildKit / docker compose accept it (the message says where).",
    doc="A file that cannot be parsed cannot be checked; BuildKit or compose would reject it too.",
)


@dataclass(frozen=True, slots=True)
class LintExtra(ReportExtra):
    """`dockward lint`: how many files were linted."""

    files: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"files": self.files}


SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".hg"})
MAX_FILES = 100_000


@dataclass(frozen=True, slots=True)
class LintOptions:
    entries: tuple[RuleEntry, ...] = ()
    show_passed: bool = False
    env: Mapping[str, str] | None = None
    profiles: tuple[str, ...] | None = None
    trusted_registries: tuple[str, ...] = ()
    max_bytes: int = MAX_FILE_BYTES
    ignore: tuple[str, ...] = ()
    waivers: tuple[Waiver, ...] = ()
    merge_compose: bool = False
    any_yaml: bool = False

    def rules(self, with_container: bool = True) -> tuple[RuleEntry, ...]:
        if self.entries:
            return self.entries
        return _default_entries(with_container)


_DEFAULT: dict[bool, tuple[RuleEntry, ...]] = {}


def _default_entries(with_container: bool = True) -> tuple[RuleEntry, ...]:
    """The lint rules, plus the audit's container rules when compose or run lines are linted
    (not the host/daemon rules; imported on demand to keep start-up short)."""
    if with_container not in _DEFAULT:
        from dockward.lint.dfrules import rules as lint_rules

        entries = tuple(lint_rules)
        if with_container:
            from dockward.rules.container import rules as container_rules

            entries = tuple(container_rules) + entries
        _DEFAULT[with_container] = entries
    return _DEFAULT[with_container]


_FOREIGN: dict[int, dict[str, set[str]]] = {}


def _foreign(options: LintOptions) -> dict[str, set[str]]:
    rules = options.rules(with_container=False)
    key = id(rules)
    if key not in _FOREIGN:
        _FOREIGN.clear()
        _FOREIGN[key] = suppress.foreign_map(e.rule for e in rules)
    return _FOREIGN[key]


@dataclass(slots=True)
class _Out:
    results: list[Result] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: int = 0


# Names next to a Dockerfile that are about it, not one (Dockerfile.md, Dockerfile.dockerignore).
_NOT_DOCKERFILE = (".md", ".txt", ".rst", ".html", ".dockerignore", ".swp")
_TOP_LEVEL_SERVICES = re.compile(rb"^services[ \t]*:", re.MULTILINE)
YAML_SNIFF_BYTES = 1 << 20


def kind_of(path: str) -> str | None:
    """`dockerfile`, `compose` or None, from the file name: Dockerfile, Containerfile,
    *.dockerfile, *.containerfile (any case), Dockerfile.*, Dockerfile-*, Containerfile*,
    compose.y*ml, compose.*.y*ml, docker-compose*.y*ml."""
    name = os.path.basename(path)
    low = name.lower()
    if low in ("dockerfile", "containerfile") or low.endswith((".dockerfile", ".containerfile")):
        return "dockerfile"
    if low.startswith(("dockerfile.", "dockerfile-", "dockerfile_", "containerfile")):
        return None if low.endswith(_NOT_DOCKERFILE) else "dockerfile"
    if fnmatch.fnmatch(low, "compose.y*ml") or fnmatch.fnmatch(low, "compose.*.y*ml"):
        return "compose"
    if fnmatch.fnmatch(low, "docker-compose*.y*ml"):
        return "compose"
    return None


def has_top_level_services(path: str) -> bool:
    """Is `path` a YAML file with a top-level `services:` key (a compose file by content)?"""
    if not path.lower().endswith((".yml", ".yaml")):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(YAML_SNIFF_BYTES)
    except OSError:
        return False
    return _TOP_LEVEL_SERVICES.search(head) is not None


def discover(paths: Sequence[str], any_yaml: bool = False) -> list[tuple[str, str]]:
    """(path, kind) for every lintable file under `paths`; explicit files are taken as given
    (a `.yml` named on the command line is compose, anything else a Dockerfile). With
    `any_yaml`, a directory's YAML files with a top-level `services:` are compose files too."""
    out: list[tuple[str, str]] = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
                for f in sorted(files):
                    full = os.path.join(root, f)
                    if os.path.islink(full):
                        continue
                    k = kind_of(full)
                    if k is None and any_yaml and has_top_level_services(full):
                        k = "compose"
                    if k:
                        out.append((full, k))
                if len(out) > MAX_FILES:
                    raise InputError(f"{p}: more than {MAX_FILES} files to lint")
        elif os.path.exists(p):
            k = kind_of(p) or ("compose" if p.lower().endswith((".yml", ".yaml")) else "dockerfile")
            out.append((p, k))
        else:
            raise InputError(f"{p}: no such file or directory")
    return out


def _error(path: str, exc: Exception) -> Result:
    msg = str(exc)
    line = 0
    rest = msg[len(path) + 1 :] if msg.startswith(path + ":") else ""
    head = rest.split(":", 1)[0]
    if head.isdigit():
        line = int(head)
    return Result(
        INPUT_RULE, Status.ERROR, path, msg, location=Location(path, line or 1, 1) if path else None
    )


def _keep(results: Iterable[Result], options: LintOptions) -> list[Result]:
    out: list[Result] = []
    seen: set[tuple[str, str, int, int, str]] = set()
    for r in results:
        if r.rule.id in options.ignore:
            continue
        if not options.show_passed and r.status in (Status.PASS, Status.SKIP):
            continue
        loc = r.location
        key = (r.rule.id, r.target, loc.line if loc else 0, loc.column if loc else 0, r.message)
        if key in seen:
            continue
        seen.add(key)
        for w in options.waivers:
            if w.matches(r.rule.id, r.rule.cis, r.target, "") and r.failing:
                r = replace(r, waived=f"{w.origin}: {w.reason}")
                break
        out.append(r)
    return out


def _instruction_spans(d: Dockerfile) -> dict[int, int]:
    spans: dict[int, int] = {}
    for ins in d.instructions:
        for line in range(ins.line, ins.end_line + 1):
            spans[line] = ins.line
    return spans


def lint_dockerfile_text(
    text: str, path: str, options: LintOptions
) -> tuple[list[Result], list[str]]:
    """Every Dockerfile rule over one file's text; raises InputError if it does not parse."""
    d = parse_dockerfile(text, path)
    if options.trusted_registries:
        d = replace(d, trusted_registries=options.trusted_registries)
    results: list[Result] = []
    for entry in options.rules(with_container=False):
        if entry.rule.kind == "dockerfile":
            results += run_check(entry, d, target=path, location=Location(path, 1, 1))
    lines = text.split("\n")
    sups = suppress.scan(lines, _foreign(options))
    results = suppress.apply(results, lines, sups, _instruction_spans(d))
    return results, suppress.unused(path, sups)


def _with_build_defaults(
    service: ComposeService, project_dir: str, options: LintOptions
) -> ComposeService:
    """A service built from a Dockerfile inherits that Dockerfile's final USER and HEALTHCHECK
    when compose does not set them, as the container will (so DW-C031/C026 judge the truth)."""
    from dockward.lint.dfrules.support import last_in_chain
    from dockward.lint.dockerfile import expand_vars
    from dockward.model.container import Healthcheck

    build = service.config.get("build")
    if isinstance(build, str):
        context, dockerfile = build, "Dockerfile"
    elif isinstance(build, dict) and not build.get("dockerfile_inline"):
        context, dockerfile = (
            str(build.get("context") or "."),
            str(build.get("dockerfile") or "Dockerfile"),
        )
    else:
        return service
    if "://" in context or (service.spec.user and service.spec.healthcheck is not None):
        return service
    path = os.path.join(project_dir, context, dockerfile)
    try:
        d = parse_dockerfile(read_text(path, options.max_bytes), path)
    except (InputError, RecursionError):
        return service
    spec = service.spec
    user = last_in_chain(d, "USER")
    if not spec.user and user is not None:
        spec = replace(spec, user=expand_vars(user.args.strip(), d.global_args))
    check = last_in_chain(d, "HEALTHCHECK")
    if spec.healthcheck is None and check is not None:
        test = ("NONE",) if check.args.strip().upper() == "NONE" else ("CMD-SHELL", check.args)
        spec = replace(spec, healthcheck=Healthcheck(test))
    return replace(service, spec=spec)


def lint_compose(
    paths: Sequence[str], options: LintOptions, texts: Mapping[str, str] | None = None
) -> tuple[list[Result], list[str]]:
    """The container rules over every service of one compose project (files merged in order)."""
    from dockward.lint.compose import load_compose
    from dockward.lint.containers import lint_compose_service

    project = load_compose(
        paths, env=options.env, profiles=options.profiles, texts=texts, max_bytes=options.max_bytes
    )
    results: list[Result] = []
    entries = [e for e in options.rules() if e.rule.kind == "container"]
    compose_entries = [e for e in options.rules() if e.rule.kind == "compose"]
    project_dir = os.path.dirname(os.path.abspath(paths[0])) if paths[0] != "-" else os.getcwd()
    for service in project.services:
        service = _with_build_defaults(service, project_dir, options)
        target = f"{service.location.path} service {service.name}"
        results += lint_compose_service(service, entries, target=target)
        for entry in compose_entries:
            results += run_check(entry, service, target=target, location=service.location)
    warnings = list(project.warnings)
    foreign = _foreign(options)
    by_file: dict[str, list[Result]] = {}
    for r in results:
        by_file.setdefault(r.location.path if r.location else "", []).append(r)
    final: list[Result] = []
    for path, group in by_file.items():
        text = (texts or {}).get(path)
        if text is None:
            try:
                text = read_text(path, options.max_bytes)
            except InputError:
                text = ""
        lines = text.split("\n")
        sups = suppress.scan(lines, foreign)
        final += suppress.apply(group, lines, sups)
        warnings += suppress.unused(path, sups)
    return final, warnings


def lint_run_line(line: str, options: LintOptions, name: str = "docker run") -> list[Result]:
    from dockward.lint.containers import lint_run_line as lint_line

    entries = [e for e in options.rules() if e.rule.kind == "container"]
    return lint_line(line, entries, name)


def _group_compose(paths: list[str], merge: bool) -> list[list[str]]:
    """Each compose file is its own project, except `X.override.yaml` next to `X.yaml`, which
    compose merges automatically (and `--merge`, which makes all of them one project)."""
    if merge:
        return [paths] if paths else []
    groups: dict[str, list[str]] = {}
    for p in paths:
        base = os.path.basename(p)
        stem = base.replace(".override", "") if ".override." in base else base
        key = os.path.join(os.path.dirname(p), stem)
        groups.setdefault(key, [])
        if ".override." in base:
            groups[key].append(p)
        else:
            groups[key].insert(0, p)
    out = []
    for key, files in groups.items():
        if not any(os.path.join(os.path.dirname(f), os.path.basename(key)) == f for f in files):
            out += [[f] for f in files]  # an override without its base file stands alone
        else:
            out.append(files)
    return out


def lint(
    paths: Sequence[str] = (),
    options: LintOptions | None = None,
    *,
    stdin: tuple[str, str] | None = None,
    run_lines: Sequence[str] = (),
) -> Report:
    """Lint files/directories, an optional stdin document (`(kind, text)`) and run lines."""
    opts = options or LintOptions()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out = _Out()
    found = discover(paths, opts.any_yaml)
    dockerfiles = [p for p, k in found if k == "dockerfile"]
    composes = [p for p, k in found if k == "compose"]
    for path in dockerfiles:
        out.files += 1
        try:
            text = read_text(path, opts.max_bytes)
            res, warn = lint_dockerfile_text(text, path, opts)
        except InputError as exc:
            out.results.append(_error(path, exc))
            continue
        except RecursionError:
            out.results.append(_error(path, InputError(f"{path}: nested too deeply")))
            continue
        out.results += res
        out.warnings += warn
    for group in _group_compose(composes, opts.merge_compose):
        out.files += len(group)
        try:
            res, warn = lint_compose(group, opts)
        except InputError as exc:
            out.results.append(_error(_error_path(str(exc), group), exc))
            continue
        out.results += res
        out.warnings += warn
    if stdin is not None:
        kind, text = stdin
        out.files += 1
        try:
            if kind == "compose":
                res, warn = lint_compose(["-"], opts, texts={"-": text})
            else:
                res, warn = lint_dockerfile_text(text, "-", opts)
            out.results += res
            out.warnings += warn
        except InputError as exc:
            out.results.append(_error("-", exc))
    for i, line in enumerate(run_lines):
        name = "docker run" if len(run_lines) == 1 else f"docker run #{i + 1}"
        out.results += lint_run_line(line, opts, name)
    return Report(
        command="lint",
        results=tuple(_keep(out.results, opts)),
        started=started,
        finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        warnings=tuple(out.warnings),
        extra=LintExtra(out.files),
        tool_version=__version__,
    )


def _error_path(message: str, group: list[str]) -> str:
    for p in group:
        if message.startswith(p):
            return p
    return group[0]
