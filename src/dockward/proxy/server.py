"""The proxy: strict HTTP/1.1 in (h11 plus raw-head checks), policy, re-framed request out.

Every request forwarded to the daemon is re-serialised by h11 from what was judged, so the
daemon never parses a byte the proxy did not: bodies that are judged are sent with the exact
Content-Length of the bytes inspected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import h11

from dockward.model.finding import Result
from dockward.policy.admission import ImageGate, judge_request, refusals
from dockward.policy.gojson import BodyError, loads
from dockward.proxy.audit import DecisionLog
from dockward.proxy.authz import Authorizer, Caller, Verdict, token_digest
from dockward.proxy.framing import FramingError, check_head, head_length
from dockward.proxy.paths import PathError, Target, parse_target
from dockward.proxy.routes import Mode, match_route

READ_SIZE = 256 * 1024
# Never forwarded: connection-level headers (re-created by h11) and the proxy's own credentials.
_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"host",
        b"authorization",
        b"proxy-authorization",
        b"expect",
    }
)
_RESP_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"upgrade"})
_JSON = (b"content-type", b"application/json")
_REASONS = {
    400: b"Bad Request",
    403: b"Forbidden",
    413: b"Payload Too Large",
    502: b"Bad Gateway",
}


class _Close(Exception):
    """End this client connection (after whatever was already answered)."""


def _buffered(conn: h11.Connection) -> int:
    """Bytes h11 holds beyond the current message (pipelining). Unknown counts as some."""
    buf = getattr(conn, "_receive_buffer", None)
    return len(buf) if buf is not None else 1


def peer_caller(sock: socket.socket | None, token: str = "") -> Caller:
    if sock is None:
        return Caller()
    if sock.family == socket.AF_UNIX:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", raw)
        return Caller(uid=uid, gid=gid, pid=pid)
    peer = sock.getpeername()
    return Caller(address=str(peer[0]))


@dataclass
class _Upstream:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    conn: h11.Connection

    def close(self) -> None:
        self.writer.close()


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

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(self, reader, writer)
        try:
            await session.run()
        except (ConnectionError, _Close, asyncio.IncompleteReadError):
            pass
        finally:
            session.close()


class _Session:
    def __init__(
        self, server: ProxyServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.peer = peer_caller(writer.get_extra_info("socket"))
        self.h = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        self.up: _Upstream | None = None
        self.pending = b""  # bytes read ahead while a response was streaming

    def close(self) -> None:
        if self.up is not None:
            self.up.close()
        self.writer.close()

    async def _fill_head(self) -> bool:
        """Read one request head, check it raw, then hand everything read to h11."""
        buf, self.pending = self.pending, b""
        while True:
            try:
                n = head_length(buf)
            except FramingError as exc:
                await self._raw_error(400, str(exc))
                raise _Close from None
            if n:
                try:
                    check_head(buf[:n])
                except FramingError as exc:
                    await self._raw_error(400, str(exc))
                    raise _Close from None
                self.h.receive_data(buf)
                return True
            data = await self.reader.read(READ_SIZE)
            if not data:
                if buf:
                    await self._raw_error(400, "incomplete request head")
                return False
            buf += data

    async def _event(self) -> Any:
        while True:
            try:
                ev = self.h.next_event()
            except h11.RemoteProtocolError as exc:
                await self._raw_error(400, f"bad request: {exc}")
                raise _Close from None
            if ev is h11.NEED_DATA:
                self.h.receive_data(await self.reader.read(READ_SIZE))
                continue
            return ev

    async def run(self) -> None:
        while True:
            if not await self._fill_head():
                return
            ev = await self._event()
            if isinstance(ev, h11.ConnectionClosed):
                return
            if not isinstance(ev, h11.Request):
                raise _Close
            keep = await self.request(ev)
            if not keep or self.h.our_state is h11.MUST_CLOSE:
                return
            if _buffered(self.h):
                return  # pipelined bytes were never seen by the raw-head checks: refuse them
            try:
                self.h.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def request(self, req: h11.Request) -> bool:
        started = time.perf_counter()
        method = req.method.decode("ascii", "replace")
        raw_target = req.target.decode("ascii", "replace")
        headers = list(req.headers)
        auth = next((v for k, v in headers if k == b"authorization"), b"")
        caller = self.peer
        if auth:
            caller = Caller(
                caller.uid,
                caller.gid,
                caller.pid,
                caller.address,
                token_digest(auth.decode("latin-1")),
            )
        record: dict[str, Any] = {"client": caller.describe(), "method": method}
        try:
            target = parse_target(raw_target)
        except PathError as exc:
            record.update(path=raw_target.split("?")[0][:200], decision="deny", rule="path")
            return await self.refuse(400, f"refused request path: {exc}", record, started)
        record["path"] = target.path
        match = match_route(method, target.path)
        record["route"] = match.route.name if match else ""
        authz = self.server.authorizer
        verdict = authz.decide(caller, method, target, match)
        record["client_name"] = verdict.client
        if not verdict.allowed:
            record.update(decision="deny", rule=verdict.rule)
            return await self.refuse(403, verdict.reason, record, started)
        body: bytes | None = None
        if verdict.judge_body:
            body = await self.read_body(authz.max_body, record, started)
            if body is None:
                return False
            results = await self.judge(verdict, target, match.route.name if match else "", body)
            bad = refusals(results)
            if bad:
                record.update(
                    decision="deny",
                    rule=",".join(r.rule.id for r in bad),
                    reason="; ".join(r.message for r in bad)[:2000],
                )
                msg = "; ".join(f"{r.rule.id} {r.message}" for r in bad)
                return await self.refuse(403, f"refused by dockward policy: {msg}", record, started)
        record.update(decision="allow", rule=verdict.rule)
        hijack = match is not None and match.route.mode is Mode.HIJACK
        return await self.forward(req, target, headers, body, hijack, record, started)

    async def judge(
        self, verdict: Verdict, target: Target, route: str, body: bytes
    ) -> list[Result]:
        assert verdict.admission is not None
        adm = verdict.admission
        gate = self.server.gate

        def work() -> list[Result]:
            if route in ("images.create", "images.load", "build"):
                return judge_request(route, target.query, None, adm, gate)
            try:
                doc = loads(body)
            except BodyError as exc:
                from dockward.policy import checks

                return [checks.fail(checks.UNJUDGEABLE, route, str(exc))]
            return judge_request(route, target.query, doc, adm, gate)

        return await asyncio.get_running_loop().run_in_executor(None, work)

    async def read_body(self, limit: int, record: dict[str, Any], started: float) -> bytes | None:
        """The whole body, bounded; None after refusing (too large)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            ev = await self._event()
            if isinstance(ev, h11.Data):
                size += len(ev.data)
                if size > limit:
                    record.update(decision="deny", rule="DW-P001")
                    await self.refuse(
                        413, f"request body larger than {limit} bytes", record, started
                    )
                    return None
                chunks.append(bytes(ev.data))
            elif isinstance(ev, h11.EndOfMessage):
                return b"".join(chunks)
            else:
                raise _Close

    async def refuse(
        self, status: int, message: str, record: dict[str, Any], started: float
    ) -> bool:
        record.setdefault("reason", message[:2000])
        record.update(status=status, latency_ms=round((time.perf_counter() - started) * 1000, 3))
        self.server.log.record(**record)
        payload = json.dumps({"message": message}).encode()
        try:
            self.writer.write(
                self.h.send(
                    h11.Response(
                        status_code=status,
                        reason=_REASONS.get(status, b"Error"),
                        headers=[
                            _JSON,
                            (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close"),
                        ],
                    )
                )
                or b""
            )
            self.writer.write(self.h.send(h11.Data(data=payload)) or b"")
            self.writer.write(self.h.send(h11.EndOfMessage()) or b"")
            await self.writer.drain()
        except h11.LocalProtocolError:
            await self._raw_error(status, message)
        return False

    async def _raw_error(self, status: int, message: str) -> None:
        payload = json.dumps({"message": message}).encode()
        reason = _REASONS.get(status, b"Error")
        head = (
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (
                status,
                reason,
                len(payload),
            )
        )
        self.server.log.record(
            decision="deny", status=status, reason=message, client=self.peer.describe()
        )
        try:
            self.writer.write(head + payload)
            await self.writer.drain()
        except ConnectionError:
            pass

    async def _upstream(self) -> _Upstream:
        if self.up is not None and self.up.conn.our_state is h11.IDLE:
            return self.up
        if self.up is not None:
            self.up.close()
        reader, writer = await asyncio.open_unix_connection(
            self.server.upstream_socket, limit=READ_SIZE
        )
        self.up = _Upstream(
            reader, writer, h11.Connection(h11.CLIENT, max_incomplete_event_size=256 * 1024)
        )
        return self.up

    async def _up_event(self, up: _Upstream, watcher: asyncio.Future[bool] | None = None) -> Any:
        while True:
            ev = up.conn.next_event()
            if ev is not h11.NEED_DATA:
                return ev
            if watcher is None or watcher.done():
                up.conn.receive_data(await up.reader.read(READ_SIZE))
                continue
            read = asyncio.ensure_future(up.reader.read(READ_SIZE))
            await asyncio.wait((read, watcher), return_when=asyncio.FIRST_COMPLETED)
            if watcher.done() and watcher.result() and not read.done():
                read.cancel()
                raise _Close  # the client left a stream that may never end (events, logs -f)
            up.conn.receive_data(await read)

    async def forward(
        self,
        req: h11.Request,
        target: Target,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
        hijack: bool,
        record: dict[str, Any],
        started: float,
    ) -> bool:
        try:
            up = await self._upstream()
        except OSError as exc:
            record.update(decision="error", rule="upstream")
            return await self.refuse(502, f"cannot reach the Docker daemon: {exc}", record, started)
        out = [(k, v) for k, v in headers if k not in _HOP]
        out.insert(0, (b"host", b"docker"))
        upgrade = hijack and any(k == b"upgrade" for k, _ in headers)
        if upgrade:
            out += [(b"connection", b"Upgrade"), (b"upgrade", b"tcp")]
        chunked_in = any(k == b"transfer-encoding" for k, _ in headers)
        if body is not None:
            out.append((b"content-length", str(len(body)).encode()))
        elif chunked_in:
            out.append((b"transfer-encoding", b"chunked"))
        else:
            length = next((v for k, v in headers if k == b"content-length"), None)
            if length is not None:
                out.append((b"content-length", length))
        up.writer.write(
            up.conn.send(h11.Request(method=req.method, target=req.target, headers=out)) or b""
        )
        if body is not None:
            if body:
                up.writer.write(up.conn.send(h11.Data(data=body)) or b"")
        else:
            while True:
                ev = await self._event()
                if isinstance(ev, h11.Data):
                    up.writer.write(up.conn.send(h11.Data(data=ev.data)) or b"")
                    await up.writer.drain()
                elif isinstance(ev, h11.EndOfMessage):
                    break
                else:
                    raise _Close
        up.writer.write(up.conn.send(h11.EndOfMessage()) or b"")
        await up.writer.drain()
        return await self.relay_response(up, record, started)

    async def relay_response(self, up: _Upstream, record: dict[str, Any], started: float) -> bool:
        ev = await self._up_event(up)
        while isinstance(ev, h11.InformationalResponse) and ev.status_code != 101:
            ev = await self._up_event(up)
        record.update(
            status=ev.status_code, latency_ms=round((time.perf_counter() - started) * 1000, 3)
        )
        self.server.log.record(**record)
        headers = [(k, v) for k, v in ev.headers if k not in _RESP_HOP]
        if isinstance(ev, h11.InformationalResponse):
            headers += [(b"connection", b"Upgrade"), (b"upgrade", b"tcp")]
            self.writer.write(
                self.h.send(
                    h11.InformationalResponse(status_code=101, headers=headers, reason=ev.reason)
                )
                or b""
            )
            await self.splice(up)
            return False
        self.writer.write(
            self.h.send(h11.Response(status_code=ev.status_code, headers=headers, reason=ev.reason))
            or b""
        )
        watcher = asyncio.ensure_future(self._watch_client())
        try:
            while True:
                ev = await self._up_event(up, watcher)
                if isinstance(ev, h11.Data):
                    self.writer.write(self.h.send(h11.Data(data=ev.data)) or b"")
                    if self.writer.transport.get_write_buffer_size() > READ_SIZE:
                        await self.writer.drain()
                    elif watcher.done() and watcher.result():
                        raise _Close
                elif isinstance(ev, h11.EndOfMessage):
                    watcher.cancel()
                    self.writer.write(self.h.send(h11.EndOfMessage()) or b"")
                    await self.writer.drain()
                    break
                else:
                    raise _Close
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher  # its read must be over before the next request head is read
        if up.conn.our_state is h11.DONE and up.conn.their_state is h11.DONE:
            up.conn.start_next_cycle()
        else:
            up.close()
            self.up = None
        return True

    async def _watch_client(self) -> bool:
        """During a response: True when the client went away (ends a never-ending stream).
        Bytes it sends meanwhile start its next request and wait for the raw-head checks."""
        data = await self.reader.read(1)
        self.pending += data
        return not data

    async def splice(self, up: _Upstream) -> None:
        """Raw bytes both ways after 101, with half-close passed through."""
        client_rest = self.h.trailing_data[0]
        up_rest = up.conn.trailing_data[0]
        await self.writer.drain()
        self.up = None

        async def pipe(
            first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            try:
                if first:
                    writer.write(first)
                while True:
                    data = await reader.read(READ_SIZE)
                    if not data:
                        break
                    writer.write(data)
                    await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()
            except (ConnectionError, OSError):
                pass

        await asyncio.gather(
            pipe(client_rest, self.reader, up.writer),
            pipe(up_rest, up.reader, self.writer),
        )
        up.close()


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
