"""The relay: an allowed request written to the daemon, its answer passed back unchanged.

What reaches the daemon is written by the proxy from what was judged (judged bodies go with the
exact Content-Length of the bytes inspected), except a WebSocket upgrade, whose head reaches the
daemon as the client sent it (less the proxy's own credentials). Answers come from the daemon,
which the proxy trusts: they pass byte for byte, and the relay only tracks where each one ends
so both connections can be reused.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from dockward.policy.model import ContainerScope
from dockward.proxy.framing import ChunkedDecoder, Close, FramingError, error_response
from dockward.proxy.scope import AnswerError, answer_in_scope, event_in_scope
from dockward.proxy.upstream import (
    LAST_CHUNK,
    ChunkedEnd,
    ResponseHead,
    UpstreamConn,
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


class Session(Protocol):
    """The client side, as the relay sees it (dockward.proxy.server.Session)."""

    transport: asyncio.Transport
    buf: bytes

    def answer_done(self, reusable: bool) -> None: ...

    def abort(self) -> None: ...

    def set_up_full(self, full: bool) -> None: ...

    def start_upload(self) -> None: ...

    def start_splice(self) -> None: ...

    @property
    def uploading(self) -> bool: ...


_R_IDLE, _R_HEAD, _R_SIZED, _R_CHUNKED, _R_CLOSE, _R_WHOLE, _R_EVENTS, _R_SPLICE = range(8)


class Relay:
    """The daemon side of one client session: one upstream connection (from the shared pool,
    or a new one), reused while both sides allow it. Callbacks only: the daemon's bytes go to
    the client's transport as they arrive, with each side's write buffer pausing the other's
    reading."""

    def __init__(
        self,
        upstream_socket: str,
        session: Session,
        emit: Callable[[dict[str, Any]], None],
        pool: list[UpstreamConn],
    ) -> None:
        self.upstream_socket = upstream_socket
        self.session = session
        self.emit = emit  # the decision-log line, once the daemon's status is known
        self.pool = pool  # idle daemon connections, shared by the sessions of this process
        self.up: UpstreamConn | None = None
        self.idle = False  # self.up is between two complete exchanges
        self.state = _R_IDLE
        self.streaming = True  # the answer may last (events, logs -f): ends when the client goes
        self.scope: tuple[str, ContainerScope] | None = None  # (route, scope): filter the answer
        self.client_full = False
        self.client_eof = False  # spliced: the client half-closed
        self.up_eofed = False  # spliced: the daemon half-closed
        # the current exchange
        self.rbuf = b""
        self.remaining = 0
        self.tracker: ChunkedEnd | None = None
        self.decoder: ChunkedDecoder | None = None
        self.reusable = False
        self.head_request = False
        self.hijack = False  # the request is attach or exec start: an answer may become a stream
        self.record: dict[str, Any] = {}
        self.started = 0.0
        self.raw = b""  # the answer's head (filtered answers)
        self.parts: list[bytes] = []
        self.size = 0
        self.line = b""
        self.whole: asyncio.Future[tuple[ResponseHead, bytes]] | None = None  # a lookup's answer
        self._head: ResponseHead | None = None

    # -- the upstream connection ---------------------------------------------------------------

    def _take(self) -> UpstreamConn | None:
        up = self.up
        if up is not None and self.idle and not up.closed:
            self.idle = False
            return up
        self.drop()
        while self.pool:
            up = self.pool.pop()
            if not up.closed:
                return self._own(up)
        return None

    def _own(self, up: UpstreamConn) -> UpstreamConn:
        self.up, self.idle = up, False
        up.owner = self
        if self.client_full and up.transport is not None:
            up.transport.pause_reading()
        return up

    async def _connect(self) -> UpstreamConn:
        up = self._take()
        if up is not None:
            return up
        loop = asyncio.get_running_loop()
        _, up = await loop.create_unix_connection(UpstreamConn, self.upstream_socket)
        return self._own(up)

    def drop(self) -> None:
        """Close the daemon connection (mid-answer, broken, or asked to close)."""
        up, self.up = self.up, None
        self.idle = False
        self.state = _R_IDLE
        if up is not None:
            up.owner = None
            up.close()

    def release(self) -> None:
        """At the end of the client's session: an idle daemon connection goes to the pool."""
        up, self.up = self.up, None
        if up is None:
            return
        up.owner = None
        if self.idle and not up.closed and len(self.pool) < POOL_SIZE:
            if self.client_full and up.transport is not None:
                up.transport.resume_reading()
            self.pool.append(up)
        else:
            up.close()
        self.idle = False

    # -- flow control ---------------------------------------------------------------------------

    def set_client_full(self, full: bool) -> None:
        """The client's write buffer crossed its high (or low) mark: stop (resume) reading the
        daemon, whose bytes are written there."""
        self.client_full = full
        up = self.up
        if up is not None and up.transport is not None and not up.closed:
            if full:
                up.transport.pause_reading()
            else:
                up.transport.resume_reading()

    def up_full(self, full: bool) -> None:
        self.session.set_up_full(full)

    def send(self, data: bytes) -> None:
        """Request bytes (a body as it arrives, or a spliced stream) to the daemon."""
        if self.up is not None and not self.up.closed:
            self.up.write(data)

    # -- requests -------------------------------------------------------------------------------

    def _fail(self, record: dict[str, Any], started: float, message: str) -> None:
        record.update(decision="error", rule="upstream", status=502, reason=message[:2000])
        record["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
        self.emit(record)
        self.session.transport.write(error_response(502, message))
        self.session.abort()

    def forward(
        self, req: Outgoing, record: dict[str, Any], started: float, streamed_body: bool
    ) -> asyncio.Task[None] | None:
        """Send the request (a task when a new daemon connection must be made first)."""
        self.record, self.started = record, started
        self.head_request = req.method == b"HEAD"
        self.hijack = req.hijack
        up = self._take()
        if up is not None:
            self._send(up, req, streamed_body)
            return None
        return asyncio.ensure_future(self._connect_and_send(req, streamed_body))

    async def _connect_and_send(self, req: Outgoing, streamed_body: bool) -> None:
        try:
            up = await self._connect()
        except OSError as exc:
            self._fail(self.record, self.started, f"cannot reach the Docker daemon: {exc}")
            return
        self._send(up, req, streamed_body)

    def _send(self, up: UpstreamConn, req: Outgoing, streamed_body: bool) -> None:
        if req.websocket:
            head = websocket_head(req.raw_head, req.target)
        else:
            out = [(b"host", b"docker")]
            out += [(k, v) for k, v in req.headers if k not in _HOP]
            if req.hijack and any(k == b"upgrade" for k, _ in req.headers):
                out += [(b"connection", b"Upgrade"), (b"upgrade", b"tcp")]
            elif req.version == b"1.0" and req.keep_alive:
                out.append((b"connection", b"keep-alive"))
            if req.body is not None:
                out.append((b"content-length", b"%d" % len(req.body)))
            else:
                for k, v in req.headers:
                    if k == b"transfer-encoding":
                        out.append((b"transfer-encoding", b"chunked"))
                    elif k == b"content-length":
                        out.append((b"content-length", v))
            head = request_head(req.method, req.target, out, req.version)
        self.state, self.rbuf = _R_HEAD, b""
        up.write(head + req.body if req.body else head)
        if streamed_body:
            self.session.start_upload()

    async def lookup(self, path: str) -> Any:
        """GET `path` from the daemon (between two requests of this session): the JSON answer,
        or None when it is not 200."""
        try:
            up = await self._connect()
        except OSError:
            return None
        loop = asyncio.get_running_loop()
        self.whole = whole = loop.create_future()
        self.state, self.rbuf = _R_HEAD, b""
        up.write(request_head(b"GET", path.encode("ascii"), [(b"host", b"docker")]))
        try:
            head, body = await whole
        except (OSError, UpstreamError, FramingError, Close):
            self.drop()
            return None
        finally:
            self.whole = None
        if head.status != 200:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None

    # -- answers --------------------------------------------------------------------------------

    def up_data(self, data: bytes) -> None:
        try:
            self._up_data(data)
        except (UpstreamError, FramingError, Close) as exc:
            if self.whole is not None and not self.whole.done():
                self.whole.set_exception(UpstreamError(str(exc)))
                return
            self.session.abort()

    def _up_data(self, data: bytes) -> None:
        state = self.state
        if state == _R_SIZED:
            n = len(data)
            if n < self.remaining:
                self.remaining -= n
                self.session.transport.write(data)
                return
            self.session.transport.write(data if n == self.remaining else data[: self.remaining])
            self._done(data[self.remaining :])
        elif state == _R_CHUNKED:
            assert self.tracker is not None
            end = self.tracker.feed(data)
            if end < 0:
                self.session.transport.write(data)
                return
            self.session.transport.write(data if end == len(data) else data[:end])
            self._done(data[end:])
        elif state == _R_HEAD:
            buf = self.rbuf + data if self.rbuf else data
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_RESPONSE_HEAD:
                    self._bad_answer("response head too large")
                    return
                self.rbuf = buf
                return
            self.rbuf = b""
            try:
                head = parse_response_head(buf[: end + 4])
            except UpstreamError as exc:
                self._bad_answer(str(exc))
                return
            self._answer(head, buf[end + 4 :])
        elif state in (_R_SPLICE, _R_CLOSE):
            self.session.transport.write(data)
        elif state == _R_WHOLE:
            self._collect(data)
        elif state == _R_EVENTS:
            self._events(data)
        else:  # bytes from the daemon with no request out: this connection is done
            self.drop()

    def _bad_answer(self, message: str) -> None:
        self.drop()
        if self.whole is not None:
            if not self.whole.done():
                self.whole.set_exception(UpstreamError(message))
            return
        self._fail(self.record, self.started, f"bad answer from the Docker daemon: {message}")

    def _answer(self, head: ResponseHead, rest: bytes) -> None:
        raw = head.raw
        te = head.header(b"transfer-encoding")
        length = head.header(b"content-length")
        connection = (head.header(b"connection") or b"").lower()
        if raw.startswith(b"HTTP/1.0"):  # answering an HTTP/1.0 client
            self.reusable = b"keep-alive" in connection
        else:
            self.reusable = b"close" not in connection
        if self.whole is not None:  # a lookup: the whole answer, for the session
            self._start_whole(head, rest)
            return
        record = self.record
        record.update(
            status=head.status, latency_ms=round((time.perf_counter() - self.started) * 1000, 3)
        )
        self.emit(record)
        write = self.session.transport.write
        if head.status == 101 or (
            self.hijack and head.status == 200 and te is None and length is None
        ):
            # 101 for a client that asked to upgrade; without Upgrade dockerd answers attach and
            # exec start with a bare 200 and takes over the connection all the same: the
            # client's stdin follows on it (moby's container_routes.go postContainersAttach).
            write(raw + rest if rest else raw)
            self.state = _R_SPLICE
            self.session.start_splice()
            return
        if self.scope is not None and head.status == 200 and not self.head_request:
            if self.scope[0] == "events":
                self.decoder = ChunkedDecoder() if te is not None else None
                self.line = b""
                write(raw)
                self.state = _R_EVENTS
                if rest:
                    self._events(rest)
            else:
                self._start_whole(head, rest)
            return
        if self.head_request or head.status in (204, 304) or 100 <= head.status < 200:
            write(raw)
            self._done(rest)
        elif te is not None:
            if te.lower() != b"chunked":
                raise Close
            self.tracker = tracker = ChunkedEnd()
            end = tracker.feed(rest)
            if end >= 0:
                write(raw + rest[:end])
                self._done(rest[end:])
                return
            write(raw + rest)
            self.state = _R_CHUNKED
        elif length is not None and length.isdigit():
            remaining = int(length)
            if len(rest) >= remaining:
                write(raw + rest[:remaining])
                self._done(rest[remaining:])
                return
            write(raw + rest if rest else raw)
            self.remaining = remaining - len(rest)
            self.state = _R_SIZED
        else:
            write(raw + rest if rest else raw)
            self.reusable = False
            self.state = _R_CLOSE

    def _done(self, leftover: bytes) -> None:
        """The answer is complete: the daemon connection stays for the next request when both
        sides allow it."""
        self.state = _R_IDLE
        self.tracker = self.decoder = None
        if leftover or not self.reusable or self.session.uploading:
            self.drop()
        else:
            self.idle = True
        self.session.answer_done(self.reusable)

    # whole answers: a lookup, or a list filtered for a scoped client

    def _start_whole(self, head: ResponseHead, rest: bytes) -> None:
        self.raw = head.raw
        te = head.header(b"transfer-encoding")
        length = head.header(b"content-length")
        self.decoder = ChunkedDecoder() if te is not None else None
        self.remaining = int(length) if length is not None and length.isdigit() else -1
        self.parts, self.size = [], 0
        self._head = head
        self.state = _R_WHOLE
        if self.decoder is None and self.remaining == 0:
            self._whole_done(b"")
        elif rest:
            self._collect(rest)

    def _collect(self, data: bytes) -> None:
        end = -1
        if self.decoder is not None:
            pieces, end = self.decoder.feed(data)
            self.parts += pieces
        elif self.remaining >= 0:
            piece = data[: self.remaining]
            self.parts.append(piece)
            self.remaining -= len(piece)
            if self.remaining == 0:
                end = len(piece)
        else:
            self.parts.append(data)
        self.size += len(data)
        if self.size > MAX_FILTERED:
            raise UpstreamError("answer too large to filter")
        if end >= 0:
            self._whole_done(data[end:])

    def _whole_done(self, leftover: bytes) -> None:
        body = b"".join(self.parts)
        self.parts = []
        self.decoder = None
        if self.whole is not None:
            self.state = _R_IDLE
            if leftover or not self.reusable:
                self.drop()
            else:
                self.idle = True
            if not self.whole.done():
                assert self._head is not None
                self.whole.set_result((self._head, body))
            return
        assert self.scope is not None
        route, scope = self.scope
        try:
            body = answer_in_scope(route, scope, body)  # lists and df, cut down to the scope
        except AnswerError as exc:
            raise Close from exc
        self.session.transport.write(_with_length(self.raw, len(body)) + body)
        self._done(leftover)

    def _events(self, data: bytes) -> None:
        assert self.scope is not None
        end = -1
        if self.decoder is not None:
            pieces, end = self.decoder.feed(data)
        else:
            pieces = [data]
        *complete, self.line = (self.line + b"".join(pieces)).split(b"\n")
        kept = [x for x in complete if event_in_scope(self.scope[1], x)]
        if kept:
            out = b"\n".join(kept) + b"\n"
            self.session.transport.write(chunk(out) if self.decoder is not None else out)
        if end >= 0:
            self.session.transport.write(LAST_CHUNK)
            self._done(data[end:])

    def up_eof(self) -> bool:
        if self.state == _R_SPLICE:
            self.up_eofed = True
            transport = self.session.transport
            if self.client_eof or not transport.can_write_eof():
                self.session.abort()
                return False
            transport.write_eof()
            return True
        self.up_lost()
        return False

    def up_lost(self) -> None:
        state = self.state
        up, self.up = self.up, None
        self.idle = False
        self.state = _R_IDLE
        if up is not None:
            up.owner = None
            up.close()
        if state == _R_IDLE:
            return  # an idle connection the daemon closed: the next request opens another
        if self.whole is not None:
            if not self.whole.done():
                self.whole.set_exception(UpstreamError("the daemon closed the connection"))
            return
        if state == _R_HEAD:
            self._fail(self.record, self.started, "the Docker daemon closed the connection")
            return
        self.session.abort()  # mid-answer (or the end of an answer that ends with the stream)

    # -- spliced streams ------------------------------------------------------------------------

    def client_eof_spliced(self) -> bool:
        """The client half-closed a spliced stream: pass it on (True: keep the client open)."""
        self.client_eof = True
        up = self.up
        if up is None or up.closed or self.up_eofed or up.transport is None:
            self.session.abort()
            return False
        if up.transport.can_write_eof():
            up.transport.write_eof()
            return True
        self.session.abort()
        return False
