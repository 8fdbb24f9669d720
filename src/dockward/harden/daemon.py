"""`daemon harden`: a hardened daemon.json from the daemon rules that fail, applied safely.

The proposal starts from the file as it is (every key kept, key order kept) and sets only the
keys of failing rules. It never writes a key that dockerd's own flags also set: dockerd refuses
to start when a key is given both ways, so such a fix is reported as blocked instead. Applying
writes atomically, keeps the previous version (`daemon.json.bak`) and a timestamped copy, and
`rollback` puts the previous version back.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dockward.engine.daemon_config import merge_settings, parse_dockerd_argv
from dockward.errors import ConfigError
from dockward.harden.daemon_keys import KNOWN_KEYS, LOG_OPTS, value_problems
from dockward.harden.subids import RemapCheck, check_remap
from dockward.model.finding import Rule, Status
from dockward.model.host import HostSnapshot
from dockward.rules.daemon import rules as daemon_rules
from dockward.rules.fixes import DaemonOptions as DaemonOptions
from dockward.rules.registry import run_check
from dockward.util.fs import atomic_write

MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Change:
    key: str
    new: Any
    rule: str
    why: str
    old: Any = None
    had: bool = False
    remove: bool = False

    def describe(self) -> str:
        if self.remove:
            return f"remove {self.key} (was {json.dumps(self.old)})"
        was = f" (was {json.dumps(self.old)})" if self.had else ""
        return f"{self.key}: {json.dumps(self.new)}{was}"


@dataclass(frozen=True, slots=True)
class Blocked:
    """A fix that cannot go into daemon.json (a flag sets the key, or the host is not ready)."""

    key: str
    rule: str
    message: str


@dataclass(frozen=True, slots=True)
class Manual:
    rule: str
    message: str
    remediation: str


@dataclass(frozen=True, slots=True)
class DaemonPlan:
    config_file: str
    existed: bool
    current_text: str
    current: Mapping[str, Any]
    proposed: Mapping[str, Any]
    changes: tuple[Change, ...]
    blocked: tuple[Blocked, ...] = ()
    conflicts: tuple[str, ...] = ()  # the proposed file would stop dockerd from starting
    warnings: tuple[str, ...] = ()
    manual: tuple[Manual, ...] = ()
    failing: tuple[str, ...] = ()  # daemon rules failing now
    indent: int = 2

    def render(self) -> str:
        return json.dumps(self.proposed, indent=self.indent) + "\n"

    def diff(self) -> str:
        before = self.current_text if self.existed else ""
        return "".join(
            difflib.unified_diff(
                before.splitlines(keepends=True),
                self.render().splitlines(keepends=True),
                self.config_file if self.existed else "/dev/null",
                self.config_file,
            )
        )

    @property
    def needs_restart_checks(self) -> tuple[str, ...]:
        return tuple(sorted({c.rule for c in self.changes if c.rule}))


def read_config(path: str) -> tuple[str, dict[str, Any], bool]:
    """(text, settings, existed). A malformed file is a ConfigError (one line): dockward never
    rewrites a file it cannot read, since that would drop what the user has in it."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return "", {}, False
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    if not text.strip():
        return text, {}, True
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level is not a JSON object")
    return text, data, True


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"key {k!r} appears twice")
        out[k] = v
    return out


def _indent_of(text: str) -> int:
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" ")
        if stripped and len(line) != len(stripped):
            return len(line) - len(stripped)
    return 2


def _flag(key: str, value: Any) -> str:
    name = {"hosts": "host", "default-ulimits": "default-ulimit", "log-opts": "log-opt"}.get(
        key, key
    )
    return f"--{name}={json.dumps(value) if not isinstance(value, str) else value}"


def failing_rules(snap: HostSnapshot) -> dict[str, tuple[Status, str]]:
    out: dict[str, tuple[Status, str]] = {}
    for entry in daemon_rules:
        for r in run_check(entry, snap, target="daemon", host=snap.host):
            if r.status in (Status.FAIL, Status.INFO):
                out[entry.rule.id] = (r.status, r.message)
    return out


