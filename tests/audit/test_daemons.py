"""Daemon, host-file and host checks against real extra dockerd instances.

`hard` runs in its own network namespace (icc=false needs iptables, which must not touch the
host's rules) with userns-remap, TLS on TCP, live-restore and the rest; `weak` runs with the
mistakes. Each check fails on one and passes on the other.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.audit.daemons import Daemon, make_tls, start_dockerd, stop, wait_ready
from tests.conftest import REPO, run_cli

TLS_DIR = Path("/tmp/dwaudit-tls")
HARD_TCP = "tcp://127.0.0.1:15210"
WEAK_TCP = "tcp://127.0.0.1:15211"
NETNS = "dwaudit"


@pytest.fixture(scope="module")
def daemons(docker_api: Any) -> Iterator[dict[str, Daemon]]:
    if os.geteuid() != 0:
        pytest.skip("starting extra dockerd instances needs root (the test command runs as root)")
    tls = make_tls(TLS_DIR)
    hard = start_dockerd(
        "dwaudit-hard",
        {
            "icc": False,
            "log-level": "info",
            "userns-remap": "default",
            "no-new-privileges": True,
            "live-restore": True,
            "userland-proxy": False,
            "log-driver": "syslog",
            "log-opts": {"syslog-address": "udp://127.0.0.1:15140"},
            "ip": "127.0.0.1",
            "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 4096}},
            "hosts": [HARD_TCP],
            "tlsverify": True,
            "tlscacert": tls["ca"],
            "tlscert": tls["server_cert"],
            "tlskey": tls["server_key"],
        },
        netns=NETNS,
        tmpfs_data_root=True,
    )
    weak = start_dockerd(
        "dwaudit-weak",
        {
            "log-level": "debug",
            "insecure-registries": ["10.1.2.3:5000"],
            "cgroup-parent": "/dwaudit",
            "experimental": True,
            "iptables": False,
            "hosts": [WEAK_TCP],
        },
        netns="dwaudit-weak",
    )
    try:
        wait_ready(hard)
        wait_ready(weak)
        yield {"hard": hard, "weak": weak}
    finally:
        stop(hard)
        stop(weak)


def audit(*hosts: str, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    args = ["audit", "-f", "json", "--fail-on", "never", *extra]
    for h in hosts:
        args += ["-H", h]
    res = run_cli(*args)
    assert res.code == 0, res.err
    return json.loads(res.out)


def statuses(report: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for r in report["results"]:
        out[r["rule_id"]].add(r["status"])
    return out


@pytest.fixture(scope="module")
def hard_weak(daemons: dict[str, Daemon]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    h = statuses(audit(daemons["hard"].url))
    w = statuses(audit(daemons["weak"].url))
    return h, w


DAEMON_CASES = {
    "DW-D002": "fail",  # icc on (default) vs icc=false read from the bridge network
    "DW-D003": "fail",
    "DW-D004": "fail",
    "DW-D005": "fail",
    "DW-D007": "fail",
    "DW-D008": "info",
    "DW-D009": "fail",
    "DW-D010": "fail",
    "DW-D013": "fail",
    "DW-D014": "fail",
    "DW-D015": "fail",
    "DW-D016": "fail",
    "DW-D018": "fail",
    "DW-D020": "info",
    "DW-H001": "fail",  # data root on its own filesystem (hard's is a tmpfs mount)
}


@pytest.mark.parametrize(("rule", "weak_status"), DAEMON_CASES.items())
def test_daemon_check_fails_on_weak_and_passes_on_hard(
    hard_weak: tuple[dict[str, set[str]], dict[str, set[str]]], rule: str, weak_status: str
) -> None:
    hard, weak = hard_weak
    assert weak[rule] == {weak_status}
    assert hard[rule] == {"pass"}


def test_tls_files_pass_then_fail_on_loose_modes(daemons: dict[str, Daemon]) -> None:
    rules = ("DW-F009", "DW-F010", "DW-F011", "DW-F012", "DW-F013", "DW-F014")
    before = statuses(audit(daemons["hard"].url, extra=("--section", "files")))
    assert all(before[r] == {"pass"} for r in rules), {r: before[r] for r in rules}
    key, ca = TLS_DIR / "server-key.pem", TLS_DIR / "ca.pem"
    try:
        os.chmod(key, 0o000)  # stricter than 0400: still passes (docker-bench failed it)
        assert statuses(audit(daemons["hard"].url, extra=("--check", "DW-F014")))["DW-F014"] == {
            "pass"
        }
        os.chmod(key, 0o440)
        os.chmod(ca, 0o477)  # 477 < 444 as a decimal number: docker-bench passed it
        os.chown(ca, 1000, 1000)
        after = statuses(audit(daemons["hard"].url, extra=("--section", "files")))
        assert after["DW-F014"] == {"fail"}
        assert after["DW-F010"] == {"fail"}
        assert after["DW-F009"] == {"fail"}
    finally:
        os.chmod(key, 0o400)
        os.chmod(ca, 0o444)
        os.chown(ca, 0, 0)


def test_socket_and_config_file_modes(daemons: dict[str, Daemon]) -> None:
    weak = daemons["weak"]
    sock, cfg = Path(weak.socket), weak.config_file
    try:
        os.chmod(sock, 0o666)
        os.chmod(cfg, 0o666)
        os.chown(cfg, 1000, 0)
        s = statuses(audit(weak.url, extra=("--section", "files")))
        assert s["DW-F016"] == {"fail"}
        assert s["DW-F017"] == {"fail"} and s["DW-F018"] == {"fail"}
    finally:
        os.chmod(sock, 0o660)
        os.chmod(cfg, 0o644)
        os.chown(cfg, 0, 0)
    s = statuses(audit(weak.url, extra=("--section", "files")))
    assert s["DW-F016"] == {"pass"} and s["DW-F017"] == {"pass"} and s["DW-F018"] == {"pass"}


def test_malformed_daemon_json_is_a_finding_not_a_crash(daemons: dict[str, Daemon]) -> None:
    weak = daemons["weak"]
    original = weak.config_file.read_text()
    try:
        weak.config_file.write_text('{"log-level": "debug",\n  "icc": }\n')
        report = audit(weak.url, extra=("--section", "daemon"))
        d019 = [r for r in report["results"] if r["rule_id"] == "DW-D019"]
        assert d019[0]["status"] == "fail" and "line 2" in d019[0]["message"]
        # The effective settings from /info still judge what they can.
        assert statuses(report)["DW-D018"] == {"fail"}
    finally:
        weak.config_file.write_text(original)
    assert statuses(audit(weak.url, extra=("--check", "DW-D019")))["DW-D019"] == {"pass"}


def test_audit_watch_rules_from_rules_d(daemons: dict[str, Daemon]) -> None:
    rules_d = Path("/etc/audit/rules.d")
    created_dir = not rules_d.exists()
    rules_d.mkdir(parents=True, exist_ok=True)
    ours = rules_d / "dwaudit-test.rules"
    dockerd = "/usr/bin/dockerd" if Path("/usr/bin/dockerd").exists() else "/usr/sbin/dockerd"
    try:
        before = statuses(audit(daemons["weak"].url, extra=("--check", "DW-H003")))["DW-H003"]
        ours.write_text(f"-w {dockerd} -p wa -k docker\n-w /var/lib/docker/x -p wa\n")
        after = audit(daemons["weak"].url, extra=("--check", "DW-H003", "--check", "DW-H005"))
        s = statuses(after)
        assert s["DW-H003"] == {"pass"}
        assert s["DW-H005"] == {"fail"}  # /var/lib/docker/x is not /var/lib/docker (no substrings)
        if not any(p != ours for p in rules_d.glob("*.rules")):
            assert before == {"fail"}
    finally:
        ours.unlink(missing_ok=True)
        if created_dir:
            rules_d.rmdir()


def test_remote_tls_host_skips_host_checks(daemons: dict[str, Daemon]) -> None:
    import subprocess

    certs = Path("/tmp/dwaudit-client")
    certs.mkdir(exist_ok=True)
    for src, dst in (("ca.pem", "ca.pem"), ("cert.pem", "cert.pem"), ("key.pem", "key.pem")):
        (certs / dst).write_bytes((TLS_DIR / src).read_bytes())
    env = dict(
        os.environ, PYTHONPATH=str(REPO / "src"), DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(certs)
    )
    cmd = [
        "nsenter",
        f"--net=/run/netns/{NETNS}",
        sys.executable,
        "-m",
        "dockward",
        "audit",
        "-H",
        HARD_TCP,
        "-f",
        "json",
        "--fail-on",
        "never",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    by_rule = {r["rule_id"]: r for r in report["results"]}
    assert (
        by_rule["DW-F014"]["status"] == "skip"
        and by_rule["DW-F014"]["message"] == "not a local host"
    )
    assert by_rule["DW-H003"]["status"] == "skip"
    assert by_rule["DW-D009"]["status"] == "pass"  # read from /info over TLS
    # Without a client certificate the daemon refuses: one line, exit 2.
    env.pop("DOCKER_CERT_PATH")
    env.pop("DOCKER_TLS_VERIFY")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_several_hosts_one_report(daemons: dict[str, Daemon]) -> None:
    report = audit(daemons["hard"].url, daemons["weak"].url, extra=("--check", "DW-D003"))
    assert report["hosts"] == [daemons["hard"].url, daemons["weak"].url]
    by_host = {r["host"]: r["status"] for r in report["results"]}
    assert by_host == {daemons["hard"].url: "pass", daemons["weak"].url: "fail"}


def test_host_without_containers_says_so(daemons: dict[str, Daemon]) -> None:
    report = audit(daemons["hard"].url, extra=("--check", "DW-C001", "--check", "DW-I001"))
    msgs = {r["rule_id"]: (r["status"], r["message"]) for r in report["results"]}
    assert msgs["DW-C001"] == ("skip", "no containers on this host")
    assert msgs["DW-I001"] == ("skip", "no images on this host")


def test_docker_context(daemons: dict[str, Daemon], tmp_path: Path) -> None:
    import subprocess

    from tests.audit.daemons import DOCKER

    config = tmp_path / "docker-config"
    subprocess.run(
        [
            DOCKER,
            "--config",
            str(config),
            "context",
            "create",
            "dwaudit-ctx",
            "--docker",
            f"host={daemons['weak'].url}",
        ],
        check=True,
        capture_output=True,
    )
    res = run_cli(
        "audit",
        "--context",
        "dwaudit-ctx",
        "--check",
        "DW-D003",
        "-f",
        "json",
        "--fail-on",
        "never",
        env={"DOCKER_CONFIG": str(config)},
    )
    assert res.code == 0, res.err
    [result] = json.loads(res.out)["results"]
    assert result["host"] == daemons["weak"].url and result["status"] == "fail"
    res = run_cli("audit", "--context", "nope", env={"DOCKER_CONFIG": str(config)})
    assert res.code == 2 and "nope" in res.err and res.err.count("\n") == 1
