"""A scoped client's containers: what it may name, and the answers cut down to them.

The decision (`dockward.proxy.decision`) resolves every container a scoped request names, in its
path, its query or its body, through the daemon, and pins what it resolved to the container's
full id before forwarding: the daemon resolves a name or an id prefix again when it acts (for
`NetworkMode: container:<x>` not before the container starts), and by then the name may have
moved to a container outside the scope. The relay passes answers through the filters here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from dockward.errors import DockwardError
from dockward.policy.model import ContainerScope
from dockward.proxy.paths import Target
from dockward.specs.gojson import BodyError, GoObject, loads

MAX_CONNECT_BODY = 64 * 1024  # networks.connect/disconnect: a container and its endpoint settings


class ScopeRefusal(DockwardError):
    """A scoped request refused: `status` (404 as if absent, 403, 400) and the client's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def info_in_scope(scope: ContainerScope, info: Any) -> bool:
    """`info` is the daemon's inspect answer for one container (None: no such container)."""
    if not isinstance(info, dict):
        return False
    config = info.get("Config")
    labels = config.get("Labels") if isinstance(config, dict) else None
    return scope.contains(str(info.get("Name") or ""), labels)


def summary_in_scope(scope: ContainerScope, item: Any) -> bool:
    """`item` is one entry of a container list (`/containers/json`, `/system/df`)."""
    if not isinstance(item, dict):
        return False
    names = item.get("Names")
    # a linked container is also listed as /<parent>/<alias>: its own name has no inner '/'
    own = [str(n) for n in names or () if "/" not in str(n).lstrip("/")]
    return scope.contains(own[0] if own else "", item.get("Labels"))


def event_in_scope(scope: ContainerScope, line: bytes) -> bool:
    """A scoped client sees the events of its own containers only."""
    try:
        ev = json.loads(line)
    except ValueError:
        return False
    actor = ev.get("Actor") if isinstance(ev, dict) else None
    attrs = actor.get("Attributes") if isinstance(actor, dict) else None
    if ev.get("Type") != "container" or not isinstance(attrs, dict):
        return False
    return scope.contains(str(attrs.get("name") or ""), attrs)


class AnswerError(DockwardError):
    """The daemon's answer is not the JSON its route answers with (the connection is dropped)."""


@dataclass(frozen=True, slots=True)
class ResolvedScope(ContainerScope):
    """A scope with the ids of its containers at the time of one request, for answers that
    name containers by id only (a network's endpoints)."""

    ids: frozenset[str] = frozenset()


