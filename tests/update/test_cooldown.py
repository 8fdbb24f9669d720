"""Cooldown: a digest is taken only after it has been seen in the registry for long enough."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from dockward.errors import UsageError
from dockward.update.cooldown import Cooldown, cooldown_for, parse_duration, waiting_text
from tests.conftest import run_cli
from tests.update.conftest import Registry, build_version, push, update_once

PREFIX = "dwcool"
# No opt-in label: named on the command line, so update runs of other tests (which manage
# every opted-in container on the shared daemon) leave these alone.
LABEL = {"dockward.test": PREFIX}


def test_the_clock_runs_per_digest_from_its_first_sighting(tmp_path: Path) -> None:
    now = [1_000_000.0]
    state = tmp_path / "cooldown.state"
    cd = Cooldown(state, clock=lambda: now[0])
    assert cd.left("reg/app", "sha256:aa", 3600) == 3600
    now[0] += 3599
    assert cd.left("reg/app", "sha256:aa", 3600) == 1
    assert waiting_text(1) == "waiting, 1 minute left"
    cd.save()
    # A restart remembers it; the hour is up one second later.
    now[0] += 1
    again = Cooldown(state, clock=lambda: now[0])
    assert again.left("reg/app", "sha256:aa", 3600) == 0
    # A release replaced by another digest: the new one starts its own hour.
    assert again.left("reg/app", "sha256:bb", 3600) == 3600
    assert waiting_text(3600) == "waiting, 60 minutes left"
    # Forgotten after 90 days unseen.
    now[0] += 91 * 86400
    again.save()
    assert json.loads(state.read_text())["seen"] == {}


def test_nothing_asked_nothing_written(tmp_path: Path) -> None:
    """Without a cooldown the state directory holds journals only (crash recovery counts them)."""
    state = tmp_path / "cooldown.state"
    Cooldown(state).save()
    assert not state.exists()
    Cooldown(state).left("reg/app", "sha256:aa", 60)
    cd = Cooldown(state)
    cd.left("reg/app", "sha256:aa", 60)
    cd.save()
    assert state.exists()


def test_durations_and_labels() -> None:
    assert parse_duration("90") == 90 and parse_duration("30m") == 1800
    assert parse_duration("12h") == 43200 and parse_duration("7d") == 7 * 86400
    assert parse_duration("1h30m") == 5400
    with pytest.raises(UsageError, match="--cooldown: expected a duration"):
        parse_duration("soon")
    assert cooldown_for({"dockward.update.cooldown": "2h"}, 60) == 7200
    assert cooldown_for({}, 60) == 60


def test_a_digest_pushed_just_now_waits_and_one_seen_long_ago_is_taken(
    mine: Any, registry: Registry, tmp_path: Path
) -> None:
    client = mine
    v1, v2 = build_version(client, "v1-cool"), build_version(client, "v2-cool")
    fresh, aged = f"{PREFIX}-fresh", f"{PREFIX}-aged"
    digests = {}
    for name in (fresh, aged):
        repo = f"{PREFIX}/{name}"
        push(client, v1, registry, repo, "stable")
        c = client.create_container(registry.ref(repo, "stable"), name=name, labels=LABEL)
        client.start(c["Id"])
        digests[name] = push(client, v2, registry, repo, "stable")
    # The registry cannot be aged: the clock is the updater's memory. `aged`'s digest was first
    # seen two hours ago (as a long-running updater would have recorded it).
    (tmp_path / "cooldown.state").write_text(
        json.dumps(
            {
                "version": 1,
                "seen": {
                    f"{registry.host}/{PREFIX}/{aged}@{digests[aged]}": [
                        time.time() - 7200,
                        time.time() - 60,
                    ]
                },
            }
        )
    )
    events = update_once(tmp_path, "--cooldown", "1h", fresh, aged).events
    assert events[aged]["status"] == "updated", events[aged]
    assert events[fresh]["status"] == "waiting", events[fresh]
    assert events[fresh]["reason"].startswith("waiting, 60 minutes left")
    assert client.inspect_container(fresh)["Image"] == v1
    assert client.inspect_container(aged)["Image"] == v2
    # The first sighting of `fresh` is remembered: the next run still waits, less long...
    seen = json.loads((tmp_path / "cooldown.state").read_text())["seen"]
    key = f"{registry.host}/{PREFIX}/{fresh}@{digests[fresh]}"
    assert key in seen
    seen[key][0] -= 1800
    (tmp_path / "cooldown.state").write_text(json.dumps({"version": 1, "seen": seen}))
    events = update_once(tmp_path, "--cooldown", "1h", fresh).events
    assert events[fresh]["reason"].startswith("waiting, 30 minutes left"), events[fresh]
    # ...and without a cooldown it is taken.
    run = update_once(tmp_path, "--cooldown", "0", fresh)
    assert run.events[fresh]["status"] == "updated", run.events[fresh]
    assert run.code == 0, run.err


def test_a_bad_cooldown_is_one_line() -> None:
    res = run_cli("update", "--once", "--cooldown", "soon", f"{PREFIX}-none")
    assert res.code == 2 and "--cooldown: expected a duration" in res.err
    assert len(res.err.strip().splitlines()) == 1
