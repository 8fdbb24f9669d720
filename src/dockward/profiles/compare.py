"""diff, merge, explain and restrict for seccomp profiles (judged after resolution)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from dockward.errors import InputError
from dockward.profiles.seccomp import (
    Effect,
    SeccompProfile,
    SyscallRule,
    effects,
)
from dockward.profiles.syscalls import known_names


@dataclass(frozen=True, slots=True)
class Change:
    syscall: str
    before: str  # "" when the default action applies
    after: str


@dataclass(frozen=True, slots=True)
class ProfileDiff:
    added: tuple[Change, ...]  # allowed in b, not in a
    removed: tuple[Change, ...]  # allowed in a, not in b
    changed: tuple[Change, ...]  # in both, with a different effect

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _is_allow(e: Effect | None, default_action: str) -> bool:
    action = e.action if e else default_action
    return action in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG")


def _text(e: Effect | None, profile: SeccompProfile) -> str:
    if e is not None:
        return str(e)
    errno = profile.default_errno_ret
    base = profile.default_action.removeprefix("SCMP_ACT_").lower()
    return f"default {base}" + (f"({errno})" if errno is not None else "")


def diff(a: SeccompProfile, b: SeccompProfile) -> ProfileDiff:
    """Compare two resolved profiles syscall by syscall."""
    ea, eb = effects(a), effects(b)
    added: list[Change] = []
    removed: list[Change] = []
    changed: list[Change] = []
    for name in sorted(set(ea) | set(eb)):
        x, y = ea.get(name), eb.get(name)
        allow_a, allow_b = _is_allow(x, a.default_action), _is_allow(y, b.default_action)
        change = Change(name, _text(x, a), _text(y, b))
        if allow_b and not allow_a:
            added.append(change)
        elif allow_a and not allow_b:
            removed.append(change)
        elif change.before != change.after:
            changed.append(change)
    return ProfileDiff(tuple(added), tuple(removed), tuple(changed))


def merge(first: SeccompProfile, *others: SeccompProfile) -> SeccompProfile:
    """The union of what the profiles allow; they must share the default action."""
    rules: list[SyscallRule] = list(first.syscalls)
    seen = {r for r in rules}
    for other in others:
        if (other.default_action, other.default_errno_ret) != (
            first.default_action,
            first.default_errno_ret,
        ):
            raise InputError(
                "cannot merge profiles with different default actions "
                f"({first.default_action} and {other.default_action})"
            )
        for rule in other.syscalls:
            if rule not in seen:
                seen.add(rule)
                rules.append(rule)
    arches = tuple(
        dict.fromkeys((*first.architectures, *(a for o in others for a in o.architectures)))
    )
    return _compact(replace(first, syscalls=tuple(rules), architectures=arches))


def _compact(profile: SeccompProfile) -> SeccompProfile:
    """Fold groups that differ only in their names, keep the first group's position."""
    order: list[SyscallRule] = []
    by_key: dict[tuple[object, ...], int] = {}
    for rule in profile.syscalls:
        key = (rule.action, rule.args, rule.errno_ret, rule.includes, rule.excludes)
        if key in by_key and not rule.args:
            i = by_key[key]
            names = tuple(dict.fromkeys((*order[i].names, *rule.names)))
            order[i] = replace(order[i], names=names)
        else:
            by_key.setdefault(key, len(order))
            order.append(rule)
    return replace(profile, syscalls=tuple(order))


def restrict(resolved: SeccompProfile, keep: Iterable[str]) -> SeccompProfile:
    """Only the rules of `resolved` for the syscalls in `keep` (argument checks kept as they are)."""
    wanted = set(keep)
    rules: list[SyscallRule] = []
    for rule in resolved.syscalls:
        names = tuple(n for n in rule.names if n in wanted)
        if names:
            rules.append(replace(rule, names=names))
    return _compact(replace(resolved, syscalls=tuple(rules)))


@dataclass(frozen=True, slots=True)
class Explanation:
    syscall: str
    effect: str
    why_default_denies: str


def explain(
    profile: SeccompProfile, default_resolved: SeccompProfile, raw_default: SeccompProfile
) -> list[Explanation]:
    """Syscalls `profile` allows beyond the default, with the default's reason for denying each."""
    gated: dict[str, str] = {}
    for rule in raw_default.syscalls:
        if rule.action != "SCMP_ACT_ALLOW":
            continue
        for name in rule.names:
            if rule.includes.caps:
                gated.setdefault(name, "needs " + "+".join(rule.includes.caps))
            elif rule.includes.arches:
                gated.setdefault(name, "only on " + ",".join(rule.includes.arches))
            elif rule.includes.min_kernel:
                gated.setdefault(name, f"only on kernel >= {rule.includes.min_kernel}")
    known = known_names()
    out: list[Explanation] = []
    for change in diff(default_resolved, profile).added:
        reason = gated.get(change.syscall) or (
            "not in Docker's default profile" if change.syscall in known else "unknown syscall name"
        )
        out.append(Explanation(change.syscall, change.after, reason))
    return out
