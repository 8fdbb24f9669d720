"""The client side of a session: request heads checked raw, then parsed; bodies read or drained.

h11 already refuses obs-fold, conflicting Content-Length and any Transfer-Encoding but chunked,
but it silently merges repeated identical Content-Length headers and lets Transfer-Encoding
override Content-Length. A proxy in front of another parser must not guess: both are refused,
and so is Transfer-Encoding on an HTTP/1.0 request (dockerd's Go server ignores it there and
would read the chunked bytes as the next request).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import h11

from dockward.errors import DockwardError

MAX_HEAD = 64 * 1024
_HEAD_END = b"\r\n\r\n"
_NAME = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class FramingError(DockwardError, ValueError):
    """A request head open to more than one reading."""


def head_length(buffer: bytes) -> int:
    """Bytes of the head (terminator included) when complete, 0 when more is needed."""
    end = buffer.find(_HEAD_END)
    if end < 0:
        if len(buffer) > MAX_HEAD:
            raise FramingError("request head too large")
        if b"\n\n" in buffer or b"\r\r" in buffer:
            raise FramingError("bare LF or CR line ending in request head")
        return 0
    if end + 4 > MAX_HEAD:
        raise FramingError("request head too large")
    return end + 4


def check_head(head: bytes) -> None:
    """Refuse ambiguous framing: bare CR/LF, obs-fold, NUL, duplicate framing headers."""
    body = head[:-4]
    if b"\x00" in body:
        raise FramingError("NUL byte in request head")
    if re.search(rb"\r(?!\n)", body) or re.search(rb"(?<!\r)\n", body):
        raise FramingError("bare CR or LF in request head")
    lines = body.split(b"\r\n")
    request_line = lines[0].split(b" ")
    if len(request_line) != 3:
        raise FramingError("malformed request line")
    counts: dict[bytes, int] = {}
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise FramingError("obsolete line folding in request head")
        name, sep, value = line.partition(b":")
        if not sep or not _NAME.match(name):
            raise FramingError(f"malformed header line {line[:40]!r}")
        key = name.lower()
        counts[key] = counts.get(key, 0) + 1
        if key == b"content-length" and not value.strip(b" \t").isdigit():
            raise FramingError("Content-Length is not a single decimal number")
        if key == b"transfer-encoding" and value.strip(b" \t").lower() != b"chunked":
            raise FramingError("Transfer-Encoding other than chunked")
    for key in (b"content-length", b"transfer-encoding", b"host", b"upgrade", b"authorization"):
        if counts.get(key, 0) > 1:
            raise FramingError(f"repeated {key.decode()} header")
    if counts.get(b"content-length") and counts.get(b"transfer-encoding"):
        raise FramingError("both Content-Length and Transfer-Encoding")
    if request_line[2] == b"HTTP/1.0" and counts.get(b"transfer-encoding"):
        raise FramingError("Transfer-Encoding in an HTTP/1.0 request")


READ_SIZE = 256 * 1024
DISCARD_LIMIT = 256 * 1024 * 1024  # of a refused body, read and dropped before answering
DISCARD_SECONDS = 30.0
REASONS = {
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    413: b"Payload Too Large",
    505: b"HTTP Version Not Supported",
    502: b"Bad Gateway",
}


class Close(Exception):
    """End this client connection (after whatever was already answered)."""


def error_response(status: int, message: str) -> bytes:
    """A complete JSON error answer the docker CLI prints; the connection closes after it."""
    payload = json.dumps({"message": message}).encode()
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n%s"
        % (status, REASONS.get(status, b"Error"), len(payload), payload)
    )


def keep_alive(version: bytes, headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the client expects the connection to stay open after the answer (RFC 9112 9.3)."""
    tokens = {t.strip().lower() for k, v in headers if k == b"connection" for t in v.split(b",")}
    if version == b"1.0":
        return b"keep-alive" in tokens
    return b"close" not in tokens


