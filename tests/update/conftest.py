"""Real components for the update tests: a local `docker-registry`, images built from busybox."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import require_free_port, run_cli

PREFIX = "dwupd"
LABEL = {"dockward.test": PREFIX}
REGISTRY_PORT = 15800
AUTH_REGISTRY_PORT = 15801
DOWN_REGISTRY_PORT = 15802  # nothing listens here
TOKEN_REGISTRY_PORT, TOKEN_SERVER_PORT = 15803, 15804
USER, PASSWORD = "dwupd-user", "dwupd-secret-pw"

BASE = """RUN ["/bin/busybox", "sh", "-c", "echo {version} > /version"]
HEALTHCHECK --interval=1s --timeout=20s --retries=2 CMD {check}
CMD ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
"""


@dataclass(frozen=True)
class Registry:
    host: str
    data: Path

    def ref(self, repo: str, tag: str) -> str:
        return f"{self.host}/{repo}:{tag}"


def _start_registry(
    port: int, auth: Path | None = None, token: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    exe = shutil.which("docker-registry") or shutil.which("registry")
    if exe is None:
        pytest.skip("needs Debian's docker-registry (scripts/setup.sh --test installs it)")
    require_free_port(port, "docker-registry")
    root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-registry-{port}-"))
    config = [
        "version: 0.1",
        "log: {level: error}",
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}",
        f"http: {{addr: 127.0.0.1:{port}}}",
    ]
    if auth is not None:
        config.append(f"auth: {{htpasswd: {{realm: dwupd, path: {auth}}}}}")
    if token is not None:
        config.append("auth: {token: " + json.dumps(token) + "}")
    (root / "config.yml").write_text("\n".join(config) + "\n")
    log = open(root / "registry.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([exe, "serve", str(root / "config.yml")], stdout=log, stderr=log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code in (200, 401):
                return proc, root
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(
        f"registry on port {port} did not start: {(root / 'registry.log').read_text()}"
    )


def _stop(proc: subprocess.Popen[bytes], root: Path) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(root, ignore_errors=True)


def _own_port(preferred: int) -> int:
    """`preferred` when free; else another free port. A registry another test run started on
    `preferred` is not ours: it goes away when that run ends, in the middle of our tests."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free port")


@pytest.fixture(scope="session")
def registry() -> Iterator[Registry]:
    port = _own_port(REGISTRY_PORT)
    proc, root = _start_registry(port)
    yield Registry(f"127.0.0.1:{port}", root)
    _stop(proc, root)


@pytest.fixture(scope="session")
def auth_registry() -> Iterator[Registry]:
    bcrypt = pytest.importorskip("bcrypt")
    htdir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-htpasswd-"))
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    (htdir / "htpasswd").write_text(f"{USER}:{hashed}\n")
    proc, root = _start_registry(AUTH_REGISTRY_PORT, htdir / "htpasswd")
    yield Registry(f"127.0.0.1:{AUTH_REGISTRY_PORT}", root)
    _stop(proc, root)
    shutil.rmtree(htdir, ignore_errors=True)


@dataclass(frozen=True)
class TokenRegistry(Registry):
    server: Any


@pytest.fixture(scope="session")
def token_registry() -> Iterator[TokenRegistry]:
    from tests.registry.tokenserver import ISSUER, SERVICE, TokenServer, make_key

    certdir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-token-"))
    make_key(certdir)
    server = TokenServer("127.0.0.1", TOKEN_SERVER_PORT, USER, PASSWORD, certdir)
    server.start()
    token = {
        "realm": f"http://127.0.0.1:{TOKEN_SERVER_PORT}/token",
        "service": SERVICE,
        "issuer": ISSUER,
        "rootcertbundle": str(certdir / "cert.pem"),
    }
    proc, root = _start_registry(TOKEN_REGISTRY_PORT, token=token)
    yield TokenRegistry(f"127.0.0.1:{TOKEN_REGISTRY_PORT}", root, server)
    _stop(proc, root)
    server.stop()
    shutil.rmtree(certdir, ignore_errors=True)


def docker_config_dir(tmp: Path, host: str) -> Path:
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (tmp / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return tmp


def lab_tag(version: str) -> str:
    # The suffix changes with BASE, so an edited Dockerfile is rebuilt, not reused.
    return f"{PREFIX}-lab/app:{version}-r3"


def build_version(client: Any, version: str, healthy: bool = True, extra: str = "") -> str:
    """A local busybox image (engine/lab.py) whose /version says `version`."""
    from dockward.engine.lab import build_busybox_image

    check = '["true"]' if healthy else '["false"]'
    lines = BASE.format(version=version, check=check) + extra
    return build_busybox_image(client, lab_tag(version), extra=lines)


def push(
    client: Any,
    image: str,
    registry: Registry,
    repo: str,
    tag: str,
    auth: dict[str, str] | None = None,
) -> str:
    """Tag and push `image` as registry/repo:tag; returns the pushed manifest digest."""
    target = f"{registry.host}/{repo}"
    client.tag(image, target, tag, force=True)
    digest = ""
    for chunk in client.push(target, tag, stream=True, decode=True, auth_config=auth):
        if "error" in chunk:
            raise RuntimeError(chunk["error"])
        digest = (chunk.get("aux") or {}).get("Digest", digest)
    return digest


def remove_ours(client: Any, prefix: str = PREFIX) -> None:
    """Remove what earlier runs of these tests left behind (only our own labelled objects)."""
    for c in client.containers(all=True, filters={"label": f"dockward.test={prefix}"}):
        with contextlib.suppress(Exception):
            client.remove_container(c["Id"], force=True, v=True)
    for n in client.networks(filters={"label": f"dockward.test={prefix}"}):
        with contextlib.suppress(Exception):
            client.remove_network(n["Id"])


@pytest.fixture
def clean(docker_api: Any) -> Iterator[Any]:
    remove_ours(docker_api)
    yield docker_api
    remove_ours(docker_api)


@pytest.fixture
def mine(docker_api: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The client, with what the test module labelled `dockward.test=<its PREFIX>` removed before
    and after: a module with a prefix of its own runs beside the others on the shared daemon."""
    prefix = str(request.module.PREFIX)
    remove_ours(docker_api, prefix)
    yield docker_api
    remove_ours(docker_api, prefix)


@dataclass(frozen=True)
class UpdateRun:
    code: int
    doc: dict[str, Any]  # the JSON report ({} when nothing was printed)
    err: str

    @property
    def events(self) -> dict[str, dict[str, Any]]:
        """Each container's last event over the run's cycles."""
        cycles = self.doc.get("extra", {}).get("update", {}).get("cycles", [])
        return {e["container"]: e for c in cycles for e in c["events"]}


def update_once(state: Path, *args: str, env: dict[str, str] | None = None) -> UpdateRun:
    """One `dockward update --once` cycle with a JSON report, short stop and uptime waits."""
    res = run_cli(
        "update", "--once", "--state-dir", str(state), "--format", "json",
        "--min-uptime", "1", "--stop-timeout", "1", *args, env=env,
    )  # fmt: skip
    try:
        doc = json.loads(res.out) if res.out.strip() else {}
    except ValueError:
        pytest.fail(f"not JSON: {res.out!r} {res.err!r}")
    return UpdateRun(res.code, doc, res.err)
