"""Shared fixtures: the real Docker daemon the test command starts, a local image, the CLI."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
LAB_IMAGE = "dockward-lab/busybox:1.0"


def kill_after(proc: subprocess.Popen[Any], seconds: float) -> threading.Timer:
    """A watchdog: a blocking read from `proc` ends (at EOF) when it stops in time or is killed,
    so a stream that never delivers fails the test instead of hanging the suite."""
    timer = threading.Timer(seconds, proc.kill)
    timer.daemon = True
    timer.start()
    return timer


def free_port() -> int:
    """A free TCP port on 127.0.0.1, below the kernel's ephemeral range.

    Not bind(0): that hands out an ephemeral port, which the kernel may take back as the local
    end of any outgoing connection while its listener is down. A container restarted after a
    kill -9 then cannot publish it again ("Address already in use"), and the engine's restart
    policy does not retry a failed start: the service stays down (seen once in ten runs of the
    deployment's kill test).
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    first = 20000 if low > 21000 else 1024  # 20000: above the tests' fixed ports (15xxx)
    for port in random.sample(range(first, min(low, 65536)), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port below the ephemeral range")


def require_free_port(port: int, what: str) -> None:
    """Fail at once when another process holds a fixed test port: a leftover server there would
    answer in place of the one the test starts, with someone else's data."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            pytest.fail(f"{what}: 127.0.0.1:{port} is held by another process (a leftover run?)")


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The caches dockward keeps beside its default DB (scans, layers) go to a directory of this
    run, not the user's ~/.cache; CLI subprocesses inherit it."""
    olds = {k: os.environ.get(k) for k in ("XDG_CACHE_HOME", "XDG_DATA_HOME")}
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    # The result store's default SQLite file lives in the data directory.
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
    yield
    for key, old in olds.items():
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    input: str | None = None,
    cwd: str | Path | None = None,
    timeout: int = 120,
) -> CliResult:
    """Run `python -m dockward` as a user would, with this checkout's sources."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO / "src")
    full_env.pop("DOCKWARD_FORMAT", None)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "dockward", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=input,
        cwd=cwd,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def docker_api() -> Iterator[Any]:
    from dockward.engine import connect, resolve_endpoint
    from dockward.errors import ConnectionFailed

    try:
        client = connect(resolve_endpoint("unix:///var/run/docker.sock"))
    except ConnectionFailed as exc:
        pytest.skip(f"needs the Docker daemon that scripts/test.sh starts: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def lab_image(docker_api: Any) -> str:
    from dockward.engine.lab import build_busybox_image

    build_busybox_image(docker_api, LAB_IMAGE)
    return LAB_IMAGE


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """A private PostgreSQL cluster (unix socket in a temporary directory) for store tests."""
    from tests.store.pg import start_cluster

    cluster = start_cluster()
    yield cluster
    cluster.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "docker_api" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)


def until(pred: Callable[[], Any], seconds: float, what: str, interval: float = 0.2) -> Any:
    """`pred()`'s first true value within `seconds`; an AssertionError naming `what` after."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
