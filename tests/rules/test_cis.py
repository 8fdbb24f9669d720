"""The CIS version files against benchmark texts recorded from public encodings, the registry
against the files, `--cis-version`, the devicemapper check and the docker-bench JSON output."""

from __future__ import annotations

import difflib
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from dockward.catalog import all_rules, default_rules
from dockward.errors import UsageError
from dockward.model.finding import Report, Result, Status
from dockward.report import render
from dockward.rules.cis import VERSIONS, benchmark, cis_ids, parse_version, renumber
from tests.conftest import run_cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cis"


def _tsv(name: str) -> list[list[str]]:
    lines = (FIXTURES / name).read_text().splitlines()
    return [line.split("\t") for line in lines if line and not line.startswith("#")]


def _norm(title: str) -> str:
    t = re.sub(r"^\d+(\.\d+)+ ", "", title)
    t = re.sub(r"\s*\((Automated|Scored|Manual)\)$", "", t)
    t = t.replace("Dockerfiles and directories", "Docker files and directories")
    return re.sub(r"\s+", " ", t.replace("-/", "- /")).strip().lower()


def test_1_6_0_is_docker_bench_security_s_benchmark() -> None:
    """docker-bench-security 1.6 implements CIS 1.6.0: same ids in the same order, same titles,
    automated where it scores (Automated/Scored) and manual where it notes."""
    recorded = _tsv("docker-bench-security-1.6.0.tsv")
    bench = benchmark("1.6.0")
    assert [r.id for r in bench.requirements] == [i for i, _ in recorded]
    for req, (_, desc) in zip(bench.requirements, recorded, strict=True):
        assert _norm(req.title) == _norm(desc), req.id
        assert req.automated == bool(re.search(r"\((Automated|Scored)\)$", desc)), req.id
    assert len(bench.requirements) == 117
    assert sum(r.automated for r in bench.requirements) == 90


def test_1_7_0_keeps_the_ids_and_makes_most_checks_manual() -> None:
    old, new = benchmark("1.6.0"), benchmark("1.7.0")
    assert [(r.id, r.rules) for r in old.requirements] == [
        (r.id, r.rules) for r in new.requirements
    ]
    automated = {r.id for r in new.requirements if r.automated}
    assert len(automated) == 23
    assert {"1.1.3", "3.1", "3.16", "3.24"} <= automated
    assert not automated & {"2.14", "4.1", "5.5", "5.10", "5.32", "1.1.16"}
    assert "docker.sock" in (new.get("1.1.9") or pytest.fail()).title


def test_1_8_0_adds_devicemapper_and_renumbers_2_7_to_2_18() -> None:
    v17, v18 = benchmark("1.7.0"), benchmark("1.8.0")
    assert len(v18.requirements) == 118
    dm = v18.get("2.7")
    assert dm is not None and "devicemapper" in dm.title and dm.rules == ("DW-D021",)
    for req in v17.requirements:
        section, _, rest = req.id.partition(".")
        moved = section == "2" and int(rest) >= 7
        new = v18.get(f"2.{int(rest) + 1}" if moved else req.id)
        assert new is not None and new.title == req.title and new.rules == req.rules, req.id
        if section != "2":
            assert new.automated == req.automated, req.id
    assert cis_ids("DW-D007") == {
        "1.6.0": {"id": "2.7", "automated": True},
        "1.7.0": {"id": "2.7", "automated": False},
        "1.8.0": {"id": "2.8", "automated": False},
    }


def test_1_8_0_against_a_recorded_encoding_of_the_benchmark() -> None:
    """Ids, titles and assessment status as an Ansible role for 1.8.0 lists them (partial)."""
    bench = benchmark("1.8.0")
    recorded = _tsv("ansible-docker-cis-hardening-1.8.0.tsv")
    assert len(recorded) >= 70
    for rid, title, status in recorded:
        req = bench.get(rid)
        assert req is not None, rid
        ratio = difflib.SequenceMatcher(None, _norm(req.title), _norm(title)).ratio()
        assert ratio > 0.85, (rid, req.title, title)
        assert req.automated == (status == "Automated"), rid


@pytest.mark.parametrize("version", ["1.7.0", "1.8.0"])
def test_against_a_structured_extract_of_the_benchmark_pdf(version: str) -> None:
    """Every id, title and assessment status as a second, independent source lists them (a
    structured extract of the version's PDF): same ids in the same order, same status."""
    bench = benchmark(version)
    recorded = _tsv(f"cis-extract-{version}.tsv")
    assert [r.id for r in bench.requirements] == [rid for rid, _, _ in recorded]
    for req, (rid, title, status) in zip(bench.requirements, recorded, strict=True):
        ratio = difflib.SequenceMatcher(None, _norm(req.title), _norm(title)).ratio()
        assert ratio > 0.85, (rid, req.title, title)
        assert req.automated == (status == "Automated"), rid
    # 1.1.1-1.1.4 (host partition, docker group, dockerd and /run/containerd audit)
    first = {r.id: r.automated for r in bench.requirements[:4]}
    assert first == {"1.1.1": False, "1.1.2": False, "1.1.3": True, "1.1.4": False}


def test_the_two_1_8_0_sources_agree_where_both_speak() -> None:
    ansible = {rid: status for rid, _, status in _tsv("ansible-docker-cis-hardening-1.8.0.tsv")}
    extract = {rid: status for rid, _, status in _tsv("cis-extract-1.8.0.tsv")}
    assert len(ansible.keys() & extract.keys()) >= 70
    assert {r: (s, extract[r]) for r, s in ansible.items() if extract[r] != s} == {}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_mapped_rule_is_registered_and_judges_one_requirement(version: str) -> None:
    registered = {e.rule.id for e in all_rules()}
    seen: list[str] = []
    for req in benchmark(version).requirements:
        assert re.fullmatch(r"[1-7](\.\d+){1,2}", req.id) and req.title
        seen += req.rules
    assert set(seen) <= registered
    assert len(seen) == len(set(seen)), "a rule judges one requirement per version"


