"""The daemon side: request heads written out, response heads read, bodies relayed raw.

Responses come from the daemon, which the proxy trusts; they are passed through byte for byte
(no re-encoding), and the proxy only tracks where each one ends so the connection can be reused.
h11 (the old client-side parser) re-encoded every chunk, which cost 3x the daemon's own time on
`logs` streams of small lines (bench/proxy_bench.py).
"""

from __future__ import annotations

import asyncio
import re
from typing import Protocol, cast

from dockward.errors import DockwardError

_HEX = re.compile(rb"^[0-9a-fA-F]{1,16}$")


class UpstreamError(DockwardError):
    """The daemon's answer cannot be framed (never expected from dockerd)."""


MAX_HEAD = 64 * 1024


class ResponseHead:
    """A response head from the daemon: the status, and headers looked up in the raw bytes."""

    __slots__ = ("_lower", "raw", "status")

    def __init__(self, status: int, raw: bytes) -> None:
        self.status = status
        self.raw = raw
        self._lower = raw.lower()

    def header(self, name: bytes) -> bytes | None:
        """The first value of a header (`name` in lower case), trimmed."""
        at = self._lower.find(b"\r\n" + name + b":")
        if at < 0:
            return None
        start = at + len(name) + 3
        end = self.raw.find(b"\r\n", start)
        return self.raw[start:end].strip(b" \t")

    @property
    def headers(self) -> tuple[tuple[bytes, bytes], ...]:
        out = []
        for line in self.raw[:-4].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            out.append((name.strip().lower(), value.strip()))
        return tuple(out)


def parse_response_head(raw: bytes) -> ResponseHead:
    first = raw[: raw.find(b"\r\n")]
    parts = first.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise UpstreamError(f"bad status line {first[:60]!r}")
    if b"\r\n\r\n" in raw[:-4]:
        raise UpstreamError("bad response head")
    return ResponseHead(int(parts[1]), raw)


def request_head(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], version: bytes = b"1.1"
) -> bytes:
    """Header names and values were validated on the way in (no CR, LF or NUL)."""
    out = [method + b" " + target + b" HTTP/" + version]
    out += [k + b": " + v for k, v in headers]
    return b"\r\n".join(out) + b"\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


class ChunkedEnd:
    """Finds where a chunked body ends in a stream of bytes, without copying the data."""

    def __init__(self) -> None:
        self.remaining = 0  # data bytes (+2 for CRLF) left in the current chunk
        self.line = b""  # partial size or trailer line
        self.trailers = False
        self.done = False

    def feed(self, data: bytes) -> int:
        """Index just past the end of the body in `data`, or -1 when it goes on."""
        pos, n = 0, len(data)
        while pos < n:
            if self.remaining:
                step = min(self.remaining, n - pos)
                pos += step
                self.remaining -= step
                continue
            eol = data.find(b"\n", pos)
            if eol < 0:
                self.line += data[pos:]
                if len(self.line) > 4096:
                    raise UpstreamError("chunk header too long")
                return -1
            line = (self.line + data[pos:eol]).rstrip(b"\r")
            self.line = b""
            pos = eol + 1
            if self.trailers:
                if not line:
                    self.done = True
                    return pos
                continue
            size_text = line.split(b";", 1)[0].strip(b" \t")
            if not _HEX.match(size_text):
                raise UpstreamError(f"bad chunk size {size_text[:20]!r}")
            size = int(size_text, 16)
            if size == 0:
                self.trailers = True
            else:
                self.remaining = size + 2
        return -1


class Owner(Protocol):
    """Who an upstream connection reports to while it is in use (the session's relay)."""

    def up_data(self, data: bytes) -> None: ...

    def up_eof(self) -> bool: ...

    def up_lost(self) -> None: ...

    def up_full(self, full: bool) -> None: ...


class UpstreamConn(asyncio.Protocol):
    """One connection to the daemon. In use, it reports to its owner; idle (in the pool), any
    byte or EOF from the daemon means it cannot be reused, and it closes."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.owner: Owner | None = None
        self.closed = False
        self.full = False  # its write buffer is above the high-water mark

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if self.owner is not None:
            self.owner.up_data(data)
        else:
            self.close()

    def eof_received(self) -> bool:
        if self.owner is not None:
            return self.owner.up_eof()
        self.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.owner is not None:
            self.owner.up_lost()

    def pause_writing(self) -> None:
        self.full = True
        if self.owner is not None:
            self.owner.up_full(True)

    def resume_writing(self) -> None:
        self.full = False
        if self.owner is not None:
            self.owner.up_full(False)

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
