"""Images from a registry over the distribution API, with auth from ~/.docker/config.json."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import requests

from dockward.errors import ConnectionFailed, InputError
from dockward.image.archive import (
    INDEX_TYPES,
    LayerStore,
    LoadedImage,
    Platform,
    Progress,
    select_platform,
)
from dockward.image.fs import LayerIndex, Probe, index_layer
from dockward.image.tarstream import DEFAULT_LIMITS, ArchiveError, Hashing, Limits, decompressed

_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
MAX_MANIFEST = 4 << 20
DOCKER_HUB = "registry-1.docker.io"


@dataclass(frozen=True, slots=True)
class ImageRef:
    registry: str
    repository: str
    tag: str = "latest"
    digest: str = ""

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        text = ref.strip()
        if not re.fullmatch(r"[A-Za-z0-9._:/@+-]+", text):
            raise InputError(f"malformed image reference {ref!r}")
        name, _, digest = text.partition("@")
        head, sep, rest = name.partition("/")
        if sep and ("." in head or ":" in head or head == "localhost"):
            registry, path = head, rest
        else:
            registry, path = "docker.io", name
        tag = "latest"
        if ":" in path.rsplit("/", 1)[-1]:
            path, _, tag = path.rpartition(":")
        if registry == "docker.io" and "/" not in path:
            path = "library/" + path
        if not path or (digest and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest)):
            raise InputError(f"malformed image reference {ref!r}")
        return cls(registry, path, tag, digest)

    @property
    def reference(self) -> str:
        return self.digest or self.tag

    def __str__(self) -> str:
        base = f"{self.registry}/{self.repository}"
        return f"{base}@{self.digest}" if self.digest else f"{base}:{self.tag}"


def docker_credentials(registry: str, config_path: str | None = None) -> tuple[str, str] | None:
    """Username and password for a registry from ~/.docker/config.json `auths` (never logged)."""
    path = Path(config_path or os.environ.get("DOCKER_CONFIG", "~/.docker")).expanduser()
    if path.is_dir():
        path = path / "config.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        return None
    keys = [registry, f"https://{registry}", f"http://{registry}"]
    if registry in ("docker.io", DOCKER_HUB):
        keys.append("https://index.docker.io/v1/")
    for key in keys:
        entry = auths.get(key)
        if isinstance(entry, dict) and entry.get("auth"):
            try:
                user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            return user, pw
    return None


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class RegistryClient:
    def __init__(
        self,
        ref: ImageRef,
        *,
        insecure: bool = False,
        docker_config: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.ref = ref
        host = DOCKER_HUB if ref.registry == "docker.io" else ref.registry
        plain = insecure or host.split(":")[0] in ("localhost", "127.0.0.1", "::1")
        self.base = f"{'http' if plain else 'https'}://{host}/v2/{ref.repository}"
        self.session = requests.Session()
        self.timeout = timeout
        self.creds = docker_credentials(ref.registry, docker_config)

    def _get(self, url: str, accept: Sequence[str] = (), stream: bool = False) -> requests.Response:
        headers = {"Accept": ", ".join(accept)} if accept else {}
        try:
            resp = self.session.get(url, headers=headers, stream=stream, timeout=self.timeout)
            if resp.status_code == 401 and "WWW-Authenticate" in resp.headers:
                self._authenticate(resp.headers["WWW-Authenticate"])
                resp = self.session.get(url, headers=headers, stream=stream, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ConnectionFailed(f"registry {self.ref.registry}: {type(exc).__name__}") from exc
        if resp.status_code == 401:
            raise ConnectionFailed(f"registry {self.ref.registry}: authentication failed")
        if resp.status_code == 404:
            raise InputError(f"{self.ref}: not found in the registry")
        if resp.status_code != 200:
            raise ConnectionFailed(
                f"registry {self.ref.registry}: HTTP {resp.status_code} for {url}"
            )
        return resp

    def _authenticate(self, header: str) -> None:
        scheme, params = _challenge(header)
        if scheme == "basic":
            if not self.creds:
                raise ConnectionFailed(f"registry {self.ref.registry} wants a login (docker login)")
            self.session.auth = self.creds
            return
        if scheme != "bearer" or "realm" not in params:
            raise ConnectionFailed(f"registry {self.ref.registry}: unsupported auth {scheme}")
        query = {"service": params.get("service", ""), "scope": params.get("scope", "")}
        if not query["scope"]:
            query["scope"] = f"repository:{self.ref.repository}:pull"
        try:
            tok = requests.get(params["realm"], params=query, auth=self.creds, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ConnectionFailed(f"token service of {self.ref.registry} unreachable") from exc
        if tok.status_code != 200:
            raise ConnectionFailed(
                f"registry {self.ref.registry}: token refused ({tok.status_code})"
            )
        body = tok.json() if tok.content else {}
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise ConnectionFailed(f"registry {self.ref.registry}: token service gave no token")
        self.session.headers["Authorization"] = f"Bearer {token}"

    def _small(self, url: str, accept: Sequence[str], digest: str = "") -> tuple[bytes, str]:
        resp = self._get(url, accept, stream=True)
        data = resp.raw.read(MAX_MANIFEST + 1, decode_content=True)
        resp.close()
        if len(data) > MAX_MANIFEST:
            raise InputError(f"{url}: document larger than {MAX_MANIFEST} bytes")
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest and actual != digest:
            raise InputError(f"{url}: content does not match digest {digest}")
        return data, str(resp.headers.get("Content-Type", "")).split(";")[0]

    def manifest(self, reference: str, platform: Platform) -> tuple[dict[str, Any], str]:
        digest = reference if reference.startswith("sha256:") else ""
        data, ctype = self._small(f"{self.base}/manifests/{reference}", MANIFEST_TYPES, digest)
        doc = json.loads(data)
        if ctype in INDEX_TYPES or doc.get("mediaType") in INDEX_TYPES or "manifests" in doc:
            desc = select_platform(doc, platform, str(self.ref))
            return self.manifest(str(desc["digest"]), platform)
        return doc, "sha256:" + hashlib.sha256(data).hexdigest()

    def layer(
        self,
        digest: str,
        probes: Sequence[Probe],
        limits: Limits,
        cache: LayerStore | None = None,
    ) -> LayerIndex:
        """One layer blob, read as it downloads and checked against its digest.

        With a cache, a blob indexed before is not downloaded: a digest names its content
        wherever it is served from, and an entry is only stored once the download matched it.
        """
        key = f"blob:{digest}" if _SHA256.fullmatch(digest) else ""
        if cache is not None and key:
            hit = cache.get(key, digest)
            if hit is not None:
                return hit
        resp = self._get(f"{self.base}/blobs/{digest}", stream=True)
        try:
            hashing = Hashing(cast(BinaryIO, resp.raw))
            stream = decompressed(io.BufferedReader(hashing, 1 << 20), f"{self.ref} {digest[:19]}")
            index = index_layer(stream, -1, digest, probes, limits)
            hashing.drain()
        finally:
            resp.close()
        if "sha256:" + hashing.hexdigest() != digest:
            raise InputError(f"{self.ref}: layer {digest} does not match its digest")
        if cache is not None and key:
            cache.put(key, index)
        return index


def load_registry(
    reference: str,
    probes: Sequence[Probe],
    *,
    platform: Platform | None = None,
    insecure: bool = False,
    docker_config: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    cache: LayerStore | None = None,
) -> LoadedImage:
    ref = ImageRef.parse(reference)
    client = RegistryClient(ref, insecure=insecure, docker_config=docker_config)
    manifest, manifest_digest = client.manifest(ref.reference, platform or Platform.parse(None))
    if not isinstance(manifest.get("layers"), list) or not isinstance(manifest.get("config"), dict):
        raise ArchiveError(f"{ref}: unsupported manifest (schema 1?)")
    cfg_digest = str(manifest["config"].get("digest", ""))
    cfg_data, _ = client._small(f"{client.base}/blobs/{cfg_digest}", (), cfg_digest)
    config = json.loads(cfg_data)
    layers = []
    for i, d in enumerate(manifest["layers"]):
        if progress:
            progress(f"layer {i + 1}/{len(manifest['layers'])}")
        layers.append(client.layer(str(d.get("digest", "")), probes, limits, cache))
    repo = f"{ref.registry}/{ref.repository}"
    return LoadedImage(
        str(ref),
        config,
        cfg_digest,
        tuple(layers),
        (f"{repo}:{ref.tag}",) if not ref.digest else (),
        (f"{repo}@{manifest_digest}",),
        manifest_digest,
    )
