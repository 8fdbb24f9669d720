"""Seccomp profiles in the format dockerd accepts: a strict parser, a renderer, and resolution.

`resolve()` filters groups the way the engine does at container start: `includes` keeps a group
only if every listed condition holds, `excludes` drops it if any holds; capabilities are judged
against the container's bounding set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dockward.errors import InputError
from dockward.model.container import normalise_capability
from dockward.profiles.syscalls import GO_TO_SCMP, SCMP_ARCHES

ACTIONS = frozenset(
    {
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
    }
)
OPS = frozenset(
    {
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    }
)
FLAGS = frozenset(
    {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"}
)
_KERNEL = re.compile(r"^\d+\.\d+$")
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
MAX_RULES = 10_000


@dataclass(frozen=True, slots=True)
class Arg:
    index: int
    value: int
    op: str
    value_two: int = 0


@dataclass(frozen=True, slots=True)
class Filter:
    """`includes` / `excludes` conditions of a group."""

    caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    min_kernel: str = ""

    @property
    def empty(self) -> bool:
        return not (self.caps or self.arches or self.min_kernel)


@dataclass(frozen=True, slots=True)
class SyscallRule:
    names: tuple[str, ...]
    action: str
    args: tuple[Arg, ...] = ()
    errno_ret: int | None = None
    comment: str = ""
    includes: Filter = field(default_factory=Filter)
    excludes: Filter = field(default_factory=Filter)


@dataclass(frozen=True, slots=True)
class ArchMap:
    architecture: str
    sub_architectures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SeccompProfile:
    default_action: str
    syscalls: tuple[SyscallRule, ...] = ()
    default_errno_ret: int | None = None
    arch_map: tuple[ArchMap, ...] = ()
    architectures: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    listener_path: str = ""
    listener_metadata: str = ""

    def names(self) -> frozenset[str]:
        return frozenset(n for r in self.syscalls for n in r.names)


def _fail(where: str, what: str) -> InputError:
    return InputError(f"seccomp profile: {where}: {what}")


def _keys(obj: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise _fail(where, f"expected an object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise _fail(where, f"unknown key {unknown[0]!r}")
    return obj


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, "expected a list of strings")
    return tuple(value)


def _int(value: Any, where: str, lo: int = 0, hi: int = 2**64 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _fail(where, f"expected an integer in [{lo}, {hi}], got {value!r}")
    return value


def _filter(obj: Any, where: str) -> Filter:
    if obj is None:
        return Filter()
    data = _keys(obj, where, {"caps", "arches", "minKernel"})
    caps = _str_list(data.get("caps"), f"{where}.caps")
    arches = _str_list(data.get("arches"), f"{where}.arches")
    for arch in arches:
        if arch not in GO_TO_SCMP:
            raise _fail(f"{where}.arches", f"unknown arch {arch!r}")
    kernel = data.get("minKernel") or ""
    if kernel and (not isinstance(kernel, str) or not _KERNEL.match(kernel)):
        raise _fail(f"{where}.minKernel", f"expected '<kernel>.<major>', got {kernel!r}")
    return Filter(caps, arches, kernel)


def _action(value: Any, where: str) -> str:
    if value not in ACTIONS:
        raise _fail(where, f"unknown action {value!r}")
    return str(value)


def _rule(obj: Any, where: str) -> SyscallRule:
    data = _keys(
        obj,
        where,
        {"names", "name", "action", "args", "errnoRet", "comment", "includes", "excludes"},
    )
    if "names" in data and "name" in data:
        raise _fail(where, "both 'name' and 'names' are set")
    if "name" in data:
        if not isinstance(data["name"], str):
            raise _fail(f"{where}.name", "expected a string")
        names: tuple[str, ...] = (data["name"],)
    else:
        names = _str_list(data.get("names"), f"{where}.names")
    if not names:
        raise _fail(where, "no syscall names")
    for name in names:
        if not _NAME.match(name):
            raise _fail(f"{where}.names", f"not a syscall name: {name!r}")
    args: list[Arg] = []
    for i, raw in enumerate(data.get("args") or []):
        a = _keys(raw, f"{where}.args[{i}]", {"index", "value", "valueTwo", "op"})
        op = a.get("op")
        if op not in OPS:
            raise _fail(f"{where}.args[{i}].op", f"unknown operator {op!r}")
        args.append(
            Arg(
                _int(a.get("index"), f"{where}.args[{i}].index", 0, 5),
                _int(a.get("value", 0), f"{where}.args[{i}].value"),
                str(op),
                _int(a.get("valueTwo", 0), f"{where}.args[{i}].valueTwo"),
            )
        )
    errno = data.get("errnoRet")
    comment = data.get("comment") or ""
    if not isinstance(comment, str):
        raise _fail(f"{where}.comment", "expected a string")
    return SyscallRule(
        names=names,
        action=_action(data.get("action"), f"{where}.action"),
        args=tuple(args),
        errno_ret=None if errno is None else _int(errno, f"{where}.errnoRet", 0, 4095),
        comment=comment,
        includes=_filter(data.get("includes"), f"{where}.includes"),
        excludes=_filter(data.get("excludes"), f"{where}.excludes"),
    )


def _scmp_arch(value: Any, where: str) -> str:
    if value not in SCMP_ARCHES:
        raise _fail(where, f"unknown architecture {value!r}")
    return str(value)


def parse_profile(data: Any) -> SeccompProfile:
    """Parse a profile object strictly: unknown keys, actions, operators and arches are errors."""
    obj = _keys(
        data,
        "top level",
        {
            "defaultAction",
            "defaultErrnoRet",
            "architectures",
            "archMap",
            "syscalls",
            "flags",
            "listenerPath",
            "listenerMetadata",
            "engine",
        },
    )
    if obj.get("architectures") and obj.get("archMap"):
        raise _fail("top level", "'architectures' and 'archMap' cannot both be set")
    raw_rules = obj.get("syscalls") or []
    if not isinstance(raw_rules, list):
        raise _fail("syscalls", "expected a list")
    if len(raw_rules) > MAX_RULES:
        raise _fail("syscalls", f"more than {MAX_RULES} groups")
    arch_map: list[ArchMap] = []
    for i, raw in enumerate(obj.get("archMap") or []):
        m = _keys(raw, f"archMap[{i}]", {"architecture", "subArchitectures"})
        arch_map.append(
            ArchMap(
                _scmp_arch(m.get("architecture"), f"archMap[{i}].architecture"),
                tuple(
                    _scmp_arch(s, f"archMap[{i}].subArchitectures")
                    for s in _str_list(m.get("subArchitectures"), f"archMap[{i}]")
                ),
            )
        )
    flags = _str_list(obj.get("flags"), "flags")
    for flag in flags:
        if flag not in FLAGS:
            raise _fail("flags", f"unknown flag {flag!r}")
    errno = obj.get("defaultErrnoRet")
    return SeccompProfile(
        default_action=_action(obj.get("defaultAction"), "defaultAction"),
        syscalls=tuple(_rule(r, f"syscalls[{i}]") for i, r in enumerate(raw_rules)),
        default_errno_ret=None if errno is None else _int(errno, "defaultErrnoRet", 0, 4095),
        arch_map=tuple(arch_map),
        architectures=tuple(
            _scmp_arch(a, "architectures") for a in _str_list(obj.get("architectures"), "arch")
        ),
        flags=flags,
        listener_path=str(obj.get("listenerPath") or ""),
        listener_metadata=str(obj.get("listenerMetadata") or ""),
    )


def loads(text: str, source: str = "profile") -> SeccompProfile:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}: not JSON: {exc.msg} at line {exc.lineno}") from exc
    try:
        return parse_profile(data)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from exc


def _render_filter(f: Filter) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if f.caps:
        out["caps"] = list(f.caps)
    if f.arches:
        out["arches"] = list(f.arches)
    if f.min_kernel:
        out["minKernel"] = f.min_kernel
    return out


def render(profile: SeccompProfile) -> dict[str, Any]:
    """The profile as the JSON object dockerd's `--security-opt seccomp=` accepts."""
    out: dict[str, Any] = {"defaultAction": profile.default_action}
    if profile.default_errno_ret is not None:
        out["defaultErrnoRet"] = profile.default_errno_ret
    if profile.architectures:
        out["architectures"] = list(profile.architectures)
    if profile.arch_map:
        out["archMap"] = [
            {"architecture": m.architecture, "subArchitectures": list(m.sub_architectures)}
            for m in profile.arch_map
        ]
    if profile.flags:
        out["flags"] = list(profile.flags)
    if profile.listener_path:
        out["listenerPath"] = profile.listener_path
    if profile.listener_metadata:
        out["listenerMetadata"] = profile.listener_metadata
    groups: list[dict[str, Any]] = []
    for rule in profile.syscalls:
        g: dict[str, Any] = {"names": list(rule.names), "action": rule.action}
        if rule.args:
            g["args"] = [
                {"index": a.index, "value": a.value, "valueTwo": a.value_two, "op": a.op}
                for a in rule.args
            ]
        if rule.errno_ret is not None:
            g["errnoRet"] = rule.errno_ret
        if rule.comment:
            g["comment"] = rule.comment
        if not rule.includes.empty:
            g["includes"] = _render_filter(rule.includes)
        if not rule.excludes.empty:
            g["excludes"] = _render_filter(rule.excludes)
        groups.append(g)
    out["syscalls"] = groups
    return out


