"""Fixed addresses on user-defined networks, and the range the engine hands out beside them.

The engine's IPAM (libnetwork's default driver) gives a container without a fixed address the
next free one of the network's `ip_range`, or of its whole subnet when the network has none. A
fixed address inside that range is free only while its container runs: when it stops (a crash,
a reboot, `kill -9`), a container that starts first may be handed it, and the owner's restart
then fails with "Address already in use" and is not retried (moby#26284, docker/compose#9161).
One reader per source builds `StaticAddress`es here, so the rule that judges them (DW-C043)
sees the same thing in a compose file and on a live host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from dockward.model.container import AddressPool, StaticAddress


def handed_out(address: str, pools: Iterable[AddressPool]) -> str:
    """The range the engine hands out addresses from in the pool whose subnet holds `address`:
    the pool's ip_range, else its subnet. "" when no pool holds it (or it is no address)."""
    for pool in pools:
        if in_range(address, pool.subnet):
            return pool.ip_range or pool.subnet
    return ""


def in_range(address: str, cidr: str) -> bool:
    """Is `address` inside `cidr` (False when either does not parse)?"""
    try:
        ip = ipaddress.ip_address(address.strip())
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False
    return ip.version == net.version and ip in net


def static_address(
    network: str, address: str, pools: Mapping[str, tuple[AddressPool, ...]] | None
) -> StaticAddress:
    """`address` fixed on `network`, with what the engine hands out there when the network's
    pools are known (`pools` None, or without the network: not known)."""
    if pools is None or network not in pools:
        return StaticAddress(network, address)
    return StaticAddress(network, address, handed_out(address, pools[network]))


def pools_of(ipam: Any) -> tuple[AddressPool, ...]:
    """The pools of a network's IPAM config: compose's `ipam: {config: [{subnet, ip_range}]}`
    or the engine's `IPAM: {Config: [{Subnet, IPRange}]}`. Entries without a subnet are left
    out (the engine picks one; a fixed address is refused there)."""
    if not isinstance(ipam, Mapping):
        return ()
    config = ipam.get("config", ipam.get("Config"))
    out = []
    for entry in config if isinstance(config, list) else ():
        if not isinstance(entry, Mapping):
            continue
        subnet = entry.get("subnet", entry.get("Subnet"))
        if subnet:
            out.append(
                AddressPool(str(subnet), str(entry.get("ip_range", entry.get("IPRange")) or ""))
            )
    return tuple(out)
