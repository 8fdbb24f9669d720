"""The policy file: who may call which API routes, and what a request body may ask for.

One schema for the proxy (`dockward proxy --policy`) and for CI (`dockward policy check`).
See `docs/policy.md` for the reference with examples.
"""

from __future__ import annotations

import fnmatch
import hashlib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dockward.errors import ConfigError
from dockward.model.finding import ReportExtra, Severity
from dockward.policy.routes import ROUTE_NAMES
from dockward.rules.container import rules as container_rules
from dockward.rules.groups import GROUPS, members


# Words a policy line may use besides rule ids, all declared on the rules: each rule's aliases,
# and each group's name and aliases (`dockward rules list --kind container`).
def _words() -> dict[str, tuple[str, ...]]:
    rules = [e.rule for e in container_rules]
    out: dict[str, tuple[str, ...]] = {a: (r.id,) for r in rules for a in r.aliases}
    for group in GROUPS.values():
        ids = members(rules, group.name)
        if ids:
            out.update({w: ids for w in (group.name, *group.aliases)})
    return out


RULE_ALIASES: dict[str, tuple[str, ...]] = _words()
# Refused unless the policy says otherwise: the rules declaring the group `default-deny`.
DEFAULT_DENY: tuple[str, ...] = members((e.rule for e in container_rules), "default-deny")
DEFAULT_EXEC_DENY: tuple[str, ...] = members((e.rule for e in container_rules), "exec-body")


@dataclass(frozen=True, slots=True)
class PolicyExtra(ReportExtra):
    """`dockward policy check`: the policy file the inputs were judged with."""

    policy: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy}


DEFAULT_MAX_BODY = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImagePolicy:
    registries: tuple[str, ...] | None = None  # None: any registry
    require_digest: bool = False
    fail_on_severity: Severity | None = None  # refuse images with a vulnerability above this
    cosign_key: str = ""  # PEM public key file (ECDSA P-256)
    insecure_registries: tuple[str, ...] = ()  # reached over plain HTTP (tests, local mirrors)
    allow_import: bool = False  # `images/create?fromSrc=` and `images/load` bypass every check

    @property
    def needs_registry(self) -> bool:
        return bool(self.cosign_key)


@dataclass(frozen=True, slots=True)
class Admission:
    deny: tuple[str, ...] = DEFAULT_DENY  # container rule ids whose failure refuses
    capabilities: tuple[str, ...] | None = None  # cap_add allowlist (None: not checked)
    bind_paths: tuple[str, ...] | None = None  # bind sources allowed under (after realpath)
    allow_unmodelled: bool = False  # HostConfig fields the model does not know
    exec_deny: tuple[str, ...] = DEFAULT_EXEC_DENY  # rules on exec bodies (privileged exec)
    build_network_host: bool = False
    images: ImagePolicy = field(default_factory=ImagePolicy)


@dataclass(frozen=True, slots=True)
class ContainerScope:
    """The containers a client sees and acts on: every label given (`key` or `key=value`) and,
    when names are given, a name matching one of the globs."""

    labels: tuple[tuple[str, str | None], ...] = ()
    names: tuple[str, ...] = ()

    def contains(self, name: str, labels: Mapping[str, Any] | None) -> bool:
        name = name.lstrip("/")
        if self.names and not any(fnmatch.fnmatchcase(name, g) for g in self.names):
            return False
        have = labels if isinstance(labels, Mapping) else {}
        return all(k in have and (v is None or have[k] == v) for k, v in self.labels)

    def describe(self) -> str:
        parts = [k if v is None else f"{k}={v}" for k, v in self.labels]
        parts += [f"name {g}" for g in self.names]
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class ClientRule:
    name: str
    uids: tuple[int, ...] = ()
    gids: tuple[int, ...] = ()
    sources: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    token_sha256: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    admission: Admission | None = None  # None: the policy's admission section
    scope: ContainerScope | None = None  # None: every container

    def allows(self, route: str) -> bool:
        if any(fnmatch.fnmatchcase(route, p) for p in self.deny):
            return False
        return any(fnmatch.fnmatchcase(route, p) for p in self.allow)


@dataclass(frozen=True, slots=True)
class Policy:
    clients: tuple[ClientRule, ...] = ()
    default: ClientRule | None = None  # for callers no client entry matches; None: refuse
    admission: Admission = field(default_factory=Admission)
    max_body: int = DEFAULT_MAX_BODY
    source: str = ""

    def admission_for(self, client: ClientRule | None) -> Admission:
        if client is not None and client.admission is not None:
            return client.admission
        return self.admission


