"""One compose finding per offending item, at the item's exact line and column, in every format
(issue 16): each published port, mount, environment variable, capability, security option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

COMPOSE = """\
services:
  web:
    image: registry.example/web:1.25
    cap_add:
      - NET_ADMIN
      - SYS_ADMIN
      - CHOWN
    ports:
      - "8080:80"
      - "127.0.0.1:8443:443"
      - target: 9000
        published: 9000
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
      - ./data:/data
      - /etc:/host-etc:ro
    environment:
      DB_PASSWORD: hunter2hunter2
      PLAIN: "1"
      API_TOKEN: abcdefabcdef1234
    security_opt:
      - seccomp=unconfined
      - apparmor=unconfined
  worker:
    image: registry.example/worker:1
    environment:
      - PLAIN=1
      - GITHUB_TOKEN=ghp_0123456789abcdefghijABCDEFGHIJ012345
    sysctls: [net.ipv4.ip_forward=1, kernel.shmmax=1000]
    ulimits:
      nproc: 65535
      nofile: {soft: -1, hard: -1}
"""

EXPECTED = {
    ("DW-C003", 5, 9),  # NET_ADMIN
    ("DW-C003", 6, 9),  # SYS_ADMIN (CHOWN is harmless: no finding at line 7)
    ("DW-C015", 9, 9),  # 8080:80 on all interfaces (127.0.0.1:8443 is fine)
    ("DW-C015", 11, 9),  # the long-syntax port
    ("DW-C008", 14, 9),  # the docker.sock mount, not `volumes:`
    ("DW-C007", 14, 9),  # (/var/run is a sensitive directory too)
    ("DW-C007", 16, 9),  # /etc
    ("DW-C030", 18, 7),  # DB_PASSWORD
    ("DW-C030", 20, 7),  # API_TOKEN (PLAIN is fine)
    ("DW-C023", 22, 9),  # seccomp=unconfined
    ("DW-C005", 23, 9),  # apparmor=unconfined
    ("DW-C030", 28, 9),  # list syntax: the GITHUB_TOKEN line
    ("DW-C020", 32, 7),  # the unlimited nofile, not `ulimits:` (nproc is bounded)
}
PER_ITEM_RULES = {rule for rule, _, _ in EXPECTED}


@pytest.fixture()
def compose(tmp_path: Path) -> Path:
    path = tmp_path / "compose.yaml"
    path.write_text(COMPOSE)
    return path


def _lint(path: Path, fmt: str) -> str:
    res = run_cli("lint", "-f", fmt, "--fail-on", "never", str(path))
    assert res.code == 0, res.err
    return res.out


def test_json_has_one_result_per_offending_item(compose: Path) -> None:
    doc = json.loads(_lint(compose, "json"))
    got = {
        (r["rule_id"], r["location"]["line"], r["location"]["column"])
        for r in doc["results"]
        if r["status"] == "fail" and r["rule_id"] in PER_ITEM_RULES
    }
    assert got == EXPECTED
    # a missing setting still points at the service: one finding, at `web:`
    ro = [r for r in doc["results"] if r["rule_id"] == "DW-C014" and r["status"] == "fail"]
    assert {(r["location"]["line"], r["location"]["column"]) for r in ro} == {(2, 3), (24, 3)}


def test_sarif_regions_are_the_items(compose: Path) -> None:
    doc = json.loads(_lint(compose, "sarif"))
    got = set()
    for r in doc["runs"][0]["results"]:
        if r["ruleId"] in PER_ITEM_RULES:
            region = r["locations"][0]["physicalLocation"]["region"]
            got.add((r["ruleId"], region["startLine"], region["startColumn"]))
    assert got == EXPECTED


def test_junit_and_table_name_the_item_lines(compose: Path) -> None:
    junit = _lint(compose, "junit")
    for rule, line, _ in EXPECTED:
        assert f'classname="dockward.container.{rule}"' in junit
        assert f'line="{line}"' in junit
    wide = {"COLUMNS": "400"}
    table = run_cli("lint", "-f", "table", "--fail-on", "never", str(compose), env=wide).out
    assert "compose.yaml:14:9" in table and "compose.yaml:5:9" in table


RUN = (
    "docker run -d --cap-add SYS_ADMIN --cap-add CHOWN \\\n"
    "  -p 80:80 -p 127.0.0.1:8443:443 \\\n"
    "  -v /var/run/docker.sock:/var/run/docker.sock -e DB_PASSWORD=hunter2hunter2 -e X=1 \\\n"
    "  --security-opt seccomp=unconfined busybox:1.36"
)


def test_run_line_has_one_result_per_offending_flag() -> None:
    res = run_cli("lint", "-f", "json", "--fail-on", "never", "--run", RUN)
    assert res.code == 0, res.err
    got = {
        (r["rule_id"], r["location"]["line"], r["location"]["column"])
        for r in json.loads(res.out)["results"]
        if r["status"] == "fail"
        and r["rule_id"] in {"DW-C003", "DW-C015", "DW-C008", "DW-C030", "DW-C023"}
    }
    assert got == {
        ("DW-C003", 1, 15),  # --cap-add SYS_ADMIN (not CHOWN)
        ("DW-C015", 2, 3),  # -p 80:80 (not the one on 127.0.0.1)
        ("DW-C008", 3, 3),  # -v docker.sock
        ("DW-C030", 3, 48),  # -e DB_PASSWORD (not X)
        ("DW-C023", 4, 3),  # --security-opt seccomp=unconfined
    }


def test_one_item_is_suppressed_alone(tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text(
        "services:\n"
        "  web:\n"
        "    image: registry.example/web:1\n"
        "    ports:\n"
        '      - "8080:80"  # dockward ignore=DW-C015\n'
        '      - "9090:90"\n'
    )
    doc = json.loads(_lint(path, "json"))
    found = {
        r["location"]["line"]: r.get("waived", "")
        for r in doc["results"]
        if r["rule_id"] == "DW-C015" and r["status"] == "fail"
    }
    assert found == {5: "inline suppression at line 5", 6: ""}
