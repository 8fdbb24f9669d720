"""kill -9 at every step of an update; the next run must finish it or roll it back."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.update.conftest import LABEL, PREFIX, Registry, build_version, push
from tests.update.test_update_e2e import _update, events

PRE_COMMIT = ("begin", "stopped", "renamed", "created", "started")
POST_COMMIT = ("healthy", "removed")


@pytest.mark.parametrize("step", PRE_COMMIT + POST_COMMIT)
def test_kill_at_each_step_then_recover(
    clean: Any, registry: Registry, tmp_path: Path, step: str
) -> None:
    client = clean
    v1, v2 = build_version(client, "v1"), build_version(client, "v2")
    repo, name = f"{PREFIX}/crash", f"{PREFIX}-crash"
    push(client, v1, registry, repo, "stable")
    c = client.create_container(
        registry.ref(repo, "stable"), name=name, labels={**LABEL, "dockward.update": "true"}
    )
    client.start(c["Id"])
    push(client, v2, registry, repo, "stable")

    crashed = run_cli(
        "update",
        "--once",
        "--state-dir",
        str(tmp_path),
        "--stop-timeout",
        "1",
        "--min-uptime",
        "1",
        "--format",
        "json",
        env={"DOCKWARD_UPDATE_CRASH_AFTER": step},
    )
    assert crashed.code == -signal.SIGKILL, crashed.err
    assert len(list(tmp_path.glob("*.json"))) == 1  # the journal survived the kill

    code, doc, err = _update(tmp_path, "--monitor-only")
    assert list(tmp_path.glob("*.json")) == []
    assert any(step in w or "recovered" in w for w in doc["warnings"]), doc["warnings"]
    ours = client.containers(all=True, filters={"label": f"dockward.test={PREFIX}"})
    assert [x["Names"] for x in ours] == [[f"/{name}"]]  # nothing lost, nothing left over
    now = client.inspect_container(name)
    assert now["State"]["Running"]
    if step in PRE_COMMIT:
        assert now["Id"] == c["Id"] and now["Image"] == v1
        assert "rolled-back" in doc["warnings"][0]
        assert events(doc)[name]["status"] == "outdated"
        if step != "started":
            return  # restored; one step is enough to show the next run then completes the update
        code, doc, err = _update(tmp_path)
        assert code == 0, err
        assert events(doc)[name]["status"] == "updated"
        assert client.inspect_container(name)["Image"] == v2
    else:
        assert now["Id"] != c["Id"] and now["Image"] == v2
        assert "finished" in doc["warnings"][0]
        assert events(doc)[name]["status"] == "current"
    assert code == 0, err


def test_second_run_waits_for_the_lock(clean: Any, tmp_path: Path) -> None:
    from dockward.errors import DockwardError
    from dockward.update import Journal

    with Journal(tmp_path).locked():
        res = run_cli("update", "--once", "--state-dir", str(tmp_path), "--format", "json")
        assert res.code == 2 and "another dockward update" in res.err
        with pytest.raises(DockwardError), Journal(tmp_path).locked():
            pass
