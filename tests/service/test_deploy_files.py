"""The deployment files themselves: systemd units verified by systemd, the compose file and the
Dockerfile linted by dockward (dogfooding), the proxy policy valid."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

UNITS = sorted((REPO / "deploy" / "systemd").iterdir())


def _root(tmp_path: Path, units: list[Path]) -> Path:
    """A filesystem root with systemd's own units, the executables the units name, and ours."""
    root = tmp_path / "root"
    (root / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree("/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    for exe in ("opt/dockward/bin/dockward", "bin/kill"):
        (root / exe).parent.mkdir(parents=True, exist_ok=True)
        (root / exe).write_text("#!/bin/sh\n")
        (root / exe).chmod(0o755)
    etc = root / "etc/systemd/system"
    etc.mkdir(parents=True)
    for u in units:
        shutil.copy(u, etc / u.name)
    return root


def _verify(root: Path, names: list[str]) -> subprocess.CompletedProcess[str]:
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing: scripts/setup.sh --test installs systemd")
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *names],
        cwd=root / "etc/systemd/system", capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_systemd_units_verify_and_are_sandboxed(tmp_path: Path) -> None:
    names = [u.name for u in UNITS]
    assert {"dockward-proxy.service", "dockward-monitor.service", "dockward-update.service",
            "dockward-audit.timer", "dockward-scan.timer"} <= set(names)  # fmt: skip
    root = _root(tmp_path, UNITS)
    r = _verify(root, names)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    for name in names:
        if not name.endswith(".service"):
            continue
        out = subprocess.run(
            ["systemd-analyze", "security", "--offline=yes", f"--root={root}", name],
            cwd=root / "etc/systemd/system", capture_output=True, text=True, timeout=60,
        ).stdout  # fmt: skip
        level = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", out)[1])  # type: ignore[index]
        assert level <= 3.0, (name, out[-2000:])


def test_a_broken_unit_fails_verification(tmp_path: Path) -> None:
    bad = tmp_path / "dockward-proxy.service"
    text = (REPO / "deploy/systemd/dockward-proxy.service").read_text()
    bad.write_text(
        text.replace("ExecStart=/opt/dockward/bin/dockward", "ExecStart=dockward-missing")
    )
    r = _verify(_root(tmp_path, [bad]), [bad.name])
    assert r.returncode != 0


def test_dockerfile_and_compose_lint_clean_at_medium(tmp_path: Path) -> None:
    env = {"DOCKER_GID": "999"}  # what scripts/build-image.sh writes into deploy/.env
    r = run_cli("lint", "Dockerfile", "deploy/compose.yaml", "--fail-on", "medium", "-f", "json",
                cwd=REPO, env=env)  # fmt: skip
    assert r.code == 0, r.out[-3000:]
    assert '"waived"' in r.out  # the exceptions are waived where they are made, with reasons


def test_the_deployment_policy_is_valid() -> None:
    r = run_cli("proxy", "--policy", str(REPO / "deploy/proxy-policy.yaml"), "--check")
    assert r.code == 0, r.err
