"""Watchtower's HTTP API: `/v1/update` runs a cycle now, `/v1/metrics` exports Prometheus text.

Both need `Authorization: Bearer <token>` (compared in constant time; the token is never logged).
A request to /v1/update waits for the cycle it triggered and answers with what happened, as
JSON; requests that arrive while a cycle runs are served together by the next one. `?image=a,b`
limits that cycle to containers created from those images (repository, with or without tag).
Metrics keep Watchtower's names, so existing dashboards work, and add dockward's outcomes
(rolled back, refused by a gate).
"""

from __future__ import annotations

import hmac
import json
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dockward.errors import InputError, UsageError
from dockward.registry import parse_reference
from dockward.update.cycle import CycleResult

WAIT_FOR_CYCLE = 3600.0  # seconds a /v1/update request waits for its cycle
MAX_IMAGES = 100


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--http-api-listen {text!r}: expected HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def image_names(values: Sequence[str]) -> tuple[str, ...]:
    """`?image=` values as repository names (registry/repository), for matching."""
    out: list[str] = []
    for value in values:
        for item in value.split(","):
            if item.strip():
                out.append(parse_reference(item).name)
    if len(out) > MAX_IMAGES:
        raise InputError(f"more than {MAX_IMAGES} images in one request")
    return tuple(dict.fromkeys(out))


@dataclass
class Trigger:
    images: tuple[str, ...]  # () = every managed container
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] | None = None


@dataclass
class Metrics:
    scanned: int = 0
    updated: int = 0
    failed: int = 0
    rolled_back: int = 0
    refused: int = 0
    outdated: int = 0
    scans_total: int = 0
    api_updates_total: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, cycle: CycleResult) -> None:
        with self.lock:
            self._record(cycle)

    def _record(self, cycle: CycleResult) -> None:
        by: dict[str, int] = {}
        for e in cycle.events:
            by[e.status] = by.get(e.status, 0) + 1
        self.scanned = len(cycle.events)
        self.updated = by.get("updated", 0)
        self.failed = by.get("failed", 0) + by.get("error", 0) + by.get("rolled-back", 0)
        self.rolled_back = by.get("rolled-back", 0)
        self.refused = by.get("refused", 0)
        self.outdated = by.get("outdated", 0)
        self.scans_total += 1

    def collect(self) -> Iterator[Metric]:
        """Watchtower's names and kinds, so its dashboards work (prometheus_client collector);
        watchtower_scans_skipped is a gauge here: the Python client would add _total to a
        counter's name."""
        rows = [
            (GaugeMetricFamily, "watchtower_containers_scanned",
             "containers checked by the last scan", self.scanned),
            (GaugeMetricFamily, "watchtower_containers_updated",
             "containers updated by the last scan", self.updated),
            (GaugeMetricFamily, "watchtower_containers_failed",
             "containers whose update failed in the last scan (rolled back included)", self.failed),
            (CounterMetricFamily, "watchtower_scans", "scans run", self.scans_total),
            (GaugeMetricFamily, "watchtower_scans_skipped",
             "scans skipped (never: requests during a scan share the next one)", 0),
            (GaugeMetricFamily, "dockward_update_rolled_back",
             "containers rolled back by the last scan's health gate", self.rolled_back),
            (GaugeMetricFamily, "dockward_update_refused",
             "updates a gate (rules, policy, vulnerabilities) refused in the last scan",
             self.refused),
            (GaugeMetricFamily, "dockward_update_outdated",
             "containers found outdated and left alone (monitor only) in the last scan",
             self.outdated),
            (CounterMetricFamily, "dockward_update_api_requests", "accepted /v1/update requests",
             self.api_updates_total),
        ]  # fmt: skip
        for family, name, help_text, value in rows:
            yield family(name, help_text, value=value)


