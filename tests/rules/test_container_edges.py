"""Container-rule edge cases beyond the registry examples."""

from __future__ import annotations

import pytest

from dockward.model import Status
from dockward.rules import Context, default_rules, run_check
from dockward.rules.container import hardened_example


def _status(rule_id: str, **changes: object) -> Status:
    entry = default_rules().get(rule_id)
    [result] = run_check(entry, hardened_example().with_changes(**changes), Context(), target="t")
    return result.status


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (("c *:* rwm",), Status.FAIL),
        (("a",), Status.FAIL),
        (("b *:5 r",), Status.FAIL),
        (("c 1:3 rwm",), Status.PASS),  # one named device (/dev/null)
    ],
)
def test_device_cgroup_rules(rules: tuple[str, ...], expected: Status) -> None:
    assert _status("DW-C019", device_cgroup_rules=rules) is expected
