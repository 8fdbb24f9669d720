"""DW-C041 on a real daemon: the shared dockerd knows only runc's names, so a daemon of its own
registers a runtime dockward does not know (runc under another name, as a site would register a
custom one) and the audit judges containers created with it and without it."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from dockward.engine import connect, resolve_endpoint
from dockward.engine.lab import build_busybox_image
from tests.audit.daemons import Daemon, start_dockerd, stop, wait_ready
from tests.conftest import run_cli

IMAGE = "dockward-lab/busybox:1.0"


@pytest.fixture(scope="module")
def daemon(docker_api: Any) -> Iterator[Daemon]:
    if os.geteuid() != 0:
        pytest.skip("starting an extra dockerd needs root (the test command runs as root)")
    runc = shutil.which("runc") or "runc"
    d = start_dockerd(
        "dwaudit-rt", {"runtimes": {"dwaudit-custom": {"path": runc}}}, netns="dwaudit-rt"
    )
    try:
        wait_ready(d)
        yield d
    finally:
        stop(d)


def test_unknown_runtime_fails_and_runc_passes(daemon: Daemon) -> None:
    client = connect(resolve_endpoint(daemon.url), timeout=120)
    try:
        build_busybox_image(client, IMAGE)
        for name, runtime in (("dwrt-custom", "dwaudit-custom"), ("dwrt-runc", None)):
            hc = client.create_host_config(runtime=runtime) if runtime else None
            client.create_container(IMAGE, command=["true"], name=name, host_config=hc)
    finally:
        client.close()
    res = run_cli(
        "audit", "-H", daemon.url, "--check", "DW-C041", "-f", "json", "--fail-on", "never"
    )
    assert res.code == 0, res.err
    got = {r["target"]: r["status"] for r in json.loads(res.out)["results"]}
    assert got == {"container dwrt-custom": "fail", "container dwrt-runc": "pass"}
