"""The OSV database: import, OSV range semantics, severity, and `db update` over real HTTP."""

from __future__ import annotations

import json
import shutil
import sqlite3
import zipfile
from pathlib import Path

import pytest

from dockward.errors import InputError
from dockward.sbom.model import Package
from dockward.vulndb import (
    UpdateError,
    import_path,
    match_packages,
    open_db,
    status,
    update_db,
)
from dockward.vulndb.match import evaluate, release_applies
from dockward.vulndb.osv import cvss_score, rating
from dockward.vulndb.versions import compare_pep440, compare_semver
from tests.conftest import run_cli
from tests.scan.conftest import OSV, maven_db


def pkg(name: str, version: str, eco: str, src: str = "", src_v: str = "") -> Package:
    return Package(name, version, "x", f"pkg:x/{name}@{version}", eco, "test", "", (), src, src_v)


def test_import_and_match(vulndb: Path) -> None:
    conn = open_db(vulndb)
    try:
        found = match_packages(
            conn,
            [
                pkg("Requests", "2.30.0", "PyPI"),  # PEP 503 names
                pkg("requests", "2.31.0", "PyPI"),
                pkg("github.com/gin-gonic/gin", "v1.5.0", "Go"),
                pkg("github.com/gin-gonic/gin", "v1.6.0", "Go"),
                pkg("py", "1.11.0", "PyPI"),
                pkg("py", "1.11.1", "PyPI"),
            ],
        )
    finally:
        conn.close()
    got = {(m.package.name, m.package.version, m.vuln_id, m.fixed) for m in found}
    assert ("Requests", "2.30.0", "PYSEC-2023-74", "2.31.0") in got
    assert ("github.com/gin-gonic/gin", "v1.5.0", "GO-2020-0001", "1.6.0") in got
    assert ("py", "1.11.0", "PYSEC-2022-42969", "") in got  # last_affected is inclusive
    assert not any(v in ("2.31.0", "v1.6.0", "1.11.1") for _, v, _, _ in got)


def test_osv_evaluation_semantics() -> None:
    rng = [
        {
            "type": "ECOSYSTEM",
            "events": [
                {"introduced": "1.0"},
                {"fixed": "1.5"},
                {"introduced": "2.0"},
                {"last_affected": "2.2"},
            ],
        }
    ]
    cases = {
        "0.9": False,
        "1.0": True,
        "1.4.9": True,
        "1.5": False,
        "2.0": True,
        "2.2": True,
        "2.2.1": False,
    }
    for version, want in cases.items():
        assert evaluate(compare_pep440, version, rng, [])[0] is want, version
    assert evaluate(compare_pep440, "1.2", rng, [])[1] == "1.5"
    limit = [{"type": "SEMVER", "events": [{"introduced": "0"}, {"limit": "2.0.0"}]}]
    assert evaluate(compare_semver, "1.9.9", limit, [])[0]
    assert not evaluate(compare_semver, "2.0.0", limit, [])[0]
    assert evaluate(compare_pep440, "3.0", [], ["3.0"])[0]  # explicit versions list
    assert evaluate(compare_pep440, "3.0", [], [])[0]  # no ranges, no versions: all affected


def test_release_applies() -> None:
    assert release_applies("Debian:12", "Debian:12")
    assert not release_applies("Debian:11", "Debian:12")
    assert release_applies("Debian", "Debian:12")
    assert release_applies("Ubuntu:22.04:LTS", "Ubuntu:22.04")
    assert not release_applies("Alpine:v3.19", "Alpine:v3.20")


def test_severity_from_cvss_and_labels() -> None:
    assert cvss_score("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == 9.8
    assert (
        cvss_score("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")
        == 9.3
    )
    assert cvss_score("CVSS_V3", "garbage") is None
    assert rating({"database_specific": {"severity": "MODERATE"}}).severity == "medium"
    assert rating({}).severity == ""
    rec = {
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"}]
    }
    assert rating(rec).severity == "low"


def test_import_is_atomic_and_errors_are_clear(tmp_path: Path) -> None:
    db = tmp_path / "v.sqlite"
    import_path(db, [OSV / "PyPI"])
    before = status(db).vulns
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match=r"bad\.json: not a valid OSV record"):
        import_path(db, [OSV / "Go", bad])
    assert status(db).vulns == before  # nothing of the failed import landed
    assert not list(tmp_path.glob(".v.sqlite.*.tmp"))
    with pytest.raises(InputError, match="no OSV records"):
        import_path(db, [_empty(tmp_path)])
    r = run_cli("db", "--db", str(db), "import", str(tmp_path / "nope.json"))
    assert r.code == 2 and "no such file" in r.err
    r = run_cli("db", "--db", str(tmp_path / "missing.sqlite"), "status")
    assert r.code == 2 and "no vulnerability database" in r.err


