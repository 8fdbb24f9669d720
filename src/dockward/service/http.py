"""`--metrics-listen HOST:PORT`: `/metrics` (Prometheus text, prometheus_client) and `/healthz`.

`/healthz` answers 200 when every check passes and 503 otherwise, with each check's state as
JSON. The server is a daemon thread beside the service; it reads, it never changes anything.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from dockward.errors import ConnectionFailed, UsageError
from dockward.service.health import Health


def parse_metrics_listen(text: str) -> tuple[str, int]:
    """HOST:PORT, [V6]:PORT or :PORT (loopback)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"--metrics-listen {text!r}: expected HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)


class MetricsServer:
    def __init__(self, listen: str, registry: CollectorRegistry, health: Health) -> None:
        self.registry = registry
        self.health = health
        host, port = parse_metrics_listen(listen)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "dockward"
            sys_version = ""
            timeout = 10

            def log_message(self, format: str, *args: Any) -> None:
                return  # scrapes every few seconds would drown the service's own log

            def do_GET(self) -> None:
                owner._handle(self)

            def do_HEAD(self) -> None:
                owner._handle(self)

        try:
            self.server = _Server((host, port), Handler)
        except OSError as exc:
            raise UsageError(f"--metrics-listen {listen}: {exc.strerror}") from exc
        self.address = f"{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="metrics", daemon=True
        )

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        if path == "/metrics":
            status, ctype, body = 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        elif path == "/healthz":
            ok, checks = self.health.run()
            doc = {
                "status": "ok" if ok else "failing",
                "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
            }
            status, ctype = (200 if ok else 503), "application/json"
            body = (json.dumps(doc, sort_keys=True) + "\n").encode()
        else:
            status, ctype, body = 404, "text/plain", b"not found: try /metrics or /healthz\n"
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)


def probe_health(listen: str, timeout: float = 5.0) -> tuple[bool, str]:
    """Ask a running service's /healthz (what the image's HEALTHCHECK runs)."""
    host, port = parse_metrics_listen(listen)
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        with urllib.request.urlopen(f"http://{netloc}/healthz", timeout=timeout) as resp:
            return True, resp.read(4096).decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as exc:
        return False, exc.read(4096).decode("utf-8", "replace").strip()
    except (OSError, urllib.error.URLError) as exc:
        raise ConnectionFailed(f"no health endpoint at {netloc}: {exc}") from exc
