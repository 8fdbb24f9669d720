"""The vulnerability database: one SQLite file, replaced atomically, never half-written."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockward.errors import DockwardError, InputError
from dockward.vulndb.osv import normalize_name, rating, validate

SCHEMA_VERSION = "1"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vulns(
  id TEXT PRIMARY KEY, summary TEXT, aliases TEXT, severity TEXT, score REAL, vector TEXT,
  published TEXT, modified TEXT, withdrawn TEXT, refs TEXT, source TEXT);
CREATE TABLE IF NOT EXISTS affected(
  vuln_id TEXT NOT NULL, ecosystem TEXT NOT NULL, base TEXT NOT NULL, name TEXT NOT NULL,
  ranges TEXT, versions TEXT, severity TEXT, score REAL);
CREATE INDEX IF NOT EXISTS affected_pkg ON affected(base, name);
CREATE INDEX IF NOT EXISTS affected_vuln ON affected(vuln_id);
CREATE INDEX IF NOT EXISTS vulns_source ON vulns(source);
CREATE TABLE IF NOT EXISTS sources(
  ecosystem TEXT PRIMARY KEY, url TEXT, etag TEXT, last_modified TEXT, fetched TEXT,
  sha256 TEXT, records INTEGER);
"""


class DatabaseError(DockwardError):
    """A missing, unreadable or incompatible vulnerability database."""


def default_db_path() -> Path:
    env = os.environ.get("DOCKWARD_DB")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(cache) / "dockward" / "vulndb.sqlite"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def open_db(path: str | Path) -> sqlite3.Connection:
    """Open an existing database read-only; a missing or foreign file is a clear error."""
    p = Path(path)
    if not p.is_file():
        raise DatabaseError(
            f"no vulnerability database at {p} (run `dockward db import PATH` or `dockward db update`)"
        )
    try:
        conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True, check_same_thread=False)
        version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{p}: not a dockward vulnerability database ({exc})") from exc
    if not version or version[0] != SCHEMA_VERSION:
        conn.close()
        raise DatabaseError(
            f"{p}: database schema {version and version[0]} is not {SCHEMA_VERSION}"
        )
    return conn


@dataclass(slots=True)
class ImportStats:
    records: int = 0
    affected: int = 0
    skipped: list[str] = field(default_factory=list)
    withdrawn: int = 0


def _insert(
    conn: sqlite3.Connection, record: dict[str, Any], source: str, stats: ImportStats
) -> None:
    rid = str(record["id"])
    conn.execute("DELETE FROM affected WHERE vuln_id=?", (rid,))
    rate = rating(record)
    refs = [r.get("url") for r in record.get("references") or [] if isinstance(r, dict)][:8]
    conn.execute(
        "INSERT OR REPLACE INTO vulns VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            rid,
            str(record.get("summary") or str(record.get("details") or "").strip().split("\n")[0])[
                :300
            ],
            json.dumps([str(a) for a in record.get("aliases") or []]),
            rate.severity,
            rate.score,
            rate.vector,
            str(record.get("published") or ""),
            str(record.get("modified") or ""),
            str(record.get("withdrawn") or ""),
            json.dumps(refs),
            source,
        ),
    )
    if record.get("withdrawn"):
        stats.withdrawn += 1
    for a in record.get("affected") or []:
        pkg = a["package"]
        eco, name = str(pkg.get("ecosystem") or ""), str(pkg.get("name") or "")
        if not eco or not name:
            continue
        ranges = [r for r in a.get("ranges") or [] if r.get("type") in ("ECOSYSTEM", "SEMVER")]
        versions = [str(v) for v in a.get("versions") or []]
        if not ranges and not versions and a.get("ranges"):
            continue  # GIT-only ranges say nothing about package versions
        own = rating(record, a)
        conn.execute(
            "INSERT INTO affected VALUES (?,?,?,?,?,?,?,?)",
            (
                rid,
                eco,
                eco.split(":", 1)[0],
                normalize_name(eco, name),
                json.dumps([{"type": r["type"], "events": r["events"]} for r in ranges]),
                json.dumps(versions),
                own.severity,
                own.score,
            ),
        )
        stats.affected += 1
    stats.records += 1


def load_records(
    conn: sqlite3.Connection,
    records: Iterable[tuple[str, dict[str, Any]]],
    source: str | Callable[[dict[str, Any]], str],
    stats: ImportStats,
) -> None:
    for origin, record in records:
        why = validate(record, origin)
        if why:
            stats.skipped.append(why)
            continue
        src = source(record) if callable(source) else source
        _insert(conn, record, src, stats)


def record_source(record: dict[str, Any]) -> str:
    for a in record.get("affected") or []:
        eco = str((a.get("package") or {}).get("ecosystem") or "")
        if eco:
            return eco.split(":", 1)[0]
    return ""


@contextlib.contextmanager
def rebuild(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A writable copy of the database; swapped in atomically only if the block succeeds.

    The previous file is kept as `<db>.bak`; on any error the old database stays as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        conn = sqlite3.connect(tmp)
        try:
            if target.is_file():
                old = open_db(target)
                try:
                    old.backup(conn)
                finally:
                    old.close()
            conn.executescript(SCHEMA)
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("BEGIN")
            yield conn
            conn.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?), ('updated', ?)",
                (SCHEMA_VERSION, now_iso()),
            )
            conn.commit()
            check = conn.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise DatabaseError(f"new database failed its integrity check: {check}")
            conn.execute("VACUUM")
        finally:
            conn.close()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        if target.is_file():
            os.replace(target, str(target) + ".bak")
            # A crash between the two renames leaves `.bak`, which `open_db` users can restore.
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def import_path(db_path: str | Path, paths: Iterable[str | Path]) -> ImportStats:
    """`dockward db import`: add or replace records from OSV files, directories or zips."""
    from dockward.vulndb.osv import iter_records

    stats = ImportStats()
    with rebuild(db_path) as conn:
        for p in paths:
            load_records(conn, iter_records(p), record_source, stats)
        if stats.records == 0:
            raise InputError("no OSV records found in " + ", ".join(str(p) for p in paths))
    return stats


@dataclass(frozen=True, slots=True)
class DbStatus:
    path: str
    updated: str
    age_days: float
    vulns: int
    by_ecosystem: dict[str, int]
    sources: list[dict[str, Any]]
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "updated": self.updated,
            "age_days": round(self.age_days, 2),
            "vulnerabilities": self.vulns,
            "by_ecosystem": self.by_ecosystem,
            "sources": self.sources,
            "size_bytes": self.size,
        }


def status(path: str | Path) -> DbStatus:
    conn = open_db(path)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        updated = str(meta.get("updated", ""))
        try:
            age = (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(updated)).total_seconds()
        except ValueError:
            age = float("inf")
        by_eco = dict(
            conn.execute(
                "SELECT base, COUNT(DISTINCT vuln_id) FROM affected GROUP BY base ORDER BY base"
            ).fetchall()
        )
        total = conn.execute("SELECT COUNT(*) FROM vulns").fetchone()[0]
        cols = ("ecosystem", "url", "etag", "last_modified", "fetched", "sha256", "records")
        sources = [
            dict(zip(cols, row, strict=True)) for row in conn.execute("SELECT * FROM sources")
        ]
    finally:
        conn.close()
    return DbStatus(
        str(path), updated, age / 86400, int(total), by_eco, sources, Path(path).stat().st_size
    )
