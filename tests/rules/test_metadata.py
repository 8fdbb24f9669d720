"""Walk every rule's metadata; every rule id the code can emit is registered."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from dockward.catalog import all_rules, default_rules
from dockward.model.finding import Severity
from dockward.monitor.loader import RuleBook
from dockward.policy.model import DEFAULT_DENY, RULE_ALIASES, parse_policy
from dockward.rules.groups import GROUPS, falco_list_name, members
from dockward.rules.registry import RuleEntry

SRC = Path(__file__).resolve().parents[2] / "src" / "dockward"
DOCS = Path(__file__).resolve().parents[2] / "docs"
ENTRIES = list(all_rules())
RULES = [e.rule for e in ENTRIES]
RULE_ID = re.compile(r"DW-[A-Z]\d{3}")
EMITTED_KINDS = {"policy", "update", "lint", "vulnerability", "fleet"}


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.rule.id for e in ENTRIES])
def test_every_rule_has_complete_metadata(entry: RuleEntry) -> None:
    r = entry.rule
    assert RULE_ID.fullmatch(r.id), r.id
    assert r.title.strip() and r.remediation.strip() and r.doc.strip()
    assert isinstance(r.severity, Severity)
    assert r.kind
    assert set(r.groups) <= set(GROUPS), f"{r.id}: undeclared group in {r.groups}"
    assert len(set(r.groups)) == len(r.groups)
    assert all(re.fullmatch(r"[a-z][a-z0-9-]+", a) for a in r.aliases), r.aliases
    if r.cis:
        assert re.fullmatch(r"\d+(\.\d+)+", r.cis) and r.cis_version
    # A rule without a check here is one whose results its command builds.
    assert (entry.check is None) == (r.kind in EMITTED_KINDS)
    if r.kind == "container":
        assert r.aliases, f"{r.id}: a policy names every container rule by a word"


def test_aliases_and_group_words_are_unique() -> None:
    words = [a for r in RULES for a in r.aliases]
    words += [w for g in GROUPS.values() for w in (g.name, *g.aliases)]
    assert len(words) == len(set(words)), sorted(w for w in words if words.count(w) > 1)
    assert not {w.upper() for w in words} & {r.id for r in RULES}


def test_every_group_has_members_and_a_doc() -> None:
    for g in GROUPS.values():
        assert g.doc and members(RULES, g.name), g.name
    with pytest.raises(KeyError):
        members(RULES, "no-such-group")


def test_one_host_namespace_group_for_policy_and_monitor() -> None:
    group = members(RULES, "host-namespace")
    assert group == ("DW-C011", "DW-C017", "DW-C018", "DW-C022", "DW-C028", "DW-C033")
    assert RULE_ALIASES["host-namespaces"] == RULE_ALIASES["host-namespace"] == group
    monitor = RuleBook().lists[falco_list_name("host-namespace")]
    # The monitor alerts (CRITICAL) on the group's rules of medium severity or worse.
    by_id = {r.id: r for r in RULES}
    assert monitor == tuple(i for i in group if by_id[i].severity >= Severity.MEDIUM)
    assert "DW-C033" not in monitor and "DW-C011" in monitor
    assert RuleBook().lists["sensitive_mount_rules"] == ("DW-C007", "DW-C008", "DW-C019")


def test_policy_words_come_from_the_rules() -> None:
    for r in RULES:
        for a in r.aliases:
            assert RULE_ALIASES[a] == (r.id,)
    assert members(RULES, "default-deny") == DEFAULT_DENY
    p = parse_policy({"admission": {"deny": ["root-exec", "host-namespaces", "DW-C009"]}})
    assert p.admission.deny == ("DW-C036", *members(RULES, "host-namespace"), "DW-C009")
    assert p.admission.exec_deny == ("DW-C001",)


def test_policy_docs_name_every_alias() -> None:
    text = (DOCS / "policy.md").read_text()
    missing = [a for r in RULES for a in r.aliases if f"`{a}`" not in text]
    assert not missing


def _literal_ids() -> dict[str, list[str]]:
    """Every string constant in the package (and its data files) that is a rule id."""
    found: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and RULE_ID.fullmatch(node.value)
            ):
                found.setdefault(node.value, []).append(f"{path.name}:{node.lineno}")
    for path in sorted(SRC.rglob("*.yaml")):
        for m in RULE_ID.finditer(path.read_text()):
            found.setdefault(m.group(0), []).append(path.name)
    return found


def test_every_rule_id_in_the_code_is_registered() -> None:
    found = _literal_ids()
    # The walk sees ids built in every place a command emits them from.
    assert {"DW-P011", "DW-U001", "DW-L001", "DW-V001", "DW-C001", "DW-D002"} <= set(found)
    registered = {r.id for r in RULES}
    unregistered = {i: where for i, where in found.items() if i not in registered}
    assert not unregistered


def test_rules_list_shows_every_emitted_rule_but_audit_runs_only_checks() -> None:
    ids = {r.id for r in RULES}
    assert {"DW-P001", "DW-U005", "DW-L001", "DW-V001"} <= ids
    assert all(e.check is not None for e in default_rules())
    assert not {"DW-P001", "DW-V001"} & {e.rule.id for e in default_rules()}
