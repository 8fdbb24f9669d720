"""Learning mode: record what each client does through the proxy, write the policy that allows
exactly that (commented), and the session itself, so `dockward policy check --session` can
prove the policy accepts it.

The policy is rewritten (atomically) whenever a client does something new; the session file
(`FILE.session.jsonl`) gets one line per distinct request: caller, method, target and, for
routes whose body is judged, the body.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dockward.errors import ConfigError
from dockward.policy.admission import BODY_ROUTES, ImageGate, judge_request, refusals
from dockward.policy.checks import UNMODELLED
from dockward.policy.model import DEFAULT_DENY, Admission, ImagePolicy
from dockward.policy.routes import Match
from dockward.proxy.authz import Caller, Verdict
from dockward.proxy.paths import Target
from dockward.specs.bodies import container_from_create_body
from dockward.specs.gojson import BodyError, loads, obj

# What the learning proxy judges bodies with while forwarding everything: nothing refuses.
PERMISSIVE = Admission(
    deny=(),
    exec_deny=(),
    allow_unmodelled=True,
    build_network_host=True,
    images=ImagePolicy(allow_import=True),
)


class LearnAuthorizer:
    """Forward everything, reading bodies whole so their shape can be learned."""

    max_body = 16 * 1024 * 1024

    def decide(self, caller: Caller, method: str, target: Target, match: Match | None) -> Verdict:
        judge = match is not None and match.route.name in BODY_ROUTES
        return Verdict(True, "learn", "learn", "", judge, PERMISSIVE)


@dataclass
class _Seen:
    key: tuple[str, str]  # ("uid", "0"), ("source", "127.0.0.1"), ("token", <sha256>)
    programs: set[str] = field(default_factory=set)
    routes: dict[str, int] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    relaxed: dict[str, str] = field(default_factory=dict)  # rule id -> where it was seen
    caps: set[str] = field(default_factory=set)
    binds: set[str] = field(default_factory=set)
    creates: int = 0
    unmodelled: bool = False

    @property
    def name(self) -> str:
        kind, value = self.key
        if kind == "token":
            return f"token-{value[:8]}"
        return f"{kind}-{value.replace('.', '-').replace(':', '-')}"


def _program(pid: int | None) -> str:
    if not pid:
        return ""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class Learner:
    def __init__(self, path: str, gate: ImageGate | None = None) -> None:
        self.path = Path(path)
        self.session_path = Path(f"{path}.session.jsonl")
        self.gate = gate or ImageGate()
        self.clients: dict[tuple[str, str], _Seen] = {}
        self.requests = 0
        self.lines: set[str] = set()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.session_path.write_text("")
        except OSError as exc:
            raise ConfigError(f"--learn {path}: {exc.strerror}") from exc

    def _client(self, caller: Caller) -> _Seen:
        if caller.token_sha256:
            key = ("token", caller.token_sha256)
        elif caller.uid is not None:
            key = ("uid", str(caller.uid))
        else:
            key = ("source", caller.address)
        seen = self.clients.get(key)
        if seen is None:
            seen = self.clients[key] = _Seen(key)
        return seen

    def observe(
        self, caller: Caller, method: str, target: Target, route: str, body: bytes | None
    ) -> None:
        """One forwarded request; the files are rewritten when it taught something new."""
        self.requests += 1
        seen = self._client(caller)
        program = _program(caller.pid)
        new = bool(program) and program not in seen.programs
        if program:
            seen.programs.add(program)
        if route:
            new = new or route not in seen.routes
            seen.routes[route] = seen.routes.get(route, 0) + 1
        else:
            what = f"{method} {target.path}"
            new = new or what not in seen.unknown
            seen.unknown.add(what)
        if body is not None and route in BODY_ROUTES:
            new = self._shape(seen, route, target, body) or new
        line = json.dumps(
            {
                "client": {
                    "uid": caller.uid,
                    "gid": caller.gid,
                    "addr": caller.address,
                    "token_sha256": caller.token_sha256,
                },
                "method": method,
                "target": target.raw,
                "body": body.decode("utf-8", "replace") if body is not None else None,
            },
            sort_keys=True,
        )
        if line not in self.lines:
            self.lines.add(line)
            with contextlib.suppress(OSError), self.session_path.open("a") as f:
                f.write(line + "\n")
        if new:
            self.write()

    def _shape(self, seen: _Seen, route: str, target: Target, body: bytes) -> bool:
        """What a body needs from the admission rules; True when that is more than before."""
        before = (len(seen.relaxed), len(seen.caps), len(seen.binds), seen.unmodelled)
        try:
            doc = loads(body)
        except BodyError:
            return False
        strict = Admission(capabilities=None, bind_paths=None)
        for r in refusals(judge_request(route, target.query, doc, strict, self.gate)):
            if r.rule.id == UNMODELLED.id:
                seen.unmodelled = True
            else:
                seen.relaxed.setdefault(r.rule.id, f"{route} {r.target}"[:80])
        if route == "containers.create":
            seen.creates += 1
            try:
                spec = container_from_create_body(obj(doc, "body"), target.param("name"))
            except (BodyError, ValueError):
                return True
            seen.caps.update(spec.cap_add)
            seen.binds.update(m.source for m in spec.mounts if m.type == "bind" and m.source)
        return before != (len(seen.relaxed), len(seen.caps), len(seen.binds), seen.unmodelled)

    def policy_text(self) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        out = [
            f"# Learned by `dockward proxy --learn` from {self.requests} requests ({stamp}).",
            "# Each client may call exactly the routes it was seen calling; creates are judged",
            "# by the default admission rules, relaxed only where a recorded body needed it.",
            "# Review before use: what was observed is not necessarily what should be allowed.",
            "version: 1",
            "clients:",
        ]
        for seen in sorted(self.clients.values(), key=lambda s: s.key):
            kind, value = seen.key
            out.append(f"  - name: {seen.name}")
            if seen.programs:
                out.append(f"    # seen: {', '.join(sorted(seen.programs))}")
            if kind == "uid":
                out.append(f"    uid: [{value}]")
            elif kind == "token":
                out.append(f"    token_sha256: [{value}]")
            else:
                out.append(f"    source: [{json.dumps(value)}]")
            out.append("    allow:")
            for route, count in sorted(seen.routes.items()):
                out.append(f"      - {route:28} # {count} request{'s' if count > 1 else ''}")
            if not seen.routes:
                out[-1] = "    allow: []"
            for what in sorted(seen.unknown):
                out.append(f"    # not allowed by name (no known route): {what}")
            if seen.creates or seen.relaxed or seen.unmodelled:
                out += self._admission(seen)
        return "\n".join(out) + "\n"

    def _admission(self, seen: _Seen) -> list[str]:
        deny = [r for r in DEFAULT_DENY if r not in seen.relaxed]
        out = ["    admission:"]
        for rule, where in sorted(seen.relaxed.items()):
            out.append(f"      # relaxed: {rule} (a recorded request needed it: {where})")
        out.append(f"      deny: [{', '.join(deny)}]")
        out.append(f"      capabilities: [{', '.join(sorted(seen.caps))}]")
        out.append(f"      bind_paths: [{', '.join(json.dumps(b) for b in sorted(seen.binds))}]")
        if seen.unmodelled:
            out.append("      allow_unmodelled: true   # a recorded body used such fields")
        return out

    def write(self) -> None:
        """Replace the policy file atomically (a reader never sees half of it)."""
        text = self.policy_text()
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
