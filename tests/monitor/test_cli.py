"""`dockward monitor` as a user runs it: validate, replay, dry-run, errors, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, kill_after, run_cli
from tests.monitor.conftest import Receiver

FIXTURE = REPO / "tests" / "fixtures" / "monitor" / "attack-events.jsonl"


def test_validate_default_rules_is_clean() -> None:
    res = run_cli("monitor", "validate", str(REPO / "src/dockward/monitor/default_rules.yaml"))
    assert res.code == 0, res.out + res.err
    assert "disabled: 0" in res.out


def test_validate_reports_disabled_rules_with_exit_1(tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "- rule: typo\n  desc: d\n  condition: proc.nmae = sh\n  output: o\n  priority: INFO\n"
    )
    res = run_cli("monitor", "validate", "--format", "json", str(rules))
    assert res.code == 1
    data = json.loads(res.out)
    assert data["disabled"] == {"typo": "unknown field proc.nmae"}


def test_validate_malformed_file_is_one_line_exit_2(tmp_path: Path) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text(
        "- rule: r\n  desc: d\n  condition: proc.name in (a,\n  output: o\n  priority: INFO\n"
    )
    res = run_cli("monitor", "validate", str(rules))
    assert res.code == 2
    assert res.err.startswith(f"dockward: error: {rules}:1: rule r: condition")
    assert len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err


def test_dry_run_prints_alerts_of_a_recording() -> None:
    res = run_cli(
        "monitor", "run", "--dry-run", str(FIXTURE), "--spool-dir", "/tmp/dwmon-cli-spool"
    )
    assert res.code == 0, res.err
    assert "Cryptominer executed" in res.out and "dwmon-web-" in res.out


def test_replay_sends_to_a_webhook_and_a_file(tmp_path: Path) -> None:
    r = Receiver(15722)
    r.start()
    try:
        out = tmp_path / "alerts.jsonl"
        res = run_cli(
            "monitor",
            "replay",
            str(FIXTURE),
            "-o",
            r.url,
            "-o",
            f"file:{out}",
            "--spool-dir",
            str(tmp_path / "spool"),
            "--min-priority",
            "critical",
            "--stats",
        )
        assert res.code == 0, res.err
        bodies = r.json_bodies()
        file_lines = [json.loads(x) for x in out.read_text().splitlines()]
        assert bodies and [b["uuid"] for b in bodies] == [a["uuid"] for a in file_lines]
        assert {b["priority"] for b in bodies} == {"Critical"}
        stats = json.loads(res.err[res.err.index("{") :])
        assert stats["alerts"] == len(bodies)
    finally:
        r.stop()


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    for args, needle in (
        (["monitor", "run", "-o", "gopher://x", "--dry-run", str(FIXTURE)], "--output"),
        (["monitor", "run", "--min-priority", "loud", "--dry-run", str(FIXTURE)], "--min-priority"),
        (["monitor", "replay", str(tmp_path / "missing.jsonl")], "cannot read events"),
        (
            ["monitor", "run", "--rules", str(tmp_path / "none.yaml"), "--dry-run", str(FIXTURE)],
            "cannot read",
        ),
        (["monitor", "run", "--queue-size", "0", "--dry-run", str(FIXTURE)], "--queue-size"),
        (["monitor"], "choose an action"),
    ):
        res = (
            run_cli(*args, "--spool-dir", str(tmp_path / "s"))
            if args != ["monitor"]
            else run_cli(*args)
        )
        assert res.code == 2, (args, res.out, res.err)
        assert needle in res.err and "Traceback" not in res.err, (args, res.err)


def test_bad_event_line_names_file_and_line(tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text('{"evt.type": "execve"}\n[1, 2]\n')
    res = run_cli("monitor", "replay", str(events), "--spool-dir", str(tmp_path / "s"))
    assert res.code == 2 and f"{events}:2:" in res.err


def test_sigterm_stops_cleanly_and_removes_audit_rules(tmp_path: Path, docker_api: object) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dockward",
            "monitor",
            "run",
            "-o",
            "json",
            "--stats",
            "--spool-dir",
            str(tmp_path / "s"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        watchdog = kill_after(proc, 60)
        line = proc.stderr.readline()
        watchdog.cancel()
        assert "monitor running" in line, line + proc.stderr.read()
        assert _audit_rules_with_key() >= 1
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert '"outputs"' in err
    assert _audit_rules_with_key() == 0


def _audit_rules_with_key() -> int:
    """How many audit rules carry dockward's key (AUDIT_LIST_RULES over netlink)."""
    import socket
    import struct

    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)
    try:
        s.bind((0, 0))
        s.settimeout(2)
        s.send(struct.pack("=IHHII", 16, 1013, 1 | 0x300, 1, 0))  # AUDIT_LIST_RULES, NLM_F_DUMP
        count = 0
        while True:
            data = s.recv(1 << 16)
            off = 0
            done = False
            while off + 16 <= len(data):
                length, mtype = struct.unpack_from("=IH", data, off)
                if mtype in (2, 3):  # error / done
                    done = True
                    break
                if b"dockward-monitor" in data[off : off + length]:
                    count += 1
                off += (length + 3) & ~3
            if done:
                return count
    finally:
        s.close()


def test_no_audit_opens_flag_and_env_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    from dockward.cli import build_parser
    from dockward.cli.monitor import _config

    argv = ["monitor", "run", "--duration", "1"]
    assert _config(build_parser(argv).parse_args(argv)).audit_opens is True
    off = [*argv, "--no-audit-opens"]
    assert _config(build_parser(off).parse_args(off)).audit_opens is False
    monkeypatch.setenv("DOCKWARD_MONITOR_NO_AUDIT_OPENS", "1")
    assert _config(build_parser(argv).parse_args(argv)).audit_opens is False