def plan(
    snap: HostSnapshot,
    options: DaemonOptions | None = None,
    config_file: str | None = None,
    *,
    subuid: str = "/etc/subuid",
    subgid: str = "/etc/subgid",
    nofile_ceiling: int | None = None,
) -> DaemonPlan:
    """The hardened daemon.json for the daemon in `snap` (reads the file; writes nothing).
    `nofile_ceiling`: dockerd's own hard open-files limit (see `process_nofile`).

    Each daemon rule's fix (declared with the rule) proposes the keys that make it pass; the
    draft decides whether a key can be written here."""
    opts = options or DaemonOptions()
    path = config_file or snap.daemon.config_file or "/etc/docker/daemon.json"
    text, current, existed = read_config(path)
    argv = parse_dockerd_argv(snap.daemon.argv) if snap.daemon.argv else {}
    declared = snap.daemon
    # The rules judge the file as it is now (it may differ from what dockerd read at start).
    snap = replace(
        snap,
        daemon=replace(snap.daemon, settings=merge_settings(argv, current), config_file=path),
    )
    status = failing_rules(snap)
    fails = {k for k, (st, _m) in status.items() if st is Status.FAIL}
    draft = _Draft(snap, opts, current, argv, nofile_ceiling, subuid, subgid)
    if snap.daemon.argv is None:
        draft.warnings.append(
            "dockerd's process is not visible from here: conflicts with its flags cannot be checked"
        )
    elif declared.config_file and os.path.realpath(path) != os.path.realpath(declared.config_file):
        draft.warnings.append(f"this daemon reads {declared.config_file}, not {path}")
    for entry in daemon_rules:
        fixer = _Fixer(draft, entry.rule, *status.get(entry.rule.id, (None, "")))
        if entry.fix is not None:
            entry.fix(fixer)
        if "manual-fix" in entry.rule.groups and fixer.status is Status.FAIL:
            fixer.manual()

    proposed = draft.proposed
    conflicts = [
        f"{k} is set both in {path} and by the flag {_flag(k, argv[k])}: dockerd refuses to start"
        for k in proposed
        if k in argv
    ]
    conflicts += [f"{path}: {p}" for p in value_problems(proposed)]
    unknown = sorted(k for k in proposed if k not in KNOWN_KEYS)
    version = str(snap.daemon.version.get("Version") or "")
    if unknown and (version.startswith("20.10") or not version):
        # Newer engines know more keys; the list is the one of the engine this project targets.
        draft.warnings.append(
            f"keys Engine 20.10 does not know (kept; dockerd 20.10 refuses to start with them): "
            f"{', '.join(unknown)}"
        )
    return DaemonPlan(
        config_file=path,
        existed=existed,
        current_text=text,
        current=current,
        proposed=proposed,
        changes=tuple(draft.changes),
        blocked=tuple(draft.blocked),
        conflicts=tuple(conflicts),
        warnings=tuple(draft.warnings),
        manual=tuple(draft.manual),
        failing=tuple(sorted(fails)),
        indent=_indent_of(text),
    )


