"""Outputs against real receivers (rsyslogd, an HTTP server), the spool, and never losing alerts."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from dockward.errors import DockwardError
from dockward.monitor.alert import Alert
from dockward.monitor.dispatch import Journal, OutputWorker
from dockward.monitor.loader import Priority
from dockward.monitor.outputs import make_sink
from dockward.monitor.sinks import FileSink, SinkError
from dockward.notify.spool import Spool
from tests.monitor.conftest import HTTP_PORT_DOWN, Receiver, Rsyslog, wait_for


def alert(rule: str = "Shell spawned in container", container: str = "web", n: int = 0) -> Alert:
    return Alert(
        id=uuid.uuid4().hex,
        time_ns=time.time_ns(),
        rule=rule,
        priority=Priority.WARNING,
        output=f"Shell spawned (container={container} n={n})",
        source="syscall",
        tags=("container", "shell"),
        hostname="testhost",
        container={"id": "0123456789ab", "name": container},
        output_fields={"container.name": container, "proc.name": "sh", "n": n},
    )


def send_one(spec: str, a: Alert) -> None:
    sink = make_sink(spec)
    try:
        sink.send([a])
    finally:
        sink.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_syslog_rfc5424_reaches_rsyslog(rsyslog: Rsyslog, transport: str) -> None:
    port = rsyslog.udp if transport == "udp" else rsyslog.tcp
    a = alert(container=f"c-{transport}")
    send_one(f"syslog+{transport}://127.0.0.1:{port}?facility=local3", a)
    line = wait_for(lambda: next((x for x in rsyslog.lines() if a.id in x), None))
    assert line, rsyslog.lines()
    # local3 (19) * 8 + warning (4) = 156; version 1; structured data with the rule.
    assert line.startswith("<156>1 ")
    assert "dockward" in line
    assert 'rule="Shell spawned in container"' in line
    assert f'container="c-{transport}"' in line
    assert f"Shell spawned (container=c-{transport} n=0)" in line


def test_syslog_tls_reaches_rsyslog(rsyslog: Rsyslog) -> None:
    if rsyslog.tls is None:
        pytest.fail(
            "rsyslog has no openssl stream driver (scripts/setup.sh --test installs rsyslog-openssl)"
        )
    a = alert(container="c-tls")
    send_one(f"syslog+tls://localhost:{rsyslog.tls}?ca={rsyslog.ca}&format=json", a)
    line = wait_for(lambda: next((x for x in rsyslog.lines() if a.id in x), None))
    assert line, rsyslog.lines()
    body = json.loads(line[line.index("] ") + 2 :])
    assert body["rule"] == a.rule and body["container"]["name"] == "c-tls"


def test_syslog_tls_refuses_an_untrusted_certificate(rsyslog: Rsyslog) -> None:
    assert rsyslog.tls is not None
    with pytest.raises(SinkError):
        send_one(f"syslog+tls://localhost:{rsyslog.tls}", alert())


def test_webhook_posts_one_json_alert_per_request(
    http_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKWARD_WEBHOOK_TOKEN", "s3cret")
    alerts = [alert(n=i) for i in range(3)]
    sink = make_sink(http_receiver.url + "/hook")
    sink.send(alerts)
    bodies = http_receiver.json_bodies()
    assert [b["uuid"] for b in bodies] == [a.id for a in alerts]
    first = bodies[0]
    assert first["rule"] == "Shell spawned in container"
    assert first["priority"] == "Warning"
    assert first["container"]["name"] == "web"
    assert first["output_fields"]["proc.name"] == "sh"
    assert first["hostname"] == "testhost" and first["tags"] == ["container", "shell"]
    assert http_receiver.requests[0]["headers"]["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in sink.name


def test_elasticsearch_bulk_and_splunk_hec_bodies(
    http_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKWARD_SPLUNK_TOKEN", "hec-token")
    alerts = [alert(n=i) for i in range(2)]
    make_sink(f"elasticsearch+{http_receiver.url}/dockward-alerts").send(alerts)
    make_sink(f"splunk+{http_receiver.url}").send(alerts)
    es, splunk = http_receiver.requests
    assert es["path"] == "/dockward-alerts/_bulk"
    assert es["headers"]["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(x) for x in es["body"].decode().splitlines()]
    assert lines[0] == {"create": {"_id": alerts[0].id}}
    assert lines[1]["rule"] == alerts[0].rule and "@timestamp" in lines[1]
    assert splunk["path"] == "/services/collector/event"
    assert splunk["headers"]["Authorization"] == "Splunk hec-token"
    events = [json.loads(x) for x in splunk["body"].decode().splitlines()]
    assert [e["event"]["uuid"] for e in events] == [a.id for a in alerts]
    assert events[0]["sourcetype"] == "dockward:alert"


def test_sink_down_then_up_delivers_every_alert_exactly_once(tmp_path: Path) -> None:
    receiver = Receiver(HTTP_PORT_DOWN)
    worker = OutputWorker(
        make_sink(receiver.url), Spool(tmp_path / "spool"), backoff_min=0.05, backoff_max=0.2
    )
    worker.start()
    sent = [alert(n=i) for i in range(50)]
    try:
        for a in sent[:25]:
            worker.submit(a)
        assert wait_for(lambda: worker.stats.spooled == 25, 10)
        assert worker.stats.failures >= 1
        receiver.start()
        for a in sent[25:]:
            worker.submit(a)
        assert wait_for(lambda: len(receiver.requests) >= 50 and not len(worker.spool), 15)
        time.sleep(0.3)
    finally:
        worker.stop(2.0)
        receiver.stop()
    got = [b["uuid"] for b in receiver.json_bodies()]
    assert got == [a.id for a in sent], "every alert once, in order"
    assert worker.stats.dropped == 0


def test_spool_survives_a_restart(tmp_path: Path) -> None:
    receiver = Receiver(HTTP_PORT_DOWN)
    first = OutputWorker(make_sink(receiver.url), Spool(tmp_path / "s"), backoff_min=0.05)
    first.start()
    sent = [alert(n=i) for i in range(5)]
    for a in sent:
        first.submit(a)
    first.stop(0.5)
    assert len(list((tmp_path / "s").glob("*.json"))) == 5
    receiver.start()
    try:
        second = OutputWorker(make_sink(receiver.url), Spool(tmp_path / "s"), backoff_min=0.05)
        second.start()
        assert wait_for(lambda: len(receiver.requests) == 5, 10)
        second.stop(1.0)
    finally:
        receiver.stop()
    assert sorted(b["uuid"] for b in receiver.json_bodies()) == sorted(a.id for a in sent)
    assert not list((tmp_path / "s").glob("*.json"))


class SlowSink:
    name = "slow"

    def __init__(self) -> None:
        self.got: list[str] = []
        self.release = threading.Event()

    def send(self, alerts: Sequence[Alert]) -> None:
        self.release.wait(10)
        self.got.extend(a.id for a in alerts)

    def close(self) -> None:
        return None


def test_slow_sink_never_blocks_detection_and_full_spool_counts_drops(tmp_path: Path) -> None:
    sink = SlowSink()
    drops: list[tuple[str, int]] = []
    worker = OutputWorker(
        sink,
        Spool(tmp_path / "s", max_files=20),
        queue_size=10,
        on_drop=lambda name, n: drops.append((name, n)),
    )
    worker.start()
    start = time.monotonic()
    for i in range(100):
        worker.submit(alert(n=i))
    assert time.monotonic() - start < 2.0, "submit must not wait for the sink"
    # A batch in the sink's hands, 10 queued, 20 spooled, the rest dropped and counted.
    assert worker.stats.spooled == 20
    assert worker.stats.dropped >= 100 - 20 - 10 - 11
    assert drops and drops[-1] == ("slow", worker.stats.dropped)
    sink.release.set()
    assert wait_for(lambda: len(sink.got) + worker.stats.dropped == 100, 10)
    worker.stop(1.0)
    assert len(set(sink.got)) == len(sink.got)


class HangsAfter:
    """Delivers the first `n` alerts, then hangs in its next send for good (a webhook that
    stopped answering, in a process that is then killed: the thread never runs again)."""

    name = "hangs"

    def __init__(self, n: int) -> None:
        self.n = n
        self.got: list[str] = []
        self.hanging = threading.Event()

    def send(self, alerts: Sequence[Alert]) -> None:
        if len(self.got) >= self.n:
            self.hanging.set()
            threading.Event().wait()  # a daemon thread: gone with the test process
        self.got.extend(a.id for a in alerts)

    def close(self) -> None:
        return None


def test_what_a_killed_worker_held_comes_back_from_its_journal(tmp_path: Path) -> None:
    """kill -9 of the process while a send hangs: the batch in the sink's hands and the queue
    behind it were only in memory. The next worker on the same spool directory finds them in
    the journal, spools them oldest first and delivers them; what was delivered stays gone."""
    sink = HangsAfter(3)
    first = OutputWorker(sink, Spool(tmp_path / "s"))
    first.start()
    sent = [alert(n=i) for i in range(10)]
    for a in sent[:3]:
        first.submit(a)
    assert wait_for(lambda: len(sink.got) == 3, 10)
    for a in sent[3:]:
        first.submit(a)
    assert sink.hanging.wait(10)
    # `first` is never stopped: as after kill -9, nothing of it runs again.
    assert not list((tmp_path / "s").glob("*.json"))  # held in memory only
    receiver = Receiver(HTTP_PORT_DOWN)
    receiver.start()
    try:
        second = OutputWorker(make_sink(receiver.url), Spool(tmp_path / "s"))
        assert len(second.spool) == 7 and second.stats.spooled == 7
        second.start()
        assert wait_for(lambda: len(receiver.requests) == 7, 10)
        second.stop(1.0)
    finally:
        receiver.stop()
    assert sink.got == [a.id for a in sent[:3]]
    assert [b["uuid"] for b in receiver.json_bodies()] == [a.id for a in sent[3:]]
    assert (tmp_path / "s" / "journal").stat().st_size == 0  # nothing pending is kept


def test_a_journal_never_idle_is_compacted_to_what_is_pending(tmp_path: Path) -> None:
    """An output that is slow but never idle (always one alert pending) would grow its journal
    without bound: past `compact_bytes` it is rewritten with the pending entries alone."""
    journal = Journal(tmp_path, compact_bytes=4096)
    assert journal.recover() == []
    prev = journal.add(json.dumps({"n": 0, "pad": "x" * 100}))
    for i in range(1, 300):
        seq = journal.add(json.dumps({"n": i, "pad": "x" * 100}))
        journal.done([prev])  # the one before is delivered; this one is pending
        prev = seq
        assert journal.path.stat().st_size < 4096 + 2 * 150, i
    journal.close()
    again = Journal(tmp_path)
    assert [json.loads(doc)["n"] for doc in again.recover()] == [299]
    again.close()


def test_file_output_appends_json_lines_and_rotates(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    sink = FileSink(str(path), max_bytes=2000, backups=2)
    for i in range(20):
        sink.send([alert(n=i)])
    assert path.exists() and Path(f"{path}.1").exists() and Path(f"{path}.2").exists()
    assert not Path(f"{path}.3").exists()
    last = [json.loads(x) for x in path.read_text().splitlines()]
    assert last[-1]["output_fields"]["n"] == 19
    assert all(p.stat().st_size <= 2000 for p in tmp_path.iterdir())
    assert oct(path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    "spec",
    ["syslog+smtp://h:1", "syslog://", "ftp://x", "file:", "kafka+http://x:1", "http://"],
)
def test_bad_output_specs_are_usage_errors(spec: str) -> None:
    with pytest.raises(DockwardError):
        make_sink(spec)


def test_spool_is_bounded_by_bytes(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", max_files=100, max_bytes=1000)
    results = [spool.put("x" * 300) for _ in range(5)]
    assert results == [True, True, True, False, False]
    assert len(spool) == 3
    name, _ = spool.oldest(1)[0]
    spool.remove(name)
    assert spool.put("y" * 300) and len(spool) == 3
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in (tmp_path / "s").iterdir())
