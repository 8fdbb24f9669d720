"""The audit's container rules over compose services and `docker run` lines, with locations."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from dockward.errors import InputError
from dockward.model.container import ContainerSpec
from dockward.model.finding import Location, Result, Rule, Status
from dockward.rules.registry import Context, RuleEntry, run_check
from dockward.specs.tables import compose_keys_for

if TYPE_CHECKING:
    from dockward.lint.compose import ComposeService

Locator = Callable[[Rule], Location | None]


def lint_spec(
    spec: ContainerSpec,
    entries: Iterable[RuleEntry],
    target: str,
    locate: Locator | None = None,
    ctx: Context | None = None,
) -> list[Result]:
    """Run the container rules on one spec; each result carries the location `locate` gives
    for its rule (default: the spec's own source)."""
    out: list[Result] = []
    context = ctx or Context()
    for entry in entries:
        if entry.rule.kind != "container":
            continue
        loc = (locate(entry.rule) if locate else None) or spec.source
        out += run_check(entry, spec, context, target=target, location=loc)
    return out


# Keys whose items a compose finding points at one by one (each published port, mount,
# environment variable, capability, security option, device, ...).
ITEM_KEYS = frozenset(
    {
        "cap_add",
        "cap_drop",
        "device_cgroup_rules",
        "devices",
        "environment",
        "extra_hosts",
        "ports",
        "secrets",
        "security_opt",
        "sysctls",
        "tmpfs",
        "ulimits",
        "volumes",
        "volumes_from",
    }
)


def lint_compose_service(
    service: ComposeService, entries: Iterable[RuleEntry], ctx: Context | None = None
) -> list[Result]:
    """The container rules on one service. A finding points at the key that sets what the rule
    judges (declared on the rule), and when the fault is in items of list or mapping keys, there
    is one finding per offending item, at the item."""
    context = ctx or Context()
    target = f"service {service.name}"
    out: list[Result] = []
    for entry in entries:
        if entry.rule.kind != "container":
            continue
        keys = compose_keys_for(entry.rule.fields)
        results = run_check(
            entry, service.spec, context, target=target, location=service.location_of(*keys)
        )
        if any(r.status is Status.FAIL for r in results):
            results = _per_item(service, entry, context, target, keys) or results
        out += results
    return out


def _fails(entry: RuleEntry, spec: ContainerSpec, ctx: Context) -> list[Result]:
    return [r for r in run_check(entry, spec, ctx, target="") if r.status is Status.FAIL]


def _per_item(
    service: ComposeService,
    entry: RuleEntry,
    ctx: Context,
    target: str,
    keys: tuple[str, ...],
) -> list[Result]:
    """One failing result per item that fails the rule alone, if the service passes without
    any of the items (else the fault is not in the items: a missing setting, say)."""
    split = [k for k in keys if k in ITEM_KEYS and service.config.get(k)]
    if service.respec is None or not split:
        return []
    base = {k: v for k, v in service.config.items() if k not in split}
    try:
        if _fails(entry, service.respec(base), ctx):
            return []
        out: list[Result] = []
        for key in split:
            value = service.config[key]
            items: list[tuple[Any, Any]] = (
                [(k, {k: v}) for k, v in value.items()]
                if isinstance(value, dict)
                else [(item, [item]) for item in value]
                if isinstance(value, list)
                else []
            )
            for item, alone in items:
                where = service.item_location(key, item)
                for r in _fails(entry, service.respec({**base, key: alone}), ctx):
                    out.append(replace(r, target=target, location=r.location or where))
    except InputError:
        return []
    return out


def failing(results: Iterable[Result]) -> list[Result]:
    return [r for r in results if r.status in (Status.FAIL, Status.ERROR)]
