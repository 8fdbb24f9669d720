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
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

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

    def record(self, cycle: CycleResult) -> None:
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

    def render(self) -> str:
        rows = [
            ("watchtower_containers_scanned", "gauge", "containers checked by the last scan",
             self.scanned),
            ("watchtower_containers_updated", "gauge", "containers updated by the last scan",
             self.updated),
            ("watchtower_containers_failed", "gauge",
             "containers whose update failed in the last scan (rolled back included)", self.failed),
            ("watchtower_scans_total", "counter", "scans run", self.scans_total),
            ("watchtower_scans_skipped", "counter",
             "scans skipped (never: requests during a scan share the next one)", 0),
            ("dockward_update_rolled_back", "gauge",
             "containers rolled back by the last scan's health gate", self.rolled_back),
            ("dockward_update_refused", "gauge",
             "updates a gate (rules, policy, vulnerabilities) refused in the last scan",
             self.refused),
            ("dockward_update_outdated", "gauge",
             "containers found outdated and left alone (monitor only) in the last scan",
             self.outdated),
            ("dockward_update_api_requests_total", "counter", "accepted /v1/update requests",
             self.api_updates_total),
        ]  # fmt: skip
        out = []
        for name, kind, help_text, value in rows:
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
        return "\n".join(out) + "\n"


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
    def __init__(self, listen: tuple[str, int], token: str, *, update: bool, metrics: bool) -> None:
        if not token:
            raise UsageError(
                "the HTTP API needs a token: --http-api-token or DOCKWARD_HTTP_API_TOKEN "
                "(WATCHTOWER_HTTP_API_TOKEN)"
            )
        self.token = token.encode()
        self.update_enabled = update
        self.metrics_enabled = metrics
        self.metrics = Metrics()
        self.triggers: queue.Queue[Trigger] = queue.Queue()
        self._lock = threading.Lock()
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
            raise UsageError(f"--http-api-listen {listen[0]}:{listen[1]}: {exc.strerror}") from None
        self.server.daemon_threads = True
        self.address = f"{listen[0]}:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="update-api", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

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
            with self._lock:
                text = self.metrics.render()
            self._reply(h, 200, text, "text/plain; version=0.0.4")
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
        with self._lock:
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

    def record(self, cycle: CycleResult) -> None:
        with self._lock:
            self.metrics.record(cycle)


def batch_images(batch: Sequence[Trigger]) -> tuple[str, ...]:
    """One cycle for several requests: every container if any asked for all."""
    if any(not t.images for t in batch):
        return ()
    return tuple(dict.fromkeys(i for t in batch for i in t.images))


def answer(batch: Sequence[Trigger], result: dict[str, Any]) -> None:
    for t in batch:
        t.result = result
        t.done.set()