class _Draft:
    """The proposal while the rules' fixes add to it: what may be written on this host."""

    def __init__(
        self,
        snap: HostSnapshot,
        options: DaemonOptions,
        current: Mapping[str, Any],
        argv: Mapping[str, Any],
        nofile_ceiling: int | None,
        subuid: str,
        subgid: str,
    ) -> None:
        self.snap = snap
        self.options = options
        self.current = current
        self.argv = argv
        self.nofile_ceiling = nofile_ceiling
        self.subids = (subuid, subgid)
        self.proposed: dict[str, Any] = dict(current)
        self.changes: list[Change] = []
        self.blocked: list[Blocked] = []
        self.warnings: list[str] = []
        self.manual: list[Manual] = []

    def write(self, rule: str, key: str, value: Any, why: str, *, remove: bool = False) -> bool:
        remap = None
        if key == "userns-remap" and not remove:
            remap = check_remap(value, subuid=self.subids[0], subgid=self.subids[1])
        refusal = None if remove else self._refusal(key, value, remap)
        if refusal:
            self.blocked.append(Blocked(key, rule, refusal))
            return False
        if key in self.options.skip:
            return False
        if key in self.argv:
            if self.argv[key] != value or remove:
                self.blocked.append(
                    Blocked(
                        key,
                        rule,
                        f"set by the dockerd flag {_flag(key, self.argv[key])}; dockerd refuses a "
                        "key given both as a flag and in daemon.json, so change the flag where "
                        "dockerd is started (its service unit)",
                    )
                )
            return False
        if not remove and key in self.proposed and self.proposed[key] == value:
            return False
        if remove and key not in self.proposed:
            return False
        self.changes.append(
            Change(key, value, rule, why, self.current.get(key), key in self.current, remove=remove)
        )
        if remove:
            self.proposed.pop(key, None)
            return True
        self.proposed[key] = value
        self.warnings.extend(self._consequences(key, value, remap))
        return True

    def _refusal(self, key: str, value: Any, remap: RemapCheck | None) -> str:
        """Why `key: value` cannot be written on this host ("" when it can)."""
        if remap is not None and remap.problems:
            return "; ".join(remap.problems)
        if key == "default-ulimits" and self.nofile_ceiling:
            hard = int((value.get("nofile") or {}).get("Hard") or 0)
            if hard > self.nofile_ceiling:
                # runc cannot raise a hard limit above what it inherits (no CAP_SYS_RESOURCE in
                # the initial user namespace, never under userns-remap): every start would fail.
                return (
                    f"nofile hard limit {hard} is above dockerd's own ({self.nofile_ceiling}): "
                    "containers would fail to start (error setting rlimits)"
                )
        if (
            key == "userland-proxy"
            and value is False
            and not self.snap.daemon.flag("iptables", True)
        ):
            return "iptables is off: without the userland proxy published ports stop working"
        if key == "log-driver":
            allowed = LOG_OPTS.get(value)
            kept = dict(self.current.get("log-opts") or {})
            foreign = sorted(k for k in kept if allowed is not None and k not in allowed)
            if foreign:
                return (
                    f"the existing log-opts {', '.join(foreign)} are not accepted by "
                    f"{value} (dockerd would refuse to start); remove them first"
                )
        return ""

    def _consequences(self, key: str, value: Any, remap: RemapCheck | None) -> list[str]:
        """What the user must know once `key: value` is proposed."""
        if key == "icc" and value is False:
            return [
                "icc false: containers on the default bridge (and --link) can no longer reach "
                "each other; user-defined networks are not affected"
            ]
        if key == "no-new-privileges" and value is True:
            return [
                "no-new-privileges: setuid/setcap programs in containers (su, sudo, old ping) no "
                "longer gain privileges; a container can opt out with "
                "--security-opt no-new-privileges=false"
            ]
        if remap is not None:
            return _remap_warnings(self.snap, remap)
        return []


@dataclass(frozen=True, slots=True)
class _Fixer:
    """The draft as one rule's fix sees it (`dockward.rules.fixes.DaemonFixer`)."""

    draft: _Draft
    rule: Rule
    status: Status | None
    message: str

    @property
    def snap(self) -> HostSnapshot:
        return self.draft.snap

    @property
    def options(self) -> DaemonOptions:
        return self.draft.options

    @property
    def current(self) -> Mapping[str, Any]:
        return self.draft.current

    @property
    def proposed(self) -> Mapping[str, Any]:
        return self.draft.proposed

    @property
    def nofile_ceiling(self) -> int | None:
        return self.draft.nofile_ceiling

    def set(self, key: str, value: Any, why: str, *, mitigation: bool = False) -> bool:
        return self.draft.write("" if mitigation else self.rule.id, key, value, why)

    def remove(self, key: str, why: str) -> bool:
        return self.draft.write(self.rule.id, key, None, why, remove=True)

    def warn(self, message: str) -> None:
        self.draft.warnings.append(message)

    def manual(self) -> None:
        self.draft.manual.append(Manual(self.rule.id, self.message, self.rule.remediation))


