"""The declared daemon configuration: dockerd's argv and daemon.json, merged with sources."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dockward.model.daemon import Setting

DEFAULT_CONFIG = "/etc/docker/daemon.json"

# dockerd options that are booleans: bare flags on the command line (a bare flag means true),
# true/false in daemon.json. The one list the argv parser and daemon harden's checks share.
BOOLEAN_FLAGS = frozenset(
    {
        "icc",
        "iptables",
        "ip6tables",
        "ip-forward",
        "ip-masq",
        "tls",
        "tlsverify",
        "live-restore",
        "userland-proxy",
        "no-new-privileges",
        "experimental",
        "selinux-enabled",
        "debug",
        "ipv6",
        "rootless",
        "init",
        "raw-logs",
        "validate",
    }
)
# Repeatable flags whose daemon.json key is a plural list.
LIST_FLAGS = {
    "host": "hosts",
    "insecure-registry": "insecure-registries",
    "storage-opt": "storage-opts",
    "authorization-plugin": "authorization-plugins",
    "registry-mirror": "registry-mirrors",
    "dns": "dns",
    "label": "labels",
    "log-opt": "log-opts",
    "exec-opt": "exec-opts",
    "default-ulimit": "default-ulimits",
    "add-runtime": "runtimes",
}
SHORT_FLAGS = {
    "-H": "host",
    "-l": "log-level",
    "-s": "storage-driver",
    "-g": "data-root",
    "-D": "debug",
    "-G": "group",
    "-b": "bridge",
    "-p": "pidfile",
}
RENAMED = {"graph": "data-root"}


def _bool(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "")


def parse_dockerd_argv(argv: Sequence[str]) -> dict[str, Any]:
    """`dockerd --icc=false -H unix:///x --tlsverify` -> daemon.json-style keys."""
    out: dict[str, Any] = {}
    args = list(argv[1:])
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg in SHORT_FLAGS:
            name, value = SHORT_FLAGS[arg], None
        elif arg.startswith("--"):
            name, eq, raw = arg[2:].partition("=")
            value = raw if eq else None
        elif arg.startswith("-") and len(arg) > 2 and arg[:2] in SHORT_FLAGS:
            name, value = SHORT_FLAGS[arg[:2]], arg[2:].lstrip("=")
        else:
            continue
        name = RENAMED.get(name, name)
        if name in BOOLEAN_FLAGS:
            out[name] = True if value is None else _bool(value)
            continue
        if value is None:
            if i < len(args):
                value = args[i]
                i += 1
            else:
                value = ""
        if name in LIST_FLAGS:
            key = LIST_FLAGS[name]
            if key == "default-ulimits":
                uname, _, limits = value.partition("=")
                soft, _, hard = limits.partition(":")
                out.setdefault(key, {})[uname] = {
                    "Name": uname,
                    "Soft": int(soft or 0),
                    "Hard": int(hard or soft or 0),
                }
            else:
                out.setdefault(key, []).append(value)
        else:
            out[name] = value
    return out


def load_daemon_json(path: str) -> tuple[dict[str, Any], str]:
    """(settings, error). A missing file is an empty configuration, not an error."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, ""
    except OSError as exc:
        return {}, f"cannot read: {exc.strerror}"
    if not text.strip():
        return {}, ""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return {}, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
    if not isinstance(data, dict):
        return {}, "top level is not a JSON object"
    return data, ""


def merge_settings(
    argv_settings: dict[str, Any], json_settings: dict[str, Any]
) -> dict[str, Setting]:
    """argv wins over daemon.json (dockerd refuses conflicts; argv is what runs)."""
    merged = {k: Setting(v, "daemon.json") for k, v in json_settings.items()}
    merged.update({k: Setting(v, "argv") for k, v in argv_settings.items()})
    return merged


def find_dockerd_argv(socket_path: str, proc: str = "/proc") -> tuple[str, ...] | None:
    """The argv of the dockerd that serves `socket_path` (several daemons may run)."""
    candidates: list[tuple[str, tuple[str, ...]]] = []
    try:
        entries = os.listdir(proc)
    except OSError:
        return None
    for pid in entries:
        if not pid.isdigit():
            continue
        try:
            raw = Path(proc, pid, "cmdline").read_bytes()
        except OSError:
            continue
        argv = tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)
        if argv and os.path.basename(argv[0]) == "dockerd":
            candidates.append((pid, argv))
    inodes = _socket_inodes(socket_path, proc)
    for pid, argv in candidates:
        if inodes and _holds_socket(proc, pid, inodes):
            return argv
    for _pid, argv in candidates:
        settings = parse_dockerd_argv(argv)
        hosts = list(settings.get("hosts", []))
        if not hosts:
            config, _err = load_daemon_json(str(settings.get("config-file") or DEFAULT_CONFIG))
            declared = config.get("hosts") or []
            hosts = [declared] if isinstance(declared, str) else [str(h) for h in declared]
        paths = [h.removeprefix("unix://") for h in hosts if h.startswith(("unix://", "/"))]
        if not hosts and socket_path in ("/var/run/docker.sock", "/run/docker.sock"):
            return argv
        if any(os.path.realpath(p) == os.path.realpath(socket_path) for p in paths):
            return argv
    if len(candidates) == 1 and socket_path in ("/var/run/docker.sock", "/run/docker.sock"):
        return candidates[0][1]
    return None


def _socket_inodes(socket_path: str, proc: str) -> set[str]:
    """Inodes of the listening unix socket bound at `socket_path` (from /proc/net/unix)."""
    try:
        lines = Path(proc, "net", "unix").read_text().splitlines()[1:]
    except OSError:
        return set()
    real = os.path.realpath(socket_path)
    out = set()
    for line in lines:
        parts = line.split()
        if len(parts) >= 8 and parts[7] in (socket_path, real):
            out.add(parts[6])
    return out


def _holds_socket(proc: str, pid: str, inodes: set[str]) -> bool:
    fd_dir = Path(proc, pid, "fd")
    try:
        for fd in fd_dir.iterdir():
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
    except OSError:
        return False
    return False
