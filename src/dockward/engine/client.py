"""Engine API access: the Docker SDK's low-level client, with errors mapped once."""

from __future__ import annotations

import os
from dataclasses import dataclass
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
    if not url and context:
        try:
            from docker.context import ContextAPI

            ctx = ContextAPI.get_context(context)
        except Exception as exc:  # the SDK raises several types for a bad context store
            raise ConnectionFailed(f"cannot read Docker context {context!r}: {exc}") from exc
        if ctx is None:
            raise ConnectionFailed(f"no Docker context named {context!r}")
        url = ctx.Host
    url = url or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
    if url.startswith("/"):
        url = "unix://" + url
    if url.startswith("unix://"):
        return Endpoint(url, True, url.removeprefix("unix://"))
    return Endpoint(url, False)


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
