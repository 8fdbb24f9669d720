"""The fields rules may use: Falco's names, their types, and which dockward source provides them.

An event is a plain dict keyed by these names (filled once by the source), so a compiled check
is one dict lookup. Fields Falco knows but no dockward source fills are listed separately, so a
rule that needs one is disabled with a warning that says so, not silently never matched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockward.errors import DockwardError

Event = dict[str, Any]
Accessor = Callable[[Event], Any]

STRING, NUMBER, BOOL, LIST = "string", "number", "bool", "list"
# Addresses compared as addresses (`fd.ip = 10.0.0.1`) and networks (`fd.net = 127.0.0.0/8`):
# the value of such a field is the tuple of the connection ends it covers.
IP, NET = "ip", "net"

SYSCALL, DOCKER, DOCKWARD = "syscall", "docker", "dockward"
SOURCES = frozenset({SYSCALL, DOCKER, DOCKWARD})

_CONTAINER = {
    "container.id": STRING,
    "container.full_id": STRING,
    "container.name": STRING,
    "container.image": STRING,
    "container.image.id": STRING,
    "container.image.repository": STRING,
    "container.image.tag": STRING,
    "container.privileged": BOOL,
    "container.mounts": LIST,
    "container.user": STRING,
    "container.cap_add": LIST,
    "container.network_mode": STRING,
    "container.pid_mode": STRING,
    "container.ipc_mode": STRING,
    "container.labels": LIST,
    "container.type": STRING,
    # dockward: ids of the shared container rules (DW-C...) this container fails.
    "container.failed_rules": LIST,
}

_COMMON = {
    "evt.type": STRING,
    "evt.time": NUMBER,
    "evt.time.s": STRING,
    "evt.hostname": STRING,
    "evt.source": STRING,
    "evt.num": NUMBER,
}

_SYSCALL = {
    "evt.dir": STRING,
    "evt.res": STRING,
    "evt.rawres": NUMBER,
    "evt.is_open_read": BOOL,
    "evt.is_open_write": BOOL,
    "evt.is_open_exec": BOOL,
    "proc.pid": NUMBER,
    "proc.vpid": NUMBER,
    "proc.ppid": NUMBER,
    "proc.name": STRING,
    "proc.exe": STRING,
    "proc.exepath": STRING,
    "proc.cmdline": STRING,
    "proc.args": STRING,
    "proc.pname": STRING,
    "proc.pexepath": STRING,
    "proc.pexe": STRING,
    "proc.pcmdline": STRING,
    "proc.aname": LIST,
    "proc.apid": LIST,
    "proc.tty": NUMBER,
    "proc.cwd": STRING,
    # dockward: the script file an interpreter runs (`sh /tmp/x.sh`), absolute when cwd is known.
    "proc.script": STRING,
    "proc.is_exe_from_memfd": BOOL,
    "proc.is_exe_upper_layer": BOOL,
    "proc.is_container_healthcheck": BOOL,
    "user.uid": NUMBER,
    "user.name": STRING,
    "user.loginuid": NUMBER,
    "user.loginname": STRING,
    "group.gid": NUMBER,
    "fd.name": STRING,
    "fd.directory": STRING,
    "fd.filename": STRING,
    "fd.type": STRING,
    "fd.typechar": STRING,
    "fd.sip": STRING,
    "fd.sport": NUMBER,
    "fd.rip": STRING,
    "fd.rport": NUMBER,
    "fd.sockfamily": STRING,
    "fd.l4proto": STRING,
    "fd.lip": STRING,
    "fd.lport": NUMBER,
    "fd.cip": STRING,
    "fd.cport": NUMBER,
    # From the audit syscalls of sysevents.py: dup's new descriptor, syscall arguments, caps.
    "fd.num": NUMBER,
    "fd.nameraw": STRING,
    "evt.arg.request": STRING,
    "evt.arg.pid": NUMBER,
    "evt.arg.domain": STRING,
    "evt.arg.type": NUMBER,
    "evt.arg.proto": NUMBER,
    "evt.arg.target": STRING,
    "evt.arg.linkpath": STRING,
    "evt.arg.oldpath": STRING,
    "evt.arg.newpath": STRING,
    "evt.arg.flags": STRING,
    "thread.cap_effective": STRING,
}

_DOCKER = {
    "docker.type": STRING,
    "docker.action": STRING,
    "docker.exec.cmdline": STRING,
    "docker.exec.tty": BOOL,
    "docker.exec.user": STRING,
    "docker.exec.privileged": BOOL,
    "docker.exec.healthcheck": BOOL,
    "docker.actor.id": STRING,
    "docker.image": STRING,
}

_DOCKWARD = {
    "dockward.output": STRING,
    "dockward.dropped": NUMBER,
    "falco.rule": STRING,
    "falco.priority": STRING,
    "falco.output": STRING,
}

# Falco fields dockward's sources do not fill: a rule using one is reported as unsupported.
UNSUPPORTED = frozenset(
    {
        "fd.ino",
        "fd.dev",
        "evt.args",
        "evt.arg",
        "evt.category",
        "evt.is_io",
        "proc.env",
        "proc.is_exe_writable",
        "proc.is_container_liveness_probe",
        "proc.is_container_readiness_probe",
        "proc.stdin.type",
        "proc.stdout.type",
        "proc.stdin.name",
        "proc.stdout.name",
        "proc.fd.name",
        "thread.cap_permitted",
        "thread.cap_inheritable",
        "fs.path.name",
        "fs.path.source",
        "fs.path.target",
        "container.mount.dest",
        "k8s.ns.name",
        "k8s.pod.name",
        "ka.verb",
        "ka.target.resource",
        "ka.user.name",
        "k8smeta.pod.name",
        "k8smeta.ns.name",
        "evt.buffer",
        "evt.rawarg",
        "proc.exe_ino",
        "proc.exe_ino.ctime",
        "proc.exe_ino.mtime",
        "proc.exe_ino.ctime_duration_proc_start",
        "proc.sname",
        "proc.duration",
        "proc.aexepath",
        "proc.vpgid",
        "fd.sip.name",
        "fd.connected",
        "fd.name_changed",
        "fd.types",
        "container.start_ts",
        "container.image.digest",
        "group.name",
    }
)

# The event types each source produces: a rule that can only match others never fires, so it
# is disabled with a warning instead of loading silently.
PRODUCED_TYPES: dict[str, frozenset[str] | None] = {
    SYSCALL: frozenset(
        {
            "execve",
            "execveat",
            "openat",
            "connect",
            "ptrace",
            "dup",
            "dup2",
            "dup3",
            "symlink",
            "symlinkat",
            "link",
            "linkat",
            "socket",
            "accept",
            "accept4",
            "init_module",
            "finit_module",
        }
    ),
    DOCKER: None,  # every engine event action
    DOCKWARD: frozenset({"dropped"}),
}


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: str
    type: str
    sources: frozenset[str]


def _build() -> dict[str, FieldDef]:
    out: dict[str, FieldDef] = {}
    for table, sources in (
        (_COMMON, SOURCES),
        (_CONTAINER, frozenset({SYSCALL, DOCKER, DOCKWARD})),
        (_SYSCALL, frozenset({SYSCALL})),
        (_DOCKER, frozenset({DOCKER})),
        (_DOCKWARD, frozenset({DOCKWARD})),
    ):
        for name, kind in table.items():
            out[name] = FieldDef(name, kind, sources)
    return out


FIELDS: dict[str, FieldDef] = _build()

# Falco's fd.ip and fd.net match either end of the connection (client or server); fd.snet etc.
# one end. Derived from fd.cip/fd.sip/fd.lip/fd.rip when the event has them.
_ENDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "fd.ip": (IP, ("fd.cip", "fd.sip")),
    "fd.net": (NET, ("fd.cip", "fd.sip")),
    "fd.cnet": (NET, ("fd.cip",)),
    "fd.snet": (NET, ("fd.sip",)),
    "fd.lnet": (NET, ("fd.lip",)),
    "fd.rnet": (NET, ("fd.rip",)),
}
for _name, (_kind, _) in _ENDS.items():
    FIELDS[_name] = FieldDef(_name, _kind, frozenset({SYSCALL}))


def _ends(keys: tuple[str, ...]) -> Accessor:
    def get(ev: Event) -> Any:
        found = tuple(v for k in keys if (v := ev.get(k)))
        return found or None

    return get


# Fields that take an argument: `proc.aname[2]`, `container.mount.dest[/var/run/docker.sock]`.
INDEXED = {
    "proc.aname": STRING,
    "proc.apid": NUMBER,
    "container.mount.dest": STRING,
    "container.mount.source": STRING,
    "container.label": STRING,
}


class FieldError(DockwardError, ValueError):
    """A field the rule language cannot resolve for a source."""


def _ancestor(field: str, n: int) -> Accessor:
    def get(ev: Event) -> Any:
        chain = ev.get(field)
        if chain is None or n >= len(chain) + 1:
            return None
        if n == 0:
            return ev.get("proc.name" if field == "proc.aname" else "proc.pid")
        return chain[n - 1]

    return get


def _mount(key: str, by: str) -> Accessor:
    # Falco: container.mount.dest[SOURCE] is the destination of the mount whose source is SOURCE.
    want_index = key.isdigit()

    def get(ev: Event) -> Any:
        mounts = ev.get("container.mount_list")
        if not mounts:
            return None
        if want_index:
            i = int(key)
            return mounts[i][by] if i < len(mounts) else None
        other = "source" if by == "dest" else "dest"
        for m in mounts:
            if m[other] == key:
                return m[by]
        return None

    return get


def _label(key: str) -> Accessor:
    def get(ev: Event) -> Any:
        labels = ev.get("container.label_map")
        return None if labels is None else labels.get(key)

    return get


def resolve(name: str, arg: str | None, source: str) -> tuple[Accessor, str]:
    """The accessor and type of a field (with its `[arg]`), or FieldError naming it."""
    if arg is not None:
        if name not in INDEXED:
            if name in UNSUPPORTED or name.startswith("evt.arg"):
                raise FieldError(f"field {name}[{arg}] is not provided by dockward's sources")
            raise FieldError(f"unknown field {name}[{arg}]")
        kind = INDEXED[name]
        if name in ("proc.aname", "proc.apid"):
            if not arg.isdigit():
                raise FieldError(f"field {name}[{arg}] needs a number")
            _check_source(name, "proc.aname" if name == "proc.aname" else "proc.apid", source)
            return _ancestor(name, int(arg)), kind
        if name == "container.label":
            return _label(arg), kind
        by = "dest" if name == "container.mount.dest" else "source"
        return _mount(arg, by), kind
    fdef = FIELDS.get(name)
    if fdef is None:
        if name in UNSUPPORTED or name.startswith("evt.arg.") or name.startswith("k8s."):
            raise FieldError(f"field {name} is not provided by dockward's sources")
        raise FieldError(f"unknown field {name}")
    _check_source(name, name, source)
    if name in _ENDS:
        return _ends(_ENDS[name][1]), fdef.type

    def get(ev: Event, _k: str = name) -> Any:
        return ev.get(_k)

    # dict.get bound to the key is faster than a Python-level closure; callers use it as-is.
    return get, fdef.type


def _check_source(display: str, name: str, source: str) -> None:
    fdef = FIELDS.get(name)
    if fdef is not None and source not in fdef.sources:
        raise FieldError(f"field {display} is not available for source {source}")
