"""`dockward policy check`: CI fails for exactly what the proxy refuses (same rules, same ids)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

BODIES = Path(__file__).parent / "fixtures" / "create-bodies"
POLICY = """
admission:
  deny: [privileged, docker-socket, host-namespaces]
  capabilities: [NET_BIND_SERVICE]
  images:
    registries: [registry.example.com]
"""
COMPOSE = """
services:
  web:
    image: registry.example.com/web:1
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
  agent:
    image: docker.io/library/agent:1
    privileged: true
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
"""


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(POLICY)
    return p


def failed(out: str) -> set[tuple[str, str]]:
    doc = json.loads(out)
    return {(r["rule_id"], r["target"]) for r in doc["results"] if r["status"] == "fail"}


def test_compose(policy: Path, tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(COMPOSE)
    out = run_cli(
        "policy", "check", "--policy", str(policy), "--compose", str(compose), "-f", "json"
    )
    assert out.code == 1, out.err
    assert failed(out.out) == {
        ("DW-C001", "service agent"),
        ("DW-C008", "service agent"),
        ("DW-P005", "service agent"),
    }
    doc = json.loads(out.out)
    locs = [r["location"] for r in doc["results"] if r["status"] == "fail"]
    assert all(loc and loc["path"].endswith("compose.yaml") and loc["line"] > 0 for loc in locs)


def test_run_lines(policy: Path) -> None:
    ok = run_cli(
        "policy",
        "check",
        "--policy",
        str(policy),
        "-f",
        "json",
        "--run",
        "docker run --cap-add NET_BIND_SERVICE registry.example.com/a:1",
    )
    assert ok.code == 0, ok.out + ok.err
    bad = run_cli(
        "policy",
        "check",
        "--policy",
        str(policy),
        "-f",
        "json",
        "--run",
        "docker run --pid host --cap-add SYS_ADMIN registry.example.com/a:1",
    )
    assert bad.code == 1
    assert {rid for rid, _ in failed(bad.out)} == {"DW-C017", "DW-P002"}


def test_recorded_bodies_and_images(policy: Path) -> None:
    out = run_cli(
        "policy",
        "check",
        "--policy",
        str(policy),
        "-f",
        "json",
        "--body",
        str(BODIES / "privileged.json"),
        "--image",
        "busybox:1",
    )
    assert out.code == 1
    assert {rid for rid, _ in failed(out.out)} == {"DW-C001", "DW-P005"}


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["--compose", "x.yaml"], "needs --policy"),
        (["--policy", "{policy}"], "nothing to check"),
        (["--policy", "/nonexistent.yaml", "--image", "a"], "cannot read policy"),
        (["--policy", "{policy}", "--body", "/nonexistent.json"], "cannot read"),
        (["--policy", "{policy}", "--client", "nope", "--image", "a"], "no such client"),
    ],
)
def test_errors(policy: Path, args: list[str], msg: str) -> None:
    out = run_cli("policy", "check", *[a.replace("{policy}", str(policy)) for a in args])
    assert out.code == 2
    assert msg in out.err and out.err.count("\n") == 1 and "Traceback" not in out.err
