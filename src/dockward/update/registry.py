"""Registry digest watch: HEAD the manifest, resolve the platform, authenticate as the Docker CLI does.

Written on `requests` rather than a registry library because the check must stay a single HEAD
(no pull, no blob download) and must control where credentials go (see `_may_send_credentials`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from dockward.errors import DockwardError
from dockward.update.auth import Credentials, CredentialStore
from dockward.update.reference import ImageRef

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_ACCEPT = ", ".join(
    (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST, DOCKER_V1_SIGNED)
)
MAX_MANIFEST_BYTES = 4 << 20  # the distribution spec's own limit
MAX_TOKEN_BYTES = 1 << 20
_CHALLENGE = re.compile(
    r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))\s*,?'
)


class RegistryError(DockwardError):
    """A registry answered badly, refused us or cannot be reached."""


@dataclass(frozen=True, slots=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


@dataclass(frozen=True, slots=True)
class RemoteManifest:
    ref: ImageRef
    digest: str
    media_type: str

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge:
    """`Bearer realm="https://auth",service="reg",scope="repository:x:pull"` -> Challenge."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _CHALLENGE.match(rest, pos)
        if not m or m.end() == pos:
            raise RegistryError(f"malformed WWW-Authenticate header: {header[:120]!r}")
        value = m.group(2) if m.group(2) is not None else m.group(3)
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
        pos = m.end()
    return Challenge(scheme.lower(), params)


