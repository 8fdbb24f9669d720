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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dockward.engine.daemon_config import merge_settings, parse_dockerd_argv
from dockward.errors import ConfigError
from dockward.harden.daemon_keys import KNOWN_KEYS, LOG_OPTS, value_problems
from dockward.harden.subids import check_remap
from dockward.model.finding import Status
from dockward.model.host import HostSnapshot
from dockward.rules.daemon import rules as daemon_rules
from dockward.rules.groups import members
from dockward.rules.registry import run_check
from dockward.util.fs import atomic_write

MAX_CONFIG_BYTES = 1024 * 1024
DEFAULT_NOFILE = (65536, 65536)
ROTATION = {"max-size": "10m", "max-file": "3"}
# Rules whose fix is not a daemon.json key dockward may set for you (declared on the rule).
MANUAL_RULES = members((e.rule for e in daemon_rules), "manual-fix")


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    userns_remap: str = "default"  # "" leaves remapping off
    log_driver: str = ""  # a central log driver to switch to (DW-D013); "" keeps the driver
    log_opts: Mapping[str, str] = field(default_factory=dict)
    ip: str = ""  # default bind address of published ports (DW-D020); "" leaves it
    seccomp_profile: str = ""  # absolute path of a daemon-wide seccomp profile
    nofile: tuple[int, int] | None = None  # None: 65536, capped at dockerd's own hard limit
    skip: frozenset[str] = frozenset()  # keys to leave alone


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
    `nofile_ceiling`: dockerd's own hard open-files limit (see `process_nofile`)."""
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
    proposed: dict[str, Any] = dict(current)
    changes: list[Change] = []
    blocked: list[Blocked] = []
    warnings: list[str] = []
    manual: list[Manual] = []

    if snap.daemon.argv is None:
        warnings.append(
            "dockerd's process is not visible from here: conflicts with its flags cannot be checked"
        )
    elif declared.config_file and os.path.realpath(path) != os.path.realpath(declared.config_file):
        warnings.append(f"this daemon reads {declared.config_file}, not {path}")

    def propose(key: str, value: Any, rule: str, why: str, *, remove: bool = False) -> bool:
        if key in opts.skip:
            return False
        if key in argv:
            if argv[key] != value or remove:
                blocked.append(
                    Blocked(
                        key,
                        rule,
                        f"set by the dockerd flag {_flag(key, argv[key])}; dockerd refuses a "
                        "key given both as a flag and in daemon.json, so change the flag where "
                        "dockerd is started (its service unit)",
                    )
                )
            return False
        if not remove and key in proposed and proposed[key] == value:
            return False
        if remove and key not in proposed:
            return False
        changes.append(
            Change(key, value, rule, why, current.get(key), key in current, remove=remove)
        )
        if remove:
            proposed.pop(key, None)
        else:
            proposed[key] = value
        return True

    # The rule reads the running bridge; the file decides what the next start does.
    if ("DW-D002" in fails or snap.daemon.flag("icc", True)) and propose(
        "icc", False, "DW-D002", "containers on the default bridge stop talking"
    ):
        warnings.append(
            "icc false: containers on the default bridge (and --link) can no longer reach "
            "each other; user-defined networks are not affected"
        )
    if "DW-D003" in fails:
        propose("log-level", "info", "DW-D003", "info logs enough to audit, debug logs requests")
    if "DW-D008" in status:
        soft, hard = opts.nofile or DEFAULT_NOFILE
        if opts.nofile is None and nofile_ceiling:
            soft, hard = min(soft, nofile_ceiling), min(hard, nofile_ceiling)
        if nofile_ceiling and hard > nofile_ceiling:
            # runc cannot raise a hard limit above what it inherits (no CAP_SYS_RESOURCE in
            # the initial user namespace, never under userns-remap): every start would fail.
            blocked.append(
                Blocked(
                    "default-ulimits",
                    "DW-D008",
                    f"nofile hard limit {hard} is above dockerd's own ({nofile_ceiling}): "
                    "containers would fail to start (error setting rlimits)",
                )
            )
        else:
            propose(
                "default-ulimits",
                {
                    **(current.get("default-ulimits") or {}),
                    "nofile": _ulimit("nofile", soft, hard),
                },
                "DW-D008",
                "containers get a set open-files limit instead of the daemon's own",
            )
    if "DW-D009" in fails and opts.userns_remap and "userns-remap" not in current:
        _remap(snap, opts.userns_remap, propose, blocked, warnings, subuid, subgid)
    elif "DW-D009" in fails and snap.daemon.value("userns-remap"):
        warnings.append("userns-remap is configured but not in effect: restart dockerd")
    _logging(snap, opts, current, status, propose, blocked)
    if "DW-D014" in fails and propose(
        "no-new-privileges", True, "DW-D014", "setuid binaries no longer raise privileges"
    ):
        warnings.append(
            "no-new-privileges: setuid/setcap programs in containers (su, sudo, old ping) no "
            "longer gain privileges; a container can opt out with "
            "--security-opt no-new-privileges=false"
        )
    if "DW-D015" in fails:  # the rule skips in swarm mode, where dockerd refuses live-restore
        propose("live-restore", True, "DW-D015", "containers survive daemon restarts")
    if "DW-D016" in fails:
        if not snap.daemon.flag("iptables", True):
            blocked.append(
                Blocked(
                    "userland-proxy",
                    "DW-D016",
                    "iptables is off: without the userland proxy published ports stop working",
                )
            )
        else:
            propose("userland-proxy", False, "DW-D016", "one process less per published port")
    if "DW-D017" in fails or opts.seccomp_profile:
        if opts.seccomp_profile:
            propose("seccomp-profile", opts.seccomp_profile, "DW-D017", "daemon-wide profile")
        elif proposed.get("seccomp-profile") == "unconfined":
            propose("seccomp-profile", None, "DW-D017", "back to the built-in profile", remove=True)
    if opts.ip and (snap.daemon.value("ip") or "0.0.0.0") != opts.ip:
        propose("ip", opts.ip, "DW-D020", "`-p PORT:PORT` binds to this address by default")

    for entry in daemon_rules:
        rid = entry.rule.id
        if rid in fails and (rid in MANUAL_RULES or (rid == "DW-D013" and not opts.log_driver)):
            manual.append(Manual(rid, status[rid][1], entry.rule.remediation))

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
        warnings.append(
            f"keys Engine 20.10 does not know (kept; dockerd 20.10 refuses to start with them): "
            f"{', '.join(unknown)}"
        )
    return DaemonPlan(
        config_file=path,
        existed=existed,
        current_text=text,
        current=current,
        proposed=proposed,
        changes=tuple(changes),
        blocked=tuple(blocked),
        conflicts=tuple(conflicts),
        warnings=tuple(warnings),
        manual=tuple(manual),
        failing=tuple(sorted(fails)),
        indent=_indent_of(text),
    )


