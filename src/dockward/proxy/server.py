"""The proxy's sessions: framing (client side), decision, relay (daemon side), in that order.

A session reads one request head at a time through `framing.ClientConn` (raw-head checks, then
llhttp), asks `decision.decide` whether it may pass, and either answers the refusal or hands the
request to `relay.Relay`, which writes it to the daemon and passes the answer back.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from dockward.policy.admission import ImageGate
from dockward.policy.routes import STREAMING_ROUTES, Mode
from dockward.proxy.audit import DecisionLog
from dockward.proxy.authz import Authorizer, Caller
from dockward.proxy.decision import caller_of, decide
from dockward.proxy.framing import READ_SIZE, ClientConn, Close, keep_alive
from dockward.proxy.learn import Learner
from dockward.proxy.relay import Outgoing, Relay, Upstream

# Kept importable from here for older callers.
__all__ = ["READ_SIZE", "ProxyServer", "peer_caller", "serve_sockets", "start_listeners"]


def peer_caller(sock: socket.socket | None) -> Caller:
    if sock is None:
        return Caller()
    if sock.family == socket.AF_UNIX:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", raw)
        return Caller(uid=uid, gid=gid, pid=pid)
    peer = sock.getpeername()
    return Caller(address=str(peer[0]))


class ProxyServer:
    def __init__(
        self,
        upstream_socket: str,
        authorizer: Authorizer,
        log: DecisionLog,
        gate: ImageGate | None = None,
    ) -> None:
        self.upstream_socket = upstream_socket
        self.authorizer = authorizer  # swapped whole on reload; requests keep the one they got
        self.log = log
        self.gate = gate or ImageGate()
        self.learner: Learner | None = None  # --learn: what is forwarded is recorded
        self.pool: list[Upstream] = []  # idle daemon connections, reused by the next session

    def emit(self, record: dict[str, Any]) -> None:
        """A finished decision: to the log, and to its observers (the service's counters)."""
        self.log.record(**record)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(self, reader, writer)
        try:
            await session.run()
        except (ConnectionError, Close, asyncio.IncompleteReadError):
            pass
        except Exception as exc:  # a bug must cost one connection, never the proxy
            self.log.event("internal error", error=f"{type(exc).__name__}: {exc}"[:500])
        finally:
            session.close()


class _Session:
    def __init__(
        self, server: ProxyServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.writer = writer
        self.peer = peer_caller(writer.get_extra_info("socket"))
        self.conn = ClientConn(reader, writer, self._framing_error)
        self.relay = Relay(server.upstream_socket, self.conn, server.emit, server.pool)

    def _framing_error(self, status: int, message: str) -> None:
        self.server.emit(
            {
                "decision": "deny",
                "status": status,
                "reason": message,
                "client": self.peer.describe(),
            }
        )

    def close(self) -> None:
        self.relay.release()
        self.writer.close()

    async def run(self) -> None:
        while True:
            req = await self.conn.next_request()
            if req is None:
                return
            if not await self.request(req):
                return
            if not self.conn.finish_request():
                return

    async def request(self, req: Any) -> bool:
        method = req.method.decode("ascii", "replace")
        headers = list(req.headers)
        caller = caller_of(self.peer, headers)
        if req.http_version not in (b"1.0", b"1.1"):
            record = {"client": caller.describe(), "method": method, "decision": "deny"}
            record.update(rule="http", status=505, reason="HTTP/1.0 or HTTP/1.1 required")
            self.server.emit(record)
            await self.conn.refuse(505, "HTTP/1.0 or HTTP/1.1 required")
            return False
        d = await decide(
            self.server.authorizer,
            self.server.gate,
            self.conn,
            caller,
            method,
            req.target.decode("ascii", "replace"),
            self.relay.lookup,
        )
        if not d.allowed:
            d.record.setdefault("reason", d.message[:2000])
            d.record.update(
                status=d.status, latency_ms=round((time.perf_counter() - d.started) * 1000, 3)
            )
            self.server.emit(d.record)
            await self.conn.refuse(d.status, d.message)
            return False
        assert d.target is not None
        if self.server.learner is not None:
            self.server.learner.observe(caller, method, d.target, d.route, d.body)
        hijack = d.match is not None and d.match.route.mode is Mode.HIJACK
        upgrade = next((v for k, v in headers if k == b"upgrade"), b"").lower()
        # A per-read watcher on the client costs a task per read: only for answers that last.
        self.relay.streaming = d.match is None or d.route in STREAMING_ROUTES
        self.relay.scope = (d.route, d.scope) if d.scope is not None else None
        out = Outgoing(
            method=req.method,
            target=d.target.raw.encode("ascii"),
            version=bytes(req.http_version),
            headers=headers,
            raw_head=self.conn.raw_head,
            body=d.body,
            hijack=hijack,
            websocket=hijack and upgrade == b"websocket",
            keep_alive=keep_alive(bytes(req.http_version), headers),
        )
        return await self.relay.forward(out, d.record, d.started)


async def serve_sockets(
    server: ProxyServer, sockets: list[socket.socket]
) -> list[asyncio.base_events.Server]:
    """Serve sockets bound elsewhere (by the parent of several workers)."""
    servers = []
    for s in sockets:
        if s.family == socket.AF_UNIX:
            srv = await asyncio.start_unix_server(server.handle, sock=s, limit=READ_SIZE)
        else:
            srv = await asyncio.start_server(server.handle, sock=s, limit=READ_SIZE)
        servers.append(srv)
    return servers


async def start_listeners(
    server: ProxyServer,
    unix_paths: list[tuple[str, int, int, int]],
    tcp: list[tuple[str, int]],
    on_bound: Callable[[str], None] | None = None,
) -> list[asyncio.base_events.Server]:
    """unix_paths: (path, mode, uid, gid) with -1 to keep the owner; tcp: (host, port)."""
    servers = []
    for path, mode, uid, gid in unix_paths:
        if os.path.exists(path):
            import stat

            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                from dockward.errors import ConfigError

                raise ConfigError(f"{path} exists and is not a socket")
            os.unlink(path)
        old = os.umask(0o177)  # no window in which the socket is wider than asked
        try:
            srv = await asyncio.start_unix_server(server.handle, path, limit=READ_SIZE)
        finally:
            os.umask(old)
        os.chmod(path, mode)
        if uid != -1 or gid != -1:
            os.chown(path, uid, gid)
        servers.append(srv)
        if on_bound:
            on_bound(f"unix://{path}")
    for host, port in tcp:
        srv = await asyncio.start_server(
            server.handle, host, port, limit=READ_SIZE, reuse_address=True
        )
        servers.append(srv)
        if on_bound:
            on_bound(f"tcp://{host}:{port}")
    return servers