def _empty(tmp_path: Path) -> Path:
    d = tmp_path / "empty"
    d.mkdir(exist_ok=True)
    return d


def _zip_of(src: Path, dest: Path) -> None:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(src.iterdir()):
            if f.suffix == ".json":
                zf.write(f, f.name)


def test_db_update_conditional_verified_atomic(
    tmp_path: Path, http_dir: tuple[str, Path, list[dict[str, str]]]
) -> None:
    url, root, log = http_dir
    (root / "Go").mkdir()
    (root / "Debian").mkdir()
    _zip_of(OSV / "Go", root / "Go" / "all.zip")
    _zip_of(OSV / "Debian", root / "Debian" / "all.zip")
    db = tmp_path / "db.sqlite"
    res = update_db(db, url, ["Go", "Debian"])
    assert sorted(res.changed) == ["Debian", "Go"] and res.stats.records == 6
    st = status(db)
    assert st.by_ecosystem == {"Debian": 4, "Go": 2}
    assert {s["ecosystem"] for s in st.sources} == {"Go", "Debian"}
    # second run: conditional request, nothing downloaded, DB untouched
    mtime = db.stat().st_mtime_ns
    res = update_db(db, url, ["Go", "Debian"])
    assert res.unchanged == ["Go", "Debian"] and not res.changed
    assert log[-1].get("if-none-match") and db.stat().st_mtime_ns == mtime
    # a new archive with a record fewer replaces that ecosystem's records
    newer = tmp_path / "newgo"
    newer.mkdir()
    shutil.copy(OSV / "Go" / "GO-2020-0001.json", newer)
    _zip_of(newer, root / "Go" / "all.zip")
    update_db(db, url, ["Go", "Debian"])
    assert status(db).by_ecosystem == {"Debian": 4, "Go": 1}
    # corrupt archive: refused, old DB still usable and unchanged
    (root / "Go" / "all.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(UpdateError):
        update_db(db, url, ["Go"])
    assert status(db).by_ecosystem == {"Debian": 4, "Go": 1}
    # MD5 mismatch against the server's x-goog-hash: refused
    _zip_of(OSV / "Go", root / "Go" / "all.zip")
    (root / "Go" / "all.zip.md5").write_bytes(b"0" * 16)
    with pytest.raises(UpdateError, match="MD5"):
        update_db(db, url, ["Go"])
    (root / "Go" / "all.zip.md5").unlink()
    # unreachable or missing: a one-line error from the CLI, exit 2, DB kept
    r = run_cli("db", "--db", str(db), "update", "--url", url, "--ecosystem", "npm")
    assert r.code == 2 and "HTTP 404" in r.err
    assert status(db).vulns == 5
    r = run_cli("db", "--db", str(db), "status", "--format", "json")
    assert r.code == 0 and json.loads(r.out)["stale"] is False
    r = run_cli("db", "--db", str(db), "status", "--max-age", "0")
    assert r.code == 1 and "days old" in r.err
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_maven_advisories_match_java_packages(tmp_path: Path) -> None:
    """A Maven OSV record (ranges in Maven's version order) through the real import and match."""
    db = maven_db(tmp_path)
    name = "com.fasterxml.jackson.core:jackson-databind"
    conn = open_db(db)
    try:
        found = match_packages(
            conn,
            [
                pkg(name, "2.9.10", "Maven"),  # below 2.9.10.1 in Maven's order
                pkg(name, "2.9.10.1", "Maven"),
                pkg(name, "2.9.0-rc1", "Maven"),  # a pre-release sorts before 2.9.0
                pkg(name, "2.10.0", "Maven"),
            ],
        )
    finally:
        conn.close()
    assert {(m.package.version, m.fixed) for m in found} == {("2.9.10", "2.9.10.1")}
