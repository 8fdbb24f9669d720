"""The relay against the real daemon: a chunked upload that is not judged reaches dockerd as
sent (odd splits, chunk extensions, a trailer) and builds; a malformed chunk mid-upload ends the
exchange with 400 and builds nothing; a large answer read slowly arrives whole (flow control)."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import tarfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest

from dockward.proxy.authz import CompatAuthorizer, CompatSettings
from tests.proxy.conftest import PREFIX, RunningProxy

TAG = f"{PREFIX}/relay-{os.getpid()}"


@pytest.fixture
def builder(proxy_factory: Callable[..., RunningProxy], docker_api: Any) -> Iterator[RunningProxy]:
    settings = CompatSettings.from_env({"BUILD": "1", "POST": "1", "CONTAINERS": "1"})
    yield proxy_factory(CompatAuthorizer(settings))
    for tag in (f"{TAG}:good", f"{TAG}:bad"):
        with contextlib.suppress(docker.errors.APIError):
            docker_api.remove_image(tag, force=True)


def context(lab_image: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (
            ("Dockerfile", f"FROM {lab_image}\nCOPY blob /blob\n".encode()),
            ("blob", os.urandom(200_000)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    """The body as chunks of varying sizes, with extensions, then a trailer."""
    out, pos, i = [], 0, 0
    while pos < len(data):
        piece = data[pos : pos + sizes[i % len(sizes)]]
        out.append(b"%x;n=%d\r\n%s\r\n" % (len(piece), i, piece))
        pos += len(piece)
        i += 1
    return [*out, b"0\r\nX-Checksum: none\r\n\r\n"]


def send_split(s: socket.socket, stream: bytes, cuts: list[int]) -> None:
    """Write `stream` in pieces that cut across chunk boundaries."""
    pos, i = 0, 0
    while pos < len(stream):
        n = cuts[i % len(cuts)]
        s.sendall(stream[pos : pos + n])
        pos += n
        i += 1
        if i % 7 == 0:
            time.sleep(0.002)  # separate reads on the proxy's side


def read_all(s: socket.socket) -> bytes:
    out = b""
    with contextlib.suppress(ConnectionResetError):
        while data := s.recv(65536):
            out += data
    return out


def build(proxy: RunningProxy, tag: str, body: bytes) -> bytes:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(120)
    s.connect(proxy.socket)
    head = (
        f"POST /v1.41/build?t={tag}&q=1 HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    send_split(s, head + body, [1, 3, 4096, 17, 65536, 5, 300_000])
    try:
        return read_all(s)
    finally:
        s.close()


def test_chunked_upload_reaches_the_daemon_as_sent(
    builder: RunningProxy, lab_image: str, docker_api: Any
) -> None:
    body = b"".join(chunked(context(lab_image), [1, 4095, 70_000, 13, 100_000]))
    answer = build(builder, f"{TAG}:good", body)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert b"errorDetail" not in answer, answer[-500:]
    assert docker_api.inspect_image(f"{TAG}:good")["Id"]


def test_malformed_chunk_mid_upload_builds_nothing(
    builder: RunningProxy, lab_image: str, docker_api: Any
) -> None:
    pieces = chunked(context(lab_image), [50_000])
    pieces[2] = b"zz" + pieces[2]  # not a chunk size
    answer = build(builder, f"{TAG}:bad", b"".join(pieces))
    assert answer.startswith(b"HTTP/1.1 400 ") and b"bad chunk size" in answer, answer[:300]
    with pytest.raises(docker.errors.ImageNotFound):
        docker_api.inspect_image(f"{TAG}:bad")
    assert any(d.get("status") == 400 for d in builder.decisions())


def test_large_answer_read_slowly_arrives_whole(
    builder: RunningProxy, lab_image: str, docker_api: Any
) -> None:
    """8 MB of logs through a client that reads slowly: the daemon's side pauses while the
    client's buffer is full, nothing is lost or reordered."""
    cid = docker_api.create_container(
        lab_image,
        [
            "sh",
            "-c",
            "i=0; while [ $i -lt 120000 ]; do echo line-$i-0123456789abcdefghij; i=$((i+1)); done",
        ],
        labels={"dockward.test": f"{PREFIX}-relay-{os.getpid()}"},
        tty=True,  # raw log stream: lines as written
    )["Id"]
    try:
        docker_api.start(cid)
        docker_api.wait(cid, timeout=120)
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(60)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(builder.socket)
        s.sendall(
            f"GET /v1.41/containers/{cid}/logs?stdout=1 HTTP/1.0\r\n\r\n".encode()
        )  # 1.0: the answer ends with the connection, unchunked
        out = b""
        while data := s.recv(8192):
            out += data
            if len(out) < 1_000_000:
                time.sleep(0.001)
        s.close()
        body = out.partition(b"\r\n\r\n")[2]
        lines = body.decode().split("\r\n")
        assert lines[0] == "line-0-0123456789abcdefghij"
        assert lines[119_999] == "line-119999-0123456789abcdefghij"
        assert all(
            line == f"line-{i}-0123456789abcdefghij" for i, line in enumerate(lines[:120_000])
        )
    finally:
        with contextlib.suppress(docker.errors.APIError):
            docker_api.remove_container(cid, force=True)
