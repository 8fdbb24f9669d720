"""Rules that read a dockward.toml setting declare it (`RuleSet.rule(settings=...)`): the audit
passes what the config holds, and knows no rule by its id."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dockward.audit import audit_snapshot
from dockward.catalog import all_rules
from dockward.config import Config
from dockward.model.finding import Result
from dockward.rules.host import example_snapshot
from dockward.rules.host import rules as host_rules

AUDIT = Path(__file__).resolve().parents[2] / "src" / "dockward" / "audit"


def test_every_declared_setting_is_a_config_field() -> None:
    fields = {f.name for f in dataclasses.fields(Config)}
    declared = {s for e in all_rules() for s in e.settings}
    assert declared, "the test must see a rule declaring a setting"
    assert declared <= fields, sorted(declared - fields)


def _docker_group(members: tuple[str, ...], config: Config | None) -> Result:
    entries = [host_rules.get("DW-H002")]
    [result] = audit_snapshot(example_snapshot(docker_group=members), entries, config)
    return result


@pytest.mark.parametrize(
    ("members", "allow", "status", "message"),
    [
        (("mallory",), (), "fail", "docker group members: mallory"),
        (("alice", "mallory"), ("alice",), "fail", "docker group members not approved: mallory"),
        (("alice",), ("alice",), "pass", "all docker group members are approved"),
        ((), (), "pass", "docker group is empty"),
    ],
)
def test_the_docker_group_allowlist_comes_from_the_config(
    members: tuple[str, ...], allow: tuple[str, ...], status: str, message: str
) -> None:
    result = _docker_group(members, Config(docker_group_allow=allow))
    assert (result.status.value, result.message) == (status, message)
    assert _docker_group(members, None).status.value == ("fail" if members else "pass")


def test_the_audit_names_no_rule() -> None:
    # A rule id in the audit's code is a rule's knowledge kept beside the registry.
    found = [p.name for p in AUDIT.glob("*.py") if '"DW-' in p.read_text()]
    assert not found, found
