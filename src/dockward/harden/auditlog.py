"""Read the kernel's seccomp audit records ourselves, from the audit netlink multicast group.

Learning method: the workload runs under a profile whose default action is SCMP_ACT_LOG, so every
syscall it makes is allowed and produces an AUDIT_SECCOMP record. Without an audit daemon the
kernel only prints about ten of them (rate-limited kmsg), but every record is also multicast to
readers of AUDIT_NLGRP_READLOG, which is what this reader joins (root with CAP_AUDIT_READ in the
initial network namespace). The kernel's `lost` counter is read before and after, so a dropped
record is reported instead of silently producing a too-small profile.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import struct
import threading
from dataclasses import dataclass, field

from dockward.errors import DockwardError

NETLINK_AUDIT = 9
AUDIT_NLGRP_READLOG = 1
AUDIT_GET = 1000
AUDIT_SECCOMP = 1326
NLMSG_HDR = struct.Struct("=IHHII")
NLM_F_REQUEST = 1
MAX_RECORDS = 2_000_000  # bounded memory: a runaway workload cannot grow the set forever

_FIELDS = re.compile(rb"\b(pid|arch|syscall|comm|exe)=(\"[^\"]*\"|\S+)")
MAX_EXES = 10_000
_HEX = re.compile(rb"^[0-9A-F]+$")


class AuditUnavailable(DockwardError):
    """The audit netlink socket cannot be read here."""


@dataclass(frozen=True, slots=True)
class SeccompRecord:
    pid: int
    arch: int
    syscall: int
    comm: str
    exe: str = ""  # the executable the process runs, as a path inside its root


def _audit_string(raw: bytes) -> str:
    """Audit prints a string quoted, or hex-encoded when it has spaces, quotes or control
    characters (audit_log_untrustedstring)."""
    if raw.startswith(b'"'):
        return raw.strip(b'"').decode("utf-8", "replace")
    if _HEX.match(raw) and len(raw) % 2 == 0:
        return bytes.fromhex(raw.decode()).decode("utf-8", "replace")
    return "" if raw == b"(null)" else raw.decode("utf-8", "replace")


def parse_record(body: bytes) -> SeccompRecord | None:
    found = {k.decode(): v for k, v in _FIELDS.findall(body)}
    try:
        return SeccompRecord(
            int(found["pid"]),
            int(found["arch"], 16),
            int(found["syscall"]),
            _audit_string(found.get("comm", b"")),
            _audit_string(found.get("exe", b"")),
        )
    except (KeyError, ValueError):
        return None


def lost_count() -> int | None:
    """The kernel's count of lost audit records (AUDIT_GET), or None when it cannot be asked."""
    try:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
    except OSError:
        return None
    with contextlib.closing(s):
        try:
            s.bind((0, 0))
            s.send(NLMSG_HDR.pack(NLMSG_HDR.size, AUDIT_GET, NLM_F_REQUEST, 1, 0))
            s.settimeout(2)
            data = s.recv(8192)
        except OSError:
            return None
    length, mtype, _, _, _ = NLMSG_HDR.unpack_from(data, 0)
    if mtype != AUDIT_GET or length < NLMSG_HDR.size + 28:
        return None
    # struct audit_status: mask, enabled, failure, pid, rate_limit, backlog_limit, lost
    return int(struct.unpack_from("=7I", data, NLMSG_HDR.size)[6])


@dataclass
class _State:
    records: set[tuple[int, int, int]] = field(default_factory=set)  # (pid, arch, syscall)
    comms: dict[int, str] = field(default_factory=dict)
    exes: set[tuple[int, str]] = field(default_factory=set)  # (pid, exe): exe changes on execve
    cgroups: dict[int, str | None] = field(default_factory=dict)  # read when a pid is first seen
    count: int = 0
    overflow: bool = False


