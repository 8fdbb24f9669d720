"""A small OCI distribution client: manifests, blobs and uploads, for signatures and digests."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import requests

from dockward.errors import DockwardError
from dockward.policy.imageref import ImageRef

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
MAX_MANIFEST = 4 * 1024 * 1024
MAX_BLOB = 1024 * 1024  # signature payloads are a few hundred bytes


class RegistryError(DockwardError):
    pass


class NotFound(RegistryError):
    pass


class RegistryClient:
    def __init__(self, insecure: tuple[str, ...] = (), timeout: float = 10.0) -> None:
        self.insecure = set(insecure)
        self.timeout = timeout
        self.session = requests.Session()

    def _base(self, ref: ImageRef) -> str:
        host = "registry-1.docker.io" if ref.registry == "docker.io" else ref.registry
        scheme = "http" if ref.registry in self.insecure else "https"
        return f"{scheme}://{host}/v2/{ref.repository}"

    def _get(self, url: str, accept: str, limit: int) -> tuple[bytes, dict[str, str]]:
        try:
            with self.session.get(
                url, headers={"Accept": accept}, timeout=self.timeout, stream=True
            ) as resp:
                if resp.status_code == 404:
                    raise NotFound(f"{url}: not found")
                if resp.status_code != 200:
                    raise RegistryError(f"{url}: HTTP {resp.status_code}")
                body = b""
                for chunk in resp.iter_content(65536):
                    body += chunk
                    if len(body) > limit:
                        raise RegistryError(f"{url}: answer larger than {limit} bytes")
                return body, dict(resp.headers)
        except requests.RequestException as exc:
            raise RegistryError(f"registry {url.split('/v2/')[0]} unreachable: {exc}") from exc

    def manifest(self, ref: ImageRef, reference: str) -> tuple[bytes, str, str]:
        """(raw manifest, media type, digest) for a tag or digest."""
        body, headers = self._get(
            f"{self._base(ref)}/manifests/{reference}", MANIFEST_TYPES, MAX_MANIFEST
        )
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and reference != digest:
            raise RegistryError(f"manifest {reference} does not match its content ({digest})")
        return body, headers.get("Content-Type", ""), digest

    def resolve(self, ref: ImageRef) -> str:
        """The manifest digest a reference names now."""
        if ref.digest:
            return ref.digest
        return self.manifest(ref, ref.tag)[2]

    def blob(self, ref: ImageRef, digest: str, limit: int = MAX_BLOB) -> bytes:
        body, _ = self._get(f"{self._base(ref)}/blobs/{digest}", "*/*", limit)
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise RegistryError(f"blob {digest} does not match its content")
        return body

    def push_blob(self, ref: ImageRef, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        base = self._base(ref)
        try:
            start = self.session.post(f"{base}/blobs/uploads/", timeout=self.timeout)
            if start.status_code != 202:
                raise RegistryError(f"blob upload refused: HTTP {start.status_code}")
            location = start.headers["Location"]
            if location.startswith("/"):
                location = base.split("/v2/")[0] + location
            sep = "&" if "?" in location else "?"
            done = self.session.put(
                f"{location}{sep}digest={digest}",
                data=data,
                headers={"Content-Type": "application/octet-stream"},
                timeout=self.timeout,
            )
        except (requests.RequestException, KeyError) as exc:
            raise RegistryError(f"blob upload failed: {exc}") from exc
        if done.status_code != 201:
            raise RegistryError(f"blob upload failed: HTTP {done.status_code}")
        return digest

    def push_manifest(self, ref: ImageRef, tag: str, manifest: dict[str, Any]) -> str:
        data = json.dumps(manifest, separators=(",", ":")).encode()
        try:
            resp = self.session.put(
                f"{self._base(ref)}/manifests/{tag}",
                data=data,
                headers={"Content-Type": str(manifest["mediaType"])},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise RegistryError(f"manifest upload failed: {exc}") from exc
        if resp.status_code != 201:
            raise RegistryError(
                f"manifest upload failed: HTTP {resp.status_code} {resp.text[:200]}"
            )
        return "sha256:" + hashlib.sha256(data).hexdigest()
