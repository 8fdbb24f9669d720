"""Indexed layers and image configs kept between scans, so a rescan does not read them again.

A rescan is the common case: every image again after `db update`, the same base layers under
many images. Trivy keeps a cache of analysed layers for the same reason.

An entry is only ever found under a key that proves its content, never under a name an input
chose (a crafted archive must not be able to answer for a real layer):
- `file:` a region of a local archive file, by device, inode, size, mtime and ctime (ctime
  cannot be set from user space) plus the region's offset and length; stored when the region was
  read, found only while the file is unchanged;
- `diff:` a layer of the local daemon, by the diff id the daemon itself reports (the daemon
  verified it when the layer was pulled or loaded), stored from the daemon's own export;
- `config:` the daemon's image config, by the image id (the config's digest).
Entries also carry a signature of what produced them (dockward version, probes, limits): a
different probe set or a new dockward is a miss, not a stale answer.

The store is SQLite beside the vulnerability DB, bounded (least recently used entries go first).
Any error reading it is a miss; any error writing it is ignored: a cache never fails a scan.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sqlite3
import struct
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dockward import __version__
from dockward.image.fs import Entry, LayerIndex, Probe
from dockward.image.tarstream import Limits

FORMAT = 1
DEFAULT_MAX_BYTES = 2 << 30
SCHEMA = """
CREATE TABLE IF NOT EXISTS layers(
  key TEXT NOT NULL, sig TEXT NOT NULL, data BLOB NOT NULL, size INTEGER NOT NULL,
  used REAL NOT NULL, PRIMARY KEY (key, sig));
CREATE INDEX IF NOT EXISTS layers_used ON layers(used);
"""
_LEN = struct.Struct("<I")


# The code that turns a layer into an index: any change to it is a different signature, so a
# cache never answers with what older code found.
_PRODUCERS = (
    "dockward.image.tarstream",
    "dockward.image.fs",
    "dockward.image.archive",
    "dockward.image.daemon",
    "dockward.sbom.probes",
    "dockward.scan.layercache",
)


def signature(probes: Sequence[Probe], limits: Limits) -> str:
    """What produced an index: two scans with the same signature index a layer identically."""
    h = hashlib.sha256(f"v{FORMAT};{__version__};{limits!r}".encode())
    for p in probes:
        h.update(f";{type(p).__name__}:{p.name}:{getattr(p, 'limit', '')}".encode())
    for name in _PRODUCERS:
        source = getattr(importlib.import_module(name), "__file__", None)
        h.update(Path(source).read_bytes() if source else name.encode())
    return h.hexdigest()


def _encode_value(value: Any, payloads: list[bytes]) -> list[Any] | None:
    from dockward.sbom.probes import GoBuildInfo

    if value is None:
        return ["n"]
    if isinstance(value, bytes):
        payloads.append(value)
        return ["b", len(payloads) - 1]
    if isinstance(value, GoBuildInfo):
        return ["g", value.go_version, value.modinfo]
    return None


def _decode_value(tag: list[Any], payloads: list[bytes]) -> Any:
    from dockward.sbom.probes import GoBuildInfo

    if tag[0] == "n":
        return None
    if tag[0] == "b":
        return payloads[int(tag[1])]
    if tag[0] == "g":
        return GoBuildInfo(str(tag[1]), str(tag[2]))
    raise ValueError(f"unknown value tag {tag[0]!r}")


def encode(index: LayerIndex) -> bytes | None:
    """A layer index as bytes (no pickle: the file is data, never code); None if it can't be."""
    payloads: list[bytes] = []
    probed: dict[str, dict[str, list[Any]]] = {}
    for probe, found in index.probed.items():
        slot = probed.setdefault(probe, {})
        for path, value in found.items():
            tag = _encode_value(value, payloads)
            if tag is None:
                return None
            slot[path] = tag
    head = json.dumps(
        {
            "entries": [
                [e.path, e.kind, e.mode, e.uid, e.gid, e.size, e.layer, e.link]
                for e in index.entries
            ],
            "probed": probed,
            "sizes": [len(p) for p in payloads],
            "size": index.size,
        },
        separators=(",", ":"),
    ).encode()
    return zlib.compress(_LEN.pack(len(head)) + head + b"".join(payloads), 1)


