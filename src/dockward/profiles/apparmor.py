"""AppArmor profiles from bane's TOML (every key, same meaning) or dockward's YAML.

Rendered after Docker's docker-default template (abi line, signal and ptrace rules, /proc and
/sys denies) plus bane's rules. bane semantics kept: no capability key => no capability rule =>
every capability denied; `Deny` non-empty => `capability,` plus the denies (Allow ignored);
Raw/Packet false (the default) => `deny network raw/packet`; no protocols => `network,`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dockward.errors import DockwardError, InputError
from dockward.util.fs import atomic_write

CAPABILITIES = frozenset(
    [
        "audit_control",
        "audit_read",
        "audit_write",
        "block_suspend",
        "bpf",
        "checkpoint_restore",
        "chown",
        "dac_override",
        "dac_read_search",
        "fowner",
        "fsetid",
        "ipc_lock",
        "ipc_owner",
        "kill",
        "lease",
        "linux_immutable",
        "mac_admin",
        "mac_override",
        "mknod",
        "net_admin",
        "net_bind_service",
        "net_broadcast",
        "net_raw",
        "perfmon",
        "setfcap",
        "setgid",
        "setpcap",
        "setuid",
        "sys_admin",
        "sys_boot",
        "sys_chroot",
        "sys_module",
        "sys_nice",
        "sys_pacct",
        "sys_ptrace",
        "sys_rawio",
        "sys_resource",
        "sys_time",
        "sys_tty_config",
        "syslog",
        "wake_alarm",
    ]
)
PROTOCOLS = frozenset({"tcp", "udp", "icmp"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# AppArmor path globs; commas only inside {a,b} alternations, so no input can end a rule early.
_PATH = re.compile(r"^(/|@\{[A-Za-z_]+\})[A-Za-z0-9_./*?\[\]{}\-^,@+~:=]*$")
MAX_PATHS = 1000
# The file rules of a learned profile, before its own writable and exec paths.
STRICT_FILES = [
    "/** r,",
    "/{,usr/}lib{,32,64,x32}/** m,",
    "/dev/{null,zero,full,tty,console} rw,",
    "/dev/{random,urandom} r,",
    "/dev/pts/* rw,",
    "/dev/shm/** rwk,",
]


@dataclass(frozen=True, slots=True)
class AppArmorSpec:
    name: str
    read_only_paths: tuple[str, ...] = ()
    log_on_write_paths: tuple[str, ...] = ()
    writable_paths: tuple[str, ...] = ()
    allow_exec: tuple[str, ...] = ()
    deny_exec: tuple[str, ...] = ()
    cap_allow: tuple[str, ...] = ()
    cap_deny: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ()
    raw: bool = False
    packet: bool = False
    # Learned mode: instead of docker-default's `file,` (every file access), read anywhere,
    # write only the writable paths, execute only the allow_exec paths.
    strict_files: bool = False

    @property
    def profile_name(self) -> str:
        return self.name if self.name.startswith("docker-") else f"docker-{self.name}"


def _path_ok(path: str) -> bool:
    if not _PATH.match(path) or ".." in path.split("/"):
        return False
    depth = 0
    for ch in path:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                return False
        elif ch == "," and depth == 0:
            return False
    return depth == 0


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}: expected a list of strings")
    if len(value) > MAX_PATHS:
        raise InputError(f"{where}: more than {MAX_PATHS} entries")
    return tuple(value)


def _paths(value: Any, where: str) -> tuple[str, ...]:
    out = _strings(value, where)
    for p in out:
        if not _path_ok(p):
            raise InputError(f"{where}: not a safe AppArmor path: {p!r}")
    return out


def _caps(value: Any, where: str) -> tuple[str, ...]:
    out: list[str] = []
    for c in _strings(value, where):
        cap = c.strip().lower().removeprefix("cap_")
        if cap not in CAPABILITIES:
            raise InputError(f"{where}: unknown capability {c!r}")
        out.append(cap)
    return tuple(out)


def _section(data: Mapping[str, Any], key: str, allowed: set[str], where: str) -> Mapping[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise InputError(f"{where}: {key} must be a table")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise InputError(f"{where}: unknown key {key}.{unknown[0]}")
    return value


def _bool(value: Any, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InputError(f"{where}: expected true or false")
    return value


def _build(
    name: Any,
    fs: Mapping[str, Any],
    caps: Mapping[str, Any],
    net: Mapping[str, Any],
    keys: dict[str, str],
    where: str,
) -> AppArmorSpec:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(f"{where}: Name must be 1-64 of [A-Za-z0-9_.-], got {name!r}")
    protocols = _strings(net.get(keys["protocols"]), f"{where}: protocols")
    for p in protocols:
        if p not in PROTOCOLS:
            raise InputError(f"{where}: unknown protocol {p!r} (tcp, udp, icmp)")
    return AppArmorSpec(
        name=name,
        read_only_paths=_paths(fs.get(keys["ro"]), f"{where}: read-only paths"),
        log_on_write_paths=_paths(fs.get(keys["log"]), f"{where}: log-on-write paths"),
        writable_paths=_paths(fs.get(keys["rw"]), f"{where}: writable paths"),
        allow_exec=_paths(fs.get(keys["ax"]), f"{where}: allow-exec paths"),
        deny_exec=_paths(fs.get(keys["dx"]), f"{where}: deny-exec paths"),
        cap_allow=_caps(caps.get(keys["allow"]), f"{where}: capabilities allow"),
        cap_deny=_caps(caps.get(keys["deny"]), f"{where}: capabilities deny"),
        protocols=protocols,
        raw=_bool(net.get(keys["raw"]), f"{where}: raw"),
        packet=_bool(net.get(keys["packet"]), f"{where}: packet"),
    )


_BANE_KEYS = {
    "ro": "ReadOnlyPaths",
    "log": "LogOnWritePaths",
    "rw": "WritablePaths",
    "ax": "AllowExec",
    "dx": "DenyExec",
    "allow": "Allow",
    "deny": "Deny",
    "protocols": "Protocols",
    "raw": "Raw",
    "packet": "Packet",
}
_YAML_KEYS = {
    "ro": "read_only",
    "log": "log_on_write",
    "rw": "writable",
    "ax": "allow_exec",
    "dx": "deny_exec",
    "allow": "allow",
    "deny": "deny",
    "protocols": "protocols",
    "raw": "raw",
    "packet": "packet",
}


def _fold(data: Mapping[str, Any], canonical: list[str]) -> dict[str, Any]:
    """bane decodes with BurntSushi/toml, which matches keys to fields case-insensitively."""
    names = {c.lower(): c for c in canonical}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out[names.get(key.lower(), key)] = value
    return out


def parse_bane_toml(text: str, source: str = "profile.toml") -> AppArmorSpec:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}: not TOML: {exc}") from exc
    top = _fold(data, ["Name", "Filesystem", "Capabilities", "Network"])
    unknown = sorted(set(top) - {"Name", "Filesystem", "Capabilities", "Network"})
    if unknown:
        raise InputError(f"{source}: unknown key {unknown[0]}")
    fs_keys = ["ReadOnlyPaths", "LogOnWritePaths", "WritablePaths", "AllowExec", "DenyExec"]
    for key, canon in (
        ("Filesystem", fs_keys),
        ("Capabilities", ["Allow", "Deny"]),
        ("Network", ["Raw", "Packet", "Protocols"]),
    ):
        if isinstance(top.get(key), Mapping):
            top[key] = _fold(top[key], canon)
    fs = _section(top, "Filesystem", set(fs_keys), source)
    caps = _section(top, "Capabilities", {"Allow", "Deny"}, source)
    net = _section(top, "Network", {"Raw", "Packet", "Protocols"}, source)
    return _build(top.get("Name"), fs, caps, net, _BANE_KEYS, source)


def parse_yaml(text: str, source: str = "profile.yaml") -> AppArmorSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, Mapping):
        raise InputError(f"{source}: expected a mapping at the top")
    unknown = sorted(set(data) - {"name", "filesystem", "capabilities", "network"})
    if unknown:
        raise InputError(f"{source}: unknown key {unknown[0]}")
    fs = _section(
        data,
        "filesystem",
        {"read_only", "log_on_write", "writable", "allow_exec", "deny_exec"},
        source,
    )
    caps = _section(data, "capabilities", {"allow", "deny"}, source)
    net = _section(data, "network", {"protocols", "raw", "packet"}, source)
    return _build(data.get("name"), fs, caps, net, _YAML_KEYS, source)


def load_spec(path: str) -> AppArmorSpec:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    if path.endswith(".toml"):
        return parse_bane_toml(text, path)
    if path.endswith((".yaml", ".yml")):
        return parse_yaml(text, path)
    raise InputError(f"{path}: use a .toml (bane) or .yaml/.yml (dockward) file")


def render(
    spec: AppArmorSpec,
    *,
    apparmor_dir: str = "/etc/apparmor.d",
    daemon_profile: str = "",
) -> str:
    """The profile text, after Docker's docker-default template plus the spec's rules."""
    name = spec.profile_name
    lines: list[str] = []
    if os.path.exists(f"{apparmor_dir}/abi/3.0"):
        lines += ["abi <abi/3.0>,", ""]
    if os.path.exists(f"{apparmor_dir}/tunables/global"):
        lines.append("#include <tunables/global>")
    else:
        lines.append("@{PROC}=/proc/")
    lines += ["", f"profile {name} flags=(attach_disconnected,mediate_deleted) {{"]
    body: list[str] = []
    if os.path.exists(f"{apparmor_dir}/abstractions/base"):
        body += ["#include <abstractions/base>", ""]
    if spec.protocols:
        body += [f"network inet {p}," for p in spec.protocols]
    else:
        body.append("network,")
    if not spec.raw:
        body.append("deny network raw,")
    if not spec.packet:
        body.append("deny network packet,")
    body.append("")
    if spec.cap_deny:
        body.append("capability,")
        body += [f"deny capability {c}," for c in spec.cap_deny]
    else:
        body += [f"capability {c}," for c in spec.cap_allow]
    body += [""] + (STRICT_FILES if spec.strict_files else ["file,"])
    body += ["umount,", "deny mount,", ""]
    peers = ["unconfined", "runc", "crun"] + ([daemon_profile] if daemon_profile else [])
    body += [f"signal (receive) peer={p}," for p in peers]
    body += [
        f"signal (send,receive) peer={name},",
        f"ptrace (trace,read,tracedby,readby) peer={name},",
        "",
    ]
    body += [f"deny {p} wl," for p in spec.read_only_paths]
    body += [f"audit {p} w," for p in spec.log_on_write_paths]
    body += [f"{p} {'rwk' if spec.strict_files else 'w'}," for p in spec.writable_paths]
    body += [f"{p} ix," for p in spec.allow_exec]
    body += [f"deny {p} mrwklx," for p in spec.deny_exec]
    body += [
        "",
        "deny @{PROC}/* w,",
        "deny @{PROC}/{[^1-9],[^1-9][^0-9],[^1-9s][^0-9y][^0-9s],[^1-9][^0-9][^0-9][^0-9/]*}/** w,",
        "deny @{PROC}/sys/[^k]** w,",
        "deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,",
        "deny @{PROC}/sysrq-trigger rwklx,",
        "deny @{PROC}/kcore rwklx,",
        "deny @{PROC}/mem rwklx,",
        "deny @{PROC}/kmem rwklx,",
        "",
        "deny /sys/[^f]*/** wklx,",
        "deny /sys/f[^s]*/** wklx,",
        "deny /sys/fs/[^c]*/** wklx,",
        "deny /sys/fs/c[^g]*/** wklx,",
        "deny /sys/fs/cg[^r]*/** wklx,",
        "deny /sys/firmware/** rwklx,",
        "deny /sys/devices/virtual/powercap/** rwklx,",
        "deny /sys/kernel/security/** rwklx,",
    ]
    lines += [f"  {b}" if b else "" for b in body]
    lines.append("}")
    return "\n".join(lines) + "\n"


def validate(text: str, parser: str = "apparmor_parser") -> None:
    """Compile the profile without loading it (`apparmor_parser -Q -K`); raises on rejection."""
    exe = shutil.which(parser)
    if exe is None:
        raise DockwardError("apparmor_parser is not installed (apt-get install apparmor)")
    with tempfile.TemporaryDirectory(prefix="dockward-aa-") as tmp:
        path = os.path.join(tmp, "profile")
        Path(path).write_text(text)
        proc = subprocess.run([exe, "-Q", "-K", path], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        first = (proc.stderr or proc.stdout).strip().splitlines()
        raise InputError(
            f"apparmor_parser rejected the profile: {first[0] if first else proc.returncode}"
        )


def apparmor_enabled(path: str = "/sys/module/apparmor/parameters/enabled") -> bool:
    try:
        return Path(path).read_text().strip().upper().startswith("Y")
    except OSError:
        return False


def install(text: str, spec: AppArmorSpec, profile_dir: str = "/etc/apparmor.d/containers") -> str:
    """Write the profile (atomically) and load it with `apparmor_parser -r -W`."""
    if not apparmor_enabled():
        raise DockwardError(
            "this kernel has no AppArmor enabled (/sys/module/apparmor/parameters/enabled): "
            "the profile cannot be loaded here; use `-o FILE` and load it on an AppArmor host"
        )
    validate(text)
    os.makedirs(profile_dir, exist_ok=True)
    path = os.path.join(profile_dir, spec.profile_name)
    atomic_write(path, text, mode=0o644, keep_previous=True)
    proc = subprocess.run(
        ["apparmor_parser", "-r", "-W", path], capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        raise DockwardError(f"apparmor_parser could not load {path}: {proc.stderr.strip()[:300]}")
    return path
