"""Service mode: /healthz and /metrics, reports kept on a schedule, bad flags."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry

from dockward.model.finding import Report, Result, Rule, Severity, Status
from dockward.service.health import Health
from dockward.service.http import MetricsServer, probe_health
from dockward.service.reports import ReportDir, RunMetrics
from tests.conftest import REPO, free_port, kill_after, run_cli


def _report(*severities: Severity, passing: int = 1) -> Report:
    results = []
    for i, sev in enumerate(severities):
        rule = Rule(f"DW-T{i:03}", "t", sev, "container", "fix it")
        results.append(Result(rule, Status.FAIL, "c1"))
    ok = Rule("DW-T999", "ok", Severity.LOW, "container", "")
    results += [Result(ok, Status.PASS, f"c{i}") for i in range(passing)]
    return Report("audit", tuple(results))


def test_healthz_follows_every_check_and_metrics_are_prometheus_text() -> None:
    registry = CollectorRegistry()
    metrics = RunMetrics("audit", registry)
    metrics.record(_report(Severity.HIGH, Severity.HIGH, Severity.LOW, passing=1), 1.5, True)
    health = Health()
    state = {"ok": True}
    health.add("source", lambda: (state["ok"], "seen"))
    server = MetricsServer("127.0.0.1:0", registry, health).start()
    try:
        base = f"http://{server.address}"
        r = requests.get(f"{base}/healthz", timeout=5)
        assert r.status_code == 200
        assert r.json()["checks"]["source"] == {"ok": True, "detail": "seen"}
        assert probe_health(server.address)[0] is True
        state["ok"] = False
        r = requests.get(f"{base}/healthz", timeout=5)
        assert r.status_code == 503 and r.json()["status"] == "failing"
        assert probe_health(server.address)[0] is False
        text = requests.get(f"{base}/metrics", timeout=5).text
        assert 'dockward_audit_findings{severity="high"} 2.0' in text
        assert 'dockward_audit_findings{severity="low"} 1.0' in text
        assert "dockward_audit_score 25.0" in text
        assert 'dockward_audit_runs_total{outcome="findings"} 1.0' in text
        assert "dockward_audit_last_run_duration_seconds 1.5" in text
        assert requests.get(f"{base}/other", timeout=5).status_code == 404
    finally:
        server.close()


def test_a_check_that_raises_is_a_failing_check() -> None:
    health = Health()

    def broken() -> tuple[bool, str]:
        raise OSError("gone")

    health.add("broken", broken)
    health.add("fine", lambda: (True, "ok"))
    ok, checks = health.run()
    assert not ok
    assert [c.ok for c in checks] == [False, True]


def test_report_dir_keeps_the_last_n_runs(tmp_path: Path) -> None:
    reports = ReportDir(tmp_path, "scan", keep=2)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for i in range(4):
        reports.write(_report(Severity.MEDIUM), start + dt.timedelta(minutes=i))
    (tmp_path / "audit-20200101T000000.000000Z.json").write_text("{}")  # another command's
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "audit-20200101T000000.000000Z.json",
        "scan-20260101T000200.000000Z.html",
        "scan-20260101T000200.000000Z.json",
        "scan-20260101T000300.000000Z.html",
        "scan-20260101T000300.000000Z.json",
    ]
    doc = json.loads((tmp_path / names[-1]).read_text())
    assert doc["command"] == "audit"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "--interval", "5"],  # a schedule needs somewhere for the reports
        ["audit", "--report-dir", "/tmp/x"],  # reports in a dir need a schedule
        ["audit", "--interval", "5", "--schedule", "* * * * *", "--report-dir", "/tmp/x"],
        ["audit", "--schedule", "61 * * * *", "--report-dir", "/tmp/x"],
        ["scan", "img", "--interval", "5", "--report-dir", "/tmp/x", "--keep", "0"],
        ["audit", "--interval", "5", "--report-dir", "/tmp/x", "--metrics-listen", "nope"],
        ["health", "--metrics-listen", "127.0.0.1:1"],
    ],
)
def test_bad_service_flags_are_one_line_errors(args: list[str]) -> None:
    r = run_cli(*args)
    assert r.code == 2, r
    assert r.err.count("\n") == 1 and "Traceback" not in r.err, r.err


def _wait_for(pred: object, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.docker
def test_scheduled_audit_writes_reports_serves_metrics_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    port = free_port()
    out = tmp_path / "reports"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockward", "audit", "--section", "2", "--interval", "0.5",
         "--report-dir", str(out), "--keep", "2", "--metrics-listen", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    kill_after(proc, 120)
    try:

        def runs() -> float:
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except requests.ConnectionError:
                return 0.0
            line = [x for x in text.splitlines() if x.startswith("dockward_audit_runs_total")]
            return sum(float(x.split()[-1]) for x in line)

        _wait_for(lambda: runs() >= 3)
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        assert 'dockward_audit_runs_total{outcome="error"} 0.0' in text
        assert "dockward_audit_last_run_timestamp_seconds" in text
        kept = sorted(p.name for p in out.iterdir() if p.suffix == ".json")
        assert len(kept) == 2
        assert json.loads((out / kept[-1]).read_text())["command"] == "audit"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
