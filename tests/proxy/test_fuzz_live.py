"""Bounded fuzz of the whole front end: mutated requests against a live proxy.

Whatever arrives, the proxy answers with a status or closes, nothing but the allowed route ever
reaches the daemon, and the next well-formed request is still served.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockward.policy.model import parse_policy
from dockward.proxy.authz import PolicyAuthorizer
from tests.proxy.conftest import RunningProxy

BASE = [b"GET", b" ", b"/v1.41/_ping", b" ", b"HTTP/1.1", b"\r\n", b"Host: d", b"\r\n", b"\r\n"]
NOISE = st.sampled_from(
    [
        b"\r",
        b"\n",
        b" ",
        b"\t",
        b"\x00",
        b"%2f",
        b"/..",
        b"//",
        b"Content-Length: 5\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"\r\n\r\n",
        b"POST",
        b"/containers/create",
        b"\xff",
        b"0\r\n\r\n",
    ]
)


def exchange(path: str, data: bytes) -> bytes:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(2)
    s.connect(path)
    out = b""
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        while chunk := s.recv(65536):
            out += chunk
    except OSError:
        pass
    finally:
        s.close()
    return out


def test_fuzz_front_end(proxy_factory: Callable[..., RunningProxy]) -> None:
    proxy = proxy_factory(PolicyAuthorizer(parse_policy({"default": {"allow": ["ping"]}})))

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.integers(0, len(BASE)), NOISE), max_size=4))
    def run(mutations: list[tuple[int, bytes]]) -> None:
        parts = list(BASE)
        for index, noise in mutations:
            parts.insert(index, noise)
        resp = exchange(proxy.socket, b"".join(parts))
        if resp:
            assert resp.startswith(b"HTTP/1.1 "), resp[:80]
            assert int(resp[9:12]) in (101, 200, 400, 403, 404, 413, 505)

    run()
    ok = exchange(proxy.socket, b"".join(BASE))
    assert ok.startswith(b"HTTP/1.1 200")
    routes = {d.get("route") for d in proxy.decisions() if d.get("decision") == "allow"}
    assert routes <= {"ping"}
