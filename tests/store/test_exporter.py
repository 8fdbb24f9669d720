"""`dockward exporter` scraped by a real Prometheus; posture events at a real HTTP receiver."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from dockward.model.finding import Severity
from dockward.store import open_store
from dockward.store.drift import fleet_drift
from dockward.store.events import FIXED_RULE, NEW_RULE, posture_alerts, send_events
from tests.conftest import REPO, free_port, kill_after, run_cli
from tests.store.test_drift import CVE, PRIV, USER, record, rep


def _store(path: Path) -> str:
    store = open_store(str(path))
    t = time.time()
    record(store, t - 100, a=rep("a", (USER, "container web")), b=rep("b"))
    record(
        store,
        t - 10,
        a=rep("a", (PRIV, "container new"), (CVE, "image web:2"), (USER, "container web")),
        b="engine gone",
    )
    store.close()
    return str(path)


@contextlib.contextmanager
def serve_exporter(url: str) -> Iterator[str]:
    """`dockward exporter --store URL` on a free port; yields HOST:PORT."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dockward",
            "exporter",
            "--store",
            url,
            "--listen",
            f"127.0.0.1:{port}",
        ],
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = kill_after(proc, 300)
    assert proc.stderr is not None
    assert "serving" in proc.stderr.readline()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        assert proc.wait(20) == 0
        watchdog.cancel()


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[str]:
    with serve_exporter(_store(tmp_path / "e.sqlite")) as address:
        yield address


class Prometheus:
    """Debian's prometheus scraping TARGET every second, queried through its HTTP API."""

    def __init__(self, target: str, work: Path) -> None:
        self.port = free_port()
        cfg = work / "prometheus.yml"
        cfg.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"scrape_configs:\n  - job_name: dockward\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        self.proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={cfg}",
                f"--storage.tsdb.path={work / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.watchdog = kill_after(self.proc, 240)

    def query(self, query: str) -> list[Any]:
        answer = requests.get(
            f"http://127.0.0.1:{self.port}/api/v1/query", params={"query": query}, timeout=5
        ).json()
        return list(answer["data"]["result"])

    def wait_for(self, query: str, value: str, timeout: float = 60) -> list[Any]:
        """The query's result once its first value is VALUE (scraped after the change)."""
        deadline = time.monotonic() + timeout
        result: list[Any] = []
        while time.monotonic() < deadline:
            try:
                result = self.query(query)
                if result and result[0]["value"][1] == value:
                    return result
            except (requests.RequestException, KeyError, ValueError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"{query} never {value}: {result}")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        self.watchdog.cancel()


def test_exporter_gauges(exporter: str) -> None:
    text = requests.get(f"http://{exporter}/metrics", timeout=10).text
    assert 'dockward_host_failures{command="audit",host="a",severity="critical"} 1.0' in text
    assert 'dockward_host_failures{command="audit",host="a",severity="medium"} 1.0' in text
    assert 'dockward_host_vulnerable_images{command="audit",host="a",severity="high"} 1.0' in text
    assert 'dockward_host_up{command="audit",host="b"} 0.0' in text
    assert 'dockward_host_score{command="audit",host="b"}' not in text
    assert "dockward_store_up 1.0" in text
    assert requests.get(f"http://{exporter}/healthz", timeout=10).status_code == 200


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus")
def test_real_prometheus_scrape(exporter: str, tmp_path: Path) -> None:
    prom = Prometheus(exporter, tmp_path)
    try:
        prom.wait_for('dockward_host_failures{host="a",severity="critical"}', "1")
        up = prom.query("dockward_host_up")
        assert {r["metric"]["host"]: r["value"][1] for r in up} == {"a": "1", "b": "0"}
    finally:
        prom.close()


