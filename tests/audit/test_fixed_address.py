"""DW-C043's premise on the real engine: while a container with a fixed address is down, the
engine hands that address to the next container that starts, and the owner's start fails with
"Address already in use" (what kept the deployment's proxy down after kill -9). An `ip_range`
that leaves the address out stops it; the audit fails the first network and passes the second."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from tests.conftest import run_cli

NET = f"dwfixed-{os.getpid()}"
SUBNET = "10.251.7.0/24"


def _cleanup(api: Any) -> None:
    for c in api.containers(all=True, filters={"label": "dockward.test=dwfixed"}):
        api.remove_container(c["Id"], force=True)
    for n in api.networks(filters={"label": "dockward.test=dwfixed"}):
        with contextlib.suppress(docker.errors.APIError):
            api.remove_network(n["Id"])


@pytest.fixture
def api(docker_api: Any) -> Iterator[Any]:
    _cleanup(docker_api)  # an earlier run's
    yield docker_api
    _cleanup(docker_api)


def _run(api: Any, image: str, name: str, ip: str = "") -> str:
    endpoint = api.create_endpoint_config(ipv4_address=ip) if ip else None
    cid = api.create_container(
        image,
        ["sleep", "600"],
        name=name,
        labels={"dockward.test": "dwfixed"},
        host_config=api.create_host_config(network_mode=NET),
        networking_config=api.create_networking_config({NET: endpoint} if endpoint else {NET: {}}),
    )["Id"]
    api.start(cid)
    return str(cid)


@pytest.mark.parametrize("ip_range", ["", "10.251.7.128/25"])
def test_a_down_owner_loses_its_fixed_address_unless_the_range_leaves_it_out(
    api: Any, lab_image: str, ip_range: str
) -> None:
    pool = docker.types.IPAMPool(subnet=SUBNET, iprange=ip_range or None)
    api.create_network(NET, ipam=docker.types.IPAMConfig(pool_configs=[pool]),
                       labels={"dockward.test": "dwfixed"})  # fmt: skip
    owner = _run(api, lab_image, f"{NET}-owner", "10.251.7.2")
    res = run_cli("audit", "--check", "DW-C043", "-f", "json", "--fail-on", "never")
    assert res.code == 0, res.err
    got = {r["target"]: r["status"] for r in json.loads(res.out)["results"]}
    assert got[f"container {NET}-owner"] == ("pass" if ip_range else "fail")
    api.stop(owner, timeout=0)
    other = _run(api, lab_image, f"{NET}-other")
    taken = api.inspect_container(other)["NetworkSettings"]["Networks"][NET]["IPAddress"]
    if ip_range:
        assert taken.startswith("10.251.7.") and int(taken.rsplit(".", 1)[1]) >= 128
        api.start(owner)  # its address is still free
    else:
        assert taken == "10.251.7.2"  # the lowest free address: the owner's
        with pytest.raises(docker.errors.APIError, match="Address already in use"):
            api.start(owner)
