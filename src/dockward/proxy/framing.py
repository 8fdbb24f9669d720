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

import json
import re
from typing import Protocol

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


# A head with nothing to look at twice: request line of three tokens, header lines of a token, a
# colon and printable bytes, no header that frames a body or that may appear once only. Such a
# head passes every check below; any other goes through them one by one (and gets its reason).
_PLAIN_HEAD = re.compile(
    rb"[!-~]+ [!-~]+ HTTP/[0-9]\.[0-9]\r\n"
    rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t -~\x80-\xff]*\r\n)*\r\n"
)


def check_head(head: bytes) -> None:
    """Refuse ambiguous framing: bare CR/LF, obs-fold, NUL, duplicate framing headers."""
    if _PLAIN_HEAD.fullmatch(head):
        low = head.lower()
        if (
            b"\ncontent-length:" not in low
            and b"\ntransfer-encoding:" not in low
            and b"\nupgrade:" not in low
            and b"\nauthorization:" not in low
            and low.count(b"\nhost:") < 2
        ):
            return
    check_head_fully(head)


def check_head_fully(head: bytes) -> None:
    """`check_head` line by line, with the reason of a refusal."""
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

    def _line(self, line: bytes) -> bool:
        """One complete line (CRLF included); True at the end of the body."""
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
                return True
            self.trailers += len(line)
            name, sep, _ = line.partition(b":")
            if not sep or not _NAME.match(name) or self.trailers > _MAX_TRAILERS:
                raise FramingError("malformed chunked trailer")
        return False

    def _scan(self, data: bytes, out: list[bytes] | None) -> tuple[int, int]:
        """(index in `data` where the trailer section starts or -1, index just past the body's
        end or -1); data pieces appended to `out`."""
        pos, n = 0, len(data)
        trailer_at = 0 if self.state == _TRAILER else -1
        while pos < n:
            if self.state == _DATA:
                take = min(self.remaining, n - pos)
                if out is not None:
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
                return trailer_at, -1
            line = self.line + data[pos : eol + 1]
            self.line = b""
            pos = eol + 1
            if self._line(line):
                return trailer_at, pos
            if self.state == _TRAILER and trailer_at < 0:
                trailer_at = pos
        return trailer_at, -1

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        """(data pieces, index just past the body's end in `data` or -1 when it goes on)."""
        out: list[bytes] = []
        _, end = self._scan(data, out)
        return out, end

    def relay(self, data: bytes) -> tuple[bytes, int]:
        """For a body forwarded as it arrives (checked, not re-encoded): (the bytes of `data` to
        forward, index just past the body's end or -1). Trailers are dropped: what the daemon
        gets ends with the last chunk and an empty trailer section."""
        trailer_at, end = self._scan(data, None)
        if end < 0:
            return (data if trailer_at < 0 else data[:trailer_at]), -1
        if trailer_at < 0 or data[trailer_at:end] == b"\r\n":
            return data[:end], end  # no trailers: the bytes as received
        return data[:trailer_at] + b"\r\n", end


class Request:
    """One request head as llhttp read it: header names lower-case, values trimmed."""

    __slots__ = ("chunked", "headers", "http_version", "length", "method", "target")

    def __init__(self) -> None:
        self.method = b""
        self.target = b""
        self.http_version = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.length = 0  # Content-Length
        self.chunked = False  # Transfer-Encoding: chunked

    def on_url(self, url: bytes) -> None:
        self.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value.strip(b" \t")))


class ClientConn(Protocol):
    """What the decision needs from the client connection: its body, read whole (bounded)."""

    async def read_body(self, limit: int) -> bytes | None: ...


def parse_request(raw_head: bytes) -> Request:
    """A head that passed `check_head`, parsed by llhttp (strict): method, target, version,
    headers, and how its body is framed."""
    req = Request()
    parser = httptools.HttpRequestParser(req)
    try:
        parser.feed_data(raw_head)
    except httptools.HttpParserUpgrade:
        pass  # the body (if any) is framed here, as dockerd frames it
    except httptools.HttpParserError as exc:
        raise FramingError(f"bad request: {exc}") from exc
    req.method = parser.get_method()
    req.http_version = parser.get_http_version().encode()
    host = False
    for k, v in req.headers:
        if k == b"content-length":
            req.length = int(v)
        elif k == b"transfer-encoding":
            req.chunked = True
        elif k == b"host":
            host = True
    if req.http_version == b"1.1" and not host:
        raise FramingError("bad request: missing Host header")
    return req
