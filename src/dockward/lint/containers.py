"""The audit's container rules over compose services and `docker run` lines, with locations."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from dockward.errors import InputError
from dockward.model.container import ContainerSpec
from dockward.model.finding import Location, Result, Rule, Status
from dockward.rules.registry import Context, Fail, RuleEntry, outcomes, run_check, to_result
from dockward.specs.runargv import parse_run_line, run_argv_to_spec
from dockward.specs.tables import COMPOSE_KEYS, compose_keys_for, run_flags_for

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
        "networks",
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


# Spec fields set by item keys, with their zero values; keys that set one of them too (the
# engine socket is a mount, env_file an environment) make the variant a full read instead.
_ITEM_FIELDS = frozenset(f for k in ITEM_KEYS for f in COMPOSE_KEYS[k].fields)
_SHARED_KEYS = frozenset(
    k for k, s in COMPOSE_KEYS.items() if k not in ITEM_KEYS and _ITEM_FIELDS & set(s.fields)
)
_ITEM_ZERO = {
    f.name: (f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
    for f in dataclasses.fields(ContainerSpec)
    if f.name in _ITEM_FIELDS
}


def lint_compose_service(
    service: ComposeService,
    entries: Iterable[RuleEntry],
    ctx: Context | None = None,
    target: str = "",
) -> list[Result]:
    """The container rules on one service. A finding points at the key that sets what the rule
    judges (declared on the rule), and when the fault is in items of list or mapping keys, there
    is one finding per offending item, at the item."""
    context = ctx or Context()
    target = target or f"service {service.name}"
    variants = _Variants(service)
    out: list[Result] = []
    for entry in entries:
        if entry.rule.kind != "container":
            continue
        keys = compose_keys_for(entry.rule.fields)
        results = run_check(
            entry, service.spec, context, target=target, location=service.location_of(*keys)
        )
        if any(r.status is Status.FAIL for r in results):
            results = _per_item(variants, entry, context, target, keys, results) or results
        out += results
    return out


class _Variants:
    """Specs of the service without the items of every item key, plus at most one item, built
    once per service and shared by the rules (a rule reads only the fields it declares, so the
    other keys' items do not change its outcome)."""

    def __init__(self, service: ComposeService) -> None:
        self.service = service
        self._specs: dict[tuple[str, int], ContainerSpec] = {}

    def spec(self, key: str = "", index: int = -1) -> ContainerSpec:
        """Without any item; with `key`, plus that one item of `key`."""
        found = self._specs.get((key, index))
        if found is None and not key and not _SHARED_KEYS & self.service.config.keys():
            # The item keys alone set these fields: their zero values are the service without
            # its items (cheaper than reading the service again).
            found = self._specs[(key, index)] = self.service.spec.with_changes(**_ITEM_ZERO)
        if found is None:
            config = self.service.config
            variant = {k: v for k, v in config.items() if k not in ITEM_KEYS}
            if key:
                value = config[key]
                if isinstance(value, dict):
                    name = list(value)[index]
                    variant[key] = {name: value[name]}
                else:
                    variant[key] = [value[index]]
            assert self.service.respec is not None
            found = self._specs[(key, index)] = self.service.respec(variant)
        return found


def _fails(entry: RuleEntry, spec: ContainerSpec, ctx: Context) -> list[Result]:
    """The failing results of one rule on a variant (only those are built)."""
    if entry.check is None:
        return []
    try:
        found = [o for o in outcomes(entry.check(spec, ctx)) if isinstance(o, Fail)]
    except Exception:  # a crash on a variant: judged on the whole service as always
        return []
    return [to_result(entry.rule, o, "") for o in found]


# Whether a rule that reads only item fields fails with all of them zero: the same for every
# service (the rule reads nothing else), so judged once per rule.
_ZERO_FAILS: dict[tuple[str, bool], bool] = {}


def _base_fails(variants: _Variants, entry: RuleEntry, ctx: Context) -> bool:
    """Does the rule fail on the service without any of its items?"""
    if set(entry.rule.fields) <= _ITEM_FIELDS and not _SHARED_KEYS & variants.service.config.keys():
        key = (entry.rule.id, ctx.daemon is None)
        if key not in _ZERO_FAILS:
            _ZERO_FAILS[key] = bool(_fails(entry, ContainerSpec(), ctx))
        return _ZERO_FAILS[key]
    return bool(_fails(entry, variants.spec(), ctx))


def _per_item(
    variants: _Variants,
    entry: RuleEntry,
    ctx: Context,
    target: str,
    keys: tuple[str, ...],
    whole: list[Result],
) -> list[Result]:
    """One failing result per item that fails the rule alone, if the service passes without
    any of the items (else the fault is not in the items: a missing setting, say)."""
    service = variants.service
    split = tuple(
        k for k in keys if k in ITEM_KEYS and isinstance(service.config.get(k), list | dict)
    )
    items = [(k, i, item) for k in split for i, item in enumerate(service.config[k])]
    if service.respec is None or not items:
        return []
    try:
        if _base_fails(variants, entry, ctx):
            return []
        out: list[Result] = []
        for key, index, item in items:
            where = service.item_location(key, item)
            # One item alone: the whole service is that item, as far as the rule reads.
            failed = (
                [r for r in whole if r.status is Status.FAIL]
                if len(items) == 1
                else _fails(entry, variants.spec(key, index), ctx)
            )
            for r in failed:
                out.append(replace(r, target=target, location=where))
    except InputError:
        return []
    return out


def failing(results: Iterable[Result]) -> list[Result]:
    return [r for r in results if r.status in (Status.FAIL, Status.ERROR)]


# `docker run` flags whose every use is one item a finding can point at.
RUN_ITEM_FLAGS = frozenset(
    {
        "add-host",
        "cap-add",
        "cap-drop",
        "device",
        "device-cgroup-rule",
        "env",
        "mount",
        "publish",
        "security-opt",
        "sysctl",
        "tmpfs",
        "ulimit",
        "volume",
        "volumes-from",
    }
)


def lint_run_line(
    text: str, entries: Iterable[RuleEntry], name: str, ctx: Context | None = None
) -> list[Result]:
    """The container rules on a `docker run` line: a finding points at the flag that sets what
    the rule judges, one finding per offending flag (each `-p`, `-v`, `--cap-add`, ...)."""
    run = parse_run_line(text)
    context = ctx or Context()
    spec = run_argv_to_spec(run.argv(run.options), Location(name, 1, 1))
    kept = [o for o in run.options if o[0] not in RUN_ITEM_FLAGS]
    variants: dict[int, ContainerSpec] = {}

    def variant(index: int) -> ContainerSpec:
        # Without any item flag; with index >= 0, plus that one option.
        if index not in variants:
            extra = [run.options[index]] if index >= 0 else []
            variants[index] = run_argv_to_spec(run.argv(kept + extra))
        return variants[index]

    def at(index: int) -> Location:
        line, column = run.positions[index]
        return Location(name, line, column)

    out: list[Result] = []
    for entry in entries:
        if entry.rule.kind != "container":
            continue
        flags = run_flags_for(entry.rule.fields)
        first = next((i for i, (n, _) in enumerate(run.options) if n in flags), -1)
        results = run_check(
            entry, spec, context, target=name, location=at(first) if first >= 0 else spec.source
        )
        items = [i for i, (n, _) in enumerate(run.options) if n in flags and n in RUN_ITEM_FLAGS]
        if items and any(r.status is Status.FAIL for r in results):
            try:
                if not _fails(entry, variant(-1), context):
                    split: list[Result] = []
                    for i in items:
                        failed = (
                            [r for r in results if r.status is Status.FAIL]
                            if len(items) == 1
                            else _fails(entry, variant(i), context)
                        )
                        split += [replace(r, target=name, location=at(i)) for r in failed]
                    results = split or results
            except InputError:
                pass
        out += results
    return out
