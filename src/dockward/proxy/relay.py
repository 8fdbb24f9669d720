"""The relay: an allowed request written to the daemon, its answer passed back unchanged.

What reaches the daemon is written by the proxy from what was judged (judged bodies go with the
exact Content-Length of the bytes inspected), except a WebSocket upgrade, whose head reaches the
daemon as the client sent it (less the proxy's own credentials). Answers come from the daemon,
which the proxy trusts: they pass byte for byte, and the relay only tracks where each one ends
so both connections can be reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockward.policy.model import ContainerScope
from dockward.proxy.framing import (
    READ_SIZE,
    ChunkedDecoder,
    ClientConn,
    Close,
    FramingError,
    error_response,
)
from dockward.proxy.scope import AnswerError, answer_in_scope, event_in_scope
from dockward.proxy.upstream import (
    LAST_CHUNK,
    ChunkedEnd,
    ResponseHead,
    UpstreamError,
    chunk,
    parse_response_head,
    request_head,
)
from dockward.proxy.upstream import MAX_HEAD as MAX_RESPONSE_HEAD

# Never forwarded: connection-level headers (re-created here) and the proxy's own credentials.
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
_CREDENTIALS = (b"authorization:", b"proxy-authorization:")
POOL_SIZE = 64  # idle daemon connections kept for the next client session
MAX_FILTERED = 64 * 1024 * 1024  # a list answer read whole to be filtered for a scoped client


def _with_length(raw: bytes, length: int) -> bytes:
    lines = raw[:-4].split(b"\r\n")
    keep = [
        line
        for line in lines[1:]
        if not line.lower().startswith((b"content-length:", b"transfer-encoding:"))
    ]
    return b"\r\n".join([lines[0], *keep, b"Content-Length: %d" % length]) + b"\r\n\r\n"


@dataclass
class Upstream:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    buf: bytes = b""  # bytes read past the last response (must stay empty to reuse)

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An allowed request, as it will be written to the daemon."""

    method: bytes
    target: bytes  # origin-form
    version: bytes  # b"1.1" or b"1.0" (the daemon then answers as it would that client)
    headers: list[tuple[bytes, bytes]]  # lower-case names, as read from the client
    raw_head: bytes  # as received
    body: bytes | None  # judged and read whole; None: streamed from the client
    hijack: bool
    websocket: bool
    keep_alive: bool  # the client's wish


def websocket_head(raw_head: bytes, target: bytes) -> bytes:
    """The client's head, byte for byte, less the proxy's credentials (and in origin-form)."""
    lines = raw_head[:-4].split(b"\r\n")
    method, _, rest = lines[0].partition(b" ")
    _, _, version = rest.rpartition(b" ")
    out = [method + b" " + target + b" " + version]
    out += [line for line in lines[1:] if not line.lower().startswith(_CREDENTIALS)]
    return b"\r\n".join(out) + b"\r\n\r\n"


