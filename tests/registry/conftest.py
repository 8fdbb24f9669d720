"""Real servers for the distribution client: Debian's docker-registry behind a token service."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import io
import json
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dockward.registry import CredentialStore, RegistryClient, parse_reference
from tests.registry.tokenserver import ISSUER, SERVICE, TokenServer, make_key
from tests.update.conftest import _start_registry, _stop

REGISTRY_PORT, TOKEN_PORT, PROXY_PORT = 15870, 15871, 15872
USER, PASSWORD = "dw11a-user", "dw11a-secret-pw"
REPO = "dw11a/app"


def write_config(directory: Path, data: dict[str, Any]) -> CredentialStore:
    (directory / "config.json").write_text(json.dumps(data))
    return CredentialStore.load(directory)


def login(
    directory: Path, host: str, user: str = USER, password: str = PASSWORD
) -> CredentialStore:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return write_config(directory, {"auths": {host: {"auth": auth}}})


def token_config(realm: str, certfile: Path) -> dict[str, str]:
    return {"realm": realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(certfile)}


@pytest.fixture(scope="session")
def keydir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dw11a-keys-"))
    make_key(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class Served:
    host: str
    tokens: TokenServer
    single: str  # manifest digest of the linux/amd64 image
    index: str  # digest of the two-platform index
    layer: str  # digest of the amd64 image's layer blob


def _layer(text: str) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("etc/dw11a")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text.encode()))
    return gzip.compress(raw.getvalue(), mtime=0)


def _push_image(client: RegistryClient, arch: str) -> dict[str, Any]:
    ref = parse_reference(f"127.0.0.1:{REGISTRY_PORT}/{REPO}")
    layer = _layer(f"built for {arch}\n")
    layer_digest = client.push_blob(ref, layer)
    diff = "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
    config = json.dumps(
        {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff]}}
    ).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": client.push_blob(ref, config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer_digest,
                "size": len(layer),
            }
        ],
    }
    digest = client.push_manifest(ref, arch, manifest)
    return {
        "digest": digest,
        "size": len(json.dumps(manifest, separators=(",", ":"))),
        "layer": layer_digest,
    }


@pytest.fixture(scope="session")
def served(keydir: Path) -> Iterator[Served]:
    """docker-registry (auth: token) on loopback with its token service, holding a pushed image."""
    tokens = TokenServer("127.0.0.1", TOKEN_PORT, USER, PASSWORD, keydir)
    tokens.start()
    realm = f"http://127.0.0.1:{TOKEN_PORT}/token"
    proc, root = _start_registry(REGISTRY_PORT, token=token_config(realm, keydir / "cert.pem"))
    host = f"127.0.0.1:{REGISTRY_PORT}"
    try:
        home = Path(tempfile.mkdtemp(prefix="dw11a-push-"))
        client = RegistryClient(login(home, host))
        ref = parse_reference(f"{host}/{REPO}")
        amd, arm = _push_image(client, "amd64"), _push_image(client, "arm64")
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": m["digest"],
                    "size": m["size"],
                    "platform": {"os": "linux", "architecture": arch},
                }
                for arch, m in (("amd64", amd), ("arm64", arm))
            ],
        }
        index_digest = client.push_manifest(ref, "multi", index)
        client.push_manifest(ref, "single", json.loads(client.manifest(ref, amd["digest"]).body))
        shutil.rmtree(home, ignore_errors=True)
        tokens.requests.clear()
        yield Served(host, tokens, amd["digest"], index_digest, amd["layer"])
    finally:
        _stop(proc, root)
        tokens.stop()


class FaultProxy:
    """An HTTP front for the registry that answers 429 or corrupts bodies where told to."""

    def __init__(self, port: int, upstream: str) -> None:
        self.throttle: dict[str, list[str]] = {}  # path part -> Retry-After values to answer
        self.corrupt: set[str] = set()  # path parts whose body gets one byte changed
        self.seen: list[tuple[float, str, str, int]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                for part, waits in proxy.throttle.items():
                    if part in self.path and waits:
                        proxy.seen.append((time.monotonic(), self.command, self.path, 429))
                        self.send_response(429)
                        self.send_header("Retry-After", waits.pop(0))
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                conn = http.client.HTTPConnection(upstream, timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                length = int(self.headers.get("Content-Length") or 0)
                conn.request(self.command, self.path, self.rfile.read(length), headers)
                resp = conn.getresponse()
                body = resp.read()
                if body and any(part in self.path for part in proxy.corrupt):
                    body = body[:-1] + bytes([body[-1] ^ 1])
                proxy.seen.append((time.monotonic(), self.command, self.path, resp.status))
                self.send_response(resp.status)
                for key, value in resp.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                conn.close()

            do_GET = do_HEAD = _relay

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy(served: Served) -> Iterator[FaultProxy]:
    front = FaultProxy(PROXY_PORT, served.host)
    yield front
    front.stop()