def test_rules_declare_their_newest_ids_as_the_data_says() -> None:
    newest = benchmark(VERSIONS[-1])
    for entry in all_rules():
        req = newest.for_rule(entry.rule.id)
        assert entry.rule.cis == (req.id if req else ""), entry.rule.id
        if req:
            assert entry.rule.cis_version == newest.version


def test_renumber_shows_another_version() -> None:
    old = renumber(default_rules(), "1.6.0")
    assert old.get("DW-D007").rule.cis == "2.7" and old.get("DW-D007").rule.cis_version == "1.6.0"
    assert old.get("DW-D018").rule.cis == "2.18"
    assert old.get("DW-D021").rule.cis == ""
    assert old.get("DW-C001").rule.cis == "5.5"
    assert len(old) == len(default_rules())
    new = renumber(default_rules())
    assert new.get("DW-D007").rule.cis == "2.8" and new.get("DW-D021").rule.cis == "2.7"
    assert parse_version("v1.7") == "1.7.0"
    with pytest.raises(UsageError):
        parse_version("1.5.0")


def _audit(*extra: str) -> dict[str, Any]:
    res = run_cli("audit", "--fail-on", "never", *extra)
    assert res.code == 0, res.err
    return dict(json.loads(res.out))


def test_cis_version_picks_numbering_and_selection_on_a_live_host(docker_api: Any) -> None:
    old = _audit("--cis-version", "1.6.0", "--check", "2.7", "-f", "json")
    assert {(r["rule_id"], r["cis"]) for r in old["results"]} == {("DW-D007", "2.7")}
    new = _audit("--check", "2.7", "-f", "json")  # default: the newest
    [dm] = new["results"]
    assert (dm["rule_id"], dm["cis"], dm["status"]) == ("DW-D021", "2.7", "pass")
    assert dm["evidence"]["driver"] == docker_api.info()["Driver"] != "devicemapper"
    env = run_cli("audit", "--check", "2.7", "-f", "json", env={"DOCKWARD_CIS_VERSION": "1.7.0"})
    assert [r["rule_id"] for r in json.loads(env.out)["results"]] == ["DW-D007"]
    bad = run_cli("audit", "--cis-version", "2.0")
    assert bad.code == 2 and bad.err.count("\n") == 1 and "unknown CIS version" in bad.err


def test_docker_bench_json_from_a_live_audit(docker_api: Any) -> None:
    name = f"dw11c-priv-{uuid.uuid4().hex[:8]}"
    image = "dockward-lab/busybox:1.0"
    cid = docker_api.create_container(
        image,
        ["true"],
        name=name,
        labels={"dockward.test": "11c"},
        host_config=docker_api.create_host_config(privileged=True),
    )["Id"]
    try:
        res = run_cli("audit", "-f", "docker-bench", "--fail-on", "never", "--section", "5")
        assert res.code == 0, res.err
        doc = json.loads(res.out)
    finally:
        docker_api.remove_container(cid, force=True)
    assert doc["dockerbenchsecurity"] == "1.8.0"
    assert set(doc) >= {"start", "end", "tests", "checks", "score"}
    assert doc["start"] <= doc["end"]
    [section] = doc["tests"]
    assert (section["id"], section["desc"]) == ("5", "Container Runtime")
    results = {r["id"]: r for r in section["results"]}
    ids = [r.id for r in benchmark("1.8.0").requirements]
    assert [i for i in ids if i in results] == list(results)  # benchmark order
    assert doc["checks"] == len(results)
    assert {r["result"] for r in results.values()} <= {"PASS", "WARN", "INFO", "NOTE"}
    priv = results["5.5"]
    assert priv["result"] == "WARN" and priv["desc"].endswith("(Manual)")
    assert name in priv.get("items", []) or name in priv["details"]
    assert priv["remediation"]
    automated = {r.id for r in benchmark("1.8.0").requirements if r.automated}
    expected = sum(
        (r["result"] == "PASS") - (r["result"] == "WARN")
        for r in results.values()
        if r["id"] in automated
    )
    assert doc["score"] == expected


def test_docker_bench_scores_automated_requirements_and_keeps_json_valid() -> None:
    rules = renumber(default_rules(), "1.6.0")
    c001, c002, c003 = (rules.get(i).rule for i in ("DW-C001", "DW-C002", "DW-C003"))
    d003 = rules.get("DW-D003").rule
    report = Report(
        "audit",
        (
            Result(c001, Status.FAIL, 'evil"name\n', "privileged"),
            Result(c001, Status.FAIL, "other", "privileged"),
            Result(c002, Status.PASS, "a"),
            Result(c003, Status.PASS, "a"),
            Result(d003, Status.PASS, "daemon"),
        ),
        started="2026-12-07T10:00:00+00:00",
        finished="2026-12-07T10:00:05+00:00",
    )
    doc = json.loads(render(report, "docker-bench"))
    assert doc["dockerbenchsecurity"] == "1.6.0"
    assert doc["end"] - doc["start"] == 5
    results = {r["id"]: r for t in doc["tests"] for r in t["results"]}
    assert results["5.5"]["result"] == "WARN"
    assert results["5.5"]["items"] == ['evil"name\n', "other"]
    assert results["5.4"]["result"] == "PASS"
    assert results["2.3"]["result"] == "PASS"
    assert [t["id"] for t in doc["tests"]] == ["2", "5"]
    assert (doc["checks"], doc["score"]) == (3, 1)  # 2.3 +1, 5.4 +1, 5.5 -1 (all automated)