class Receiver:
    """A real HTTP receiver: every POSTed JSON body is kept."""

    def __init__(self, port: int = 0) -> None:
        self.bodies: list[Any] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                owner.bodies.append(json.loads(self.rfile.read(n)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                return

        self.server = HTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_posture_events_at_a_webhook(tmp_path: Path) -> None:
    store = open_store(_store(tmp_path / "w.sqlite"))
    t = time.time()
    record(store, t, a=rep("a", (USER, "container web")), b=rep("b"))
    # a: the privileged container and the vulnerable image went away; b is back
    alerts = posture_alerts(fleet_drift(store))
    assert {(a.rule, a.output_fields["dockward.rule_id"]) for a in alerts} == {
        (FIXED_RULE, "DW-C001"),
        (FIXED_RULE, "CVE-2024-1"),
    }
    receiver = Receiver()
    try:
        dead = "http://127.0.0.1:1/nothing"
        warnings = send_events([receiver.url, dead], alerts, tmp_path / "spool", timeout=1)
        assert len(receiver.bodies) == 2 and all(b["source"] == "dockward" for b in receiver.bodies)
        assert {b["hostname"] for b in receiver.bodies} == {"a"}
        assert len(warnings) == 1 and "2 spooled" in warnings[0] and dead in warnings[0]
    finally:
        receiver.close()
    store.close()


def test_new_failure_event_priority(tmp_path: Path) -> None:
    store = open_store(_store(tmp_path / "p.sqlite"))
    alerts = posture_alerts(fleet_drift(store))
    by_rule = {(a.rule, a.output_fields.get("dockward.rule_id")): a for a in alerts}
    assert by_rule[(NEW_RULE, "DW-C001")].priority.label == "Critical"
    assert (
        by_rule[(NEW_RULE, "CVE-2024-1")].output_fields["dockward.severity"] == Severity.HIGH.label
    )
    assert any(a.rule == "Posture: host not audited" and a.hostname == "b" for a in alerts)
    store.close()


@pytest.mark.docker
def test_posture_events_wait_in_the_spool_while_the_webhook_is_down(
    docker_api: Any, tmp_path: Path
) -> None:
    """Audits of the real engine with a webhook that is down, then up: every event the file
    output (always up, the ledger) got reaches the webhook, once."""
    from dockward.engine.lab import build_busybox_image

    run = uuid.uuid4().hex[:8]
    port = free_port()
    ledger = tmp_path / "events.jsonl"
    spool = tmp_path / "spool"
    hook = f"http://127.0.0.1:{port}/hook"

    def audit() -> str:
        res = run_cli(
            "audit",
            "-H",
            "unix:///var/run/docker.sock",
            "--check",
            "DW-C001",
            "--store",
            str(tmp_path / "h.sqlite"),
            "--events",
            f"file:{ledger}",
            "--events",
            hook,
            "--events-spool",
            str(spool),
            "--events-timeout",
            "2",
            "-f",
            "json",
            "-o",
            str(tmp_path / "audit.json"),
            "--fail-on",
            "never",
        )
        assert res.code == 0, res.err
        return res.err

    image = build_busybox_image(docker_api, f"dwevents-{run}:1")
    name = f"dwevents-{run}"
    receiver: Receiver | None = None
    try:
        audit()  # the baseline: no events
        docker_api.create_container(
            image,
            ["true"],
            name=name,
            labels={"dockward.test": name},
            host_config=docker_api.create_host_config(privileged=True),
        )
        err = audit()  # the webhook is down: its events are spooled
        assert "spooled" in err and hook in err, err
        assert any(name in line for line in ledger.read_text().splitlines())
        receiver = Receiver(port)  # up again
        docker_api.remove_container(name, force=True)
        err = audit()  # sends what was spooled, then this run's events (the fix)
        assert "spooled" not in err, err
        sent = [json.loads(line)["uuid"] for line in ledger.read_text().splitlines()]
        got = [b["uuid"] for b in receiver.bodies]
        assert sorted(got) == sorted(sent) and len(set(got)) == len(got)
        mine = [b["rule"] for b in receiver.bodies if name in json.dumps(b["output_fields"])]
        assert mine == [NEW_RULE, FIXED_RULE]  # oldest first
        assert not any(p.is_file() for p in spool.rglob("*.json"))
    finally:
        if receiver is not None:
            receiver.close()
        with contextlib.suppress(Exception):
            docker_api.remove_container(name, force=True)
