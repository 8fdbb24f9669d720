"""The decision log to syslog (a real UDP datagram) and to a file; credentials never logged."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from dockward.proxy.audit import DecisionLog


def test_syslog_udp_receives_json() -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 15630))
    rx.settimeout(5)
    try:
        log = DecisionLog("syslog:127.0.0.1:15630")
        log.record(client={"uid": 0}, method="GET", path="/_ping", decision="deny", rule="x")
        data, _ = rx.recvfrom(65536)
        log.close()
    finally:
        rx.close()
    text = data.decode()
    assert text.startswith("<") and "dockward-proxy: " in text  # PRI and tag
    doc = json.loads(text.split("dockward-proxy: ", 1)[1].rstrip("\x00"))
    assert doc["decision"] == "deny" and doc["path"] == "/_ping"


def test_file_log_and_level(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    quiet = DecisionLog(str(f), level="warning")
    quiet.record(decision="allow", path="/a")
    quiet.record(decision="deny", path="/b")
    quiet.close()
    lines = [json.loads(x) for x in f.read_text().splitlines()]
    assert [d["path"] for d in lines] == ["/b"]
