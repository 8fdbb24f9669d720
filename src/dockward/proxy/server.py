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
from dockward.policy.admission import QUERY_ROUTES, ImageGate, judge_request, refusals
from dockward.policy.gojson import BodyError, loads
from dockward.proxy.audit import DecisionLog
from dockward.proxy.authz import Authorizer, Caller, Verdict, token_digest
from dockward.proxy.framing import FramingError, check_head, head_length
from dockward.proxy.paths import PathError, Target, parse_target
from dockward.proxy.routes import STREAMING_ROUTES, Mode, match_route
from dockward.proxy.upstream import (
    LAST_CHUNK,
    ChunkedEnd,
    UpstreamError,
    chunk,
    parse_response_head,
    request_head,
)
from dockward.proxy.upstream import MAX_HEAD as MAX_RESPONSE_HEAD

READ_SIZE = 256 * 1024
DISCARD_LIMIT = 256 * 1024 * 1024  # of a refused body, read and dropped before answering
DISCARD_SECONDS = 30.0
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
    505: b"HTTP Version Not Supported",
    502: b"Bad Gateway",
}


class _Close(Exception):
    """End this client connection (after whatever was already answered)."""


def peer_caller(sock: socket.socket | None) -> Caller:
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
    buf: bytes = b""  # bytes read past the last response (must stay empty to reuse)

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
        except Exception as exc:  # a bug must cost one connection, never the proxy
            self.log.event("internal error", error=f"{type(exc).__name__}: {exc}"[:500])
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
        self.streaming = True  # answer may last (events, logs -f): watch for the client leaving

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
                raise _Close from exc
            if n:
                try:
                    check_head(buf[:n])
                except FramingError as exc:
                    await self._raw_error(400, str(exc))
                    raise _Close from exc
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
                raise _Close from exc
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
            if not await self.request(ev):
                return
            rest, closed = self.h.trailing_data
            if closed:
                return
            # A pipelined request goes through the same raw-head checks as any other.
            self.pending = rest + self.pending
            self.h = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)

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
        if req.http_version != b"1.1":
            record.update(path=raw_target.split("?")[0][:200], decision="deny", rule="http")
            return await self.refuse(505, "HTTP/1.1 required", record, started)
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
            route = match.route.name if match else ""
            if route not in QUERY_ROUTES:
                # JSON bodies are read whole (bounded) and judged; build contexts and image
                # tarballs are judged by their query and streamed through.
                body = await self.read_body(authz.max_body, record, started)
                if body is None:
                    return False
            results = await self.judge(verdict, target, route, body)
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
        # A per-read watcher on the client costs a task per read: only for answers that last.
        self.streaming = match is None or match.route.name in STREAMING_ROUTES
        return await self.forward(req, target, headers, body, hijack, record, started)

    async def judge(
        self, verdict: Verdict, target: Target, route: str, body: bytes | None
    ) -> list[Result]:
        assert verdict.admission is not None
        adm = verdict.admission
        gate = self.server.gate

        def work() -> list[Result]:
            if body is None:
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
        await self._discard_body()
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

    async def _discard_body(self) -> None:
        """Read (and drop) the rest of a refused request's body, bounded in size and time, so
        the client gets to read the refusal instead of a broken pipe mid-upload."""
        if self.h.their_state is not h11.SEND_BODY:
            return
        dropped = 0

        async def drain() -> None:
            nonlocal dropped
            while dropped < DISCARD_LIMIT:
                ev = await self._event()
                if isinstance(ev, h11.Data):
                    dropped += len(ev.data)
                else:
                    return

        with contextlib.suppress(asyncio.TimeoutError, _Close, ConnectionError):
            await asyncio.wait_for(drain(), DISCARD_SECONDS)

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
        if self.up is not None and not self.up.buf and not self.up.reader.at_eof():
            return self.up
        if self.up is not None:
            self.up.close()
        reader, writer = await asyncio.open_unix_connection(
            self.server.upstream_socket, limit=READ_SIZE
        )
        self.up = _Upstream(reader, writer)
        return self.up

    async def _up_read(self, up: _Upstream, watcher: asyncio.Future[bool] | None) -> bytes:
        """The next bytes from the daemon; ends the session if the client left meanwhile."""
        if watcher is None or watcher.done():
            return await up.reader.read(READ_SIZE)
        read = asyncio.ensure_future(up.reader.read(READ_SIZE))
        await asyncio.wait((read, watcher), return_when=asyncio.FIRST_COMPLETED)
        if watcher.done() and watcher.result() and not read.done():
            read.cancel()
            raise _Close  # the client left a stream that may never end (events, logs -f)
        return await read

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
        up.writer.write(request_head(req.method, req.target, out))
        if body is not None:
            up.writer.write(body)
        else:
            while True:
                ev = await self._event()
                if isinstance(ev, h11.Data):
                    up.writer.write(chunk(bytes(ev.data)) if chunked_in else ev.data)
                    await up.writer.drain()
                elif isinstance(ev, h11.EndOfMessage):
                    break
                else:
                    raise _Close
            if chunked_in:
                up.writer.write(LAST_CHUNK)
        await up.writer.drain()
        close = any(k == b"connection" and b"close" in v.lower().split(b",") for k, v in headers)
        return await self.relay_response(up, req.method == b"HEAD", record, started) and not close

    async def _response_head(self, up: _Upstream) -> tuple[bytes, bytes]:
        buf, up.buf = up.buf, b""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                return buf[: end + 4], buf[end + 4 :]
            if len(buf) > MAX_RESPONSE_HEAD:
                raise UpstreamError("response head too large")
            data = await up.reader.read(READ_SIZE)
            if not data:
                raise UpstreamError("the daemon closed the connection")
            buf += data

    async def relay_response(
        self, up: _Upstream, head_request: bool, record: dict[str, Any], started: float
    ) -> bool:
        """Pass the daemon's answer through unchanged; True when both sides stay reusable."""
        try:
            raw, rest = await self._response_head(up)
            head = parse_response_head(raw)
        except UpstreamError as exc:
            self.up = None
            up.close()
            record.update(decision="error", rule="upstream")
            return await self.refuse(
                502, f"bad answer from the Docker daemon: {exc}", record, started
            )
        record.update(
            status=head.status, latency_ms=round((time.perf_counter() - started) * 1000, 3)
        )
        self.server.log.record(**record)
        if head.status == 101:
            self.writer.write(raw)
            await self.splice(up, rest)
            return False
        te = head.header(b"transfer-encoding")
        length = head.header(b"content-length")
        reusable = b"close" not in (head.header(b"connection") or b"").lower()
        if head_request or head.status in (204, 304) or 100 <= head.status < 200:
            self.writer.write(raw)
            up.buf = rest
        elif te is not None:
            if te.lower() != b"chunked":
                raise _Close
            up.buf = await self._relay_chunked(up, raw, rest)
        elif length is not None and length.isdigit():
            up.buf = await self._relay_sized(up, raw, rest, int(length))
        else:
            self.writer.write(raw)
            await self._relay_until_close(up, rest)
            return False
        await self.writer.drain()
        if not reusable or up.buf:
            self.up = None
            up.close()
        return True

    async def _relay_sized(self, up: _Upstream, head: bytes, data: bytes, remaining: int) -> bytes:
        # The head goes out with the first bytes of the body: one send for a small answer.
        while True:
            if len(data) >= remaining:
                self.writer.write(head + data[:remaining])
                return data[remaining:]
            self.writer.write(head + data)
            head = b""
            remaining -= len(data)
            if self.writer.transport.get_write_buffer_size() > READ_SIZE:
                await self.writer.drain()
            data = await up.reader.read(READ_SIZE)
            if not data:
                raise _Close

    async def _relay_chunked(self, up: _Upstream, head: bytes, data: bytes) -> bytes:
        tracker = ChunkedEnd()
        try:
            end = tracker.feed(data)
        except UpstreamError as exc:
            raise _Close from exc
        if end >= 0:  # the whole answer is here: no watcher, one send
            self.writer.write(head + data[:end])
            return data[end:]
        self.writer.write(head + data)
        data = b""
        watcher = asyncio.ensure_future(self._watch_client()) if self.streaming else None
        try:
            while True:
                if data:
                    try:
                        end = tracker.feed(data)
                    except UpstreamError as exc:
                        raise _Close from exc
                    if end >= 0:
                        self.writer.write(data[:end])
                        return data[end:]
                    self.writer.write(data)
                    if self.writer.transport.get_write_buffer_size() > READ_SIZE:
                        await self.writer.drain()
                data = await self._up_read(up, watcher)
                if not data:
                    raise _Close
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher  # its read must be over before the next request head is read

    async def _relay_until_close(self, up: _Upstream, data: bytes) -> None:
        watcher = asyncio.ensure_future(self._watch_client())
        try:
            while data:
                self.writer.write(data)
                await self.writer.drain()
                data = await self._up_read(up, watcher)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        self.up = None
        up.close()

    async def _watch_client(self) -> bool:
        """During a response: True when the client went away (ends a never-ending stream).
        Bytes it sends meanwhile start its next request and wait for the raw-head checks."""
        data = await self.reader.read(1)
        self.pending += data
        return not data

    async def splice(self, up: _Upstream, up_rest: bytes) -> None:
        """Raw bytes both ways after 101, with half-close passed through."""
        client_rest = self.h.trailing_data[0] + self.pending
        self.pending = b""
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
