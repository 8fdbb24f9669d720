"""Event sources: each runs in its own thread and puts Falco-named events into the monitor."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import posixpath
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from dockward.errors import DockwardError
from dockward.monitor.alert import Alert
from dockward.monitor.audit import (
    ARCHES,
    Audit,
    AuditEvent,
    decode_sockaddr,
    tty_number,
    unhex,
)
from dockward.monitor.containers import ContainerCache, ContainerInfo
from dockward.monitor.fanotify import Fanotify, FileEvent
from dockward.monitor.fields import Event
from dockward.monitor.procconn import ProcConnector, ProcEvent
from dockward.monitor.procs import Proc, ProcessTable, process_fields, read_container_id
from dockward.monitor.sysevents import (
    numbers,
    open_call_flags,
    open_fd_number,
    open_flag_names,
    open_numbers,
    read_cap_effective,
    root_exec_caps,
    socket_of_fd,
    syscall_fields,
)

Put = Callable[[Event], None]


class Source(Protocol):
    name: str

    def start(self, put: Put, stop: threading.Event) -> None: ...

    def close(self) -> None: ...


def _thread(name: str, target: Callable[[], None]) -> threading.Thread:
    t = threading.Thread(target=target, name=name, daemon=True)
    t.start()
    return t


class ProcSource:
    """exec (and, for ancestry, fork/exit) of every process, from the proc connector.

    With `emit_exec=False` it only keeps the process table current (the audit source then
    reports execs, with their argv from the kernel).
    """

    name = "proc"

    def __init__(self, table: ProcessTable, emit_exec: bool = True) -> None:
        self.table = table
        self.emit_exec = emit_exec
        self.conn = ProcConnector()
        self.execs = 0
        self.incomplete = 0  # execs whose process was gone before /proc could be read
        self._thread: threading.Thread | None = None

    def handle(self, ev: ProcEvent, put: Put) -> None:
        if ev.kind == "fork":
            self.table.fork(ev.parent_tgid, ev.pid)
            return
        if ev.kind == "exit":
            self.table.exit(ev.pid)
            return
        if not self.emit_exec:
            return
        proc = self.table.exec(ev.pid)
        self.execs += 1
        if not proc.complete:
            self.incomplete += 1
        event: Event = {
            "evt.source": "syscall",
            "evt.type": "execve",
            "evt.dir": "<",
            "evt.res": "SUCCESS",
            "evt.rawres": 0,
            "evt.time": time.time_ns(),
            "evt.is_open_exec": True,
            "_cid": proc.container_id or "",
        }
        event.update(process_fields(self.table, proc))
        put(event)

    def start(self, put: Put, stop: threading.Event) -> None:
        self._thread = _thread(
            "source proc", lambda: self.conn.run(lambda e: self.handle(e, put), stop)
        )

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join(2.0)
        self.conn.close()


_ERRNO_NAMES = errno.errorcode
AT_FDCWD = (1 << 64) - 100  # as audit prints a 64-bit register


class OpenLog:
    """What each open returned (descriptor, flags), from the open's own audit record, for the
    file source: fanotify reports a file when it is closed, when the descriptor is gone.

    Keyed by (pid, inode) and (pid, path); an entry is used once; entries expire after
    `keep` seconds and the log is bounded."""

    def __init__(self, keep: float = 5.0, limit: int = 50_000) -> None:
        self.keep = keep
        self.limit = limit
        self._cond = threading.Condition()
        self._by: dict[tuple[int, str, Any], list[list[Any]]] = {}
        self._count = 0

    def add(self, pid: int, path: str, ino: int, fd: int, flags: int | None, raw: str = "") -> None:
        entry = [time.monotonic(), fd, flags, False, raw]
        with self._cond:
            if self._count >= self.limit:
                self._expire(time.monotonic())
            for key in ((pid, "i", ino), (pid, "p", path)):
                if key[2]:
                    self._by.setdefault(key, []).append(entry)
            self._count += 1
            self._cond.notify_all()

    def _expire(self, now: float) -> None:
        for key in list(self._by):
            kept = [e for e in self._by[key] if now - e[0] < self.keep and not e[3]]
            if kept:
                self._by[key] = kept
            else:
                del self._by[key]
        self._count = sum(len(v) for v in self._by.values())
        if self._count >= self.limit:  # a flood: forget, rather than grow
            self._by.clear()
            self._count = 0

    def take(
        self, pid: int, path: str, ino: int, write: bool, wait: float = 0.0
    ) -> list[tuple[int, int | None, str]]:
        """(fd, flags, the path as the caller passed it) of every unused open of this file by this process whose access mode is
        the close's (write: O_WRONLY or O_RDWR), oldest first, waiting up to `wait` seconds for
        the first. Several: fanotify merged the closes of repeated opens into one event."""
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                found: list[tuple[int, int | None, str]] = []
                for key in ((pid, "i", ino), (pid, "p", path)):
                    for entry in self._by.get(key, ()):
                        flags = entry[2]
                        if entry[3] or (flags is not None and (flags & 3 != 0) != write):
                            continue
                        entry[3] = True
                        found.append((int(entry[1]), flags, str(entry[4])))
                if found:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._cond.wait(left)


class AuditSource:
    """execve with argv and connect with the peer address, from the Linux audit subsystem."""

    name = "audit"

    def __init__(self, table: ProcessTable, connect: bool = True) -> None:
        self.table = table
        self.audit = Audit(connect=connect)
        self.execs = 0
        self.connects = 0
        self._thread: threading.Thread | None = None
        self._own_pid = os.getpid()
        self._exec_nrs = {ARCHES[os.uname().machine][1], ARCHES[os.uname().machine][2]}
        self._more = numbers(os.uname().machine)
        self._opens = open_numbers(os.uname().machine)
        self.opens = OpenLog()
        # (pid, fd) -> fd.l4proto of the inet sockets created since the start (bounded): a
        # connect's socket when its process is gone before /proc can be read.
        self._l4: dict[tuple[int, int], dict[str, Any]] = {}
        self.more = 0
        # pid -> thread.cap_effective read at exec (bounded): a short-lived module loader.
        self._caps_at_exec: dict[int, str | None] = {}

    def _proc(self, ev: AuditEvent) -> Proc:
        sc = ev.syscall
        pid, ppid = _num(sc.get("pid")), _num(sc.get("ppid"))
        alive, cid = read_container_id(pid, self.table.proc_root)
        comm = unhex(sc.get("comm", ""))
        runtime = comm == "runc" or comm.startswith("containerd-shim")
        if not alive and not (runtime and ev.argv[1:] != ["init"]):
            # Gone already: what the same pid was before this exec (runc init joins the
            # container's cgroup before it execs the command), else its parent's container.
            before = self.table.peek(pid)
            if before is not None and before.container_id:
                cid = before.container_id
            else:
                cid = container_of_ancestors(self.table, ppid)
        auid = _num(sc.get("auid"), -1)
        return Proc(
            pid=pid,
            ppid=ppid,
            name=unhex(sc.get("comm", "")) or None,
            exepath=unhex(sc.get("exe", "")) or None,
            exe=ev.argv[0] if ev.argv else None,
            args=tuple(ev.argv),
            uid=_num(sc.get("uid"), None),
            gid=_num(sc.get("gid"), None),
            loginuid=-1 if auid == 4294967295 else auid,
            tty=tty_number(sc.get("tty", "")),
            vpid=None,
            cwd=ev.cwd or None,
            container_id=cid,
            complete=True,
        )

    def handle(self, ev: AuditEvent, put: Put) -> None:
        if _num(ev.syscall.get("pid")) == self._own_pid:
            return  # the monitor's own connects (outputs, the engine API)
        nr = _num(ev.syscall.get("syscall"))
        if nr in self._exec_nrs:
            proc = self._proc(ev)
            self.table.remember(proc)
            if proc.name in ("insmod", "modprobe") or (
                ev.argv[:1] and ev.argv[0].endswith(("insmod", "modprobe"))
            ):
                if len(self._caps_at_exec) > 1024:
                    self._caps_at_exec.clear()
                self._caps_at_exec[proc.pid] = read_cap_effective(proc.pid, self.table.proc_root)
            self.execs += 1
            event: Event = {
                "evt.source": "syscall",
                "evt.type": "execve" if nr == min(self._exec_nrs) else "execveat",
                "evt.dir": "<",
                "evt.res": "SUCCESS",
                "evt.rawres": 0,
                "evt.time": ev.time_ns,
                "evt.is_open_exec": True,
                "_cid": proc.container_id or "",
            }
            event.update(process_fields(self.table, proc))
            put(event)
            return
        opened = self._opens.get(nr)
        if opened is not None:
            self._log_open(opened, ev)
            return
        more = self._more.get(nr)
        if more is not None:
            self._put_more(more, ev, put)
            return
        if not ev.sockaddr:
            return
        peer = decode_sockaddr(ev.sockaddr)
        if not peer:
            return
        pid = _num(ev.syscall.get("pid"))
        proc_info = self.table.get(pid) or self._proc(ev)
        if peer.get("fd.typechar") == "u" and not proc_info.container_id:
            return  # host processes talk to local sockets all the time; rules watch containers
        self.connects += 1
        if peer.get("fd.sockfamily") == "ip":
            fd = _num("0x" + ev.syscall.get("a0", ""), -1)
            local = socket_of_fd(pid, fd, self.table.proc_root)
            if not local and (pid, fd) in self._l4:
                local = self._l4[(pid, fd)]
            peer.update({k: v for k, v in local.items() if k in _LOCAL_END})
            if "fd.lip" in local:  # the connecting side is the client
                peer["fd.cip"], peer["fd.cport"] = local["fd.lip"], local["fd.lport"]
        res = _num(ev.syscall.get("exit"))
        event = {
            "evt.source": "syscall",
            "evt.type": "connect",
            "evt.dir": "<",
            "evt.rawres": res,
            "evt.res": "SUCCESS" if res >= 0 else _ERRNO_NAMES.get(-res, str(res)),
            "evt.time": ev.time_ns,
            "_cid": proc_info.container_id or "",
        }
        event.update(peer)
        event.update(process_fields(self.table, proc_info))
        put(event)

    def root_caps(self, ppid: int, cid: str | None) -> str | None:
        """What a root process had after its exec, read from a live process of the same
        container (its parent, else another): they share the bounding and inheritable sets
        the kernel builds a root exec's capabilities from (see root_exec_caps)."""
        candidates = [ppid] + (self.table.pids_in(cid) if cid else [])
        for other in candidates:
            alive, where = read_container_id(other, self.table.proc_root)
            if alive and (where or None) == (cid or None):
                caps = root_exec_caps(other, self.table.proc_root)
                if caps is not None:
                    return caps
        return None

    def watch_device(self, dev: int) -> bool:
        """Audit the opens on one container filesystem (see OpenLog)."""
        return self.audit.watch_device(dev, sorted(self._opens))

    def unwatch_device(self, dev: int) -> None:
        self.audit.unwatch_device(dev)

    def _log_open(self, name: str, ev: AuditEvent) -> None:
        fd = _num(ev.syscall.get("exit"), -1)
        if fd < 0:
            return
        item = next((p for p in ev.paths if p.get("nametype") in ("NORMAL", "CREATE")), None)
        if item is None:
            return
        path = raw = item.get("name", "")
        relative_to_cwd = (
            name in ("open", "creat") or _num("0x" + ev.syscall.get("a0", ""), 0) == AT_FDCWD
        )
        if path and not path.startswith("/"):
            path = posixpath.join(ev.cwd, path) if relative_to_cwd and ev.cwd else ""
        path = posixpath.normpath(path) if path else ""
        flags = open_call_flags(name, ev.syscall, ev.open_flags)
        pid = _num(ev.syscall.get("pid"))
        self.opens.add(pid, path, _num(item.get("inode")), fd, flags, raw)

    def _put_more(self, name: str, ev: AuditEvent, put: Put) -> None:
        pid = _num(ev.syscall.get("pid"))
        proc_info = self.table.get(pid) or self._proc(ev)
        res = _num(ev.syscall.get("exit"))
        event: Event = {
            "evt.source": "syscall",
            "evt.type": name,
            "evt.dir": "<",
            "evt.res": "SUCCESS" if res >= 0 else _ERRNO_NAMES.get(-res, str(res)),
            "evt.time": ev.time_ns,
            "_cid": proc_info.container_id or "",
        }
        event.update(process_fields(self.table, proc_info))
        event.update(
            syscall_fields(name, ev.syscall, ev.paths, ev.cwd or proc_info.cwd or "/",
                           self.table.proc_root)
        )  # fmt: skip
        if name == "socket" and "fd.l4proto" in event and res >= 0:
            if len(self._l4) > 4096:
                self._l4.clear()
            self._l4[(pid, res)] = {k: event[k] for k in _SOCKET_KIND}
        elif name in ("accept", "accept4"):
            event.update(accept_fields(ev.sockaddr, pid, res, self.table.proc_root))
            # gone already: the listening socket (a0) the connection came in on says its kind
            listening = self._l4.get((pid, _num("0x" + ev.syscall.get("a0", ""), -1)))
            if "fd.l4proto" not in event and listening is not None:
                event.update(listening)
        if name in ("init_module", "finit_module") and event.get("thread.cap_effective") is None:
            # The loader exited before /proc could be read: what it had when it was executed,
            # else, for a root loader, what the kernel gave it at exec (from its parent).
            caps = self._caps_at_exec.get(pid)
            if caps is None and _num(ev.syscall.get("euid"), -1) == 0:
                caps = self.root_caps(_num(ev.syscall.get("ppid")), proc_info.container_id)
            event["thread.cap_effective"] = caps
        self.more += 1
        put(event)

    def start(self, put: Put, stop: threading.Event) -> None:
        self._thread = _thread(
            "source audit", lambda: self.audit.run(lambda e: self.handle(e, put), stop)
        )

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join(2.0)
        self.audit.close()


