"""The decision: who is calling, which route, may they, and does the body pass the policy.

Nothing here touches a socket except through the client connection's body reader; the session
(`dockward.proxy.server`) forwards what is allowed and answers what is not.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from dockward.model.finding import Result
from dockward.policy.admission import QUERY_ROUTES, ImageGate, judge_request, refusals
from dockward.policy.checks import UNJUDGEABLE
from dockward.policy.model import ContainerScope
from dockward.policy.routes import Match, match_request
from dockward.proxy.authz import Authorizer, Caller, Verdict, token_digest
from dockward.proxy.framing import ClientConn
from dockward.proxy.paths import PathError, Target, parse_target
from dockward.proxy.scope import (
    MAX_CONNECT_BODY,
    Ref,
    ResolvedScope,
    ScopeRefusal,
    connect_refs,
    create_refs,
    create_volumes,
    dumps,
    info_in_scope,
    pin_path,
    pin_query,
    prune_target,
    summary_in_scope,
    volume_users,
)
from dockward.specs.gojson import BodyError, GoObject, loads


@dataclass(slots=True)
class Decision:
    """What to do with one request: forward it (with the judged body, if one was read), or
    answer `status` with `message`. `record` is its decision-log line, filled in as it goes."""

    allowed: bool
    record: dict[str, Any]
    started: float
    status: int = 0
    message: str = ""
    target: Target | None = None
    match: Match | None = None
    body: bytes | None = None  # read whole and judged; None: streamed through as it comes
    extra: dict[str, Any] = field(default_factory=dict)
    scope: ContainerScope | None = None  # answers to filter (lists, events) for this client

    @property
    def route(self) -> str:
        return self.match.route.name if self.match is not None else ""


def caller_of(peer: Caller, headers: list[tuple[bytes, bytes]]) -> Caller:
    """The peer, plus the digest of a bearer token it presents (never the token itself)."""
    auth = next((v for k, v in headers if k == b"authorization"), b"")
    if not auth:
        return peer
    digest = token_digest(auth.decode("latin-1"))
    return Caller(peer.uid, peer.gid, peer.pid, peer.address, digest)


# What the daemon says about one object (GET .../json), or None when it has no such object.
Lookup = Callable[[str], Awaitable[Any]]


async def decide(
    authz: Authorizer,
    gate: ImageGate,
    conn: ClientConn,
    caller: Caller,
    method: str,
    raw_target: str,
    lookup: Lookup | None = None,
) -> Decision:
    started = time.perf_counter()
    record: dict[str, Any] = {"client": caller.describe(), "method": method}
    d = Decision(False, record, started)
    try:
        target = parse_target(raw_target)
    except PathError as exc:
        record.update(path=raw_target.split("?")[0][:200], decision="deny", rule="path")
        d.status, d.message = 400, f"refused request path: {exc}"
        return d
    d.target = target
    record["path"] = target.path
    d.match = match = match_request(method, target.path, target.query)
    record["route"] = d.route
    verdict = authz.decide(caller, method, target, match)
    record["client_name"] = verdict.client
    if not verdict.allowed:
        record.update(decision="deny", rule=verdict.rule)
        d.status, d.message = 403, verdict.reason
        return d
    if verdict.judge_body:
        route = d.route
        if route not in QUERY_ROUTES:
            # JSON bodies are read whole (bounded) and judged; build contexts and image
            # tarballs are judged by their query and streamed through.
            body = await conn.read_body(authz.max_body)
            if body is None:
                record.update(decision="deny", rule=UNJUDGEABLE.id)
                d.status, d.message = 413, f"request body larger than {authz.max_body} bytes"
                return d
            d.body = body
        bad = refusals(await judge(verdict, gate, target, route, d.body))
        if bad:
            record.update(
                decision="deny",
                rule=",".join(r.rule.id for r in bad),
                reason="; ".join(r.message for r in bad)[:2000],
            )
            msg = "; ".join(f"{r.rule.id} {r.message}" for r in bad)
            d.status, d.message = 403, f"refused by dockward policy: {msg}"
            return d
    if verdict.scope is not None:
        problem = await _out_of_scope(verdict.scope, d, conn, authz.max_body, lookup)
        if problem is not None:
            status, message = problem
            record.update(decision="deny", rule="scope")
            d.status, d.message = status, message
            return d
    record.update(decision="allow", rule=verdict.rule)
    d.allowed = True
    return d


_EXEC_ROUTES = frozenset({"exec.start", "exec.inspect", "exec.resize"})
_NETWORK_BODIES = frozenset({"networks.connect", "networks.disconnect"})


async def _out_of_scope(
    scope: ContainerScope, d: Decision, conn: ClientConn, max_body: int, lookup: Lookup | None
) -> tuple[int, str] | None:
    """(status, message) when a scoped client's request reaches past its containers: others
    answer 404 as if absent, creates must carry the scope's labels and a name it allows. What
    passes names its containers by full id (see `dockward.proxy.scope`)."""
    try:
        await _scope_request(scope, d, conn, max_body, lookup)
    except ScopeRefusal as exc:
        return exc.status, exc.message
    return None


async def _scope_request(
    scope: ContainerScope, d: Decision, conn: ClientConn, max_body: int, lookup: Lookup | None
) -> None:
    route, match, target = d.route, d.match, d.target
    assert target is not None
    if route == "networks.prune":
        # Networks are no part of a container scope, and a stopped container holds no endpoint:
        # prune would remove the networks of other clients' stopped containers.
        raise ScopeRefusal(
            403,
            "networks.prune removes networks that containers outside this client's scope "
            f"may need ({scope.describe()})",
        )
    if route in ("containers.list", "events", "system.df"):
        d.scope = scope  # the answer is filtered on its way back
        return
    if route == "networks.inspect":
        # endpoints are listed by container id: the ids of the scope's containers, now
        listed = await lookup(_scope_list(scope)) if lookup is not None else None
        ids = [c.get("Id") for c in listed or () if summary_in_scope(scope, c)]
        d.scope = ResolvedScope(scope.labels, scope.names, frozenset(map(str, ids)))
        return
    if route == "containers.prune":
        d.target = prune_target(scope, target)
        return
    if route == "containers.create":
        doc = _create_in_scope(scope, target, d.body)
        await _volumes_in_scope(scope, create_volumes(doc), lookup)
        refs = create_refs(doc)
        if refs:
            await _pin_refs(scope, refs, lookup)
            d.body = dumps(doc)
        return
    if route in _NETWORK_BODIES:
        body = await conn.read_body(min(max_body, MAX_CONNECT_BODY))
        if body is None:
            limit = min(max_body, MAX_CONNECT_BODY)
            raise ScopeRefusal(413, f"{route}: request body larger than {limit} bytes")
        doc, refs = connect_refs(route, body)
        await _pin_refs(scope, refs, lookup)
        d.body = dumps(doc)
        return
    if route in _EXEC_ROUTES and match is not None:
        exec_id = match.params.get("id", "")
        info = await lookup(f"/exec/{quote(exec_id, safe='')}/json") if lookup else None
        container = info.get("ContainerID") if isinstance(info, dict) else None
        if not container or not info_in_scope(scope, await _container(lookup, str(container))):
            raise ScopeRefusal(404, f"No such exec instance: {exec_id}")
        return
    if route == "build":
        # the legacy builder runs each step with this network mode: `container:<x>` joins <x>
        mode = target.query.get("networkmode", [""])[0]
        if mode.startswith("container:"):
            ident = mode.split(":", 1)[1]
            try:
                full_id = await _resolve(scope, ident, lookup)
            except ScopeRefusal as exc:
                raise ScopeRefusal(
                    403, f"No such container in this client's scope: {ident} (networkmode)"
                ) from exc
            d.target = pin_query(target, "networkmode", f"container:{full_id}")
        return
    if route == "commit":
        ident = target.query.get("container", [""])[0]
        if ident:
            full_id = await _resolve(scope, ident, lookup)
            d.target = pin_query(target, "container", full_id)
            d.record["container"] = full_id
        return
    if match is not None and target.path.startswith("/containers/") and "id" in match.params:
        ident = match.params["id"]
        full_id = await _resolve(scope, ident, lookup)
        d.target = pin_path(target, ident, full_id)
        d.record["container"] = full_id  # what the daemon acts on, whatever the path said


async def _volumes_in_scope(
    scope: ContainerScope, volumes: list[tuple[str, str]], lookup: Lookup | None
) -> None:
    """A named volume that a container outside the scope mounts is that container's data (what
    `--volumes-from` would reach): a scoped create may not mount it."""
    if not volumes:
        return
    listed = await lookup("/containers/json?all=1") if lookup is not None else None
    if not isinstance(listed, list):
        raise ScopeRefusal(403, "cannot list the containers that mount the named volumes")
    for name, where in volumes:
        if not all(summary_in_scope(scope, c) for c in volume_users(listed, name)):
            raise ScopeRefusal(
                403,
                f"volume {name} ({where}) is mounted by a container outside this client's "
                f"scope ({scope.describe()})",
            )


def _scope_list(scope: ContainerScope) -> str:
    """The container list the daemon can narrow to the scope's labels (names are globs)."""
    labels = [k if v is None else f"{k}={v}" for k, v in scope.labels]
    query = {"all": "1", "filters": json.dumps({"label": labels})} if labels else {"all": "1"}
    return f"/containers/json?{urlencode(query)}"