def is_loopback_host(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class RegistryClient:
    """Talks to registries for digest checks; safe to share between threads."""

    def __init__(
        self,
        credentials: CredentialStore | None = None,
        *,
        insecure: Callable[[str], bool] = is_loopback_host,
        timeout: float = 10.0,
        user_agent: str = "dockward-update",
    ) -> None:
        self._credentials = credentials or CredentialStore()
        self._insecure = insecure
        self._timeout = timeout
        self._user_agent = user_agent
        self._tokens: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def credentials_for(self, ref: ImageRef) -> Credentials:
        return self._credentials.lookup(ref.registry)

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = self._user_agent
            session.trust_env = False  # a proxy from the environment must not see our tokens
            self._local.session = session
        return session

    def base_url(self, ref: ImageRef) -> str:
        scheme = "http" if self._insecure(ref.api_host) else "https"
        return f"{scheme}://{ref.api_host}/v2/{ref.repository}"

    def head(self, ref: ImageRef) -> RemoteManifest:
        """The current digest of `ref`'s tag, from one HEAD request (plus auth round trips)."""
        reference = ref.digest or ref.tag
        url = f"{self.base_url(ref)}/manifests/{reference}"
        resp = self._request("HEAD", url, ref)
        digest = resp.headers.get("Docker-Content-Digest", "")
        media = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if not digest:
            # Some registries omit the header on HEAD: hash the body of a GET instead.
            body, media = self._get_manifest(ref, reference)
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if not digest.startswith("sha256:") or len(digest) != 71:
            raise RegistryError(f"{ref}: registry sent an unusable digest {digest[:80]!r}")
        return RemoteManifest(ref, digest, media)

    def config_digest(self, ref: ImageRef, reference: str, platform: Platform) -> str:
        """The image config digest (= the local image ID) of `reference` for `platform`."""
        body, media = self._get_manifest(ref, reference)
        doc = _json(body, ref)
        media = str(doc.get("mediaType") or media)
        if media in INDEX_TYPES or "manifests" in doc:
            child = _pick_platform(doc, platform, ref)
            body, media = self._get_manifest(ref, child)
            doc = _json(body, ref)
        config = doc.get("config")
        if not isinstance(config, dict) or not str(config.get("digest", "")).startswith("sha256:"):
            raise RegistryError(f"{ref}: manifest has no image config (media type {media})")
        return str(config["digest"])

    def _get_manifest(self, ref: ImageRef, reference: str) -> tuple[bytes, str]:
        url = f"{self.base_url(ref)}/manifests/{reference}"
        resp = self._request("GET", url, ref, stream=True)
        try:
            body = _read_limited(resp, MAX_MANIFEST_BYTES, f"{ref}: manifest")
        finally:
            resp.close()
        if reference.startswith("sha256:"):
            actual = "sha256:" + hashlib.sha256(body).hexdigest()
            if actual != reference:
                raise RegistryError(f"{ref}: manifest digest mismatch ({actual} != {reference})")
        return body, resp.headers.get("Content-Type", "").split(";")[0].strip()

    def _request(
        self, method: str, url: str, ref: ImageRef, *, stream: bool = False
    ) -> requests.Response:
        headers = {"Accept": MANIFEST_ACCEPT}
        scope = f"repository:{ref.repository}:pull"
        cached = self._tokens.get((ref.api_host, scope))
        if cached:
            headers["Authorization"] = cached
        resp = self._send(method, url, headers, stream)
        if resp.status_code == 401:
            resp.close()
            headers["Authorization"] = self._authorize(ref, resp, scope)
            resp = self._send(method, url, headers, stream)
        if resp.status_code == 200:
            return resp
        resp.close()
        match resp.status_code:
            case 401 | 403:
                raise RegistryError(f"{ref}: registry refused access (HTTP {resp.status_code})")
            case 404:
                raise RegistryError(f"{ref}: not found in the registry")
            case 429:
                raise RegistryError(f"{ref}: registry rate limit reached (HTTP 429)")
            case code:
                raise RegistryError(f"{ref}: registry answered HTTP {code}")

    def _send(
        self, method: str, url: str, headers: dict[str, str], stream: bool
    ) -> requests.Response:
        try:
            return self._session().request(
                method,
                url,
                headers=headers,
                timeout=self._timeout,
                stream=stream,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            host = urlsplit(url).netloc
            raise RegistryError(f"registry {host} unreachable: {_reason(exc)}") from exc

    def _authorize(self, ref: ImageRef, resp: requests.Response, scope: str) -> str:
        header = resp.headers.get("WWW-Authenticate", "")
        if not header:
            raise RegistryError(f"{ref}: registry wants authentication but sent no challenge")
        challenge = parse_challenge(header)
        creds = self.credentials_for(ref)
        if challenge.scheme == "basic":
            if creds.empty or not creds.username:
                raise RegistryError(
                    f"{ref}: registry needs a login (no credentials for "
                    f"{ref.registry} in the Docker config)"
                )
            value = requests.auth._basic_auth_str(creds.username, creds.password)
        elif challenge.scheme == "bearer":
            value = "Bearer " + self._token(ref, challenge, creds, scope)
        else:
            raise RegistryError(f"{ref}: unsupported auth scheme {challenge.scheme!r}")
        with self._lock:
            self._tokens[(ref.api_host, scope)] = value
        return value

    def _may_send_credentials(self, ref: ImageRef, scheme: str, netloc: str) -> bool:
        """Credentials go over TLS, or in clear text only to hosts the daemon trusts as insecure
        (the registry itself, loopback): never to a plain-HTTP realm elsewhere."""
        return scheme == "https" or netloc == ref.api_host or self._insecure(netloc)

    def _token(self, ref: ImageRef, challenge: Challenge, creds: Credentials, scope: str) -> str:
        realm = challenge.params.get("realm", "")
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryError(f"{ref}: bad token realm {realm[:120]!r}")
        query = {"scope": challenge.params.get("scope") or scope}
        if challenge.params.get("service"):
            query["service"] = challenge.params["service"]
        auth = None
        if not creds.empty and self._may_send_credentials(ref, parts.scheme, parts.netloc):
            auth = (creds.username, creds.password) if creds.username else None
        try:
            if (
                creds.identity_token
                and auth is None
                and self._may_send_credentials(ref, parts.scheme, parts.netloc)
            ):
                form = {
                    **query,
                    "grant_type": "refresh_token",
                    "client_id": "dockward",
                    "refresh_token": creds.identity_token,
                }
                tresp = self._session().post(
                    realm, data=form, timeout=self._timeout, stream=True, allow_redirects=False
                )
            else:
                sep = "&" if parts.query else "?"
                tresp = self._session().get(
                    realm + sep + urlencode(query),
                    auth=auth,
                    timeout=self._timeout,
                    stream=True,
                    allow_redirects=False,
                )
        except requests.RequestException as exc:
            raise RegistryError(f"token server {parts.netloc} unreachable: {_reason(exc)}") from exc
        try:
            if tresp.status_code != 200:
                raise RegistryError(f"{ref}: token server refused (HTTP {tresp.status_code})")
            data = _json(_read_limited(tresp, MAX_TOKEN_BYTES, "token"), ref)
        finally:
            tresp.close()
        token = data.get("token") or data.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{ref}: token server sent no token")
        return token


def _pick_platform(index: dict[str, Any], platform: Platform, ref: ImageRef) -> str:
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise RegistryError(f"{ref}: image index has no manifests")
    best: tuple[int, str] | None = None
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("platform"), dict):
            continue
        p = entry["platform"]
        if p.get("os") != platform.os or p.get("architecture") != platform.architecture:
            continue
        variant = str(p.get("variant") or "")
        score = 2 if variant == platform.variant else (1 if not variant else 0)
        if score and (best is None or score > best[0]):
            best = (score, str(entry.get("digest") or ""))
    if best is None or not best[1].startswith("sha256:"):
        raise RegistryError(f"{ref}: no image for platform {platform} in the index")
    return best[1]


def _read_limited(resp: requests.Response, limit: int, what: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_content(65536):
        size += len(chunk)
        if size > limit:
            raise RegistryError(f"{what} larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _json(body: bytes, ref: ImageRef) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{ref}: registry sent invalid JSON") from exc
    if not isinstance(doc, dict):
        raise RegistryError(f"{ref}: registry sent a JSON {type(doc).__name__}, not an object")
    return doc


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("Connection refused", "timed out", "Name or service not known", "SSL"):
        if marker in text:
            return marker
    return type(exc).__name__
