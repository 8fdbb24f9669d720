"""Cooldown: a new digest is taken only once it has been seen in the registry for long enough.

A release that is pulled back (or replaced) within the cooldown never reaches the host: the
clock runs per (repository, digest) from the first cycle that saw it, and a different digest
starts its own clock. Remembered in update's state directory (`cooldown.state`, atomic writes),
so restarts do not reset it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from dockward.errors import UsageError
from dockward.util.fs import atomic_write

COOLDOWN_LABELS = ("dockward.update.cooldown", "com.centurylinklabs.watchtower.cooldown")
FORGET_AFTER = 90 * 86400.0  # digests not seen for this long are dropped from the file


def parse_duration(text: str, what: str = "--cooldown") -> float:
    """`90`, `90s`, `30m`, `12h`, `7d`, `1h30m` -> seconds."""
    from dockward.update.watchtower import go_duration

    raw = text.strip().lower()
    try:
        if raw.endswith("d") and raw[:-1].replace(".", "", 1).isdigit():
            return float(raw[:-1]) * 86400.0
        value = go_duration(raw) if raw else 0.0
    except UsageError as exc:
        raise UsageError(f"{what}: expected a duration like 30m, 12h or 7d, got {text!r}") from exc
    if value < 0:
        raise UsageError(f"{what}: must not be negative")
    return value


def cooldown_for(labels: Mapping[str, str], default: float) -> float:
    """The container's label, else the global --cooldown; a bad label is the global value."""
    for key in COOLDOWN_LABELS:
        if key in labels:
            try:
                return parse_duration(labels[key], key)
            except UsageError:
                return default
    return default


class Cooldown:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, list[float]] = {}  # "repo@digest" -> [first seen, last seen]
        self._dirty = False  # nothing asked, nothing written: the state dir holds journals only
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                self._seen = {
                    str(k): [float(v[0]), float(v[1])]
                    for k, v in (data.get("seen") or {}).items()
                    if isinstance(v, list) and len(v) == 2
                }
        except (OSError, ValueError, TypeError):
            self._seen = {}

    def left(self, repository: str, digest: str, duration: float) -> float:
        """Seconds until this digest may be taken (0 = now); records the first sighting."""
        now = self.clock()
        key = f"{repository}@{digest}"
        with self._lock:
            entry = self._seen.setdefault(key, [now, now])
            entry[1] = now
            self._dirty = True
            return max(0.0, entry[0] + duration - now)

    def save(self) -> None:
        now = self.clock()
        with self._lock:
            kept = {k: v for k, v in self._seen.items() if now - v[1] < FORGET_AFTER}
            if not self._dirty and len(kept) == len(self._seen):
                return
            self._seen, self._dirty = kept, False
            data = json.dumps({"version": 1, "seen": self._seen}, sort_keys=True).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.path, data, mode=0o600)


def waiting_text(left: float) -> str:
    minutes = int(-(-left // 60))  # round up: "1 minute left" until it is really time
    return f"waiting, {minutes} minute{'s' if minutes != 1 else ''} left"
