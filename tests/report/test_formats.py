"""Every formatter renders the same Report; JSON reads back; SARIF/JUnit are well-formed; the
HTML page works in a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dockward.audit import build_report
from dockward.catalog import default_rules
from dockward.errors import DockwardError, InputError
from dockward.model import Location, Report, Result, Status
from dockward.report import FORMATTERS, render, report_from_json
from dockward.report.jsonfmt import merge_reports
from dockward.rules.container import hardened_example
from dockward.rules.daemon import example_snapshot
from tests.conftest import run_cli


def sample_report() -> Report:
    bad = hardened_example().with_changes(
        name="web<script>", privileged=True, cap_add=("SYS_ADMIN",)
    )
    snap = example_snapshot(containers=(bad, hardened_example()), settings={"log-level": "debug"})
    report = build_report([snap])
    rule = default_rules().get("DW-C001").rule
    located = Result(
        rule,
        Status.FAIL,
        "compose.yaml service web",
        "privileged: true",
        (),
        "",
        Location("compose.yaml", 7, 5, 7, 21),
    )
    return Report(
        "audit",
        (*report.results, located),
        hosts=report.hosts,
        tool_version="0.1.0",
        warnings=("a warning",),
    )


def test_all_formatters_render() -> None:
    report = sample_report()
    for name in FORMATTERS:
        if name in ("cyclonedx", "spdx"):  # SBOM formats need a scan's SBOM: a clear error
            with pytest.raises(DockwardError):
                render(report, name)
        else:
            assert render(report, name)


def test_json_round_trip() -> None:
    report = sample_report()
    again = report_from_json(render(report, "json"))
    assert [r.to_dict() for r in again.results] == [r.to_dict() for r in report.results]
    assert again.counts() == report.counts() and again.score() == report.score()


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "[]",
        '{"schema": "other"}',
        json.dumps({"schema": "https://dockward.dev/schema/report", "schema_version": "9.0"}),
    ],
)
def test_json_reader_refuses_foreign_input(text: str) -> None:
    with pytest.raises(InputError):
        report_from_json(text, "x.json")


def test_sarif_structure_and_regions() -> None:
    doc = json.loads(render(sample_report(), "sarif"))
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert doc["version"] == "2.1.0"
    ids = [r["id"] for r in rules]
    for res in run["results"]:
        assert ids[res["ruleIndex"]] == res["ruleId"]
        assert res["level"] in ("error", "warning", "note")
    located = [r for r in run["results"] if "physicalLocation" in r["locations"][0]]
    assert located[0]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 7,
        "startColumn": 5,
        "endLine": 7,
        "endColumn": 21,
    }
    c001 = next(r for r in rules if r["id"] == "DW-C001")
    assert (
        c001["properties"]["security-severity"] == "9.5" and "CIS-5.5" in c001["properties"]["tags"]
    )


def test_junit_counts() -> None:
    report = sample_report()
    root = ET.fromstring(render(report, "junit"))
    failures = sum(1 for r in report.results if r.failing)
    assert int(root.get("failures", "0")) == failures
    assert len(root.findall(".//testcase")) == len(report.results)
    assert root.find(".//testcase[@file='compose.yaml']") is not None


def test_html_is_self_contained_and_escaped() -> None:
    html = render(sample_report(), "html")
    assert "web<script>" not in html and "web&lt;script&gt;" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "Content-Security-Policy" in html


def test_merge_reports_via_cli(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(render(sample_report(), "json"))
    b.write_text(render(sample_report(), "json"))
    out = tmp_path / "merged.html"
    res = run_cli("report", str(a), str(b), "-o", str(out))
    assert res.code == 0, res.err
    assert out.read_text().count('class="finding"') == 2 * len(sample_report().results)
    merged = merge_reports([report_from_json(a.read_text()), report_from_json(b.read_text())])
    assert len(merged.results) == 2 * len(sample_report().results)


def test_report_cli_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe garbage")
    res = run_cli("report", str(bad), "-o", str(tmp_path / "out.html"))
    assert res.code == 2 and res.err.count("\n") == 1 and "not UTF-8" in res.err
    assert not (tmp_path / "out.html").exists()
    res = run_cli("report", str(tmp_path / "missing.json"))
    assert res.code == 2 and "no such file" in res.err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.chromium
@pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (scripts/setup.sh --test installs it)"
)
def test_html_report_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(sample_report(), "html"))
    assert CHROMIUM is not None
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    ).stdout
    rows = re.findall(r'<tr class="finding( hidden)?" data-status="(\w+)"', dom)
    assert rows, "the findings are in the rendered page"
    # The page's script ran: passing rows are filtered out by default, failing ones shown.
    assert all(hidden for hidden, status in rows if status == "pass")
    assert any(not hidden for hidden, status in rows if status == "fail")
    assert "DW-C001" in dom and "Remove `--privileged`" in dom
    assert 'id="score"' in dom


def test_table_keeps_bracketed_remediation_text() -> None:
    # rich would read `[ALL]` as markup and drop it from the fix column.
    out = render(sample_report(), "table")
    assert "--cap-drop ALL" in out and "[ALL]" in out


def test_extra_is_typed_per_command_and_round_trips_through_json() -> None:
    from dockward.audit import AuditExtra
    from dockward.lint.engine import LintExtra
    from dockward.model.finding import MergedExtra, RawExtra, ReportExtra
    from dockward.policy.model import PolicyExtra
    from dockward.sbom.model import ImageExtra
    from dockward.scan.extra import ScanExtra
    from dockward.update.report import UpdateExtra

    extras: dict[str, ReportExtra] = {
        "audit": AuditExtra(rules_evaluated=170, hosts_failed=1),
        "lint": LintExtra(files=3),
        "policy": PolicyExtra("deploy/policy.yaml"),
        "sbom": ImageExtra({"name": "img"}, {"packages": []}),
        "scan": ScanExtra({"name": "img"}, {"packages": []}, ({"id": "CVE-1"},), {"path": "db"}, 2),
        "update": UpdateExtra(({"events": []},), "1.41"),
        "report": MergedExtra(("audit", "scan")),
    }
    expected_keys = {
        "audit": {"rules_evaluated", "hosts_failed"},
        "lint": {"files"},
        "policy": {"policy"},
        "sbom": {"image", "sbom"},
        "scan": {"image", "sbom", "vulnerabilities", "db", "ignored_unfixed"},
        "update": {"update"},
        "report": {"merged"},
    }
    for command, extra in extras.items():
        report = Report(command, (), extra=extra)
        doc = json.loads(render(report, "json"))
        assert set(doc["extra"]) == expected_keys[command], command
        back = report_from_json(render(report, "json"))
        assert isinstance(back.extra, RawExtra) and back.extra.to_dict() == doc["extra"]
    assert Report("x", ()).extra.to_dict() == {}
    assert json.loads(render(Report("x", ()), "json"))["extra"] == {}
