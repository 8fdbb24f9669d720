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


def _harden(tmp_path: Path, compose_text: str, service: str) -> tuple[Path, Any]:
    """`dockward harden compose.yaml:SERVICE --json` (short trials); its out dir and result."""
    compose = tmp_path / "compose.yaml"
    compose.write_text(compose_text)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    r = run_cli(
        "harden", f"{compose}:{service}", "--out-dir", str(out_dir), "--prefix", "dwharden3",
        "--duration", "1", "--json",
        timeout=300,
    )  # fmt: skip
    return out_dir, r


@pytest.mark.parametrize(
    ("service", "needed"), [("netadmin", "NET_ADMIN"), ("lowport", "NET_BIND_SERVICE")]
)
def test_proposal_keeps_what_the_deployed_service_needs(
    docker_api: Any, httpd_image: str, tmp_path: Path, service: str, needed: str
) -> None:
    out_dir, r = _harden(tmp_path, COMPOSE.format(image=httpd_image), service)
    assert r.code == 0, r.err  # as deployed it works (its cap_add and sysctls applied)
    out = json.loads(r.out)
    assert out["verified"] is True, out["steps"]
    svc = yaml.safe_load((out_dir / "compose.override.yml").read_text())["services"][service]
    assert svc["cap_drop"] == ["ALL"]
    assert svc["cap_add"] == [needed]


MOUNTED = """
services:
  mounted:
    image: {image}
    user: app
    command: ["sh", "-c", "ip route | grep -q default && cat /conf/greeting > /state/out && chmod 700 /state && echo x > /vol/x && cat /state/out"]
    volumes:
      - ./conf:/conf:ro
      - data:/vol
volumes:
  data: {{}}
"""


def _named_writer(docker_api: Any) -> str:
    from dockward.engine.lab import build_busybox_image
    from tests.harden.conftest import PREFIX

    image = f"{PREFIX}/named-writer:1"
    build_busybox_image(
        docker_api,
        image,
        extra='RUN ["/bin/busybox", "sh", "-c", "mkdir -p /state /vol && chown 1000:1000 /state /vol"]',
        labels={"dockward.test": PREFIX},
    )
    return image


def test_named_user_resolved_from_the_image(docker_api: Any) -> None:
    from dockward.harden.users import resolve_user

    image = _named_writer(docker_api)
    assert resolve_user(docker_api, image, "app") == "1000:1000"
    assert resolve_user(docker_api, image, "app:root") == "1000:0"
    assert resolve_user(docker_api, image, "1000") == "1000"  # numeric: as it is
    assert resolve_user(docker_api, image, "nosuchuser") == ""


def test_trials_get_the_deployed_mounts_network_and_named_user(
    docker_api: Any, tmp_path: Path
) -> None:
    image = _named_writer(docker_api)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "greeting").write_text("hello\n")
    out_dir, r = _harden(tmp_path, MOUNTED.format(image=image), "mounted")
    # As deployed it works: the bind mount is there, the network has a default route.
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["verified"] is True, out["steps"]
    svc = yaml.safe_load((out_dir / "compose.override.yml").read_text())["services"]["mounted"]
    # The volume is writable as a volume (no tmpfs for it); the image directory the named user
    # owns gets a tmpfs owned by its uid/gid from the image's /etc/passwd.
    assert svc["read_only"] is True
    assert svc["tmpfs"] == ["/state:uid=1000,gid=1000"]
    assert "user" not in svc  # already non-root
    assert f"{tmp_path / 'conf'}:/conf:ro" in out["docker_run"]
    assert "--network bridge" in out["docker_run"]


def test_network_none_breaks_a_workload_that_needs_its_network(
    docker_api: Any, tmp_path: Path
) -> None:
    image = _named_writer(docker_api)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "greeting").write_text("hello\n")
    compose = tmp_path / "compose.yaml"
    compose.write_text(MOUNTED.format(image=image))
    r = run_cli(
        "harden", f"{compose}:mounted", "--out-dir", str(tmp_path), "--prefix", "dwharden3",
        "--duration", "1", "--network", "none",
        timeout=120,
    )  # fmt: skip
    assert r.code != 0 and "does not work as it is" in r.err


def test_workload_from_inspect_carries_mounts_tmpfs_and_network(
    docker_api: Any, tmp_path: Path
) -> None:
    from dockward.harden.propose import workload_from_inspect

    image = _named_writer(docker_api)
    hc = docker_api.create_host_config(
        binds={str(tmp_path): {"bind": "/conf", "mode": "ro"}},
        tmpfs={"/run": "size=1m"},
        network_mode="bridge",
    )
    c = docker_api.create_container(
        image, volumes=["/vol"], host_config=hc, labels={"dockward.test": "dwharden3"}
    )
    try:
        w = workload_from_inspect(docker_api.inspect_container(c["Id"]), (), 1.0)
    finally:
        docker_api.remove_container(c["Id"], force=True, v=True)
    assert w.network == "bridge" and w.tmpfs == {"/run": "size=1m"}
    got = {(m.type, m.source, m.target, m.read_only) for m in w.mounts}
    assert ("bind", str(tmp_path), "/conf", True) in got
    assert any(t == "volume" and tgt == "/vol" and not ro for t, _s, tgt, ro in got)
