"""Fleet benchmark: 200 simulated engines audited into PostgreSQL; drift over 100 runs per host.

Run (as root, the Docker daemon up, Debian's postgresql installed):
`.venv/bin/python -m bench.fleet_bench [--hosts 200] [--anchor 20] [--delay 0.02] [--parallel 32]`

Engine answers are recorded from a real dockerd of the bench's own (own network namespace,
--containers running busybox containers with a mix of settings, as bench/audit_bench.py makes
them) through dockward's own collector (bench/fleet_replay.py) and replayed on one TCP port per simulated host, each answer after
--delay seconds. The anchor is the same audit of --anchor hosts in the same run. Memory is the
audit process's peak RSS (bounded: one host's snapshot at a time per worker; the report holds
results only).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.audit.daemons import start_dockerd, stop, wait_ready
from tests.store.pg import start_cluster

from bench.audit_bench import IMAGE, populate
from bench.fleet_replay import record
from dockward.store import Store

REPO = Path(__file__).resolve().parent.parent


def audit(
    hosts: list[str], store: str, parallel: int, work: Path, src: Path = REPO / "src"
) -> tuple[float, float, int]:
    """Wall time, peak RSS (MiB: the audit process or its largest worker, from its own wait4,
    not the bench's running maximum over every child) and hosts failed of one audit."""
    hosts_file = work / f"hosts-{len(hosts)}.txt"
    hosts_file.write_text("\n".join(hosts) + "\n")
    env = dict(os.environ, PYTHONPATH=str(src))
    errors = work / "audit.err"
    t = time.perf_counter()
    with errors.open("w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dockward",
                "audit",
                "--hosts-file",
                str(hosts_file),
                "--store",
                store,
                "--parallel",
                str(parallel),
                "-f",
                "json",
                "-o",
                str(work / "fleet.json"),
                "--fail-on",
                "never",
            ],
            env=env,
            stderr=err,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"audit failed: {errors.read_text()}")
    return wall, usage.ru_maxrss / 1024, hosts_failed(work / "fleet.json")


def fleet_page(store: str, work: Path, src: Path) -> tuple[float, float, int]:
    """Wall time, peak RSS (MiB) and size (bytes) of `report --fleet` over the stored fleet."""
    page = work / "fleet.html"
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockward", "report", "--fleet", "--store", store, "-o", str(page)],
        env=dict(os.environ, PYTHONPATH=str(src)),
    )
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("report --fleet failed")
    return time.perf_counter() - t, usage.ru_maxrss / 1024, page.stat().st_size


def hosts_failed(report: Path) -> int:
    """From the report's head (its `extra` comes before the results): loading a 200-host report
    would raise this process's peak RSS, which a child started later inherits (its ru_maxrss
    starts at the parent's peak: vfork and exec keep the high-water mark)."""
    with report.open(encoding="utf-8") as fh:
        for line in fh:
            m = re.search(r'"hosts_failed": (\d+)', line)
            if m:
                return int(m.group(1))
            if line.startswith('  "results"'):
                break
    raise SystemExit(f"{report}: no hosts_failed in the report's extra")


def fill_history(store_url: str, runs_per_host: int) -> int:
    """Copy the latest batch back in time (server side) until every host has RUNS_PER_HOST runs;
    each copy drops one finding per host so the drift query has something to find."""
    import psycopg

    with psycopg.connect(store_url, autocommit=True) as conn:
        batch = conn.execute("SELECT batch FROM runs ORDER BY started DESC LIMIT 1").fetchone()[0]
        have = conn.execute(
            "SELECT COUNT(*) FROM runs WHERE host = (SELECT host FROM runs LIMIT 1)"
        ).fetchone()[0]
        for i in range(have, runs_per_host):
            with conn.transaction():
                conn.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS m (old BIGINT, new BIGINT) ON COMMIT DROP"
                )
                conn.execute(
                    """
                    WITH src AS (SELECT * FROM runs WHERE batch = %s),
                    ins AS (
                      INSERT INTO runs (batch, host, command, started, finished, tool_version,
                        ruleset, status, error, score, passed, failed, vulnerable_images, warnings,
                        outdated)
                      SELECT md5(%s || batch), host, command, started - %s * 3600, finished - %s * 3600,
                        tool_version, ruleset, status, error, score, passed, failed,
                        vulnerable_images, warnings, outdated FROM src
                      RETURNING id, host)
                    INSERT INTO m SELECT src.id, ins.id FROM src JOIN ins USING (host)
                    """,
                    (batch, str(i), i, i),
                )
                conn.execute(
                    """
                    INSERT INTO findings (run_id, rule_id, kind, title, severity, status, target,
                      message, waived, remediation, cis, vulnerable)
                    SELECT m.new, f.rule_id, f.kind, f.title, f.severity, f.status, f.target,
                      f.message, f.waived, f.remediation, f.cis, f.vulnerable
                    FROM findings f JOIN m ON f.run_id = m.old
                    WHERE (hashtext(f.rule_id || f.target) + %s) %% 50 <> 0
                    """,
                    (i,),
                )
        conn.execute("ANALYZE")  # what autovacuum does after a bulk load
        return int(conn.execute("SELECT COUNT(*) FROM findings").fetchone()[0])


