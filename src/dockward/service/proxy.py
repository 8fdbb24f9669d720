"""The proxy's metrics and health: observers on its decision log, counted in every worker.

The workers are forked processes, so the counters use prometheus_client's multiprocess mode:
the caller sets PROMETHEUS_MULTIPROC_DIR before prometheus_client is first imported (see
`dockward proxy --metrics-listen`), each process writes its own file there, and the parent's
/metrics sums them.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from dockward.proxy import audit
from dockward.service.health import Health
from dockward.service.http import MetricsServer

REQUESTS = Counter(
    "dockward_proxy_requests",
    "requests by API route, decision (allow, deny, error) and policy client",
    ["route", "decision", "client"],
    registry=None,
)
LATENCY = Histogram(
    "dockward_proxy_request_duration_seconds",
    "time from a request's head to its answer (streams: to their end), by decision",
    ["decision"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60),
    registry=None,
)
UPSTREAM_ERRORS = Counter(
    "dockward_proxy_upstream_errors", "requests the Docker daemon could not answer", registry=None
)
RELOADS = Counter(
    "dockward_proxy_policy_reloads", "policy reloads by outcome (ok, failed)", ["outcome"],
    registry=None,
)  # fmt: skip


def observe(kind: str, fields: dict[str, Any]) -> None:
    if kind == "decision":
        decision = str(fields.get("decision") or "unknown")
        route = str(fields.get("route") or "unmatched")
        REQUESTS.labels(route, decision, str(fields.get("client_name") or "")).inc()
        latency = fields.get("latency_ms")
        if isinstance(latency, int | float):
            LATENCY.labels(decision).observe(latency / 1000.0)
        if decision == "error" and fields.get("rule") == "upstream":
            UPSTREAM_ERRORS.inc()
    elif kind == "policy reloaded":
        RELOADS.labels("ok").inc()
    elif kind.startswith("policy reload failed"):
        RELOADS.labels("failed").inc()


def ping_upstream(path: str, timeout: float = 2.0) -> tuple[bool, str]:
    """GET /_ping on the engine socket the proxy forwards to."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            head = s.recv(256).split(b"\r\n", 1)[0].decode("latin-1")
    except OSError as exc:
        return False, f"{path}: {exc.strerror or exc}"
    ok = head.startswith("HTTP/1.") and " 200" in head
    return ok, head or "no answer"


def listening(path: str) -> tuple[bool, str]:
    try:
        return (True, "socket") if stat.S_ISSOCK(os.stat(path).st_mode) else (False, "not a socket")
    except OSError as exc:
        return False, exc.strerror or "missing"


def start_proxy_metrics(listen: str, upstream: str, unix_listeners: Sequence[str]) -> MetricsServer:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for metric in (REQUESTS, LATENCY, UPSTREAM_ERRORS, RELOADS):
            registry.register(metric)
    health = Health()
    health.add("upstream", lambda: ping_upstream(upstream))
    for path in unix_listeners:
        health.add(f"listen {path}", lambda p=path: listening(p))  # type: ignore[misc]
    audit.OBSERVERS.append(observe)
    return MetricsServer(listen, registry, health).start()
