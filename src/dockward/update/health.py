"""The health gate: a new container must prove itself before the old one is let go."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from dockward.errors import InputError

PROBE_CMD_LABEL = "dockward.update.probe-cmd"
PROBE_URL_LABEL = "dockward.update.probe-url"
TIMEOUT_LABEL = "dockward.update.health-timeout"


@dataclass(frozen=True, slots=True)
class Probe:
    """How to judge a container without a HEALTHCHECK: a command inside it, or an HTTP URL."""

    command: tuple[str, ...] = ()
    url: str = ""

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> Probe | None:
        cmd, url = labels.get(PROBE_CMD_LABEL, ""), labels.get(PROBE_URL_LABEL, "")
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise InputError(f"label {PROBE_URL_LABEL}: not an http(s) URL: {url[:120]!r}")
            return cls(url=url)
        if cmd:
            try:
                argv = tuple(shlex.split(cmd))
            except ValueError as exc:
                raise InputError(f"label {PROBE_CMD_LABEL}: {exc}") from exc
            return cls(command=argv) if argv else None
        return None


@dataclass(frozen=True, slots=True)
class HealthResult:
    ok: bool
    reason: str
    elapsed: float
    method: str


def wait_healthy(
    client: Any,
    container_id: str,
    *,
    timeout: float,
    min_uptime: float = 3.0,
    probe: Probe | None = None,
    poll: float = 0.2,
    clock: Callable[[], float] = time.monotonic,
) -> HealthResult:
    """Wait until the container is healthy (HEALTHCHECK, probe, or simply staying up)."""
    start = clock()
    deadline = start + timeout
    method = "uptime"
    last = "starting"
    while True:
        now = clock()
        info = client.inspect_container(container_id)
        state = info.get("State") or {}
        health = state.get("Health")
        if state.get("Restarting") or not state.get("Running"):
            return HealthResult(
                False, _exit_reason(client, container_id, state), now - start, method
            )
        if isinstance(health, dict) and health.get("Status") not in (None, "none"):
            method = "healthcheck"
            last = str(health.get("Status"))
            if last == "healthy":
                return HealthResult(True, "healthcheck passed", now - start, method)
            if last == "unhealthy":
                return HealthResult(
                    False, "healthcheck failed: " + _health_output(health), now - start, method
                )
        elif probe is not None and probe.command:
            method = "probe-cmd"
            code, output = _exec(client, container_id, probe.command)
            if code == 0:
                return HealthResult(True, "probe command passed", now - start, method)
            last = f"probe command exited {code}: {output}"
        elif probe is not None and probe.url:
            method = "probe-url"
            ok, last = _http_probe(probe.url)
            if ok:
                return HealthResult(True, f"probe URL answered: {last}", now - start, method)
        else:
            if now - start >= min_uptime:
                return HealthResult(True, f"running for {min_uptime:g}s", now - start, method)
        if now >= deadline:
            return HealthResult(
                False, f"not healthy within {timeout:g}s ({last})", now - start, method
            )
        time.sleep(poll)


def _exec(client: Any, container_id: str, argv: tuple[str, ...]) -> tuple[int, str]:
    try:
        exec_id = client.exec_create(container_id, list(argv), stdout=True, stderr=True)["Id"]
        output = client.exec_start(exec_id, stream=False)
        code = client.exec_inspect(exec_id).get("ExitCode")
    except Exception as exc:  # docker-py raises APIError and requests errors alike
        return -1, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)
    return int(code if code is not None else -1), text.strip()[-200:]


def _http_probe(url: str) -> tuple[bool, str]:
    try:
        resp = requests.get(url, timeout=2, allow_redirects=False)
    except requests.RequestException as exc:
        return False, type(exc).__name__
    resp.close()
    return resp.status_code < 400, f"HTTP {resp.status_code}"


def _health_output(health: Mapping[str, Any]) -> str:
    log = health.get("Log") or []
    if log and isinstance(log[-1], dict):
        out = str(log[-1].get("Output") or "").strip().replace("\n", " ")
        return f"exit {log[-1].get('ExitCode')}" + (f": {out[-200:]}" if out else "")
    return "unhealthy"


def _exit_reason(client: Any, container_id: str, state: Mapping[str, Any]) -> str:
    if state.get("Restarting"):
        return "container is restarting (crash loop)"
    reason = f"container exited with code {state.get('ExitCode')}"
    if state.get("Error"):
        reason += f": {state['Error']}"
    try:
        tail = client.logs(container_id, tail=3).decode("utf-8", "replace").strip()
    except Exception:
        tail = ""
    return reason + (f" (last output: {tail[-200:]})" if tail else "")
