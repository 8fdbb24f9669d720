"""Who is calling and may they call this route: the policy file or docker-socket-proxy's env vars."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from dockward.errors import ConfigError
from dockward.policy.admission import BODY_ROUTES, QUERY_ROUTES
from dockward.policy.checks import ROUTE
from dockward.policy.model import Admission, ClientRule, ContainerScope, Policy
from dockward.policy.routes import Match
from dockward.proxy.paths import Target


@dataclass(frozen=True, slots=True)
class Caller:
    """What the proxy knows about the peer. Unix: SO_PEERCRED; TCP: the source address."""

    uid: int | None = None
    gid: int | None = None
    pid: int | None = None
    address: str = ""  # TCP source address
    token_sha256: str = ""  # of the bearer token, never the token itself

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.uid is not None:
            out.update(uid=self.uid, gid=self.gid, pid=self.pid)
        if self.address:
            out["addr"] = self.address
        if self.token_sha256:
            out["token"] = self.token_sha256[:12]
        return out


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    client: str  # the client entry that matched ("" when none)
    rule: str = ""  # the rule id or setting that decided
    reason: str = ""
    judge_body: bool = False  # the body (or query) must be judged before forwarding
    admission: Admission | None = None
    scope: ContainerScope | None = None  # the containers this client sees (None: all)


class Authorizer(Protocol):
    max_body: int

    def decide(
        self, caller: Caller, method: str, target: Target, match: Match | None
    ) -> Verdict: ...


def _client_matches(rule: ClientRule, caller: Caller) -> bool:
    if caller.uid is not None and caller.uid in rule.uids:
        return True
    if caller.gid is not None and caller.gid in rule.gids:
        return True
    if caller.address and rule.sources:
        try:
            addr = ipaddress.ip_address(caller.address.split("%")[0])
        except ValueError:
            return False
        if any(addr in net for net in rule.sources):
            return True
    if caller.token_sha256:
        return any(hmac.compare_digest(caller.token_sha256, t) for t in rule.token_sha256)
    return False


class PolicyAuthorizer:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.max_body = policy.max_body

    def identify(self, caller: Caller) -> ClientRule | None:
        for rule in self.policy.clients:
            if _client_matches(rule, caller):
                return rule
        return self.policy.default

    def decide(self, caller: Caller, method: str, target: Target, match: Match | None) -> Verdict:
        client = self.identify(caller)
        if client is None:
            return Verdict(False, "", ROUTE.id, "caller matches no client in the policy")
        if match is None:
            return Verdict(
                False, client.name, ROUTE.id, f"{method} {target.path} is no known API route"
            )
        name = match.route.name
        if not client.allows(name):
            return Verdict(
                False, client.name, ROUTE.id, f"route {name} not allowed for {client.name}"
            )
        judge = name in BODY_ROUTES or name in QUERY_ROUTES
        adm = self.policy.admission_for(client)
        return Verdict(True, client.name, "", "", judge, adm, client.scope)


def token_digest(header_value: str) -> str:
    scheme, _, token = header_value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return ""
    return hashlib.sha256(token.strip().encode()).hexdigest()


# docker-socket-proxy's sections: each opens `^(/v[\d.]+)?/<name>` (default in brackets).
COMPAT_SECTIONS: dict[str, bool] = {
    "EVENTS": True,
    "PING": True,
    "VERSION": True,
    "AUTH": False,
    "BUILD": False,
    "COMMIT": False,
    "CONFIGS": False,
    "CONTAINERS": False,
    "DISTRIBUTION": False,
    "EXEC": False,
    "GRPC": False,
    "IMAGES": False,
    "INFO": False,
    "NETWORKS": False,
    "NODES": False,
    "PLUGINS": False,
    "SECRETS": False,
    "SERVICES": False,
    "SESSION": False,
    "SWARM": False,
    "SYSTEM": False,
    "TASKS": False,
    "VOLUMES": False,
}
_SECTION_PATH = {"PING": "_ping"}
COMPAT_SWITCHES = ("POST", "ALLOW_START", "ALLOW_STOP", "ALLOW_RESTARTS", "ARCHIVE")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"environment variable {name}={raw!r}: expected 1 or 0")


@dataclass(frozen=True, slots=True)
class CompatSettings:
    sections: frozenset[str]  # enabled, lower-case path names
    post: bool
    allow_start: bool
    allow_stop: bool
    allow_restarts: bool
    archive: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CompatSettings:
        enabled = frozenset(
            _SECTION_PATH.get(k, k.lower()) for k, d in COMPAT_SECTIONS.items() if _flag(env, k, d)
        )
        return cls(
            enabled,
            _flag(env, "POST", False),
            _flag(env, "ALLOW_START", False),
            _flag(env, "ALLOW_STOP", False),
            _flag(env, "ALLOW_RESTARTS", False),
            _flag(env, "ARCHIVE", False),
        )


_FILE_COPIES = ("/archive", "/export")
_WRITE_GETS = frozenset({"containers.attach_ws_stdin"})
_LIFECYCLE = {
    "containers.start": ("allow_start",),
    "containers.stop": ("allow_stop", "allow_restarts"),
    "containers.restart": ("allow_restarts",),
    "containers.kill": ("allow_restarts",),
}


class CompatAuthorizer:
    """docker-socket-proxy's rules, read from the same environment variables.

    Deliberate differences: ALLOW_START/STOP/RESTARTS open their POSTs even with POST=0 (in
    HAProxy the `POST` gate runs first, so they never worked without it); reading a container's
    files (GET/HEAD .../archive, GET .../export) is the ARCHIVE section, off even with
    CONTAINERS=1 (ARCHIVE=1 restores docker-socket-proxy's behaviour); the WebSocket attach with
    stdin is a write (POST=1).
    """

    max_body = 0  # no body is judged in compatibility mode

    def __init__(self, settings: CompatSettings) -> None:
        self.settings = settings

    def decide(self, caller: Caller, method: str, target: Target, match: Match | None) -> Verdict:
        s = self.settings
        if match is not None and match.route.name in _LIFECYCLE and method == "POST":
            for switch in _LIFECYCLE[match.route.name]:
                if getattr(s, switch):
                    return Verdict(True, "compat", switch.upper())
        if method not in ("GET", "HEAD") and not s.post:
            return Verdict(False, "compat", "POST", f"{method} requests need POST=1")
        if match is not None and match.route.name in _WRITE_GETS and not s.post:
            # a GET that writes: the WebSocket attach with stdin types into the container
            return Verdict(False, "compat", "POST", f"{match.route.name} writes: it needs POST=1")
        first = target.path.lstrip("/").split("/", 1)[0].lower()
        # dockerd routes /containers/{name:.*}/archive: judged by the suffix, not the route
        copies = first == "containers" and target.path.lower().endswith(_FILE_COPIES)
        if copies and method in ("GET", "HEAD"):
            if s.archive:
                return Verdict(True, "compat", "ARCHIVE")
            return Verdict(
                False, "compat", "ARCHIVE", "copying a container's files needs ARCHIVE=1"
            )
        if first in s.sections:
            return Verdict(True, "compat", first.upper().lstrip("_"))
        return Verdict(False, "compat", "", f"section /{first} is not enabled")
