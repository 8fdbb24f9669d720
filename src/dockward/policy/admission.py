"""Admission: judge a request body (or a spec from CI) against a policy's Admission section.

One path for the proxy and `dockward policy check`: bodies become ContainerSpecs, the shared
container rules run on them, then the policy's parameterised checks (DW-P ids).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from dockward.errors import DockwardError
from dockward.model.container import ContainerSpec, Mount, normalise_capability
from dockward.model.finding import Result, Status
from dockward.policy import checks
from dockward.policy.cosign import SignatureError, load_public_key, verify_image
from dockward.policy.model import Admission, ImagePolicy
from dockward.policy.vulns import NoScanDB, VulnerabilitySource
from dockward.registry import (
    ImageRef,
    InvalidReference,
    RegistryClient,
    is_loopback_host,
    parse_reference,
)
from dockward.rules.container import rules as container_rules
from dockward.rules.groups import members
from dockward.rules.registry import Context, run_check
from dockward.specs.bodies import (
    container_from_create_body,
    container_from_exec_body,
    container_from_service_body,
    container_from_update_body,
    driver_bind_source,
    unmodelled_grants,
)
from dockward.specs.gojson import BodyError, obj

# Rules that judge what an update body can change; the others judge absent fields as unsafe.
# The rules a body can fail, declared on the rules as groups.
UPDATE_RULES = frozenset(members((e.rule for e in container_rules), "update-body"))
BIND_SOURCE_RULES = frozenset(members((e.rule for e in container_rules), "bind-source"))
# Body-judged routes and what they carry.
BODY_ROUTES = frozenset(
    {
        "containers.create",
        "containers.update",
        "exec.create",
        "services.create",
        "services.update",
        "volumes.create",
    }
)
QUERY_ROUTES = frozenset({"images.create", "images.load", "build", "plugins.pull", "commit"})


@dataclass
class ImageGate:
    """The image checks' I/O: registry, local digests from the daemon, the scan DB."""

    vulns: VulnerabilitySource = field(default_factory=NoScanDB)
    registry: RegistryClient | None = None
    insecure: set[str] = field(default_factory=set)  # plain-HTTP registries besides loopback
    local_digest: Callable[[str, ImageRef], str] | None = None  # from the daemon's RepoDigests
    # The id of the image the daemon would run for a reference ("" when not local): what the
    # scan cache knows locally built images by, and exactly what would run.
    local_image: Callable[[str], str] | None = None
    _keys: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)

    def key(self, path: str) -> ec.EllipticCurvePublicKey:
        if path not in self._keys:
            self._keys[path] = load_public_key(path)
        return self._keys[path]

    def client(self, policy: ImagePolicy) -> RegistryClient:
        self.insecure.update(policy.insecure_registries)
        if self.registry is None:
            hosts = self.insecure  # the same set: registries a later policy names join it
            self.registry = RegistryClient(
                insecure=lambda host: host in hosts or is_loopback_host(host), timeout=10.0
            )
        return self.registry

    def digest(self, text: str, ref: ImageRef, policy: ImagePolicy) -> str:
        if ref.digest:
            return ref.digest
        if self.local_digest is not None:
            found = self.local_digest(text, ref)
            if found:
                return found
        return self.client(policy).resolve(ref)


def _under(path: str, root: str) -> bool:
    return path == root or root == "/" or path.startswith(root.rstrip("/") + "/")


def resolve_binds(spec: ContainerSpec) -> ContainerSpec:
    """Bind sources as the host resolves them (symlinks followed), so rules judge the real path."""
    mounts = tuple(
        Mount(m.type, os.path.realpath(m.source), m.target, m.read_only, m.propagation)
        if m.type == "bind" and m.source.startswith("/")
        else m
        for m in spec.mounts
    )
    return spec.with_changes(mounts=mounts)


def judge_container(
    spec: ContainerSpec,
    adm: Admission,
    target: str,
    *,
    rule_ids: tuple[str, ...] | None = None,
    grants: list[str] | None = None,
    gate: ImageGate | None = None,
) -> list[Result]:
    """The container rules the policy names, then caps, binds, unmodelled grants, image."""
    spec = resolve_binds(spec)
    results: list[Result] = []
    for rid in adm.deny if rule_ids is None else rule_ids:
        results += run_check(container_rules.get(rid), spec, Context(), target=target)
    if adm.capabilities is not None:
        allowed = set(adm.capabilities)
        extra = sorted({normalise_capability(c) for c in spec.cap_add} - allowed)
        results.append(
            checks.fail(
                checks.CAPABILITIES, target, f"capabilities not allowed: {', '.join(extra)}"
            )
            if extra
            else checks.passed(checks.CAPABILITIES, target)
        )
    if adm.bind_paths is not None:
        roots = [os.path.realpath(p) for p in adm.bind_paths]
        outside = [
            m.source
            for m in spec.mounts
            if m.type == "bind" and not any(_under(m.source, r) for r in roots)
        ]
        results.append(
            checks.fail(
                checks.BIND_PATHS,
                target,
                f"bind mounts outside {', '.join(adm.bind_paths)}: {', '.join(outside)}",
            )
            if outside
            else checks.passed(checks.BIND_PATHS, target)
        )
    if grants and not adm.allow_unmodelled:
        results.append(checks.fail(checks.UNMODELLED, target, "; ".join(grants)))
    if spec.image and gate is not None:
        results += judge_image(spec.image, adm.images, gate, target)
    return results


