"""The Engine API's routes (API 1.41), so every request gets a stable name the policy speaks in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Mode(Enum):
    PLAIN = "plain"
    HIJACK = "hijack"  # 101 Switching Protocols (or raw stream), then raw bytes both ways


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    name: str  # e.g. containers.create
    pattern: re.Pattern[str]
    mode: Mode = Mode.PLAIN

    @property
    def section(self) -> str:
        return self.name.split(".", 1)[0]


_ID = r"(?P<id>[^/]+)"
_NAME = r"(?P<name>.+)"  # image names carry '/'

_TABLE: tuple[tuple[str, str, str], ...] = (
    ("GET", "/_ping", "ping"),
    ("HEAD", "/_ping", "ping"),
    ("GET", "/version", "version"),
    ("GET", "/info", "info"),
    ("GET", "/events", "events"),
    ("GET", "/system/df", "system.df"),
    ("POST", "/auth", "auth"),
    ("GET", "/containers/json", "containers.list"),
    ("POST", "/containers/create", "containers.create"),
    ("POST", "/containers/prune", "containers.prune"),
    ("GET", f"/containers/{_ID}/json", "containers.inspect"),
    ("GET", f"/containers/{_ID}/top", "containers.top"),
    ("GET", f"/containers/{_ID}/logs", "containers.logs"),
    ("GET", f"/containers/{_ID}/changes", "containers.changes"),
    ("GET", f"/containers/{_ID}/export", "containers.export"),
    ("GET", f"/containers/{_ID}/stats", "containers.stats"),
    ("GET", f"/containers/{_ID}/archive", "containers.archive_get"),
    ("HEAD", f"/containers/{_ID}/archive", "containers.archive_head"),
    ("PUT", f"/containers/{_ID}/archive", "containers.archive_put"),
    ("POST", f"/containers/{_ID}/resize", "containers.resize"),
    ("POST", f"/containers/{_ID}/start", "containers.start"),
    ("POST", f"/containers/{_ID}/stop", "containers.stop"),
    ("POST", f"/containers/{_ID}/restart", "containers.restart"),
    ("POST", f"/containers/{_ID}/kill", "containers.kill"),
    ("POST", f"/containers/{_ID}/update", "containers.update"),
    ("POST", f"/containers/{_ID}/rename", "containers.rename"),
    ("POST", f"/containers/{_ID}/pause", "containers.pause"),
    ("POST", f"/containers/{_ID}/unpause", "containers.unpause"),
    ("POST", f"/containers/{_ID}/wait", "containers.wait"),
    ("POST", f"/containers/{_ID}/exec", "exec.create"),
    ("DELETE", f"/containers/{_ID}", "containers.delete"),
    ("POST", "/exec/(?P<id>[^/]+)/resize", "exec.resize"),
    ("GET", f"/exec/{_ID}/json", "exec.inspect"),
    ("GET", "/images/json", "images.list"),
    ("POST", "/images/create", "images.create"),
    ("POST", "/images/load", "images.load"),
    ("GET", "/images/get", "images.get_many"),
    ("GET", "/images/search", "images.search"),
    ("POST", "/images/prune", "images.prune"),
    ("GET", f"/images/{_NAME}/json", "images.inspect"),
    ("GET", f"/images/{_NAME}/history", "images.history"),
    ("GET", f"/images/{_NAME}/get", "images.get"),
    ("POST", f"/images/{_NAME}/push", "images.push"),
    ("POST", f"/images/{_NAME}/tag", "images.tag"),
    ("DELETE", f"/images/{_NAME}", "images.delete"),
    ("POST", "/build", "build"),
    ("POST", "/build/prune", "build.prune"),
    ("POST", "/build/cancel", "build.cancel"),
    ("POST", "/commit", "commit"),
    ("GET", f"/distribution/{_NAME}/json", "distribution.inspect"),
    ("GET", "/networks", "networks.list"),
    ("POST", "/networks/create", "networks.create"),
    ("POST", "/networks/prune", "networks.prune"),
    ("GET", f"/networks/{_ID}", "networks.inspect"),
    ("DELETE", f"/networks/{_ID}", "networks.delete"),
    ("POST", f"/networks/{_ID}/connect", "networks.connect"),
    ("POST", f"/networks/{_ID}/disconnect", "networks.disconnect"),
    ("GET", "/volumes", "volumes.list"),
    ("POST", "/volumes/create", "volumes.create"),
    ("POST", "/volumes/prune", "volumes.prune"),
    ("GET", f"/volumes/{_ID}", "volumes.inspect"),
    ("DELETE", f"/volumes/{_ID}", "volumes.delete"),
    ("GET", "/swarm", "swarm.inspect"),
    ("POST", "/swarm/(?P<id>init|join|leave|update|unlock)", "swarm.manage"),
    ("GET", "/swarm/unlockkey", "swarm.unlockkey"),
    ("GET", "/nodes", "nodes.list"),
    ("GET", f"/nodes/{_ID}", "nodes.inspect"),
    ("DELETE", f"/nodes/{_ID}", "nodes.delete"),
    ("POST", f"/nodes/{_ID}/update", "nodes.update"),
    ("GET", "/services", "services.list"),
    ("POST", "/services/create", "services.create"),
    ("GET", f"/services/{_ID}", "services.inspect"),
    ("DELETE", f"/services/{_ID}", "services.delete"),
    ("POST", f"/services/{_ID}/update", "services.update"),
    ("GET", f"/services/{_ID}/logs", "services.logs"),
    ("GET", "/tasks", "tasks.list"),
    ("GET", f"/tasks/{_ID}", "tasks.inspect"),
    ("GET", f"/tasks/{_ID}/logs", "tasks.logs"),
    ("GET", "/secrets", "secrets.list"),
    ("POST", "/secrets/create", "secrets.create"),
    ("GET", f"/secrets/{_ID}", "secrets.inspect"),
    ("DELETE", f"/secrets/{_ID}", "secrets.delete"),
    ("POST", f"/secrets/{_ID}/update", "secrets.update"),
    ("GET", "/configs", "configs.list"),
    ("POST", "/configs/create", "configs.create"),
    ("GET", f"/configs/{_ID}", "configs.inspect"),
    ("DELETE", f"/configs/{_ID}", "configs.delete"),
    ("POST", f"/configs/{_ID}/update", "configs.update"),
    ("GET", "/plugins", "plugins.list"),
    ("GET", "/plugins/privileges", "plugins.privileges"),
    ("POST", "/plugins/pull", "plugins.pull"),
    ("POST", "/plugins/create", "plugins.create"),
    ("GET", f"/plugins/{_NAME}/json", "plugins.inspect"),
    ("DELETE", f"/plugins/{_NAME}", "plugins.delete"),
    ("POST", f"/plugins/{_NAME}/(?P<action>enable|disable|upgrade|push|set)", "plugins.manage"),
)

_HIJACK: tuple[tuple[str, str, str], ...] = (
    ("POST", f"/containers/{_ID}/attach", "containers.attach"),
    ("GET", f"/containers/{_ID}/attach/ws", "containers.attach_ws"),
    ("POST", f"/exec/{_ID}/start", "exec.start"),
    ("POST", "/session", "session"),
    ("POST", "/grpc", "grpc"),
)

# Attaching with stdin writes to the container: a route of its own, so a policy that allows
# watching a container (containers.attach, containers.attach_ws) does not allow typing into it.
STDIN_ROUTES: dict[str, str] = {
    "containers.attach": "containers.attach_stdin",
    "containers.attach_ws": "containers.attach_ws_stdin",
}
_WRITE_HIJACK = tuple((m, p, STDIN_ROUTES[n]) for m, p, n in _HIJACK if n in STDIN_ROUTES)

ROUTES: tuple[Route, ...] = (
    tuple(Route(m, n, re.compile(f"^{p}$")) for m, p, n in _TABLE)
    + tuple(Route(m, n, re.compile(f"^{p}$"), Mode.HIJACK) for m, p, n in _HIJACK)
    + tuple(Route(m, n, re.compile(f"^{p}$"), Mode.HIJACK) for m, p, n in _WRITE_HIJACK)
)

ROUTE_NAMES: frozenset[str] = frozenset(r.name for r in ROUTES)
# Answers that can last (streams, long polls, progress): the proxy watches for the client leaving.
STREAMING_ROUTES: frozenset[str] = frozenset(
    {
        "events",
        "containers.logs",
        "containers.stats",
        "containers.wait",
        "containers.export",
        "containers.archive_get",
        "containers.attach",
        "containers.attach_ws",
        "containers.attach_stdin",
        "containers.attach_ws_stdin",
        "exec.start",
        "images.create",
        "images.push",
        "images.get",
        "images.get_many",
        "images.load",
        "build",
        "services.logs",
        "tasks.logs",
        "plugins.pull",
        "plugins.manage",
        "session",
        "grpc",
    }
)
_BY_METHOD: dict[str, list[Route]] = {}
_BY_NAME: dict[str, Route] = {r.name: r for r in ROUTES}
for _r in ROUTES:
    if _r.name in STDIN_ROUTES.values():
        continue
    _BY_METHOD.setdefault(_r.method, []).append(_r)


@dataclass(frozen=True, slots=True)
class Match:
    route: Route
    params: dict[str, str]


_MATCHES: dict[tuple[str, str], Match | None] = {}


def match_route(method: str, path: str) -> Match | None:
    """The route dockerd would dispatch this (already normalised) path to, or None."""
    key = (method, path)
    try:
        return _MATCHES[key]
    except KeyError:
        pass
    found = _match_route(method, path)
    if len(path) > 256:
        return found
    if len(_MATCHES) >= 4096:
        _MATCHES.clear()
    _MATCHES[key] = found
    return found


def _match_route(method: str, path: str) -> Match | None:
    for route in _BY_METHOD.get(method, ()):
        m = route.pattern.match(path)
        if m:
            return Match(route, {k: v for k, v in m.groupdict().items() if v is not None})
    return None


def go_bool(values: list[str]) -> bool:
    """dockerd's httputils.BoolValue on the first value; any true value counts, so a repeated
    key cannot hide a write from the proxy."""
    return any(v.strip().lower() not in ("", "0", "no", "false", "none") for v in values)


def match_request(method: str, path: str, query: dict[str, list[str]]) -> Match | None:
    """match_route, with attach carrying stdin (`stdin=1`) named as the write it is."""
    m = match_route(method, path)
    if m is not None and m.route.name in STDIN_ROUTES and go_bool(query.get("stdin", [])):
        return Match(_BY_NAME[STDIN_ROUTES[m.route.name]], m.params)
    return m
