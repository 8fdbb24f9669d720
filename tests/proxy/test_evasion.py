"""Crafted HTTP against the proxy in front of the real daemon: every trick refused or judged.

Each privileged create below would succeed on the raw socket; through the proxy none may
reach the daemon (no container with the name appears).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest

from dockward.policy.model import parse_policy
from dockward.proxy.authz import PolicyAuthorizer
from tests.proxy.conftest import PREFIX, RunningProxy

EVIL = json.dumps(
    {
        "Image": "dockward-lab/busybox:1.0",
        "Labels": {"dockward.test": PREFIX},
        "HostConfig": {"Privileged": True},
    }
).encode()
GOOD = json.dumps(
    {"Image": "dockward-lab/busybox:1.0", "Labels": {"dockward.test": PREFIX}}
).encode()


@pytest.fixture
def proxy(proxy_factory: Callable[..., RunningProxy], lab_image: str) -> RunningProxy:
    policy = {"max_body": 4096, "default": {"allow": ["*"]}, "admission": {"deny": ["privileged"]}}
    return proxy_factory(PolicyAuthorizer(parse_policy(policy)))


def send(proxy: RunningProxy, data: bytes, timeout: float = 5.0) -> bytes:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(proxy.socket)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except TimeoutError:
        pass
    s.close()
    return out


def status(resp: bytes) -> int:
    return int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/1.1 ") else 0


def create(name: str, headers: str, body: bytes, path: str = "/v1.41/containers/create") -> bytes:
    return f"POST {path}?name={name} HTTP/1.1\r\nHost: docker\r\n{headers}\r\n".encode() + body


def chunked(body: bytes, sizes: tuple[int, ...] = (7,)) -> bytes:
    out, i = b"", 0
    step = sizes[0]
    while i < len(body):
        part = body[i : i + step]
        out += f"{len(part):x}\r\n".encode() + part + b"\r\n"
        i += step
    return out + b"0\r\n\r\n"


def exists(docker_api: Any, name: str) -> bool:
    return bool(docker_api.containers(all=True, filters={"name": f"^/{name}$"}))


CASES: dict[str, tuple[bytes, int]] = {
    # CVE-2024-41110: Content-Length 0, the body following anyway
    "cl0": (
        create(f"{PREFIX}-cl0", "Content-Type: application/json\r\nContent-Length: 0\r\n", EVIL),
        403,
    ),
    "no-length": (create(f"{PREFIX}-nolen", "Content-Type: application/json\r\n", EVIL), 403),
    "cl-te": (
        create(
            f"{PREFIX}-clte",
            f"Content-Length: {len(EVIL)}\r\nTransfer-Encoding: chunked\r\n",
            chunked(EVIL),
        ),
        400,
    ),
    "cl-cl": (
        create(
            f"{PREFIX}-clcl",
            f"Content-Length: {len(EVIL)}\r\nContent-Length: {len(EVIL)}\r\n",
            EVIL,
        ),
        400,
    ),
    "cl-list": (create(f"{PREFIX}-cllist", f"Content-Length: {len(EVIL)}, 0\r\n", EVIL), 400),
    "te-te": (
        create(
            f"{PREFIX}-tete",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
            chunked(EVIL),
        ),
        400,
    ),
    "te-gzip": (
        create(f"{PREFIX}-tegz", "Transfer-Encoding: gzip, chunked\r\n", chunked(EVIL)),
        400,
    ),
    "bad-chunk-size": (
        create(
            f"{PREFIX}-badchunk",
            "Transfer-Encoding: chunked\r\n",
            b"zz\r\n" + EVIL + b"\r\n0\r\n\r\n",
        ),
        400,
    ),
    "negative-chunk": (
        create(
            f"{PREFIX}-negchunk",
            "Transfer-Encoding: chunked\r\n",
            b"-5\r\n" + EVIL + b"\r\n0\r\n\r\n",
        ),
        400,
    ),
    "obs-fold": (
        create(f"{PREFIX}-fold", f"Content-Length: {len(EVIL)}\r\nX-A: b\r\n c\r\n", EVIL),
        400,
    ),
    "bare-cr": (create(f"{PREFIX}-cr", f"Content-Length: {len(EVIL)}\r\nX-A: b\rc\r\n", EVIL), 400),
    "oversized": (
        create(
            f"{PREFIX}-big",
            "Content-Length: {n}\r\n",
            EVIL[:-1] + b',"Pad":"' + b"x" * 7990 + b'"}',
        ),
        413,
    ),
    "dup-json-key": (
        create(
            f"{PREFIX}-dupkey",
            "Content-Length: {n}\r\n",
            b'{"Image":"dockward-lab/busybox:1.0","HostConfig":{"Privileged":false,"privileged":true}}',
        ),
        403,
    ),
    "folded-json-key": (
        create(
            f"{PREFIX}-fold-key",
            "Content-Length: {n}\r\n",
            '{"Image":"dockward-lab/busybox:1.0","Hoſtconfig":{"privileged":true}}'.encode(),
        ),
        403,
    ),
    "dot-segment": (
        create(
            f"{PREFIX}-dot",
            f"Content-Length: {len(EVIL)}\r\n",
            EVIL,
            "/v1.41/x/../containers/create",
        ),
        400,
    ),
    "double-slash": (
        create(
            f"{PREFIX}-dslash",
            f"Content-Length: {len(EVIL)}\r\n",
            EVIL,
            "/v1.41//containers/create",
        ),
        400,
    ),
    "encoded-slash": (
        create(
            f"{PREFIX}-enc", f"Content-Length: {len(EVIL)}\r\n", EVIL, "/v1.41/containers%2Fcreate"
        ),
        400,
    ),
    "encoded-dot": (
        create(
            f"{PREFIX}-encdot",
            f"Content-Length: {len(EVIL)}\r\n",
            EVIL,
            "/v1.41/%2e%2e/containers/create",
        ),
        400,
    ),
    "absolute-form": (
        create(
            f"{PREFIX}-abs",
            f"Content-Length: {len(EVIL)}\r\n",
            EVIL,
            "http://docker/v1.41/containers/create",
        ),
        403,  # read as dockerd reads it (by its path), so judged like any other create
    ),
    "absolute-form-userinfo": (
        create(
            f"{PREFIX}-absuser",
            f"Content-Length: {len(EVIL)}\r\n",
            EVIL,
            "http://a@docker/v1.41/containers/create",
        ),
        400,
    ),
    "non-ascii-target": (
        create(
            f"{PREFIX}-nonascii",
            f"Content-Length: {len(EVIL)}\r\n",
            EVIL,
            "/v1.41/containers/create\xff",
        ),
        400,
    ),
    "upper-version": (
        create(
            f"{PREFIX}-upper", f"Content-Length: {len(EVIL)}\r\n", EVIL, "/V1.41/containers/create"
        ),
        403,
    ),
}


def _fill(data: bytes) -> bytes:
    head, _, body = data.partition(b"\r\n\r\n")
    return head.replace(b"{n}", str(len(body)).encode()) + b"\r\n\r\n" + body


@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_request_refused(
    proxy: RunningProxy, docker_api: Any, clean_containers: None, case: str
) -> None:
    data, expected = CASES[case]
    data = _fill(data)
    name = data.split(b"name=", 1)[1].split(b" ", 1)[0].decode()
    resp = send(proxy, data)
    assert status(resp) == expected, resp[:300]
    assert b'"message"' in resp
    assert not exists(docker_api, name)


def test_chunked_body_is_judged_not_skipped(
    proxy: RunningProxy, docker_api: Any, clean_containers: None
) -> None:
    evil = send(
        proxy,
        create(
            f"{PREFIX}-chunk-evil",
            "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n",
            chunked(EVIL),
        ),
    )
    assert status(evil) == 403 and b"DW-C001" in evil
    good = send(
        proxy,
        create(
            f"{PREFIX}-chunk-good",
            "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\nConnection: close\r\n",
            chunked(GOOD),
        ),
    )
    assert status(good) == 201, good[:300]
    assert exists(docker_api, f"{PREFIX}-chunk-good")
    assert not exists(docker_api, f"{PREFIX}-chunk-evil")


def test_pipelined_request_after_an_allowed_one(
    proxy: RunningProxy, docker_api: Any, clean_containers: None
) -> None:
    first = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"
    second = create(
        f"{PREFIX}-pipe", f"Content-Type: application/json\r\nContent-Length: {len(EVIL)}\r\n", EVIL
    )
    resp = send(proxy, first + second, timeout=3)
    assert resp.startswith(b"HTTP/1.1 200")
    assert not exists(docker_api, f"{PREFIX}-pipe")


def test_keep_alive_serves_many_requests(proxy: RunningProxy) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(proxy.socket)
    for _ in range(5):
        s.sendall(b"GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
        resp = b""
        while not resp.endswith(b"OK"):
            resp += s.recv(4096)
        assert resp.startswith(b"HTTP/1.1 200")
    s.close()