async def _resolve(scope: ContainerScope, ident: str, lookup: Lookup | None) -> str:
    """The full id of the container `ident` names, when it is in the scope; else 404."""
    info = await _container(lookup, ident) if ident else None
    full_id = info.get("Id") if isinstance(info, dict) else None
    if not isinstance(full_id, str) or not info_in_scope(scope, info):
        raise ScopeRefusal(404, f"No such container: {ident}")
    return full_id


async def _pin_refs(scope: ContainerScope, refs: list[Ref], lookup: Lookup | None) -> None:
    """Containers a body names: each pinned to its full id, or the request refused. A body's
    reference answers 403 whether the container is absent or outside the scope (the docker CLI
    takes a create's 404 for a missing image and pulls), and says which field named it."""
    for ref in refs:
        try:
            ref.put(await _resolve(scope, ref.ident, lookup))
        except ScopeRefusal as exc:
            if not ref.where:
                raise
            raise ScopeRefusal(
                403, f"No such container in this client's scope: {ref.ident} ({ref.where})"
            ) from exc


async def _container(lookup: Lookup | None, ident: str) -> Any:
    if lookup is None:
        return None
    return await lookup(f"/containers/{quote(ident, safe='')}/json")


def _create_in_scope(scope: ContainerScope, target: Target, body: bytes | None) -> Any:
    """The create body (parsed), when it carries the scope; else a refusal."""
    try:
        doc = loads(body or b"")
        labels = doc.field("Labels") if isinstance(doc, GoObject) else None
    except BodyError as exc:
        raise ScopeRefusal(
            403, f"refused by dockward policy: cannot read the create body: {exc}"
        ) from exc
    name = target.query.get("name", [""])[0]
    if scope.names and not name:
        raise ScopeRefusal(
            403, f"a container created by this client needs a name ({scope.describe()})"
        )
    if not scope.contains(name, labels if isinstance(labels, dict) else {}):
        raise ScopeRefusal(
            403, f"a container created by this client must be in its scope ({scope.describe()})"
        )
    return doc


async def judge(
    verdict: Verdict, gate: ImageGate, target: Target, route: str, body: bytes | None
) -> list[Result]:
    """The admission rules, off the event loop (image checks may reach a registry)."""
    assert verdict.admission is not None
    adm = verdict.admission

    def work() -> list[Result]:
        if body is None:
            return judge_request(route, target.query, None, adm, gate)
        try:
            doc = loads(body)
        except BodyError as exc:
            from dockward.policy import checks

            return [checks.fail(checks.UNJUDGEABLE, route, str(exc))]
        return judge_request(route, target.query, doc, adm, gate)

    return await asyncio.get_running_loop().run_in_executor(None, work)
