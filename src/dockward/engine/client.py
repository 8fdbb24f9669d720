"""Engine API access: the Docker SDK's low-level client, with errors mapped once."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

from dockward.errors import ConnectionFailed

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
MIN_API_VERSION = "1.24"


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    local: bool
    socket_path: str = ""


def resolve_endpoint(host: str | None = None, context: str | None = None) -> Endpoint:
    """--host, then --context, then DOCKER_HOST, then the default socket."""
    url = host
    if not url and context and context != "default":
        url = context_host(context)
    url = url or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
    if url.startswith("/"):
        url = "unix://" + url
    if url.startswith("unix://"):
        return Endpoint(url, True, url.removeprefix("unix://"))
    return Endpoint(url, False)


def context_host(name: str) -> str:
    """The Docker endpoint of a CLI context. Read directly: docker-py's context store cannot find
    contexts when the config directory has no config.json."""
    base = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    meta = base / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest() / "meta.json"
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConnectionFailed(f"no Docker context named {name!r} (in {base})") from exc
    except (OSError, ValueError) as exc:
        raise ConnectionFailed(f"cannot read Docker context {name!r}: {exc}") from exc
    host = ((data.get("Endpoints") or {}).get("docker") or {}).get("Host")
    if not isinstance(host, str) or not host:
        raise ConnectionFailed(f"Docker context {name!r} has no docker endpoint")
    return host


def connect(endpoint: Endpoint, timeout: int = 30) -> Any:
    """A low-level APIClient with the API version negotiated with the engine."""
    kwargs: dict[str, Any] = {}
    if endpoint.url.startswith("tcp://"):
        env = docker.utils.kwargs_from_env()
        kwargs["tls"] = env.get("tls")
    try:
        client = docker.APIClient(
            base_url=endpoint.url,
            version=MIN_API_VERSION,
            timeout=timeout,
            use_ssh_client=endpoint.url.startswith("ssh://"),
            **kwargs,
        )
        # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE replace the daemon's CA (DOCKER_CERT_PATH);
        # the engine's CA is the only one that may vouch for it.
        client.trust_env = False
        client._version = client._retrieve_server_version()  # negotiate as version="auto" does
        client.ping()
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        raise ConnectionFailed(
            f"cannot reach the Docker daemon at {endpoint.url}: {_short(exc)}"
        ) from exc
    return client


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for marker in (
        "No such file or directory",
        "Connection refused",
        "Permission denied",
        "timed out",
    ):
        if marker in str(exc):
            return marker
    return text[:200]
