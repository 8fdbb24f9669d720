"""A bounded table of processes, fed by fork/exec/exit, read from /proc at exec time.

A process may exit before its /proc entry is read; the table keeps what fork and the last
exec told us, so ancestry and container attribution survive short-lived processes.
"""

from __future__ import annotations

import os
import pwd
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from dockward.monitor.containers import container_id_from_cgroup
from dockward.monitor.scripts import script_path

MAX_CMDLINE = 4096


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int = 0
    name: str | None = None
    exepath: str | None = None
    exe: str | None = None
    args: tuple[str, ...] = ()
    uid: int | None = None
    gid: int | None = None
    loginuid: int | None = None
    tty: int | None = None
    vpid: int | None = None
    cwd: str | None = None
    container_id: str | None = None
    complete: bool = False  # False: the process was gone before /proc could be read

    @property
    def cmdline(self) -> str | None:
        if not self.args and self.name is None:
            return None
        if not self.args:
            return self.name
        return " ".join((self.name or os.path.basename(self.args[0]), *self.args[1:]))


def _read(path: str, limit: int = 65536) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_proc(pid: int, proc_root: str = "/proc") -> Proc | None:
    """Everything about a live process that events need; None if it is already gone."""
    base = f"{proc_root}/{pid}"
    raw_cmd = _read(f"{base}/cmdline", MAX_CMDLINE)
    status = _read(f"{base}/status")
    if status is None and not raw_cmd:
        return None
    fields: dict[str, str] = {}
    for line in (status or b"").decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    args = tuple(
        a.decode("utf-8", "replace") for a in (raw_cmd or b"").rstrip(b"\0").split(b"\0") if a
    )
    try:
        exepath: str | None = os.readlink(f"{base}/exe")
    except OSError:
        exepath = None
    try:
        cwd: str | None = os.readlink(f"{base}/cwd")
    except OSError:
        cwd = None
    cgroup = _read(f"{base}/cgroup")
    stat = _read(f"{base}/stat")
    tty = None
    if stat is not None:
        rest = stat.rsplit(b")", 1)[-1].split()
        if len(rest) > 5:
            tty = int(rest[4])
    loginuid_raw = _read(f"{base}/loginuid")
    try:
        loginuid = int(loginuid_raw) if loginuid_raw else None
    except ValueError:
        loginuid = None
    if loginuid == 4294967295:
        loginuid = -1
    nspid = fields.get("NSpid", "").split()
    return Proc(
        pid=pid,
        ppid=_int(fields.get("PPid")),
        name=fields.get("Name") or (os.path.basename(args[0])[:15] if args else None),
        exepath=exepath.removesuffix(" (deleted)") if exepath else None,
        exe=args[0] if args else None,
        args=args,
        uid=_int(fields.get("Uid", "").split()[0] if fields.get("Uid") else None),
        gid=_int(fields.get("Gid", "").split()[0] if fields.get("Gid") else None),
        loginuid=loginuid,
        tty=tty,
        vpid=_int(nspid[-1]) if nspid else pid,
        cwd=cwd,
        container_id=container_id_from_cgroup(cgroup.decode("utf-8", "replace"))
        if cgroup
        else None,
        complete=status is not None,
    )


def read_container_id(pid: int, proc_root: str = "/proc") -> tuple[bool, str | None]:
    """(the process still exists, its container id or None on the host)."""
    cgroup = _read(f"{proc_root}/{pid}/cgroup")
    if cgroup is None:
        return False, None
    return True, container_id_from_cgroup(cgroup.decode("utf-8", "replace"))


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


