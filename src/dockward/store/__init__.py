"""The result store: every run of every host, in SQLite (the default) or PostgreSQL.

A fleet run is one transaction: a crash (kill -9) before it commits leaves the history as it was.
Passing results are counted on the run, not stored one by one; everything else is a finding row.
"""

# ruff: noqa: S608 - queries join constant column lists; every value is a bound parameter
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dockward.errors import DockwardError
from dockward.model.finding import Report, Result, Rule, Severity, Status
from dockward.rules.groups import VULNERABLE_IMAGE

DEFAULT_RETENTION_DAYS = 365


class StoreError(DockwardError):
    """The result store cannot be opened, migrated, read or written."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One host's part of one run."""

    id: int
    batch: str
    host: str
    command: str
    started: float
    finished: float
    tool_version: str
    ruleset: str
    status: str
    error: str
    score: float
    passed: int
    failed: int
    vulnerable_images: dict[str, int]
    warnings: int
    outdated: int = 0  # update runs: containers left on an outdated image

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True, slots=True)
class Finding:
    """A stored result that did not pass."""

    rule_id: str
    kind: str
    title: str
    severity: Severity
    status: Status
    target: str
    message: str
    waived: str
    remediation: str
    cis: str
    vulnerable: bool = False  # its rule declares the group vulnerable-image

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule_id, self.target)

    @property
    def failing(self) -> bool:
        return self.status is Status.FAIL and not self.waived

    @property
    def vulnerable_image(self) -> bool:
        return self.failing and self.vulnerable


def image_key(target: str) -> str:
    """The image a vulnerability result names: registry scans target "IMAGE: package@version"."""
    return target.split(": ", 1)[0]


def default_store_url() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return str(Path(base) / "dockward" / "history.sqlite")


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc[-1]}"))


def ruleset_digest(rules: Iterable[Rule]) -> str:
    """A short digest of the rule set's ids, severities and CIS ids: runs judged by different
    rules are told apart in the history."""
    text = "\n".join(sorted(f"{r.id}:{r.severity.label}:{r.cis}" for r in rules))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def names_vulnerable_image(rule: Rule) -> bool:
    """A failure of RULE names a vulnerable image: the rule says so (its groups)."""
    return VULNERABLE_IMAGE in rule.groups


def vulnerable_images(results: Iterable[Result]) -> dict[str, int]:
    """Images by their worst failing vulnerability severity."""
    worst: dict[str, Severity] = {}
    for r in results:
        if r.failing and names_vulnerable_image(r.rule):
            key = image_key(r.target)
            worst[key] = max(worst.get(key, Severity.INFO), r.severity)
    out: dict[str, int] = {}
    for sev in worst.values():
        out[sev.label] = out.get(sev.label, 0) + 1
    return out