def answer_in_scope(route: str, scope: ContainerScope, body: bytes) -> bytes:
    """A whole 200 answer of `containers.list`, `system.df` or `networks.inspect`, cut down to
    the scope."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise AnswerError(f"{route}: answer is not JSON") from exc
    if route == "networks.inspect":
        if not isinstance(doc, dict):
            raise AnswerError(f"{route}: answer is not an object")
        ids = scope.ids if isinstance(scope, ResolvedScope) else frozenset()
        endpoints = doc.get("Containers")
        out: Any = doc
        if isinstance(endpoints, dict):
            out = {**doc, "Containers": {k: v for k, v in endpoints.items() if k in ids}}
    elif route == "system.df":
        out = df_in_scope(scope, doc)
    elif isinstance(doc, list):
        out = [c for c in doc if summary_in_scope(scope, c)]
    else:
        raise AnswerError(f"{route}: answer is not a list")
    return json.dumps(out, separators=(",", ":")).encode() + b"\n"


def df_in_scope(scope: ContainerScope, doc: Any) -> dict[str, Any]:
    """`GET /system/df` for a scoped client: its containers; the volumes its containers mount
    (or, for a label scope, that carry the scope's labels); every image and the build cache (not
    containers), with each image's and volume's count of containers counting its own only."""
    if not isinstance(doc, dict):
        raise AnswerError("system.df: answer is not an object")
    mine = [c for c in doc.get("Containers") or [] if summary_in_scope(scope, c)]
    out = dict(doc)
    out["Containers"] = mine
    by_image: dict[str, int] = {}
    mounted: dict[str, int] = {}
    for c in mine:
        by_image[str(c.get("ImageID"))] = by_image.get(str(c.get("ImageID")), 0) + 1
        for m in c.get("Mounts") or []:
            if isinstance(m, dict) and m.get("Type") == "volume" and m.get("Name"):
                mounted[str(m["Name"])] = mounted.get(str(m["Name"]), 0) + 1
    images = []
    for image in doc.get("Images") or []:
        count = image.get("Containers") if isinstance(image, dict) else None
        if isinstance(count, int) and count >= 0:  # -1: the daemon did not count
            image = {**image, "Containers": by_image.get(str(image.get("Id")), 0)}
        images.append(image)
    if "Images" in doc:
        out["Images"] = images
    volumes = []
    for vol in doc.get("Volumes") or []:
        if not isinstance(vol, dict):
            continue
        name = str(vol.get("Name") or "")
        labelled = bool(scope.labels) and ContainerScope(scope.labels).contains(
            "", vol.get("Labels")
        )
        if name not in mounted and not labelled:
            continue
        usage = vol.get("UsageData")
        refs = usage.get("RefCount") if isinstance(usage, dict) else None
        if isinstance(usage, dict) and isinstance(refs, int) and refs >= 0:  # -1: not counted
            vol = {**vol, "UsageData": {**usage, "RefCount": mounted.get(name, 0)}}
        volumes.append(vol)
    if "Volumes" in doc:
        out["Volumes"] = volumes
    return out


def prune_target(scope: ContainerScope, target: Target) -> Target:
    """`POST /containers/prune` limited to the scope by the daemon's own label filter.

    dockerd prunes a container only when every `label` filter matches it (`key` present, or
    `key=value` equal): exactly the scope's labels. A name glob has no prune filter, so a scope
    with names is refused. The client's own filters (they only narrow) are kept."""
    if scope.names:
        raise ScopeRefusal(
            403,
            "containers.prune: the daemon's prune filters cannot select containers by name, "
            f"so a client scoped by name cannot prune ({scope.describe()})",
        )
    values = target.query.get("filters", [])
    if len(values) > 1:
        raise ScopeRefusal(400, "containers.prune: 'filters' given more than once")
    fields = _prune_filters(values[0] if values else "")
    labels = fields.setdefault("label", {})
    for key, value in scope.labels:
        labels[key if value is None else f"{key}={value}"] = True
    query = urlencode({"filters": json.dumps(fields, separators=(",", ":"))})
    prefix = f"/v{target.version}" if target.version else ""
    return Target(f"{prefix}{target.path}?{query}", target.path, target.version, {"filters": [""]})


def _prune_filters(raw: str) -> dict[str, dict[str, bool]]:
    """The client's filters as dockerd's filters.FromJSON reads them: {key: {value: bool}},
    or the legacy {key: [value]}; every value counts, whatever its bool."""
    if not raw:
        return {}
    bad = ScopeRefusal(400, "containers.prune: invalid filters (expected a JSON object)")
    try:
        doc = loads(raw.encode())
    except BodyError as exc:
        raise ScopeRefusal(400, f"containers.prune: invalid filters: {exc}") from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise bad
    if all(
        isinstance(v, dict) and all(isinstance(b, bool) for b in v.values()) for v in doc.values()
    ):
        return {k: dict.fromkeys(v, True) for k, v in doc.items()}
    if all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in doc.values()):
        return {k: dict.fromkeys(v, True) for k, v in doc.items()}
    raise bad


def pin_path(target: Target, ident: str, full_id: str) -> Target:
    """`/containers/{ident}/...` as `/containers/{full id}/...`."""
    head = "/containers/"
    assert target.path.startswith(head + ident)
    path = head + full_id + target.path[len(head) + len(ident) :]
    _, sep, query = target.raw.partition("?")
    prefix = f"/v{target.version}" if target.version else ""
    return Target(f"{prefix}{path}{sep}{query}", path, target.version, target.query)


