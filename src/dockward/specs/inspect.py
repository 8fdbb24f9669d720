"""Engine inspect documents (`GET /containers/{id}/json`) -> ContainerSpec, read leniently."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockward.model.container import AddressPool, ContainerSpec, Mount, StaticAddress
from dockward.specs.addresses import static_address
from dockward.specs.gojson import GoObject
from dockward.specs.hostconfig import (
    LENIENT,
    Fields,
    config_fields,
    host_config_fields,
    port_bindings,
    tmpfs_mounts,
)

r = LENIENT


def _mounts(data: Mapping[str, Any]) -> tuple[Mount, ...]:
    # The resolved mounts: named volumes with their host path, binds with their options.
    return tuple(
        Mount(
            type=r.text(m.field("Type"), "") or "bind",
            source=r.text(m.field("Source") or m.field("Name"), ""),
            target=r.text(m.field("Destination"), ""),
            read_only=not bool(m.get("RW", True)),
            propagation=r.text(m.field("Propagation"), ""),
        )
        for m in (r.obj(x, "") for x in r.arr(data.get("Mounts"), ""))
    )


def _static_addresses(
    net: GoObject | Fields, pools: Mapping[str, tuple[AddressPool, ...]] | None
) -> tuple[StaticAddress, ...]:
    out = []
    for name, endpoint in (r.obj(net.get("Networks"), "") or {}).items():
        ipam = r.obj(r.obj(endpoint, "").get("IPAMConfig"), "")
        for key in ("IPv4Address", "IPv6Address"):
            if ipam.get(key):
                out.append(static_address(str(name), str(ipam.get(key)), pools))
    return tuple(out)


def from_inspect(
    data: Mapping[str, Any], networks: Mapping[str, tuple[AddressPool, ...]] | None = None
) -> ContainerSpec:
    """From `GET /containers/{id}/json` (a created, running or stopped container). `networks`:
    the pools of the host's networks by name (the ranges beside fixed addresses)."""
    hc = r.obj(data.get("HostConfig"), "")
    cfg = r.obj(data.get("Config"), "")
    state = r.obj(data.get("State"), "")
    net = r.obj(data.get("NetworkSettings"), "")
    health = r.obj(state.get("Health"), "")
    # Declared bindings work for created containers; the live ones add what -P chose.
    ports = port_bindings(hc.get("PortBindings") or net.get("Ports"), r)
    return ContainerSpec(
        name=r.text(data.get("Name"), "").lstrip("/"),
        id=r.text(data.get("Id"), ""),
        image_id=r.text(data.get("Image"), ""),
        state=r.text(state.get("Status"), ""),
        mounts=_mounts(data) + tmpfs_mounts(hc.get("Tmpfs"), r),
        ports=ports,
        static_addresses=_static_addresses(net, networks),
        apparmor_profile=(
            str(data["AppArmorProfile"]) if data.get("AppArmorProfile") is not None else None
        ),
        health_status=str(health.get("Status")) if health.get("Status") else None,
        origin="inspect",
        **config_fields(cfg, r),
        **host_config_fields(hc, r),
    )
