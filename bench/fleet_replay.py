"""A fleet of simulated engines: Engine API answers recorded from the real dockerd, replayed on
one TCP port per simulated host, each answer after a delay (a remote host's round trip).

Record: `record(upstream_socket, path)` puts a recording proxy in front of the real dockerd and
runs dockward's own collector through it, so exactly the requests an audit makes are recorded.
Replay: `python -m bench.fleet_replay ANSWERS.json --hosts 200 --delay 0.02` prints the ports as
one JSON line, then serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import re
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_VERSION = re.compile(r"^/v\d+\.\d+")


def _key(method: str, path: str) -> str:
    return f"{method} {_VERSION.sub('', path)}"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self.unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.unix_path)
        self.sock = s


def record(upstream: str, out: Path) -> int:
    """Record the answers dockward's collector gets from the dockerd at UPSTREAM (a unix socket
    path) into OUT; returns the number of distinct requests."""
    from dockward.engine import collect_snapshot, connect, resolve_endpoint

    answers: dict[str, dict[str, Any]] = {}

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            return

        def _forward(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            conn = _UnixConnection(upstream)
            conn.request(self.command, self.path, body=body, headers={"Host": "docker"})
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            ctype = resp.getheader("Content-Type") or "application/json"
            answers[_key(self.command, self.path)] = {
                "status": resp.status,
                "type": ctype,
                "body": base64.b64encode(data).decode(),
                "headers": {
                    k: v for k, v in resp.getheaders() if k.lower() in ("api-version", "ostype")
                },
            }
            self.send_response(resp.status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_HEAD = do_POST = _forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"tcp://127.0.0.1:{server.server_address[1]}"
    client = connect(resolve_endpoint(url))
    try:
        collect_snapshot(client, resolve_endpoint(url))
    finally:
        client.close()
        server.shutdown()
        server.server_close()
    out.write_text(json.dumps(answers))
    return len(answers)


async def _serve(answers: dict[str, dict[str, Any]], hosts: int, delay: float) -> None:
    ready: dict[str, bytes] = {}
    for key, a in answers.items():
        body = base64.b64decode(a["body"])
        head = f"HTTP/1.1 {a['status']} OK\r\nContent-Type: {a['type']}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in a["headers"].items())
        head += f"Content-Length: {len(body)}\r\n\r\n"
        ready[key] = head.encode() + body
    missing = (
        b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n"
    )
    missing += b'{"message":"not recorded"}\n  '

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
                length = re.search(rb"(?i)content-length:\s*(\d+)", head)
                if length:
                    await reader.readexactly(int(length.group(1)))
                await asyncio.sleep(delay)
                writer.write(ready.get(_key(line[0], line[1]), missing))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    servers = [await asyncio.start_server(handle, "127.0.0.1", 0) for _ in range(hosts)]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    sys.stdout.write(json.dumps(ports) + "\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("answers")
    p.add_argument("--hosts", type=int, default=200)
    p.add_argument("--delay", type=float, default=0.02)
    a = p.parse_args()
    answers = json.loads(Path(a.answers).read_text())
    asyncio.run(_serve(answers, a.hosts, a.delay))


if __name__ == "__main__":
    main()
