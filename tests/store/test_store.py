"""The result store on SQLite and on a real PostgreSQL: migrations, batches, retention, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockward.model.finding import Report, Result, Rule, Severity, Status
from dockward.store import Store, StoreError, open_store, parse_duration, redact
from tests.conftest import REPO, kill_after

PRIV = Rule("DW-C001", "privileged", Severity.CRITICAL, "container", "drop --privileged")
USER = Rule("DW-C010", "root user", Severity.MEDIUM, "container", "set a user")
CVE = Rule(
    "CVE-2024-0001",
    "bad",
    Severity.HIGH,
    "vulnerability",
    "upgrade",
    scored=False,
    groups=("vulnerable-image",),
)


def report(host: str, privileged: bool) -> Report:
    results = (
        Result(PRIV, Status.FAIL if privileged else Status.PASS, "container web", "p", host=host),
        Result(USER, Status.FAIL, "container web", "root", host=host),
        Result(USER, Status.FAIL, "container db", "root", host=host, waived="accepted"),
        Result(CVE, Status.FAIL, "image web:1", "openssl", host=host),
    )
    return Report("audit", results, hosts=(host,))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "h.sqlite")
    cluster = request.getfixturevalue("pg_cluster")
    return str(cluster.create_db(f"dw_{os.getpid()}_{abs(hash(tmp_path.name)) % 100000}"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


def test_batch_is_recorded_with_findings_and_errors(store: Store) -> None:
    assert store.schema_version() == 4
    t = time.time()
    with store.batch("audit") as b:
        b.record("unix:///a.sock", report("a", True), t, t + 1, "rs1")
        b.record("ssh://b", None, t, t + 2, "rs1", error="cannot reach the Docker daemon")
    latest = {r.host: r for r in store.latest()}
    a, down = latest["unix:///a.sock"], latest["ssh://b"]
    assert a.ok and a.failed == 3 and a.passed == 0 and a.batch == down.batch
    assert a.vulnerable_images == {"high": 1}
    assert not down.ok and down.error.startswith("cannot reach")
    found = store.findings(a.id)
    assert {f.rule_id for f in found if f.vulnerable_image} == {"CVE-2024-0001"}
    assert {(f.rule_id, f.target, f.failing) for f in found} == {
        ("DW-C001", "container web", True),
        ("DW-C010", "container web", True),
        ("DW-C010", "container db", False),
        ("CVE-2024-0001", "image web:1", True),
    }
    assert store.findings(down.id) == []


def test_passes_are_counted_not_stored(store: Store) -> None:
    t = time.time()
    with store.batch("audit") as b:
        rid = b.record("h", report("h", False), t, t, "rs")
    run = store.run(rid)
    assert run is not None and run.passed == 1 and run.score == 50.0
    assert all(f.rule_id != "DW-C001" for f in store.findings(rid))


def test_a_failed_batch_leaves_no_trace(store: Store) -> None:
    t = time.time()
    with store.batch("audit") as b:
        b.record("h", report("h", False), t, t, "rs")
    before = store.runs()
    with pytest.raises(RuntimeError), store.batch("audit") as b:
        b.record("h", report("h", True), t + 5, t + 6, "rs")
        raise RuntimeError("collector crashed")
    assert store.runs() == before


def test_retention_drops_old_runs_only(store_url: str) -> None:
    store = open_store(store_url, retention_days=30)
    now = time.time()
    with store.batch("audit") as b:
        old = b.record("h", report("h", True), now - 40 * 86400, now - 40 * 86400, "rs")
        b.record("h", report("h", True), now - 10 * 86400, now - 10 * 86400, "rs")
    # the batch itself pruned the run older than 30 days, and its findings with it
    assert [r.started for r in store.runs()] == [pytest.approx(now - 10 * 86400)]
    assert store.findings(old) == []
    store.close()
    keep = open_store(store_url, retention_days=0)
    with keep.batch("audit") as b:
        b.record("h", report("h", True), now - 900 * 86400, now, "rs")
    assert len(keep.runs()) == 2
    keep.close()


def test_migrations_upgrade_a_v1_store_and_keep_its_runs(store_url: str) -> None:
    first = open_store(store_url)
    first.close()
    # Build a fresh v1 store by hand and fill it, then let open_store upgrade it.
    s = _fresh_at_version(store_url, 1)
    t = time.time()
    s._exec(
        "INSERT INTO runs (batch, host, command, started, finished, tool_version, ruleset, status,"
        " error, score, passed, failed) VALUES ('b', 'h', 'audit', ?, ?, '0.0', 'r', 'ok', '', 90,"
        " 9, 1)",
        (t, t),
    )
    assert s.schema_version() == 1
    s.close()
    upgraded = open_store(store_url)
    assert upgraded.schema_version() == 4
    index = (
        "SELECT indexname FROM pg_indexes WHERE tablename = 'findings'"
        if upgraded.dialect == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'findings'"
    )
    names = {row[0] for row in upgraded._all(index)}
    assert "findings_run_key" in names and "findings_run" not in names  # drift's anti-join
    (run,) = upgraded.runs()
    assert run.score == 90 and run.vulnerable_images == {} and run.warnings == 0
    # migrating again is a no-op
    assert upgraded.migrate() == 4
    upgraded.close()


def test_migration_4_marks_stored_vulnerable_findings_and_adds_outdated(store_url: str) -> None:
    open_store(store_url).close()
    s = _fresh_at_version(store_url, 3)
    t = time.time()
    run_id = int(
        s._exec(
            "INSERT INTO runs (batch, host, command, started, finished, tool_version, ruleset, "
            "status, error, score, passed, failed) VALUES ('b', 'h', 'audit', ?, ?, '0.0', 'r', "
            "'ok', '', 90, 9, 3) RETURNING id",
            (t, t),
        ).fetchone()[0]
    )
    for rule_id, kind in (("CVE-2024-0001", "vulnerability"), ("DW-I007", "image"), PRIV_ROW):
        s._exec(
            "INSERT INTO findings (run_id, rule_id, kind, title, severity, status, target, "
            "message, waived, remediation, cis) VALUES (?, ?, ?, 't', 4, 'fail', 'image a:1', "
            "'m', '', 'r', '')",
            (run_id, rule_id, kind),
        )
    s.close()
    upgraded = open_store(store_url)
    assert upgraded.schema_version() == 4
    assert {f.rule_id for f in upgraded.findings(run_id) if f.vulnerable_image} == {
        "CVE-2024-0001",
        "DW-I007",
    }
    (run,) = upgraded.runs()
    assert run.outdated == 0
    with upgraded.batch("update") as b:
        rid = b.record("h", Report("update", ()), t, t + 1, "rs", outdated=2)
    assert [r.outdated for r in upgraded.latest("update")] == [2] and rid
    upgraded.close()


PRIV_ROW = ("DW-C001", "container")


def test_vulnerable_images_follow_the_rules_declaration(store: Store) -> None:
    from dockward.catalog import default_rules

    cis44 = default_rules().get("DW-I007").rule  # kind image, declares vulnerable-image
    t = time.time()
    results = (
        Result(cis44, Status.FAIL, "image app:1", "2 critical", host="h"),
        Result(PRIV, Status.FAIL, "container web", "p", host="h"),
    )
    with store.batch("audit") as b:
        rid = b.record("h", Report("audit", results, hosts=("h",)), t, t, "rs")
    run = store.run(rid)
    assert run is not None and run.vulnerable_images == {"high": 1}
    assert [f.rule_id for f in store.findings(rid) if f.vulnerable_image] == ["DW-I007"]


def _fresh_at_version(url: str, version: int) -> Store:
    store = open_store(url)
    for table in ("findings", "runs", "schema_migrations"):
        store._exec(f"DROP TABLE IF EXISTS {table}")
    store.migrate(target=version)
    return store


def test_bad_store_urls_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"cannot connect to store postgresql://u:\*\*\*@"):
        open_store("postgresql://u:secret@127.0.0.1:1/x")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot open store"):
        open_store(str(blocker / "sub" / "h.sqlite"))
    assert redact("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert parse_duration("7d") == 7 * 86400 and parse_duration("90m") == 5400
    with pytest.raises(StoreError):
        parse_duration("soon")


def test_sqlite_store_file_is_private(tmp_path: Path) -> None:
    open_store(str(tmp_path / "p" / "h.sqlite")).close()
    assert (tmp_path / "p" / "h.sqlite").stat().st_mode & 0o077 == 0


WRITER = """
import sys, time
from dockward.model.finding import Report, Result, Rule, Severity, Status
from dockward.store import open_store
rule = Rule("DW-C001", "privileged", Severity.CRITICAL, "container", "fix")
store = open_store(sys.argv[1])
with store.batch("audit") as b:
    for i in range(50):
        rep = Report("audit", tuple(Result(rule, Status.FAIL, f"container c{j}", host=f"h{i}") for j in range(20)))
        b.record(f"h{i}", rep, time.time(), time.time(), "rs")
    print("written", flush=True)
    time.sleep(60)
"""


def test_kill_9_mid_run_leaves_history_intact(store_url: str) -> None:
    store = open_store(store_url)
    t = time.time()
    with store.batch("audit") as b:
        b.record("h0", report("h0", True), t, t, "rs")
    before = [(r.id, r.host) for r in store.runs()]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, store_url], stdout=subprocess.PIPE, text=True, env=env
    )
    watchdog = kill_after(proc, 60)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "written"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    watchdog.cancel()
    again = open_store(store_url)
    assert [(r.id, r.host) for r in again.runs()] == before
    assert len(again.findings(before[0][0])) == 4
    # and the store takes the next run
    with again.batch("audit") as b:
        b.record("h1", report("h1", False), t, t, "rs")
    assert len(again.runs()) == 2
    again.close()
    store.close()


def test_unreachable_postgres_fails_fast(pg_cluster: Any) -> None:
    with pytest.raises(StoreError, match="cannot connect"):
        open_store(f"postgresql://postgres@/nosuchdb?host={pg_cluster.root}")