class ProcessTable:
    """pid -> Proc, bounded (oldest evicted first), shared by the process and file sources."""

    def __init__(self, max_entries: int = 65536, proc_root: str = "/proc") -> None:
        self._procs: OrderedDict[int, Proc] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()
        self.proc_root = proc_root
        self._users: dict[tuple[str | None, int], str | None] = {}

    def __len__(self) -> int:
        return len(self._procs)

    def seed(self) -> None:
        """Learn the processes that run already, so their children have ancestors."""
        try:
            pids = [int(p) for p in os.listdir(self.proc_root) if p.isdigit()]
        except OSError:
            return
        for pid in sorted(pids):
            info = read_proc(pid, self.proc_root)
            if info is not None:
                self._store(info)

    def _store(self, info: Proc) -> None:
        with self._lock:
            self._procs[info.pid] = info
            self._procs.move_to_end(info.pid)
            while len(self._procs) > self._max:
                self._procs.popitem(last=False)

    def get(self, pid: int) -> Proc | None:
        found = self._procs.get(pid)
        if found is None and pid > 0:
            found = read_proc(pid, self.proc_root)
            if found is not None:
                self._store(found)
        return found

    def peek(self, pid: int) -> Proc | None:
        return self._procs.get(pid)

    def pids_in(self, container_id: str, limit: int = 16) -> list[int]:
        """Known processes of one container (most recent first, at most `limit`)."""
        with self._lock:
            found = [
                p.pid for p in reversed(self._procs.values()) if p.container_id == container_id
            ]
        return found[:limit]

    def remember(self, info: Proc) -> None:
        self._store(info)

    def wait_complete(self, pid: int, timeout: float) -> Proc | None:
        deadline = time.monotonic() + timeout
        while True:
            found = self._procs.get(pid)
            if found is not None and found.complete:
                return found
            if time.monotonic() >= deadline:
                return found
            time.sleep(0.002)

    def fork(self, parent: int, child: int) -> None:
        known = self._procs.get(child)
        if known is not None and known.complete and known.ppid == parent:
            # The child's exec (audit, another thread) was recorded before its fork arrived:
            # a copy of the parent would replace the program it runs now.
            return
        base = self._procs.get(parent)
        if base is None:
            base = Proc(pid=parent)
        self._store(replace(base, pid=child, ppid=parent, complete=False))

    def exec(self, pid: int) -> Proc:
        info = read_proc(pid, self.proc_root)
        if info is None:
            known = self._procs.get(pid)
            # Gone already: keep what fork told us (parent, container), but not a stale name.
            info = Proc(
                pid=pid,
                ppid=known.ppid if known else 0,
                container_id=known.container_id if known else None,
                uid=known.uid if known else None,
            )
        self._store(info)
        return info

    def exit(self, pid: int) -> None:
        """Kept on purpose: file events for a process arrive after it exits (close on exit).
        A reused pid is overwritten by its fork or exec; the table stays bounded by eviction."""

    def ancestors(self, proc: Proc, depth: int = 8) -> list[Proc]:
        out: list[Proc] = []
        seen = {proc.pid}
        ppid = proc.ppid
        while ppid > 0 and len(out) < depth and ppid not in seen:
            seen.add(ppid)
            parent = self.get(ppid)
            if parent is None:
                break
            out.append(parent)
            ppid = parent.ppid
        return out

    def user_name(self, proc: Proc) -> str | None:
        """The name of the uid, looked up in the container's own /etc/passwd when it has one."""
        if proc.uid is None:
            return None
        key = (proc.container_id, proc.uid)
        if key in self._users:
            return self._users[key]
        name: str | None = None
        if proc.container_id:
            passwd = _read(f"{self.proc_root}/{proc.pid}/root/etc/passwd", 1 << 20)
            if passwd is not None:
                name = _passwd_name(passwd, proc.uid)
                self._users[key] = name
            return name
        try:
            name = pwd.getpwuid(proc.uid).pw_name
        except KeyError:
            name = None
        self._users[key] = name
        return name


def _login_name(loginuid: int | None) -> str | None:
    """The host account that logged in (loginuid is a host uid, also inside containers)."""
    if loginuid is None or loginuid < 0:
        return None
    try:
        return pwd.getpwuid(loginuid).pw_name
    except KeyError:
        return None


def _passwd_name(passwd: bytes, uid: int) -> str | None:
    for line in passwd.decode("utf-8", "replace").splitlines():
        parts = line.split(":")
        if len(parts) > 2 and parts[2].strip() == str(uid):
            return parts[0]
    return None


def process_fields(table: ProcessTable, proc: Proc) -> dict[str, Any]:
    """Falco's proc.*, user.* fields for one process."""
    chain = table.ancestors(proc)
    parent = chain[0] if chain else None
    return {
        "proc.pid": proc.pid,
        "proc.vpid": proc.vpid,
        "proc.ppid": proc.ppid,
        "proc.name": proc.name,
        "proc.exe": proc.exe,
        "proc.exepath": proc.exepath,
        "proc.cmdline": proc.cmdline,
        "proc.args": " ".join(proc.args[1:]) if proc.args else None,
        "proc.tty": proc.tty,
        "proc.is_exe_from_memfd": bool(proc.exepath and proc.exepath.startswith("/memfd:")),
        "proc.cwd": proc.cwd,
        "proc.script": script_path(proc.args, proc.name, proc.cwd),
        "proc.pname": parent.name if parent else None,
        "proc.pexepath": parent.exepath if parent else None,
        "proc.pexe": parent.exe if parent else None,
        "proc.pcmdline": parent.cmdline if parent else None,
        "proc.aname": [p.name for p in chain],
        "proc.apid": [p.pid for p in chain],
        "user.uid": proc.uid,
        "user.name": table.user_name(proc),
        "user.loginuid": proc.loginuid,
        "user.loginname": _login_name(proc.loginuid),
        "group.gid": proc.gid,
    }
