"""Learned seccomp profiles and capability sets, enforced for real by runc."""

from __future__ import annotations

from typing import Any

import pytest

from dockward.harden.caps import minimal_capabilities
from dockward.harden.learn import learn_seccomp, verify_seccomp
from dockward.harden.runner import Settings, exec_in, run_once, started
from dockward.profiles.default import default_for
from dockward.profiles.seccomp import allowed, dumps
from tests.harden.conftest import PREFIX, chown_workload, httpd_workload, ping_workload


@pytest.fixture(scope="module")
def learned_httpd(docker_api: Any, httpd_image: str) -> Any:
    return learn_seccomp(docker_api, httpd_workload(httpd_image), prefix=PREFIX, service=True)


def test_learned_httpd_profile_works_and_is_small(
    docker_api: Any, httpd_image: str, learned_httpd: Any
) -> None:
    lp = learned_httpd
    assert {"accept", "bind", "listen", "sendfile", "execve"} <= lp.observed
    assert lp.lost in (0, None)
    assert lp.executables == {"/bin/busybox"}  # httpd is a busybox applet
    assert lp.syscall_count < len(allowed(default_for())) / 3
    outcome = verify_seccomp(
        docker_api, httpd_workload(httpd_image), Settings(), lp.profile, prefix=PREFIX, service=True
    )
    assert outcome.ok, outcome.reason
    assert outcome.probe_output.strip() == "hello"


def test_calls_outside_the_learned_profile_are_denied(
    docker_api: Any, httpd_image: str, learned_httpd: Any
) -> None:
    w = httpd_workload(httpd_image)
    assert "mkdir" not in allowed(learned_httpd.profile)
    with started(docker_api, w, Settings(), prefix=PREFIX) as cid:
        code, _ = exec_in(docker_api, cid, ("mkdir", "/tmp/x"))
        assert code == 0  # Docker's default allows it
    with started(
        docker_api, w, Settings(seccomp=dumps(learned_httpd.profile)), prefix=PREFIX
    ) as cid:
        code, out = exec_in(docker_api, cid, ("mkdir", "/tmp/y"))
        assert code != 0 and "Operation not permitted" in out
        code, out = exec_in(docker_api, cid, ("unshare", "-n", "true"))
        assert code != 0


def test_minimal_caps_for_chown(docker_api: Any, httpd_image: str) -> None:
    result = minimal_capabilities(
        docker_api, chown_workload(httpd_image), prefix=PREFIX, service=False
    )
    assert result.cap_add == ("CHOWN",)
    assert len(result.before) == 14
    # the proof: without CHOWN the same workload fails
    assert any(t.caps == () and not t.outcome.ok for t in result.trials)


def test_minimal_caps_for_raw_socket(docker_api: Any, httpd_image: str) -> None:
    result = minimal_capabilities(
        docker_api, ping_workload(httpd_image), prefix=PREFIX, service=False
    )
    assert result.cap_add == ("NET_RAW",)
    # a raw socket is denied under a set that lacks NET_RAW
    denied = run_once(
        docker_api,
        ping_workload(httpd_image),
        Settings(cap_drop=("ALL",), cap_add=("CHOWN",)),
        prefix=PREFIX,
        service=False,
    )
    assert not denied.ok


def test_httpd_needs_no_capability(docker_api: Any, httpd_image: str) -> None:
    result = minimal_capabilities(
        docker_api, httpd_workload(httpd_image), prefix=PREFIX, service=True
    )
    assert result.cap_add == ()
    assert len(result.trials) == 2
