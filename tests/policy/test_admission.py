"""Each policy line refuses what it names and lets the rest through (one rule, every input)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockward.model.finding import Severity, Status
from dockward.policy.admission import ImageGate, judge_request, refusals
from dockward.policy.model import parse_policy
from dockward.specs.gojson import loads

BODIES = Path(__file__).parent / "fixtures" / "create-bodies"


def recorded(name: str) -> dict:
    return loads((BODIES / f"{name}.json").read_bytes())


def refused_ids(route: str, body: object, admission: dict, query: dict | None = None) -> set[str]:
    adm = parse_policy({"admission": admission}).admission
    results = judge_request(route, query or {}, body, adm, ImageGate())
    return {r.rule.id for r in refusals(results)}


@pytest.mark.parametrize(
    ("fixture", "alias", "rule"),
    [
        ("privileged", "privileged", "DW-C001"),
        ("caps", "dangerous-capabilities", "DW-C003"),
        ("bind-root", "sensitive-mounts", "DW-C007"),
        ("docker-sock", "docker-socket", "DW-C008"),
        ("host-namespaces", "host-network", "DW-C011"),
        ("host-namespaces", "host-pid", "DW-C017"),
        ("host-namespaces", "host-ipc", "DW-C018"),
        ("host-namespaces", "host-uts", "DW-C022"),
        ("devices", "devices", "DW-C019"),
        ("seccomp-unconfined", "seccomp-unconfined", "DW-C023"),
        ("volume-bind-driver", "sensitive-mounts", "DW-C007"),
    ],
)
def test_container_rule_lines(fixture: str, alias: str, rule: str) -> None:
    assert rule in refused_ids("containers.create", recorded(fixture), {"deny": [alias]})
    assert refused_ids("containers.create", recorded("hardened"), {"deny": [alias]}) == set()


def test_default_deny_list_passes_hardened_and_refuses_privileged() -> None:
    assert refused_ids("containers.create", recorded("hardened"), {}) == set()
    assert "DW-C001" in refused_ids("containers.create", recorded("privileged"), {})


def test_device_cgroup_rules_by_what_they_grant() -> None:
    # Recorded `docker create --device-cgroup-rule ...` bodies.
    deny = {"deny": ["devices"]}
    assert refused_ids("containers.create", recorded("device-cgroup-disks"), deny) == {"DW-C019"}
    assert refused_ids("containers.create", recorded("device-cgroup-null"), deny) == set()


def test_capability_allowlist() -> None:
    adm = {"deny": [], "capabilities": ["NET_BIND_SERVICE"]}
    assert refused_ids("containers.create", recorded("caps"), adm) == {"DW-P002"}
    assert refused_ids("containers.create", recorded("hardened"), adm) == set()


def test_bind_paths_follow_symlinks_on_the_host(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "data").mkdir()
    (allowed / "escape").symlink_to("/etc")
    adm = {"deny": ["sensitive-mounts"], "bind_paths": [str(allowed)]}

    def create(src: str) -> dict:
        return {"Image": "x", "HostConfig": {"Binds": [f"{src}:/m"]}}

    assert refused_ids("containers.create", create(str(allowed / "data")), adm) == set()
    # The symlink leads to /etc: outside the allowed tree, and a sensitive mount as well.
    assert refused_ids("containers.create", create(str(allowed / "escape")), adm) == {
        "DW-P003",
        "DW-C007",
    }
    assert refused_ids("containers.create", create("/opt"), adm) == {"DW-P003"}


def test_docker_socket_through_a_symlink(tmp_path: Path) -> None:
    link = tmp_path / "innocent"
    link.symlink_to("/var/run/docker.sock")
    body = {"Image": "x", "HostConfig": {"Binds": [f"{link}:/s"]}}
    assert "DW-C008" in refused_ids("containers.create", body, {"deny": ["docker-socket"]})


def test_unmodelled_grants_refused_unless_allowed() -> None:
    future = {"Image": "x", "HostConfig": {"FutureGrant": True}}
    assert refused_ids("containers.create", future, {"deny": []}) == {"DW-P004"}
    assert refused_ids("containers.create", future, {"deny": [], "allow_unmodelled": True}) == set()


def test_gpus_volumes_from_runtime_and_system_paths_are_container_rules() -> None:
    # Recorded from the docker CLI: `--gpus all`. The default policy refuses it by DW-C040.
    assert "DW-C040" in refused_ids("containers.create", recorded("gpus"), {})
    assert refused_ids("containers.create", recorded("gpus"), {"deny": []}) == set()
    crafted = {
        "Image": "x",
        "HostConfig": {"VolumesFrom": ["o"], "Runtime": "evil", "MaskedPaths": []},
    }
    refused = refused_ids("containers.create", crafted, {})
    assert {"DW-C037", "DW-C041", "DW-C042"} <= refused and "DW-P004" not in refused


def test_unjudgeable_body() -> None:
    bad = loads(b'{"Image":"x","HostConfig":{"Privileged":"yes"}}')
    assert refused_ids("containers.create", bad, {}) == {"DW-P001"}


def test_update_devices_and_exec_privileged() -> None:
    dev = {"Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda"}]}
    assert refused_ids("containers.update", dev, {}) == {"DW-C019"}
    assert refused_ids("containers.update", {"Memory": 1 << 20}, {}) == set()
    assert refused_ids("exec.create", {"Privileged": True, "Cmd": ["sh"]}, {}) == {"DW-C001"}
    assert refused_ids("exec.create", {"Cmd": ["sh"]}, {}) == set()
    root = {"exec_deny": ["root-user"]}
    assert refused_ids("exec.create", {"User": "root", "Cmd": ["sh"]}, root) == {"DW-C031"}
    assert refused_ids("exec.create", {"User": "1000", "Cmd": ["sh"]}, root) == set()


def test_volume_create_with_bind_driver_options() -> None:
    body = {"Name": "v", "DriverOpts": {"type": "none", "o": "bind", "device": "/etc"}}
    assert refused_ids("volumes.create", body, {}) == {"DW-C007"}
    assert refused_ids("volumes.create", {"Name": "v"}, {}) == set()


def test_registry_allowlist_and_digest_pinning() -> None:
    adm = {"images": {"registries": ["127.0.0.1:15650"], "require_digest": True}}
    pinned = "127.0.0.1:15650/a/b@sha256:" + "a" * 64
    assert refused_ids("images.create", None, adm, {"fromImage": [pinned]}) == set()
    assert refused_ids("images.create", None, adm, {"fromImage": ["busybox"], "tag": ["1"]}) == {
        "DW-P005",
        "DW-P006",
    }
    body = {"Image": "127.0.0.1:15650/a/b:1"}
    assert refused_ids("containers.create", body, {**adm, "deny": []}) == {"DW-P006"}


def test_import_and_load_refused_by_default() -> None:
    assert refused_ids("images.create", None, {}, {"fromSrc": ["-"]}) == {"DW-P009"}
    assert refused_ids("images.load", None, {}) == {"DW-P009"}
    allow = {"images": {"allow_import": True}}
    assert refused_ids("images.load", None, allow) == set()


def test_build_host_network() -> None:
    assert refused_ids("build", None, {}, {"networkmode": ["host"]}) == {"DW-P010"}
    assert refused_ids("build", None, {}, {"networkmode": ["default"]}) == set()
    assert (
        refused_ids("build", None, {"build_network_host": True}, {"networkmode": ["host"]}) == set()
    )


def test_unscanned_image_fails_closed() -> None:
    adm = parse_policy({"admission": {"images": {"fail_on_severity": "high"}}}).admission
    ref = "127.0.0.1:15650/a/b@sha256:" + "b" * 64
    results = judge_request("images.create", {"fromImage": [ref]}, None, adm, ImageGate())
    bad = refusals(results)
    assert [r.rule.id for r in bad] == ["DW-P007"]
    assert "never scanned" in bad[0].message


class _ScanVerdicts:
    """The scan DB's answer for two digests (the interface dockward.scan provides)."""

    def __init__(self, verdicts: dict[str, Severity]) -> None:
        self.verdicts = verdicts

    def worst_severity(self, image: str, digest: str) -> Severity | None:
        return self.verdicts.get(digest)


def test_vulnerability_threshold() -> None:
    adm = parse_policy({"admission": {"images": {"fail_on_severity": "high"}}}).admission
    clean, vulnerable = "sha256:" + "c" * 64, "sha256:" + "d" * 64
    gate = ImageGate(vulns=_ScanVerdicts({clean: Severity.MEDIUM, vulnerable: Severity.CRITICAL}))
    ok = judge_request("images.create", {"fromImage": [f"r.example/a@{clean}"]}, None, adm, gate)
    assert [r.status for r in ok] == [Status.PASS]
    bad = judge_request(
        "images.create", {"fromImage": [f"r.example/a@{vulnerable}"]}, None, adm, gate
    )
    assert [r.rule.id for r in refusals(bad)] == ["DW-P007"]


def test_realpath_roots(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    adm = {"deny": [], "bind_paths": [str(tmp_path / "alias")]}
    body = {
        "Image": "x",
        "HostConfig": {"Mounts": [{"Type": "bind", "Source": str(real), "Target": "/m"}]},
    }
    assert refused_ids("containers.create", body, adm) == set()
    assert os.path.islink(tmp_path / "alias")
