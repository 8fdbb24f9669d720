"""More syscalls from audit: ptrace, dup, symlink, link, sockets, accepts, module loads, opens.

Each becomes an event with Falco's names: `evt.type` the syscall, `evt.arg.*` its arguments
(`evt.arg.request` PTRACE_ATTACH, `evt.arg.domain` AF_PACKET, `evt.arg.target`/`linkpath` of a
symlink, `evt.arg.oldpath`/`newpath` of a hard link), `fd.num`/`fd.type` of a dup's new
descriptor, `thread.cap_effective` of a module loader, `fd.l4proto` and both ends of inet
sockets. What audit sees is narrowed in the kernel to what rules ask about: dups onto fds 0-2
that succeeded, sockets of the families in SOCKET_FAMILIES, opens on watched container
filesystems only.
"""

from __future__ import annotations

import os
import posixpath
import socket
import struct
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
    "accept": (43, 202),
    "accept4": (288, 242),
    "init_module": (175, 105),
    "finit_module": (313, 273),
}
DUPS = ("dup", "dup2", "dup3")
# Opens, audited per container filesystem (not host-wide): name -> (x86_64, aarch64).
OPENS: dict[str, tuple[int, int | None]] = {
    "open": (2, None),
    "openat": (257, 56),
    "openat2": (437, 437),
    "creat": (85, None),
}
# Falco's evt.arg.flags names of open(2) flags (the access mode is named separately).
OPEN_FLAGS = (
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o40000, "O_DIRECT"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o2000000, "O_CLOEXEC"),
    (0o4000000, "O_SYNC"),
    (0o20000000, "O_PATH"),
    (0o20200000, "O_TMPFILE"),
)
AF_PACKET = 17
AF_INET, AF_INET6 = 2, 10
# Socket families audited (one kernel rule each): the ones Falco's rules ask about.
SOCKET_FAMILIES = (AF_INET, AF_INET6, AF_PACKET)
SOCK_STREAM, SOCK_DGRAM, SOCK_RAW = 1, 2, 3
IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6 = 1, 6, 17, 58

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


def open_numbers(machine: str) -> dict[int, str]:
    col = 0 if machine == "x86_64" else 1
    return {nrs[col]: name for name, nrs in OPENS.items() if nrs[col] is not None}  # type: ignore[misc]


def open_flag_names(flags: int) -> str:
    """open(2) flags as Falco prints evt.arg.flags: `O_TRUNC|O_CREAT|O_WRONLY`."""
    names = [name for bit, name in OPEN_FLAGS if flags & bit == bit]
    if "O_TMPFILE" in names:
        names.remove("O_DIRECTORY")
    mode = flags & 3
    names.append({0: "O_RDONLY", 1: "O_WRONLY", 2: "O_RDWR"}.get(mode, "O_ACCMODE"))
    return "|".join(names)


def open_call_flags(name: str, syscall: dict[str, str], openat2_flags: int | None) -> int | None:
    """The flags argument of an open-family call (creat: O_CREAT|O_WRONLY|O_TRUNC)."""
    if name == "creat":
        return 0o1101
    if name == "openat2":
        return openat2_flags
    value = arg(syscall, 1 if name == "open" else 2)
    return value if value >= 0 else None


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


def root_exec_caps(parent: int, proc_root: str = "/proc") -> str | None:
    """The effective capabilities a root (euid 0) process has after executing a program,
    from the parent it was forked from: the kernel gives it P.inheritable | P.bounding (both
    inherited unchanged from that parent; capabilities(7), "Capabilities and execution of
    programs by root"). For a loader gone before its own /proc entry could be read."""
    try:
        with open(f"{proc_root}/{parent}/status", "rb") as f:
            found = {}
            for line in f.read(8192).split(b"\n"):
                if line.startswith((b"CapInh:", b"CapBnd:")):
                    found[line[:6]] = int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        return None
    if len(found) != 2:
        return None
    return cap_names(found[b"CapInh"] | found[b"CapBnd"])


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


def l4proto(sock_type: int, proto: int) -> str | None:
    """Falco's fd.l4proto of an inet socket from socket(2)'s type and protocol arguments."""
    base = sock_type & 0xF  # without SOCK_NONBLOCK / SOCK_CLOEXEC
    if proto == IPPROTO_TCP or (base == SOCK_STREAM and proto == 0):
        return "tcp"
    if proto == IPPROTO_UDP or (base == SOCK_DGRAM and proto == 0):
        return "udp"
    if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        return "icmp"
    if base == SOCK_RAW:
        return "raw"
    return None


def socket_of_fd(pid: int, fd: int, proc_root: str = "/proc") -> dict[str, Any]:
    """fd.type, fd.l4proto and the local end (fd.lip, fd.lport) of an inet socket descriptor
    the process still holds, from /proc/PID/net; {} when it is gone or not an inet socket."""
    try:
        link = os.readlink(f"{proc_root}/{pid}/fd/{fd}")
    except OSError:
        return {}
    if not link.startswith("socket:["):
        return {}
    inode = link[8:-1].encode()
    tables = (("tcp", "ipv4", "tcp"), ("udp", "ipv4", "udp"), ("tcp6", "ipv6", "tcp"),
              ("udp6", "ipv6", "udp"), ("raw", "ipv4", "raw"), ("raw6", "ipv6", "raw"))  # fmt: skip
    for table, kind, proto in tables:
        try:
            with open(f"{proc_root}/{pid}/net/{table}", "rb") as f:
                rows = f.read(1 << 20).split(b"\n")[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[9] == inode:
                out: dict[str, Any] = {
                    "fd.type": kind,
                    "fd.typechar": "4" if kind == "ipv4" else "6",
                    "fd.sockfamily": "ip",
                    "fd.l4proto": proto,
                }
                local = _proc_net_address(cols[1].decode(), kind)
                if local is not None:
                    out["fd.lip"], out["fd.lport"] = local
                return out
    return {}


def _proc_net_address(text: str, kind: str) -> tuple[str, int] | None:
    """`0100007F:1F90` (/proc/net/tcp: the address in host byte order, 32-bit words) ->
    ('127.0.0.1', 8080)."""
    addr, _, port = text.partition(":")
    try:
        raw = bytes.fromhex(addr)
        words = struct.unpack(f"={len(raw) // 4}I", raw)
        packed = struct.pack(f"!{len(words)}I", *words)
        family = socket.AF_INET if kind == "ipv4" else socket.AF_INET6
        return socket.inet_ntop(family, packed), int(port, 16)
    except (ValueError, struct.error, OSError):
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
        out["fd.num"] = res
        if family in (AF_INET, AF_INET6):
            ip = "ipv4" if family == AF_INET else "ipv6"
            out["fd.type"], out["fd.typechar"] = ip, ip[-1]
            out["fd.sockfamily"] = "ip"
            proto = l4proto(out["evt.arg.type"], out["evt.arg.proto"])
            if proto is not None:
                out["fd.l4proto"] = proto
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