def pin_query(target: Target, name: str, value: str) -> Target:
    """`?{name}=<ident>` as `?{name}=<value>` (the full id, or `container:<full id>`); the
    query is re-encoded from what was judged."""
    query = {**target.query, name: [value]}
    prefix = f"/v{target.version}" if target.version else ""
    return Target(
        f"{prefix}{target.path}?{urlencode(query, doseq=True)}", target.path, target.version, query
    )


# HostConfig fields that join another container's namespace or cgroup as `container:<x>`.
_MODES = ("NetworkMode", "PidMode", "IpcMode", "UTSMode", "UsernsMode", "Cgroup", "CgroupnsMode")


@dataclass(slots=True)
class Ref:
    """One container named in a body, and how to write it back pinned."""

    ident: str
    put: Callable[[str], None]  # store the reference as the container's full id
    where: str  # the field, for the refusal


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ScopeRefusal(400, f"{where} must be a string")
    return value


def _link(owner: list[Any], i: int, where: str) -> Ref:
    """dockerd's opts.ParseLink: `name`, `name:alias`, or `/name:/parent/alias`."""
    value = _text(owner[i], where)
    parts = value.split(":")
    if not value or len(parts) > 2:
        raise ScopeRefusal(400, f"{where}: bad link {value!r}")
    if len(parts) == 1:
        name, alias = value, value
    elif parts[0].startswith("/"):
        name, alias = parts[0][1:], parts[1].rsplit("/", 1)[-1]
    else:
        name, alias = parts

    def put(full: str) -> None:
        owner[i] = f"{full}:{alias}"

    return Ref(name, put, where)


def _links(owner: Any, key: str, where: str) -> list[Ref]:
    if not isinstance(owner, GoObject):
        return []
    links = owner.field(key)
    if links is None:
        return []
    if not isinstance(links, list):
        raise ScopeRefusal(400, f"{where} must be a list of strings")
    return [_link(links, i, f"{where}[{i}]") for i in range(len(links))]


def _set(obj: GoObject, key: str) -> str:
    """The key under which Go reads field `key` from `obj` (its first spelling)."""
    return next(k for k in obj if k.casefold() == key.casefold())


def _endpoint_links(networking: Any, where: str) -> list[Ref]:
    if not isinstance(networking, GoObject):
        return []
    endpoints = networking.field("EndpointsConfig")
    if not isinstance(endpoints, dict):
        return []
    refs: list[Ref] = []
    for net, settings in endpoints.items():
        refs += _links(settings, "Links", f"{where}.EndpointsConfig.{net}.Links")
    return refs


def create_refs(doc: Any) -> list[Ref]:
    """The other containers a create body reaches: namespaces and cgroup joined
    (`container:<x>`), `VolumesFrom`, and legacy `Links` (which copy the linked container's
    environment into the new one), in HostConfig and in each endpoint."""
    if not isinstance(doc, GoObject):
        return []
    try:
        refs: list[Ref] = []
        hc = doc.field("HostConfig")
        if isinstance(hc, GoObject):
            for mode in _MODES:
                value = hc.field(mode)
                if isinstance(value, str) and value.startswith("container:"):
                    refs.append(_mode_ref(hc, mode, value))
            volumes_from = hc.field("VolumesFrom")
            if volumes_from is not None:
                if not isinstance(volumes_from, list):
                    raise ScopeRefusal(400, "HostConfig.VolumesFrom must be a list of strings")
                for i in range(len(volumes_from)):
                    refs.append(_volumes_from(volumes_from, i))
            refs += _links(hc, "Links", "HostConfig.Links")
        refs += _endpoint_links(doc.field("NetworkingConfig"), "NetworkingConfig")
    except BodyError as exc:
        raise ScopeRefusal(400, f"cannot read the create body: {exc}") from exc
    return refs


