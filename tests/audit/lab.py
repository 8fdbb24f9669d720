"""The audit lab: one container per container check, bad, plus one hardened container.

Used by the real-daemon tests and by tests/fixtures/record_engine.py to record inspect snapshots.
Privileged and capability containers are created, never started (this kernel refuses them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import docker.types

LABEL = "dockward.test"
LAB = "dwaudit"
NETWORK = "dwaudit-net"
# The lab network's pool: the engine hands out .0/25; .200 is fixed outside it, .100 inside.
SUBNET, IP_RANGE = "10.231.43.0/24", "10.231.43.0/25"


def _fixed_ip(address: str) -> dict[str, Any]:
    return {
        "NetworkingConfig": {"EndpointsConfig": {NETWORK: {"IPAMConfig": {"IPv4Address": address}}}}
    }


SSHD_SCRIPT = (
    "printf '#!/bin/sh\\nsleep 3600\\n' > /tmp/sshd && chmod +x /tmp/sshd && exec /tmp/sshd"
)


@dataclass(frozen=True)
class LabContainer:
    name: str
    rule: str  # the rule this container fails ("" for the hardened one)
    host: dict[str, Any] = field(default_factory=dict)  # HostConfig keys (API names)
    config: dict[str, Any] = field(default_factory=dict)  # container config keys
    start: bool = False
    image: str = ""
    # `docker exec` sessions created (not started) once the container runs: exec_create kwargs
    execs: tuple[dict[str, Any], ...] = ()


HARDENED_HOST: dict[str, Any] = {
    "CapDrop": ["ALL"],
    "ReadonlyRootfs": True,
    "Memory": 64 * 1024 * 1024,
    "CpuShares": 512,
    "PidsLimit": 64,
    "SecurityOpt": ["no-new-privileges:true", "apparmor=docker-default", "label=type:container_t"],
    "PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
    "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
    "NetworkMode": NETWORK,
    "CgroupnsMode": "private",
}
HARDENED_CONFIG: dict[str, Any] = {
    "User": "1000:1000",
    "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1_000_000_000, "Retries": 1},
    "ExposedPorts": {"8080/tcp": {}},
}


def _bad(
    name: str,
    rule: str,
    start: bool = False,
    image: str = "",
    config: dict[str, Any] | None = None,
    **host: Any,
) -> LabContainer:
    h = dict(HARDENED_HOST)
    h.update(host)
    c = dict(HARDENED_CONFIG)
    c.update(config or {})
    return LabContainer(f"{LAB}-{name}", rule, h, c, start, image)


LAB_CONTAINERS: tuple[LabContainer, ...] = (
    LabContainer(f"{LAB}-good", "", dict(HARDENED_HOST), dict(HARDENED_CONFIG), start=True),
    _bad("privileged", "DW-C001", Privileged=True),
    _bad("capadd", "DW-C002", CapAdd=["NET_BIND_SERVICE", "CHOWN", "NET_ADMIN"]),
    _bad("sysadmin", "DW-C003", CapAdd=["SYS_ADMIN"]),
    _bad("defaultcaps", "DW-C004", CapDrop=None),
    _bad("apparmor", "DW-C005", SecurityOpt=["no-new-privileges:true", "apparmor=unconfined"]),
    _bad(
        "selinux",
        "DW-C006",
        SecurityOpt=["no-new-privileges:true", "apparmor=docker-default", "label=disable"],
    ),
    _bad("etcmount", "DW-C007", Binds=["/etc:/host-etc"]),
    _bad("dockersock", "DW-C008", Binds=["/var/run/docker.sock:/var/run/docker.sock:ro"]),
    _bad("runmount", "DW-C008", Binds=["/run:/hostrun"]),
    _bad(
        "sshd",
        "DW-C009",
        start=True,
        config={"Cmd": ["sh", "-c", SSHD_SCRIPT]},
        ReadonlyRootfs=False,
    ),
    _bad(
        "lowport", "DW-C010", PortBindings={"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "80"}]}
    ),
    _bad("hostnet", "DW-C011", NetworkMode="host", PortBindings={}),
    _bad("nomem", "DW-C012", Memory=0),
    _bad("nocpu", "DW-C013", CpuShares=0),
    _bad("rwroot", "DW-C014", ReadonlyRootfs=False),
    _bad("wideport", "DW-C015", PortBindings={"8080/tcp": [{"HostIp": "", "HostPort": ""}]}),
    _bad("restart", "DW-C016", RestartPolicy={"Name": "always", "MaximumRetryCount": 0}),
    _bad("hostpid", "DW-C017", PidMode="host"),
    _bad("hostipc", "DW-C018", IpcMode="host"),
    _bad(
        "device",
        "DW-C019",
        Devices=[
            {"PathOnHost": "/dev/null", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}
        ],
    ),
    # A cgroup rule granting every SCSI disk (read, write, mknod) without any --device.
    _bad("diskrule", "DW-C019", DeviceCgroupRules=["b 8:* rwm"]),
    # /dev/null by number only: a harmless grant (passes DW-C019, fails nothing else).
    _bad("nullrule", "", DeviceCgroupRules=["c 1:3 rwm"]),
    _bad("ulimit", "DW-C020", Ulimits=[{"Name": "nofile", "Soft": -1, "Hard": -1}]),
    _bad(
        "rshared",
        "DW-C021",
        Mounts=[
            {
                "Type": "bind",
                "Source": "/tmp",
                "Target": "/data",
                "BindOptions": {"Propagation": "rshared"},
            }
        ],
    ),
    _bad("hostuts", "DW-C022", UTSMode="host"),
    _bad("seccomp", "DW-C023", SecurityOpt=["no-new-privileges:true", "seccomp=unconfined"]),
    _bad("cgparent", "DW-C024", CgroupParent="/dwaudit"),
    _bad("nonnp", "DW-C025", SecurityOpt=["apparmor=docker-default"]),
    _bad("nohealth", "DW-C026", config={"Healthcheck": {"Test": ["NONE"]}}),
    _bad(
        "unhealthy",
        "DW-C026",
        start=True,
        config={"Healthcheck": {"Test": ["CMD", "false"], "Interval": 1_000_000_000, "Retries": 1}},
    ),
    _bad("nopids", "DW-C027", PidsLimit=0),
    _bad("hostuserns", "DW-C028", UsernsMode="host"),
    _bad("bridge", "DW-C029", NetworkMode="bridge"),
    _bad(
        "secretenv",
        "DW-C030",
        config={"Env": ["DB_PASSWORD=correct-horse-battery", "AWS_KEY=AKIAIOSFODNN7EXAMPLE"]},
    ),
    _bad("root", "DW-C031", config={"User": "0:0"}),
    _bad("latest", "DW-C032", image="dwaudit/busybox:latest"),
    _bad("hostcgns", "DW-C033", CgroupnsMode="host"),
    _bad("sysctl", "DW-C034", Sysctls={"kernel.core_pattern": "|/tmp/x"}),
    _bad("volumesfrom", "DW-C037", VolumesFrom=[f"{LAB}-good:ro"]),
    _bad("oomkill", "DW-C038", OomKillDisable=True, OomScoreAdj=-1000),
    _bad("addhost", "DW-C039", ExtraHosts=["registry-1.docker.io:203.0.113.7"]),
    _bad(
        "gpus",
        "DW-C040",
        DeviceRequests=[{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}],
    ),
    # DW-C041 needs a runtime registered with the daemon: tests/audit/test_runtime_rule.py.
    _bad("systempaths", "DW-C042", MaskedPaths=[], ReadonlyPaths=[]),
    _bad("fixedip", "DW-C043", config=_fixed_ip("10.231.43.100")),
    _bad("fixedipok", "", config=_fixed_ip("10.231.43.200")),  # outside the range: passes
    LabContainer(
        f"{LAB}-privexec",
        "DW-C035",
        dict(HARDENED_HOST),
        dict(HARDENED_CONFIG),
        start=True,
        execs=({"cmd": ["sh"], "privileged": True},),
    ),
    LabContainer(
        f"{LAB}-rootexec",
        "DW-C036",
        dict(HARDENED_HOST),
        dict(HARDENED_CONFIG),
        start=True,
        execs=({"cmd": ["id"], "user": "0"}, {"cmd": ["id"], "user": "1000"}),
    ),
)


def remove_lab(client: Any) -> None:
    for c in client.containers(all=True, filters={"label": f"{LABEL}={LAB}"}):
        client.remove_container(c["Id"], force=True, v=True)


def build_lab(client: Any, image: str, wait_health: float = 20.0) -> list[str]:
    """(Re)create the lab; returns the container names. Tolerates leftovers of earlier runs."""
    remove_lab(client)
    want = [{"Subnet": SUBNET, "IPRange": IP_RANGE}]
    for net in client.networks(names=[NETWORK]):
        if net["Name"] == NETWORK and (net.get("IPAM") or {}).get("Config") != want:
            client.remove_network(net["Id"])  # an earlier run's, without this pool
    if not [n for n in client.networks(names=[NETWORK]) if n["Name"] == NETWORK]:
        pool = docker.types.IPAMPool(subnet=SUBNET, iprange=IP_RANGE)
        client.create_network(
            NETWORK,
            driver="bridge",
            labels={LABEL: LAB},
            ipam=docker.types.IPAMConfig(pool_configs=[pool]),
        )
    client.tag(image, "dwaudit/busybox", "latest")
    names = []
    for lab in LAB_CONTAINERS:
        config = {"Image": lab.image or image, "Cmd": ["sleep", "3600"], "Labels": {LABEL: LAB}}
        config.update(lab.config)
        host = {k: v for k, v in lab.host.items() if v is not None}
        config["HostConfig"] = host
        # The low-level create: exactly these HostConfig keys, as a compose file or the CLI would send.
        res = client._post_json(
            client._url("/containers/create"), data=config, params={"name": lab.name}
        )
        client._result(res, True)
        if lab.start:
            client.start(lab.name)
        for ex in lab.execs:
            # Created, never started: the daemon holds the record all the same (a privileged
            # exec could not start on this kernel).
            client.exec_create(lab.name, **ex)
        names.append(lab.name)
    deadline = time.monotonic() + wait_health
    while time.monotonic() < deadline:
        states = {
            n: client.inspect_container(n)["State"].get("Health", {}).get("Status")
            for n in (f"{LAB}-good", f"{LAB}-unhealthy")
        }
        if states[f"{LAB}-good"] == "healthy" and states[f"{LAB}-unhealthy"] == "unhealthy":
            break
        time.sleep(0.3)
    return names
