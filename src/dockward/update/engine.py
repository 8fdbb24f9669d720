"""Engine connection for updates: negotiate the API version, or check a pinned one against the engine.

Watchtower pinned API 1.25 and broke on Engine 29 (which needs >= 1.44); a pinned version here
is accepted only inside the engine's [MinAPIVersion, ApiVersion] range, with a clear error otherwise.
"""

from __future__ import annotations

import re
from typing import Any

import docker
import docker.errors
import requests
from packaging.version import Version

from dockward.engine import Endpoint, connect
from dockward.errors import ConnectionFailed, UsageError

_VERSION = re.compile(r"[0-9]+\.[0-9]+")


def connect_versioned(endpoint: Endpoint, api_version: str = "auto", timeout: int = 60) -> Any:
    """A low-level client at the negotiated API version (`auto`) or at a checked pinned one."""
    client = connect(endpoint, timeout=timeout)
    if api_version in ("", "auto"):
        return client
    if not _VERSION.fullmatch(api_version):
        raise UsageError(f"--api-version: expected auto or MAJOR.MINOR, got {api_version!r}")
    try:
        info = client.version()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise ConnectionFailed(f"cannot read the engine version: {exc}") from exc
    high = str(info.get("ApiVersion") or "")
    low = str(info.get("MinAPIVersion") or high)
    if high and not Version(low) <= Version(api_version) <= Version(high):
        client.close()
        raise UsageError(
            f"--api-version {api_version}: the engine speaks API {low} to {high} "
            "(use --api-version auto to negotiate)"
        )
    client.close()
    try:
        pinned = docker.APIClient(base_url=endpoint.url, version=api_version, timeout=timeout)
        pinned.ping()
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        raise ConnectionFailed(f"cannot reach the Docker daemon at {endpoint.url}: {exc}") from exc
    return pinned


def insecure_registries(client: Any) -> tuple[list[str], set[str]]:
    """The daemon's insecure registries (CIDRs and names): the registry check follows the daemon."""
    try:
        reg = (client.info() or {}).get("RegistryConfig") or {}
    except (docker.errors.DockerException, requests.RequestException):
        return [], set()
    cidrs = [str(c) for c in reg.get("InsecureRegistryCIDRs") or ()]
    names = {
        str(k)
        for k, v in (reg.get("IndexConfigs") or {}).items()
        if isinstance(v, dict) and v.get("Secure") is False
    }
    return cidrs, names
