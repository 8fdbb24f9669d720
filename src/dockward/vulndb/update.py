"""`dockward db update`: OSV ecosystem archives from a configurable URL, verified, swapped in.

Conditional requests (ETag / Last-Modified) skip unchanged ecosystems. Each download is checked
(size, Content-Length, the server's MD5 when it sends `x-goog-hash`, zip CRCs, every record
parsed) before a new database file replaces the old one; any failure leaves the old DB as it was.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import requests

from dockward.errors import ConnectionFailed, InputError
from dockward.vulndb.osv import iter_records
from dockward.vulndb.store import ImportStats, load_records, now_iso, open_db, rebuild

DEFAULT_URL = "https://osv-vulnerabilities.storage.googleapis.com"
DEFAULT_ECOSYSTEMS = ("PyPI", "npm", "Go", "Maven", "Debian", "Alpine", "Ubuntu")
MAX_DOWNLOAD = 4 << 30
CHUNK = 1 << 20


class UpdateError(ConnectionFailed):
    """A download that failed or did not verify; the old database is untouched."""


@dataclass(slots=True)
class UpdateResult:
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    stats: ImportStats = field(default_factory=ImportStats)


def _known(db_path: Path) -> dict[str, tuple[str, str]]:
    if not db_path.is_file():
        return {}
    conn = open_db(db_path)
    try:
        return {
            str(e): (str(t or ""), str(m or ""))
            for e, t, m in conn.execute("SELECT ecosystem, etag, last_modified FROM sources")
        }
    finally:
        conn.close()


def _download(
    session: requests.Session, url: str, headers: dict[str, str], dest: Path, timeout: float
) -> requests.Response | None:
    """Stream to `dest`; None on 304. Size and the server's own hashes are checked."""
    try:
        resp = session.get(url, headers=headers, stream=True, timeout=timeout)
    except requests.RequestException as exc:
        raise UpdateError(f"cannot download {url}: {type(exc).__name__}") from exc
    with contextlib.closing(resp):
        if resp.status_code == 304:
            return None
        if resp.status_code != 200:
            raise UpdateError(f"{url}: HTTP {resp.status_code}")
        md5 = hashlib.md5(usedforsecurity=False)
        total = 0
        try:
            with open(dest, "wb") as fh:
                for chunk in resp.iter_content(CHUNK):
                    total += len(chunk)
                    if total > MAX_DOWNLOAD:
                        raise UpdateError(f"{url}: larger than {MAX_DOWNLOAD} bytes")
                    md5.update(chunk)
                    fh.write(chunk)
        except requests.RequestException as exc:
            raise UpdateError(f"{url}: download interrupted ({type(exc).__name__})") from exc
        length = resp.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) != total:
            raise UpdateError(f"{url}: got {total} of {length} bytes")
        for part in resp.headers.get("x-goog-hash", "").split(","):
            algo, _, value = part.strip().partition("=")
            if algo == "md5" and base64.b64decode(value + "==") != md5.digest():
                raise UpdateError(f"{url}: MD5 does not match the server's x-goog-hash")
        return resp


def update_db(
    db_path: str | Path,
    base_url: str = DEFAULT_URL,
    ecosystems: Sequence[str] = DEFAULT_ECOSYSTEMS,
    *,
    timeout: float = 120.0,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    session: requests.Session | None = None,
) -> UpdateResult:
    target = Path(db_path)
    known = {} if force else _known(target)
    sess = session or requests.Session()
    result = UpdateResult()
    workdir = Path(tempfile.mkdtemp(prefix="dockward-dbupdate-"))
    try:
        fetched: list[tuple[str, str, Path, requests.Response]] = []
        for n, eco in enumerate(ecosystems, 1):
            url = f"{base_url.rstrip('/')}/{quote(eco)}/all.zip"
            headers: dict[str, str] = {}
            etag, modified = known.get(eco, ("", ""))
            if etag:
                headers["If-None-Match"] = etag
            if modified:
                headers["If-Modified-Since"] = modified
            if progress:
                progress(f"downloading {eco} {n}/{len(ecosystems)}")
            dest = workdir / f"{len(fetched)}.zip"
            resp = _download(sess, url, headers, dest, timeout)
            if resp is None:
                result.unchanged.append(eco)
            else:
                fetched.append((eco, url, dest, resp))
        if not fetched:
            return result
        with rebuild(target) as conn:
            for n, (eco, url, dest, resp) in enumerate(fetched, 1):
                if progress:
                    progress(f"importing {eco} {n}/{len(fetched)}")
                before = result.stats.records
                conn.execute(
                    "DELETE FROM affected WHERE vuln_id IN (SELECT id FROM vulns WHERE source=?)",
                    (eco,),
                )
                conn.execute("DELETE FROM vulns WHERE source=?", (eco,))
                try:
                    load_records(conn, iter_records(dest), eco, result.stats)
                except InputError as exc:
                    raise UpdateError(f"{url}: does not verify: {exc}") from exc
                count = result.stats.records - before
                if count == 0:
                    raise UpdateError(f"{url}: archive holds no OSV records")
                conn.execute(
                    "INSERT OR REPLACE INTO sources VALUES (?,?,?,?,?,?,?)",
                    (
                        eco,
                        url,
                        resp.headers.get("ETag", ""),
                        resp.headers.get("Last-Modified", ""),
                        now_iso(),
                        hashlib.sha256(dest.read_bytes()).hexdigest(),
                        count,
                    ),
                )
                result.changed.append(eco)
        return result
    finally:
        for f in workdir.iterdir():
            with contextlib.suppress(OSError):
                f.unlink()
        with contextlib.suppress(OSError):
            os.rmdir(workdir)
