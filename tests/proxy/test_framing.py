"""Raw request-head checks, and a bounded fuzz run of the request parsing front end."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockward.proxy.framing import (
    ChunkedDecoder,
    FramingError,
    check_head,
    check_head_fully,
    head_length,
)
from dockward.proxy.paths import PathError, parse_target

GOOD = b"POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: 2\r\n\r\n"


def test_good_head() -> None:
    n = head_length(GOOD + b"{}")
    assert n == len(GOOD)
    check_head(GOOD)


@pytest.mark.parametrize(
    ("head", "why"),
    [
        (b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", "repeated"),
        (b"POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\n", "single decimal"),
        (b"POST / HTTP/1.1\r\nContent-Length: +2\r\n\r\n", "single decimal"),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "both",
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "repeated",
        ),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "other than chunked"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding:\x0bchunked\r\n\r\n", "other than chunked"),
        (b"POST / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", "folding"),
        (b"POST / HTTP/1.1\r\nX: a\rb\r\n\r\n", "bare CR"),
        (b"POST / HTTP/1.1\r\nX: a\nY: b\r\n\r\n", "bare CR or LF"),
        (b"POST / HTTP/1.1\r\nX: a\x00\r\n\r\n", "NUL"),
        (b"POST / HTTP/1.1\r\nContent-Length : 2\r\n\r\n", "malformed header"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "repeated host"),
        (b"POST /  HTTP/1.1\r\n\r\n", "request line"),
    ],
)
def test_ambiguous_heads_refused(head: bytes, why: str) -> None:
    with pytest.raises(FramingError, match=why):
        check_head(head)


def test_bare_lf_head_end_refused_early() -> None:
    with pytest.raises(FramingError):
        head_length(b"GET / HTTP/1.1\nHost: x\n\n")


def test_head_size_bounded() -> None:
    with pytest.raises(FramingError, match="too large"):
        head_length(b"GET / HTTP/1.1\r\nX: " + b"a" * 70000)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_head_checks_never_crash(data: bytes) -> None:
    """Any byte string either is refused with FramingError or passes; nothing else escapes."""
    try:
        n = head_length(data)
        if n:
            check_head(data[:n])
    except FramingError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="/.%2fFeE5cCv1.4a-z?&=#@:", max_size=60))
def test_fuzz_paths_have_no_dot_or_empty_segments(raw: str) -> None:
    """Whatever parse_target accepts has the shape dockerd's router would see unchanged."""
    try:
        t = parse_target(raw)
    except PathError:
        return
    segments = t.path.split("/")[1:]
    assert "." not in segments and ".." not in segments
    assert "" not in segments[:-1]


def _chunked(parts: list[bytes], ext: bytes, trailers: bytes) -> bytes:
    out = b"".join(b"%X%s\r\n%s\r\n" % (len(p), ext, p) for p in parts if p)
    return out + b"0" + ext + b"\r\n" + trailers + b"\r\n"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=40), max_size=8),
    st.sampled_from([b"", b";a=1", b";name"]),
    st.sampled_from([b"", b"X-Sum: 1\r\n", b"A: b\r\nC: d\r\n"]),
    st.lists(st.integers(min_value=1, max_value=17), min_size=1, max_size=30),
    st.binary(max_size=20),
)
def test_chunked_relay_forwards_the_bytes_as_received(
    parts: list[bytes], ext: bytes, trailers: bytes, cuts: list[int], after: bytes
) -> None:
    """An unjudged chunked upload goes to the daemon as the client sent it (extensions and all,
    never re-chunked), however it is split, less its trailers; what follows stays unread."""
    body = _chunked(parts, ext, trailers)
    stream = body + after
    decoder = ChunkedDecoder()
    sent, pos, i, end = b"", 0, 0, -1
    while pos < len(stream):
        piece = stream[pos : pos + cuts[i % len(cuts)]]
        i += 1
        out, end = decoder.relay(piece)
        sent += out
        if end >= 0:
            assert pos + end <= len(body) and stream[pos + end :] == after
            break
        pos += len(piece)
    assert end >= 0
    assert sent == _chunked(parts, ext, b"")
    if not trailers:
        assert sent == body


@pytest.mark.parametrize(
    "bad", [b"5\r\nhello\r\nzz\r\n", b"5\r\nhelloX\r\n", b"5\nhello\r\n", b"5;\x01\r\nhello\r\n"]
)
def test_chunked_relay_refuses_what_the_decoder_refuses(bad: bytes) -> None:
    with pytest.raises(FramingError):
        ChunkedDecoder().relay(bad)


_LINES = st.sampled_from(
    [
        b"Host: docker",
        b"host: d",
        b"Accept: */*",
        b"Content-Length: 2",
        b"content-length: 2",
        b"Content-Length: +2",
        b"Transfer-Encoding: chunked",
        b"Transfer-Encoding: gzip",
        b"Upgrade: tcp",
        b"Authorization: Bearer x",
        b" folded",
        b"X-A:\x01",
        b"X-B: a\rb",
        b"X-C: \x00",
        b"Bad Name: x",
        b":empty",
        b"X-Host: y",
        b"X-Obs: \xe9",
    ]
)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from([b"GET / HTTP/1.1", b"GET  / HTTP/1.1", b"GET / HTTP/1.0", b"GET /\tHTTP/1.1"]),
    st.lists(_LINES, max_size=6),
)
def test_fast_head_check_agrees_with_the_full_one(first: bytes, lines: list[bytes]) -> None:
    """The one-regex path for plain heads accepts exactly what the line-by-line checks accept."""
    head = b"\r\n".join([first, *lines]) + b"\r\n\r\n"
    try:
        check_head_fully(head)
        full = True
    except FramingError:
        full = False
    try:
        check_head(head)
        fast = True
    except FramingError:
        fast = False
    assert fast == full
