"""The daemon side: request heads written out, response heads read, bodies relayed raw.

Responses come from the daemon, which the proxy trusts; they are passed through byte for byte
(no re-encoding), and the proxy only tracks where each one ends so the connection can be reused.
h11 (the old client-side parser) re-encoded every chunk, which cost 3x the daemon's own time on
`logs` streams of small lines (bench/proxy_bench.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEX = re.compile(rb"^[0-9a-fA-F]{1,16}$")


class UpstreamError(Exception):
    """The daemon's answer cannot be framed (never expected from dockerd)."""


MAX_HEAD = 64 * 1024


@dataclass(frozen=True, slots=True)
class ResponseHead:
    status: int
    headers: tuple[tuple[bytes, bytes], ...]  # lower-case names
    raw: bytes

    def header(self, name: bytes) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


def parse_response_head(raw: bytes) -> ResponseHead:
    lines = raw[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise UpstreamError(f"bad status line {lines[0][:60]!r}")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise UpstreamError("bad header line")
        headers.append((name.strip().lower(), value.strip()))
    return ResponseHead(int(parts[1]), tuple(headers), raw)


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
