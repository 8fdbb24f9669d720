"""Which image digests were scanned, when, against which DB, and their worst severity.

The proxy and the updater ask this before they let an image run.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockward.model.finding import Severity
from dockward.vulndb.store import default_db_path, now_iso

if TYPE_CHECKING:
    from dockward.scan.core import ScanResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS scans(
  image_id TEXT PRIMARY KEY, manifest_digest TEXT, repo_digests TEXT, name TEXT,
  scanned TEXT, db_updated TEXT, worst TEXT, worst_finding TEXT, counts TEXT);
"""


@dataclass(frozen=True, slots=True)
class ScanSummary:
    image_id: str
    name: str
    scanned: str
    db_updated: str
    worst: Severity | None  # worst unwaived vulnerability
    worst_finding: Severity | None  # worst failing result incl. image checks
    counts: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "name": self.name,
            "scanned": self.scanned,
            "db_updated": self.db_updated,
            "worst": self.worst.label if self.worst is not None else None,
            "worst_finding": self.worst_finding.label if self.worst_finding is not None else None,
            "counts": self.counts,
        }


def _sev(text: str | None) -> Severity | None:
    return Severity.parse(text) if text else None


class ScanCache:
    """A small SQLite file (default: `scans.sqlite` beside the vulnerability DB)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_db_path().with_name("scans.sqlite")

    def _conn(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10)
        conn.executescript(SCHEMA)
        return conn

    def record(self, result: ScanResult) -> None:
        worst, finding = result.worst, result.worst_finding
        conn = self._conn()
        try:
            with conn:
                conn.execute(
                    "INSERT OR REPLACE INTO scans VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        result.image_id,
                        result.manifest_digest,
                        json.dumps(list(result.repo_digests)),
                        result.image,
                        now_iso(),
                        result.db_updated,
                        worst.label if worst is not None else "",
                        finding.label if finding is not None else "",
                        json.dumps(result.counts()),
                    ),
                )
        finally:
            conn.close()

    def lookup(self, digest: str) -> ScanSummary | None:
        """By image id (config digest), manifest digest, or `repo@sha256:...` repo digest."""
        want = digest.rsplit("@", 1)[-1]
        return next((s for digests, s in self.summaries() if want in digests), None)

    def summaries(self) -> list[tuple[frozenset[str], ScanSummary]]:
        """Every record once, with the digests it answers for (one read for many lookups)."""
        if not self.path.is_file():
            return []
        conn = self._conn()
        try:
            rows = conn.execute("SELECT * FROM scans").fetchall()
        finally:
            conn.close()
        out = []
        for (
            image_id,
            manifest,
            repo_digests,
            name,
            scanned,
            db_updated,
            worst,
            finding,
            counts,
        ) in rows:
            digests = frozenset(
                {image_id, manifest, *(d.rsplit("@", 1)[-1] for d in json.loads(repo_digests))}
                - {""}
            )
            summary = ScanSummary(
                image_id, name, scanned, db_updated, _sev(worst), _sev(finding), json.loads(counts)
            )
            out.append((digests, summary))
        return out