def python_drift(store: Store) -> list[tuple[object, ...]]:
    """The anchor: the same pairs, both runs' failing findings read back and compared in Python
    (what `report --diff` did before the comparison moved into the database)."""
    from dockward.store.drift import compare

    out: list[tuple[object, ...]] = []
    pairs = []
    for current in store.latest("audit"):
        base = store.last_ok_before("audit", current.host, current.started, exclude=current.id)
        pairs.append((current, base))
    wanted = [r.id for c, b in pairs if c.ok and b is not None for r in (c, b)]
    findings = store.findings_of(wanted, failing_only=True)
    for current, base in pairs:
        if not current.ok or base is None:
            out.append(((), (), (), ()))
        else:
            out.append(compare(findings[base.id], findings[current.id]))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--hosts", type=int, default=200)
    p.add_argument("--anchor", type=int, default=20)
    p.add_argument("--delay", type=float, default=0.02)
    p.add_argument("--parallel", type=int, default=32)
    p.add_argument("--runs-per-host", type=int, default=100)
    p.add_argument("--containers", type=int, default=30)
    p.add_argument(
        "--before-src",
        type=Path,
        default=None,
        metavar="DIR",
        help="also audit with the dockward package under DIR (an earlier commit's src/, e.g. "
        "from `git archive COMMIT src | tar -x -C /tmp/before`): before/after in the same run",
    )
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dwfleet-bench-"))
    answers = work / "answers.json"
    from dockward.engine import connect, resolve_endpoint
    from dockward.engine.lab import build_busybox_image

    daemon = start_dockerd("dwfleet-bench", {"iptables": False}, netns="dwfleet-bench")
    try:
        wait_ready(daemon)
        client = connect(resolve_endpoint(daemon.url))
        build_busybox_image(client, IMAGE)
        populate(client, a.containers)
        client.close()
        n = record(daemon.socket, answers)
    finally:
        stop(daemon)
    replay = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.fleet_replay",
            str(answers),
            "--hosts",
            str(a.hosts),
            "--delay",
            str(a.delay),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    cluster = start_cluster()
    try:
        assert replay.stdout is not None
        ports = json.loads(replay.stdout.readline())
        hosts = [f"tcp://127.0.0.1:{port}" for port in ports]
        store = cluster.create_db("dwbench")
        print(
            f"recorded {n} engine answers ({a.containers} running containers); delay "
            f"{a.delay * 1000:.0f} ms per request"
        )
        trees = [("", REPO / "src")]
        if a.before_src is not None:
            trees.insert(0, ("before: ", a.before_src))
        for label, src in trees:
            wall_a, rss_a, _ = audit(hosts[: a.anchor], store, a.parallel, work, src)
            wall, rss, failed = audit(hosts, store, a.parallel, work, src)
            print(
                f"{label}audit {a.anchor} hosts -> PostgreSQL: {wall_a:.1f} s (anchor), peak RSS "
                f"{rss_a:.0f} MiB"
            )
            print(
                f"{label}audit {a.hosts} hosts -> PostgreSQL: {wall:.1f} s ({wall / wall_a:.1f}x "
                f"the anchor for {a.hosts / a.anchor:.0f}x the hosts), peak RSS {rss:.0f} MiB "
                f"({rss / rss_a:.1f}x), {failed} hosts failed"
            )
        for label, src in trees:
            wall_p, rss_p, size = fleet_page(store, work, src)
            print(
                f"{label}report --fleet over {a.hosts} hosts: {wall_p:.1f} s, peak RSS "
                f"{rss_p:.0f} MiB, page {size / 2**20:.1f} MiB"
            )
        rows = fill_history(store, a.runs_per_host)
        from dockward.store import open_store
        from dockward.store.drift import fleet_drift

        s = open_store(store)
        q_anchor = q = float("inf")
        for _ in range(3):  # alternating, best of three: the same cache state for both
            t = time.perf_counter()
            anchor = python_drift(s)
            q_anchor = min(q_anchor, time.perf_counter() - t)
            t = time.perf_counter()
            drifts = fleet_drift(s)
            q = min(q, time.perf_counter() - t)
        changed = sum(len(d.new) + len(d.fixed) for d in drifts)
        if anchor != [(d.new, d.fixed, d.changed, d.newly_vulnerable) for d in drifts]:
            raise SystemExit("the SQL drift differs from the Python comparison")
        s.close()
        t = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "dockward",
                "report",
                "--diff",
                "--store",
                store,
                "-f",
                "json",
                "-o",
                str(work / "diff.json"),
            ],
            env=dict(os.environ, PYTHONPATH=str(REPO / "src")),
            check=True,
        )
        cli = time.perf_counter() - t
        print(
            f"drift over {a.runs_per_host} runs/host x {len(drifts)} hosts ({rows} stored findings): "
            f"query {q:.2f} s best of 3 (set difference in SQL; anchor: both runs read and compared in "
            f"Python {q_anchor:.2f} s, {q_anchor / q:.1f}x), `report --diff` end to end "
            f"{cli:.2f} s ({changed} changes)"
        )
    finally:
        replay.kill()
        replay.wait()
        cluster.stop()


if __name__ == "__main__":
    main()
