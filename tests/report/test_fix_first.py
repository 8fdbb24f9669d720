"""Fix first: reports open with the failing findings ranked by severity, then by reach."""

from __future__ import annotations

import itertools
import json

from dockward import specs
from dockward.audit import build_report
from dockward.model import ContainerSpec, Report, Severity
from dockward.report import render
from dockward.report.fixfirst import fix_first
from dockward.rules.daemon import example_snapshot
from tests.conftest import FIXTURES

NAMES = ("privileged", "dockersock", "hostnet", "sysadmin", "wideport", "rshared", "good")


def _spec(name: str) -> ContainerSpec:
    inspect = json.loads((FIXTURES / "engine" / f"container-{name}.json").read_text())
    return specs.from_inspect(inspect)


def _report() -> Report:
    specs = [_spec(n) for n in NAMES]
    # Three replicas with the same wide port binding: one fix reaches three containers.
    wide = _spec("wideport")
    specs += [wide.with_changes(name=f"{wide.name}-{i}") for i in (2, 3)]
    return build_report([example_snapshot(containers=tuple(specs))])


def test_ranked_by_severity_then_reach() -> None:
    report = _report()
    items = fix_first(report, limit=0)
    assert items, "the recorded lab containers fail rules"
    severities = [int(i.severity) for i in items]
    assert severities == sorted(severities, reverse=True)
    assert items[0].severity is Severity.CRITICAL
    for a, b in itertools.pairwise(items):
        if a.severity is b.severity:
            assert len(a.targets) >= len(b.targets)
    wide = next(i for i in items if i.rule.id == "DW-C015")
    assert wide.reach == "3 containers"
    same = [i for i in items if i.severity is wide.severity]
    assert same[0] is wide  # the widest of its severity comes first
    assert len(fix_first(report)) <= 10


def test_html_and_table_open_with_fix_first() -> None:
    report = _report()
    top = fix_first(report)[0]
    html = render(report, "html")
    assert html.index('<section class="group fixfirst" id="fix-first">') == html.index("<section")
    assert html.index(top.rule.id) < html.index("5 Container runtime")
    assert "3 containers" in html
    table = render(report, "table")
    assert table.index("fix first") < table.index("findings")
    assert table.index(top.rule.id) < table.index("findings")


def test_no_failures_no_fix_first() -> None:
    report = build_report([example_snapshot(containers=(_spec("good"),))])
    report = Report("audit", tuple(r for r in report.results if not r.failing))
    assert fix_first(report) == []
    assert 'id="fix-first"' not in render(report, "html")
    assert "fix first" not in render(report, "table")
