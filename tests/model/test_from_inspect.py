"""ContainerSpec / ImageSpec / DaemonSpec from inspect documents recorded from the real daemon."""

from __future__ import annotations

import json
from typing import Any

from dockward import specs
from dockward.catalog import default_rules
from dockward.model import ContainerSpec, DaemonSpec, ImageSpec, Mount, PortBinding
from dockward.model.container import SecurityOptions
from dockward.rules import Context, run_check
from tests.conftest import FIXTURES

ENGINE = FIXTURES / "engine"


def load(name: str) -> Any:
    return json.loads((ENGINE / name).read_text())


def spec(name: str) -> ContainerSpec:
    return specs.from_inspect(load(f"container-{name}.json"))


def test_hardened_container() -> None:
    s = spec("good")
    assert s.name == "dwaudit-good" and s.state == "running"
    assert s.cap_drop == ("ALL",) and s.read_only_rootfs and s.user == "1000:1000"
    assert s.security.no_new_privileges is True and s.security.apparmor == "docker-default"
    assert s.ports == (PortBinding(8080, "tcp", "127.0.0.1", 0),)
    assert s.pids_limit == 64 and s.memory == 64 * 1024 * 1024
    assert s.healthcheck is not None and s.healthcheck.test == ("CMD", "true")
    assert s.health_status == "healthy"


def test_created_privileged_container() -> None:
    s = spec("privileged")
    assert s.privileged and s.state == "created"


def test_capabilities_are_normalised() -> None:
    assert spec("sysadmin").cap_add == ("SYS_ADMIN",)
    assert "SYS_ADMIN" in spec("sysadmin").capabilities


def test_mounts_and_propagation() -> None:
    assert (
        Mount("bind", "/var/run/docker.sock", "/var/run/docker.sock", True, "rprivate")
        in spec("dockersock").mounts
    )
    assert any(m.propagation == "rshared" for m in spec("rshared").mounts)


def test_wide_ports_and_devices() -> None:
    assert spec("wideport").ports[0].all_interfaces
    assert spec("device").devices[0].host_path == "/dev/null"
    assert spec("hostnet").network_mode == "host"


def test_unhealthy_state() -> None:
    assert spec("unhealthy").health_status == "unhealthy"


def test_every_container_rule_runs_on_every_recorded_container() -> None:
    daemon = DaemonSpec(info=load("info.json"), version=load("version.json"))
    entries = [e for e in default_rules() if e.rule.kind == "container"]
    for path in ENGINE.glob("container-*.json"):
        s = specs.from_inspect(json.loads(path.read_text()))
        for e in entries:
            [result] = run_check(e, s, Context(daemon), target=s.name)
            assert result.status.value != "error", (path.name, e.rule.id, result.message)


def test_image_from_inspect_and_history() -> None:
    img = ImageSpec.from_inspect(load("image-busybox.json"), load("image-busybox-history.json"))
    assert "dockward-lab/busybox:1.0" in img.repo_tags
    assert img.user == "" and img.healthcheck is None
    assert img.history[0].created_by.startswith("COPY") or "COPY" in img.history[0].created_by
    assert img.command == ("sleep", "3600")


def test_security_options_parse_both_separators() -> None:
    s = SecurityOptions.parse(
        ["no-new-privileges", "seccomp:unconfined", "apparmor=x", "label=disable"]
    )
    assert s.no_new_privileges is True and s.seccomp == "unconfined" and s.apparmor == "x"
    assert s.selinux == ("disable",)
    assert SecurityOptions.parse(["no-new-privileges:false"]).no_new_privileges is False


def test_malformed_inspect_does_not_crash() -> None:
    s = specs.from_inspect(
        {
            "HostConfig": {"CapAdd": "x", "PortBindings": {"bad": None}, "Memory": "x"},
            "Mounts": [None],
        }
    )
    # CapAdd is a Go strslice: one string is a one-element list, as the daemon reads it.
    assert s.cap_add == ("X",) and s.memory == 0 and s.ports == ()
