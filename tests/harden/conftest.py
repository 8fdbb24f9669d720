"""Workload images built here (FROM scratch + busybox-static) and cleanup of this area's leftovers."""

from __future__ import annotations

from typing import Any

import pytest

from dockward.harden.runner import Workload

PREFIX = "dwharden"
HTTPD_IMAGE = "dwharden/httpd:2"


@pytest.fixture(scope="session")
def httpd_image(docker_api: Any) -> str:
    from dockward.engine.lab import build_busybox_image
    from dockward.harden.runner import remove_stale

    remove_stale(docker_api, PREFIX)
    build_busybox_image(
        docker_api,
        HTTPD_IMAGE,
        extra='RUN ["/bin/busybox", "sh", "-c", "echo hello > /var/www/index.html && mkdir -p /data"]',
        labels={"dockward.test": PREFIX},
    )
    return HTTPD_IMAGE


def httpd_workload(image: str) -> Workload:
    return Workload(
        image,
        command=("httpd", "-f", "-p", "8080", "-h", "/var/www"),
        probe=("timeout", "5", "wget", "-q", "-O-", "http://127.0.0.1:8080/"),
        duration=1.0,
    )


def chown_workload(image: str) -> Workload:
    return Workload(
        image, command=("sh", "-c", "touch /tmp/f && chown 1000:1000 /tmp/f"), duration=5
    )


def ping_workload(image: str) -> Workload:
    return Workload(image, command=("ping", "-c", "1", "-W", "2", "127.0.0.1"), duration=5)


def writer_workload(image: str) -> Workload:
    return Workload(
        image, command=("sh", "-c", "echo data > /data/out && cat /data/out"), duration=5
    )
