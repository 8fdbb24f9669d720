"""Response framing: where a chunked body from the daemon ends, however the bytes arrive."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockward.proxy.upstream import (
    ChunkedEnd,
    UpstreamError,
    chunk,
    parse_response_head,
    request_head,
)


def encode(parts: list[bytes], trailers: bytes = b"") -> bytes:
    return b"".join(chunk(p) for p in parts if p) + b"0\r\n" + trailers + b"\r\n"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=40), max_size=8),
    st.lists(st.integers(min_value=1, max_value=17), min_size=1, max_size=30),
    st.binary(max_size=20),
)
def test_end_found_across_any_split(parts: list[bytes], cuts: list[int], after: bytes) -> None:
    body = encode(parts)
    stream = body + after
    tracker = ChunkedEnd()
    pos, found = 0, -1
    i = 0
    while pos < len(stream):
        piece = stream[pos : pos + cuts[i % len(cuts)]]
        i += 1
        end = tracker.feed(piece)
        if end >= 0:
            found = pos + end
            break
        pos += len(piece)
    assert found == len(body)


def test_extensions_and_trailers() -> None:
    body = b"5;name=v\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n"
    assert ChunkedEnd().feed(body + b"NEXT") == len(body)


def test_data_that_looks_like_the_end_is_not_the_end() -> None:
    body = chunk(b"0\r\n\r\n") + b"0\r\n\r\n"
    assert ChunkedEnd().feed(body) == len(body)


@pytest.mark.parametrize("bad", [b"zz\r\n", b"-1\r\n", b"x" * 5000])
def test_bad_chunk_headers(bad: bytes) -> None:
    with pytest.raises(UpstreamError):
        ChunkedEnd().feed(bad)


def test_response_head() -> None:
    h = parse_response_head(
        b"HTTP/1.1 200 OK\r\nContent-Type: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    assert h.status == 200 and h.header(b"transfer-encoding") == b"chunked"
    with pytest.raises(UpstreamError):
        parse_response_head(b"SSH-2.0\r\n\r\n")


def test_request_head() -> None:
    assert request_head(b"GET", b"/_ping", [(b"host", b"docker")]) == (
        b"GET /_ping HTTP/1.1\r\nhost: docker\r\n\r\n"
    )
