"""Pure parts of `dockward update`, on data recorded from the real daemon (tests/fixtures/update)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from dockward import specs
from dockward.catalog import default_rules
from dockward.errors import DockwardError, InputError, UsageError
from dockward.model.finding import Severity
from dockward.rules.registry import RuleSet
from dockward.update import (
    Candidate,
    ContainerRulesGate,
    Journal,
    Vulnerability,
    VulnerabilityGate,
    expected_spec,
    plan_recreate,
)
from dockward.update.gates import run_gates
from dockward.update.health import Probe
from dockward.update.journal import Entry
from dockward.update.schedule import Schedule
from dockward.update.select import Managed, Selection, dependency_order, wants

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "update"


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((FIX / name).read_text()))


def test_plan_keeps_user_config_and_drops_what_the_image_supplied() -> None:
    old, image = load("container_full.json"), load("image_v1.json")
    plan = plan_recreate(old, image)
    body = plan.body
    assert plan.name == "dwupd-full" and body["Image"] == old["Config"]["Image"]
    assert "Hostname" not in body  # was the daemon's default from the old id
    assert body["User"] == "1000:1000" and body["WorkingDir"] == "/tmp"
    assert body["Entrypoint"] == ["/bin/busybox"]
    assert sorted(body["Env"]) == ["APP_LEVEL=3", "APP_MODE=test"]  # PATH came from the image
    assert body["Healthcheck"]["Test"] == ["CMD", "test", "-f", "/version"]  # its own override
    assert body["HostConfig"] == {**old["HostConfig"], "Links": None}
    assert plan.primary is not None and plan.primary.network == "dwupd-net1"
    assert plan.primary.aliases == ("app-alias",)  # the old short id is gone
    assert plan.primary.ipv4_address == "10.213.77.10"
    assert [(e.network, e.aliases, e.ipv4_address) for e in plan.extra_networks] == [
        ("dwupd-net2", ("second-alias",), "10.213.78.10")
    ]
    ep = body["NetworkingConfig"]["EndpointsConfig"]["dwupd-net1"]
    assert ep == {"Aliases": ["app-alias"], "IPAMConfig": {"IPv4Address": "10.213.77.10"}}
    assert type(plan).from_json(json.loads(json.dumps(plan.to_json()))) == plan


def test_plan_leaves_the_engines_default_cgroup_namespace_to_the_engine() -> None:
    """Inspect shows the resolved mode ('host' on a cgroup v1 engine); copied, it would be an
    explicit host-namespace request that an admission policy (DW-C033) refuses."""
    from dockward import specs
    from dockward.policy.model import DEFAULT_DENY
    from dockward.rules.container import rules as container_rules
    from dockward.update.recreate import default_cgroupns

    old, image = load("container_full.json"), load("image_v1.json")
    assert old["HostConfig"]["CgroupnsMode"] == "host"  # recorded on this cgroup v1 engine
    assert default_cgroupns({"CgroupVersion": "1"}) == "host"
    assert default_cgroupns({"CgroupVersion": "2"}) == "private"
    kept = plan_recreate(old, image).body  # without the engine's default: copied as is
    left = plan_recreate(old, image, cgroupns_default="host").body
    assert kept["HostConfig"]["CgroupnsMode"] == "host" and "CgroupnsMode" not in left["HostConfig"]
    assert plan_recreate(old, image, cgroupns_default="private").body == kept  # a real choice

    def fails_c033(body: dict[str, Any]) -> bool:
        spec = specs.from_create_body(body, "dwupd-full")
        entry = container_rules.get("DW-C033")
        assert entry.check is not None and "DW-C033" in DEFAULT_DENY
        return type(entry.check(spec, None)).__name__ == "Fail"

    assert fails_c033(kept) and not fails_c033(left)


def test_plan_converts_links_and_keeps_anonymous_volumes() -> None:
    old, image = load("container_linked.json"), load("image_v1.json")
    plan = plan_recreate(old, image)
    host = plan.body["HostConfig"]
    assert host["Links"] == ["dwupd-target:db"]
    anon = next(m for m in old["Mounts"] if m["Destination"] == "/anon")
    assert f"{anon['Name']}:/anon" in host["Binds"]
    assert plan.body["Cmd"] is None  # inherited from the image, so the new image decides


def test_expected_spec_and_rules_gate_catch_a_root_regression() -> None:
    old, image = load("container_linked.json"), load("image_v1.json")
    plan = plan_recreate(old, image)
    same = expected_spec(plan, old, image)
    rooted_image = json.loads(json.dumps(image))
    rooted_image["Config"]["Healthcheck"] = None
    old_with_user = json.loads(json.dumps(old))
    old_with_user["Config"]["User"] = "app"
    image_with_user = json.loads(json.dumps(image))
    image_with_user["Config"]["User"] = "app"
    plan_user = plan_recreate(old_with_user, image_with_user)

    before = specs.from_inspect(old_with_user)
    after = expected_spec(plan_user, old_with_user, rooted_image)
    assert before.user == "app" and after.user == ""
    rules = RuleSet("c")
    for entry in default_rules().of_kind("container"):
        rules.add(entry)
    gate = ContainerRulesGate(rules)
    verdict = gate.check(Candidate("c", "x", image_with_user, rooted_image, before, after))
    assert not verdict.allowed
    assert any(r.startswith("DW-C031") for r in verdict.reasons)
    assert any(r.startswith("DW-C026") for r in verdict.reasons)  # healthcheck dropped
    ok = gate.check(Candidate("c", "x", image, image, specs.from_inspect(old), same))
    assert ok.allowed and ok.reasons == ()


def test_vulnerability_gate_refuses_added_criticals_and_reports_fixes() -> None:
    image_old, image_new = {"Id": "old"}, {"Id": "new"}
    db = {
        "old": [Vulnerability("CVE-1", Severity.HIGH), Vulnerability("CVE-2", Severity.LOW)],
        "new": [
            Vulnerability("CVE-2", Severity.LOW),
            Vulnerability("CVE-9", Severity.CRITICAL, "openssl"),
        ],
    }
    gate = VulnerabilityGate(lambda img: db[img["Id"]])
    spec = load("container_linked.json")

    cs = specs.from_inspect(spec)
    verdict = gate.check(Candidate("c", "x", image_old, image_new, cs, cs))
    assert not verdict.allowed and verdict.reasons == ("adds CVE-9 (critical, openssl)",)
    assert verdict.details["fixed"] == ["CVE-1"]
    db["new"] = db["new"][:1]
    assert gate.check(Candidate("c", "x", image_old, image_new, cs, cs)).allowed


def test_a_crashing_gate_refuses() -> None:
    class Broken:
        name = "broken"

        def check(self, candidate: Candidate) -> Any:
            raise RuntimeError("scanner died")

    cs = __import__("dockward.model.container", fromlist=["ContainerSpec"]).ContainerSpec()
    (verdict,) = run_gates([Broken()], Candidate("c", "x", {}, {}, cs, cs))
    assert not verdict.allowed and "scanner died" in verdict.reasons[0]


def test_schedule_parses_cron_with_and_without_seconds() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert Schedule.parse(None, "*/15 * * * *").next_run(now) == now.replace(minute=15)
    assert Schedule.parse(None, "30 * * * * *").next_run(now) == now.replace(second=30)
    assert Schedule.parse(90, None).next_run(now) == now + dt.timedelta(seconds=90)
    assert Schedule.parse(None, None).once
    for bad in ("* *", "70 * * * *"):
        with pytest.raises(UsageError):
            Schedule.parse(None, bad)
    with pytest.raises(UsageError):
        Schedule.parse(-1, None)


def _managed(name: str, deps: tuple[str, ...] = ()) -> Managed:
    return Managed(name, name, "img:1", "sha256:1", {}, True, depends_on=deps)


def test_dependency_order_puts_dependencies_first_and_survives_cycles() -> None:
    items = [_managed("web", ("api",)), _managed("api", ("db",)), _managed("db"), _managed("x")]
    assert [m.name for m in dependency_order(items)] == ["db", "x", "api", "web"]
    loop = [_managed("a", ("b",)), _managed("b", ("a",))]
    assert sorted(m.name for m in dependency_order(loop)) == ["a", "b"]


@pytest.mark.parametrize(
    ("labels", "selection", "expected"),
    [
        ({"dockward.update": "true"}, Selection(), True),
        ({}, Selection(), False),
        ({}, Selection(all=True), True),
        ({"com.centurylinklabs.watchtower.enable": "true"}, Selection(), True),
        ({"com.centurylinklabs.watchtower.enable": "false"}, Selection(all=True), False),
        (
            {"dockward.update": "true", "com.centurylinklabs.watchtower.enable": "false"},
            Selection(),
            False,
        ),
        ({"dockward.update": "true", "dockward.update.scope": "a"}, Selection(scope="b"), False),
        ({"com.centurylinklabs.watchtower.scope": "b"}, Selection(all=True, scope="b"), True),
        ({"com.centurylinklabs.watchtower": "true"}, Selection(all=True), False),
    ],
)
def test_selection_by_labels(labels: dict[str, str], selection: Selection, expected: bool) -> None:
    assert wants({"Name": "/c", "Config": {"Labels": labels}}, selection) is expected


def test_probe_labels_are_parsed_strictly() -> None:
    assert Probe.from_labels({"dockward.update.probe-cmd": "wget -q -O- 'http://x/a b'"}) == Probe(
        command=("wget", "-q", "-O-", "http://x/a b")
    )
    assert Probe.from_labels({"dockward.update.probe-url": "http://127.0.0.1:1/h"}) == Probe(
        url="http://127.0.0.1:1/h"
    )
    assert Probe.from_labels({}) is None
    with pytest.raises(InputError):
        Probe.from_labels({"dockward.update.probe-url": "file:///etc/passwd"})
    with pytest.raises(InputError):
        Probe.from_labels({"dockward.update.probe-cmd": "unterminated 'quote"})


def test_journal_round_trip_and_bad_files(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    entry = Entry(
        "a" * 64,
        "web",
        "web-dockward-old",
        "img:1",
        "sha256:1",
        "sha256:2",
        True,
        {"name": "web"},
        started="2026-01-01T00:00:00",
    )
    journal.write(entry.at("renamed"))
    (pending,) = journal.pending()
    assert pending.phase == "renamed" and not pending.committed
    assert (tmp_path / ("a" * 64 + ".json")).stat().st_mode & 0o777 == 0o600
    journal.write(pending.at("healthy", new_id="b" * 64))
    assert journal.pending()[0].committed
    journal.remove(entry)
    assert journal.pending() == []
    with pytest.raises(ValueError):
        journal.write(Entry("../../etc/x", "w", "b", "i", "", "", False, {}))
    (tmp_path / ("c" * 64 + ".json")).write_text("{broken")
    with pytest.raises(DockwardError, match="unreadable"):
        journal.pending()


def test_results_gate_refuses_on_failing_results_only() -> None:
    from dockward.model.container import ContainerSpec
    from dockward.model.finding import Result, Rule, Status
    from dockward.update import ResultsGate

    rule = Rule("DW-P001", "Registry allowed", Severity.HIGH, "policy", "use an allowed registry")
    cs = ContainerSpec()
    cand = Candidate("c", "evil.example/app:1", {}, {}, cs, cs)
    refusing = ResultsGate(lambda c: [Result(rule, Status.FAIL, c.image_ref, "not allowed")])
    verdict = refusing.check(cand)
    assert not verdict.allowed and verdict.reasons == ("DW-P001: not allowed",)
    waived = ResultsGate(lambda c: [Result(rule, Status.FAIL, "x", "no", waived="ok'd")])
    assert waived.check(cand).allowed
    assert ResultsGate(lambda c: [Result(rule, Status.PASS, "x")]).check(cand).allowed


class _RecordedDaemon:
    """Answers `containers(all=True)` with a list recorded from the real daemon."""

    def __init__(self, listing: list[dict[str, Any]]) -> None:
        self.listing = listing

    def containers(self, all: bool = False) -> list[dict[str, Any]]:
        return self.listing

    def inspect_container(self, cid: str) -> dict[str, Any]:
        raise AssertionError("checking must not inspect containers")


def test_select_works_from_the_container_list_alone() -> None:
    from dockward.update import select

    daemon = _RecordedDaemon(json.loads((FIX / "containers_list.json").read_text()))
    opted_in = select(daemon, Selection())
    assert [m.name for m in opted_in] == ["dwupd-full", "dwupd-linked"]
    linked = opted_in[1]
    assert linked.depends_on == ("dwupd-target",)  # from the target's `/dwupd-linked/db` name
    assert linked.image == "dwupd-lab/app:v1-r3" and linked.image_id.startswith("sha256:")
    assert linked.running and linked.labels["dockward.update"] == "true"
    everything = select(daemon, Selection(all=True))
    assert [m.name for m in everything] == ["dwupd-full", "dwupd-target", "dwupd-linked"]


def test_notifications_are_not_repeated_every_cycle() -> None:
    from dockward.update.cycle import CycleResult, Event
    from dockward.update.notify import compose

    outdated = Event("web", "outdated", "newer image", "r/web:1", new_digest="sha256:" + "1" * 64)
    already: set[tuple[str, str, str]] = set()
    first = compose(CycleResult((outdated,)), "host", already)
    assert first is not None and "1 outdated" in first.subject and "sha256:111" in first.text
    assert compose(CycleResult((outdated,)), "host", already) is None
    newer = Event("web", "outdated", "newer image", "r/web:1", new_digest="sha256:" + "2" * 64)
    assert compose(CycleResult((newer,)), "host", already) is not None
    assert compose(CycleResult((Event("db", "current", "ok"),)), "host") is None


def test_outdated_after_counts_containers_left_on_an_older_image() -> None:
    from dockward.update.cycle import CycleResult, Event
    from dockward.update.report import outdated_after

    old, new = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    kept = [
        Event("a", "outdated", "monitor only", old_digest=old, new_digest=new),
        Event("b", "waiting", "cooldown", old_digest=old, new_digest=new),
        Event("c", "refused", "gate", old_digest=old, new_digest=new),
        Event("d", "rolled-back", "unhealthy", old_digest=old, new_digest=new),
        Event(
            "e", "skipped", "no-pull: the new image is not present", old_digest=old, new_digest=new
        ),
    ]
    fine = [
        Event("f", "current", "", old_digest=old, new_digest=old),
        Event("g", "updated", "", old_digest=old, new_digest=new),
        Event("h", "skipped", "pinned to a digest"),
        Event("i", "error", "registry unreachable", old_digest=old),
    ]
    assert outdated_after(CycleResult(tuple(kept + fine))) == len(kept)
    assert outdated_after(CycleResult(tuple(fine))) == 0