_HEX64 = re.compile(r"[0-9a-f]{64}")
_LOCAL_END = ("fd.l4proto", "fd.lip", "fd.lport")
_SOCKET_KIND = ("fd.type", "fd.typechar", "fd.sockfamily", "fd.l4proto")


def accept_fields(sockaddr: str, pid: int, fd: int, proc_root: str = "/proc") -> dict[str, Any]:
    """An accepted connection as Falco names it: the client (audit's SOCKADDR of accept) is
    fd.cip/cport (also fd.rip/rport), the server's end (the new descriptor's local address,
    from /proc while the process holds it) fd.sip/sport (also fd.lip/lport)."""
    out: dict[str, Any] = {"fd.num": fd}
    client = decode_sockaddr(sockaddr) if sockaddr else {}
    if client and client.get("fd.sockfamily") != "ip":
        out.update(client)
        return out
    if client:  # absent when the caller passed no address buffer
        out.update({k: client[k] for k in ("fd.type", "fd.typechar", "fd.sockfamily")})
        out["fd.cip"] = out["fd.rip"] = client["fd.sip"]
        out["fd.cport"] = out["fd.rport"] = client["fd.sport"]
    local = socket_of_fd(pid, fd, proc_root) if fd >= 0 else {}
    if local:
        out.update({k: local[k] for k in ("fd.type", "fd.typechar", "fd.sockfamily", "fd.l4proto")})
    if "fd.lip" in local:
        out["fd.sip"] = out["fd.lip"] = local["fd.lip"]
        out["fd.sport"] = out["fd.lport"] = local["fd.lport"]
    ends = [f"{out[i]}:{out[p]}" for i, p in (("fd.cip", "fd.cport"), ("fd.sip", "fd.sport"))
            if i in out]  # fmt: skip
    if ends:
        out["fd.name"] = "->".join(ends)
    return out