def dumps(profile: SeccompProfile) -> str:
    return json.dumps(render(profile), indent=2) + "\n"


def _kernel_at_least(kernel: tuple[int, int], wanted: str) -> bool:
    major, minor = (int(x) for x in wanted.split("."))
    return kernel >= (major, minor)


def _caps(names: Iterable[str]) -> frozenset[str]:
    return frozenset(normalise_capability(c) for c in names)


def resolve(
    profile: SeccompProfile,
    caps: Iterable[str],
    arch: str = "amd64",
    kernel: tuple[int, int] = (6, 0),
) -> SeccompProfile:
    """The groups the engine keeps for a container with bounding set `caps` on `arch`/`kernel`."""
    have = _caps(caps)
    kept: list[SyscallRule] = []
    for rule in profile.syscalls:
        inc, exc = rule.includes, rule.excludes
        if inc.arches and arch not in inc.arches:
            continue
        if inc.caps and not _caps(inc.caps) <= have:
            continue
        if inc.min_kernel and not _kernel_at_least(kernel, inc.min_kernel):
            continue
        if exc.arches and arch in exc.arches:
            continue
        if exc.caps and _caps(exc.caps) & have:
            continue
        if exc.min_kernel and _kernel_at_least(kernel, exc.min_kernel):
            continue
        kept.append(replace(rule, includes=Filter(), excludes=Filter()))
    return replace(profile, syscalls=tuple(kept))