class MetricsCollector(Collector):
    """Reads the shared Metrics under its lock at each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        with self.metrics.lock:
            families = list(self.metrics.collect())
        yield from families


def summary(cycle: CycleResult) -> dict[str, Any]:
    """What a /v1/update caller gets back: names by outcome."""
    out: dict[str, Any] = {
        "scanned": len(cycle.events),
        "updated": [],
        "rolled_back": [],
        "refused": [],
        "failed": [],
        "outdated": [],
        "current": [],
        "skipped": [],
    }
    key = {"rolled-back": "rolled_back", "error": "failed"}
    for e in cycle.events:
        out[key.get(e.status, e.status)].append({"container": e.container, "reason": e.reason})
    return out


class UpdateAPI:
    def __init__(
        self,
        listen: tuple[str, int],
        token: str,
        *,
        update: bool,
        metrics: bool,
        shared: Metrics | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if not token:
            raise UsageError(
                "the HTTP API needs a token: --http-api-token or DOCKWARD_HTTP_API_TOKEN "
                "(WATCHTOWER_HTTP_API_TOKEN)"
            )
        self.token = token.encode()
        self.update_enabled = update
        self.metrics_enabled = metrics
        self.metrics = shared or Metrics()
        self.triggers: queue.Queue[Trigger] = queue.Queue()
        if registry is None:
            registry = CollectorRegistry(auto_describe=True)
            registry.register(MetricsCollector(self.metrics))
        self.registry = registry
        api = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "dockward"
            sys_version = ""
            timeout = 30  # a client that stops sending loses its connection, not a thread

            def log_message(self, format: str, *args: Any) -> None:
                return  # no access log: it would carry nothing the cycle report lacks

            def do_GET(self) -> None:
                api.handle(self)

            def do_POST(self) -> None:
                api.handle(self)

        try:
            self.server = ThreadingHTTPServer(listen, Handler)
        except OSError as exc:
            raise UsageError(f"--http-api-listen {listen[0]}:{listen[1]}: {exc.strerror}") from exc
        self.server.daemon_threads = True
        self.address = f"{listen[0]}:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="update-api", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        # Whoever still waits gets an answer rather than a hung connection.
        while True:
            try:
                t = self.triggers.get_nowait()
            except queue.Empty:
                break
            t.result = {"error": "dockward update is stopping"}
            t.done.set()

    def _reply(self, h: BaseHTTPRequestHandler, status: int, body: str, ctype: str) -> None:
        data = body.encode()
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        if status == 401:
            h.send_header("WWW-Authenticate", 'Bearer realm="dockward update"')
        h.end_headers()
        h.wfile.write(data)

    def _json(self, h: BaseHTTPRequestHandler, status: int, doc: dict[str, Any]) -> None:
        self._reply(h, status, json.dumps(doc) + "\n", "application/json")

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        length = h.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > 0:
            h.rfile.read(min(int(length), 1 << 16))  # a body means nothing here
        given = h.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), self.token
        ):
            self._json(h, 401, {"error": "a valid bearer token is required"})
            return
        if url.path == "/v1/metrics" and self.metrics_enabled:
            text = generate_latest(self.registry).decode()
            self._reply(h, 200, text, CONTENT_TYPE_LATEST)
            return
        if url.path != "/v1/update" or not self.update_enabled:
            self._json(h, 404, {"error": f"no such endpoint {url.path!r}"})
            return
        try:
            images = image_names(parse_qs(url.query).get("image", []))
        except InputError as exc:
            self._json(h, 400, {"error": str(exc)})
            return
        trigger = Trigger(images)
        with self.metrics.lock:
            self.metrics.api_updates_total += 1
        self.triggers.put(trigger)
        if not trigger.done.wait(WAIT_FOR_CYCLE):
            self._json(h, 504, {"error": "the update did not finish in time; it goes on"})
            return
        result = trigger.result or {}
        self._json(h, 500 if "error" in result else 200, result)

    def next_batch(self, timeout: float) -> list[Trigger]:
        """Requests waiting for a cycle: the first within `timeout`, then all queued with it."""
        try:
            batch = [self.triggers.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                batch.append(self.triggers.get_nowait())
            except queue.Empty:
                return batch


def batch_images(batch: Sequence[Trigger]) -> tuple[str, ...]:
    """One cycle for several requests: every container if any asked for all."""
    if any(not t.images for t in batch):
        return ()
    return tuple(dict.fromkeys(i for t in batch for i in t.images))


def answer(batch: Sequence[Trigger], result: dict[str, Any]) -> None:
    for t in batch:
        t.result = result
        t.done.set()
