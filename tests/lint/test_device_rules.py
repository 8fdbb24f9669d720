"""DW-C019 in lint: device cgroup rules judged by what they grant, in compose and run lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

COMPOSE = """\
services:
  disks:
    image: registry.example/app:1
    device_cgroup_rules:
      - "c 1:3 rwm"
      - "b 8:* rwm"
  kmsg:
    image: registry.example/app:1
    device_cgroup_rules: ["c 1:11 r"]
  null:
    image: registry.example/app:1
    device_cgroup_rules: ["c 1:3 rwm", "c 10:200 rwm"]
"""


def _c019(out: str) -> dict[str, dict]:  # type: ignore[type-arg]
    return {
        r["target"].split()[-1]: r for r in json.loads(out)["results"] if r["rule_id"] == "DW-C019"
    }


def test_compose_device_cgroup_rules(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    r = run_cli(
        "lint", "-f", "json", "--fail-on", "never", "--show-passed", str(tmp_path / "compose.yaml")
    )
    assert r.code == 0, r.err
    by_service = _c019(r.out)
    assert by_service["disks"]["status"] == "fail"
    assert "b 8:* rwm" in by_service["disks"]["message"]
    assert "c 1:3" not in by_service["disks"]["message"]
    assert (by_service["disks"]["location"]["line"], by_service["disks"]["location"]["column"]) == (
        6,
        9,
    )  # the offending item, not the key
    assert by_service["kmsg"]["status"] == "fail" and "kmsg" in by_service["kmsg"]["message"]
    assert by_service["null"]["status"] == "pass"


@pytest.mark.parametrize(
    ("rule", "status"),
    [("b 8:* rwm", "fail"), ("c 1:1 r", "fail"), ("c 162:* rw", "fail"), ("c 1:3 rwm", "pass")],
)
def test_run_line_device_cgroup_rule(rule: str, status: str) -> None:
    line = f"docker run --device-cgroup-rule '{rule}' registry.example/app:1"
    r = run_cli("lint", "-f", "json", "--fail-on", "never", "--show-passed", "--run", line)
    assert r.code == 0, r.err
    [result] = _c019(r.out).values()
    assert result["status"] == status