@dataclass(frozen=True, slots=True)
class Effect:
    """What a resolved profile does with one syscall name."""

    action: str
    conditional: bool = False  # allowed only for some argument values
    errno_ret: int | None = None

    def __str__(self) -> str:
        text = self.action.removeprefix("SCMP_ACT_").lower()
        if self.errno_ret is not None:
            text += f"({self.errno_ret})"
        return text + (" if args match" if self.conditional else "")


def effects(resolved: SeccompProfile) -> dict[str, Effect]:
    """Per syscall name: the action a resolved profile takes (first unconditional rule wins)."""
    out: dict[str, Effect] = {}
    for rule in resolved.syscalls:
        for name in rule.names:
            prev = out.get(name)
            if prev is not None and not prev.conditional:
                continue
            if rule.args:
                if prev is None:
                    out[name] = Effect(rule.action, True, rule.errno_ret)
            else:
                out[name] = Effect(rule.action, False, rule.errno_ret)
    return out


def allowed(resolved: SeccompProfile) -> frozenset[str]:
    """Syscalls a resolved profile allows, outright or for some arguments."""
    if resolved.default_action in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG"):
        raise ValueError("an allow-by-default profile has no finite allow list")
    return frozenset(
        n for n, e in effects(resolved).items() if e.action in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG")
    )
