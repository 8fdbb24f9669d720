"""Drift between stored runs, the fleet page and the history page, and their CLI."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from dockward.model.finding import Report, Result, Rule, Severity, Status
from dockward.report.fleet import (
    HostState,
    common_findings,
    fleet_page_from_store,
    rank_hosts,
    render_fleet_page,
)
from dockward.scan.rules import VULNERABILITY
from dockward.store import Store, open_store
from dockward.store.drift import compare, fleet_drift
from tests.conftest import run_cli

PRIV = Rule("DW-C001", "Container is not privileged", Severity.CRITICAL, "container", "drop it")
USER = Rule("DW-C010", "Container user", Severity.MEDIUM, "container", "set a user")
# Advisory rules as a scan makes them: the advisory's id on the DW-V001 family (which declares
# that its failures name a vulnerable image).
CVE = replace(VULNERABILITY, id="CVE-2024-1", title="openssl", severity=Severity.HIGH)
DAY = 86400.0


def rep(host: str, *fails: tuple[Rule, str], severity: dict[str, Severity] | None = None) -> Report:
    results = [
        Result(
            rule, Status.FAIL, target, host=host, severity_override=(severity or {}).get(rule.id)
        )
        for rule, target in fails
    ]
    results.append(Result(USER, Status.PASS, "container ok", host=host))
    return Report("audit", tuple(results), hosts=(host,))


def record(store: Store, t: float, **hosts: Report | str) -> str:
    with store.batch("audit") as b:
        for name, r in hosts.items():
            if isinstance(r, str):
                b.record(name, None, t, t, "rs", error=r)
            else:
                b.record(name, r, t, t, "rs")
        return b.id


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "d.sqlite")
    cluster = request.getfixturevalue("pg_cluster")
    return str(cluster.create_db(f"dwd_{os.getpid()}_{abs(hash(tmp_path.name)) % 100000}"))


@pytest.fixture
def filled(store_url: str) -> tuple[Store, str, float, str]:
    path = store_url
    store = open_store(path)
    now = time.time()
    first = record(
        store,
        now - 10 * DAY,
        a=rep("a", (USER, "container web")),
        b=rep("b", (USER, "container db"), (CVE, "image old:1")),
    )
    record(
        store,
        now - 2 * DAY,
        a=rep("a", (USER, "container web")),
        b=rep("b", (USER, "container db"), (CVE, "image old:1")),
    )
    record(
        store,
        now - 60,
        a=rep(
            "a",
            (USER, "container web"),
            (PRIV, "container new"),
            (CVE, "image web:2"),
            severity={"DW-C010": Severity.HIGH},
        ),
        b="cannot reach the Docker daemon",
    )
    return store, path, now, first


def test_diff_against_previous_run(filled: tuple[Store, str, float, str]) -> None:
    store, _, _, _ = filled
    drifts = {d.host: d for d in fleet_drift(store)}
    a, b = drifts["a"], drifts["b"]
    assert [(f.rule_id, f.target) for f in a.new] == [
        ("CVE-2024-1", "image web:2"),
        ("DW-C001", "container new"),
    ]
    assert [(x.severity, y.severity) for x, y in a.changed] == [(Severity.MEDIUM, Severity.HIGH)]
    assert a.newly_vulnerable == ("image web:2",) and a.fixed == ()
    assert a.worsened_at(Severity.CRITICAL) and a.worsened_at(Severity.HIGH)
    assert b.note.startswith("latest run failed: cannot reach") and not b.new


def test_diff_since_and_against_a_run(filled: tuple[Store, str, float, str]) -> None:
    store, _, now, first = filled
    # a week ago: the run of 10 days ago is the baseline
    a = next(d for d in fleet_drift(store, since=7 * DAY, now=now) if d.host == "a")
    assert a.baseline is not None and a.baseline.started == pytest.approx(now - 10 * DAY)
    base = store.batch_runs(first)[0]
    a2 = next(d for d in fleet_drift(store, baseline=str(base.id)) if d.host == "a")
    assert a2.baseline == base and len(a2.new) == 2
    assert next(d for d in fleet_drift(store, baseline=first) if d.host == "a").baseline == base


def test_fixed_findings_and_no_change(store_url: str) -> None:
    store = open_store(store_url)
    t = time.time()
    record(store, t - 100, a=rep("a", (PRIV, "container x"), (CVE, "image i")))
    record(store, t, a=rep("a"))
    (d,) = fleet_drift(store)
    assert [f.rule_id for f in d.fixed] == ["CVE-2024-1", "DW-C001"] and not d.new
    assert not d.worsened_at(Severity.LOW)


def test_database_set_difference_matches_the_python_comparison(store_url: str) -> None:
    """Waived and passing results are not failures; an image vulnerable before through another
    CVE is not newly vulnerable; a host whose baseline had nothing failing gets everything new."""
    store = open_store(store_url)
    cve2 = replace(VULNERABILITY, id="CVE-2024-2", title="zlib", severity=Severity.LOW)
    t = time.time()
    before = rep("a", (PRIV, "container x"), (CVE, "image i"), (USER, "container y"))
    waived = Result(PRIV, Status.FAIL, "container w", host="a", waived="accepted")
    before = Report("audit", (*before.results, waived), hosts=("a",))
    record(store, t - 100, a=before, b=rep("b"))
    after = rep(
        "a",
        (cve2, "image i"),
        (CVE, "image j"),
        (USER, "container y"),
        severity={"DW-C010": Severity.LOW},
    )
    after = Report("audit", (*after.results, waived), hosts=("a",))
    record(store, t, a=after, b=rep("b", (PRIV, "container z")))
    drifts = {d.host: d for d in fleet_drift(store)}
    runs = {r.host: r for r in store.runs()}
    old = [f for f in store.findings(store.runs(host="a")[0].id)]
    new = [f for f in store.findings(runs["a"].id)]
    a = drifts["a"]
    assert (a.new, a.fixed, a.changed, a.newly_vulnerable) == compare(old, new)
    assert [f.key for f in a.new] == [("CVE-2024-1", "image j"), ("CVE-2024-2", "image i")]
    assert [f.key for f in a.fixed] == [("CVE-2024-1", "image i"), ("DW-C001", "container x")]
    assert [(x.severity, y.severity) for x, y in a.changed] == [(Severity.MEDIUM, Severity.LOW)]
    assert a.newly_vulnerable == ("image j",)
    assert [f.key for f in drifts["b"].new] == [("DW-C001", "container z")]
    store.close()


def test_report_diff_cli_exit_codes(filled: tuple[Store, str, float, str]) -> None:
    _, path, _, first = filled
    res = run_cli("report", "--diff", "--store", path, "--fail-on", "critical", "-f", "json")
    assert res.code == 1, res.err
    doc = json.loads(res.out)
    assert doc["summary"]["new"] == 2 and doc["summary"]["newly_vulnerable_images"] == 1
    res = run_cli("report", "--diff", "--store", path, "--fail-on", "never", "-f", "table")
    assert (
        res.code == 0 and "new      critical DW-C001" in res.out and "latest run failed" in res.out
    )
    assert run_cli("report", "--diff", first, "--store", path, "--fail-on", "high").code == 1
    res = run_cli("report", "--diff", "--since", "7d", "--store", path, "--fail-on", "high")
    assert res.code == 1
    for bad in (("--diff", "999999"), ("--diff", "--since", "someday"), ("--diff", "--fleet")):
        res = run_cli("report", *bad, "--store", path)
        assert res.code == 2 and res.err.count("\n") == 1, bad


def test_fleet_page_ranks_hosts_and_counts_common_findings(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "p.sqlite"))
    hostile = "<script>alert(1)</script>"
    record(
        store,
        time.time(),
        **{
            "h1": rep("h1", (USER, "container a")),
            "h2": rep("h2", (USER, "container b"), (PRIV, hostile)),
            "h3": rep("h3", (USER, "container c")),
            "h4": "engine gone",
        },
    )
    states = [HostState(r, tuple(store.findings(r.id))) for r in store.latest()]
    assert [s.run.host for s in rank_hosts(states)] == ["h4", "h2", "h1", "h3"]
    common = common_findings(states)
    assert [(f.rule_id, hosts) for f, hosts in common] == [
        ("DW-C010", ["h1", "h2", "h3"]),
        ("DW-C001", ["h2"]),
    ]
    page = render_fleet_page(states)
    streamed: list[str] = []
    fleet_page_from_store(store, store.latest(), streamed.append)  # aggregated in the database
    assert "".join(streamed) == page
    assert hostile not in page and "&lt;script&gt;" in page
    assert page.index("DW-C010") < page.index("DW-C001")
    out = tmp_path / "fleet.html"
    res = run_cli("report", "--fleet", "--store", str(tmp_path / "p.sqlite"), "-o", str(out))
    assert res.code == 0, res.err
    assert "h4" in out.read_text()
    res = run_cli("report", "--history", "--store", str(tmp_path / "p.sqlite"), "-o", str(out))
    assert res.code == 0 and out.read_text().count("<svg") == 4  # the fleet and three hosts