def container_of_ancestors(table: ProcessTable, ppid: int) -> str | None:
    """The container of a process that is gone, from its nearest ancestors: one in a container,
    or the runtime that started it (`runc ... exec ... ID`, `containerd-shim -id ID`)."""
    for _ in range(3):
        parent = table.get(ppid)
        if parent is None:
            return None
        if parent.container_id:
            return parent.container_id
        if parent.name and (parent.name == "runc" or parent.name.startswith("containerd-shim")):
            for arg in parent.args:
                if _HEX64.fullmatch(arg):
                    return arg
            return None
        ppid = parent.ppid
    return None


def _num(value: Any, default: Any = 0) -> Any:
    try:
        return int(str(value), 0) if str(value).startswith("0x") else int(str(value))
    except (TypeError, ValueError):
        return default


class FileSource:
    """Opens (read/write) in containers, from fanotify marks on each container's filesystem."""

    name = "file"

    def __init__(
        self, table: ProcessTable, cache: ContainerCache, audit: AuditSource | None = None
    ) -> None:
        self.table = table
        self.cache = cache
        self.fan = Fanotify()
        # With audit, each container filesystem's opens are also audited: the open's record
        # gives fd.num and evt.arg.flags (see OpenLog).
        self.audit = audit
        self._audited: set[str] = set()
        self.correlated = 0
        self._thread: threading.Thread | None = None

    def watch_info(self, info: ContainerInfo) -> bool:
        """Mark a container's filesystem when its metadata arrives.

        The state in the metadata is not consulted: metadata inspected at `create` still says
        "created" when the container starts a moment later. Fanotify.watch marks only a
        mounted filesystem, which is what "running" means here.
        """
        if not (info.merged_dir and self.fan.watch(info.merged_dir)):
            return False
        if self.audit is not None and info.merged_dir not in self._audited:
            # the filesystem fanotify marked (never a fresh stat: a container that stopped
            # meanwhile would name the host's), and never the host's root filesystem
            dev = next((d for d, root in self.fan.roots.items() if root == info.merged_dir), None)
            with contextlib.suppress(OSError):
                host = os.stat("/").st_dev
                if dev is not None and dev != host and self.audit.watch_device(dev):
                    self._audited.add(info.merged_dir)
        return True

    def watch_id(self, container_id: str) -> None:
        """A container started: mark it now, or inspect it again if that is not possible yet."""
        found = self.cache.peek(container_id)
        if isinstance(found, ContainerInfo) and self.watch_info(found):
            return
        # No metadata yet, or metadata from before the mount: the on_info hook marks it.
        self.cache.fetch(container_id, lambda _cid: None, urgent=True)

    def handle(self, fe: FileEvent, put: Put) -> None:
        if fe.directory:
            return
        proc = self.table.get(fe.pid)
        if proc is None or not proc.complete:
            # The exec of a short-lived process may still be on its way from the other source.
            proc = self.table.wait_complete(fe.pid, 0.1) or proc
        cid = proc.container_id if proc is not None and proc.container_id else None
        if cid is None and fe.root:
            cid = self._container_of_root(fe.root)
        directory, _, filename = fe.path.rpartition("/")
        event: Event = {
            "evt.source": "syscall",
            "evt.type": "openat",
            "evt.dir": "<",
            "evt.res": "SUCCESS",
            "evt.rawres": 0,
            "evt.time": time.time_ns(),
            "evt.is_open_read": not fe.write,
            "evt.is_open_write": fe.write,
            "fd.name": fe.path,
            "fd.directory": directory or "/",
            "fd.filename": filename,
            "fd.type": "file",
            "fd.typechar": "f",
            "_cid": cid or "",
        }
        if proc is not None:
            event.update(process_fields(self.table, proc))
        else:
            event["proc.pid"] = fe.pid
        caps = read_cap_effective(fe.pid, self.table.proc_root)
        if caps is None and self.audit is not None and proc is not None and proc.uid == 0:
            # gone already: a root process's capabilities after its exec (see root_caps)
            caps = self.audit.root_caps(proc.ppid, cid)
        event["thread.cap_effective"] = caps
        # The descriptor each open returned and its flags, from the open's audit record (one
        # event per open, also when fanotify merged their closes); else the opener's descriptor
        # while it still holds it (absent otherwise: a rule on fd.num then does not match, it
        # never guesses).
        opened: list[tuple[int, int | None, str]] = []
        if self.audit is not None and fe.root in self._audited:
            opened = self.audit.opens.take(fe.pid, fe.path, fe.ino, fe.write, wait=0.05)
        for fd, flags, raw in opened:
            self.correlated += 1
            one = dict(event)
            one["fd.num"] = fd
            if raw:
                one["fd.nameraw"] = raw  # as passed: `../../etc/passwd` stays so
            if flags is not None:
                one["evt.arg.flags"] = open_flag_names(flags)
                one["evt.rawres"] = fd
                one["evt.is_open_read"] = flags & 3 in (0, 2)
                one["evt.is_open_write"] = flags & 3 in (1, 2)
            put(one)
        if opened:
            return
        held = open_fd_number(fe.pid, fe.path, self.table.proc_root)
        if held is not None:
            event["fd.num"] = held
        put(event)

    def _container_of_root(self, root: str) -> str | None:
        for info in self.cache.all():
            if info.merged_dir == root:
                return info.spec.id
        return None

    def start(self, put: Put, stop: threading.Event) -> None:
        self._thread = _thread(
            "source file", lambda: self.fan.run(lambda e: self.handle(e, put), stop)
        )

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join(2.0)
        self.fan.close()


