"""Strict checks on a raw request head, before h11 sees it.

h11 already refuses obs-fold, conflicting Content-Length and any Transfer-Encoding but chunked,
but it silently merges repeated identical Content-Length headers and lets Transfer-Encoding
override Content-Length. A proxy in front of another parser must not guess: both are refused.
"""

from __future__ import annotations

import re

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
    if len(lines[0].split(b" ")) != 3:
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
