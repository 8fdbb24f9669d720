"""The distribution API: challenge auth, manifests and indexes, verified blobs, pushes.

Written on `requests` rather than a registry library because it must control where credentials
go (`may_send_credentials`), bound every read, verify every digest, and keep a tag check a single
HEAD (no pull, no blob download).
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import io
import ipaddress
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from dockward.errors import ConnectionFailed, InputError
from dockward.registry.credentials import Credentials, CredentialStore
from dockward.registry.platform import Platform, select_platform
from dockward.registry.reference import DIGEST_HEX, ImageRef

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
MAX_NESTED_INDEXES = 4
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_CHALLENGE = re.compile(
    r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))\s*,?'
)
_TAG_OR_DIGEST = re.compile(r"[\w][\w.-]{0,127}|[a-z0-9]+:[a-f0-9]{64,128}", re.ASCII)


class RegistryError(ConnectionFailed):
    """A registry answered badly, refused us or cannot be reached."""


class NotFound(RegistryError, InputError):
    """The registry has no such repository, tag, manifest or blob."""


class DigestMismatch(RegistryError, InputError):
    """Content that does not hash to the digest that named it."""


@dataclass(frozen=True, slots=True)
class RemoteManifest:
    ref: ImageRef
    digest: str
    media_type: str

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


@dataclass(frozen=True, slots=True)
class Manifest:
    """An image manifest (or an index when no platform was asked for), read and verified."""

    digest: str
    media_type: str
    body: bytes
    doc: dict[str, Any]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES or "manifests" in self.doc


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


def insecure_hosts(names: Iterable[str], cidrs: Iterable[str] = ()) -> Callable[[str], bool]:
    """Plain HTTP as the daemon allows it: loopback, the registries named, and addresses in
    the CIDRs (the daemon's `insecure-registries` as `docker info` reports them)."""
    named = frozenset(names)
    networks = []
    for cidr in cidrs:
        with contextlib.suppress(ValueError):
            networks.append(ipaddress.ip_network(cidr, strict=False))

    def insecure(host: str) -> bool:
        if host in named or is_loopback_host(host):
            return True
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
        try:
            address = ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            return False
        return any(address in network for network in networks)

    return insecure


class BlobReader(io.RawIOBase):
    """A blob as it downloads, hashed on the way; `verify()` reads the rest and checks it."""

    def __init__(self, resp: requests.Response, digest: str, where: str, limit: int) -> None:
        self._resp, self._digest, self._where, self._limit = resp, digest, where, limit
        self._hash = hashlib.new(digest.partition(":")[0])
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        try:
            data = self._resp.raw.read(len(buf))
        except Exception as exc:  # urllib3 and socket errors alike: the download broke off
            raise RegistryError(f"{self._where}: download failed ({type(exc).__name__})") from exc
        self.size += len(data)
        if self.size > self._limit:
            raise RegistryError(f"{self._where}: blob larger than {self._limit} bytes")
        self._hash.update(data)
        buf[: len(data)] = data
        return len(data)

    def verify(self) -> None:
        while self.read(1 << 20):
            pass
        if f"{self._hash.name}:{self._hash.hexdigest()}" != self._digest:
            raise DigestMismatch(f"{self._where}: blob {self._digest} does not match its digest")

    def close(self) -> None:
        self._resp.close()
        super().close()


class RegistryClient:
    """Talks to registries as the Docker CLI does; safe to share between threads."""

    def __init__(
        self,
        credentials: CredentialStore | None = None,
        *,
        insecure: Callable[[str], bool] = is_loopback_host,
        timeout: float = 30.0,
        retries: int = 3,
        max_retry_wait: float = 30.0,
        user_agent: str = "dockward",
    ) -> None:
        self._credentials = credentials if credentials is not None else CredentialStore.load()
        self._insecure = insecure
        self._timeout = timeout
        self._retries = retries
        self._max_retry_wait = max_retry_wait
        self._user_agent = user_agent
        self._auth: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def credentials_for(self, ref: ImageRef) -> Credentials:
        return self._credentials.lookup(ref.registry)

    def base_url(self, ref: ImageRef) -> str:
        scheme = "http" if self._insecure(ref.api_host) else "https"
        return f"{scheme}://{ref.api_host}/v2/{ref.repository}"

    def may_send_credentials(self, ref: ImageRef, url: str) -> bool:
        """Credentials go over TLS, or in clear text only to hosts the daemon trusts as insecure
        (the registry itself, loopback, its insecure registries): never to plain HTTP elsewhere."""
        parts = urlsplit(url)
        return (
            parts.scheme == "https" or parts.netloc == ref.api_host or self._insecure(parts.netloc)
        )

    def head(self, ref: ImageRef) -> RemoteManifest:
        """The current digest of `ref`'s tag, from one HEAD request (plus auth round trips)."""
        resp = self._request("HEAD", ref, f"manifests/{_checked(ref.reference, ref)}")
        digest = resp.headers.get("Docker-Content-Digest", "")
        media = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if not digest:
            # Some registries omit the header on HEAD: hash the body of a GET instead.
            found = self.manifest(ref, ref.reference)
            digest, media = found.digest, found.media_type
        if not _valid_digest(digest):
            raise RegistryError(f"{ref}: registry sent an unusable digest {digest[:80]!r}")
        return RemoteManifest(ref, digest, media)

    def resolve(self, ref: ImageRef) -> str:
        """The manifest digest a reference names now."""
        return ref.digest or self.head(ref).digest

    def manifest(
        self,
        ref: ImageRef,
        reference: str = "",
        platform: Platform | None = None,
        _nested: int = 0,
    ) -> Manifest:
        """The manifest `reference` (default: ref's tag or digest) names, checked against its
        digest; with a platform an index is resolved to that platform's image manifest."""
        reference = _checked(reference or ref.reference, ref)
        resp = self._request("GET", ref, f"manifests/{reference}", stream=True)
        try:
            body = _read_limited(resp, MAX_MANIFEST_BYTES, f"{ref}: manifest")
        finally:
            resp.close()
        pinned = _valid_digest(reference)
        algorithm = reference.partition(":")[0] if pinned else "sha256"
        digest = f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"
        if pinned and digest != reference:
            raise DigestMismatch(f"{ref}: manifest digest mismatch ({digest} != {reference})")
        doc = _json(body, f"{ref}: manifest")
        media = str(doc.get("mediaType") or resp.headers.get("Content-Type", "").split(";")[0])
        found = Manifest(digest, media.strip(), body, doc)
        if platform is not None and found.is_index:
            if _nested >= MAX_NESTED_INDEXES:
                raise RegistryError(f"{ref}: image indexes nested deeper than {MAX_NESTED_INDEXES}")
            chosen = str(select_platform(doc, platform, str(ref)).get("digest") or "")
            return self.manifest(ref, chosen, platform, _nested + 1)
        return found

    def config_digest(self, ref: ImageRef, reference: str, platform: Platform) -> str:
        """The image config digest (= the local image ID) of `reference` for `platform`."""
        found = self.manifest(ref, reference, platform)
        config = found.doc.get("config")
        if not isinstance(config, dict) or not _valid_digest(str(config.get("digest", ""))):
            raise RegistryError(f"{ref}: manifest has no image config ({found.media_type})")
        return str(config["digest"])

    def open_blob(self, ref: ImageRef, digest: str, limit: int = 1 << 40) -> BlobReader:
        """A blob to stream; call `verify()` after reading it (it raises on a wrong digest)."""
        if not _valid_digest(digest):
            raise RegistryError(f"{ref}: invalid blob digest {digest[:80]!r}")
        resp = self._request("GET", ref, f"blobs/{digest}", stream=True, redirects=True)
        return BlobReader(resp, digest, f"{ref}", limit)

    def blob(self, ref: ImageRef, digest: str, limit: int = MAX_MANIFEST_BYTES) -> bytes:
        """A small blob (config, signature payload), read whole and verified."""
        with self.open_blob(ref, digest, limit) as reader:
            data = reader.read()
            reader.verify()
        return data

    def push_blob(self, ref: ImageRef, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        start = self._request("POST", ref, "blobs/uploads/", ok=(202,), push=True)
        location = start.headers.get("Location", "")
        if not location:
            raise RegistryError(f"{ref}: blob upload refused (no upload location)")
        if location.startswith("/"):
            parts = urlsplit(self.base_url(ref))
            location = f"{parts.scheme}://{parts.netloc}{location}"
        sep = "&" if "?" in location else "?"
        headers = {"Content-Type": "application/octet-stream"}
        self._request(
            "PUT",
            ref,
            f"{location}{sep}digest={digest}",
            ok=(201,),
            push=True,
            data=data,
            headers=headers,
        )
        return digest

    def push_manifest(self, ref: ImageRef, tag: str, manifest: dict[str, Any]) -> str:
        data = json.dumps(manifest, separators=(",", ":")).encode()
        headers = {"Content-Type": str(manifest["mediaType"])}
        path = f"manifests/{_checked(tag, ref)}"
        self._request("PUT", ref, path, ok=(201,), push=True, data=data, headers=headers)
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def catalog(self, ref: ImageRef, page: int = 1000, limit: int = 100_000) -> list[str]:
        """Every repository the registry of REF lists (`/v2/_catalog`, following Link pages)."""
        root = self.base_url(ref).rsplit("/v2/", 1)[0]
        return self._paged(
            ref, f"{root}/v2/_catalog?n={page}", "repositories", limit, "registry:catalog:*"
        )

    def tags(self, ref: ImageRef, page: int = 1000, limit: int = 100_000) -> list[str]:
        """Every tag of REF's repository (`tags/list`, following Link pages)."""
        return self._paged(ref, f"{self.base_url(ref)}/tags/list?n={page}", "tags", limit, None)

    def referrers(self, ref: ImageRef, digest: str) -> list[dict[str, Any]] | None:
        """The descriptors of manifests whose subject is DIGEST (OCI referrers API); None when
        the registry has no referrers API (then the tag scheme `sha256-<hex>` is the fallback)."""
        try:
            resp = self._request("GET", ref, f"referrers/{_checked(digest, ref)}", stream=True)
        except NotFound:
            return None
        try:
            ctype = resp.headers.get("Content-Type", "").split(";")[0].strip()
            doc = _json(
                _read_limited(resp, MAX_MANIFEST_BYTES, f"{ref}: referrers"), f"{ref}: referrers"
            )
        finally:
            resp.close()
        if ctype and ctype != OCI_INDEX:
            return None  # a registry that answers something else does not implement the API
        found = doc.get("manifests") or []
        return [m for m in found if isinstance(m, dict)]

    def _paged(self, ref: ImageRef, url: str, key: str, limit: int, scope: str | None) -> list[str]:
        out: list[str] = []
        seen: set[str] = set()
        while url and url not in seen and len(out) < limit:
            seen.add(url)
            resp = self._request("GET", ref, url, stream=True, scope=scope)
            try:
                doc = _json(
                    _read_limited(resp, MAX_MANIFEST_BYTES, f"{ref}: {key}"), f"{ref}: {key}"
                )
            finally:
                resp.close()
            names = doc.get(key) or []
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise RegistryError(f"{ref}: malformed {key} list")
            out += names
            url = _next_link(resp.headers.get("Link", ""), url)
        return out[:limit]

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = self._user_agent
            session.trust_env = False  # no proxy or .netrc from the environment sees our tokens
            self._local.session = session
        return session

    def _request(
        self,
        method: str,
        ref: ImageRef,
        path: str,
        *,
        ok: tuple[int, ...] = (200,),
        push: bool = False,
        stream: bool = False,
        redirects: bool = False,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        scope: str | None = None,
    ) -> requests.Response:
        url = path if "://" in path else f"{self.base_url(ref)}/{path}"
        sent = {"Accept": MANIFEST_ACCEPT, **(headers or {})}
        scope = scope or f"repository:{ref.repository}:{'pull,push' if push else 'pull'}"
        cached = self._auth.get((ref.api_host, scope))
        if cached and self.may_send_credentials(ref, url):
            sent["Authorization"] = cached
        resp = self._send(method, url, sent, stream=stream, redirects=redirects, data=data)
        if resp.status_code == 401 and self.may_send_credentials(ref, url):
            resp.close()
            sent["Authorization"] = self._authorize(ref, resp, scope)
            resp = self._send(method, url, sent, stream=stream, redirects=redirects, data=data)
        if resp.status_code in ok:
            return resp
        resp.close()
        match resp.status_code:
            case 401 | 403:
                raise RegistryError(f"{ref}: registry refused access (HTTP {resp.status_code})")
            case 404:
                raise NotFound(f"{ref}: not found in the registry")
            case 429:
                raise RegistryError(f"{ref}: registry rate limit reached (HTTP 429)")
            case code:
                raise RegistryError(f"{ref}: registry answered HTTP {code}")

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        *,
        stream: bool = False,
        redirects: bool = False,
        data: bytes | None = None,
        auth: tuple[str, str] | None = None,
    ) -> requests.Response:
        """One request, retried with backoff on 429/5xx and lost connections; Retry-After is
        honoured up to `max_retry_wait` (a longer one is the caller's error, not our sleep)."""
        for attempt in range(self._retries + 1):
            try:
                resp = self._session().request(
                    method,
                    url,
                    headers=headers,
                    data=data,
                    auth=auth,
                    timeout=self._timeout,
                    stream=stream,
                    allow_redirects=redirects,
                )
            except requests.RequestException as exc:
                # A refused connection or an unknown name will not heal in a second.
                if attempt == self._retries or _reason(exc) != type(exc).__name__:
                    host = urlsplit(url).netloc
                    raise RegistryError(f"registry {host} unreachable: {_reason(exc)}") from exc
                time.sleep(0.25 * 2**attempt)
                continue
            if resp.status_code not in RETRY_STATUSES or attempt == self._retries:
                return resp
            wait = _retry_after(resp.headers.get("Retry-After", ""), 0.25 * 2**attempt)
            if wait > self._max_retry_wait:
                return resp
            resp.close()
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns

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
            self._auth[(ref.api_host, scope)] = value
        return value

    def _token(self, ref: ImageRef, challenge: Challenge, creds: Credentials, scope: str) -> str:
        realm = challenge.params.get("realm", "")
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryError(f"{ref}: bad token realm {realm[:120]!r}")
        query = {"scope": challenge.params.get("scope") or scope}
        if challenge.params.get("service"):
            query["service"] = challenge.params["service"]
        trusted = not creds.empty and self.may_send_credentials(ref, realm)
        if trusted and creds.identity_token and not creds.username:
            form = {
                **query,
                "grant_type": "refresh_token",
                "client_id": "dockward",
                "refresh_token": creds.identity_token,
            }
            body = urlencode(form).encode()
            form_type = {"Content-Type": "application/x-www-form-urlencoded"}
            tresp = self._send("POST", realm, form_type, stream=True, data=body)
        else:
            auth = (creds.username, creds.password) if trusted and creds.username else None
            sep = "&" if parts.query else "?"
            tresp = self._send("GET", realm + sep + urlencode(query), {}, stream=True, auth=auth)
        try:
            if tresp.status_code != 200:
                raise RegistryError(f"{ref}: token server refused (HTTP {tresp.status_code})")
            data = _json(_read_limited(tresp, MAX_TOKEN_BYTES, "token answer"), f"{ref}: token")
        finally:
            tresp.close()
        token = data.get("token") or data.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{ref}: token server sent no token")
        return token


def _next_link(header: str, current: str) -> str:
    """The `rel="next"` target of a Link header, on the same registry as CURRENT."""
    m = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', header)
    if not m:
        return ""
    target = m.group(1)
    parts = urlsplit(current)
    if target.startswith("/"):
        return f"{parts.scheme}://{parts.netloc}{target}"
    return target if urlsplit(target).netloc == parts.netloc else ""


def _valid_digest(text: str) -> bool:
    algorithm, _, hexpart = text.partition(":")
    return DIGEST_HEX.get(algorithm) == len(hexpart) and all(
        c in "0123456789abcdef" for c in hexpart
    )


def _checked(reference: str, ref: ImageRef) -> str:
    if not _TAG_OR_DIGEST.fullmatch(reference) or (
        ":" in reference and not _valid_digest(reference)
    ):
        raise RegistryError(f"{ref}: invalid tag or digest {reference[:80]!r}")
    return reference


def _retry_after(value: str, default: float) -> float:
    """Retry-After in seconds or as an HTTP date; `default` when absent or unreadable."""
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


def _read_limited(resp: requests.Response, limit: int, what: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_content(65536):
        size += len(chunk)
        if size > limit:
            raise RegistryError(f"{what} larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _json(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{what}: not valid JSON") from exc
    if not isinstance(doc, dict):
        raise RegistryError(f"{what}: a JSON {type(doc).__name__}, not an object")
    return doc


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("Connection refused", "timed out", "Name or service not known", "SSL"):
        if marker in text:
            return marker
    return type(exc).__name__
