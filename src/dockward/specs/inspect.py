"""Engine inspect documents (`GET /containers/{id}/json`) -> ContainerSpec, read leniently."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockward.model.container import ContainerSpec, Mount
from dockward.specs.hostconfig import (
    LENIENT,
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


def from_inspect(data: Mapping[str, Any]) -> ContainerSpec:
    """From `GET /containers/{id}/json` (a created, running or stopped container)."""
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
        apparmor_profile=(
            str(data["AppArmorProfile"]) if data.get("AppArmorProfile") is not None else None
        ),
        health_status=str(health.get("Status")) if health.get("Status") else None,
        origin="inspect",
        **config_fields(cfg, r),
        **host_config_fields(hc, r),
    )
