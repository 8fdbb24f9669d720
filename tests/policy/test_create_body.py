"""Create bodies recorded from the real docker CLI -> ContainerSpec, read as Go reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockward import specs
from dockward.specs.bodies import (
    container_from_exec_body,
    container_from_service_body,
    container_from_update_body,
    unmodelled_grants,
)
from dockward.specs.gojson import BodyError, loads

BODIES = Path(__file__).parent / "fixtures" / "create-bodies"


def body(name: str) -> dict:
    return loads((BODIES / f"{name}.json").read_bytes())


def test_recorded_hardened_body() -> None:
    spec = specs.from_create_body(body("hardened"), name="web")
    assert spec.name == "web"
    assert spec.image == "dockward-lab/busybox:1.0"
    assert spec.cap_drop == ("ALL",) and spec.cap_add == ("NET_BIND_SERVICE",)
    assert spec.read_only_rootfs and spec.user == "1000:1000"
    assert spec.security.no_new_privileges
    assert spec.memory == 64 * 1024 * 1024 and spec.pids_limit == 50
    assert [(p.container_port, p.host_ip, p.host_port) for p in spec.ports] == [
        (80, "127.0.0.1", 8080)
    ]
    assert spec.origin == "create"


def test_recorded_dangerous_bodies() -> None:
    assert specs.from_create_body(body("privileged")).privileged
    ns = specs.from_create_body(body("host-namespaces"))
    assert (ns.network_mode, ns.pid_mode, ns.ipc_mode, ns.uts_mode) == ("host",) * 4
    sock = specs.from_create_body(body("docker-sock"))
    assert [(m.type, m.source) for m in sock.mounts] == [("bind", "/var/run/docker.sock")]
    root = specs.from_create_body(body("bind-root"))
    assert [(m.type, m.source, m.target) for m in root.mounts] == [("bind", "/", "/host")]
    assert specs.from_create_body(body("devices")).devices[0].host_path == "/dev/null"
    assert specs.from_create_body(body("seccomp-unconfined")).security.seccomp == "unconfined"


def test_local_volume_with_bind_option_is_a_bind() -> None:
    spec = specs.from_create_body(body("volume-bind-driver"))
    assert [(m.type, m.source) for m in spec.mounts] == [("bind", "/etc")]


def test_unmodelled_grants() -> None:
    assert unmodelled_grants(body("hardened")) == []
    assert unmodelled_grants(body("gpus")) == []  # modelled now: DW-C040 judges it
    assert specs.from_create_body(body("gpus")).device_requests
    crafted = {
        "Image": "x",
        "HostConfig": {
            "VolumesFrom": ["other"],
            "Runtime": "kata",
            "MaskedPaths": [],
            "FutureField": {"x": 1},
            "AutoRemove": False,
        },
    }
    assert unmodelled_grants(crafted) == ["unknown HostConfig field FutureField"]
    spec = specs.from_create_body(crafted)
    assert spec.volumes_from == ("other",) and spec.runtime == "kata" and spec.unmasked_paths


@pytest.mark.parametrize(
    "raw",
    [
        b'{"Image":"x","HostConfig":{"Privileged":false,"privileged":true}}',
        b'{"Image":"x","HostConfig":{"Privileged":false,"Privileged":true}}',
        b'{"Image":"x","hostconfig":{},"HostConfig":{}}',
    ],
)
def test_duplicate_keys_refused(raw: bytes) -> None:
    with pytest.raises(BodyError):
        specs.from_create_body(loads(raw))


def test_keys_match_case_insensitively_with_unicode_folding() -> None:
    # Go's encoding/json folds "ſ" (U+017F) to "s": "HoſtConfig" sets HostConfig.
    doc = loads('{"Image":"x","hoſtconfig":{"PRIVILEGED":true}}'.encode())
    assert specs.from_create_body(doc).privileged


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"null x",
        b'{"Image":"x","HostConfig":{"Privileged":"true"}}',
        b'{"Image":"x","HostConfig":{"Binds":"/:/host"}}',
        b'{"Image":"x","HostConfig":{"Binds":["/"]}}',
        b'{"Image":"x","HostConfig":{"Memory":NaN}}',
        b'{"Image":"x","HostConfig":[]}',
        b'{"Image":"\xff"}',
    ],
)
def test_malformed_bodies_refused(raw: bytes) -> None:
    with pytest.raises(BodyError):
        specs.from_create_body(loads(raw))


def test_strslice_and_binds() -> None:
    doc = loads(
        json.dumps(
            {
                "Image": "x",
                "Cmd": "sleep 1",
                "HostConfig": {
                    "Binds": ["/srv/a:/a:ro,rshared", "named:/data"],
                    "CapAdd": "NET_ADMIN",
                },
            }
        ).encode()
    )
    spec = specs.from_create_body(doc)
    assert spec.command == ("sleep 1",)
    assert spec.cap_add == ("NET_ADMIN",)
    assert [(m.type, m.source, m.read_only, m.propagation) for m in spec.mounts] == [
        ("bind", "/srv/a", True, "rshared"),
        ("volume", "named", False, ""),
    ]


def test_update_exec_service_bodies() -> None:
    upd = container_from_update_body(
        {"Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda"}], "Memory": 1}
    )
    assert upd.devices[0].host_path == "/dev/sda"
    ex = container_from_exec_body({"Privileged": True, "User": "root", "Cmd": ["sh"]})
    assert ex.privileged and ex.user == "root"
    svc = container_from_service_body(
        {
            "Name": "s",
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "reg.example/a:1",
                    "CapabilityAdd": ["CAP_SYS_ADMIN"],
                    "Mounts": [{"Type": "bind", "Source": "/", "Target": "/h"}],
                    "Privileges": {"Seccomp": {"Mode": "unconfined"}},
                }
            },
        }
    )
    assert svc.cap_add == ("SYS_ADMIN",)
    assert svc.mounts[0].source == "/"
    assert svc.security.seccomp == "unconfined"