def _remap_warnings(snap: HostSnapshot, check: RemapCheck) -> list[str]:
    warnings = [f"userns-remap: {n}" for n in check.notes]
    root = str(snap.daemon.info.get("DockerRootDir") or "/var/lib/docker")
    where = (
        f"{root}/{check.root_uid}.{check.root_gid}"
        if check.root_uid is not None
        else f"{root}/<uid>.<gid>"
    )
    warnings.append(
        f"userns-remap: the daemon switches to {where}: the {len(snap.images)} image(s) and "
        f"{len(snap.containers)} container(s) it has now become invisible (pull or build them "
        "again; they come back if remapping is turned off)"
    )
    host_ns = sorted(
        c.display_name
        for c in snap.containers
        if "host" in (c.network_mode, c.pid_mode, c.ipc_mode, c.uts_mode) or c.privileged
    )
    if host_ns:
        warnings.append(
            "userns-remap: these need --userns=host (host network/pid/ipc/uts or --privileged): "
            + ", ".join(host_ns)
        )
    binds = sorted(
        c.display_name for c in snap.containers if any(m.type == "bind" for m in c.mounts)
    )
    if binds:
        warnings.append(
            "userns-remap: bind-mounted files must be owned by the remapped ids "
            f"(uid {check.root_uid if check.root_uid is not None else '100000'}+) to be "
            "writable: " + ", ".join(binds)
        )
    return warnings


def process_nofile(argv: tuple[str, ...] | None, proc: str = "/proc") -> int | None:
    """The hard open-files limit of the dockerd running with `argv` (its containers inherit it)."""
    if not argv:
        return None
    want = b"\0".join(a.encode() for a in argv)
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        try:
            if Path(proc, pid, "cmdline").read_bytes().rstrip(b"\0") != want:
                continue
            for line in Path(proc, pid, "limits").read_text().splitlines():
                if line.startswith("Max open files"):
                    hard = line.split()[4]
                    return None if hard == "unlimited" else int(hard)
        except (OSError, ValueError, IndexError):
            continue
    return None


def default_restart_command(socket_path: str) -> tuple[str, ...] | None:
    """How this host restarts its system dockerd (None: unknown, say so instead)."""
    if socket_path not in ("/var/run/docker.sock", "/run/docker.sock"):
        return None
    if os.path.isdir("/run/systemd/system") and shutil.which("systemctl"):
        return ("systemctl", "restart", "docker")
    if os.path.exists("/etc/init.d/docker") and shutil.which("service"):
        return ("service", "docker", "restart")
    return None


def run_restart(command: tuple[str, ...], timeout: float = 120) -> None:
    """Run the restart command (an argv, never a shell line)."""
    try:
        res = subprocess.run(
            list(command), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise ConfigError(f"restart command not found: {command[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(f"restart command did not finish within {timeout:.0f}s") from exc
    if res.returncode != 0:
        last = (res.stderr or res.stdout).strip().splitlines()[-1:] or [""]
        raise ConfigError(f"restart command exited {res.returncode}: {last[0][:200]}")


def backup_path(path: str, now: dt.datetime | None = None) -> str:
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{path}.{stamp}.bak"


@dataclass(frozen=True, slots=True)
class Applied:
    config_file: str
    previous: str  # the `.bak` that `rollback` restores
    backup: str  # the timestamped copy


def apply(p: DaemonPlan, *, now: dt.datetime | None = None) -> Applied:
    """Write the proposal: refuse conflicts; all or nothing; the previous version kept."""
    if p.conflicts:
        raise ConfigError(p.conflicts[0])
    text, _data, existed = read_config(p.config_file)
    if text != p.current_text or existed != p.existed:
        raise ConfigError(f"{p.config_file} changed since the proposal was made; run again")
    new_text = p.render()
    json.loads(new_text)  # what we write always parses
    target = Path(p.config_file)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        stamped = backup_path(p.config_file, now)
        previous = p.current_text if existed and p.current_text.strip() else "{}\n"
        # The timestamped copy first: if anything below fails, the old file is still in place.
        atomic_write(stamped, previous, mode=0o600)
        if not existed:
            # No file before: the previous version is the empty configuration.
            atomic_write(f"{p.config_file}.bak", "{}\n", mode=0o600)
        atomic_write(target, new_text, keep_previous=existed)
    except OSError as exc:
        raise ConfigError(f"cannot write {p.config_file}: {exc.strerror}") from exc
    return Applied(p.config_file, f"{p.config_file}.bak", stamped)


def rollback(path: str) -> str:
    """Put `path.bak` back (the current file becomes the new `.bak`); returns the restored text."""
    bak = f"{path}.bak"
    text, _data, existed = read_config(bak)
    if not existed:
        raise ConfigError(f"no previous version to restore ({bak} does not exist)")
    try:
        atomic_write(path, text if text.strip() else "{}\n", keep_previous=os.path.exists(path))
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from exc
    return text