def create_volumes(doc: Any) -> list[tuple[str, str]]:
    """The named volumes a create body mounts, as (name, field): `HostConfig.Binds` entries
    `name:/path[:opts]` (a source not starting with '/' names a volume, as dockerd's Linux
    parser reads it) and `HostConfig.Mounts` of type volume with a source."""
    if not isinstance(doc, GoObject):
        return []
    out: list[tuple[str, str]] = []
    try:
        hc = doc.field("HostConfig")
        if not isinstance(hc, GoObject):
            return []
        binds = hc.field("Binds")
        for i, bind in enumerate(binds if isinstance(binds, list) else ()):
            parts = bind.split(":") if isinstance(bind, str) else []
            if len(parts) >= 2 and parts[0] and not parts[0].startswith("/"):
                out.append((parts[0], f"HostConfig.Binds[{i}]"))
        mounts = hc.field("Mounts")
        for i, mount in enumerate(mounts if isinstance(mounts, list) else ()):
            if not isinstance(mount, GoObject):
                continue
            kind, source = mount.field("Type"), mount.field("Source")
            if kind == "volume" and isinstance(source, str) and source:
                out.append((source, f"HostConfig.Mounts[{i}]"))
    except BodyError as exc:
        raise ScopeRefusal(400, f"cannot read the create body: {exc}") from exc
    return out


def volume_users(listed: Any, volume: str) -> list[Any]:
    """The containers of a full container list (`/containers/json?all=1`) mounting `volume`."""
    items = listed if isinstance(listed, list) else []
    return [
        c
        for c in items
        if isinstance(c, dict)
        and any(
            isinstance(m, dict) and m.get("Type") == "volume" and m.get("Name") == volume
            for m in c.get("Mounts") or ()
        )
    ]


def _mode_ref(hc: GoObject, mode: str, value: str) -> Ref:
    key = _set(hc, mode)

    def put(full: str) -> None:
        hc[key] = f"container:{full}"

    return Ref(value.split(":", 1)[1], put, f"HostConfig.{mode}")


def _volumes_from(owner: list[Any], i: int) -> Ref:
    """dockerd's ParseVolumesFrom: `container[:ro|:rw]`."""
    value = _text(owner[i], f"HostConfig.VolumesFrom[{i}]")
    ident, sep, mode = value.partition(":")

    def put(full: str) -> None:
        owner[i] = f"{full}{sep}{mode}"

    return Ref(ident, put, f"HostConfig.VolumesFrom[{i}]")


def connect_refs(route: str, body: bytes) -> tuple[Any, list[Ref]]:
    """networks.connect/disconnect: the body (`{"Container": <name or id>, ...}`) and the
    containers it names: `Container`, and on connect the endpoint's legacy `Links`."""
    try:
        doc = loads(body)
    except BodyError as exc:
        raise ScopeRefusal(400, f"{route}: cannot read the body: {exc}") from exc
    if not isinstance(doc, GoObject):
        raise ScopeRefusal(400, f"{route}: the body must be a JSON object naming a Container")
    try:
        container = doc.field("Container")
        if not isinstance(container, str) or not container:
            raise ScopeRefusal(400, f"{route}: the body must name a Container (a name or an id)")
        key = _set(doc, "Container")

        def put(full: str) -> None:
            doc[key] = full

        refs = [Ref(container, put, "")]
        if route == "networks.connect":
            refs += _links(doc.field("EndpointConfig"), "Links", "EndpointConfig.Links")
    except BodyError as exc:
        raise ScopeRefusal(400, f"{route}: cannot read the body: {exc}") from exc
    return doc, refs


def dumps(doc: Any) -> bytes:
    """A body whose references were pinned, as the daemon will read it."""
    # \u escapes keep what UTF-8 cannot carry (a lone surrogate, which Go reads as U+FFFD)
    return json.dumps(doc, separators=(",", ":")).encode()
