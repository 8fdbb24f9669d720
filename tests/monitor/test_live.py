"""End to end on the real daemon: attack a container, alerts arrive in rsyslog, a webhook, a file."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockward.monitor import MonitorConfig, run_live
from dockward.monitor.runner import RunSummary
from tests.monitor import scenario
from tests.monitor.conftest import Receiver, Rsyslog, wait_for


@pytest.fixture
def live(
    docker_api: Any,
    lab_image: str,
    rsyslog: Rsyslog,
    http_receiver: Receiver,
    spool_dir: Path,
) -> Iterator[dict[str, Any]]:
    scenario.remove_stale(docker_api)
    alerts_file = spool_dir / "alerts.jsonl"
    cfg = MonitorConfig(
        outputs=(
            f"syslog+tcp://127.0.0.1:{rsyslog.tcp}",
            http_receiver.url + "/alerts",
            f"file:{alerts_file}",
        ),
        spool_dir=str(spool_dir / "spool"),
        min_priority="informational",  # the SIEM stream asks for plain docker execs too
    )
    stop = threading.Event()
    ready = threading.Event()
    result: dict[str, Any] = {}
    warnings: list[str] = []

    def target() -> None:
        result["summary"] = run_live(cfg, docker_api, stop, lambda m: ready.set(), warnings.append)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    assert ready.wait(60), "monitor did not start"
    lab = scenario.start_lab(docker_api, lab_image)
    try:
        yield {
            "lab": lab,
            "file": alerts_file,
            "stop": stop,
            "result": result,
            "warnings": warnings,
        }
    finally:
        stop.set()
        t.join(30)
        scenario.stop_lab(docker_api, lab)


def _webhook(receiver: Receiver, rule: str, container: str) -> list[dict[str, Any]]:
    return [
        b
        for b in receiver.json_bodies()
        if b["rule"] == rule and b["container"].get("name") == container
    ]


def test_attack_alerts_reach_syslog_webhook_and_file(
    docker_api: Any, live: dict[str, Any], rsyslog: Rsyslog, http_receiver: Receiver
) -> None:
    lab: scenario.Lab = live["lab"]
    # The file source marks a container's filesystem when it handles the start event; the lab's
    # last container alerting on start means the earlier starts (web's) were handled, so every
    # read from here on must be seen (the metadata cached at create still says "created").
    assert wait_for(
        lambda: _webhook(http_receiver, "Sensitive mount container started", lab.sock), 20
    )
    scenario.attack(docker_api, lab)
    wanted = [
        ("Shell spawned in container", lab.web),
        ("Read sensitive file in container", lab.web),
        ("Network tool run in container", lab.web),
        ("Docker exec into container", lab.web),
        ("Privileged exec into container", lab.web),
        ("Write below binary dir or etc in container", lab.web),
        ("Privileged or host-namespace container started", lab.hostnet),
        ("Sensitive mount container started", lab.sock),
        ("Privileged or host-namespace container started", lab.priv),  # created only
        ("Script run from tmp or shm", lab.web),
    ]
    for rule, container in wanted:
        hits = wait_for(lambda r=rule, c=container: _webhook(http_receiver, r, c), 20)
        assert hits, f"webhook: no {rule!r} for {container}"
    shadow = _webhook(http_receiver, "Read sensitive file in container", lab.web)[0]
    assert shadow["output_fields"]["fd.name"] == "/etc/shadow"
    assert shadow["container"]["image"] == "dockward-lab/busybox:1.0"
    shell = _webhook(http_receiver, "Shell spawned in container", lab.web)[0]
    assert shell["output_fields"]["proc.cmdline"].startswith("sh -c echo")
    for rule, container in wanted:
        line = wait_for(
            lambda r=rule, c=container: [
                x for x in rsyslog.lines() if f'rule="{r}"' in x and f'container="{c}"' in x
            ],
            20,
        )
        assert line, f"rsyslog: no {rule!r} for {container}"
    file_alerts = wait_for(
        lambda: (
            [json.loads(x) for x in live["file"].read_text().splitlines()]
            if live["file"].exists()
            else []
        ),
        10,
    )
    got = {(a["rule"], a["container"].get("name")) for a in file_alerts}
    assert set(wanted) <= got
    # Every alert the webhook got has a unique id: nothing delivered twice.
    ids = [b["uuid"] for b in http_receiver.json_bodies()]
    assert len(ids) == len(set(ids))
    live["stop"].set()
    summary: RunSummary = wait_for(lambda: live["result"].get("summary"), 30)
    assert summary is not None
    assert all(o["dropped"] == 0 for o in summary.outputs.values())
    assert "audit" in summary.sources, live["warnings"]


def test_short_lived_processes_keep_their_command_line(
    docker_api: Any, live: dict[str, Any], http_receiver: Receiver
) -> None:
    lab: scenario.Lab = live["lab"]
    # 50 package-manager runs that exit at once ("applet not found").
    scenario.exec_in(
        docker_api,
        lab.web,
        ["sh", "-c", "ln -sf /bin/busybox /tmp/apk; for i in $(seq 50); do /tmp/apk add x$i; done"],
    )
    hits = wait_for(
        lambda: (
            [b for b in _webhook(http_receiver, "Package manager run in container", lab.web)]
            if len(_webhook(http_receiver, "Package manager run in container", lab.web)) >= 50
            else []
        ),
        20,
    )
    cmdlines = {b["output_fields"]["proc.cmdline"] for b in hits}
    assert cmdlines == {f"apk add x{i}" for i in range(1, 51)}
