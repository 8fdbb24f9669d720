"""The one Engine API HostConfig/Config -> ContainerSpec mapping.

Two readers share it: `STRICT` for request bodies (the proxy's admission input: a wrong type,
a duplicate or case-folded key is a `BodyError`, because the daemon's Go decoder would read it
some way we would have to guess) and `LENIENT` for inspect documents (written by the daemon
itself: a missing or odd value is the zero value, never an error).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockward.model.container import (
    Device,
    Healthcheck,
    Mount,
    PortBinding,
    RestartPolicy,
    SecurityOptions,
    Ulimit,
    normalise_capability,
)
from dockward.specs import gojson
from dockward.specs.gojson import BodyError, GoObject
from dockward.specs.values import parse_port_key

PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")


class Fields:
    """An inspect object: the daemon wrote it, so its keys are exact (a view, not a copy)."""

    __slots__ = ("data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self.data: Mapping[str, Any] = data if data is not None else {}

    def field(self, name: str) -> Any:
        return self.data.get(name)

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    def items(self) -> Any:
        return self.data.items()


class Reader:
    """How values are read: strictly (request bodies) or leniently (inspect documents)."""

    strict = True

    def obj(self, value: Any, where: str) -> GoObject | Fields:
        return gojson.obj(value, where)

    def arr(self, value: Any, where: str) -> list[Any]:
        return gojson.arr(value, where)

    def text(self, value: Any, where: str) -> str:
        return gojson.text(value, where)

    def boolean(self, value: Any, where: str) -> bool:
        return gojson.boolean(value, where)

    def integer(self, value: Any, where: str) -> int:
        return gojson.integer(value, where)

    def strings(self, value: Any, where: str) -> list[str]:
        return gojson.strings(value, where)

    def mapping(self, value: Any, where: str) -> dict[str, str]:
        return {str(k): self.text(v, where) for k, v in self.obj(value, where).items()}


class LenientReader(Reader):
    """The daemon wrote it: a missing or odd value is the zero value, never an error."""

    strict = False

    def obj(self, value: Any, where: str) -> GoObject | Fields:
        if isinstance(value, Fields | GoObject):
            return value
        return Fields(value) if isinstance(value, Mapping) else Fields()

    def arr(self, value: Any, where: str) -> list[Any]:
        return value if isinstance(value, list) else []

    def text(self, value: Any, where: str) -> str:
        return value if isinstance(value, str) else "" if value is None else str(value)

    def boolean(self, value: Any, where: str) -> bool:
        return bool(value)

    def integer(self, value: Any, where: str) -> int:
        if isinstance(value, int):
            return value
        try:
            return int(value or 0)
        except (TypeError, ValueError):
            return 0

    def strings(self, value: Any, where: str) -> list[str]:
        if isinstance(value, str):
            return [value]
        return [v if isinstance(v, str) else str(v) for v in self.arr(value, where)]


STRICT = Reader()
LENIENT = LenientReader()


def port_bindings(value: Any, r: Reader) -> tuple[PortBinding, ...]:
    """`HostConfig.PortBindings` (or inspect's `NetworkSettings.Ports`)."""
    out: dict[tuple[int, str, str, int], PortBinding] = {}
    for key, bindings in r.obj(value, "HostConfig.PortBindings").items():
        cport, proto = parse_port_key(str(key))
        for b in r.arr(bindings, "PortBindings"):
            bo = r.obj(b, "PortBinding")
            ip = r.text(bo.field("HostIp"), "HostIp")
            ip = "" if ip in ("0.0.0.0", "::") else ip
            port_text = r.text(bo.field("HostPort"), "HostPort")
            try:
                host_port = int(port_text.split("-")[0]) if port_text else 0
            except ValueError as exc:
                if r.strict:
                    raise BodyError(f"HostPort {port_text!r} is not a port") from exc
                host_port = 0
            binding = PortBinding(cport, proto, ip, host_port)
            out[(cport, proto, ip, host_port)] = binding
    return tuple(out.values())


def devices(value: Any, r: Reader) -> tuple[Device, ...]:
    out = []
    for raw in r.arr(value, "HostConfig.Devices"):
        d = r.obj(raw, "Device")
        out.append(
            Device(
                r.text(d.field("PathOnHost"), "PathOnHost"),
                r.text(d.field("PathInContainer"), "PathInContainer"),
                r.text(d.field("CgroupPermissions"), "CgroupPermissions") or "rwm",
            )
        )
    return tuple(out)


def ulimits(value: Any, r: Reader) -> tuple[Ulimit, ...]:
    return tuple(
        Ulimit(
            r.text(u.field("Name"), "Ulimit.Name"),
            r.integer(u.field("Soft"), "Ulimit.Soft"),
            r.integer(u.field("Hard"), "Ulimit.Hard"),
        )
        for u in (r.obj(x, "Ulimit") for x in r.arr(value, "Ulimits"))
    )


def restart_policy(value: Any, r: Reader) -> RestartPolicy:
    restart = r.obj(value, "RestartPolicy")
    return RestartPolicy(
        r.text(restart.field("Name"), "RestartPolicy.Name"),
        r.integer(restart.field("MaximumRetryCount"), "MaximumRetryCount"),
    )


def tmpfs_mounts(value: Any, r: Reader) -> tuple[Mount, ...]:
    return tuple(
        Mount("tmpfs", "", str(target), read_only="ro" in r.text(opts, "Tmpfs").split(","))
        for target, opts in r.obj(value, "HostConfig.Tmpfs").items()
    )


def device_requests(value: Any, r: Reader) -> tuple[str, ...]:
    """`HostConfig.DeviceRequests` (`--gpus`) as `driver=...,count=...,capabilities=...`."""
    out = []
    for raw in r.arr(value, "HostConfig.DeviceRequests"):
        d = r.obj(raw, "DeviceRequest")
        caps = [",".join(r.strings(c, "Capabilities")) for c in r.arr(d.field("Capabilities"), "")]
        ids = r.strings(d.field("DeviceIDs"), "DeviceIDs")
        count = r.integer(d.field("Count"), "Count")
        parts = [f"driver={r.text(d.field('Driver'), 'Driver')}"]
        parts.append("count=all" if count == -1 else f"count={count}")
        if ids:
            parts.append("device=" + ",".join(ids))
        if caps:
            parts.append("capabilities=" + ";".join(caps))
        out.append(",".join(parts))
    return tuple(out)


def unmasked_paths(hc: GoObject | Fields) -> bool:
    """An explicitly empty MaskedPaths or ReadonlyPaths (`--security-opt systempaths=unconfined`)
    unmasks /proc and /sys."""
    return any(
        isinstance(hc.field(key), list) and not hc.field(key)
        for key in ("MaskedPaths", "ReadonlyPaths")
    )


def host_config_fields(hc: GoObject | Fields, r: Reader) -> dict[str, Any]:
    """ContainerSpec fields from one HostConfig (mounts and ports aside: inspect documents carry
    resolved ones of their own)."""
    pids = hc.field("PidsLimit")
    return {
        "privileged": r.boolean(hc.field("Privileged"), "Privileged"),
        "cap_add": tuple(normalise_capability(c) for c in r.strings(hc.field("CapAdd"), "CapAdd")),
        "cap_drop": tuple(
            normalise_capability(c) for c in r.strings(hc.field("CapDrop"), "CapDrop")
        ),
        "network_mode": r.text(hc.field("NetworkMode"), "NetworkMode"),
        "pid_mode": r.text(hc.field("PidMode"), "PidMode"),
        "ipc_mode": r.text(hc.field("IpcMode"), "IpcMode"),
        "uts_mode": r.text(hc.field("UTSMode"), "UTSMode"),
        "userns_mode": r.text(hc.field("UsernsMode"), "UsernsMode"),
        "cgroupns_mode": r.text(hc.field("CgroupnsMode"), "CgroupnsMode"),
        "cgroup_parent": r.text(hc.field("CgroupParent"), "CgroupParent"),
        "security": SecurityOptions.parse(r.strings(hc.field("SecurityOpt"), "SecurityOpt")),
        "read_only_rootfs": r.boolean(hc.field("ReadonlyRootfs"), "ReadonlyRootfs"),
        "memory": r.integer(hc.field("Memory"), "Memory"),
        "memory_swap": r.integer(hc.field("MemorySwap"), "MemorySwap"),
        "cpu_shares": r.integer(hc.field("CpuShares"), "CpuShares"),
        "nano_cpus": r.integer(hc.field("NanoCpus"), "NanoCpus"),
        "cpu_quota": r.integer(hc.field("CpuQuota"), "CpuQuota"),
        "cpuset_cpus": r.text(hc.field("CpusetCpus"), "CpusetCpus"),
        "pids_limit": r.integer(pids, "PidsLimit") if pids is not None else None,
        "ulimits": ulimits(hc.field("Ulimits"), r),
        "devices": devices(hc.field("Devices"), r),
        "device_cgroup_rules": tuple(r.strings(hc.field("DeviceCgroupRules"), "DeviceCgroupRules")),
        "publish_all": r.boolean(hc.field("PublishAllPorts"), "PublishAllPorts"),
        "extra_hosts": tuple(r.strings(hc.field("ExtraHosts"), "ExtraHosts")),
        "volumes_from": tuple(r.strings(hc.field("VolumesFrom"), "VolumesFrom")),
        "oom_kill_disable": r.boolean(hc.field("OomKillDisable"), "OomKillDisable"),
        "oom_score_adj": r.integer(hc.field("OomScoreAdj"), "OomScoreAdj"),
        "device_requests": device_requests(hc.field("DeviceRequests"), r),
        "runtime": r.text(hc.field("Runtime"), "Runtime"),
        "unmasked_paths": unmasked_paths(hc),
        "restart": restart_policy(hc.field("RestartPolicy"), r),
        "sysctls": r.mapping(hc.field("Sysctls"), "Sysctls"),
    }


def config_fields(cfg: GoObject | Fields, r: Reader) -> dict[str, Any]:
    """ContainerSpec fields from a container Config (the create body's top level)."""
    health = cfg.field("Healthcheck")
    return {
        "image": r.text(cfg.field("Image"), "Image"),
        "user": r.text(cfg.field("User"), "User"),
        "healthcheck": (
            Healthcheck(tuple(r.strings(r.obj(health, "Healthcheck").field("Test"), "Test")))
            if health is not None and (r.strict or isinstance(health, Mapping))
            else None
        ),
        "env": tuple(r.strings(cfg.field("Env"), "Env")),
        "labels": r.mapping(cfg.field("Labels"), "Labels"),
        "entrypoint": tuple(r.strings(cfg.field("Entrypoint"), "Entrypoint")),
        "command": tuple(r.strings(cfg.field("Cmd"), "Cmd")),
    }
