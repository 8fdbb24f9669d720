"""Monitor alerts to chat: `--output` takes notification URLs, rate limited per destination."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from tests.conftest import REPO, run_cli
from tests.notify.receivers import Receiver

FIXTURE = REPO / "tests" / "fixtures" / "monitor" / "attack-events.jsonl"


def _replay(tmp_path: Path, *args: str) -> tuple[int, str, list[dict[str, object]]]:
    out = tmp_path / "alerts.jsonl"
    res = run_cli(
        "monitor",
        "replay",
        str(FIXTURE),
        "-o",
        f"file:{out}",
        "--spool-dir",
        str(tmp_path / "spool"),
        "--min-priority",
        "warning",
        *args,
    )
    alerts = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
    return res.code, res.err, alerts


def test_a_burst_of_alerts_reaches_ntfy_coalesced_under_the_rate_limit(tmp_path: Path) -> None:
    with Receiver() as rx:
        code, err, alerts = _replay(
            tmp_path, "-o", f"ntfy://127.0.0.1:{rx.port}/alerts?scheme=http", "--notify-rate", "60"
        )
        assert code == 0, err
        assert len(alerts) > 6, "the fixture must be a burst for this test"
        got = rx.behaviour.wait(6)
        time.sleep(0.5)
    bodies = [r.json() for r in got]
    # The burst (5) goes out one by one; what comes after waits for the rate and goes out
    # coalesced (one message per held-back batch; under load the replay may feed two batches).
    titles = [b["title"] for b in bodies]
    assert not any(re.match(r"\d+ notifications: ", t) for t in titles[:5]), titles
    assert 6 <= len(bodies) <= 8 and len(bodies) < len(alerts), titles
    covered = 0
    for b in bodies:
        assert b["topic"] == "alerts"
        m = re.match(r"(\d+) notifications: ", b["title"])
        covered += int(m.group(1)) if m else 1
    assert covered == len(alerts)
    first = alerts[0]
    assert str(first["rule"]) in bodies[0]["title"]
    # Falco's output line without its time and priority prefix is the message.
    assert str(first["output"]).split(" ", 2)[2] in bodies[0]["message"]


def test_without_a_rate_limit_every_alert_is_one_message(tmp_path: Path) -> None:
    with Receiver() as rx:
        code, err, alerts = _replay(
            tmp_path, "-o", f"json://127.0.0.1:{rx.port}/hook", "--notify-rate", "0"
        )
        assert code == 0, err
        got = rx.behaviour.wait(len(alerts))
    titles = [r.json()["title"] for r in got]
    assert len(titles) == len(alerts)
    assert {r.json()["type"] for r in got} <= {"failure", "warning"}


def test_a_bad_notification_output_is_one_line(tmp_path: Path) -> None:
    res = run_cli("monitor", "replay", str(FIXTURE), "-o", "teams://g@t/a/o")
    assert res.code == 2 and "--output: notification URL teams://" in res.err
    assert len(res.err.strip().splitlines()) == 1