class SeccompRecorder:
    """Collects SECCOMP audit records on a background thread while the context is open."""

    def __init__(self) -> None:
        self._state = _State()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.lost_before: int | None = None
        self.lost_after: int | None = None

    def __enter__(self) -> SeccompRecorder:
        check_log_action()
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
        except OSError as exc:
            raise AuditUnavailable(f"cannot open the audit netlink socket: {exc.strerror}") from exc
        try:
            sock.bind((0, 1 << (AUDIT_NLGRP_READLOG - 1)))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024 * 1024)
        except OSError as exc:
            sock.close()
            raise AuditUnavailable(
                "cannot join the audit log multicast group (needs root with CAP_AUDIT_READ in "
                f"the host network namespace): {exc.strerror}"
            ) from exc
        self._sock = sock
        self.lost_before = lost_count()
        self._thread = threading.Thread(target=self._run, name="dockward-audit", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        assert self._sock is not None
        sock = self._sock
        while not self._stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0.05)
            if not ready:
                continue
            try:
                data = sock.recv(1 << 16)
            except OSError:
                self._state.overflow = True  # ENOBUFS: the receive buffer overran
                continue
            self._consume(data)

    def _consume(self, data: bytes) -> None:
        off = 0
        while off + NLMSG_HDR.size <= len(data):
            length, mtype, _, _, _ = NLMSG_HDR.unpack_from(data, off)
            if length < NLMSG_HDR.size:
                break
            if mtype == AUDIT_SECCOMP:
                rec = parse_record(data[off + NLMSG_HDR.size : off + length])
                st = self._state
                if rec is not None and len(st.records) < MAX_RECORDS:
                    st.records.add((rec.pid, rec.arch, rec.syscall))
                    if rec.exe and len(st.exes) < MAX_EXES:
                        st.exes.add((rec.pid, rec.exe))
                    if rec.pid not in st.comms:
                        st.comms[rec.pid] = rec.comm
                        st.cgroups[rec.pid] = _cgroup(rec.pid)
                    st.count += 1
            off += (length + 3) & ~3

    def drain(self, quiet: float = 0.3) -> None:
        """Wait until no record has arrived for `quiet` seconds (records trail the syscalls)."""
        import time

        last = -1
        while last != self._state.count:
            last = self._state.count
            time.sleep(quiet)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
        self.lost_after = lost_count()

    @property
    def records(self) -> set[tuple[int, int, int]]:
        return set(self._state.records)

    @property
    def comms(self) -> dict[int, str]:
        return dict(self._state.comms)

    def syscalls_of(self, container_id: str) -> set[tuple[int, int]]:
        """(arch, syscall) pairs made by the container's processes.

        A pid is attributed by the cgroup it had when its first record arrived; a pid that was
        already gone then is attributed to the container too, because only processes under a
        SCMP_ACT_LOG profile produce these records and learning runs hold an exclusive lock.
        """
        out: set[tuple[int, int]] = set()
        cgroups = dict(self._state.cgroups)
        for pid, arch, nr in self.records:
            cg = cgroups.get(pid)
            if cg is None or container_id in cg:
                out.add((arch, nr))
        return out

    def executables_of(self, container_id: str) -> set[str]:
        """The programs the container's processes ran (paths inside the container), without
        the runtime's own: `runc init` runs from a memfd copy before it execs the workload."""
        cgroups = dict(self._state.cgroups)
        return {
            exe
            for pid, exe in set(self._state.exes)
            if container_id in (cgroups.get(pid) or container_id)
            and exe.startswith("/")
            and exe != "/"
            and not exe.startswith("/memfd:")
            and not exe.endswith("(deleted)")
            and exe.rsplit("/", 1)[-1] not in ("runc", "runc.amd64", "crun")
        }

    @property
    def count(self) -> int:
        return self._state.count

    @property
    def lost(self) -> int | None:
        if self._state.overflow:
            return -1
        if self.lost_before is None or self.lost_after is None:
            return None
        return self.lost_after - self.lost_before


def check_log_action(path: str = "/proc/sys/kernel/seccomp/actions_logged") -> None:
    try:
        with open(path) as fh:
            logged = fh.read().split()
    except OSError:
        return
    if "log" not in logged:
        raise AuditUnavailable(
            f"the kernel does not log SCMP_ACT_LOG (add 'log' to {path}); learning needs it"
        )


def _cgroup(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/cgroup") as fh:
            return fh.read(4096)
    except OSError:
        return None
