"""The client side of a session: request heads checked raw, then parsed; bodies read or drained.

Each head is checked raw first (below), then parsed by llhttp (httptools, the C parser Node.js
uses, strict mode): the raw checks refuse what parsers disagree on (repeated Content-Length,
Content-Length with Transfer-Encoding, obs-fold, bare CR/LF, NUL, Transfer-Encoding on an
HTTP/1.0 request, which dockerd's Go server ignores and would read the chunks as the next
request), llhttp refuses malformed request lines and header bytes. Bodies are framed here as
dockerd frames them (Content-Length, or strict chunked: hex size, CRLF everywhere, bounded
extensions and trailers), never by a parser's upgrade guess.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable

import httptools

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
    bare = body.replace(b"\r\n", b"")
    if b"\r" in bare or b"\n" in bare:
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


_CHUNK_SIZE = re.compile(rb"^[0-9a-fA-F]{1,16}$")
_MAX_LINE = 4096
_MAX_TRAILERS = 16 * 1024
_SIZE, _DATA, _DATA_END, _TRAILER = range(4)


class ChunkedDecoder:
    """A strict chunked body: the data pieces in each buffer, and where the body ends."""

    def __init__(self) -> None:
        self.state = _SIZE
        self.line = b""
        self.remaining = 0
        self.trailers = 0

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        """(data pieces, index just past the body's end in `data` or -1 when it goes on)."""
        out: list[bytes] = []
        pos, n = 0, len(data)
        while pos < n:
            if self.state == _DATA:
                take = min(self.remaining, n - pos)
                out.append(data[pos : pos + take])
                pos += take
                self.remaining -= take
                if not self.remaining:
                    self.state = _DATA_END
                continue
            eol = data.find(b"\n", pos)
            if eol < 0:
                self.line += data[pos:]
                if len(self.line) > _MAX_LINE:
                    raise FramingError("chunk line too long")
                return out, -1
            line = self.line + data[pos : eol + 1]
            self.line = b""
            pos = eol + 1
            if len(line) > _MAX_LINE:
                raise FramingError("chunk line too long")
            if not line.endswith(b"\r\n") or b"\r" in line[:-2]:
                raise FramingError("bare CR or LF in chunked body")
            line = line[:-2]
            if self.state == _DATA_END:
                if line:
                    raise FramingError("chunk longer than its size")
                self.state = _SIZE
            elif self.state == _SIZE:
                size_text, _, ext = line.partition(b";")
                if not _CHUNK_SIZE.match(size_text):
                    raise FramingError(f"bad chunk size {size_text[:20]!r}")
                if any(c < 0x20 or c == 0x7F for c in ext if c != 0x09):
                    raise FramingError("control character in chunk extension")
                self.remaining = int(size_text, 16)
                self.state = _DATA if self.remaining else _TRAILER
            else:
                if not line:
                    return out, pos
                self.trailers += len(line)
                name, sep, _ = line.partition(b":")
                if not sep or not _NAME.match(name) or self.trailers > _MAX_TRAILERS:
                    raise FramingError("malformed chunked trailer")
        return out, -1


class Request:
    """One request head as llhttp read it: header names lower-case, values trimmed."""

    __slots__ = ("headers", "http_version", "method", "target")

    def __init__(self) -> None:
        self.method = b""
        self.target = b""
        self.http_version = b""
        self.headers: list[tuple[bytes, bytes]] = []

    def on_url(self, url: bytes) -> None:
        self.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value.strip(b" \t")))


class ClientConn:
    """One client connection: every head goes through the raw checks before llhttp parses it,
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
        self.pending = b""  # bytes read past the current request's head
        self.raw_head = b""  # the head of the current request, as received
        self.remaining = 0  # Content-Length bytes of the body not yet read
        self.chunked: ChunkedDecoder | None = None  # a chunked body not yet read to its end
        self.eof = False

    @property
    def in_body(self) -> bool:
        return bool(self.remaining) or self.chunked is not None

    async def next_request(self) -> Request | None:
        """The next request's head, or None when the client is done."""
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
                break
            data = await self.reader.read(READ_SIZE)
            if not data:
                self.eof = True
                if buf:
                    await self.raw_error(400, "incomplete request head")
                return None
            buf += data
        self.raw_head, self.pending = buf[:n], buf[n:]
        req = Request()
        parser = httptools.HttpRequestParser(req)
        try:
            parser.feed_data(self.raw_head)
        except httptools.HttpParserUpgrade:
            pass  # the body (if any) is framed below, as dockerd frames it
        except httptools.HttpParserError as exc:
            await self.raw_error(400, f"bad request: {exc}")
            raise Close from exc
        req.method = parser.get_method()
        req.http_version = parser.get_http_version().encode()
        length = b""
        for k, v in req.headers:
            if k == b"content-length":
                length = v
            elif k == b"transfer-encoding":
                self.chunked = ChunkedDecoder()
        if req.http_version == b"1.1" and not any(k == b"host" for k, _ in req.headers):
            await self.raw_error(400, "bad request: missing Host header")
            raise Close
        self.remaining = int(length) if length else 0
        return req

    def finish_request(self) -> bool:
        """After an answer: ready for the next request (True) or the client has gone."""
        return not self.eof and not self.in_body

    async def _more(self) -> bytes:
        if self.pending:
            data, self.pending = self.pending, b""
            return data
        data = await self.reader.read(READ_SIZE)
        if not data:
            self.eof = True
            raise Close  # the client left in the middle of its body
        return data

    async def body(self) -> AsyncIterator[bytes]:
        """The request body as it arrives, de-chunked; what follows it stays pending."""
        while self.remaining:
            data = await self._more()
            if len(data) > self.remaining:
                data, self.pending = data[: self.remaining], data[self.remaining :]
            self.remaining -= len(data)
            yield data
        decoder = self.chunked
        while decoder is not None:
            data = await self._more()
            try:
                pieces, end = decoder.feed(data)
            except FramingError as exc:
                await self.raw_error(400, str(exc))
                raise Close from exc
            if end >= 0:
                self.pending = data[end:]
                self.chunked = decoder = None
            for piece in pieces:
                if piece:
                    yield piece

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
        rest, self.pending = self.pending, b""
        return rest

    async def watch(self) -> bool:
        """During a response: True when the client went away (ends a never-ending stream).
        Bytes it sends meanwhile start its next request and wait for the raw-head checks."""
        data = await self.reader.read(1)
        self.pending += data
        if not data:
            self.eof = True
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
        if not self.in_body:
            return

        async def drain() -> None:
            dropped = 0
            async for data in self.body():
                dropped += len(data)
                if dropped >= DISCARD_LIMIT:
                    return

        with contextlib.suppress(asyncio.TimeoutError, Close, ConnectionError):
            await asyncio.wait_for(drain(), DISCARD_SECONDS)

    async def raw_error(self, status: int, message: str) -> None:
        self.on_error(status, message)
        with contextlib.suppress(ConnectionError):
            self.writer.write(error_response(status, message))
            await self.writer.drain()
