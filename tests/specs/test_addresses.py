"""Fixed addresses and the range the engine hands out, read the same from every source, and
DW-C043 judging them (the lab's real-daemon cases are in tests/audit/test_lab_containers.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockward import specs
from dockward.lint.compose import load_compose
from dockward.model.container import AddressPool, StaticAddress
from dockward.specs.addresses import handed_out, pools_of
from tests.conftest import run_cli

COMPOSE = """\
services:
  proxy:
    image: x
    networks:
      internal:
        ipv4_address: 172.31.99.2
      outer: {ipv4_address: 10.9.0.5}
      ranged: {ipv4_address: 172.31.98.2}
  other:
    image: x
    networks: [internal]
networks:
  internal:
    ipam:
      config: [{subnet: 172.31.99.0/24}]
  ranged:
    ipam:
      config: [{subnet: 172.31.98.0/24, ip_range: 172.31.98.128/25}]
  outer:
    external: true
"""


def test_the_pool_holding_the_address_gives_its_range_else_its_subnet() -> None:
    pools = (AddressPool("fd00::/64"), AddressPool("10.0.0.0/24", "10.0.0.128/25"))
    assert handed_out("10.0.0.2", pools) == "10.0.0.128/25"
    assert handed_out("fd00::2", pools) == "fd00::/64"
    assert handed_out("10.0.1.2", pools) == ""  # no pool holds it
    assert handed_out("not-an-ip", pools) == ""
    engine = {"Driver": "default", "Config": [{"Subnet": "10.0.0.0/24", "IPRange": "10.0.0.0/25"}]}
    assert pools_of(engine) == (AddressPool("10.0.0.0/24", "10.0.0.0/25"),)
    assert pools_of({"config": [{"subnet": "10.1.0.0/16"}, {"gateway": "x"}]}) == (
        AddressPool("10.1.0.0/16"),
    )
    assert pools_of(None) == ()


def test_compose_reads_fixed_addresses_with_their_networks_ranges(tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(COMPOSE)
    proxy, other = load_compose([str(f)]).services
    assert proxy.spec.static_addresses == (
        StaticAddress("internal", "172.31.99.2", "172.31.99.0/24"),
        StaticAddress("outer", "10.9.0.5", None),  # external: its pools are not known here
        StaticAddress("ranged", "172.31.98.2", "172.31.98.128/25"),
    )
    assert other.spec.static_addresses == ()  # the list form fixes nothing


def test_inspect_and_run_lines_read_fixed_addresses() -> None:
    data = {
        "NetworkSettings": {
            "Networks": {
                "app": {"IPAMConfig": {"IPv4Address": "10.0.0.5", "IPv6Address": "fd00::5"}},
                "other": {"IPAMConfig": None},
            }
        }
    }
    pools = {"app": (AddressPool("10.0.0.0/24", "10.0.0.128/25"), AddressPool("fd00::/64"))}
    assert specs.from_inspect(data, pools).static_addresses == (
        StaticAddress("app", "10.0.0.5", "10.0.0.128/25"),
        StaticAddress("app", "fd00::5", "fd00::/64"),
    )
    assert specs.from_inspect(data).static_addresses[0].handed_out is None
    run = specs.from_run_argv(["--network", "app", "--ip", "10.0.0.5", "busybox"])
    assert run.static_addresses == (StaticAddress("app", "10.0.0.5"),)


def test_a_create_request_fixes_an_address_whose_range_it_cannot_tell() -> None:
    """The proxy reads the request's fixed address (it passed as "no fixed address" before),
    and DW-C043 skips it: the request does not carry its network's ranges."""
    from dockward.rules import Context, run_check
    from dockward.rules.container import rules
    from dockward.specs.bodies import container_from_create_body
    from dockward.specs.gojson import BodyError

    ipam = {"IPAMConfig": {"IPv4Address": "172.30.99.2"}}
    body = {"Image": "x", "NetworkingConfig": {"EndpointsConfig": {"internal": ipam}}}
    spec = container_from_create_body(body)
    assert spec.static_addresses == (StaticAddress("internal", "172.30.99.2", None),)
    [result] = run_check(rules.get("DW-C043"), spec, Context(), target="t")
    assert result.status.value == "skip" and "internal" in result.message
    with pytest.raises(BodyError):
        container_from_create_body({"NetworkingConfig": {"EndpointsConfig": {"a": "x"}}})


def test_lint_points_at_the_services_networks_and_passes_a_range_that_leaves_it_out(
    tmp_path: Path,
) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(COMPOSE)
    res = run_cli("lint", str(f), "--show-passed", "-f", "json", "--fail-on", "never")
    assert res.code == 0, res.err
    got = [
        (r["target"].split()[-1], r["status"], r.get("location", {}).get("line"))
        for r in json.loads(res.out)["results"]
        if r["rule_id"] == "DW-C043"
    ]
    assert got == [("proxy", "fail", 5), ("other", "pass", 11)]  # at the network's own line
    fixed = COMPOSE.replace(
        "{subnet: 172.31.99.0/24}", "{subnet: 172.31.99.0/24, ip_range: 172.31.99.128/25}"
    )
    f.write_text(fixed)
    res = run_cli("lint", str(f), "--show-passed", "-f", "json", "--fail-on", "never")
    statuses = [r["status"] for r in json.loads(res.out)["results"] if r["rule_id"] == "DW-C043"]
    assert statuses == ["skip", "pass"]  # the external network's range is not known
