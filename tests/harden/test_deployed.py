"""`harden compose.yaml:SERVICE` starts from the service as deployed: a capability it adds, and
sysctls that make a capability necessary, are kept in the proposal (which still works)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import run_cli

COMPOSE = """
services:
  netadmin:
    image: {image}
    command: ["sh", "-c", "ip link set lo mtu 65000 && exec httpd -f -p 8080 -h /var/www"]
    cap_add: [NET_ADMIN]
    healthcheck:
      test: ["CMD", "timeout", "5", "wget", "-q", "-O-", "http://127.0.0.1:8080/"]
  lowport:
    image: {image}
    command: ["httpd", "-f", "-p", "80", "-h", "/var/www"]
    sysctls:
      net.ipv4.ip_unprivileged_port_start: "1024"
    healthcheck:
      test: ["CMD", "timeout", "5", "wget", "-q", "-O-", "http://127.0.0.1:80/"]
"""


@pytest.mark.parametrize(
    ("service", "needed"), [("netadmin", "NET_ADMIN"), ("lowport", "NET_BIND_SERVICE")]
)
def test_proposal_keeps_what_the_deployed_service_needs(
    docker_api: Any, httpd_image: str, tmp_path: Path, service: str, needed: str
) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(COMPOSE.format(image=httpd_image))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    r = run_cli(
        "harden", f"{compose}:{service}", "--out-dir", str(out_dir), "--prefix", "dwharden3",
        "--duration", "1", "--json",
        timeout=300,
    )  # fmt: skip
    assert r.code == 0, r.err  # as deployed it works (its cap_add and sysctls applied)
    out = json.loads(r.out)
    assert out["verified"] is True, out["steps"]
    svc = yaml.safe_load((out_dir / "compose.override.yml").read_text())["services"][service]
    assert svc["cap_drop"] == ["ALL"]
    assert svc["cap_add"] == [needed]
