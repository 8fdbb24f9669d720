"""A bounded on-disk spool of undelivered alerts: one atomically written file per alert."""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

from dockward.errors import ConfigError
from dockward.util.fs import atomic_write


class Spool:
    """Oldest-first queue on disk; survives restarts. `put` returns False when full."""

    def __init__(
        self, directory: str | Path, max_files: int = 10000, max_bytes: int = 64 << 20
    ) -> None:
        self.dir = Path(directory)
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(f"spool directory {self.dir}: {exc.strerror}") from exc
        self.max_files = max_files
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._files = 0
        self._bytes = 0
        for p in self._names():
            self._files += 1
            self._bytes += _size(self.dir / p)

    def _names(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.dir) if n.endswith(".json"))
        except OSError:
            return []

    def __len__(self) -> int:
        return self._files

    @property
    def bytes(self) -> int:
        return self._bytes

    def put(self, text: str) -> bool:
        data = text.encode("utf-8")
        with self._lock:
            if self._files >= self.max_files or self._bytes + len(data) > self.max_bytes:
                return False
            name = f"{time.time_ns():020d}-{next(self._seq) % 10**9:09d}.json"
            try:
                atomic_write(self.dir / name, data, mode=0o600)
            except OSError:
                return False
            self._files += 1
            self._bytes += len(data)
            return True

    def oldest(self, limit: int) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for name in self._names()[:limit]:
            try:
                out.append((name, (self.dir / name).read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError):
                self.remove(name)  # unreadable: counted and dropped by the caller's totals
        return out

    def remove(self, name: str) -> None:
        path = self.dir / name
        size = _size(path)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        with self._lock:
            self._files = max(0, self._files - 1)
            self._bytes = max(0, self._bytes - size)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
