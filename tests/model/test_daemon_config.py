"""dockerd argv and daemon.json parsing."""

from __future__ import annotations

from pathlib import Path

from dockward.engine.daemon_config import (
    find_dockerd_argv,
    load_daemon_json,
    merge_settings,
    parse_dockerd_argv,
)


def test_argv_flags_map_to_daemon_json_keys() -> None:
    s = parse_dockerd_argv(
        [
            "dockerd",
            "--icc=false",
            "-H",
            "unix:///x.sock",
            "--host=tcp://0.0.0.0:2375",
            "--tlsverify",
            "--log-level",
            "debug",
            "--insecure-registry",
            "a:5000",
            "--default-ulimit",
            "nofile=100:200",
            "-s",
            "overlay2",
            "--live-restore=false",
            "--userns-remap=default",
        ]
    )
    assert s["icc"] is False and s["tlsverify"] is True and s["live-restore"] is False
    assert s["hosts"] == ["unix:///x.sock", "tcp://0.0.0.0:2375"]
    assert s["log-level"] == "debug" and s["insecure-registries"] == ["a:5000"]
    assert s["default-ulimits"]["nofile"] == {"Name": "nofile", "Soft": 100, "Hard": 200}
    assert s["storage-driver"] == "overlay2" and s["userns-remap"] == "default"


def test_bare_boolean_flags_do_not_swallow_the_next_one() -> None:
    s = parse_dockerd_argv(
        ["dockerd", "--init", "--userns-remap", "default", "--raw-logs", "-D", "--icc=false"]
    )
    assert s["init"] is True and s["raw-logs"] is True and s["debug"] is True
    assert s["userns-remap"] == "default" and s["icc"] is False


def test_argv_wins_over_daemon_json() -> None:
    merged = merge_settings({"log-level": "warn"}, {"log-level": "info", "icc": False})
    assert merged["log-level"].value == "warn" and merged["log-level"].source == "argv"
    assert merged["icc"].source == "daemon.json"


def test_malformed_and_missing_daemon_json(tmp_path: Path) -> None:
    bad = tmp_path / "daemon.json"
    bad.write_text('{"icc": false,,}')
    settings, err = load_daemon_json(str(bad))
    assert settings == {} and err.startswith("invalid JSON at line 1")
    assert load_daemon_json(str(tmp_path / "none.json")) == ({}, "")
    bad.write_text("[1, 2]")
    assert load_daemon_json(str(bad))[1] == "top level is not a JSON object"


def test_find_dockerd_by_socket(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    for pid, argv in (
        ("10", ["dockerd"]),
        ("11", ["/usr/sbin/dockerd", "-H", "unix:///tmp/x.sock"]),
        ("12", ["bash"]),
    ):
        (proc / pid).mkdir(parents=True)
        (proc / pid / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    assert find_dockerd_argv("/tmp/x.sock", str(proc)) == (
        "/usr/sbin/dockerd",
        "-H",
        "unix:///tmp/x.sock",
    )
    assert find_dockerd_argv("/var/run/docker.sock", str(proc)) == ("dockerd",)
    assert find_dockerd_argv("/tmp/other.sock", str(proc)) is None