def docker_event(raw: dict[str, Any], exec_inspect: Callable[[str], Any] | None = None) -> Event:
    """One `GET /events` message -> an event of source `docker`."""
    kind = str(raw.get("Type") or "")
    action = str(raw.get("Action") or raw.get("status") or "")
    base, _, detail = action.partition(":")
    actor = raw.get("Actor") or {}
    attrs = actor.get("Attributes") or {} if isinstance(actor, dict) else {}
    actor_id = str(actor.get("ID") or raw.get("id") or "") if isinstance(actor, dict) else ""
    ev: Event = {
        "evt.source": "docker",
        "evt.type": base.strip(),
        "evt.time": int(raw.get("timeNano") or int(raw.get("time") or 0) * 1_000_000_000),
        "docker.type": kind,
        "docker.action": action,
        "docker.actor.id": actor_id,
    }
    if kind == "container":
        ev["_cid"] = actor_id
        if isinstance(attrs, dict) and attrs.get("image"):
            ev["docker.image"] = str(attrs["image"])
        if base.startswith("exec_"):
            ev["docker.exec.cmdline"] = detail.strip()
            exec_id = attrs.get("execID") if isinstance(attrs, dict) else None
            if exec_id and exec_inspect is not None:
                with contextlib.suppress(Exception):
                    info = exec_inspect(str(exec_id))
                    pc = info.get("ProcessConfig") or {}
                    ev["docker.exec.tty"] = bool(pc.get("tty"))
                    ev["docker.exec.user"] = str(pc.get("user") or "")
                    ev["docker.exec.privileged"] = bool(pc.get("privileged"))
    elif kind == "image":
        ev["docker.image"] = actor_id
    return ev


