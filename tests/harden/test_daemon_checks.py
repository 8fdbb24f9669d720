"""The checks `daemon harden` makes before it writes: subordinate ids and dockerd's value rules."""

from __future__ import annotations

import json
import pwd
from pathlib import Path

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