def parse_duration(text: str) -> float:
    """'90d', '12h', '30m', '45s', '2w' -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text or "")
    if not m:
        raise StoreError(f"bad duration {text!r} (expected a number with s, m, h, d or w)")
    unit = {"": 86400, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[m.group(2)]
    return float(m.group(1)) * unit


_RUN_COLUMNS = (
    "id, batch, host, command, started, finished, tool_version, ruleset, status, error, score, "
    "passed, failed, vulnerable_images, warnings, outdated"
)
_FINDING_COLUMNS = (
    "rule_id, kind, title, severity, status, target, message, waived, remediation, cis, vulnerable"
)


# The drift query's "newly vulnerable" rows carry only a target: typed zeros elsewhere.
_VULN_ROW = {"severity": "0", "vulnerable": "1"}


def _run(row: Sequence[Any]) -> RunInfo:
    return RunInfo(
        id=int(row[0]),
        batch=str(row[1]),
        host=str(row[2]),
        command=str(row[3]),
        started=float(row[4]),
        finished=float(row[5]),
        tool_version=str(row[6]),
        ruleset=str(row[7]),
        status=str(row[8]),
        error=str(row[9]),
        score=float(row[10]),
        passed=int(row[11]),
        failed=int(row[12]),
        vulnerable_images={str(k): int(v) for k, v in json.loads(row[13] or "{}").items()},
        warnings=int(row[14]),
        outdated=int(row[15]),
    )


def _finding(row: Sequence[Any]) -> Finding:
    return Finding(
        rule_id=str(row[0]),
        kind=str(row[1]),
        title=str(row[2]),
        severity=Severity(int(row[3])),
        status=Status(str(row[4])),
        target=str(row[5]),
        message=str(row[6]),
        waived=str(row[7]),
        remediation=str(row[8]),
        cis=str(row[9]),
        vulnerable=bool(row[10]),
    )


def migrations(dialect: str) -> list[tuple[int, str, list[str]]]:
    """The shipped migrations of one dialect: (version, name, statements), in order."""
    folder = resources.files("dockward.store") / "migrations" / dialect
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        version = int(entry.name.split("_", 1)[0])
        text = "\n".join(
            line
            for line in entry.read_text(encoding="utf-8").splitlines()
            if not line.startswith("--")
        )
        statements = [s.strip() for s in text.split(";") if s.strip()]
        out.append((version, entry.name, statements))
    return out


class Store:
    """One connection to the store. Not shared between threads: the fleet runner collects in
    threads and writes from one."""

    def __init__(self, conn: Any, dialect: str, url: str, retention_days: float) -> None:
        self._conn = conn
        self.dialect = dialect
        self.url = url
        self.retention_days = retention_days

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            return self._conn.execute(self._sql(sql), params)
        except (sqlite3.Error, _pg_errors()) as exc:
            raise StoreError(f"store {redact(self.url)}: {_short(exc)}") from exc

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self._exec(sql, params).fetchall())

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._exec("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                self._conn.execute("ROLLBACK")
            raise
        self._exec("COMMIT")

    def schema_version(self) -> int:
        rows = self._all(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
            if self.dialect == "postgresql"
            else "SELECT COUNT(*) FROM sqlite_master WHERE name = 'schema_migrations'"
        )
        if not rows[0][0]:
            return 0
        return int(self._all("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0][0])

    def migrate(self, target: int | None = None) -> int:
        """Apply the shipped migrations not yet applied (each in its own transaction, under a
        lock, so two runs that start together migrate once). Returns the schema version."""
        for version, name, statements in migrations(self.dialect):
            if target is not None and version > target:
                break
            with self._transaction():
                if self.dialect == "postgresql":
                    self._exec("SELECT pg_advisory_xact_lock(72657377)")
                self._exec(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied DOUBLE PRECISION NOT NULL)"
                )
                if self._all("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)):
                    continue
                for statement in statements:
                    self._exec(statement)
                self._exec(
                    "INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)",
                    (version, name, time.time()),
                )
        return self.schema_version()

    @contextlib.contextmanager
    def batch(self, command: str) -> Iterator[Batch]:
        """One run over one or many hosts, in one transaction: all of it is stored, or none."""
        with self._transaction():
            b = Batch(self, command)
            yield b
            self.prune()

    def prune(self, now: float | None = None) -> int:
        """Drop runs older than the retention (0 keeps everything)."""
        if self.retention_days <= 0:
            return 0
        cutoff = (now or time.time()) - self.retention_days * 86400
        self._exec(
            "DELETE FROM findings WHERE run_id IN (SELECT id FROM runs WHERE started < ?)",
            (cutoff,),
        )
        cur = self._exec("DELETE FROM runs WHERE started < ?", (cutoff,))
        return int(cur.rowcount or 0)

    def runs(
        self,
        command: str = "audit",
        host: str | None = None,
        since: float | None = None,
        limit: int = 100_000,
    ) -> list[RunInfo]:
        """Runs oldest first."""
        sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE command = ?"
        params: list[Any] = [command]
        if host is not None:
            sql += " AND host = ?"
            params.append(host)
        if since is not None:
            sql += " AND started >= ?"
            params.append(since)
        sql += " ORDER BY started, id LIMIT ?"
        params.append(limit)
        return [_run(r) for r in self._all(sql, params)]

    def latest(self, command: str = "audit") -> list[RunInfo]:
        """The latest run of every host, by host (one scan of the (command, host, started)
        index, not a lookup per run)."""
        sql = (
            f"SELECT {_RUN_COLUMNS} FROM runs r JOIN (SELECT host AS h, MAX(started) AS s FROM runs "
            "WHERE command = ? GROUP BY host) m ON r.host = m.h AND r.started = m.s "
            "WHERE r.command = ? ORDER BY host, id"
        )
        by_host = {run.host: run for run in (_run(r) for r in self._all(sql, (command, command)))}
        return list(by_host.values())

    def run(self, run_id: int) -> RunInfo | None:
        rows = self._all(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return _run(rows[0]) if rows else None

    def batch_runs(self, batch: str) -> list[RunInfo]:
        rows = self._all(f"SELECT {_RUN_COLUMNS} FROM runs WHERE batch = ? ORDER BY host", (batch,))
        return [_run(r) for r in rows]

    def last_ok_before(
        self, command: str, host: str, before: float, exclude: int
    ) -> RunInfo | None:
        """The newest successful run of HOST that started at or before BEFORE (not EXCLUDE)."""
        rows = self._all(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE command = ? AND host = ? AND status = 'ok' "
            "AND started <= ? AND id <> ? ORDER BY started DESC, id DESC LIMIT 1",
            (command, host, before, exclude),
        )
        return _run(rows[0]) if rows else None

    def first_ok_after(self, command: str, host: str, after: float, exclude: int) -> RunInfo | None:
        """The oldest successful run of HOST that started at or after AFTER (not EXCLUDE)."""
        rows = self._all(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE command = ? AND host = ? AND status = 'ok' "
            "AND started >= ? AND id <> ? ORDER BY started, id LIMIT 1",
            (command, host, after, exclude),
        )
        return _run(rows[0]) if rows else None

    def failure_counts(self, run_ids: Sequence[int]) -> dict[int, dict[Severity, int]]:
        """Failing, unwaived findings by run and severity, in one query."""
        out: dict[int, dict[Severity, int]] = {rid: {} for rid in run_ids}
        for start in range(0, len(run_ids), 500):
            chunk = list(run_ids[start : start + 500])
            marks = ", ".join("?" for _ in chunk)
            rows = self._all(
                f"SELECT run_id, severity, COUNT(*) FROM findings WHERE run_id IN ({marks}) "
                "AND status = 'fail' AND waived = '' GROUP BY run_id, severity",
                chunk,
            )
            for run_id, sev, count in rows:
                out[int(run_id)][Severity(int(sev))] = int(count)
        return out

    def failing_rules(
        self, run_ids: Sequence[int]
    ) -> list[tuple[str, Severity, str, str, list[int]]]:
        """Per rule failing (unwaived) in any of RUN_IDS: its worst severity, the title and
        remediation stored with that severity, and the runs it fails in; grouped in the
        database (a row per rule and run, not per finding)."""
        rules: dict[str, tuple[Severity, str, str, list[int]]] = {}
        for start in range(0, len(run_ids), 500):
            chunk = list(run_ids[start : start + 500])
            marks = ", ".join("?" for _ in chunk)
            rows = self._all(
                "SELECT rule_id, run_id, MAX(severity), MAX(title), MAX(remediation) FROM findings "
                f"WHERE run_id IN ({marks}) AND status = 'fail' AND waived = '' "
                "GROUP BY rule_id, run_id ORDER BY rule_id, run_id",
                chunk,
            )
            for rule_id, run_id, sev, title, remediation in rows:
                severity = Severity(int(sev))
                old = rules.get(str(rule_id))
                if old is None or severity > old[0]:
                    runs = old[3] if old is not None else []
                    rules[str(rule_id)] = (severity, str(title), str(remediation), runs)
                rules[str(rule_id)][3].append(int(run_id))
        return [(rid, sev, t, rem, runs) for rid, (sev, t, rem, runs) in rules.items()]

    def findings_of(
        self, run_ids: Sequence[int], failing_only: bool = False
    ) -> dict[int, list[Finding]]:
        """The findings of many runs in a few queries (only the failing, unwaived ones: what
        drift compares, a fraction of what is stored)."""
        only = " AND status = 'fail' AND waived = ''" if failing_only else ""
        out: dict[int, list[Finding]] = {rid: [] for rid in run_ids}
        ids = sorted(set(run_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self._all(
                f"SELECT run_id, {_FINDING_COLUMNS} FROM findings WHERE run_id IN ({marks}){only} "
                "ORDER BY run_id, rule_id, target",
                chunk,
            )
            for row in rows:
                out[int(row[0])].append(_finding(row[1:]))
        return out

    def drift(
        self, pairs: Sequence[tuple[int, int]]
    ) -> dict[int, tuple[list[Finding], list[Finding], list[tuple[Finding, Finding]], list[str]]]:
        """For each (current run, baseline run): the failing findings new in the current run,
        those fixed since the baseline, those whose severity changed (before, after), and the
        targets newly vulnerable. The set differences (EXCEPT on the finding keys per pair) run
        in the database, both runs read through the (run_id, rule_id, target) index: only what
        changed is read back."""
        out: dict[
            int, tuple[list[Finding], list[Finding], list[tuple[Finding, Finding]], list[str]]
        ] = {}
        vulnerable = "vulnerable = 1"
        cols = [c.strip() for c in _FINDING_COLUMNS.split(",")]
        cols_f = ", ".join(f"f.{c}" for c in cols)
        failing = "f.status = 'fail' AND f.waived = ''"
        key = "f.rule_id = {k}.rule_id AND f.target = {k}.target"
        # n and o are narrow (the keys and what is compared), each referenced several times:
        # both engines materialise them once, read by index from the two runs of every pair.
        # Full rows are read back only for what changed, by the (run_id, rule_id, target) index.
        body = (
            ", n AS (SELECT p.cur, f.rule_id, f.target, f.severity, f.vulnerable FROM pairs p "
            f"JOIN findings f ON f.run_id = p.cur WHERE {failing}), "
            "o AS (SELECT p.cur, f.rule_id, f.target, f.severity, f.vulnerable FROM pairs p "
            f"JOIN findings f ON f.run_id = p.base WHERE {failing}), "
            "added AS (SELECT cur, rule_id, target FROM n "
            "EXCEPT SELECT cur, rule_id, target FROM o), "
            "gone AS (SELECT cur, rule_id, target FROM o "
            "EXCEPT SELECT cur, rule_id, target FROM n), "
            "changed AS (SELECT n.cur, n.rule_id, n.target FROM n JOIN o ON o.cur = n.cur "
            "AND o.rule_id = n.rule_id AND o.target = n.target AND o.severity <> n.severity), "
            f"vuln AS (SELECT cur, target FROM n WHERE {vulnerable} "
            f"EXCEPT SELECT cur, target FROM o WHERE {vulnerable}) "
            f"SELECT 0, a.cur, {cols_f} FROM added a JOIN findings f ON f.run_id = a.cur "
            f"AND {key.format(k='a')} WHERE {failing} "
            f"UNION ALL SELECT 1, g.cur, {cols_f} FROM gone g JOIN pairs p ON p.cur = g.cur "
            f"JOIN findings f ON f.run_id = p.base AND {key.format(k='g')} WHERE {failing} "
            f"UNION ALL SELECT 2, c.cur, {cols_f} FROM changed c JOIN pairs p ON p.cur = c.cur "
            f"JOIN findings f ON f.run_id = p.base AND {key.format(k='c')} WHERE {failing} "
            f"UNION ALL SELECT 3, c.cur, {cols_f} FROM changed c JOIN findings f "
            f"ON f.run_id = c.cur AND {key.format(k='c')} WHERE {failing} "
            f"UNION ALL SELECT 4, cur, {', '.join(_VULN_ROW.get(c, 'target') for c in cols)} "
            "FROM vuln"
        )
        for start in range(0, len(pairs), 250):
            chunk = pairs[start : start + 250]
            values = ", ".join("(CAST(? AS BIGINT), CAST(? AS BIGINT))" for _ in chunk)
            params = [i for pair in chunk for i in pair]
            rows = self._all(f"WITH pairs (cur, base) AS (VALUES {values}){body}", params)
            parts: dict[int, list[dict[tuple[str, str], Finding]]] = {}
            targets: dict[int, set[str]] = {}
            for row in rows:
                cur, part = int(row[1]), int(row[0])
                if part == 4:
                    targets.setdefault(cur, set()).add(str(row[2]))
                    continue
                f = _finding(row[2:])
                parts.setdefault(cur, [{}, {}, {}, {}])[part][f.key] = f
            for cur, _ in chunk:
                new, fixed, before, after = parts.get(cur, [{}, {}, {}, {}])
                out[cur] = (
                    [new[k] for k in sorted(new)],
                    [fixed[k] for k in sorted(fixed)],
                    [(before[k], after[k]) for k in sorted(before.keys() & after.keys())],
                    sorted(targets.get(cur, ())),
                )
        return out

    def findings(self, run_id: int) -> list[Finding]:
        rows = self._all(
            f"SELECT {_FINDING_COLUMNS} FROM findings WHERE run_id = ? ORDER BY rule_id, target",
            (run_id,),
        )
        return [_finding(r) for r in rows]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()


class Batch:
    """The open transaction of one run: each host's results are written as they arrive, so
    memory stays bounded by one host, and committed together at the end."""

    def __init__(self, store: Store, command: str) -> None:
        self.store = store
        self.command = command
        self.id = uuid.uuid4().hex
        self.run_ids: dict[str, int] = {}

    def record(
        self,
        host: str,
        report: Report | None,
        started: float,
        finished: float,
        ruleset: str,
        error: str = "",
        outdated: int = 0,
    ) -> int:
        from dockward import __version__

        results = report.results if report is not None else ()
        passed = sum(1 for r in results if r.status is Status.PASS and not r.waived)
        failed = sum(1 for r in results if r.failing)
        s = self.store
        cur = s._exec(
            "INSERT INTO runs (batch, host, command, started, finished, tool_version, ruleset, "
            "status, error, score, passed, failed, vulnerable_images, warnings, outdated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                self.id,
                host,
                self.command,
                started,
                finished,
                __version__,
                ruleset,
                "error" if error else "ok",
                error,
                report.score() if report is not None and not error else 0.0,
                passed,
                failed,
                json.dumps(vulnerable_images(results), sort_keys=True),
                len(report.warnings) if report is not None else 0,
                outdated,
            ),
        )
        run_id = int(cur.fetchone()[0])
        rows = [
            (
                run_id,
                r.rule.id,
                r.rule.kind,
                r.rule.title,
                int(r.severity),
                r.status.value,
                r.target,
                r.message,
                r.waived,
                r.rule.remediation,
                r.rule.cis,
                1 if names_vulnerable_image(r.rule) else 0,
            )
            for r in results
            if r.status is not Status.PASS
        ]
        if rows:
            try:
                s._conn.cursor().executemany(
                    s._sql(
                        f"INSERT INTO findings ({_FINDING_COLUMNS}, run_id) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    ),
                    [(*row[1:], row[0]) for row in rows],
                )
            except (sqlite3.Error, _pg_errors()) as exc:
                raise StoreError(f"store {redact(s.url)}: {_short(exc)}") from exc
        self.run_ids[host] = run_id
        return run_id


def _pg_errors() -> type[Exception]:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - a dependency
        return sqlite3.Error
    return psycopg.Error


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def open_store(url: str | None = None, retention_days: float = DEFAULT_RETENTION_DAYS) -> Store:
    """Open (creating and migrating as needed) the store at URL: `postgresql://…`, `sqlite:///PATH`
    or a path; None is SQLite in the user's data directory."""
    url = url or default_store_url()
    conn: Any
    if url.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - a dependency
            raise StoreError("PostgreSQL store needs psycopg 3") from exc
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=15)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to store {redact(url)}: {_short(exc)}") from exc
        store = Store(conn, "postgresql", url, retention_days)
        # The store's queries are short: JIT compiling one (the drift query's plan costs past
        # jit_above_cost) took 1.06 s of its 1.53 s on a 200-host history.
        with contextlib.suppress(psycopg.Error):
            conn.execute("SET jit = off")
    else:
        path = Path(url.removeprefix("sqlite://")) if url.startswith("sqlite://") else Path(url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # private before SQLite opens it
            os.close(fd)
            conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open store {path}: {_short(exc)}") from exc
        store = Store(conn, "sqlite", str(path), retention_days)
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store


__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "Batch",
    "Finding",
    "RunInfo",
    "Store",
    "StoreError",
    "default_store_url",
    "names_vulnerable_image",
    "open_store",
    "parse_duration",
    "redact",
    "ruleset_digest",
    "vulnerable_images",
]
