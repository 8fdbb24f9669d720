"""The audit's container rules over compose services and `docker run` lines, with locations."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

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


def lint_compose_service(
    service: ComposeService, entries: Iterable[RuleEntry], ctx: Context | None = None
) -> list[Result]:
    def locate(rule: Rule) -> Location:
        # The key that sets what the rule judges (declared on the rule), else the service.
        return service.location_of(*compose_keys_for(rule.fields))

    return lint_spec(service.spec, entries, f"service {service.name}", locate, ctx)


def failing(results: Iterable[Result]) -> list[Result]:
    return [r for r in results if r.status in (Status.FAIL, Status.ERROR)]
