"""`harden compose.yaml:SERVICE` trials run as the service is deployed: its `pid: host` and its
`group_add` (a monitor reading the host's /proc, a proxy in the engine socket's group), and,
when the service declares no healthcheck, the image's HEALTHCHECK is the probe (the container
inherits it, as the engine does)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockward.harden.compose import _probe
from dockward.model.container import ContainerSpec, Healthcheck
from tests.conftest import run_cli

IMAGE = "dwharden12b/hostpid:1"
# Healthy only in the host's pid namespace (pid 1 is not this container's `sleep`) and with the
# supplementary group 4242.
HEALTHCHECK = (
    'HEALTHCHECK CMD ["/bin/busybox", "sh", "-c", '
    '"! grep -q sleep /proc/1/cmdline && id -G | grep -qw 4242"]'
)
COMPOSE = """
services:
  watcher:
    image: {image}
    command: ["sleep", "600"]
    {extra}
    labels:
      dockward.test: dwharden12b
"""


@pytest.fixture(scope="module")
def hostpid_image(docker_api: Any) -> str:
    from dockward.engine.lab import build_busybox_image

    build_busybox_image(
        docker_api, IMAGE, extra=HEALTHCHECK, labels={"dockward.test": "dwharden12b"}
    )
    return IMAGE


def _harden(compose: Path, out_dir: Path) -> Any:
    return run_cli(
        "harden", f"{compose}:watcher", "--out-dir", str(out_dir), "--prefix", "dwharden12b",
        "--duration", "1", "--service", "--no-verify", "--json",
        timeout=300,
    )  # fmt: skip


@pytest.mark.docker
def test_trials_run_in_the_host_pid_namespace_with_the_added_groups(
    hostpid_image: str, tmp_path: Path
) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(
        COMPOSE.format(image=hostpid_image, extra='pid: host\n    group_add: ["4242"]')
    )
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    r = _harden(compose, out_dir)
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert "--pid host" in out["docker_run"] and "--group-add 4242" in out["docker_run"]
    svc = yaml.safe_load((out_dir / "compose.override.yml").read_text())["services"]["watcher"]
    assert svc["cap_drop"] == ["ALL"] and "cap_add" not in svc
    assert svc["read_only"] is True and svc["user"] == "65534:65534"


@pytest.mark.docker
def test_without_the_host_pid_namespace_the_image_healthcheck_fails_it(
    hostpid_image: str, tmp_path: Path
) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(COMPOSE.format(image=hostpid_image, extra='group_add: ["4242"]'))
    r = _harden(compose, tmp_path)
    assert r.code == 2 and "does not work as it is" in r.err and "probe exited 1" in r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compose.yaml"]


def test_probe_is_the_services_healthcheck_else_the_images() -> None:
    image = ("CMD", "dockward", "health")
    assert _probe(ContainerSpec(), image) == ("dockward", "health")
    own = ContainerSpec(healthcheck=Healthcheck(("CMD-SHELL", "wget -q -O- x")))
    assert _probe(own, image) == ("/bin/sh", "-c", "wget -q -O- x")
    assert _probe(ContainerSpec(healthcheck=Healthcheck(("NONE",))), image) == ()
    assert _probe(ContainerSpec(), ("NONE",)) == ()


TMPFS = """
services:
  writer:
    image: {image}
    user: "1000:1000"
    command: ["sh", "-c", "echo x > /run/app/f && exec sleep 600"]
    tmpfs: ["/run/app:mode=1777,size=1m"]
    healthcheck:
      test: ["CMD", "test", "-f", "/run/app/f"]
"""


@pytest.mark.docker
def test_the_deployed_tmpfs_every_trial_ran_with_is_in_the_proposal(
    hostpid_image: str, tmp_path: Path
) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(TMPFS.format(image=hostpid_image))
    r = run_cli(
        "harden", f"{compose}:writer", "--out-dir", str(tmp_path), "--prefix", "dwharden12b",
        "--duration", "1", "--service", "--no-verify", "--json",
        timeout=300,
    )  # fmt: skip
    assert r.code == 0, r.err
    svc = yaml.safe_load((tmp_path / "compose.override.yml").read_text())["services"]["writer"]
    assert svc["read_only"] is True
    assert svc["tmpfs"] == ["/run/app:mode=1777,size=1m"]  # its writes never showed in a diff
    assert "--tmpfs /run/app:mode=1777,size=1m" in json.loads(r.out)["docker_run"]