_TOP_KEYS = {"version", "clients", "default", "admission", "max_body"}
_CLIENT_KEYS = {"name", "uid", "gid", "source", "token_sha256", "token_file", "allow", "deny"}
_CLIENT_KEYS_ALL = _CLIENT_KEYS | {"admission", "scope"}
_SCOPE_KEYS = {"labels", "names"}
_ADMISSION_KEYS = {
    "deny",
    "also_deny",
    "capabilities",
    "bind_paths",
    "allow_unmodelled",
    "exec_deny",
    "build_network_host",
    "images",
}
_IMAGE_KEYS = {
    "registries",
    "require_digest",
    "fail_on_severity",
    "cosign_key",
    "insecure_registries",
    "allow_import",
}


class _Reader:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, path: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.where}: {path}: {msg}")

    def mapping(self, value: Any, path: str, keys: set[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, "must be a mapping")
        unknown = sorted(str(k) for k in value if k not in keys)
        if unknown:
            raise self.fail(
                path, f"unknown key {unknown[0]!r} (expected {', '.join(sorted(keys))})"
            )
        return value

    def strs(self, value: Any, path: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str | int) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list) or not all(
            isinstance(v, str | int) and not isinstance(v, bool) for v in value
        ):
            raise self.fail(path, "must be a list of strings")
        return tuple(str(v) for v in value)

    def ints(self, value: Any, path: str) -> tuple[int, ...]:
        try:
            return tuple(int(v) for v in self.strs(value, path))
        except ValueError as exc:
            raise self.fail(path, "must be a list of numeric ids") from exc

    def flag(self, value: Any, path: str, default: bool = False) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(path, "must be true or false")
        return value


def _rule_ids(r: _Reader, value: Any, path: str) -> tuple[str, ...]:
    out: list[str] = []
    for item in r.strs(value, path):
        if item in RULE_ALIASES:
            out.extend(RULE_ALIASES[item])
        elif item.upper() in container_rules:
            out.append(item.upper())
        else:
            raise r.fail(path, f"unknown rule {item!r} (a DW-C id or one of the aliases)")
    return tuple(dict.fromkeys(out))


def _routes(r: _Reader, value: Any, path: str) -> tuple[str, ...]:
    pats = r.strs(value, path)
    for p in pats:
        if not any(fnmatch.fnmatchcase(name, p) for name in ROUTE_NAMES):
            raise r.fail(path, f"{p!r} matches no API route (see `dockward proxy --routes`)")
    return pats


def _images(r: _Reader, value: Any, path: str, base: Path) -> ImagePolicy:
    m = r.mapping(value, path, _IMAGE_KEYS)
    sev = m.get("fail_on_severity")
    try:
        max_sev = Severity.parse(str(sev)) if sev is not None else None
    except ValueError as exc:
        raise r.fail(f"{path}.fail_on_severity", str(exc)) from exc
    key = str(m.get("cosign_key") or "")
    if key:
        key = str((base / key).resolve())
        if not os.path.isfile(key):
            raise r.fail(f"{path}.cosign_key", f"no such file {key}")
    regs = m.get("registries")
    return ImagePolicy(
        registries=r.strs(regs, f"{path}.registries") if regs is not None else None,
        require_digest=r.flag(m.get("require_digest"), f"{path}.require_digest"),
        fail_on_severity=max_sev,
        cosign_key=key,
        insecure_registries=r.strs(m.get("insecure_registries"), f"{path}.insecure_registries"),
        allow_import=r.flag(m.get("allow_import"), f"{path}.allow_import"),
    )


def _admission(r: _Reader, value: Any, path: str, base: Path) -> Admission:
    m = r.mapping(value, path, _ADMISSION_KEYS)
    deny = _rule_ids(r, m["deny"], f"{path}.deny") if "deny" in m else DEFAULT_DENY
    deny = tuple(dict.fromkeys(deny + _rule_ids(r, m.get("also_deny"), f"{path}.also_deny")))
    caps = m.get("capabilities")
    binds = m.get("bind_paths")
    bind_paths: tuple[str, ...] | None = None
    if binds is not None:
        bind_paths = r.strs(binds, f"{path}.bind_paths")
        if not all(p.startswith("/") for p in bind_paths):
            raise r.fail(f"{path}.bind_paths", "entries must be absolute paths")
    from dockward.model.container import normalise_capability

    return Admission(
        deny=deny,
        capabilities=(
            tuple(normalise_capability(c) for c in r.strs(caps, f"{path}.capabilities"))
            if caps is not None
            else None
        ),
        bind_paths=bind_paths,
        allow_unmodelled=r.flag(m.get("allow_unmodelled"), f"{path}.allow_unmodelled"),
        exec_deny=(
            _rule_ids(r, m["exec_deny"], f"{path}.exec_deny")
            if "exec_deny" in m
            else DEFAULT_EXEC_DENY
        ),
        build_network_host=r.flag(m.get("build_network_host"), f"{path}.build_network_host"),
        images=_images(r, m.get("images"), f"{path}.images", base),
    )


