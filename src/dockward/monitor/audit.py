"""Linux audit over netlink: execve (with its argv) and connect, for every process.

Why audit for exec: the proc connector reports a pid in the middle of execve, when /proc does not
show the new command line yet, and a short-lived process is often gone before it can be read.
The audit EXECVE record carries argv from the kernel itself, so every exec keeps its command
line. dockward installs two syscall rules (key `dockward-monitor`), reads records through the
read-only multicast group (never registering as the audit daemon, which another tool may be),
and removes its rules and restores the audit settings it changed on exit.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dockward.errors import DockwardError
from dockward.monitor.sysevents import DUPS, SOCKET_FAMILIES, numbers

NETLINK_AUDIT = 9
AUDIT_NLGRP_READLOG = 1
AUDIT_GET = 1000
AUDIT_SET = 1001
AUDIT_ADD_RULE = 1011
AUDIT_DEL_RULE = 1012
AUDIT_LIST_RULES = 1013
NLMSG_DONE = 3
AUDIT_SYSCALL = 1300
AUDIT_PATH = 1302
AUDIT_SOCKADDR = 1306
AUDIT_CWD = 1307
AUDIT_EXECVE = 1309
AUDIT_EOE = 1320
AUDIT_OPENAT2 = 1337
AUDIT_PROCTITLE = 1327
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
NLM_F_ACK = 4

AUDIT_STATUS_ENABLED = 0x1
AUDIT_STATUS_BACKLOG_LIMIT = 0x10
AUDIT_FILTER_EXIT = 0x04
AUDIT_ALWAYS = 2
AUDIT_PID = 0
AUDIT_ARCH = 11
AUDIT_DEVMAJOR = 100
AUDIT_DEVMINOR = 101
AUDIT_SUCCESS = 104
AUDIT_FILTERKEY = 210
AUDIT_EQUAL = 0x40000000
AUDIT_NOT_EQUAL = 0x30000000
KEY = "dockward-monitor"
# Bounds on what one exec may cost in memory and in rule matching (argv is attacker-chosen).
MAX_ARGS = 256
MAX_ARG = 4096

# (audit arch, execve, execveat, connect) per machine.
ARCHES = {
    "x86_64": (0xC000003E, 59, 322, 42),
    "aarch64": (0xC00000B7, 221, 281, 203),
}

_NLMSG = struct.Struct("=IHHII")
_STATUS = struct.Struct("=10I")
_PAIR = re.compile(r'(\w+(?:\[\d+\])?)=("(?:[^"]*)"|\S*)')
_HEAD = re.compile(r"audit\((\d+)\.(\d+):(\d+)\):\s?")


AUDIT_EXIT = 103
AUDIT_ARG0 = 200
AUDIT_LESS_THAN_OR_EQUAL = 0x50000000


def rule_payload(
    syscalls: list[int],
    arch: int,
    success_only: bool,
    exclude_pid: int,
    key: str = KEY,
    extra: tuple[tuple[int, int, int], ...] = (),
) -> bytes:
    """A `struct audit_rule_data` for `-a always,exit -F arch=.. -S .. [-F success=1]
    [-F field op value ...] -k key`."""
    mask = [0] * 64
    for nr in syscalls:
        mask[nr // 32] |= 1 << (nr % 32)
    fields = [(AUDIT_ARCH, arch, AUDIT_EQUAL)]
    if success_only:
        fields.append((AUDIT_SUCCESS, 1, AUDIT_EQUAL))
    fields.extend(extra)
    if exclude_pid:
        fields.append((AUDIT_PID, exclude_pid, AUDIT_NOT_EQUAL))
    keyb = key.encode()
    fields.append((AUDIT_FILTERKEY, len(keyb), AUDIT_EQUAL))
    f = [x[0] for x in fields] + [0] * (64 - len(fields))
    v = [x[1] for x in fields] + [0] * (64 - len(fields))
    ff = [x[2] for x in fields] + [0] * (64 - len(fields))
    head = struct.pack("=3I", AUDIT_FILTER_EXIT, AUDIT_ALWAYS, len(fields))
    body = struct.pack("=64I", *mask) + struct.pack("=64I", *f)
    body += struct.pack("=64I", *v) + struct.pack("=64I", *ff)
    return head + body + struct.pack("=I", len(keyb)) + keyb


def unhex(value: str) -> str:
    if value.startswith('"') and value.endswith('"'):
        return value[1:-1]
    if value in ("(null)", "(none)", "?"):
        return value
    try:
        return bytes.fromhex(value).decode("utf-8", "replace")
    except ValueError:
        return value


def parse_pairs(text: str) -> dict[str, str]:
    return {k: v for k, v in _PAIR.findall(text)}


@dataclass
class AuditEvent:
    """The records of one audited syscall, joined by serial number."""

    serial: int
    time_ns: int
    syscall: dict[str, str] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    cwd: str = ""
    sockaddr: str = ""
    paths: list[dict[str, str]] = field(default_factory=list)
    open_flags: int | None = None  # openat2's how.flags (its OPENAT2 record)
    seen: float = 0.0

    def add(self, rtype: int, text: str) -> None:
        match rtype:
            case 1300:
                self.syscall = parse_pairs(text)
            case 1309:
                self._argv(parse_pairs(text))
            case 1307:
                self.cwd = unhex(parse_pairs(text).get("cwd", ""))
            case 1306:
                self.sockaddr = parse_pairs(text).get("saddr", "")
            case 1302:
                pairs = parse_pairs(text)
                if len(self.paths) < 8:
                    self.paths.append(
                        {
                            "name": unhex(pairs.get("name", "")),
                            "nametype": pairs.get("nametype", ""),
                            "inode": pairs.get("inode", ""),
                            "dev": pairs.get("dev", ""),
                            "mode": pairs.get("mode", ""),
                        }
                    )
            case 1337:
                with contextlib.suppress(ValueError):
                    self.open_flags = int(parse_pairs(text).get("oflag", ""), 8)
            case _:
                pass

    def _argv(self, pairs: dict[str, str]) -> None:
        # Long arguments come split: a1_len=N a1[0]=.. a1[1]=.. (hex, possibly over records).
        parts: dict[int, list[tuple[int, str]]] = {}
        for k, v in pairs.items():
            m = re.fullmatch(r"a(\d+)(?:\[(\d+)\])?", k)
            if m:
                parts.setdefault(int(m.group(1)), []).append((int(m.group(2) or 0), v))
        for idx in sorted(parts):
            chunks = sorted(parts[idx])
            if len(chunks) == 1 and chunks[0][1].startswith('"'):
                text = unhex(chunks[0][1])
            else:
                text = unhex("".join(c[1] for c in chunks))
            if idx >= MAX_ARGS:
                continue
            while len(self.argv) <= idx:
                self.argv.append("")
            self.argv[idx] = (self.argv[idx] + text if len(chunks) > 1 else text)[:MAX_ARG]


def parse_record(data: bytes) -> tuple[int, int, int, str] | None:
    """(type, serial, time_ns, text) of one netlink audit message."""
    if len(data) < _NLMSG.size:
        return None
    length, rtype, _f, _s, _p = _NLMSG.unpack_from(data)
    text = data[_NLMSG.size : length].decode("utf-8", "replace").rstrip("\0")
    m = _HEAD.match(text)
    if not m:
        return None
    secs, millis, serial = int(m.group(1)), int(m.group(2)), int(m.group(3))
    return rtype, serial, secs * 1_000_000_000 + millis * 1_000_000, text[m.end() :]


def decode_sockaddr(hexaddr: str) -> dict[str, object]:
    """An audit SOCKADDR saddr (hex struct sockaddr) -> Falco fd.* fields."""
    try:
        raw = bytes.fromhex(hexaddr)
    except ValueError:
        return {}
    if len(raw) < 2:
        return {}
    family = struct.unpack_from("=H", raw)[0]
    if family == socket.AF_INET and len(raw) >= 8:
        port = struct.unpack_from("!H", raw, 2)[0]
        ip = socket.inet_ntop(socket.AF_INET, raw[4:8])
        return _inet(ip, port, "ipv4", "4")
    if family == socket.AF_INET6 and len(raw) >= 24:
        port = struct.unpack_from("!H", raw, 2)[0]
        ip = socket.inet_ntop(socket.AF_INET6, raw[8:24])
        return _inet(ip, port, "ipv6", "6")
    if family == socket.AF_UNIX:
        path = raw[2:].split(b"\0", 1)[0] if raw[2:3] != b"\0" else b"@" + raw[3:].rstrip(b"\0")
        return {
            "fd.name": path.decode("utf-8", "replace"),
            "fd.type": "unix",
            "fd.typechar": "u",
            "fd.sockfamily": "unix",
        }
    return {}


def _inet(ip: str, port: int, kind: str, char: str) -> dict[str, object]:
    return {
        "fd.name": f"{ip}:{port}",
        "fd.sip": ip,
        "fd.sport": port,
        "fd.rip": ip,
        "fd.rport": port,
        "fd.type": kind,
        "fd.typechar": char,
        "fd.sockfamily": "ip",
    }


def tty_number(tty: str) -> int:
    """Audit's `tty=pts3` -> the tty_nr Falco shows (0: none)."""
    if tty.startswith("pts") and tty[3:].isdigit():
        n = int(tty[3:])
        return ((136 + n // 256) << 8) | (n % 256)
    if tty.startswith("tty") and tty[3:].isdigit():
        return (4 << 8) | int(tty[3:])
    return 0


class Audit:
    """Installs dockward's audit rules, reads records, and undoes its changes on close."""

    def __init__(self, connect: bool = True, more: bool = True) -> None:
        machine = os.uname().machine
        if machine not in ARCHES:
            raise DockwardError(f"audit: unsupported architecture {machine}")
        self.arch, execve, execveat, connect_nr = ARCHES[machine]
        try:
            self.ctl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
            self.ctl.bind((0, 0))
            self.ctl.settimeout(2.0)
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
            self.sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
            self.sock.bind((0, 1 << (AUDIT_NLGRP_READLOG - 1)))
        except OSError as exc:
            raise DockwardError(f"audit: cannot open the audit netlink socket: {exc}") from exc
        self._seq = 0
        self._ctl_lock = threading.Lock()
        self._closed = False
        self.lost = 0
        self._prev = self.status()
        self._rules: list[bytes] = []
        self._devices: dict[int, bytes] = {}
        self._own_pid = os.getpid()
        # Rules of a monitor that died without cleaning up stay in the kernel: take them over.
        self.stale = self._remove_stale()
        self._install(rule_payload([execve, execveat], self.arch, True, 0))
        if connect:
            self._install(rule_payload([connect_nr], self.arch, False, 0))
        if more:
            self._install_more(machine)
        changes = AUDIT_STATUS_ENABLED
        if self._prev[5] < 8192:
            changes |= AUDIT_STATUS_BACKLOG_LIMIT
        self._set(changes, enabled=1, backlog_limit=max(8192, self._prev[5]))

    def _install_more(self, machine: str) -> None:
        """ptrace, links, module loads, accepts; dups onto fds 0-2; sockets of the families in
        SOCKET_FAMILIES (sysevents.py)."""
        by_name = {name: nr for nr, name in numbers(machine).items()}
        plain = [by_name[n] for n in by_name if n not in DUPS and n != "socket"]
        self._install(rule_payload(plain, self.arch, False, 0))
        dups = [by_name[n] for n in DUPS if n in by_name]
        onto_std = ((AUDIT_EXIT, 2, AUDIT_LESS_THAN_OR_EQUAL),)
        self._install(rule_payload(dups, self.arch, True, 0, extra=onto_std))
        for family in SOCKET_FAMILIES:
            only = ((AUDIT_ARG0, family, AUDIT_EQUAL),)
            self._install(rule_payload([by_name["socket"]], self.arch, False, 0, extra=only))

    def watch_device(self, dev: int, syscalls: list[int]) -> bool:
        """Audit `syscalls` that succeed on inodes of one filesystem (a container's overlay, by
        its st_dev): the open's own record then carries the descriptor it returned and its
        flags. One rule per filesystem, removed with the others on close."""
        extra = ((AUDIT_DEVMAJOR, os.major(dev), AUDIT_EQUAL),
                 (AUDIT_DEVMINOR, os.minor(dev), AUDIT_EQUAL))  # fmt: skip
        rule = rule_payload(syscalls, self.arch, True, self._own_pid, extra=extra)
        # Under the lock close() takes first: a container inspected while the monitor stops
        # never leaves a rule behind.
        with self._ctl_lock:
            if self._closed:
                return False
            if dev in self._devices:
                return True
            try:
                self._request_locked(AUDIT_ADD_RULE, rule)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    return False
            self._rules.append(rule)
            self._devices[dev] = rule
        return True

    def unwatch_device(self, dev: int) -> None:
        rule = self._devices.pop(dev, None)
        if rule is not None:
            with contextlib.suppress(OSError, ValueError):
                self._request(AUDIT_DEL_RULE, rule)
                self._rules.remove(rule)

    def _request(self, mtype: int, payload: bytes) -> bytes:
        with self._ctl_lock:
            return self._request_locked(mtype, payload)

    def _request_locked(self, mtype: int, payload: bytes) -> bytes:
        self._seq += 1
        msg = _NLMSG.pack(
            _NLMSG.size + len(payload), mtype, NLM_F_REQUEST | NLM_F_ACK, self._seq, 0
        )
        self.ctl.send(msg + payload)
        while True:
            data = self.ctl.recv(65536)
            _len, rtype, _f, seq, _p = _NLMSG.unpack_from(data)
            if seq != self._seq:
                continue
            if rtype == NLMSG_ERROR:
                err = -struct.unpack_from("=i", data, _NLMSG.size)[0]
                if err:
                    raise OSError(err, os.strerror(err))
                if mtype != AUDIT_GET:
                    return b""
                continue
            return data[_NLMSG.size :]

    def _remove_stale(self) -> int:
        """Delete audit rules carrying dockward's key (AUDIT_LIST_RULES, then AUDIT_DEL_RULE)."""
        self._seq += 1
        flags = NLM_F_REQUEST | 0x300  # NLM_F_DUMP
        self.ctl.send(_NLMSG.pack(_NLMSG.size, AUDIT_LIST_RULES, flags, self._seq, 0))
        found: list[bytes] = []
        done = False
        while not done:
            try:
                data = self.ctl.recv(1 << 16)
            except OSError:
                break
            off = 0
            while off + _NLMSG.size <= len(data):
                length, rtype, _f, _s, _p = _NLMSG.unpack_from(data, off)
                if rtype in (NLMSG_ERROR, NLMSG_DONE) or length < _NLMSG.size:
                    done = True
                    break
                body = data[off + _NLMSG.size : off + length]
                if rtype == AUDIT_LIST_RULES and body.endswith(KEY.encode()):
                    found.append(body)
                off += (length + 3) & ~3
        for body in found:
            with contextlib.suppress(OSError):
                self._request(AUDIT_DEL_RULE, body)
        return len(found)

    def status(self) -> tuple[int, ...]:
        try:
            data = self._request(AUDIT_GET, b"")
        except OSError as exc:
            raise DockwardError(f"audit: cannot read the audit status: {exc.strerror}") from exc
        return _STATUS.unpack_from(data.ljust(_STATUS.size, b"\0"))

    def _set(self, mask: int, enabled: int = 0, backlog_limit: int = 0) -> None:
        payload = _STATUS.pack(mask, enabled, 0, 0, 0, backlog_limit, 0, 0, 0, 0)
        try:
            self._request(AUDIT_SET, payload)
        except OSError as exc:
            self.close()
            raise DockwardError(f"audit: cannot enable auditing: {exc.strerror}") from exc

    def _install(self, rule: bytes) -> None:
        try:
            self._request(AUDIT_ADD_RULE, rule)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                self.close()
                raise DockwardError(f"audit: cannot add a rule: {exc.strerror}") from exc
        self._rules.append(rule)

    def run(self, handle: Callable[[AuditEvent], None], stop: threading.Event) -> None:
        pending: dict[int, AuditEvent] = {}
        while not stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            now = time.monotonic()
            if ready:
                try:
                    data = self.sock.recv(1 << 16)
                except OSError as exc:
                    if exc.errno == errno.ENOBUFS:
                        self.lost += 1
                        continue
                    raise
                rec = parse_record(data)
                if rec is not None:
                    rtype, serial, ts, text = rec
                    ev = pending.get(serial)
                    if ev is None:
                        ev = pending[serial] = AuditEvent(serial, ts, seen=now)
                    if rtype == AUDIT_EOE:
                        del pending[serial]
                        if ev.syscall:
                            handle(ev)
                    else:
                        ev.add(rtype, text)
            # Records without an EOE (or whose EOE was lost): flush after 100 ms.
            for serial in [s for s, e in pending.items() if now - e.seen > 0.1]:
                ev = pending.pop(serial)
                if ev.syscall:
                    handle(ev)

    def close(self) -> None:
        lock = getattr(self, "_ctl_lock", None)
        if lock is not None:
            with lock:
                self._closed = True
        for rule in list(self._rules):
            with contextlib.suppress(OSError):
                self._request(AUDIT_DEL_RULE, rule)
        self._rules = []
        prev = getattr(self, "_prev", None)
        if prev is not None:
            with contextlib.suppress(OSError):
                self._request(
                    AUDIT_SET,
                    _STATUS.pack(
                        AUDIT_STATUS_ENABLED | AUDIT_STATUS_BACKLOG_LIMIT,
                        prev[1],
                        0,
                        0,
                        0,
                        prev[5],
                        0,
                        0,
                        0,
                        0,
                    ),
                )
            self._prev = None  # type: ignore[assignment]
        for s in (getattr(self, "sock", None), getattr(self, "ctl", None)):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()
