"""The default rules on events recorded from real containers (tests/monitor/scenario.py).

Every default rule has a firing case (the attack) and a quiet case (benign commands in the
same container, a plain container start) in the same recording.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from dockward.monitor import MonitorConfig, build_engine
from dockward.monitor.dispatch import Dispatcher
from dockward.monitor.service import Monitor, read_events

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "monitor" / "attack-events.jsonl"


@pytest.fixture(scope="module")
def fired() -> dict[str, list[dict[str, Any]]]:
    # Informational audit events (a plain docker exec) only when asked for.
    engine = build_engine(MonitorConfig(min_priority="informational"))
    assert not engine.disabled, engine.disabled
    monitor = Monitor(engine, Dispatcher([]))
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in read_events(FIXTURE):
        for alert in monitor.process(ev):
            out[alert.rule].append({"alert": alert, "event": ev})
    return out


def _containers(hits: list[dict[str, Any]]) -> set[str]:
    return {str(h["alert"].container.get("name", "")).rsplit("-", 1)[0] for h in hits}


EXPECTED = {
    "Terminal shell in container": {"dwmon-web"},
    "Shell spawned in container": {"dwmon-web"},
    "Package manager run in container": {"dwmon-web"},
    "Write below binary dir or etc in container": {"dwmon-web"},
    "Read sensitive file in container": {"dwmon-web"},
    "Docker socket or client used from container": {"dwmon-web"},
    "Privileged or host-namespace container started": {"dwmon-hostnet", "dwmon-priv"},
    "Sensitive mount container started": {"dwmon-sock"},
    "Docker exec into container": {"dwmon-web"},
    "Privileged exec into container": {"dwmon-web"},
    "Network tool run in container": {"dwmon-web"},
    "Network tool connection from container": {"dwmon-web"},
    "Execution from tmp or shm": {"dwmon-web"},
    "Script run from tmp or shm": {"dwmon-web"},
    "Known cryptominer executed": {"dwmon-web"},
    "Drop and execute new binary in container": {"dwmon-web"},
}


@pytest.mark.parametrize("rule", sorted(EXPECTED))
def test_rule_fires_on_the_recorded_attack(
    fired: dict[str, list[dict[str, Any]]], rule: str
) -> None:
    assert rule in fired, f"{rule} did not fire; fired: {sorted(fired)}"
    assert _containers(fired[rule]) == EXPECTED[rule]


def test_every_default_rule_is_covered() -> None:
    engine = build_engine(MonitorConfig(min_priority="debug"))
    untested = {r.name for r in engine.rules} - set(EXPECTED)
    # Covered elsewhere: the drop alert (test_service) and the metadata rule (below).
    assert untested == {"Dockward alerts dropped", "Contact cloud metadata service from container"}


def test_benign_commands_stay_quiet(fired: dict[str, list[dict[str, Any]]]) -> None:
    cmdlines = {str(h["event"].get("proc.cmdline")) for hits in fired.values() for h in hits} | {
        str(h["event"].get("docker.exec.cmdline")) for hits in fired.values() for h in hits
    }
    for rule, hits in fired.items():
        if rule == "Docker exec into container":
            continue  # every exec is reported, benign or not
        for h in hits:
            assert h["event"].get("proc.cmdline") not in ("cat /etc/passwd", "ls /"), rule
    # The recording has the benign execs, so the quiet result is meaningful.
    events = list(read_events(FIXTURE))
    assert any(e.get("proc.cmdline") == "cat /etc/passwd" for e in events)
    assert any(e.get("fd.name") == "/etc/passwd" and e.get("evt.is_open_read") for e in events)
    assert "cat /etc/passwd" in cmdlines  # its docker exec was reported


def test_plain_exec_is_an_audit_event_below_the_default_priority() -> None:
    default = build_engine(MonitorConfig())
    assert "Docker exec into container" not in {r.name for r in default.rules}
    monitor = Monitor(default, Dispatcher([]))
    alerts, plain = [], []
    for ev in read_events(FIXTURE):
        got = monitor.process(ev)
        alerts += got
        if "cat /etc/passwd" in (ev.get("docker.exec.cmdline"), ev.get("proc.cmdline")):
            plain.append((ev["evt.type"], got))
    assert ("exec_start", []) in plain  # `docker exec web cat /etc/passwd` raises nothing
    assert all(got == [] for _, got in plain)
    # Shells and terminals started through exec stay alerts.
    assert {"Shell spawned in container", "Terminal shell in container"} <= {a.rule for a in alerts}


def test_script_rule_judges_the_scripts_path(fired: dict[str, list[dict[str, Any]]]) -> None:
    scripts = {h["event"]["proc.script"] for h in fired["Script run from tmp or shm"]}
    assert scripts == {"/dev/shm/stage.sh", "/tmp/rel.sh"}  # ./rel.sh resolved from cwd /tmp
    events = list(read_events(FIXTURE))
    assert any(e.get("proc.script") == "/srv/ok.sh" for e in events)  # the quiet case


def test_privileged_container_alerts_at_create(fired: dict[str, list[dict[str, Any]]]) -> None:
    hits = fired["Privileged or host-namespace container started"]
    priv = [h for h in hits if str(h["alert"].container.get("name")).startswith("dwmon-priv")]
    assert [h["event"]["evt.type"] for h in priv] == ["create"]  # created, never started
    assert "container create" in priv[0]["alert"].output


def test_plain_container_start_is_not_a_host_namespace_alert(
    fired: dict[str, list[dict[str, Any]]],
) -> None:
    events = list(read_events(FIXTURE))
    starts = [
        e
        for e in events
        if e.get("evt.source") == "docker"
        and e.get("evt.type") == "start"
        and str(e.get("container.name", "")).startswith("dwmon-web")
    ]
    assert starts, "the recording has the plain container's start"
    names = {
        h["alert"].container.get("name")
        for r in (
            "Privileged or host-namespace container started",
            "Sensitive mount container started",
        )
        for h in fired.get(r, [])
    }
    assert starts[0]["container.name"] not in names


def test_container_fields_come_from_the_shared_container_rules() -> None:
    events = [e for e in read_events(FIXTURE) if e.get("evt.type") == "start"]
    by_name = {str(e["container.name"]).rsplit("-", 1)[0]: e for e in events}
    assert "DW-C011" in by_name["dwmon-hostnet"]["container.failed_rules"]
    assert "DW-C011" not in by_name["dwmon-web"]["container.failed_rules"]
    assert "DW-C008" in by_name["dwmon-sock"]["container.failed_rules"]


def test_metadata_rule_fires_on_a_connect_to_the_metadata_address() -> None:
    engine = build_engine(MonitorConfig())
    connect = next(
        e for e in read_events(FIXTURE) if e.get("evt.type") == "connect" and e.get("fd.sip")
    )
    to_metadata = {**connect, "fd.sip": "169.254.169.254", "fd.name": "169.254.169.254:80"}
    names = lambda ev: {m.rule.name for m in engine.match(dict(ev))}  # noqa: E731
    assert "Contact cloud metadata service from container" in names(to_metadata)
    assert "Contact cloud metadata service from container" not in names(connect)


def test_fixture_is_a_real_recording() -> None:
    lines = FIXTURE.read_text().splitlines()
    events = [json.loads(x) for x in lines]
    assert {e["evt.source"] for e in events} == {"docker", "syscall"}
    assert all(len(str(e.get("container.full_id", ""))) == 64 for e in events)
