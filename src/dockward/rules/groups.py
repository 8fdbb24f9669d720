"""The rule groups: names a rule declares membership of (`RuleSet.rule(groups=...)`).

A group is used by the policy (a word in `admission.deny`, and its defaults), by the proxy (which
rules a body can fail) and by the monitor (as the Falco list `<group>_rules`, dashes as
underscores). Membership is declared on the rule, so a new rule joins by saying so, never by an
edit of a table kept elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dockward.model.finding import Rule


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    doc: str
    aliases: tuple[str, ...] = ()  # further words a policy may use for the group


VULNERABLE_IMAGE = "vulnerable-image"

GROUPS: dict[str, Group] = {
    g.name: g
    for g in (
        Group(
            "host-namespace",
            "The container shares a namespace with the host (network, PID, IPC, UTS, user, "
            "cgroup). The policy's `host-namespaces` and the monitor's `host_namespace_rules`.",
            aliases=("host-namespaces",),
        ),
        Group(
            "sensitive-mount",
            "The container gets the engine socket, a sensitive host directory or a host device "
            "(the monitor's `sensitive_mount_rules`).",
        ),
        Group(
            "default-deny",
            "Refused by the proxy and `policy check` unless the policy's `admission.deny` says "
            "otherwise.",
        ),
        Group(
            "exec-body",
            "Judged on `POST /containers/{id}/exec` bodies (the default of `admission.exec_deny`).",
        ),
        Group(
            "update-body",
            "Judged on `POST /containers/{id}/update` bodies: the settings `docker update` changes.",
        ),
        Group(
            "bind-source",
            "Judged on the host path a `volumes.create` driver option binds (local driver, "
            "`o=bind`).",
        ),
        Group(
            VULNERABLE_IMAGE,
            "A failure names an image that carries vulnerabilities (a scan's advisories, CIS 4.4): "
            "the result store counts it among the host's vulnerable images and drift reports the "
            "image as newly vulnerable.",
        ),
        Group(
            "manual-fix",
            "Daemon rules whose fix `harden daemon` leaves to the user: it would undo a choice "
            "made on purpose (registries, TLS material, cgroup parent, experimental).",
        ),
    )
}


def members(rules: Iterable[Rule], group: str) -> tuple[str, ...]:
    """The ids of the rules declaring `group`, in registry order."""
    if group not in GROUPS:
        raise KeyError(f"unknown rule group {group!r}")
    return tuple(r.id for r in rules if group in r.groups)


def falco_list_name(group: str) -> str:
    return group.replace("-", "_") + "_rules"
