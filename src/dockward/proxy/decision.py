"""The decision: who is calling, which route, may they, and does the body pass the policy.

Nothing here touches a socket except through the client connection's body reader; the session
(`dockward.proxy.server`) forwards what is allowed and answers what is not.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from dockward.model.finding import Result
from dockward.policy.admission import QUERY_ROUTES, ImageGate, judge_request, refusals
from dockward.proxy.authz import Authorizer, Caller, Verdict, token_digest
from dockward.proxy.framing import ClientConn
from dockward.proxy.paths import PathError, Target, parse_target
from dockward.proxy.routes import Match, match_request
from dockward.specs.gojson import BodyError, loads


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


async def decide(
    authz: Authorizer,
    gate: ImageGate,
    conn: ClientConn,
    caller: Caller,
    method: str,
    raw_target: str,
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
                record.update(decision="deny", rule="DW-P001")
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
    record.update(decision="allow", rule=verdict.rule)
    d.allowed = True
    return d


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
