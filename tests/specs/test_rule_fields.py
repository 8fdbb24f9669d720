"""Where a container rule points is declared on the rule (`fields`), and it is true: the rule's
own failing example differs from its passing one in a declared field."""

from __future__ import annotations

import dataclasses

import pytest

from dockward.model.container import ContainerSpec
from dockward.rules.container import rules
from dockward.rules.registry import RuleEntry
from dockward.specs.tables import compose_keys_for, run_flags_for

SPEC_FIELDS = [f.name for f in dataclasses.fields(ContainerSpec)]
ENTRIES = list(rules)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.rule.id for e in ENTRIES])
def test_each_container_rule_declares_the_fields_it_judges(entry: RuleEntry) -> None:
    fields = entry.rule.fields
    assert fields, f"{entry.rule.id} declares no fields"
    assert set(fields) <= set(SPEC_FIELDS), entry.rule.id
    assert entry.examples is not None, entry.rule.id
    bad, good = entry.examples()
    changed = {f for f in SPEC_FIELDS if getattr(bad, f) != getattr(good, f)}
    assert changed & set(fields), (entry.rule.id, sorted(changed))


def test_compose_keys_and_run_flags_come_from_the_fields() -> None:
    rule = rules.get
    assert compose_keys_for(rule("DW-C001").rule.fields) == ("privileged",)
    assert compose_keys_for(rule("DW-C012").rule.fields) == ("mem_limit", "deploy")
    assert compose_keys_for(rule("DW-C030").rule.fields)[:2] == ("environment", "env_file")
    keys = compose_keys_for(rule("DW-C008").rule.fields)
    assert keys[0] == "volumes" and "use_api_socket" in keys and "secrets" in keys
    assert run_flags_for(rule("DW-C008").rule.fields)[0] == "volume"
    assert "use-api-socket" in run_flags_for(rule("DW-C008").rule.fields)
    assert compose_keys_for(rule("DW-C035").rule.fields) == ()  # runtime only: the service