RESUME_MAX = 3600.0  # seconds of engine events a restarted monitor asks for again, at most


class _EventCursor:
    """Where the engine's event stream was: a reconnect asks from the newest event on (no gap
    while the engine or the proxy to it was away), and what comes twice is dropped."""

    def __init__(self, nano: int) -> None:
        self.nano = nano
        self.seen: set[tuple[str, str, str]] = set()  # the events at self.nano

    def fresh(self, raw: dict[str, Any]) -> bool:
        nano = int(raw.get("timeNano") or 0)
        actor = raw.get("Actor") or {}
        key = (
            str(raw.get("Type") or ""),
            str(raw.get("Action") or raw.get("status") or ""),
            str(actor.get("ID") if isinstance(actor, dict) else raw.get("id")),
        )
        if nano < self.nano:
            return False
        if nano > self.nano:
            self.nano, self.seen = nano, set()
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def since(self) -> str:
        return f"{self.nano // 10**9}.{self.nano % 10**9:09d}"


class DockerSource:
    """Engine events, each with the container's spec attached (through the cache)."""

    name = "docker"

    def __init__(self, client: Any, cursor_file: str | os.PathLike[str] | None = None) -> None:
        self.client = client
        self.cursor_file = cursor_file
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self.errors = 0

    def _resume_from(self) -> int:
        """Where the previous run stopped (its cursor file), so the events of a restart are
        judged too; at most RESUME_MAX back, never later than now."""
        now = int(time.time()) * 10**9
        if self.cursor_file is None:
            return now
        try:
            with open(self.cursor_file, encoding="ascii") as fh:
                nano = int(fh.read(32).strip())
        except (OSError, ValueError):
            return now
        return min(now, max(nano, now - int(RESUME_MAX * 1e9)))

    def _save(self, cursor: _EventCursor, last: list[float]) -> None:
        """The newest event's time, at most once a second (a kill loses a second: events then
        come twice, none is lost)."""
        if self.cursor_file is None or time.monotonic() - last[0] < 1.0:
            return
        last[0] = time.monotonic()
        tmp = f"{self.cursor_file}.tmp"
        with contextlib.suppress(OSError):
            with open(tmp, "w", encoding="ascii") as fh:
                fh.write(str(cursor.nano))
            os.replace(tmp, self.cursor_file)

    def start(self, put: Put, stop: threading.Event) -> None:
        cursor = _EventCursor(self._resume_from())
        saved = [0.0]
        try:
            self._stream = self.client.events(decode=True, since=cursor.since())
        except Exception as exc:
            raise DockwardError(f"docker events: {exc}") from exc

        def run() -> None:
            while not stop.is_set():
                try:
                    for raw in self._stream:
                        if stop.is_set():
                            return
                        if isinstance(raw, dict) and cursor.fresh(raw):
                            put(docker_event(raw, self.client.exec_inspect))
                            self._save(cursor, saved)
                except Exception:
                    self.errors += 1
                if stop.is_set():
                    return
                time.sleep(1.0)  # the daemon (or the proxy to it) went away: reconnect
                with contextlib.suppress(Exception):
                    self._stream = self.client.events(decode=True, since=cursor.since())

        self._thread = _thread("source docker", run)

    def close(self) -> None:
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.close()
        if self._thread is not None:
            self._thread.join(2.0)


