"""Per-container schedules: each container's cron label, one updater process for all of them."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from dockward.update.schedule import GLOBAL_LABEL, SCHEDULE_LABEL, Schedule, Timetable
from tests.conftest import run_cli
from tests.update.conftest import Registry, build_version, push

PREFIX = "dwsched"
# No opt-in label: named on the command line, so update runs of other tests (which manage
# every opted-in container on the shared daemon) leave these alone.
LABEL = {"dockward.test": PREFIX}


def test_timetable_serves_the_global_and_each_containers_schedule() -> None:
    t0 = dt.datetime(2026, 1, 1, 0, 0, 0, tzinfo=dt.UTC)
    tt = Timetable(Schedule.parse(None, "0 * * * *"))  # hourly
    labels = {
        "a": {SCHEDULE_LABEL: "*/15 * * * *", GLOBAL_LABEL: "false"},
        "b": {SCHEDULE_LABEL: "30 * * * *"},
        "c": {},
        "bad": {SCHEDULE_LABEL: "every day"},
    }
    tt.refresh(labels, t0)
    assert tt.warnings == ["bad: label dockward.update.schedule: --schedule: expected 5 or 6 "
                           "cron fields, got 2: 'every day'"]  # fmt: skip
    assert tt.next_wake(t0) == t0 + dt.timedelta(minutes=15)
    due = tt.take_due(t0 + dt.timedelta(minutes=15))
    assert due.names == ("a",) and not due.global_cycle and due.opted_out == ("a",)
    due = tt.take_due(t0 + dt.timedelta(minutes=30))
    assert due.names == ("a", "b") and not due.global_cycle
    assert tt.next_wake(t0 + dt.timedelta(minutes=30)) == t0 + dt.timedelta(minutes=45)
    due = tt.take_due(t0 + dt.timedelta(hours=1))
    assert due.global_cycle and due.names == ("a",)
    # A label removed: the container is back to the global schedule only.
    tt.refresh({"a": {}, "b": {SCHEDULE_LABEL: "30 * * * *"}}, t0 + dt.timedelta(hours=1))
    assert set(tt.own) == {"b"} and tt.opted_out == set()


def test_two_containers_on_different_schedules_in_one_process(
    mine: Any, registry: Registry, tmp_path: Any
) -> None:
    client = mine
    image = build_version(client, "v1-sched")
    push(client, image, registry, f"{PREFIX}/app", "stable")
    ref = registry.ref(f"{PREFIX}/app", "stable")
    every2 = {**LABEL, SCHEDULE_LABEL: "*/2 * * * * *", GLOBAL_LABEL: "false"}
    every3 = {**LABEL, SCHEDULE_LABEL: "*/3 * * * * *", GLOBAL_LABEL: "false"}
    names = {"a": f"{PREFIX}-a", "b": f"{PREFIX}-b", "c": f"{PREFIX}-c"}
    for key, labels in (("a", every2), ("b", every3), ("c", LABEL)):
        c = client.create_container(ref, name=names[key], labels=labels)
        client.start(c["Id"])
    res = run_cli(
        "update", "--interval", "3600", "--cycles", "8", "--state-dir", str(tmp_path),
        "--format", "json", *names.values(), timeout=60,
    )  # fmt: skip
    assert res.code == 0, res.err
    cycles = [
        sorted(e["container"] for e in c["events"])
        for c in json.loads(res.out)["extra"]["update"]["cycles"]
    ]
    # At start the global cycle: only c (a and b opted out of it); then a and b on their own.
    assert cycles[0] == [names["c"]], cycles
    later = cycles[1:]
    assert all(set(c) <= {names["a"], names["b"]} and c for c in later), cycles
    # Every 6 s: a+b, a, b, a. Seven consecutive cycles hold a whole period: each container
    # ran alone on its own schedule, and a (every 2 s) at least as often as b (every 3 s).
    assert [names["a"]] in later and [names["b"]] in later, cycles
    assert sum(names["a"] in c for c in later) >= sum(names["b"] in c for c in later), cycles
