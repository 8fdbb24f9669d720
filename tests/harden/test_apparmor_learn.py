"""AppArmor file rules learned from a real run: the programs it executed (the `exe` of its
seccomp audit records) and what it wrote (`docker diff`), accepted by `apparmor_parser -Q -K`.
This kernel has no AppArmor, so the profile is compiled, not enforced."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from dockward.harden.apparmor_learn import learn_apparmor, writable_paths
from dockward.harden.learn import learn_seccomp
from dockward.harden.propose import observe
from dockward.harden.runner import Settings, Workload
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


def test_learned_file_rules(docker_api: Any, tool_image: str) -> None:
    w = Workload(
        tool_image,
        command=("sh", "-c", "/opt/echo hi > /srv/out && cat /srv/out"),
        duration=5,
    )
    learned = learn_seccomp(docker_api, w, prefix=PREFIX, service=False)
    assert learned.executables == {"/bin/busybox", "/opt/echo"}  # not runc's memfd copy
    obs = observe(docker_api, w, Settings(), prefix=PREFIX, service=False)
    assert "/srv/out" in obs.written
    aa = learn_apparmor("tool", Settings(cap_drop=("ALL",)), learned.executables, obs.written)
    assert aa.spec.strict_files
    lines = {line.strip() for line in aa.text.splitlines()}
    assert {"/bin/busybox ix,", "/opt/echo ix,", "/srv/** rwk,", "/** r,"} <= lines
    assert "file," not in lines  # docker-default's allow-everything rule is replaced
    if shutil.which("apparmor_parser"):
        assert aa.validated is True


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
