"""The pipeline: drops reported as alerts, throttling, Falco JSON input, parsers of the sources."""

from __future__ import annotations

import json
import struct
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dockward.model.container import Healthcheck
from dockward.monitor import MonitorConfig, build_engine
from dockward.monitor.alert import Alert
from dockward.monitor.audit import (
    AuditEvent,
    decode_sockaddr,
    parse_record,
    rule_payload,
    tty_number,
)
from dockward.monitor.containers import container_id_from_cgroup, split_image
from dockward.monitor.dispatch import Dispatcher, OutputWorker
from dockward.monitor.procconn import parse_messages
from dockward.monitor.service import Monitor, healthcheck_command
from dockward.monitor.sources import FalcoJsonSource, docker_event
from dockward.monitor.throttle import Throttle
from dockward.notify.spool import Spool
from tests.monitor.conftest import wait_for


class Collect:
    name = "collect"

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def send(self, alerts: Sequence[Alert]) -> None:
        self.alerts.extend(alerts)

    def close(self) -> None:
        return None


def test_a_full_spool_is_reported_as_an_alert(tmp_path: Path) -> None:
    good = Collect()
    engine = build_engine(MonitorConfig())
    workers = [OutputWorker(good, Spool(tmp_path / "g"))]
    monitor = Monitor(engine, Dispatcher(workers), hostname="h")
    monitor.start()
    monitor.report_drop("webhook:http://siem", 7)
    monitor.report_drop("webhook:http://siem", 8)  # within 10 s: folded into the first
    assert wait_for(lambda: good.alerts, 5)
    monitor.stop(1.0)
    [a] = good.alerts
    assert a.rule == "Dockward alerts dropped" and a.priority.label == "Error"
    assert a.output == "webhook:http://siem dropped 7 alerts (spool full)"


def test_throttle_rate_limits_and_deduplicates_per_rule_and_container() -> None:
    t = Throttle(rate=1.0, burst=2)
    results = [t.allow("r", "c1", f"x{i}", 100.0)[0] for i in range(4)]
    assert results == [True, True, False, False]
    assert t.allow("r", "c2", "x", 100.0)[0], "another container has its own bucket"
    allowed, suppressed = t.allow("r", "c1", "y", 101.5)
    assert allowed and suppressed == 2, "the next alert says how many were held back"
    d = Throttle(dedup_window=5.0)
    assert d.allow("r", "c", "same", 0.0)[0]
    assert not d.allow("r", "c", "same", 1.0)[0]
    assert d.allow("r", "c", "other", 2.0) == (True, 1)
    assert d.allow("r", "c", "same", 10.0)[0]


def test_falco_json_alerts_are_routed_to_outputs(tmp_path: Path) -> None:
    # A line as Falco writes it with json_output: true.
    falco = {
        "hostname": "node1",
        "output": "14:30:00.123456789: Notice A shell was spawned in a container "
        "(user=root container_id=4f3a container_name=web)",
        "output_fields": {"container.id": "4f3a", "container.name": "web", "proc.name": "bash"},
        "priority": "Notice",
        "rule": "Terminal shell in container",
        "source": "syscall",
        "tags": ["container", "shell"],
        "time": "2026-11-29T14:30:00.123456789Z",
    }
    path = tmp_path / "falco.jsonl"
    path.write_text("not json\n" + json.dumps(falco) + "\n")
    got: list[Alert] = []
    src = FalcoJsonSource(str(path), got.append, follow=False)
    stop = threading.Event()
    src.start(lambda ev: None, stop)
    src.close()
    [a] = got
    assert a.rule == "Terminal shell in container" and a.hostname == "node1"
    assert a.container == {"id": "4f3a", "name": "web"}
    assert a.time == "2026-11-29T14:30:00.123456789Z"
    assert a.to_dict()["output_fields"]["proc.name"] == "bash"
    assert src.malformed == 0  # non-JSON log lines are skipped, not counted


def test_alert_round_trips_through_the_spool_format() -> None:
    a = Alert(
        "id1",
        1_700_000_000_123_456_789,
        "r",
        build_engine(MonitorConfig()).rules[0].priority,
        "text",
        "syscall",
        ("t",),
        "h",
        {"name": "c"},
        {"proc.name": "sh"},
    )
    back = Alert.from_dict(json.loads(a.to_json()))
    assert back == a


def test_docker_event_parsing() -> None:
    raw = {
        "Type": "container",
        "Action": "exec_start: sh -c id",
        "Actor": {"ID": "a" * 64, "Attributes": {"execID": "e1", "image": "busybox"}},
        "time": 1700000000,
        "timeNano": 1700000000123456789,
    }
    ev = docker_event(raw, lambda _id: {"ProcessConfig": {"tty": True, "user": "app"}})
    assert ev["evt.type"] == "exec_start" and ev["docker.exec.cmdline"] == "sh -c id"
    assert ev["docker.exec.tty"] is True and ev["docker.exec.user"] == "app"
    assert ev["_cid"] == "a" * 64 and ev["evt.time"] == 1700000000123456789


def test_healthcheck_commands_match_what_the_engine_runs() -> None:
    assert healthcheck_command(Healthcheck(("CMD", "true"))) == "true"
    assert healthcheck_command(Healthcheck(("CMD-SHELL", "curl -f x"))) == "/bin/sh -c curl -f x"
    assert healthcheck_command(Healthcheck(("NONE",))) == ""
    assert healthcheck_command(None) == ""


