"""CLI conventions: exit codes, one-line errors, env twins, atomic output, waivers."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from dockward.cli import main
from tests.audit.lab import LAB
from tests.conftest import run_cli


def test_usage_error_is_one_line_exit_2() -> None:
    res = run_cli("audit", "--no-such-flag")
    assert res.code == 2
    assert res.err.count("\n") == 1 and "Traceback" not in res.err


def test_bad_fail_on_value() -> None:
    res = run_cli("audit", "--fail-on", "severe", "-H", "unix:///nonexistent.sock")
    assert res.code == 2 and "unknown severity" in res.err and res.err.count("\n") == 1


def test_unreachable_daemon_is_one_line_exit_2() -> None:
    res = run_cli("audit", "-H", "unix:///tmp/dw-no-daemon.sock")
    assert res.code == 2
    assert res.err.strip() == (
        "dockward: error: cannot reach the Docker daemon at unix:///tmp/dw-no-daemon.sock: "
        "No such file or directory"
    )


def test_env_twin_for_host() -> None:
    res = run_cli("audit", env={"DOCKWARD_HOST": "unix:///tmp/dw-env.sock"})
    assert res.code == 2 and "dw-env.sock" in res.err


def test_internal_error_is_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import dockward.catalog as rules_cli

    def boom(*_a: Any) -> None:
        raise RuntimeError("kaput")

    monkeypatch.setattr(rules_cli, "default_rules", boom)
    assert main(["rules", "list", "--format", "json"]) == 3
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: kaput" in err and "Traceback" not in err


def test_rules_list_json() -> None:
    res = run_cli("rules", "list", "--format", "json")
    assert res.code == 0
    rules = json.loads(res.out)
    by_id = {r["id"]: r for r in rules}
    assert by_id["DW-C001"]["cis"] == "5.5" and by_id["DW-C001"]["severity"] == "critical"
    assert all(r["remediation"] and r["doc"] for r in rules)


def test_malformed_config_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "dockward.toml"
    cfg.write_text("[[waivers]]\nrule = 'DW-C001'\n")
    res = run_cli("audit", "--config", str(cfg))
    assert res.code == 2 and "needs a `reason`" in res.err and res.err.count("\n") == 1
    cfg.write_text("this is = = not toml")
    res = run_cli("audit", "--config", str(cfg))
    assert res.code == 2 and "invalid TOML" in res.err


@pytest.fixture(scope="module")
def lab(docker_api: Any, lab_image: str) -> None:
    from tests.audit.lab import build_lab

    names = {
        c["Names"][0].lstrip("/")
        for c in docker_api.containers(all=True, filters={"label": "dockward.test=dwaudit"})
    }
    if f"{LAB}-privileged" not in names or f"{LAB}-good" not in names:
        build_lab(docker_api, lab_image)


def test_fail_on_threshold_and_env_twin(lab: None) -> None:
    privileged = ("--check", "DW-C001")
    assert run_cli("audit", *privileged, "-f", "json").code == 1  # critical >= low
    assert run_cli("audit", *privileged, "-f", "json", "--fail-on", "never").code == 0
    assert (
        run_cli("audit", "--check", "DW-C013", "-f", "json", "--fail-on", "medium").code == 0
    )  # low < medium
    assert (
        run_cli(
            "audit", *privileged, env={"DOCKWARD_FAIL_ON": "never", "DOCKWARD_FORMAT": "json"}
        ).code
        == 0
    )


def test_output_file_is_written_atomically(lab: None, tmp_path: Path) -> None:
    out = tmp_path / "r.sarif"
    res = run_cli("audit", "--check", "DW-C001", "-o", str(out), "--fail-on", "never")
    assert res.code == 0 and res.out == ""
    doc = json.loads(out.read_text())
    assert doc["version"] == "2.1.0"
    assert not list(tmp_path.glob(".*.tmp"))
    # An unwritable destination: exit 2, one line, the old file untouched.
    res = run_cli("audit", "--check", "DW-C001", "-o", str(tmp_path / "missing-dir" / "r.json"))
    assert res.code == 2 and "cannot write" in res.err


def test_config_waiver_and_unmatched_warning(lab: None, tmp_path: Path) -> None:
    cfg = tmp_path / "dockward.toml"
    cfg.write_text(
        f'[[waivers]]\nrule = "5.5"\ntarget = "container {LAB}-privileged"\nreason = "lab"\n'
        '[[waivers]]\nrule = "DW-C999"\nreason = "stale"\n'
    )
    res = run_cli("audit", "--check", "DW-C001", "-f", "json", "--config", str(cfg))
    report = json.loads(res.out)
    mine = [r for r in report["results"] if r["target"] == f"container {LAB}-privileged"]
    assert mine[0]["waived"] == "lab"
    assert report["summary"]["counts"]["waived"] >= 1
    assert any("DW-C999" in w and "matched nothing" in w for w in report["warnings"])


def test_label_waiver(docker_api: Any, lab_image: str) -> None:
    name = "dwaudit-labelwaiver"
    with contextlib.suppress(Exception):
        docker_api.remove_container(name, force=True)
    docker_api.create_container(
        lab_image,
        name=name,
        labels={
            "dockward.test": "dwaudit",
            "dockward.ignore": "DW-C012, 5.29",
            "dockward.ignore.reason": "batch job",
        },
    )
    res = run_cli(
        "audit",
        "--check",
        "DW-C012",
        "--check",
        "DW-C027",
        "--check",
        "DW-C014",
        "-f",
        "json",
        "--fail-on",
        "never",
    )
    mine = {
        r["rule_id"]: r
        for r in json.loads(res.out)["results"]
        if r["target"] == f"container {name}"
    }
    assert mine["DW-C012"]["waived"] == "label: batch job"
    assert mine["DW-C027"]["waived"] == "label: batch job"
    assert "waived" not in mine["DW-C014"] and mine["DW-C014"]["status"] == "fail"
    # A label waiver that waives nothing is reported (only on a full run).
    docker_api.remove_container(name, force=True)
    docker_api.create_container(
        lab_image,
        name=name,
        labels={
            "dockward.test": "dwaudit",
            "dockward.ignore": "DW-C001",
            "dockward.ignore.reason": "x",
        },
    )
    res = run_cli("audit", "-f", "json", "--fail-on", "never")
    warnings = json.loads(res.out)["warnings"]
    assert any(f"label waiver DW-C001 on container {name} matched nothing" in w for w in warnings)
    docker_api.remove_container(name, force=True)


def test_unknown_check_is_a_usage_error() -> None:
    res = run_cli("audit", "--check", "DW-NOPE", "-H", "unix:///tmp/none.sock")
    assert res.code == 2 and "no rule matches DW-NOPE" in res.err


def test_container_removed_during_collection(docker_api: Any, lab_image: str) -> None:
    """A container that disappears between list and inspect is a warning, never a crash."""
    from dockward.engine import collect_snapshot, resolve_endpoint

    name = "dwaudit-vanishing"
    with contextlib.suppress(Exception):
        docker_api.remove_container(name, force=True)
    victim = docker_api.create_container(lab_image, name=name, labels={"dockward.test": "dwaudit"})[
        "Id"
    ]
    real_inspect = docker_api.inspect_container

    def racing_inspect(cid: str) -> Any:
        if cid == victim:
            docker_api.remove_container(victim, force=True)  # really gone, the daemon says 404
        return real_inspect(cid)

    docker_api.inspect_container = racing_inspect
    try:
        snap = collect_snapshot(docker_api, resolve_endpoint("unix:///var/run/docker.sock"))
    finally:
        del docker_api.inspect_container
    assert all(c.id != victim for c in snap.containers)
    assert any(victim[:12] in w and "disappeared" in w for w in snap.warnings)
