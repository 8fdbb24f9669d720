"""`docker run ...` / `docker create ...` argument vectors -> ContainerSpec.

The flags and what each sets are in `dockward.specs.tables.RUN_FLAGS`.
Strict: an unknown flag is an error rather than a guess, because guessing whether it takes a
value shifts every later argument (and could hide `--privileged` inside a "value").
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dockward.errors import InputError
from dockward.model.container import (
    ContainerSpec,
    Healthcheck,
    Mount,
    SecurityOptions,
    StaticAddress,
    Ulimit,
    normalise_capability,
)
from dockward.model.finding import Location
from dockward.specs.tables import API_SOCKET, BOOL_FLAGS, SHORT_FLAGS, VALUE_FLAGS
from dockward.specs.values import (
    as_bool,
    as_int,
    parse_bytes,
    parse_device,
    parse_gpus,
    parse_restart,
    parse_short_port,
    parse_short_volume,
    unmasks_system_paths,
)

_GLOBAL_VALUE = {
    "-H",
    "--host",
    "-c",
    "--context",
    "--config",
    "-l",
    "--log-level",
    "--tlscacert",
    "--tlscert",
    "--tlskey",
}
_PROGRAMS = {"docker", "podman", "nerdctl"}
_WRAPPERS = {"sudo", "exec", "command"}


@dataclass(frozen=True, slots=True)
class RunLine:
    """A `docker run` line taken apart: its options with where each flag starts in the line
    (1-based line and column), the image and the command."""

    options: tuple[tuple[str, str], ...]
    positions: tuple[tuple[int, int], ...]
    image: str
    command: tuple[str, ...]

    def argv(self, options: Sequence[tuple[str, str]]) -> list[str]:
        """`docker run` arguments with these options (long names, `--name=value`)."""
        return ["run", *(f"--{n}={v}" for n, v in options), "--", self.image, *self.command]


def _tokens_at(text: str) -> list[tuple[str, int]]:
    """Shell words of a command line with the offset each starts at (continuations are
    replaced by as many blanks, so offsets stay those of the text)."""
    joined = text.replace("\\\r\n", "   ").replace("\\\n", "  ")
    stream = io.StringIO(joined)
    lex = shlex.shlex(stream, posix=True)
    lex.whitespace_split = True
    lex.commenters = "#"
    out: list[tuple[str, int]] = []
    while True:
        pos = stream.tell()
        while pos < len(joined) and joined[pos] in lex.whitespace:
            pos += 1
        try:
            token = lex.get_token()
        except ValueError as exc:
            raise InputError(f"docker run line: {exc}") from exc
        if token is None:
            return out
        out.append((token, pos))


def parse_run_line(text: str) -> RunLine:
    """A `docker run ...` command line as typed in a shell, with the position of each flag."""
    tokens = _tokens_at(text)
    argv = [t for t, _ in tokens]
    args = _strip_prefix(argv)
    skipped = len(argv) - len(args)
    options, at, image, command = _options_at(args)
    positions = []
    for index in at:
        offset = tokens[skipped + index][1]
        line = text.count("\n", 0, offset) + 1
        positions.append((line, offset - (text.rfind("\n", 0, offset) + 1) + 1))
    return RunLine(tuple(options), tuple(positions), image, tuple(command))


def split_command_line(line: str) -> list[str]:
    """A shell command line (backslash-newline continuations allowed) -> argv, no expansion."""
    joined = line.replace("\\\r\n", " ").replace("\\\n", " ")
    try:
        return shlex.split(joined, comments=True)
    except ValueError as exc:
        raise InputError(f"docker run line: {exc}") from exc


def _strip_prefix(argv: Sequence[str]) -> list[str]:
    args = list(argv)
    while args and (args[0] in _WRAPPERS or ("=" in args[0] and not args[0].startswith("-"))):
        args.pop(0)
    if args and posixpath.basename(args[0]) in _PROGRAMS:
        args.pop(0)
        while args and args[0].startswith("-"):
            flag = args.pop(0)
            if flag in _GLOBAL_VALUE and args:
                args.pop(0)
        if args and args[0] == "container":
            args.pop(0)
        if not args or args[0] not in ("run", "create"):
            found = args[0] if args else "nothing"
            raise InputError(f"expected `docker run` or `docker create`, got {found!r}")
        args.pop(0)
    elif args and args[0] in ("run", "create"):
        args.pop(0)
    return args


def _options(args: list[str]) -> tuple[list[tuple[str, str]], str, list[str]]:
    """(flag, value) pairs in order, the image, and the command after it."""
    out, _, image, command = _options_at(args)
    return out, image, command


def _options_at(args: list[str]) -> tuple[list[tuple[str, str]], list[int], str, list[str]]:
    """`_options`, with the index in `args` of the token each pair comes from."""
    out: list[tuple[str, str]] = []
    at: list[int] = []
    i = start = 0
    while i < len(args):
        at += [start] * (len(out) - len(at))  # the pairs of the token before
        start = i
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name in BOOL_FLAGS:
                out.append((name, value if eq else "true"))
            elif name in VALUE_FLAGS:
                if not eq:
                    i += 1
                    if i >= len(args):
                        raise InputError(f"docker run: flag --{name} needs a value")
                    value = args[i]
                out.append((name, value))
            else:
                raise InputError(f"docker run: unknown flag --{name}")
            i += 1
            continue
        letters = arg[1:]
        j = 0
        while j < len(letters):
            name = SHORT_FLAGS.get(letters[j], "")
            if not name:
                raise InputError(f"docker run: unknown flag -{letters[j]}")
            if name in BOOL_FLAGS:
                out.append((name, "true"))
                j += 1
                continue
            value = letters[j + 1 :].removeprefix("=")
            if not value:
                i += 1
                if i >= len(args):
                    raise InputError(f"docker run: flag -{letters[j]} needs a value")
                value = args[i]
            out.append((name, value))
            break
        i += 1
    at += [start] * (len(out) - len(at))
    if i >= len(args):
        raise InputError("docker run: no image given")
    return out, at, args[i], args[i + 1 :]


def parse_mount_flag(text: str) -> Mount:
    """`--mount type=bind,source=/x,target=/y,readonly,bind-propagation=rshared`."""
    try:
        fields = next(csv.reader([text]))
    except (csv.Error, StopIteration) as exc:
        raise InputError(f"--mount: invalid value {text!r}") from exc
    kv: dict[str, str] = {}
    for f in fields:
        key, eq, value = f.partition("=")
        kv[key.strip().lower()] = value if eq else "true"
    kind = kv.get("type", "volume")
    source = kv.get("source") or kv.get("src") or ""
    target = kv.get("target") or kv.get("destination") or kv.get("dst") or ""
    if not target:
        raise InputError(f"--mount: no target in {text!r}")
    read_only = as_bool(kv.get("readonly", kv.get("ro", "false")), "--mount readonly")
    if kind == "bind" and source:
        source = posixpath.normpath(source)
    return Mount(kind, source, target, read_only, kv.get("bind-propagation", ""))


def _ulimit(text: str) -> Ulimit:
    name, _, limits = text.partition("=")
    soft, _, hard = limits.partition(":")
    return Ulimit(name, as_int(soft, "--ulimit"), as_int(hard or soft, "--ulimit"))


def _kv(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    return key, value


def run_argv_to_spec(argv: Sequence[str], source: Location | None = None) -> ContainerSpec:
    """Build a ContainerSpec from `docker run` arguments (with or without `docker run` in front)."""
    opts, image, command = _options(_strip_prefix(argv))
    values: dict[str, list[str]] = {}
    for name, value in opts:
        values.setdefault(name, []).append(value)

    def last(name: str, default: str = "") -> str:
        return values[name][-1] if name in values else default

    def flag(name: str) -> bool:
        return as_bool(last(name, "false"), f"--{name}")

    mounts: list[Mount] = []
    cwd = os.getcwd()
    for name, value in opts:
        if name == "volume":
            mounts.append(parse_short_volume(value, cwd, {}))
        elif name == "mount":
            mounts.append(parse_mount_flag(value))
        elif name == "tmpfs":
            target, _, o = value.partition(":")
            mounts.append(Mount("tmpfs", "", target, "ro" in o.split(",")))
    health: Healthcheck | None = None
    if flag("no-healthcheck"):
        health = Healthcheck(("NONE",))
    elif "health-cmd" in values:
        health = Healthcheck(("CMD-SHELL", last("health-cmd")))
    cpus = last("cpus")
    pids = last("pids-limit")
    entry = last("entrypoint")
    try:
        nano = int(float(cpus) * 1e9) if cpus else 0
    except ValueError as exc:
        raise InputError(f"--cpus: invalid value {cpus!r}") from exc
    if flag("use-api-socket"):
        mounts.append(Mount("bind", API_SOCKET, API_SOCKET))
    ports = [p for v in values.get("publish", []) for p in parse_short_port(v, "--publish")]
    security_opts = values.get("security-opt", [])
    return ContainerSpec(
        name=last("name"),
        image=image,
        privileged=flag("privileged"),
        cap_add=tuple(normalise_capability(c) for c in values.get("cap-add", [])),
        cap_drop=tuple(normalise_capability(c) for c in values.get("cap-drop", [])),
        user=last("user"),
        mounts=tuple(mounts),
        network_mode=last("network") or last("net"),
        static_addresses=tuple(
            StaticAddress(last("network") or last("net"), a) for a in (last("ip"), last("ip6")) if a
        ),
        pid_mode=last("pid"),
        ipc_mode=last("ipc"),
        uts_mode=last("uts"),
        userns_mode=last("userns"),
        cgroupns_mode=last("cgroupns"),
        cgroup_parent=last("cgroup-parent"),
        security=SecurityOptions.parse(security_opts),
        unmasked_paths=unmasks_system_paths(security_opts),
        read_only_rootfs=flag("read-only"),
        memory=parse_bytes(last("memory"), "--memory"),
        memory_swap=parse_bytes(last("memory-swap"), "--memory-swap"),
        cpu_shares=as_int(last("cpu-shares", "0"), "--cpu-shares"),
        nano_cpus=nano,
        cpu_quota=as_int(last("cpu-quota", "0"), "--cpu-quota"),
        cpuset_cpus=last("cpuset-cpus"),
        pids_limit=as_int(pids, "--pids-limit") if pids else None,
        ulimits=tuple(_ulimit(u) for u in values.get("ulimit", [])),
        devices=tuple(parse_device(d) for d in values.get("device", [])),
        device_cgroup_rules=tuple(values.get("device-cgroup-rule", [])),
        ports=tuple(ports),
        publish_all=flag("publish-all"),
        extra_hosts=tuple(values.get("add-host", [])),
        volumes_from=tuple(values.get("volumes-from", [])),
        oom_kill_disable=flag("oom-kill-disable"),
        oom_score_adj=as_int(last("oom-score-adj", "0"), "--oom-score-adj"),
        device_requests=tuple(parse_gpus(g) for g in values.get("gpus", [])),
        runtime=last("runtime"),
        restart=parse_restart(last("restart")),
        healthcheck=health,
        env=tuple(values.get("env", [])),
        labels=dict(_kv(v) for v in values.get("label", [])),
        sysctls=dict(_kv(v) for v in values.get("sysctl", [])),
        entrypoint=tuple(shlex.split(entry)) if entry else (),
        command=tuple(command),
        source=source,
        origin="run",
    )


def spec_from_run_line(line: str, source: Location | None = None) -> ContainerSpec:
    """A `docker run ...` command line as typed in a shell."""
    return run_argv_to_spec(split_command_line(line), source)


def flags_of(argv: Sequence[str]) -> list[tuple[str, Any]]:
    return list(_options(_strip_prefix(argv))[0])
