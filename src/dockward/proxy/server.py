"""The proxy's sessions: framing (client side), decision, relay (daemon side), in that order.

A session reads one request head at a time through `framing.ClientConn` (raw-head checks, then
llhttp), asks `decision.decide` whether it may pass, and either answers the refusal or hands the
request to `relay.Relay`, which writes it to the daemon and passes the answer back.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import struct
import time
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar, cast

from dockward.policy.admission import ImageGate
from dockward.policy.routes import STREAMING_ROUTES, Mode
from dockward.proxy.audit import DecisionLog
from dockward.proxy.authz import Authorizer, Caller
from dockward.proxy.decision import Decision, caller_of, decide
from dockward.proxy.framing import (
    DISCARD_LIMIT,
    DISCARD_SECONDS,
    READ_SIZE,
    ChunkedDecoder,
    Close,
    FramingError,
    Request,
    check_head,
    error_response,
    head_length,
    keep_alive,
    parse_request,
)
from dockward.proxy.learn import Learner
from dockward.proxy.relay import Outgoing, Relay
from dockward.proxy.upstream import UpstreamConn

T = TypeVar("T")

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


_HEAD, _DECIDING, _BODY, _ANSWER, _DISCARD, _SPLICE, _CLOSED = range(7)
BUFFER_LIMIT = READ_SIZE  # client bytes held while it may not send more (then reading pauses)
WRITE_HIGH = 256 * 1024  # a transport's write buffer above this pauses the other side
STREAM_GRACE = 1.0
# Answers that end only when the client leaves (or the container goes): on stop, streams.
_ENDLESS_ROUTES = frozenset(
    {
        "events",
        "containers.logs",
        "containers.stats",
        "containers.attach",
        "containers.attach_ws",
        "containers.attach_stdin",
        "containers.attach_ws_stdin",
        "exec.start",
    }
)


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
        self.pool: list[UpstreamConn] = []  # idle daemon connections, reused by the next session
        self.sessions: set[Session] = set()  # open client connections
        self.stopping = False  # draining: no new request is read

    def emit(self, record: dict[str, Any]) -> None:
        """A finished decision: to the log, and to its observers (the service's counters)."""
        self.log.record(**record)

    def protocol(self) -> Session:
        return Session(self)

    async def drain(self, timeout: float, stream_grace: float = STREAM_GRACE) -> int:
        """Stop: idle connections close now; a request in flight may finish within `timeout`
        seconds (its client then sees its connection close); streams that end only when their
        client leaves (events, logs and stats that follow, attach, exec, WebSocket) get
        `stream_grace` seconds for what is in flight, then close. The number of connections
        closed unfinished."""
        self.stopping = True
        for s in list(self.sessions):
            s.stop_if_idle()
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline, stream_deadline = now + timeout, now + min(timeout, stream_grace)
        while self.sessions and loop.time() < deadline:
            if loop.time() >= stream_deadline:
                for s in list(self.sessions):
                    if s.endless:
                        s.abort()
            await asyncio.sleep(0.02)
        cut = len(self.sessions)
        for s in list(self.sessions):
            s.abort()
        for up in self.pool:
            up.close()
        self.pool.clear()
        return cut


class _Resume:
    """The rest of a coroutine that was started by hand and suspended: awaited by a task."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self.coro, self.first = coro, first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self.coro, self.first
        while True:
            try:
                sent = yield value
            except BaseException as exc:  # passed on to the coroutine
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _finish(resume: _Resume) -> Any:
    return await resume


def run_eager(coro: Coroutine[Any, Any, T]) -> tuple[bool, T | asyncio.Task[T]]:
    """Run a coroutine until it first suspends: (True, its result) when it never does (no task
    is made: the decision on most requests), else (False, a task that runs the rest)."""
    try:
        first = coro.send(None)
    except StopIteration as stop:
        return True, stop.value
    return False, asyncio.ensure_future(_finish(_Resume(coro, first)))


class Session(asyncio.Protocol):
    """One client connection: heads checked raw then parsed, decided, and forwarded by the
    relay; bodies and answers pass between the two transports as they arrive."""

    def __init__(self, server: ProxyServer) -> None:
        self.server = server
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.peer = Caller()
        self.state = _HEAD
        self.buf = b""  # client bytes not handled yet
        self.raw_head = b""
        self.remaining = 0  # Content-Length bytes of the body not yet read
        self.chunked: ChunkedDecoder | None = None  # a chunked body not yet read to its end
        self.eof = False
        self.keep_alive = False
        self.endless = False  # the current answer is a stream (see drain)
        self.paused = False
        self.up_is_full = False
        self.waiter: asyncio.Future[None] | None = None  # read_body waits for bytes
        self.task: asyncio.Task[Any] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.refusal = b""  # written once a refused body is drained
        self.discarded = 0
        self.relay = Relay(server.upstream_socket, self, server.emit, server.pool)

    # -- transport callbacks --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport.set_write_buffer_limits(high=WRITE_HIGH)
        self.server.sessions.add(self)
        if self.server.stopping:
            self.abort()
            return
        self.peer = peer_caller(self.transport.get_extra_info("socket"))

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state == _BODY:
            self._upload(data)
        elif state == _SPLICE:
            self.relay.send(data)
        elif state == _DISCARD:
            self._discard(data)
        elif state != _CLOSED:
            self.buf = self.buf + data if self.buf else data
            if state == _HEAD:
                self._next()
            elif self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)
            self._flow()

    def eof_received(self) -> bool:
        self.eof = True
        state = self.state
        if state == _SPLICE:
            return self.relay.client_eof_spliced()
        if state == _HEAD:
            if self.buf:
                self._raw_error(400, "incomplete request head")
            self.abort()
        elif state == _DECIDING:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)
        elif state in (_BODY, _DISCARD):
            self.abort()  # the client left in the middle of its body
        elif state == _ANSWER and self.relay.streaming:
            self.abort()  # the client left a stream that may never end (events, logs -f)
        return True  # an answer being written still reaches a client that half-closed

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()

    def pause_writing(self) -> None:
        self.relay.set_client_full(True)

    def resume_writing(self) -> None:
        self.relay.set_client_full(False)

    # -- the session's life ---------------------------------------------------------------------

    def _end(self) -> None:
        if self.state == _CLOSED:
            return
        self.state = _CLOSED
        self.server.sessions.discard(self)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self.timer is not None:
            self.timer.cancel()
        if self.relay.state == 0 and self.relay.idle:
            self.relay.release()
        else:
            self.relay.drop()
        if self.relay.client_full:
            self.relay.client_full = False

    def abort(self) -> None:
        """Close the client connection (after what is already written to it)."""
        self._end()
        if self.transport is not None:
            self.transport.close()

    def stop_if_idle(self) -> None:
        if self.state == _HEAD and not self.buf:
            self.abort()

    def _flow(self) -> None:
        """Reading the client pauses while its bytes cannot go anywhere."""
        if self.state in (_BODY, _SPLICE):
            pause = self.up_is_full
        else:
            pause = len(self.buf) > BUFFER_LIMIT and self.waiter is None
        if pause != self.paused and self.state != _CLOSED:
            self.paused = pause
            if pause:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def set_up_full(self, full: bool) -> None:
        self.up_is_full = full
        self._flow()

    def _raw_error(self, status: int, message: str) -> None:
        """A refusal made before any decision (framing): logged, answered, and the end."""
        self.server.emit(
            {
                "decision": "deny",
                "status": status,
                "reason": message,
                "client": self.peer.describe(),
            }
        )
        self.transport.write(error_response(status, message))
        self.abort()

    # -- requests -------------------------------------------------------------------------------

    def _next(self) -> None:
        """A complete head in the buffer: check it, parse it, decide."""
        buf = self.buf
        try:
            n = head_length(buf)
            if not n:
                return
            raw = buf[:n]
            check_head(raw)
            req = parse_request(raw)
        except FramingError as exc:
            self._raw_error(400, str(exc))
            return
        self.raw_head, self.buf = raw, buf[n:]
        self.remaining = req.length
        self.chunked = ChunkedDecoder() if req.chunked else None
        try:
            self._request(req)
        except (Close, ConnectionError):
            self.abort()
        except Exception as exc:  # a bug must cost one connection, never the proxy
            self._internal(exc)

    def _internal(self, exc: BaseException) -> None:
        self.server.log.event("internal error", error=f"{type(exc).__name__}: {exc}"[:500])
        self.abort()

    def _request(self, req: Request) -> None:
        headers = req.headers
        caller = caller_of(self.peer, headers)
        method = req.method.decode("ascii", "replace")
        if req.http_version not in (b"1.0", b"1.1"):
            record: dict[str, Any] = {
                "client": caller.describe(),
                "method": method,
                "decision": "deny",
            }
            record.update(rule="http", status=505, reason="HTTP/1.0 or HTTP/1.1 required")
            self.server.emit(record)
            self._refuse(505, "HTTP/1.0 or HTTP/1.1 required")
            return
        self.state = _DECIDING
        server = self.server
        done, result = run_eager(
            decide(
                server.authorizer,
                server.gate,
                self,
                caller,
                method,
                req.target.decode("ascii", "replace"),
                self.relay.lookup,
            )
        )
        if done:
            self._decided(req, caller, method, result)  # type: ignore[arg-type]
            return
        assert isinstance(result, asyncio.Task)
        self.task = result
        result.add_done_callback(functools.partial(self._decided_later, req, caller, method))

    def _decided_later(
        self, req: Request, caller: Caller, method: str, task: asyncio.Task[Any]
    ) -> None:
        self.task = None
        if task.cancelled() or self.state == _CLOSED:
            return
        exc = task.exception()
        try:
            if exc is not None:
                raise exc
            self._decided(req, caller, method, task.result())
        except (Close, ConnectionError):
            self.abort()
        except Exception as err:  # a bug must cost one connection, never the proxy
            self._internal(err)

    def _decided(self, req: Request, caller: Caller, method: str, d: Decision) -> None:
        if self.state == _CLOSED:
            return
        if not d.allowed:
            d.record.setdefault("reason", d.message[:2000])
            d.record.update(
                status=d.status, latency_ms=round((time.perf_counter() - d.started) * 1000, 3)
            )
            self.server.emit(d.record)
            self._refuse(d.status, d.message)
            return
        assert d.target is not None
        if self.server.learner is not None:
            self.server.learner.observe(caller, method, d.target, d.route, d.body)
        headers = req.headers
        route = d.route
        hijack = d.match is not None and d.match.route.mode is Mode.HIJACK
        upgrade = next((v for k, v in headers if k == b"upgrade"), b"").lower() if hijack else b""
        relay = self.relay
        relay.streaming = d.match is None or route in STREAMING_ROUTES
        relay.scope = (route, d.scope) if d.scope is not None else None
        self.endless = hijack or route in _ENDLESS_ROUTES
        version = bytes(req.http_version)
        self.keep_alive = keep_alive(version, headers)
        out = Outgoing(
            method=req.method,
            target=d.target.raw.encode("ascii"),
            version=version,
            headers=headers,
            raw_head=self.raw_head,
            body=d.body,
            hijack=hijack,
            websocket=upgrade == b"websocket",
            keep_alive=self.keep_alive,
        )
        self.state = _ANSWER
        streamed = d.body is None and self.in_body
        self.task = relay.forward(out, d.record, d.started, streamed)

    @property
    def in_body(self) -> bool:
        return bool(self.remaining) or self.chunked is not None

    @property
    def uploading(self) -> bool:
        return self.state == _BODY

    def answer_done(self, reusable: bool) -> None:
        """The daemon's answer is written: next request, or the end of the session."""
        if self.state == _CLOSED:
            return
        if not reusable or not self.keep_alive or self.eof or self.in_body or self.server.stopping:
            self.abort()
            return
        self.state = _HEAD
        self.endless = False
        if self.buf:
            self._next()
        self._flow()

    # -- bodies ---------------------------------------------------------------------------------

    async def read_body(self, limit: int) -> bytes | None:
        """The whole body (de-chunked), or None when it is larger than `limit`."""
        parts: list[bytes] = []
        size = 0
        while self.in_body:
            if not self.buf:
                if self.eof or self.state == _CLOSED:
                    raise Close  # the client left in the middle of its body
                self.waiter = asyncio.get_running_loop().create_future()
                self._flow()
                try:
                    await self.waiter
                finally:
                    self.waiter = None
                continue
            data, self.buf = self.buf, b""
            if self.remaining:
                if len(data) > self.remaining:
                    data, self.buf = data[: self.remaining], data[self.remaining :]
                self.remaining -= len(data)
                pieces = [data]
            else:
                assert self.chunked is not None
                try:
                    pieces, end = self.chunked.feed(data)
                except FramingError as exc:
                    self._raw_error(400, str(exc))
                    raise Close from exc
                if end >= 0:
                    self.buf, self.chunked = data[end:], None
            for piece in pieces:
                size += len(piece)
                if size > limit:
                    return None
                parts.append(piece)
        self._flow()
        return b"".join(parts)

    def start_upload(self) -> None:
        """The request head is with the daemon: its body follows as the client sends it."""
        self.state = _BODY
        if self.buf:
            data, self.buf = self.buf, b""
            self._upload(data)
        self._flow()

    def _upload(self, data: bytes) -> None:
        rest = b""
        if self.remaining:
            if len(data) > self.remaining:
                data, rest = data[: self.remaining], data[self.remaining :]
            self.remaining -= len(data)
            self.relay.send(data)
        else:
            assert self.chunked is not None
            try:
                out, end = self.chunked.relay(data)
            except FramingError as exc:
                self._raw_error(400, str(exc))
                return
            if out:
                self.relay.send(out)
            if end >= 0:
                rest, self.chunked = data[end:], None
        if not self.in_body:
            self.state = _ANSWER if self.relay.state != 0 else self.state
            self.buf = rest
            if self.relay.state == 0:  # the daemon answered before the body ended
                self.abort()
                return
            self._flow()

    def _refuse(self, status: int, message: str) -> None:
        """Answer with an error (after reading what is left of the body, bounded in size and
        time, so the client reads the refusal instead of a broken pipe) and stop."""
        self.refusal = error_response(status, message)
        if not self.in_body:
            self._write_refusal()
            return
        self.state = _DISCARD
        self.discarded = 0
        self.timer = asyncio.get_running_loop().call_later(DISCARD_SECONDS, self._write_refusal)
        if self.buf:
            data, self.buf = self.buf, b""
            self._discard(data)
        self._flow()

    def _discard(self, data: bytes) -> None:
        self.discarded += len(data)
        if self.remaining:
            self.remaining -= min(len(data), self.remaining)
        elif self.chunked is not None:
            try:
                _, end = self.chunked.relay(data)
            except FramingError:
                end = 0
            if end >= 0:
                self.chunked = None
        if not self.in_body or self.discarded >= DISCARD_LIMIT:
            self._write_refusal()

    def _write_refusal(self) -> None:
        if self.state != _CLOSED:
            self.transport.write(self.refusal)
        self.abort()

    # -- spliced streams ------------------------------------------------------------------------

    def start_splice(self) -> None:
        """After 101: raw bytes both ways, half-close passed on."""
        self.state = _SPLICE
        self.endless = True
        if self.buf:
            data, self.buf = self.buf, b""
            self.relay.send(data)
        self._flow()


BACKLOG = 1024


async def serve_sockets(
    server: ProxyServer, sockets: list[socket.socket]
) -> list[asyncio.base_events.Server]:
    """Serve sockets bound elsewhere (by the parent of several workers)."""
    loop = asyncio.get_running_loop()
    servers = []
    for s in sockets:
        if s.family == socket.AF_UNIX:
            srv = await loop.create_unix_server(server.protocol, sock=s, backlog=BACKLOG)
        else:
            srv = await loop.create_server(server.protocol, sock=s, backlog=BACKLOG)
        servers.append(srv)
    return servers


async def start_listeners(
    server: ProxyServer,
    unix_paths: list[tuple[str, int, int, int]],
    tcp: list[tuple[str, int]],
    on_bound: Callable[[str], None] | None = None,
) -> list[asyncio.base_events.Server]:
    """unix_paths: (path, mode, uid, gid) with -1 to keep the owner; tcp: (host, port)."""
    loop = asyncio.get_running_loop()
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
            srv = await loop.create_unix_server(server.protocol, path, backlog=BACKLOG)
        finally:
            os.umask(old)
        os.chmod(path, mode)
        if uid != -1 or gid != -1:
            os.chown(path, uid, gid)
        servers.append(srv)
        if on_bound:
            on_bound(f"unix://{path}")
    for host, port in tcp:
        srv = await loop.create_server(
            server.protocol, host, port, backlog=BACKLOG, reuse_address=True
        )
        servers.append(srv)
        if on_bound:
            on_bound(f"tcp://{host}:{port}")
    return servers
