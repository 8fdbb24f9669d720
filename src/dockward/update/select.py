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
    images: tuple[str, ...] = ()  # registry/repository names; () = any image
    exclude: tuple[str, ...] = ()  # container names never managed (Watchtower's -x)


def image_name(reference: str) -> str:
    """registry/repository of a reference, "" when it is not one (an image id)."""
    from dockward.errors import InputError
    from dockward.registry import parse_reference

    try:
        return parse_reference(reference).name
    except InputError:
        return ""


@dataclass(frozen=True, slots=True)
class Managed:
    """A managed container as the container list shows it (no inspect needed to check it)."""

    id: str
    name: str
    image: str  # the reference it was created from
    image_id: str
    labels: Mapping[str, str]
    running: bool
    monitor_only: bool = False
    no_pull: bool = False
    depends_on: tuple[str, ...] = ()


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
    if name in selection.exclude:
        return False
    scope = next((labels[k] for k in SCOPE_LABELS if k in labels), "")
    if selection.scope and scope != selection.scope:
        return False
    flags = [_flag(labels, (key,)) for key in ENABLE_LABELS]
    if False in flags:
        return False  # an explicit opt-out wins over every opt-in
    return True in flags or selection.all or bool(selection.names)


def dependencies(
    labels: Mapping[str, str],
    network_mode: str,
    by_service: Mapping[tuple[str, str], str],
    linked_to: Sequence[str] = (),
) -> set[str]:
    deps: set[str] = set()
    for key in DEPENDS_LABELS:
        deps |= {d.strip().lstrip("/") for d in labels.get(key, "").split(",") if d.strip()}
    project = labels.get(COMPOSE_PROJECT, "")
    for item in labels.get(COMPOSE_DEPENDS, "").split(","):
        service = item.split(":", 1)[0].strip()
        if service and (project, service) in by_service:
            deps.add(by_service[(project, service)])
    deps |= set(linked_to)
    if network_mode.startswith("container:"):
        deps.add(network_mode.removeprefix("container:"))
    return deps


def select(client: Any, selection: Selection) -> list[Managed]:
    """The managed containers, dependencies before dependents (stable by name otherwise).

    Decided from the container list alone (names, labels, image, state, links): checking
    N containers costs one list call; the updater inspects a container only to recreate it.
    """
    summaries = client.containers(all=True)
    by_service: dict[tuple[str, str], str] = {}
    id_to_name: dict[str, str] = {}
    linked: dict[str, list[str]] = {}  # container name -> containers it links to
    for summary in summaries:
        names = [str(n) for n in summary.get("Names") or [""]]
        # Links add `/other/alias` names to the target; its own name has one slash.
        name = next((n for n in names if n.count("/") == 1), names[0]).lstrip("/")
        id_to_name[str(summary["Id"])] = name
        for extra in names:
            if extra.count("/") == 2:
                linked.setdefault(extra.split("/")[1], []).append(name)
        labels = summary.get("Labels") or {}
        if COMPOSE_SERVICE in labels:
            by_service[(labels.get(COMPOSE_PROJECT, ""), labels[COMPOSE_SERVICE])] = name
    chosen: list[Managed] = []
    for summary in summaries:
        cid = str(summary["Id"])
        name = id_to_name[cid]
        labels = summary.get("Labels") or {}
        running = summary.get("State") in ("running", "restarting", "paused")
        if not wants({"Name": name, "Config": {"Labels": labels}}, selection):
            continue
        if not running and not selection.include_stopped:
            continue
        image = str(summary.get("Image") or "")
        if image.startswith("sha256:") or not image:
            # The list shows the id when the tag now names another image: ask the container.
            try:
                image = str(client.inspect_container(cid)["Config"].get("Image") or "")
            except docker.errors.NotFound:
                continue  # removed meanwhile
        if selection.images and image_name(image) not in selection.images:
            continue
        mode = str((summary.get("HostConfig") or {}).get("NetworkMode") or "")
        deps = dependencies(labels, mode, by_service, linked.get(name, ()))
        chosen.append(
            Managed(
                id=cid,
                name=name,
                image=image,
                image_id=str(summary.get("ImageID") or ""),
                labels=labels,
                running=running,
                monitor_only=selection.monitor_only or bool(_flag(labels, MONITOR_ONLY_LABELS)),
                no_pull=bool(_flag(labels, NO_PULL_LABELS)),
                depends_on=tuple(sorted({_resolve(d, id_to_name) for d in deps})),
            )
        )
    return dependency_order(chosen)


def _resolve(dep: str, id_to_name: Mapping[str, str]) -> str:
    """`container:<id>` may name a container by (a prefix of) its id."""
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