def _ulimit(name: str, soft: int, hard: int) -> dict[str, Any]:
    return {"Name": name, "Soft": soft, "Hard": hard}


def _remap(
    snap: HostSnapshot,
    value: str,
    propose: Any,
    blocked: list[Blocked],
    warnings: list[str],
    subuid: str,
    subgid: str,
) -> None:
    check = check_remap(value, subuid=subuid, subgid=subgid)
    if check.problems:
        blocked.append(Blocked("userns-remap", "DW-D009", "; ".join(check.problems)))
        return
    if not propose("userns-remap", value, "DW-D009", "container root is not host root"):
        return
    warnings.extend(f"userns-remap: {n}" for n in check.notes)
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


def _logging(
    snap: HostSnapshot,
    opts: DaemonOptions,
    current: Mapping[str, Any],
    status: Mapping[str, tuple[Status, str]],
    propose: Any,
    blocked: list[Blocked],
) -> None:
    """A central driver when one is asked for, else rotation for the local json-file driver."""
    if opts.log_driver:
        if "DW-D013" not in status and not opts.log_opts:
            return
        allowed = LOG_OPTS.get(opts.log_driver)
        kept = dict(current.get("log-opts") or {})
        if allowed is not None:
            foreign = sorted(k for k in kept if k not in allowed)
            if foreign:
                blocked.append(
                    Blocked(
                        "log-driver",
                        "DW-D013",
                        f"the existing log-opts {', '.join(foreign)} are not accepted by "
                        f"{opts.log_driver} (dockerd would refuse to start); remove them first",
                    )
                )
                return
        new_opts = {**kept, **opts.log_opts}
        if (
            propose("log-driver", opts.log_driver, "DW-D013", "logs leave the host")
            and new_opts != kept
        ):
            propose("log-opts", new_opts, "DW-D013", f"options of {opts.log_driver}")
        return
    driver = str(snap.daemon.info.get("LoggingDriver") or current.get("log-driver") or "json-file")
    log_opts = dict(snap.daemon.value("log-opts") or {})
    if driver in ("json-file", "local") and "max-size" not in log_opts:
        propose(
            "log-opts",
            {**dict(current.get("log-opts") or {}), **ROTATION},
            "",
            f"rotate {driver} logs so a chatty container cannot fill the disk",
        )


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
