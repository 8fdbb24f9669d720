"""The audit's container rules over compose services and `docker run` lines, with locations."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from dockward.model.container import ContainerSpec
from dockward.model.finding import Location, Result, Status
from dockward.rules.registry import Context, RuleEntry, run_check

if TYPE_CHECKING:
    from dockward.lint.compose import ComposeService

# The compose keys that decide each container rule: a finding points at the key that causes it
# (or, when the problem is a missing key, at the service).
RULE_KEYS: dict[str, tuple[str, ...]] = {
    "DW-C001": ("privileged",),
    "DW-C002": ("cap_add",),
    "DW-C003": ("cap_add",),
    "DW-C004": ("privileged", "cap_drop"),
    "DW-C005": ("security_opt", "privileged"),
    "DW-C006": ("security_opt",),
    "DW-C007": ("volumes", "secrets"),
    "DW-C008": ("use_api_socket", "volumes"),
    "DW-C010": ("ports",),
    "DW-C011": ("network_mode",),
    "DW-C012": ("mem_limit", "deploy"),
    "DW-C013": ("cpus", "cpu_shares", "deploy"),
    "DW-C014": ("read_only",),
    "DW-C015": ("ports",),
    "DW-C016": ("restart", "deploy"),
    "DW-C017": ("pid",),
    "DW-C018": ("ipc",),
    "DW-C019": ("devices", "device_cgroup_rules"),
    "DW-C020": ("ulimits",),
    "DW-C021": ("volumes",),
    "DW-C022": ("uts",),
    "DW-C023": ("security_opt", "privileged"),
    "DW-C024": ("cgroup_parent",),
    "DW-C025": ("security_opt",),
    "DW-C026": ("healthcheck",),
    "DW-C027": ("pids_limit", "deploy"),
    "DW-C028": ("userns_mode",),
    "DW-C029": ("network_mode",),
    "DW-C030": ("environment", "env_file"),
    "DW-C031": ("user",),
    "DW-C032": ("image",),
    "DW-C033": ("cgroup",),
    "DW-C034": ("sysctls",),
    "DW-C037": ("volumes_from",),
    "DW-C038": ("oom_kill_disable", "oom_score_adj"),
    "DW-C039": ("extra_hosts",),
    "DW-C040": ("gpus", "deploy"),
    "DW-C041": ("runtime",),
    "DW-C042": ("security_opt",),
}

Locator = Callable[[str], Location | None]


def lint_spec(
    spec: ContainerSpec,
    entries: Iterable[RuleEntry],
    target: str,
    locate: Locator | None = None,
    ctx: Context | None = None,
) -> list[Result]:
    """Run the container rules on one spec; each result carries the location `locate` gives
    for its rule id (default: the spec's own source)."""
    out: list[Result] = []
    context = ctx or Context()
    for entry in entries:
        if entry.rule.kind != "container":
            continue
        loc = (locate(entry.rule.id) if locate else None) or spec.source
        out += run_check(entry, spec, context, target=target, location=loc)
    return out


def lint_compose_service(
    service: ComposeService, entries: Iterable[RuleEntry], ctx: Context | None = None
) -> list[Result]:
    def locate(rule_id: str) -> Location:
        return service.location_of(*RULE_KEYS.get(rule_id, ()))

    return lint_spec(service.spec, entries, f"service {service.name}", locate, ctx)


def failing(results: Iterable[Result]) -> list[Result]:
    return [r for r in results if r.status in (Status.FAIL, Status.ERROR)]
