"""A crash-safe journal of each in-flight update: one JSON file per container, written atomically.

The journal is written *before* each change to the host, so after a `kill -9` at any point the
next run knows what may have happened and can finish (after the commit point) or roll back.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from dockward.errors import ConfigError, DockwardError
from dockward.util.fs import atomic_write

# Steps in order; `healthy` is the commit point: before it a recovery rolls back, after it
# a recovery finishes the update.
PHASES = ("begin", "stopped", "renamed", "created", "started", "healthy")
COMMIT_PHASE = "healthy"
_ID = re.compile(r"[0-9a-f]{64}")
JOURNAL_VERSION = 1


@dataclass(frozen=True, slots=True)
class Entry:
    old_id: str
    name: str
    backup_name: str
    image: str
    old_image_id: str
    new_image_id: str
    was_running: bool
    plan: dict[str, Any]
    phase: str = "begin"
    new_id: str = ""
    started: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def committed(self) -> bool:
        return PHASES.index(self.phase) >= PHASES.index(COMMIT_PHASE)

    def at(self, phase: str, **changes: Any) -> Entry:
        if phase not in PHASES:
            raise ValueError(f"unknown journal phase {phase!r}")
        return replace(self, phase=phase, **changes)


def default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/dockward/update")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dockward" / "update"


class Journal:
    """The journal directory plus an exclusive lock: one updater per host at a time."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self._lock_fd: int | None = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[Journal]:
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot use state dir {self.dir}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise DockwardError(
                f"another dockward update holds {self.dir / 'lock'}; wait for it to finish"
            ) from exc
        self._lock_fd = fd
        try:
            yield self
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            self._lock_fd = None

    def _path(self, old_id: str) -> Path:
        if not _ID.fullmatch(old_id):
            raise ValueError(f"not a container id: {old_id[:80]!r}")
        return self.dir / f"{old_id}.json"

    def write(self, entry: Entry) -> None:
        data = {"version": JOURNAL_VERSION, **asdict(entry)}
        atomic_write(
            self._path(entry.old_id), json.dumps(data, indent=1, sort_keys=True), mode=0o600
        )

    def remove(self, entry: Entry) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(entry.old_id))
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def pending(self) -> list[Entry]:
        """Entries left by an interrupted run, oldest first."""
        if not self.dir.is_dir():
            return []
        out: list[Entry] = []
        for path in sorted(self.dir.glob("*.json")):
            if not _ID.fullmatch(path.stem):
                continue
            try:
                data = json.loads(path.read_text("utf-8"))
                data.pop("version", None)
                entry = Entry(**data)
                if entry.phase not in PHASES:
                    raise ValueError(entry.phase)
            except (OSError, ValueError, TypeError) as exc:
                raise ConfigError(f"update journal {path} is unreadable: {exc}") from exc
            out.append(entry)
        out.sort(key=lambda e: e.started)
        return out