def test_cgroup_and_image_parsing() -> None:
    cid = "0123456789abcdef" * 4
    assert container_id_from_cgroup(f"12:pids:/docker/{cid}\n") == cid
    assert container_id_from_cgroup(f"0::/system.slice/docker-{cid}.scope\n") == cid
    assert container_id_from_cgroup("0::/user.slice/session-1.scope\n") is None
    assert split_image("registry:5000/app:1.2") == ("registry:5000/app", "1.2")
    assert split_image("app") == ("app", "latest")
    assert split_image("app@sha256:abc") == ("app", "")


def test_proc_connector_message_parsing() -> None:
    def msg(what: int, payload: bytes) -> bytes:
        body = struct.pack("=IIIIHH", 1, 1, 0, 0, 16 + len(payload), 0)
        body += struct.pack("=IIQ", what, 0, 5) + payload
        return struct.pack("=IHHII", 16 + len(body), 3, 0, 0, 0) + body

    data = (
        msg(1, struct.pack("=IIII", 10, 10, 11, 11))
        + msg(1, struct.pack("=IIII", 10, 10, 12, 11))  # a thread: left out
        + msg(2, struct.pack("=II", 11, 11))
        + msg(0x80000000, struct.pack("=IIII", 11, 11, 0, 0))
    )
    kinds = [(e.kind, e.pid) for e in parse_messages(data)]
    assert kinds == [("fork", 11), ("exec", 11), ("exit", 11)]


def test_audit_record_parsing_and_rule_encoding() -> None:
    def rec(rtype: int, text: str) -> bytes:
        body = f"audit(1700000000.250:42): {text}".encode()
        return struct.pack("=IHHII", 16 + len(body), rtype, 0, 0, 0) + body

    ev = AuditEvent(42, 0)
    for rtype, text in (
        (1300, 'arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=2 uid=0 tty=pts1 comm="sh"'),
        (1309, 'argc=3 a0="sh" a1="-c" a2=6563686F206869'),
        (1307, 'cwd="/root"'),
    ):
        parsed = parse_record(rec(rtype, text))
        assert parsed is not None and parsed[1] == 42 and parsed[2] == 1700000000250000000
        ev.add(parsed[0], parsed[3])
    assert ev.argv == ["sh", "-c", "echo hi"] and ev.cwd == "/root"
    assert tty_number("pts1") == 34817 and tty_number("(none)") == 0
    inet = decode_sockaddr("02000050" + "7F000001" + "00" * 8)
    assert inet["fd.sip"] == "127.0.0.1" and inet["fd.sport"] == 80
    unix = decode_sockaddr("0100" + b"/var/run/docker.sock".hex() + "00")
    assert unix["fd.name"] == "/var/run/docker.sock" and unix["fd.typechar"] == "u"
    payload = rule_payload([59], 0xC000003E, True, 0)
    flags, action, count = struct.unpack_from("=3I", payload)
    assert (flags, action, count) == (4, 2, 3)
    assert payload.endswith(b"dockward-monitor")


def test_a_process_that_exited_is_attributed_through_its_runtime_ancestors(
    tmp_path: Path,
) -> None:
    from dockward.monitor.procs import Proc, ProcessTable
    from dockward.monitor.sources import container_of_ancestors

    cid = "c" * 64
    table = ProcessTable(proc_root=str(tmp_path))  # an empty /proc: every process is gone
    table.remember(Proc(pid=10, name="containerd-shim", args=("containerd-shim", "-id", cid)))
    table.remember(Proc(pid=11, ppid=10, name="runc", args=("runc", "exec", "--detach", cid)))
    table.remember(Proc(pid=20, ppid=1, name="bash", args=("bash",)))
    assert container_of_ancestors(table, 11) == cid
    assert container_of_ancestors(table, 10) == cid
    assert container_of_ancestors(table, 20) is None
    table.remember(Proc(pid=30, ppid=11, name="sh", container_id="d" * 64))
    assert container_of_ancestors(table, 30) == "d" * 64


def test_a_container_started_after_its_metadata_was_cached_is_still_watched(
    tmp_path: Path,
) -> None:
    """The create event caches state "created"; the start that follows must mark the filesystem.

    /dev/shm stands in for the container's merged dir: a mounted filesystem of its own.
    """
    from dockward.monitor.containers import ContainerCache, info_from_inspect
    from dockward.monitor.procs import ProcessTable
    from dockward.monitor.sources import FileSource

    cid = "c" * 64
    inspect = {
        "Id": cid,
        "Name": "/web",
        "State": {"Status": "created", "Running": False},
        "Config": {"Image": "dockward-lab/busybox:1.0"},
        "HostConfig": {},
        "GraphDriver": {"Name": "overlay2", "Data": {"MergedDir": "/dev/shm"}},
    }
    cache = ContainerCache(None)
    cache.put(info_from_inspect(inspect))
    source = FileSource(ProcessTable(), cache)
    try:
        source.watch_id(cid)
        assert list(source.fan.roots.values()) == ["/dev/shm"]
        # Written then read by one process: the kernel merges both closes into one record.
        with tempfile.NamedTemporaryFile(dir="/dev/shm") as f:
            name = "/" + Path(f.name).name
            Path(f.name).write_bytes(b"x")
            Path(f.name).read_bytes()
        seen: list[Any] = []
        wait_for(lambda: seen.extend(source.fan.read_events()) or len(seen) >= 2, 5)
        events = [e for e in seen if e.path == name]
        assert sorted(e.write for e in events) == [False, True]
        assert all(e.root == "/dev/shm" for e in events)
    finally:
        source.close()
