"""The workload the harden benchmarks measure: busybox httpd serving one page."""

from __future__ import annotations

from typing import Any

from dockward.engine.lab import build_busybox_image
from dockward.harden.runner import Workload

IMAGE = "dwharden/httpd:2"


def httpd_workload(client: Any) -> Workload:
    """Build the httpd image (FROM scratch + busybox-static) and describe its workload."""
    build_busybox_image(
        client,
        IMAGE,
        extra='RUN ["/bin/busybox", "sh", "-c", "echo hello > /var/www/index.html && mkdir -p /data"]',
    )
    return Workload(
        IMAGE,
        command=("httpd", "-f", "-p", "8080", "-h", "/var/www"),
        probe=("timeout", "5", "wget", "-q", "-O-", "http://127.0.0.1:8080/"),
        duration=1.0,
    )
