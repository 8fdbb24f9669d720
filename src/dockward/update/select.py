"""Which containers `dockward update` manages, and in which order (dependencies first)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import docker.errors

WT = "com.centurylinklabs.watchtower"
ENABLE_LABELS = ("dockward.update", f"{WT}.enable")
MONITOR_ONLY_LABELS = ("dockward.update.monitor-only", f"{WT}.monitor-only")
NO_PULL_LABELS = ("dockward.update.no-pull", f"{WT}.no-pull")
SCOPE_LABELS = ("dockward.update.scope", f"{WT}.scope")
DEPENDS_LABELS = ("dockward.update.depends-on", f"{WT}.depends-on")
COMPOSE_DEPENDS = "com.docker.compose.depends_on"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"


@dataclass(frozen=True, slots=True)
class Selection:
    all: bool = False
    names: tuple[str, ...] = ()
    scope: str = ""
    include_stopped: bool = False
    monitor_only: bool = False


@dataclass(frozen=True, slots=True)
class Managed:
    inspect: Mapping[str, Any]
    monitor_only: bool
    no_pull: bool
    depends_on: tuple[str, ...]

    @property
    def name(self) -> str:
        return str(self.inspect.get("Name") or "").lstrip("/")

    @property
    def id(self) -> str:
        return str(self.inspect.get("Id") or "")

    @property
    def labels(self) -> Mapping[str, str]:
        return (self.inspect.get("Config") or {}).get("Labels") or {}


def _flag(labels: Mapping[str, str], keys: Sequence[str]) -> bool | None:
    for key in keys:
        if key in labels:
            return labels[key].strip().lower() in ("true", "1", "yes", "on")
    return None


def wants(inspect: Mapping[str, Any], selection: Selection) -> bool:
    labels: Mapping[str, str] = (inspect.get("Config") or {}).get("Labels") or {}
    name = str(inspect.get("Name") or "").lstrip("/")
    if name.endswith("-dockward-old") or labels.get(WT) == "true":
        return False  # an update in flight, or a watchtower instance
    if selection.names and name not in selection.names:
        return False
    scope = next((labels[k] for k in SCOPE_LABELS if k in labels), "")
    if selection.scope and scope != selection.scope:
        return False
    flags = [_flag(labels, (key,)) for key in ENABLE_LABELS]
    if False in flags:
        return False  # an explicit opt-out wins over every opt-in
    return True in flags or selection.all or bool(selection.names)


def dependencies(inspect: Mapping[str, Any], by_service: Mapping[tuple[str, str], str]) -> set[str]:
    labels: Mapping[str, str] = (inspect.get("Config") or {}).get("Labels") or {}
    deps: set[str] = set()
    for key in DEPENDS_LABELS:
        deps |= {d.strip().lstrip("/") for d in labels.get(key, "").split(",") if d.strip()}
    project = labels.get(COMPOSE_PROJECT, "")
    for item in labels.get(COMPOSE_DEPENDS, "").split(","):
        service = item.split(":", 1)[0].strip()
        if service and (project, service) in by_service:
            deps.add(by_service[(project, service)])
    host = inspect.get("HostConfig") or {}
    for link in host.get("Links") or ():
        deps.add(str(link).split(":", 1)[0].lstrip("/"))
    mode = str(host.get("NetworkMode") or "")
    if mode.startswith("container:"):
        deps.add(mode.removeprefix("container:"))
    return deps


def select(client: Any, selection: Selection) -> list[Managed]:
    """The managed containers, dependencies before dependents (stable by name otherwise)."""
    inspects = []
    for summary in client.containers(all=True):
        try:
            inspects.append(client.inspect_container(summary["Id"]))
        except docker.errors.NotFound:
            continue  # removed between listing and inspecting

    by_service: dict[tuple[str, str], str] = {}
    id_to_name: dict[str, str] = {}
    for info in inspects:
        labels = (info.get("Config") or {}).get("Labels") or {}
        name = str(info.get("Name") or "").lstrip("/")
        id_to_name[str(info["Id"])] = name
        if COMPOSE_SERVICE in labels:
            by_service[(labels.get(COMPOSE_PROJECT, ""), labels[COMPOSE_SERVICE])] = name
    chosen: list[Managed] = []
    for info in inspects:
        running = bool((info.get("State") or {}).get("Running"))
        if not wants(info, selection) or (not running and not selection.include_stopped):
            continue
        labels = (info.get("Config") or {}).get("Labels") or {}
        deps = {id_to_name.get(d, d) for d in dependencies(info, by_service)}
        for full_id, name in id_to_name.items():
            deps = {name if full_id.startswith(d) and len(d) >= 12 else d for d in deps}
        chosen.append(
            Managed(
                info,
                selection.monitor_only or bool(_flag(labels, MONITOR_ONLY_LABELS)),
                bool(_flag(labels, NO_PULL_LABELS)),
                tuple(sorted(deps)),
            )
        )
    return dependency_order(chosen)


def dependency_order(items: Sequence[Managed]) -> list[Managed]:
    """Kahn's algorithm; a cycle keeps the remaining containers in name order."""
    by_name = {m.name: m for m in items}
    pending = {m.name: {d for d in m.depends_on if d in by_name and d != m.name} for m in items}
    out: list[Managed] = []
    while pending:
        ready = sorted(n for n, deps in pending.items() if not deps)
        if not ready:
            ready = sorted(pending)[:1]  # break a cycle deterministically
        for name in ready:
            out.append(by_name[name])
            del pending[name]
            for deps in pending.values():
                deps.discard(name)
    return out


def dependents_of(name: str, items: Sequence[Managed]) -> list[str]:
    return [m.name for m in items if name in m.depends_on]