# Attributes dockerd 20.10 puts on container events next to the labels (which they override,
# and `name`/`image` override labels): observed over a container's whole life.
EVENT_ATTRIBUTES = frozenset(
    {"name", "image", "execID", "exitCode", "oldName", "signal", "comment", "imageID"}
    | {"imageRef", "height", "width"}
)


def _scope(r: _Reader, value: Any, path: str) -> ContainerScope:
    m = r.mapping(value, path, _SCOPE_KEYS)
    labels: list[tuple[str, str | None]] = []
    for item in r.strs(m.get("labels"), f"{path}.labels"):
        key, sep, val = item.partition("=")
        if not key.strip():
            raise r.fail(f"{path}.labels", f"{item!r}: expected key or key=value")
        if key in EVENT_ATTRIBUTES:
            raise r.fail(
                f"{path}.labels",
                f"{key!r} is also an attribute the engine sets on container events (a scoped "
                "client's events could not be told apart by it): use another label key",
            )
        labels.append((key, val if sep else None))
    names = r.strs(m.get("names"), f"{path}.names")
    if not labels and not names:
        raise r.fail(path, "a scope needs labels or names")
    return ContainerScope(tuple(labels), names)


def _client(r: _Reader, value: Any, path: str, base: Path, anonymous: bool = False) -> ClientRule:
    keys = {"allow", "deny", "admission", "name", "scope"} if anonymous else _CLIENT_KEYS_ALL
    m = r.mapping(value, path, keys)
    sources = []
    for s in r.strs(m.get("source"), f"{path}.source"):
        try:
            sources.append(ipaddress.ip_network(s, strict=False))
        except ValueError as exc:
            raise r.fail(f"{path}.source", f"{s!r} is not an address or CIDR") from exc
    tokens = [t.lower() for t in r.strs(m.get("token_sha256"), f"{path}.token_sha256")]
    for tf in r.strs(m.get("token_file"), f"{path}.token_file"):
        try:
            secret = (base / tf).read_text().strip()
        except OSError as exc:
            raise r.fail(f"{path}.token_file", f"cannot read {tf}: {exc.strerror}") from exc
        if len(secret) < 16:
            raise r.fail(f"{path}.token_file", "token shorter than 16 characters")
        tokens.append(hashlib.sha256(secret.encode()).hexdigest())
    if any(len(t) != 64 or any(c not in "0123456789abcdef" for c in t) for t in tokens):
        raise r.fail(f"{path}.token_sha256", "must be hex SHA-256 digests")
    rule = ClientRule(
        name=str(m.get("name") or ("default" if anonymous else path)),
        uids=r.ints(m.get("uid"), f"{path}.uid"),
        gids=r.ints(m.get("gid"), f"{path}.gid"),
        sources=tuple(sources),
        token_sha256=tuple(tokens),
        allow=_routes(r, m.get("allow"), f"{path}.allow"),
        deny=_routes(r, m.get("deny"), f"{path}.deny"),
        admission=(
            _admission(r, m["admission"], f"{path}.admission", base) if "admission" in m else None
        ),
        scope=_scope(r, m["scope"], f"{path}.scope") if "scope" in m else None,
    )
    if not anonymous and not (rule.uids or rule.gids or rule.sources or rule.token_sha256):
        raise r.fail(path, "a client needs uid, gid, source, token_sha256 or token_file")
    return rule


def parse_policy(data: Any, where: str = "policy", base: Path | None = None) -> Policy:
    r = _Reader(where)
    base = base or Path.cwd()
    m = r.mapping(data, "top level", _TOP_KEYS)
    if m.get("version", 1) != 1:
        raise r.fail("version", "only version 1 is known")
    clients = m.get("clients") or []
    if not isinstance(clients, list):
        raise r.fail("clients", "must be a list")
    max_body = m.get("max_body", DEFAULT_MAX_BODY)
    if not isinstance(max_body, int) or isinstance(max_body, bool) or not 0 < max_body <= 1 << 30:
        raise r.fail("max_body", "must be a byte count between 1 and 1 GiB")
    return Policy(
        clients=tuple(_client(r, c, f"clients[{i}]", base) for i, c in enumerate(clients)),
        default=_client(r, m["default"], "default", base, True) if m.get("default") else None,
        admission=_admission(r, m.get("admission"), "admission", base),
        max_body=max_body,
        source=where,
    )


def read_policy_text(path: str | os.PathLike[str]) -> str:
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read policy {p}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text") from exc


def load_policy(path: str | os.PathLike[str], text: str | None = None) -> Policy:
    """Read (or take `text` as the content of `path`) and validate a policy; any problem is a
    one-line ConfigError."""
    p = Path(path)
    raw = read_policy_text(p) if text is None else text
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}:{at} invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    return parse_policy(data, str(p), p.resolve().parent)
