"""SIGTERM drains the proxy: it stops accepting, idle connections close at once, a request in
flight (a container's wait, against the real daemon) still gets its whole answer, and streams
that end only when their client leaves (logs -f, a hijacked attach) or requests that outlast the
deadline are closed at their deadline, never holding the proxy up."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.proxy.conftest import PREFIX

REPO = Path(__file__).resolve().parents[2]
LABEL = f"{PREFIX}-drain-{os.getpid()}"
POLICY = "default: {allow: [ping, containers.wait, containers.logs, containers.attach]}\n"


@pytest.fixture
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-drain-"))
    yield d
    for p in sorted(d.rglob("*"), reverse=True):
        with contextlib.suppress(OSError):
            p.unlink() if not p.is_dir() else p.rmdir()
    with contextlib.suppress(OSError):
        d.rmdir()


@pytest.fixture
def containers(docker_api: Any, lab_image: str) -> Iterator[Any]:
    made: list[str] = []

    def run(command: str) -> str:
        cid = str(
            docker_api.create_container(
                lab_image, ["sh", "-c", command], labels={"dockward.test": LABEL}
            )["Id"]
        )
        made.append(cid)
        docker_api.start(cid)
        return cid

    yield run
    for cid in made:
        with contextlib.suppress(docker.errors.APIError):
            docker_api.remove_container(cid, force=True)


def start_proxy(workdir: Path, *extra: str) -> tuple[subprocess.Popen[str], Path, Path]:
    policy = workdir / "policy.yaml"
    policy.write_text(POLICY)
    sock, log = workdir / "p.sock", workdir / "decisions.jsonl"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "dockward", "proxy", "--listen", f"unix://{sock}"),
            *("--policy", str(policy), "--log", str(log), *extra),
        ],
        env=dict(os.environ, PYTHONPATH=str(REPO / "src")),
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 15
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the proxy did not start: {proc.communicate()[1][-500:]}")
        time.sleep(0.05)
    return proc, sock, log


def connect(sock: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(str(sock))
    return s


def read_until_closed(s: socket.socket) -> bytes:
    out = b""
    with contextlib.suppress(ConnectionResetError):
        while data := s.recv(65536):
            out += data
    s.close()
    return out


def events(log: Path) -> list[dict[str, Any]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [e for e in map(json.loads, lines) if "event" in e]


def stop(proc: subprocess.Popen[str], timeout: float) -> float:
    """SIGTERM; the seconds until the proxy exited (it must exit 0)."""
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"the proxy did not stop within {timeout} s")
    assert code == 0, proc.communicate()[1][-500:]
    return time.monotonic() - t0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_lets_a_request_in_flight_finish(
    workdir: Path, containers: Any, workers: str
) -> None:
    proc, sock, log = start_proxy(workdir, "--workers", workers, "--drain-timeout", "20")
    try:
        cid = containers("sleep 3; exit 7")
        idle = connect(sock)
        idle.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
        assert idle.recv(4096).startswith(b"HTTP/1.1 200 ")
        waiting = connect(sock)
        waiting.sendall(f"POST /v1.41/containers/{cid}/wait HTTP/1.1\r\nHost: d\r\n\r\n".encode())
        time.sleep(0.5)  # the wait is with the daemon
        took = stop(proc, 30)
        answer = read_until_closed(waiting)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
        assert b'"StatusCode":7' in answer
        assert read_until_closed(idle) == b""  # the idle connection was closed, not cut
        assert took < 15
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not sock.exists()
    drained = [e for e in events(log) if e["event"] == "drained"]
    assert drained and all(e["cut"] == 0 for e in drained), drained


def test_sigterm_stops_accepting_at_once(workdir: Path, containers: Any) -> None:
    proc, sock, _ = start_proxy(workdir, "--workers", "1", "--drain-timeout", "20")
    try:
        cid = containers("sleep 3")
        waiting = connect(sock)
        waiting.sendall(f"POST /v1.41/containers/{cid}/wait HTTP/1.1\r\nHost: d\r\n\r\n".encode())
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 2
        while sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None  # still draining the wait
        with pytest.raises(OSError):
            connect(sock)
        assert b'"StatusCode":0' in read_until_closed(waiting)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_streams_and_late_requests_are_cut_at_their_deadline(
    workdir: Path, containers: Any
) -> None:
    cid = containers("while true; do echo tick; sleep 0.2; done")
    proc, sock, log = start_proxy(workdir, "--workers", "1", "--drain-timeout", "3")
    try:
        follow = connect(sock)
        follow.sendall(
            f"GET /v1.41/containers/{cid}/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: d\r\n\r\n".encode()
        )
        assert follow.recv(65536).startswith(b"HTTP/1.1 200 ")
        attach = connect(sock)
        attach.sendall(
            f"POST /v1.41/containers/{cid}/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: d\r\n"
            "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode()
        )
        assert attach.recv(65536).startswith(b"HTTP/1.1 101 ")
        waiting = connect(sock)  # a wait on a container that never exits outlasts the deadline
        waiting.sendall(f"POST /v1.41/containers/{cid}/wait HTTP/1.1\r\nHost: d\r\n\r\n".encode())
        time.sleep(0.5)
        took = stop(proc, 15)
        # the streams got the short grace, the wait the whole deadline: then all were closed
        assert 2.5 < took < 8, took
        for s in (follow, attach, waiting):
            read_until_closed(s)
    finally:
        if proc.poll() is None:
            proc.kill()
    drained = [e for e in events(log) if e["event"] == "drained"]
    assert drained and drained[0]["connections"] == 3 and drained[0]["cut"] == 1, drained
