"""`harden compose.yaml:SERVICE`: the service's image is built here from its `build` section
(FROM the local httpd test image), observed, hardened, and written as a compose override."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import run_cli

IMAGE = "dwharden2/web:compose"
COMPOSE = """
services:
  web:
    build:
      context: ./web
      args:
        GREETING: hello-from-compose
    image: {image}
    command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
    cap_add: [NET_ADMIN]
    healthcheck:
      test: ["CMD", "timeout", "5", "wget", "-q", "-O-", "http://127.0.0.1:8080/"]
    labels:
      dockward.test: dwharden2
  other:
    image: {base}
"""


def project(tmp_path: Path, base: str) -> Path:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "Dockerfile").write_text(
        f"FROM {base}\nARG GREETING\n"
        'RUN ["/bin/sh", "-c", "echo $GREETING > /var/www/index.html"]\n'
    )
    compose = tmp_path / "compose.yaml"
    compose.write_text(COMPOSE.format(image=IMAGE, base=base))
    return compose


def test_harden_a_compose_service(docker_api: Any, httpd_image: str, tmp_path: Path) -> None:
    with contextlib.suppress(Exception):
        docker_api.remove_image(IMAGE, force=True)  # so the build runs every time
    compose = project(tmp_path, httpd_image)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    r = run_cli(
        "harden", f"{compose}:web", "--out-dir", str(out_dir), "--prefix", "dwharden2",
        "--duration", "1", "--json",
        timeout=300,
    )  # fmt: skip
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["verified"] is True
    assert all(st["kept"] for st in out["steps"]), out["steps"]
    # the declared cap_add NET_ADMIN counts against the "before" score
    assert out["score"]["after"] > out["score"]["before"]
    assert "DW-C002" in out["score"]["failing_before"]
    assert "DW-C002" not in out["score"]["failing_after"]
    override = yaml.safe_load((out_dir / "compose.override.yml").read_text())
    web = override["services"]["web"]
    assert web["cap_drop"] == ["ALL"] and web["read_only"] is True
    assert "no-new-privileges:true" in web["security_opt"]
    assert (out_dir / "web-seccomp.json").exists()
    assert "  /bin/busybox ix,\n" in (out_dir / "web.apparmor").read_text()
    assert out["apparmor"]["validated"] is not False
    built = docker_api.inspect_image(IMAGE)
    assert built["Config"]["Cmd"] == ["sleep", "3600"]  # built from the local base image


def test_compose_target_errors(docker_api: Any, httpd_image: str, tmp_path: Path) -> None:
    compose = project(tmp_path, httpd_image)
    r = run_cli("harden", str(compose), "--out-dir", str(tmp_path))
    assert r.code == 2 and "name one as" in r.err
    r = run_cli("harden", f"{compose}:nope", "--out-dir", str(tmp_path))
    assert r.code == 2 and "no service 'nope'" in r.err and "web, other" in r.err
    r = run_cli("harden", f"{tmp_path}/missing.yaml:web", "--out-dir", str(tmp_path))
    assert r.code == 2 and "no such compose file" in r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compose.yaml", "web"]
