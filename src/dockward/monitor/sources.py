"""Event sources: each runs in its own thread and puts Falco-named events into the monitor."""

from __future__ import annotations

import contextlib
import errno
import json
import os
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
    open_fd_number,
    read_cap_effective,
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
        if name in ("init_module", "finit_module") and event.get("thread.cap_effective") is None:
            # The loader exited before /proc could be read: what it had when it was executed.
            event["thread.cap_effective"] = self._caps_at_exec.get(pid)
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

    def __init__(self, table: ProcessTable, cache: ContainerCache) -> None:
        self.table = table
        self.cache = cache
        self.fan = Fanotify()
        self._thread: threading.Thread | None = None

    def watch_info(self, info: ContainerInfo) -> bool:
        """Mark a container's filesystem when its metadata arrives.

        The state in the metadata is not consulted: metadata inspected at `create` still says
        "created" when the container starts a moment later. Fanotify.watch marks only a
        mounted filesystem, which is what "running" means here.
        """
        return bool(info.merged_dir) and self.fan.watch(info.merged_dir)

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
        # The opener's descriptor and capabilities, while it still holds them (absent otherwise:
        # a rule on fd.num then does not match, it never guesses).
        fd = open_fd_number(fe.pid, fe.path, self.table.proc_root)
        if fd is not None:
            event["fd.num"] = fd
        event["thread.cap_effective"] = read_cap_effective(fe.pid, self.table.proc_root)
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

    def __init__(self, client: Any) -> None:
        self.client = client
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self.errors = 0

    def start(self, put: Put, stop: threading.Event) -> None:
        cursor = _EventCursor(int(time.time()) * 10**9)
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
