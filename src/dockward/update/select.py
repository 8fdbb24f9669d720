"""Which containers `dockward update` manages, and in which order (dependencies first)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
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
    if "-dockward-old" in name or labels.get(WT) == "true":
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
    """The managed containers, dependencies before dependents (stable by name otherwise).

    The container list (names, labels, state) decides; only the chosen containers are inspected,
    so a host with many unmanaged containers costs one list call, not one inspect each.
    """
    by_service: dict[tuple[str, str], str] = {}
    id_to_name: dict[str, str] = {}
    wanted: list[str] = []
    for summary in client.containers(all=True):
        names = [str(n) for n in summary.get("Names") or [""]]
        # Links add `/other/alias` names; the container's own name has one slash.
        name = next((n for n in names if n.count("/") == 1), names[0]).lstrip("/")
        labels = summary.get("Labels") or {}
        id_to_name[str(summary["Id"])] = name
        if COMPOSE_SERVICE in labels:
            by_service[(labels.get(COMPOSE_PROJECT, ""), labels[COMPOSE_SERVICE])] = name
        running = summary.get("State") in ("running", "restarting", "paused")
        brief = {"Name": name, "Config": {"Labels": labels}}
        if wants(brief, selection) and (running or selection.include_stopped):
            wanted.append(str(summary["Id"]))
    chosen: list[Managed] = []
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(wanted)))) as pool:
        inspects = list(pool.map(lambda cid: _inspect(client, cid), wanted))
    for info in inspects:
        if info is None:
            continue  # removed between listing and inspecting
        labels = (info.get("Config") or {}).get("Labels") or {}
        deps = {_resolve(d, id_to_name) for d in dependencies(info, by_service)}
        chosen.append(
            Managed(
                info,
                selection.monitor_only or bool(_flag(labels, MONITOR_ONLY_LABELS)),
                bool(_flag(labels, NO_PULL_LABELS)),
                tuple(sorted(deps)),
            )
        )
    return dependency_order(chosen)


def _inspect(client: Any, cid: str) -> Mapping[str, Any] | None:
    try:
        return dict(client.inspect_container(cid))
    except docker.errors.NotFound:
        return None


def _resolve(dep: str, id_to_name: Mapping[str, str]) -> str:
    """`container:<id>` and links may name a container by (a prefix of) its id."""
    if dep in id_to_name:
        return id_to_name[dep]
    if len(dep) >= 12 and all(c in "0123456789abcdef" for c in dep):
        for full_id, name in id_to_name.items():
            if full_id.startswith(dep):
                return name
    return dep


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
