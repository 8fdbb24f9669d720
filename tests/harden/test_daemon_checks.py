"""The checks `daemon harden` makes before it writes: subordinate ids and dockerd's value rules."""

from __future__ import annotations

import json
import pwd
from pathlib import Path
from typing import Any

import pytest

from dockward.harden.daemon_keys import value_problems
from dockward.harden.subids import IdRange, check_remap, parse_subid


def test_parse_subid_by_name_and_uid() -> None:
    text = "# comment\ndockremap:100000:65536\nbad line\nother:200000:10\n104:300000:65536\nx:y:z\n"
    assert parse_subid(text, {"dockremap"}) == (IdRange(100000, 65536),)
    assert parse_subid(text, {"dockremap", "104"}) == (
        IdRange(100000, 65536),
        IdRange(300000, 65536),
    )
    assert parse_subid(text, {"nobody"}) == ()
    assert str(IdRange(100000, 65536)) == "100000-165535"


def _files(tmp_path: Path, line: str, group: str = "") -> dict[str, str]:
    """The same range for the user in subuid and (by the group's name) in subgid."""
    (tmp_path / "subuid").write_text(line)
    user = line.partition(":")[0]
    (tmp_path / "subgid").write_text(line.replace(f"{user}:", f"{group}:", 1) if group else line)
    return {"subuid": str(tmp_path / "subuid"), "subgid": str(tmp_path / "subgid")}


def test_named_user_needs_ranges(tmp_path: Path) -> None:
    user = pwd.getpwuid(65534).pw_name  # nobody: exists, has no ranges
    group = "nogroup"
    check = check_remap(f"{user}:{group}", **_files(tmp_path, ""))
    assert check.problems and "no subordinate uid range" in check.problems[0]
    check = check_remap(f"{user}:{group}", **_files(tmp_path, f"{user}:0:65536\n"))
    assert any("starts at 0" in p for p in check.problems)
    check = check_remap(f"{user}:{group}", **_files(tmp_path, f"{user}:300000:65536\n", group))
    assert check.problems == () and check.root_uid == 300000 and check.root_gid == 300000
    check = check_remap(f"{user}:{group}", **_files(tmp_path, f"{user}:300000:1000\n", group))
    assert check.problems == () and any("only 1000" in n for n in check.notes)


def test_unknown_user_is_a_problem(tmp_path: Path) -> None:
    check = check_remap("dwharden2-no-such-user", **_files(tmp_path, ""))
    assert any("does not exist" in p for p in check.problems)


def test_default_is_created_by_dockerd_when_missing(tmp_path: Path) -> None:
    check = check_remap("default", **_files(tmp_path, ""))
    assert check.user == "dockremap" and check.problems == ()
    assert any("dockerd will create" in n for n in check.notes)
    check = check_remap("default", **_files(tmp_path, "dockremap:100000:65536\n"))
    assert check.root_uid == 100000


def test_value_problems(tmp_path: Path) -> None:
    good = {
        "icc": False,
        "log-level": "info",
        "ip": "127.0.0.1",
        "userns-remap": "default",
        "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 2048}},
        "log-opts": {"max-size": "10m", "max-file": "3"},
        "unknown-key": [1, 2],
    }
    assert value_problems(good) == []
    assert value_problems({"icc": "false"}) == ['icc must be true or false, not "false"']
    assert "log-level" in value_problems({"log-level": "verbose"})[0]
    assert "ip must be" in value_problems({"ip": "localhost"})[0]
    assert (
        "Soft <= Hard"
        in value_problems(
            {"default-ulimits": {"nofile": {"Name": "nofile", "Soft": 9, "Hard": 1}}}
        )[0]
    )
    assert (
        "not accepted by the syslog driver"
        in value_problems({"log-driver": "syslog", "log-opts": {"max-size": "10m"}})[0]
    )
    assert "strings" in value_problems({"log-opts": {"max-file": 3}})[0]
    assert "absolute" in value_problems({"seccomp-profile": "rel.json"})[0]
    prof = tmp_path / "p.json"
    prof.write_text(json.dumps({"syscalls": []}))
    assert "defaultAction" in value_problems({"seccomp-profile": str(prof)})[0]
    prof.write_text(json.dumps({"defaultAction": "SCMP_ACT_ERRNO"}))
    assert value_problems({"seccomp-profile": str(prof)}) == []
    prof.write_text(json.dumps({"defaultAction": "SCMP_ACT_NOPE"}))
    assert "unknown action" in value_problems({"seccomp-profile": str(prof)})[0]


def _plan(
    tmp_path: Path, file: dict[str, object], info: dict[str, object] | None = None, **kw: Any
) -> Any:
    """A plan over the rule examples' host (hardened /info) with this daemon.json."""
    from dockward.harden.daemon import DaemonOptions, plan
    from dockward.rules.daemon import example_snapshot

    cfg = tmp_path / "daemon.json"
    cfg.write_text(json.dumps(file))
    snap = example_snapshot(info=info)
    return plan(snap, DaemonOptions(**kw), str(cfg), nofile_ceiling=4096)


def test_plan_blocks_what_would_break_the_daemon(tmp_path: Path) -> None:
    p = _plan(
        tmp_path,
        {"iptables": False, "seccomp-profile": "unconfined", "log-opts": {"max-size": "1m"}},
        {
            "LoggingDriver": "json-file",
            "Swarm": {"LocalNodeState": "active"},
            "SecurityOptions": ["name=seccomp,profile=unconfined"],
        },
        log_driver="syslog",
        userns_remap="dwharden2-no-such-user",
    )
    blocked = {b.key: b.message for b in p.blocked}
    assert "live-restore" not in blocked  # not applicable in swarm mode (dockerd refuses it)
    assert "live-restore" not in {c.key for c in p.changes}
    assert "iptables is off" in blocked["userland-proxy"]
    assert "max-size" in blocked["log-driver"]
    assert "does not exist" in blocked["userns-remap"]
    changes = {c.key: c for c in p.changes}
    assert changes["seccomp-profile"].remove and "seccomp-profile" not in p.proposed
    # nofile capped at dockerd's own hard limit
    assert changes["default-ulimits"].new["nofile"] == {
        "Name": "nofile",
        "Soft": 4096,
        "Hard": 4096,
    }
    assert p.proposed["iptables"] is False  # a user's choice is reported, never dropped
    assert any(m.rule == "DW-D004" for m in p.manual)
    assert p.conflicts == ()


def test_plan_keeps_unknown_keys_and_warns(tmp_path: Path) -> None:
    p = _plan(tmp_path, {"dwharden2-key": 1, "icc": True})
    assert p.proposed["dwharden2-key"] == 1 and p.proposed["icc"] is False
    assert list(p.proposed)[:2] == ["dwharden2-key", "icc"]  # key order kept
    assert any("dwharden2-key" in w for w in p.warnings) is False  # the example engine is 28.x


def test_interrupted_write_leaves_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from dockward.errors import ConfigError
    from dockward.harden.daemon import apply

    p = _plan(tmp_path, {"icc": True})
    before = (tmp_path / "daemon.json").read_text()

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(ConfigError, match="No space left"):
        apply(p)
    monkeypatch.undo()
    assert (tmp_path / "daemon.json").read_text() == before
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
