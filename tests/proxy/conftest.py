"""Fixtures for the proxy: an in-process proxy on its own socket, a real local registry."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dockward.policy.admission import ImageGate
from dockward.proxy.audit import DecisionLog
from dockward.proxy.authz import Authorizer
from dockward.proxy.server import ProxyServer, start_listeners
from tests.conftest import require_free_port

PREFIX = "dwproxy"
REGISTRY_PORT = 15650
REGISTRY = f"127.0.0.1:{REGISTRY_PORT}"
DOCKER_SOCK = "/var/run/docker.sock"


class RunningProxy:
    """A ProxyServer on a unix socket (and optionally TCP), run in a thread with its own loop."""

    def __init__(
        self, authorizer: Authorizer, tmp: Path, tcp_port: int = 0, gate: ImageGate | None = None
    ):
        self.socket = str(tmp / "proxy.sock")
        self.log_path = tmp / "decisions.jsonl"
        self.log = DecisionLog(str(self.log_path))
        self.server = ProxyServer(DOCKER_SOCK, authorizer, self.log, gate)
        self.loop = asyncio.new_event_loop()
        self.tcp_port = tcp_port
        ready = threading.Event()
        self._listeners: list[Any] = []

        async def start() -> None:
            tcp = [("127.0.0.1", tcp_port)] if tcp_port else []
            self._listeners = await start_listeners(
                self.server, [(self.socket, 0o600, -1, -1)], tcp
            )
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(start())
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError("proxy did not start")

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def decisions(self) -> list[dict[str, Any]]:
        import json

        async def flush() -> None:
            self.log.flush()

        asyncio.run_coroutine_threadsafe(flush(), self.loop).result(5)
        if not self.log_path.exists():
            return []
        return [json.loads(x) for x in self.log_path.read_text().splitlines() if x.strip()]

    def close(self) -> None:
        async def stop() -> None:
            for srv in self._listeners:
                srv.close()
            # sessions still open (clients keeping connections alive) end here, on their loop:
            # left pending, they are destroyed later with tracebacks the interpreter formats
            # while another thread may be parsing (CPython 3.11's shared AST depth counter)
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.log.close()


@pytest.fixture
def proxy_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., RunningProxy]]:
    made: list[RunningProxy] = []

    def make(authorizer: Authorizer, **kw: Any) -> RunningProxy:
        # unix socket paths must stay short: use a /tmp directory with the prefix
        d = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-"))
        p = RunningProxy(authorizer, d, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
        shutil.rmtree(Path(p.socket).parent, ignore_errors=True)


def api_through(proxy: RunningProxy) -> Any:
    import docker

    return docker.APIClient(base_url=proxy.url, version="1.41", timeout=60)


@pytest.fixture(scope="session")
def registry() -> Iterator[str]:
    """Debian's docker-registry (distribution 2.8) on the prefix's port, storage under /tmp."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("needs Debian's docker-registry (scripts/setup.sh --test installs it)")
    require_free_port(int(REGISTRY.rsplit(":", 1)[1]), "docker-registry")
    root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-registry-"))
    cfg = root / "config.yml"
    cfg.write_text(
        "version: 0.1\nlog: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: '{REGISTRY}'}}\n"
    )
    proc = subprocess.Popen(
        [binary, "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"docker-registry did not start: {err[-500:]}")
                time.sleep(0.1)
        yield REGISTRY
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pushed_images(docker_api: Any, lab_image: str, registry: str) -> Iterator[dict[str, str]]:
    """The lab image pushed as two repositories of the local registry: name -> reference."""
    refs = {name: f"{registry}/{PREFIX}/{name}:1" for name in ("signed", "unsigned")}
    for ref in refs.values():
        repo, tag = ref.rsplit(":", 1)
        docker_api.tag(lab_image, repo, tag)
        for line in docker_api.push(repo, tag, stream=True, decode=True):
            if "error" in line:
                pytest.fail(f"push {ref}: {line['error']}")
    yield refs
    for ref in refs.values():
        with contextlib.suppress(Exception):
            docker_api.remove_image(ref)


@pytest.fixture
def clean_containers(docker_api: Any) -> Iterator[None]:
    """Remove this area's containers (labelled dockward.test=dwproxy) before and after."""

    def sweep() -> None:
        for c in docker_api.containers(all=True, filters={"label": f"dockward.test={PREFIX}"}):
            with contextlib.suppress(Exception):
                docker_api.remove_container(c["Id"], force=True)

    sweep()
    yield
    sweep()


def env_without_docker_host() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DOCKER_HOST", None)
    return env