def judge_image(text: str, ip: ImagePolicy, gate: ImageGate, target: str = "") -> list[Result]:
    """Registry allowlist, digest pinning, vulnerability threshold, cosign signature."""
    target = target or text
    if not (ip.registries is not None or ip.require_digest or ip.fail_on_severity or ip.cosign_key):
        return []
    try:
        ref = parse_reference(text)
    except InvalidReference as exc:
        return [checks.fail(checks.UNJUDGEABLE, target, str(exc))]
    out: list[Result] = []
    if ip.registries is not None:
        ok = ref.registry in ip.registries
        out.append(
            checks.passed(checks.REGISTRY, target, ref.registry)
            if ok
            else checks.fail(checks.REGISTRY, target, f"registry {ref.registry} is not allowed")
        )
    if ip.require_digest:
        out.append(
            checks.passed(checks.DIGEST, target)
            if ref.digest
            else checks.fail(checks.DIGEST, target, f"{text} is not pinned by digest")
        )
    if not (ip.fail_on_severity is not None or ip.cosign_key):
        return out
    digest, unresolved = "", ""
    try:
        digest = gate.digest(text, ref, ip)
    except DockwardError as exc:
        unresolved = f"cannot resolve the digest of {text}: {exc}"
    if ip.fail_on_severity is not None:
        local_id = gate.local_image(text) if gate.local_image is not None else ""
        scan_key = local_id or digest
        worst = gate.vulns.worst_severity(ref.canonical, scan_key) if scan_key else None
        if not scan_key:
            out.append(checks.fail(checks.VULNERABILITIES, target, unresolved))
        elif worst is None:
            out.append(
                checks.fail(
                    checks.VULNERABILITIES, target, f"{text} ({scan_key}) was never scanned"
                )
            )
        elif worst >= ip.fail_on_severity:
            out.append(
                checks.fail(
                    checks.VULNERABILITIES,
                    target,
                    f"{text} has {worst.label} vulnerabilities (threshold {ip.fail_on_severity.label})",
                )
            )
        else:
            out.append(checks.passed(checks.VULNERABILITIES, target, f"worst: {worst.label}"))
    if ip.cosign_key and not digest:
        out.append(checks.fail(checks.SIGNATURE, target, unresolved))
        return out
    if ip.cosign_key:
        try:
            v = verify_image(gate.client(ip), gate.key(ip.cosign_key), ref, digest)
            out.append(
                checks.passed(checks.SIGNATURE, target, f"{v.signatures} valid signature(s)")
            )
        except (SignatureError, DockwardError) as exc:
            out.append(checks.fail(checks.SIGNATURE, target, f"{ref.name}@{digest}: {exc}"))
    return out


def _first(query: Mapping[str, list[str]], name: str) -> str:
    values = query.get(name) or [""]
    return values[-1]


def judge_request(
    route: str,
    query: Mapping[str, list[str]],
    body: Any,
    adm: Admission,
    gate: ImageGate,
) -> list[Result]:
    """Results for one request; `body` is the decoded JSON (None when the route has none)."""
    target = route
    try:
        match route:
            case "containers.create":
                spec = container_from_create_body(obj(body, "body"), _first(query, "name"))
                return judge_container(
                    spec, adm, spec.image or target, grants=unmodelled_grants(body), gate=gate
                )
            case "containers.update":
                spec = container_from_update_body(obj(body, "body"))
                ids = tuple(r for r in adm.deny if r in UPDATE_RULES)
                return judge_container(spec, adm, target, rule_ids=ids)
            case "exec.create":
                spec = container_from_exec_body(obj(body, "body"))
                return judge_container(spec, adm, target, rule_ids=adm.exec_deny)
            case "services.create" | "services.update":
                spec = container_from_service_body(obj(body, "body"))
                return judge_container(spec, adm, spec.image or target, gate=gate)
            case "volumes.create":
                opts = obj(obj(body, "body").field("DriverOpts"), "DriverOpts")
                src = driver_bind_source(opts)
                if src is None:
                    return []
                spec = ContainerSpec(mounts=(Mount("bind", src, "/volume"),), origin="volume")
                ids = tuple(r for r in adm.deny if r in BIND_SOURCE_RULES)
                return judge_container(spec, adm, target, rule_ids=ids)
            case "images.create":
                if _first(query, "fromSrc"):
                    return [_import(adm)]
                image = _first(query, "fromImage")
                tag = _first(query, "tag")
                if tag:
                    image += ("@" if tag.startswith("sha256:") else ":") + tag
                return judge_image(image, adm.images, gate)
            case "images.load":
                return [_import(adm)]
            case "build":
                net = _first(query, "networkmode")
                if net == "host" and not adm.build_network_host:
                    return [checks.fail(checks.BUILD, target, "build with --network host")]
                return [checks.passed(checks.BUILD, target)]
            case _:
                return []
    except BodyError as exc:
        return [checks.fail(checks.UNJUDGEABLE, target, str(exc))]


def _import(adm: Admission) -> Result:
    if adm.images.allow_import:
        return checks.passed(checks.IMPORT, "images.import")
    return checks.fail(checks.IMPORT, "images.import", "image import/load is not allowed")


def refusals(results: list[Result]) -> list[Result]:
    """Failed or crashed checks: any one refuses the request (fail closed)."""
    return [r for r in results if r.status in (Status.FAIL, Status.ERROR)]
