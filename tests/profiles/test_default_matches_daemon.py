"""dockward's default profile, rendered to JSON, allows and denies what the daemon's built-in does."""

from __future__ import annotations

from typing import Any

import pytest

from dockward.profiles.default import default_profile
from dockward.profiles.seccomp import dumps
from dockward.profiles.syscalls import names_by_number
from tests.profiles.conftest import run_probe

CAP_SETS = [
    (),
    ("SYS_ADMIN",),
    (
        "SYS_PTRACE",
        "SYS_NICE",
        "SYS_TIME",
        "DAC_READ_SEARCH",
        "SYS_MODULE",
        "SYS_BOOT",
        "SYS_PACCT",
        "SYS_RAWIO",
        "SYSLOG",
        "SYS_TTY_CONFIG",
    ),
]


@pytest.mark.parametrize("caps", CAP_SETS, ids=["default-caps", "sys-admin", "other-caps"])
def test_rendered_default_matches_builtin(
    docker_api: Any, probe_image: str, caps: tuple[str, ...]
) -> None:
    builtin = run_probe(docker_api, probe_image, cap_add=caps)
    ours = run_probe(docker_api, probe_image, cap_add=caps, seccomp=dumps(default_profile()))
    assert len(builtin) > 400
    names = names_by_number()
    differ = {
        names.get(nr, str(nr)): (builtin[nr], ours.get(nr))
        for nr in builtin
        if builtin[nr] != ours.get(nr)
    }
    assert differ == {}


def test_probe_sees_a_single_missing_syscall(docker_api: Any, probe_image: str) -> None:
    """The comparison can fail: drop `mkdir` from the profile and the probe reports it."""
    from dataclasses import replace

    prof = default_profile()
    first = prof.syscalls[0]
    smaller = replace(
        prof,
        syscalls=(
            replace(first, names=tuple(n for n in first.names if n != "mkdir")),
            *prof.syscalls[1:],
        ),
    )
    builtin = run_probe(docker_api, probe_image)
    ours = run_probe(docker_api, probe_image, seccomp=dumps(smaller))
    mkdir = 83
    assert builtin[mkdir] != 1 and ours[mkdir] == 1
    assert {nr for nr in builtin if builtin[nr] != ours[nr]} == {mkdir}


def test_unconfined_differs_from_default(docker_api: Any, probe_image: str) -> None:
    builtin = run_probe(docker_api, probe_image)
    unconfined = run_probe(docker_api, probe_image, seccomp="unconfined")
    unshare = 272
    assert builtin[unshare] == 1 and unconfined[unshare] != 1