def decode(data: bytes, digest: str) -> LayerIndex:
    raw = zlib.decompress(data)
    (n,) = _LEN.unpack_from(raw)
    head = json.loads(raw[_LEN.size : _LEN.size + n])
    payloads: list[bytes] = []
    pos = _LEN.size + n
    for size in head["sizes"]:
        payloads.append(raw[pos : pos + size])
        pos += size
    if pos != len(raw):
        raise ValueError("payload sizes do not add up")
    out = LayerIndex(digest, size=int(head["size"]))
    out.entries = [
        Entry(str(p), str(k), int(m), int(u), int(g), int(s), int(la), str(li))
        for p, k, m, u, g, s, la, li in head["entries"]
    ]
    out.probed = {
        probe: {path: _decode_value(tag, payloads) for path, tag in found.items()}
        for probe, found in head["probed"].items()
    }
    return out


class LayerCache:
    """`get(key)` / `put(key, index)` for layer indexes, `get_config` / `put_config`."""

    def __init__(self, path: str | Path, sig: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(path)
        self.sig = sig
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._conn: sqlite3.Connection | None = None
        self._broken = False

    def _db(self) -> sqlite3.Connection | None:
        if self._conn is not None or self._broken:
            return self._conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Probed files can hold secrets (the secret check masks them on output): the file is
            # made 0600 before SQLite opens it, and SQLite gives its -wal/-shm files the
            # database file's mode.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
            conn = sqlite3.connect(self.path, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
        except (OSError, sqlite3.Error):
            self._broken = True
            return None
        self._conn = conn
        return conn

    def _get(self, key: str) -> bytes | None:
        conn = self._db()
        if conn is None:
            return None
        try:
            row = conn.execute(
                "SELECT data FROM layers WHERE key=? AND sig=?", (key, self.sig)
            ).fetchone()
            if row is not None:
                with conn:
                    conn.execute(
                        "UPDATE layers SET used=? WHERE key=? AND sig=?",
                        (time.time(), key, self.sig),
                    )
        except sqlite3.Error:
            return None
        return bytes(row[0]) if row is not None else None

    def _put(self, key: str, data: bytes) -> None:
        conn = self._db()
        if conn is None or len(data) > self.max_bytes:
            return
        try:
            with conn:
                conn.execute(
                    "INSERT OR REPLACE INTO layers VALUES (?,?,?,?,?)",
                    (key, self.sig, data, len(data), time.time()),
                )
                total = conn.execute("SELECT COALESCE(SUM(size), 0) FROM layers").fetchone()[0]
                if total > self.max_bytes:
                    self._evict(conn, int(total) - self.max_bytes)
        except sqlite3.Error:
            return

    @staticmethod
    def _evict(conn: sqlite3.Connection, excess: int) -> None:
        doomed: list[tuple[str, str]] = []
        for key, sig, size in conn.execute("SELECT key, sig, size FROM layers ORDER BY used"):
            if excess <= 0:
                break
            doomed.append((key, sig))
            excess -= int(size)
        conn.executemany("DELETE FROM layers WHERE key=? AND sig=?", doomed)

    def get(self, key: str, digest: str) -> LayerIndex | None:
        data = self._get(key)
        if data is not None:
            try:
                index = decode(data, digest)
            except (ValueError, KeyError, TypeError, IndexError, zlib.error, struct.error):
                index = None  # a damaged entry is a miss
            if index is not None:
                self.hits += 1
                return index
        self.misses += 1
        return None

    def put(self, key: str, index: LayerIndex) -> None:
        data = encode(index)
        if data is not None:
            self._put(key, data)

    def get_config(self, image_id: str) -> dict[str, Any] | None:
        data = self._get(f"config:{image_id}")
        if data is None:
            return None
        try:
            doc = json.loads(zlib.decompress(data))
        except (ValueError, zlib.error):
            return None
        return doc if isinstance(doc, dict) else None

    def put_config(self, image_id: str, config: dict[str, Any]) -> None:
        self._put(f"config:{image_id}", zlib.compress(json.dumps(config).encode(), 1))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
