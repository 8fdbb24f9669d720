"""What dockerd's Go server accepts, the proxy accepts: HTTP/1.0 (with and without keep-alive,
without Host), absolute-form targets; and WebSocket attach through the proxy with a real
WebSocket client (docker-py's attach_socket(ws=True) on websocket-client), allowed and refused:
attaching with stdin is a write."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest
import websocket

from dockward.policy.model import parse_policy
from dockward.proxy.authz import CompatAuthorizer, CompatSettings, PolicyAuthorizer
from tests.proxy.conftest import PREFIX, RunningProxy

WS_PORT = 15673


def exchange(proxy: RunningProxy, data: bytes, timeout: float = 5.0) -> bytes:
    """Send, then read until the proxy closes the connection."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(proxy.socket)
    s.sendall(data)
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except TimeoutError:
        pytest.fail(f"the proxy did not close the connection; got {out[:200]!r}")
    finally:
        s.close()
    return out


def read_answer(s: socket.socket) -> bytes:
    """One answer with a Content-Length, read off a connection that stays open."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, _, body = buf.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += s.recv(65536)
    return head + b"\r\n\r\n" + body


@pytest.fixture
def reader_proxy(proxy_factory: Callable[..., RunningProxy]) -> RunningProxy:
    policy = {
        "default": {"allow": ["ping", "version", "containers.list", "containers.create"]},
        "admission": {"deny": ["privileged"]},
    }
    return proxy_factory(PolicyAuthorizer(parse_policy(policy)))


def test_http10_without_keep_alive_and_without_host(reader_proxy: RunningProxy) -> None:
    resp = exchange(reader_proxy, b"GET /_ping HTTP/1.0\r\n\r\n")
    assert resp.startswith(b"HTTP/1.0 200 ") and resp.endswith(b"\r\n\r\nOK"), resp[:300]


def test_http10_keep_alive_serves_many(reader_proxy: RunningProxy) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(reader_proxy.socket)
    try:
        for _ in range(3):
            s.sendall(b"GET /v1.41/_ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            resp = read_answer(s)
            assert resp.startswith(b"HTTP/1.0 200 ") and resp.endswith(b"OK")
            assert b"keep-alive" in resp.lower()
    finally:
        s.close()


def test_http10_large_answer_is_whole(reader_proxy: RunningProxy, docker_api: Any) -> None:
    """dockerd answers a 1.0 client without chunking (closing when the length is unknown)."""
    resp = exchange(reader_proxy, b"GET /v1.41/containers/json?all=1 HTTP/1.0\r\n\r\n", 30)
    head, _, body = resp.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 ") and b"chunked" not in head.lower()
    assert len(json.loads(body)) == len(docker_api.containers(all=True))


def test_http10_refusals(reader_proxy: RunningProxy, docker_api: Any) -> None:
    body = json.dumps(
        {
            "Image": "dockward-lab/busybox:1.0",
            "Labels": {"dockward.test": PREFIX},
            "HostConfig": {"Privileged": True},
        }
    ).encode()
    name = f"{PREFIX}-http10"
    evil = (
        f"POST /v1.41/containers/create?name={name} HTTP/1.0\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    assert exchange(reader_proxy, evil).startswith(b"HTTP/1.1 403 ")
    # dockerd ignores Transfer-Encoding from an HTTP/1.0 client: the chunks would be a request
    te = (
        f"POST /v1.41/containers/create?name={name} HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode() + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    assert exchange(reader_proxy, te).startswith(b"HTTP/1.1 400 ")
    assert exchange(reader_proxy, b"GET /_ping HTTP/2.0\r\n\r\n").startswith(b"HTTP/1.1 505 ")
    assert not docker_api.containers(all=True, filters={"name": f"^/{name}$"})


def test_absolute_form(reader_proxy: RunningProxy) -> None:
    resp = exchange(
        reader_proxy,
        b"GET http://docker/v1.41/_ping HTTP/1.1\r\nHost: docker\r\n\r\n"
        b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
    )
    assert resp.count(b"HTTP/1.1 200 ") == 2, resp[:400]
    refused = exchange(reader_proxy, b"GET http://docker/v1.41/info HTTP/1.1\r\nHost: d\r\n\r\n")
    assert refused.startswith(b"HTTP/1.1 403 ")


# -- WebSocket attach --------------------------------------------------------------------------


@pytest.fixture
def cat_container(docker_api: Any, lab_image: str) -> Iterator[str]:
    """A running echo loop with an open stdin, and its output through a TTY-less stream.
    Its label is this run's own: other runs' sweeps of the area's label leave it alone."""
    cid = docker_api.create_container(
        lab_image,
        ["sh", "-c", "while read x; do echo got:$x; done"],
        stdin_open=True,
        labels={"dockward.test": f"{PREFIX}-ws-{os.getpid()}"},
        name=f"{PREFIX}-ws-{os.getpid()}-{time.monotonic_ns()}",
    )["Id"]
    docker_api.start(cid)
    yield cid
    with contextlib.suppress(docker.errors.APIError):
        docker_api.remove_container(cid, force=True)


def _ws_client(port: int) -> Any:
    return docker.APIClient(base_url=f"tcp://127.0.0.1:{port}", version="1.41", timeout=30)


def _typed(ws: Any, line: str) -> str:
    ws.settimeout(10)
    ws.send(line + "\n")
    out = ""
    deadline = time.monotonic() + 10
    while "got:" + line not in out and time.monotonic() < deadline:
        data = ws.recv()
        out += data.decode() if isinstance(data, bytes) else data
    return out