class Relay:
    """The daemon side of one client session: one upstream connection, reused while both
    sides allow it."""

    def __init__(
        self,
        upstream_socket: str,
        client: ClientConn,
        emit: Callable[[dict[str, Any]], None],
        pool: list[Upstream] | None = None,
    ) -> None:
        self.upstream_socket = upstream_socket
        self.pool = pool if pool is not None else []  # idle daemon connections, shared
        self.idle = False  # self.up is between two complete exchanges
        self.client = client
        self.writer = client.writer
        self.emit = emit  # the decision-log line, once the daemon's status is known
        self.up: Upstream | None = None
        self.streaming = True  # answer may last (events, logs -f): watch for the client leaving
        self.scope: tuple[str, ContainerScope] | None = None  # (route, scope): filter the answer

    def close(self) -> None:
        """Drop the daemon connection (mid-answer, broken, or asked to close)."""
        if self.up is not None:
            self.up.close()
            self.up = None

    def release(self) -> None:
        """At the end of the client's session: an idle daemon connection goes to the pool."""
        up, self.up = self.up, None
        if up is None:
            return
        if self.idle and not up.buf and not up.reader.at_eof() and len(self.pool) < POOL_SIZE:
            self.pool.append(up)
        else:
            up.close()

    async def _upstream(self) -> Upstream:
        if self.up is not None and self.idle and not self.up.buf and not self.up.reader.at_eof():
            self.idle = False
            return self.up
        self.close()
        self.idle = False
        while self.pool:
            up = self.pool.pop()
            if not up.reader.at_eof():
                self.up = up
                return up
            up.close()
        reader, writer = await asyncio.open_unix_connection(self.upstream_socket, limit=READ_SIZE)
        self.up = Upstream(reader, writer)
        return self.up

    async def _up_read(self, up: Upstream, watcher: asyncio.Future[bool] | None) -> bytes:
        """The next bytes from the daemon; ends the session if the client left meanwhile."""
        if watcher is None or watcher.done():
            return await up.reader.read(READ_SIZE)
        read = asyncio.ensure_future(up.reader.read(READ_SIZE))
        await asyncio.wait((read, watcher), return_when=asyncio.FIRST_COMPLETED)
        if watcher.done() and watcher.result() and not read.done():
            read.cancel()
            raise Close  # the client left a stream that may never end (events, logs -f)
        return await read

    def _fail(self, record: dict[str, Any], started: float, message: str) -> bytes:
        record.update(decision="error", rule="upstream", status=502, reason=message[:2000])
        record["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
        self.emit(record)
        return error_response(502, message)

    async def forward(self, req: Outgoing, record: dict[str, Any], started: float) -> bool:
        """Send the request, relay the answer; True when the client connection stays open."""
        try:
            up = await self._upstream()
        except OSError as exc:
            self.writer.write(self._fail(record, started, f"cannot reach the Docker daemon: {exc}"))
            await self.writer.drain()
            return False
        chunked_in = any(k == b"transfer-encoding" for k, _ in req.headers)
        if req.websocket:
            up.writer.write(websocket_head(req.raw_head, req.target))
        else:
            out = [(k, v) for k, v in req.headers if k not in _HOP]
            out.insert(0, (b"host", b"docker"))
            if req.hijack and any(k == b"upgrade" for k, _ in req.headers):
                out += [(b"connection", b"Upgrade"), (b"upgrade", b"tcp")]
            elif req.version == b"1.0" and req.keep_alive:
                out.append((b"connection", b"keep-alive"))
            if req.body is not None:
                out.append((b"content-length", str(len(req.body)).encode()))
            elif chunked_in:
                out.append((b"transfer-encoding", b"chunked"))
            else:
                length = next((v for k, v in req.headers if k == b"content-length"), None)
                if length is not None:
                    out.append((b"content-length", length))
            up.writer.write(request_head(req.method, req.target, out, req.version))
        if req.body is not None:
            up.writer.write(req.body)
        else:
            async for data in self.client.body():
                up.writer.write(chunk(data) if chunked_in else data)
                await up.writer.drain()
            if chunked_in:
                up.writer.write(LAST_CHUNK)
        await up.writer.drain()
        reusable = await self.relay_response(up, req.method == b"HEAD", record, started)
        return reusable and req.keep_alive

    async def lookup(self, path: str) -> Any:
        """GET `path` from the daemon (between two requests of this session): the JSON answer,
        or None when it is not 200."""
        try:
            up = await self._upstream()
            up.writer.write(request_head(b"GET", path.encode("ascii"), [(b"host", b"docker")]))
            await up.writer.drain()
            raw, rest = await self._response_head(up)
            head = parse_response_head(raw)
            body, up.buf = await self._read_whole(up, head, rest)
        except (OSError, UpstreamError, FramingError):
            self.close()
            return None
        if b"close" in (head.header(b"connection") or b"").lower() or up.buf:
            self.close()
        else:
            self.idle = True
        if head.status != 200:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None

    async def _read_whole(
        self, up: Upstream, head: ResponseHead, data: bytes
    ) -> tuple[bytes, bytes]:
        """A whole answer body (bounded) and what followed it."""
        te = head.header(b"transfer-encoding")
        length = head.header(b"content-length")
        parts: list[bytes] = []
        size = 0
        decoder = ChunkedDecoder() if te is not None else None
        remaining = int(length) if length is not None and length.isdigit() else -1
        while True:
            if decoder is not None:
                pieces, end = decoder.feed(data)
                parts += pieces
                if end >= 0:
                    return b"".join(parts), data[end:]
            elif remaining >= 0:
                parts.append(data[:remaining])
                remaining -= len(parts[-1])
                if remaining == 0:
                    return b"".join(parts), data[len(parts[-1]) :]
            else:
                parts.append(data)
            size += len(data)
            if size > MAX_FILTERED:
                raise UpstreamError("answer too large to filter")
            data = await up.reader.read(READ_SIZE)
            if not data:
                if decoder is None and remaining < 0:
                    self.close()
                    return b"".join(parts), b""
                raise UpstreamError("the daemon closed the connection")

    async def _relay_scoped(
        self, up: Upstream, raw: bytes, head: ResponseHead, rest: bytes
    ) -> bool:
        assert self.scope is not None
        route, scope = self.scope
        if route == "events":
            return await self._relay_events(up, raw, head, rest, scope)
        try:
            body, up.buf = await self._read_whole(up, head, rest)
        except (UpstreamError, FramingError) as exc:
            raise Close from exc
        try:
            body = answer_in_scope(route, scope, body)  # lists and df, cut down to the scope
        except AnswerError as exc:
            raise Close from exc
        self.writer.write(_with_length(raw, len(body)) + body)
        return True

    async def _relay_events(
        self, up: Upstream, raw: bytes, head: ResponseHead, data: bytes, scope: ContainerScope
    ) -> bool:
        chunked = head.header(b"transfer-encoding") is not None
        decoder = ChunkedDecoder() if chunked else None
        self.writer.write(raw)
        line = b""
        watcher = asyncio.ensure_future(self.client.watch())
        try:
            while True:
                end = -1
                if data:
                    if decoder is not None:
                        try:
                            pieces, end = decoder.feed(data)
                        except FramingError as exc:
                            raise Close from exc
                    else:
                        pieces = [data]
                    *complete, line = (line + b"".join(pieces)).split(b"\n")
                    kept = [x for x in complete if event_in_scope(scope, x)]
                    if kept:
                        out = b"\n".join(kept) + b"\n"
                        self.writer.write(chunk(out) if chunked else out)
                    if end >= 0:
                        self.writer.write(LAST_CHUNK)
                        up.buf = data[end:]
                        return True
                    await self.writer.drain()
                data = await self._up_read(up, watcher)
                if not data:
                    if chunked:
                        raise Close
                    self.close()
                    return False
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _response_head(self, up: Upstream) -> tuple[bytes, bytes]:
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
        self, up: Upstream, head_request: bool, record: dict[str, Any], started: float
    ) -> bool:
        """Pass the daemon's answer through unchanged; True when both sides stay reusable."""
        try:
            raw, rest = await self._response_head(up)
            head = parse_response_head(raw)
        except UpstreamError as exc:
            self.close()
            self.writer.write(
                self._fail(record, started, f"bad answer from the Docker daemon: {exc}")
            )
            await self.writer.drain()
            return False
        record.update(
            status=head.status, latency_ms=round((time.perf_counter() - started) * 1000, 3)
        )
        self.emit(record)
        if head.status == 101:
            self.writer.write(raw)
            await self.splice(up, rest)
            return False
        te = head.header(b"transfer-encoding")
        length = head.header(b"content-length")
        connection = (head.header(b"connection") or b"").lower()
        if raw.startswith(b"HTTP/1.0"):  # answering an HTTP/1.0 client
            reusable = b"keep-alive" in connection
        else:
            reusable = b"close" not in connection
        if self.scope is not None and head.status == 200 and not head_request:
            if not await self._relay_scoped(up, raw, head, rest):
                return False
        elif head_request or head.status in (204, 304) or 100 <= head.status < 200:
            self.writer.write(raw)
            up.buf = rest
        elif te is not None:
            if te.lower() != b"chunked":
                raise Close
            up.buf = await self._relay_chunked(up, raw, rest)
        elif length is not None and length.isdigit():
            up.buf = await self._relay_sized(up, raw, rest, int(length))
        else:
            self.writer.write(raw)
            await self._relay_until_close(up, rest)
            return False
        await self.writer.drain()
        if not reusable or up.buf:
            self.close()
        else:
            self.idle = True
        return reusable

    async def _relay_sized(self, up: Upstream, head: bytes, data: bytes, remaining: int) -> bytes:
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
                raise Close

    async def _relay_chunked(self, up: Upstream, head: bytes, data: bytes) -> bytes:
        tracker = ChunkedEnd()
        try:
            end = tracker.feed(data)
        except UpstreamError as exc:
            raise Close from exc
        if end >= 0:  # the whole answer is here: no watcher, one send
            self.writer.write(head + data[:end])
            return data[end:]
        self.writer.write(head + data)
        data = b""
        watcher = asyncio.ensure_future(self.client.watch()) if self.streaming else None
        try:
            while True:
                if data:
                    try:
                        end = tracker.feed(data)
                    except UpstreamError as exc:
                        raise Close from exc
                    if end >= 0:
                        self.writer.write(data[:end])
                        return data[end:]
                    self.writer.write(data)
                    if self.writer.transport.get_write_buffer_size() > READ_SIZE:
                        await self.writer.drain()
                data = await self._up_read(up, watcher)
                if not data:
                    raise Close
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher  # its read must be over before the next request head is read

    async def _relay_until_close(self, up: Upstream, data: bytes) -> None:
        watcher = asyncio.ensure_future(self.client.watch())
        try:
            while data:
                self.writer.write(data)
                await self.writer.drain()
                data = await self._up_read(up, watcher)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        self.close()

    async def splice(self, up: Upstream, up_rest: bytes) -> None:
        """Raw bytes both ways after 101, with half-close passed through."""
        client_rest = self.client.take_rest()
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
            pipe(client_rest, self.client.reader, up.writer),
            pipe(up_rest, up.reader, self.writer),
        )
        up.close()
