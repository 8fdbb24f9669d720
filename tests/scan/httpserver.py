"""A small real HTTP server for `db update` tests: conditional GETs, MD5 header, on 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PORTS = range(15410, 15430)


def _handler(root: Path, log: list[dict[str, str]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = (root / self.path.lstrip("/")).resolve()
            log.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            if root.resolve() not in path.parents or not path.is_file():
                self.send_response(404)
                self.end_headers()
                return
            data = path.read_bytes()
            etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
            modified = email.utils.formatdate(path.stat().st_mtime, usegmt=True)
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
            md5_file = path.with_suffix(path.suffix + ".md5")
            md5 = md5_file.read_bytes() if md5_file.exists() else hashlib.md5(data).digest()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", modified)
            self.send_header("x-goog-hash", "md5=" + base64.b64encode(md5).decode())
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextlib.contextmanager
def serve(root: Path) -> Iterator[tuple[str, list[dict[str, str]]]]:
    log: list[dict[str, str]] = []
    server = None
    for port in PORTS:
        try:
            server = ThreadingHTTPServer(("127.0.0.1", port), _handler(root, log))
            break
        except OSError:
            continue
    assert server is not None, "no free port in 15410-15429"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", log
    finally:
        server.shutdown()
        server.server_close()
