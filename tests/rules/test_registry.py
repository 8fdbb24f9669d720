"""Walk the registry: every rule is documented and has a failing and a passing example."""

from __future__ import annotations

import pytest

from dockward.catalog import default_rules
from dockward.model import Severity, Status
from dockward.rules import Context, RuleSet, run_check
from dockward.rules.registry import DuplicateRuleError, Pass, RuleEntry

ENTRIES = list(default_rules())


def _run(entry: RuleEntry, subject: object) -> set[Status]:
    args = (subject, Context()) if entry.rule.kind in ("container", "image") else (subject,)
    return {r.status for r in run_check(entry, *args, target="t")}


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.rule.id for e in ENTRIES])
def test_rule_is_documented(entry: RuleEntry) -> None:
    r = entry.rule
    assert r.doc.strip(), "docstring is the documentation"
    assert r.remediation.strip()
    assert isinstance(r.severity, Severity)
    assert r.title
    assert entry.examples is not None


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.rule.id for e in ENTRIES])
def test_rule_fails_and_passes_its_examples(entry: RuleEntry) -> None:
    assert entry.examples is not None
    bad, good = entry.examples()
    bad_status = _run(entry, bad)
    expected = (
        {Status.INFO}
        if entry.rule.severity is Severity.INFO and not entry.rule.scored
        else {Status.FAIL}
    )
    assert bad_status & (expected | {Status.FAIL}), f"failing example gave {bad_status}"
    assert Status.PASS not in bad_status
    assert _run(entry, good) == {Status.PASS}


def test_ids_are_unique_and_stable_shape() -> None:
    ids = [e.rule.id for e in ENTRIES]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("DW-") for i in ids)


def test_duplicate_id_is_an_error() -> None:
    rs = RuleSet("t")
    deco = rs.rule("DW-X1", "x", severity=Severity.LOW, kind="container", remediation="r")
    deco(lambda spec, ctx: Pass())
    with pytest.raises(DuplicateRuleError):
        deco(lambda spec, ctx: Pass())


def test_crashing_check_is_an_error_result_not_a_crash() -> None:
    rs = RuleSet("t")

    @rs.rule("DW-X2", "x", severity=Severity.LOW, kind="container", remediation="r")
    def broken(spec: object, ctx: object) -> Pass:
        """Broken on purpose."""
        raise RuntimeError("boom")

    [result] = run_check(rs.get("DW-X2"), None, Context(), target="t")
    assert result.status is Status.ERROR and "boom" in result.message


def test_every_cis_section_1_to_7_is_covered() -> None:
    sections = {e.rule.cis.split(".")[0] for e in ENTRIES if e.rule.cis}
    assert {"1", "2", "3", "4", "5", "6", "7"} <= sections
