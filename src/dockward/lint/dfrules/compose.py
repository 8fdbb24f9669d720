"""Compose-only rules (DW-K0xx): settings a ContainerSpec does not carry (build args). The
container settings themselves (volumes_from, extra_hosts, oom_kill_disable included, formerly
DW-K002 to DW-K004) are judged by the audit's DW-C rules, whatever the input."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dockward.lint.dfrules.support import HIGH, rules
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
