"""Engine inspect documents -> typed models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockward.model.container import (
    ContainerSpec,
    Device,
    Healthcheck,
    Mount,
    PortBinding,
    RestartPolicy,
    SecurityOptions,
    Ulimit,
    normalise_capability,
)


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def parse_port_key(key: str) -> tuple[int, str]:
    port, _, proto = key.partition("/")
    try:
        return int(port.split("-")[0]), (proto or "tcp")
    except ValueError:
        return 0, proto or "tcp"


def _ports(host_config: dict[str, Any], network: dict[str, Any]) -> tuple[PortBinding, ...]:
    # Declared bindings work for created containers; the live ones add what -P chose.
    declared = _d(host_config.get("PortBindings"))
    source = declared or _d(network.get("Ports"))
    out: dict[tuple[int, str, str, int], PortBinding] = {}
    for key, bindings in source.items():
        cport, proto = parse_port_key(str(key))
        for b in map(_d, _l(bindings)):
            ip = str(b.get("HostIp") or "")
            ip = "" if ip in ("0.0.0.0", "::") else ip
            binding = PortBinding(cport, proto, ip, _int(b.get("HostPort")))
            out[(cport, proto, ip, binding.host_port)] = binding
    return tuple(out.values())


def container_from_inspect(data: Mapping[str, Any]) -> ContainerSpec:
    hc = _d(data.get("HostConfig"))
    cfg = _d(data.get("Config"))
    state = _d(data.get("State"))
    net = _d(data.get("NetworkSettings"))
    mounts = tuple(
        Mount(
            type=str(m.get("Type") or "bind"),
            source=str(m.get("Source") or m.get("Name") or ""),
            target=str(m.get("Destination") or ""),
            read_only=not bool(m.get("RW", True)),
            propagation=str(m.get("Propagation") or ""),
        )
        for m in map(_d, _l(data.get("Mounts")))
    )
    tmpfs = tuple(
        Mount(type="tmpfs", source="", target=str(k), read_only="ro" in str(v).split(","))
        for k, v in _d(hc.get("Tmpfs")).items()
    )
    hcheck = cfg.get("Healthcheck")
    health = _d(state.get("Health"))
    restart = _d(hc.get("RestartPolicy"))
    pids = hc.get("PidsLimit")
    return ContainerSpec(
        name=str(data.get("Name") or "").lstrip("/"),
        id=str(data.get("Id") or ""),
        image=str(cfg.get("Image") or ""),
        image_id=str(data.get("Image") or ""),
        state=str(state.get("Status") or ""),
        privileged=bool(hc.get("Privileged")),
        cap_add=tuple(normalise_capability(c) for c in _l(hc.get("CapAdd"))),
        cap_drop=tuple(normalise_capability(c) for c in _l(hc.get("CapDrop"))),
        user=str(cfg.get("User") or ""),
        mounts=mounts + tmpfs,
        network_mode=str(hc.get("NetworkMode") or ""),
        pid_mode=str(hc.get("PidMode") or ""),
        ipc_mode=str(hc.get("IpcMode") or ""),
        uts_mode=str(hc.get("UTSMode") or ""),
        userns_mode=str(hc.get("UsernsMode") or ""),
        cgroupns_mode=str(hc.get("CgroupnsMode") or ""),
        cgroup_parent=str(hc.get("CgroupParent") or ""),
        security=SecurityOptions.parse(_l(hc.get("SecurityOpt"))),
        apparmor_profile=(
            str(data["AppArmorProfile"]) if data.get("AppArmorProfile") is not None else None
        ),
        read_only_rootfs=bool(hc.get("ReadonlyRootfs")),
        memory=_int(hc.get("Memory")),
        memory_swap=_int(hc.get("MemorySwap")),
        cpu_shares=_int(hc.get("CpuShares")),
        nano_cpus=_int(hc.get("NanoCpus")),
        cpu_quota=_int(hc.get("CpuQuota")),
        cpuset_cpus=str(hc.get("CpusetCpus") or ""),
        pids_limit=_int(pids) if pids is not None else None,
        ulimits=tuple(
            Ulimit(str(u.get("Name") or ""), _int(u.get("Soft")), _int(u.get("Hard")))
            for u in map(_d, _l(hc.get("Ulimits")))
        ),
        devices=tuple(
            Device(
                str(d.get("PathOnHost") or ""),
                str(d.get("PathInContainer") or ""),
                str(d.get("CgroupPermissions") or "rwm"),
            )
            for d in map(_d, _l(hc.get("Devices")))
        ),
        device_cgroup_rules=tuple(str(r) for r in _l(hc.get("DeviceCgroupRules"))),
        ports=_ports(hc, net),
        publish_all=bool(hc.get("PublishAllPorts")),
        restart=RestartPolicy(
            str(restart.get("Name") or ""), _int(restart.get("MaximumRetryCount"))
        ),
        healthcheck=(
            Healthcheck(tuple(str(t) for t in _l(_d(hcheck).get("Test"))))
            if isinstance(hcheck, dict)
            else None
        ),
        health_status=str(health["Status"]) if health.get("Status") else None,
        env=tuple(str(e) for e in _l(cfg.get("Env"))),
        labels={str(k): str(v) for k, v in _d(cfg.get("Labels")).items()},
        sysctls={str(k): str(v) for k, v in _d(hc.get("Sysctls")).items()},
        entrypoint=tuple(str(e) for e in _l(cfg.get("Entrypoint"))),
        command=tuple(str(e) for e in _l(cfg.get("Cmd"))),
        origin="inspect",
    )
