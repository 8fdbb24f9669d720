"""HostSnapshot: everything `audit` needs, collected once, then frozen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dockward.model.container import AddressPool, ContainerSpec
from dockward.model.daemon import DaemonSpec
from dockward.model.image import ImageSpec


@dataclass(frozen=True, slots=True)
class Unavailable:
    """Data that could not be collected, and why. Checks turn it into a skip."""

    reason: str


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: str
    exists: bool
    uid: int = -1
    gid: int = -1
    mode: int = 0  # permission bits only (st_mode & 0o7777)
    owner: str = ""
    group: str = ""
    is_dir: bool = False
    is_socket: bool = False


@dataclass(frozen=True, slots=True)
class NetworkInfo:
    name: str
    id: str
    driver: str
    options: Mapping[str, str] = field(default_factory=dict)
    containers: tuple[str, ...] = ()
    scope: str = "local"
    pools: tuple[AddressPool, ...] = ()  # IPAM.Config


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    host: str  # what the user calls this host (socket URL or name)
    local: bool
    daemon: DaemonSpec
    socket_path: str = ""
    files: Mapping[str, FileInfo | Unavailable] = field(default_factory=dict)
    globbed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    audit_rules: tuple[str, ...] | Unavailable = Unavailable("not collected")
    containers: tuple[ContainerSpec, ...] = ()
    images: tuple[ImageSpec, ...] = ()
    networks: tuple[NetworkInfo, ...] = ()
    swarm: Mapping[str, Any] = field(default_factory=dict)
    swarm_nodes: tuple[Mapping[str, Any], ...] | Unavailable = Unavailable("not a swarm manager")
    docker_group: tuple[str, ...] | Unavailable = Unavailable("not collected")
    data_root_is_mount: bool | Unavailable = Unavailable("not collected")
    content_trust: Mapping[str, str] | Unavailable = Unavailable("not collected")
    listening: tuple[str, ...] | Unavailable = Unavailable("not collected")
    unit_paths: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def file(self, path: str) -> FileInfo | Unavailable:
        if not self.local:
            return Unavailable("not a local host")
        return self.files.get(path, Unavailable(f"{path} not collected"))
