"""End to end against the real daemon and a real registry: update, identity, rollback, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import run_cli
from tests.update.conftest import (
    DOWN_REGISTRY_PORT,
    LABEL,
    PREFIX,
    Registry,
    build_version,
    push,
    update_once,
)

NET1, NET2 = f"{PREFIX}-net1", f"{PREFIX}-net2"
SUBNET1, SUBNET2 = "10.213.77.0/24", "10.213.78.0/24"


def _network(client: Any, name: str, subnet: str) -> None:
    if client.networks(names=[name]):
        return
    ipam = {"Driver": "default", "Config": [{"Subnet": subnet}]}
    client.create_network(name, driver="bridge", ipam=ipam, labels=LABEL)


def _update(
    state: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], str]:
    run = update_once(state, "--health-timeout", "20", *args, env=env)
    return run.code, run.doc, run.err


def events(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cycles = doc["extra"]["update"]["cycles"]
    return {e["container"]: e for c in cycles for e in c["events"]}


def _full_container(client: Any, image: str, name: str, bind_dir: str) -> str:
    host_config = client.create_host_config(
        binds={
            bind_dir: {"bind": "/bind", "mode": "ro"},
            f"{PREFIX}-vol": {"bind": "/data", "mode": "rw"},
        },
        tmpfs={"/run": "rw,size=1m"},
        port_bindings={8080: ("127.0.0.1", 15810)},
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
        mem_limit="64m",
        cpu_shares=512,
        pids_limit=50,
        cap_drop=["ALL"],
        cap_add=["NET_BIND_SERVICE"],
        security_opt=["no-new-privileges:true"],
        log_config={"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}},
        ulimits=[{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
        extra_hosts={"dwupd-host": "10.9.9.9"},
        read_only=True,
        network_mode=NET1,
    )
    networking = client.create_networking_config(
        {NET1: client.create_endpoint_config(aliases=["app-alias"], ipv4_address="10.213.77.10")}
    )
    container = client.create_container(
        image,
        name=name,
        command=["sh", "-c", "echo started; exec sleep 3600"],
        entrypoint=["/bin/busybox"],
        environment={"APP_MODE": "test", "APP_LEVEL": "3"},
        labels={**LABEL, "dockward.update": "true", "app.role": "web"},
        user="1000:1000",
        working_dir="/tmp",
        ports=[8080],
        healthcheck={
            "Test": ["CMD", "test", "-f", "/version"],
            "Interval": 1_000_000_000,
            "Retries": 3,
        },
        stop_signal="SIGTERM",
        host_config=host_config,
        networking_config=networking,
    )
    client.connect_container_to_network(
        container["Id"], NET2, aliases=["second-alias"], ipv4_address="10.213.78.10"
    )
    client.start(container["Id"])
    return str(container["Id"])


# Paths in an inspect that legitimately differ: the id, things derived from it, the image, times.
VOLATILE = {
    "Id",
    "Created",
    "Image",
    "State",
    "ResolvConfPath",
    "HostnamePath",
    "HostsPath",
    "LogPath",
    "Config.Hostname",
    "GraphDriver",
    "NetworkSettings.SandboxID",
    "NetworkSettings.SandboxKey",
    "NetworkSettings.EndpointID",
    "NetworkSettings.Networks.*.EndpointID",
    "RestartCount",
}


def _normalise(doc: Any, path: str = "", short_id: str = "") -> Any:
    if isinstance(doc, dict):
        out = {}
        for key, value in doc.items():
            sub = f"{path}.{key}" if path else key
            generic = ".".join("*" if p in (NET1, NET2) else p for p in sub.split("."))
            if sub in VOLATILE or generic in VOLATILE:
                continue
            out[key] = _normalise(value, sub, short_id)
        return out
    if isinstance(doc, list):
        items = [_normalise(v, path, short_id) for v in doc if v != short_id]
        return sorted(items, key=json.dumps) if path.endswith(("Mounts", "Aliases")) else items
    return doc


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b)):
            out += _diff(a.get(key), b.get(key), f"{path}.{key}")
        return out
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def test_update_recreates_with_identical_configuration(
    clean: Any, registry: Registry, tmp_path: Path
) -> None:
    client = clean
    _network(client, NET1, SUBNET1)
    _network(client, NET2, SUBNET2)
    v1, v2 = build_version(client, "v1"), build_version(client, "v2")
    ref = registry.ref(f"{PREFIX}/full", "stable")
    push(client, v1, registry, f"{PREFIX}/full", "stable")
    old_id = _full_container(client, ref, f"{PREFIX}-full", str(tmp_path / "bind"))
    old = client.inspect_container(old_id)

    tmp_path = tmp_path / "state"
    code, doc, err = _update(tmp_path, "--monitor-only")
    assert code == 0, err
    assert events(doc)[f"{PREFIX}-full"]["status"] == "current"

    push(client, v2, registry, f"{PREFIX}/full", "stable")
    code, doc, err = _update(tmp_path)
    assert code == 0, err
    event = events(doc)[f"{PREFIX}-full"]
    assert event["status"] == "updated", event
    assert event["new_image_id"] == v2 and event["old_image_id"] == v1

    new = client.inspect_container(f"{PREFIX}-full")
    assert new["Id"] != old_id and new["Image"] == v2 and new["State"]["Running"]
    nets = new["NetworkSettings"]["Networks"]
    assert nets[NET1]["IPAMConfig"]["IPv4Address"] == "10.213.77.10"
    assert "app-alias" in nets[NET1]["Aliases"] and "second-alias" in nets[NET2]["Aliases"]
    assert nets[NET2]["IPAddress"] == "10.213.78.10"
    assert new["HostConfig"]["PortBindings"] == old["HostConfig"]["PortBindings"]
    assert {m["Destination"] for m in new["Mounts"]} == {"/bind", "/data"}
    differences = _diff(
        _normalise(old, short_id=old_id[:12]), _normalise(new, short_id=new["Id"][:12])
    )
    assert differences == []
    assert not client.containers(all=True, filters={"name": f"{PREFIX}-full-dockward-old"})
    assert list(tmp_path.glob("*.json")) == []

    code, doc, _ = _update(tmp_path)
    assert events(doc)[f"{PREFIX}-full"]["status"] == "current"


def test_broken_image_is_rolled_back(clean: Any, registry: Registry, tmp_path: Path) -> None:
    client = clean
    good, broken = build_version(client, "v1"), build_version(client, "v3-broken", healthy=False)
    repo = f"{PREFIX}/health"
    push(client, good, registry, repo, "stable")
    c = client.create_container(
        registry.ref(repo, "stable"),
        name=f"{PREFIX}-health",
        labels={**LABEL, "dockward.update": "true"},
    )
    client.start(c["Id"])
    push(client, broken, registry, repo, "stable")
    code, doc, _err = _update(tmp_path, "--rules-gate", "off")
    event = events(doc)[f"{PREFIX}-health"]
    assert event["status"] == "rolled-back", event
    assert "healthcheck failed" in event["reason"]
    # The command returns once the restored container is healthy again, and says so.
    assert "old container restored and healthy (healthcheck passed" in event["reason"], event
    assert code == 1
    back = client.inspect_container(f"{PREFIX}-health")
    assert back["Id"] == c["Id"] and back["State"]["Running"] and back["Image"] == good
    assert back["State"]["Health"]["Status"] == "healthy"
    # The table says what happened to the container, old -> new, and why.
    res = run_cli(
        "update",
        "--once",
        "--state-dir",
        str(tmp_path),
        "--format",
        "table",
        "--health-timeout",
        "20",
        "--min-uptime",
        "1",
        "--stop-timeout",
        "1",
        "--rules-gate",
        "off",
        "--fail-on",
        "never",
    )
    row = next((x for x in res.out.splitlines() if f"{PREFIX}-health" in x), res.out + res.err)
    assert "rolled back" in row and "health gate failed" in row, res.out
    assert "->" in res.out and "healthcheck passed" in res.out
    assert "1 containers: 1 rolled back" in res.out and "score" not in res.out
    assert len(client.containers(all=True, filters={"label": f"dockward.test={PREFIX}"})) == 1
    assert list(tmp_path.glob("*.json")) == []


def test_registry_down_is_a_clear_error_and_touches_nothing(
    clean: Any, registry: Registry, tmp_path: Path
) -> None:
    client = clean
    image = build_version(client, "v1")
    ref = f"127.0.0.1:{DOWN_REGISTRY_PORT}/{PREFIX}/down:1"
    client.tag(image, f"127.0.0.1:{DOWN_REGISTRY_PORT}/{PREFIX}/down", "1", force=True)
    c = client.create_container(
        ref, name=f"{PREFIX}-down", labels={**LABEL, "dockward.update": "true"}
    )
    client.start(c["Id"])
    code, doc, err = _update(tmp_path)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "unreachable" in lines[0] and "Connection refused" in lines[0], err
    assert "Traceback" not in err
    now = client.inspect_container(f"{PREFIX}-down")
    assert now["Id"] == c["Id"] and now["State"]["Running"]
    assert events(doc)[f"{PREFIX}-down"]["status"] == "error"
    assert doc["summary"]["score"] < 100  # an error is not a pass
