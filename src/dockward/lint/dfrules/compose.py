"""Compose-only rules (DW-K0xx): settings a ContainerSpec does not carry (build args,
volumes_from, extra_hosts, oom_kill_disable). The container settings themselves are judged by
the audit's DW-C rules."""

from __future__ import annotations

import contextlib
import ipaddress
from typing import TYPE_CHECKING, Any

from dockward.lint.dfrules.support import HIGH, LOW, MED, rules
from dockward.rules.registry import Fail, Outcome, Pass
from dockward.rules.secrets import SECRET_NAME, secret_env_findings

if TYPE_CHECKING:
    from dockward.lint.compose import ComposeService

KIND = "compose"


def _svc(body: str) -> ComposeService:
    from dockward.lint.compose import load_compose

    path = "/nonexistent-dwlint-example/compose.yaml"
    text = "services:\n  app:\n    image: registry.example/app:1.2.3\n" + body
    return load_compose([path], env={}, texts={path: text}).services[0]


def _ex(bad: str, good: str = "") -> tuple[ComposeService, ComposeService]:
    return _svc(bad), _svc(good)


def _build_args(service: ComposeService) -> dict[str, str | None]:
    from dockward.specs.values import kv_pairs

    build: Any = service.config.get("build")
    if not isinstance(build, dict):
        return {}
    return kv_pairs(build.get("args"), f"services.{service.name}.build.args")


@rules.rule(
    "DW-K001",
    "No secrets in build args",
    severity=HIGH,
    kind=KIND,
    references=("hadolint DL3064",),
    remediation="Pass build secrets with `build.secrets` (BuildKit `RUN --mount=type=secret`), "
    "not `build.args`.",
    examples=lambda: _ex(
        "    build:\n      context: .\n      args:\n        NPM_TOKEN: abcdef123456\n"
    ),
)
def no_build_arg_secrets(service: ComposeService) -> Outcome:
    """Build arguments are recorded in the image history, readable by anyone who can pull it."""
    args = _build_args(service)
    hits = secret_env_findings([f"{k}={v}" for k, v in args.items() if v is not None])
    hits += [f"{k} (name)" for k, v in args.items() if v is None and SECRET_NAME.search(k)]
    if hits:
        return Fail(
            f"secrets in build args: {', '.join(hits)}", location=service.location_of("build")
        )
    return Pass()


@rules.rule(
    "DW-K002",
    "No volumes_from",
    severity=LOW,
    kind=KIND,
    remediation="Declare the volumes the service needs instead of inheriting every mount of "
    "another container.",
    examples=lambda: _ex("    volumes_from: [other]\n"),
)
def no_volumes_from(service: ComposeService) -> Outcome:
    """`volumes_from` silently inherits all mounts of another container, including a docker
    socket or host directories added there later."""
    if service.config.get("volumes_from"):
        return Fail(
            "volumes_from inherits another container's mounts",
            location=service.location_of("volumes_from"),
        )
    return Pass()


@rules.rule(
    "DW-K003",
    "OOM killer not disabled",
    severity=MED,
    kind=KIND,
    remediation="Remove `oom_kill_disable: true`; set a memory limit instead.",
    examples=lambda: _ex("    oom_kill_disable: true\n"),
)
def oom_kill_enabled(service: ComposeService) -> Outcome:
    """With the OOM killer disabled, a container that runs out of memory hangs instead of being
    killed, and without a memory limit it can take the host down."""
    from dockward.specs.values import as_bool

    if as_bool(service.config.get("oom_kill_disable", False), "oom_kill_disable"):
        return Fail("oom_kill_disable: true", location=service.location_of("oom_kill_disable"))
    return Pass()


_PROTECTED_NAMES = (
    "docker.io",
    "registry-1.docker.io",
    "auth.docker.io",
    "ghcr.io",
    "quay.io",
    "gcr.io",
    "pypi.org",
    "files.pythonhosted.org",
    "registry.npmjs.org",
    "deb.debian.org",
    "security.debian.org",
    "archive.ubuntu.com",
    "dl-cdn.alpinelinux.org",
    "metadata.google.internal",
    "metadata",
)


@rules.rule(
    "DW-K004",
    "No extra_hosts redirecting registries or cloud metadata",
    severity=MED,
    kind=KIND,
    remediation="Remove `extra_hosts` entries for registries, package mirrors and metadata "
    "endpoints; configure mirrors explicitly.",
    examples=lambda: _ex('    extra_hosts:\n      - "registry-1.docker.io:10.0.0.5"\n'),
)
def no_host_redirects(service: ComposeService) -> Outcome:
    """Pinning a registry, a package index or the metadata service to another address in
    /etc/hosts redirects downloads or credentials."""
    from dockward.specs.values import kv_pairs

    hosts = kv_pairs(service.config.get("extra_hosts"), "extra_hosts", ":")
    bad = []
    for name, addr in hosts.items():
        host = name.strip().lower()
        target = (addr or "").strip().strip("[]")
        metadata = False
        with contextlib.suppress(ValueError):
            metadata = ipaddress.ip_address(target) == ipaddress.ip_address("169.254.169.254")
        if (
            host in _PROTECTED_NAMES
            or host.endswith(tuple("." + n for n in _PROTECTED_NAMES))
            or metadata
        ):
            bad.append(f"{name}->{target}")
    if bad:
        return Fail(
            f"extra_hosts redirects {', '.join(bad)}", location=service.location_of("extra_hosts")
        )
    return Pass()
