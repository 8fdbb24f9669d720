"""AppArmor file rules learned from a real run: the programs it executed (the `exe` of its
seccomp audit records) and what it wrote (`docker diff`), accepted by `apparmor_parser -Q -K`.
This kernel has no AppArmor, so the profile is compiled, not enforced."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from dockward.harden.apparmor_learn import learn_apparmor, writable_paths
from dockward.harden.runner import Settings
from dockward.profiles.apparmor import validate
from tests.conftest import run_cli
from tests.harden.conftest import PREFIX

TOOL_IMAGE = "dwharden2/tool:2"


@pytest.fixture(scope="module")
def tool_image(docker_api: Any) -> str:
    from dockward.engine.lab import build_busybox_image

    build_busybox_image(
        docker_api,
        TOOL_IMAGE,
        extra='RUN ["/bin/busybox", "sh", "-c", "mkdir -p /opt /srv && cp /bin/busybox /opt/echo"]',
        labels={"dockward.test": "dwharden2"},
    )
    return TOOL_IMAGE


def test_learned_file_rules(docker_api: Any, tool_image: str, tmp_path: Path) -> None:
    """`profile apparmor-learn`: both programs the workload ran (not runc's own copy) get `ix`,
    the directory it wrote gets `rwk`, and docker-default's `file,` is gone."""
    out = tmp_path / "tool.apparmor"
    r = run_cli(
        "profile", "apparmor-learn", "--image", tool_image, "--one-shot", "--duration", "5",
        "--prefix", PREFIX, "--name", "tool", "-o", str(out),
        "--", "sh", "-c", "/opt/echo hi > /srv/out && cat /srv/out",
        timeout=240,
    )  # fmt: skip
    assert r.code == 0, r.err
    lines = {line.strip() for line in out.read_text().splitlines()}
    assert {"/bin/busybox ix,", "/opt/echo ix,", "/srv/** rwk,", "/** r,"} <= lines
    assert {x for x in lines if x.endswith(" ix,")} == {"/bin/busybox ix,", "/opt/echo ix,"}
    assert "file," not in lines  # docker-default's allow-everything rule is replaced
    assert "profile docker-tool " in out.read_text()
    if shutil.which("apparmor_parser"):
        validate(out.read_text())


def test_writable_paths() -> None:
    assert writable_paths(("/srv/out", "/rootfile", "/var/cache/x/y"), ("/run",)) == (
        "/rootfile",
        "/run/**",
        "/srv/**",
        "/var/cache/**",
    )


def test_unsafe_or_missing_paths_keep_file_rule() -> None:
    aa = learn_apparmor("t", Settings(), ["/bin/busybox", "/opt/a,b"], ["/srv/x"])
    assert not aa.spec.strict_files and "cannot be written" in aa.note
    assert "file," in {line.strip() for line in aa.text.splitlines()}
    aa = learn_apparmor("t", Settings(), [], ["/srv/x"])
    assert not aa.spec.strict_files and "no program" in aa.note
