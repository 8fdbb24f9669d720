"""File activity in containers through fanotify, marked per container filesystem.

Why fanotify and not audit: a container's files live on its own overlay superblock, so one
FAN_MARK_FILESYSTEM per container sees exactly that container's opens (host activity costs
nothing), needs no rules installed in the kernel's shared audit configuration (which other
tools on the host own), and reports every event (no printk rate limit). Close events tell how the
file was opened: FAN_CLOSE_NOWRITE -> opened for reading, FAN_CLOSE_WRITE -> opened for writing.
Network activity is not visible to fanotify; see the README for what this leaves out.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import select
import stat
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from dockward.errors import DockwardError

FAN_CLASS_NOTIF = 0x0
FAN_CLOEXEC = 0x1
FAN_NONBLOCK = 0x2
FAN_UNLIMITED_MARKS = 0x20
FAN_MARK_ADD = 0x1
FAN_MARK_REMOVE = 0x2
FAN_MARK_FILESYSTEM = 0x100
FAN_CLOSE_WRITE = 0x8
FAN_CLOSE_NOWRITE = 0x10
FAN_OPEN_EXEC = 0x1000
FAN_Q_OVERFLOW = 0x4000
FAN_NOFD = -1
AT_FDCWD = -100
MASK = FAN_CLOSE_WRITE | FAN_CLOSE_NOWRITE

_META = struct.Struct("=IBBHQii")


@dataclass(frozen=True, slots=True)
class FileEvent:
    pid: int
    path: str  # as seen inside the container
    write: bool
    directory: bool
    root: str  # the container filesystem (merged dir) it came from
    ino: int = 0  # the file's inode on that filesystem


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
    libc.fanotify_init.restype = ctypes.c_int
    libc.fanotify_mark.argtypes = [
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint64,
        ctypes.c_int,
        ctypes.c_char_p,
    ]
    libc.fanotify_mark.restype = ctypes.c_int
    return libc


class Fanotify:
    """One fanotify group; `watch(merged_dir)` adds a container's filesystem."""

    def __init__(self) -> None:
        self._libc = _libc()
        fd = self._libc.fanotify_init(
            FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_MARKS, os.O_RDONLY
        )
        if fd < 0:
            err = ctypes.get_errno()
            raise DockwardError(f"fanotify: cannot initialise: {os.strerror(err)} (needs root)")
        self.fd = fd
        self.roots: dict[int, str] = {}  # st_dev of a container filesystem -> its merged dir
        self.overflows = 0
        self._lock = threading.Lock()

    def watch(self, merged_dir: str) -> bool:
        if not merged_dir:
            return False
        try:
            dev = os.stat(merged_dir).st_dev
            parent_dev = os.stat(os.path.dirname(merged_dir.rstrip("/"))).st_dev
        except OSError:
            return False
        if dev == parent_dev:
            # Not mounted (a created, never started container): marking it would mark the
            # host filesystem underneath.
            return False
        with self._lock:
            if dev in self.roots:
                return True
            rc = self._libc.fanotify_mark(
                self.fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, MASK, AT_FDCWD, merged_dir.encode()
            )
            if rc != 0:
                return False
            self.roots[dev] = merged_dir
        return True

    def unwatch(self, merged_dir: str) -> None:
        with self._lock:
            for dev, root in list(self.roots.items()):
                if root == merged_dir:
                    # The filesystem is usually unmounted already, which drops the mark itself.
                    self._libc.fanotify_mark(
                        self.fd,
                        FAN_MARK_REMOVE | FAN_MARK_FILESYSTEM,
                        MASK,
                        AT_FDCWD,
                        merged_dir.encode(),
                    )
                    del self.roots[dev]

    def read_events(self) -> list[FileEvent]:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        except OSError as exc:
            if exc.errno == errno.EINTR:
                return []
            raise
        out: list[FileEvent] = []
        offset = 0
        while offset + _META.size <= len(data):
            length, _vers, _res, _mlen, mask, fd, pid = _META.unpack_from(data, offset)
            if length < _META.size:
                break
            offset += length
            if mask & FAN_Q_OVERFLOW:
                self.overflows += 1
            if fd < 0:
                continue
            try:
                out.extend(self._events(fd, mask, pid))
            finally:
                os.close(fd)
        return out

    def _events(self, fd: int, mask: int, pid: int) -> list[FileEvent]:
        """One event per kind of close: the kernel merges a process's write-then-read of one
        file into a single record with both bits, and the read must not be lost in it."""
        try:
            st = os.fstat(fd)
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return []
        root = self.roots.get(st.st_dev, "")
        if root and path.startswith(root + "/"):
            path = path[len(root) :]
        if st.st_nlink == 0 and path.endswith(" (deleted)"):
            path = path[: -len(" (deleted)")]
        directory = stat.S_ISDIR(st.st_mode)
        return [
            FileEvent(pid, path, write, directory, root, st.st_ino)
            for write, bit in ((True, FAN_CLOSE_WRITE), (False, FAN_CLOSE_NOWRITE))
            if mask & bit
        ]

    def run(self, handle: Callable[[FileEvent], None], stop: threading.Event) -> None:
        while not stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                for ev in self.read_events():
                    handle(ev)

    def close(self) -> None:
        os.close(self.fd)
