"""Engine API request bodies (`POST /containers/create`, update, exec, services) -> ContainerSpec.

The proxy judges these with the same container rules `audit` runs on inspect documents. A
HostConfig field the model does not know is reported by `unmodelled_grants`, so the policy can
refuse what it cannot judge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockward.model.container import (
    ContainerSpec,
    Mount,
    PortBinding,
    SecurityOptions,
    StaticAddress,
    normalise_capability,
)
from dockward.specs.gojson import (
    BodyError,
    GoObject,
    arr,
    boolean,
    integer,
    is_zero,
    obj,
    strings,
    text,
)
from dockward.specs.hostconfig import (
    PROPAGATIONS,
    STRICT,
    config_fields,
    device_requests,
    devices,
    host_config_fields,
    port_bindings,
    restart_policy,
    tmpfs_mounts,
    ulimits,
)

# HostConfig fields of API 1.41 (moby api/types/container/host_config.go).
HOST_CONFIG_FIELDS = frozenset(
    f.casefold()
    for f in [
        "Binds",
        "ContainerIDFile",
        "LogConfig",
        "NetworkMode",
        "PortBindings",
        "RestartPolicy",
        "AutoRemove",
        "VolumeDriver",
        "VolumesFrom",
        "CapAdd",
        "CapDrop",
        "CgroupnsMode",
        "Dns",
        "DnsOptions",
        "DnsSearch",
        "ExtraHosts",
        "GroupAdd",
        "IpcMode",
        "Cgroup",
        "Links",
        "OomScoreAdj",
        "PidMode",
        "Privileged",
        "PublishAllPorts",
        "ReadonlyRootfs",
        "SecurityOpt",
        "StorageOpt",
        "Tmpfs",
        "UTSMode",
        "UsernsMode",
        "ShmSize",
        "Sysctls",
        "Runtime",
        "ConsoleSize",
        "Isolation",
        "CpuShares",
        "Memory",
        "NanoCpus",
        "CgroupParent",
        "BlkioWeight",
        "BlkioWeightDevice",
        "BlkioDeviceReadBps",
        "BlkioDeviceWriteBps",
        "BlkioDeviceReadIOps",
        "BlkioDeviceWriteIOps",
        "CpuPeriod",
        "CpuQuota",
        "CpuRealtimePeriod",
        "CpuRealtimeRuntime",
        "CpusetCpus",
        "CpusetMems",
        "Devices",
        "DeviceCgroupRules",
        "DeviceRequests",
        "KernelMemory",
        "KernelMemoryTCP",
        "MemoryReservation",
        "MemorySwap",
        "MemorySwappiness",
        "OomKillDisable",
        "PidsLimit",
        "Ulimits",
        "CpuCount",
        "CpuPercent",
        "IOMaximumIOps",
        "IOMaximumBandwidth",
        "Mounts",
        "MaskedPaths",
        "ReadonlyPaths",
        "Init",
    ]
)


def _bind_from_string(spec: str) -> Mount:
    """`src:dst[:opts]` from HostConfig.Binds; a non-absolute source is a named volume."""
    parts = spec.split(":")
    if len(parts) < 2 or len(parts) > 3 or not parts[0] or not parts[1]:
        raise BodyError(f"HostConfig.Binds entry {spec!r} is not src:dst[:opts]")
    src, dst = parts[0], parts[1]
    opts = parts[2].split(",") if len(parts) == 3 else []
    propagation = next((o for o in opts if o in PROPAGATIONS), "")
    kind = "bind" if src.startswith("/") else "volume"
    return Mount(kind, src, dst, read_only="ro" in opts, propagation=propagation)


def driver_bind_source(options: Mapping[str, Any]) -> str | None:
    """A `local` volume with `o=bind` (or rbind) and `device=/path` is a bind mount in disguise."""
    o = obj(options, "DriverOpts")
    flags = text(o.field("o"), "o").split(",")
    if "bind" in flags or "rbind" in flags:
        return text(o.field("device"), "device") or "/"
    return None


def _mounts(hc: GoObject) -> list[Mount]:
    out: list[Mount] = []
    for i, raw in enumerate(arr(hc.field("Mounts"), "HostConfig.Mounts")):
        m = obj(raw, f"HostConfig.Mounts[{i}]")
        kind = text(m.field("Type"), "Mount.Type") or "volume"
        source = text(m.field("Source"), "Mount.Source")
        bind_opts = obj(m.field("BindOptions"), "BindOptions")
        vol_opts = obj(m.field("VolumeOptions"), "VolumeOptions")
        disguised = driver_bind_source(
            obj(obj(vol_opts.field("DriverConfig"), "DriverConfig").field("Options"), "Options")
        )
        if kind == "volume" and disguised is not None:
            kind, source = "bind", disguised
        out.append(
            Mount(
                kind,
                source,
                text(m.field("Target"), "Mount.Target"),
                read_only=boolean(m.field("ReadOnly"), "Mount.ReadOnly"),
                propagation=text(bind_opts.field("Propagation"), "Propagation"),
            )
        )
    out += tmpfs_mounts(hc.field("Tmpfs"), STRICT)
    return out


def _labels(value: Any, where: str) -> dict[str, str]:
    return STRICT.mapping(value, where)


def _fixed_addresses(cfg: GoObject) -> tuple[StaticAddress, ...]:
    """NetworkingConfig.EndpointsConfig.NAME.IPAMConfig: the addresses the request fixes. The
    request does not say what its networks hand out, so DW-C043 cannot judge them here."""
    where = "NetworkingConfig.EndpointsConfig"
    networking = obj(cfg.field("NetworkingConfig"), "NetworkingConfig")
    out = []
    for net, settings in obj(networking.field("EndpointsConfig"), where).items():
        ipam = obj(obj(settings, f"{where}.{net}").field("IPAMConfig"), f"{where}.{net}.IPAMConfig")
        for key in ("IPv4Address", "IPv6Address"):
            address = text(ipam.field(key), f"{where}.{net}.IPAMConfig.{key}")
            if address:
                out.append(StaticAddress(str(net), address))
    return tuple(out)


def container_from_create_body(body: Mapping[str, Any], name: str = "") -> ContainerSpec:
    """`POST /containers/create` body (Config with HostConfig inside) -> ContainerSpec."""
    cfg = obj(body, "body")
    hc = obj(cfg.field("HostConfig"), "HostConfig")
    binds = [_bind_from_string(text(b, "Binds")) for b in arr(hc.field("Binds"), "Binds")]
    return ContainerSpec(
        name=name,
        mounts=tuple(binds + _mounts(hc)),
        ports=port_bindings(hc.field("PortBindings"), STRICT),
        static_addresses=_fixed_addresses(cfg),
        origin="create",
        **config_fields(cfg, STRICT),
        **host_config_fields(hc, STRICT),
    )


def unmodelled_grants(body: Mapping[str, Any]) -> list[str]:
    """HostConfig fields the model does not know (a newer API than 1.41, or a typo the daemon
    would still honour): set ones cannot be judged, so the policy refuses them."""
    hc = obj(obj(body, "body").field("HostConfig"), "HostConfig")
    return [
        f"unknown HostConfig field {key}"
        for key, value in hc.items()
        if key.casefold() not in HOST_CONFIG_FIELDS and not is_zero(value)
    ]


def container_from_update_body(body: Mapping[str, Any]) -> ContainerSpec:
    """`POST /containers/{id}/update`: resources (with devices) and the restart policy."""
    b = obj(body, "body")
    return ContainerSpec(
        cgroup_parent=text(b.field("CgroupParent"), "CgroupParent"),
        devices=devices(b.field("Devices"), STRICT),
        device_cgroup_rules=tuple(strings(b.field("DeviceCgroupRules"), "DeviceCgroupRules")),
        ulimits=ulimits(b.field("Ulimits"), STRICT),
        restart=restart_policy(b.field("RestartPolicy"), STRICT),
        device_requests=device_requests(b.field("DeviceRequests"), STRICT),
        origin="update",
    )


def container_from_exec_body(body: Mapping[str, Any]) -> ContainerSpec:
    """`POST /containers/{id}/exec`: a process with its own privileged flag and user."""
    b = obj(body, "body")
    return ContainerSpec(
        privileged=boolean(b.field("Privileged"), "Privileged"),
        user=text(b.field("User"), "User"),
        env=tuple(strings(b.field("Env"), "Env")),
        command=tuple(strings(b.field("Cmd"), "Cmd")),
        origin="exec",
    )


def container_from_service_body(body: Mapping[str, Any]) -> ContainerSpec:
    """`POST /services/create` / update: TaskTemplate.ContainerSpec of a swarm service."""
    b = obj(body, "body")
    task = obj(b.field("TaskTemplate"), "TaskTemplate")
    cs = obj(task.field("ContainerSpec"), "ContainerSpec")
    priv = obj(cs.field("Privileges"), "Privileges")
    mounts = _mounts(GoObject(Mounts=cs.field("Mounts")))
    ports: list[PortBinding] = []
    for raw in arr(obj(b.field("EndpointSpec"), "EndpointSpec").field("Ports"), "Ports"):
        p = obj(raw, "Port")
        ports.append(
            PortBinding(
                integer(p.field("TargetPort"), "TargetPort"),
                text(p.field("Protocol"), "Protocol") or "tcp",
                "",
                integer(p.field("PublishedPort"), "PublishedPort"),
            )
        )
    sec: list[str] = []
    seccomp = obj(priv.field("Seccomp"), "Seccomp")
    if text(seccomp.field("Mode"), "Seccomp.Mode") == "unconfined":
        sec.append("seccomp=unconfined")
    apparmor = obj(priv.field("AppArmor"), "AppArmor")
    if text(apparmor.field("Mode"), "AppArmor.Mode") == "disabled":
        sec.append("apparmor=unconfined")
    if boolean(priv.field("NoNewPrivileges"), "NoNewPrivileges"):
        sec.append("no-new-privileges:true")
    return ContainerSpec(
        name=text(b.field("Name"), "Name"),
        image=text(cs.field("Image"), "Image"),
        cap_add=tuple(
            normalise_capability(c) for c in strings(cs.field("CapabilityAdd"), "CapabilityAdd")
        ),
        cap_drop=tuple(
            normalise_capability(c) for c in strings(cs.field("CapabilityDrop"), "CapabilityDrop")
        ),
        user=text(cs.field("User"), "User"),
        mounts=tuple(mounts),
        read_only_rootfs=boolean(cs.field("ReadOnly"), "ReadOnly"),
        security=SecurityOptions.parse(sec),
        sysctls=_labels(cs.field("Sysctls"), "Sysctls"),
        env=tuple(strings(cs.field("Env"), "Env")),
        labels=_labels(cs.field("Labels"), "Labels"),
        ports=tuple(ports),
        origin="service",
    )
