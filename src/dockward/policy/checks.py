"""The policy's own checks (DW-P ids): parameterised rules the container rules cannot express."""

from __future__ import annotations

from dockward.model.finding import Result, Rule, Severity, Status

_H, _C = Severity.HIGH, Severity.CRITICAL


def _rule(id: str, title: str, sev: Severity, remediation: str, doc: str) -> Rule:
    return Rule(id=id, title=title, severity=sev, kind="policy", remediation=remediation, doc=doc)


UNJUDGEABLE = _rule(
    "DW-P001",
    "Request body can be judged",
    _C,
    "Send one well-formed JSON body with Content-Type application/json and a Content-Length.",
    "A body the proxy cannot read with certainty (bad JSON, duplicate keys, wrong types, too "
    "large, chunked or missing where a body is judged) is refused: fail closed.",
)
CAPABILITIES = _rule(
    "DW-P002",
    "Capabilities only from the allowlist",
    _H,
    "Add only capabilities listed under `admission.capabilities`.",
    "`cap_add` entries outside the policy's capability allowlist are refused.",
)
BIND_PATHS = _rule(
    "DW-P003",
    "Bind mounts only under allowed host paths",
    _C,
    "Mount only directories under `admission.bind_paths`; use named volumes otherwise.",
    "Bind sources are resolved with realpath on the host, so a symlink cannot lead out.",
)
UNMODELLED = _rule(
    "DW-P004",
    "No host access outside the container model",
    _H,
    "Remove HostConfig fields this version of dockward does not know, or upgrade it.",
    "HostConfig fields the container model does not know (a newer API, a field the daemon still "
    "honours) cannot be judged and are refused unless `admission.allow_unmodelled` is set. "
    "VolumesFrom, DeviceRequests, runtimes and empty MaskedPaths/ReadonlyPaths are judged by "
    "the container rules DW-C037, DW-C040, DW-C041 and DW-C042.",
)
REGISTRY = _rule(
    "DW-P005",
    "Image from an allowed registry",
    _H,
    "Pull from a registry listed under `admission.images.registries`.",
    "Images whose registry is not on the allowlist are refused (Docker Hub is `docker.io`).",
)
DIGEST = _rule(
    "DW-P006",
    "Image pinned by digest",
    Severity.MEDIUM,
    "Reference the image as `name@sha256:...`.",
    "With `require_digest`, a tag-only reference is refused: tags move.",
)
VULNERABILITIES = _rule(
    "DW-P007",
    "Image scanned and below the vulnerability threshold",
    _H,
    "Scan the image with `dockward scan`, fix or update it, then retry.",
    "The worst vulnerability of the image in dockward's scan DB must be below "
    "`max_severity`; an image that was never scanned is refused (fail closed).",
)
SIGNATURE = _rule(
    "DW-P008",
    "Image signed with the configured cosign key",
    _C,
    "Sign the image digest with `dockward sign --key` (or cosign) and push the signature.",
    "The registry must hold a cosign simple-signing signature under the `sha256-<digest>.sig` "
    "tag that verifies with the configured ECDSA P-256 key and names this digest.",
)
IMPORT = _rule(
    "DW-P009",
    "No image import bypassing the registry checks",
    _H,
    "Pull from a registry instead of `docker import`/`docker load`, or set `allow_import`.",
    "`images/create?fromSrc=` and `images/load` produce images no registry rule has seen.",
)
BUILD = _rule(
    "DW-P010",
    "Builds stay off the host network",
    _H,
    "Build without `--network host` or set `admission.build_network_host`.",
    "A build step with the host network reaches host-only services.",
)
ROUTE = _rule(
    "DW-P011",
    "Route allowed for this client",
    _H,
    "Allow the route for this client in the policy (`clients[].allow`).",
    "Every request is matched to an Engine API route; routes not allowed are refused.",
)

POLICY_RULES: tuple[Rule, ...] = (
    UNJUDGEABLE,
    CAPABILITIES,
    BIND_PATHS,
    UNMODELLED,
    REGISTRY,
    DIGEST,
    VULNERABILITIES,
    SIGNATURE,
    IMPORT,
    BUILD,
    ROUTE,
)


def fail(rule: Rule, target: str, message: str, **evidence: str) -> Result:
    return Result(rule, Status.FAIL, target, message, tuple(evidence.items()))


def passed(rule: Rule, target: str, message: str = "") -> Result:
    return Result(rule, Status.PASS, target, message)