def test_websocket_attach_with_stdin_needs_its_route(
    proxy_factory: Callable[..., RunningProxy], cat_container: str
) -> None:
    watcher = {"source": ["127.0.0.0/8"], "allow": ["containers.attach_ws"], "name": "watcher"}
    policy = {"clients": [watcher]}
    proxy = proxy_factory(PolicyAuthorizer(parse_policy(policy)), tcp_port=WS_PORT)
    api = _ws_client(WS_PORT)
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        api.attach_socket(cat_container, params={"stdin": 1, "stdout": 1, "stream": 1}, ws=True)
    assert info.value.status_code == 403
    # watching (no stdin) is what the route allows: the handshake reaches dockerd and works
    ws = api.attach_socket(cat_container, params={"stdout": 1, "stream": 1}, ws=True)
    ws.close()
    routes = [(d["route"], d["decision"]) for d in proxy.decisions()]
    assert ("containers.attach_ws_stdin", "deny") in routes
    assert ("containers.attach_ws", "allow") in routes


def test_websocket_attach_typed_through_the_proxy(
    proxy_factory: Callable[..., RunningProxy], cat_container: str
) -> None:
    typist = {"source": ["127.0.0.0/8"], "allow": ["containers.attach_ws_stdin"], "name": "t"}
    proxy_factory(PolicyAuthorizer(parse_policy({"clients": [typist]})), tcp_port=WS_PORT + 1)
    api = _ws_client(WS_PORT + 1)
    ws = api.attach_socket(
        cat_container, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}, ws=True
    )
    try:
        assert "got:hello-ws" in _typed(ws, "hello-ws")
    finally:
        ws.close()


def test_websocket_attach_compat_mode(
    proxy_factory: Callable[..., RunningProxy], cat_container: str
) -> None:
    """CONTAINERS=1 lets a client watch; typing into the container needs POST=1 too.
    (Typing first: dockerd stops echoing to a stdin attach made after a watching one closed.)"""
    rw = CompatSettings.from_env({"CONTAINERS": "1", "POST": "1"})
    proxy_factory(CompatAuthorizer(rw), tcp_port=WS_PORT + 3)
    ws = _ws_client(WS_PORT + 3).attach_socket(
        cat_container, params={"stdin": 1, "stdout": 1, "stream": 1}, ws=True
    )
    try:
        assert "got:compat" in _typed(ws, "compat")
    finally:
        ws.close()
    ro = CompatSettings.from_env({"CONTAINERS": "1"})
    proxy_factory(CompatAuthorizer(ro), tcp_port=WS_PORT + 2)
    api = _ws_client(WS_PORT + 2)
    api.attach_socket(cat_container, params={"stdout": 1, "stream": 1}, ws=True).close()
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        api.attach_socket(cat_container, params={"stdin": "yes", "stream": 1}, ws=True)
    assert info.value.status_code == 403


def _raw_stream(proxy: RunningProxy, head: bytes, typed: bytes, want: bytes) -> bytes:
    """Send a hijack request without Upgrade, then stdin on the same connection; what comes
    back until `want` appears (or the connection ends)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(proxy.socket)
    try:
        s.sendall(head)
        out = b""
        while b"\r\n\r\n" not in out:
            out += s.recv(65536) or pytest.fail(f"closed: {out!r}")
        if not out.startswith(b"HTTP/1.1 200 "):
            return out
        s.sendall(typed)
        deadline = time.monotonic() + 10
        while want not in out and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def test_attach_and_exec_without_upgrade_carry_stdin(
    proxy_factory: Callable[..., RunningProxy], cat_container: str, docker_api: Any
) -> None:
    """Without Upgrade dockerd answers attach and exec start with a bare 200 and reads the
    client's stdin from the same connection: the proxy relays both ways (it passed only the
    daemon's side before), and only where the policy allows writing."""
    rw = proxy_factory(
        CompatAuthorizer(CompatSettings.from_env({"CONTAINERS": "1", "POST": "1", "EXEC": "1"}))
    )
    # exec first: the attach's stdin, closed when it ends, ends the container's read loop
    ex = docker_api.exec_create(cat_container, ["sh", "-c", "read x; echo exec:$x"], stdin=True)
    body = b'{"Detach": false, "Tty": false}'
    start = (
        f"POST /v1.41/exec/{ex['Id']}/start HTTP/1.1\r\nHost: docker\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    out = _raw_stream(rw, start, b"typed\n", b"exec:typed")
    assert out.startswith(b"HTTP/1.1 200 ") and b"exec:typed" in out, out[:300]
    attach = (
        f"POST /v1.41/containers/{cat_container}/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\n"
        "Host: docker\r\n\r\n"
    ).encode()
    out = _raw_stream(rw, attach, b"plain\n", b"got:plain")
    assert out.startswith(b"HTTP/1.1 200 ") and b"got:plain" in out, out[:300]
    ro = proxy_factory(CompatAuthorizer(CompatSettings.from_env({"CONTAINERS": "1"})))
    assert _raw_stream(ro, attach, b"x\n", b"got:x").startswith(b"HTTP/1.1 403 ")


def test_daemon_connections_are_pooled(reader_proxy: RunningProxy) -> None:
    """A client that leaves after a complete answer hands its daemon connection to the next
    client session: sessions one after the other use one daemon connection."""
    pooled = None
    for close in (b"", b"", b"Connection: close\r\n"):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(reader_proxy.socket)
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n" + close + b"\r\n")
        assert read_answer(s).startswith(b"HTTP/1.1 200 ")
        s.close()
        deadline = time.monotonic() + 5
        while not reader_proxy.server.pool and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(reader_proxy.server.pool) == 1
        assert pooled is None or reader_proxy.server.pool[0] is pooled
        pooled = reader_proxy.server.pool[0]
