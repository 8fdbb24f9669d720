"""`dockward proxy` as a process: flags, env twins, socket mode, SIGHUP reload, clean errors."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.proxy.conftest import PREFIX


def test_check_and_routes(tmp_path: Path) -> None:
    ok = run_cli("proxy", "--check", env={"CONTAINERS": "1"})
    assert ok.code == 0 and "configuration ok" in ok.out
    routes = run_cli("proxy", "--routes")
    assert "containers.create" in routes.out and "exec.start" in routes.out


@pytest.mark.parametrize(
    ("args", "env", "msg"),
    [
        (["--check"], {"CONTAINERS": "maybe"}, "CONTAINERS='maybe'"),
        (["--check", "--policy", "/nonexistent.yaml"], {}, "cannot read policy"),
        (["--socket-mode", "9z"], {}, "not an octal mode"),
        (["--listen", "tcp://nohost"], {}, "expected unix:///path or tcp://host:port"),
        (["--listen", "unix://relative.sock"], {}, "must be absolute"),
        (["--workers", "0"], {}, "expected auto or a number from 1 to 64"),
        (["--workers", "many"], {}, "expected auto or a number from 1 to 64"),
    ],
)
def test_bad_configuration(args: list[str], env: dict[str, str], msg: str) -> None:
    out = run_cli("proxy", *args, env=env)
    assert out.code == 2, out.err
    assert msg in out.err and out.err.count("\n") == 1


@pytest.fixture
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-cli-"))
    yield d
    for p in sorted(d.rglob("*"), reverse=True):
        p.unlink() if not p.is_dir() else p.rmdir()
    d.rmdir()


def _get(sock: str, path: str) -> int:
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sock)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return int(data.split(b" ", 2)[1])


def _wait_for(path: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.05)


def test_sighup_reloads_atomically(workdir: Path) -> None:
    policy = workdir / "policy.yaml"
    policy.write_text("default: {allow: [ping]}\n")
    sock = workdir / "p.sock"
    log = workdir / "decisions.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), DOCKWARD_PROXY_SOCKET_MODE="0640")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dockward",
            "proxy",
            "--listen",
            f"unix://{sock}",
            "--policy",
            str(policy),
            "--log",
            str(log),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(sock)
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o640
        assert _get(str(sock), "/_ping") == 200
        assert _get(str(sock), "/v1.41/version") == 403
        policy.write_text("default: {allow: [ping, version]}\n")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while _get(str(sock), "/v1.41/version") != 200:
            assert time.monotonic() < deadline, "reload did not take effect"
            time.sleep(0.05)
        policy.write_text("default: {allow: [no-such-route]}\n")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "reload failed" not in log.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert _get(str(sock), "/v1.41/version") == 200  # the previous policy is kept
        events = [json.loads(x) for x in log.read_text().splitlines()]
        failed = [e for e in events if "reload failed" in e.get("event", "")]
        assert "matches no API route" in failed[0]["error"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert proc.returncode == 0
    assert not sock.exists()


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(d.name))
    return sorted(out)


def _until(predicate: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_workers_share_the_socket_restart_reload_and_stop_together(workdir: Path) -> None:
    policy = workdir / "policy.yaml"
    policy.write_text("default: {allow: [ping]}\n")
    sock = workdir / "p.sock"
    log = workdir / "decisions.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), DOCKWARD_PROXY_WORKERS="3")
    args = ["proxy", "--listen", f"unix://{sock}", "--policy", str(policy), "--log", str(log)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockward", *args], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(sock)
        _until(lambda: len(_children(proc.pid)) == 3)
        workers = _children(proc.pid)
        # Many connections, all served; more than one worker answers them.
        assert all(_get(str(sock), "/_ping") == 200 for _ in range(30))
        # A worker killed outright is replaced; the socket keeps answering meanwhile.
        os.kill(workers[0], signal.SIGKILL)
        _until(lambda: len(_children(proc.pid)) == 3 and workers[0] not in _children(proc.pid))
        # A reload reaching the new worker while it still starts must not kill it.
        proc.send_signal(signal.SIGHUP)
        _until(lambda: "policy reloaded" in log.read_text())
        assert _get(str(sock), "/_ping") == 200
        # A bad policy on SIGHUP: said once, and no worker drops the policy it has.
        policy.write_text("default: {allow: [no-such-route]}\n")
        proc.send_signal(signal.SIGHUP)
        _until(lambda: "reload failed" in log.read_text())
        assert all(_get(str(sock), "/_ping") == 200 for _ in range(10))
        # A worker replaced while the bad file is on disk starts from the policy the parent
        # last loaded, not from the file: no crash loop.
        victim = _children(proc.pid)[-1]
        os.kill(victim, signal.SIGKILL)
        _until(lambda: len(_children(proc.pid)) == 3 and victim not in _children(proc.pid))
        time.sleep(0.5)
        assert proc.poll() is None and len(_children(proc.pid)) == 3
        assert all(_get(str(sock), "/_ping") == 200 for _ in range(10))
        # A good one reaches every worker, as the bytes the parent checked: a bad edit right
        # after the signal changes nothing (workers never read the file themselves).
        policy.write_text("default: {allow: [ping, version]}\n")
        proc.send_signal(signal.SIGHUP)
        _until(lambda: log.read_text().count("policy reloaded") == 2)
        policy.write_text("default: {allow: [no-such-route]}\n")
        _until(lambda: all(_get(str(sock), "/v1.41/version") == 200 for _ in range(20)))
        assert all(_get(str(sock), "/v1.41/version") == 200 for _ in range(30))
        events = [json.loads(x) for x in log.read_text().splitlines()]
        said = [e["event"] for e in events if "event" in e]
        assert said.count("policy reload failed; keeping the previous policy") == 1
        assert said.count("policy reloaded") == 2
        assert said.count("listening") == 1
        assert said.count("worker exited; starting another") == 2  # only the two killed
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    assert proc.returncode == 0
    assert not sock.exists()
    assert _children(proc.pid) == []


def test_large_policies_reach_every_worker_and_oversized_ones_are_refused(
    workdir: Path,
) -> None:
    policy = workdir / "policy.yaml"
    padding = "".join(f"# {i:06d} {'x' * 90}\n" for i in range(1200))  # about 115 KB
    policy.write_text(padding + "default: {allow: [ping]}\n")
    sock = workdir / "p.sock"
    log = workdir / "decisions.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), DOCKWARD_PROXY_WORKERS="3")
    args = ["proxy", "--listen", f"unix://{sock}", "--policy", str(policy), "--log", str(log)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dockward", *args], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(sock)
        _until(lambda: len(_children(proc.pid)) == 3)
        workers = _children(proc.pid)
        # Two reloads back to back, each larger than a default pipe holds.
        policy.write_text(padding + "default: {allow: [ping, version]}\n")
        proc.send_signal(signal.SIGHUP)
        proc.send_signal(signal.SIGHUP)
        _until(lambda: all(_get(str(sock), "/v1.41/version") == 200 for _ in range(20)))
        assert _children(proc.pid) == workers  # taken over the pipe, nobody replaced
        # Over the size bound: refused, the running policy stays.
        policy.write_text("# " + "y" * (300 << 10) + "\ndefault: {allow: [ping]}\n")
        proc.send_signal(signal.SIGHUP)
        _until(lambda: "larger than" in log.read_text())
        assert _get(str(sock), "/v1.41/version") == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    assert proc.returncode == 0
