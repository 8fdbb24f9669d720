"""`daemon harden` against a real extra dockerd with a weak daemon.json and argv flags.

The daemon is started like a packaged one: flags on its command line (data-root, exec-root,
pidfile, socket, `--ip 0.0.0.0`) plus a daemon.json with a debug log level and keys dockward
does not touch. The tests run in order: the weak daemon fails the checks; a proposal that
dockerd would refuse is rolled back by itself; the real apply + restart makes the checks pass
and containers run under userns-remap; `--rollback` brings the weak file back.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LAB_IMAGE, REPO, run_cli
from tests.harden import daemons

ROOT = Path("/tmp/dwharden2-d")
NETNS = "dwharden2"
SOCK = f"unix://{ROOT / 'docker.sock'}"
WEAK = {
    "log-level": "debug",
    "labels": ["dockward.test=dwharden2"],
    "shutdown-timeout": 5,
    "max-concurrent-downloads": 2,
}
RESTART = shlex.join([sys.executable, "-m", "tests.harden.daemons", "restart", str(ROOT)])
MUST_FIX = ("DW-D002", "DW-D003", "DW-D009", "DW-D014", "DW-D015", "DW-D016")


@pytest.fixture(scope="module")
def weak(docker_api: Any) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("starting an extra dockerd needs root (the test command runs as root)")
    daemons.setup(ROOT, NETNS, WEAK, ("--ip", "0.0.0.0"))
    daemons.start(ROOT)
    if not daemons.wait_ready(ROOT):
        pytest.fail(f"extra dockerd did not start: {daemons.log_tail(ROOT)}")
    try:
        yield ROOT / "daemon.json"
    finally:
        daemons.stop_daemon(ROOT)
        daemons.stop_stale(ROOT)


def cli(*args: str) -> Any:
    return run_cli(*args, cwd=REPO, timeout=180)


def daemon_status() -> dict[str, str]:
    res = cli("audit", "-H", SOCK, "--section", "daemon", "-f", "json", "--fail-on", "never")
    assert res.code == 0, res.err
    return {r["rule_id"]: r["status"] for r in json.loads(res.out)["results"]}


def test_weak_daemon_fails_the_checks(weak: Path) -> None:
    status = daemon_status()
    assert {r: status[r] for r in MUST_FIX} == dict.fromkeys(MUST_FIX, "fail")


def test_proposal_shows_diff_and_reports_flag_conflicts(weak: Path) -> None:
    before = weak.read_text()
    res = cli("daemon", "harden", "-H", SOCK, "--ip", "127.0.0.1", "--json")
    assert res.code == 1, res.err  # changes proposed, nothing written
    out = json.loads(res.out)
    keys = {c["key"]: c["new"] for c in out["changes"]}
    assert keys["icc"] is False and keys["log-level"] == "info"
    assert keys["userns-remap"] == "default" and keys["no-new-privileges"] is True
    assert keys["live-restore"] is True and keys["userland-proxy"] is False
    assert keys["log-opts"] == {"max-size": "10m", "max-file": "3"}
    assert "ip" not in keys and "ip" not in out["proposed"]
    blocked = {b["key"]: b["message"] for b in out["blocked"]}
    assert "--ip=0.0.0.0" in blocked["ip"]
    assert '-  "log-level": "debug",' in out["diff"] and '+  "icc": false,' in out["diff"]
    assert any("become invisible" in w for w in out["warnings"])
    assert weak.read_text() == before
    assert not Path(f"{weak}.bak").exists()


def test_a_file_dockerd_refuses_is_rolled_back(weak: Path) -> None:
    """dockerd validates syslog-address only when it starts: the restart fails, the previous
    file comes back and the daemon runs again with it."""
    before = weak.read_text()
    res = cli(
        "daemon", "harden", "-H", SOCK, "--apply", "--restart", "--restart-cmd", RESTART,
        "--log-driver", "syslog", "--log-opt", "syslog-address=bogus://nowhere", "--wait", "30",
    )  # fmt: skip
    assert res.code == 2, res.out + res.err
    assert "previous version is restored and dockerd is back" in res.err
    assert len(res.err.strip().splitlines()) == 1
    assert weak.read_text() == before
    assert daemons.wait_ready(ROOT, 5)
    assert "syslog-address should be in form" in daemons.log_tail(ROOT, 200_000)


def test_apply_and_restart_harden_the_daemon(weak: Path) -> None:
    before = weak.read_text()
    res = cli(
        "daemon", "harden", "-H", SOCK, "--apply", "--restart", "--restart-cmd", RESTART,
        "--json",
    )  # fmt: skip
    assert res.code == 0, res.err
    out = json.loads(res.out)
    assert set(MUST_FIX) <= set(out["restart"]["now_passing"])
    written = json.loads(weak.read_text())
    for key, value in WEAK.items():
        if key != "log-level":
            assert written[key] == value  # the user's other settings are kept
    assert Path(f"{weak}.bak").read_text() == before
    assert Path(out["applied"]["backup"]).read_text() == before
    status = daemon_status()
    assert {r: status[r] for r in MUST_FIX} == dict.fromkeys(MUST_FIX, "pass")
    assert status["DW-D008"] == "pass"


def _run(client: Any, script: str, keep: bool = False) -> tuple[str, int]:
    cid = client.create_container(
        LAB_IMAGE,
        ["sh", "-c", script],
        labels={"dockward.test": "dwharden2"},
        host_config=client.create_host_config(network_mode="none"),
    )["Id"]
    client.start(cid)
    if keep:
        return cid, client.inspect_container(cid)["State"]["Pid"]
    try:
        return cid, client.wait(cid, timeout=30)["StatusCode"]
    finally:
        client.remove_container(cid, force=True)


def test_containers_run_under_userns_remap(weak: Path) -> None:
    """Container root is dockremap's first subordinate uid on the host (seen in the host's
    /proc) and the daemon's default ulimit applies. Checked by exit codes and /proc, not by
    output: while this was written, the stdio of remapped containers here was /dev/null."""
    from dockward.engine import connect, resolve_endpoint
    from dockward.engine.lab import build_busybox_image
    from dockward.harden.subids import check_remap

    soft = json.loads(weak.read_text())["default-ulimits"]["nofile"]["Soft"]
    remap = check_remap("default")  # dockerd created dockremap's ranges if they were missing
    root_uid = str(remap.root_uid)
    check = (
        'test "$(id -u)" = 0 && grep -Eq "^ *0 +{uid} +COUNT$" /proc/self/uid_map '
        f'&& test "$(ulimit -n)" = {soft}'
    ).replace("COUNT", str(remap.uid_ranges[0].count))
    client = connect(resolve_endpoint(SOCK), timeout=60)
    try:
        assert any("userns" in o for o in client.info()["SecurityOptions"])
        build_busybox_image(client, LAB_IMAGE)
        assert _run(client, check.replace("{uid}", root_uid))[1] == 0
        assert _run(client, check.replace("{uid}", "0"))[1] == 1  # the check can fail
        cid, pid = _run(client, "sleep 30", keep=True)
        try:
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
            uid = next(line for line in status if line.startswith("Uid:"))
            assert uid.split()[1:] == [root_uid] * 4
        finally:
            client.remove_container(cid, force=True)
    finally:
        client.close()


def test_nothing_left_to_change(weak: Path) -> None:
    res = cli("daemon", "harden", "-H", SOCK, "--apply")
    assert res.code == 0, res.err
    assert "nothing to change" in res.out


def test_rollback_restores_the_previous_file(weak: Path) -> None:
    hardened = weak.read_text()
    res = cli("daemon", "harden", "-H", SOCK, "--rollback", "--restart", "--restart-cmd", RESTART)
    assert res.code == 0, res.err
    assert json.loads(weak.read_text()) == WEAK
    assert Path(f"{weak}.bak").read_text() == hardened  # a rollback can itself be undone
    status = daemon_status()
    assert status["DW-D003"] == "fail" and status["DW-D009"] == "fail"


def test_malformed_file_is_refused_untouched(weak: Path, tmp_path: Path) -> None:
    bad = tmp_path / "daemon.json"
    bad.write_text('{"icc": true,\n  "log-level": }\n')
    res = cli("daemon", "harden", "-H", SOCK, "--config-file", str(bad), "--apply")
    assert res.code == 2
    assert res.err.strip().count("\n") == 0 and "invalid JSON at line 2" in res.err
    assert bad.read_text() == '{"icc": true,\n  "log-level": }\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["daemon.json"]


def test_key_set_by_flag_and_file_is_a_conflict(weak: Path, tmp_path: Path) -> None:
    """dockerd refuses `ip` in daemon.json when `--ip` is on its command line."""
    cfg = tmp_path / "daemon.json"
    cfg.write_text('{"ip": "127.0.0.1"}\n')
    res = cli("daemon", "harden", "-H", SOCK, "--config-file", str(cfg), "--apply")
    assert res.code == 2
    assert "ip is set both in" in res.err and "--ip=0.0.0.0" in res.err
    assert cfg.read_text() == '{"ip": "127.0.0.1"}\n'


def test_apply_without_a_file_creates_it_and_rollback_empties_it(
    weak: Path, tmp_path: Path
) -> None:
    cfg = tmp_path / "new" / "daemon.json"
    res = cli("daemon", "harden", "-H", SOCK, "--config-file", str(cfg), "--apply")
    assert res.code == 0, res.err
    assert json.loads(cfg.read_text())["icc"] is False
    assert "this daemon reads" in res.out
    res = cli("daemon", "harden", "--config-file", str(cfg), "--rollback")
    assert res.code == 0, res.err
    assert json.loads(cfg.read_text()) == {}


def test_rollback_without_previous_version(tmp_path: Path) -> None:
    res = cli("daemon", "harden", "--config-file", str(tmp_path / "daemon.json"), "--rollback")
    assert res.code == 2 and "no previous version" in res.err
