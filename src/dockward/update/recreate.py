"""Recreate a container from its own inspect: the same configuration on a new image.

The create body is the engine's own inspect output at the negotiated API version, so the
round trip is lossless on that engine; only values the old image supplied are left for the
new image to supply (otherwise an update would pin yesterday's CMD, ENV or HEALTHCHECK).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockward import specs
from dockward.model.container import ContainerSpec

# Config fields the container inherits from its image unless the user overrode them.
INHERITED_SCALARS = (
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "Healthcheck",
    "StopSignal",
    "Shell",
    "OnBuild",
)
INHERITED_MAPPINGS = ("Labels", "ExposedPorts", "Volumes")
# Inspect-only or daemon-owned fields the create endpoint must not be handed back.
NETWORK_RUNTIME_KEYS = (
    "NetworkID",
    "EndpointID",
    "Gateway",
    "IPAddress",
    "IPPrefixLen",
    "IPv6Gateway",
    "GlobalIPv6Address",
    "GlobalIPv6PrefixLen",
    "MacAddress",
)
SPECIAL_NETWORK_MODES = ("host", "none")


@dataclass(frozen=True, slots=True)
class EndpointPlan:
    network: str
    aliases: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    ipv4_address: str = ""
    ipv6_address: str = ""
    link_local_ips: tuple[str, ...] = ()
    driver_opts: Mapping[str, str] | None = None

    def endpoint_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.aliases:
            out["Aliases"] = list(self.aliases)
        if self.links:
            out["Links"] = list(self.links)
        ipam: dict[str, Any] = {}
        if self.ipv4_address:
            ipam["IPv4Address"] = self.ipv4_address
        if self.ipv6_address:
            ipam["IPv6Address"] = self.ipv6_address
        if self.link_local_ips:
            ipam["LinkLocalIPs"] = list(self.link_local_ips)
        if ipam:
            out["IPAMConfig"] = ipam
        if self.driver_opts:
            out["DriverOpts"] = dict(self.driver_opts)
        return out


@dataclass(frozen=True, slots=True)
class CreatePlan:
    """Everything needed to create the replacement: body for the first network, then the rest."""

    name: str
    image: str
    body: dict[str, Any]  # Config fields plus HostConfig and NetworkingConfig
    primary: EndpointPlan | None
    extra_networks: tuple[EndpointPlan, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image": self.image,
            "body": self.body,
            "primary": _endpoint_json(self.primary) if self.primary else None,
            "extra_networks": [_endpoint_json(e) for e in self.extra_networks],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CreatePlan:
        primary = data.get("primary")
        return cls(
            str(data["name"]),
            str(data["image"]),
            dict(data["body"]),
            _endpoint_from(primary) if isinstance(primary, dict) else None,
            tuple(_endpoint_from(e) for e in data.get("extra_networks") or ()),
        )


def _endpoint_json(e: EndpointPlan) -> dict[str, Any]:
    return {
        "network": e.network,
        "aliases": list(e.aliases),
        "links": list(e.links),
        "ipv4_address": e.ipv4_address,
        "ipv6_address": e.ipv6_address,
        "link_local_ips": list(e.link_local_ips),
        "driver_opts": dict(e.driver_opts or {}),
    }


def _endpoint_from(d: Mapping[str, Any]) -> EndpointPlan:
    return EndpointPlan(
        str(d["network"]),
        tuple(d.get("aliases") or ()),
        tuple(d.get("links") or ()),
        str(d.get("ipv4_address") or ""),
        str(d.get("ipv6_address") or ""),
        tuple(d.get("link_local_ips") or ()),
        dict(d.get("driver_opts") or {}) or None,
    )


def default_cgroupns(info: Mapping[str, Any]) -> str:
    """The cgroup namespace mode the engine gives a container that asks for none: inspect shows
    it resolved, so a copy would turn the engine's default into an explicit request."""
    return "host" if str(info.get("CgroupVersion") or "1") == "1" else "private"


