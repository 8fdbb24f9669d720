"""The deployment's security settings are `dockward harden`'s proposals, kept in deploy/harden/.

scripts/harden-deploy.py hardens each deployed service on the engine and stores its proposal;
`--check` compares deploy/compose.yaml and deploy/systemd/ with the stored proposals (each
exception waived by the service's `dockward.harden.waive` label, with its reason). These tests
run the check on the shipped files, and show that it catches a setting that drifted from the
proposal, a waiver without a reason, a stale waiver and a systemd unit that disagrees.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

SCRIPT = REPO / "scripts/harden-deploy.py"
SERVICES = ("proxy", "update", "monitor", "audit", "scan")
WAIVE = "dockward.harden.waive"


def _check(compose: Path, units: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--compose", str(compose), "--units", str(units),
         "--harden-dir", str(REPO / "deploy/harden")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _copy(tmp_path: Path) -> tuple[Path, Path]:
    compose = tmp_path / "compose.yaml"
    shutil.copy(REPO / "deploy/compose.yaml", compose)
    units = tmp_path / "systemd"
    shutil.copytree(REPO / "deploy/systemd", units)
    return compose, units


def _edit(compose: Path, change: Callable[[dict[str, Any]], None]) -> None:
    doc = yaml.safe_load(compose.read_text())  # anchors merged: each service complete
    change(doc["services"])
    compose.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_every_service_has_a_verified_proposal() -> None:
    for name in SERVICES:
        summary = json.loads((REPO / f"deploy/harden/{name}.json").read_text())
        assert summary["verified"] is True, (name, summary["broken_by"])
        assert summary["trial"]["command"].startswith(f"dockward harden deploy/compose.yaml:{name}")
        override = yaml.safe_load((REPO / f"deploy/harden/{name}.override.yml").read_text())
        assert set(override["services"]) == {name}


def test_the_deployment_follows_the_proposals() -> None:
    r = _check(REPO / "deploy/compose.yaml", REPO / "deploy/systemd")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == ""


def test_the_monitor_keeps_exactly_the_measured_capabilities() -> None:
    override = yaml.safe_load((REPO / "deploy/harden/monitor.override.yml").read_text())
    assert sorted(override["services"]["monitor"]["cap_add"]) == [
        "AUDIT_CONTROL", "AUDIT_READ", "NET_ADMIN",
    ]  # fmt: skip
    for name in ("proxy", "update", "audit", "scan"):
        override = yaml.safe_load((REPO / f"deploy/harden/{name}.override.yml").read_text())
        assert "cap_add" not in override["services"][name], name


def _svc_change(service: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(services: dict[str, Any]) -> None:
        services[service][key] = value

    return change


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (_svc_change("proxy", "cap_add", ["NET_ADMIN"]), "proxy: cap_add is ('NET_ADMIN',)"),
        (_svc_change("update", "read_only", False), "update: read_only is False"),
        (_svc_change("audit", "security_opt", []), "audit: no-new-privileges is False"),
        (
            _svc_change("monitor", "mem_limit", "1g"),
            "monitor: mem_limit is 1024m, harden proposes ",
        ),
        (
            _svc_change("monitor", "labels", {"dockward.harden.waive": "user"}),
            "monitor: dockward.harden.waive without dockward.harden.waive.reason",
        ),
        (
            _svc_change("scan", "labels", {WAIVE: "read_only", f"{WAIVE}.reason": "none"}),
            "scan: read_only is waived but equals the proposal",
        ),
    ],
)
def test_a_drift_from_the_proposal_is_an_error(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], complaint: str
) -> None:
    compose, units = _copy(tmp_path)
    _edit(compose, change)
    r = _check(compose, units)
    assert r.returncode == 1
    assert complaint in r.stdout, r.stdout


@pytest.mark.parametrize(
    ("unit", "line", "replacement", "complaint"),
    [
        ("monitor", "CapabilityBoundingSet=", "CapabilityBoundingSet=CAP_SYS_ADMIN ",
         "dockward-monitor.service: CapabilityBoundingSet is ('AUDIT_CONTROL', 'AUDIT_READ', "
         "'NET_ADMIN', 'SYS_ADMIN')"),
        ("proxy", "NoNewPrivileges=yes", "NoNewPrivileges=no",
         "dockward-proxy.service: NoNewPrivileges is False"),
        ("update", "TasksMax=", "TasksMax=1", "dockward-update.service: TasksMax is 1"),
    ],
)  # fmt: skip
def test_a_systemd_unit_that_disagrees_is_an_error(
    tmp_path: Path, unit: str, line: str, replacement: str, complaint: str
) -> None:
    compose, units = _copy(tmp_path)
    path = units / f"dockward-{unit}.service"
    text = path.read_text()
    assert line in text
    path.write_text(text.replace(line, replacement, 1))
    r = _check(compose, units)
    assert r.returncode == 1
    assert complaint in r.stdout, r.stdout
