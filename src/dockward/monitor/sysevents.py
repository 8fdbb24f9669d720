"""More syscalls from audit: ptrace, dup, symlink, link, packet sockets, module loads.

Each becomes an event with Falco's names: `evt.type` the syscall, `evt.arg.*` its arguments
(`evt.arg.request` PTRACE_ATTACH, `evt.arg.domain` AF_PACKET, `evt.arg.target`/`linkpath` of a
symlink, `evt.arg.oldpath`/`newpath` of a hard link), `fd.num`/`fd.type` of a dup's new
descriptor, `thread.cap_effective` of a module loader. What audit sees is narrowed in the kernel
to what rules ask about: dups onto fds 0-2 that succeeded, sockets of family AF_PACKET only.
"""

from __future__ import annotations

import os
import posixpath
import time
from typing import Any

# name -> (x86_64, aarch64); None where the architecture has no such syscall.
SYSCALLS: dict[str, tuple[int, int | None]] = {
    "ptrace": (101, 117),
    "dup": (32, 23),
    "dup2": (33, None),
    "dup3": (292, 24),
    "symlink": (88, None),
    "symlinkat": (266, 36),
    "link": (86, None),
    "linkat": (265, 37),
    "socket": (41, 198),
    "init_module": (175, 105),
    "finit_module": (313, 273),
}
DUPS = ("dup", "dup2", "dup3")
AF_PACKET = 17

PTRACE_REQUESTS = {
    0: "PTRACE_TRACEME",
    1: "PTRACE_PEEKTEXT",
    2: "PTRACE_PEEKDATA",
    3: "PTRACE_PEEKUSR",
    4: "PTRACE_POKETEXT",
    5: "PTRACE_POKEDATA",
    6: "PTRACE_POKEUSR",
    7: "PTRACE_CONT",
    8: "PTRACE_KILL",
    9: "PTRACE_SINGLESTEP",
    12: "PTRACE_GETREGS",
    13: "PTRACE_SETREGS",
    16: "PTRACE_ATTACH",
    17: "PTRACE_DETACH",
    24: "PTRACE_SYSCALL",
    0x4200: "PTRACE_SETOPTIONS",
    0x4206: "PTRACE_SEIZE",
    0x4207: "PTRACE_INTERRUPT",
}
ADDRESS_FAMILIES = {1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET"}

CAPABILITIES = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
]


def numbers(machine: str) -> dict[int, str]:
    """syscall number -> name on this machine."""
    col = 0 if machine == "x86_64" else 1
    return {nrs[col]: name for name, nrs in SYSCALLS.items() if nrs[col] is not None}  # type: ignore[misc]


def arg(syscall: dict[str, str], i: int) -> int:
    try:
        return int(syscall.get(f"a{i}", ""), 16)
    except ValueError:
        return -1


def cap_names(mask: int) -> str:
    """Falco's thread.cap_* form: `CAP_CHOWN CAP_SYS_ADMIN ...`."""
    return " ".join(f"CAP_{name}" for bit, name in enumerate(CAPABILITIES) if mask >> bit & 1)


def read_cap_effective(pid: int, proc_root: str = "/proc") -> str | None:
    try:
        with open(f"{proc_root}/{pid}/status", "rb") as f:
            for line in f.read(8192).split(b"\n"):
                if line.startswith(b"CapEff:"):
                    return cap_names(int(line.split()[1], 16))
    except (OSError, ValueError, IndexError):
        return None
    return None


def open_fd_number(
    pid: int, path: str, proc_root: str = "/proc", limit: int = 4096, tries: int = 4
) -> int | None:
    """The descriptor number under which process `pid` has `path` open, or None (closed).

    fanotify reports an open before the kernel installs the descriptor, so a miss is retried
    a few times (5 ms apart) before giving up."""
    for attempt in range(tries):
        try:
            names = os.listdir(f"{proc_root}/{pid}/fd")
        except OSError:
            return None
        for name in names[:limit]:
            try:
                if os.readlink(f"{proc_root}/{pid}/fd/{name}") == path:
                    return int(name)
            except (OSError, ValueError):
                continue
        if attempt + 1 < tries:
            time.sleep(0.005)
    return None


def _socket_family(pid: int, fd: int, proc_root: str) -> tuple[str, str] | None:
    """(fd.type, fd.typechar) of an inet socket descriptor, from /proc/PID/net."""
    try:
        link = os.readlink(f"{proc_root}/{pid}/fd/{fd}")
    except OSError:
        return None
    if not link.startswith("socket:["):
        return ("file", "f") if link.startswith("/") else None
    inode = link[8:-1]
    for table, kind in (("tcp", "ipv4"), ("udp", "ipv4"), ("tcp6", "ipv6"), ("udp6", "ipv6")):
        try:
            with open(f"{proc_root}/{pid}/net/{table}", "rb") as f:
                rows = f.read(1 << 20).split(b"\n")[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[9].decode() == inode:
                return kind, "4" if kind == "ipv4" else "6"
    return "unix", "u"


def _named(paths: list[dict[str, str]], nametype: str) -> str:
    for p in paths:
        if p.get("nametype") == nametype and p.get("name") not in (None, "", "(null)"):
            return p["name"]
    return ""


def syscall_fields(
    name: str,
    syscall: dict[str, str],
    paths: list[dict[str, str]],
    cwd: str,
    proc_root: str = "/proc",
) -> dict[str, Any]:
    """The event fields of one audited syscall (beyond the process's)."""
    pid = int(syscall.get("pid", "0") or 0)
    try:
        res = int(syscall.get("exit", "0"))
    except ValueError:
        res = 0
    out: dict[str, Any] = {"evt.rawres": res}
    if name == "ptrace":
        req = arg(syscall, 0)
        out["evt.arg.request"] = PTRACE_REQUESTS.get(req, str(req))
        out["evt.arg.pid"] = arg(syscall, 1)
    elif name == "socket":
        family = arg(syscall, 0)
        out["evt.arg.domain"] = ADDRESS_FAMILIES.get(family, str(family))
        out["evt.arg.type"] = arg(syscall, 1)
        out["evt.arg.proto"] = arg(syscall, 2)
    elif name in DUPS:
        out["fd.num"] = res
        kind = _socket_family(pid, res, proc_root) if res >= 0 else None
        if kind is not None:
            out["fd.type"], out["fd.typechar"] = kind
    elif name in ("symlink", "symlinkat"):
        linkpath = _named(paths, "CREATE")
        out["evt.arg.linkpath"] = linkpath
        full = linkpath if linkpath.startswith("/") else posixpath.join(cwd or "/", linkpath)
        out["evt.arg.target"] = None  # both gone already: unknown, never a guess
        # `ln -s` has usually exited by now; its parent shares its root and still runs.
        for owner in (pid, int(syscall.get("ppid", "0") or 0)):
            try:
                out["evt.arg.target"] = os.readlink(f"{proc_root}/{owner}/root{full}")
                break
            except OSError:
                continue
    elif name in ("link", "linkat"):
        out["evt.arg.oldpath"] = _named(paths, "NORMAL")
        out["evt.arg.newpath"] = _named(paths, "CREATE")
    elif name in ("init_module", "finit_module"):
        out["thread.cap_effective"] = read_cap_effective(pid, proc_root)
    return out
