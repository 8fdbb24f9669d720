"""The kernel's process-events connector (netlink): fork, exec and exit of every process.

No driver or BPF program: the connector has been in mainline since 2.6.15. It reports pids only,
so exec events are enriched from /proc at once (see procs.py) and attributed to a container
through the process's cgroup.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from dockward.errors import DockwardError

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
NLMSG_DONE = 3
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2

PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_EXIT = 0x80000000

_NLMSG = struct.Struct("=IHHII")
_CNMSG = struct.Struct("=IIIIHH")
_EVENT_HEAD = struct.Struct("=IIQ")
_FORK = struct.Struct("=IIII")
_EXEC = struct.Struct("=II")
_EXIT = struct.Struct("=IIII")
RCVBUF = 16 * 1024 * 1024
SO_RCVBUFFORCE = 33  # not exported by the socket module


@dataclass(frozen=True, slots=True)
class ProcEvent:
    kind: str  # fork, exec, exit
    pid: int
    tgid: int
    timestamp_ns: int
    parent_tgid: int = 0
    exit_code: int = 0


def parse_messages(data: bytes) -> list[ProcEvent]:
    """Netlink datagram(s) from the connector -> events (threads are left out)."""
    out: list[ProcEvent] = []
    offset = 0
    while offset + _NLMSG.size <= len(data):
        length, _type, _flags, _seq, _pid = _NLMSG.unpack_from(data, offset)
        if length < _NLMSG.size:
            break
        body = offset + _NLMSG.size
        if body + _CNMSG.size + _EVENT_HEAD.size <= len(data):
            idx, val, _s, _a, _len, _f = _CNMSG.unpack_from(data, body)
            if idx == CN_IDX_PROC and val == CN_VAL_PROC:
                ev = body + _CNMSG.size
                what, _cpu, ts = _EVENT_HEAD.unpack_from(data, ev)
                payload = ev + _EVENT_HEAD.size
                if what == PROC_EVENT_FORK and payload + _FORK.size <= len(data):
                    _ppid, ptgid, cpid, ctgid = _FORK.unpack_from(data, payload)
                    if cpid == ctgid:
                        out.append(ProcEvent("fork", cpid, ctgid, ts, parent_tgid=ptgid))
                elif what == PROC_EVENT_EXEC and payload + _EXEC.size <= len(data):
                    pid, tgid = _EXEC.unpack_from(data, payload)
                    out.append(ProcEvent("exec", pid, tgid, ts))
                elif what == PROC_EVENT_EXIT and payload + _EXIT.size <= len(data):
                    pid, tgid, code, _sig = _EXIT.unpack_from(data, payload)
                    if pid == tgid:
                        out.append(ProcEvent("exit", pid, tgid, ts, exit_code=code))
        offset += (length + 3) & ~3
    return out


def _control(op: int) -> bytes:
    payload = struct.pack("=I", op)
    cn = _CNMSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0)
    size = _NLMSG.size + len(cn) + len(payload)
    return _NLMSG.pack(size, NLMSG_DONE, 0, 0, os.getpid()) + cn + payload


class ProcConnector:
    """Subscribes to process events; `run(handle, stop)` reads until `stop` is set."""

    def __init__(self) -> None:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        except OSError as exc:
            raise DockwardError(f"proc connector: cannot open netlink socket: {exc}") from exc
        try:
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            sock.bind((0, CN_IDX_PROC))
            sock.send(_control(PROC_CN_MCAST_LISTEN))
        except OSError as exc:
            sock.close()
            hint = " (needs root / CAP_NET_ADMIN)" if exc.errno == errno.EPERM else ""
            raise DockwardError(f"proc connector: cannot subscribe: {exc.strerror}{hint}") from exc
        self.sock = sock
        self.lost = 0  # times the kernel reported a receive-buffer overrun

    def run(self, handle: Callable[[ProcEvent], None], stop: threading.Event) -> None:
        while not stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.2)
            if not ready:
                continue
            try:
                data = self.sock.recv(65536)
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.lost += 1
                    continue
                if stop.is_set():
                    return
                raise
            for event in parse_messages(data):
                handle(event)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.send(_control(PROC_CN_MCAST_IGNORE))
        self.sock.close()