class ClientConn:
    """One client connection: every head goes through the raw checks before h11 parses it,
    including pipelined ones and bytes that arrived while an answer was streaming."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_error: Callable[[int, str], None],
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.on_error = on_error  # a refusal made here, before any decision (for the log)
        self.h = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        self.pending = b""  # bytes read ahead while a response was streaming
        self.raw_head = b""  # the head of the current request, as received

    async def _fill_head(self) -> bool:
        """Read one request head, check it raw, then hand everything read to h11."""
        buf, self.pending = self.pending, b""
        while True:
            try:
                n = head_length(buf)
                if n:
                    check_head(buf[:n])
            except FramingError as exc:
                await self.raw_error(400, str(exc))
                raise Close from exc
            if n:
                self.raw_head = buf[:n]
                self.h.receive_data(buf)
                return True
            data = await self.reader.read(READ_SIZE)
            if not data:
                if buf:
                    await self.raw_error(400, "incomplete request head")
                return False
            buf += data

    async def event(self) -> Any:
        while True:
            try:
                ev = self.h.next_event()
            except h11.RemoteProtocolError as exc:
                await self.raw_error(400, f"bad request: {exc}")
                raise Close from exc
            if ev is h11.NEED_DATA:
                self.h.receive_data(await self.reader.read(READ_SIZE))
                continue
            return ev

    async def next_request(self) -> h11.Request | None:
        """The next request's head, or None when the client is done."""
        if not await self._fill_head():
            return None
        ev = await self.event()
        if isinstance(ev, h11.ConnectionClosed):
            return None
        if not isinstance(ev, h11.Request):
            raise Close
        return ev

    def finish_request(self) -> bool:
        """After an answer: ready for the next request (True) or the client has gone."""
        rest, closed = self.h.trailing_data
        if closed:
            return False
        # A pipelined request goes through the same raw-head checks as any other.
        self.pending = rest + self.pending
        self.h = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        return True

    async def body(self) -> AsyncIterator[bytes]:
        """The request body as it arrives, de-chunked."""
        while True:
            ev = await self.event()
            if isinstance(ev, h11.Data):
                yield bytes(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                return
            else:
                raise Close

    async def read_body(self, limit: int) -> bytes | None:
        """The whole body, or None when it is larger than `limit`."""
        chunks: list[bytes] = []
        size = 0
        async for data in self.body():
            size += len(data)
            if size > limit:
                return None
            chunks.append(data)
        return b"".join(chunks)

    def take_rest(self) -> bytes:
        """Bytes the client sent past the current request (raw stream after 101)."""
        rest = self.h.trailing_data[0] + self.pending
        self.pending = b""
        return rest

    async def watch(self) -> bool:
        """During a response: True when the client went away (ends a never-ending stream).
        Bytes it sends meanwhile start its next request and wait for the raw-head checks."""
        data = await self.reader.read(1)
        self.pending += data
        return not data

    async def refuse(self, status: int, message: str) -> None:
        """Answer with an error (after draining what is left of the body) and stop."""
        await self._discard_body()
        with contextlib.suppress(ConnectionError):
            self.writer.write(error_response(status, message))
            await self.writer.drain()

    async def _discard_body(self) -> None:
        """Read (and drop) the rest of a refused request's body, bounded in size and time, so
        the client gets to read the refusal instead of a broken pipe mid-upload."""
        if self.h.their_state is not h11.SEND_BODY:
            return
        dropped = 0

        async def drain() -> None:
            nonlocal dropped
            while dropped < DISCARD_LIMIT:
                ev = await self.event()
                if isinstance(ev, h11.Data):
                    dropped += len(ev.data)
                else:
                    return

        with contextlib.suppress(asyncio.TimeoutError, Close, ConnectionError):
            await asyncio.wait_for(drain(), DISCARD_SECONDS)

    async def raw_error(self, status: int, message: str) -> None:
        self.on_error(status, message)
        with contextlib.suppress(ConnectionError):
            self.writer.write(error_response(status, message))
            await self.writer.drain()