def plan_recreate(
    old: Mapping[str, Any],
    old_image: Mapping[str, Any],
    image: str | None = None,
    cgroupns_default: str = "",
) -> CreatePlan:
    """The create call that reproduces `old` on the image now tagged `image` (default: same ref).
    Values the engine derived (hostname from the id, its default cgroup namespace) are left to
    it, so the new container is created as the old one was, and an admission policy judges the
    same request (an explicit `CgroupnsMode: host` fails DW-C033, the default does not)."""
    cid = str(old.get("Id") or "")
    short = cid[:12]
    name = str(old.get("Name") or "").lstrip("/")
    config = copy.deepcopy(dict(old.get("Config") or {}))
    image_config = dict(old_image.get("Config") or {})
    target_image = image or str(config.get("Image") or "")
    config["Image"] = target_image
    if config.get("Hostname") == short:
        config.pop("Hostname")  # the daemon's default, derived from the old id
    _drop_inherited(config, image_config)
    host_config = copy.deepcopy(dict(old.get("HostConfig") or {}))
    if cgroupns_default and host_config.get("CgroupnsMode") == cgroupns_default:
        host_config.pop("CgroupnsMode")
    host_config["Links"] = _create_links(host_config.get("Links"), name) or None
    _keep_anonymous_volumes(old, host_config)

    mode = str(host_config.get("NetworkMode") or "default")
    networks = dict((old.get("NetworkSettings") or {}).get("Networks") or {})
    endpoints: list[EndpointPlan] = []
    if mode not in SPECIAL_NETWORK_MODES and not mode.startswith("container:"):
        for net_name, ep in networks.items():
            endpoints.append(_endpoint_plan(str(net_name), dict(ep or {}), short, name))
    primary_name = "bridge" if mode == "default" else mode
    primary = next((e for e in endpoints if e.network == primary_name), None)
    if primary is None and endpoints:
        primary = endpoints[0]
    extra = tuple(e for e in endpoints if e is not primary)
    body = dict(config)
    body["HostConfig"] = host_config
    if primary is not None and primary.endpoint_config():
        body["NetworkingConfig"] = {"EndpointsConfig": {primary.network: primary.endpoint_config()}}
    return CreatePlan(name, target_image, body, primary, extra)


def _drop_inherited(config: dict[str, Any], image_config: Mapping[str, Any]) -> None:
    for key in INHERITED_SCALARS:
        if key in config and config[key] == image_config.get(key) and config[key] is not None:
            config[key] = None
    env = config.get("Env")
    if isinstance(env, list):
        from_image = set(image_config.get("Env") or ())
        config["Env"] = [e for e in env if e not in from_image] or None
    for key in INHERITED_MAPPINGS:
        value = config.get(key)
        if isinstance(value, dict):
            base = image_config.get(key) or {}
            kept = {k: v for k, v in value.items() if k not in base or base[k] != v}
            config[key] = kept or None


def _create_links(links: Any, name: str) -> list[str]:
    """Inspect shows links as `/target:/name/alias`; create takes `target:alias`."""
    out: list[str] = []
    for link in links or ():
        target, _, alias = str(link).partition(":")
        out.append(f"{target.lstrip('/')}:{alias.rsplit('/', 1)[-1]}")
    return out


def _keep_anonymous_volumes(old: Mapping[str, Any], host_config: dict[str, Any]) -> None:
    """Anonymous volumes hold data too: hand them to the new container instead of fresh ones."""
    covered = {str(b).split(":")[1] for b in host_config.get("Binds") or () if ":" in str(b)}
    covered |= {
        str(m.get("Target")) for m in host_config.get("Mounts") or () if isinstance(m, dict)
    }
    binds = list(host_config.get("Binds") or ())
    for mount in old.get("Mounts") or ():
        if not isinstance(mount, dict) or mount.get("Type") != "volume":
            continue
        dest, vol = str(mount.get("Destination") or ""), str(mount.get("Name") or "")
        if dest and vol and dest not in covered:
            binds.append(f"{vol}:{dest}" + ("" if mount.get("RW", True) else ":ro"))
    if binds:
        host_config["Binds"] = binds


def _endpoint_plan(network: str, ep: dict[str, Any], short_id: str, name: str) -> EndpointPlan:
    ipam = ep.get("IPAMConfig") or {}
    aliases = tuple(a for a in ep.get("Aliases") or () if a not in (short_id,))
    return EndpointPlan(
        network=network,
        aliases=aliases,
        links=tuple(_create_links(ep.get("Links"), name)),
        ipv4_address=str(ipam.get("IPv4Address") or ""),
        ipv6_address=str(ipam.get("IPv6Address") or ""),
        link_local_ips=tuple(ipam.get("LinkLocalIPs") or ()),
        driver_opts=dict(ep.get("DriverOpts") or {}) or None,
    )


def expected_spec(
    plan: CreatePlan, old: Mapping[str, Any], new_image: Mapping[str, Any]
) -> ContainerSpec:
    """The ContainerSpec the replacement will have, so the container rules can judge it first."""
    image_config = dict(new_image.get("Config") or {})
    config = dict(plan.body)
    host_config = config.pop("HostConfig", {})
    config.pop("NetworkingConfig", None)
    for key in INHERITED_SCALARS:
        if config.get(key) is None and image_config.get(key) is not None:
            config[key] = image_config[key]
    config["Env"] = list(image_config.get("Env") or ()) + list(config.get("Env") or ())
    for key in INHERITED_MAPPINGS:
        config[key] = {**(image_config.get(key) or {}), **(config.get(key) or {})}
    synthetic = {
        "Id": "",
        "Name": "/" + plan.name,
        "Image": str(new_image.get("Id") or ""),
        "Config": config,
        "HostConfig": host_config,
        "Mounts": old.get("Mounts") or [],
        "State": {"Status": "running"},
        "AppArmorProfile": old.get("AppArmorProfile"),
    }
    return specs.from_inspect(synthetic)