class FalcoJsonSource:
    """Falco's JSON alerts (one per line, `json_output: true`), followed like `tail -f`."""

    name = "falco"

    def __init__(self, path: str, submit: Callable[[Alert], Any], follow: bool = True) -> None:
        self.path = path
        self.submit = submit
        self.follow = follow
        self.malformed = 0
        self._thread: threading.Thread | None = None
        if not os.path.exists(path) and not follow:
            raise DockwardError(f"falco input {path}: no such file")

    def _line(self, line: str) -> None:
        line = line.strip()
        if not line.startswith("{"):
            return
        try:
            data = json.loads(line)
        except ValueError:
            self.malformed += 1
            return
        if isinstance(data, dict) and "rule" in data:
            self.submit(Alert.from_dict(data))
        else:
            self.malformed += 1

    def start(self, put: Put, stop: threading.Event) -> None:
        existed = os.path.exists(self.path)

        def run() -> None:
            while not stop.is_set() and not os.path.exists(self.path):
                time.sleep(0.2)
            if stop.is_set():
                return
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                if self.follow and existed:
                    # Like `tail -f`: what Falco wrote before this start was routed before.
                    fh.seek(0, os.SEEK_END)
                while not stop.is_set():
                    line = fh.readline(1 << 20)
                    if line:
                        self._line(line)
                    elif not self.follow:
                        return
                    else:
                        time.sleep(0.1)

        self._thread = _thread("source falco", run)

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join(2.0)
